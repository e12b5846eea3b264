//! SRTP (RFC 3711) for calls whose keys were exchanged with SDES
//! (RFC 4568): AES counter mode with a 128-bit key and HMAC-SHA1
//! authentication, tags of 80 or 32 bits. One [`SrtpContext`] protects the
//! packets one side sends; the other side's key gets its own context to
//! check and decrypt what arrives. The same contexts protect RTCP
//! (SRTCP, RFC 3711 3.4) with their own derived keys and an 80-bit tag
//! whatever the RTP suite (RFC 3711 7.5 warns short tags off RTCP, and
//! libsrtp-based phones use 80 bits). Key derivation rate 0, no MKI.

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha1::Sha1;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;
type HmacSha1 = Hmac<Sha1>;

/// Length of a master key and salt together, as SDES carries them.
pub const MASTER_LEN: usize = 30;

/// An SRTP crypto suite (RFC 4568 6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// `AES_CM_128_HMAC_SHA1_80`: 10-byte authentication tag.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`: 4-byte authentication tag.
    AesCm128HmacSha1_32,
}

impl Suite {
    /// Bytes of authentication tag each packet carries.
    pub fn tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }
}

/// Why a received packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// Too short, or not RTP version 2.
    #[error("not an SRTP packet")]
    Malformed,
    /// The authentication tag does not match: a forged or damaged packet,
    /// or the wrong key.
    #[error("authentication failed")]
    Auth,
    /// A packet already received, or too old to tell (RFC 3711 3.3.2).
    #[error("replayed packet")]
    Replay,
}

/// Packets behind the highest one received that can still arrive.
const REPLAY_WINDOW: u64 = 64;

/// Bytes of SRTCP authentication tag (80 bits for every suite).
pub const SRTCP_TAG_LEN: usize = 10;

/// Bytes SRTCP adds to an RTCP compound: the E flag with the index, and
/// the tag.
pub const SRTCP_OVERHEAD: usize = 4 + SRTCP_TAG_LEN;

/// A replay window over packet indexes (RFC 3711 3.3.2).
#[derive(Debug, Default, Clone, Copy)]
struct Replay {
    /// Whether any packet was accepted yet.
    started: bool,
    /// Highest index accepted and the bitmap of the ones before it.
    top: u64,
    bits: u64,
}

impl Replay {
    /// Whether `index` may still be accepted.
    fn fresh(&self, index: u64) -> bool {
        !self.started
            || index > self.top
            || (index + REPLAY_WINDOW > self.top && self.bits & (1 << (self.top - index)) == 0)
    }

    /// Marks `index` as accepted (after its tag was checked).
    fn accept(&mut self, index: u64) {
        if !self.started {
            *self = Replay {
                started: true,
                top: index,
                bits: 1,
            };
        } else if index > self.top {
            let shift = index - self.top;
            self.bits = if shift >= 64 { 0 } else { self.bits << shift } | 1;
            self.top = index;
        } else {
            self.bits |= 1 << (self.top - index);
        }
    }
}

/// The SRTCP half of a context: its session keys, the index of the next
/// compound sent and the window of the ones received.
struct Srtcp {
    key: [u8; 16],
    salt: [u8; 14],
    auth: HmacSha1,
    next_index: u32,
    replay: Replay,
}

/// One direction of an SRTP stream: session keys derived from a master key
/// and salt, the rollover counter, and (for the receiving side) the replay
/// window.
pub struct SrtpContext {
    suite: Suite,
    key: [u8; 16],
    salt: [u8; 14],
    auth: HmacSha1,
    /// Rollover counter and highest sequence number seen (sender: sent).
    roc: u32,
    last_seq: Option<u16>,
    /// The packet indexes accepted (receiving side).
    replay: Replay,
    rtcp: Srtcp,
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys stay out of logs.
        f.debug_struct("SrtpContext")
            .field("suite", &self.suite)
            .field("roc", &self.roc)
            .finish_non_exhaustive()
    }
}

/// AES-CM keystream (RFC 3711 4.1.1) from `key` and a 16-byte IV, XORed
/// into `data`.
fn aes_cm(key: &[u8; 16], iv: &[u8; 16], data: &mut [u8]) {
    let mut c = Aes128Ctr::new(key.into(), iv.into());
    c.apply_keystream(data);
}

/// One session key of `out.len()` bytes with `label` (RFC 3711 4.3.1,
/// key derivation rate 0).
fn derive(master_key: &[u8; 16], master_salt: &[u8; 14], label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(master_salt);
    // key_id = label || r (48 bits, 0), XORed into the salt's low bits.
    iv[7] ^= label;
    out.fill(0);
    aes_cm(master_key, &iv, out);
}

impl SrtpContext {
    /// A context for `suite` from the 30 bytes of master key and salt.
    pub fn new(suite: Suite, master: &[u8; MASTER_LEN]) -> SrtpContext {
        let mk: [u8; 16] = master[..16].try_into().expect("16 bytes");
        let ms: [u8; 14] = master[16..].try_into().expect("14 bytes");
        let mut key = [0u8; 16];
        let mut auth = [0u8; 20];
        let mut salt = [0u8; 14];
        derive(&mk, &ms, 0x00, &mut key);
        derive(&mk, &ms, 0x01, &mut auth);
        derive(&mk, &ms, 0x02, &mut salt);
        let mut rtcp_key = [0u8; 16];
        let mut rtcp_auth = [0u8; 20];
        let mut rtcp_salt = [0u8; 14];
        derive(&mk, &ms, 0x03, &mut rtcp_key);
        derive(&mk, &ms, 0x04, &mut rtcp_auth);
        derive(&mk, &ms, 0x05, &mut rtcp_salt);
        SrtpContext {
            suite,
            key,
            salt,
            auth: HmacSha1::new_from_slice(&auth).expect("HMAC takes any key length"),
            roc: 0,
            last_seq: None,
            replay: Replay::default(),
            rtcp: Srtcp {
                key: rtcp_key,
                salt: rtcp_salt,
                auth: HmacSha1::new_from_slice(&rtcp_auth).expect("HMAC takes any key length"),
                next_index: 0,
                replay: Replay::default(),
            },
        }
    }

    /// The counter-mode IV of packet `index` from `ssrc` (RFC 3711 4.1.1).
    fn iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        counter_iv(&self.salt, ssrc, index)
    }

    fn tag(&self, authenticated: &[u8], roc: u32) -> [u8; 20] {
        let mut mac = self.auth.clone();
        mac.update(authenticated);
        mac.update(&roc.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Encrypts the RTP packet in `buf[..len]` in place and appends its
    /// tag; returns the new length, `None` when `buf` has no room for the
    /// tag or the packet is not RTP.
    pub fn protect(&mut self, buf: &mut [u8], len: usize) -> Option<usize> {
        let tag_len = self.suite.tag_len();
        if buf.len() < len + tag_len {
            return None;
        }
        let (header, seq, ssrc) = parse_header(&buf[..len])?;
        // The sender's rollover counter steps when its numbering wraps.
        if let Some(last) = self.last_seq {
            if seq < last && last - seq > 0x8000 {
                self.roc = self.roc.wrapping_add(1);
            }
        }
        self.last_seq = Some(seq);
        let index = ((self.roc as u64) << 16) | seq as u64;
        let iv = self.iv(ssrc, index);
        aes_cm(&self.key, &iv, &mut buf[header..len]);
        let tag = self.tag(&buf[..len], self.roc);
        buf[len..len + tag_len].copy_from_slice(&tag[..tag_len]);
        Some(len + tag_len)
    }

    /// Checks and decrypts the SRTP packet in `buf` in place; returns the
    /// length of the RTP packet left at its start.
    pub fn unprotect(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.suite.tag_len();
        if buf.len() < 12 + tag_len {
            return Err(SrtpError::Malformed);
        }
        let len = buf.len() - tag_len;
        let (header, seq, ssrc) = parse_header(&buf[..len]).ok_or(SrtpError::Malformed)?;
        // The sender's rollover counter guessed from the sequence number
        // (RFC 3711 3.3.1 and appendix A).
        let roc = match self.last_seq {
            None => self.roc,
            Some(s_l) if s_l < 0x8000 => {
                if seq > s_l && seq - s_l > 0x8000 {
                    self.roc.wrapping_sub(1)
                } else {
                    self.roc
                }
            }
            Some(s_l) => {
                if s_l - 0x8000 > seq {
                    self.roc.wrapping_add(1)
                } else {
                    self.roc
                }
            }
        };
        let index = ((roc as u64) << 16) | seq as u64;
        if !self.replay.fresh(index) {
            return Err(SrtpError::Replay);
        }
        let expected = self.tag(&buf[..len], roc);
        if !constant_time_eq(&expected[..tag_len], &buf[len..]) {
            return Err(SrtpError::Auth);
        }
        // Authentic: now it may move the state.
        if !self.replay.started || index > self.replay.top {
            self.roc = roc;
            self.last_seq = Some(seq);
        }
        self.replay.accept(index);
        let iv = self.iv(ssrc, index);
        aes_cm(&self.key, &iv, &mut buf[header..len]);
        Ok(len)
    }
}

impl Srtcp {
    /// The HMAC-SHA1 of a compound with its E flag and index (RFC 3711
    /// 4.2; no rollover counter for SRTCP).
    fn tag(&self, authenticated: &[u8]) -> [u8; 20] {
        let mut mac = self.auth.clone();
        mac.update(authenticated);
        mac.finalize().into_bytes().into()
    }
}

impl SrtpContext {
    /// Encrypts the RTCP compound in `buf[..len]` in place (all but its
    /// first header and sender SSRC), appends the E flag with the SRTCP
    /// index and the tag; returns the new length, `None` when `buf` has
    /// no room for [`SRTCP_OVERHEAD`] more bytes, `len` is too short or
    /// the compound is not RTP version 2.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Option<usize> {
        if len < 8 || buf.len() < len + SRTCP_OVERHEAD || buf[0] >> 6 != 2 {
            return None;
        }
        let r = &mut self.rtcp;
        let index = r.next_index;
        r.next_index = (index + 1) & 0x7fff_ffff;
        let ssrc = u32::from_be_bytes(buf[4..8].try_into().ok()?);
        let iv = counter_iv(&r.salt, ssrc, u64::from(index));
        aes_cm(&r.key, &iv, &mut buf[8..len]);
        buf[len..len + 4].copy_from_slice(&(index | 0x8000_0000).to_be_bytes());
        let tag = r.tag(&buf[..len + 4]);
        buf[len + 4..len + SRTCP_OVERHEAD].copy_from_slice(&tag[..SRTCP_TAG_LEN]);
        Some(len + SRTCP_OVERHEAD)
    }

    /// Checks and decrypts the SRTCP compound in `buf` in place; returns
    /// the length of the RTCP compound left at its start. A compound sent
    /// unencrypted (E clear) is still authenticated.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        if buf.len() < 8 + SRTCP_OVERHEAD || buf[0] >> 6 != 2 {
            return Err(SrtpError::Malformed);
        }
        let len = buf.len() - SRTCP_OVERHEAD;
        let word = u32::from_be_bytes(buf[len..len + 4].try_into().expect("4 bytes"));
        let (encrypted, index) = (word & 0x8000_0000 != 0, u64::from(word & 0x7fff_ffff));
        let r = &mut self.rtcp;
        if !r.replay.fresh(index) {
            return Err(SrtpError::Replay);
        }
        let tag = r.tag(&buf[..len + 4]);
        if !constant_time_eq(&tag[..SRTCP_TAG_LEN], &buf[len + 4..]) {
            return Err(SrtpError::Auth);
        }
        r.replay.accept(index);
        if encrypted {
            let ssrc = u32::from_be_bytes(buf[4..8].try_into().expect("4 bytes"));
            let iv = counter_iv(&r.salt, ssrc, index);
            aes_cm(&r.key, &iv, &mut buf[8..len]);
        }
        Ok(len)
    }
}

/// The counter-mode IV (RFC 3711 4.1.1): the session salt with the SSRC
/// and the packet index XORed in.
fn counter_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    for (i, b) in ssrc.to_be_bytes().iter().enumerate() {
        iv[4 + i] ^= b;
    }
    for (i, b) in index.to_be_bytes()[2..].iter().enumerate() {
        iv[8 + i] ^= b;
    }
    iv
}

/// Header length, sequence number and SSRC of an RTP packet.
fn parse_header(p: &[u8]) -> Option<(usize, u16, u32)> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    let cc = (p[0] & 0x0f) as usize;
    let mut header = 12 + 4 * cc;
    if p[0] & 0x10 != 0 {
        let words = u16::from_be_bytes(p.get(header + 2..header + 4)?.try_into().ok()?) as usize;
        header += 4 + 4 * words;
    }
    if header > p.len() {
        return None;
    }
    let seq = u16::from_be_bytes([p[2], p[3]]);
    let ssrc = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
    Some((header, seq, ssrc))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn aes_cm_keystream_matches_rfc_3711_b2() {
        let key: [u8; 16] = hex("2B7E151628AED2A6ABF7158809CF4F3C").try_into().unwrap();
        let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();
        let mut out = [0u8; 48];
        aes_cm(&key, &iv, &mut out);
        assert_eq!(
            out.to_vec(),
            hex(
                "E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB \
                 41E95B3BB0A2E8DD477901E4FCA894C0"
            )
        );
    }

    #[test]
    fn key_derivation_matches_rfc_3711_b3() {
        let mk: [u8; 16] = hex("E1F97A0D3E018BE0D64FA32C06DE4139").try_into().unwrap();
        let ms: [u8; 14] = hex("0EC675AD498AFEEBB6960B3AABE6").try_into().unwrap();
        let mut key = [0u8; 16];
        derive(&mk, &ms, 0, &mut key);
        assert_eq!(key.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        let mut salt = [0u8; 14];
        derive(&mk, &ms, 2, &mut salt);
        assert_eq!(salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
        let mut auth = [0u8; 20];
        derive(&mk, &ms, 1, &mut auth);
        assert_eq!(
            auth.to_vec(),
            hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
        );
    }

    fn master(fill: u8) -> [u8; MASTER_LEN] {
        let mut m = [0u8; MASTER_LEN];
        for (i, b) in m.iter_mut().enumerate() {
            *b = fill.wrapping_add(i as u8 * 7);
        }
        m
    }

    fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 0x00];
        p.extend(seq.to_be_bytes());
        p.extend(1234u32.to_be_bytes());
        p.extend(0xDEADBEEFu32.to_be_bytes());
        p.extend(payload);
        p
    }

    fn protect(tx: &mut SrtpContext, pkt: &[u8]) -> Vec<u8> {
        let mut buf = pkt.to_vec();
        buf.resize(pkt.len() + 10, 0);
        let n = tx.protect(&mut buf, pkt.len()).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn round_trip_hides_the_payload_and_refuses_forgery_and_replay() {
        for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
            let mut tx = SrtpContext::new(suite, &master(3));
            let mut rx = SrtpContext::new(suite, &master(3));
            let plain = rtp(65530, &[0x55; 160]);
            let sealed = protect(&mut tx, &plain);
            assert_eq!(sealed.len(), plain.len() + suite.tag_len());
            assert_eq!(sealed[..12], plain[..12], "the header stays readable");
            assert_ne!(sealed[12..172], plain[12..], "the payload is hidden");
            let mut forged = sealed.clone();
            forged[20] ^= 1;
            assert_eq!(rx.unprotect(&mut forged), Err(SrtpError::Auth));
            let mut got = sealed.clone();
            let n = rx.unprotect(&mut got).unwrap();
            assert_eq!(&got[..n], &plain[..]);
            let mut again = sealed.clone();
            assert_eq!(rx.unprotect(&mut again), Err(SrtpError::Replay));
            // Across the wrap of the sequence number, the rollover
            // counters of both sides step together.
            for seq in [65531u16, 65535, 0, 1, 2] {
                let plain = rtp(seq, &[seq as u8; 20]);
                let mut got = protect(&mut tx, &plain);
                let n = rx.unprotect(&mut got).unwrap();
                assert_eq!(&got[..n], &plain[..], "seq {seq}");
            }
            assert_eq!((tx.roc, rx.roc), (1, 1));
            // Another key does not open it.
            let mut other = SrtpContext::new(suite, &master(4));
            let mut got = protect(&mut tx, &rtp(3, &[1; 20]));
            assert_eq!(other.unprotect(&mut got), Err(SrtpError::Auth));
        }
    }

    #[test]
    fn late_packets_inside_the_window_are_taken_once() {
        let mut tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &master(9));
        let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &master(9));
        let sealed: Vec<Vec<u8>> = (100u16..200)
            .map(|s| protect(&mut tx, &rtp(s, &[7; 10])))
            .collect();
        let mut p = sealed[99].clone();
        assert!(rx.unprotect(&mut p).is_ok());
        let mut late = sealed[90].clone();
        assert!(
            rx.unprotect(&mut late).is_ok(),
            "late but inside the window"
        );
        let mut late = sealed[90].clone();
        assert_eq!(rx.unprotect(&mut late), Err(SrtpError::Replay));
        let mut old = sealed[0].clone();
        assert_eq!(rx.unprotect(&mut old), Err(SrtpError::Replay), "too old");
        let mut short = vec![0x80; 8];
        assert_eq!(rx.unprotect(&mut short), Err(SrtpError::Malformed));
    }

    /// A receiver report with one block, from SSRC 0xCAFEBABE.
    fn rtcp_rr() -> Vec<u8> {
        let mut p = vec![0x81, 201, 0, 7];
        p.extend(0xCAFE_BABEu32.to_be_bytes());
        p.extend(0xDEAD_BEEFu32.to_be_bytes());
        p.extend([3u8; 20]);
        p
    }

    fn protect_rtcp(tx: &mut SrtpContext, pkt: &[u8]) -> Vec<u8> {
        let mut buf = pkt.to_vec();
        buf.resize(pkt.len() + SRTCP_OVERHEAD, 0);
        let n = tx.protect_rtcp(&mut buf, pkt.len()).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn srtcp_hides_the_reports_and_refuses_forgery_and_replay() {
        for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
            let mut tx = SrtpContext::new(suite, &master(5));
            let mut rx = SrtpContext::new(suite, &master(5));
            let plain = rtcp_rr();
            let sealed = protect_rtcp(&mut tx, &plain);
            // The tag is 80 bits even with the 32-bit RTP suite.
            assert_eq!(sealed.len(), plain.len() + 4 + 10);
            assert_eq!(sealed[..8], plain[..8], "header and sender stay clear");
            assert_ne!(sealed[8..plain.len()], plain[8..], "the blocks are hidden");
            // E set, index 0, then 1.
            assert_eq!(sealed[plain.len()..plain.len() + 4], [0x80, 0, 0, 0]);
            let second = protect_rtcp(&mut tx, &plain);
            assert_eq!(second[plain.len()..plain.len() + 4], [0x80, 0, 0, 1]);
            assert_ne!(
                second[8..plain.len()],
                sealed[8..plain.len()],
                "a new keystream"
            );

            let mut forged = sealed.clone();
            forged[12] ^= 1;
            assert_eq!(rx.unprotect_rtcp(&mut forged), Err(SrtpError::Auth));
            // The index is authenticated too.
            let mut moved = sealed.clone();
            moved[plain.len() + 3] = 9;
            assert_eq!(rx.unprotect_rtcp(&mut moved), Err(SrtpError::Auth));
            let mut got = second.clone();
            assert_eq!(rx.unprotect_rtcp(&mut got), Ok(plain.len()));
            assert_eq!(&got[..plain.len()], &plain[..]);
            // Late but new: taken; again: refused.
            let mut got = sealed.clone();
            assert_eq!(rx.unprotect_rtcp(&mut got), Ok(plain.len()));
            assert_eq!(&got[..plain.len()], &plain[..]);
            let mut again = sealed.clone();
            assert_eq!(rx.unprotect_rtcp(&mut again), Err(SrtpError::Replay));
            // A context of another master does not open it.
            let mut other = SrtpContext::new(suite, &master(6));
            let mut got = protect_rtcp(&mut tx, &plain);
            assert_eq!(other.unprotect_rtcp(&mut got), Err(SrtpError::Auth));
            let mut short = vec![0x80; 20];
            assert_eq!(rx.unprotect_rtcp(&mut short), Err(SrtpError::Malformed));
            let mut room = plain.clone();
            assert_eq!(tx.protect_rtcp(&mut room, plain.len()), None, "no room");
        }
    }

    #[test]
    fn srtcp_compounds_sent_in_clear_are_still_authenticated() {
        // RFC 3711 3.4: E clear means the sender chose not to encrypt.
        let tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &master(7));
        let mut rx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &master(7));
        let plain = rtcp_rr();
        let mut sealed = plain.clone();
        sealed.extend(5u32.to_be_bytes());
        let tag = tx.rtcp.tag(&sealed);
        sealed.extend(&tag[..10]);
        let mut got = sealed.clone();
        assert_eq!(rx.unprotect_rtcp(&mut got), Ok(plain.len()));
        assert_eq!(&got[..plain.len()], &plain[..]);
    }
}
