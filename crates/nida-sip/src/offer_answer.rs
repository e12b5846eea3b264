//! The offer/answer state of one dialog's audio (RFC 3264, RFC 6337),
//! sans-IO: what nida last sent, what media runs on, whether nida holds
//! the peer, and whether an offer of nida's waits for its answer.
//!
//! Every SDP nida sends in a dialog comes from here, so the `o=` version
//! goes up exactly when the description changes (RFC 3264 8) and a
//! session refresh repeats the last one unchanged. An offer that cannot
//! be taken leaves the session as it was (the request gets 488).

use crate::sdp::{self, Codec, CryptoSuite, Direction, LocalMedia, Negotiated, SessionDescription};

/// One dialog's audio negotiation.
#[derive(Debug, Clone)]
pub struct OfferAnswer {
    local: LocalMedia,
    codecs: Vec<Codec>,
    secure: bool,
    current: Option<Negotiated>,
    hold: bool,
    sdp: Vec<u8>,
    offering: bool,
    telephone_event: bool,
    /// A description made elsewhere (a media gateway's WebRTC offer),
    /// sent as it is; its answer goes to the gateway, not negotiated here.
    opaque: Option<Vec<u8>>,
}

impl OfferAnswer {
    /// A negotiation for media received on `local` with `codecs` (in
    /// nida's order of preference); `secure`: the signalling is
    /// encrypted, so an SRTP offer (SDES) may be taken.
    pub fn new(local: LocalMedia, codecs: Vec<Codec>, secure: bool) -> OfferAnswer {
        OfferAnswer {
            local,
            codecs,
            secure,
            current: None,
            hold: false,
            sdp: Vec::new(),
            offering: false,
            telephone_event: true,
            opaque: None,
        }
    }

    /// A negotiation whose offer is `body`, made by a media gateway (a
    /// browser's WebRTC): nida sends it unchanged in every offer and
    /// hands the answer on (see [`SessionDescription::raw`]); an offer
    /// from the peer is refused (488).
    pub fn opaque(local: LocalMedia, body: Vec<u8>) -> OfferAnswer {
        let mut oa = OfferAnswer::new(local, Vec::new(), false);
        oa.opaque = Some(body);
        oa
    }

    /// Whether nida offers and accepts telephone-event (RFC 4733); true
    /// unless told otherwise (a test caller sending keys in the audio).
    pub fn with_telephone_event(mut self, on: bool) -> OfferAnswer {
        self.telephone_event = on;
        self
    }

    /// Answers a peer's offer: the SDP to send and the media agreed, or
    /// `None` when nothing in it is usable (answer 488; the session stays
    /// as it was). A `c=` address of 0.0.0.0 (the old way to hold) means
    /// nida must not send.
    pub fn answer(&mut self, offer: &SessionDescription) -> Option<(Vec<u8>, Negotiated)> {
        if self.opaque.is_some() {
            return None;
        }
        let mut n = sdp::negotiate(offer, &self.codecs, self.secure)?;
        if !self.telephone_event {
            n.telephone_event = None;
        }
        let unusable = n.remote.ip().is_unspecified();
        if unusable {
            // Hold the old way: the address says nothing about where the
            // peer will be; keep the last one (and no one else's).
            if let Some(c) = self.current {
                n.remote = c.remote;
                n.rtcp = c.rtcp;
            }
        }
        let send = n.direction.sends() && !unusable;
        // While nida holds the peer it only sends (music, or nothing).
        let receive = n.direction.receives() && !self.hold;
        n.direction = Direction::from_flags(send, receive);
        let local = self.local.clone();
        let body = self.render(|version| {
            let media = LocalMedia {
                version,
                ..local.clone()
            };
            sdp::answer(offer, &n, &media)
        });
        self.current = Some(n);
        self.offering = false;
        Some((body, n))
    }

    /// nida's offer (an INVITE without SDP, a re-INVITE for hold or
    /// resume, or a session refresh): every codec, telephone-event, SRTP
    /// when nida has a key, and `sendonly` while nida holds the peer.
    pub fn offer(&mut self) -> Vec<u8> {
        if let Some(body) = &self.opaque {
            self.offering = true;
            self.sdp = body.clone();
            return body.clone();
        }
        let dir = if self.hold {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        let (local, codecs) = (self.local.clone(), self.codecs.clone());
        let ptime = self.current.map_or(20, |n| n.ptime);
        let te = self.telephone_event.then_some(101);
        let body = self.render(|version| {
            let mut out = String::new();
            let media = LocalMedia {
                version,
                ..local.clone()
            };
            sdp::write_header(&mut out, &media);
            sdp::write_audio(
                &mut out,
                media.addr.port(),
                &codecs,
                te,
                dir,
                ptime,
                media
                    .srtp
                    .as_ref()
                    .map(|k| (1, CryptoSuite::AesCm128HmacSha1_80, k)),
            );
            out.into_bytes()
        });
        self.offering = true;
        body
    }

    /// The peer's answer to nida's offer: the media agreed, or `None`
    /// when it gives no usable audio (the offer is then withdrawn).
    pub fn take_answer(&mut self, answer: &SessionDescription) -> Option<Negotiated> {
        self.offering = false;
        if self.opaque.is_some() {
            return None;
        }
        let secure = self.local.srtp.is_some();
        let mut n = sdp::negotiate(answer, &self.codecs, secure)?;
        if secure && n.srtp.is_none() {
            return None;
        }
        let send = n.direction.sends() && !n.remote.ip().is_unspecified();
        let receive = n.direction.receives() && !self.hold;
        n.direction = Direction::from_flags(send, receive);
        self.current = Some(n);
        Some(n)
    }

    /// nida's offer was refused (or crossed another): the session stays
    /// as it was.
    pub fn withdraw(&mut self) {
        self.offering = false;
    }

    /// Whether an offer of nida's waits for its answer (a peer's offer now
    /// is glare: 491).
    pub fn offering(&self) -> bool {
        self.offering
    }

    /// Holds (or resumes) the peer from nida's side; the next offer says
    /// so.
    pub fn set_hold(&mut self, on: bool) {
        self.hold = on;
    }

    /// Whether nida holds the peer.
    pub fn held(&self) -> bool {
        self.hold
    }

    /// The last SDP nida sent.
    pub fn sdp(&self) -> &[u8] {
        &self.sdp
    }

    /// The media agreed last.
    pub fn current(&self) -> Option<&Negotiated> {
        self.current.as_ref()
    }

    /// Writes an SDP with the current version; when it differs from the
    /// last one sent in more than the version, writes it again with the
    /// version one up (RFC 3264 8: the version changes with the content
    /// and only then).
    fn render(&mut self, write: impl Fn(u64) -> Vec<u8>) -> Vec<u8> {
        let body = write(self.local.version);
        if !self.sdp.is_empty() && body != self.sdp {
            self.local.version += 1;
            self.sdp = write(self.local.version);
        } else {
            self.sdp = body;
        }
        self.sdp.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sd(body: &str) -> SessionDescription {
        SessionDescription::parse(body.replace('\n', "\r\n").as_bytes()).unwrap()
    }

    fn offer(addr: &str, port: u16, payloads: &str, dir: &str) -> SessionDescription {
        sd(&format!(
            "v=0\no=- 1 1 IN IP4 {addr}\ns=-\nc=IN IP4 {addr}\nt=0 0\n\
             m=audio {port} RTP/AVP {payloads}\na=rtpmap:101 telephone-event/8000\na={dir}\n"
        ))
    }

    fn session() -> OfferAnswer {
        let local = LocalMedia {
            addr: "192.0.2.1:20000".parse().unwrap(),
            session_id: 42,
            version: 1,
            srtp: None,
        };
        OfferAnswer::new(local, vec![Codec::Pcmu, Codec::Pcma], false)
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    fn version(b: &[u8]) -> u64 {
        let t = text(b);
        let o = t.lines().find(|l| l.starts_with("o=")).unwrap();
        o.split_whitespace().nth(2).unwrap().parse().unwrap()
    }

    #[test]
    fn a_refresh_keeps_the_version_and_a_change_bumps_it_once() {
        let mut oa = session();
        let (first, n) = oa
            .answer(&offer("192.0.2.7", 4000, "0 101", "sendrecv"))
            .unwrap();
        assert_eq!(version(&first), 1);
        assert_eq!(n.direction, Direction::SendRecv);
        // The same offer again (a session refresh): the same SDP.
        let (again, _) = oa
            .answer(&offer("192.0.2.7", 4000, "0 101", "sendrecv"))
            .unwrap();
        assert_eq!(again, first);
        // Hold: the answer changes (recvonly), so the version goes up.
        let (held, n) = oa
            .answer(&offer("192.0.2.7", 4000, "0 101", "sendonly"))
            .unwrap();
        assert_eq!(version(&held), 2);
        assert!(text(&held).contains("a=recvonly\r\n"), "{}", text(&held));
        assert_eq!(n.direction, Direction::RecvOnly);
        assert!(!n.direction.sends(), "no sending to a peer that holds");
        // Held again: nothing changed.
        let (same, _) = oa
            .answer(&offer("192.0.2.7", 4000, "0 101", "sendonly"))
            .unwrap();
        assert_eq!(version(&same), 2);
        // Resume on another port with another codec.
        let (resumed, n) = oa
            .answer(&offer("192.0.2.9", 5000, "8 101", "sendrecv"))
            .unwrap();
        assert_eq!(version(&resumed), 3);
        assert_eq!(n.remote, "192.0.2.9:5000".parse().unwrap());
        assert_eq!(n.codec, Codec::Pcma);
        assert!(text(&resumed).contains("m=audio 20000 RTP/AVP 8 101\r\n"));
        assert_eq!(oa.current(), Some(&n));
    }

    #[test]
    fn inactive_and_the_zero_address_both_stop_nida_sending() {
        let mut oa = session();
        let (_, n) = oa
            .answer(&offer("192.0.2.7", 4000, "0", "inactive"))
            .unwrap();
        assert_eq!(n.direction, Direction::Inactive);
        let (body, n) = oa.answer(&offer("0.0.0.0", 4000, "0", "sendrecv")).unwrap();
        assert_eq!(n.direction, Direction::RecvOnly, "c=0.0.0.0 is hold");
        assert!(text(&body).contains("a=recvonly\r\n"));
    }

    #[test]
    fn an_unusable_offer_leaves_the_session_as_it_was() {
        let mut oa = session();
        let (first, n) = oa
            .answer(&offer("192.0.2.7", 4000, "0", "sendrecv"))
            .unwrap();
        assert!(oa
            .answer(&offer("192.0.2.7", 4000, "18", "sendrecv"))
            .is_none());
        assert_eq!(oa.current(), Some(&n));
        assert_eq!(oa.sdp(), &first[..]);
    }

    #[test]
    fn nida_holds_with_sendonly_and_resumes_with_sendrecv() {
        let mut oa = session();
        let first = oa.offer();
        assert!(oa.offering());
        assert!(text(&first).contains("a=sendrecv\r\n"));
        assert!(text(&first).contains("m=audio 20000 RTP/AVP 0 8 101\r\n"));
        let n = oa
            .take_answer(&offer("192.0.2.7", 4000, "0 101", "sendrecv"))
            .unwrap();
        assert!(!oa.offering());
        assert_eq!(n.direction, Direction::SendRecv);
        oa.set_hold(true);
        let hold = oa.offer();
        assert_eq!((version(&first), version(&hold)), (1, 2));
        assert!(text(&hold).contains("a=sendonly\r\n"));
        let n = oa
            .take_answer(&offer("192.0.2.7", 4000, "0 101", "recvonly"))
            .unwrap();
        assert_eq!(n.direction, Direction::SendOnly);
        // A peer's offer while nida holds: nida still only sends.
        let (_, n) = oa
            .answer(&offer("192.0.2.7", 4000, "0 101", "sendrecv"))
            .unwrap();
        assert_eq!(n.direction, Direction::SendOnly);
        oa.set_hold(false);
        let resume = oa.offer();
        assert_eq!(version(&resume), 4);
        assert!(text(&resume).contains("a=sendrecv\r\n"));
        oa.withdraw();
        assert!(!oa.offering());
    }

    #[test]
    fn an_srtp_offer_needs_an_srtp_answer() {
        let local = LocalMedia {
            addr: "192.0.2.1:20000".parse().unwrap(),
            session_id: 42,
            version: 1,
            srtp: Some([7; 30]),
        };
        let mut oa = OfferAnswer::new(local, vec![Codec::Pcmu], true);
        let body = text(&oa.offer());
        assert!(body.contains("RTP/SAVP"), "{body}");
        assert!(oa
            .take_answer(&offer("192.0.2.7", 4000, "0", "sendrecv"))
            .is_none());
        assert!(!oa.offering());
    }

    #[test]
    fn without_telephone_event_nothing_offers_or_takes_it() {
        let mut oa = session().with_telephone_event(false);
        let body = text(&oa.offer());
        assert!(body.contains("m=audio 20000 RTP/AVP 0 8\r\n"), "{body}");
        assert!(!body.contains("telephone-event"));
        let mut oa = session().with_telephone_event(false);
        let (answer, n) = oa
            .answer(&offer("192.0.2.7", 4000, "0 101", "sendrecv"))
            .unwrap();
        assert_eq!(n.telephone_event, None);
        assert!(!text(&answer).contains("101"), "{}", text(&answer));
    }
}
