//! The threat model, proved on loopback: each test plays an attacker
//! without credentials against a real nida, from addresses of its own in
//! 127.0.0.0/8, and checks the attack fails. One test (or a few) per class:
//!
//! 1. guessing nida's identifiers and nonces from what it sends;
//! 2. answering nida's requests, or sending media, from another address;
//!    aiming nida's media at a third party with an INVITE it never ACKs;
//! 3. making nida dial a number of the attacker's choosing (toll fraud);
//! 4. exhausting connections, memory, RTP ports or call-backs;
//! 5. replaying or guessing credentials, tokens in URLs, forged feature
//!    codes, a store others can read;
//! 6. a full disk or a read-only data folder losing records;
//! 7. smaller holes: personal data in logs, control characters in
//!    headers, a reload naming a queue nobody serves.
//!
//! Each attack here succeeded against earlier versions of nida.

use crate::common;

use common::Nida;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Reads one datagram as text, or `None` after `timeout`.
fn recv(sock: &UdpSocket, timeout: Duration) -> Option<(String, SocketAddr)> {
    sock.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 65536];
    let (n, from) = sock.recv_from(&mut buf).ok()?;
    Some((String::from_utf8_lossy(&buf[..n]).into_owned(), from))
}

/// Waits for a SIP message whose first line starts with `start`.
fn recv_sip(sock: &UdpSocket, start: &str, timeout: Duration) -> Option<String> {
    let t0 = Instant::now();
    while let Some(left) = timeout.checked_sub(t0.elapsed()) {
        match recv(sock, left) {
            Some((m, _)) if m.starts_with(start) => return Some(m),
            Some(_) => {}
            None => return None,
        }
    }
    None
}

/// The value of header `name` in a SIP message.
fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in {msg}"))
}

/// An OPTIONS from `sock` to nida; the `tag` of nida's `To` in the answer.
fn options_tag(sock: &UdpSocket, nida: SocketAddr, n: u32) -> String {
    let me = sock.local_addr().unwrap();
    let req = format!(
        "OPTIONS sip:nida@{nida} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKprobe{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{me}>;tag=p{n}\r\nTo: <sip:nida@{nida}>\r\n\
         Call-ID: probe-{n}@{me}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(req.as_bytes(), nida).unwrap();
    let resp = recv_sip(sock, "SIP/2.0 200", Duration::from_secs(5)).expect("OPTIONS answered");
    let to = header(&resp, "To");
    to.split(";tag=")
        .nth(1)
        .unwrap_or_else(|| panic!("no tag in {to}"))
        .to_string()
}

/// SplitMix64, the generator earlier versions drew every tag from, run
/// backwards: from one output to the state that made it, then forwards
/// to the next output. Against a CSPRNG the guess is worthless.
fn splitmix_next_after(output: u64) -> u64 {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    const M1: u64 = 0xBF58_476D_1CE4_E5B9;
    const M2: u64 = 0x94D0_49BB_1331_11EB;
    fn inverse(m: u64) -> u64 {
        // Newton's iteration for the inverse of an odd number mod 2^64.
        let mut x = m;
        for _ in 0..6 {
            x = x.wrapping_mul(2u64.wrapping_sub(m.wrapping_mul(x)));
        }
        x
    }
    fn unshift(y: u64, k: u32) -> u64 {
        let mut x = y;
        for _ in 0..(64 / k + 1) {
            x = y ^ (x >> k);
        }
        x
    }
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(M1);
        z = (z ^ (z >> 27)).wrapping_mul(M2);
        z ^ (z >> 31)
    }
    let mut z = unshift(output, 31).wrapping_mul(inverse(M2));
    z = unshift(z, 27).wrapping_mul(inverse(M1));
    let state = unshift(z, 30);
    assert_eq!(mix(state), output, "the inversion is exact");
    mix(state.wrapping_add(GAMMA))
}

#[test]
fn the_next_tag_cannot_be_predicted_from_the_last() {
    let nida = Nida::start("UNSEEDED\n");
    let sock = UdpSocket::bind("127.0.0.9:0").unwrap();
    let first = options_tag(&sock, nida.sip, 1);
    let second = options_tag(&sock, nida.sip, 2);
    let parse = |t: &str| u64::from_str_radix(t, 16).unwrap_or_else(|_| panic!("hex tag {t}"));
    assert_ne!(first, second);
    assert_ne!(
        splitmix_next_after(parse(&first)),
        parse(&second),
        "the second tag follows from the first"
    );
}

/// A REGISTER for agent 1001 from `sock` with `auth` (if any); nida's
/// answer.
fn register(sock: &UdpSocket, nida: SocketAddr, n: u32, auth: Option<&str>) -> String {
    let me = sock.local_addr().unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "REGISTER sip:{nida} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKreg{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:1001@{nida}>;tag=r{n}\r\nTo: <sip:1001@{nida}>\r\n\
         Call-ID: reg-{n}@{me}\r\nCSeq: {n} REGISTER\r\nContact: <sip:1001@{me}>\r\n\
         {auth}Expires: 60\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(req.as_bytes(), nida).unwrap();
    recv_sip(sock, "SIP/2.0", Duration::from_secs(5)).expect("REGISTER answered")
}

const AGENT: &str = "[[agents]]\nid = 1\nuser = \"1001\"\npassword = \"s3cret\"\nname = \"A\"\nlanguages = [\"en\"]\n";

#[test]
fn a_test_seed_never_makes_nonces_another_instance_accepts() {
    // Two instances with the same seed: the seed repeats identifiers, but
    // a nonce key made from it could be made by anyone who knows the seed,
    // and one instance's nonces would be good at the other. Credentials
    // answering A's challenge are refused by B.
    let a = Nida::start(AGENT);
    let b = Nida::start(AGENT);
    let sock = UdpSocket::bind("127.0.0.9:0").unwrap();
    let resp = register(&sock, a.sip, 1, None);
    assert!(resp.starts_with("SIP/2.0 401"), "{resp}");
    let challenge = header(&resp, "WWW-Authenticate");
    let auth = |nida: SocketAddr| {
        let uri = format!("sip:{nida}");
        nida_sip::auth::answer(challenge, "REGISTER", &uri, "1001", "s3cret", "c0ffee").unwrap()
    };
    let at_a = register(&sock, a.sip, 2, Some(&auth(a.sip)));
    assert!(at_a.starts_with("SIP/2.0 200"), "{at_a}");
    let at_b = register(&sock, b.sip, 3, Some(&auth(b.sip)));
    assert!(
        at_b.starts_with("SIP/2.0 401") || at_b.starts_with("SIP/2.0 403"),
        "B took A's nonce: {at_b}"
    );
}

/// `nida call` dialling the main flow from `from`, pressing `digits`
/// (the flow's menus, then the queue's keys), hanging up 5 s after the
/// last keys or after `seconds` in all.
fn nida_call(nida: &Nida, from: &str, digits: &str, seconds: u32) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nida"));
    c.args(["call", &format!("sip:8005@{}", nida.sip)])
        .args(["--from", from, "--digits", digits])
        .args(["--barge-in-ms", "1500", "--gap-ms", "700"])
        .args(["--hang-up-after-ms", "5000"])
        .args(["--max-seconds", &seconds.to_string()]);
    c
}

/// A caller choosing English and an agent, then waiting up to `seconds`.
fn caller(nida: &Nida, seconds: u32) -> Child {
    nida_call(nida, "nida-call", "2,0", seconds)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nida call starts")
}

/// nida with one agent whose phone is the test's socket `phone` (a fixed
/// contact, ready from the start), serving the visa queue.
fn centre_with_phone(phone: &UdpSocket, extra: &str) -> Nida {
    let port = phone.local_addr().unwrap().port();
    Nida::start(&format!(
            "[[agents]]\nid = 2\nuser = \"1002\"\npassword = \"x\"\nname = \"Omar\"\n\
             skills = {{ visa = 5 }}\nlanguages = [\"en\"]\ncontact = \"sip:1002@127.0.0.1:{port}\"\n\
             [queues.visa_general]\nannounce_seconds = 0\nwrap_up_seconds = 0\noffer_timeout_seconds = 30\n{extra}"
        ),
    )
}

/// A response to `invite` with `status`, as its phone (or a forger) would
/// write it, with an SDP answer naming `media` for a 200.
fn response_to(
    invite: &str,
    status: &str,
    contact: SocketAddr,
    media: Option<SocketAddr>,
) -> String {
    let body = media
        .map(|m| {
            format!(
                "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
                 m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
                ip = m.ip(),
                port = m.port()
            )
        })
        .unwrap_or_default();
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=forged\r\nCall-ID: {}\r\nCSeq: {}\r\n\
         Contact: <sip:1002@{contact}>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
        header(invite, "Via"),
        header(invite, "From"),
        header(invite, "To"),
        header(invite, "Call-ID"),
        header(invite, "CSeq"),
        body.len()
    )
}

#[test]
fn a_forged_answer_from_another_address_is_dropped() {
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let nida = centre_with_phone(&phone, "");
    let mut call = caller(&nida, 30);
    let invite = recv_sip(&phone, "INVITE", Duration::from_secs(20)).expect("the agent is rung");
    // The forger copies the INVITE (seen on the wire, or guessed) and
    // answers first, from its own host, naming its own media address.
    let forger = UdpSocket::bind("127.0.0.5:0").unwrap();
    let forger_media = UdpSocket::bind("127.0.0.5:0").unwrap();
    let forged = response_to(
        &invite,
        "200 OK",
        forger.local_addr().unwrap(),
        Some(forger_media.local_addr().unwrap()),
    );
    forger.send_to(forged.as_bytes(), nida.sip).unwrap();
    // The real phone then declines: nida must take that answer, from the
    // address its INVITE went to, and acknowledge it there.
    let busy = response_to(&invite, "486 Busy Here", phone.local_addr().unwrap(), None);
    phone.send_to(busy.as_bytes(), nida.sip).unwrap();
    let ack = recv_sip(&phone, "ACK", Duration::from_secs(5));
    assert!(
        ack.is_some(),
        "the real answer was not taken: {}",
        nida.log()
    );
    // Whatever nida sent the forger (an ACK, RTP) went out before the ACK
    // above: it would be waiting in the forger's sockets now.
    forger.set_nonblocking(true).unwrap();
    forger_media.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    assert!(
        forger.recv_from(&mut buf).is_err(),
        "nida answered the forger"
    );
    assert!(
        forger_media.recv_from(&mut buf).is_err(),
        "nida sent the forger media"
    );
    assert_eq!(nida.status("sip_foreign_responses"), 1);
    let _ = call.kill();
    let _ = call.wait();
}

/// An INVITE to the IVR from `sock` offering PCMU at `media`.
fn invite(sock: &UdpSocket, nida: SocketAddr, media: SocketAddr, call: &str) -> String {
    let me = sock.local_addr().unwrap();
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        ip = media.ip(),
        port = media.port()
    );
    format!(
        "INVITE sip:901@{nida} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:caller@{me}>;tag={call}\r\nTo: <sip:901@{nida}>\r\n\
         Call-ID: {call}@{me}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{me}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// The media address in an SDP body.
fn sdp_media(msg: &str) -> SocketAddr {
    let ip = msg
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .unwrap()
        .trim();
    let port = msg
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|r| r.split(' ').next())
        .unwrap();
    format!("{ip}:{port}").parse().unwrap()
}

/// An RTP packet of µ-law silence.
fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p.extend([0xFF; 160]);
    p
}

#[test]
fn an_invite_that_is_never_acknowledged_sends_no_media() {
    // A forged source sends one INVITE whose SDP names a victim; it never
    // sees the 200, so it never ACKs. nida must not play its prompt at the
    // victim meanwhile.
    let nida = Nida::start("");
    let sock = UdpSocket::bind("127.0.0.7:0").unwrap();
    let victim = UdpSocket::bind("127.0.0.8:0").unwrap();
    let req = invite(&sock, nida.sip, victim.local_addr().unwrap(), "noack1");
    sock.send_to(req.as_bytes(), nida.sip).unwrap();
    // The 200 and two retransmissions (T1 = 0.5 s, then 1 s): 1.5 s in
    // which a prompt would have sent 75 packets.
    for _ in 0..3 {
        assert!(
            recv_sip(&sock, "SIP/2.0 200", Duration::from_secs(5)).is_some(),
            "{}",
            nida.log()
        );
    }
    victim.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    assert!(
        victim.recv_from(&mut buf).is_err(),
        "nida sent RTP to the victim"
    );
}

#[test]
fn rtp_sprayed_at_a_call_does_not_take_its_audio() {
    let nida = Nida::start("");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let attacker = UdpSocket::bind("127.0.0.6:0").unwrap();
    let req = invite(&sock, nida.sip, media.local_addr().unwrap(), "spray1");
    sock.send_to(req.as_bytes(), nida.sip).unwrap();
    let ok = recv_sip(&sock, "SIP/2.0 200", Duration::from_secs(5)).expect("answered");
    let nida_media = sdp_media(&ok);
    let me = sock.local_addr().unwrap();
    let ack = format!(
        "ACK sip:901@{} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKspray1ack\r\n\
         Max-Forwards: 70\r\nFrom: <sip:caller@{me}>;tag=spray1\r\nTo: {}\r\n\
         Call-ID: spray1@{me}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        nida.sip,
        header(&ok, "To")
    );
    sock.send_to(ack.as_bytes(), nida.sip).unwrap();
    // The attacker sprays the port before the caller speaks (the first
    // source used to win), then sends a perfect run while the caller talks.
    for i in 0..40 {
        attacker
            .send_to(&rtp(i * 13, 0xbad0 + u32::from(i % 4)), nida_media)
            .unwrap();
    }
    for i in 0..40 {
        media.send_to(&rtp(1000 + i, 0xca11), nida_media).unwrap();
        attacker.send_to(&rtp(5000 + i, 0xbad), nida_media).unwrap();
    }
    // nida keeps sending to the caller: 50 more packets there, none to the
    // attacker (its sends go out in order, so any would be waiting now).
    let mut buf = [0u8; 2048];
    media
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for _ in 0..50 {
        let (_, from) = media
            .recv_from(&mut buf)
            .expect("nida's RTP reaches the caller");
        assert_eq!(from, nida_media);
    }
    attacker.set_nonblocking(true).unwrap();
    assert!(
        attacker.recv_from(&mut buf).is_err(),
        "nida sent the call's audio to the attacker"
    );
}

#[test]
fn a_forged_caller_number_cannot_book_a_call_back_through_the_carrier() {
    // Call-backs go out through a carrier route. The attacker calls from
    // an untrusted source with the number it wants nida to dial (a premium
    // number abroad) in From, and presses the call-back digit.
    let carrier = UdpSocket::bind("127.0.0.1:0").unwrap();
    let nida = Nida::start_with(|dir| {
        format!(
            "data_dir = \"{}\"\noutbound_uri = \"sip:{{number}}@{}\"\n\
             [queues.visa_general]\nannounce_seconds = 0\n",
            dir.join("data").display(),
            carrier.local_addr().unwrap()
        )
    });
    let out = nida_call(&nida, "+88216000000", "2,w0,1", 25)
        .output()
        .expect("nida call runs");
    let timeline = String::from_utf8_lossy(&out.stdout);
    assert!(timeline.contains("pressing 1"), "{timeline}");
    let store = nida_store::Store::open_dir(&nida.dir.join("data")).unwrap();
    let calls = || store.calls(&nida_store::Query::default()).unwrap();
    assert!(
        common::wait(Duration::from_secs(10), || calls().len() == 1),
        "{}",
        nida.log()
    );
    assert_eq!(
        store.callbacks(false).unwrap(),
        vec![],
        "a call-back was booked"
    );
    let calls = calls();
    assert_eq!(calls[0].outcome, "abandoned");
    carrier.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    assert!(carrier.recv_from(&mut buf).is_err(), "nida dialled out");
}

// ---------- 4. bounded resources ----------

/// Whether the peer closes `s` within `within` (a read returns 0 or an
/// error other than a timeout).
fn closed_by_peer(s: &mut std::net::TcpStream, within: Duration) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn sip_connections_are_bounded_in_number_size_and_idle_time() {
    use std::io::Write;
    let nida = Nida::start("[protection]\nmax_connections_per_source = 4\ntcp_idle_seconds = 1\n");
    // A message promising a 1 MiB body is refused at its header.
    let mut big = std::net::TcpStream::connect(nida.sip).unwrap();
    big.write_all(
        b"INVITE sip:901@nida SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKbig\r\n\
          Content-Length: 1048576\r\n\r\nv=0\r\n",
    )
    .unwrap();
    assert!(
        closed_by_peer(&mut big, Duration::from_secs(5)),
        "a 1 MiB body was awaited"
    );
    // Four connections from one source are held; the fifth is closed.
    let mut held: Vec<_> = (0..4)
        .map(|_| std::net::TcpStream::connect(nida.sip).unwrap())
        .collect();
    let mut fifth = std::net::TcpStream::connect(nida.sip).unwrap();
    assert!(
        closed_by_peer(&mut fifth, Duration::from_secs(5)),
        "a fifth connection was kept"
    );
    // The idle ones are closed after the idle time.
    for s in &mut held {
        assert!(
            closed_by_peer(s, Duration::from_secs(10)),
            "an idle connection was kept"
        );
    }
}

#[test]
fn http_bodies_over_the_limit_are_refused_at_the_header() {
    use std::io::Write;
    let nida = Nida::start("");
    let mut s = std::net::TcpStream::connect(nida.http).unwrap();
    s.write_all(
        b"POST /api/agent-login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100000\r\n\r\n",
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = [0u8; 64];
    let n = std::io::Read::read(&mut s, &mut head).expect("an answer without the body");
    let line = String::from_utf8_lossy(&head[..n]);
    assert!(line.starts_with("HTTP/1.1 413"), "{line}");
}

#[test]
fn http_connections_per_source_are_bounded() {
    let nida = Nida::start("");
    let _held: Vec<_> = (0..256)
        .map(|_| std::net::TcpStream::connect(nida.http).unwrap())
        .collect();
    let mut over = std::net::TcpStream::connect(nida.http).unwrap();
    assert!(
        closed_by_peer(&mut over, Duration::from_secs(5)),
        "a 257th connection was kept"
    );
}

#[test]
fn invites_never_acknowledged_hold_only_a_share_of_the_rtp_ports() {
    // 50 RTP ports, a quarter of them (12.5) for calls waiting for their
    // ACK: 13 are answered, the next is refused.
    let nida = Nida::start("");
    let sock = UdpSocket::bind("127.0.0.11:0").unwrap();
    let media: SocketAddr = "127.0.0.12:4000".parse().unwrap();
    for i in 0..13 {
        let req = invite(&sock, nida.sip, media, &format!("half{i}"));
        sock.send_to(req.as_bytes(), nida.sip).unwrap();
        assert!(
            recv_sip(&sock, "SIP/2.0 200", Duration::from_secs(5)).is_some(),
            "call {i}"
        );
    }
    let req = invite(&sock, nida.sip, media, "half13");
    sock.send_to(req.as_bytes(), nida.sip).unwrap();
    let t0 = Instant::now();
    let refused = loop {
        // Retransmitted 200s of the first calls arrive meanwhile.
        let m = recv_sip(&sock, "SIP/2.0", Duration::from_secs(5)).expect("an answer");
        if header(&m, "Call-ID").starts_with("half13") && !m.starts_with("SIP/2.0 1") {
            break m;
        }
        assert!(t0.elapsed() < Duration::from_secs(10));
    };
    assert!(refused.starts_with("SIP/2.0 503"), "{refused}");
}

#[test]
fn a_parked_call_back_holds_no_port_and_a_second_request_merges() {
    let nida = Nida::start_with(|dir| {
        format!(
            "data_dir = \"{}\"\n[queues.visa_general]\nannounce_seconds = 0\n",
            dir.join("data").display()
        )
    });
    // Two calls from one number both ask for a call-back and hang up.
    let ask = || {
        nida_call(&nida, "0501234567", "2,w0,1", 25)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (ask(), ask());
    for c in [a, b] {
        let out = c.wait_with_output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("pressing 1"));
    }
    // The second request merged into the first: that caller waited in
    // line and left (a record); the first waits for its call-back.
    let store = nida_store::Store::open_dir(&nida.dir.join("data")).unwrap();
    let records = || store.calls(&nida_store::Query::default()).unwrap().len();
    assert!(
        common::wait(Duration::from_secs(10), || records() == 1),
        "{}",
        nida.log()
    );
    assert_eq!(nida.status("callbacks_pending"), 1);
    // It waits without a socket or port.
    assert!(
        common::wait(Duration::from_secs(5), || nida.status("rtp_ports_in_use")
            == 0),
        "ports in use: {}",
        nida.status("rtp_ports_in_use")
    );
    assert_eq!(store.callbacks(true).unwrap().len(), 1);
}

// ---------- 5. digest and log-ins ----------

#[test]
fn a_captured_register_replayed_from_another_address_is_refused() {
    let nida = Nida::start(AGENT);
    let phone = UdpSocket::bind("127.0.0.9:0").unwrap();
    let resp = register(&phone, nida.sip, 1, None);
    let challenge = header(&resp, "WWW-Authenticate").to_string();
    let uri = format!("sip:{}", nida.sip);
    let auth =
        nida_sip::auth::answer(&challenge, "REGISTER", &uri, "1001", "s3cret", "ph0ne").unwrap();
    assert!(register(&phone, nida.sip, 2, Some(&auth)).starts_with("SIP/2.0 200"));
    // The attacker saw that REGISTER and sends it again from its host.
    let attacker = UdpSocket::bind("127.0.0.10:0").unwrap();
    let replay = register(&attacker, nida.sip, 2, Some(&auth));
    assert!(replay.starts_with("SIP/2.0 403"), "{replay}");
}

/// One HTTP request with an optional bearer token; the status code and body.
fn http(nida: &Nida, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    common::http(nida.http, method, path, token, body)
}

#[test]
fn agent_page_log_ins_are_throttled_and_sessions_end_at_log_out() {
    let nida = Nida::start(AGENT);
    let login = |pw: &str| {
        http(
            &nida,
            "POST",
            "/api/agent-login",
            None,
            &format!("{{\"user\":\"1001\",\"password\":\"{pw}\"}}"),
        )
    };
    let (ok, body) = login("s3cret");
    assert_eq!(ok, 200, "{body}");
    let token = body
        .split("\"token\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(http(&nida, "GET", "/api/agents/1", Some(&token), "").0, 200);
    assert_eq!(
        http(&nida, "POST", "/api/agent-logout", Some(&token), "").0,
        200
    );
    assert_eq!(http(&nida, "GET", "/api/agents/1", Some(&token), "").0, 401);
    for _ in 0..5 {
        assert_eq!(login("guess").0, 401);
    }
    let r = common::response(
        nida.http,
        "POST",
        "/api/agent-login",
        None,
        "{\"user\":\"1001\",\"password\":\"s3cret\"}",
    );
    assert_eq!(r.status().as_u16(), 429, "{r:?}");
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 0, "{r:?}");
}

#[test]
fn the_admin_token_is_taken_from_the_header_only() {
    let nida = Nida::start("");
    let path = format!("/api/status?token={}", common::TOKEN);
    assert_eq!(http(&nida, "GET", &path, None, "").0, 401);
    assert_eq!(
        http(&nida, "GET", "/api/status", Some(common::TOKEN), "").0,
        200
    );
}

#[test]
fn a_feature_code_from_an_agents_address_without_its_password_is_challenged() {
    // UDP sources are forged at will: the agent's address proves nothing.
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let nida = centre_with_phone(&phone, "");
    // The attacker sends from the phone's own socket, as a spoofer would.
    let req = invite(&phone, nida.sip, "127.0.0.1:4000".parse().unwrap(), "feat1")
        .replace("sip:901@", "sip:*24@");
    phone.send_to(req.as_bytes(), nida.sip).unwrap();
    let answer = loop {
        let m = recv_sip(&phone, "SIP/2.0", Duration::from_secs(5)).expect("an answer");
        if !m.starts_with("SIP/2.0 1") {
            break m;
        }
    };
    assert!(answer.starts_with("SIP/2.0 401"), "{answer}");
    assert!(header(&answer, "WWW-Authenticate").contains("nonce="));
}

#[test]
fn the_store_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let nida = Nida::start_with(|dir| format!("data_dir = \"{}\"\n", dir.join("data").display()));
    let db = nida.dir.join("data/nida.db");
    let mode = std::fs::metadata(&db).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "nida.db is {mode:o}");
}

// ---------- 6. storage that fails ----------

/// A small tmpfs mounted at `dir` for the test's life (the data folder
/// made full or read-only at will); `None` when this user cannot mount
/// (not root): the storage tests need it.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, options: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "the storage tests mount a tmpfs (run them as root)");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A configuration at `cfg` with nothing but fresh ports and `data_dir`
/// (no admin token: nida makes its own), for tests that start nida by
/// hand to see how it starts.
fn bare_config(cfg: &std::path::Path, data: &std::path::Path) {
    let p = common::ports(110);
    std::fs::write(
        cfg,
        format!(
            "sip_addr = \"127.0.0.1:{p}\"\nhttp_addr = \"127.0.0.1:{}\"\nrtp_ports = \"{}-{}\"\n\
             data_dir = \"{}\"\n",
            p + 1,
            p + 10,
            p + 109,
            data.display()
        ),
    )
    .unwrap();
}

#[test]
fn nida_refuses_to_start_on_a_read_only_data_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ro");
    let _fs = Tmpfs::mount(&dir, "size=1m,ro");
    let cfg = tmp.path().join("nida.toml");
    bare_config(&cfg, &dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_nida"))
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let exited = common::wait(Duration::from_secs(10), || {
        child.try_wait().unwrap().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(exited, "nida ran on a read-only data folder");
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&dir.display().to_string()), "{err}");
}

/// `/health` as (status, body).
fn health(nida: &Nida) -> (u16, String) {
    http(nida, "GET", "/health", None, "")
}

#[test]
fn a_full_disk_books_no_call_back_and_keeps_the_record_until_it_has_room() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("full");
    let _fs = Tmpfs::mount(&data, "size=2m");
    let nida = Nida::start(&format!(
        "data_dir = \"{}\"\n[queues.visa_general]\nannounce_seconds = 0\n",
        data.display()
    ));
    assert_eq!(health(&nida).0, 200);
    // Fill the disk.
    let filler = data.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).and_then(|()| f.sync_all()).is_ok() {}
    }
    // A caller queues, asks for a call-back (which cannot be stored, so
    // it must not be booked: they stay in line) and gives up: the record
    // cannot be written either.
    let out = nida_call(&nida, "nida-call", "2,w0,1", 25)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("pressing 1"));
    assert!(
        common::wait(Duration::from_secs(10), || health(&nida).0 == 503),
        "{}",
        nida.log()
    );
    let (_, body) = health(&nida);
    assert!(body.contains("1 writes waiting"), "{body}");
    let metrics = http(&nida, "GET", "/metrics", Some(common::TOKEN), "").1;
    assert!(metrics.contains("nida_store_unwritten 1"), "{metrics}");
    // Room again: the kept record goes in, nothing lost.
    std::fs::remove_file(&filler).unwrap();
    assert!(
        common::wait(Duration::from_secs(15), || health(&nida).0 == 200),
        "{}",
        nida.log()
    );
    let store = nida_store::Store::open_dir(&data).unwrap();
    let calls = store.calls(&nida_store::Query::default()).unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].outcome, "abandoned", "the caller was kept in line");
    assert_eq!(
        store.callbacks(false).unwrap(),
        vec![],
        "a call-back nobody stored"
    );
}

// ---------- 7. smaller holes ----------

#[test]
fn keyed_digits_and_caller_numbers_stay_out_of_the_log() {
    let nida = Nida::start("");
    let out = nida_call(&nida, "0509876543", "7,1,20240002,1", 20)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("pressing 1"));
    assert!(common::wait(Duration::from_secs(5), || nida.status("dtmf") >= 11));
    assert!(
        nida.wait_log("dtmf", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    let log = nida.log();
    assert!(
        !log.contains("20240002"),
        "an application number in the log: {log}"
    );
    assert!(
        !log.contains("0509876543"),
        "a caller number in the log: {log}"
    );
}

#[test]
fn a_header_with_a_nul_gets_400_and_nida_keeps_serving() {
    let nida = Nida::start("");
    let sock = UdpSocket::bind("127.0.0.13:0").unwrap();
    let media: SocketAddr = "127.0.0.13:4000".parse().unwrap();
    let bad = invite(&sock, nida.sip, media, "nul1")
        .replace("Max-Forwards: 70", "Max-Forwards: 70\r\nSubject: x\u{0}y");
    sock.send_to(bad.as_bytes(), nida.sip).unwrap();
    let answer = recv_sip(&sock, "SIP/2.0 4", Duration::from_secs(5)).expect("an answer");
    assert!(answer.starts_with("SIP/2.0 400"), "{answer}");
    assert_eq!(options_tag(&sock, nida.sip, 9).len(), 16, "still serving");
}

#[test]
fn a_reload_naming_a_queue_the_centre_does_not_run_is_refused_with_its_place() {
    let nida = Nida::start_with(|dir| {
        let flows = dir.join("flows");
        std::fs::create_dir_all(&flows).unwrap();
        for f in std::fs::read_dir(common::repo().join("ivr-flows"))
            .unwrap()
            .flatten()
        {
            if f.path().extension().is_some_and(|e| e == "yaml") {
                std::fs::copy(f.path(), flows.join(f.file_name())).unwrap();
            }
        }
        format!("flows_dir = \"{}\"\n", flows.display())
    });
    std::fs::write(
        nida.dir.join("flows/extra.yaml"),
        "flow: extra\nlanguages: [en]\nstart: q\nnodes:\n  q:\n    queue: { name: no_such_queue }\n",
    )
    .unwrap();
    let (code, body) = http(&nida, "POST", "/api/flows/reload", Some(common::TOKEN), "");
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("extra.yaml:6:"), "{body}");
    assert!(body.contains("no_such_queue"), "{body}");
}

#[test]
fn a_password_an_older_nida_stored_in_clear_is_hashed_at_start() {
    let nida = Nida::start_with(|dir| {
        let data = dir.join("data");
        let mut store = nida_store::Store::open_dir(&data).unwrap();
        store
            .put_agent(&nida_store::AgentRow {
                id: 7,
                user: "1007".into(),
                password: "0ld-s3cret".into(),
                languages: vec!["en".into()],
                ..Default::default()
            })
            .unwrap();
        format!("data_dir = \"{}\"\n", data.display())
    });
    let store = nida_store::Store::open_dir(&nida.dir.join("data")).unwrap();
    let row = store.agent(7).unwrap().unwrap();
    assert_eq!(row.password, "", "the password is still in the store");
    let ha1 = row.ha1.expect("its HA1s");
    assert_eq!(ha1.realm, "nida");
    assert_eq!(ha1.sha256.len(), 64);
    // The agent still logs in with it.
    let (code, body) = http(
        &nida,
        "POST",
        "/api/agent-login",
        None,
        "{\"user\":\"1007\",\"password\":\"0ld-s3cret\"}",
    );
    assert_eq!(code, 200, "{body}");
}

#[test]
fn an_admin_token_file_left_readable_is_made_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let token = data.join("admin-token");
    std::fs::write(&token, "old\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = dir.join("nida.toml");
    bare_config(&cfg, &data);
    let mut child = Command::new(env!("CARGO_BIN_EXE_nida"))
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // nida prints where it wrote the token once the file is written.
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = String::new();
    for _ in 0..2 {
        std::io::BufRead::read_line(&mut out, &mut lines).unwrap();
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines.contains("admin token written"), "{lines}");
    let mode = std::fs::metadata(&token).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "admin-token is {mode:o}");
    assert_ne!(std::fs::read_to_string(&token).unwrap(), "old\n");
}

#[test]
fn a_recording_cut_off_by_a_crash_is_not_listed() {
    let nida = Nida::start_with(|dir| format!("data_dir = \"{}\"\n", dir.join("data").display()));
    let day = nida.dir.join("data/recordings/2026-12-04");
    std::fs::create_dir_all(&day).unwrap();
    std::fs::write(day.join("a1b2.wav"), b"RIFF").unwrap();
    std::fs::write(day.join("c3d4.wav.part"), b"RIFF").unwrap();
    let (code, body) = http(&nida, "GET", "/api/recordings", Some(common::TOKEN), "");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("a1b2.wav"), "{body}");
    assert!(
        !body.contains("c3d4"),
        "a half-written recording is listed: {body}"
    );
}
