//! Status notification calls in process and in virtual time: a person
//! who answers hears the flow at once and may press keys; an answering
//! machine hears it after its greeting and beep; busy and unanswered
//! phones end the attempt, and the scheduler tries them again per its
//! policy, with the real call machine placing each attempt.

mod common;

use common::{heard_once, prompt_hz, Answer, World};
use nida_call::amd::AnsweredBy;
use nida_call::notifier::{Notifier, Pace, Policy, Request, State};
use nida_call::{CallEvent, Delivery, Notice, Outcome, QueueRules};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

const NOTICE: &str = r#"
flow: notice
languages: [en]
start: say
nodes:
  say:
    play: [status_said]
    next: who
  who:
    branch:
      - when: "answered_by == 'machine'"
        goto: bye
      - goto: menu
  menu:
    menu:
      prompt: [menu]
      choices: { "1": agent, "2": say }
      timeout_ms: 3000
      on_failure: bye
  agent:
    queue: { name: visa }
  bye:
    hangup: { prompt: [goodbye] }
"#;

fn world() -> World {
    World::with_flows(
        vec![(common::queue("visa"), QueueRules::default())],
        &[("notice", NOTICE)],
    )
}

fn notice(attempt: u32) -> Notice {
    Notice {
        id: "n1".into(),
        number: "0501234567".into(),
        flow: "notice".into(),
        vars: BTreeMap::from([("status".to_string(), "approved".to_string())]),
        language: Some("en".into()),
        attempt,
        ring: Duration::from_secs(20),
        detect_machine: true,
    }
}

/// `ms` of a voice-like tone.
fn speech(ms: usize) -> Vec<i16> {
    (0..ms * 8)
        .map(|i| ((i as f64 * 2.0 * std::f64::consts::PI * 523.0 / 8000.0).sin() * 9000.0) as i16)
        .collect()
}

fn quiet(ms: usize) -> Vec<i16> {
    vec![0; ms * 8]
}

fn speaking_at(w: &World, call: usize) -> Option<(AnsweredBy, f64)> {
    w.calls[call].events.iter().find_map(|(_, e)| match e {
        CallEvent::NoticeSpeaking { by, after } => Some((*by, *after)),
        _ => None,
    })
}

#[test]
fn a_person_who_answers_hears_the_status_at_once_and_can_hear_it_again() {
    let mut w = world();
    // "Hello?" and a wait.
    let voice = [quiet(200), speech(600), quiet(5000)].concat();
    let p = w.citizen([10, 0, 3, 1], Answer::After(Duration::from_secs(2)), voice);
    let c = w.notify(p, notice(1));
    w.run_until(Duration::from_secs(8), |w| speaking_at(w, 0).is_some());
    let (by, after) = speaking_at(&w, c).expect("the message began");
    assert_eq!(by, AnsweredBy::Human);
    // The word, then the detector's pause (0.8 s): about 1.6 s after the
    // answer, not after a machine's greeting.
    assert!((1.3..2.5).contains(&after), "{after}");
    w.run_for(Duration::from_secs(1));
    w.press(c, '2');
    w.run_until(Duration::from_secs(30), |w| w.calls[0].call.is_over());
    let heard = w.phones[p].all_heard();
    assert!(
        heard_once(&heard, prompt_hz("status_said")),
        "the status was said"
    );
    let plays = w.calls[c]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, CallEvent::Playing(n) if n == &["status_said"]))
        .count();
    assert_eq!(plays, 2, "said again after 2");
    assert_eq!(w.notices.len(), 1);
    let r = &w.notices[0];
    assert_eq!(
        (r.id.as_str(), r.attempt, r.delivery),
        ("n1", 1, Delivery::Human)
    );
    let rec = w.record(c).expect("an answered attempt leaves a record");
    assert_eq!(rec.outcome, Outcome::Notified.as_str());
    assert_eq!(rec.vars.get("status").map(String::as_str), Some("approved"));
    assert_eq!(
        rec.vars.get("answered_by").map(String::as_str),
        Some("human")
    );
    let trail = rec.ivr.as_ref().unwrap();
    assert_eq!(trail.flow, "notice");
    let keys: Vec<&str> = trail.choices.iter().map(|c| c.digit.as_str()).collect();
    assert_eq!(keys, ["2"], "{trail:?}");
}

#[test]
fn an_answering_machine_gets_the_message_after_its_greeting_and_beep() {
    let mut w = world();
    // A greeting of 4.4 s in words with short pauses, a pause, the beep.
    let mut voice = quiet(300);
    for _ in 0..8 {
        voice.extend(speech(400));
        voice.extend(quiet(150));
    }
    voice.extend(quiet(400));
    voice.extend(speech(500)); // the beep
    voice.extend(quiet(20_000));
    let greeting_end = (voice.len() - quiet(20_000).len()) as f64 / 8000.0;
    let p = w.citizen([10, 0, 3, 2], Answer::After(Duration::from_secs(1)), voice);
    let c = w.notify(p, notice(1));
    w.run_until(Duration::from_secs(40), |w| w.calls[0].call.is_over());
    assert!(w.saw(c, |e| matches!(e, CallEvent::NoticeMachine)));
    let (by, after) = speaking_at(&w, c).expect("the message began");
    assert_eq!(by, AnsweredBy::Machine);
    // After the beep and a second of quiet (the network's delay aside).
    assert!(
        after >= greeting_end + 0.9 && after < greeting_end + 1.6,
        "{after} vs {greeting_end}"
    );
    assert!(heard_once(
        &w.phones[p].all_heard(),
        prompt_hz("status_said")
    ));
    assert_eq!(w.notices[0].delivery, Delivery::Machine);
    let m = w.notices[0].message_after.unwrap();
    assert!((m - after).abs() < 0.01);
    // The flow skipped its menu for the machine.
    let rec = w.record(c).unwrap();
    assert!(rec.ivr.as_ref().unwrap().choices.is_empty());
    assert_eq!(
        rec.vars.get("answered_by").map(String::as_str),
        Some("machine")
    );
}

#[test]
fn busy_and_unanswered_phones_end_the_attempt_without_a_record() {
    let mut w = world();
    let busy = w.citizen([10, 0, 3, 3], Answer::Busy, quiet(100));
    let never = w.citizen([10, 0, 3, 4], Answer::Never, quiet(100));
    let a = w.notify(busy, notice(1));
    let b = w.notify(never, notice(2));
    w.run_until(Duration::from_secs(30), |w| {
        w.calls.iter().all(|c| c.call.is_over())
    });
    let got: Vec<(u32, Delivery)> = w.notices.iter().map(|n| (n.attempt, n.delivery)).collect();
    assert_eq!(got, [(1, Delivery::Busy), (2, Delivery::NoAnswer)]);
    // The unanswered phone rang for the ring time, then nida hung up.
    let rang = w
        .when(b, |e| {
            matches!(e, CallEvent::NoticeFailed(Delivery::NoAnswer))
        })
        .unwrap();
    assert!(rang >= Duration::from_secs(20) && rang < Duration::from_secs(21));
    assert!(w.calls[b]
        .sip
        .iter()
        .any(|o| matches!(o, nida_call::Output::Hangup(_))));
    assert!(w.record(a).is_none() && w.record(b).is_none());
}

#[test]
fn the_scheduler_retries_a_busy_citizen_until_the_call_is_answered() {
    let mut w = world();
    let voice = [quiet(200), speech(500), quiet(8000)].concat();
    let p = w.citizen([10, 0, 3, 5], Answer::Busy, voice);
    let policy = Policy {
        retry_busy: Duration::from_secs(120),
        ring: Duration::from_secs(20),
        ..Policy::default()
    };
    let mut n = Notifier::new(policy, Pace::default(), HashMap::new(), Arc::default());
    let unix = |w: &World| w.unix0 + w.elapsed().as_secs() as i64;
    n.submit(
        w.now,
        unix(&w),
        Request {
            id: "n1".into(),
            number: "0501234567".into(),
            flow: "notice".into(),
            vars: BTreeMap::from([("status".to_string(), "approved".to_string())]),
            language: None,
            trunk: String::new(),
            attempts: 0,
            due: unix(&w),
        },
    )
    .unwrap();
    let mut states = Vec::new();
    let mut seen = 0;
    for _ in 0..400 {
        while let Some(o) = n.poll_dial(w.now, unix(&w)) {
            w.notify(p, o.notice);
        }
        while seen < w.notices.len() {
            n.handle_result(w.now, unix(&w), w.notices[seen].clone());
            seen += 1;
        }
        while let Some(u) = n.poll_update() {
            states.push((w.elapsed().as_secs(), u.state, u.attempts));
        }
        if n.is_empty() {
            break;
        }
        if w.calls.len() == 1 && w.calls[0].call.is_over() {
            // The citizen is off the phone for the second try.
            w.phones[p].answer = Answer::After(Duration::from_secs(3));
        }
        w.run_for(Duration::from_secs(1));
    }
    let got: Vec<(State, u32)> = states.iter().map(|s| (s.1, s.2)).collect();
    assert_eq!(
        got,
        [
            (State::Calling, 1),
            (State::Pending, 1),
            (State::Calling, 2),
            (State::Delivered, 2)
        ],
        "{states:?}"
    );
    // The second try came the policy's wait after the busy line.
    assert!(
        (120..=122).contains(&(states[2].0 - states[1].0)),
        "{states:?}"
    );
    assert_eq!(w.notices[1].delivery, Delivery::Human);
    assert!(heard_once(
        &w.phones[p].all_heard(),
        prompt_hz("status_said")
    ));
}
