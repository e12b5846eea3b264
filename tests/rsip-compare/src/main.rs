//! Evidence for the parser choice: feeds valid SIP messages with the
//! features RFC 4475 exercises to rsip 0.4 and to nida's parser, prints
//! which each accepts, and times both on a typical INVITE.
//!
//! Run: `cargo run --release --manifest-path tests/rsip-compare/Cargo.toml`

use std::time::Instant;

const BASE: &str = "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\nTo: <sip:901@example.com>\r\nFrom: <sip:caller@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\nCSeq: 314159 INVITE\r\nContact: <sip:caller@192.0.2.1>\r\n";

fn msg(request_line: &str, extra: &str, base: &str) -> String {
    format!("{request_line}\r\n{base}{extra}Content-Length: 0\r\n\r\n")
}

fn main() {
    let invite = "INVITE sip:901@example.com SIP/2.0";
    let cases: Vec<(&str, String)> = vec![
        ("plain INVITE", msg(invite, "", BASE)),
        (
            "space before colon",
            msg(invite, "Subject : hello\r\n", BASE),
        ),
        (
            "folded header line",
            msg(invite, "Subject: one\r\n two\r\n", BASE),
        ),
        (
            "compact v: f: t: i:",
            msg(
                invite,
                "",
                &BASE
                    .replace("Via:", "v:")
                    .replace("To:", "t:")
                    .replace("From:", "f:")
                    .replace("Call-ID:", "i:"),
            ),
        ),
        (
            "IPv6 Request-URI",
            msg("INVITE sip:[2001:db8::10]:5060 SIP/2.0", "", BASE),
        ),
        (
            "tel: Request-URI",
            msg("INVITE tel:+97143131901 SIP/2.0", "", BASE),
        ),
        (
            "extension method",
            msg(
                "NEWMETHOD sip:901@example.com SIP/2.0",
                "",
                &BASE.replace("314159 INVITE", "1 NEWMETHOD"),
            ),
        ),
        (
            "IPv6 Via",
            msg(
                invite,
                "",
                &BASE.replace("192.0.2.1:5060", "[2001:db8::9:1]:5060"),
            ),
        ),
    ];
    println!("{:<22} {:>8} {:>8}", "message", "rsip", "nida");
    for (name, text) in &cases {
        let rsip_ok = rsip::SipMessage::try_from(text.as_str()).is_ok_and(|m| match m {
            rsip::SipMessage::Request(r) => {
                use rsip::prelude::*;
                r.via_header().is_ok() && r.via_header().and_then(|v| v.typed()).is_ok()
            }
            rsip::SipMessage::Response(_) => true,
        });
        let nida_ok = match nida_sip::message::parse(text.as_bytes()) {
            Ok(nida_sip::message::Message::Request(r)) => r.validate().is_ok(),
            _ => false,
        };
        println!("{name:<22} {:>8} {:>8}", ok(rsip_ok), ok(nida_ok));
    }
    let text = &cases[0].1;
    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(
            rsip::SipMessage::try_from(std::hint::black_box(text.as_str())).is_ok(),
        );
    }
    let rsip_ns = t.elapsed().as_nanos() as f64 / n as f64;
    let t = Instant::now();
    for _ in 0..n {
        let m = nida_sip::message::parse(std::hint::black_box(text.as_bytes()));
        std::hint::black_box(
            matches!(m, Ok(nida_sip::message::Message::Request(ref r)) if r.validate().is_ok()),
        );
    }
    let nida_ns = t.elapsed().as_nanos() as f64 / n as f64;
    println!("per INVITE: rsip {rsip_ns:.0} ns (parse), nida {nida_ns:.0} ns (parse + validate)");
}

fn ok(b: bool) -> &'static str {
    if b {
        "accepts"
    } else {
        "REJECTS"
    }
}
