//! A browser's side of WebRTC for the gateway's tests and bench, in
//! process and in virtual time: a full-ICE str0m peer that answers the
//! gateway's offer, sends Opus frames of a tone and decodes what it gets,
//! beside a call side that sends PCMU frames of another tone; datagrams
//! go between the two over an in-memory network.

#![allow(dead_code)]

use nida_media::webrtc::{Gateway, Out};
use nida_media::Law;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::media::{Frequency, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

/// The gateway's WebRTC address.
pub const GATEWAY: &str = "10.0.0.1:40000";
/// The browser's address.
pub const BROWSER: &str = "10.0.0.2:50000";

/// A sine tone at `hz`, `frame` samples at `rate` from sample `at`.
pub fn tone(hz: f64, rate: f64, at: usize, frame: usize) -> Vec<i16> {
    (at..at + frame)
        .map(|i| (9000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / rate).sin()) as i16)
        .collect()
}

/// The pitch of `pcm` at `rate` by zero crossings.
pub fn pitch(pcm: &[i16], rate: f64) -> f64 {
    let z = pcm.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    z as f64 / 2.0 / (pcm.len() as f64 / rate)
}

/// The gateway, the browser and the wire between them.
pub struct World {
    pub now: Instant,
    pub gw: Gateway,
    pub browser: Rtc,
    mid: Option<Mid>,
    enc: opus::Encoder,
    dec: opus::Decoder,
    /// What the browser decoded (8 kHz).
    pub browser_heard: Vec<i16>,
    /// What reached the call side, decoded (8 kHz).
    pub call_heard: Vec<i16>,
    pub connected: bool,
    /// Time spent inside the gateway's own calls (for the bench).
    pub gateway_time: Duration,
    sent_frames: usize,
    opus_ticks: u64,
    call_seq: u16,
    browser_next: Instant,
}

impl World {
    /// The gateway offers, the browser answers.
    pub fn new() -> World {
        let now = Instant::now();
        let (gw, offer) = Gateway::offer(now, GATEWAY.parse().unwrap(), 7).unwrap();
        let mut browser = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .build(now);
        browser.add_local_candidate(Candidate::host(BROWSER.parse().unwrap(), "udp").unwrap());
        let answer = browser
            .sdp_api()
            .accept_offer(SdpOffer::from_sdp_string(&offer).unwrap())
            .unwrap();
        let mut w = World {
            now,
            gw,
            browser,
            mid: None,
            enc: opus::Encoder::new(8000, opus::Channels::Mono, opus::Application::Voip).unwrap(),
            dec: opus::Decoder::new(8000, opus::Channels::Mono).unwrap(),
            browser_heard: Vec::new(),
            call_heard: Vec::new(),
            connected: false,
            gateway_time: Duration::ZERO,
            sent_frames: 0,
            opus_ticks: 0,
            call_seq: 0,
            browser_next: now,
        };
        w.gw.accept_answer(&answer.to_sdp_string()).unwrap();
        w.drain_browser();
        w
    }

    fn drain_browser(&mut self) {
        loop {
            match self.browser.poll_output().unwrap() {
                Output::Timeout(t) => {
                    self.browser_next = t;
                    break;
                }
                Output::Transmit(t) => {
                    let data = t.contents.to_vec();
                    let clock = Instant::now();
                    self.gw.handle_browser(self.now, t.source, &data);
                    self.gateway_time += clock.elapsed();
                }
                Output::Event(Event::MediaAdded(m)) => self.mid = Some(m.mid),
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::MediaData(m)) => {
                    let mut pcm = [0i16; 960];
                    if let Ok(n) = self.dec.decode(&m.data, &mut pcm, false) {
                        self.browser_heard.extend_from_slice(&pcm[..n]);
                    }
                }
                Output::Event(_) => {}
            }
        }
    }

    fn drain_gateway(&mut self) {
        while let Some(o) = self.gw.poll_transmit() {
            match o {
                Out::Browser { dest, data } => {
                    let dest: SocketAddr = dest;
                    let input = Input::Receive(
                        self.now,
                        Receive {
                            proto: Protocol::Udp,
                            source: GATEWAY.parse().unwrap(),
                            destination: dest,
                            contents: data.as_slice().try_into().unwrap(),
                        },
                    );
                    if self.browser.accepts(&input) {
                        self.browser.handle_input(input).unwrap();
                        self.drain_browser();
                    }
                }
                Out::Call(pkt) => {
                    if pkt.len() > 12 {
                        self.call_heard.extend(Law::Mu.decode(&pkt[12..]));
                    }
                }
            }
        }
    }

    /// One 20 ms step: the call sends a PCMU frame of `call_hz`, the
    /// browser an Opus frame of `browser_hz` (once connected), and
    /// everything due runs.
    pub fn step(&mut self, call_hz: f64, browser_hz: f64) {
        let end = self.now + Duration::from_millis(20);
        while self.now < end {
            let next = self
                .gw
                .poll_timeout()
                .min(self.browser_next)
                .min(end)
                .max(self.now);
            self.now = next.max(self.now + Duration::from_micros(100)).min(end);
            let clock = Instant::now();
            self.gw.handle_timeout(self.now);
            self.gateway_time += clock.elapsed();
            self.drain_gateway();
            self.browser.handle_input(Input::Timeout(self.now)).unwrap();
            self.drain_browser();
            self.drain_gateway();
        }
        let at = self.sent_frames * 160;
        self.sent_frames += 1;
        let pcm = tone(call_hz, 8000.0, at, 160);
        let mut pkt = vec![0x80, 0];
        pkt.extend_from_slice(&self.call_seq.to_be_bytes());
        pkt.extend_from_slice(&((at as u32).to_be_bytes()));
        pkt.extend_from_slice(&0x0ca1_1001u32.to_be_bytes());
        pkt.extend_from_slice(&Law::Mu.encode(&pcm));
        self.call_seq = self.call_seq.wrapping_add(1);
        let clock = Instant::now();
        self.gw.handle_call(self.now, &pkt);
        self.gateway_time += clock.elapsed();
        self.drain_gateway();
        if let (true, Some(mid)) = (self.connected, self.mid) {
            let pcm = tone(browser_hz, 8000.0, at, 160);
            let mut buf = [0u8; 400];
            let n = self.enc.encode(&pcm, &mut buf).unwrap();
            let time = MediaTime::new(self.opus_ticks, Frequency::FORTY_EIGHT_KHZ);
            self.opus_ticks += 960;
            if let Some(w) = self.browser.writer(mid) {
                let pt = w.payload_params().next().map(|p| p.pt()).unwrap();
                w.write(pt, self.now, time, buf[..n].to_vec()).unwrap();
            }
            self.drain_browser();
            self.drain_gateway();
        }
    }
}
