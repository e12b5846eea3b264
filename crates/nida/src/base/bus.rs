//! The messages between the shell's tasks and the counters they share:
//! what the SIP driver is asked ([`ToDriver`]), what a call is told
//! ([`ToCall`]), and the live [`Counters`] the API and the metrics read.
//! They live below the tasks that send and receive them, so no task's
//! module imports another's.

use nida_call::{FromCentre, LegEvent};
use nida_sip::sdp::SessionDescription;
use nida_sip::{CallHandle, Transport};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Messages to the driver.
#[derive(Debug)]
pub enum ToDriver {
    /// A framed SIP message from a TCP or TLS connection.
    StreamMessage(Transport, SocketAddr, Vec<u8>),
    /// A TCP or TLS connection is up; send to it through this channel.
    StreamOpen(Transport, SocketAddr, mpsc::Sender<Vec<u8>>),
    /// A TCP or TLS connection closed.
    StreamClosed(Transport, SocketAddr),
    /// Send 180 Ringing.
    Ring(CallHandle),
    /// A trunk's addresses as its host name resolves now (RFC 3263).
    TrunkAddresses(String, Vec<SocketAddr>),
    /// Answer with the SDP this negotiation wrote last; it answers the
    /// dialog's later offers.
    Answer(CallHandle, Box<nida_sip::offer_answer::OfferAnswer>),
    /// Reject with a status.
    Reject(CallHandle, u16, &'static str),
    /// Hang up.
    Hangup(CallHandle),
    /// Hold (true) or resume a call from nida's side (a re-INVITE).
    Hold(CallHandle, bool),
    /// A leg's events go to this call from now on (it was handed over).
    Reroute(CallHandle, mpsc::Sender<ToCall>),
    /// Tell the peer of a leg how the transfer it asked for went.
    NotifyRefer(CallHandle, u16, &'static str),
    /// A call task finished and released its RTP port.
    PortFree(u16),
    /// Ring an agent for a waiting call, or dial a caller; the reply
    /// carries the new leg.
    Invite(LegRequest),
    /// A call-back stored just now (from a voice message): it joins its
    /// queue without the caller.
    Callback(Box<nida_store::CallbackRow>),
    /// Place a status notification's attempt; its result goes to the
    /// sender.
    Notify(
        Box<nida_call::Notice>,
        tokio::sync::mpsc::Sender<nida_call::NoticeResult>,
    ),
}

/// A leg a call asks the driver to place.
#[derive(Debug)]
pub struct LegRequest {
    /// Where.
    pub target: Dial,
    /// Shown to the agent as the caller.
    pub from_user: String,
    /// For a call to a number (a call-back, a transfer to a number):
    /// what for, and the number, which must pass `[outbound]`; every
    /// such call is audited in the store.
    pub number: Option<(nida_call::Purpose, String)>,
    /// The call it is for (the audit names it).
    pub call_id: String,
    /// The call that owns the leg: its events go there.
    pub owner: mpsc::Sender<ToCall>,
    /// The leg, or `None` when no RTP port is free.
    pub reply: tokio::sync::oneshot::Sender<Option<LegSetup>>,
}

pub use nida_call::Dial;

/// One leg's media sockets: RTP on an even port, RTCP on the next one
/// (RFC 3550 11).
#[derive(Debug)]
pub struct MediaSocket {
    /// RTP.
    pub rtp: std::net::UdpSocket,
    /// RTCP.
    pub rtcp: std::net::UdpSocket,
}

impl MediaSocket {
    /// The RTCP socket, or the RTP one.
    pub fn get(&self, rtcp: bool) -> &std::net::UdpSocket {
        if rtcp {
            &self.rtcp
        } else {
            &self.rtp
        }
    }
}

/// A call nida placed (to an agent), as its owner gets it.
#[derive(Debug)]
pub struct LegSetup {
    /// The endpoint's handle.
    pub handle: CallHandle,
    /// The leg's RTP port.
    pub port: u16,
    /// Its sockets.
    pub socket: MediaSocket,
    /// nida's SRTP key, offered with RTP/SAVP when the leg goes over TLS.
    pub srtp: Option<[u8; 30]>,
}

/// Messages to a call: from the SIP driver about its legs, and from the
/// contact centre.
#[derive(Debug)]
pub enum ToCall {
    /// The caller's ACK arrived (with the SDP answer of a late offer).
    Confirmed(Option<Box<SessionDescription>>),
    /// Something happened on one of the call's dialogs.
    Sip(CallHandle, Box<LegEvent>),
    /// The routing core's word.
    Centre(Box<FromCentre>),
    /// The bridged agent of another call transfers their caller to this
    /// call's colleague (REFER with `Replaces` naming this call's
    /// dialog): give the bridged leg to `to`.
    HandOver {
        /// The call that takes the leg.
        to: mpsc::Sender<ToCall>,
        /// The transferring agent's leg in that call.
        referred_by: CallHandle,
        /// The REFER came on that leg: it is told the outcome (NOTIFY).
        notify: bool,
    },
    /// An INVITE with `Replaces` naming one of this call's legs (RFC
    /// 3891), from an authenticated `user`: when it is the same agent's
    /// phone, the new dialog takes that leg's place.
    Replace {
        /// The leg's dialog it names.
        old: CallHandle,
        /// The new dialog.
        handle: CallHandle,
        /// Its offer.
        offer: Option<Box<SessionDescription>>,
        /// Who the caller proved to be.
        user: String,
        /// The RTP port and sockets bound for it.
        port: u16,
        /// The sockets.
        socket: MediaSocket,
        /// It came over TLS.
        secure: bool,
    },
    /// A leg another call gave away (see `HandOver`), with its dialog,
    /// sockets and port.
    Adopt {
        /// Its dialog.
        handle: CallHandle,
        /// Its RTP and RTCP sockets.
        sockets: MediaSocket,
        /// Its port.
        guard: PortGuard,
        /// Its media and role.
        leg: Box<nida_call::Detached>,
        /// The transferring agent's leg in this call.
        referred_by: CallHandle,
        /// The REFER came on that leg: it is told the outcome (NOTIFY).
        notify: bool,
    },
}

// The variants' payloads are boxed: every call's channel holds a block
// of 32 of these from its start.
impl ToCall {
    /// A dialog's event.
    pub fn sip(handle: CallHandle, ev: LegEvent) -> ToCall {
        ToCall::Sip(handle, Box::new(ev))
    }

    /// The routing core's word.
    pub fn centre(m: FromCentre) -> ToCall {
        ToCall::Centre(Box::new(m))
    }
}

/// Live counters shared with the admin API and the metrics (plain
/// atomics: readers never block the driver or the calls).
#[derive(Debug, Default)]
pub struct Counters {
    /// Calls in progress.
    pub calls: AtomicU64,
    /// RTP ports held by calls and legs now.
    pub rtp_ports_in_use: AtomicU64,
    /// Calls answered since start.
    pub answered: AtomicU64,
    /// Calls refused with 503.
    pub overload_rejects: AtomicU64,
    /// SIP messages received.
    pub sip_received: AtomicU64,
    /// SIP messages that failed to parse or validate.
    pub sip_malformed: AtomicU64,
    /// CRLF keep-alives received over UDP (ignored).
    pub sip_keepalives: AtomicU64,
    /// Double-CRLF pings received over TCP and TLS (each answered with a
    /// CRLF pong).
    pub sip_pings: AtomicU64,
    /// SIP responses dropped for coming from another address than their
    /// request went to.
    pub sip_foreign_responses: AtomicU64,
    /// DTMF digits received.
    pub dtmf: AtomicU64,
    /// SIP responses nida sent, by status code.
    pub responses_sent: StatusCounts,
    /// SIP responses nida received (from agents' phones, carriers), by code.
    pub responses_received: StatusCounts,
    /// RTP packets received on finished call legs.
    pub rtp_received: AtomicU64,
    /// RTP packets lost on finished call legs.
    pub rtp_lost: AtomicU64,
    /// RTP packets from another source than the peer, on finished legs.
    pub rtp_foreign: AtomicU64,
    /// Sum of the legs' last interarrival jitter, in microseconds.
    pub rtp_jitter_us: AtomicU64,
    /// Legs counted in `rtp_jitter_us`.
    pub rtp_legs: AtomicU64,
    /// What the per-source protection did (a copy of its counters).
    pub protection: ProtectionCounters,
    /// The trunks' state, as last published by the driver.
    pub trunks: tokio::sync::watch::Sender<std::sync::Arc<Vec<crate::config::trunks::TrunkView>>>,
}

/// The guard's counters, as atomics the metrics read.
#[derive(Debug, Default)]
pub struct ProtectionCounters([AtomicU64; 5]);

impl ProtectionCounters {
    /// Publishes the guard's counters.
    pub fn store(&self, s: &nida_sip::guard::GuardStats) {
        let v = [
            s.blocked,
            s.too_fast,
            s.too_large,
            s.dialogs_refused,
            s.blocks,
        ];
        for (a, v) in self.0.iter().zip(v) {
            a.store(v, Ordering::Relaxed);
        }
    }

    /// The counters now.
    pub fn load(&self) -> nida_sip::guard::GuardStats {
        let [blocked, too_fast, too_large, dialogs_refused, blocks] =
            std::array::from_fn(|i| self.0[i].load(Ordering::Relaxed));
        nida_sip::guard::GuardStats {
            blocked,
            too_fast,
            too_large,
            dialogs_refused,
            blocks,
        }
    }
}

impl Counters {
    /// Counts a finished leg's RTP statistics (jitter in 8 kHz units).
    pub fn rtp_leg(&self, st: &nida_media::rtp::RtpStats) {
        self.rtp_received.fetch_add(st.received, Ordering::Relaxed);
        self.rtp_lost.fetch_add(st.lost, Ordering::Relaxed);
        self.rtp_foreign.fetch_add(st.foreign, Ordering::Relaxed);
        let us = (st.jitter / 8000.0 * 1e6).max(0.0) as u64;
        self.rtp_jitter_us.fetch_add(us, Ordering::Relaxed);
        self.rtp_legs.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts of SIP status codes 100 to 699.
#[derive(Debug)]
pub struct StatusCounts(Box<[AtomicU64]>);

impl Default for StatusCounts {
    fn default() -> Self {
        StatusCounts((100..700).map(|_| AtomicU64::new(0)).collect())
    }
}

impl StatusCounts {
    /// Counts the message if it is a response (`SIP/2.0 NNN ...`).
    pub fn count(&self, message: &[u8]) {
        let Some(code) = message
            .strip_prefix(b"SIP/2.0 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse::<usize>().ok())
        else {
            return;
        };
        if let Some(n) = code.checked_sub(100).and_then(|i| self.0.get(i)) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The codes seen, with their counts.
    pub fn seen(&self) -> Vec<(u16, u64)> {
        self.0
            .iter()
            .enumerate()
            .map(|(i, n)| (i as u16 + 100, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// Gives an RTP port back when dropped, whatever the path (a leg handed
/// to another call takes its guard along).
#[derive(Debug)]
pub struct PortGuard {
    /// The port.
    pub port: u16,
    /// Where it goes back.
    pub driver: mpsc::Sender<ToDriver>,
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
