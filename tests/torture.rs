//! Torture set after the list of RFC 4475 (SIP torture test messages):
//! valid but unusual messages must be served, invalid ones answered with the
//! right error or dropped, and afterwards the running nida still completes a
//! normal call with sipp. The messages are written for nida's tests in the
//! spirit of each RFC 4475 case named beside it.

use crate::common;

use common::{sipp, Nida};
use std::net::UdpSocket;
use std::time::Duration;

/// What nida must do with a message.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Answer with this status.
    Status(u16),
    /// Answer with any status but 400 (a valid request nida may refuse
    /// for other reasons, such as 405 for a method it does not serve).
    NotBad,
    /// Send nothing back.
    Silence,
}

use Expect::*;

/// Common headers; every Via carries rport so answers come back to the
/// test's socket whatever the Via says.
fn hdrs(method: &str, branch: &str, cseq: &str) -> String {
    format!(
        "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:caller@example.com>;tag=t{branch}\r\n\
         To: <sip:901@nida.test>\r\n\
         Call-ID: {branch}@torture\r\n\
         CSeq: {cseq} {method}\r\n"
    )
}

fn options(branch: &str, extra: &str) -> String {
    format!(
        "OPTIONS sip:901@nida.test SIP/2.0\r\n{}{extra}Content-Length: 0\r\n\r\n",
        hdrs("OPTIONS", branch, "1")
    )
}

fn cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
    let mut v: Vec<(&'static str, Vec<u8>, Expect)> = vec![
        // 3.1.1.1 wsinv: short tortuous request: folding, odd spacing,
        // compact names, case-mixed names, escaped quotes.
        (
            "wsinv",
            b"OPTIONS sip:901@nida.test SIP/2.0\r\n\
              v:  SIP / 2.0 / UDP 127.0.0.1:5999 ;branch = z9hG4bKws1 ; rport\r\n\
              max-forwards:   68\r\n\
              TO :\r\n <sip:901@nida.test>\r\n\
              from   : \"J Rosenberg \\\\\\\"\"   <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n\
              i: ws1@torture\r\n\
              cseq: 0009\r\n  OPTIONS\r\n\
              NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n\
              UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n\
              l: 0\r\n\r\n"
                .to_vec(),
            Status(200),
        ),
        // 3.1.1.2 intmeth: an extension method with unusual token chars.
        (
            "intmeth",
            format!(
                "!interesting-Method0123456789_*+`.%indeed'~ sip:901@nida.test SIP/2.0\r\n{}Content-Length: 0\r\n\r\n",
                hdrs("!interesting-Method0123456789_*+`.%indeed'~", "im1", "3882340")
            )
            .into_bytes(),
            Status(501),
        ),
        // 3.1.1.3 esc01 and 3.1.1.4 escnull: escapes in the user part.
        (
            "esc01",
            options("es1", "").replace("sip:901@nida.test SIP", "sip:sips%3Auser%40example.com@nida.test SIP").into_bytes(),
            Status(200),
        ),
        (
            "escnull",
            options("en1", "").replace("To: <sip:901@nida.test>", "To: <sip:null-%00-null@nida.test>").into_bytes(),
            Status(200),
        ),
        // 3.1.1.6 lwsdisp: no space between display name and '<'.
        (
            "lwsdisp",
            options("ld1", "").replace("From: <sip", "From: caller<sip").into_bytes(),
            Status(200),
        ),
        // 3.1.1.7 longreq: long values and many Via entries.
        (
            "longreq",
            {
                let long = "a".repeat(3000);
                let vias: String = (0..40)
                    .map(|i| format!("Via: SIP/2.0/UDP host{i}.example.com;branch=z9hG4bK{i}{long}\r\n", long = &long[..100]))
                    .collect();
                options("lr1", &format!("X-Long: {long}\r\n{vias}")).into_bytes()
            },
            Status(200),
        ),
        // 3.1.1.8 dblreq: two requests in one datagram: the first counts.
        (
            "dblreq",
            format!("{}{}", options("db1", ""), options("db2", "")).into_bytes(),
            Status(200),
        ),
        // 3.1.1.9 semiuri: a semicolon in the user part.
        (
            "semiuri",
            options("su1", "").replace("sip:901@nida.test SIP", "sip:user;par=u%40example.net@nida.test SIP").into_bytes(),
            Status(200),
        ),
        // 3.1.1.10 transports: unknown transports lower in the Via list.
        (
            "transports",
            options("tr1", "Via: SIP/2.0/SCTP t1.example.com;branch=z9hG4bKkdjuw\r\nVia: SIP/2.0/TLS t2.example.com;branch=z9hG4bKkdjuw2\r\nVia: SIP/2.0/UNKNOWN t3.example.com;branch=z9hG4bKkdjuw3\r\n").into_bytes(),
            Status(200),
        ),
        // 3.1.1.11 mpart01: a multipart body on a method nida does not serve.
        (
            "mpart01",
            format!(
                "MESSAGE sip:901@nida.test SIP/2.0\r\n{}Content-Type: multipart/mixed;boundary=\"b\"\r\nContent-Length: 36\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n--b--",
                hdrs("MESSAGE", "mp1", "1")
            )
            .into_bytes(),
            NotBad,
        ),
        // 3.1.1.13 noreason / 3.1.1.12 unreason: responses nobody asked for.
        ("noreason", b"SIP/2.0 100\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKnr\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: nr\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n".to_vec(), Silence),
        ("unreason", "SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять - простое\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKur\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: ur\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n".as_bytes().to_vec(), Silence),
        // 3.1.1.x IPv6 and tel: Request-URIs (valid; some parsers refuse them).
        (
            "ipv6-ruri",
            options("v6", "").replace("sip:901@nida.test SIP", "sip:[2001:db8::10]:5070 SIP").into_bytes(),
            Status(200),
        ),
        (
            "ipv6-via",
            options("v6v", "").replace("Via: SIP/2.0/UDP 127.0.0.1:5999", "Via: SIP/2.0/UDP [2001:db8::9:1]:5999").into_bytes(),
            Status(200),
        ),
        (
            "tel-ruri",
            options("tel", "").replace("sip:901@nida.test SIP", "tel:+97143131901 SIP").into_bytes(),
            Status(200),
        ),
        // 3.1.2.1 badinv01 family: a broken INVITE is refused, not crashed on.
        // 3.1.2.2 clerr: Content-Length larger than the body.
        (
            "clerr",
            format!(
                "INVITE sip:901@nida.test SIP/2.0\r\n{}Content-Type: application/sdp\r\nContent-Length: 9999\r\n\r\n{sdp}",
                hdrs("INVITE", "cl1", "1")
            )
            .into_bytes(),
            Status(400),
        ),
        // 3.1.2.3 scalar02: negative Content-Length.
        ("scalar02", options("sc2", "").replace("Content-Length: 0", "Content-Length: -999").into_bytes(), Status(400)),
        // 3.1.2.4 scalarlg: out-of-range numbers.
        ("scalarlg-cseq", options("sc3", "").replace("CSeq: 1 OPTIONS", "CSeq: 36893488147419103232 OPTIONS").into_bytes(), Status(400)),
        ("scalarlg-mf", options("sc4", "").replace("Max-Forwards: 70", "Max-Forwards: 300").into_bytes(), Status(400)),
        // 3.1.2.5 quotbal: unbalanced quotes.
        ("quotbal", options("qb1", "").replace("To: <sip:901@nida.test>", "To: \"Mr. J. User <sip:901@nida.test>").into_bytes(), Status(400)),
        // 3.1.2.6 ltgtruri: Request-URI in angle brackets.
        ("ltgtruri", options("lt1", "").replace("OPTIONS sip:901@nida.test SIP", "OPTIONS <sip:901@nida.test> SIP").into_bytes(), Status(400)),
        // 3.1.2.7 lwsruri: whitespace inside the Request-URI.
        ("lwsruri", options("lw1", "").replace("OPTIONS sip:901@nida.test SIP", "OPTIONS sip:901@nida.test;lr=on SIP/2.0 SIP").into_bytes(), Status(400)),
        // 3.1.2.8 lwsstart: several spaces in the request line.
        ("lwsstart", options("lw2", "").replace("OPTIONS sip:901@nida.test SIP", "OPTIONS  sip:901@nida.test  SIP").into_bytes(), Status(400)),
        // 3.1.2.9 trws: trailing whitespace after the version.
        ("trws", options("tw1", "").replace("SIP/2.0\r\nVia", "SIP/2.0 \r\nVia").into_bytes(), Status(400)),
        // 3.1.2.10 escruri: an unescaped space in the Request-URI.
        ("escruri", options("eu1", "").replace("sip:901@nida.test SIP", "sip:9 01@nida.test SIP").into_bytes(), Status(400)),
        // 3.1.2.12 regbadct / 3.1.2.13 badaspec: a bad addr-spec.
        ("badaspec", options("ba1", "").replace("To: <sip:901@nida.test>", "To: sip:901@nida.test bad").into_bytes(), Status(400)),
        // 3.1.2.14 baddn: a display name that needs quotes.
        ("baddn", options("bd1", "").replace("From: <sip:", "From: Bell, Alexander <sip:").into_bytes(), Status(400)),
        // 3.1.2.15 badvers: an unknown SIP version.
        ("badvers", options("bv1", "").replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia").into_bytes(), Status(505)),
        // 3.1.2.16 mismatch01 / 3.1.2.17 mismatch02: CSeq method differs.
        ("mismatch01", options("mm1", "").replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE").into_bytes(), Status(400)),
        (
            "mismatch02",
            format!("NEWMETHOD sip:901@nida.test SIP/2.0\r\n{}Content-Length: 0\r\n\r\n", hdrs("INVITE", "mm2", "1")).into_bytes(),
            Status(400),
        ),
        // 3.1.2.18 bigcode: a response code out of range.
        ("bigcode", b"SIP/2.0 4294967301 better not break the receiver\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKbc\r\nCall-ID: bc\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n".to_vec(), Silence),
        // 3.1.2.19 badbranch: the bare magic cookie as branch (empty suffix).
        ("badbranch", options("", "").into_bytes(), Status(200)),
        // 3.3.1 insuf: the headers a response needs are missing: dropped.
        ("insuf", b"OPTIONS sip:901@nida.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKin;rport\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n".to_vec(), Silence),
        // 3.3.2 unkscm / 3.3.3 novelsc: unknown Request-URI scheme.
        ("unkscm", options("us1", "").replace("OPTIONS sip:901@nida.test SIP", "OPTIONS nobodyknowsthisscheme:totallyopaquecontent SIP").into_bytes(), Status(416)),
        // 3.3.5 bext01: Require with an unknown extension.
        ("bext01", options("be1", "Require: nothingSupportsThis, nothingSupportsThisEither\r\n").into_bytes(), Status(420)),
        // 3.3.7 invut: an INVITE body of a type nida does not read.
        (
            "invut",
            format!(
                "INVITE sip:901@nida.test SIP/2.0\r\n{}Content-Type: application/unknownformat\r\nContent-Length: 5\r\n\r\nhello",
                hdrs("INVITE", "iu1", "1")
            )
            .into_bytes(),
            Status(415),
        ),
        // 3.3.8 multi01 / 3.3.9 mcl01: single-valued headers repeated.
        ("multi01", options("mu1", "From: <sip:other@example.com>;tag=2\r\n").into_bytes(), Status(400)),
        ("mcl01", options("mc1", "Content-Length: 2\r\n").into_bytes(), Status(400)),
        // A malformed SDP body in an INVITE.
        (
            "badsdp",
            format!(
                "INVITE sip:901@nida.test SIP/2.0\r\n{}Content-Type: application/sdp\r\nContent-Length: 9\r\n\r\nnot sdp!!",
                hdrs("INVITE", "bs1", "1")
            )
            .into_bytes(),
            Status(400),
        ),
        // Things that are not SIP at all.
        ("binary", (0u8..=255).cycle().take(700).collect(), Silence),
        ("empty-lines", b"\r\n\r\n".to_vec(), Silence),
        ("no-via", b"OPTIONS sip:901@nida.test SIP/2.0\r\nVia: garbage\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: nv\r\nCSeq: 1 OPTIONS\r\n\r\n".to_vec(), Silence),
        ("not-utf8", b"OPTIONS sip:901@nida.test SIP/2.0\r\nVia: \xff\xfe\r\n\r\n".to_vec(), Silence),
        ("head-only", b"OPTIONS sip:901@nida.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKho".to_vec(), Silence),
    ];
    // An ACK is never answered, even when malformed.
    v.push((
        "bad-ack",
        options("ba2", "")
            .replace("OPTIONS sip", "ACK sip")
            .replace("CSeq: 1 OPTIONS", "CSeq: x ACK")
            .into_bytes(),
        Silence,
    ));
    v
}

fn status_of(reply: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(reply);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn torture_messages_then_a_normal_call() {
    let mut nida = Nida::start("");
    let mut failures = Vec::new();
    for (name, msg, expect) in cases() {
        // A socket per case: retransmitted error responses to an earlier
        // INVITE (Timer G) must not be taken for this case's answer.
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.send_to(&msg, nida.sip).unwrap();
        let wait = if expect == Silence { 300 } else { 2000 };
        sock.set_read_timeout(Some(Duration::from_millis(wait)))
            .unwrap();
        let mut buf = vec![0u8; 65536];
        let got = sock
            .recv_from(&mut buf)
            .ok()
            .map(|(n, _)| status_of(&buf[..n]));
        let ok = match (expect, got) {
            (Status(s), Some(g)) => s == g,
            (NotBad, Some(g)) => g != 400 && g != 0,
            (Silence, None) => true,
            _ => false,
        };
        if !ok {
            failures.push(format!("{name}: expected {expect:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        nida.log()
    );
    assert!(nida.alive(), "nida survived the torture set");
    assert!(nida.status("sip_malformed") >= 20);
    let run = sipp(
        nida.sip,
        "uac_basic.xml",
        common::media_ports(),
        &["-d", "500"],
    );
    assert!(
        run.ok,
        "a normal call after the torture set: {}\n{}",
        run.output,
        nida.log()
    );
    assert!(nida.alive());
}

#[test]
fn crlf_keep_alives_get_a_pong_on_tcp_and_are_not_malformed_on_udp() {
    use std::io::{Read, Write};
    let nida = Nida::start("");
    // TCP (RFC 5626 3.5.1): a double CRLF ping is answered with one CRLF,
    // even when it arrives in two pieces, and the connection still serves.
    let mut tcp = std::net::TcpStream::connect(nida.sip).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(b"\r\n").unwrap();
    tcp.flush().unwrap();
    tcp.write_all(b"\r\n").unwrap();
    let mut pong = [0u8; 2];
    tcp.read_exact(&mut pong).expect("a pong");
    assert_eq!(&pong, b"\r\n");
    let ping_then_options = format!(
        "\r\n\r\n{}",
        options("ka1", "").replace("SIP/2.0/UDP", "SIP/2.0/TCP")
    );
    tcp.write_all(ping_then_options.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // The pong, then the answer's header section (its body is empty).
    while !String::from_utf8_lossy(&got)
        .split_once("SIP/2.0")
        .is_some_and(|(_, rest)| rest.contains("\r\n\r\n"))
    {
        let n = tcp.read(&mut buf).expect("the pong and the answer");
        assert!(n > 0, "nida closed the connection");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("\r\nSIP/2.0 200"), "{text:?}");
    // UDP: keep-alives are ignored, neither answered nor malformed.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..3 {
        sock.send_to(b"\r\n\r\n", nida.sip).unwrap();
    }
    assert!(
        common::wait(Duration::from_secs(5), || nida.status("sip_keepalives")
            >= 5),
        "{}",
        nida.get("/api/status")
    );
    assert_eq!(nida.status("sip_malformed"), 0);
    let metrics = nida.get("/metrics");
    assert!(
        metrics.contains("nida_sip_keepalives_total{transport=\"udp\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nida_sip_keepalives_total{transport=\"stream\"} 2"),
        "{metrics}"
    );
}
