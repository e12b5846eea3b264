//! The offer/answer decisions of answering a caller (RFC 3264), apart from
//! any socket: whether nida can take the offer at all, and, when nida made
//! the offer itself (an INVITE without SDP), whether the answer in the ACK
//! gives usable audio. The call task only carries out the verdicts.

use nida_sip::sdp::{self, Codec, Negotiated, SessionDescription};

/// Why an offer or answer cannot give a call audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    /// SRTP offered on a transport that is not TLS: its keys would travel
    /// in clear. Answered 488.
    #[error("SRTP offered without TLS (its keys would travel in clear)")]
    SrtpWithoutTls,
    /// No codec both sides have. Answered 488.
    #[error("no common codec")]
    NoCommonCodec,
    /// The ACK answering nida's own offer has no usable audio: hang up.
    #[error("the late-offer answer has no usable audio")]
    NoUsableAnswer,
    /// The ACK carries no SDP although nida made the offer: hang up.
    #[error("the ACK has no SDP answer to nida's offer")]
    NoAnswer,
}

impl Unusable {
    /// The SIP status answering the INVITE, when it is still unanswered.
    pub fn status(self) -> Option<(u16, &'static str)> {
        match self {
            Unusable::SrtpWithoutTls | Unusable::NoCommonCodec => {
                Some((488, "Not Acceptable Here"))
            }
            Unusable::NoUsableAnswer | Unusable::NoAnswer => None,
        }
    }
}

/// The caller's offer, if any, against nida's codecs: `Ok(None)` when
/// there is no offer (nida offers in its 200 and the ACK answers).
/// `secure`: the signalling came over TLS.
pub fn take_offer(
    offer: Option<&SessionDescription>,
    codecs: &[Codec],
    secure: bool,
) -> Result<Option<Negotiated>, Unusable> {
    let Some(offer) = offer else { return Ok(None) };
    if let Some(n) = sdp::negotiate(offer, codecs, secure) {
        return Ok(Some(n));
    }
    let savp = offer
        .media
        .iter()
        .any(|m| m.proto.eq_ignore_ascii_case("RTP/SAVP"));
    Err(if savp && !secure {
        Unusable::SrtpWithoutTls
    } else {
        Unusable::NoCommonCodec
    })
}

/// What the media runs on once the ACK arrived: the negotiated offer, or
/// (nida having offered plain RTP/AVP) the answer the ACK carries.
pub fn confirm(
    taken: Option<Negotiated>,
    ack: Option<&SessionDescription>,
    codecs: &[Codec],
) -> Result<Negotiated, Unusable> {
    match (taken, ack) {
        (Some(n), _) => Ok(n),
        (None, Some(answer)) => {
            sdp::negotiate(answer, codecs, false).ok_or(Unusable::NoUsableAnswer)
        }
        (None, None) => Err(Unusable::NoAnswer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sd(body: &str) -> SessionDescription {
        SessionDescription::parse(body.replace('\n', "\r\n").as_bytes()).unwrap()
    }

    fn offer(proto: &str, payloads: &str) -> SessionDescription {
        sd(&format!(
            "v=0\no=- 1 1 IN IP4 192.0.2.7\ns=-\nc=IN IP4 192.0.2.7\nt=0 0\n\
             m=audio 4000 {proto} {payloads}\n"
        ))
    }

    const BOTH: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

    #[test]
    fn a_common_codec_is_taken_and_no_offer_waits_for_the_ack() {
        let n = take_offer(Some(&offer("RTP/AVP", "8")), &BOTH, false)
            .unwrap()
            .unwrap();
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(n.remote, "192.0.2.7:4000".parse().unwrap());
        assert_eq!(take_offer(None, &BOTH, false), Ok(None));
    }

    #[test]
    fn srtp_in_clear_and_foreign_codecs_get_488() {
        let e = take_offer(Some(&offer("RTP/SAVP", "0")), &BOTH, false).unwrap_err();
        assert_eq!(e, Unusable::SrtpWithoutTls);
        assert_eq!(e.status(), Some((488, "Not Acceptable Here")));
        let e = take_offer(Some(&offer("RTP/AVP", "18")), &BOTH, false).unwrap_err();
        assert_eq!(e, Unusable::NoCommonCodec);
        let e = take_offer(Some(&offer("RTP/AVP", "0")), &[Codec::Pcma], false).unwrap_err();
        assert_eq!(e, Unusable::NoCommonCodec);
    }

    #[test]
    fn a_late_offer_is_settled_by_the_ack() {
        let n = confirm(None, Some(&offer("RTP/AVP", "0")), &BOTH).unwrap();
        assert_eq!(n.codec, Codec::Pcmu);
        assert_eq!(
            confirm(None, Some(&offer("RTP/AVP", "18")), &BOTH),
            Err(Unusable::NoUsableAnswer)
        );
        assert_eq!(confirm(None, None, &BOTH), Err(Unusable::NoAnswer));
        assert_eq!(Unusable::NoAnswer.status(), None);
        // An offer taken at the INVITE stands whatever the ACK says.
        let taken = take_offer(Some(&offer("RTP/AVP", "8")), &BOTH, false).unwrap();
        assert_eq!(confirm(taken, None, &BOTH).unwrap().codec, Codec::Pcma);
    }
}
