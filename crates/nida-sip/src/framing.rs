//! Framing SIP messages on stream transports (TCP, TLS): RFC 3261 18.3.
//!
//! Bytes arrive in arbitrary pieces; a message is complete once its header
//! section and Content-Length bytes of body have arrived. The framer checks
//! completeness first and only then hands the bytes to the parser.

use crate::error::Error;

/// Largest header section accepted on a stream.
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest body accepted on a stream.
pub const MAX_BODY: usize = 1024 * 1024;

/// Accumulates stream bytes and yields whole messages, and counts the
/// keep-alive pings between them (RFC 5626 3.5.1: a double CRLF is a ping,
/// to be answered with one CRLF, the pong; a lone CRLF is a pong).
#[derive(Debug)]
pub struct StreamFramer {
    buf: Vec<u8>,
    /// Largest message (header section and body) accepted.
    max: usize,
    /// Pings seen and not yet taken.
    pings: usize,
}

impl Default for StreamFramer {
    fn default() -> Self {
        StreamFramer::with_limit(MAX_HEAD + MAX_BODY)
    }
}

impl StreamFramer {
    /// A framer that refuses messages over `max` bytes: a header section
    /// that grows past it, or a Content-Length that would, is an error at
    /// once (before the body is waited for), so no peer makes nida buffer
    /// more than `max` bytes per connection.
    pub fn with_limit(max: usize) -> Self {
        StreamFramer {
            buf: Vec::new(),
            max: max.min(MAX_HEAD + MAX_BODY),
            pings: 0,
        }
    }

    /// Keep-alive pings received since the last call; each wants a pong
    /// (`\r\n`) back on the connection.
    pub fn take_pings(&mut self) -> usize {
        std::mem::take(&mut self.pings)
    }

    /// Whether part of a message has arrived (not just keep-alives).
    pub fn pending(&self) -> bool {
        self.buf.iter().any(|b| *b != b'\r' && *b != b'\n')
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    /// An error means the stream cannot be resynchronised and should close.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, Error> {
        // CRLF keep-alives between messages (RFC 5626 3.5.1). A run that
        // reaches the end of what has arrived and holds no whole ping may
        // be the first half of one: it waits for the rest.
        let run = self
            .buf
            .iter()
            .position(|b| *b != b'\r' && *b != b'\n')
            .unwrap_or(self.buf.len());
        let begun = run < self.buf.len();
        let pings = count_pings(&self.buf[..run]);
        if pings > 0 || begun || run > 4 {
            self.pings += pings;
            self.buf.drain(..run);
        }
        if !begun {
            return Ok(None);
        }
        let Some(head_end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if self.buf.len() > MAX_HEAD.min(self.max) {
                return Err(Error::Framing("header section too large".into()));
            }
            return Ok(None);
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]);
        let len = content_length(&head)?;
        if len > MAX_BODY || head_end + 4 + len > self.max {
            return Err(Error::Framing("message too large".into()));
        }
        let total = head_end + 4 + len;
        if self.buf.len() < total {
            return Ok(None);
        }
        let rest = self.buf.split_off(total);
        Ok(Some(std::mem::replace(&mut self.buf, rest)))
    }
}

/// Double CRLFs in a run of CR and LF bytes.
fn count_pings(run: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i + 4 <= run.len() {
        if &run[i..i + 4] == b"\r\n\r\n" {
            n += 1;
            i += 4;
        } else {
            i += 1;
        }
    }
    n
}

fn content_length(head: &str) -> Result<usize, Error> {
    let mut found = None;
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            let v = crate::message::parse_number(value, u32::MAX as u64)
                .ok_or_else(|| Error::Framing(format!("invalid Content-Length {value:?}")))?;
            if found.replace(v as usize).is_some() {
                return Err(Error::Framing("more than one Content-Length".into()));
            }
        }
    }
    found.ok_or_else(|| Error::Framing("Content-Length is mandatory on streams".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nl: 4\r\n\r\nbody";

    #[test]
    fn byte_by_byte_then_two_at_once() {
        let mut f = StreamFramer::default();
        for b in b"\r\n\r\n" {
            f.push(&[*b]);
        }
        for (i, b) in MSG.iter().enumerate() {
            assert_eq!(f.next_message().unwrap(), None, "incomplete at byte {i}");
            f.push(&[*b]);
        }
        assert_eq!(f.next_message().unwrap().as_deref(), Some(MSG));
        let mut two = MSG.to_vec();
        two.extend_from_slice(MSG);
        f.push(&two);
        assert_eq!(f.next_message().unwrap().as_deref(), Some(MSG));
        assert_eq!(f.next_message().unwrap().as_deref(), Some(MSG));
        assert_eq!(f.next_message().unwrap(), None);
    }

    #[test]
    fn double_crlfs_are_pings_and_single_ones_pongs() {
        let mut f = StreamFramer::default();
        // A ping in two reads is still one ping.
        f.push(b"\r\n");
        assert_eq!(f.next_message().unwrap(), None);
        assert_eq!(f.take_pings(), 0);
        f.push(b"\r\n");
        assert_eq!(f.next_message().unwrap(), None);
        assert_eq!(f.take_pings(), 1);
        assert_eq!(f.take_pings(), 0, "taken once");
        // A pong before a message is skipped; two pings before it count.
        f.push(b"\r\n");
        f.push(MSG);
        assert_eq!(f.next_message().unwrap().as_deref(), Some(MSG));
        assert_eq!(f.take_pings(), 0);
        f.push(b"\r\n\r\n\r\n\r\n");
        f.push(MSG);
        assert_eq!(f.next_message().unwrap().as_deref(), Some(MSG));
        assert_eq!(f.take_pings(), 2);
        assert!(!f.pending());
    }

    #[test]
    fn missing_or_huge_length_is_an_error() {
        let mut f = StreamFramer::default();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
        assert!(f.next_message().is_err());
        let mut f = StreamFramer::default();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99999999\r\n\r\n");
        assert!(f.next_message().is_err());
        let mut f = StreamFramer::default();
        f.push(&vec![b'a'; MAX_HEAD + 1]);
        assert!(f.next_message().is_err());
    }

    #[test]
    fn a_promised_body_over_the_limit_is_refused_at_the_header() {
        let mut f = StreamFramer::with_limit(1024);
        f.push(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 1048576\r\n\r\nabc");
        assert!(f.next_message().is_err());
        let mut f = StreamFramer::with_limit(1024);
        f.push(b"\r\n\r\n");
        assert!(!f.pending());
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\n");
        assert!(f.pending());
        f.push(&[b'x'; 1100]);
        assert!(f.next_message().is_err(), "an endless header section");
    }
}
