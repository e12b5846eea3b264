//! RTP: a stream of arbitrary packets (split on a marker byte sequence)
//! into a session; it must never panic, and no stray packet may make it
//! count thousands of packets as lost.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nida_media::{Law, RtpSession, SessionConfig};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let remote = "192.0.2.1:4000".parse().unwrap();
    let mut s = RtpSession::new(
        t0,
        SessionConfig {
            law: Law::Mu,
            telephone_event: Some(101),
            ssrc: 1,
            initial_seq: 65_500,
            initial_ts: u32::MAX - 400,
            remote,
            rtp_timeout: Duration::from_secs(5),
            keep_audio: true,
        },
    );
    s.set_relay(true);
    let mut now = t0;
    let mut buf = [0u8; 1500];
    for packet in data.split(|&b| b == 0xA5) {
        now += Duration::from_millis(20);
        s.handle_packet(now, remote, packet);
        s.handle_timeout(now);
        while s.poll_transmit(now, &mut buf).is_some() {}
        while s.poll_event().is_some() {}
        let _ = s.take_received();
    }
    // Each accepted packet moves the highest sequence number by less than
    // RFC 3550's MAX_DROPOUT (3000), so loss is bounded by what arrived.
    let st = s.stats();
    assert!(st.lost <= 3000 * (st.received + 1), "{st:?}");
});
