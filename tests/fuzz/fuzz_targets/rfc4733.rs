//! RFC 4733 telephone events: any payloads with any timestamps; parsing
//! must never panic, a press is reported once however its packets are
//! repeated or reordered, and what nida sends parses back to the same
//! event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nida_media::dtmf::{self, EventPayload, EventReceiver, EventSender};

fuzz_target!(|data: &[u8]| {
    let mut rx = EventReceiver::default();
    // The presses reported by the two packets before this one: the same
    // timestamp again is the same press (a repeat, or a late packet after
    // the next press began). Timestamps are modulo 2^32, so further back
    // a timestamp may legitimately come round again.
    let mut recent: [Option<u32>; 2] = [None, None];
    for chunk in data.chunks(8) {
        if chunk.len() < 4 {
            continue;
        }
        let ts = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let mut reported = None;
        if let Ok(Some(d)) = rx.handle(ts, &chunk[4..]) {
            assert!(!recent.contains(&Some(ts)), "{d} at {ts} reported twice");
            reported = Some(ts);
        }
        recent = [recent[1], reported];
        if let Ok(p) = EventPayload::parse(&chunk[4..]) {
            assert_eq!(EventPayload::parse(&p.to_bytes()).unwrap(), p);
        }
    }
    if let Some(&b) = data.first() {
        let digit = char::from(b);
        if let Some(mut tx) = EventSender::new(digit, 800, 160) {
            let event = dtmf::event_of(digit).unwrap();
            while let Some((payload, _end)) = tx.next_payload() {
                assert_eq!(EventPayload::parse(&payload).unwrap().event, event);
            }
        }
    }
});
