//! Protection of the SIP port, end to end against the real binary: a
//! password-guessing run of sipvicious' `svcrack` (Debian package
//! `sipvicious`) is blocked after five failures and never finds the
//! password, while other sources are still answered; a flood from one
//! source is cut to its rate and an oversized message is dropped, nida
//! answering a call all the while; a source may not hold more calls than
//! its limit. Every peer is on loopback.

use crate::common;

use common::{sipp, Nida};
use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

fn metrics(nida: &Nida) -> String {
    nida.get("/metrics")
}

fn value(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in {metrics}"))
}

/// An OPTIONS from `from` (whose port the Via names, so answers come back).
fn options(nida: &Nida, from: &UdpSocket, n: usize, branch: usize) -> String {
    let port = from.local_addr().unwrap().port();
    format!(
        "OPTIONS sip:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:{port};branch=z9hG4bK-flood-{branch}-{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:flood@127.0.0.3>;tag=f{n}\r\nTo: <sip:{sip}>\r\n\
         Call-ID: flood-{branch}-{n}@127.0.0.3\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        sip = nida.sip
    )
}

#[test]
fn svcrack_is_blocked_after_five_failures_and_never_finds_the_password() {
    common::require("svcrack", "sipvicious");
    let nida = Nida::start(
        "[[agents]]\nid = 1\nuser = \"1001\"\npassword = \"4711\"\nlanguages = [\"en\"]\n\
         [protection]\nauth_failures = 5\n",
    );
    // svcrack sends from 127.0.0.1 (its -b is not applied on loopback).
    let local = common::ports(2);
    let out = Command::new("timeout")
        .args(["60", "svcrack", "-u", "1001", "-r", "4700-4720"])
        .args(["-P", &local.to_string()])
        .args([
            "-p",
            &nida.sip.port().to_string(),
            "-t",
            "0.05",
            "127.0.0.1",
        ])
        .output()
        .expect("svcrack runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !said.contains("4711"),
        "svcrack found the password:\n{said}"
    );
    assert!(
        nida.wait_log("source blocked", Duration::from_secs(5)),
        "{said}\n{}",
        nida.log()
    );
    let log = nida.log();
    assert!(log.contains("source=127.0.0.1 "), "{log}");
    // Five refusals, then silence: no 403 beyond the fifth.
    let m = metrics(&nida);
    assert_eq!(value(&m, "nida_protection_blocks_total"), 1.0, "{m}");
    assert!(
        value(&m, "nida_protection_dropped_total{reason=\"blocked\"}") >= 1.0,
        "{m}"
    );
    assert!(
        m.contains("nida_sip_responses_total{code=\"403\",direction=\"sent\"} 5\n"),
        "{m}"
    );
    // The blocked source gets nothing; another source is answered.
    for (ip, answered) in [("127.0.0.1", false), ("127.0.0.3", true)] {
        let s = UdpSocket::bind((ip, 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let req = options(&nida, &s, 0, 3).replace("127.0.0.3", ip);
        s.send_to(req.as_bytes(), nida.sip).unwrap();
        let mut buf = [0u8; 4096];
        let got = s.recv_from(&mut buf).map(|(n, _)| buf[..n].to_vec());
        assert_eq!(got.is_ok(), answered, "{ip}");
        if let Ok(r) = got {
            assert!(
                r.starts_with(b"SIP/2.0 200"),
                "{}",
                String::from_utf8_lossy(&r)
            );
        }
    }
}

#[test]
fn a_flood_is_cut_to_its_rate_and_calls_go_on() {
    let nida =
        Nida::start("[protection]\nrate_per_second = 20\nburst = 20\nmax_message_bytes = 4096\n");
    let flood = UdpSocket::bind("127.0.0.3:0").unwrap();
    // 400 requests in about 0.2 s (in bursts the socket buffers hold).
    for n in 0..400 {
        flood
            .send_to(options(&nida, &flood, n, 1).as_bytes(), nida.sip)
            .unwrap();
        if n % 25 == 24 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // A message past the size limit is dropped without an answer.
    let big = options(&nida, &flood, 0, 2).replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "X-Padding: {}\r\nContent-Length: 0\r\n\r\n",
            "a".repeat(5000)
        ),
    );
    flood.send_to(big.as_bytes(), nida.sip).unwrap();
    let run = sipp(nida.sip, "uac_basic.xml", common::media_ports(), &[]);
    assert!(run.ok, "{}\n{}", run.output, nida.log());
    let m = metrics(&nida);
    let cut = value(&m, "nida_protection_dropped_total{reason=\"rate\"}");
    assert!(cut >= 300.0, "{m}");
    assert_eq!(
        value(&m, "nida_protection_dropped_total{reason=\"size\"}"),
        1.0,
        "{m}"
    );
    // What got through was answered.
    flood
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut answers = 0;
    let mut buf = [0u8; 4096];
    while let Ok((n, _)) = flood.recv_from(&mut buf) {
        assert!(buf[..n].starts_with(b"SIP/2.0 200"));
        answers += 1;
    }
    assert!((20..=100).contains(&answers), "{answers} answers");
}

#[test]
fn a_source_may_not_hold_more_calls_than_its_limit() {
    let nida = Nida::start("[protection]\nmax_calls_per_source = 1\n");
    let held = common::hold_a_call_and_get_503(&nida);
    assert!(nida.wait_log("too many calls from this source", Duration::from_secs(5)));
    assert!(held.join().unwrap().ok);
    // With the first call over, the source may call again.
    let again = sipp(nida.sip, "uac_basic.xml", common::media_ports(), &[]);
    assert!(again.ok, "{}\n{}", again.output, nida.log());
    let m = metrics(&nida);
    assert_eq!(value(&m, "nida_protection_calls_refused_total"), 1.0, "{m}");
}
