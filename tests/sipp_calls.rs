//! End-to-end calls: the real `nida` binary called by sipp over loopback.
//! RTP from nida is received by the test itself on the port the scenario's
//! SDP offers, so pacing, headers and audio are checked packet by packet.

use crate::common;

use common::{sipp, Nida};
use nida_media::{Law, Prompt};
use rtp_rs::RtpReader;
use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

/// The first prompt the calls hear: sipp dials 901, which the default dial
/// plan sends to the police flow, whose first language is Arabic.
fn welcome() -> Prompt {
    Prompt::load(&common::repo().join("prompts/ar/police_welcome.wav")).unwrap()
}

#[test]
fn basic_call_gets_paced_prompt_audio_and_symmetric_rtp() {
    let nida = Nida::start("");
    let rtp_port = common::media_ports();
    let sock = UdpSocket::bind(("127.0.0.1", rtp_port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let sip = nida.sip;
    // sipp's own media port is rtp_port + 1; the SDP offers rtp_port.
    let call = std::thread::spawn(move || {
        common::sipp_with(
            sip,
            "uac_basic.xml",
            rtp_port + 1,
            rtp_port,
            &["-d", "2500"],
        )
    });
    // 50 packets (one second) on the port offered in SDP.
    let mut buf = [0u8; 2048];
    let mut packets = Vec::new();
    let mut arrivals = Vec::new();
    let mut nida_rtp = None;
    while packets.len() < 50 {
        let (n, from) = sock
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("no RTP from nida ({e}):\n{}", nida.log()));
        arrivals.push(Instant::now());
        packets.push(buf[..n].to_vec());
        nida_rtp = Some(from);
    }
    let readers: Vec<RtpReader<'_>> = packets.iter().map(|p| RtpReader::new(p).unwrap()).collect();
    let first = &readers[0];
    for (i, r) in readers.iter().enumerate() {
        assert_eq!(r.payload_type(), 0, "PCMU, the caller's first choice");
        assert_eq!(r.ssrc(), first.ssrc());
        assert_eq!(
            u16::from(r.sequence_number()),
            u16::from(first.sequence_number()).wrapping_add(i as u16)
        );
        assert_eq!(
            r.timestamp(),
            first.timestamp().wrapping_add(160 * i as u32)
        );
        assert_eq!(r.mark(), i == 0, "marker bit on the first packet only");
    }
    let audio: Vec<u8> = readers.iter().flat_map(|r| r.payload().to_vec()).collect();
    let prompt = welcome();
    assert_eq!(audio.len(), 8000);
    let expected = &prompt.encoded(Law::Mu)[..8000];
    let first_difference = audio.iter().zip(expected).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "the welcome prompt, byte for byte");
    // Pacing: 49 intervals over about 980 ms, the median close to 20 ms.
    let mut gaps: Vec<f64> = arrivals
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0)
        .collect();
    gaps.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = gaps[gaps.len() / 2];
    assert!((median - 20.0).abs() < 3.0, "median interval {median} ms");
    let span = (arrivals[49] - arrivals[0]).as_secs_f64();
    assert!((0.9..1.1).contains(&span), "49 intervals took {span} s");

    // Symmetric RTP: a caller whose media comes from another port (a NAT
    // that rebound) is followed once it has sent a run of well-sequenced
    // packets with one SSRC while the old source is silent (the caller
    // sent nothing there).
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    for seq in 1..=nida_media::rtp::LATCH_RUN as u16 {
        let pkt = rtp_rs::RtpPacketBuilder::new()
            .payload_type(0)
            .sequence(seq.into())
            .timestamp(u32::from(seq) * 160)
            .ssrc(99)
            .payload(&[0xFF; 160])
            .build()
            .unwrap();
        other.send_to(&pkt, nida_rtp.unwrap()).unwrap();
    }
    let (n, from) = other
        .recv_from(&mut buf)
        .expect("RTP follows the caller's real source");
    assert_eq!(from, nida_rtp.unwrap());
    assert_eq!(RtpReader::new(&buf[..n]).unwrap().ssrc(), first.ssrc());

    let run = call.join().unwrap();
    assert!(run.ok, "sipp failed:\n{}\n{}", run.output, nida.log());
    assert!(
        nida.wait_log("reason=RemoteBye", Duration::from_secs(3)),
        "{}",
        nida.log()
    );
    assert!(nida.wait_log("RTP latched", Duration::from_secs(1)));
    assert_eq!(nida.status("calls"), 0);
    assert_eq!(nida.status("answered"), 1);
}

#[test]
fn dtmf_from_sipp_pcaps_is_heard_once_per_key() {
    // Keyed digits are masked in the log unless asked for.
    let nida = Nida::start("log_caller_numbers = true\n");
    let run = sipp(nida.sip, "uac_dtmf.xml", common::media_ports(), &[]);
    assert!(run.ok, "{}\n{}", run.output, nida.log());
    assert!(
        nida.wait_log("digits=19#", Duration::from_secs(2)),
        "{}",
        nida.log()
    );
    assert_eq!(
        nida.status("dtmf"),
        3,
        "three end packets per key count once"
    );
}

#[test]
fn dtmf_by_sip_info_reaches_the_call_and_other_info_gets_415() {
    let nida = Nida::start("log_caller_numbers = true\n");
    let run = sipp(nida.sip, "uac_info_dtmf.xml", common::media_ports(), &[]);
    assert!(run.ok, "{}\n{}", run.output, nida.log());
    assert!(
        common::wait(Duration::from_secs(5), || nida.status("dtmf") == 3),
        "{}",
        nida.log()
    );
    assert!(
        nida.wait_log("digits=19#", Duration::from_secs(2)),
        "{}",
        nida.log()
    );
}

#[test]
fn cancel_before_answer_gets_487() {
    let nida = Nida::start("ring_ms = 3000");
    let run = sipp(nida.sip, "uac_cancel.xml", common::media_ports(), &[]);
    assert!(run.ok, "{}\n{}", run.output, nida.log());
    assert!(
        nida.wait_log("reason=Cancelled", Duration::from_secs(2)),
        "{}",
        nida.log()
    );
    assert_eq!(nida.status("calls"), 0);
    assert_eq!(nida.status("answered"), 0);
}

#[test]
fn call_over_tcp() {
    let nida = Nida::start("");
    let run = sipp(
        nida.sip,
        "uac_basic.xml",
        common::media_ports(),
        &["-t", "t1", "-d", "1000"],
    );
    assert!(run.ok, "{}\n{}", run.output, nida.log());
    assert!(
        nida.wait_log("transport=Tcp", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    assert!(nida.wait_log("reason=RemoteBye", Duration::from_secs(2)));
}

#[test]
fn late_offer_is_answered_in_the_ack() {
    let nida = Nida::start("");
    let run = sipp(
        nida.sip,
        "uac_late_offer.xml",
        common::media_ports(),
        &["-d", "500"],
    );
    assert!(run.ok, "{}\n{}", run.output, nida.log());
    assert!(
        nida.wait_log("answered codec=\"PCMA\"", Duration::from_secs(2)),
        "{}",
        nida.log()
    );
}

#[test]
fn no_common_codec_gets_488() {
    let nida = Nida::start("");
    // G.729: a codec nida does not speak.
    let g729 = ["-key", "proto", "RTP/AVP", "-key", "fmt", "18"];
    let run = sipp(
        nida.sip,
        "uac_488.xml",
        common::media_ports(),
        &[&g729[..], &["-key", "attr", "rtpmap:18 G729/8000"]].concat(),
    );
    assert!(run.ok, "{}\n{}", run.output, nida.log());
    assert!(
        nida.wait_log("reason=Rejected(488)", Duration::from_secs(2)),
        "{}",
        nida.log()
    );
    assert!(nida.wait_log("no common codec: 488", Duration::from_secs(5)));
}

#[test]
fn srtp_offered_over_udp_gets_488() {
    // SDES keys in clear text protect nothing: SRTP only over TLS.
    let nida = Nida::start("");
    let crypto = "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";
    let run = sipp(
        nida.sip,
        "uac_488.xml",
        common::media_ports(),
        &[
            "-key", "proto", "RTP/SAVP", "-key", "fmt", "0", "-key", "attr", crypto,
        ],
    );
    assert!(run.ok, "{}\n{}", run.output, nida.log());
    assert!(
        nida.wait_log("SRTP offered without TLS", Duration::from_secs(2)),
        "{}",
        nida.log()
    );
}

#[test]
fn nida_hangs_up_after_the_configured_call_time() {
    let nida = Nida::start("call_seconds = 2");
    let t0 = Instant::now();
    let run = sipp(nida.sip, "uac_wait_bye.xml", common::media_ports(), &[]);
    let took = t0.elapsed();
    assert!(run.ok, "{}\n{}", run.output, nida.log());
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert!(nida.wait_log("hanging up", Duration::from_secs(5)));
    assert!(!nida.log().contains("no RTP"));
}

#[test]
fn silent_rtp_is_hung_up_after_the_timeout() {
    let nida = Nida::start("rtp_timeout_seconds = 2");
    let run = sipp(nida.sip, "uac_wait_bye.xml", common::media_ports(), &[]);
    assert!(run.ok, "{}\n{}", run.output, nida.log());
    assert!(
        nida.wait_log("no RTP: hanging up", Duration::from_secs(5)),
        "{}",
        nida.log()
    );
    assert!(nida.wait_log("reason=LocalBye", Duration::from_secs(2)));
}

#[test]
fn over_capacity_gets_503_with_retry_after() {
    let nida = Nida::start("max_calls = 1");
    let held = common::hold_a_call_and_get_503(&nida);
    assert_eq!(nida.status("overload_rejects"), 1);
    let first = held.join().unwrap();
    assert!(
        first.ok,
        "the call in progress is not disturbed: {}",
        first.output
    );
}

#[test]
fn command_line_errors_are_clear() {
    let bin = env!("CARGO_BIN_EXE_nida");
    let out = Command::new(bin).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--bogus'"));
    let out = Command::new(bin)
        .args(["--rtp-ports", "5000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a range"));
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("bad.toml");
    std::fs::write(&cfg, "max_calls = \"many\"\n").unwrap();
    let out = Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_calls") && err.contains("line 1"), "{err}");
    let out = Command::new(bin).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in ["--sip-addr", "--http-addr", "--rtp-ports", "--config"] {
        assert!(help.contains(opt), "{help}");
    }
}

/// Waits for nida to exit; returns its exit code.
fn exit_code(nida: &mut Nida, timeout: Duration) -> Option<i32> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if let Some(status) = nida.child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn sigterm_refuses_new_calls_and_lets_a_live_call_finish() {
    let mut nida = Nida::start("shutdown_grace_seconds = 20");
    let rtp = common::media_ports();
    let sip = nida.sip;
    // A call that hangs up by itself after 3 seconds.
    let live = std::thread::spawn(move || sipp(sip, "uac_basic.xml", rtp, &["-d", "3000"]));
    let t0 = Instant::now();
    nida.wait_for_a_call();
    nida.terminate();
    assert!(nida.wait_log("stopping: new calls get 503", Duration::from_secs(2)));
    let refused = sipp(nida.sip, "uac_503.xml", common::media_ports(), &[]);
    assert!(refused.ok, "{}\n{}", refused.output, nida.log());
    let first = live.join().unwrap();
    assert!(first.ok, "the live call is not cut: {}", first.output);
    // Once the call has ended, nida stops without waiting for the grace.
    assert_eq!(
        exit_code(&mut nida, Duration::from_secs(5)),
        Some(0),
        "{}",
        nida.log()
    );
    assert!(t0.elapsed() < Duration::from_secs(15));
    assert!(nida.wait_log("reason=RemoteBye", Duration::from_secs(5)));
    assert!(!nida.log().contains("hanging up the calls left"));
}

#[test]
fn sigterm_hangs_up_calls_still_live_at_the_deadline() {
    let mut nida = Nida::start("shutdown_grace_seconds = 2");
    let rtp = common::media_ports();
    let sip = nida.sip;
    // A call that waits for nida's BYE.
    let live = std::thread::spawn(move || sipp(sip, "uac_wait_bye.xml", rtp, &[]));
    nida.wait_for_a_call();
    let signalled = Instant::now();
    nida.terminate();
    let run = live.join().unwrap();
    let took = signalled.elapsed();
    assert!(
        run.ok,
        "the call gets a BYE: {}\n{}",
        run.output,
        nida.log()
    );
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert_eq!(
        exit_code(&mut nida, Duration::from_secs(6)),
        Some(0),
        "{}",
        nida.log()
    );
    for line in ["hanging up the calls left", "reason=LocalBye"] {
        assert!(
            nida.wait_log(line, Duration::from_secs(5)),
            "{}",
            nida.log()
        );
    }
}

#[test]
fn sigterm_with_no_call_stops_at_once() {
    let mut nida = Nida::start("");
    let t0 = Instant::now();
    nida.terminate();
    assert_eq!(
        exit_code(&mut nida, Duration::from_secs(3)),
        Some(0),
        "{}",
        nida.log()
    );
    assert!(t0.elapsed() < Duration::from_secs(3));
}

/// Runs a scenario whose SDP offers a first RTP port (`[rtp_port]`) and
/// later a second (`[rtp_port2]`), receiving nida's RTP on both: sipp's
/// result and the packets each port got.
fn sipp_two_ports(nida: &Nida, scenario: &str) -> (common::SippRun, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (a_port, b_port) = (common::media_ports(), common::media_ports());
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let collect = |port: u16| {
        let sock = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf) {
                    got.push(buf[..n].to_vec());
                }
            }
            got
        })
    };
    let (a, b) = (collect(a_port), collect(b_port));
    let second = b_port.to_string();
    let run = common::sipp_with(
        nida.sip,
        scenario,
        a_port + 1,
        a_port,
        &["-key", "rtp_port2", &second],
    );
    stop.store(true, Ordering::Relaxed);
    (run, a.join().unwrap(), b.join().unwrap())
}

#[test]
fn reinvites_move_the_media_set_ptime_and_hold_past_the_rtp_timeout() {
    // Held for 5 s with a 3 s RTP timeout; sipp sends no RTP at all.
    let nida = Nida::start("rtp_timeout_seconds = 3");
    let (run, a, b) = sipp_two_ports(&nida, "uac_reinvite.xml");
    assert!(run.ok, "{}\n{}", run.output, nida.log());
    assert!(!nida.log().contains("no RTP"), "{}", nida.log());
    let a: Vec<RtpReader<'_>> = a.iter().map(|p| RtpReader::new(p).unwrap()).collect();
    let b: Vec<RtpReader<'_>> = b.iter().map(|p| RtpReader::new(p).unwrap()).collect();
    assert!(
        a.len() >= 30,
        "a second at 20 ms before the move: {}",
        a.len()
    );
    assert!(a.iter().all(|r| r.payload().len() == 160));
    // After the move, only the new port gets packets: every sequence
    // number on the new port follows the old port's.
    let seq = |r: &RtpReader<'_>| u16::from(r.sequence_number());
    let last_a = a.iter().map(seq).max().unwrap();
    assert_eq!(
        seq(&b[0]),
        last_a.wrapping_add(1),
        "no packet lost at the move"
    );
    assert!(
        b.len() >= 45,
        "1 s before the hold and 1 s after: {}",
        b.len()
    );
    assert!(
        b.iter().all(|r| r.payload().len() == 240),
        "ptime 30: 240 samples a packet"
    );
    // Nothing while held: the sequence goes on by one, the timestamp
    // jumps by the hold (5 s) and the first packet after it is marked.
    let mut jumps = Vec::new();
    for w in b.windows(2) {
        assert_eq!(seq(&w[1]), seq(&w[0]).wrapping_add(1), "no sequence gap");
        let dt = w[1].timestamp().wrapping_sub(w[0].timestamp());
        if dt != 240 {
            jumps.push((dt, w[1].mark()));
        }
    }
    assert_eq!(jumps.len(), 1, "one pause, the hold: {jumps:?}");
    let (dt, marked) = jumps[0];
    assert!((8000 * 4..8000 * 7).contains(&dt), "held {} s", dt / 8000);
    assert!(marked, "the talk spurt after the hold is marked");
}

#[test]
fn reliable_ringing_session_timer_and_update_from_sipp() {
    let nida = Nida::start("");
    let (run, _, b) = sipp_two_ports(&nida, "uac_100rel_update.xml");
    assert!(run.ok, "{}\n{}", run.output, nida.log());
    // The UPDATE's offer moved the media to the second port.
    assert!(b.len() >= 25, "{} packets after the UPDATE", b.len());
}

#[test]
fn nida_sends_sender_reports_on_the_rtcp_port() {
    let nida = Nida::start("");
    // The test receives RTP on `rtp` and RTCP on `rtp + 1`; sipp's own
    // media sockets sit in another block.
    let (rtp, sipp_media) = (common::media_ports(), common::media_ports());
    let rtp_sock = UdpSocket::bind(("127.0.0.1", rtp)).unwrap();
    let rtcp_sock = UdpSocket::bind(("127.0.0.1", rtp + 1)).unwrap();
    rtcp_sock
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    rtp_sock
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let sip = nida.sip;
    let call = std::thread::spawn(move || {
        common::sipp_with(sip, "uac_basic.xml", sipp_media, rtp, &["-d", "8000"])
    });
    let mut buf = [0u8; 2048];
    let (n, _) = rtp_sock.recv_from(&mut buf).expect("RTP from nida");
    let ssrc = RtpReader::new(&buf[..n]).unwrap().ssrc();
    // Two reports: the first after about 1 to 3 s, the next 2 to 6 s on.
    let mut reports = Vec::new();
    while reports.len() < 2 {
        let (n, from) = rtcp_sock
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("no RTCP from nida ({e}):\n{}", nida.log()));
        assert_eq!(from.port() % 2, 1, "sent from nida's RTCP port (RTP + 1)");
        reports.push(nida_media::rtcp::parse(&buf[..n]).expect("valid RTCP"));
    }
    for r in &reports {
        match &r[0] {
            nida_media::rtcp::Packet::Sender {
                ssrc: s, packets, ..
            } => {
                assert_eq!(*s, ssrc, "the RTP stream's SSRC");
                assert!(*packets > 0);
            }
            other => panic!("a sender report first: {other:?}"),
        }
        assert!(
            r.contains(&nida_media::rtcp::Packet::Other(202)),
            "SDES with the CNAME"
        );
    }
    let run = call.join().unwrap();
    assert!(run.ok, "{}\n{}", run.output, nida.log());
    // The caller hung up: the leg's last report says BYE (RFC 3550 6.6).
    let bye = loop {
        let (n, _) = rtcp_sock
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("no RTCP BYE ({e}):\n{}", nida.log()));
        let p = nida_media::rtcp::parse(&buf[..n]).expect("valid RTCP");
        if let Some(nida_media::rtcp::Packet::Bye(who)) = p.last() {
            break who.clone();
        }
    };
    assert_eq!(bye, vec![ssrc]);
}

#[test]
fn a_session_never_refreshed_is_ended_by_nida_with_bye() {
    // 90 s is the shortest interval RFC 4028 allows; the refresher (sipp)
    // never refreshes, so nida sends BYE at 90 - 30 s.
    let nida = Nida::start("rtp_timeout_seconds = 600");
    let started = Instant::now();
    let run = common::sipp_with(
        nida.sip,
        "uac_session_expiry.xml",
        common::media_ports(),
        common::media_ports(),
        &["-timeout", "100s"],
    );
    let took = started.elapsed();
    assert!(run.ok, "{}\n{}", run.output, nida.log());
    assert!(
        (Duration::from_secs(58)..Duration::from_secs(75)).contains(&took),
        "BYE after {took:?}"
    );
    assert!(nida.wait_log("reason=SessionExpired", Duration::from_secs(5)));
}
