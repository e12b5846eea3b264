//! Keys carried by SIP INFO: `application/dtmf-relay` (`Signal=5`,
//! `Duration=160`, one per line) and `application/dtmf` (the key alone),
//! as carriers and PBXs send them in place of RFC 4733 packets.

/// The content types nida reads keys from (for `Accept` in a 415).
pub const INFO_TYPES: &str = "application/dtmf-relay, application/dtmf";

/// Why an INFO body gave no key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InfoError {
    /// Another content type: not a key.
    #[error("not a DTMF content type")]
    Unsupported,
    /// A DTMF content type whose body names no key.
    #[error("no key in the body")]
    Unreadable,
}

/// The key an INFO carries, from its Content-Type and body.
pub fn info_digit(content_type: &str, body: &[u8]) -> Result<char, InfoError> {
    let kind = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let text = std::str::from_utf8(body).map_err(|_| InfoError::Unreadable)?;
    let signal = match kind.as_str() {
        "application/dtmf-relay" => text
            .lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("signal"))
            .map(|(_, v)| v.trim())
            .ok_or(InfoError::Unreadable)?,
        "application/dtmf" => text.trim(),
        _ => return Err(InfoError::Unsupported),
    };
    key(signal).ok_or(InfoError::Unreadable)
}

/// A key by name: the character itself, or the event numbers 10 (`*`)
/// and 11 (`#`) some senders use (RFC 4733's numbering).
fn key(s: &str) -> Option<char> {
    match s {
        "10" => return Some('*'),
        "11" => return Some('#'),
        _ => {}
    }
    let mut chars = s.chars();
    let c = chars.next()?.to_ascii_uppercase();
    (chars.next().is_none() && "0123456789*#ABCD".contains(c)).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_and_plain_bodies() {
        let relay = "application/dtmf-relay";
        assert_eq!(info_digit(relay, b"Signal=5\r\nDuration=160\r\n"), Ok('5'));
        assert_eq!(info_digit(relay, b"Signal= #\nDuration=100"), Ok('#'));
        assert_eq!(info_digit(relay, b"signal=11\r\n"), Ok('#'));
        assert_eq!(info_digit("Application/DTMF; x=y", b"10"), Ok('*'));
        assert_eq!(info_digit("application/dtmf", b"7\r\n"), Ok('7'));
        assert_eq!(info_digit("application/dtmf", b"d"), Ok('D'));
    }

    #[test]
    fn other_types_and_unreadable_bodies() {
        assert_eq!(
            info_digit("application/media_control+xml", b"<x/>"),
            Err(InfoError::Unsupported)
        );
        assert_eq!(
            info_digit("application/dtmf-relay", b"Duration=160"),
            Err(InfoError::Unreadable)
        );
        assert_eq!(
            info_digit("application/dtmf", b"12"),
            Err(InfoError::Unreadable)
        );
        assert_eq!(
            info_digit("application/dtmf", b"E"),
            Err(InfoError::Unreadable)
        );
        assert_eq!(
            info_digit("application/dtmf", &[0xff]),
            Err(InfoError::Unreadable)
        );
    }
}
