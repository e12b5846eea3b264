//! RFC 4733 telephone-events: the payload format, a receiver that reports
//! each key press once, and a sender that produces the packet sequence.

use crate::error::Error;

/// The sixteen DTMF events (RFC 4733 3.2): 0-9, *, #, A-D.
const EVENTS: &[u8; 16] = b"0123456789*#ABCD";

/// The digit of an event code.
pub fn digit_of(event: u8) -> Option<char> {
    EVENTS.get(event as usize).map(|b| *b as char)
}

/// The event code of a digit.
pub fn event_of(digit: char) -> Option<u8> {
    EVENTS
        .iter()
        .position(|b| *b as char == digit.to_ascii_uppercase())
        .map(|p| p as u8)
}

/// One telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    /// Event code.
    pub event: u8,
    /// End bit.
    pub end: bool,
    /// Volume in -dBm0 (0 to 63).
    pub volume: u8,
    /// Duration in timestamp units.
    pub duration: u16,
}

impl EventPayload {
    /// Reads the 4-byte payload.
    pub fn parse(p: &[u8]) -> Result<EventPayload, Error> {
        if p.len() < 4 {
            return Err(Error::Packet(
                "telephone-event payload shorter than 4 bytes",
            ));
        }
        Ok(EventPayload {
            event: p[0],
            end: p[1] & 0x80 != 0,
            volume: p[1] & 0x3F,
            duration: u16::from_be_bytes([p[2], p[3]]),
        })
    }

    /// Writes the 4-byte payload.
    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// Reports each event once, however many packets carry it (updates and
/// the three end packets share the event's RTP timestamp). The timestamp
/// names the event (RFC 4733 2.5.1.3): a packet starts a new event only
/// when its timestamp is later than the last event's (modulo 2^32), so
/// neither packets mixing codes under one timestamp nor a late packet of
/// an earlier event, reordered by the network, press a key twice.
#[derive(Debug, Default)]
pub struct EventReceiver {
    last: Option<u32>,
}

impl EventReceiver {
    /// Feeds one telephone-event packet; returns the digit when this packet
    /// starts an event not seen before.
    pub fn handle(&mut self, timestamp: u32, payload: &[u8]) -> Result<Option<char>, Error> {
        let ev = EventPayload::parse(payload)?;
        if let Some(last) = self.last {
            let ahead = timestamp.wrapping_sub(last);
            if ahead == 0 || ahead >= 1 << 31 {
                return Ok(None);
            }
        }
        self.last = Some(timestamp);
        Ok(digit_of(ev.event))
    }
}

/// Produces the packets of one key press, one per packet interval.
#[derive(Debug, Clone)]
pub struct EventSender {
    event: u8,
    /// Length of the tone in timestamp units.
    length: u16,
    step: u16,
    sent: u16,
    end_packets: u8,
}

impl EventSender {
    /// A key press of `length` samples, sent in steps of `step` samples.
    pub fn new(digit: char, length: u16, step: u16) -> Option<EventSender> {
        Some(EventSender {
            event: event_of(digit)?,
            length: length.max(step),
            step,
            sent: 0,
            end_packets: 0,
        })
    }

    /// The next payload and whether it is the first (marker bit), or `None`
    /// once the three end packets have gone.
    pub fn next_payload(&mut self) -> Option<([u8; 4], bool)> {
        if self.end_packets == 3 {
            return None;
        }
        let first = self.sent == 0;
        self.sent = (self.sent + self.step).min(self.length);
        let end = self.sent >= self.length;
        if end {
            self.end_packets += 1;
        }
        let p = EventPayload {
            event: self.event,
            end,
            volume: 10,
            duration: self.sent,
        };
        Some((p.to_bytes(), first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_sequence_is_counted_once_by_the_receiver() {
        let mut s = EventSender::new('5', 800, 160).unwrap();
        let mut packets = Vec::new();
        while let Some(p) = s.next_payload() {
            packets.push(p);
        }
        // 160, 320, 480, 640, 800(end) x3.
        assert_eq!(packets.len(), 7);
        assert!(packets[0].1 && !packets[1].1, "marker on the first only");
        let ends: Vec<_> = packets
            .iter()
            .map(|(p, _)| EventPayload::parse(p).unwrap())
            .filter(|e| e.end)
            .collect();
        assert_eq!(ends.len(), 3);
        assert!(ends.iter().all(|e| e.duration == 800 && e.event == 5));
        let mut r = EventReceiver::default();
        let digits: Vec<char> = packets
            .iter()
            .filter_map(|(p, _)| r.handle(1000, p).unwrap())
            .collect();
        assert_eq!(digits, vec!['5']);
        // The same digit pressed again has a new timestamp.
        assert_eq!(r.handle(2600, &packets[6].0).unwrap(), Some('5'));
        // Another code under that timestamp, then 5 again: one press only
        // (found by fuzzing: the receiver used to report the 5 twice).
        let other = EventPayload {
            event: 200,
            end: false,
            volume: 10,
            duration: 160,
        }
        .to_bytes();
        assert_eq!(r.handle(2600, &other).unwrap(), None);
        assert_eq!(r.handle(2600, &packets[0].0).unwrap(), None);
        // A late end packet of the first press, after the second began.
        assert_eq!(r.handle(1000, &packets[6].0).unwrap(), None);
        // Timestamps wrap: an event just past 2^32 is still new.
        assert_eq!(r.handle(u32::MAX - 100, &packets[0].0).unwrap(), None);
        let mut r = EventReceiver::default();
        assert_eq!(r.handle(u32::MAX - 100, &packets[0].0).unwrap(), Some('5'));
        assert_eq!(r.handle(60, &packets[0].0).unwrap(), Some('5'));
    }

    #[test]
    fn digits_map_both_ways_and_short_payloads_fail() {
        for d in "0123456789*#ABCD".chars() {
            assert_eq!(digit_of(event_of(d).unwrap()), Some(d));
        }
        assert_eq!(event_of('x'), None);
        assert!(EventPayload::parse(&[1, 2]).is_err());
        assert_eq!(digit_of(200), None);
    }
}
