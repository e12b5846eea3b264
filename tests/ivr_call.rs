//! End to end through the IVR: `nida call` dials the running daemon, picks
//! French, asks for an application status, enters the number as RFC 4733
//! key presses (or as tones in the audio) and confirms it; the audio it
//! recorded must contain, sample for sample, the prompts that say that
//! application's status and date.

use crate::common;

use common::Nida;
use nida_media::{Law, Prompt};
use std::process::Command;

/// The prompts in a row, as heard through PCMU.
fn expected(names: &[&str]) -> Vec<i16> {
    names
        .iter()
        .flat_map(|n| {
            let p = Prompt::load(&common::repo().join("prompts").join(format!("{n}.wav"))).unwrap();
            Law::Mu.decode(p.encoded(Law::Mu))
        })
        .collect()
}

fn find(haystack: &[i16], needle: &[i16]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn caller_picks_french_enters_a_number_by_dtmf_and_hears_its_status() {
    french_status_call(&[]);
}

/// The same call from a caller whose keys are tones in the audio: nida
/// offered no telephone-event is answered without one, and its Goertzel
/// detector hears the keys.
#[test]
fn keys_as_tones_in_the_audio_drive_the_ivr_like_rfc_4733_keys() {
    // The helper's checks (the keys in nida's log, the French status
    // heard) can only pass if the tones were heard: the caller sends no
    // RFC 4733 event with --inband.
    french_status_call(&["--inband"]);
}

/// `nida call` picks French, asks for the status of 20240002 and
/// confirms; what it heard must say that status in French. Returns the
/// caller's timeline.
fn french_status_call(extra: &[&str]) -> String {
    // Keyed digits are masked in the log unless asked for.
    let nida = Nida::start("log_caller_numbers = true\n");
    let tmp = tempfile::tempdir().unwrap();
    let wav = tmp.path().join("call.wav");
    let out = Command::new(env!("CARGO_BIN_EXE_nida"))
        .args(["call", &format!("sip:8005@{}", nida.sip)])
        .args([
            "--digits",
            "7,1,20240002,1",
            "--barge-in-ms",
            "1000",
            "--gap-ms",
            "700",
        ])
        .args([
            "--max-seconds",
            "60",
            "--record",
            &wav.display().to_string(),
        ])
        .args(extra)
        .output()
        .unwrap();
    let timeline = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{timeline}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        nida.log()
    );
    assert!(timeline.contains("answered: PCMU"), "{timeline}");
    assert!(timeline.contains("pressing 20240002"), "{timeline}");
    assert!(
        nida.wait_log("digits=71202400021", std::time::Duration::from_secs(2)),
        "{}",
        nida.log()
    );

    let heard: Vec<i16> = hound::WavReader::open(&wav)
        .unwrap()
        .samples::<i16>()
        .map(Result::unwrap)
        .collect();
    // Sample 20240002 is "in review", updated 2026-11-15.
    let status = expected(&[
        "fr/status_is",
        "fr/status_in_review",
        "fr/updated_on",
        "fr/n_15",
        "fr/month_11",
        "fr/n_2",
        "fr/n_1000",
        "fr/n_20",
        "fr/n_6",
    ]);
    assert!(
        find(&heard, &status).is_some(),
        "the status and date, as said in French, are in what the caller heard"
    );
    // The read-back started before it (the caller confirmed by barging in,
    // so only its first half second is sure to be heard).
    let readback = expected(&["fr/you_entered"]);
    let rb = find(&heard, &readback[..4000]).expect("the number was read back");
    assert!(rb < find(&heard, &status).unwrap());
    // Another status would not match.
    let wrong = expected(&["fr/status_is", "fr/status_approved"]);
    assert!(find(&heard, &wrong).is_none());
    ivr_record_left(&nida);
    timeline
}

/// The call left a record of its way through the IVR: the keys it chose
/// in which menus, the lookup found, its language; and the IVR figures
/// count it.
fn ivr_record_left(nida: &Nida) {
    let records =
        || -> Vec<serde_json::Value> { serde_json::from_str(&nida.get("/api/records")).unwrap() };
    assert!(
        common::wait(std::time::Duration::from_secs(10), || records().len() == 1),
        "{}",
        nida.log()
    );
    let rec = &records()[0];
    let ivr = &rec["ivr"];
    assert_eq!(ivr["flow"], "main", "{rec}");
    assert_eq!(rec["language"], "fr", "{rec}");
    let choices: Vec<(String, String)> = ivr["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["node"].as_str().unwrap().into(),
                c["digit"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        choices.starts_with(&[
            ("main/choose_language".into(), "7".into()),
            ("main/main_menu".into(), "1".into())
        ]),
        "{choices:?}"
    );
    assert_eq!(ivr["lookups"][0]["result"], "found", "{rec}");
    assert!(rec["path"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p.as_str().unwrap().starts_with("status/")));
    let figures: serde_json::Value = serde_json::from_str(&nida.get("/api/ivr")).unwrap();
    assert_eq!(figures[0]["flow"], "main", "{figures}");
    assert_eq!(figures[0]["calls"], 1);
    assert_eq!(figures[0]["lookups_served"], 1);
    let metrics = nida.get("/metrics");
    assert!(
        metrics.contains("nida_ivr_lookups_total{flow=\"main\",result=\"found\"} 1"),
        "{metrics}"
    );
}
