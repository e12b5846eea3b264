//! SDP (RFC 8866) reading and the offer/answer model (RFC 3264) for audio
//! calls: pick PCMU or PCMA and telephone-event from an offer, write the
//! answer, or write an offer for a late-offer INVITE. SRTP keys travel in
//! `a=crypto` lines (SDES, RFC 4568) when the signalling is encrypted.

use crate::error::Error;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// A codec nida speaks with SIP phones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// G.722 (wideband phones), static payload type 9; its RTP clock is
    /// 8000 (RFC 3551 4.5.2) though it samples at 16 kHz.
    G722,
}

impl Codec {
    /// The static RTP payload type (RFC 3551).
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::G722 => 9,
        }
    }

    /// The rtpmap encoding name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
        }
    }
}

/// Media direction attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// a=sendrecv (the default).
    SendRecv,
    /// a=sendonly.
    SendOnly,
    /// a=recvonly.
    RecvOnly,
    /// a=inactive.
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Whether this side sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this side receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The direction that sends and receives as told.
    pub fn from_flags(send: bool, receive: bool) -> Direction {
        match (send, receive) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// The direction an answerer uses for an offered one (RFC 3264 6.1).
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }
}

/// One `a=rtpmap` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type number.
    pub pt: u8,
    /// Encoding name as written.
    pub name: String,
    /// Clock rate.
    pub rate: u32,
}

/// An SRTP crypto suite nida speaks (RFC 4568 6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoSuite {
    /// `AES_CM_128_HMAC_SHA1_80`.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`.
    AesCm128HmacSha1_32,
}

impl CryptoSuite {
    /// The name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }
}

/// One usable `a=crypto` line: its tag, suite and the 30 bytes of master
/// key and salt.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SdesKey {
    /// The tag the answer repeats.
    pub tag: u32,
    /// The suite.
    pub suite: CryptoSuite,
    /// Master key (16 bytes) and salt (14).
    pub master: [u8; 30],
}

impl std::fmt::Debug for SdesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key itself stays out of logs.
        write!(f, "SdesKey({} {})", self.tag, self.suite.name())
    }
}

/// Reads `a=crypto:<tag> <suite> inline:<key||salt>[|lifetime][|MKI:len]
/// [session params]`: `None` for a suite nida does not speak, a key of
/// the wrong length, an MKI or any session parameter (nida uses neither).
fn parse_crypto(arg: &str) -> Option<SdesKey> {
    use base64::Engine as _;
    let mut parts = arg.split_whitespace();
    let tag = parts.next()?.parse().ok()?;
    let suite = match parts.next()? {
        "AES_CM_128_HMAC_SHA1_80" => CryptoSuite::AesCm128HmacSha1_80,
        "AES_CM_128_HMAC_SHA1_32" => CryptoSuite::AesCm128HmacSha1_32,
        _ => return None,
    };
    let key_params = parts.next()?;
    if parts.next().is_some() || key_params.contains(';') {
        return None;
    }
    let mut fields = key_params.strip_prefix("inline:")?.split('|');
    let key = fields.next()?;
    for extra in fields {
        // A lifetime is fine (nida's calls never come near 2^31 packets);
        // an MKI changes the packet format.
        if extra.contains(':') {
            return None;
        }
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(key).ok()?;
    Some(SdesKey {
        tag,
        suite,
        master: bytes.try_into().ok()?,
    })
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    /// Media type (`audio`, `video`, ...).
    pub media: String,
    /// Port (0 means rejected or disabled).
    pub port: u16,
    /// Transport protocol (`RTP/AVP`, `RTP/SAVP`, ...).
    pub proto: String,
    /// Payload types in preference order.
    pub formats: Vec<u8>,
    /// rtpmap attributes.
    pub rtpmaps: Vec<RtpMap>,
    /// Connection address for this section (media-level c=, else session-level).
    pub addr: Option<IpAddr>,
    /// Direction.
    pub direction: Direction,
    /// a=ptime in milliseconds, if given.
    pub ptime: Option<u32>,
    /// The usable `a=crypto` lines, in the order written.
    pub crypto: Vec<SdesKey>,
    /// `a=rtcp` (RFC 3605): the RTCP port when not the RTP port + 1.
    pub rtcp: Option<u16>,
    /// `a=rtcp-mux` (RFC 5761): RTCP on the RTP port.
    pub rtcp_mux: bool,
}

impl MediaSection {
    /// Encoding name and rate of a payload type, from rtpmap or the static
    /// table of RFC 3551.
    pub fn encoding(&self, pt: u8) -> Option<(String, u32)> {
        if let Some(m) = self.rtpmaps.iter().find(|m| m.pt == pt) {
            return Some((m.name.to_ascii_uppercase(), m.rate));
        }
        match pt {
            0 => Some(("PCMU".into(), 8000)),
            8 => Some(("PCMA".into(), 8000)),
            _ => None,
        }
    }
}

/// A session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// Session-level connection address.
    pub addr: Option<IpAddr>,
    /// The m= sections in order.
    pub media: Vec<MediaSection>,
    /// The body as received (a media gateway hands it on whole).
    pub raw: Vec<u8>,
}

impl SessionDescription {
    /// Parses an SDP body. Accepts LF-only line ends and unknown lines.
    pub fn parse(body: &[u8]) -> Result<SessionDescription, Error> {
        let text = std::str::from_utf8(body).map_err(|_| Error::Sdp("not UTF-8".into()))?;
        let mut sd = SessionDescription {
            addr: None,
            media: Vec::new(),
            raw: body.to_vec(),
        };
        let mut saw_version = false;
        for raw in text.lines() {
            let line = raw.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let (kind, value) = line
                .split_once('=')
                .filter(|(k, _)| k.len() == 1)
                .ok_or_else(|| Error::Sdp(format!("bad line {line:?}")))?;
            match kind {
                "v" => saw_version = value.trim() == "0",
                "c" => {
                    let addr = parse_connection(value)?;
                    match sd.media.last_mut() {
                        Some(m) => m.addr = Some(addr),
                        None => sd.addr = Some(addr),
                    }
                }
                "m" => sd.media.push(parse_media(value, sd.addr)?),
                "a" => {
                    if let Some(m) = sd.media.last_mut() {
                        parse_attribute(m, value)?;
                    }
                }
                _ => {}
            }
        }
        if !saw_version {
            return Err(Error::Sdp("missing v=0".into()));
        }
        Ok(sd)
    }
}

fn parse_connection(value: &str) -> Result<IpAddr, Error> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    if parts.len() != 3 || parts[0] != "IN" {
        return Err(Error::Sdp(format!("bad c= line {value:?}")));
    }
    // Multicast TTL suffixes ("/127") are not for unicast calls.
    let host = parts[2].split('/').next().unwrap_or_default();
    host.parse()
        .map_err(|_| Error::Sdp(format!("bad connection address {host:?}")))
}

fn parse_media(value: &str, session_addr: Option<IpAddr>) -> Result<MediaSection, Error> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    if parts.len() < 3 {
        return Err(Error::Sdp(format!("bad m= line {value:?}")));
    }
    let port = parts[1]
        .split('/')
        .next()
        .unwrap_or_default()
        .parse()
        .map_err(|_| Error::Sdp(format!("bad port in m= line {value:?}")))?;
    let formats = parts[3..].iter().filter_map(|f| f.parse().ok()).collect();
    Ok(MediaSection {
        media: parts[0].to_string(),
        port,
        proto: parts[2].to_string(),
        formats,
        rtpmaps: Vec::new(),
        addr: session_addr,
        direction: Direction::SendRecv,
        ptime: None,
        crypto: Vec::new(),
        rtcp: None,
        rtcp_mux: false,
    })
}

fn parse_attribute(m: &mut MediaSection, value: &str) -> Result<(), Error> {
    let (name, arg) = value.split_once(':').unwrap_or((value, ""));
    match name {
        "rtpmap" => {
            let (pt, enc) = arg
                .trim()
                .split_once(' ')
                .ok_or_else(|| Error::Sdp(format!("bad rtpmap {arg:?}")))?;
            let mut enc = enc.trim().split('/');
            let name = enc.next().unwrap_or_default().to_string();
            let rate = enc.next().and_then(|r| r.parse().ok()).unwrap_or(0);
            if let Ok(pt) = pt.parse() {
                m.rtpmaps.push(RtpMap { pt, name, rate });
            }
        }
        "ptime" => m.ptime = arg.trim().parse().ok(),
        "rtcp" => m.rtcp = arg.split_whitespace().next().and_then(|p| p.parse().ok()),
        "rtcp-mux" => m.rtcp_mux = true,
        "crypto" => m.crypto.extend(parse_crypto(arg)),
        "sendrecv" => m.direction = Direction::SendRecv,
        "sendonly" => m.direction = Direction::SendOnly,
        "recvonly" => m.direction = Direction::RecvOnly,
        "inactive" => m.direction = Direction::Inactive,
        _ => {}
    }
    Ok(())
}

/// What both sides agreed for the audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Audio codec.
    pub codec: Codec,
    /// telephone-event payload type, when the peer offered it.
    pub telephone_event: Option<u8>,
    /// Where the peer wants RTP.
    pub remote: SocketAddr,
    /// Direction seen from nida.
    pub direction: Direction,
    /// Index of the audio m= section used.
    pub index: usize,
    /// For SRTP (RTP/SAVP), the peer's key: what it sends is protected
    /// with it.
    pub srtp: Option<SdesKey>,
    /// The packet time nida sends, in ms: the peer's `a=ptime` brought
    /// within what G.711 over RTP allows (10 to 60 ms in steps of 10), 20
    /// when the peer names none.
    pub ptime: u32,
    /// Where the peer takes RTCP: `a=rtcp`'s port, else the RTP port + 1.
    pub rtcp: SocketAddr,
    /// RTCP goes on the RTP port (the peer offered `a=rtcp-mux`).
    pub rtcp_mux: bool,
}

/// The packet time nida sends for a peer's `a=ptime` (see
/// [`Negotiated::ptime`]).
pub fn sending_ptime(asked: Option<u32>) -> u32 {
    asked.map_or(20, |p| p.clamp(10, 60) / 10 * 10)
}

/// Chooses the audio stream from a peer's offer or answer: the first audio
/// section with a nonzero port and a codec in `supported`, over RTP/AVP
/// or, when `secure` (the signalling is encrypted, so the keys in it are
/// safe), over RTP/SAVP with a usable `a=crypto` line (the first one); the
/// codec is the first of the peer's formats that nida supports (the
/// offerer's preference wins, RFC 3264 6.1).
pub fn negotiate(sd: &SessionDescription, supported: &[Codec], secure: bool) -> Option<Negotiated> {
    for (index, m) in sd.media.iter().enumerate() {
        if m.media != "audio" || m.port == 0 {
            continue;
        }
        let srtp = if m.proto.eq_ignore_ascii_case("RTP/AVP") {
            None
        } else if secure && m.proto.eq_ignore_ascii_case("RTP/SAVP") {
            match m.crypto.first() {
                Some(k) => Some(*k),
                None => continue,
            }
        } else {
            continue;
        };
        let Some(addr) = m.addr else { continue };
        let codec = m.formats.iter().find_map(|pt| {
            let (name, rate) = m.encoding(*pt)?;
            supported
                .iter()
                .copied()
                .find(|c| c.name() == name && rate == 8000)
        });
        let Some(codec) = codec else { continue };
        let telephone_event = m.formats.iter().copied().find(|pt| {
            m.encoding(*pt)
                .is_some_and(|(n, r)| n == "TELEPHONE-EVENT" && r == 8000)
        });
        return Some(Negotiated {
            codec,
            telephone_event,
            remote: SocketAddr::new(addr, m.port),
            direction: m.direction.answer(),
            index,
            srtp,
            ptime: sending_ptime(m.ptime),
            rtcp: SocketAddr::new(addr, m.rtcp.unwrap_or(m.port.wrapping_add(1))),
            rtcp_mux: m.rtcp_mux,
        });
    }
    None
}

/// Parameters for an SDP nida writes.
#[derive(Debug, Clone)]
pub struct LocalMedia {
    /// RTP address nida receives on.
    pub addr: SocketAddr,
    /// o= session id (stays the same for the session).
    pub session_id: u64,
    /// o= version (incremented on every change).
    pub version: u64,
    /// nida's SRTP master key and salt, for an SRTP offer or answer.
    pub srtp: Option<[u8; 30]>,
}

pub(crate) fn write_header(out: &mut String, local: &LocalMedia) {
    let family = if local.addr.is_ipv6() { "IP6" } else { "IP4" };
    let ip = local.addr.ip();
    let _ = write!(
        out,
        "v=0\r\no=nida {} {} IN {family} {ip}\r\ns=nida\r\nc=IN {family} {ip}\r\nt=0 0\r\n",
        local.session_id, local.version
    );
}

/// An `a=crypto` line to write: tag, suite and nida's key.
pub(crate) type LocalCrypto<'a> = (u32, CryptoSuite, &'a [u8; 30]);

pub(crate) fn write_audio(
    out: &mut String,
    port: u16,
    codecs: &[Codec],
    te: Option<u8>,
    dir: Direction,
    ptime: u32,
    crypto: Option<LocalCrypto<'_>>,
) {
    let proto = if crypto.is_some() {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    };
    let _ = write!(out, "m=audio {port} {proto}");
    for c in codecs {
        let _ = write!(out, " {}", c.payload_type());
    }
    if let Some(te) = te {
        let _ = write!(out, " {te}");
    }
    out.push_str("\r\n");
    for c in codecs {
        let _ = write!(out, "a=rtpmap:{} {}/8000\r\n", c.payload_type(), c.name());
    }
    if let Some(te) = te {
        let _ = write!(
            out,
            "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n"
        );
    }
    let _ = write!(out, "a=ptime:{ptime}\r\na={}\r\n", dir.attr());
    if let Some((tag, suite, key)) = crypto {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD.encode(key);
        let _ = write!(out, "a=crypto:{tag} {} inline:{key}\r\n", suite.name());
    }
}

/// Writes the answer to `offer` for the negotiated stream: the same number of
/// m= sections, the others rejected with port 0 (RFC 3264 6).
pub fn answer(offer: &SessionDescription, chosen: &Negotiated, local: &LocalMedia) -> Vec<u8> {
    let mut out = String::new();
    write_header(&mut out, local);
    for (i, m) in offer.media.iter().enumerate() {
        if i == chosen.index {
            write_audio(
                &mut out,
                local.addr.port(),
                &[chosen.codec],
                chosen.telephone_event,
                chosen.direction,
                chosen.ptime,
                chosen
                    .srtp
                    .zip(local.srtp.as_ref())
                    .map(|(peer, key)| (peer.tag, peer.suite, key)),
            );
            if chosen.rtcp_mux {
                out.push_str("a=rtcp-mux\r\n");
            }
        } else {
            let fmt = m.formats.first().copied().unwrap_or(0);
            let _ = write!(out, "m={} 0 {} {fmt}\r\n", m.media, m.proto);
        }
    }
    out.into_bytes()
}

/// Writes an offer (for an INVITE that came without SDP, or for calls nida
/// places) listing `codecs` and telephone-event on payload type 101; over
/// RTP/SAVP with `AES_CM_128_HMAC_SHA1_80` when `local` has an SRTP key.
pub fn offer(codecs: &[Codec], local: &LocalMedia) -> Vec<u8> {
    let mut out = String::new();
    write_header(&mut out, local);
    write_audio(
        &mut out,
        local.addr.port(),
        codecs,
        Some(101),
        Direction::SendRecv,
        20,
        local
            .srtp
            .as_ref()
            .map(|k| (1, CryptoSuite::AesCm128HmacSha1_80, k)),
    );
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIPP_OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n\
        c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 0 101\r\n\
        a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-11,16\r\n";

    #[test]
    fn picks_the_offerers_first_supported_codec() {
        let sd = SessionDescription::parse(SIPP_OFFER.as_bytes()).unwrap();
        let n = negotiate(&sd, &[Codec::Pcmu, Codec::Pcma], false).unwrap();
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(n.telephone_event, Some(101));
        assert_eq!(n.remote, "127.0.0.1:6000".parse().unwrap());
        let n = negotiate(&sd, &[Codec::Pcmu], false).unwrap();
        assert_eq!(n.codec, Codec::Pcmu, "PCMU found by its static number");
    }

    #[test]
    fn nothing_in_common_gives_none() {
        let body = "v=0\nc=IN IP4 10.1.1.1\nm=audio 4000 RTP/AVP 9 18\na=rtpmap:9 G722/8000\n";
        let sd = SessionDescription::parse(body.as_bytes()).unwrap();
        assert!(negotiate(&sd, &[Codec::Pcmu, Codec::Pcma], false).is_none());
        let srtp = "v=0\nc=IN IP4 10.1.1.1\nm=audio 4000 RTP/SAVP 0\n";
        let sd = SessionDescription::parse(srtp.as_bytes()).unwrap();
        assert!(negotiate(&sd, &[Codec::Pcmu], false).is_none());
    }

    #[test]
    fn skips_video_and_rejects_it_in_the_answer() {
        let body = "v=0\r\nc=IN IP6 ::1\r\nm=video 5000 RTP/AVP 96\r\n\
                    m=audio 5002 RTP/AVP 0\r\na=sendonly\r\n";
        let sd = SessionDescription::parse(body.as_bytes()).unwrap();
        let n = negotiate(&sd, &[Codec::Pcmu], false).unwrap();
        assert_eq!(n.index, 1);
        assert_eq!(n.direction, Direction::RecvOnly);
        assert_eq!(n.remote, "[::1]:5002".parse().unwrap());
        let local = LocalMedia {
            addr: "[::1]:20000".parse().unwrap(),
            session_id: 7,
            version: 1,
            srtp: None,
        };
        let ans = String::from_utf8(answer(&sd, &n, &local)).unwrap();
        assert!(ans.contains("m=video 0 RTP/AVP 96\r\n"), "{ans}");
        assert!(ans.contains("m=audio 20000 RTP/AVP 0\r\n"), "{ans}");
        assert!(ans.contains("c=IN IP6 ::1\r\n"), "{ans}");
        assert!(ans.contains("a=recvonly"), "{ans}");
        let back = SessionDescription::parse(ans.as_bytes()).unwrap();
        assert_eq!(back.media.len(), 2);
    }

    #[test]
    fn offer_round_trips() {
        let local = LocalMedia {
            addr: "127.0.0.1:30000".parse().unwrap(),
            session_id: 1,
            version: 1,
            srtp: None,
        };
        let sd = SessionDescription::parse(&offer(&[Codec::Pcmu, Codec::Pcma], &local)).unwrap();
        let n = negotiate(&sd, &[Codec::Pcma, Codec::Pcmu], false).unwrap();
        assert_eq!((n.codec, n.telephone_event), (Codec::Pcmu, Some(101)));
    }

    const BARESIP_SRTP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
        t=0 0\r\nm=audio 7000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^20\r\n\
        a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^20|1:4\r\n";

    #[test]
    fn srtp_offers_are_taken_only_over_encrypted_signalling() {
        let sd = SessionDescription::parse(BARESIP_SRTP.as_bytes()).unwrap();
        // The line with an MKI is not usable.
        assert_eq!(sd.media[0].crypto.len(), 1);
        assert!(
            negotiate(&sd, &[Codec::Pcmu], false).is_none(),
            "keys in the clear"
        );
        let n = negotiate(&sd, &[Codec::Pcmu], true).unwrap();
        let peer = n.srtp.unwrap();
        assert_eq!(
            (peer.tag, peer.suite),
            (1, CryptoSuite::AesCm128HmacSha1_32)
        );
        let want: Vec<u8> = (0..30).collect();
        assert_eq!(peer.master.to_vec(), want);
        assert_eq!(format!("{peer:?}"), "SdesKey(1 AES_CM_128_HMAC_SHA1_32)");
        // The answer repeats the tag and suite with nida's own key.
        let local = LocalMedia {
            addr: "127.0.0.1:20000".parse().unwrap(),
            session_id: 1,
            version: 1,
            srtp: Some([9; 30]),
        };
        let ans = String::from_utf8(answer(&sd, &n, &local)).unwrap();
        assert!(ans.contains("m=audio 20000 RTP/SAVP 0 101\r\n"), "{ans}");
        let back = SessionDescription::parse(ans.as_bytes()).unwrap();
        let n2 = negotiate(&back, &[Codec::Pcmu], true).unwrap();
        let mine = n2.srtp.unwrap();
        assert_eq!(
            (mine.tag, mine.suite, mine.master),
            (1, peer.suite, [9; 30])
        );
        // nida's own SRTP offer.
        let off = SessionDescription::parse(&offer(&[Codec::Pcma], &local)).unwrap();
        assert_eq!(off.media[0].proto, "RTP/SAVP");
        let k = off.media[0].crypto[0];
        assert_eq!(
            (k.tag, k.suite, k.master),
            (1, CryptoSuite::AesCm128HmacSha1_80, [9; 30])
        );
    }

    #[test]
    fn unusable_crypto_lines_are_skipped() {
        for bad in [
            "1 F8_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
            "1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYX",
            "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64",
            "1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd UNENCRYPTED_SRTP",
            "x AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
            "1 AES_CM_128_HMAC_SHA1_80 srtp:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
        ] {
            assert!(parse_crypto(bad).is_none(), "{bad}");
        }
        let body = "v=0\nc=IN IP4 10.1.1.1\nm=audio 4000 RTP/SAVP 0\na=crypto:1 F8_128_HMAC_SHA1_80 inline:x\n";
        let sd = SessionDescription::parse(body.as_bytes()).unwrap();
        assert!(
            negotiate(&sd, &[Codec::Pcmu], true).is_none(),
            "RTP/SAVP without a usable key"
        );
    }

    #[test]
    fn malformed_sdp_is_an_error() {
        assert!(SessionDescription::parse(b"hello").is_err());
        assert!(SessionDescription::parse(b"v=0\r\nm=audio x RTP/AVP 0\r\n").is_err());
        assert!(SessionDescription::parse(b"v=0\r\nc=IN IP4 nothost\r\n").is_err());
    }
}
