//! The registrar through the endpoint, in virtual time: challenge, answer
//! with MD5 and with SHA-256, the same refusal for a wrong user and a
//! wrong password, refresh, removal, expiry and too-brief intervals.

use nida_sip::auth::{self, Authenticator};
use nida_sip::message::{self, Message, Response};
use nida_sip::registrar::Registrar;
use nida_sip::{Endpoint, EndpointConfig, Event, Transport};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const PHONE: &str = "192.0.2.20:5062";

fn endpoint(t0: Instant) -> Endpoint {
    let mut ep = Endpoint::new(EndpointConfig {
        local_addr: "127.0.0.1:5060".parse().unwrap(),
        timers: Default::default(),
        user_agent: "nida-test".into(),
        seed: Some(7),
        session_timer: Default::default(),
    });
    let auth = Authenticator::new("nida", "test-secret", t0, Duration::from_secs(300));
    ep.set_registrar(Registrar::new(
        auth,
        [("1001".to_string(), "s3cret".to_string())],
    ));
    ep
}

fn register(branch: &str, user: &str, cseq: u32, expires: &str, auth: Option<&str>) -> String {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@127.0.0.1>;tag=ph1\r\n\
         To: <sip:{user}@127.0.0.1>\r\n\
         Call-ID: reg-1@192.0.2.20\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{user}@10.0.0.5:5062;transport=udp>{expires}\r\n\
         {auth}Content-Length: 0\r\n\r\n"
    )
}

fn exchange(ep: &mut Endpoint, now: Instant, msg: &str) -> Response {
    ep.handle_message(now, Transport::Udp, PHONE.parse().unwrap(), msg.as_bytes());
    let mut out: Vec<Response> = std::iter::from_fn(|| ep.poll_transmit())
        .map(|t| match message::parse(&t.data).unwrap() {
            Message::Response(r) => r,
            other => panic!("expected a response, got {other:?}"),
        })
        .collect();
    assert_eq!(out.len(), 1, "one response");
    out.remove(0)
}

fn events(ep: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

/// REGISTER, read the challenge of `algorithm`, answer it with `password`.
fn register_with(
    ep: &mut Endpoint,
    now: Instant,
    user: &str,
    password: &str,
    algorithm: &str,
    n: u32,
) -> Response {
    let first = exchange(ep, now, &register(&format!("a{n}"), user, n, "", None));
    assert_eq!(first.status, 401);
    let challenge = first
        .headers
        .all("WWW-Authenticate")
        .find(|c| c.contains(&format!("algorithm={algorithm},")))
        .unwrap_or_else(|| panic!("no {algorithm} challenge"))
        .to_string();
    let answer = auth::answer(
        &challenge,
        "REGISTER",
        "sip:127.0.0.1",
        user,
        password,
        &format!("cn0nce{n}"),
    )
    .unwrap();
    exchange(
        ep,
        now,
        &register(&format!("b{n}"), user, n + 1, "", Some(&answer)),
    )
}

#[test]
fn challenge_offers_md5_then_sha256() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    let r = exchange(&mut ep, t0, &register("x", "1001", 1, "", None));
    assert_eq!(r.status, 401);
    let ch: Vec<&str> = r.headers.all("WWW-Authenticate").collect();
    assert_eq!(ch.len(), 2);
    assert!(ch[0].contains("algorithm=MD5") && ch[1].contains("algorithm=SHA-256"));
    assert!(events(&mut ep).is_empty());
}

#[test]
fn both_algorithms_register_and_bind_the_source_address() {
    for (i, alg) in ["MD5", "SHA-256"].iter().enumerate() {
        let t0 = Instant::now();
        let mut ep = endpoint(t0);
        let r = register_with(&mut ep, t0, "1001", "s3cret", alg, 1 + i as u32 * 10);
        assert_eq!(r.status, 200, "{alg}");
        assert_eq!(
            r.headers.get("Contact"),
            Some("<sip:1001@10.0.0.5:5062;transport=udp>;expires=3600")
        );
        let ev = events(&mut ep);
        // The accepted credentials are reported (the protection forgets the
        // source's failures), then the new binding.
        let phone: SocketAddr = PHONE.parse().unwrap();
        assert!(
            matches!(ev.first(), Some(Event::AuthSucceeded { source }) if *source == phone),
            "{ev:?}"
        );
        let Some(Event::Registered(b)) = ev.get(1) else {
            panic!("{ev:?}")
        };
        assert_eq!(b.user, "1001");
        assert_eq!(b.source, PHONE.parse::<SocketAddr>().unwrap());
        let reg = ep.registrar().unwrap();
        assert!(reg.lookup("1001", t0).is_some());
        assert_eq!(reg.user_at(PHONE.parse().unwrap(), t0), Some("1001"));
    }
}

#[test]
fn wrong_user_and_wrong_password_get_the_same_answer() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    let bad_pw = register_with(&mut ep, t0, "1001", "guess", "MD5", 1);
    let bad_user = register_with(&mut ep, t0, "1999", "s3cret", "MD5", 3);
    assert_eq!(bad_pw.status, 403);
    assert_eq!(bad_user.status, 403);
    assert_eq!(bad_pw.reason, bad_user.reason);
    assert_eq!(
        bad_pw.headers.count("WWW-Authenticate"),
        bad_user.headers.count("WWW-Authenticate")
    );
    // Both refusals are reported alike, for the protection to count.
    let ev = events(&mut ep);
    let phone: SocketAddr = PHONE.parse().unwrap();
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(
        ev.iter()
            .all(|e| matches!(e, Event::AuthFailed { source } if *source == phone)),
        "{ev:?}"
    );
    assert!(ep.registrar().unwrap().lookup("1001", t0).is_none());
}

#[test]
fn expiry_refresh_removal_and_brief_intervals() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    let ok = register_with(&mut ep, t0, "1001", "s3cret", "MD5", 1);
    assert_eq!(ok.status, 200);
    events(&mut ep);
    // The binding lapses after an hour (the endpoint wakes for it).
    let expiry = ep.registrar().unwrap().next_expiry();
    assert_eq!(expiry, Some(t0 + Duration::from_secs(3600)));
    ep.handle_timeout(t0 + Duration::from_secs(60));
    assert!(events(&mut ep).is_empty());
    assert_eq!(ep.poll_timeout(), expiry, "transactions are over");
    let later = t0 + Duration::from_secs(3600);
    ep.handle_timeout(later);
    assert!(matches!(
        events(&mut ep).as_slice(),
        [Event::Unregistered { user }] if user == "1001"
    ));
    // Too brief: 423 with Min-Expires.
    let first = exchange(
        &mut ep,
        later,
        &register("c", "1001", 5, ";expires=10", None),
    );
    let challenge = first.headers.all("WWW-Authenticate").next().unwrap();
    // One phone's requests with this nonce count up (nc), as RFC 7616
    // asks: the same Authorization twice would be a replay.
    let answer = |nc| {
        auth::answer_nc(
            challenge,
            "REGISTER",
            "sip:127.0.0.1",
            "1001",
            "s3cret",
            "x",
            nc,
        )
        .unwrap()
    };
    let brief = exchange(
        &mut ep,
        later,
        &register("d", "1001", 6, ";expires=10", Some(&answer(1))),
    );
    assert_eq!(brief.status, 423);
    assert_eq!(brief.headers.get("Min-Expires"), Some("60"));
    // 120 s is granted; then expires=0 removes it.
    let ok = exchange(
        &mut ep,
        later,
        &register("e", "1001", 7, ";expires=120", Some(&answer(2))),
    );
    assert_eq!(ok.status, 200);
    assert!(ok.headers.get("Contact").unwrap().ends_with("expires=120"));
    let gone = exchange(
        &mut ep,
        later,
        &register("f", "1001", 8, ";expires=0", Some(&answer(3))),
    );
    assert_eq!(gone.status, 200);
    assert_eq!(gone.headers.get("Contact"), None);
    let ev = events(&mut ep);
    assert!(
        matches!(ev.last(), Some(Event::Unregistered { .. })),
        "{ev:?}"
    );
}

#[test]
fn without_a_registrar_register_is_not_allowed() {
    let mut ep = Endpoint::new(EndpointConfig {
        local_addr: "127.0.0.1:5060".parse().unwrap(),
        timers: Default::default(),
        user_agent: "nida-test".into(),
        seed: Some(7),
        session_timer: Default::default(),
    });
    let r = exchange(&mut ep, Instant::now(), &register("g", "1001", 1, "", None));
    assert_eq!(r.status, 405);
}

#[test]
fn a_user_guessed_from_many_addresses_is_locked_but_not_from_its_phone() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    // The agent's phone registers first.
    assert_eq!(
        register_with(&mut ep, t0, "1001", "s3cret", "MD5", 1).status,
        200
    );
    events(&mut ep);
    // A guesser spreads wrong passwords over 20 addresses (each under the
    // per-source block), then finds the right one.
    let first = exchange(&mut ep, t0, &register("g0", "1001", 10, "", None));
    let challenge = first
        .headers
        .all("WWW-Authenticate")
        .next()
        .unwrap()
        .to_string();
    let from = |i: u32, password: &str, n: u32| {
        let a = auth::answer(
            &challenge,
            "REGISTER",
            "sip:127.0.0.1",
            "1001",
            password,
            &format!("g{i}"),
        )
        .unwrap();
        let msg = register(&format!("g{i}x{n}"), "1001", 11 + n, "", Some(&a));
        let src: SocketAddr = format!("198.51.100.{}:5060", i + 1).parse().unwrap();
        (msg, src)
    };
    let send = |ep: &mut Endpoint, (msg, src): (String, SocketAddr)| {
        ep.handle_message(t0, Transport::Udp, src, msg.as_bytes());
        let t = ep.poll_transmit().expect("an answer");
        match message::parse(&t.data).unwrap() {
            Message::Response(r) => r.status,
            other => panic!("{other:?}"),
        }
    };
    for i in 0..20 {
        assert_eq!(send(&mut ep, from(i, "guess", i)), 403);
    }
    assert_eq!(
        send(&mut ep, from(30, "s3cret", 30)),
        403,
        "locked for others"
    );
    // The phone's own refresh still goes through.
    assert_eq!(
        register_with(&mut ep, t0, "1001", "s3cret", "SHA-256", 40).status,
        200
    );
    // The lock lapses.
    let later = t0 + Duration::from_secs(601);
    assert_eq!(
        register_with(&mut ep, later, "1001", "s3cret", "MD5", 50).status,
        200
    );
}
