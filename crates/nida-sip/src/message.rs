//! SIP message model, parser and serializer (RFC 3261 sections 7, 20 and 25).
//!
//! The parser is tolerant where RFC 3261 and RFC 4475 say a message is valid
//! (folded headers, whitespace before the colon, compact header names,
//! extension methods, `tel:` and IPv6 Request-URIs) and strict where they say
//! it is not (bad request line, mismatched CSeq, duplicated single-valued
//! headers, wrong Content-Length). Parsing happens in two steps: framing reads
//! the start line, the header lines and the body; [`Request::validate`] then
//! checks the rules a server must enforce before acting on a request.

use crate::error::Error;
use std::fmt::{self, Write as _};

/// A SIP request method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE (RFC 3261).
    Invite,
    /// ACK (RFC 3261).
    Ack,
    /// BYE (RFC 3261).
    Bye,
    /// CANCEL (RFC 3261).
    Cancel,
    /// OPTIONS (RFC 3261).
    Options,
    /// REGISTER (RFC 3261).
    Register,
    /// INFO (RFC 6086).
    Info,
    /// UPDATE (RFC 3311).
    Update,
    /// PRACK (RFC 3262).
    Prack,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// NOTIFY (RFC 6665).
    Notify,
    /// REFER (RFC 3515).
    Refer,
    /// MESSAGE (RFC 3428).
    Message,
    /// PUBLISH (RFC 3903).
    Publish,
    /// Any other method token (extension methods are legal SIP).
    Other(String),
}

impl Method {
    /// Reads a method token. Methods are case-sensitive (RFC 3261 7.1).
    pub fn parse(token: &str) -> Result<Method, Error> {
        if token.is_empty() || !token.bytes().all(is_token_char) {
            return Err(Error::bad(format!("invalid method token {token:?}")));
        }
        Ok(match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_string()),
        })
    }

    /// The method as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header line, name in its canonical long form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Canonical name (`Via`, `Call-ID`, ...); compact forms are expanded.
    pub name: String,
    /// Value with folding removed and surrounding whitespace trimmed.
    pub value: String,
}

/// The header section of a message, in wire order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

/// Whether `value` holds a control character other than a tab.
pub fn has_control(value: &str) -> bool {
    value.chars().any(|c| c.is_control() && c != '\t')
}

impl Headers {
    /// First value of a header, by case-insensitive name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Every value of a header in order, splitting none of them.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Every element of a comma-separated list header (Via, Route, ...)
    /// across all its lines.
    pub fn list<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.all(name).flat_map(split_list)
    }

    /// Number of header lines with this name.
    pub fn count(&self, name: &str) -> usize {
        self.all(name).count()
    }

    /// Appends a header line.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push(Header {
            name: canonical_name(name).to_string(),
            value: value.into(),
        });
    }

    /// Removes every line of a header.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|h| !h.name.eq_ignore_ascii_case(name));
    }

    /// Replaces every line of a header by one value.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.remove(name);
        self.push(name, value);
    }

    /// Iterates over all lines.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method of the request line.
    pub method: Method,
    /// The Request-URI, as written.
    pub uri: String,
    /// Header lines.
    pub headers: Headers,
    /// Message body (Content-Length bytes).
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code, 100 to 699.
    pub status: u16,
    /// Reason phrase (may be empty).
    pub reason: String,
    /// Header lines.
    pub headers: Headers,
    /// Message body.
    pub body: Vec<u8>,
}

/// Either kind of SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// Why a message could not be framed, with whatever of the request was read,
/// so that a server can still answer it.
#[derive(Debug, Clone)]
pub struct ParseError {
    /// What was wrong, with the status code to answer.
    pub error: Error,
    /// The request as far as it could be read; `None` when not even the
    /// request line and the headers could be read (the message is dropped).
    pub partial: Option<Box<Request>>,
}

/// Compact header forms (RFC 3261 7.3.3 and later RFCs) and their long names.
const COMPACT: &[(char, &str)] = &[
    ('a', "Accept-Contact"),
    ('b', "Referred-By"),
    ('c', "Content-Type"),
    ('d', "Request-Disposition"),
    ('e', "Content-Encoding"),
    ('f', "From"),
    ('i', "Call-ID"),
    ('j', "Reject-Contact"),
    ('k', "Supported"),
    ('l', "Content-Length"),
    ('m', "Contact"),
    ('o', "Event"),
    ('r', "Refer-To"),
    ('s', "Subject"),
    ('t', "To"),
    ('u', "Allow-Events"),
    ('v', "Via"),
    ('x', "Session-Expires"),
    ('y', "Identity"),
];

/// Canonical spelling of headers nida reads or writes, so lookups and output
/// are uniform whatever case the peer used.
const CANONICAL: &[&str] = &[
    "Accept",
    "Allow",
    "Call-ID",
    "Contact",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "From",
    "Max-Forwards",
    "Record-Route",
    "Require",
    "Route",
    "Retry-After",
    "Server",
    "Supported",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "WWW-Authenticate",
];

/// Expands a compact name and normalises the case of known names.
pub fn canonical_name(name: &str) -> &str {
    if name.len() == 1 {
        let c = name.as_bytes()[0].to_ascii_lowercase() as char;
        if let Some((_, long)) = COMPACT.iter().find(|(k, _)| *k == c) {
            return long;
        }
    }
    CANONICAL
        .iter()
        .find(|k| k.eq_ignore_ascii_case(name))
        .copied()
        .unwrap_or(name)
}

/// `token` characters of RFC 3261 25.1.
pub fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Headers that may appear once only (RFC 3261 7.3.1 and 20).
const SINGLE: &[&str] = &[
    "Call-ID",
    "CSeq",
    "From",
    "To",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
];

/// Largest value of CSeq numbers (RFC 3261 8.1.1.5: less than 2**31).
const MAX_CSEQ: u64 = (1 << 31) - 1;

/// Parses one whole message. For a stream transport the caller frames it
/// first (see [`crate::framing`]) and passes exactly one message.
pub fn parse(data: &[u8]) -> Result<Message, ParseError> {
    let no_partial = |error| ParseError {
        error,
        partial: None,
    };
    // Leading CRLFs are keep-alives (RFC 5626) or stray line ends: skip them.
    let start = data
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .unwrap_or(data.len());
    let data = &data[start..];
    let (head_len, body_start) = find_head_end(data)
        .ok_or_else(|| no_partial(Error::bad("no empty line after the headers")))?;
    let head = std::str::from_utf8(&data[..head_len])
        .map_err(|_| no_partial(Error::bad("header section is not UTF-8")))?;
    let mut lines = unfold(head).into_iter();
    let first = lines
        .next()
        .ok_or_else(|| no_partial(Error::bad("empty message")))?;

    let mut headers = Headers::default();
    let mut header_error = None;
    for line in lines {
        match split_header(&line) {
            Ok((name, value)) => headers.push(name, value),
            Err(e) => {
                header_error.get_or_insert(e);
            }
        }
    }
    let raw_body = &data[body_start..];

    if first.starts_with("SIP/") {
        let resp = parse_status_line(&first).map_err(no_partial)?;
        if let Some(e) = header_error {
            return Err(no_partial(e));
        }
        let body = cut_body(&headers, raw_body).map_err(no_partial)?;
        return Ok(Message::Response(Response {
            status: resp.0,
            reason: resp.1,
            headers,
            body,
        }));
    }

    let with_partial = |error, req: &Request| ParseError {
        error,
        partial: Some(Box::new(req.clone())),
    };
    let (method, uri, version) = match parse_request_line(&first) {
        Ok(parts) => parts,
        Err(e) => {
            // A broken request line whose method can still be read is
            // answered 400 when the headers allow a response.
            let token = first.split(' ').next().unwrap_or_default();
            let Ok(method) = Method::parse(token) else {
                return Err(no_partial(e));
            };
            let req = Request {
                method,
                uri: first[token.len()..].trim().to_string(),
                headers,
                body: Vec::new(),
            };
            return Err(with_partial(e, &req));
        }
    };
    let mut req = Request {
        method,
        uri,
        headers,
        body: Vec::new(),
    };
    if let Some(e) = header_error {
        return Err(with_partial(e, &req));
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(with_partial(
            Error::Malformed {
                status: 505,
                reason: "Version Not Supported".into(),
            },
            &req,
        ));
    }
    match cut_body(&req.headers, raw_body) {
        Ok(body) => req.body = body,
        Err(e) => return Err(with_partial(e, &req)),
    }
    Ok(Message::Request(req))
}

/// Finds the end of the header section: returns (head length, body offset).
fn find_head_end(data: &[u8]) -> Option<(usize, usize)> {
    let crlf = data.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = data.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(c), Some(l)) if l < c => Some((l, l + 2)),
        (Some(c), _) => Some((c, c + 4)),
        (None, Some(l)) => Some((l, l + 2)),
        (None, None) => None,
    }
}

/// Splits the head into logical lines, joining folded continuation lines
/// (RFC 3261 7.3.1: a line starting with whitespace continues the previous).
fn unfold(head: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.push(' ');
                last.push_str(line.trim_start());
                continue;
            }
        }
        out.push(line.to_string());
    }
    out
}

fn split_header(line: &str) -> Result<(&str, String), Error> {
    let colon = line
        .find(':')
        .ok_or_else(|| Error::bad(format!("header line without a colon: {line:?}")))?;
    let name = line[..colon].trim_end_matches([' ', '\t']);
    if name.is_empty() || !name.bytes().all(is_token_char) {
        return Err(Error::bad(format!("invalid header name {name:?}")));
    }
    Ok((name, line[colon + 1..].trim().to_string()))
}

fn parse_status_line(line: &str) -> Result<(u16, String), Error> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    let reason = parts.next().unwrap_or_default();
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(Error::bad(format!("unsupported version {version:?}")));
    }
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::bad(format!("invalid status code {code:?}")));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| Error::bad("invalid status code"))?;
    if !(100..700).contains(&status) {
        return Err(Error::bad(format!("status code {status} out of range")));
    }
    Ok((status, reason.to_string()))
}

/// `Method SP Request-URI SP SIP-Version`, single spaces exactly
/// (RFC 4475 3.1.2.5 and 3.1.2.6 show extra whitespace must be rejected).
fn parse_request_line(line: &str) -> Result<(Method, String, String), Error> {
    let parts: Vec<&str> = line.split(' ').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || p.contains('\t')) {
        return Err(Error::bad("malformed request line"));
    }
    let method = Method::parse(parts[0])?;
    let uri = parts[1];
    if uri.starts_with('<') || !uri.contains(':') {
        return Err(Error::bad(format!("malformed Request-URI {uri:?}")));
    }
    if !parts[2].starts_with("SIP/") && !parts[2].starts_with("sip/") {
        return Err(Error::bad("malformed SIP version"));
    }
    Ok((method, uri.to_string(), parts[2].to_string()))
}

/// Applies Content-Length to the bytes after the head.
fn cut_body(headers: &Headers, raw: &[u8]) -> Result<Vec<u8>, Error> {
    if headers.count("Content-Length") > 1 {
        return Err(Error::bad("more than one Content-Length"));
    }
    let Some(cl) = headers.get("Content-Length") else {
        return Ok(raw.to_vec());
    };
    let len = parse_number(cl, u32::MAX as u64)
        .ok_or_else(|| Error::bad(format!("invalid Content-Length {cl:?}")))?
        as usize;
    if len > raw.len() {
        return Err(Error::bad("Content-Length larger than the body"));
    }
    Ok(raw[..len].to_vec())
}

/// A decimal number with at most `max` as its value.
pub fn parse_number(s: &str, max: u64) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|v| *v <= max)
}

impl Request {
    /// Checks the rules a server enforces before acting on a request:
    /// mandatory headers present once, CSeq well formed and matching the
    /// method, Max-Forwards a number, a readable top Via.
    pub fn validate(&self) -> Result<(), Error> {
        // RFC 3261 25.1: header values are text without control
        // characters (tabs aside); a NUL or an escape in one is an attack
        // on whatever reads it later (logs, the store, a C library).
        if let Some(h) = self.headers.iter().find(|h| has_control(&h.value)) {
            return Err(Error::bad(format!("control character in {}", h.name)));
        }
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            if self.headers.get(name).is_none() {
                return Err(Error::bad(format!("missing {name}")));
            }
        }
        for name in SINGLE {
            if self.headers.count(name) > 1 {
                return Err(Error::bad(format!("{name} appears more than once")));
            }
        }
        let (_, cseq_method) = self.cseq()?;
        if cseq_method != self.method {
            return Err(Error::bad("CSeq method does not match the request"));
        }
        if let Some(mf) = self.headers.get("Max-Forwards") {
            parse_number(mf, 255).ok_or_else(|| Error::bad("invalid Max-Forwards"))?;
        }
        self.top_via()?;
        crate::headers::NameAddr::parse(self.headers.get("From").unwrap_or_default())?;
        crate::headers::NameAddr::parse(self.headers.get("To").unwrap_or_default())?;
        if self.call_id().is_empty() {
            return Err(Error::bad("empty Call-ID"));
        }
        Ok(())
    }

    /// The CSeq number and method.
    pub fn cseq(&self) -> Result<(u32, Method), Error> {
        parse_cseq(self.headers.get("CSeq").unwrap_or_default())
    }

    /// The Call-ID value.
    pub fn call_id(&self) -> &str {
        self.headers.get("Call-ID").unwrap_or_default()
    }

    /// The first Via entry.
    pub fn top_via(&self) -> Result<crate::headers::Via, Error> {
        let top = self
            .headers
            .list("Via")
            .next()
            .ok_or_else(|| Error::bad("missing Via"))?;
        crate::headers::Via::parse(top)
    }

    /// Max-Forwards, 70 when absent (the RFC 3261 default for new requests).
    pub fn max_forwards(&self) -> u32 {
        self.headers
            .get("Max-Forwards")
            .and_then(|v| parse_number(v, 255))
            .unwrap_or(70) as u32
    }

    /// Serialises the request with a correct Content-Length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} SIP/2.0\r\n", self.method, self.uri);
        write_headers(&mut out, &self.headers, self.body.len());
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

impl Response {
    /// The CSeq number and method.
    pub fn cseq(&self) -> Result<(u32, Method), Error> {
        parse_cseq(self.headers.get("CSeq").unwrap_or_default())
    }

    /// Serialises the response with a correct Content-Length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("SIP/2.0 {} {}\r\n", self.status, self.reason);
        write_headers(&mut out, &self.headers, self.body.len());
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

fn write_headers(out: &mut String, headers: &Headers, body_len: usize) {
    for h in headers.iter() {
        if h.name != "Content-Length" {
            let _ = write!(out, "{}: {}\r\n", h.name, h.value);
        }
    }
    let _ = write!(out, "Content-Length: {body_len}\r\n\r\n");
}

fn parse_cseq(value: &str) -> Result<(u32, Method), Error> {
    let mut it = value.split_whitespace();
    let num = it.next().unwrap_or_default();
    let method = it.next().unwrap_or_default();
    if it.next().is_some() {
        return Err(Error::bad("malformed CSeq"));
    }
    let n = parse_number(num, MAX_CSEQ).ok_or_else(|| Error::bad("invalid CSeq number"))?;
    Ok((n as u32, Method::parse(method)?))
}

/// Splits a header value at commas that are outside quotes and angle
/// brackets, trimming each element.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped, mut start) = (false, false, false, 0);
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> Request {
        match parse(text.as_bytes()).expect("parses") {
            Message::Request(r) => r,
            Message::Response(_) => panic!("expected a request"),
        }
    }

    #[test]
    fn folded_lines_compact_names_and_space_before_colon() {
        let r = req("OPTIONS sip:nida@127.0.0.1 SIP/2.0\r\n\
             v : SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
             f: <sip:a@b>;tag=1\r\n\
             t: <sip:nida@127.0.0.1>\r\n\
             i: abc\r\n\
             Subject: one\r\n  two\r\n\
             CSeq: 1 OPTIONS\r\n\
             l: 0\r\n\r\n");
        assert_eq!(
            r.headers.get("Via"),
            Some("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1")
        );
        assert_eq!(r.headers.get("subject"), Some("one two"));
        assert_eq!(r.call_id(), "abc");
        r.validate().expect("valid");
    }

    #[test]
    fn content_length_cuts_and_rejects() {
        let base = "MESSAGE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\n\
                    From: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\n";
        let r = req(&format!("{base}Content-Length: 3\r\n\r\nabcdef"));
        assert_eq!(r.body, b"abc");
        let e = parse(format!("{base}Content-Length: 9\r\n\r\nabc").as_bytes()).unwrap_err();
        assert!(matches!(e.error, Error::Malformed { status: 400, .. }));
        assert!(e.partial.is_some(), "enough was read to answer 400");
        let e = parse(format!("{base}Content-Length: -3\r\n\r\nabc").as_bytes()).unwrap_err();
        assert!(matches!(e.error, Error::Malformed { status: 400, .. }));
    }

    #[test]
    fn wrong_version_is_505() {
        let e = parse(b"OPTIONS sip:x@y SIP/7.0\r\nVia: SIP/2.0/UDP h\r\n\r\n").unwrap_err();
        assert!(matches!(e.error, Error::Malformed { status: 505, .. }));
    }

    #[test]
    fn extra_spaces_in_request_line_are_rejected_with_the_headers_kept() {
        let e = parse(b"OPTIONS  sip:x@y SIP/2.0\r\nVia: a\r\n\r\n").unwrap_err();
        assert_eq!(e.partial.unwrap().headers.get("Via"), Some("a"));
        assert!(parse(b"OPTIONS <sip:x@y> SIP/2.0\r\nVia: a\r\n\r\n").is_err());
        assert!(parse(b"OPTIONS sip:x@y SIP/2.0 \r\nVia: a\r\n\r\n").is_err());
        let e = parse(b"\x01garbage\r\n\r\n").unwrap_err();
        assert!(e.partial.is_none());
    }

    #[test]
    fn serialises_round_trip() {
        let text = "BYE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\n\
                    From: <sip:a@b>;tag=1\r\nTo: <sip:x@y>;tag=2\r\nCall-ID: c\r\nCSeq: 2 BYE\r\n\
                    Content-Length: 0\r\n\r\n";
        let r = req(text);
        assert_eq!(String::from_utf8(r.to_bytes()).unwrap(), text);
    }

    #[test]
    fn list_splitting_respects_quotes() {
        assert_eq!(
            split_list(r#""a, b" <sip:x>, <sip:y;lr>,sip:z"#),
            vec![r#""a, b" <sip:x>"#, "<sip:y;lr>", "sip:z"]
        );
    }
}
