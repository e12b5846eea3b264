//! Consult and attended transfer from the agent page's API, on the wire:
//! baresip as agent 1 (600 Hz) and agent 2 (1400 Hz), `nida call` as the
//! caller (1000 Hz). Agent 1 consults agent 2 (the caller hears music,
//! the agents each other; agent 2 is kept out of routing), then
//! completes the transfer: agent 1's phone is hung up and the caller
//! talks to agent 2, whom the record names. A colleague who is not
//! available is refused; a consult to a queue rings its agent who has
//! been available longest. An INVITE with `Replaces` (sipp as the
//! agent's other phone, naming the desk phone's dialog) takes the call;
//! one naming no dialog of nida's gets 481, one from another agent 403.

use crate::agents::{
    agent_config, caller, caller_voice_for, finish, http, read_wav, records, start_centre, Baresip,
    AGENT_1001,
};
use crate::supervisors::{logged_at, tone_share};
use std::time::Duration;

/// A second agent, whose phone registers when a test needs it.
pub(crate) const AGENT_2: &str = "[[agents]]\nid = 2\nuser = \"1002\"\npassword = \"s3cret2\"\nname = \"Omar\"\nskills = { visa = 5 }\nlanguages = [\"en\"]\n";

#[test]
fn an_agent_consults_a_colleague_and_hands_the_caller_over() {
    let extra = format!(
        "data_dir = \"DATA\"\n{}",
        agent_config(&format!("{AGENT_1001}{AGENT_2}"), "")
    );
    let nida = start_centre(&extra);
    let one = Baresip::start(nida.sip, "1001", "s3cret", true);
    assert!(nida.wait_log("agent=1 state=Available", Duration::from_secs(10)));
    // Agent 2 registers after the call is taken, so the call goes to 1.
    let voice = caller_voice_for(&nida.dir, 40);
    let heard = nida.dir.join("caller-heard.wav");
    let call = caller(&nida, "2,0", 60, &voice, &heard);
    assert!(
        nida.wait_log("bridged agent=1", Duration::from_secs(20)),
        "{}\n{}",
        nida.log(),
        one.log()
    );
    assert_eq!(
        http(&nida, "POST", "/api/agents/1/consult?agent=2"),
        409,
        "2 is logged out"
    );
    let two = Baresip::start_speaking(nida.sip, "1002", "s3cret2", 1400);
    assert!(nida.wait_log("agent=2 state=Available", Duration::from_secs(10)));
    let events = crate::agents::event_stream(&nida);
    // A consult to the queue rings its longest-available agent: 2.
    assert_eq!(
        http(&nida, "POST", "/api/agents/1/consult?queue=visa_general"),
        202
    );
    assert!(
        nida.wait_log("consult answered", Duration::from_secs(10)),
        "{}\n{}",
        nida.log(),
        two.log()
    );
    assert!(nida
        .log()
        .contains("agent=2 state=NotReady(Reason(\"consult\"))"));
    // Agent 2's page pops with the caller's data.
    assert!(crate::common::wait(Duration::from_secs(5), || events
        .lock()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "offer"
            && e["agent"] == 2
            && e["info"]["queue"] == "visa_general")));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(http(&nida, "POST", "/api/agents/1/complete_transfer"), 202);
    assert!(nida.wait_log("attended transfer completed", Duration::from_secs(5)));
    std::thread::sleep(Duration::from_secs(3));
    two.hangup();
    let (ok, timeline) = finish(call);
    assert!(ok, "{timeline}\n{}", nida.log());
    assert!(nida.wait_log("consult over: ready again", Duration::from_secs(5)));

    let caller_zero = logged_at(&nida, "answered codec=");
    let consulting = logged_at(&nida, "consult answered");
    let completed = logged_at(&nida, "attended transfer completed");
    let left = logged_at(&nida, "agent hung up");
    let m = 0.7;
    let (c, cr) = read_wav(&heard, 0).expect("the caller's recording");
    let at = |t: f64| t - caller_zero;
    // Consulting: the caller hears neither agent.
    for hz in [600.0, 1400.0] {
        let share = tone_share(&c, cr, hz, at(consulting + m), at(completed - m));
        assert!(share < 0.1, "the held caller heard {hz} Hz: {share}");
    }
    // After the hand-over: agent 2, not agent 1.
    let share = tone_share(&c, cr, 1400.0, at(completed + m), at(left - m));
    assert!(share > 0.3, "the caller hears agent 2: {share}");
    let share = tone_share(&c, cr, 600.0, at(completed + m), at(left - m));
    assert!(share < 0.1, "agent 1 is gone: {share}");
    // Agent 2 heard agent 1 during the consult, then the caller.
    let (a2, r2) = two.heard().expect("agent 2's decoded audio");
    let two_zero = consulting;
    assert!(tone_share(&a2, r2, 600.0, m, completed - two_zero - m) > 0.3);
    assert!(
        tone_share(
            &a2,
            r2,
            1000.0,
            completed - two_zero + m,
            left - two_zero - m
        ) > 0.3
    );

    assert!(nida.wait_log("call record written", Duration::from_secs(5)));
    let recs = records(&nida);
    assert_eq!(recs[0]["agent"], 2, "{}", recs[0]);
    assert_eq!(recs[0]["transfers"], serde_json::json!(["agent:2"]));
}

/// A peer process killed when the test ends, passed or not (a sipp left
/// behind would hold its port for the next run).
struct Peer(Option<std::process::Child>);

impl Peer {
    fn wait(mut self) -> std::process::Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// sipp running `scenario` at `port` (media at `port + 4`, echoed) with
/// `extra` arguments, toward nida when `to` is given.
fn sipp(scenario: &str, port: u16, to: Option<std::net::SocketAddr>, extra: &[&str]) -> Peer {
    let mut cmd = std::process::Command::new("sipp");
    if let Some(to) = to {
        cmd.arg(to.to_string());
    }
    cmd.args(["-sf", &crate::common::scenario(scenario)])
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-m", "1", "-nostdin", "-timeout", "40s", "-timeout_error"])
        .args(["-mp", &(port + 4).to_string(), "-rtp_echo"])
        .args(extra)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("sipp starts");
    crate::common::wait_udp_bound(port);
    Peer(Some(child))
}

/// A third agent (only its credentials are used).
const AGENT_3: &str = "[[agents]]\nid = 3\nuser = \"1003\"\npassword = \"s3cret3\"\nskills = { visa = 5 }\nlanguages = [\"en\"]\n";

#[test]
fn the_agents_other_phone_takes_the_call_with_an_invite_with_replaces() {
    crate::common::which_sipp();
    let (desk_port, mobile_port) = (crate::common::ports(10), crate::common::ports(10));
    let agent = format!(
        "[[agents]]\nid = 1\nuser = \"1001\"\npassword = \"s3cret\"\nname = \"Amina\"\n\
         skills = {{ visa = 5 }}\nlanguages = [\"en\"]\ncontact = \"sip:1001@127.0.0.1:{desk_port}\"\n{AGENT_2}{AGENT_3}"
    );
    let nida = start_centre(&format!(
        "data_dir = \"DATA\"\n{}",
        agent_config(&agent, "")
    ));
    let log = nida.dir.join("desk.log");
    let desk = sipp(
        "agent_replaced.xml",
        desk_port,
        None,
        &["-trace_logs", "-log_file", &log.display().to_string()],
    );
    let voice = caller_voice_for(&nida.dir, 30);
    let heard = nida.dir.join("caller-heard.wav");
    let call = caller(&nida, "2,0", 40, &voice, &heard);
    if !nida.wait_log("bridged agent=1", Duration::from_secs(20)) {
        let mut desk = desk;
        if let Some(c) = desk.0.as_mut() {
            let _ = c.kill();
        }
        let out = desk.wait();
        panic!(
            "{}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            nida.log()
        );
    }
    // The desk dialog's ids, as the other phone's Replaces names them:
    // Call-ID, nida's tag (to-tag at nida), the desk's (from-tag).
    let mut ids = None;
    assert!(crate::common::wait(Duration::from_secs(5), || {
        ids = std::fs::read_to_string(&log).ok().and_then(|t| {
            t.lines()
                .find_map(|l| l.split_once("DIALOG;").map(|(_, r)| r.to_string()))
        });
        ids.is_some()
    }));
    let ids = ids.unwrap();
    // A Replaces naming no dialog of nida's is refused (481). (Another
    // agent's credentials: sipp's cnonce is the same in every run, and a
    // second answer to the same second's nonce would be a replay.)
    let bogus = nida.dir.join("bogus.csv");
    std::fs::write(&bogus, "SEQUENTIAL\nnot-a-call;x;y;\n").unwrap();
    let refused = sipp(
        "agent_replaces.xml",
        mobile_port,
        Some(nida.sip),
        &[
            "-inf",
            &bogus.display().to_string(),
            "-au",
            "1002",
            "-ap",
            "s3cret2",
        ],
    )
    .wait();
    assert!(!refused.status.success());
    assert!(nida.wait_log("naming no leg of nida's: 481", Duration::from_secs(5)));
    let csv = nida.dir.join("replaces.csv");
    std::fs::write(&csv, format!("SEQUENTIAL\n{ids}\n")).unwrap();
    // Another agent naming the desk dialog may not take it (403): a
    // phone must never take over someone else's call.
    let stranger = crate::common::ports(10);
    let taken = sipp(
        "agent_replaces.xml",
        stranger,
        Some(nida.sip),
        &[
            "-inf",
            &csv.display().to_string(),
            "-au",
            "1003",
            "-ap",
            "s3cret3",
        ],
    )
    .wait();
    assert!(!taken.status.success());
    assert!(nida.wait_log("not this agent's: 403", Duration::from_secs(5)));
    let mobile = sipp(
        "agent_replaces.xml",
        mobile_port + 5,
        Some(nida.sip),
        &[
            "-inf",
            &csv.display().to_string(),
            "-au",
            "1001",
            "-ap",
            "s3cret",
        ],
    );
    assert!(
        nida.wait_log(
            "the agent's other phone took the call",
            Duration::from_secs(10)
        ),
        "{}",
        nida.log()
    );
    let out = mobile.wait();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        nida.log()
    );
    // The desk phone got nida's BYE (its scenario ends only so).
    let out = desk.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (ok, timeline) = finish(call);
    assert!(ok, "{timeline}\n{}", nida.log());
    assert!(nida.wait_log("call record written", Duration::from_secs(5)));
    assert_eq!(records(&nida)[0]["agent"], 1);
}
