//! RTCP between two streams in virtual time over a network that delays
//! every packet by 40 ms and drops RTP on a fixed pattern: nida's figures
//! (loss both ways, round trip, jitter) against the truth, in clear and
//! as SRTP with SRTCP.

use nida_media::srtp::{SrtpContext, Suite};
use nida_media::{Law, RtpSession, SessionConfig};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const A: &str = "192.0.2.1:20000";
const B: &str = "192.0.2.2:30000";
const DELAY: Duration = Duration::from_millis(40);

fn session(t0: Instant, ssrc: u32, remote: &str) -> RtpSession {
    let remote: SocketAddr = remote.parse().unwrap();
    let mut s = RtpSession::new(
        t0,
        SessionConfig {
            law: Law::Mu,
            telephone_event: Some(101),
            ssrc,
            initial_seq: 65_000,
            initial_ts: ssrc,
            remote,
            rtp_timeout: Duration::from_secs(60),
            keep_audio: false,
        },
    );
    let rtcp = SocketAddr::new(remote.ip(), remote.port() + 1);
    s.enable_rtcp(t0, rtcp, false, Duration::from_secs(1_800_000_000));
    s
}

/// A datagram on its way: (to A?, rtcp?, bytes).
type Flight = (bool, bool, Vec<u8>);

/// Makes `a` and `b` SRTP peers (the RTP suite with the 32-bit tag:
/// SRTCP keeps its 80 bits).
fn secure(a: &mut RtpSession, b: &mut RtpSession) {
    let suite = Suite::AesCm128HmacSha1_32;
    let (ka, kb) = ([0x11u8; 30], [0x22u8; 30]);
    a.set_srtp(SrtpContext::new(suite, &ka), SrtpContext::new(suite, &kb));
    b.set_srtp(SrtpContext::new(suite, &kb), SrtpContext::new(suite, &ka));
}

#[test]
fn loss_jitter_and_round_trip_are_measured_within_ten_percent() {
    measure(false);
}

#[test]
fn srtcp_carries_the_same_figures_and_hides_them_on_the_wire() {
    measure(true);
}

fn measure(srtp: bool) {
    let t0 = Instant::now();
    let mut a = session(t0, 0xa, B);
    let mut b = session(t0, 0xb, A);
    if srtp {
        secure(&mut a, &mut b);
    }
    // What an eavesdropper sees of the reports: A's CNAME in clear?
    let cname = b"nida-0000000a";
    let mut cname_seen = 0;
    let (from_a, from_b): (SocketAddr, SocketAddr) = (A.parse().unwrap(), B.parse().unwrap());
    let (ra, rb) = (
        SocketAddr::new(from_a.ip(), from_a.port() + 1),
        SocketAddr::new(from_b.ip(), from_b.port() + 1),
    );
    let mut flights: BTreeMap<(Instant, u64), Flight> = BTreeMap::new();
    let mut n = 0u64;
    let (mut a_rtp, mut b_rtp) = (0u64, 0u64);
    let (mut a_dropped, mut b_dropped) = (0u64, 0u64);
    let mut buf = [0u8; 1500];
    let mut now = t0;
    let end = t0 + Duration::from_secs(60);
    while now < end {
        // Sending: A's packets lose every 20th (5 %), B's every 10th (10 %).
        while let Some(o) = a.poll_transmit(now, &mut buf) {
            a_rtp += 1;
            if a_rtp % 20 == 0 {
                a_dropped += 1;
                continue;
            }
            n += 1;
            flights.insert((now + DELAY, n), (false, false, buf[..o.len].to_vec()));
        }
        while let Some(o) = b.poll_transmit(now, &mut buf) {
            b_rtp += 1;
            if b_rtp % 10 == 3 {
                b_dropped += 1;
                continue;
            }
            n += 1;
            flights.insert((now + DELAY, n), (true, false, buf[..o.len].to_vec()));
        }
        while let Some((len, dest)) = a.poll_rtcp(now, &mut buf) {
            assert_eq!(dest, rb);
            if buf[..len].windows(cname.len()).any(|w| w == cname) {
                cname_seen += 1;
            }
            n += 1;
            flights.insert((now + DELAY, n), (false, true, buf[..len].to_vec()));
        }
        while let Some((len, dest)) = b.poll_rtcp(now, &mut buf) {
            assert_eq!(dest, ra);
            n += 1;
            flights.insert((now + DELAY, n), (true, true, buf[..len].to_vec()));
        }
        let next = [
            Some(a.poll_timeout()),
            Some(b.poll_timeout()),
            flights.keys().next().map(|k| k.0),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap();
        now = next.max(now);
        while let Some(entry) = flights.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (to_a, rtcp, data) = entry.remove();
            match (to_a, rtcp) {
                (true, false) => a.handle_packet(now, from_b, &data),
                (true, true) => a.handle_rtcp(now, rb, &data),
                (false, false) => b.handle_packet(now, from_a, &data),
                (false, true) => b.handle_rtcp(now, ra, &data),
            }
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    assert_eq!(cname_seen > 0, !srtp, "reports in clear only without SRTP");
    assert_eq!(a.stats().rejected + b.stats().rejected, 0);
    let q = a.quality();
    let (sent, received) = a.rtcp_counts();
    // 5 s on average, randomised and divided by e - 3/2 (RFC 3550 6.3.1).
    assert!(
        (10..=20).contains(&sent),
        "a report every 4 s or so: {sent}"
    );
    assert!(received >= 8, "{received}");
    // What A lost of B's stream.
    let truth = b_dropped as f64 / b_rtp as f64;
    assert!(
        (q.loss - truth).abs() <= truth * 0.1,
        "loss {} vs {truth}",
        q.loss
    );
    assert!(
        (q.lost as f64 - b_dropped as f64).abs() <= b_dropped as f64 * 0.1,
        "{} lost of {b_dropped}",
        q.lost
    );
    // What B reports losing of A's stream.
    let truth = a_dropped as f64 / a_rtp as f64;
    let peer = q.peer_loss.expect("B reported");
    assert!(
        (peer - truth).abs() <= truth * 0.1,
        "peer loss {peer} vs {truth}"
    );
    // Round trip: 40 ms each way, reported once as an event.
    let rtt = q.rtt.expect("a round trip").as_secs_f64();
    let firsts: Vec<_> = std::iter::from_fn(|| a.poll_event())
        .filter_map(|e| match e {
            nida_media::MediaEvent::RoundTrip(d) => Some(d.as_secs_f64()),
            _ => None,
        })
        .collect();
    assert_eq!(firsts.len(), 1, "{firsts:?}");
    assert!((firsts[0] - 0.080).abs() <= 0.008, "{firsts:?}");
    assert!((rtt - 0.080).abs() <= 0.008, "rtt {rtt}");
    // No jitter on this network.
    assert!(q.jitter_ms < 1.0, "{}", q.jitter_ms);
    assert!(q.peer_jitter_ms.unwrap() < 1.0);
    // 10 % loss is a poor call, far from a clean one.
    assert!((2.5..4.0).contains(&q.mos), "mos {}", q.mos);
    assert!(b.quality().mos > q.mos, "B lost less");
}

#[test]
fn an_srtp_stream_takes_only_authentic_srtcp() {
    let t0 = Instant::now();
    let mut a = session(t0, 0xa, B);
    let mut b = session(t0, 0xb, A);
    secure(&mut a, &mut b);
    let mut buf = [0u8; 1500];
    let later = t0 + Duration::from_secs(10);
    let peer_rtcp: SocketAddr = "192.0.2.2:30001".parse().unwrap();
    let (len, _) = b.poll_rtcp(later, &mut buf).expect("a report is due");
    let sealed = buf[..len].to_vec();
    // Plain RTCP (a forged BYE) is refused, and so is a damaged report.
    let bye = [
        0x80, 201, 0, 1, 0, 0, 0, 0xb, // RR, no blocks
        0x81, 203, 0, 1, 0, 0, 0, 0xb, // BYE 0xb
    ];
    a.handle_rtcp(later, peer_rtcp, &bye);
    let mut damaged = sealed.clone();
    damaged[10] ^= 0x40;
    a.handle_rtcp(later, peer_rtcp, &damaged);
    assert_eq!(a.poll_event(), None, "no BYE taken from a forger");
    assert_eq!(a.rtcp_counts().1, 0);
    assert_eq!(a.stats().rejected, 2);
    // The real report opens, once; muxed on the RTP port too.
    a.handle_packet(later, B.parse().unwrap(), &sealed);
    assert_eq!(a.rtcp_counts().1, 1);
    a.handle_rtcp(later, peer_rtcp, &sealed);
    assert_eq!(a.rtcp_counts().1, 1, "a replay is refused");
    assert_eq!(a.stats().rejected, 3);
    // B's closing BYE, sealed, is taken.
    let (len, _) = b.rtcp_bye(later, &mut buf).expect("a BYE");
    a.handle_rtcp(later, peer_rtcp, &buf[..len]);
    assert_eq!(a.poll_event(), Some(nida_media::MediaEvent::PeerLeft));
}

#[test]
fn rtcp_from_another_address_is_ignored_and_bye_is_reported() {
    let t0 = Instant::now();
    let mut a = session(t0, 0xa, B);
    let mut b = session(t0, 0xb, A);
    let mut buf = [0u8; 1500];
    let later = t0 + Duration::from_secs(10);
    let (len, _) = b.poll_rtcp(later, &mut buf).expect("a report is due");
    let stranger: SocketAddr = "198.51.100.7:9999".parse().unwrap();
    a.handle_rtcp(later, stranger, &buf[..len]);
    assert_eq!(a.rtcp_counts().1, 0);
    assert_eq!(a.stats().foreign, 1);
    // A BYE from the peer's RTCP port.
    let bye = [
        0x80, 201, 0, 1, 0, 0, 0, 0xb, // RR, no blocks
        0x81, 203, 0, 1, 0, 0, 0, 0xb, // BYE 0xb
    ];
    a.handle_rtcp(later, "192.0.2.2:30001".parse().unwrap(), &bye);
    assert_eq!(a.poll_event(), Some(nida_media::MediaEvent::PeerLeft));
    // Garbage from the peer: counted, no panic.
    a.handle_rtcp(
        later,
        "192.0.2.2:30001".parse().unwrap(),
        &[0x80, 201, 0, 9],
    );
    assert_eq!(a.stats().rejected, 1);
}

#[test]
fn a_closing_stream_says_bye_once_and_reports_no_more() {
    let t0 = Instant::now();
    let mut a = session(t0, 0xa, B);
    let mut buf = [0u8; 1500];
    let _ = a.poll_transmit(t0, &mut buf);
    let (n, dest) = a.rtcp_bye(t0, &mut buf).expect("a BYE");
    assert_eq!(dest, "192.0.2.2:30001".parse().unwrap());
    let packets = nida_media::rtcp::parse(&buf[..n]).unwrap();
    assert!(matches!(
        packets[0],
        nida_media::rtcp::Packet::Sender { ssrc: 0xa, .. }
    ));
    assert_eq!(
        packets.last(),
        Some(&nida_media::rtcp::Packet::Bye(vec![0xa]))
    );
    assert!(a.rtcp_bye(t0, &mut buf).is_none(), "once");
    assert!(a
        .poll_rtcp(t0 + Duration::from_secs(30), &mut buf)
        .is_none());
}
