//! A supervisor joins a live call on the wire: baresip as the agent
//! (600 Hz) and as the supervisor (1400 Hz, registered with its own
//! credentials), `nida call` as the caller (1000 Hz). The supervisor is
//! rung through the API, listens (hears both, heard by nobody), switches
//! to whisper with key 5 on the phone (the agent hears them, the caller
//! does not), is switched to barge by the API (both hear them), and hangs
//! up. Each side's received audio is cut at the moments nida logged the
//! switches and checked for the tones it must and must not hold.
//! Permissions: a supervisor of another queue, or of another team of
//! agents, is refused. A supervisor also joins by dialling a code with
//! the agent's number: nida confirms, hangs up and rings them in.

use crate::agents::{
    agent_config, caller, caller_voice_for, finish, read_wav, records, start_centre, Baresip,
    AGENT_1001,
};
use crate::common::{self, Nida, TOKEN};
use std::time::Duration;

const SUPERVISOR_HZ: u32 = 1400;

/// Share of the 100 ms blocks of `pcm[from_s..to_s]` (seconds) where a
/// tone of `hz` carries at least an eighth of the energy (it is one of
/// the parties of a mix).
pub(crate) fn tone_share(pcm: &[i16], rate: u32, hz: f64, from_s: f64, to_s: f64) -> f64 {
    let r = f64::from(rate);
    let (a, b) = ((from_s * r) as usize, ((to_s * r) as usize).min(pcm.len()));
    let Some(part) = pcm.get(a..b) else {
        return 0.0;
    };
    let block = rate as usize / 10;
    let blocks: Vec<&[i16]> = part.chunks(block).filter(|c| c.len() == block).collect();
    if blocks.is_empty() {
        return 0.0;
    }
    let k = 2.0 * (2.0 * std::f64::consts::PI * hz / r).cos();
    let hits = blocks
        .iter()
        .filter(|b| {
            let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
            for &x in b.iter() {
                let x = f64::from(x);
                energy += x * x;
                let s = x + k * s1 - s2;
                s2 = s1;
                s1 = s;
            }
            let power = s1 * s1 + s2 * s2 - k * s1 * s2;
            energy > 1e5 * block as f64 / 800.0 && power / (energy * block as f64 / 2.0) > 0.125
        })
        .count();
    hits as f64 / blocks.len() as f64
}

/// Seconds of the day of the first nida log line holding `needle`.
pub(crate) fn logged_at(nida: &Nida, needle: &str) -> f64 {
    let log = nida.log();
    let line = log
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in the log:\n{log}"));
    let t = &line[11..26];
    let h: f64 = t[0..2].parse().unwrap();
    let m: f64 = t[3..5].parse().unwrap();
    let s: f64 = t[6..].parse().unwrap();
    h * 3600.0 + m * 60.0 + s
}

fn supervise(nida: &Nida, task: u64, who: &str, mode: &str) -> u16 {
    let path = format!("/api/calls/{task}/supervise?supervisor={who}&mode={mode}");
    common::http(nida.http, "POST", &path, Some(TOKEN), "").0
}

#[test]
fn a_supervisor_listens_whispers_and_barges_into_a_call_on_the_wire() {
    let supervisors =
        "[[supervisors]]\nuser = \"salma\"\npassword = \"sup-pw\"\nname = \"Salma\"\n\
         queues = [\"visa_general\"]\n\
         [[supervisors]]\nuser = \"omar\"\npassword = \"sup-pw2\"\nqueues = [\"police_traffic\"]\n\
         contact = \"sip:omar@127.0.0.1:9\"\n\
         [[supervisors]]\nuser = \"huda\"\npassword = \"sup-pw3\"\nqueues = [\"*\"]\nagents = [2]\n\
         contact = \"sip:huda@127.0.0.1:9\"\n";
    let extra = format!(
        "data_dir = \"DATA\"\n{supervisors}{}",
        agent_config(AGENT_1001, "record = true\n")
    );
    let nida = start_centre(&extra);
    let agent = Baresip::start(nida.sip, "1001", "s3cret", true);
    let sup = Baresip::start_speaking(nida.sip, "salma", "sup-pw", SUPERVISOR_HZ);
    assert!(
        nida.wait_log("supervisor registered", Duration::from_secs(10)),
        "{}\n{}",
        nida.log(),
        sup.log()
    );
    assert!(nida.wait_log("state=Available", Duration::from_secs(10)));
    let voice = caller_voice_for(&nida.dir, 40);
    let heard = nida.dir.join("caller-heard.wav");
    let call = caller(&nida, "2,0,w5", 60, &voice, &heard);
    assert!(
        nida.wait_log("bridged agent=1", Duration::from_secs(20)),
        "{}\n{}",
        nida.log(),
        agent.log()
    );
    // The live board shows the call once it publishes (a few times a
    // second).
    let mut task = None;
    assert!(
        common::wait(Duration::from_secs(5), || {
            let calls: serde_json::Value = serde_json::from_str(&nida.get("/api/calls")).unwrap();
            task = calls
                .as_array()
                .and_then(|a| a.iter().find(|c| c["state"] == "talking"))
                .and_then(|c| c["task"].as_u64());
            task.is_some()
        }),
        "no talking call on the board"
    );
    let task = task.unwrap();
    // Refusals: another queue's supervisor, an unknown one, a bad mode,
    // a call that does not exist.
    assert_eq!(supervise(&nida, task, "omar", "listen"), 403);
    assert_eq!(
        supervise(&nida, task, "huda", "listen"),
        403,
        "not her team"
    );
    assert_eq!(supervise(&nida, task, "nobody", "listen"), 404);
    assert_eq!(supervise(&nida, task, "salma", "shout"), 400);
    assert_eq!(supervise(&nida, task + 1000, "salma", "listen"), 404);

    assert_eq!(supervise(&nida, task, "salma", "listen"), 202);
    assert!(
        nida.wait_log("supervisor joined", Duration::from_secs(10)),
        "{}\n{}",
        nida.log(),
        sup.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    sup.command("sndcode", "5");
    assert!(
        nida.wait_log("mode=\"whisper\"", Duration::from_secs(5)),
        "{}\n{}",
        nida.log(),
        sup.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(supervise(&nida, task, "salma", "barge"), 202);
    assert!(nida.wait_log("mode=\"barge\"", Duration::from_secs(5)));
    std::thread::sleep(Duration::from_secs(3));
    sup.hangup();
    assert!(nida.wait_log("supervisor left", Duration::from_secs(5)));
    std::thread::sleep(Duration::from_secs(1));
    agent.hangup();
    let (ok, timeline) = finish(call);
    assert!(ok, "{timeline}\n{}", nida.log());

    // The moments of the switches, and where each recording starts.
    let caller_zero = logged_at(&nida, "answered codec=");
    let bridged = logged_at(&nida, "bridged agent=1");
    let joined = logged_at(&nida, "supervisor joined");
    let whisper = logged_at(&nida, "mode=\"whisper\"");
    let barge = logged_at(&nida, "mode=\"barge\"");
    let left = logged_at(&nida, "supervisor left");
    let m = 0.7;
    let (a, ar) = agent.heard().expect("the agent's decoded audio");
    let (s, sr) = sup.heard().expect("the supervisor's decoded audio");
    let (c, cr) = read_wav(&heard, 0).expect("the caller's recording");
    let (caller_hz, agent_hz, sup_hz) = (1000.0, 600.0, f64::from(SUPERVISOR_HZ));
    let present = |share: f64| share > 0.3;
    let absent = |share: f64| share < 0.1;
    // Listen: the supervisor hears both; the agent and caller do not
    // hear the supervisor.
    let (l0, l1) = (joined + m, whisper - m);
    assert!(present(tone_share(
        &s,
        sr,
        caller_hz,
        l0 - joined,
        l1 - joined
    )));
    assert!(present(tone_share(
        &s,
        sr,
        agent_hz,
        l0 - joined,
        l1 - joined
    )));
    assert!(absent(tone_share(
        &a,
        ar,
        sup_hz,
        l0 - bridged,
        l1 - bridged
    )));
    assert!(absent(tone_share(
        &c,
        cr,
        sup_hz,
        l0 - caller_zero,
        l1 - caller_zero
    )));
    // Whisper: the agent hears the supervisor (and the caller); the
    // caller does not.
    let (w0, w1) = (whisper + m, barge - m);
    assert!(present(tone_share(
        &a,
        ar,
        sup_hz,
        w0 - bridged,
        w1 - bridged
    )));
    assert!(present(tone_share(
        &a,
        ar,
        caller_hz,
        w0 - bridged,
        w1 - bridged
    )));
    assert!(absent(tone_share(
        &c,
        cr,
        sup_hz,
        w0 - caller_zero,
        w1 - caller_zero
    )));
    assert!(present(tone_share(
        &c,
        cr,
        agent_hz,
        w0 - caller_zero,
        w1 - caller_zero
    )));
    // Barge: both hear the supervisor.
    let (b0, b1) = (barge + m, left - m);
    assert!(present(tone_share(
        &a,
        ar,
        sup_hz,
        b0 - bridged,
        b1 - bridged
    )));
    assert!(present(tone_share(
        &c,
        cr,
        sup_hz,
        b0 - caller_zero,
        b1 - caller_zero
    )));
    assert!(present(tone_share(
        &c,
        cr,
        agent_hz,
        b0 - caller_zero,
        b1 - caller_zero
    )));

    // The record lists who joined, when, in which modes.
    assert!(nida.wait_log("call record written", Duration::from_secs(5)));
    let recs = records(&nida);
    let listens: Vec<(String, String)> = recs[0]["listens"]
        .as_array()
        .expect("listen-ins")
        .iter()
        .map(|l| {
            (
                l["supervisor"].as_str().unwrap().to_string(),
                l["mode"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("salma", "listen"),
        ("salma", "whisper"),
        ("salma", "barge"),
    ]
    .map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(listens, want);
}

#[test]
fn a_supervisor_dials_the_listen_code_with_the_agents_number_and_is_rung_in() {
    let supervisors =
        "[[supervisors]]\nuser = \"salma\"\npassword = \"sup-pw\"\nqueues = [\"visa_general\"]\n";
    let nida = start_centre(&format!(
        "data_dir = \"DATA\"\n{supervisors}{}",
        agent_config(AGENT_1001, "")
    ));
    let agent = Baresip::start(nida.sip, "1001", "s3cret", true);
    let sup = Baresip::start_speaking(nida.sip, "salma", "sup-pw", SUPERVISOR_HZ);
    assert!(nida.wait_log("supervisor registered", Duration::from_secs(10)));
    assert!(nida.wait_log("state=Available", Duration::from_secs(10)));
    // No call for agent 1 yet: told so, nothing rung.
    sup.command("dial", &format!("sip:*701@{}", nida.sip));
    assert!(
        nida.wait_log(
            "supervisor code: no call of that agent",
            Duration::from_secs(10)
        ),
        "{}\n{}",
        nida.log(),
        sup.log()
    );
    let voice = caller_voice_for(&nida.dir, 40);
    let heard = nida.dir.join("caller-heard.wav");
    let call = caller(&nida, "2,0", 60, &voice, &heard);
    assert!(nida.wait_log("bridged agent=1", Duration::from_secs(20)));
    // The board must show the call before the code can find it.
    assert!(common::wait(Duration::from_secs(5), || nida
        .get("/api/calls")
        .contains("\"talking\"")));
    sup.command("dial", &format!("sip:*711@{}", nida.sip));
    // nida confirms, hangs up, then rings the supervisor's phone in
    // whisper mode.
    assert!(
        nida.wait_log(
            "supervisor joined supervisor=salma mode=\"whisper\"",
            Duration::from_secs(20)
        ),
        "{}\n{}",
        nida.log(),
        sup.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    sup.hangup();
    assert!(nida.wait_log("supervisor left", Duration::from_secs(5)));
    agent.hangup();
    let (ok, timeline) = finish(call);
    assert!(ok, "{timeline}\n{}", nida.log());
    assert!(nida.wait_log("call record written", Duration::from_secs(5)));
    let recs = records(&nida);
    assert_eq!(recs[0]["listens"][0]["mode"], "whisper", "{}", recs[0]);
    assert_eq!(recs[0]["listens"][0]["supervisor"], "salma");
}
