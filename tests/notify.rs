//! Status notification calls on the wire: nida calls a sipp phone that is
//! busy, tries again after the policy's wait, and the phone answers and
//! hears the flow; the attempts, the webhook-facing store and the record
//! say so.

use crate::agents::{sipp_phone, start_centre};
use crate::common::{self, wait, TOKEN};
use std::time::Duration;

#[test]
fn a_busy_citizen_is_called_again_and_hears_the_status() {
    common::which_sipp();
    let phone = common::ports(10);
    let extra = format!(
        "data_dir = \"DATA\"\noutbound_uri = \"sip:{{number}}@127.0.0.1:{phone}\"\n\
         [notifications]\nretry_busy_seconds = 3\nring_seconds = 10\n"
    );
    let nida = start_centre(&extra);
    let busy = sipp_phone("citizen_busy.xml", phone, 1, 30, false);
    let body = r#"{"number": "0501234567", "flow": "notify_status", "language": "en",
                   "vars": {"status": "approved"}, "id": "APP-1"}"#;
    let (code, text) = common::http(nida.http, "POST", "/api/notifications", Some(TOKEN), body);
    assert_eq!(code, 202, "{text}");
    assert!(text.contains("APP-1"), "{text}");
    // A number outside the allow-list is refused at once.
    let abroad = r#"{"number": "+4420000000", "flow": "notify_status"}"#;
    let (code, text) = common::http(nida.http, "POST", "/api/notifications", Some(TOKEN), abroad);
    assert_eq!(code, 400, "{text}");
    let out = busy.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The second attempt, three seconds later, is answered (the phone
    // says nothing: a person, after the detector's 2.5 s) and the phone
    // hangs up after five seconds.
    let answering = sipp_phone("callback_answer.xml", phone, 1, 30, true);
    let state = |n: &common::Nida| -> serde_json::Value {
        serde_json::from_str(&n.get("/api/notifications/APP-1")).unwrap_or_default()
    };
    assert!(
        wait(Duration::from_secs(30), || state(&nida)["state"]
            == "delivered"),
        "{}\n{}",
        state(&nida),
        nida.log()
    );
    let out = answering.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let s = state(&nida);
    assert_eq!(s["attempts"], 2, "{s}");
    let attempts = s["attempt_list"].as_array().unwrap();
    assert_eq!(attempts[0]["result"], "busy", "{s}");
    assert_eq!(attempts[1]["result"], "answered", "{s}");
    let after = attempts[1]["message_after"].as_f64().unwrap();
    assert!((2.0..4.0).contains(&after), "{s}");
    assert!(attempts[1]["at"].as_i64().unwrap() - attempts[0]["at"].as_i64().unwrap() >= 3);
    // The call out was checked against [outbound] and audited.
    let store = nida_store::Store::open_dir(&nida.dir.join("data")).unwrap();
    let out = store.outbound_calls().unwrap();
    assert!(
        out.iter()
            .all(|o| o.purpose == "notification" && o.verdict == "allowed"),
        "{out:?}"
    );
    assert_eq!(out.len(), 2, "{out:?}");
    // The answered attempt left a record with its way through the flow.
    assert!(wait(Duration::from_secs(5), || {
        nida.get("/api/records")
            .contains("\"outcome\":\"notified\"")
    }));
    let metrics = nida.get("/metrics");
    assert!(
        metrics.contains("nida_notification_attempts_total{result=\"busy\"} 1"),
        "{metrics}"
    );
}

/// A voicemail's greeting: words without a pause for four seconds, a
/// short quiet, the beep, then silence (what a recording machine sends).
fn greeting() -> Vec<i16> {
    let tone = |hz: f64, ms: usize, amp: f64| -> Vec<i16> {
        (0..ms * 8)
            .map(|i| {
                let t = i as f64 / 8000.0;
                (amp * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
            })
            .collect()
    };
    let quiet = |ms: usize| vec![0i16; ms * 8];
    let mut pcm = Vec::new();
    // "Hello, you have reached ... please leave a message": syllables of
    // 280 ms with 100 ms between them, shorter than a pause.
    for k in 0..11 {
        pcm.extend(tone(300.0 + 40.0 * (k % 4) as f64, 280, 9000.0));
        pcm.extend(quiet(100));
    }
    pcm.extend(quiet(300));
    pcm.extend(tone(1000.0, 500, 12000.0));
    pcm.extend(quiet(6000));
    pcm
}

#[test]
fn a_voicemail_greeting_gets_the_message_after_the_beep() {
    common::which_sipp();
    let phone = common::ports(10);
    let extra = format!(
        "data_dir = \"DATA\"\noutbound_uri = \"sip:{{number}}@127.0.0.1:{phone}\"\n\
         [notifications]\nring_seconds = 10\n"
    );
    let nida = start_centre(&extra);
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("greeting.pcap");
    let pcm = greeting();
    let beep_end = (pcm.len() - 6000 * 8) as f64 / 8000.0;
    common::write_rtp_pcap(&pcap, &pcm);
    let scenario = tmp.path().join("citizen_machine.xml");
    let xml = std::fs::read_to_string(common::scenario("citizen_machine.xml"))
        .unwrap()
        .replace("@PCAP@", &pcap.display().to_string());
    std::fs::write(&scenario, xml).unwrap();
    let machine = sipp_phone(&scenario.display().to_string(), phone, 1, 40, false);
    let body = r#"{"number": "0501234568", "flow": "notify_status", "language": "en",
                   "vars": {"status": "approved"}, "id": "APP-VM"}"#;
    let (code, text) = common::http(nida.http, "POST", "/api/notifications", Some(TOKEN), body);
    assert_eq!(code, 202, "{text}");
    let state = |n: &common::Nida| -> serde_json::Value {
        serde_json::from_str(&n.get("/api/notifications/APP-VM")).unwrap_or_default()
    };
    assert!(
        wait(Duration::from_secs(40), || state(&nida)["state"]
            == "delivered"),
        "{}\n{}",
        state(&nida),
        nida.log()
    );
    let out = machine.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let s = state(&nida);
    let attempts = s["attempt_list"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{s}");
    assert_eq!(attempts[0]["result"], "machine", "{s}");
    // The message starts a second after the beep, not over the greeting.
    let after = attempts[0]["message_after"].as_f64().unwrap();
    assert!(
        after >= beep_end + 0.8 && after < beep_end + 2.5,
        "message after {after} s, the beep ended at {beep_end} s: {s}"
    );
    // The flow ran for the machine, which the record says.
    assert!(wait(Duration::from_secs(10), || {
        nida.get("/api/records")
            .contains("\"outcome\":\"notified\"")
    }));
    let records = nida.get("/api/records");
    assert!(records.contains("\"answered_by\":\"machine\""), "{records}");
    let metrics = nida.get("/metrics");
    assert!(
        metrics.contains("nida_notification_attempts_total{result=\"machine\"} 1"),
        "{metrics}"
    );
}
