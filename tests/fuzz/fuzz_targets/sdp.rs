//! SDP: any body; parsing and negotiation must never panic, and a
//! negotiated codec must be one nida offered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nida_sip::sdp::{self, Codec, SessionDescription};

fuzz_target!(|data: &[u8]| {
    if let Ok(sd) = SessionDescription::parse(data) {
        let ours = [Codec::Pcmu, Codec::Pcma];
        if let Some(n) = sdp::negotiate(&sd, &ours) {
            assert!(ours.contains(&n.codec));
        }
        let _ = sdp::negotiate(&sd, &[Codec::Pcma]);
    }
});
