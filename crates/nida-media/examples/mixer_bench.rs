//! What a conference costs per leg: every leg an RTP session receiving a
//! packet and sending one every 20 ms, their audio either relayed (two
//! parties, nida's bridge) or decoded, mixed and encoded for each
//! listener (3 and 10 parties, everyone hearing everyone, half the legs
//! in A-law so their listeners in µ-law transcode). Virtual time, one
//! thread: the wall time of the loop is the CPU it took.
//!
//! `cargo run --release -p nida-media --example mixer_bench [SECONDS]`
//! (seconds of audio per conference, 600 by default). It fails when a
//! leg did not receive or send every packet, or a listener missed a
//! mixed frame.

use nida_media::mixer::FRAME;
use nida_media::{Law, Mixer, RtpSession, SessionConfig};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const PTIME: Duration = Duration::from_millis(20);

struct Leg {
    rtp: RtpSession,
    peer: SocketAddr,
    law: Law,
    seq: u16,
}

fn legs(n: usize, t0: Instant) -> Vec<Leg> {
    (0..n)
        .map(|i| {
            let peer: SocketAddr = format!("192.0.2.{}:{}", i + 1, 20_000 + 2 * i)
                .parse()
                .unwrap();
            let law = if i % 2 == 1 { Law::A } else { Law::Mu };
            let mut rtp = RtpSession::new(
                t0,
                SessionConfig {
                    law,
                    telephone_event: Some(101),
                    ssrc: 0x1000 + i as u32,
                    initial_seq: 1,
                    initial_ts: 0,
                    remote: peer,
                    rtp_timeout: Duration::from_secs(3600),
                    keep_audio: false,
                },
            );
            rtp.set_relay(true);
            Leg {
                rtp,
                peer,
                law,
                seq: 0,
            }
        })
        .collect()
}

/// One packet of the peer's speech (a tone, different per leg).
fn packet(leg: &mut Leg, i: usize, frame: u64) -> Vec<u8> {
    leg.seq = leg.seq.wrapping_add(1);
    let pcm: Vec<i16> = (0..FRAME as u64)
        .map(|k| {
            let t = (frame * FRAME as u64 + k) as f64 / 8000.0;
            ((t * 2.0 * std::f64::consts::PI * (300.0 + 150.0 * i as f64)).sin() * 4000.0) as i16
        })
        .collect();
    let payload = leg.law.encode(&pcm);
    rtp_rs::RtpPacketBuilder::new()
        .payload_type(leg.law.payload_type())
        .sequence(rtp_rs::Seq::from(leg.seq))
        .timestamp((frame * FRAME as u64) as u32)
        .ssrc(0xABC0 + i as u32)
        .payload(&payload)
        .build()
        .unwrap()
}

/// Runs `n` legs for `seconds` of audio; CPU seconds spent.
fn conference(n: usize, seconds: u64) -> f64 {
    let t0 = Instant::now();
    let mut legs = legs(n, t0);
    let mut mixer: Option<Mixer<usize>> = (n > 2).then(Mixer::new);
    if let Some(m) = mixer.as_mut() {
        for (i, l) in legs.iter().enumerate() {
            m.add(i, l.law);
        }
        for a in 0..n {
            for b in 0..n {
                m.set_hears(a, b, true);
            }
        }
    }
    let frames = seconds * 50;
    // The peers' packets, made before the clock starts.
    let mut inbound: Vec<Vec<Vec<u8>>> = Vec::with_capacity(frames as usize);
    for f in 0..frames {
        inbound.push(
            legs.iter_mut()
                .enumerate()
                .map(|(i, l)| packet(l, i, f))
                .collect(),
        );
    }
    let mut buf = [0u8; 1500];
    let (mut sent, mut mixed) = (0u64, 0u64);
    let started = Instant::now();
    for (f, packets) in inbound.iter().enumerate() {
        let now = t0 + PTIME * f as u32;
        for (i, l) in legs.iter_mut().enumerate() {
            l.rtp.handle_packet(now, l.peer, &packets[i]);
        }
        match mixer.as_mut() {
            Some(m) => {
                for (i, l) in legs.iter_mut().enumerate() {
                    let data = l.rtp.take_received();
                    m.push(i, l.law, &data);
                }
                m.mix();
                while let Some((i, bytes)) = m.poll_output() {
                    let l = &mut legs[i];
                    l.rtp.push_audio(l.law, &bytes);
                    mixed += 1;
                }
            }
            None => {
                // The bridge: each side's payload to the other.
                let a = legs[0].rtp.take_received();
                let b = legs[1].rtp.take_received();
                let (la, lb) = (legs[0].law, legs[1].law);
                legs[1].rtp.push_audio(la, &a);
                legs[0].rtp.push_audio(lb, &b);
            }
        }
        for l in legs.iter_mut() {
            while let Some(o) = l.rtp.poll_transmit(now, &mut buf) {
                sent += u64::from(o.len > 0);
            }
        }
    }
    let cpu = started.elapsed().as_secs_f64();
    for (i, l) in legs.iter().enumerate() {
        let st = l.rtp.stats();
        assert_eq!(st.received, frames, "leg {i} received {}", st.received);
        assert_eq!(st.rejected + st.foreign, 0, "leg {i} refused packets");
    }
    assert!(sent >= frames * n as u64, "{sent} packets sent");
    if mixer.is_some() {
        assert_eq!(mixed, frames * n as u64, "a listener missed a mixed frame");
    }
    cpu
}

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("SECONDS"))
        .unwrap_or(600);
    println!("legs  kind   audio_s  cpu_s   share_of_a_core_per_leg  us_per_leg_per_frame");
    let mut relay = 0.0;
    for n in [2usize, 3, 10] {
        let cpu = conference(n, seconds);
        let per_leg = cpu / (seconds as f64 * n as f64);
        let us = cpu * 1e6 / (seconds as f64 * 50.0 * n as f64);
        if n == 2 {
            relay = per_leg;
        }
        println!(
            "{n:>4}  {:<5}  {seconds:>7}  {cpu:>6.3}  {:>22.4} %  {us:>8.2}  ({:.1}x the relay)",
            if n == 2 { "relay" } else { "mixed" },
            per_leg * 100.0,
            per_leg / relay
        );
    }
}
