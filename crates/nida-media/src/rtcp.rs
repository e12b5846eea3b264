//! RTCP (RFC 3550 6), sans-IO: sender and receiver reports written and
//! read, the report interval, round-trip time from LSR and DLSR, and an
//! estimated MOS by the E-model (ITU-T G.107) for a G.711 leg.
//!
//! [`crate::RtpSession`] keeps one [`Reporter`] per stream: it asks it
//! when the next report is due, hands it the counters to report, and gives
//! it what the peer reported about nida's stream. Compounds are read
//! leniently: one that does not start with SR or RR (baresip sends lone
//! APP packets) is read all the same.

use std::time::Duration;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
pub const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// The shortest report interval (RFC 3550 6.2, T_min).
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// Packet types.
const SR: u8 = 200;
const RR: u8 = 201;
const SDES: u8 = 202;
const BYE: u8 = 203;

/// One report block: a receiver's view of one source (RFC 3550 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source it is about.
    pub ssrc: u32,
    /// Packets lost since the previous report, as a fraction of 256.
    pub fraction_lost: u8,
    /// Packets lost in all (24 bits, signed).
    pub cumulative_lost: i32,
    /// Highest sequence number received, with its cycles.
    pub highest_seq: u32,
    /// Interarrival jitter, in timestamp units.
    pub jitter: u32,
    /// The middle 32 bits of the NTP time of the last SR from the source.
    pub lsr: u32,
    /// Time since that SR, in 1/65536 s.
    pub dlsr: u32,
}

/// What one RTCP packet of a compound says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// A sender report.
    Sender {
        /// Its sender.
        ssrc: u32,
        /// NTP time of the report (64-bit fixed point).
        ntp: u64,
        /// Packets sent.
        packets: u32,
        /// Payload octets sent.
        octets: u32,
        /// Its report blocks.
        reports: Vec<ReportBlock>,
    },
    /// A receiver report.
    Receiver {
        /// Its sender.
        ssrc: u32,
        /// Its report blocks.
        reports: Vec<ReportBlock>,
    },
    /// The sources leave the session.
    Bye(Vec<u32>),
    /// SDES, APP or a type not read.
    Other(u8),
}

/// Why an RTCP compound was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// Shorter than a header, or a length past the end.
    #[error("truncated RTCP")]
    Truncated,
    /// Not version 2.
    #[error("RTCP version is not 2")]
    Version,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn block(b: &[u8]) -> ReportBlock {
    // 24-bit signed cumulative loss.
    let raw = (u32::from(b[5]) << 16) | (u32::from(b[6]) << 8) | u32::from(b[7]);
    let cumulative_lost = ((raw << 8) as i32) >> 8;
    ReportBlock {
        ssrc: be32(b, 0),
        fraction_lost: b[4],
        cumulative_lost,
        highest_seq: be32(b, 8),
        jitter: be32(b, 12),
        lsr: be32(b, 16),
        dlsr: be32(b, 20),
    }
}

fn blocks(b: &[u8], count: usize) -> Result<Vec<ReportBlock>, RtcpError> {
    if b.len() < count * 24 {
        return Err(RtcpError::Truncated);
    }
    Ok((0..count).map(|i| block(&b[i * 24..i * 24 + 24])).collect())
}

/// Reads a compound RTCP packet.
pub fn parse(data: &[u8]) -> Result<Vec<Packet>, RtcpError> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(RtcpError::Truncated);
        }
        if rest[0] >> 6 != 2 {
            return Err(RtcpError::Version);
        }
        let count = usize::from(rest[0] & 0x1f);
        let pt = rest[1];
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if rest.len() < len {
            return Err(RtcpError::Truncated);
        }
        let body = &rest[4..len];
        let p = match pt {
            SR => {
                if body.len() < 24 {
                    return Err(RtcpError::Truncated);
                }
                Packet::Sender {
                    ssrc: be32(body, 0),
                    ntp: (u64::from(be32(body, 4)) << 32) | u64::from(be32(body, 8)),
                    packets: be32(body, 16),
                    octets: be32(body, 20),
                    reports: blocks(&body[24..], count)?,
                }
            }
            RR => {
                if body.len() < 4 {
                    return Err(RtcpError::Truncated);
                }
                Packet::Receiver {
                    ssrc: be32(body, 0),
                    reports: blocks(&body[4..], count)?,
                }
            }
            BYE => {
                if body.len() < count * 4 {
                    return Err(RtcpError::Truncated);
                }
                Packet::Bye((0..count).map(|i| be32(body, i * 4)).collect())
            }
            other => Packet::Other(other),
        };
        out.push(p);
        rest = &rest[len..];
    }
    if out.is_empty() {
        return Err(RtcpError::Truncated);
    }
    Ok(out)
}

/// Whether a datagram on a muxed port is RTCP (RFC 5761 4: payload type
/// byte 192 to 223).
pub fn is_rtcp(data: &[u8]) -> bool {
    data.len() >= 8 && (192..=223).contains(&data[1])
}

/// What nida's report says about its own stream and the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// nida's SSRC.
    pub ssrc: u32,
    /// NTP time now (64-bit fixed point).
    pub ntp: u64,
    /// RTP timestamp matching `ntp`.
    pub rtp_ts: u32,
    /// Packets and payload octets sent (`None`: nida sent nothing since
    /// the last report, so it sends an RR).
    pub sent: Option<(u32, u32)>,
    /// nida's view of the peer's stream, once it has one.
    pub block: Option<ReportBlock>,
}

/// Writes a compound report (SR or RR, then SDES with the CNAME, then
/// BYE when `bye`) into `buf`; returns its length, or `None` when `buf`
/// is too small.
pub fn write(report: &Report, cname: &str, bye: bool, buf: &mut [u8]) -> Option<usize> {
    let mut out = Vec::with_capacity(128);
    let rc = u8::from(report.block.is_some());
    let (pt, words) = match report.sent {
        Some(_) => (SR, 6 + 6 * usize::from(rc)),
        None => (RR, 1 + 6 * usize::from(rc)),
    };
    out.extend_from_slice(&[0x80 | rc, pt]);
    out.extend_from_slice(&(words as u16).to_be_bytes());
    out.extend_from_slice(&report.ssrc.to_be_bytes());
    if let Some((packets, octets)) = report.sent {
        out.extend_from_slice(&report.ntp.to_be_bytes());
        out.extend_from_slice(&report.rtp_ts.to_be_bytes());
        out.extend_from_slice(&packets.to_be_bytes());
        out.extend_from_slice(&octets.to_be_bytes());
    }
    if let Some(b) = report.block {
        out.extend_from_slice(&b.ssrc.to_be_bytes());
        let lost = (b.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32) & 0x00ff_ffff;
        out.push(b.fraction_lost);
        out.extend_from_slice(&lost.to_be_bytes()[1..]);
        for v in [b.highest_seq, b.jitter, b.lsr, b.dlsr] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
    // SDES: one chunk, CNAME, then the END item, padded to 32 bits.
    let name = &cname.as_bytes()[..cname.len().min(255)];
    let chunk = 4 + 2 + name.len() + 1;
    let padded = chunk.div_ceil(4) * 4;
    out.extend_from_slice(&[0x81, SDES]);
    out.extend_from_slice(&((padded / 4) as u16).to_be_bytes());
    out.extend_from_slice(&report.ssrc.to_be_bytes());
    out.extend_from_slice(&[1, name.len() as u8]);
    out.extend_from_slice(name);
    out.resize(out.len() + (padded - chunk) + 1, 0);
    if bye {
        out.extend_from_slice(&[0x81, BYE, 0, 1]);
        out.extend_from_slice(&report.ssrc.to_be_bytes());
    }
    let dst = buf.get_mut(..out.len())?;
    dst.copy_from_slice(&out);
    Some(out.len())
}

/// The middle 32 bits of an NTP time (the LSR and "A" of RFC 3550 6.4.1).
pub fn middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// An NTP time from a duration since the Unix epoch.
pub fn ntp_of(unix: Duration) -> u64 {
    let secs = unix.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(unix.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// Round-trip time from a report block about nida's stream arriving at
/// NTP time `arrival` (RFC 3550 6.4.1: A - LSR - DLSR); `None` when the
/// peer has had no SR from nida yet, or the figure is impossible.
pub fn round_trip(arrival: u64, b: &ReportBlock) -> Option<Duration> {
    if b.lsr == 0 {
        return None;
    }
    let rtt = middle(arrival).wrapping_sub(b.lsr).wrapping_sub(b.dlsr);
    // A negative result (clock trouble) wraps to a huge one.
    (rtt < 0x8000_0000).then(|| Duration::from_nanos(u64::from(rtt) * 1_000_000_000 / 65_536))
}

/// The interval to the next report: T_min randomised over 0.5 to 1.5
/// and divided by e - 3/2 (RFC 3550 6.3.1); the first report comes after
/// half of it (6.2). `unit` is a uniform draw in [0, 1).
pub fn interval(first: bool, unit: f64) -> Duration {
    let base = if first {
        MIN_INTERVAL.as_secs_f64() / 2.0
    } else {
        MIN_INTERVAL.as_secs_f64()
    };
    Duration::from_secs_f64(base * (0.5 + unit) / (std::f64::consts::E - 1.5))
}

/// The call quality of one leg, from both sides' figures.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Quality {
    /// Packets lost on the way to nida.
    pub lost: u64,
    /// Share of the peer's packets lost on the way to nida (0 to 1).
    pub loss: f64,
    /// Interarrival jitter of what nida received, in ms.
    pub jitter_ms: f64,
    /// Share of nida's packets the peer reports lost, when it reported.
    pub peer_loss: Option<f64>,
    /// The jitter the peer reports, in ms.
    pub peer_jitter_ms: Option<f64>,
    /// Round-trip time, when measured.
    pub rtt: Option<Duration>,
    /// The E-model's transmission rating R (0 to 100).
    pub r_factor: f64,
    /// The estimated mean opinion score (1 to 4.5).
    pub mos: f64,
}

/// The E-model (ITU-T G.107) for G.711 with packet loss concealment:
/// R = 93.2 - Id - Ie,eff, with Id from the one-way delay (half the RTT,
/// plus a jitter buffer of twice the jitter) and Ie,eff from random loss
/// (Bpl 25.1, G.113 Appendix I); then MOS from R.
pub fn e_model(loss: f64, one_way_ms: f64) -> (f64, f64) {
    let d = one_way_ms.max(0.0);
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let ppl = (loss * 100.0).clamp(0.0, 100.0);
    let ie_eff = 95.0 * ppl / (ppl + 25.1);
    let r = (93.2 - id - ie_eff).clamp(0.0, 100.0);
    let mos = if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
    };
    (r, mos.clamp(1.0, 4.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_block() -> ReportBlock {
        ReportBlock {
            ssrc: 0xdead_beef,
            fraction_lost: 25,
            cumulative_lost: -3,
            highest_seq: 0x0001_0005,
            jitter: 77,
            lsr: 0x1234_5678,
            dlsr: 0x0001_8000,
        }
    }

    #[test]
    fn sender_and_receiver_reports_round_trip_through_the_parser() {
        let mut buf = [0u8; 1500];
        let r = Report {
            ssrc: 9,
            ntp: 0x0102_0304_0506_0708,
            rtp_ts: 160,
            sent: Some((50, 8000)),
            block: Some(sample_block()),
        };
        let n = write(&r, "nida@192.0.2.1", true, &mut buf).unwrap();
        assert_eq!(n % 4, 0);
        assert!(is_rtcp(&buf[..n]));
        let p = parse(&buf[..n]).unwrap();
        assert_eq!(
            p,
            vec![
                Packet::Sender {
                    ssrc: 9,
                    ntp: 0x0102_0304_0506_0708,
                    packets: 50,
                    octets: 8000,
                    reports: vec![sample_block()],
                },
                Packet::Other(SDES),
                Packet::Bye(vec![9]),
            ]
        );
        let rr = Report {
            sent: None,
            block: None,
            ..r
        };
        let n = write(&rr, "x", false, &mut buf).unwrap();
        assert_eq!(
            parse(&buf[..n]).unwrap(),
            vec![
                Packet::Receiver {
                    ssrc: 9,
                    reports: vec![]
                },
                Packet::Other(SDES)
            ]
        );
        assert!(write(&r, "x", false, &mut [0u8; 20]).is_none());
    }

    #[test]
    fn malformed_compounds_are_refused_without_panic() {
        let mut buf = [0u8; 1500];
        let r = Report {
            ssrc: 1,
            ntp: 5,
            rtp_ts: 0,
            sent: Some((1, 160)),
            block: Some(sample_block()),
        };
        let n = write(&r, "nida", true, &mut buf).unwrap();
        for cut in 0..n {
            let _ = parse(&buf[..cut]);
        }
        assert_eq!(parse(&buf[..3]), Err(RtcpError::Truncated));
        let mut v1 = buf[..n].to_vec();
        v1[0] = 0x40;
        assert_eq!(parse(&v1), Err(RtcpError::Version));
        // A report count larger than the packet.
        let mut lying = buf[..n].to_vec();
        lying[0] = 0x80 | 31;
        assert_eq!(parse(&lying), Err(RtcpError::Truncated));
        // A lone APP packet (baresip's PINGPONG, against RFC 3550 6.1's
        // SR or RR first) is read, not refused.
        let app = [0x80, 204, 0, 2, 0, 0, 0, 1, b'P', b'I', b'N', b'G'];
        assert_eq!(parse(&app), Ok(vec![Packet::Other(204)]));
        // Every byte flipped in turn: an answer, never a panic.
        for i in 0..n {
            let mut m = buf[..n].to_vec();
            m[i] ^= 0xff;
            let _ = parse(&m);
        }
    }

    #[test]
    fn round_trip_is_arrival_less_lsr_less_dlsr() {
        let sent = ntp_of(Duration::from_secs(1_800_000_000));
        // The peer held it 0.25 s, the answer arrived 0.4 s after the SR.
        let b = ReportBlock {
            lsr: middle(sent),
            dlsr: 65_536 / 4,
            ..sample_block()
        };
        let arrival = ntp_of(Duration::from_millis(1_800_000_000_400));
        let rtt = round_trip(arrival, &b).unwrap();
        assert!((rtt.as_secs_f64() - 0.15).abs() < 0.001, "{rtt:?}");
        assert_eq!(round_trip(arrival, &ReportBlock { lsr: 0, ..b }), None);
        // An arrival before the SR (clock trouble) is no figure.
        assert_eq!(round_trip(sent - (1 << 32), &b), None);
    }

    #[test]
    fn the_interval_is_randomised_around_the_minimum() {
        let lo = interval(false, 0.0).as_secs_f64();
        let hi = interval(false, 0.999_999).as_secs_f64();
        assert!((lo - 2.5 / 1.218_28).abs() < 0.01, "{lo}");
        assert!((hi - 7.5 / 1.218_28).abs() < 0.01, "{hi}");
        assert!(interval(true, 0.5) < interval(false, 0.5));
    }

    #[test]
    fn the_e_model_rates_clean_lossy_and_slow_calls() {
        let (r, mos) = e_model(0.0, 20.0);
        assert!(r > 92.0 && mos > 4.3, "{r} {mos}");
        let (_, lossy) = e_model(0.05, 20.0);
        assert!((3.4..4.0).contains(&lossy), "5 % loss: {lossy}");
        let (_, slow) = e_model(0.0, 400.0);
        assert!(slow < 3.8, "400 ms one way: {slow}");
        assert_eq!(e_model(1.0, 1000.0).1, 1.0);
    }
}
