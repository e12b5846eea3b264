//! One task per call: negotiates media, owns the call's RTP socket and
//! [`RtpSession`], plays the welcome prompt, logs the digits it hears and
//! hangs up after the configured time or when RTP stops.

use crate::config::Config;
use crate::driver::{Counters, ToDriver};
use nida_ivr::{Action, LookupResult, Session};
use nida_media::srtp::{SrtpContext, Suite};
use nida_media::{Law, MediaEvent, PromptStore, RtpSession, SessionConfig};
use nida_sip::sdp::{self, Codec, LocalMedia, SessionDescription};
use nida_sip::{CallHandle, EndReason};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, info_span, warn, Instrument};

/// Messages from the driver to a call.
#[derive(Debug)]
pub enum ToCall {
    /// The ACK arrived (with the SDP answer of a late offer).
    Confirmed(Option<SessionDescription>),
    /// The call is over on the SIP side.
    Ended(EndReason),
    /// Ring this agent (the routing core's offer).
    Offer {
        /// The agent.
        agent: nida_acd::AgentId,
        /// Where the agent's phone is.
        target: crate::centre::Target,
        /// The agent's name, for the log.
        name: String,
    },
    /// Stop ringing (or drop) this agent.
    Withdraw(nida_acd::AgentId),
    /// The agent's answer was accepted: bridge.
    Connected(nida_acd::AgentId),
    /// Place in line and estimated wait.
    Position {
        /// 1 is next.
        place: usize,
        /// Estimated wait.
        wait: std::time::Duration,
    },
    /// The queue's longest wait is over: leave by this exit.
    Exit(nida_acd::Exit),
    /// The queue would not take the call.
    Refused,
    /// An agent leg got a provisional response.
    AgentProgress {
        /// The leg.
        handle: CallHandle,
        /// Its status.
        status: u16,
    },
    /// An agent answered.
    AgentAnswered {
        /// The leg.
        handle: CallHandle,
        /// Their SDP answer.
        sdp: Option<SessionDescription>,
    },
    /// The bridged agent asked to transfer the call (REFER).
    Transfer {
        /// The agent's leg.
        handle: CallHandle,
        /// The Refer-To URI.
        target: String,
    },
    /// An agent leg ended.
    AgentEnded {
        /// The leg.
        handle: CallHandle,
        /// Why.
        reason: EndReason,
    },
}

/// Everything a call task starts with.
pub struct CallSetup {
    /// The endpoint's handle.
    pub handle: CallHandle,
    /// SIP Call-ID, for the log span.
    pub call_id: String,
    /// The caller's offer, if the INVITE had one.
    pub offer: Option<SessionDescription>,
    /// The RTP port reserved for the call.
    pub port: u16,
    /// The RTP socket, bound to `port` (taken when the call starts).
    pub socket: Option<std::net::UdpSocket>,
    /// The caller's number (user part of From).
    pub caller: String,
    /// Where the INVITE came from (call-backs go there by default).
    pub source: SocketAddr,
    /// The number dialled.
    pub called: String,
    /// The flows as they were when the call came in.
    pub flows: Arc<nida_ivr::FlowSet>,
    /// Lookup backends.
    pub backends: Arc<crate::lookup::Backends>,
    /// Settings.
    pub cfg: Arc<Config>,
    /// Prompts.
    pub prompts: Arc<PromptStore>,
    /// Channel to the SIP driver.
    pub driver: mpsc::Sender<ToDriver>,
    /// Channel from the SIP driver.
    pub rx: mpsc::Receiver<ToCall>,
    /// The generator of SSRCs, sequence numbers, timestamps and SDP
    /// session ids (keyed from the OS; shared by all calls, which draw
    /// from it a few times each).
    pub rng: Arc<std::sync::Mutex<nida_sip::rng::Rng>>,
    /// Shared counters.
    pub counters: Arc<Counters>,
    /// The contact centre.
    pub centre: crate::centre::CentreHandle,
    /// Where records go.
    pub store: crate::db::StoreHandle,
    /// This call's own channel (given to agent legs and the centre).
    pub tx: mpsc::Sender<ToCall>,
    /// A feature-code call: play this prompt (name, language), then hang up.
    pub confirm: Option<(String, String)>,
    /// The INVITE came over TLS: an SRTP offer (SDES) may be answered.
    pub secure: bool,
    /// The caller's number as a trusted trunk asserted it (or as stored
    /// with a call-back): the only number a call-back dials without the
    /// caller keying it in.
    pub proven_number: Option<String>,
}

impl CallSetup {
    /// 64 fresh random bits from the call's generator.
    pub fn draw(&self) -> u64 {
        // A poisoned lock still holds a usable generator.
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        rng.next_u64()
    }
}

/// Gives the RTP port back when the task ends, whatever the path.
pub(crate) struct PortGuard {
    pub(crate) port: u16,
    pub(crate) driver: mpsc::Sender<ToDriver>,
}

impl Drop for PortGuard {
    fn drop(&mut self) {
        let driver = self.driver.clone();
        let port = self.port;
        if driver.try_send(ToDriver::PortFree(port)).is_err() {
            tokio::spawn(async move {
                let _ = driver.send(ToDriver::PortFree(port)).await;
            });
        }
    }
}

pub(crate) fn law_of(c: Codec) -> Law {
    match c {
        Codec::Pcmu => Law::Mu,
        Codec::Pcma => Law::A,
    }
}

/// Runs a call to its end.
pub async fn run(setup: CallSetup) {
    let span = info_span!("call", call_id = %setup.call_id);
    drive(setup).instrument(span).await
}

async fn drive(mut s: CallSetup) {
    let handle = s.handle;
    let guard = PortGuard {
        port: s.port,
        driver: s.driver.clone(),
    };
    let driver = s.driver.clone();
    let send = move |m: ToDriver| {
        let d = driver.clone();
        async move {
            let _ = d.send(m).await;
        }
    };
    let negotiated = match &s.offer {
        Some(offer) => match sdp::negotiate(offer, &s.cfg.codecs, s.secure) {
            Some(n) => Some(n),
            None => {
                let savp = offer
                    .media
                    .iter()
                    .any(|m| m.proto.eq_ignore_ascii_case("RTP/SAVP"));
                if savp && !s.secure {
                    info!("SRTP offered without TLS (its keys would travel in clear): 488");
                } else {
                    info!("no common codec: 488");
                }
                send(ToDriver::Reject(handle, 488, "Not Acceptable Here")).await;
                return;
            }
        },
        None => None,
    };
    // An SRTP offer (over TLS) gets nida's own key in the answer.
    let srtp = negotiated
        .as_ref()
        .and_then(|n| n.srtp)
        .map(|_| crate::tls::srtp_key());
    let local = SocketAddr::new(s.cfg.media_ip, guard.port);
    let Some(std_sock) = s.socket.take() else {
        return;
    };
    let sock = match UdpSocket::from_std(std_sock) {
        Ok(sock) => sock,
        Err(e) => {
            warn!(%local, error = %e, "cannot use the RTP socket: 503");
            send(ToDriver::Reject(handle, 503, "Service Unavailable")).await;
            return;
        }
    };
    let media = LocalMedia {
        addr: local,
        session_id: s.draw() >> 16,
        version: 1,
        srtp,
    };
    let body = match (&s.offer, &negotiated) {
        (Some(offer), Some(n)) => sdp::answer(offer, n, &media),
        _ => sdp::offer(&s.cfg.codecs, &media),
    };
    send(ToDriver::Ring(handle)).await;
    if !s.cfg.ring.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(s.cfg.ring) => {}
            m = s.rx.recv() => {
                debug!(?m, "ended while ringing");
                return;
            }
        }
    }
    send(ToDriver::Answer(handle, body)).await;

    // No RTP before the ACK: an INVITE from a forged source names whatever
    // media address it likes, and would aim nida's prompts at a third
    // party. Without an ACK the dialog ends at Timer H.
    let ack_sdp = match s.rx.recv().await {
        Some(ToCall::Confirmed(sdp)) => sdp,
        Some(ToCall::Ended(_)) | None => return,
        Some(other) => {
            warn!(?other, "unexpected before the ACK: hanging up");
            send(ToDriver::Hangup(handle)).await;
            return;
        }
    };
    // Late offer: the caller's answer comes in the ACK.
    let negotiated = match (negotiated, ack_sdp) {
        (Some(n), _) => n,
        // nida's offer was plain RTP/AVP.
        (None, Some(answer)) => match sdp::negotiate(&answer, &s.cfg.codecs, false) {
            Some(n) => n,
            None => {
                warn!("late-offer answer has no usable audio: hanging up");
                send(ToDriver::Hangup(handle)).await;
                return;
            }
        },
        (None, None) => {
            warn!("ACK without the SDP answer to our offer: hanging up");
            send(ToDriver::Hangup(handle)).await;
            return;
        }
    };

    let start = Instant::now();
    let mut rtp = leg_rtp(start, &s, &negotiated, srtp);
    let mut hang_up = false;
    let start_ivr = Instant::now();
    let flow = match s.confirm {
        Some(_) => None,
        None => s.cfg.flow_for(&s.called).map(str::to_string),
    };
    let ivr = flow.as_deref().and_then(|f| {
        let mut vars = nida_ivr::expr::Vars::new();
        vars.insert("caller".into(), nida_ivr::Value::Str(s.caller.clone()));
        vars.insert("called".into(), nida_ivr::Value::Str(s.called.clone()));
        Session::new(start_ivr, s.flows.clone(), f, vars)
    });
    match (&ivr, &flow) {
        (Some(_), Some(f)) => info!(flow = %f, called = %s.called, "running flow"),
        _ => {
            let (lang, name) = match &s.confirm {
                Some((name, lang)) => (lang, name),
                None => (&s.cfg.language, &s.cfg.welcome_prompt),
            };
            match s.prompts.get(lang, name) {
                Some(p) => rtp.play(p),
                None if s.confirm.is_some() => {
                    warn!(prompt = %name, "confirmation prompt missing");
                    hang_up = true;
                }
                None => warn!(prompt = %name, "welcome prompt missing: playing silence"),
            }
        }
    }
    info!(codec = negotiated.codec.name(), remote = %negotiated.remote, "answered");
    let leg = CallerLeg {
        handle,
        sock,
        guard: Some(guard),
        rtp,
    };
    let centre = crate::queued::CentreCall::new(&s, law_of(negotiated.codec));
    talk(&mut s, leg, ivr, centre, hang_up).await;
}

/// The caller's leg: its SIP dialog, RTP socket, session and port.
struct CallerLeg {
    handle: CallHandle,
    sock: UdpSocket,
    guard: Option<PortGuard>,
    rtp: RtpSession,
}

impl CallerLeg {
    /// The leg of a caller who answered their call-back.
    fn answered(s: &CallSetup, new: crate::queued::NewCaller) -> Result<CallerLeg, CallHandle> {
        let Ok(sock) = UdpSocket::from_std(new.socket) else {
            return Err(new.handle);
        };
        let mut rtp = leg_rtp(Instant::now(), s, &new.negotiated, new.srtp);
        rtp.set_relay(true);
        Ok(CallerLeg {
            handle: new.handle,
            sock,
            guard: Some(new.guard),
            rtp,
        })
    }
}

/// Restores a call-back stored before a restart: the call joins its queue
/// again without the caller, and goes on like any call-back.
pub async fn restore(setup: CallSetup, row: nida_store::CallbackRow) {
    let span = info_span!("call", call_id = %setup.call_id);
    async move {
        let mut s = setup;
        let mut centre = crate::queued::CentreCall::restored(&s, &row).await;
        // Nobody is on the line yet: a session that sends nowhere.
        let idle = sdp::Negotiated {
            codec: Codec::Pcmu,
            telephone_event: None,
            remote: SocketAddr::from(([127, 0, 0, 1], 9)),
            direction: sdp::Direction::SendRecv,
            index: 0,
            srtp: None,
        };
        let mut rtp = leg_rtp(Instant::now(), &s, &idle, None);
        match park(&mut s, &mut centre, &mut rtp).await {
            Some(new) => match CallerLeg::answered(&s, new) {
                Ok(leg) => {
                    centre.resumed();
                    talk(&mut s, leg, None, centre, false).await;
                }
                Err(handle) => {
                    let _ = s.driver.send(ToDriver::Hangup(handle)).await;
                    centre.finish(&s).await;
                }
            },
            None => centre.finish(&s).await,
        }
    }
    .instrument(span)
    .await
}

/// The call with the caller on the line, to its end: the IVR, the queue,
/// the agent, the survey, and the call-back's wait when the caller asks
/// for one.
async fn talk(
    s: &mut CallSetup,
    leg: CallerLeg,
    mut ivr: Option<Session>,
    mut centre: crate::queued::CentreCall,
    mut hang_up: bool,
) {
    let CallerLeg {
        mut handle,
        sock,
        mut guard,
        mut rtp,
    } = leg;
    // Gone while a call-back waits without the caller: a parked call
    // holds no socket and no RTP port.
    let mut sock = Some(sock);
    let driver = s.driver.clone();
    let send = move |m: ToDriver| {
        let d = driver.clone();
        async move {
            let _ = d.send(m).await;
        }
    };
    let start = Instant::now();
    let mut hangup_at = start + s.cfg.call_duration;
    let mut inbuf = vec![0u8; 2048];
    let mut agent_buf = vec![0u8; 2048];
    let mut outbuf = [0u8; 1500];
    let mut digits = String::new();
    let (lookup_tx, mut lookup_rx) = mpsc::channel::<(u64, LookupResult)>(4);
    'call: loop {
        if let Some(session) = ivr.as_mut() {
            let fx = apply_actions(session, &mut rtp, &s.prompts, &s.backends, &lookup_tx);
            hang_up |= fx.hang_up;
            if let Some(q) = fx.queue {
                centre.enqueue(s, session, &q, &mut rtp).await;
            }
            if let Some(q) = fx.callback {
                centre.enqueue_callback(s, session, &q, &mut rtp).await;
            }
        }
        hang_up |= centre.hang_up;
        if let Some(next) = centre.next_flow.take() {
            let mut vars = nida_ivr::expr::Vars::new();
            vars.insert("caller".into(), nida_ivr::Value::Str(s.caller.clone()));
            vars.insert(
                "language".into(),
                nida_ivr::Value::Str(centre.language.clone()),
            );
            let session = Session::new(Instant::now(), s.flows.clone(), &next, vars);
            if session.is_some() {
                info!(flow = %next, "running flow");
            } else {
                warn!(flow = %next, "no such flow: hanging up");
                hang_up = true;
            }
            ivr = session;
            continue;
        }
        let now = Instant::now();
        while let Some((n, dest)) = rtp.poll_transmit(now, &mut outbuf) {
            if let Some(Err(e)) = match &sock {
                Some(sock) => Some(sock.send_to(&outbuf[..n], dest).await),
                None => None,
            } {
                debug!(error = %e, %dest, "RTP send failed");
            }
            centre.tick_recording();
        }
        centre.transmit_agent(now, &mut outbuf, &s.driver).await;
        if hang_up || now >= hangup_at {
            info!("hanging up");
            send(ToDriver::Hangup(handle)).await;
            if !centre.parked() {
                break;
            }
            // A call-back keeps the call in line without the caller,
            // whose socket and port go back to the driver meanwhile.
            sock = None;
            guard = None;
            match park(s, &mut centre, &mut rtp).await {
                Some(new) => match CallerLeg::answered(s, new) {
                    Ok(leg) => {
                        handle = leg.handle;
                        sock = Some(leg.sock);
                        guard = leg.guard;
                        rtp = leg.rtp;
                        hangup_at = Instant::now() + s.cfg.call_duration;
                        hang_up = false;
                        centre.resumed();
                        continue 'call;
                    }
                    Err(h) => {
                        send(ToDriver::Hangup(h)).await;
                        break;
                    }
                },
                None => break,
            }
        }
        let mut wake = rtp.poll_timeout().min(hangup_at);
        if let Some(t) = ivr.as_ref().and_then(Session::poll_timeout) {
            wake = wake.min(t);
        }
        if let Some(t) = centre.poll_timeout() {
            wake = wake.min(t);
        }
        tokio::select! {
            r = recv_leg(sock.as_ref(), &mut inbuf) => {
                if let Some((n, from)) = r {
                    rtp.handle_packet(Instant::now(), from, &inbuf[..n]);
                    centre.relay_caller(&mut rtp);
                }
            }
            r = recv_leg(centre.bridge_socket(), &mut agent_buf) => {
                if let Some((n, from)) = r {
                    centre.relay_agent(Instant::now(), from, &agent_buf[..n], &mut rtp);
                }
            }
            m = s.rx.recv() => match m {
                Some(ToCall::Confirmed(_)) => {}
                Some(ToCall::Ended(reason)) if centre.parked() => {
                    debug!(?reason, "caller hung up; the call-back keeps the place");
                    hang_up = true;
                }
                Some(ToCall::Ended(reason)) => {
                    debug!(?reason, "ended by SIP");
                    centre.caller_left(s).await;
                    break;
                }
                Some(ToCall::AgentEnded { handle: h, reason }) if h == handle => {
                    debug!(?reason, "the called-back caller hung up");
                    centre.caller_left(s).await;
                    break;
                }
                Some(other) => {
                    if let Some(session) = ivr.as_ref() {
                        if centre.task.is_none() {
                            centre.path = session.path().to_vec();
                        }
                    }
                    centre.handle(s, other, &mut rtp).await;
                }
                None => break,
            },
            Some((id, result)) = lookup_rx.recv() => {
                if let Some(session) = ivr.as_mut() {
                    session.handle_lookup(Instant::now(), id, result);
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
        }
        let now = Instant::now();
        rtp.handle_timeout(now);
        if let Some(session) = ivr.as_mut() {
            session.handle_timeout(now);
        }
        centre.handle_timeout(now, s).await;
        while let Some(ev) = rtp.poll_event() {
            match ev {
                MediaEvent::Dtmf(d) => {
                    digits.push(d);
                    s.counters.dtmf.fetch_add(1, Ordering::Relaxed);
                    // Keys can be application numbers and PINs.
                    let reveal = s.cfg.log_caller_numbers;
                    info!(
                        digit = %crate::redact::Redacted::all(&d.to_string(), reveal),
                        digits = %crate::redact::Redacted::all(&digits, reveal),
                        "dtmf"
                    );
                    if centre.digit(s, d, &mut rtp).await {
                        continue;
                    }
                    if let Some(session) = ivr.as_mut() {
                        session.handle_digit(now, d);
                    }
                }
                MediaEvent::Timeout => {
                    warn!(seconds = s.cfg.rtp_timeout.as_secs(), "no RTP: hanging up");
                    hang_up = true;
                }
                MediaEvent::PlaybackFinished => {
                    debug!("prompt finished");
                    if centre.playback_done(s, &mut rtp) {
                        continue;
                    }
                    // A feature code's confirmation said: done.
                    hang_up |= s.confirm.is_some();
                    if let Some(session) = ivr.as_mut() {
                        session.handle_playback_done(now);
                    }
                }
                MediaEvent::Latched(addr) => debug!(%addr, "RTP latched to the caller's source"),
            }
        }
    }
    if let Some(session) = &ivr {
        info!(path = %session.path().join(" > "), outcome = ?session.outcome(), "flow ended");
        centre.finish_survey(session);
    }
    centre.finish(s).await;
    let st = rtp.stats();
    s.counters.rtp_leg(&st);
    info!(
        sent = st.sent,
        received = st.received,
        lost = st.lost,
        jitter = st.jitter,
        rejected = st.rejected,
        foreign = st.foreign,
        "media closed"
    );
    drop(sock);
    drop(guard);
}

/// What the interpreter's actions ask of the call.
struct Effects {
    hang_up: bool,
    queue: Option<nida_ivr::QueueRequest>,
    callback: Option<String>,
}

/// The RTP session of a leg as negotiated (the caller's, an agent's), its
/// SSRC, first sequence number and timestamp drawn from the call's
/// generator; SRTP when the peer gave its key and nida has its own
/// (`srtp`): nida's protects what it sends, the peer's opens what arrives.
pub(crate) fn leg_rtp(
    now: Instant,
    s: &CallSetup,
    n: &sdp::Negotiated,
    srtp: Option<[u8; 30]>,
) -> RtpSession {
    let seed = s.draw();
    let mut rtp = RtpSession::new(
        now,
        SessionConfig {
            law: law_of(n.codec),
            telephone_event: n.telephone_event,
            ssrc: (seed >> 32) as u32,
            initial_seq: (seed >> 8) as u16,
            initial_ts: seed as u32,
            remote: n.remote,
            rtp_timeout: s.cfg.rtp_timeout,
            keep_audio: false,
        },
    );
    if let (Some(mine), Some(peer)) = (srtp, n.srtp) {
        let suite = match peer.suite {
            sdp::CryptoSuite::AesCm128HmacSha1_80 => Suite::AesCm128HmacSha1_80,
            sdp::CryptoSuite::AesCm128HmacSha1_32 => Suite::AesCm128HmacSha1_32,
        };
        rtp.set_srtp(
            SrtpContext::new(suite, &mine),
            SrtpContext::new(suite, &peer.master),
        );
        info!(suite = peer.suite.name(), "media is SRTP");
    }
    rtp
}

/// Waits, without the caller on the line, until the call-back's turn
/// comes and the caller answers it (their new leg), or it gives up.
async fn park(
    s: &mut CallSetup,
    centre: &mut crate::queued::CentreCall,
    rtp: &mut RtpSession,
) -> Option<crate::queued::NewCaller> {
    info!("waiting in line for the call-back");
    rtp.stop_playback();
    let mut agent_buf = vec![0u8; 2048];
    let mut outbuf = [0u8; 1500];
    while centre.parked() {
        let far = Instant::now() + std::time::Duration::from_secs(3600);
        let wake = [centre.poll_timeout(), centre.bridge_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(far);
        tokio::select! {
            r = recv_leg(centre.bridge_socket(), &mut agent_buf) => {
                if let Some((n, from)) = r {
                    centre.relay_agent(Instant::now(), from, &agent_buf[..n], rtp);
                }
            }
            m = s.rx.recv() => match m {
                Some(m) => {
                    if let Some(new) = centre.handle_parked(s, m, rtp).await {
                        return Some(new);
                    }
                }
                None => return None,
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
        }
        let now = Instant::now();
        centre.handle_timeout(now, s).await;
        centre.transmit_agent(now, &mut outbuf, &s.driver).await;
    }
    None
}

/// Receives on an agent leg's socket, or waits forever without one.
async fn recv_leg(sock: Option<&UdpSocket>, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    match sock {
        Some(s) => s.recv_from(buf).await.ok(),
        None => std::future::pending().await,
    }
}

/// Carries out what the interpreter asks.
fn apply_actions(
    session: &mut Session,
    rtp: &mut RtpSession,
    prompts: &PromptStore,
    backends: &crate::lookup::Backends,
    lookups: &mpsc::Sender<(u64, LookupResult)>,
) -> Effects {
    let mut hang_up = false;
    let mut queue = None;
    let mut callback = None;
    while let Some(action) = session.poll_action() {
        match action {
            Action::Play(refs) => {
                rtp.stop_playback();
                let mut queued = 0;
                for r in &refs {
                    match prompts.get(&r.lang, &r.name) {
                        Some(p) => {
                            rtp.play(p);
                            queued += 1;
                        }
                        None => warn!(lang = %r.lang, prompt = %r.name, "prompt missing"),
                    }
                }
                debug!(prompts = ?refs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), "play");
                if queued == 0 {
                    session.handle_playback_done(Instant::now());
                }
            }
            Action::StopPlayback => rtp.stop_playback(),
            Action::Lookup {
                id,
                service,
                params,
            } => {
                let backend = backends.get(&service).cloned();
                let tx = lookups.clone();
                tokio::spawn(async move {
                    let result = match backend {
                        Some(b) => {
                            crate::lookup::lookup(&b, &params, std::time::Duration::from_secs(10))
                                .await
                        }
                        None => LookupResult::Error(format!("no lookup backend `{service}`")),
                    };
                    let _ = tx.send((id, result)).await;
                });
            }
            Action::Callback { queue: q } => {
                info!(queue = %q, "call-back requested");
                callback = Some(q);
            }
            Action::Queue(q) => {
                info!(queue = %q.queue, language = %q.language, priority = q.priority, "queued for an agent");
                queue = Some(q);
            }
            Action::Hangup => hang_up = true,
        }
    }
    Effects {
        hang_up,
        queue,
        callback,
    }
}
