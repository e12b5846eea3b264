//! One task per call: negotiates media, owns the call's RTP socket and
//! [`RtpSession`], plays the welcome prompt, logs the digits it hears and
//! hangs up after the configured time or when RTP stops.

use crate::config::Config;
use crate::driver::{Counters, ToDriver};
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
    /// The RTP socket, bound to `port`.
    pub socket: std::net::UdpSocket,
    /// Settings.
    pub cfg: Arc<Config>,
    /// Prompts.
    pub prompts: Arc<PromptStore>,
    /// Channel to the SIP driver.
    pub driver: mpsc::Sender<ToDriver>,
    /// Channel from the SIP driver.
    pub rx: mpsc::Receiver<ToCall>,
    /// Seed for SSRC, sequence and timestamp.
    pub seed: u64,
    /// Shared counters.
    pub counters: Arc<Counters>,
}

/// Gives the RTP port back when the task ends, whatever the path.
struct PortGuard {
    port: u16,
    driver: mpsc::Sender<ToDriver>,
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

fn law_of(c: Codec) -> Law {
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
    let send = |m: ToDriver| {
        let d = s.driver.clone();
        async move {
            let _ = d.send(m).await;
        }
    };
    let negotiated = match &s.offer {
        Some(offer) => match sdp::negotiate(offer, &s.cfg.codecs) {
            Some(n) => Some(n),
            None => {
                info!("no common codec: 488");
                send(ToDriver::Reject(handle, 488, "Not Acceptable Here")).await;
                return;
            }
        },
        None => None,
    };
    let local = SocketAddr::new(s.cfg.media_ip, guard.port);
    let sock = match UdpSocket::from_std(s.socket) {
        Ok(sock) => sock,
        Err(e) => {
            warn!(%local, error = %e, "cannot use the RTP socket: 503");
            send(ToDriver::Reject(handle, 503, "Service Unavailable")).await;
            return;
        }
    };
    let media = LocalMedia {
        addr: local,
        session_id: s.seed >> 16,
        version: 1,
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

    // Late offer: the caller's answer comes in the ACK.
    let negotiated = match negotiated {
        Some(n) => n,
        None => match s.rx.recv().await {
            Some(ToCall::Confirmed(Some(answer))) => match sdp::negotiate(&answer, &s.cfg.codecs) {
                Some(n) => n,
                None => {
                    warn!("late-offer answer has no usable audio: hanging up");
                    send(ToDriver::Hangup(handle)).await;
                    return;
                }
            },
            Some(ToCall::Confirmed(None)) => {
                warn!("ACK without the SDP answer to our offer: hanging up");
                send(ToDriver::Hangup(handle)).await;
                return;
            }
            Some(ToCall::Ended(_)) | None => return,
        },
    };

    let start = Instant::now();
    let mut rtp = RtpSession::new(
        start,
        SessionConfig {
            law: law_of(negotiated.codec),
            telephone_event: negotiated.telephone_event,
            ssrc: (s.seed >> 32) as u32,
            initial_seq: (s.seed >> 8) as u16,
            initial_ts: s.seed as u32,
            remote: negotiated.remote,
            rtp_timeout: s.cfg.rtp_timeout,
            keep_audio: false,
        },
    );
    match s.prompts.get(&s.cfg.language, &s.cfg.welcome_prompt) {
        Some(p) => rtp.play(p),
        None => warn!(prompt = %s.cfg.welcome_prompt, "welcome prompt missing: playing silence"),
    }
    info!(codec = negotiated.codec.name(), remote = %negotiated.remote, "answered");
    let hangup_at = start + s.cfg.call_duration;
    let mut inbuf = vec![0u8; 2048];
    let mut outbuf = [0u8; 1500];
    let mut digits = String::new();
    loop {
        let wake = rtp.poll_timeout().min(hangup_at);
        tokio::select! {
            r = sock.recv_from(&mut inbuf) => {
                if let Ok((n, from)) = r {
                    rtp.handle_packet(Instant::now(), from, &inbuf[..n]);
                }
            }
            m = s.rx.recv() => match m {
                Some(ToCall::Confirmed(_)) => {}
                Some(ToCall::Ended(reason)) => {
                    debug!(?reason, "ended by SIP");
                    break;
                }
                None => break,
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
        }
        let now = Instant::now();
        rtp.handle_timeout(now);
        while let Some((n, dest)) = rtp.poll_transmit(now, &mut outbuf) {
            if let Err(e) = sock.send_to(&outbuf[..n], dest).await {
                debug!(error = %e, %dest, "RTP send failed");
            }
        }
        let mut hang_up = now >= hangup_at;
        while let Some(ev) = rtp.poll_event() {
            match ev {
                MediaEvent::Dtmf(d) => {
                    digits.push(d);
                    s.counters.dtmf.fetch_add(1, Ordering::Relaxed);
                    info!(digit = %d, digits = %digits, "dtmf");
                }
                MediaEvent::Timeout => {
                    warn!(seconds = s.cfg.rtp_timeout.as_secs(), "no RTP: hanging up");
                    hang_up = true;
                }
                MediaEvent::PlaybackFinished => debug!("prompt finished"),
                MediaEvent::Latched(addr) => debug!(%addr, "RTP latched to the caller's source"),
            }
        }
        if hang_up {
            info!("hanging up");
            send(ToDriver::Hangup(handle)).await;
            break;
        }
    }
    let st = rtp.stats();
    info!(
        sent = st.sent,
        received = st.received,
        lost = st.lost,
        jitter = st.jitter,
        "media closed"
    );
    drop(sock);
    drop(guard);
}
