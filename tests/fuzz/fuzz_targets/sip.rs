//! SIP: any bytes, as a UDP datagram and as a TCP stream, into an endpoint
//! with a registrar and a guard. Parsing must never panic; what parses is
//! written out again and must parse the same; the endpoint must answer or
//! drop, never panic, and keep its every-call-ends promise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nida_sip::auth::Authenticator;
use nida_sip::framing::StreamFramer;
use nida_sip::guard::{Guard, GuardConfig};
use nida_sip::message::{self, Message};
use nida_sip::registrar::Registrar;
use nida_sip::{Endpoint, EndpointConfig, Event, Transport};
use std::time::{Duration, Instant};

fn without_length(m: Message) -> String {
    match m {
        Message::Request(mut r) => {
            r.headers.remove("Content-Length");
            format!("{r:?}")
        }
        Message::Response(mut r) => {
            r.headers.remove("Content-Length");
            format!("{r:?}")
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = message::parse(data) {
        let again = match &m {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        };
        let reparsed = message::parse(&again).expect("nida parses what it writes");
        // Writing always states Content-Length; the rest is unchanged.
        assert_eq!(
            without_length(reparsed),
            without_length(m),
            "written and parsed again, the message is the same"
        );
    }
    let t0 = Instant::now();
    let mut ep = Endpoint::new(EndpointConfig {
        local_addr: "127.0.0.1:5060".parse().unwrap(),
        timers: Default::default(),
        user_agent: "fuzz".into(),
        seed: Some(1),
        session_timer: Default::default(),
    });
    ep.set_registrar(Registrar::new(
        Authenticator::new("nida", "secret", t0, Duration::from_secs(300)),
        [("1001".to_string(), "pw".to_string())],
    ));
    let mut guard = Guard::new(GuardConfig::default());
    let from: std::net::SocketAddr = "192.0.2.1:5062".parse().unwrap();
    if guard.handle_message(t0, from.ip(), data.len()) == nida_sip::guard::Admit::Pass {
        ep.handle_message(t0, Transport::Udp, from, data);
    }
    let mut framer = StreamFramer::default();
    framer.push(data);
    while let Ok(Some(msg)) = framer.next_message() {
        ep.handle_message(t0, Transport::Tcp, from, &msg);
    }
    // Answer whatever call came, then let every timer run out.
    let mut open = 0i32;
    let mut now = t0;
    for _ in 0..200 {
        while ep.poll_transmit().is_some() {}
        while let Some(e) = ep.poll_event() {
            match e {
                Event::Incoming(c) => {
                    open += 1;
                    let mut m = nida_sip::offer_answer::OfferAnswer::new(
                        nida_sip::sdp::LocalMedia {
                            addr: "127.0.0.1:20000".parse().unwrap(),
                            session_id: 1,
                            version: 1,
                            srtp: None,
                        },
                        vec![nida_sip::sdp::Codec::Pcmu],
                        false,
                    );
                    if c.offer.as_ref().and_then(|o| m.answer(o)).is_none() {
                        m.offer();
                    }
                    ep.answer(now, c.call, m);
                }
                Event::Ended { .. } => open -= 1,
                _ => {}
            }
        }
        match ep.poll_timeout() {
            Some(t) => {
                now = now.max(t);
                ep.handle_timeout(now);
            }
            None => break,
        }
    }
    assert!(open >= 0, "a call ended twice");
});
