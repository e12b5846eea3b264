//! UAS scenarios stepped in virtual time: each test plays the caller by
//! feeding messages to an [`Endpoint`] and reading what it sends.

use nida_sip::message::{self, Message, Response};
use nida_sip::offer_answer::OfferAnswer;
use nida_sip::sdp::{Codec, LocalMedia, SessionDescription};
use nida_sip::{CallHandle, EndReason, Endpoint, EndpointConfig, Event, Transport};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const CALLER: &str = "192.0.2.10:5070";

fn endpoint() -> Endpoint {
    Endpoint::new(EndpointConfig {
        local_addr: "127.0.0.1:5060".parse().unwrap(),
        timers: Default::default(),
        user_agent: "nida-test".into(),
        seed: Some(42),
        session_timer: Default::default(),
    })
}

/// nida's side of the audio, answering the SDP of [`invite`] (or
/// offering, for a late offer).
fn media(late: bool) -> OfferAnswer {
    let mut m = OfferAnswer::new(
        LocalMedia {
            addr: "127.0.0.1:20000".parse().unwrap(),
            session_id: 9,
            version: 1,
            srtp: None,
        },
        vec![Codec::Pcmu],
        false,
    );
    if late {
        m.offer();
    } else {
        let body = invite("z9hG4bKx", true);
        let sdp = body.split("\r\n\r\n").nth(1).unwrap();
        m.answer(&SessionDescription::parse(sdp.as_bytes()).unwrap())
            .unwrap();
    }
    m
}

fn caller() -> SocketAddr {
    CALLER.parse().unwrap()
}

fn invite(branch: &str, sdp: bool) -> String {
    let body = if sdp {
        "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    } else {
        ""
    };
    let ctype = if sdp {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    format!(
        "INVITE sip:901@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5070;branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Caller\" <sip:+971500000001@192.0.2.10>;tag=caller1\r\n\
         To: <sip:901@127.0.0.1>\r\n\
         Call-ID: call-1@192.0.2.10\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:caller@192.0.2.10:5070>\r\n\
         {ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn in_dialog(method: &str, branch: &str, to_tag: &str, cseq: u32) -> String {
    format!(
        "{method} sip:nida@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5070;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: \"Caller\" <sip:+971500000001@192.0.2.10>;tag=caller1\r\n\
         To: <sip:901@127.0.0.1>;tag={to_tag}\r\n\
         Call-ID: call-1@192.0.2.10\r\n\
         CSeq: {cseq} {method}\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn feed(ep: &mut Endpoint, now: Instant, msg: &str) {
    ep.handle_message(now, Transport::Udp, caller(), msg.as_bytes());
}

fn sent(ep: &mut Endpoint) -> Vec<(SocketAddr, Message)> {
    std::iter::from_fn(|| ep.poll_transmit())
        .map(|t| {
            (
                t.dest,
                message::parse(&t.data).expect("nida sends valid SIP"),
            )
        })
        .collect()
}

fn statuses(msgs: &[(SocketAddr, Message)]) -> Vec<u16> {
    msgs.iter()
        .filter_map(|(_, m)| match m {
            Message::Response(r) => Some(r.status),
            Message::Request(_) => None,
        })
        .collect()
}

fn response(msgs: &[(SocketAddr, Message)], status: u16) -> Response {
    msgs.iter()
        .find_map(|(_, m)| match m {
            Message::Response(r) if r.status == status => Some(r.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {status} in {msgs:?}"))
}

fn incoming(ep: &mut Endpoint) -> CallHandle {
    match ep.poll_event() {
        Some(Event::Incoming(c)) => c.call,
        other => panic!("expected an incoming call, got {other:?}"),
    }
}

fn to_tag(r: &Response) -> String {
    let to = nida_sip::headers::NameAddr::parse(r.headers.get("To").unwrap()).unwrap();
    to.tag().unwrap().to_string()
}

/// Runs timers until `until`, returning what was sent with its time.
fn run_until(ep: &mut Endpoint, t0: Instant, until: Duration) -> Vec<(Duration, Message)> {
    let mut out = Vec::new();
    while let Some(at) = ep.poll_timeout() {
        if at > t0 + until {
            break;
        }
        ep.handle_timeout(at);
        for (_, m) in sent(ep) {
            out.push((at - t0, m));
        }
    }
    out
}

/// Answers a call and returns (handle, To tag).
fn answered_call(ep: &mut Endpoint, t0: Instant) -> (CallHandle, String) {
    feed(ep, t0, &invite("z9hG4bKinv1", true));
    let msgs = sent(ep);
    assert_eq!(statuses(&msgs), vec![100]);
    let call = incoming(ep);
    ep.ringing(t0, call);
    ep.answer(t0, call, media(false));
    let msgs = sent(ep);
    assert_eq!(statuses(&msgs), vec![180, 200]);
    let ok = response(&msgs, 200);
    assert_eq!(
        to_tag(&response(&msgs, 180)),
        to_tag(&ok),
        "one tag per dialog"
    );
    assert!(ok.headers.get("Contact").is_some());
    assert_eq!(ok.headers.get("Content-Type"), Some("application/sdp"));
    // Replaces (RFC 3891) is served (the daemon decides who may replace
    // which dialog), so it is advertised.
    assert!(
        ok.headers.all("Supported").any(|s| s.contains("replaces")),
        "{ok:?}"
    );
    (call, to_tag(&ok))
}

#[test]
fn basic_call_with_ack_and_remote_bye() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, tag) = answered_call(&mut ep, t0);
    feed(&mut ep, t0, &in_dialog("ACK", "z9hG4bKack1", &tag, 1));
    assert!(matches!(ep.poll_event(), Some(Event::Confirmed { call: c, .. }) if c == call));
    // No 2xx retransmission once acknowledged.
    let later = run_until(&mut ep, t0, Duration::from_secs(10));
    assert!(later.is_empty(), "{later:?}");
    feed(&mut ep, t0, &in_dialog("BYE", "z9hG4bKbye1", &tag, 2));
    assert_eq!(statuses(&sent(&mut ep)), vec![200]);
    assert!(matches!(
        ep.poll_event(),
        Some(Event::Ended {
            reason: EndReason::RemoteBye,
            ..
        })
    ));
    // A retransmitted BYE gets the same 200 from the transaction.
    feed(&mut ep, t0, &in_dialog("BYE", "z9hG4bKbye1", &tag, 2));
    assert_eq!(statuses(&sent(&mut ep)), vec![200]);
    assert_eq!(ep.stats().calls, 0);
    // Everything is cleaned up once Timers J and L have run.
    run_until(&mut ep, t0, Duration::from_secs(40));
    assert_eq!(ep.transactions(), 0);
}

#[test]
fn response_goes_to_the_source_port_with_rport() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    // Source port differs from the Via port: NAT.
    let natted: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    ep.handle_message(
        t0,
        Transport::Udp,
        natted,
        invite("z9hG4bKnat", true).as_bytes(),
    );
    let t = ep.poll_transmit().unwrap();
    assert_eq!(t.dest, natted);
    let text = String::from_utf8(t.data).unwrap();
    assert!(
        text.contains(
            "Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bKnat;rport=40000;received=198.51.100.7"
        ) || text.contains("received=198.51.100.7;rport=40000"),
        "{text}"
    );
}

#[test]
fn two_xx_is_retransmitted_until_ack_then_bye_after_64_t1() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (_call, _tag) = answered_call(&mut ep, t0);
    let timeline = run_until(&mut ep, t0, Duration::from_secs(40));
    let oks: Vec<Duration> = timeline
        .iter()
        .filter(|(_, m)| matches!(m, Message::Response(r) if r.status == 200))
        .map(|(t, _)| *t)
        .collect();
    let ms = |v: &[u64]| {
        v.iter()
            .map(|m| Duration::from_millis(*m))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        oks,
        ms(&[500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500])
    );
    let bye = timeline
        .iter()
        .find(|(_, m)| matches!(m, Message::Request(r) if r.method == message::Method::Bye))
        .expect("a BYE ends an unacknowledged call");
    assert_eq!(bye.0, Duration::from_secs(32));
    let mut ended = None;
    while let Some(e) = ep.poll_event() {
        if let Event::Ended { reason, .. } = e {
            ended = Some(reason);
        }
    }
    assert_eq!(ended, Some(EndReason::NoAck));
}

#[test]
fn retransmitted_invite_is_absorbed_or_answered_with_the_last_provisional() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    feed(&mut ep, t0, &invite("z9hG4bKr", true));
    let call = incoming(&mut ep);
    sent(&mut ep);
    ep.ringing(t0, call);
    sent(&mut ep);
    feed(&mut ep, t0, &invite("z9hG4bKr", true));
    assert_eq!(statuses(&sent(&mut ep)), vec![180]);
    assert!(ep.poll_event().is_none(), "no second call");
    ep.answer(t0, call, media(false));
    sent(&mut ep);
    feed(&mut ep, t0, &invite("z9hG4bKr", true));
    assert!(sent(&mut ep).is_empty(), "absorbed in Accepted");
}

#[test]
fn cancel_before_answer_gives_487_and_ends_the_call() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    feed(&mut ep, t0, &invite("z9hG4bKc", true));
    let call = incoming(&mut ep);
    sent(&mut ep);
    let cancel = invite("z9hG4bKc", false)
        .replace("INVITE sip", "CANCEL sip")
        .replace("1 INVITE", "1 CANCEL");
    feed(&mut ep, t0, &cancel);
    let msgs = sent(&mut ep);
    assert_eq!(statuses(&msgs), vec![200, 487]);
    assert!(matches!(
        ep.poll_event(),
        Some(Event::Ended { call: c, reason: EndReason::Cancelled }) if c == call
    ));
    // 487 is retransmitted (Timer G) until the ACK arrives.
    let again = run_until(&mut ep, t0, Duration::from_millis(600));
    assert_eq!(again.len(), 1);
    let ack = invite("z9hG4bKc", false)
        .replace("INVITE sip", "ACK sip")
        .replace("1 INVITE", "1 ACK")
        .replace(
            "To: <sip:901@127.0.0.1>",
            &format!(
                "To: <sip:901@127.0.0.1>;tag={}",
                to_tag(&response(&msgs, 487))
            ),
        );
    feed(&mut ep, t0 + Duration::from_millis(700), &ack);
    assert!(run_until(&mut ep, t0, Duration::from_secs(4)).is_empty());
    // The answer that comes too late is not sent.
    ep.answer(t0, call, media(false));
    assert!(sent(&mut ep).is_empty());
}

#[test]
fn cancel_for_unknown_transaction_is_481() {
    let mut ep = endpoint();
    let cancel = invite("z9hG4bKnone", false)
        .replace("INVITE sip", "CANCEL sip")
        .replace("1 INVITE", "1 CANCEL");
    feed(&mut ep, Instant::now(), &cancel);
    assert_eq!(statuses(&sent(&mut ep)), vec![481]);
}

#[test]
fn options_unknown_methods_and_unknown_dialogs() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let options = invite("z9hG4bKo", false)
        .replace("INVITE sip", "OPTIONS sip")
        .replace("1 INVITE", "1 OPTIONS");
    feed(&mut ep, t0, &options);
    let msgs = sent(&mut ep);
    let ok = response(&msgs, 200);
    assert!(ok.headers.get("Allow").unwrap().contains("INVITE"));
    assert_eq!(ok.headers.get("Accept"), Some("application/sdp"));

    let foo = invite("z9hG4bKf", false)
        .replace("INVITE sip", "FOOBAR sip")
        .replace("1 INVITE", "1 FOOBAR");
    feed(&mut ep, t0, &foo);
    assert_eq!(statuses(&sent(&mut ep)), vec![501]);

    let reg = invite("z9hG4bKreg", false)
        .replace("INVITE sip", "REGISTER sip")
        .replace("1 INVITE", "1 REGISTER");
    feed(&mut ep, t0, &reg);
    assert_eq!(statuses(&sent(&mut ep)), vec![405]);

    feed(&mut ep, t0, &in_dialog("BYE", "z9hG4bKb", "nosuchtag", 2));
    assert_eq!(statuses(&sent(&mut ep)), vec![481]);
    feed(&mut ep, t0, &in_dialog("INFO", "z9hG4bKi", "nosuchtag", 2));
    assert_eq!(statuses(&sent(&mut ep)), vec![481]);
    feed(
        &mut ep,
        t0,
        &in_dialog("INVITE", "z9hG4bKri", "nosuchtag", 2),
    );
    assert_eq!(statuses(&sent(&mut ep)), vec![481]);
    assert!(ep.poll_event().is_none());
}

#[test]
fn a_draining_endpoint_answers_options_503_with_retry_after() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let options = |branch: &str| {
        invite(branch, false)
            .replace("INVITE sip", "OPTIONS sip")
            .replace("1 INVITE", "1 OPTIONS")
    };
    feed(&mut ep, t0, &options("z9hG4bKd1"));
    assert_eq!(statuses(&sent(&mut ep)), vec![200]);
    ep.set_draining();
    feed(&mut ep, t0, &options("z9hG4bKd2"));
    let msgs = sent(&mut ep);
    let busy = response(&msgs, 503);
    assert_eq!(busy.headers.get("Retry-After"), Some("30"));
}

#[test]
fn max_forwards_zero_is_483_but_options_are_answered() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    feed(
        &mut ep,
        t0,
        &invite("z9hG4bKmf", true).replace("Max-Forwards: 70", "Max-Forwards: 0"),
    );
    assert_eq!(statuses(&sent(&mut ep)), vec![483]);
    let options = invite("z9hG4bKo0", false)
        .replace("INVITE sip", "OPTIONS sip")
        .replace("1 INVITE", "1 OPTIONS")
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    feed(&mut ep, t0, &options);
    assert_eq!(statuses(&sent(&mut ep)), vec![200]);
}

#[test]
fn malformed_requests_get_400_and_garbage_is_dropped() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    feed(
        &mut ep,
        t0,
        &invite("z9hG4bKm", true).replace("CSeq: 1 INVITE", "CSeq: 1 BYE"),
    );
    assert_eq!(statuses(&sent(&mut ep)), vec![400]);
    feed(&mut ep, t0, "\u{1}\u{2}garbage\r\n\r\n");
    assert!(sent(&mut ep).is_empty());
    assert_eq!(ep.stats().dropped, 1);
    // Still serving.
    feed(&mut ep, t0, &invite("z9hG4bKok", true));
    assert_eq!(statuses(&sent(&mut ep)), vec![100]);
}

#[test]
fn crlf_keep_alives_over_udp_are_neither_answered_nor_malformed() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    feed(&mut ep, t0, "\r\n\r\n");
    feed(&mut ep, t0, "\r\n");
    assert!(sent(&mut ep).is_empty());
    let s = ep.stats();
    assert_eq!((s.keepalives, s.malformed, s.dropped), (2, 0, 0));
    // A message that is not only line ends is still read as one.
    feed(&mut ep, t0, "\r\nx\r\n");
    assert_eq!(ep.stats().malformed, 1);
}

#[test]
fn a_control_character_in_a_header_gets_400_and_is_not_echoed() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let with_nul = invite("z9hG4bKnul", true)
        .replace("Max-Forwards: 70", "Max-Forwards: 70\r\nSubject: a\u{0}b");
    feed(&mut ep, t0, &with_nul);
    assert_eq!(statuses(&sent(&mut ep)), vec![400]);
    // In a header the answer would repeat: dropped, nothing sent back.
    let in_call_id =
        invite("z9hG4bKnul2", true).replace("Call-ID: call-1", "Call-ID: call-\u{1b}[2J1");
    feed(&mut ep, t0, &in_call_id);
    assert!(sent(&mut ep).is_empty());
    assert_eq!(ep.stats().calls, 0);
}

#[test]
fn hangup_waits_for_the_ack_then_sends_bye() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, tag) = answered_call(&mut ep, t0);
    ep.hangup(t0, call);
    assert!(sent(&mut ep).is_empty(), "no BYE before the ACK");
    feed(&mut ep, t0, &in_dialog("ACK", "z9hG4bKa2", &tag, 1));
    let msgs = sent(&mut ep);
    let Message::Request(bye) = &msgs[0].1 else {
        panic!("expected BYE")
    };
    assert_eq!(bye.method, message::Method::Bye);
    assert_eq!(
        bye.uri, "sip:caller@192.0.2.10:5070",
        "to the remote target"
    );
    assert_eq!(msgs[0].0, caller());
    let from = nida_sip::headers::NameAddr::parse(bye.headers.get("From").unwrap()).unwrap();
    assert_eq!(from.tag(), Some(tag.as_str()));
    assert!(bye.headers.get("To").unwrap().contains("tag=caller1"));
    // BYE is retransmitted (Timer E) until answered.
    let re = run_until(&mut ep, t0, Duration::from_millis(500));
    assert_eq!(re.len(), 1);
    let branch = bye.top_via().unwrap().branch().unwrap().to_string();
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n\
         From: {}\r\nTo: {}\r\nCall-ID: call-1@192.0.2.10\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        bye.headers.get("From").unwrap(),
        bye.headers.get("To").unwrap()
    );
    feed(&mut ep, t0 + Duration::from_secs(1), &ok);
    assert!(
        run_until(&mut ep, t0, Duration::from_secs(60)).is_empty(),
        "no more BYEs"
    );
    assert_eq!(ep.transactions(), 0);
}

#[test]
fn late_offer_gets_the_answer_in_the_ack() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    feed(&mut ep, t0, &invite("z9hG4bKlo", false));
    let Some(Event::Incoming(c)) = ep.poll_event() else {
        panic!()
    };
    assert!(c.offer.is_none());
    sent(&mut ep);
    ep.answer(t0, c.call, media(true));
    let tag = to_tag(&response(&sent(&mut ep), 200));
    let sdp = "v=0\r\nc=IN IP4 192.0.2.10\r\nm=audio 7000 RTP/AVP 8\r\n";
    let ack = in_dialog("ACK", "z9hG4bKloa", &tag, 1).replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
    );
    feed(&mut ep, t0, &ack);
    match ep.poll_event() {
        Some(Event::Confirmed { sdp: Some(sd), .. }) => assert_eq!(sd.media[0].port, 7000),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reject_with_retry_after_and_bad_body_types() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    feed(&mut ep, t0, &invite("z9hG4bK503", true));
    let call = incoming(&mut ep);
    sent(&mut ep);
    ep.reject(
        t0,
        call,
        503,
        "Service Unavailable",
        &[("Retry-After", "5")],
    );
    let r = response(&sent(&mut ep), 503);
    assert_eq!(r.headers.get("Retry-After"), Some("5"));
    assert!(matches!(
        ep.poll_event(),
        Some(Event::Ended {
            reason: EndReason::Rejected(503),
            ..
        })
    ));
    // Each request is a new call (a new Call-ID): reusing one would be a
    // merged request (482).
    let bad = invite("z9hG4bK415", true)
        .replace("application/sdp", "text/plain")
        .replace("call-1@", "call-415@");
    feed(&mut ep, t0, &bad);
    assert_eq!(statuses(&sent(&mut ep)), vec![415]);
    let unk = invite("z9hG4bK420", true)
        .replace("Max-Forwards", "Require: nothing-known\r\nMax-Forwards")
        .replace("call-1@", "call-420@");
    feed(&mut ep, t0, &unk);
    let r = response(&sent(&mut ep), 420);
    assert_eq!(r.headers.get("Unsupported"), Some("nothing-known"));
    // Require: replaces is served: the INVITE comes to the application
    // with the dialog it names.
    let replaces = invite("z9hG4bK421", true)
        .replace(
            "Max-Forwards",
            "Require: replaces\r\nReplaces: old@h;to-tag=t1;from-tag=f1\r\nMax-Forwards",
        )
        .replace("call-1@", "call-421@");
    feed(&mut ep, t0, &replaces);
    assert!(!statuses(&sent(&mut ep)).contains(&420));
    let named = std::iter::from_fn(|| ep.poll_event()).find_map(|e| match e {
        Event::Incoming(c) => c.replaces,
        _ => None,
    });
    assert_eq!(
        named,
        Some(nida_sip::headers::Replaces {
            call_id: "old@h".into(),
            to_tag: "t1".into(),
            from_tag: "f1".into()
        })
    );
    let tel = invite("z9hG4bK416", true)
        .replace("INVITE sip:901@127.0.0.1", "INVITE mailto:x@y")
        .replace("call-1@", "call-416@");
    feed(&mut ep, t0, &tel);
    assert_eq!(statuses(&sent(&mut ep)), vec![416]);
    assert!(ep.poll_event().is_none());
}

#[test]
fn merged_request_is_482() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    feed(&mut ep, t0, &invite("z9hG4bKfirst", true));
    incoming(&mut ep);
    sent(&mut ep);
    // The same Call-ID, From tag and CSeq on a new branch: a fork that
    // reached nida twice (RFC 3261 8.2.2.2).
    feed(&mut ep, t0, &invite("z9hG4bKsecond", true));
    assert_eq!(statuses(&sent(&mut ep)), vec![482]);
    assert!(ep.poll_event().is_none());
}

#[test]
fn refer_in_a_call_is_accepted_and_answered_with_a_notify() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, tag) = answered_call(&mut ep, t0);
    feed(&mut ep, t0, &in_dialog("ACK", "z9hG4bKack1", &tag, 1));
    assert!(matches!(ep.poll_event(), Some(Event::Confirmed { .. })));
    let refer = in_dialog("REFER", "z9hG4bKref1", &tag, 2).replace(
        "Content-Length: 0",
        "Refer-To: <sip:visa_urgent@127.0.0.1;transport=udp>\r\nContent-Length: 0",
    );
    feed(&mut ep, t0, &refer);
    assert_eq!(statuses(&sent(&mut ep)), vec![202]);
    match ep.poll_event() {
        Some(Event::Refer { call: c, target }) => {
            assert_eq!(c, call);
            assert_eq!(target, "sip:visa_urgent@127.0.0.1;transport=udp");
        }
        other => panic!("expected a REFER event, got {other:?}"),
    }
    ep.notify_refer(t0, call, 200, "OK");
    let msgs = sent(&mut ep);
    let notify = msgs
        .iter()
        .find_map(|(dest, m)| match m {
            Message::Request(r) if r.method == message::Method::Notify => Some((*dest, r)),
            _ => None,
        })
        .expect("a NOTIFY");
    assert_eq!(notify.0, caller(), "to the caller's Contact");
    let r = notify.1;
    assert_eq!(r.headers.get("Event"), Some("refer"));
    assert!(r
        .headers
        .get("Subscription-State")
        .unwrap()
        .starts_with("terminated"));
    assert_eq!(
        r.headers.get("Content-Type"),
        Some("message/sipfrag;version=2.0")
    );
    assert_eq!(r.body, b"SIP/2.0 200 OK\r\n");
    assert!(r.headers.get("CSeq").unwrap().ends_with("NOTIFY"));
    // The call is still up: the transfer is the application's business.
    assert_eq!(ep.stats().calls, 1);

    // Without Refer-To: 400; outside a dialog: 481.
    feed(&mut ep, t0, &in_dialog("REFER", "z9hG4bKref2", &tag, 3));
    assert_eq!(statuses(&sent(&mut ep)), vec![400]);
    feed(
        &mut ep,
        t0,
        &in_dialog("REFER", "z9hG4bKref3", "nosuchtag", 4),
    );
    assert_eq!(statuses(&sent(&mut ep)), vec![481]);
    assert!(ep.poll_event().is_none());
}

/// An INFO in the call's dialog with this body.
fn info(branch: &str, tag: &str, cseq: u32, content_type: &str, body: &str) -> String {
    in_dialog("INFO", branch, tag, cseq).replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn keys_by_info_become_events_and_other_bodies_are_refused() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, tag) = answered_call(&mut ep, t0);
    feed(&mut ep, t0, &in_dialog("ACK", "z9hG4bKack", &tag, 1));
    let relay = info(
        "z9hG4bKi1",
        &tag,
        2,
        "application/dtmf-relay",
        "Signal=5\r\nDuration=160\r\n",
    );
    feed(&mut ep, t0, &relay);
    assert_eq!(statuses(&sent(&mut ep)), vec![200]);
    feed(
        &mut ep,
        t0,
        &info("z9hG4bKi2", &tag, 3, "application/dtmf", "#"),
    );
    assert_eq!(statuses(&sent(&mut ep)), vec![200]);
    let keys: Vec<char> = std::iter::from_fn(|| ep.poll_event())
        .filter_map(|e| match e {
            Event::Dtmf { call: c, digit } if c == call => Some(digit),
            _ => None,
        })
        .collect();
    assert_eq!(keys, vec!['5', '#']);
    // An empty INFO probes the dialog; other bodies are not keys.
    feed(&mut ep, t0, &in_dialog("INFO", "z9hG4bKi3", &tag, 4));
    assert_eq!(statuses(&sent(&mut ep)), vec![200]);
    feed(
        &mut ep,
        t0,
        &info("z9hG4bKi4", &tag, 5, "application/xml", "<a/>"),
    );
    let msgs = sent(&mut ep);
    assert_eq!(statuses(&msgs), vec![415]);
    assert!(response(&msgs, 415).headers.get("Accept").is_some());
    feed(
        &mut ep,
        t0,
        &info("z9hG4bKi5", &tag, 6, "application/dtmf", "x"),
    );
    assert_eq!(statuses(&sent(&mut ep)), vec![400]);
    // Outside any dialog: 481.
    feed(
        &mut ep,
        t0,
        &info("z9hG4bKi6", "nope", 1, "application/dtmf", "1"),
    );
    assert_eq!(statuses(&sent(&mut ep)), vec![481]);
    assert!(std::iter::from_fn(|| ep.poll_event()).all(|e| !matches!(e, Event::Dtmf { .. })));
}

/// A request inside the call of [`answered_call`] carrying `sdp`.
fn in_dialog_with_sdp(method: &str, branch: &str, tag: &str, cseq: u32, sdp: &str) -> String {
    in_dialog(method, branch, tag, cseq).replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
    )
}

/// The caller's SDP, version `v`, media at `ip:port`, direction `dir`.
fn caller_sdp(v: u32, ip: &str, port: u16, dir: &str) -> String {
    format!(
        "v=0\r\no=- 1 {v} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na={dir}\r\n"
    )
}

fn body_of(r: &Response) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

fn version_of(r: &Response) -> u64 {
    let b = body_of(r);
    let o = b.lines().find(|l| l.starts_with("o=")).expect("o= line");
    o.split_whitespace().nth(2).unwrap().parse().unwrap()
}

fn media_event(ep: &mut Endpoint) -> Option<nida_sip::sdp::Negotiated> {
    std::iter::from_fn(|| ep.poll_event()).find_map(|e| match e {
        Event::Media { media, .. } => Some(media),
        _ => None,
    })
}

#[test]
fn a_peer_holds_resumes_and_moves_by_reinvite_and_nida_answers_in_kind() {
    use nida_sip::sdp::Direction;
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (_call, tag) = answered_call(&mut ep, t0);
    feed(&mut ep, t0, &in_dialog("ACK", "z9hG4bKack1", &tag, 1));
    let _ = std::iter::from_fn(|| ep.poll_event()).count();
    // Hold (linphone's pause): sendonly.
    let hold = caller_sdp(2, "192.0.2.10", 6000, "sendonly");
    feed(
        &mut ep,
        t0,
        &in_dialog_with_sdp("INVITE", "z9hG4bKh1", &tag, 2, &hold),
    );
    let ok = response(&sent(&mut ep), 200);
    assert!(body_of(&ok).contains("a=recvonly\r\n"), "{}", body_of(&ok));
    assert_eq!(version_of(&ok), 2, "the answer changed");
    assert_eq!(ok.headers.get("Content-Type"), Some("application/sdp"));
    let n = media_event(&mut ep).expect("the media changed");
    assert_eq!(n.direction, Direction::RecvOnly);
    feed(&mut ep, t0, &in_dialog("ACK", "z9hG4bKack2", &tag, 2));
    // The same hold again (a refresh): same SDP, same version, no event.
    feed(
        &mut ep,
        t0,
        &in_dialog_with_sdp("INVITE", "z9hG4bKh2", &tag, 3, &hold),
    );
    let ok = response(&sent(&mut ep), 200);
    assert_eq!(version_of(&ok), 2);
    assert!(media_event(&mut ep).is_none());
    feed(&mut ep, t0, &in_dialog("ACK", "z9hG4bKack3", &tag, 3));
    // The old way to hold: c=0.0.0.0.
    let zero = caller_sdp(3, "0.0.0.0", 6000, "sendrecv");
    feed(
        &mut ep,
        t0,
        &in_dialog_with_sdp("INVITE", "z9hG4bKh3", &tag, 4, &zero),
    );
    let ok = response(&sent(&mut ep), 200);
    assert!(body_of(&ok).contains("a=recvonly\r\n"));
    assert_eq!(version_of(&ok), 2, "the same answer as for sendonly");
    assert!(media_event(&mut ep).is_none(), "still held, still there");
    feed(&mut ep, t0, &in_dialog("ACK", "z9hG4bKack4", &tag, 4));
    // Resume on another address and port, preferring PCMA now.
    let moved = caller_sdp(4, "192.0.2.11", 7000, "sendrecv").replace("0 8 101", "8 0 101");
    feed(
        &mut ep,
        t0,
        &in_dialog_with_sdp("INVITE", "z9hG4bKh4", &tag, 5, &moved),
    );
    let ok = response(&sent(&mut ep), 200);
    assert!(body_of(&ok).contains("a=sendrecv\r\n"));
    assert_eq!(version_of(&ok), 3);
    let n = media_event(&mut ep).expect("moved");
    assert_eq!(n.remote, "192.0.2.11:7000".parse().unwrap());
    assert_eq!(n.direction, Direction::SendRecv);
    feed(&mut ep, t0, &in_dialog("ACK", "z9hG4bKack5", &tag, 5));
    // Inactive by UPDATE (RFC 3311): answered at once, inactive.
    let inactive = caller_sdp(5, "192.0.2.11", 7000, "inactive");
    feed(
        &mut ep,
        t0,
        &in_dialog_with_sdp("UPDATE", "z9hG4bKu1", &tag, 6, &inactive),
    );
    let ok = response(&sent(&mut ep), 200);
    assert!(body_of(&ok).contains("a=inactive\r\n"));
    assert_eq!(media_event(&mut ep).unwrap().direction, Direction::Inactive);
    // An UPDATE without SDP: 200 without a body.
    feed(&mut ep, t0, &in_dialog("UPDATE", "z9hG4bKu2", &tag, 7));
    let ok = response(&sent(&mut ep), 200);
    assert!(ok.body.is_empty());
    // SDP nida cannot use: 488, and the media stays as it was.
    let bad = caller_sdp(6, "192.0.2.11", 7000, "sendrecv").replace("0 8 101", "18");
    feed(
        &mut ep,
        t0,
        &in_dialog_with_sdp("INVITE", "z9hG4bKh5", &tag, 8, &bad),
    );
    assert_eq!(statuses(&sent(&mut ep)), vec![488]);
    assert!(media_event(&mut ep).is_none());
}

#[test]
fn a_reinvite_without_sdp_gets_nidas_offer_and_the_ack_answers_it() {
    use nida_sip::sdp::Direction;
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (_call, tag) = answered_call(&mut ep, t0);
    feed(&mut ep, t0, &in_dialog("ACK", "z9hG4bKack1", &tag, 1));
    let _ = std::iter::from_fn(|| ep.poll_event()).count();
    feed(&mut ep, t0, &in_dialog("INVITE", "z9hG4bKe1", &tag, 2));
    let ok = response(&sent(&mut ep), 200);
    assert!(body_of(&ok).contains("m=audio 20000 RTP/AVP"), "an offer");
    assert!(body_of(&ok).contains("a=sendrecv\r\n"));
    let answer = caller_sdp(2, "192.0.2.10", 6100, "recvonly");
    feed(
        &mut ep,
        t0,
        &in_dialog_with_sdp("ACK", "z9hG4bKack2", &tag, 2, &answer),
    );
    let n = media_event(&mut ep).expect("the ACK's answer moved the media");
    assert_eq!(n.remote.port(), 6100);
    assert_eq!(n.direction, Direction::SendOnly);
}

#[test]
fn a_burst_of_transactions_leaves_no_room_behind_once_they_end() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let idle = ep.table_room();
    for i in 0..5000 {
        let options = invite(&format!("z9hG4bKburst{i}"), false)
            .replace("INVITE sip", "OPTIONS sip")
            .replace("1 INVITE", "1 OPTIONS")
            .replace("Call-ID: ", &format!("Call-ID: burst{i}-"));
        feed(&mut ep, t0, &options);
        assert_eq!(statuses(&sent(&mut ep)), vec![200]);
    }
    let burst = ep.table_room();
    assert!(burst >= 5000, "the burst's transactions were held: {burst}");
    // Timer J ends each transaction 32 s on; the tables are looked at
    // every 10 s.
    run_until(&mut ep, t0, Duration::from_secs(60));
    let after = ep.table_room();
    assert!(
        after <= idle + 256 * 8,
        "room left after the burst: {after} (idle {idle}, burst {burst})"
    );
    // Nothing was lost: the endpoint still answers.
    let options = invite("z9hG4bKafter", false)
        .replace("INVITE sip", "OPTIONS sip")
        .replace("1 INVITE", "1 OPTIONS");
    feed(&mut ep, t0 + Duration::from_secs(61), &options);
    assert_eq!(statuses(&sent(&mut ep)), vec![200]);
}
