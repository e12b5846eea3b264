//! RTCP: arbitrary compounds into the parser and into a session with RTCP
//! on (from the peer's address, so every report is read); nothing may
//! panic, and what the session then writes must parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nida_media::{Law, RtpSession, SessionConfig};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let _ = nida_media::rtcp::parse(data);
    let t0 = Instant::now();
    let remote = "192.0.2.1:4000".parse().unwrap();
    let mut s = RtpSession::new(
        t0,
        SessionConfig {
            law: Law::Mu,
            telephone_event: Some(101),
            ssrc: 1,
            initial_seq: 1,
            initial_ts: 1,
            remote,
            rtp_timeout: Duration::from_secs(30),
            keep_audio: false,
        },
    );
    s.enable_rtcp(t0, "192.0.2.1:4001".parse().unwrap(), true, Duration::from_secs(1));
    s.handle_packet(t0, remote, data);
    s.handle_rtcp(t0, "192.0.2.1:4001".parse().unwrap(), data);
    let _ = s.quality();
    let mut buf = [0u8; 1500];
    let later = t0 + Duration::from_secs(10);
    if let Some((n, _)) = s.poll_rtcp(later, &mut buf) {
        assert!(nida_media::rtcp::parse(&buf[..n]).is_ok());
    }
});
