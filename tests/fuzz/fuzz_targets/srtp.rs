//! SRTP: arbitrary packets (split on a marker byte sequence) opened with a
//! fixed key must never panic nor be accepted (a forgery would need the
//! key); each one, read as plain RTP and numbered as a sender numbers
//! (forward, by steps of 1 to 64, across the 16-bit wrap), sealed with the
//! key and opened again must come back unchanged, exactly once. The same
//! for each one as an SRTCP compound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nida_media::srtp::{SrtpContext, SrtpError, Suite};

fuzz_target!(|data: &[u8]| {
    let suite = if data.first().is_some_and(|b| b & 1 == 1) {
        Suite::AesCm128HmacSha1_32
    } else {
        Suite::AesCm128HmacSha1_80
    };
    let key = [0x42u8; 30];
    let mut tx = SrtpContext::new(suite, &key);
    let mut rx = SrtpContext::new(suite, &key);
    let mut stranger = SrtpContext::new(suite, &key);
    let mut seq: Option<u16> = None;
    for packet in data.split(|&b| b == 0xA5) {
        let mut forged = packet.to_vec();
        assert!(stranger.unprotect_rtcp(&mut forged).is_err(), "forged SRTCP accepted");
        let mut buf = packet.to_vec();
        buf.resize(packet.len() + nida_media::srtp::SRTCP_OVERHEAD, 0);
        if let Some(n) = tx.protect_rtcp(&mut buf, packet.len()) {
            buf.truncate(n);
            let mut again = buf.clone();
            let m = rx.unprotect_rtcp(&mut buf).expect("a sealed compound opens");
            assert_eq!(&buf[..m], packet);
            assert_eq!(rx.unprotect_rtcp(&mut again), Err(SrtpError::Replay));
        }
        let mut forged = packet.to_vec();
        match stranger.unprotect(&mut forged) {
            Err(_) => {}
            // Only with a 32-bit tag is a lucky guess thinkable.
            Ok(_) => assert_eq!(suite, Suite::AesCm128HmacSha1_32, "forged packet accepted"),
        }
        let mut plain = packet.to_vec();
        if plain.len() >= 4 {
            let next = match seq {
                None => u16::from_be_bytes([plain[2], plain[3]]),
                Some(s) => s.wrapping_add(1 + (plain[2] % 64) as u16),
            };
            plain[2..4].copy_from_slice(&next.to_be_bytes());
            seq = Some(next);
        }
        let mut buf = plain.clone();
        buf.resize(plain.len() + suite.tag_len(), 0);
        let Some(n) = tx.protect(&mut buf, plain.len()) else {
            continue;
        };
        buf.truncate(n);
        let mut again = buf.clone();
        let m = rx.unprotect(&mut buf).expect("a sealed packet opens");
        assert_eq!(&buf[..m], &plain[..]);
        assert_eq!(rx.unprotect(&mut again), Err(SrtpError::Replay));
    }
});
