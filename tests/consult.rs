//! Consult and attended transfer from the agent page's API, on the wire:
//! baresip as agent 1 (600 Hz) and agent 2 (1400 Hz), `nida call` as the
//! caller (1000 Hz). Agent 1 consults agent 2 (the caller hears music,
//! the agents each other; agent 2 is kept out of routing), then
//! completes the transfer: agent 1's phone is hung up and the caller
//! talks to agent 2, whom the record names. A colleague who is not
//! available is refused; a consult to a queue rings its agent who has
//! been available longest.

use crate::agents::{
    agent_config, caller, caller_voice_for, finish, http, read_wav, records, start_centre, Baresip,
    AGENT_1001,
};
use crate::supervisors::{logged_at, tone_share};
use std::time::Duration;

const AGENT_2: &str = "[[agents]]\nid = 2\nuser = \"1002\"\npassword = \"s3cret2\"\nname = \"Omar\"\nskills = { visa = 5 }\nlanguages = [\"en\"]\n";

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
