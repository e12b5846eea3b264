//! Typed views of the header values nida acts on: Via, name-addr (From, To,
//! Contact, Route) and SIP URIs, with their parameters.

use crate::error::Error;
use std::net::{IpAddr, SocketAddr};

/// `;name=value` parameters in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    fn parse(s: &str) -> Params {
        Params(
            s.split(';')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
                    None => (p.to_string(), None),
                })
                .collect(),
        )
    }

    /// Whether the parameter is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    /// The value of a parameter, `None` when absent or valueless.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_deref())
    }
}

/// One Via entry: `SIP/2.0/UDP host:port;branch=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token, upper case (`UDP`, `TCP`, `TLS`, ...).
    pub transport: String,
    /// sent-by host (IPv6 without brackets).
    pub host: String,
    /// sent-by port, if written.
    pub port: Option<u16>,
    /// Parameters (branch, rport, received, ...).
    pub params: Params,
}

impl Via {
    /// Parses one Via element (already split from a list).
    pub fn parse(s: &str) -> Result<Via, Error> {
        let bad = || Error::bad(format!("malformed Via {s:?}"));
        // sent-protocol may carry whitespace around the slashes.
        let mut rest = s.trim();
        let mut proto = Vec::new();
        for i in 0..3 {
            let end = if i < 2 {
                rest.find('/').ok_or_else(bad)?
            } else {
                rest.find(|c: char| c.is_whitespace()).ok_or_else(bad)?
            };
            let tok = rest[..end].trim();
            if tok.is_empty() || !tok.bytes().all(crate::message::is_token_char) {
                return Err(bad());
            }
            proto.push(tok.to_ascii_uppercase());
            rest = rest[end..].trim_start_matches('/').trim_start();
        }
        if proto[0] != "SIP" || proto[1] != "2.0" {
            return Err(bad());
        }
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (rest[..i].trim(), Params::parse(&rest[i + 1..])),
            None => (rest.trim(), Params::default()),
        };
        let (host, port) = split_host_port(sent_by).ok_or_else(bad)?;
        Ok(Via {
            transport: proto.swap_remove(2),
            host,
            port,
            params,
        })
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// sent-by as `host:port` text, for transaction matching.
    pub fn sent_by(&self) -> String {
        format!("{}:{}", self.host, self.port.unwrap_or(5060))
    }
}

/// `host[:port]` with IPv6 references in brackets; rejects empty or
/// whitespace-containing hosts.
pub fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        host.parse::<std::net::Ipv6Addr>().ok()?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return None,
        };
        (host, port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b))
    {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.trim().parse::<u16>().ok()?),
        None => None,
    };
    Some((host.to_string(), port))
}

/// A parsed `sip:` or `sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sip` or `sips`, lower case.
    pub scheme: String,
    /// User part, percent-escapes left as written.
    pub user: Option<String>,
    /// Host (IPv6 without brackets).
    pub host: String,
    /// Port, if written.
    pub port: Option<u16>,
    /// URI parameters (`transport`, `lr`, ...).
    pub params: Params,
}

impl SipUri {
    /// Parses a SIP URI. Other schemes return `None`.
    pub fn parse(s: &str) -> Option<SipUri> {
        let (scheme, rest) = s.trim().split_once(':')?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "sip" && scheme != "sips" {
            return None;
        }
        let rest = rest.split('?').next().unwrap_or_default();
        let (user, hostpart) = match rest.rfind('@') {
            Some(i) => (Some(rest[..i].to_string()), &rest[i + 1..]),
            None => (None, rest),
        };
        let (hostport, params) = match hostpart.find(';') {
            Some(i) => (&hostpart[..i], Params::parse(&hostpart[i + 1..])),
            None => (hostpart, Params::default()),
        };
        let (host, port) = split_host_port(hostport)?;
        Some(SipUri {
            scheme,
            user,
            host,
            port,
            params,
        })
    }

    /// The socket address when the host is an IP literal.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.host.parse().ok()?;
        Some(SocketAddr::new(ip, self.port.unwrap_or(5060)))
    }
}

/// `"Display" <uri>;params` or `uri;params` (From, To, Contact, Route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name without quotes, if any.
    pub display: Option<String>,
    /// The URI as written.
    pub uri: String,
    /// Header parameters (tag, expires, ...).
    pub params: Params,
}

impl NameAddr {
    /// Parses a name-addr or addr-spec header value.
    pub fn parse(s: &str) -> Result<NameAddr, Error> {
        let s = s.trim();
        let bad = |why: &str| Error::bad(format!("{why} in {s:?}"));
        if !balanced_quotes(s) {
            return Err(bad("unbalanced quotes"));
        }
        if let Some(open) = find_unquoted(s, '<') {
            let close = s[open..]
                .find('>')
                .map(|i| i + open)
                .ok_or_else(|| bad("missing '>'"))?;
            let display = s[..open].trim();
            if !display.is_empty() && !display.starts_with('"') {
                // An unquoted display name is a sequence of tokens.
                if !display
                    .split_whitespace()
                    .all(|t| t.bytes().all(crate::message::is_token_char))
                {
                    return Err(bad("display name needs quotes"));
                }
            }
            let display = if display.is_empty() {
                None
            } else {
                Some(display.trim_matches('"').to_string())
            };
            let uri = s[open + 1..close].trim();
            if uri.is_empty() || !uri.contains(':') {
                return Err(bad("missing URI"));
            }
            let rest = s[close + 1..].trim();
            if !rest.is_empty() && !rest.starts_with(';') {
                return Err(bad("text after '>'"));
            }
            return Ok(NameAddr {
                display,
                uri: uri.to_string(),
                params: Params::parse(rest),
            });
        }
        // addr-spec: parameters after the URI belong to the header.
        let (uri, params) = match s.find(';') {
            Some(i) => (&s[..i], Params::parse(&s[i + 1..])),
            None => (s, Params::default()),
        };
        if uri.is_empty() || !uri.contains(':') || uri.contains(char::is_whitespace) {
            return Err(bad("malformed address"));
        }
        Ok(NameAddr {
            display: None,
            uri: uri.to_string(),
            params,
        })
    }

    /// The tag parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }
}

fn balanced_quotes(s: &str) -> bool {
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        }
    }
    !quoted
}

fn find_unquoted(s: &str, needle: char) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == needle && !quoted {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_spaces_ipv6_and_rport() {
        let v =
            Via::parse("SIP / 2.0 / udp [2001:db8::9:1]:5070 ; branch=z9hG4bKx ;rport").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "2001:db8::9:1");
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.branch(), Some("z9hG4bKx"));
        assert!(v.params.has("rport"));
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("SIP/2.0/UDP host:99999").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(r#""J \"Rosenberg\"" <sip:j@example.com>;tag=98asjd8"#).unwrap();
        assert_eq!(n.tag(), Some("98asjd8"));
        assert_eq!(n.uri, "sip:j@example.com");
        let n = NameAddr::parse("sip:user@host;tag=1").unwrap();
        assert_eq!((n.uri.as_str(), n.tag()), ("sip:user@host", Some("1")));
        assert!(NameAddr::parse(r#""Bob <sip:b@x>;tag=1"#).is_err());
        assert!(NameAddr::parse("Bob Smith@ <sip:b@x>").is_err());
        assert!(NameAddr::parse("<sip:b@x").is_err());
    }

    #[test]
    fn sip_uri_parts() {
        let u = SipUri::parse("sip:alice@[::1]:5062;transport=tcp").unwrap();
        assert_eq!(u.socket_addr(), Some("[::1]:5062".parse().unwrap()));
        assert_eq!(u.params.value("transport"), Some("tcp"));
        assert!(SipUri::parse("tel:+15551234").is_none());
    }
}

/// The dialog a Refer-To URI's `Replaces` header names (RFC 3891, as an
/// attended transfer puts it, RFC 5589 7.3): Call-ID, `to-tag` and
/// `from-tag`, with the URI's %-escapes undone; `None` without one.
pub fn replaces_in(uri: &str) -> Option<Replaces> {
    let (_, headers) = uri.split_once('?')?;
    let value = headers
        .split('&')
        .find_map(|h| {
            h.split_once('=')
                .filter(|(k, _)| k.eq_ignore_ascii_case("Replaces"))
        })?
        .1;
    parse_replaces(&unescape(value)?)
}

/// A `Replaces` header's value (RFC 3891 6.1): `call-id;to-tag=..;from-tag=..`.
pub fn parse_replaces(value: &str) -> Option<Replaces> {
    let mut parts = value.split(';');
    let call_id = parts.next()?.trim().to_string();
    let (mut to_tag, mut from_tag) = (None, None);
    for p in parts {
        match p.trim().split_once('=') {
            Some((k, v)) if k.trim().eq_ignore_ascii_case("to-tag") => {
                to_tag = Some(v.trim().to_string())
            }
            Some((k, v)) if k.trim().eq_ignore_ascii_case("from-tag") => {
                from_tag = Some(v.trim().to_string())
            }
            _ => {}
        }
    }
    (!call_id.is_empty()).then_some(Replaces {
        call_id,
        to_tag: to_tag?,
        from_tag: from_tag?,
    })
}

/// A dialog named by `Replaces` (RFC 3891): its Call-ID, the tag of the
/// side receiving it (`to-tag`) and of the other (`from-tag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    /// Call-ID.
    pub call_id: String,
    /// The receiving side's tag.
    pub to_tag: String,
    /// The other side's tag.
    pub from_tag: String,
}

/// `%XX` escapes decoded; `None` for a broken escape or bytes that are
/// not UTF-8.
fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod replaces_tests {
    use super::*;

    #[test]
    fn a_refer_to_with_replaces_names_the_dialog() {
        let uri = "sip:1002@192.0.2.1:5060?Replaces=abc%40host%3Bto-tag%3Dn1%3Bfrom-tag%3Dl2";
        assert_eq!(
            replaces_in(uri),
            Some(Replaces {
                call_id: "abc@host".into(),
                to_tag: "n1".into(),
                from_tag: "l2".into()
            })
        );
        // Any order, and other URI headers beside it.
        let uri = "sip:x@h?Subject=hi&replaces=c1%3Bfrom-tag%3Df%3Bto-tag%3Dt";
        assert_eq!(replaces_in(uri).unwrap().to_tag, "t");
        for bad in [
            "sip:1002@h",
            "sip:1002@h?Replaces=c1%3Bto-tag%3Dt",
            "sip:1002@h?Replaces=c1%3Bto-tag%3Dt%3Bfrom-tag%3Df%ZZ",
            "sip:1002@h?Replaces=%3Bto-tag%3Dt%3Bfrom-tag%3Df",
        ] {
            assert_eq!(replaces_in(bad), None, "{bad}");
        }
    }
}
