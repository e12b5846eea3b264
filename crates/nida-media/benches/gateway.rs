//! What a browser agent's call costs beside a SIP phone's: CPU time per
//! second of call in the web phone's media gateway (Opus both ways, SRTP,
//! PCMU to the call) against the plain relay every bridged call does
//! (an RTP packet in, its payload to the other leg, a packet out, both
//! ways). Run with `cargo bench -p nida-media --bench gateway`; it prints
//! the figures and fails if the gateway's audio does not get through.

#[path = "../tests/common/browser.rs"]
mod browser;

use nida_media::{Law, RtpSession, SessionConfig};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Seconds of call measured per path.
const SECONDS: usize = 20;

fn gateway() -> Duration {
    let mut w = browser::World::new();
    // Until media flows (ICE, DTLS).
    for _ in 0..50 {
        w.step(1000.0, 600.0);
    }
    assert!(w.connected, "the gateway did not connect");
    let before = w.gateway_time;
    let heard = (w.browser_heard.len(), w.call_heard.len());
    for _ in 0..SECONDS * 50 {
        w.step(1000.0, 600.0);
    }
    let got = (
        w.browser_heard.len() - heard.0,
        w.call_heard.len() - heard.1,
    );
    // Both ways, nearly every frame: a gateway dropping audio fails here.
    let want = SECONDS * 8000 * 9 / 10;
    assert!(
        got.0 >= want && got.1 >= want,
        "audio lost in the gateway: {got:?}"
    );
    (w.gateway_time - before) / SECONDS as u32
}

fn session(now: Instant, remote: &str, ssrc: u32) -> RtpSession {
    let mut s = RtpSession::new(
        now,
        SessionConfig {
            law: Law::Mu,
            telephone_event: Some(101),
            ssrc,
            initial_seq: 1,
            initial_ts: 0,
            remote: remote.parse().unwrap(),
            rtp_timeout: Duration::from_secs(600),
            keep_audio: false,
        },
    );
    s.set_relay(true);
    s
}

fn relay() -> Duration {
    let t0 = Instant::now();
    let (caller_addr, agent_addr): (SocketAddr, SocketAddr) = (
        "10.0.1.1:4000".parse().unwrap(),
        "10.0.1.2:4000".parse().unwrap(),
    );
    let mut caller_leg = session(t0, "10.0.1.1:4000", 11);
    let mut agent_leg = session(t0, "10.0.1.2:4000", 12);
    let pcm = browser::tone(1000.0, 8000.0, 0, 160);
    let payload = Law::Mu.encode(&pcm);
    let mut buf = [0u8; 1500];
    let mut spent = Duration::ZERO;
    let mut relayed = 0;
    for i in 0..SECONDS * 50 {
        let now = t0 + Duration::from_millis(20 * i as u64);
        let mut pkt = vec![0x80, 0];
        pkt.extend_from_slice(&(i as u16).to_be_bytes());
        pkt.extend_from_slice(&((i * 160) as u32).to_be_bytes());
        pkt.extend_from_slice(&0x0101_0101u32.to_be_bytes());
        pkt.extend_from_slice(&payload);
        let clock = Instant::now();
        // Both ways: the caller's packet to the agent, the agent's back.
        caller_leg.handle_packet(now, caller_addr, &pkt);
        agent_leg.handle_packet(now, agent_addr, &pkt);
        let a = caller_leg.take_received();
        let b = agent_leg.take_received();
        relayed += usize::from(a.len() == 160 && b.len() == 160);
        agent_leg.push_audio(Law::Mu, &a);
        caller_leg.push_audio(Law::Mu, &b);
        caller_leg.handle_timeout(now);
        agent_leg.handle_timeout(now);
        while agent_leg.poll_transmit(now, &mut buf).is_some() {}
        while caller_leg.poll_transmit(now, &mut buf).is_some() {}
        spent += clock.elapsed();
    }
    // Every frame's payload went through, both ways.
    assert!(
        relayed >= SECONDS * 50 * 9 / 10,
        "the relay passed {relayed} frames"
    );
    spent / SECONDS as u32
}

fn main() {
    let g = gateway();
    let r = relay();
    let per = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "web phone gateway (Opus <-> PCMU, SRTP, both ways): {:.3} ms CPU per second of call",
        per(g)
    );
    println!(
        "plain relay (PCMU, both ways):                      {:.3} ms CPU per second of call",
        per(r)
    );
    println!(
        "a browser-to-G.711 call costs {:.1}x a relayed one (the gateway on top of the relay: {:.1} % of one core per call, {:.0} calls per core)",
        (per(g) + per(r)) / per(r),
        per(g + r) / 10.0,
        1000.0 / per(g + r)
    );
}
