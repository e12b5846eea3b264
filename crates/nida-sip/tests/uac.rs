//! nida calling out: two endpoints, caller and callee, exchange messages
//! in virtual time through a tiny network that can drop packets.

use nida_sip::offer_answer::OfferAnswer;
use nida_sip::sdp::{Codec, LocalMedia, SessionDescription};
use nida_sip::{CallHandle, EndReason, Endpoint, EndpointConfig, Event, Invite, Transport};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn ep(addr: &str, seed: u64) -> Endpoint {
    Endpoint::new(EndpointConfig {
        local_addr: addr.parse().unwrap(),
        timers: Default::default(),
        user_agent: "test".into(),
        seed: Some(seed),
        session_timer: Default::default(),
    })
}

/// One side's audio on `port`.
fn media(port: u16) -> OfferAnswer {
    OfferAnswer::new(
        LocalMedia {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            session_id: u64::from(port),
            version: 1,
            srtp: None,
        },
        vec![Codec::Pcmu, Codec::Pcma],
        false,
    )
}

/// B's side, answering A's offer.
fn answering(offer: Option<&SessionDescription>) -> OfferAnswer {
    let mut m = media(4000);
    match offer {
        Some(o) => {
            m.answer(o).expect("a usable offer");
        }
        None => {
            m.offer();
        }
    }
    m
}

const A: &str = "127.0.0.1:5070";
const B: &str = "127.0.0.1:5060";

struct Pair {
    a: Endpoint,
    b: Endpoint,
    now: Instant,
    /// Drop every message B sends while true.
    b_mute: bool,
    a_events: Vec<Event>,
    b_events: Vec<Event>,
    /// Every message A sent.
    a_sent: Vec<Vec<u8>>,
    /// The offer of the last call B took.
    b_offer: Option<SessionDescription>,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            a: ep(A, 1),
            b: ep(B, 2),
            now: Instant::now(),
            b_mute: false,
            a_events: Vec::new(),
            b_events: Vec::new(),
            a_sent: Vec::new(),
            b_offer: None,
        }
    }

    /// Delivers messages both ways until quiet.
    fn step(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit() {
                moved = true;
                assert_eq!(t.dest, B.parse::<SocketAddr>().unwrap());
                self.a_sent.push(t.data.clone());
                self.b
                    .handle_message(self.now, Transport::Udp, A.parse().unwrap(), &t.data);
            }
            while let Some(t) = self.b.poll_transmit() {
                moved = true;
                if !self.b_mute {
                    self.a
                        .handle_message(self.now, Transport::Udp, B.parse().unwrap(), &t.data);
                }
            }
            self.a_events
                .extend(std::iter::from_fn(|| self.a.poll_event()));
            self.b_events
                .extend(std::iter::from_fn(|| self.b.poll_event()));
            if !moved {
                break;
            }
        }
    }

    /// Advances virtual time to `until`, firing timers on both sides.
    fn run(&mut self, until: Duration) {
        let end = self.now + until;
        loop {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                    self.step();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn call(&mut self) -> CallHandle {
        let now = self.now;
        let h = self.a.invite(
            now,
            Invite {
                uri: "sip:901@127.0.0.1:5060".into(),
                dest: B.parse().unwrap(),
                transport: Transport::Udp,
                from_user: "caller".into(),
                media: media(5000),
                rel100: false,
            },
        );
        self.step();
        h
    }

    fn b_incoming(&mut self) -> CallHandle {
        let pos = self
            .b_events
            .iter()
            .position(|e| matches!(e, Event::Incoming(_)))
            .expect("B got the call");
        match self.b_events.remove(pos) {
            Event::Incoming(c) => {
                self.b_offer = c.offer.clone();
                c.call
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn call_answer_ack_and_bye_from_the_caller() {
    let mut p = Pair::new();
    let a = p.call();
    let b = p.b_incoming();
    let now = p.now;
    p.b.ringing(now, b);
    p.step();
    assert!(matches!(
        p.a_events.as_slice(),
        [Event::Progress { status: 180, .. }]
    ));
    let m = answering(p.b_offer.as_ref());
    p.b.answer(now, b, m);
    p.step();
    assert!(
        matches!(&p.a_events[1], Event::Answered { call, sdp: Some(sd) } if *call == a && sd.media[0].port == 4000)
    );
    assert!(
        matches!(p.b_events.as_slice(), [Event::Confirmed { .. }]),
        "{:?}",
        p.b_events
    );
    // No 2xx retransmission after the ACK.
    p.run(Duration::from_secs(5));
    p.a.hangup(p.now, a);
    p.step();
    assert!(matches!(
        p.b_events.last(),
        Some(Event::Ended {
            reason: EndReason::RemoteBye,
            ..
        })
    ));
    assert!(matches!(
        p.a_events.last(),
        Some(Event::Ended {
            reason: EndReason::LocalBye,
            ..
        })
    ));
    p.run(Duration::from_secs(40));
    assert_eq!((p.a.transactions(), p.b.transactions()), (0, 0));
    assert_eq!((p.a.stats().calls, p.b.stats().calls), (0, 0));
}

#[test]
fn callee_hangs_up_the_call_nida_placed() {
    let mut p = Pair::new();
    let a = p.call();
    let b = p.b_incoming();
    let m = answering(p.b_offer.as_ref());
    p.b.answer(p.now, b, m);
    p.step();
    p.b.hangup(p.now, b);
    p.step();
    assert!(
        matches!(p.a_events.last(), Some(Event::Ended { call, reason: EndReason::RemoteBye }) if *call == a)
    );
}

#[test]
fn refused_call_is_acked_and_ends() {
    let mut p = Pair::new();
    let a = p.call();
    let b = p.b_incoming();
    p.b.reject(p.now, b, 486, "Busy Here", &[]);
    p.step();
    assert!(
        matches!(p.a_events.last(), Some(Event::Ended { call, reason: EndReason::Refused(486) }) if *call == a)
    );
    // B got the ACK: no 486 retransmission (Timer G stopped).
    p.run(Duration::from_secs(40));
    assert_eq!((p.a.transactions(), p.b.transactions()), (0, 0));
}

#[test]
fn cancel_before_answer() {
    let mut p = Pair::new();
    let a = p.call();
    let b = p.b_incoming();
    p.b.ringing(p.now, b);
    p.step();
    p.a.hangup(p.now, a);
    p.step();
    assert!(matches!(
        p.b_events.last(),
        Some(Event::Ended {
            reason: EndReason::Cancelled,
            ..
        })
    ));
    assert!(matches!(
        p.a_events.last(),
        Some(Event::Ended {
            reason: EndReason::Refused(487),
            ..
        })
    ));
}

#[test]
fn unanswered_invite_times_out_with_timer_b_and_retransmits_meanwhile() {
    let mut p = Pair::new();
    p.b_mute = true;
    let a = p.call();
    p.run(Duration::from_secs(31));
    assert!(p.a_events.is_empty());
    // B saw the original and six retransmissions, as one call.
    assert_eq!(
        p.b_events
            .iter()
            .filter(|e| matches!(e, Event::Incoming(_)))
            .count(),
        1
    );
    p.run(Duration::from_secs(2));
    assert!(
        matches!(p.a_events.last(), Some(Event::Ended { call, reason: EndReason::NoAnswer }) if *call == a)
    );
}

#[test]
fn lost_ack_is_sent_again_for_the_retransmitted_2xx() {
    let mut p = Pair::new();
    let _a = p.call();
    let b = p.b_incoming();
    // The first 200 OK is lost.
    p.b_mute = true;
    let m = answering(p.b_offer.as_ref());
    p.b.answer(p.now, b, m);
    p.step();
    p.b_mute = false;
    p.run(Duration::from_secs(1));
    assert!(p
        .a_events
        .iter()
        .any(|e| matches!(e, Event::Answered { .. })));
    assert!(p
        .b_events
        .iter()
        .any(|e| matches!(e, Event::Confirmed { .. })));
    p.run(Duration::from_secs(40));
    assert!(
        !p.b_events.iter().any(|e| matches!(e, Event::Ended { .. })),
        "no NoAck BYE: {:?}",
        p.b_events
    );
}

#[test]
fn a_challenged_invite_is_sent_again_with_credentials_once() {
    use nida_sip::auth::Credentials;
    use nida_sip::message::{self, Message};
    let challenge = "Digest realm=\"carrier\", nonce=\"n0nce\", qop=\"auth\", algorithm=MD5";
    let mut p = Pair::new();
    let a = p.call();
    p.a.set_credentials(a, "4420", "trunk-pass");
    let b = p.b_incoming();
    let now = p.now;
    p.b.reject(
        now,
        b,
        407,
        "Proxy Authentication Required",
        &[("Proxy-Authenticate", challenge)],
    );
    p.step();
    // The 407 is acknowledged and the INVITE goes again, answered.
    let invites: Vec<_> = p
        .a_sent
        .iter()
        .filter_map(|d| match message::parse(d).unwrap() {
            Message::Request(r) if r.method.as_str() == "INVITE" => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(invites.len(), 2, "{:?}", p.a_events);
    let second = &invites[1];
    assert_eq!(second.cseq().unwrap().0, 2);
    assert_eq!(second.call_id(), invites[0].call_id());
    assert_ne!(
        second.top_via().unwrap().branch(),
        invites[0].top_via().unwrap().branch()
    );
    let creds = Credentials::parse(second.headers.get("Proxy-Authorization").unwrap()).unwrap();
    assert_eq!(creds.username, "4420");
    assert_eq!(
        creds.response,
        creds.expected("INVITE", "trunk-pass").unwrap()
    );
    assert!(!p.a_events.iter().any(|e| matches!(e, Event::Ended { .. })));
    // A second challenge ends the call: no loop of guesses.
    let b2 = p.b_incoming();
    p.b.reject(
        now,
        b2,
        401,
        "Unauthorized",
        &[("WWW-Authenticate", challenge)],
    );
    p.step();
    assert!(p.a_events.iter().any(|e| matches!(
        e,
        Event::Ended { call, reason: EndReason::Refused(401) } if *call == a
    )));
}

#[test]
fn a_request_outside_a_dialog_reports_its_response_or_408() {
    use nida_sip::message::{Headers, Method};
    use nida_sip::OutRequest;
    let mut p = Pair::new();
    let mut h = Headers::default();
    h.push("From", "<sip:nida@127.0.0.1>;tag=1");
    h.push("To", "<sip:127.0.0.1>");
    h.push("Call-ID", "probe-1");
    h.push("CSeq", "1 OPTIONS");
    let out = OutRequest {
        tag: 42,
        method: Method::Options,
        uri: "sip:127.0.0.1:5060".into(),
        dest: B.parse().unwrap(),
        transport: Transport::Udp,
        headers: h,
    };
    let now = p.now;
    p.a.request(now, out.clone());
    p.step();
    assert!(
        p.a_events.iter().any(|e| matches!(
            e,
            Event::Response { tag: 42, status: 200, headers } if headers.get("Allow").is_some()
        )),
        "{:?}",
        p.a_events
    );
    // Unanswered: 408 after Timer F (64 T1), not before.
    p.b_mute = true;
    p.a_events.clear();
    let now = p.now;
    p.a.request(now, OutRequest { tag: 43, ..out });
    p.run(Duration::from_secs(31));
    assert!(p.a_events.is_empty(), "{:?}", p.a_events);
    p.run(Duration::from_secs(2));
    assert!(matches!(
        p.a_events.as_slice(),
        [Event::Response {
            tag: 43,
            status: 408,
            ..
        }]
    ));
}
