//! The contact centre's rules, in process and in virtual time: callers,
//! call machines, the routing core and agents' phones through an emulated
//! network that delays, reorders and drops RTP (see `common`). Each test
//! asserts on the machines' events, the legs they place and hang up, the
//! store's rows and what each phone heard.

mod common;

use common::{heard_once, hears, hears_in_mix, prompt_hz, Answer, World, AGENT_HZ, CALLER_HZ};
use nida_acd::{AgentId, Exit};
use nida_call::{
    CallEvent, HangupCause, LegEvent, LegId, NotBooked, Output, QueueRules, Recording,
};
use std::time::Duration;

const S: fn(u64) -> Duration = Duration::from_secs;

fn quiet() -> QueueRules {
    QueueRules {
        announce: Duration::ZERO,
        ..QueueRules::default()
    }
}

fn bridged_to(agent: Option<u32>) -> impl Fn(&CallEvent) -> bool {
    move |e| matches!(e, CallEvent::Bridged { agent: a, .. } if a.map(|a| a.0) == agent)
}

fn ended(w: &World, call: usize) -> bool {
    w.calls[call].call.is_over()
}

#[test]
fn a_caller_queues_talks_to_the_agent_both_ways_then_rates_the_call() {
    let mut w = World::visa(quiet());
    w.agent(1, Answer::After(S(2)));
    let c = w.call_in("line", "0501234567", Answer::Never);
    w.run_until(S(10), |w| w.saw(c, bridged_to(Some(1))));
    assert!(w.saw(
        c,
        |e| matches!(e, CallEvent::Waiting { queue, .. } if queue == "visa")
    ));
    assert!(w.saw(
        c,
        |e| matches!(e, CallEvent::Ringing { agent, .. } if *agent == AgentId(1))
    ));
    let answered = w.elapsed();
    w.run_for(S(4));
    let agent = w.agents[&1];
    let caller = w.calls[c].caller;
    let heard_by_caller = w.phones[caller].all_heard();
    let tail = &heard_by_caller[heard_by_caller.len() - 8000 * 3..];
    assert!(hears(tail, AGENT_HZ), "the caller hears the agent");
    assert!(
        !heard_once(tail, prompt_hz("moh")),
        "no music while talking"
    );
    assert!(
        hears(&w.phones[agent].all_heard(), CALLER_HZ),
        "the agent hears the caller"
    );
    w.agent_hangs_up(1);
    w.run_until(S(2), |w| {
        w.saw(c, |e| *e == CallEvent::FlowStarted("survey".into()))
    });
    w.run_for(Duration::from_millis(600));
    w.press(c, '4');
    w.run_until(S(15), |w| ended(w, c));
    let r = w.record(c).expect("the record is written");
    assert_eq!(r.outcome, "answered");
    assert_eq!(r.agent, Some(1));
    assert_eq!(r.rating, Some(4));
    assert_eq!(r.queue, "visa");
    assert_eq!(r.path, vec!["line/hello", "line/wait"]);
    let wait = r.wait_seconds.unwrap();
    assert!((2.0..3.0).contains(&wait), "{wait}");
    let talk = r.talk_seconds.unwrap();
    assert!((4.0..4.5).contains(&talk), "{talk}");
    assert!(answered >= S(2));
    // Every leg nida placed was given back.
    let placed = w.calls[c]
        .sip
        .iter()
        .filter(|o| matches!(o, Output::Dial { .. }))
        .count();
    let released = w.calls[c]
        .sip
        .iter()
        .filter(|o| matches!(o, Output::Release(l) if *l != LegId::CALLER))
        .count();
    assert_eq!(placed, released);
}

#[test]
fn an_agent_who_never_answers_is_withdrawn_and_the_next_agent_takes_the_call() {
    let mut w = World::visa(quiet());
    w.agent(1, Answer::Never);
    w.agent(2, Answer::After(S(1)));
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(30), |w| w.saw(c, bridged_to(Some(2))));
    if w.saw(
        c,
        |e| matches!(e, CallEvent::Ringing { agent, .. } if *agent == AgentId(1)),
    ) {
        let rang = w
            .when(
                c,
                |e| matches!(e, CallEvent::Ringing { agent, .. } if *agent == AgentId(1)),
            )
            .unwrap();
        let withdrawn = w
            .when(c, |e| *e == CallEvent::OfferWithdrawn(AgentId(1)))
            .expect("withdrawn");
        assert_eq!(withdrawn - rang, S(10), "after the offer timeout");
        assert!(
            w.phones[w.agents[&1]].leg.is_none(),
            "agent 1's phone stopped ringing"
        );
    }
}

#[test]
fn a_busy_agent_is_passed_over_at_once() {
    let mut w = World::visa(quiet());
    w.agent(1, Answer::Busy);
    w.agent(2, Answer::Busy);
    w.agent(3, Answer::After(S(1)));
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(5), |w| w.saw(c, bridged_to(Some(3))));
    let missed = w.calls[c]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, CallEvent::AgentMissed { .. }))
        .count();
    assert!(missed <= 2);
    assert!(w.elapsed() < S(5), "no ring time lost on refusals");
}

#[test]
fn a_caller_who_hangs_up_while_the_agent_rings_cancels_the_ring() {
    let mut w = World::visa(quiet());
    w.agent(1, Answer::Never);
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(5), |w| {
        w.saw(c, |e| matches!(e, CallEvent::Ringing { .. }))
    });
    w.caller_hangs_up(c);
    assert!(w.saw(c, |e| *e == CallEvent::Abandoned));
    let hung_up: Vec<_> = w.calls[c]
        .sip
        .iter()
        .filter(|o| matches!(o, Output::Hangup(l) if *l != LegId::CALLER))
        .collect();
    assert_eq!(hung_up.len(), 1, "the ringing leg is cancelled");
    assert!(w.phones[w.agents[&1]].leg.is_none());
    assert_eq!(w.record(c).unwrap().outcome, "abandoned");
    // The agent is free for the next caller at once.
    w.phones[w.agents[&1]].answer = Answer::After(S(1));
    let next = w.call_in("line", "0502", Answer::Never);
    w.run_until(S(5), |w| w.saw(next, bridged_to(Some(1))));
}

#[test]
fn a_waiting_caller_hears_music_then_the_place_in_line() {
    let mut w = World::visa(QueueRules {
        announce: S(5),
        ..QueueRules::default()
    });
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(8), |w| {
        w.saw(c, |e| matches!(e, CallEvent::Announced { .. }))
    });
    assert!(w.saw(c, |e| matches!(e, CallEvent::Announced { place: 1, .. })));
    let at = w
        .when(c, |e| matches!(e, CallEvent::Announced { .. }))
        .unwrap();
    let queued = w
        .when(c, |e| matches!(e, CallEvent::Waiting { .. }))
        .unwrap();
    assert_eq!(at - queued, S(5));
    w.run_for(S(3));
    let heard = w.phones[w.calls[c].caller].all_heard();
    assert!(heard_once(&heard, prompt_hz("moh")), "music on hold");
    assert!(
        heard_once(&heard, prompt_hz("queue_position")),
        "the announcement"
    );
}

#[test]
fn the_call_back_digit_keeps_the_place_and_the_agent_calls_the_caller_back() {
    let mut w = World::visa(quiet());
    let first = w.call_in("line", "0501111111", Answer::After(S(1)));
    w.run_until(S(3), |w| {
        w.saw(first, |e| matches!(e, CallEvent::Waiting { .. }))
    });
    w.run_for(S(1));
    w.press(first, '1');
    w.run_until(S(5), |w| w.saw(first, |e| *e == CallEvent::Parked));
    assert!(w.saw(first, |e| *e == CallEvent::CallbackBooked));
    assert!(w.saw(first, |e| *e == CallEvent::HangingUp(HangupCause::Done)));
    assert!(
        heard_once(
            &w.phones[w.calls[first].caller].all_heard(),
            prompt_hz("callback_thanks")
        ),
        "thanked once booked"
    );
    assert_eq!(w.callbacks[0].status, "requested");
    assert_eq!(w.callbacks[0].number, "0501111111");
    // A second caller queues behind; the first keeps the place.
    let second = w.call_in("line", "0502222222", Answer::Never);
    w.run_until(S(3), |w| {
        w.saw(second, |e| matches!(e, CallEvent::Waiting { .. }))
    });
    w.agent(1, Answer::After(S(1)));
    w.run_until(S(10), |w| {
        w.saw(first, |e| matches!(e, CallEvent::CallbackAnswered { .. }))
    });
    assert!(!w.saw(second, |e| matches!(e, CallEvent::Ringing { .. })));
    // nida dialled the caller back at the address the call came from.
    let dial = w.calls[first].sip.iter().find_map(|o| match o {
        Output::Dial {
            dial: nida_call::Dial::Target(t),
            from_user,
            ..
        } if t.uri.starts_with("sip:0501111111@") => Some(from_user.clone()),
        _ => None,
    });
    assert_eq!(dial.as_deref(), Some("800"), "shown as the centre's number");
    w.run_for(S(3));
    let caller = w.calls[first].caller;
    let heard = w.phones[caller].all_heard();
    assert!(
        hears(&heard[heard.len() - 16000..], AGENT_HZ),
        "the called-back caller hears the agent"
    );
    w.caller_hangs_up(first);
    w.run_until(S(2), |w| ended(w, first));
    let r = w.record(first).unwrap();
    assert_eq!(r.outcome, "answered");
    assert!(r.callback);
    assert_eq!(r.callback_attempts, Some(0));
    assert_eq!(w.callbacks.last().unwrap().status, "answered");
    assert_eq!(w.callbacks.last().unwrap().attempts, 1);
}

#[test]
fn keys_sent_by_sip_info_work_like_keys_in_the_media() {
    // A carrier that sends keys by INFO: the call-back digit while
    // waiting, then (on the agent's call back) the survey's rating.
    let mut w = World::visa(quiet());
    let c = w.call_in("line", "0501111111", Answer::After(S(1)));
    w.run_until(S(3), |w| {
        w.saw(c, |e| matches!(e, CallEvent::Waiting { .. }))
    });
    w.press_by_info(c, '1');
    w.run_until(S(5), |w| w.saw(c, |e| *e == CallEvent::Parked));
    assert!(w.saw(c, |e| *e == CallEvent::CallbackBooked));
    assert!(w.saw(
        c,
        |e| matches!(e, CallEvent::Digit { digit: '1', digits } if digits == "1")
    ));
    // An agent's key by INFO is not the caller's.
    let mut w = World::visa(quiet());
    w.agent(1, Answer::After(S(1)));
    let c = w.call_in("line", "0502222222", Answer::Never);
    w.run_until(S(10), |w| w.saw(c, bridged_to(Some(1))));
    let agent_leg = w.phones[w.agents[&1]].leg.map(|(_, l)| l).expect("bridged");
    w.calls[c]
        .call
        .handle_leg(w.now, agent_leg, LegEvent::Dtmf('9'));
    w.drain(c);
    assert!(!w.saw(c, |e| matches!(e, CallEvent::Digit { .. })));
    w.agent_hangs_up(1);
    w.run_until(S(2), |w| {
        w.saw(c, |e| *e == CallEvent::FlowStarted("survey".into()))
    });
    w.run_for(Duration::from_millis(600));
    w.press_by_info(c, '5');
    w.run_until(S(15), |w| ended(w, c));
    assert_eq!(w.record(c).expect("the record").rating, Some(5));
}

#[test]
fn a_busy_call_back_is_tried_again_after_the_retry_time_then_given_up() {
    let mut w = World::visa(QueueRules {
        callback_attempts: 2,
        callback_retry: S(60),
        record: true,
        ..quiet()
    });
    let c = w.call_in("line", "0501", Answer::Busy);
    w.run_until(S(3), |w| {
        w.saw(c, |e| matches!(e, CallEvent::Waiting { .. }))
    });
    w.run_for(S(1));
    w.press(c, '1');
    w.run_until(S(5), |w| w.saw(c, |e| *e == CallEvent::Parked));
    w.agent(1, Answer::After(S(1)));
    w.run_until(S(5), |w| {
        w.saw(c, |e| {
            matches!(e, CallEvent::CallbackMissed { attempts: 1, .. })
        })
    });
    let missed = w.elapsed();
    assert_eq!(w.callbacks.last().unwrap().status, "not_answered");
    assert!(
        w.calls[c].recordings.contains(&Recording::Discard),
        "no half recording kept"
    );
    w.run_until(S(120), |w| w.saw(c, |e| *e == CallEvent::CallbackRetry));
    assert!(w.elapsed() - missed >= S(60));
    w.run_until(S(30), |w| ended(w, c));
    let r = w.record(c).unwrap();
    assert_eq!(r.outcome, "callback_failed");
    assert_eq!(r.callback_attempts, Some(2));
    assert_eq!(r.recording, None);
    let statuses: Vec<&str> = w.callbacks.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["requested", "not_answered", "failed"]);
}

#[test]
fn a_call_back_is_not_promised_when_the_store_cannot_keep_it() {
    let mut w = World::visa(quiet());
    w.store_works = false;
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(3), |w| {
        w.saw(c, |e| matches!(e, CallEvent::Waiting { .. }))
    });
    w.run_for(S(1));
    w.press(c, '1');
    w.run_until(S(3), |w| {
        w.saw(c, |e| {
            *e == CallEvent::CallbackNotBooked(NotBooked::StoreFailed)
        })
    });
    w.run_for(S(2));
    assert!(!w.saw(c, |e| *e == CallEvent::CallbackBooked));
    assert!(!heard_once(
        &w.phones[w.calls[c].caller].all_heard(),
        prompt_hz("callback_thanks")
    ));
    w.agent(1, Answer::After(S(1)));
    w.run_until(S(5), |w| w.saw(c, bridged_to(Some(1))));
}

#[test]
fn an_unproven_number_gets_no_call_back_through_the_carrier() {
    let mut w = World::visa(quiet());
    w.call_config().outbound_trunk = Some("carrier".into());
    let c = w.call_in("line", "+88299999", Answer::Never);
    w.run_until(S(3), |w| {
        w.saw(c, |e| matches!(e, CallEvent::Waiting { .. }))
    });
    w.run_for(S(1));
    w.press(c, '1');
    w.run_until(S(2), |w| {
        w.saw(c, |e| {
            *e == CallEvent::CallbackNotBooked(NotBooked::NotProven)
        })
    });
    assert!(w.callbacks.is_empty());
}

#[test]
fn an_agent_transfers_the_caller_to_another_queue() {
    let mut q2 = common::queue("residency");
    q2.name = "residency".into();
    let mut w = World::new(vec![(common::queue("visa"), quiet()), (q2, quiet())]);
    w.agent(1, Answer::After(S(1)));
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(5), |w| w.saw(c, bridged_to(Some(1))));
    w.agent(2, Answer::After(S(1)));
    w.run_for(S(1));
    w.refer(1, "sip:residency@10.0.0.1:5060");
    assert!(w.calls[c]
        .sip
        .iter()
        .any(|o| matches!(o, Output::NotifyRefer { status: 200, .. })));
    assert!(w.saw(c, |e| matches!(
        e,
        CallEvent::Transferred { queue: true, .. }
    )));
    w.run_until(S(10), |w| w.saw(c, bridged_to(Some(2))));
    assert!(w.saw(
        c,
        |e| matches!(e, CallEvent::Waiting { queue, .. } if queue == "residency")
    ));
    w.run_for(S(2));
    let heard = w.phones[w.agents[&2]].all_heard();
    assert!(
        hears(&heard, CALLER_HZ),
        "the second agent hears the caller"
    );
    w.caller_hangs_up(c);
    let r = w.record(c).unwrap();
    assert_eq!(r.transfers, vec!["residency"]);
    assert_eq!(r.queue, "residency");
    assert_eq!(r.agent, Some(2));
}

#[test]
fn an_agent_transfers_the_caller_to_a_number() {
    let mut w = World::visa(quiet());
    w.call_config().outbound_uri = Some("sip:{number}@10.0.3.1:5060".into());
    let far = w.far_end([10, 0, 3, 1], Answer::After(S(2)));
    w.agent(1, Answer::After(S(1)));
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(5), |w| w.saw(c, bridged_to(Some(1))));
    w.refer(1, "sip:5550100@10.0.0.1:5060");
    assert!(w.saw(
        c,
        |e| matches!(e, CallEvent::Transferred { queue: false, to, .. } if to == "5550100")
    ));
    w.run_until(S(5), |w| w.saw(c, bridged_to(None)));
    w.run_for(S(2));
    let heard = w.phones[w.calls[c].caller].all_heard();
    assert!(
        hears(&heard[heard.len() - 12000..], 1400.0),
        "the caller hears the far end"
    );
    w.phone_hangs_up(far);
    w.run_until(S(2), |w| ended(w, c));
    assert!(w.saw(c, |e| *e
        == CallEvent::HangingUp(HangupCause::TransferEnded)));
    let r = w.record(c).unwrap();
    assert_eq!(r.outcome, "transferred");
    assert_eq!(r.transfers, vec!["5550100"]);
}

#[test]
fn a_transfer_asked_by_no_bridged_agent_is_declined() {
    let mut w = World::visa(quiet());
    w.agent(1, Answer::Never);
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(5), |w| {
        w.saw(c, |e| matches!(e, CallEvent::Ringing { .. }))
    });
    w.refer(1, "sip:5550100@10.0.0.1:5060");
    assert!(w.calls[c]
        .sip
        .iter()
        .any(|o| matches!(o, Output::NotifyRefer { status: 603, .. })));
    assert!(!w.saw(c, |e| matches!(e, CallEvent::Transferred { .. })));
}

fn with_max_wait(exit: Exit) -> World {
    let mut q = common::queue("visa");
    q.max_wait = Some((S(20), exit));
    World::new(vec![(q, quiet())])
}

#[test]
fn past_the_longest_wait_the_caller_is_called_back_ahead_of_others() {
    let mut w = with_max_wait(Exit::Callback);
    let c = w.call_in("line", "0501", Answer::After(S(1)));
    w.run_until(S(30), |w| {
        w.saw(c, |e| *e == CallEvent::Exited(Exit::Callback))
    });
    w.run_until(S(5), |w| w.saw(c, |e| *e == CallEvent::Parked));
    assert_eq!(
        w.callbacks[0].priority, 1,
        "raised above callers who waited less"
    );
    // In line without the caller, whatever the queue's longest wait.
    w.run_for(S(60));
    assert!(!w.calls[c].call.is_over());
    w.agent(1, Answer::After(S(1)));
    w.run_until(S(10), |w| {
        w.saw(c, |e| matches!(e, CallEvent::CallbackAnswered { .. }))
    });
}

#[test]
fn past_the_longest_wait_the_caller_goes_on_in_the_exit_flow() {
    let mut w = with_max_wait(Exit::Flow("then".into()));
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(30), |w| {
        w.saw(c, |e| *e == CallEvent::FlowStarted("then".into()))
    });
    w.run_until(S(5), |w| ended(w, c));
    assert!(heard_once(
        &w.phones[w.calls[c].caller].all_heard(),
        prompt_hz("exit_message")
    ));
    assert_eq!(w.record(c).unwrap().outcome, "exit_flow");
}

#[test]
fn a_recorded_call_is_taped_frame_by_frame_and_named_in_the_record() {
    let mut w = World::visa(QueueRules {
        record: true,
        survey_flow: None,
        ..quiet()
    });
    w.agent(1, Answer::After(S(1)));
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(5), |w| w.saw(c, bridged_to(Some(1))));
    w.run_for(S(4));
    w.agent_hangs_up(1);
    w.run_until(S(2), |w| ended(w, c));
    let frames = w.calls[c].frames;
    assert!(
        (195..=205).contains(&frames),
        "{frames} frames of 20 ms in 4 s"
    );
    assert_eq!(w.calls[c].recordings, vec![Recording::Finish]);
    assert_eq!(w.record(c).unwrap().recording.as_deref(), Some("rec-0.wav"));
    assert_eq!(w.record(c).unwrap().rating, None, "no survey in this queue");
}

#[test]
fn a_caller_whose_media_stops_is_hung_up_and_the_agent_released() {
    let mut w = World::visa(quiet());
    w.call_config().rtp_timeout = S(5);
    w.agent(1, Answer::After(S(1)));
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(5), |w| w.saw(c, bridged_to(Some(1))));
    // The caller's phone goes silent without a BYE.
    let p = w.calls[c].caller;
    w.phones[p].rtp = None;
    w.run_until(S(10), |w| ended(w, c));
    assert!(w.saw(c, |e| *e == CallEvent::HangingUp(HangupCause::NoMedia)));
    assert!(
        w.phones[w.agents[&1]].leg.is_none(),
        "the agent's leg is hung up"
    );
    assert_eq!(w.record(c).unwrap().outcome, "answered");
}

#[test]
fn priorities_from_the_flow_go_first() {
    let mut w = World::visa(quiet());
    let low = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(3), |w| {
        w.saw(low, |e| matches!(e, CallEvent::Waiting { .. }))
    });
    let high = w.call_in("urgent", "0502", Answer::Never);
    w.run_until(S(3), |w| {
        w.saw(high, |e| matches!(e, CallEvent::Waiting { .. }))
    });
    w.agent(1, Answer::After(S(1)));
    w.run_until(S(5), |w| w.saw(high, bridged_to(Some(1))));
    assert!(!w.saw(low, |e| matches!(e, CallEvent::Ringing { .. })));
}

#[test]
fn a_held_caller_stays_up_past_the_rtp_timeout_and_is_heard_again_after_a_move() {
    use nida_sip::sdp::Direction;
    let mut w = World::visa(quiet());
    w.call_config().rtp_timeout = S(5);
    w.agent(1, Answer::After(S(1)));
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(5), |w| w.saw(c, bridged_to(Some(1))));
    w.run_for(S(1));
    let p = w.calls[c].caller;
    let at = w.phones[p].media;
    // The caller holds and falls silent (linphone's pause: sendonly, but
    // nothing sent): nida stops sending and does not hang up.
    w.caller_media(c, at, Direction::Inactive);
    let heard = w.phones[p].all_heard().len();
    w.run_for(S(20));
    assert!(!ended(&w, c), "held, not hung up for silence");
    assert!(!w.saw(c, |e| *e == CallEvent::HangingUp(HangupCause::NoMedia)));
    assert!(
        w.phones[p].all_heard().len() <= heard + 160,
        "nothing sent to a caller who holds"
    );
    // Resume from another port: nida sends there, and each side hears
    // the other again.
    let moved = std::net::SocketAddr::new(at.ip(), at.port() + 100);
    w.caller_media(c, moved, Direction::SendRecv);
    assert!(w.saw(c, |e| matches!(e, CallEvent::MediaChanged { remote, direction: Direction::SendRecv, .. } if *remote == moved)));
    let agent = w.agents[&1];
    let agent_before = w.phones[agent].all_heard().len();
    w.run_for(S(3));
    let heard_now = w.phones[p].all_heard();
    assert!(hears(&heard_now[heard_now.len() - 8000 * 2..], AGENT_HZ));
    let agent_heard = w.phones[agent].all_heard();
    assert!(hears(&agent_heard[agent_before..], CALLER_HZ));
    // Media flows both ways again: silence now times out.
    w.phones[p].rtp = None;
    w.run_until(S(10), |w| ended(w, c));
    assert!(w.saw(c, |e| *e == CallEvent::HangingUp(HangupCause::NoMedia)));
}

#[test]
fn an_agent_holds_from_the_phone_and_from_the_page_the_caller_hears_music() {
    use nida_sip::sdp::Direction;
    let mut w = World::visa(quiet());
    w.call_config().rtp_timeout = S(3);
    w.agent(1, Answer::After(S(1)));
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(5), |w| w.saw(c, bridged_to(Some(1))));
    w.run_for(S(2));
    let p = w.calls[c].caller;
    let agent = w.agents[&1];
    // The agent's softphone holds (sendonly): the caller hears the
    // queue's music, not the agent (whose phone goes on sending), and
    // the agent hears nothing; neither is hung up for the silence.
    w.agent_media(1, Direction::RecvOnly);
    assert!(w.saw(c, |e| matches!(e, CallEvent::Held { by_page: false, .. })));
    let (caller_from, agent_from) = (
        w.phones[p].all_heard().len(),
        w.phones[agent].all_heard().len(),
    );
    w.run_for(S(6));
    let held = &w.phones[p].all_heard()[caller_from..];
    assert!(heard_once(held, prompt_hz("moh")), "music on hold");
    assert!(
        !hears(held, AGENT_HZ),
        "the caller does not hear the held agent"
    );
    assert!(
        w.phones[agent].all_heard().len() <= agent_from + 160,
        "nothing sent to the holder"
    );
    assert!(!ended(&w, c));
    // Resume: the bridge is back both ways, the music stops.
    w.agent_media(1, Direction::SendRecv);
    let resumed = w.calls[c].events.iter().find_map(|(_, e)| match e {
        CallEvent::Resumed { held, .. } => Some(*held),
        _ => None,
    });
    assert!(
        resumed.is_some_and(|d| (S(6)..S(7)).contains(&d)),
        "{resumed:?}"
    );
    let (caller_from, agent_from) = (
        w.phones[p].all_heard().len(),
        w.phones[agent].all_heard().len(),
    );
    w.run_for(S(3));
    let after = &w.phones[p].all_heard()[caller_from..];
    assert!(
        hears(&after[8000..], AGENT_HZ),
        "the caller hears the agent again"
    );
    assert!(
        !heard_once(&after[8000..], prompt_hz("moh")),
        "no music after resume"
    );
    assert!(hears(&w.phones[agent].all_heard()[agent_from..], CALLER_HZ));

    // From the agent page: nida holds the agent's leg by re-INVITE
    // (sendonly), the caller hears music; resume sends sendrecv.
    w.page_hold(1, true);
    assert!(w.calls[c]
        .sip
        .iter()
        .any(|o| matches!(o, Output::HoldLeg { on: true, .. })));
    assert!(w.saw(c, |e| matches!(e, CallEvent::Held { by_page: true, .. })));
    let caller_from = w.phones[p].all_heard().len();
    w.run_for(S(4));
    let held = &w.phones[p].all_heard()[caller_from..];
    assert!(heard_once(held, prompt_hz("moh")) && !hears(held, AGENT_HZ));
    // A page resume of a call the page did not hold does nothing twice.
    w.page_hold(1, false);
    w.page_hold(1, false);
    let resumes = w.calls[c]
        .sip
        .iter()
        .filter(|o| matches!(o, Output::HoldLeg { on: false, .. }))
        .count();
    assert_eq!(resumes, 1);
    let caller_from = w.phones[p].all_heard().len();
    w.run_for(S(3));
    assert!(hears(
        &w.phones[p].all_heard()[caller_from + 8000..],
        AGENT_HZ
    ));
    // Both holds are in the record.
    w.caller_hangs_up(c);
    w.run_until(S(5), |w| ended(w, c));
    let r = w.record(c).expect("a record");
    assert_eq!(r.holds, 2);
    assert!((10.0..11.5).contains(&r.hold_seconds), "{}", r.hold_seconds);
}

/// What each phone heard from `from` (an index into its recording) on.
fn heard_since(w: &World, p: usize, from: usize) -> Vec<i16> {
    w.phones[p].all_heard()[from..].to_vec()
}

#[test]
fn a_supervisor_listens_whispers_and_barges_and_each_is_heard_as_the_mode_says() {
    use nida_call::SuperviseMode;
    const SUPERVISOR_HZ: f64 = 1400.0;
    let mut w = World::visa(QueueRules {
        record: true,
        ..quiet()
    });
    w.agent(1, Answer::After(S(1)));
    let sup = w.far_end([10, 0, 9, 1], Answer::After(S(1)));
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(5), |w| w.saw(c, bridged_to(Some(1))));
    w.run_for(S(1));
    let (p, agent) = (w.calls[c].caller, w.agents[&1]);
    let marks = |w: &World| [p, agent, sup].map(|i| w.phones[i].all_heard().len());

    // Listen: nida rings the supervisor, who then hears both; nobody
    // hears the supervisor.
    w.supervise(c, "salma", sup, SuperviseMode::Listen);
    w.run_until(S(3), |w| {
        w.saw(c, |e| matches!(e, CallEvent::SupervisorJoined { .. }))
    });
    w.run_for(Duration::from_millis(500));
    let m = marks(&w);
    w.run_for(S(3));
    let (caller, ag, s) = (
        heard_since(&w, p, m[0]),
        heard_since(&w, agent, m[1]),
        heard_since(&w, sup, m[2]),
    );
    assert!(
        hears_in_mix(&s, CALLER_HZ) && hears_in_mix(&s, AGENT_HZ),
        "the listener hears both"
    );
    assert!(
        hears_in_mix(&caller, AGENT_HZ) && !hears_in_mix(&caller, SUPERVISOR_HZ),
        "caller"
    );
    assert!(
        hears_in_mix(&ag, CALLER_HZ) && !hears_in_mix(&ag, SUPERVISOR_HZ),
        "agent"
    );

    // Whisper by the supervisor's key 5 (RFC 4733, in the media): the
    // agent hears them, the caller does not.
    w.phones[sup]
        .rtp
        .as_mut()
        .unwrap()
        .send_dtmf('5', Duration::from_millis(100));
    w.run_for(Duration::from_millis(300));
    assert!(w.saw(c, |e| *e
        == CallEvent::SupervisorMode(SuperviseMode::Whisper)));
    w.run_for(Duration::from_millis(500));
    let m = marks(&w);
    w.run_for(S(3));
    let (caller, ag, s) = (
        heard_since(&w, p, m[0]),
        heard_since(&w, agent, m[1]),
        heard_since(&w, sup, m[2]),
    );
    assert!(
        hears_in_mix(&ag, CALLER_HZ) && hears_in_mix(&ag, SUPERVISOR_HZ),
        "the agent hears the whisper"
    );
    assert!(
        hears_in_mix(&caller, AGENT_HZ) && !hears_in_mix(&caller, SUPERVISOR_HZ),
        "the caller does not"
    );
    assert!(
        hears_in_mix(&s, CALLER_HZ)
            && hears_in_mix(&s, AGENT_HZ)
            && !hears_in_mix(&s, SUPERVISOR_HZ)
    );

    // Barge (from the API this time): both hear the supervisor.
    w.supervise(c, "salma", sup, SuperviseMode::Barge);
    w.run_for(Duration::from_millis(500));
    let m = marks(&w);
    w.run_for(S(3));
    let (caller, ag) = (heard_since(&w, p, m[0]), heard_since(&w, agent, m[1]));
    assert!(
        hears_in_mix(&caller, AGENT_HZ) && hears_in_mix(&caller, SUPERVISOR_HZ),
        "caller hears the barge"
    );
    assert!(
        hears_in_mix(&ag, CALLER_HZ) && hears_in_mix(&ag, SUPERVISOR_HZ),
        "agent hears the barge"
    );

    // Key 4 by SIP INFO: back to listening; then the supervisor hangs
    // up: back to a two-party relay.
    w.phone_press(sup, '4');
    assert!(w.saw(c, |e| *e
        == CallEvent::SupervisorMode(SuperviseMode::Listen)));
    w.phone_hangs_up(sup);
    assert!(w.saw(c, |e| *e == CallEvent::SupervisorLeft));
    w.run_for(Duration::from_millis(500));
    let m = marks(&w);
    w.run_for(S(2));
    assert!(hears_in_mix(&heard_since(&w, p, m[0]), AGENT_HZ));
    assert!(hears_in_mix(&heard_since(&w, agent, m[1]), CALLER_HZ));
    w.caller_hangs_up(c);
    w.run_until(S(5), |w| ended(w, c));
    let r = w.record(c).expect("a record");
    let modes: Vec<(&str, &str)> = r
        .listens
        .iter()
        .map(|l| (l.supervisor.as_str(), l.mode.as_str()))
        .collect();
    assert_eq!(
        modes,
        [
            ("salma", "listen"),
            ("salma", "whisper"),
            ("salma", "barge"),
            ("salma", "listen")
        ]
    );
    assert!(r.media.iter().any(|m| m.role == "supervisor"));
    // The recording went on frame by frame through the mix.
    assert!(w.calls[c].frames > 50 * 12, "{} frames", w.calls[c].frames);
}

#[test]
fn a_supervisor_takes_a_call_over_and_the_agent_is_freed() {
    use nida_call::SuperviseMode;
    const SUPERVISOR_HZ: f64 = 1400.0;
    let mut w = World::visa(quiet());
    w.agent(1, Answer::After(S(1)));
    let sup = w.far_end([10, 0, 9, 1], Answer::After(S(1)));
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(5), |w| w.saw(c, bridged_to(Some(1))));
    w.supervise(c, "salma", sup, SuperviseMode::Barge);
    w.run_until(S(3), |w| {
        w.saw(c, |e| matches!(e, CallEvent::SupervisorJoined { .. }))
    });
    w.supervise(c, "salma", sup, SuperviseMode::TakeOver);
    assert!(w.saw(c, |e| *e == CallEvent::TakenOver(AgentId(1))));
    let agent = w.agents[&1];
    assert!(w.phones[agent].leg.is_none(), "the agent's leg is hung up");
    // The agent's task is complete: the agent goes to wrap-up, not stuck.
    assert!(w.calls[c].call.task().is_none());
    let p = w.calls[c].caller;
    w.run_for(Duration::from_millis(500));
    let from = w.phones[p].all_heard().len();
    w.run_for(S(3));
    let heard = &w.phones[p].all_heard()[from..];
    assert!(
        hears(heard, SUPERVISOR_HZ),
        "the caller talks to the supervisor"
    );
    assert!(!hears_in_mix(heard, AGENT_HZ));
    let from = w.phones[sup].all_heard().len();
    w.run_for(S(2));
    assert!(hears(&w.phones[sup].all_heard()[from..], CALLER_HZ));
    // The supervisor hangs up: the caller goes to the survey.
    w.phone_hangs_up(sup);
    w.run_until(S(2), |w| {
        w.saw(c, |e| *e == CallEvent::FlowStarted("survey".into()))
    });
    w.caller_hangs_up(c);
    w.run_until(S(5), |w| ended(w, c));
    let r = w.record(c).expect("a record");
    let modes: Vec<&str> = r.listens.iter().map(|l| l.mode.as_str()).collect();
    assert_eq!(modes, ["barge", "take_over"]);
    assert_eq!(r.agent, Some(1));
}

/// Phones 1 and 2 as agents, the second speaking another tone.
fn two_agents(w: &mut World) -> (usize, usize) {
    w.agent(1, Answer::After(S(1)));
    w.agent(2, Answer::After(S(1)));
    let second = w.agents[&2];
    w.phones[second].tone = std::sync::Arc::new(common::tone("agent2", SECOND_HZ, 2000));
    (w.agents[&1], second)
}

const SECOND_HZ: f64 = 1400.0;

#[test]
fn an_agent_consults_a_colleague_then_completes_the_transfer() {
    use nida_call::ConsultAction;
    let mut w = World::visa(QueueRules {
        record: true,
        ..quiet()
    });
    let (first, second) = two_agents(&mut w);
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(5), |w| w.saw(c, bridged_to(Some(1))));
    w.run_for(S(1));
    let p = w.calls[c].caller;
    // Consult: the caller hears music, the agents each other.
    w.consult_agent(c, 2);
    w.run_until(S(3), |w| w.saw(c, |e| *e == CallEvent::ConsultAnswered));
    w.run_for(Duration::from_millis(500));
    let m = [p, first, second].map(|i| w.phones[i].all_heard().len());
    w.run_for(S(3));
    let caller = heard_since(&w, p, m[0]);
    assert!(heard_once(&caller, prompt_hz("moh")) && !hears_in_mix(&caller, SECOND_HZ));
    assert!(!hears_in_mix(&caller, AGENT_HZ), "the caller is held");
    assert!(hears(&heard_since(&w, first, m[1]), SECOND_HZ));
    assert!(hears(&heard_since(&w, second, m[2]), AGENT_HZ));
    assert!(!hears_in_mix(&heard_since(&w, second, m[2]), CALLER_HZ));
    // Complete: the caller talks to the colleague; the first agent's
    // leg is hung up and their task done.
    w.consult_action(c, ConsultAction::Complete);
    assert!(w.saw(
        c,
        |e| matches!(e, CallEvent::TransferCompleted { to } if to == "agent:2")
    ));
    assert!(w.phones[first].leg.is_none());
    w.run_for(Duration::from_millis(500));
    let m = [p, second].map(|i| w.phones[i].all_heard().len());
    w.run_for(S(3));
    let caller = heard_since(&w, p, m[0]);
    assert!(hears(&caller, SECOND_HZ) && !heard_once(&caller, prompt_hz("moh")));
    assert!(hears(&heard_since(&w, second, m[1]), CALLER_HZ));
    // The colleague hangs up: the survey, then the record names them.
    w.agent_hangs_up(2);
    w.run_until(S(2), |w| {
        w.saw(c, |e| *e == CallEvent::FlowStarted("survey".into()))
    });
    assert_eq!(w.consults_over, [2], "agent 2 may be routed calls again");
    w.caller_hangs_up(c);
    w.run_until(S(5), |w| ended(w, c));
    let r = w.record(c).expect("a record");
    assert_eq!(
        r.agent,
        Some(2),
        "the record follows the call to its last agent"
    );
    assert_eq!(r.transfers, ["agent:2"]);
    assert_eq!(r.holds, 1);
    assert!(w.calls[c].frames > 50 * 7, "recorded throughout");
}

#[test]
fn a_consult_cancelled_or_made_three_way_and_a_party_leaving_it() {
    use nida_call::ConsultAction;
    let mut w = World::visa(QueueRules {
        record: true,
        ..quiet()
    });
    let (first, second) = two_agents(&mut w);
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(5), |w| w.saw(c, bridged_to(Some(1))));
    let p = w.calls[c].caller;
    // Cancel: back to the caller.
    w.consult_agent(c, 2);
    w.run_until(S(3), |w| w.saw(c, |e| *e == CallEvent::ConsultAnswered));
    w.consult_action(c, ConsultAction::Cancel);
    assert!(w.saw(c, |e| *e == CallEvent::ConsultEnded));
    assert!(w.phones[second].leg.is_none());
    assert_eq!(w.consults_over, [2]);
    w.run_for(Duration::from_millis(500));
    let m = w.phones[p].all_heard().len();
    w.run_for(S(2));
    assert!(
        hears(&heard_since(&w, p, m), AGENT_HZ),
        "back with the agent"
    );
    // Three-way: everyone hears everyone.
    w.consult_agent(c, 2);
    w.run_until(S(3), |w| {
        w.calls[c]
            .events
            .iter()
            .filter(|(_, e)| *e == CallEvent::ConsultAnswered)
            .count()
            == 2
    });
    w.consult_action(c, ConsultAction::ThreeWay);
    assert!(w.saw(c, |e| *e == CallEvent::ThreeWay));
    w.run_for(Duration::from_millis(500));
    let m = [p, first, second].map(|i| w.phones[i].all_heard().len());
    w.run_for(S(3));
    let (caller, one, two) = (
        heard_since(&w, p, m[0]),
        heard_since(&w, first, m[1]),
        heard_since(&w, second, m[2]),
    );
    assert!(hears_in_mix(&caller, AGENT_HZ) && hears_in_mix(&caller, SECOND_HZ));
    assert!(hears_in_mix(&one, CALLER_HZ) && hears_in_mix(&one, SECOND_HZ));
    assert!(hears_in_mix(&two, CALLER_HZ) && hears_in_mix(&two, AGENT_HZ));
    // The recording of the three-way call: the caller on the left, both
    // agents mixed on the right.
    let (left, right) = &w.calls[c].tape;
    let last = |v: &[i16]| v[v.len() - 8000 * 2..].to_vec();
    assert!(hears(&last(left), CALLER_HZ));
    let right = last(right);
    assert!(hears_in_mix(&right, AGENT_HZ) && hears_in_mix(&right, SECOND_HZ));
    assert!(!hears_in_mix(&right, CALLER_HZ));
    // The first agent leaves: the caller stays with the colleague.
    w.agent_hangs_up(1);
    assert!(w.saw(c, |e| matches!(e, CallEvent::TransferCompleted { .. })));
    assert!(!ended(&w, c));
    w.run_for(Duration::from_millis(500));
    let m = w.phones[p].all_heard().len();
    w.run_for(S(2));
    assert!(hears(&heard_since(&w, p, m), SECOND_HZ));
    // The caller leaves: the call ends, the colleague is let go.
    w.caller_hangs_up(c);
    w.run_until(S(5), |w| ended(w, c));
    assert!(w.phones[second].leg.is_none());
    assert_eq!(w.consults_over, [2, 2]);
}

#[test]
fn a_leg_handed_over_by_an_attended_transfer_takes_the_caller() {
    let mut w = World::visa(QueueRules {
        record: true,
        ..quiet()
    });
    let (first, second) = two_agents(&mut w);
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(5), |w| w.saw(c, bridged_to(Some(1))));
    w.run_for(S(1));
    // Agent 2 was talking to agent 1 in a call of their own; agent 1's
    // phone REFERs with Replaces: that leg comes over.
    w.adopt_agent(c, 1, 2);
    assert!(w.calls[c]
        .sip
        .iter()
        .any(|o| matches!(o, Output::NotifyRefer { status: 200, .. })));
    assert!(w.phones[first].leg.is_none(), "agent 1's leg is hung up");
    assert_eq!(
        w.handed_to,
        [2],
        "agent 2's page pops with the caller's data"
    );
    assert!(w.saw(
        c,
        |e| matches!(e, CallEvent::TransferCompleted { to } if to == "agent:2")
    ));
    let p = w.calls[c].caller;
    w.run_for(Duration::from_millis(500));
    let m = [p, second].map(|i| w.phones[i].all_heard().len());
    w.run_for(S(3));
    assert!(hears(&heard_since(&w, p, m[0]), SECOND_HZ));
    assert!(hears(&heard_since(&w, second, m[1]), CALLER_HZ));
    w.agent_hangs_up(2);
    w.run_until(S(2), |w| {
        w.saw(c, |e| *e == CallEvent::FlowStarted("survey".into()))
    });
    assert_eq!(w.consults_over, [2]);
    w.caller_hangs_up(c);
    w.run_until(S(5), |w| ended(w, c));
    let r = w.record(c).unwrap();
    assert_eq!(
        (r.agent, r.transfers.clone()),
        (Some(2), vec!["agent:2".to_string()])
    );
}

#[test]
fn the_agents_other_phone_takes_the_call_by_replaces() {
    let mut w = World::visa(quiet());
    w.agent(1, Answer::After(S(1)));
    let desk = w.agents[&1];
    // The agent's mobile softphone, another tone.
    let mobile = w.far_end([10, 0, 7, 1], Answer::Never);
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(5), |w| w.saw(c, bridged_to(Some(1))));
    w.run_for(S(1));
    let (_, desk_leg) = w.phones[desk].leg.unwrap();
    let leg = w
        .replace_agent_leg(c, 1, mobile)
        .expect("the agent's own leg");
    assert!(w.calls[c].sip.contains(&Output::Hangup(desk_leg)));
    assert!(w.phones[desk].leg.is_none(), "the desk phone's dialog ends");
    assert!(w.saw(c, |e| *e == CallEvent::LegReplaced(Some(AgentId(1)))));
    let p = w.calls[c].caller;
    w.run_for(Duration::from_millis(500));
    let m = [p, mobile].map(|i| w.phones[i].all_heard().len());
    w.run_for(S(3));
    assert!(
        hears(&heard_since(&w, p, m[0]), 1400.0),
        "the caller hears the mobile"
    );
    assert!(hears(&heard_since(&w, mobile, m[1]), CALLER_HZ));
    // The caller's own leg (not an agent's) cannot be replaced.
    assert_eq!(
        w.calls[c].call.replace_leg(
            w.now,
            LegId::CALLER,
            common::negotiated_for(w.phones[mobile].media),
            None
        ),
        None
    );
    // The mobile hangs up: the call goes on as after its agent.
    w.phone_hangs_up(mobile);
    w.run_until(S(2), |w| {
        w.saw(c, |e| *e == CallEvent::FlowStarted("survey".into()))
    });
    assert_eq!(w.phones[mobile].leg, None, "its leg ended");
    assert!(w.calls[c].call.legs().all(|(id, _, _)| id != leg));
}

#[test]
fn a_blind_transfer_lets_the_supervisor_and_the_colleague_go() {
    use nida_call::SuperviseMode;
    let mut q2 = common::queue("residency");
    q2.name = "residency".into();
    let mut w = World::new(vec![(common::queue("visa"), quiet()), (q2, quiet())]);
    let (_, second) = two_agents(&mut w);
    let sup = w.far_end([10, 0, 9, 1], Answer::After(S(1)));
    let c = w.call_in("line", "0501", Answer::Never);
    w.run_until(S(5), |w| w.saw(c, bridged_to(Some(1))));
    w.supervise(c, "salma", sup, SuperviseMode::Listen);
    w.run_until(S(3), |w| {
        w.saw(c, |e| matches!(e, CallEvent::SupervisorJoined { .. }))
    });
    w.consult_agent(c, 2);
    w.run_until(S(3), |w| w.saw(c, |e| *e == CallEvent::ConsultAnswered));
    let (_, colleague_leg) = w.phones[second].leg.unwrap();
    // The agent's phone transfers the caller blind: nobody the agent
    // brought in stays on a call that is no longer theirs.
    w.refer(1, "sip:residency@10.0.0.1:5060");
    assert!(w.saw(c, |e| *e == CallEvent::SupervisorLeft));
    assert!(w.saw(c, |e| *e == CallEvent::ConsultEnded));
    assert!(w.phones[sup].leg.is_none(), "the supervisor is hung up");
    assert!(
        w.calls[c].sip.contains(&Output::Hangup(colleague_leg)),
        "the colleague is hung up"
    );
    assert_eq!(w.consults_over[0], 2, "and may be routed calls again");
}
