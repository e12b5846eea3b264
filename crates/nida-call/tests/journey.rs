//! The citizen's journey around the agent, in process and in virtual
//! time: calls served by the IVR alone leave a record with their way
//! through it (and the containment figures come from those records),
//! opening hours decide flows and queues, and voice messages are taken.

mod common;

use common::{hears, Answer, World, CALLER_HZ};
use nida_call::calendar::{CalendarDef, Calendars, DateDef};
use nida_call::{CallEvent, QueueRules, Recording};
use nida_ivr::{LookupResult, Value};
use nida_store::{IvrEnd, LookupServed};
use std::collections::BTreeMap;
use std::time::Duration;

const S: fn(u64) -> Duration = Duration::from_secs;

const SELFSERVE: &str = r#"
flow: selfserve
languages: [en]
start: menu
nodes:
  menu:
    menu:
      prompt: [menu]
      choices: { "1": lookup, "0": agent, "9": message }
      timeout_ms: 4000
      on_failure: bye
  lookup:
    lookup:
      service: status
      params: { number: "${caller}" }
      result: { status: status }
      on_error: bye
    next: said
  said:
    hangup: { prompt: [status_said] }
  agent:
    queue: { name: visa }
  message:
    voicemail: { queue: visa, max_seconds: 30, silence_seconds: 3 }
  bye:
    hangup: { prompt: [goodbye] }
"#;

const HOURS: &str = r#"
flow: hours
languages: [en]
start: check
nodes:
  check:
    branch:
      - when: "open('desk')"
        goto: agent
      - goto: closed
  agent:
    queue: { name: visa }
  closed:
    hangup: { prompt: [queue_closed] }
"#;

fn quiet() -> QueueRules {
    QueueRules {
        announce: Duration::ZERO,
        survey_flow: None,
        ..QueueRules::default()
    }
}

fn world(rules: QueueRules) -> World {
    World::with_flows(
        vec![(common::queue("visa"), rules)],
        &[("selfserve", SELFSERVE), ("hours", HOURS)],
    )
}

fn over(w: &World, c: usize) -> bool {
    w.calls[c].call.is_over()
}

/// Presses `digit` once the menu prompt has started.
fn choose(w: &mut World, c: usize, digit: char) {
    w.run_until(S(2), |w| {
        w.saw(c, |e| matches!(e, CallEvent::Playing(p) if p == &["menu"]))
    });
    w.run_for(Duration::from_millis(200));
    w.press(c, digit);
}

fn found(status: &str) -> LookupResult {
    LookupResult::Found(BTreeMap::from([(
        "status".to_string(),
        Value::Str(status.into()),
    )]))
}

#[test]
fn an_ivr_only_call_leaves_a_record_with_its_path_choices_and_lookups() {
    let mut w = world(quiet());
    w.lookups.push_back(found("approved"));
    let c = w.call_in("selfserve", "0501234567", Answer::Never);
    choose(&mut w, c, '1');
    w.run_until(S(10), |w| over(w, c));
    assert!(over(&w, c), "the flow ends the call");
    let r = w.record(c).expect("an IVR-only call has a record");
    assert_eq!(r.queued_at, None);
    assert_eq!(r.queue, "");
    assert_eq!(r.outcome, "ivr");
    assert_eq!(r.language, "en");
    assert_eq!(r.started_at, Some(w.unix0));
    assert_eq!(
        r.path,
        ["selfserve/menu", "selfserve/lookup", "selfserve/said"]
    );
    assert_eq!(r.vars.get("status").map(String::as_str), Some("approved"));
    let t = r.ivr.as_ref().expect("its IVR trail");
    assert_eq!(t.flow, "selfserve");
    assert_eq!(t.end, IvrEnd::SelfServed);
    assert_eq!(t.exit, "selfserve/said");
    assert_eq!(t.choices.len(), 1);
    assert_eq!(
        (t.choices[0].node.as_str(), t.choices[0].digit.as_str()),
        ("selfserve/menu", "1")
    );
    assert_eq!(t.lookups.len(), 1);
    assert_eq!(t.lookups[0].service, "status");
    assert_eq!(t.lookups[0].result, LookupServed::Found);
    // The whole call was in the IVR: its seconds are the call's.
    let whole = (r.ended_at - w.unix0) as f64;
    assert!((t.seconds - whole).abs() <= 1.0, "{} vs {whole}", t.seconds);
    assert!(t.seconds > 0.5);
}

#[test]
fn containment_counts_what_ended_in_the_ivr_and_where_callers_left() {
    let mut w = world(quiet());
    // Served by the lookup.
    w.lookups.push_back(found("approved"));
    let served = w.call_in("selfserve", "0501000001", Answer::Never);
    choose(&mut w, served, '1');
    // Hangs up in the menu.
    let left = w.call_in("selfserve", "0501000002", Answer::Never);
    w.run_for(Duration::from_millis(300));
    w.caller_hangs_up(left);
    // Asks for an agent, then gives up waiting.
    let queued = w.call_in("selfserve", "0501000003", Answer::Never);
    choose(&mut w, queued, '0');
    w.run_until(S(3), |w| {
        w.saw(queued, |e| matches!(e, CallEvent::Waiting { .. }))
    });
    w.run_for(S(2));
    w.caller_hangs_up(queued);
    // The lookup backend fails: the flow says goodbye.
    w.lookups.push_back(LookupResult::Error("timeout".into()));
    let failed = w.call_in("selfserve", "0501000004", Answer::Never);
    choose(&mut w, failed, '1');
    w.run_until(S(20), |w| (0..4).all(|c| over(w, c)));
    assert_eq!(w.records.len(), 4, "every call has a record");
    let ends: Vec<IvrEnd> = [served, left, queued, failed]
        .iter()
        .map(|&c| w.record(c).unwrap().ivr.as_ref().unwrap().end)
        .collect();
    assert_eq!(
        ends,
        [
            IvrEnd::SelfServed,
            IvrEnd::CallerHungUp,
            IvrEnd::Queued,
            IvrEnd::SelfServed
        ]
    );
    let k = nida_store::kpi::ivr_by_flow(&w.records, 5);
    assert_eq!(k.len(), 1);
    let k = &k[0];
    assert_eq!((k.calls, k.contained, k.queued), (4, 3, 1));
    assert_eq!(k.containment(), Some(75.0));
    assert_eq!((k.lookups_served, k.lookups_failed), (1, 1));
    assert_eq!(
        k.exits,
        [
            ("selfserve/bye".to_string(), 1),
            ("selfserve/menu".to_string(), 1),
            ("selfserve/said".to_string(), 1)
        ]
    );
    // The queued call counts in its queue's figures, the others do not.
    let q = nida_store::kpi::by_queue(&w.records, nida_store::kpi::Bucket::Day);
    assert_eq!(q.len(), 1);
    assert_eq!((q[0].offered, q[0].abandoned), (1, 1));
}

/// Runs call `c` to the beep's end (the message is being recorded).
fn to_the_beep(w: &mut World, c: usize) -> Duration {
    w.run_until(S(40), |w| w.saw(c, |e| *e == CallEvent::VoicemailRecording));
    w.when(c, |e| *e == CallEvent::VoicemailRecording)
        .expect("the recording starts after the greeting and beep")
}

fn message_end(w: &World, c: usize) -> Option<(Duration, f64)> {
    let at = w.when(c, |e| matches!(e, CallEvent::VoicemailLeft { .. }))?;
    w.calls[c].events.iter().find_map(|(_, e)| match e {
        CallEvent::VoicemailLeft { seconds, .. } => Some((at, *seconds)),
        _ => None,
    })
}

#[test]
fn a_voice_message_ends_on_hash_and_keeps_the_callers_voice() {
    let mut w = world(quiet());
    let c = w.call_in("selfserve", "0501234567", Answer::Never);
    choose(&mut w, c, '9');
    let beep = to_the_beep(&mut w, c);
    assert!(w.saw(c, |e| matches!(e, CallEvent::Playing(p)
        if p == &["voicemail_greeting", "beep"])));
    w.run_for(S(4));
    w.press(c, '#');
    w.run_until(S(10), |w| over(w, c));
    let (at, seconds) = message_end(&w, c).expect("the message is kept");
    let took = (at - beep).as_secs_f64();
    assert!((4.0..4.3).contains(&took), "{took}");
    assert!((seconds - took).abs() < 0.2, "{seconds} vs {took}");
    let slot = &w.calls[c];
    assert_eq!(slot.voicemail_end, Some(Recording::Finish));
    assert!(hears(&slot.voicemail, CALLER_HZ), "the caller's voice");
    assert!(w.saw(
        c,
        |e| matches!(e, CallEvent::Playing(p) if p == &["voicemail_saved"])
    ));
    let r = w.record(c).unwrap();
    assert_eq!(r.outcome, "voicemail");
    let v = r.voicemail.as_ref().expect("the record names the message");
    assert_eq!((v.file.as_str(), v.queue.as_str()), ("vm-0.wav", "visa"));
    assert_eq!(r.ivr.as_ref().unwrap().end, IvrEnd::Voicemail);
}

#[test]
fn silence_ends_a_message_and_one_without_voice_is_discarded() {
    let mut w = world(quiet());
    let c = w.call_in("selfserve", "0501234567", Answer::Never);
    choose(&mut w, c, '9');
    to_the_beep(&mut w, c);
    w.run_for(S(2));
    w.caller_speaks(c, false);
    let quiet_from = w.elapsed();
    w.run_until(S(20), |w| over(w, c));
    let (at, _) = message_end(&w, c).expect("kept");
    // Three seconds of silence (the flow's), give or take the network.
    let gap = (at - quiet_from).as_secs_f64();
    assert!((2.8..3.4).contains(&gap), "{gap}");

    // Silent from the beep: twice the silence for the first word, then
    // discarded.
    let d = w.call_in("selfserve", "0501234568", Answer::Never);
    choose(&mut w, d, '9');
    w.caller_speaks(d, false);
    let beep = to_the_beep(&mut w, d);
    w.run_until(S(20), |w| over(w, d));
    let empty = w
        .when(d, |e| *e == CallEvent::VoicemailEmpty)
        .expect("discarded");
    assert!(((empty - beep).as_secs_f64() - 6.0).abs() < 0.1);
    assert_eq!(w.calls[d].voicemail_end, Some(Recording::Discard));
    let r = w.record(d).unwrap();
    assert!(r.voicemail.is_none());
    assert_ne!(r.outcome, "voicemail");
}

#[test]
fn a_message_stops_at_its_longest_and_a_hang_up_keeps_what_was_said() {
    let mut w = world(quiet());
    let c = w.call_in("selfserve", "0501234567", Answer::Never);
    choose(&mut w, c, '9');
    let beep = to_the_beep(&mut w, c);
    w.run_until(S(60), |w| over(w, c));
    let (at, seconds) = message_end(&w, c).unwrap_or_else(|| {
        panic!(
            "kept: {:#?}",
            &w.calls[c].events[w.calls[c].events.len().saturating_sub(8)..]
        )
    });
    assert!(((at - beep).as_secs_f64() - 30.0).abs() < 0.1);
    assert!((29.5..30.1).contains(&seconds), "{seconds}");

    let d = w.call_in("selfserve", "0501234568", Answer::Never);
    choose(&mut w, d, '9');
    to_the_beep(&mut w, d);
    w.run_for(S(5));
    w.caller_hangs_up(d);
    w.run_until(S(5), |w| over(w, d));
    let r = w.record(d).unwrap();
    let v = r
        .voicemail
        .as_ref()
        .expect("kept though the caller hung up");
    assert!((4.5..5.2).contains(&v.seconds), "{}", v.seconds);
}

/// A desk open on Fridays 09:00-17:00 in Dubai, closed on 2027-01-15 when
/// `holiday`. The world starts on Friday 2027-01-15 at 08:00 UTC, 12:00 in
/// Dubai.
fn desk(holiday: bool) -> Calendars {
    let mut def = CalendarDef {
        time_zone: Some("Asia/Dubai".into()),
        week: BTreeMap::from([("fri".to_string(), "09:00-17:00".to_string())]),
        dates: Vec::new(),
    };
    if holiday {
        def.dates.push(DateDef {
            date: Some("2027-01-15".into()),
            closed: true,
            ..DateDef::default()
        });
    }
    Calendars::new(&BTreeMap::from([("desk".to_string(), def)])).unwrap()
}

#[test]
fn a_flow_branches_on_its_calendar_across_a_holiday_and_closing_time() {
    for (holiday, queued) in [(false, true), (true, false)] {
        let mut w = world(quiet());
        w.set_calendars(desk(holiday));
        let c = w.call_in("hours", "0501234567", Answer::Never);
        w.run_until(S(5), |w| {
            over(w, c) || w.saw(c, |e| matches!(e, CallEvent::Waiting { .. }))
        });
        assert_eq!(
            w.saw(c, |e| matches!(e, CallEvent::Waiting { .. })),
            queued,
            "holiday {holiday}"
        );
        if !queued {
            let r = w.record(c).unwrap();
            assert_eq!(r.ivr.as_ref().unwrap().exit, "hours/closed");
        }
    }
    // 17:00 in Dubai is 13:00 UTC, five hours after the start: a call
    // then finds the desk closed.
    let mut w = world(quiet());
    w.set_calendars(desk(false));
    w.run_for(S(5 * 3600 - 2));
    let before = w.call_in("hours", "0501000001", Answer::Never);
    w.run_for(S(4));
    let after = w.call_in("hours", "0501000002", Answer::Never);
    w.run_for(S(3));
    assert!(w.saw(before, |e| matches!(e, CallEvent::Waiting { .. })));
    assert!(!w.saw(after, |e| matches!(e, CallEvent::Waiting { .. })));
}

#[test]
fn a_closed_queue_takes_a_message_instead_of_queueing() {
    let mut w = world(QueueRules {
        calendar: Some("desk".into()),
        ..quiet()
    });
    w.set_calendars(desk(true));
    let c = w.call_in("line", "0501234567", Answer::Never);
    w.run_until(S(10), |w| w.saw(c, |e| *e == CallEvent::VoicemailRecording));
    assert!(w.saw(c, |e| *e == CallEvent::QueueClosed("visa".into())));
    assert!(w.saw(c, |e| matches!(e, CallEvent::Playing(p)
        if p == &["queue_closed", "voicemail_greeting", "beep"])));
    assert!(!w.saw(c, |e| matches!(e, CallEvent::Waiting { .. })));
    w.run_for(S(3));
    w.press(c, '#');
    w.run_until(S(10), |w| over(w, c));
    let r = w.record(c).unwrap();
    assert_eq!(r.outcome, "voicemail");
    assert_eq!(r.queued_at, None, "never in line");
    assert_eq!(r.voicemail.as_ref().unwrap().queue, "visa");
    // Its own exit: a flow.
    let mut w = world(QueueRules {
        calendar: Some("desk".into()),
        closed_exit: nida_acd::Exit::Flow("then".into()),
        ..quiet()
    });
    w.set_calendars(desk(true));
    let c = w.call_in("line", "0501234567", Answer::Never);
    w.run_until(S(10), |w| over(w, c));
    assert!(w.saw(c, |e| *e == CallEvent::FlowStarted("then".into())));
    assert_eq!(w.record(c).unwrap().outcome, "closed");
}

#[test]
fn a_queues_voicemail_exit_takes_a_message_after_the_longest_wait() {
    let mut q = common::queue("visa");
    q.max_wait = Some((S(20), nida_acd::Exit::Voicemail));
    let mut w = World::with_flows(vec![(q, quiet())], &[]);
    let c = w.call_in("line", "0501234567", Answer::Never);
    let beep = to_the_beep(&mut w, c);
    assert!(beep >= S(20));
    w.run_for(S(3));
    w.press(c, '#');
    w.run_until(S(10), |w| over(w, c));
    let r = w.record(c).unwrap();
    assert_eq!(r.outcome, "voicemail");
    assert!(r.queued_at.is_some());
    assert_eq!(r.ivr.as_ref().unwrap().end, IvrEnd::Voicemail);
}

#[test]
fn an_agent_keys_wrap_up_codes_on_the_phone_during_the_call() {
    let mut w = world(QueueRules {
        wrapup_codes: vec![
            "visa status given".into(),
            "complaint opened".into(),
            "needs follow-up".into(),
        ],
        ..quiet()
    });
    w.agent(1, Answer::After(S(1)));
    let c = w.call_in("line", "0501234567", Answer::Never);
    w.run_until(S(10), |w| {
        w.saw(c, |e| matches!(e, CallEvent::Bridged { .. }))
    });
    w.run_for(S(1));
    // In the media (RFC 4733): *3# is the third code.
    for k in ['*', '3', '#'] {
        w.agent_press(1, k);
        w.run_for(Duration::from_millis(400));
    }
    w.run_until(S(3), |w| !w.wrapups.is_empty());
    let keyed = &w.wrapups[0];
    assert_eq!(keyed.codes, ["needs follow-up"]);
    assert_eq!((keyed.agent, keyed.queue.as_str()), (1, "visa"));
    assert_eq!(keyed.call_id, "call-1");
    // By SIP INFO: *1# the first; *7# is no code and stores nothing.
    let agent_phone = w.agents[&1];
    for k in ['*', '7', '#', '*', '1', '#'] {
        w.phone_press(agent_phone, k);
    }
    assert!(w.saw(
        c,
        |e| matches!(e, CallEvent::WrapupKeyUnknown { keyed, .. } if keyed == "7")
    ));
    let codes: Vec<&str> = w.wrapups.iter().map(|x| x.codes[0].as_str()).collect();
    assert_eq!(codes, ["needs follow-up", "visa status given"]);
    // The caller's keys are the caller's: no code from them.
    w.press(c, '*');
    w.run_for(Duration::from_millis(300));
    w.press(c, '2');
    w.run_for(Duration::from_millis(300));
    w.press(c, '#');
    w.run_for(S(1));
    assert_eq!(w.wrapups.len(), 2);
}
