//! Inside a dialog, after the answer: hold and resume both ways, moves of
//! the media, UPDATE, glare, session timers, reliable provisionals. Two
//! endpoints (A places the call, B answers it) exchange messages in
//! virtual time through a network that can drop either side's messages;
//! a few tests play the peer by hand with raw messages.

use nida_sip::offer_answer::OfferAnswer;
use nida_sip::sdp::{Codec, Direction, LocalMedia};
use nida_sip::session_timer::TimerWish;
use nida_sip::{CallHandle, EndReason, Endpoint, EndpointConfig, Event, Invite, Transport};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const A: &str = "127.0.0.1:5070";
const B: &str = "127.0.0.1:5060";

fn ep(addr: &str, seed: u64, wish: TimerWish) -> Endpoint {
    Endpoint::new(EndpointConfig {
        local_addr: addr.parse().unwrap(),
        timers: Default::default(),
        user_agent: "test".into(),
        seed: Some(seed),
        session_timer: wish,
    })
}

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

fn no_timer() -> TimerWish {
    TimerWish {
        expires: None,
        ..Default::default()
    }
}

struct Pair {
    a: Endpoint,
    b: Endpoint,
    now: Instant,
    a_mute: bool,
    b_mute: bool,
    a_events: Vec<Event>,
    b_events: Vec<Event>,
    a_sent: Vec<String>,
    b_sent: Vec<String>,
    a_call: Option<CallHandle>,
    b_call: Option<CallHandle>,
    /// B's answer to the call it rings, until the test answers.
    b_pending: Option<OfferAnswer>,
}

impl Pair {
    fn new(wa: TimerWish, wb: TimerWish) -> Pair {
        Pair {
            a: ep(A, 1, wa),
            b: ep(B, 2, wb),
            now: Instant::now(),
            a_mute: false,
            b_mute: false,
            a_events: Vec::new(),
            b_events: Vec::new(),
            a_sent: Vec::new(),
            b_sent: Vec::new(),
            a_call: None,
            b_call: None,
            b_pending: None,
        }
    }

    fn step(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit() {
                moved = true;
                self.a_sent
                    .push(String::from_utf8_lossy(&t.data).into_owned());
                if !self.a_mute {
                    self.b
                        .handle_message(self.now, Transport::Udp, A.parse().unwrap(), &t.data);
                }
            }
            while let Some(t) = self.b.poll_transmit() {
                moved = true;
                self.b_sent
                    .push(String::from_utf8_lossy(&t.data).into_owned());
                if !self.b_mute {
                    self.a
                        .handle_message(self.now, Transport::Udp, B.parse().unwrap(), &t.data);
                }
            }
            while let Some(e) = self.a.poll_event() {
                self.a_events.push(e);
            }
            while let Some(e) = self.b.poll_event() {
                if let Event::Incoming(c) = &e {
                    self.b_call = Some(c.call);
                    let mut m = media(4000);
                    m.answer(c.offer.as_ref().expect("an offer"))
                        .expect("usable");
                    // B rings (reliably when A offered 100rel), then answers
                    // at once unless the test holds the answer back.
                    self.b.ringing(self.now, c.call);
                    self.b_pending = Some(m);
                }
                self.b_events.push(e);
            }
            if !moved {
                break;
            }
        }
    }

    fn run(&mut self, d: Duration) {
        let end = self.now + d;
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

    fn dial(&mut self, rel100: bool) -> CallHandle {
        let h = self.a.invite(
            self.now,
            Invite {
                uri: "sip:901@127.0.0.1:5060".into(),
                dest: B.parse().unwrap(),
                transport: Transport::Udp,
                from_user: "caller".into(),
                media: media(5000),
                rel100,
            },
        );
        self.a_call = Some(h);
        self.step();
        h
    }

    /// A calls B and B answers: both calls up.
    fn up(&mut self) {
        self.dial(false);
        self.answer();
        assert!(self
            .a_events
            .iter()
            .any(|e| matches!(e, Event::Answered { .. })));
        assert!(self
            .b_events
            .iter()
            .any(|e| matches!(e, Event::Confirmed { .. })));
        self.a_events.clear();
        self.b_events.clear();
        self.a_sent.clear();
        self.b_sent.clear();
    }

    fn answer(&mut self) {
        let m = self.b_pending.take().expect("B has a call");
        self.b.answer(self.now, self.b_call.unwrap(), m);
        self.step();
    }

    fn media_events(events: &[Event]) -> Vec<Direction> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Media { media, .. } => Some(media.direction),
                _ => None,
            })
            .collect()
    }

    fn ended(events: &[Event]) -> Option<EndReason> {
        events.iter().find_map(|e| match e {
            Event::Ended { reason, .. } => Some(*reason),
            _ => None,
        })
    }
}

fn sent<'a>(msgs: &'a [String], start: &str) -> Vec<&'a String> {
    msgs.iter().filter(|m| m.starts_with(start)).collect()
}

fn o_version(msg: &str) -> u64 {
    let o = msg
        .lines()
        .find(|l| l.starts_with("o="))
        .expect("an o= line");
    o.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn nida_holds_and_resumes_and_the_peer_follows() {
    let mut p = Pair::new(no_timer(), no_timer());
    p.up();
    let a = p.a_call.unwrap();
    assert!(p.a.hold(p.now, a, true));
    p.step();
    let invites = sent(&p.a_sent, "INVITE ");
    assert_eq!(invites.len(), 1);
    assert!(invites[0].contains("a=sendonly\r\n"));
    assert_eq!(o_version(invites[0]), 2, "the offer changed: version up");
    let ok = sent(&p.b_sent, "SIP/2.0 200");
    assert!(ok[0].contains("a=recvonly\r\n"), "{}", ok[0]);
    assert!(sent(&p.a_sent, "ACK ").len() == 1);
    assert_eq!(Pair::media_events(&p.a_events), vec![Direction::SendOnly]);
    assert_eq!(Pair::media_events(&p.b_events), vec![Direction::RecvOnly]);
    assert!(p.a.held(a));
    // Resume.
    p.a.hold(p.now, a, false);
    p.step();
    let invites = sent(&p.a_sent, "INVITE ");
    assert!(invites[1].contains("a=sendrecv\r\n"));
    assert_eq!(o_version(invites[1]), 3);
    assert_eq!(
        Pair::media_events(&p.b_events),
        vec![Direction::RecvOnly, Direction::SendRecv]
    );
    assert!(!p.a.held(a));
    // Nothing retransmitted, nothing left over.
    let before = p.a_sent.len() + p.b_sent.len();
    p.run(Duration::from_secs(40));
    assert_eq!(p.a_sent.len() + p.b_sent.len(), before);
    assert_eq!(Pair::ended(&p.a_events), None);
}

#[test]
fn glare_gets_491_and_each_side_offers_again_later() {
    let mut p = Pair::new(no_timer(), no_timer());
    p.up();
    let (a, b) = (p.a_call.unwrap(), p.b_call.unwrap());
    // Both hold at the same instant: the INVITEs cross.
    p.a_mute = true;
    p.b_mute = true;
    p.a.hold(p.now, a, true);
    p.b.hold(p.now, b, true);
    p.step();
    let (ia, ib) = (p.a_sent.clone(), p.b_sent.clone());
    p.a_mute = false;
    p.b_mute = false;
    for m in ia.iter().filter(|m| m.starts_with("INVITE")) {
        p.b.handle_message(p.now, Transport::Udp, A.parse().unwrap(), m.as_bytes());
    }
    for m in ib.iter().filter(|m| m.starts_with("INVITE")) {
        p.a.handle_message(p.now, Transport::Udp, B.parse().unwrap(), m.as_bytes());
    }
    p.step();
    assert_eq!(sent(&p.a_sent, "SIP/2.0 491").len(), 1);
    assert_eq!(sent(&p.b_sent, "SIP/2.0 491").len(), 1);
    // Within 4 s (RFC 3261 14.1) both have offered again and both hold.
    p.run(Duration::from_secs(5));
    assert!(p.a.held(a) && p.b.held(b));
    let last_a = *Pair::media_events(&p.a_events).last().unwrap();
    let last_b = *Pair::media_events(&p.b_events).last().unwrap();
    assert_eq!((last_a, last_b), (Direction::Inactive, Direction::Inactive));
}

#[test]
fn the_refresher_refreshes_and_a_missing_refresh_ends_the_call() {
    let wish = TimerWish {
        expires: Some(Duration::from_secs(120)),
        min_se: Duration::from_secs(90),
    };
    let mut p = Pair::new(wish, wish);
    p.dial(false);
    let invite = &sent(&p.a_sent, "INVITE ")[0].clone();
    assert!(
        invite.contains("Session-Expires: 120;refresher=uac\r\n"),
        "{invite}"
    );
    p.answer();
    let ok = sent(&p.b_sent, "SIP/2.0 200")[0].clone();
    assert!(
        ok.contains("Session-Expires: 120;refresher=uac\r\n"),
        "{ok}"
    );
    assert!(ok.contains("Require: timer\r\n"));
    p.a_sent.clear();
    // A refreshes every 60 s (half the interval), for ten minutes.
    p.run(Duration::from_secs(600));
    let refreshes = p
        .a_sent
        .iter()
        .filter(|m| m.starts_with("UPDATE ") || m.starts_with("INVITE "))
        .count();
    assert_eq!(refreshes, 10);
    assert_eq!(Pair::ended(&p.b_events), None);
    assert_eq!(Pair::ended(&p.a_events), None);
    // A falls silent: B ends the call at the interval less a third of it
    // (at most 32 s), that is after 120 - 32 = 88 s, with BYE.
    // The last refresh was at 600 s.
    p.a_mute = true;
    p.b_sent.clear();
    p.run(Duration::from_secs(87));
    assert_eq!(Pair::ended(&p.b_events), None);
    assert!(sent(&p.b_sent, "BYE ").is_empty());
    p.run(Duration::from_secs(2));
    assert_eq!(Pair::ended(&p.b_events), Some(EndReason::SessionExpired));
    assert!(!sent(&p.b_sent, "BYE ").is_empty());
}

#[test]
fn an_interval_below_min_se_gets_422_and_the_caller_retries_with_it() {
    let small = TimerWish {
        expires: Some(Duration::from_secs(100)),
        min_se: Duration::from_secs(90),
    };
    let strict = TimerWish {
        expires: Some(Duration::from_secs(1800)),
        min_se: Duration::from_secs(300),
    };
    let mut p = Pair::new(small, strict);
    p.dial(false);
    let r422 = sent(&p.b_sent, "SIP/2.0 422");
    assert_eq!(r422.len(), 1);
    assert!(r422[0].contains("Min-SE: 300\r\n"));
    let invites = sent(&p.a_sent, "INVITE ");
    assert_eq!(invites.len(), 2);
    assert!(invites[1].contains("Session-Expires: 300;refresher=uac\r\n"));
    p.answer();
    assert!(p
        .a_events
        .iter()
        .any(|e| matches!(e, Event::Answered { .. })));
}

#[test]
fn reliable_ringing_is_pracked_and_not_sent_again() {
    let mut p = Pair::new(no_timer(), no_timer());
    p.dial(true);
    let invite = sent(&p.a_sent, "INVITE ")[0].clone();
    assert!(invite.contains("Supported: 100rel, timer\r\n"));
    let ringing = sent(&p.b_sent, "SIP/2.0 180");
    assert_eq!(ringing.len(), 1);
    assert!(ringing[0].contains("Require: 100rel\r\n"));
    assert!(ringing[0].contains("RSeq: "));
    let prack = sent(&p.a_sent, "PRACK ");
    assert_eq!(prack.len(), 1);
    let rseq = ringing[0]
        .lines()
        .find_map(|l| l.strip_prefix("RSeq: "))
        .unwrap()
        .to_string();
    assert!(prack[0].contains(&format!("RAck: {rseq} 1 INVITE\r\n")));
    assert_eq!(sent(&p.b_sent, "SIP/2.0 200").len(), 1, "the PRACK's 200");
    p.run(Duration::from_secs(10));
    assert_eq!(sent(&p.b_sent, "SIP/2.0 180").len(), 1, "no retransmission");
    p.answer();
    assert!(p
        .a_events
        .iter()
        .any(|e| matches!(e, Event::Answered { .. })));
}

#[test]
fn unacknowledged_reliable_ringing_is_retransmitted_then_the_call_fails() {
    let mut p = Pair::new(no_timer(), no_timer());
    p.a_mute = true;
    p.dial(true);
    // A's INVITE never reached B while muted: deliver it by hand, then
    // drop every PRACK.
    let invite = sent(&p.a_sent, "INVITE ")[0].clone();
    p.b.handle_message(p.now, Transport::Udp, A.parse().unwrap(), invite.as_bytes());
    p.step();
    p.run(Duration::from_secs(40));
    let ringing = sent(&p.b_sent, "SIP/2.0 180").len();
    assert!((5..=11).contains(&ringing), "T1 doubling: {ringing}");
    assert!(
        !sent(&p.b_sent, "SIP/2.0 504").is_empty(),
        "64*T1 without PRACK"
    );
}

#[test]
fn update_with_and_without_an_offer() {
    let wish = TimerWish {
        expires: Some(Duration::from_secs(120)),
        min_se: Duration::from_secs(90),
    };
    let mut p = Pair::new(wish, wish);
    p.up();
    // B allows UPDATE (its 200 said so): A's refreshes are UPDATEs with
    // no body, answered 200 with no body.
    p.run(Duration::from_secs(61));
    let update = sent(&p.a_sent, "UPDATE ");
    assert_eq!(update.len(), 1);
    assert!(!update[0].contains("application/sdp"));
    let ok: Vec<&String> = sent(&p.b_sent, "SIP/2.0 200")
        .into_iter()
        .filter(|m| m.contains(" UPDATE\r\n"))
        .collect();
    assert_eq!(ok.len(), 1);
    assert!(ok[0].ends_with("\r\n\r\n"), "no body");
    assert!(Pair::media_events(&p.b_events).is_empty());
}

#[test]
fn an_answer_before_the_prack_waits_for_it_and_follows_it() {
    let mut p = Pair::new(no_timer(), no_timer());
    p.a_mute = true;
    p.dial(true);
    let invite = sent(&p.a_sent, "INVITE ")[0].clone();
    p.b.handle_message(p.now, Transport::Udp, A.parse().unwrap(), invite.as_bytes());
    p.step();
    p.answer();
    assert!(
        sent(&p.b_sent, "SIP/2.0 200").is_empty(),
        "the 2xx waits for the PRACK"
    );
    p.a_mute = false;
    p.run(Duration::from_secs(2));
    let finals: Vec<&str> = p
        .b_sent
        .iter()
        .filter(|m| m.starts_with("SIP/2.0 200"))
        .map(|m| {
            let cseq = m.lines().find(|l| l.starts_with("CSeq:")).unwrap();
            cseq.rsplit(' ').next().unwrap()
        })
        .collect();
    assert_eq!(&finals[..2], ["PRACK", "INVITE"]);
    assert!(p
        .a_events
        .iter()
        .any(|e| matches!(e, Event::Answered { .. })));
}

/// The value of header `name` in a message's text.
fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {msg}"))
}

fn tag(v: &str) -> &str {
    v.split(";tag=").nth(1).unwrap().split(';').next().unwrap()
}

#[test]
fn a_dialog_is_found_by_call_id_and_both_tags_as_replaces_names_it() {
    let mut p = Pair::new(no_timer(), no_timer());
    p.dial(false);
    p.answer();
    let ack = sent(&p.a_sent, "ACK ")[0].clone();
    let (call_id, a_tag, b_tag) = (
        header(&ack, "Call-ID"),
        tag(header(&ack, "From")),
        tag(header(&ack, "To")),
    );
    // Each side by its own tag first (RFC 3891's to-tag at the side that
    // receives the Replaces).
    assert_eq!(p.b.dialog_by_ids(call_id, b_tag, a_tag), p.b_call);
    assert_eq!(p.a.dialog_by_ids(call_id, a_tag, b_tag), p.a_call);
    assert_eq!(
        p.b.dialog_by_ids(call_id, a_tag, b_tag),
        None,
        "tags swapped"
    );
    assert_eq!(p.b.dialog_by_ids(call_id, b_tag, "other"), None);
    assert_eq!(p.b.dialog_by_ids("another", b_tag, a_tag), None);
}
