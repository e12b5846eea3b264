//! One task per call around the sans-IO [`nida_call::Call`] machine. The
//! task answers the caller's INVITE (media offer, ring, answer, the ACK),
//! then gives the machine to a media thread ([`engine`]), which feeds it
//! RTP and its timers and sends its packets. The task keeps the control
//! side: SIP events, the routing core's word, lookup and store answers go
//! in; what the machine asks (place or hang up a leg, tell the centre,
//! store a call-back or the record, write the recording) goes out. It
//! decides nothing about the call itself, and sleeps while the call only
//! moves media.

pub mod engine;
mod log;
pub mod lookup;
pub mod notifier;
mod recorder;

use crate::base::bus::{
    Counters, Dial, LegRequest, LegSetup, MediaSocket, PortGuard, ToCall, ToDriver,
};
use crate::config::Config;
use engine::{Engine, MediaCall};
use nida_call::{answering, Call, CallConfig, LegEvent, LegId, Output, Recording, Start, Stored};
use nida_ivr::LookupResult;
use nida_media::PromptStore;
use nida_sip::offer_answer::OfferAnswer;
use nida_sip::sdp::{self, Negotiated, SessionDescription};
use nida_sip::CallHandle;
use recorder::Recorder;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, info_span, warn, Instrument};

/// Everything a call task starts with.
pub struct CallSetup {
    /// The endpoint's handle of the caller's dialog.
    pub handle: CallHandle,
    /// SIP Call-ID, for the log span.
    pub call_id: String,
    /// The caller's offer, if the INVITE had one.
    pub offer: Option<SessionDescription>,
    /// The RTP port reserved for the call.
    pub port: u16,
    /// The RTP and RTCP sockets, bound to `port` and `port + 1` (taken
    /// when the call starts).
    pub socket: Option<crate::base::bus::MediaSocket>,
    /// The caller's number (user part of From).
    pub caller: String,
    /// Where the INVITE came from (call-backs go there by default).
    pub source: SocketAddr,
    /// The number dialled.
    pub called: String,
    /// The flows as they were when the call came in.
    pub flows: Arc<nida_ivr::FlowSet>,
    /// Lookup backends.
    pub backends: Arc<crate::call::lookup::Backends>,
    /// Settings.
    pub cfg: Arc<Config>,
    /// Prompts.
    pub prompts: Arc<PromptStore>,
    /// Channel to the SIP driver.
    pub driver: mpsc::Sender<ToDriver>,
    /// Channel from the SIP driver and the centre.
    pub rx: mpsc::Receiver<ToCall>,
    /// The generator the call's own generator is forked from (keyed from
    /// the OS; shared by all calls).
    pub rng: Arc<std::sync::Mutex<nida_sip::rng::Rng>>,
    /// Shared counters.
    pub counters: Arc<Counters>,
    /// The contact centre.
    pub centre: crate::centre::CentreHandle,
    /// Where records go.
    pub store: crate::base::db::StoreHandle,
    /// This call's own channel (given to agent legs and the centre).
    pub tx: mpsc::Sender<ToCall>,
    /// A feature-code call: play this prompt (name, language), then hang up.
    pub confirm: Option<(String, String)>,
    /// Told to the centre once the call is over (a supervisor's feature
    /// code: ring them into the agent's call after the confirmation).
    pub then: Option<crate::centre::ToCentre>,
    /// An agent's phone calling a colleague: ring this agent's phone and
    /// bridge the two.
    pub internal: Option<(nida_acd::AgentId, nida_call::Target)>,
    /// The INVITE came over TLS: an SRTP offer (SDES) may be answered.
    pub secure: bool,
    /// The caller's number as a trusted trunk asserted it (or as stored
    /// with a call-back).
    pub proven_number: Option<String>,
    /// The media threads the call's machine runs on once answered.
    pub engine: Engine,
}

impl CallSetup {
    /// A generator of the call's own, forked from the shared one.
    fn fork_rng(&self) -> nida_sip::rng::Rng {
        // A poisoned lock still holds a usable generator.
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        rng.fork()
    }

    fn call_config(&self) -> CallConfig {
        let c = &self.cfg;
        CallConfig {
            call_id: self.call_id.clone(),
            caller: self.caller.clone(),
            called: self.called.clone(),
            source: self.source,
            proven_number: self.proven_number.clone(),
            language: c.language.clone(),
            codecs: c.codecs.clone(),
            rtp_timeout: c.rtp_timeout,
            call_duration: c.call_duration,
            outbound_trunk: c.outbound_trunk.clone(),
            outbound_uri: c.outbound_uri.clone(),
            sip_addr: c.sip_addr,
        }
    }

    fn shared(&self) -> nida_call::Shared {
        nida_call::Shared {
            flows: self.flows.clone(),
            prompts: self.prompts.clone(),
            queues: self.centre.rules.clone(),
            bookings: self.centre.bookings.clone(),
            calendars: self.centre.calendars.clone(),
        }
    }

    async fn send(&self, m: ToDriver) {
        let _ = self.driver.send(m).await;
    }
}

/// Runs an incoming call to its end.
pub async fn run(setup: CallSetup) {
    let span = info_span!("call", call_id = %setup.call_id);
    async move {
        let mut s = setup;
        let guard = PortGuard {
            port: s.port,
            driver: s.driver.clone(),
        };
        // The answer's and the shell's awaits are boxed: a live call's
        // task then holds a few pointers while it waits, not the largest
        // of every await's state (about 16 KiB a call when inline).
        let Some((negotiated, srtp, sock)) = Box::pin(answer(&mut s)).await else {
            return;
        };
        let start = match (&s.confirm, &s.internal) {
            (Some((name, lang)), _) => Start::Confirm {
                lang: lang.clone(),
                name: name.clone(),
            },
            (None, Some((agent, target))) => Start::Internal {
                agent: *agent,
                target: target.clone(),
            },
            (None, None) => match s.cfg.flow_for(&s.called) {
                Some(f) => Start::Flow {
                    flow: f.to_string(),
                    welcome: s.cfg.welcome_prompt.clone(),
                },
                None => Start::Welcome(s.cfg.welcome_prompt.clone()),
            },
        };
        info!(codec = negotiated.codec.name(), remote = %negotiated.remote, "answered");
        let call = Call::answered(
            Instant::now(),
            crate::clock::unix_now() as i64,
            s.shared(),
            s.call_config(),
            s.fork_rng(),
            negotiated,
            srtp,
            start,
        );
        let then = s.then.take();
        let centre = s.centre.tx.clone();
        let mut shell = Shell::new(s, call);
        shell.media.attach(LegId::CALLER, sock, guard);
        shell.handles.insert(shell.s.handle, LegId::CALLER);
        shell.run().await;
        if let Some(m) = then {
            let _ = centre.send(m).await;
        }
    }
    .instrument(span)
    .await
}

/// Restores a call-back stored before a restart: the call joins its queue
/// again without the caller, and goes on like any call-back.
pub async fn restore(setup: CallSetup, row: nida_store::CallbackRow) {
    let span = info_span!("call", call_id = %setup.call_id);
    async move {
        let call = Call::restored(
            Instant::now(),
            crate::clock::unix_now() as i64,
            setup.shared(),
            setup.call_config(),
            setup.fork_rng(),
            &row,
        );
        Shell::new(setup, call).run().await;
    }
    .instrument(span)
    .await
}

/// Places one attempt of a status notification; its result goes to
/// `results` (the scheduler).
pub async fn notify(
    setup: CallSetup,
    notice: nida_call::Notice,
    results: mpsc::Sender<nida_call::NoticeResult>,
) {
    let span = info_span!("call", call_id = %setup.call_id);
    async move {
        let call = Call::notification(
            Instant::now(),
            crate::clock::unix_now() as i64,
            setup.shared(),
            setup.call_config(),
            setup.fork_rng(),
            notice,
        );
        let mut shell = Shell::new(setup, call);
        shell.notices = Some(results);
        shell.run().await;
    }
    .instrument(span)
    .await
}

/// Answers the caller's INVITE: the audio agreed (488 when none), 180,
/// the configured ring time, 200, then the ACK (with the answer to a
/// late offer). No RTP before the ACK: an INVITE from a forged source
/// names whatever media address it likes.
async fn answer(s: &mut CallSetup) -> Option<(Negotiated, Option<[u8; 30]>, MediaSocket)> {
    let handle = s.handle;
    let socket = s.socket.take();
    let session_id = s.fork_rng().next_u64() >> 16;
    // The offer is not kept for the call's life.
    let offer = s.offer.take();
    let answered = take_offer(offer.as_ref(), &s.cfg, s.secure, s.port, socket, session_id);
    let (negotiated, srtp, sock, media) = match answered {
        Ok(a) => a,
        Err(Some((code, reason))) => {
            s.send(ToDriver::Reject(handle, code, reason)).await;
            return None;
        }
        Err(None) => return None,
    };
    s.send(ToDriver::Ring(handle)).await;
    if !s.cfg.ring.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(s.cfg.ring) => {}
            m = s.rx.recv() => {
                debug!(?m, "ended while ringing");
                return None;
            }
        }
    }
    s.send(ToDriver::Answer(handle, Box::new(media))).await;
    let ack_sdp = match s.rx.recv().await {
        Some(ToCall::Confirmed(sdp)) => sdp,
        Some(ToCall::Sip(_, ev)) if matches!(*ev, LegEvent::Ended(_)) => return None,
        None => return None,
        Some(other) => {
            warn!(?other, "unexpected before the ACK: hanging up");
            s.send(ToDriver::Hangup(handle)).await;
            return None;
        }
    };
    let negotiated = match answering::confirm(negotiated, ack_sdp.as_deref(), &s.cfg.codecs) {
        Ok(n) => n,
        Err(why) => {
            warn!("{why}: hanging up");
            s.send(ToDriver::Hangup(handle)).await;
            return None;
        }
    };
    Some((negotiated, srtp, sock))
}

/// What nida answers to an offer (none: a late offer, answered with
/// nida's own): the media agreed, nida's SRTP key, the RTP sockets bound
/// at `port`, and the dialog's offer/answer state. The status to reject
/// with when it cannot (none: nothing to send).
type Answered = (
    Option<Negotiated>,
    Option<[u8; 30]>,
    MediaSocket,
    OfferAnswer,
);

fn take_offer(
    offer: Option<&sdp::SessionDescription>,
    cfg: &crate::config::Config,
    secure: bool,
    port: u16,
    socket: Option<crate::base::bus::MediaSocket>,
    session_id: u64,
) -> Result<Answered, Option<(u16, &'static str)>> {
    let negotiated = answering::take_offer(offer, &cfg.codecs, secure).map_err(|why| {
        let status = why.status();
        if let Some((code, _)) = status {
            info!("{why}: {code}");
        }
        status
    })?;
    // An SRTP offer (over TLS) gets nida's own key in the answer.
    let srtp = negotiated
        .as_ref()
        .and_then(|n| n.srtp)
        .map(|_| crate::base::tls::srtp_key());
    let local = SocketAddr::new(cfg.media_ip(), port);
    let Some(sock) = socket else {
        return Err(None);
    };
    let mut media = OfferAnswer::new(
        sdp::LocalMedia {
            addr: local,
            session_id,
            version: 1,
            srtp,
        },
        cfg.codecs.clone(),
        secure,
    );
    let negotiated = match (offer, negotiated) {
        // The answer as the dialog's negotiation writes it (the c=0.0.0.0
        // hold of an initial offer included).
        (Some(offer), Some(_)) => media.answer(offer).map(|(_, n)| n),
        (_, n) => {
            media.offer();
            n
        }
    };
    Ok((negotiated, srtp, sock, media))
}

/// Both ends of a channel the task gives to the tasks it spawns.
type Channel<T> = (mpsc::Sender<T>, mpsc::Receiver<T>);

/// The I/O around one call machine.
struct Shell {
    s: CallSetup,
    /// The machine, on its media thread with its legs' sockets.
    media: MediaCall,
    /// The SIP dialog of each leg.
    handles: HashMap<CallHandle, LegId>,
    recorder: Option<Recorder>,
    /// The voice message being written.
    voicemail: Option<Recorder>,
    /// Lookup and store answers, made with the first question (most
    /// calls ask none).
    answers: Option<Channel<Answer>>,
    /// Where a notification attempt's result goes.
    notices: Option<mpsc::Sender<nida_call::NoticeResult>>,
}

/// An answer to a question the machine asked through its task.
enum Answer {
    Lookup(u64, LookupResult),
    Stored(Stored),
}

/// The next answer, if the call ever asked.
async fn next_answer(answers: &mut Option<Channel<Answer>>) -> Option<Answer> {
    match answers {
        Some((_, rx)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Shell {
    fn new(s: CallSetup, call: Call) -> Shell {
        Shell {
            media: s.engine.add(call),
            s,
            handles: HashMap::new(),
            recorder: None,
            voicemail: None,
            answers: None,
            notices: None,
        }
    }

    fn answers(&mut self) -> mpsc::Sender<Answer> {
        self.answers
            .get_or_insert_with(|| mpsc::channel(4))
            .0
            .clone()
    }

    fn handle_of(&self, leg: LegId) -> Option<CallHandle> {
        self.handles
            .iter()
            .find(|(_, l)| **l == leg)
            .map(|(h, _)| *h)
    }

    /// An INVITE with `Replaces` naming `old`: the same agent's other
    /// phone takes the agent's leg (answered here, and the old dialog
    /// hung up); anyone else gets 403.
    #[allow(clippy::too_many_arguments)]
    async fn replace(
        &mut self,
        now: Instant,
        (old, handle): (CallHandle, CallHandle),
        offer: Option<sdp::SessionDescription>,
        user: &str,
        (port, socket): (u16, crate::base::bus::MediaSocket),
        secure: bool,
    ) {
        let agent = self
            .s
            .cfg
            .agents
            .iter()
            .find(|a| a.user == user)
            .map(|a| a.id);
        let old_leg = self.handles.get(&old).copied();
        let own = old_leg.is_some_and(|l| {
            self.media.cell.lock().legs().any(|(id, role, _)| {
                id == l
                    && agent.is_some_and(|a| role == nida_call::Role::Agent(nida_acd::AgentId(a)))
            })
        });
        let guard = PortGuard {
            port,
            driver: self.s.driver.clone(),
        };
        let (Some(old_leg), true) = (old_leg, own) else {
            warn!(%user, "INVITE with Replaces for a leg that is not this agent's: 403");
            self.s
                .send(ToDriver::Reject(handle, 403, "Forbidden"))
                .await;
            return;
        };
        let session_id = self.s.fork_rng().next_u64() >> 16;
        let answered = take_offer(
            offer.as_ref(),
            &self.s.cfg,
            secure,
            port,
            Some(socket),
            session_id,
        );
        let (n, srtp, sock, media) = match answered {
            Ok((Some(n), srtp, sock, media)) => (n, srtp, sock, media),
            Ok(_) | Err(None) => {
                self.s
                    .send(ToDriver::Reject(handle, 488, "Not Acceptable Here"))
                    .await;
                return;
            }
            Err(Some((code, reason))) => {
                self.s.send(ToDriver::Reject(handle, code, reason)).await;
                return;
            }
        };
        let replaced = self.media.cell.lock().replace_leg(now, old_leg, n, srtp);
        let Some(leg) = replaced else {
            self.s
                .send(ToDriver::Reject(handle, 403, "Forbidden"))
                .await;
            return;
        };
        self.s.send(ToDriver::Answer(handle, Box::new(media))).await;
        self.media.attach(leg, sock, guard);
        self.handles.insert(handle, leg);
        info!(
            leg = leg.0,
            "the agent's other phone took the call (Replaces)"
        );
    }

    /// Gives the bridged leg (dialog, sockets, port, media) to the call
    /// `to`, whose agent's REFER named this call's dialog; this call then
    /// ends.
    async fn hand_over(
        &mut self,
        now: Instant,
        to: mpsc::Sender<ToCall>,
        referred_by: CallHandle,
        notify: bool,
    ) {
        let Some((handle, (sockets, guard), d)) = self.detach_bridge(now).await else {
            warn!("attended transfer to this call, which has no colleague on the line: 481");
            self.s
                .send(ToDriver::NotifyRefer(
                    referred_by,
                    481,
                    "Call Does Not Exist",
                ))
                .await;
            return;
        };
        self.s.send(ToDriver::Reroute(handle, to.clone())).await;
        let m = ToCall::Adopt {
            handle,
            sockets,
            guard,
            leg: Box::new(d),
            referred_by,
            notify,
        };
        if to.send(m).await.is_err() {
            self.s.send(ToDriver::Hangup(handle)).await;
        }
    }

    /// The bridged leg taken out of the machine with its dialog and, from
    /// the media thread, its sockets and port.
    async fn detach_bridge(
        &mut self,
        now: Instant,
    ) -> Option<(CallHandle, (MediaSocket, PortGuard), nida_call::Detached)> {
        let d = self.media.cell.lock().detach_bridge(now)?;
        let handle = self.handle_of(d.leg)?;
        let sockets = self.media.take(d.leg).await?;
        self.handles.remove(&handle);
        Some((handle, sockets, d))
    }

    /// Shuttles until the machine says the call is over. The media
    /// thread moves the packets and fires the timers; the task wakes for
    /// the machine's outputs and for what comes from outside.
    async fn run(mut self) {
        let cell = self.media.cell.clone();
        loop {
            loop {
                let o = cell.lock().poll_output();
                match o {
                    Some(o) => Box::pin(self.carry_out(o)).await,
                    None => break,
                }
            }
            if cell.lock().is_over() {
                break;
            }
            // What the task fed the machine may have made packets due or
            // moved its deadline.
            self.media.poke();
            tokio::select! {
                _ = cell.outputs() => {}
                m = self.s.rx.recv() => match m {
                    Some(m) => Box::pin(self.message(m)).await,
                    None => break,
                },
                Some(a) = next_answer(&mut self.answers) => match a {
                    Answer::Lookup(id, result) => {
                        cell.lock().handle_lookup(Instant::now(), id, result);
                    }
                    Answer::Stored(stored) => {
                        cell.lock().handle_stored(Instant::now(), stored);
                    }
                },
            }
        }
        if let Some(r) = self.recorder.take() {
            Box::pin(r.finished()).await;
        }
        if let Some(r) = self.voicemail.take() {
            Box::pin(r.finished()).await;
        }
    }

    /// A message from the driver or the centre, for the machine.
    async fn message(&mut self, m: ToCall) {
        let now = Instant::now();
        match m {
            ToCall::Confirmed(_) => {}
            ToCall::Centre(m) => self.media.cell.lock().handle_centre(now, *m),
            ToCall::HandOver {
                to,
                referred_by,
                notify,
            } => self.hand_over(now, to, referred_by, notify).await,
            ToCall::Replace {
                old,
                handle,
                offer,
                user,
                port,
                socket,
                secure,
            } => {
                self.replace(
                    now,
                    (old, handle),
                    offer.map(|o| *o),
                    &user,
                    (port, socket),
                    secure,
                )
                .await
            }
            ToCall::Adopt {
                handle,
                sockets,
                guard,
                leg,
                referred_by,
                notify,
            } => match self.handles.get(&referred_by).copied() {
                Some(by) => {
                    let id = self.media.cell.lock().adopt(now, *leg, by, notify);
                    self.media.attach(id, sockets, guard);
                    self.handles.insert(handle, id);
                    info!(
                        leg = id.0,
                        "leg adopted from the consult call: transfer complete"
                    );
                }
                None => self.s.send(ToDriver::Hangup(handle)).await,
            },
            ToCall::Sip(handle, ev) => match self.handles.get(&handle) {
                Some(&leg) => self.media.cell.lock().handle_leg(now, leg, *ev),
                None => match *ev {
                    // A leg nida no longer wants.
                    LegEvent::Answered(_) => self.s.send(ToDriver::Hangup(handle)).await,
                    LegEvent::Refer(_) => {
                        self.s
                            .send(ToDriver::NotifyRefer(handle, 603, "Declined"))
                            .await
                    }
                    _ => {}
                },
            },
        }
    }

    /// Does what the machine asks.
    async fn carry_out(&mut self, o: Output) {
        let s = &self.s;
        match o {
            Output::Event(e) => log::event(
                &e,
                &s.called,
                s.cfg.log_caller_numbers,
                s.cfg.rtp_timeout,
                &s.counters,
            ),
            Output::Centre(m) => {
                let m = crate::centre::ToCentre::Call {
                    call: s.tx.clone(),
                    m,
                };
                if s.centre.tx.send(m).await.is_err() {
                    warn!("contact centre stopped");
                }
            }
            Output::Dial {
                leg,
                dial,
                from_user,
                number,
            } => {
                let ev = match self.place(dial, from_user, number).await {
                    Some((handle, sock, guard, srtp)) => {
                        self.handles.insert(handle, leg);
                        self.media.attach(leg, sock, guard);
                        LegEvent::Placed { srtp }
                    }
                    None => LegEvent::PlaceFailed,
                };
                self.media.cell.lock().handle_leg(Instant::now(), leg, ev);
            }
            Output::Hangup(leg) => {
                if let Some(h) = self.handle_of(leg) {
                    self.s.send(ToDriver::Hangup(h)).await;
                }
            }
            Output::HoldLeg { leg, on } => {
                if let Some(h) = self.handle_of(leg) {
                    self.s.send(ToDriver::Hold(h, on)).await;
                }
            }
            Output::Release(leg) => {
                self.media.release(leg);
                if let Some(h) = self.handle_of(leg) {
                    self.handles.remove(&h);
                }
            }
            Output::NotifyRefer {
                leg,
                status,
                reason,
            } => {
                if let Some(h) = self.handle_of(leg) {
                    self.s.send(ToDriver::NotifyRefer(h, status, reason)).await;
                }
            }
            Output::Lookup {
                id,
                service,
                params,
            } => {
                let backend = s.backends.get(&service).cloned();
                let tx = self.answers();
                tokio::spawn(async move {
                    let result = match backend {
                        Some(b) => {
                            crate::call::lookup::lookup(
                                &b,
                                &params,
                                std::time::Duration::from_secs(10),
                            )
                            .await
                        }
                        None => LookupResult::Error(format!("no lookup backend `{service}`")),
                    };
                    let _ = tx.send(Answer::Lookup(id, result)).await;
                });
            }
            Output::BookCallback(row) => {
                let store = s.store.clone();
                let tx = self.answers();
                tokio::spawn(async move {
                    let ok = store.book_callback(row).await;
                    let stored = if ok { Stored::Yes } else { Stored::Failed };
                    let _ = tx.send(Answer::Stored(stored)).await;
                });
            }
            Output::StoreCallback(row) => s.store.callback(row),
            Output::Wrapup(w) => s.store.wrapup(w),
            Output::Record(record) => {
                // The recording it names is complete before the record.
                if let Some(r) = self.recorder.take() {
                    r.finished().await;
                }
                if let Some(r) = self.voicemail.take() {
                    r.finished().await;
                }
                let (outcome, rating) = (record.outcome.clone(), record.rating);
                s.store.call(record).await;
                info!(%outcome, ?rating, "call record written");
            }
            Output::Recording(r) => self.recording(r).await,
            Output::Voicemail(r) => self.voicemail(r),
            Output::Notice(n) => {
                if let Some(tx) = &self.notices {
                    let _ = tx.send(n).await;
                }
            }
        }
    }

    fn voicemail(&mut self, r: Recording) {
        if r == Recording::Start {
            let rec = Recorder::start_kind(&self.s.cfg.data_dir, recorder::Kind::Voicemail);
            self.media
                .cell
                .lock()
                .set_voicemail_name(rec.path.display().to_string());
            self.voicemail = Some(rec);
        } else if let Some(rec) = &self.voicemail {
            // Finish and discard too: the file is complete (or gone)
            // before the record is written.
            rec.send(r);
        }
    }

    async fn recording(&mut self, r: Recording) {
        match r {
            Recording::Start => {
                if let Some(old) = self.recorder.take() {
                    old.finished().await;
                }
                let rec = Recorder::start(&self.s.cfg.data_dir);
                self.media
                    .cell
                    .lock()
                    .set_recording_name(rec.path.display().to_string());
                self.recorder = Some(rec);
            }
            Recording::Frame(_) => {
                if let Some(rec) = &self.recorder {
                    rec.send(r);
                }
            }
            Recording::Finish | Recording::Discard => {
                // Kept until the record, which waits for the file.
                if let Some(rec) = &self.recorder {
                    rec.send(r);
                }
            }
        }
    }

    /// Places a call for a leg; `None` when the driver has no RTP port,
    /// refuses the number, or is gone.
    async fn place(
        &self,
        dial: Dial,
        from_user: String,
        number: Option<(nida_call::Purpose, String)>,
    ) -> Option<(CallHandle, MediaSocket, PortGuard, Option<[u8; 30]>)> {
        let (reply, rx) = oneshot::channel();
        let m = ToDriver::Invite(LegRequest {
            target: dial,
            from_user,
            number,
            call_id: self.s.call_id.clone(),
            owner: self.s.tx.clone(),
            reply,
        });
        self.s.driver.send(m).await.ok()?;
        let LegSetup {
            handle,
            port,
            socket,
            srtp,
        } = rx.await.ok().flatten()?;
        let guard = PortGuard {
            port,
            driver: self.s.driver.clone(),
        };
        Some((handle, socket, guard, srtp))
    }
}
