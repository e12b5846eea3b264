//! SDP: any body; parsing and negotiation must never panic, a negotiated
//! codec must be one nida offered, SRTP only when the signalling is
//! encrypted, and an answer nida writes (with its own key) must parse and
//! negotiate to the same codec and key tag.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nida_sip::sdp::{self, Codec, LocalMedia, SessionDescription};

fuzz_target!(|data: &[u8]| {
    if let Ok(sd) = SessionDescription::parse(data) {
        let ours = [Codec::Pcmu, Codec::Pcma];
        for secure in [false, true] {
            let Some(n) = sdp::negotiate(&sd, &ours, secure) else {
                continue;
            };
            assert!(ours.contains(&n.codec));
            assert!(secure || n.srtp.is_none(), "SRTP without TLS");
            let local = LocalMedia {
                addr: "127.0.0.1:20000".parse().unwrap(),
                session_id: 1,
                version: 1,
                srtp: n.srtp.map(|_| [7; 30]),
            };
            let answer = SessionDescription::parse(&sdp::answer(&sd, &n, &local))
                .expect("nida's answer parses");
            let back = sdp::negotiate(&answer, &ours, secure).expect("nida's answer negotiates");
            assert_eq!(back.codec, n.codec);
            assert_eq!(back.srtp.map(|k| (k.tag, k.master)), n.srtp.map(|k| (k.tag, [7; 30])));
        }
        let _ = sdp::negotiate(&sd, &[Codec::Pcma], false);
    }
});
