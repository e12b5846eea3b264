//! RTP receiver for the benchmark: listens on one UDP port for every call's
//! stream, measures the interval between consecutive packets of each SSRC
//! and prints the distribution when it stops. With `echo` it sends every
//! packet back to where it came from, as a phone would send its own
//! audio, so nida receives as much RTP as it sends.
//!
//! It reads and writes in batches (`recvmmsg`/`sendmmsg`, 64 at a time)
//! so that at thousands of calls the receiver, which shares the machine,
//! costs little beside the server it measures.
//!
//! Usage: `rtp_sink PORT SECONDS [WARMUP_SECONDS] [echo]`

use std::collections::HashMap;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const BATCH: usize = 64;
const SIZE: usize = 2048;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: rtp_sink PORT SECONDS [WARMUP_SECONDS] [echo]");
        std::process::exit(2);
    }
    let port: u16 = args[1].parse().expect("PORT is a number");
    let secs: u64 = args[2].parse().expect("SECONDS is a number");
    let warmup: u64 = args
        .get(3)
        .map(|w| w.parse().expect("WARMUP is a number"))
        .unwrap_or(0);
    let echo = args.get(4).is_some_and(|a| a == "echo");
    let sock = UdpSocket::bind(("127.0.0.1", port)).expect("bind the sink port");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // Room for a burst of thousands of streams.
    let size: libc::c_int = 8 << 20;
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: a valid socket and a c_int option value.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                &size as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
    }
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(warmup);
    let end = start + Duration::from_secs(secs);
    let mut last: HashMap<u32, (Instant, u16)> = HashMap::new();
    let mut intervals: Vec<f32> = Vec::new();
    let (mut packets, mut gaps, mut echo_failed) = (0u64, 0u64, 0u64);
    let mut bufs = vec![[0u8; SIZE]; BATCH];
    // SAFETY: all-zero sockaddr_storage, iovec and mmsghdr are valid.
    let mut addrs: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; BATCH];
    let mut iovs: Vec<libc::iovec> = vec![unsafe { std::mem::zeroed() }; BATCH];
    let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; BATCH];
    while Instant::now() < end {
        for i in 0..BATCH {
            iovs[i] = libc::iovec {
                iov_base: bufs[i].as_mut_ptr() as *mut libc::c_void,
                iov_len: SIZE,
            };
            msgs[i].msg_hdr.msg_name = &mut addrs[i] as *mut _ as *mut libc::c_void;
            msgs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            msgs[i].msg_hdr.msg_iov = &mut iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_len = 0;
        }
        // SAFETY: BATCH initialised headers pointing at live buffers; the
        // socket's read timeout bounds the wait.
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            continue;
        }
        let n = n as usize;
        let now = Instant::now();
        for (i, msg) in msgs.iter().enumerate().take(n) {
            let data = &bufs[i][..msg.msg_len as usize];
            let Ok(pkt) = rtp_rs::RtpReader::new(data) else {
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
        if echo {
            // The same headers: each names its source and its length.
            for (i, msg) in msgs.iter_mut().enumerate().take(n) {
                iovs[i].iov_len = msg.msg_len as usize;
                msg.msg_hdr.msg_iov = &mut iovs[i];
            }
            let mut sent = 0;
            while sent < n {
                // SAFETY: the first n headers are filled by recvmmsg.
                let r = unsafe {
                    libc::sendmmsg(
                        sock.as_raw_fd(),
                        msgs[sent..].as_mut_ptr(),
                        (n - sent) as u32,
                        0,
                    )
                };
                if r <= 0 {
                    echo_failed += (n - sent) as u64;
                    break;
                }
                sent += r as usize;
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
    let dev_at = |p: f64| {
        dev.get(((dev.len().max(1) - 1) as f64 * p) as usize)
            .copied()
            .unwrap_or(f32::NAN)
    };
    println!(
        "rtp_sink: streams={} packets={} intervals={} seq_gaps={} interval_ms p50={:.2} p99={:.2} max={:.2} deviation_ms p50={:.2} p99={:.2} echo_failed={} receiver_drops={}",
        last.len(),
        packets,
        intervals.len(),
        gaps,
        pct(0.5),
        pct(0.99),
        intervals.last().copied().unwrap_or(f32::NAN),
        dev_at(0.5),
        dev_at(0.99),
        echo_failed,
        receiver_drops(port)
    );
}

/// Datagrams the kernel dropped at the sink's own socket (its receive
/// buffer full: the sink, not the sender, fell behind), from
/// `/proc/net/udp`; a gap they explain is not the sender's.
fn receiver_drops(port: u16) -> u64 {
    let local = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(1)?.ends_with(&local)).then(|| f.last()?.parse::<u64>().ok())?
        })
        .sum()
}
