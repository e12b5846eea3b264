//! A browser's WebRTC audio turned into a plain G.711 RTP stream, sans-IO:
//! the media gateway between a web phone and the call. On the browser's
//! side it is an ICE-lite WebRTC peer (str0m: ICE, DTLS-SRTP, RTP and RTCP
//! on one port) speaking Opus; on the other it is an ordinary PCMU phone
//! to the call's RTP session, so the call's bridge, prompts, recording and
//! hold work as for any SIP phone. Each 20 ms frame is transcoded: Opus
//! decoded straight to 8 kHz (libopus resamples internally) and encoded
//! to PCMU one way, PCMU decoded and encoded to Opus at 8 kHz the other
//! (Opus's RTP clock stays 48 kHz, RFC 7587). RFC 4733 keys from the
//! browser are passed on as RFC 4733 keys to the call (the agent's
//! wrap-up codes, `*2#`).
//!
//! Fed `handle_browser` (datagrams on the WebRTC port), `handle_call`
//! (RTP from the call) and `handle_timeout`; drained with
//! `poll_transmit`, `poll_event` and `poll_timeout`. It never reads the
//! clock or a socket.

use crate::g711::Law;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::{Codec, CodecExtra, FormatParams};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

/// Samples in one 20 ms frame at 8 kHz.
const FRAME: usize = 160;
/// Opus's RTP clock ticks per 20 ms.
const OPUS_TICKS: u64 = 960;
/// The largest Opus packet written.
const MAX_OPUS: usize = 400;
/// The call side's telephone-event payload type (nida offers 101).
const CALL_EVENT_PT: u8 = 101;
/// The browser side's telephone-event payload types (Chromium's own).
const BROWSER_EVENT_PT: u8 = 110;
const BROWSER_EVENT_PT_8K: u8 = 126;
/// A key sent to the call lasts this many 8 kHz samples (100 ms).
const KEY_SAMPLES: u16 = 800;

/// Why a gateway cannot be set up or an answer taken.
#[derive(Debug, thiserror::Error)]
pub enum WebRtcError {
    /// The Opus codec failed.
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    /// WebRTC refused the description or an input.
    #[error("webrtc: {0}")]
    Rtc(String),
    /// nida's offer could not be made.
    #[error("no offer")]
    NoOffer,
    /// An answer came without an offer waiting.
    #[error("no offer waits for an answer")]
    NoPendingOffer,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// To the browser, from the WebRTC port.
    Browser {
        /// Where.
        dest: SocketAddr,
        /// The datagram.
        data: Vec<u8>,
    },
    /// To the call's RTP port, from the gateway's call-side port.
    Call(Vec<u8>),
}

/// What the gateway reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayEvent {
    /// ICE and DTLS are up: media flows.
    Connected,
    /// The browser is gone (ICE disconnected or the peer closed).
    Disconnected,
}

/// Counters, for the log and the bench.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// Opus frames decoded from the browser.
    pub from_browser: u64,
    /// Opus frames encoded to the browser.
    pub to_browser: u64,
    /// Frames that could not be decoded or encoded.
    pub failed: u64,
    /// Keys from the browser passed on.
    pub keys: u64,
}

/// One web phone's media gateway.
pub struct Gateway {
    rtc: Rtc,
    local: SocketAddr,
    mid: Mid,
    pending: Option<SdpPendingOffer>,
    enc: opus::Encoder,
    dec: opus::Decoder,
    opus_ticks: u64,
    // The call side: PCMU packets of our own numbering.
    seq: u16,
    ts: u32,
    ssrc: u32,
    out: VecDeque<Out>,
    events: VecDeque<GatewayEvent>,
    next: Instant,
    connected: bool,
    /// The browser's key being reported (its RTP time), so one key is
    /// passed on once.
    last_key: Option<u64>,
    stats: GatewayStats,
}

impl Gateway {
    /// A gateway whose WebRTC side listens on `local` (a host candidate,
    /// ICE-lite), with its offer for the browser (one audio section,
    /// Opus). `ssrc` names its PCMU stream to the call.
    pub fn offer(
        now: Instant,
        local: SocketAddr,
        ssrc: u32,
    ) -> Result<(Gateway, String), WebRtcError> {
        let mut config = Rtc::builder()
            .set_ice_lite(true)
            .clear_codecs()
            .enable_opus(true, false);
        // The browser's keys (RFC 4733), at Opus's clock and at 8 kHz.
        for (pt, clock) in [
            (BROWSER_EVENT_PT, Frequency::FORTY_EIGHT_KHZ),
            (BROWSER_EVENT_PT_8K, Frequency::EIGHT_KHZ),
        ] {
            config.codec_config().add_config(
                Pt::new_with_value(pt),
                None,
                Codec::Tele,
                clock,
                None,
                FormatParams {
                    telephone_event_max: Some(16),
                    ..FormatParams::default()
                },
            );
        }
        let mut rtc = config.build(now);
        let cand = Candidate::host(local, "udp").map_err(|e| WebRtcError::Rtc(e.to_string()))?;
        rtc.add_local_candidate(cand);
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().ok_or(WebRtcError::NoOffer)?;
        let mut enc = opus::Encoder::new(8000, opus::Channels::Mono, opus::Application::Voip)?;
        enc.set_bitrate(opus::Bitrate::Bits(24_000))?;
        let dec = opus::Decoder::new(8000, opus::Channels::Mono)?;
        let mut g = Gateway {
            rtc,
            local,
            mid,
            pending: Some(pending),
            enc,
            dec,
            opus_ticks: 0,
            seq: 0,
            ts: 0,
            ssrc,
            out: VecDeque::new(),
            events: VecDeque::new(),
            next: now,
            connected: false,
            last_key: None,
            stats: GatewayStats::default(),
        };
        g.drain();
        Ok((g, offer.to_sdp_string()))
    }

    /// The browser's answer to the offer.
    pub fn accept_answer(&mut self, sdp: &str) -> Result<(), WebRtcError> {
        let pending = self.pending.take().ok_or(WebRtcError::NoPendingOffer)?;
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| WebRtcError::Rtc(e.to_string()))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| WebRtcError::Rtc(e.to_string()))?;
        self.drain();
        Ok(())
    }

    /// A datagram from `from` on the WebRTC port.
    pub fn handle_browser(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: from,
                destination: self.local,
                contents,
            },
        );
        if self.rtc.accepts(&input) && self.rtc.handle_input(input).is_ok() {
            self.drain();
        }
    }

    /// An RTP packet from the call (PCMU, or its telephone-events).
    pub fn handle_call(&mut self, now: Instant, data: &[u8]) {
        let Ok(pkt) = rtp_rs::RtpReader::new(data) else {
            return;
        };
        if pkt.payload_type() != Law::Mu.payload_type() || !self.connected {
            return;
        }
        let pcm = Law::Mu.decode(pkt.payload());
        for frame in pcm.chunks(FRAME) {
            let mut buf = [0u8; MAX_OPUS];
            let Ok(n) = self.enc.encode(frame, &mut buf) else {
                self.stats.failed += 1;
                continue;
            };
            let Some(writer) = self.rtc.writer(self.mid) else {
                return;
            };
            let Some(pt) = writer.payload_params().next().map(|p| p.pt()) else {
                return;
            };
            let time = MediaTime::new(self.opus_ticks, str0m::media::Frequency::FORTY_EIGHT_KHZ);
            self.opus_ticks += OPUS_TICKS;
            if writer.write(pt, now, time, buf[..n].to_vec()).is_ok() {
                self.stats.to_browser += 1;
            }
            self.drain();
        }
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.rtc.handle_input(Input::Timeout(now)).is_ok() {
            self.drain();
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Out> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<GatewayEvent> {
        self.events.pop_front()
    }

    /// When to call [`Gateway::handle_timeout`].
    pub fn poll_timeout(&self) -> Instant {
        self.next
    }

    /// Frames transcoded so far.
    pub fn stats(&self) -> GatewayStats {
        self.stats
    }

    fn drain(&mut self) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.next = t;
                    break;
                }
                Ok(Output::Transmit(t)) => self.out.push_back(Out::Browser {
                    dest: t.destination,
                    data: t.contents.to_vec(),
                }),
                Ok(Output::Event(e)) => self.on_event(e),
                Err(_) => {
                    // A broken session: nothing more comes out of it.
                    self.next += Duration::from_secs(1);
                    self.events.push_back(GatewayEvent::Disconnected);
                    break;
                }
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Connected => {
                self.connected = true;
                self.events.push_back(GatewayEvent::Connected);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.events.push_back(GatewayEvent::Disconnected);
            }
            Event::MediaData(m) => {
                if let CodecExtra::Tele(t) = m.codec_extra {
                    let at = m.time.numer();
                    if t.end && self.last_key != Some(at) {
                        self.last_key = Some(at);
                        self.key_to_call(t.event);
                    }
                    return;
                }
                let mut pcm = [0i16; FRAME * 6];
                match self.dec.decode(&m.data, &mut pcm, false) {
                    Ok(n) => {
                        self.stats.from_browser += 1;
                        for frame in pcm[..n].chunks(FRAME) {
                            self.send_to_call(frame);
                        }
                    }
                    Err(_) => self.stats.failed += 1,
                }
            }
            _ => {}
        }
    }

    /// A browser's key as RFC 4733 to the call: the end of a 100 ms event,
    /// three times as RFC 4733 2.5.1.4 asks, at the stream's time.
    fn key_to_call(&mut self, event: u8) {
        self.stats.keys += 1;
        for i in 0..3 {
            let mut pkt = Vec::with_capacity(16);
            let marker = if i == 0 { 0x80 } else { 0 };
            pkt.extend_from_slice(&[0x80, marker | CALL_EVENT_PT]);
            pkt.extend_from_slice(&self.seq.to_be_bytes());
            pkt.extend_from_slice(&self.ts.to_be_bytes());
            pkt.extend_from_slice(&self.ssrc.to_be_bytes());
            pkt.extend_from_slice(&[event, 0x80 | 10]);
            pkt.extend_from_slice(&KEY_SAMPLES.to_be_bytes());
            self.seq = self.seq.wrapping_add(1);
            self.out.push_back(Out::Call(pkt));
        }
        self.ts = self.ts.wrapping_add(u32::from(KEY_SAMPLES));
    }

    fn send_to_call(&mut self, frame: &[i16]) {
        let mut pkt = Vec::with_capacity(12 + frame.len());
        pkt.extend_from_slice(&[0x80, Law::Mu.payload_type()]);
        pkt.extend_from_slice(&self.seq.to_be_bytes());
        pkt.extend_from_slice(&self.ts.to_be_bytes());
        pkt.extend_from_slice(&self.ssrc.to_be_bytes());
        pkt.extend_from_slice(&Law::Mu.encode(frame));
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(frame.len() as u32);
        self.out.push_back(Out::Call(pkt));
    }
}

/// The SDP the call is given for a web phone's leg: an ordinary PCMU phone
/// at the gateway's call-side address (`addr`), with telephone-event.
pub fn call_side_sdp(addr: SocketAddr) -> String {
    format!(
        "v=0\r\no=nida-gateway 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 {CALL_EVENT_PT}\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:{CALL_EVENT_PT} telephone-event/8000\r\na=sendrecv\r\n",
        ip = addr.ip(),
        port = addr.port()
    )
}
