//! Call-backs at a time the caller chooses, in virtual time: the menu of
//! times within the queue's hours, the call out of the line until then,
//! agent first or caller first when it is due, full slots, misses tried
//! again, and a restored call-back that waits for the queue to open. The
//! world starts on Friday 2027-01-15 at 08:00 UTC.

mod common;

use common::{heard_once, prompt_hz, Answer, World};
use nida_acd::AgentId;
use nida_call::calendar::{CalendarDef, Calendars};
use nida_call::{CallEvent, CallbackFirst, QueueRules};
use std::collections::BTreeMap;
use std::time::Duration;

const S: fn(u64) -> Duration = Duration::from_secs;
const HOUR: i64 = 3600;

/// Open 08:00 to 18:00 UTC every day.
fn desk() -> Calendars {
    let day = "08:00-18:00".to_string();
    let def = CalendarDef {
        time_zone: Some("UTC".into()),
        week: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .iter()
            .map(|d| (d.to_string(), day.clone()))
            .collect(),
        dates: Vec::new(),
    };
    Calendars::new(&BTreeMap::from([("desk".to_string(), def)])).unwrap()
}

fn rules(first: CallbackFirst) -> QueueRules {
    QueueRules {
        announce: Duration::ZERO,
        callback_slots: 3,
        callback_slot_capacity: 2,
        callback_first: first,
        callback_retry: S(60),
        callback_attempts: 2,
        callback_lead: S(1800),
        calendar: Some("desk".into()),
        ..QueueRules::default()
    }
}

fn world(first: CallbackFirst) -> World {
    let mut w = World::visa(rules(first));
    w.set_calendars(desk());
    w
}

fn waiting(w: &World, c: usize) -> bool {
    w.saw(c, |e| matches!(e, CallEvent::Waiting { .. }))
}

fn offered(w: &World, c: usize) -> Vec<i64> {
    w.calls[c]
        .events
        .iter()
        .rev()
        .find_map(|(_, e)| match e {
            CallEvent::CallbackSlotsOffered(at) => Some(at.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The caller of `c` waits, asks for a call-back and chooses `key`.
fn choose(w: &mut World, c: usize, key: char) {
    w.run_until(S(5), |w| waiting(w, c));
    w.press(c, '1');
    w.run_until(S(3), |w| {
        w.saw(c, |e| matches!(e, CallEvent::CallbackSlotsOffered(_)))
    });
    w.run_for(S(1));
    w.press(c, key);
}

fn scheduled_at(w: &World, c: usize) -> Option<i64> {
    w.calls[c].events.iter().find_map(|(_, e)| match e {
        CallEvent::CallbackScheduled { at } => Some(*at),
        _ => None,
    })
}

#[test]
fn a_caller_chooses_a_time_and_an_agent_takes_the_call_back_then() {
    let mut w = world(CallbackFirst::Agent);
    let t0 = w.unix0;
    let c = w.call_in("line", "0501", Answer::After(S(2)));
    choose(&mut w, c, '2');
    // Later today (09:00), then Saturday 08:00 and 14:00.
    assert_eq!(offered(&w, c), [t0 + HOUR, t0 + 24 * HOUR, t0 + 30 * HOUR]);
    let caller = w.calls[c].caller;
    assert!(heard_once(
        &w.phones[caller].all_heard(),
        prompt_hz("callback_when")
    ));
    w.run_until(S(5), |w| scheduled_at(w, c).is_some());
    assert_eq!(scheduled_at(&w, c), Some(t0 + HOUR));
    let row = w.callbacks.last().unwrap().clone();
    assert_eq!(row.status, "requested");
    assert_eq!(
        (row.slot_at, row.due_at),
        (Some(t0 + HOUR), Some(t0 + HOUR))
    );
    // The caller hears the time and goodbye, and the line is free.
    w.run_until(S(10), |w| w.saw(c, |e| *e == CallEvent::Parked));
    assert!(heard_once(
        &w.phones[caller].all_heard(),
        prompt_hz("callback_scheduled")
    ));
    // An agent ready now is not offered the call before its time.
    w.agent(1, Answer::After(S(1)));
    w.run_for(S(50 * 60));
    assert!(!w.saw(c, |e| matches!(e, CallEvent::Ringing { .. })));
    assert!(!w.saw(c, |e| matches!(e, CallEvent::CallbackDialling { .. })));
    w.run_until(S(11 * 60), |w| w.saw(c, |e| *e == CallEvent::CallbackDue));
    let due = w.when(c, |e| *e == CallEvent::CallbackDue).unwrap();
    assert!(due >= S(3600) - S(10) && due <= S(3601), "due at {due:?}");
    // Agent first: the agent is rung, then the caller is dialled.
    w.run_until(S(20), |w| {
        w.saw(c, |e| matches!(e, CallEvent::CallbackAnswered { .. }))
    });
    assert!(w.saw(
        c,
        |e| matches!(e, CallEvent::Bridged { agent: Some(a), .. } if *a == AgentId(1))
    ));
    let rang = w
        .when(c, |e| matches!(e, CallEvent::Ringing { .. }))
        .unwrap();
    let dialled = w
        .when(c, |e| matches!(e, CallEvent::CallbackDialling { .. }))
        .unwrap();
    assert!(rang <= dialled, "the agent before the caller");
    assert_eq!(w.callbacks.last().unwrap().status, "answered");
}

#[test]
fn caller_first_dials_the_caller_who_then_waits_at_the_head_of_the_line() {
    let mut w = world(CallbackFirst::Caller);
    let t0 = w.unix0;
    let a = w.call_in("line", "0501", Answer::After(S(2)));
    choose(&mut w, a, '2');
    let b = w.call_in("line", "0502", Answer::Busy);
    choose(&mut w, b, '2');
    w.run_until(S(5), |w| scheduled_at(w, b).is_some());
    // Two fit in the slot: the second is made half an hour into it.
    assert_eq!(scheduled_at(&w, a), Some(t0 + HOUR));
    assert_eq!(scheduled_at(&w, b), Some(t0 + HOUR + HOUR / 2));
    // The slot is full: a third caller is offered the later times only.
    let c = w.call_in("line", "0503", Answer::Never);
    w.run_until(S(5), |w| waiting(w, c));
    w.press(c, '1');
    w.run_until(S(3), |w| {
        w.saw(c, |e| matches!(e, CallEvent::CallbackSlotsOffered(_)))
    });
    assert_eq!(offered(&w, c)[0], t0 + 24 * HOUR);
    // At 09:00 the caller is dialled with no agent free; they answer,
    // hear that this is their call-back, and wait in line.
    w.run_until(S(3700), |w| w.saw(a, |e| *e == CallEvent::CallbackDue));
    w.run_until(S(10), |w| {
        w.saw(a, |e| matches!(e, CallEvent::CallbackAnswered { .. }))
    });
    assert!(!w.saw(a, |e| matches!(e, CallEvent::Ringing { .. })));
    w.run_for(S(5));
    let caller = w.calls[a].caller;
    assert!(heard_once(
        &w.phones[caller].all_heard(),
        prompt_hz("callback_connecting")
    ));
    let waits = w.calls[a]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, CallEvent::Waiting { .. }))
        .count();
    assert_eq!(waits, 2, "in line again after answering");
    // The agent who gets ready takes them ahead of the caller waiting
    // since 08:00.
    w.agent(1, Answer::After(S(1)));
    w.run_until(S(20), |w| {
        w.saw(a, |e| {
            matches!(e, CallEvent::Bridged { agent: Some(_), .. })
        })
    });
    assert!(!w.saw(c, |e| matches!(e, CallEvent::Bridged { .. })));
    // The busy caller is dialled at 09:30, then again after the retry
    // time, then given up.
    w.run_until(S(1900), |w| w.saw(b, |e| *e == CallEvent::CallbackDue));
    w.run_until(S(10), |w| {
        w.saw(b, |e| {
            matches!(e, CallEvent::CallbackMissed { attempts: 1, .. })
        })
    });
    w.run_until(S(70), |w| w.saw(b, |e| *e == CallEvent::CallbackRetry));
    w.run_until(S(10), |w| w.calls[b].call.is_over());
    let r = w.record(b).unwrap();
    assert_eq!(r.outcome, "callback_failed");
    assert_eq!(r.callback_attempts, Some(2));
}

#[test]
fn a_wrong_key_or_silence_keeps_the_caller_in_line_and_1_keeps_the_place() {
    let mut w = world(CallbackFirst::Agent);
    let c = w.call_in("line", "0501", Answer::After(S(1)));
    choose(&mut w, c, '9');
    w.run_until(S(2), |w| {
        w.saw(c, |e| *e == CallEvent::CallbackSlotNotChosen)
    });
    // Silence: the menu gives up after a few seconds.
    w.press(c, '1');
    w.run_until(S(30), |w| {
        w.calls[c]
            .events
            .iter()
            .filter(|(_, e)| *e == CallEvent::CallbackSlotNotChosen)
            .count()
            == 2
    });
    assert!(!w.saw(c, |e| matches!(e, CallEvent::CallbackScheduled { .. })));
    assert!(w.callbacks.is_empty(), "nothing booked");
    // 1: as soon as an agent is free, keeping the place.
    choose(&mut w, c, '1');
    w.run_until(S(5), |w| w.saw(c, |e| *e == CallEvent::CallbackBooked));
    assert_eq!(w.callbacks.last().unwrap().due_at, None);
    w.run_until(S(10), |w| w.saw(c, |e| *e == CallEvent::Parked));
    w.agent(1, Answer::After(S(1)));
    w.run_until(S(20), |w| {
        w.saw(c, |e| matches!(e, CallEvent::CallbackAnswered { .. }))
    });
}

#[test]
fn a_restored_call_back_waits_for_its_time_and_for_the_queue_to_open() {
    let mut w = world(CallbackFirst::Caller);
    let t0 = w.unix0;
    // Due at 19:00, after closing (a calendar changed since, say).
    let row = nida_store::CallbackRow {
        call_id: "cb-restored".into(),
        number: "0509".into(),
        queue: "visa".into(),
        language: "en".into(),
        status: "requested".into(),
        requested_at: t0 - HOUR,
        updated_at: t0 - HOUR,
        slot_at: Some(t0 + 11 * HOUR),
        due_at: Some(t0 + 11 * HOUR),
        ..Default::default()
    };
    let c = w.restore([10, 0, 3, 9], Answer::After(S(1)), row);
    w.run_for(S(60));
    assert!(!w.saw(c, |e| matches!(e, CallEvent::Waiting { .. })));
    w.run_until(S(11 * 3600 + 5), |w| {
        w.saw(c, |e| {
            matches!(e, CallEvent::CallbackWaitsForOpening { .. })
        })
    });
    assert!(w.saw(c, |e| *e
        == CallEvent::CallbackWaitsForOpening { at: t0 + 24 * HOUR }));
    assert!(!w.saw(c, |e| matches!(e, CallEvent::CallbackDialling { .. })));
    // Saturday 08:00: the caller is dialled.
    w.run_until(S(13 * 3600 + 5), |w| {
        w.saw(c, |e| matches!(e, CallEvent::CallbackDialling { .. }))
    });
    let at = w
        .when(c, |e| matches!(e, CallEvent::CallbackDialling { .. }))
        .unwrap();
    assert!(at >= S(24 * 3600) - S(1), "dialled at {at:?}");
}

#[test]
fn every_language_has_the_prompts_the_menu_of_times_says() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../prompts");
    let cal = nida_call::calendar::Calendar::always();
    for lang in nida_ivr::say::LANGUAGES {
        let mut names: Vec<String> = [
            "callback_when",
            "callback_press",
            "callback_scheduled",
            "callback_connecting",
            "goodbye",
        ]
        .map(String::from)
        .to_vec();
        names.extend((2..=9).map(|d| format!("digit_{d}")));
        // Every hour a slot can be at, on every kind of day.
        for s in cal.slots(1_800_000_000, 0, 20) {
            names.extend(s.prompts(lang));
        }
        for d in 1..=7 {
            let s = nida_call::calendar::Slot {
                at: 0,
                day: nida_call::calendar::SlotDay::Weekday(d),
                hour: 20,
            };
            names.extend(s.prompts(lang));
        }
        for n in names {
            assert!(
                dir.join(lang).join(format!("{n}.wav")).exists(),
                "prompts/{lang}/{n}.wav"
            );
        }
    }
}
