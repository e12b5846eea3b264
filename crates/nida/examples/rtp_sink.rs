//! RTP receiver for the benchmark: listens on one UDP port for every call's
//! stream, measures the interval between consecutive packets of each SSRC
//! and prints the distribution when it stops.
//!
//! Usage: `rtp_sink PORT SECONDS [WARMUP_SECONDS]`

use std::collections::HashMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: rtp_sink PORT SECONDS [WARMUP_SECONDS]");
        std::process::exit(2);
    }
    let port: u16 = args[1].parse().expect("PORT is a number");
    let secs: u64 = args[2].parse().expect("SECONDS is a number");
    let warmup: u64 = args
        .get(3)
        .map(|w| w.parse().expect("WARMUP is a number"))
        .unwrap_or(0);
    let sock = UdpSocket::bind(("127.0.0.1", port)).expect("bind the sink port");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(warmup);
    let end = start + Duration::from_secs(secs);
    let mut last: HashMap<u32, (Instant, u16)> = HashMap::new();
    let mut intervals: Vec<f32> = Vec::new();
    let (mut packets, mut gaps) = (0u64, 0u64);
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let now = Instant::now();
        let Ok(pkt) = rtp_rs::RtpReader::new(&buf[..n]) else {
            continue;
        };
        packets += 1;
        let seq = u16::from(pkt.sequence_number());
        if let Some((prev, prev_seq)) = last.insert(pkt.ssrc(), (now, seq)) {
            if now >= measure_from {
                if seq.wrapping_sub(prev_seq) == 1 {
                    intervals.push((now - prev).as_secs_f32() * 1000.0);
                } else {
                    gaps += 1;
                }
            }
        }
    }
    intervals.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| -> f32 {
        if intervals.is_empty() {
            return f32::NAN;
        }
        intervals[((intervals.len() - 1) as f64 * p) as usize]
    };
    let mut dev: Vec<f32> = intervals.iter().map(|i| (i - 20.0).abs()).collect();
    dev.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let dev99 = dev
        .get(((dev.len().max(1) - 1) as f64 * 0.99) as usize)
        .copied()
        .unwrap_or(f32::NAN);
    println!(
        "rtp_sink: streams={} packets={} intervals={} seq_gaps={} interval_ms p50={:.2} p99={:.2} max={:.2} deviation_ms p99={:.2}",
        last.len(),
        packets,
        intervals.len(),
        gaps,
        pct(0.5),
        pct(0.99),
        intervals.last().copied().unwrap_or(f32::NAN),
        dev99
    );
}
