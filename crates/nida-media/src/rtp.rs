//! One call's RTP stream (RFC 3550, RFC 3551, RFC 4733), sans-IO.
//!
//! Sending: one packet every packet time (20 ms, or the peer's `ptime`
//! from 10 to 60 ms) on an absolute schedule (no drift), from the prompt
//! queue, a telephone-event in progress, or silence; nothing while the
//! peer holds (the timestamp still follows real time). Receiving:
//! audio and telephone-events, sequence and loss accounting with wrapping
//! 16-bit arithmetic, interarrival jitter, symmetric RTP, and an inactivity
//! timeout while media flows both ways, and in-band DTMF (a Goertzel
//! detector) for a peer that sends no telephone-events. The shell calls `handle_packet`, `poll_transmit(now)` until
//! `None`, and sleeps until `poll_timeout`. It makes a session only once
//! the leg's dialog is confirmed (the ACK, or the 200 to nida's INVITE), so
//! nothing is sent to an address a forged INVITE named.
//!
//! Whose packets count: those from the address the SDP names, at once.
//! A caller behind NAT sends from another address; such a source is
//! *latched* (becomes the peer, and replies go there) only by a run of
//! [`LATCH_RUN`] consecutive packets, in sequence, with one SSRC, and only
//! while the current peer is silent (nothing from it for [`SILENT`]). A
//! few stray packets sprayed at the port never win, and nobody takes over
//! a peer that is talking.

use crate::dtmf::{EventReceiver, EventSender};
use crate::g711::Law;
use crate::prompt::Prompt;
use crate::srtp::SrtpContext;
use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;
/// The packet interval unless the peer asks for another.
pub const PTIME: Duration = Duration::from_millis(20);
/// The packet times nida sends (RFC 3551 4.5: G.711 in 10 ms steps).
pub const PTIME_RANGE: std::ops::RangeInclusive<u64> = 10..=60;
/// The most samples one packet carries (60 ms).
pub const MAX_SAMPLES: usize = 480;
/// A sender this far behind its schedule skips ahead rather than bursting.
const MAX_LAG: Duration = Duration::from_millis(200);
/// Consecutive, well-sequenced packets with one SSRC a new source must
/// send before it is latched (160 ms of audio).
pub const LATCH_RUN: u32 = 8;
/// A peer that sent nothing for this long is silent: another source may
/// then latch (a NAT that rebound, a caller whose SDP named a private
/// address).
pub const SILENT: Duration = Duration::from_secs(1);

/// G.722's static payload type (RFC 3551).
pub const G722_PT: u8 = 9;

/// A G.722 stream's coder state, kept for the stream's life: 16 kHz
/// audio on the wire (160 bytes a 20 ms frame, as G.711's), 8 kHz in the
/// session, through a half-band filter each way.
struct G722Wire {
    enc: ezk_g722::libg722::encoder::Encoder,
    dec: ezk_g722::libg722::decoder::Decoder,
    up: HalfBand,
    down: HalfBand,
    /// The frames received as they came, for a bridge to another G.722
    /// phone (a payload relay, wideband kept).
    received: Vec<u8>,
    /// Frames from another G.722 phone, sent as they are.
    relayed: VecDeque<u8>,
}

impl G722Wire {
    fn new() -> G722Wire {
        use ezk_g722::libg722::{decoder::Decoder, encoder::Encoder, Bitrate};
        G722Wire {
            // Encoder: (rate, eight_k, packed); decoder: (rate, packed, eight_k).
            enc: Encoder::new(Bitrate::Mode1_64000, false, false),
            dec: Decoder::new(Bitrate::Mode1_64000, false, false),
            up: HalfBand::default(),
            down: HalfBand::default(),
            received: Vec::new(),
            relayed: VecDeque::new(),
        }
    }

    /// 8 kHz samples to one G.722 frame.
    fn encode(&mut self, pcm: &[i16]) -> Vec<u8> {
        let wide = self.up.upsample(pcm);
        self.enc.encode(&wide)
    }

    /// One G.722 frame to 8 kHz samples.
    fn decode(&mut self, frame: &[u8]) -> Vec<i16> {
        let wide = self.dec.decode(frame);
        self.down.downsample(&wide)
    }
}

/// Taps of a 2x half-band low-pass (windowed sinc, cut at 4 kHz of 16).
const HALF_BAND: [f32; 15] = [
    -0.0067, 0.0, 0.0272, 0.0, -0.0822, 0.0, 0.3096, 0.5042, 0.3096, 0.0, -0.0822, 0.0, 0.0272,
    0.0, -0.0067,
];

/// A 16 kHz stream's filter history, for 8 to 16 kHz and back.
#[derive(Default)]
struct HalfBand {
    history: VecDeque<f32>,
}

impl HalfBand {
    fn push(&mut self, x: f32) -> f32 {
        if self.history.len() == HALF_BAND.len() {
            self.history.pop_front();
        }
        self.history.push_back(x);
        self.history
            .iter()
            .rev()
            .zip(HALF_BAND.iter())
            .map(|(x, h)| x * h)
            .sum()
    }

    /// Each sample, then a zero, low-passed (gain 2 for the zeros).
    fn upsample(&mut self, pcm: &[i16]) -> Vec<i16> {
        let mut out = Vec::with_capacity(pcm.len() * 2);
        for &x in pcm {
            for v in [f32::from(x) * 2.0, 0.0] {
                out.push(self.push(v).clamp(-32768.0, 32767.0) as i16);
            }
        }
        out
    }

    /// Low-passed, then every other sample.
    fn downsample(&mut self, wide: &[i16]) -> Vec<i16> {
        let mut out = Vec::with_capacity(wide.len() / 2);
        for (i, &x) in wide.iter().enumerate() {
            let y = self.push(f32::from(x));
            if i % 2 == 1 {
                out.push(y.clamp(-32768.0, 32767.0) as i16);
            }
        }
        out
    }
}

/// Settings of one stream.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Audio law (PCMU or PCMA).
    pub law: Law,
    /// telephone-event payload type agreed in SDP.
    pub telephone_event: Option<u8>,
    /// Our SSRC.
    pub ssrc: u32,
    /// First sequence number (random, RFC 3550 5.1).
    pub initial_seq: u16,
    /// First timestamp (random, RFC 3550 5.1).
    pub initial_ts: u32,
    /// Where to send until the peer's packets show its real address.
    pub remote: SocketAddr,
    /// Hang up when nothing arrives for this long.
    pub rtp_timeout: Duration,
    /// Keep decoded received audio (for recording and tests).
    pub keep_audio: bool,
}

/// What the stream reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// A key press (RFC 4733), reported once.
    Dtmf(char),
    /// The prompt queue ran empty.
    PlaybackFinished,
    /// No RTP for the configured time.
    Timeout,
    /// Another source proved itself the peer (see the module doc): replies
    /// go there now.
    Latched(SocketAddr),
    /// The peer said RTCP BYE: it has left the media session.
    PeerLeft,
    /// The first round trip measured from the peer's reports (its
    /// report about one of nida's sender reports): RTCP works both ways.
    RoundTrip(Duration),
}

/// What one call of [`RtpSession::poll_transmit`] yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    /// Bytes of the packet written to the buffer; 0 when a packet time
    /// passed without a packet (nida must not send: the peer holds).
    pub len: usize,
    /// Where it goes.
    pub dest: SocketAddr,
    /// Audio samples the packet time covered.
    pub samples: usize,
}

/// Counters of one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RtpStats {
    /// Packets sent.
    pub sent: u64,
    /// Packets received and accepted.
    pub received: u64,
    /// Packets expected minus received (RFC 3550 A.3), never negative.
    pub lost: u64,
    /// Interarrival jitter in timestamp units (RFC 3550 A.8).
    pub jitter: f64,
    /// Packets that were not RTP or had a payload type not agreed.
    pub rejected: u64,
    /// Packets from a source other than the peer (not, or not yet,
    /// latched): dropped.
    pub foreign: u64,
}

struct Receiver {
    /// The peer's SSRC.
    ssrc: u32,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u64,
    /// After a jump too large to be loss: the sequence number that would
    /// show the source restarted (RFC 3550 A.1 `bad_seq`).
    bad_seq: Option<u16>,
    transit: Option<f64>,
    jitter: f64,
}

/// A jump forward up to this is loss (RFC 3550 A.1 `MAX_DROPOUT`).
const MAX_DROPOUT: u16 = 3000;
/// A step back up to this is a late packet (`MAX_MISORDER`).
const MAX_MISORDER: u16 = 100;

/// One call's RTP stream.
pub struct RtpSession {
    cfg: SessionConfig,
    start: Instant,
    remote: SocketAddr,
    /// When the peer's last accepted packet came.
    heard: Option<Instant>,
    /// Another source working towards a latch.
    candidate: Option<Candidate>,
    seq: Seq,
    /// The timestamp of the next packet.
    ts: u32,
    /// The packet interval.
    ptime: Duration,
    /// nida sends (false while the peer holds, or nida holds with nothing
    /// to play).
    sending: bool,
    /// Media flows both ways: the RTP timeout applies.
    expecting: bool,
    /// In-band key detection (peers without telephone-event).
    inband: Option<crate::inband::Detector>,
    /// G.722 on the wire (a wideband phone): received frames decoded and
    /// sent ones encoded here, the rest of the session in its law.
    g722: Option<Box<G722Wire>>,
    next_send: Instant,
    marker_pending: bool,
    queue: VecDeque<Arc<Prompt>>,
    position: usize,
    playing: bool,
    dtmf_out: Option<(EventSender, u32)>,
    /// Key presses waiting for the one being sent.
    dtmf_queue: VecDeque<EventSender>,
    /// Audio frames still to send before the next key press starts.
    dtmf_pause: u8,
    dtmf_in: EventReceiver,
    rx: Option<Receiver>,
    last_rx: Instant,
    timed_out: bool,
    events: VecDeque<MediaEvent>,
    audio: Vec<i16>,
    /// Audio from the other leg of a bridge, in this stream's law, sent
    /// when no prompt plays.
    live: VecDeque<u8>,
    /// Received audio payloads kept for a bridge (see `take_received`).
    relay: Option<Vec<u8>>,
    stats: RtpStats,
    /// SRTP: the context that protects what nida sends, the one that
    /// opens what arrives, and room to open it in.
    srtp: Option<Box<(SrtpContext, SrtpContext, Vec<u8>)>>,
    /// RTCP, once enabled.
    rtcp: Option<Box<RtcpState>>,
    /// Payload octets sent (for the sender report).
    octets: u32,
}

/// One stream's RTCP (see [`crate::rtcp`]).
struct RtcpState {
    /// Where reports go (the peer's RTCP port, or its RTP port muxed).
    dest: SocketAddr,
    /// RTCP shares the RTP port.
    mux: bool,
    /// The wall clock at the session's start, for NTP times.
    ntp_base: Duration,
    next: Instant,
    /// A small generator for the interval's randomisation.
    draw: u64,
    /// The last SR from the peer: its NTP middle bits, when it came.
    last_sr: Option<(u32, Instant)>,
    /// The peer's last report about nida's stream, and its round trip.
    peer: Option<crate::rtcp::ReportBlock>,
    rtt: Option<Duration>,
    /// Expected and received at the last report (fraction lost).
    prior: (u64, u64),
    /// Packets sent at the last report.
    sent_at_last: u64,
    reports_sent: u64,
    reports_received: u64,
    bye: bool,
}

/// Whether a datagram is STUN (RFC 7983: first byte 0 to 3, RFC 5389's
/// magic cookie at bytes 4 to 8).
fn is_stun(data: &[u8]) -> bool {
    data.len() >= 20 && data[0] < 4 && data[4..8] == [0x21, 0x12, 0xa4, 0x42]
}

/// A source that is not the peer, and how far its run has come.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    from: SocketAddr,
    ssrc: u32,
    next_seq: u16,
    run: u32,
}

/// A uniform draw in [0, 1) from a xorshift generator (the report
/// interval's jitter; nothing secret).
fn next_unit(state: &mut u64) -> f64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Most bridged audio held for sending (160 ms): beyond it the oldest is
/// dropped so the delay stays short when the two clocks drift.
const LIVE_MAX: usize = 8 * FRAME;

impl RtpSession {
    /// A stream starting now; the first packet goes out at once.
    pub fn new(now: Instant, cfg: SessionConfig) -> Self {
        RtpSession {
            remote: cfg.remote,
            seq: Seq::from(cfg.initial_seq),
            start: now,
            heard: None,
            candidate: None,
            ts: cfg.initial_ts,
            ptime: PTIME,
            sending: true,
            expecting: true,
            inband: None,
            g722: None,
            next_send: now,
            marker_pending: true,
            queue: VecDeque::new(),
            position: 0,
            playing: false,
            dtmf_out: None,
            dtmf_queue: VecDeque::new(),
            dtmf_pause: 0,
            dtmf_in: EventReceiver::default(),
            rx: None,
            last_rx: now,
            timed_out: false,
            events: VecDeque::new(),
            audio: Vec::new(),
            live: VecDeque::new(),
            relay: None,
            stats: RtpStats::default(),
            srtp: None,
            rtcp: None,
            octets: 0,
            cfg,
        }
    }

    /// Makes the stream SRTP: `send` protects every packet from now on,
    /// `receive` checks and decrypts every packet that arrives (one that
    /// fails is dropped and counted as rejected).
    pub fn set_srtp(&mut self, send: SrtpContext, receive: SrtpContext) {
        self.srtp = Some(Box::new((send, receive, Vec::with_capacity(1500))));
    }

    /// Whether the stream is SRTP.
    pub fn is_srtp(&self) -> bool {
        self.srtp.is_some()
    }

    /// Sends packets of `ptime` (the peer's `a=ptime`), kept within 10 to
    /// 60 ms in 10 ms steps; from the next packet on.
    pub fn set_ptime(&mut self, ptime: Duration) {
        let ms = (ptime.as_millis() as u64).clamp(*PTIME_RANGE.start(), *PTIME_RANGE.end());
        self.ptime = Duration::from_millis(ms / 10 * 10);
    }

    /// The packet interval.
    pub fn ptime(&self) -> Duration {
        self.ptime
    }

    /// Samples per packet at 8 kHz.
    fn samples(&self) -> usize {
        self.ptime.as_millis() as usize * 8
    }

    /// Where to send, and what to expect, after an offer and answer in the
    /// dialog moved the media: the new address is the peer from now on
    /// (its packets count at once; the old one's no longer do), and a new
    /// sequence numbering is expected.
    pub fn set_remote(&mut self, now: Instant, remote: SocketAddr) {
        if remote == self.remote {
            return;
        }
        self.remote = remote;
        self.cfg.remote = remote;
        self.candidate = None;
        self.heard = None;
        self.rx = None;
        self.last_rx = now;
    }

    /// Speaks G.722 (RFC 3551 payload type 9) on the wire, or stops: the
    /// phone's frames are decoded to this session's law on arrival, and
    /// what the session sends is encoded just before it leaves (8 kHz
    /// audio in both directions, G.722's lower band; the codec state
    /// lives for the stream).
    pub fn set_g722(&mut self, on: bool) {
        self.g722 = on.then(|| Box::new(G722Wire::new()));
    }

    /// Whether the wire speaks G.722.
    pub fn g722(&self) -> bool {
        self.g722.is_some()
    }

    /// The codec agreed anew (an offer and answer in the dialog): its law
    /// and telephone-event type. In-band detection, when enabled, runs
    /// only while no telephone-event is agreed.
    pub fn set_codec(&mut self, law: Law, telephone_event: Option<u8>) {
        if law != self.cfg.law {
            self.live.clear();
        }
        self.cfg.law = law;
        self.cfg.telephone_event = telephone_event;
    }

    /// The direction agreed: whether nida sends (`false` while the peer
    /// holds: packet times pass silently) and whether RTP must keep
    /// arriving (only while media flows both ways: a held call is not
    /// hung up for silence). Turning the expectation on restarts the
    /// timeout from `now`.
    pub fn set_direction(&mut self, now: Instant, sending: bool, expecting: bool) {
        if !self.sending && sending {
            self.marker_pending = true;
        }
        self.sending = sending;
        if expecting && !self.expecting {
            self.last_rx = now;
            self.timed_out = false;
        }
        self.expecting = expecting;
    }

    /// Whether nida sends packets now.
    pub fn is_sending(&self) -> bool {
        self.sending
    }

    /// Detects keys in the received audio (Goertzel, for peers that send
    /// no RFC 4733 events) while no telephone-event type is agreed.
    pub fn set_inband_dtmf(&mut self, on: bool) {
        self.inband = on.then(crate::inband::Detector::default);
    }

    /// Sends and reads RTCP reports (RFC 3550): to `dest` (the peer's
    /// RTCP port), or on the RTP port when `mux`. `ntp_base` is the wall
    /// clock at `now` (Unix time), for the NTP times of sender reports.
    /// The first report goes out after half the minimum interval. On an
    /// SRTP stream (see [`RtpSession::set_srtp`], before or after) the
    /// reports are SRTCP both ways: sent encrypted, and only authentic
    /// ones taken.
    pub fn enable_rtcp(&mut self, now: Instant, dest: SocketAddr, mux: bool, ntp_base: Duration) {
        let base = ntp_base.saturating_sub(now.saturating_duration_since(self.start));
        let mut r = RtcpState {
            dest,
            mux,
            ntp_base: base,
            next: now,
            draw: u64::from(self.cfg.ssrc) | 1,
            last_sr: None,
            peer: None,
            rtt: None,
            prior: (0, 0),
            sent_at_last: 0,
            reports_sent: 0,
            reports_received: 0,
            bye: false,
        };
        r.next = now + crate::rtcp::interval(true, next_unit(&mut r.draw));
        self.rtcp = Some(Box::new(r));
    }

    /// Where RTCP goes now (after a move of the media, say).
    pub fn set_rtcp_dest(&mut self, dest: SocketAddr, mux: bool) {
        if let Some(r) = self.rtcp.as_mut() {
            r.dest = dest;
            r.mux = mux;
        }
    }

    fn ntp_now(&self, now: Instant) -> u64 {
        let base = self.rtcp.as_ref().map_or(Duration::ZERO, |r| r.ntp_base);
        crate::rtcp::ntp_of(base + now.saturating_duration_since(self.start))
    }

    /// The report block about the peer's stream, updating the counts the
    /// next one's fraction lost starts from.
    fn report_block(&mut self, now: Instant) -> Option<crate::rtcp::ReportBlock> {
        let rx = self.rx.as_ref()?;
        let expected = (u64::from(rx.cycles) + u64::from(rx.max_seq) + 1)
            .saturating_sub(u64::from(rx.base_seq));
        let received = rx.received;
        let (highest, ssrc, jitter) = (rx.cycles + u32::from(rx.max_seq), rx.ssrc, rx.jitter);
        let r = self.rtcp.as_mut()?;
        let exp_int = expected.saturating_sub(r.prior.0);
        let rec_int = received.saturating_sub(r.prior.1);
        let lost_int = exp_int.saturating_sub(rec_int);
        r.prior = (expected, received);
        let fraction_lost = (lost_int << 8)
            .checked_div(exp_int)
            .map_or(0, |f| f.min(255) as u8);
        let (lsr, dlsr) = match r.last_sr {
            Some((mid, at)) => {
                let held = now.saturating_duration_since(at);
                (mid, (held.as_secs_f64() * 65_536.0) as u32)
            }
            None => (0, 0),
        };
        Some(crate::rtcp::ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: expected.saturating_sub(received).min(0x7f_ffff) as i32,
            highest_seq: highest,
            jitter: jitter as u32,
            lsr,
            dlsr,
        })
    }

    /// The RTCP report due at `now`, written into `buf`; its length and
    /// destination. Call until `None`.
    pub fn poll_rtcp(&mut self, now: Instant, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
        if self.rtcp.as_ref().is_none_or(|r| now < r.next || r.bye) {
            return None;
        }
        let block = self.report_block(now);
        let ntp = self.ntp_now(now);
        let ahead = self.next_send.saturating_duration_since(now);
        let rtp_ts = self.ts.wrapping_sub((ahead.as_secs_f64() * 8000.0) as u32);
        let sent = self.stats.sent;
        let octets = self.octets;
        let ssrc = self.cfg.ssrc;
        let r = self.rtcp.as_mut()?;
        let report = crate::rtcp::Report {
            ssrc,
            ntp,
            rtp_ts,
            sent: (sent > r.sent_at_last).then_some((sent as u32, octets)),
            block,
        };
        r.sent_at_last = sent;
        r.next = now + crate::rtcp::interval(false, next_unit(&mut r.draw));
        let cname = format!("nida-{ssrc:08x}");
        let n = crate::rtcp::write(&report, &cname, false, buf)?;
        r.reports_sent += 1;
        let dest = if r.mux { self.remote } else { r.dest };
        Some((self.seal_rtcp(buf, n)?, dest))
    }

    /// An RTCP compound of `n` bytes in `buf` made SRTCP on an SRTP
    /// stream; its length.
    fn seal_rtcp(&mut self, buf: &mut [u8], n: usize) -> Option<usize> {
        match self.srtp.as_mut() {
            Some(srtp) => srtp.0.protect_rtcp(buf, n),
            None => Some(n),
        }
    }

    /// The last report, with RTCP BYE (RFC 3550 6.6), for a leg that
    /// ends; none once sent, or without RTCP. Nothing more goes out after
    /// it.
    pub fn rtcp_bye(&mut self, now: Instant, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
        if self.rtcp.as_ref().is_none_or(|r| r.bye) {
            return None;
        }
        let block = self.report_block(now);
        let ntp = self.ntp_now(now);
        let (sent, octets, ssrc, ts) = (self.stats.sent, self.octets, self.cfg.ssrc, self.ts);
        let r = self.rtcp.as_mut()?;
        r.bye = true;
        let report = crate::rtcp::Report {
            ssrc,
            ntp,
            rtp_ts: ts,
            sent: (sent > r.sent_at_last).then_some((sent as u32, octets)),
            block,
        };
        let n = crate::rtcp::write(&report, &format!("nida-{ssrc:08x}"), true, buf)?;
        r.reports_sent += 1;
        let dest = if r.mux { self.remote } else { r.dest };
        Some((self.seal_rtcp(buf, n)?, dest))
    }

    /// An RTCP datagram: taken only from the peer's address (its RTP
    /// source, or the port its SDP named for RTCP); reports about nida's
    /// stream give the peer's view and the round-trip time. On an SRTP
    /// stream only authentic SRTCP is taken.
    pub fn handle_rtcp(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let Some(r) = self.rtcp.as_ref().filter(|_| !is_stun(data)) else {
            return;
        };
        if from != self.remote && from != r.dest {
            self.stats.foreign += 1;
            return;
        }
        let Some(mut srtp) = self.srtp.take() else {
            self.handle_plain_rtcp(now, data);
            return;
        };
        let (_, receive, plain) = &mut *srtp;
        plain.clear();
        plain.extend_from_slice(data);
        match receive.unprotect_rtcp(plain) {
            Ok(n) => self.handle_plain_rtcp(now, &plain[..n]),
            Err(_) => self.stats.rejected += 1,
        }
        self.srtp = Some(srtp);
    }

    /// A compound from the peer, in clear.
    fn handle_plain_rtcp(&mut self, now: Instant, data: &[u8]) {
        let ntp = self.ntp_now(now);
        let ssrc = self.cfg.ssrc;
        let peer_ssrc = self.rx.as_ref().map(|rx| rx.ssrc);
        let Some(r) = self.rtcp.as_mut() else {
            return;
        };
        let Ok(packets) = crate::rtcp::parse(data) else {
            self.stats.rejected += 1;
            return;
        };
        r.reports_received += 1;
        for p in packets {
            let reports = match p {
                crate::rtcp::Packet::Sender {
                    ssrc: from_ssrc,
                    ntp: their,
                    reports,
                    ..
                } => {
                    if peer_ssrc.is_none_or(|s| s == from_ssrc) {
                        r.last_sr = Some((crate::rtcp::middle(their), now));
                    }
                    reports
                }
                crate::rtcp::Packet::Receiver { reports, .. } => reports,
                crate::rtcp::Packet::Bye(who) => {
                    if peer_ssrc.is_none_or(|s| who.contains(&s)) {
                        self.events.push_back(MediaEvent::PeerLeft);
                    }
                    continue;
                }
                crate::rtcp::Packet::Other(_) => continue,
            };
            for b in reports.into_iter().filter(|b| b.ssrc == ssrc) {
                if let Some(rtt) = crate::rtcp::round_trip(ntp, &b) {
                    if r.rtt.replace(rtt).is_none() {
                        self.events.push_back(MediaEvent::RoundTrip(rtt));
                    }
                }
                r.peer = Some(b);
            }
        }
    }

    /// The leg's quality from both sides' figures (see
    /// [`crate::rtcp::Quality`]).
    pub fn quality(&self) -> crate::rtcp::Quality {
        let st = self.stats();
        let expected = st.received + st.lost;
        let loss = if expected == 0 {
            0.0
        } else {
            st.lost as f64 / expected as f64
        };
        let peer = self.rtcp.as_ref().and_then(|r| r.peer);
        let rtt = self.rtcp.as_ref().and_then(|r| r.rtt);
        let peer_loss = peer.map(|b| f64::from(b.fraction_lost) / 256.0);
        let jitter_ms = st.jitter / 8.0;
        let one_way = rtt.map_or(0.0, |d| d.as_secs_f64() * 500.0)
            + 2.0 * jitter_ms
            + self.ptime.as_secs_f64() * 1000.0;
        let (r_factor, mos) = crate::rtcp::e_model(loss.max(peer_loss.unwrap_or(0.0)), one_way);
        crate::rtcp::Quality {
            lost: st.lost,
            loss,
            jitter_ms,
            peer_loss,
            peer_jitter_ms: peer.map(|b| f64::from(b.jitter) / 8.0),
            rtt,
            r_factor,
            mos,
        }
    }

    /// RTCP reports sent and received so far.
    pub fn rtcp_counts(&self) -> (u64, u64) {
        self.rtcp
            .as_ref()
            .map_or((0, 0), |r| (r.reports_sent, r.reports_received))
    }

    /// Appends a prompt to the play queue.
    pub fn play(&mut self, prompt: Arc<Prompt>) {
        self.queue.push_back(prompt);
        self.playing = true;
    }

    /// Empties the play queue (barge-in).
    pub fn stop_playback(&mut self) {
        self.queue.clear();
        self.position = 0;
        self.playing = false;
    }

    /// Whether prompts are queued or playing.
    pub fn is_playing(&self) -> bool {
        self.playing
    }

    /// Queues a key press, sent as RFC 4733 events (needs a telephone-event
    /// type) after the ones before it, with three frames of audio between.
    /// Returns false when the digit or the payload type is missing.
    pub fn send_dtmf(&mut self, digit: char, length: Duration) -> bool {
        let samples = (length.as_millis() as u64 * 8).min(u16::MAX as u64) as u16;
        match (
            self.cfg.telephone_event,
            EventSender::new(digit, samples, self.samples() as u16),
        ) {
            (Some(_), Some(s)) => {
                self.dtmf_queue.push_back(s);
                true
            }
            _ => false,
        }
    }

    /// Where packets go now.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Counters.
    pub fn stats(&self) -> RtpStats {
        let mut s = self.stats;
        if let Some(rx) = &self.rx {
            let expected =
                (rx.cycles as u64 + rx.max_seq as u64 + 1).saturating_sub(rx.base_seq as u64);
            s.lost = expected.saturating_sub(rx.received);
            s.jitter = rx.jitter;
        }
        s
    }

    /// The law of this stream.
    pub fn law(&self) -> Law {
        self.cfg.law
    }

    /// Starts (or stops) keeping received audio payloads for a bridge.
    pub fn set_relay(&mut self, on: bool) {
        self.relay = on.then(Vec::new);
        if !on {
            self.live.clear();
        }
    }

    /// Received audio payloads (this stream's law) since the last call
    /// (at most the newest 160 ms: what nobody takes does not pile up).
    pub fn take_received(&mut self) -> Vec<u8> {
        self.relay.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The G.722 frames received as they came since the last call (empty
    /// unless the wire is G.722 and the session relays).
    pub fn take_received_g722(&mut self) -> Vec<u8> {
        self.g722
            .as_mut()
            .map(|g| std::mem::take(&mut g.received))
            .unwrap_or_default()
    }

    /// Queues G.722 frames from another G.722 phone, sent as they are
    /// (a payload relay) while no prompt plays; false when this wire is
    /// not G.722 (then [`RtpSession::push_audio`] is the way).
    pub fn push_g722(&mut self, frames: &[u8]) -> bool {
        let Some(g) = self.g722.as_mut() else {
            return false;
        };
        g.relayed.extend(frames);
        let excess = g.relayed.len().saturating_sub(LIVE_MAX);
        g.relayed.drain(..excess);
        true
    }

    /// Queues audio from the other leg of a bridge: copied as it is when
    /// the laws agree, transcoded (PCMU and PCMA) when they differ.
    pub fn push_audio(&mut self, law: Law, payload: &[u8]) {
        if law == self.cfg.law {
            self.live.extend(payload);
        } else {
            self.live.extend(self.cfg.law.encode(&law.decode(payload)));
        }
        let excess = self.live.len().saturating_sub(LIVE_MAX);
        self.live.drain(..excess);
    }

    /// Decoded received audio, when `keep_audio` is set.
    pub fn received_audio(&self) -> &[i16] {
        &self.audio
    }

    /// Feeds one datagram that arrived on the RTP port.
    pub fn handle_packet(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        // STUN binding requests are media keep-alives (RFC 6263 4.6;
        // linphone sends them every few seconds): not RTP, not malformed,
        // and never answered (nida is not an ICE agent on this path).
        if is_stun(data) {
            return;
        }
        // RTCP on the RTP port is taken whether or not mux was agreed:
        // some phones (baresip) mux anyway, and RTP payload types never
        // fall in RTCP's range (RFC 5761 4).
        if self.rtcp.is_some() && crate::rtcp::is_rtcp(data) {
            self.handle_rtcp(now, from, data);
            return;
        }
        let Some(mut srtp) = self.srtp.take() else {
            self.handle_rtp(now, from, data);
            return;
        };
        let (_, receive, plain) = &mut *srtp;
        plain.clear();
        plain.extend_from_slice(data);
        match receive.unprotect(plain) {
            Ok(n) => self.handle_rtp(now, from, &plain[..n]),
            Err(_) => self.stats.rejected += 1,
        }
        self.srtp = Some(srtp);
    }

    fn handle_rtp(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let Ok(pkt) = RtpReader::new(data) else {
            self.stats.rejected += 1;
            return;
        };
        let pt = pkt.payload_type();
        let is_event = Some(pt) == self.cfg.telephone_event;
        let wire_pt = if self.g722.is_some() {
            G722_PT
        } else {
            self.cfg.law.payload_type()
        };
        if pt != wire_pt && !is_event {
            self.stats.rejected += 1;
            return;
        }
        if from != self.remote && !self.latch(now, from, &pkt) {
            self.stats.foreign += 1;
            return;
        }
        self.heard = Some(now);
        self.last_rx = now;
        let ssrc = pkt.ssrc();
        if !self.account(now, ssrc, u16::from(pkt.sequence_number()), pkt.timestamp()) {
            self.stats.rejected += 1;
            return;
        }
        self.stats.received += 1;
        // A G.722 frame goes on as a frame of the session's law.
        let transcoded;
        let payload: &[u8] = match self.g722.as_mut() {
            Some(g) if !is_event => {
                if self.relay.is_some() {
                    g.received.extend_from_slice(pkt.payload());
                    let excess = g.received.len().saturating_sub(LIVE_MAX);
                    g.received.drain(..excess);
                }
                transcoded = self.cfg.law.encode(&g.decode(pkt.payload()));
                &transcoded
            }
            _ => pkt.payload(),
        };
        if is_event {
            if let Ok(Some(d)) = self.dtmf_in.handle(pkt.timestamp(), pkt.payload()) {
                self.events.push_back(MediaEvent::Dtmf(d));
            }
        } else {
            if self.cfg.keep_audio {
                self.audio.extend(self.cfg.law.decode(payload));
            }
            if self.cfg.telephone_event.is_none() {
                if let Some(d) = self.inband.as_mut() {
                    if let Some(key) = d.push(&self.cfg.law.decode(payload)) {
                        self.events.push_back(MediaEvent::Dtmf(key));
                    }
                }
            }
            if let Some(r) = self.relay.as_mut() {
                r.extend_from_slice(payload);
                // Nobody took it for a while: keep the newest 160 ms.
                let excess = r.len().saturating_sub(LIVE_MAX);
                r.drain(..excess);
            }
        }
    }

    /// A packet from a source that is not the peer: whether it completes
    /// that source's run, so that it becomes the peer (see the module doc).
    fn latch(&mut self, now: Instant, from: SocketAddr, pkt: &RtpReader) -> bool {
        let silent = self.heard.is_none_or(|t| now.duration_since(t) >= SILENT);
        if !silent {
            self.candidate = None;
            return false;
        }
        let (ssrc, seq) = (pkt.ssrc(), u16::from(pkt.sequence_number()));
        let c = match self.candidate {
            Some(c) if c.from == from && c.ssrc == ssrc && c.next_seq == seq => Candidate {
                next_seq: seq.wrapping_add(1),
                run: c.run + 1,
                ..c
            },
            _ => Candidate {
                from,
                ssrc,
                next_seq: seq.wrapping_add(1),
                run: 1,
            },
        };
        if c.run < LATCH_RUN {
            self.candidate = Some(c);
            return false;
        }
        self.candidate = None;
        self.remote = from;
        // Its RTCP comes from behind the same NAT, next to its RTP.
        if let Some(r) = self.rtcp.as_mut().filter(|r| !r.mux) {
            r.dest = SocketAddr::new(from.ip(), from.port().wrapping_add(1));
        }
        // The new source numbers its packets afresh.
        self.rx = None;
        self.events.push_back(MediaEvent::Latched(from));
        true
    }

    /// Sequence accounting (RFC 3550 A.1) and jitter (A.8); false for a
    /// packet to drop: a jump in sequence numbers too large to be loss,
    /// unless the next packet follows it (the source restarted its
    /// numbering), so one stray packet cannot count thousands as lost.
    fn account(&mut self, now: Instant, ssrc: u32, seq: u16, ts: u32) -> bool {
        let arrival = now.duration_since(self.start).as_secs_f64() * 8000.0;
        let fresh = |seq: u16| Receiver {
            ssrc,
            base_seq: seq as u32,
            max_seq: seq,
            cycles: 0,
            received: 0,
            bad_seq: None,
            transit: None,
            jitter: 0.0,
        };
        let rx = self.rx.get_or_insert_with(|| fresh(seq));
        let delta = seq.wrapping_sub(rx.max_seq);
        if delta < MAX_DROPOUT {
            if seq < rx.max_seq {
                rx.cycles += 1 << 16;
            }
            rx.max_seq = seq;
            rx.bad_seq = None;
        } else if delta <= u16::MAX - MAX_MISORDER {
            if rx.bad_seq != Some(seq) {
                rx.bad_seq = Some(seq.wrapping_add(1));
                return false;
            }
            // Two packets in a row after the jump: a new numbering.
            let jitter = rx.jitter;
            *rx = fresh(seq);
            rx.jitter = jitter;
        }
        rx.received += 1;
        let transit = arrival - ts as f64;
        if let Some(prev) = rx.transit {
            let mut d = transit - prev;
            // Timestamps wrap at 2^32.
            if d.abs() > 2f64.powi(31) {
                d -= d.signum() * 2f64.powi(32);
            }
            rx.jitter += (d.abs() - rx.jitter) / 16.0;
        }
        rx.transit = Some(transit);
        true
    }

    /// Checks the inactivity timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.expecting && !self.timed_out && now >= self.last_rx + self.cfg.rtp_timeout {
            self.timed_out = true;
            self.events.push_back(MediaEvent::Timeout);
        }
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// The earlier of the next packet time and the inactivity deadline.
    pub fn poll_timeout(&self) -> Instant {
        let media = if self.timed_out || !self.expecting {
            self.next_send
        } else {
            self.next_send.min(self.last_rx + self.cfg.rtp_timeout)
        };
        match &self.rtcp {
            Some(r) => media.min(r.next),
            None => media,
        }
    }

    /// The next packet due at `now`, written into `buf` (at least 1500
    /// bytes). Call until `None`; an [`Outgoing`] of length 0 is a packet
    /// time that passed while nida must not send.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Outgoing> {
        if now < self.next_send {
            return None;
        }
        let samples = self.samples();
        if now - self.next_send > MAX_LAG {
            // The shell stalled: skip the missed packets, keeping the
            // timestamp in step with real time.
            let behind = (now - self.next_send).as_micros() / self.ptime.as_micros();
            self.ts = self
                .ts
                .wrapping_add((behind as u32).wrapping_mul(samples as u32));
            self.next_send += self.ptime * behind as u32;
            self.marker_pending = true;
        }
        let ts = self.ts;
        self.ts = ts.wrapping_add(samples as u32);
        self.next_send += self.ptime;
        let mut payload = [0u8; MAX_SAMPLES];
        if !self.sending {
            // The prompt and the bridged audio go on as if heard.
            self.fill_audio(&mut payload[..samples]);
            return Some(Outgoing {
                len: 0,
                dest: self.remote,
                samples,
            });
        }
        if self.dtmf_out.is_none() {
            if self.dtmf_pause > 0 {
                self.dtmf_pause -= 1;
            } else if let Some(next) = self.dtmf_queue.pop_front() {
                self.dtmf_out = Some((next, ts));
            }
        }
        let (pt, marker, len, ts) = match self.dtmf_out.as_mut() {
            Some((sender, event_ts)) => match sender.next_payload() {
                Some((p, first)) => {
                    payload[..4].copy_from_slice(&p);
                    let pt = self.cfg.telephone_event.unwrap_or(101);
                    (pt, first, 4, *event_ts)
                }
                None => {
                    self.dtmf_out = None;
                    self.dtmf_pause = 2;
                    let pt = self.fill_audio(&mut payload[..samples]);
                    (pt, false, samples, ts)
                }
            },
            None => (self.fill_audio(&mut payload[..samples]), false, samples, ts),
        };
        let marker = marker || std::mem::take(&mut self.marker_pending);
        // A G.722 phone gets the frame encoded for it, or relayed as
        // another G.722 phone sent it while no prompt plays.
        let audio_pt = self.cfg.law.payload_type();
        let prompt = !self.queue.is_empty() || self.playing;
        let pt = match self.g722.as_mut() {
            Some(g) if pt == audio_pt && !prompt && g.relayed.len() >= len => {
                for (o, b) in payload[..len].iter_mut().zip(g.relayed.drain(..len)) {
                    *o = b;
                }
                G722_PT
            }
            Some(g) if pt == audio_pt => {
                let frame = g.encode(&self.cfg.law.decode(&payload[..len]));
                let n = frame.len().min(payload.len());
                payload[..n].copy_from_slice(&frame[..n]);
                G722_PT
            }
            _ => pt,
        };
        let n = RtpPacketBuilder::new()
            .payload_type(pt)
            .marked(marker)
            .sequence(self.seq)
            .timestamp(ts)
            .ssrc(self.cfg.ssrc)
            .payload(&payload[..len])
            .build_into(buf)
            .ok()?;
        let n = match self.srtp.as_mut() {
            Some(srtp) => srtp.0.protect(buf, n)?,
            None => n,
        };
        self.seq = self.seq.next();
        self.stats.sent += 1;
        self.octets = self.octets.wrapping_add(len as u32);
        Some(Outgoing {
            len: n,
            dest: self.remote,
            samples,
        })
    }

    /// Fills one frame from the prompt queue or with silence; returns the
    /// audio payload type.
    fn fill_audio(&mut self, out: &mut [u8]) -> u8 {
        let law = self.cfg.law;
        let want = out.len();
        let mut filled = 0;
        while filled < want {
            let Some(p) = self.queue.front() else { break };
            let data = p.encoded(law);
            let take = (data.len() - self.position).min(want - filled);
            out[filled..filled + take].copy_from_slice(&data[self.position..self.position + take]);
            filled += take;
            self.position += take;
            if self.position >= data.len() {
                self.queue.pop_front();
                self.position = 0;
            }
        }
        if self.queue.is_empty() {
            let take = self.live.len().min(want - filled);
            for (o, b) in out[filled..filled + take]
                .iter_mut()
                .zip(self.live.drain(..take))
            {
                *o = b;
            }
            filled += take;
        }
        out[filled..].fill(law.silence());
        if self.playing && self.queue.is_empty() {
            self.playing = false;
            self.events.push_back(MediaEvent::PlaybackFinished);
        }
        law.payload_type()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::{digit_of, EventPayload};

    fn cfg(remote: &str) -> SessionConfig {
        SessionConfig {
            law: Law::Mu,
            telephone_event: Some(101),
            ssrc: 0x1234_5678,
            initial_seq: 65530,
            initial_ts: u32::MAX - 200,
            remote: remote.parse().unwrap(),
            rtp_timeout: Duration::from_secs(10),
            keep_audio: true,
        }
    }

    fn drain(s: &mut RtpSession, now: Instant) -> Vec<Vec<u8>> {
        let mut buf = [0u8; 1500];
        std::iter::from_fn(|| {
            s.poll_transmit(now, &mut buf)
                .map(|o| buf[..o.len].to_vec())
        })
        .collect()
    }

    fn tone_pcm(n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| ((i as f64 * 0.3).sin() * 8000.0) as i16)
            .collect()
    }

    fn tone(n: usize) -> Arc<Prompt> {
        Arc::new(Prompt::from_pcm("tone", tone_pcm(n)))
    }

    #[test]
    fn two_g722_phones_are_bridged_by_a_payload_relay() {
        let t0 = Instant::now();
        let phone_addr: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        // The phone on leg 1, nida's two legs, all G.722.
        let mut phone = RtpSession::new(t0, cfg("10.0.0.1:5000"));
        phone.set_g722(true);
        let mut leg1 = RtpSession::new(t0, cfg("10.0.0.9:4000"));
        leg1.set_g722(true);
        leg1.set_relay(true);
        let mut leg2 = RtpSession::new(t0, cfg("10.0.0.8:4000"));
        leg2.set_g722(true);
        let (mut sent, mut relayed) = (Vec::new(), Vec::new());
        for i in 0..10 {
            let now = t0 + Duration::from_millis(20 * i);
            phone.push_audio(Law::Mu, &Law::Mu.encode(&tone_pcm(160)));
            for pkt in drain(&mut phone, now) {
                sent.extend_from_slice(RtpReader::new(&pkt).unwrap().payload());
                leg1.handle_packet(now, phone_addr, &pkt);
            }
            let frames = leg1.take_received_g722();
            let _ = leg1.take_received();
            assert!(leg2.push_g722(&frames));
            for pkt in drain(&mut leg2, now) {
                let r = RtpReader::new(&pkt).unwrap();
                assert_eq!(r.payload_type(), G722_PT);
                relayed.extend_from_slice(r.payload());
            }
        }
        // The bytes leg 2 sends are the phone's own, not re-encoded.
        assert!(relayed.len() >= 1280, "{}", relayed.len());
        let tail = &relayed[relayed.len() - 640..];
        assert!(
            sent.windows(640).any(|w| w == tail),
            "leg 2 sends the phone's frames as they are"
        );
        // A session that is not G.722 takes none.
        let mut plain = RtpSession::new(t0, cfg("10.0.0.7:4000"));
        assert!(!plain.push_g722(&sent[..160]));
    }

    #[test]
    fn a_g722_phone_is_heard_and_hears_through_the_sessions_law() {
        let t0 = Instant::now();
        let phone_addr: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        // nida's session (G.722 on the wire) and the phone's (the same).
        let mut nida = RtpSession::new(t0, cfg("10.0.0.9:4000"));
        nida.set_g722(true);
        nida.set_relay(true);
        let mut phone = RtpSession::new(t0, cfg("10.0.0.1:5000"));
        phone.set_g722(true);
        // nida plays a prompt: the phone gets payload type 9, decodes it.
        nida.play(tone(1600));
        let mut heard = Vec::new();
        for i in 0..10 {
            let now = t0 + Duration::from_millis(20 * i);
            for pkt in drain(&mut nida, now) {
                let r = RtpReader::new(&pkt).unwrap();
                assert_eq!(r.payload_type(), G722_PT);
                assert_eq!(r.payload().len(), 160, "160 bytes a 20 ms frame");
                phone.handle_packet(now, "10.0.0.1:5000".parse().unwrap(), &pkt);
            }
            // The phone speaks the same tone back.
            phone.push_audio(Law::Mu, &Law::Mu.encode(&tone_pcm(160)));
            for pkt in drain(&mut phone, now) {
                nida.handle_packet(now, phone_addr, &pkt);
            }
            heard.extend(nida.take_received());
        }
        let got = phone.received_audio();
        assert!(got.len() >= 1280, "{}", got.len());
        // The tone survives both codecs (its level within a few dB).
        let rms = |p: &[i16]| {
            (p.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / p.len() as f64).sqrt()
        };
        let want = rms(&tone_pcm(1600));
        let tail = &got[got.len() - 800..];
        assert!(
            (rms(tail) / want - 1.0).abs() < 0.3,
            "{} vs {want}",
            rms(tail)
        );
        // What nida relays from the phone is in its own law: PCMU frames.
        assert!(heard.len() >= 1280, "{}", heard.len());
        assert!(rms(&Law::Mu.decode(&heard[heard.len() - 800..])) > want * 0.5);
    }

    #[test]
    fn stun_keep_alives_are_neither_media_nor_malformed() {
        let t0 = Instant::now();
        let mut s = RtpSession::new(t0, cfg("127.0.0.1:4000"));
        s.enable_rtcp(t0, "127.0.0.1:4001".parse().unwrap(), false, Duration::ZERO);
        // A binding request without attributes, as linphone sends.
        let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        stun.extend([7u8; 12]);
        s.handle_packet(t0, "127.0.0.1:4000".parse().unwrap(), &stun);
        s.handle_rtcp(t0, "127.0.0.1:4001".parse().unwrap(), &stun);
        let st = s.stats();
        assert_eq!((st.received, st.rejected, st.foreign), (0, 0, 0));
        // Without the cookie it is no STUN: malformed.
        stun[4] = 0;
        s.handle_packet(t0, "127.0.0.1:4000".parse().unwrap(), &stun);
        assert_eq!(s.stats().rejected, 1);
    }

    #[test]
    fn an_srtp_stream_carries_audio_and_key_presses_only_to_the_right_key() {
        use crate::srtp::Suite;
        let t0 = Instant::now();
        let suite = Suite::AesCm128HmacSha1_80;
        let (ka, kb) = ([1u8; 30], [2u8; 30]);
        let mut a = RtpSession::new(t0, cfg("127.0.0.1:4000"));
        a.set_srtp(SrtpContext::new(suite, &ka), SrtpContext::new(suite, &kb));
        let mut b = RtpSession::new(t0, cfg("127.0.0.1:4002"));
        b.set_srtp(SrtpContext::new(suite, &kb), SrtpContext::new(suite, &ka));
        let mut plain = RtpSession::new(t0, cfg("127.0.0.1:4002"));
        a.play(tone(800));
        a.send_dtmf('7', Duration::from_millis(100));
        let from: SocketAddr = "127.0.0.1:4002".parse().unwrap();
        for i in 0..20u32 {
            let now = t0 + PTIME * i;
            for p in drain(&mut a, now) {
                assert_eq!(p.len(), 12 + if p.len() > 30 { 160 } else { 4 } + 10);
                b.handle_packet(now, from, &p);
                plain.handle_packet(now, from, &p);
            }
        }
        assert_eq!(
            &b.received_audio()[..800],
            &Law::Mu.decode(&Law::Mu.encode(&tone_pcm(800)))[..]
        );
        assert_eq!(b.poll_event(), Some(MediaEvent::Dtmf('7')));
        assert_eq!(b.stats().rejected, 0);
        // Without the key the payload is noise and no key press is seen.
        assert_ne!(&plain.received_audio()[..800], &b.received_audio()[..800]);
        assert_eq!(plain.poll_event(), None);
        // An SRTP session drops plain RTP.
        let mut c = RtpSession::new(t0, cfg("127.0.0.1:4000"));
        c.play(tone(160));
        let mut b2 = RtpSession::new(t0, cfg("127.0.0.1:4002"));
        b2.set_srtp(SrtpContext::new(suite, &kb), SrtpContext::new(suite, &ka));
        for p in drain(&mut c, t0) {
            b2.handle_packet(t0, from, &p);
        }
        assert_eq!((b2.stats().received, b2.stats().rejected), (0, 1));
    }

    #[test]
    fn bridged_audio_passes_through_or_is_transcoded() {
        let t0 = Instant::now();
        // Leg A speaks PCMU, leg B PCMA.
        let mut a = RtpSession::new(t0, cfg("127.0.0.1:4000"));
        let mut b = RtpSession::new(
            t0,
            SessionConfig {
                law: Law::A,
                ..cfg("127.0.0.1:4002")
            },
        );
        let mut c = RtpSession::new(t0, cfg("127.0.0.1:4004"));
        a.set_relay(true);
        let pcm: Vec<i16> = (0..FRAME)
            .map(|i| ((i as f64 * 0.2).sin() * 6000.0) as i16)
            .collect();
        let ulaw = Law::Mu.encode(&pcm);
        let pkt = RtpPacketBuilder::new()
            .payload_type(0)
            .sequence(Seq::from(1))
            .timestamp(0)
            .ssrc(9)
            .payload(&ulaw)
            .build()
            .unwrap();
        a.handle_packet(t0, "127.0.0.1:4000".parse().unwrap(), &pkt);
        let got = a.take_received();
        assert_eq!(got, ulaw, "the payload as received");
        assert!(a.take_received().is_empty(), "taken once");
        // Same law: the bytes go out unchanged.
        c.push_audio(Law::Mu, &got);
        let out = drain(&mut c, t0);
        assert_eq!(&out[0][12..], &ulaw[..]);
        // Other law: transcoded, the same sound within G.711's step.
        b.push_audio(Law::Mu, &got);
        let out = drain(&mut b, t0);
        assert_eq!(out[0][1] & 0x7f, 8, "PCMA");
        let back = Law::A.decode(&out[0][12..]);
        let orig = Law::Mu.decode(&ulaw);
        for (x, y) in back.iter().zip(&orig) {
            assert!((*x as i32 - *y as i32).abs() <= (y.abs() as i32 / 16).max(16));
        }
        // Nothing more to send: silence.
        let out = drain(&mut b, t0 + PTIME);
        assert!(out[0][12..].iter().all(|x| *x == Law::A.silence()));
    }

    #[test]
    fn paced_packets_with_wrapping_seq_and_timestamps() {
        let t0 = Instant::now();
        let mut s = RtpSession::new(t0, cfg("127.0.0.1:4000"));
        let prompt = tone(400);
        s.play(prompt.clone());
        let mut pkts = Vec::new();
        for i in 0..10u32 {
            let now = t0 + PTIME * i;
            assert_eq!(s.poll_timeout(), now, "one packet every 20 ms");
            let mut out = drain(&mut s, now);
            assert_eq!(out.len(), 1);
            pkts.append(&mut out);
        }
        let readers: Vec<RtpReader<'_>> = pkts.iter().map(|p| RtpReader::new(p).unwrap()).collect();
        for (i, r) in readers.iter().enumerate() {
            assert_eq!(r.ssrc(), 0x1234_5678);
            assert_eq!(r.payload_type(), 0);
            assert_eq!(
                u16::from(r.sequence_number()),
                65530u16.wrapping_add(i as u16)
            );
            assert_eq!(r.timestamp(), (u32::MAX - 200).wrapping_add(160 * i as u32));
            assert_eq!(r.mark(), i == 0, "marker on the first packet only");
            assert_eq!(r.payload().len(), 160);
        }
        // The prompt's 400 samples, then silence.
        let audio: Vec<u8> = readers.iter().flat_map(|r| r.payload().to_vec()).collect();
        assert_eq!(&audio[..400], prompt.encoded(Law::Mu));
        assert!(audio[400..].iter().all(|b| *b == 0xFF));
        assert_eq!(s.poll_event(), Some(MediaEvent::PlaybackFinished));
    }

    #[test]
    fn stall_skips_ahead_instead_of_bursting() {
        let t0 = Instant::now();
        let mut s = RtpSession::new(t0, cfg("127.0.0.1:4000"));
        drain(&mut s, t0);
        let late = t0 + Duration::from_secs(1);
        let out = drain(&mut s, late);
        assert_eq!(out.len(), 1);
        let r = RtpReader::new(&out[0]).unwrap();
        assert!(r.mark(), "a gap is marked");
        assert_eq!(
            r.timestamp(),
            (u32::MAX - 200).wrapping_add(8000),
            "timestamp follows real time"
        );
    }

    fn audio(seq: u16, ssrc: u32) -> Vec<u8> {
        RtpPacketBuilder::new()
            .payload_type(0)
            .sequence(Seq::from(seq))
            .timestamp(u32::from(seq) * 160)
            .ssrc(ssrc)
            .payload(&[0xFF; 160])
            .build()
            .unwrap()
    }

    #[test]
    fn a_caller_behind_nat_is_latched_after_a_run_of_its_packets() {
        let t0 = Instant::now();
        // The SDP names a private address; packets come from the NAT's.
        let mut s = RtpSession::new(t0, cfg("10.0.0.1:4000"));
        let real: SocketAddr = "203.0.113.5:31000".parse().unwrap();
        for i in 0..LATCH_RUN as u16 - 1 {
            s.handle_packet(t0, real, &audio(100 + i, 9));
        }
        assert_eq!(s.poll_event(), None);
        assert_eq!(s.stats().received, 0);
        let mut buf = [0u8; 200];
        assert_eq!(
            s.poll_transmit(t0, &mut buf).unwrap().dest,
            "10.0.0.1:4000".parse().unwrap()
        );
        s.handle_packet(t0, real, &audio(100 + LATCH_RUN as u16 - 1, 9));
        assert_eq!(s.poll_event(), Some(MediaEvent::Latched(real)));
        assert_eq!(s.stats().received, 1);
        let later = t0 + PTIME;
        assert_eq!(s.poll_transmit(later, &mut buf).unwrap().dest, real);
        s.handle_packet(t0, real, b"not rtp");
        assert_eq!(s.stats().rejected, 1);
    }

    #[test]
    fn stray_packets_and_a_run_against_a_talking_peer_never_latch() {
        let t0 = Instant::now();
        let peer: SocketAddr = "192.0.2.10:4000".parse().unwrap();
        let attacker: SocketAddr = "198.51.100.1:5000".parse().unwrap();
        let mut s = RtpSession::new(t0, cfg(&peer.to_string()));
        // Sprayed before the peer speaks: out of sequence, changing SSRC.
        for i in 0..50u16 {
            s.handle_packet(t0, attacker, &audio(i * 7, u32::from(i % 3)));
        }
        assert_eq!(s.poll_event(), None);
        assert_eq!(s.stats().foreign, 50);
        // The SDP's address is taken at once.
        s.handle_packet(t0, peer, &audio(1, 77));
        assert_eq!(s.stats().received, 1);
        // A perfect run from elsewhere while the peer keeps talking.
        for i in 0..3 * LATCH_RUN as u16 {
            let now = t0 + PTIME * u32::from(i);
            s.handle_packet(now, peer, &audio(2 + i, 77));
            s.handle_packet(now, attacker, &audio(500 + i, 5));
        }
        assert_eq!(s.poll_event(), None);
        let mut buf = [0u8; 200];
        assert_eq!(s.poll_transmit(t0, &mut buf).unwrap().dest, peer);
        // Once the peer has been silent, the same run moves the media
        // (a NAT that rebound).
        let quiet = t0 + PTIME * 3 * LATCH_RUN + SILENT;
        for i in 0..LATCH_RUN as u16 {
            s.handle_packet(quiet, attacker, &audio(900 + i, 5));
        }
        assert_eq!(s.poll_event(), Some(MediaEvent::Latched(attacker)));
    }

    #[test]
    fn received_events_count_once_and_loss_is_counted_across_wrap() {
        let t0 = Instant::now();
        let mut s = RtpSession::new(t0, cfg("127.0.0.1:4000"));
        let from: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let mut send = |seq: u16, pt: u8, ts: u32, payload: &[u8]| {
            let p = RtpPacketBuilder::new()
                .payload_type(pt)
                .sequence(Seq::from(seq))
                .timestamp(ts)
                .ssrc(7)
                .payload(payload)
                .build()
                .unwrap();
            s.handle_packet(t0, from, &p);
        };
        let ev = |end: bool, d: u16| {
            EventPayload {
                event: 1,
                end,
                volume: 10,
                duration: d,
            }
            .to_bytes()
        };
        send(65534, 101, 5000, &ev(false, 160));
        send(65535, 101, 5000, &ev(false, 320));
        // seq 0 lost
        send(1, 101, 5000, &ev(true, 480));
        send(2, 101, 5000, &ev(true, 480));
        send(3, 101, 5000, &ev(true, 480));
        send(4, 0, 5480, &[0xFF; 160]);
        let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
        assert_eq!(events, vec![MediaEvent::Dtmf('1')]);
        assert_eq!(s.stats().received, 6);
        assert_eq!(s.stats().lost, 1);
        assert_eq!(s.received_audio().len(), 160);
    }

    #[test]
    fn a_stray_jump_in_sequence_is_dropped_and_a_restart_is_followed() {
        let t0 = Instant::now();
        let mut s = RtpSession::new(t0, cfg("127.0.0.1:4000"));
        let from: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let send = |s: &mut RtpSession, seq: u16| {
            let p = RtpPacketBuilder::new()
                .payload_type(0)
                .sequence(Seq::from(seq))
                .timestamp(u32::from(seq) * 160)
                .ssrc(7)
                .payload(&[0xFF; 160])
                .build()
                .unwrap();
            s.handle_packet(t0, from, &p);
        };
        send(&mut s, 100);
        send(&mut s, 101);
        // One packet 30,000 ahead: not 30,000 lost, and not played.
        send(&mut s, 30_101);
        send(&mut s, 102);
        let st = s.stats();
        assert_eq!((st.received, st.lost, st.rejected), (3, 0, 1));
        assert_eq!(s.received_audio().len(), 3 * 160);
        // A late packet is taken; a real gap counts as loss (103 to 109
        // missing, less the late 99 from before the first).
        send(&mut s, 99);
        send(&mut s, 110);
        assert_eq!(s.stats().lost, 6);
        // The sender restarts its numbering: two in a row after the jump.
        send(&mut s, 50_000);
        send(&mut s, 50_001);
        send(&mut s, 50_002);
        let st = s.stats();
        assert_eq!(st.rejected, 2);
        assert_eq!(st.lost, 0, "counted from the new numbering: {st:?}");
        assert_eq!(s.received_audio().len(), 7 * 160);
    }

    #[test]
    fn dtmf_send_holds_the_timestamp_and_marks_the_start() {
        let t0 = Instant::now();
        let mut s = RtpSession::new(t0, cfg("127.0.0.1:4000"));
        drain(&mut s, t0);
        assert!(s.send_dtmf('#', Duration::from_millis(100)));
        let mut pkts = Vec::new();
        for i in 1..=9u32 {
            pkts.extend(drain(&mut s, t0 + PTIME * i));
        }
        let r: Vec<RtpReader<'_>> = pkts.iter().map(|p| RtpReader::new(p).unwrap()).collect();
        let events: Vec<&RtpReader<'_>> = r.iter().filter(|p| p.payload_type() == 101).collect();
        assert_eq!(events.len(), 7, "4 updates and 3 end packets");
        assert!(events[0].mark());
        assert!(events
            .iter()
            .all(|p| p.timestamp() == events[0].timestamp()));
        let last = EventPayload::parse(events[6].payload()).unwrap();
        assert!(last.end && last.event == 11 && last.duration == 800);
        // Frames 1 to 7 carried the event; audio resumes at frame 8 with the
        // timestamp of real time.
        assert_eq!(r[7].payload_type(), 0, "audio resumes");
        assert_eq!(r[7].timestamp(), (u32::MAX - 200).wrapping_add(160 * 8));
    }

    #[test]
    fn queued_key_presses_follow_each_other_with_a_pause() {
        let t0 = Instant::now();
        let mut s = RtpSession::new(t0, cfg("127.0.0.1:4000"));
        assert!(s.send_dtmf('1', Duration::from_millis(40)));
        assert!(s.send_dtmf('2', Duration::from_millis(40)));
        let mut kinds = String::new();
        for i in 0..16u32 {
            for p in drain(&mut s, t0 + PTIME * i) {
                let r = RtpReader::new(&p).unwrap();
                kinds.push(if r.payload_type() == 101 {
                    digit_of(r.payload()[0]).unwrap()
                } else {
                    '.'
                });
            }
        }
        // 40 ms: one update and three end packets each; between them the
        // frame where the first ends plus two frames of pause.
        assert_eq!(kinds, "1111...2222.....");
    }

    #[test]
    fn inactivity_raises_a_timeout_once() {
        let t0 = Instant::now();
        let mut s = RtpSession::new(t0, cfg("127.0.0.1:4000"));
        s.handle_timeout(t0 + Duration::from_secs(9));
        assert_eq!(s.poll_event(), None);
        s.handle_timeout(t0 + Duration::from_secs(10));
        s.handle_timeout(t0 + Duration::from_secs(11));
        assert_eq!(s.poll_event(), Some(MediaEvent::Timeout));
        assert_eq!(s.poll_event(), None);
    }

    #[test]
    fn ptime_sets_the_packet_size_and_interval_and_the_timestamp_follows() {
        let t0 = Instant::now();
        let mut s = RtpSession::new(t0, cfg("127.0.0.1:4000"));
        s.set_ptime(Duration::from_millis(30));
        let mut buf = [0u8; 1500];
        let mut ts = Vec::new();
        for i in 0..4u32 {
            let now = t0 + Duration::from_millis(30) * i;
            assert_eq!(s.poll_timeout(), now, "one packet every 30 ms");
            let o = s.poll_transmit(now, &mut buf).unwrap();
            assert_eq!((o.len, o.samples), (12 + 240, 240));
            ts.push(RtpReader::new(&buf[..o.len]).unwrap().timestamp());
            assert!(s.poll_transmit(now, &mut buf).is_none());
        }
        assert!(ts.windows(2).all(|w| w[1].wrapping_sub(w[0]) == 240));
        // Out of range values are brought within 10 to 60 ms.
        s.set_ptime(Duration::from_millis(250));
        assert_eq!(s.ptime(), Duration::from_millis(60));
        s.set_ptime(Duration::from_millis(5));
        assert_eq!(s.ptime(), Duration::from_millis(10));
    }

    #[test]
    fn while_the_peer_holds_nothing_is_sent_and_silence_is_no_timeout() {
        let t0 = Instant::now();
        let mut s = RtpSession::new(t0, cfg("127.0.0.1:4000"));
        let mut buf = [0u8; 1500];
        let first = s.poll_transmit(t0, &mut buf).unwrap();
        let seq0 = u16::from(RtpReader::new(&buf[..first.len]).unwrap().sequence_number());
        s.play(tone(800));
        s.set_direction(t0, false, false);
        // Five packet times pass unsent; the prompt goes on as if heard.
        for i in 1..=5u32 {
            let o = s.poll_transmit(t0 + PTIME * i, &mut buf).unwrap();
            assert_eq!(o.len, 0);
        }
        assert_eq!(s.poll_event(), Some(MediaEvent::PlaybackFinished));
        assert_eq!(s.stats().sent, 1);
        // Held far past the RTP timeout: no timeout.
        let late = t0 + Duration::from_secs(60);
        s.handle_timeout(late);
        assert_eq!(s.poll_event(), None);
        assert!(s.poll_timeout() <= late);
        // Resumed: sequence numbers go on from the last sent, marked, the
        // timestamp follows real time, and the timeout counts from now.
        s.set_direction(late, true, true);
        let o = s.poll_transmit(late, &mut buf).unwrap();
        let r = RtpReader::new(&buf[..o.len]).unwrap();
        assert_eq!(u16::from(r.sequence_number()), seq0.wrapping_add(1));
        assert!(r.mark());
        assert_eq!(r.timestamp(), (u32::MAX - 200).wrapping_add(8000 * 60));
        s.handle_timeout(late + Duration::from_secs(9));
        assert_eq!(s.poll_event(), None);
        s.handle_timeout(late + Duration::from_secs(10));
        assert_eq!(s.poll_event(), Some(MediaEvent::Timeout));
    }

    #[test]
    fn a_moved_peer_is_sent_to_and_heard_and_the_old_address_is_not() {
        let t0 = Instant::now();
        let old: SocketAddr = "192.0.2.10:4000".parse().unwrap();
        let new: SocketAddr = "192.0.2.10:4100".parse().unwrap();
        let mut s = RtpSession::new(t0, cfg(&old.to_string()));
        s.handle_packet(t0, old, &audio(10, 7));
        s.set_remote(t0, new);
        let mut buf = [0u8; 1500];
        assert_eq!(s.poll_transmit(t0, &mut buf).unwrap().dest, new);
        s.handle_packet(t0, new, &audio(5000, 8));
        s.handle_packet(t0, old, &audio(11, 7));
        let st = s.stats();
        assert_eq!((st.received, st.foreign, st.lost), (2, 1, 0));
    }

    #[test]
    fn a_new_codec_changes_what_is_sent_and_what_is_taken() {
        let t0 = Instant::now();
        let mut s = RtpSession::new(t0, cfg("127.0.0.1:4000"));
        s.set_codec(Law::A, None);
        let mut buf = [0u8; 1500];
        let o = s.poll_transmit(t0, &mut buf).unwrap();
        assert_eq!(RtpReader::new(&buf[..o.len]).unwrap().payload_type(), 8);
        assert!(
            !s.send_dtmf('1', Duration::from_millis(100)),
            "no telephone-event now"
        );
        let from: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        s.handle_packet(t0, from, &audio(1, 7));
        assert_eq!(s.stats().rejected, 1, "PCMU is no longer agreed");
    }

    #[test]
    fn in_band_keys_are_events_when_no_telephone_event_is_agreed() {
        let t0 = Instant::now();
        let mut s = RtpSession::new(
            t0,
            SessionConfig {
                telephone_event: None,
                ..cfg("127.0.0.1:4000")
            },
        );
        s.set_inband_dtmf(true);
        let from: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        // '9': 852 Hz and 1477 Hz for 100 ms, then silence.
        let pcm: Vec<i16> = (0..1600)
            .map(|n| {
                if n >= 800 {
                    return 0;
                }
                let t = n as f64 / 8000.0;
                let w = |f: f64| (2.0 * std::f64::consts::PI * f * t).sin();
                (5000.0 * (w(852.0) + w(1477.0))) as i16
            })
            .collect();
        for (i, c) in pcm.chunks(FRAME).enumerate() {
            let p = RtpPacketBuilder::new()
                .payload_type(0)
                .sequence(Seq::from(i as u16))
                .timestamp(i as u32 * 160)
                .ssrc(7)
                .payload(&Law::Mu.encode(c))
                .build()
                .unwrap();
            s.handle_packet(t0 + PTIME * i as u32, from, &p);
        }
        let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
        assert_eq!(events, vec![MediaEvent::Dtmf('9')]);
    }
}
