//! The interpreter node by node, in virtual time: when timers start and
//! fire, barge-in, retries, digit collection rules, lookups that time out,
//! conditions, call-back offers and sub-flows.

use nida_ivr::check::check_sources;
use nida_ivr::expr::{Value, Vars};
use nida_ivr::{Action, AnyPrompt, LookupResult, Outcome, Session};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FLOW: &str = r#"
flow: t
languages: [en]
start: menu
nodes:
  menu:
    menu:
      prompt: [menu]
      choices: { "1": number, "2": check, "3": offer, "4": sub }
      timeout_ms: 2000
      retries: 1
      no_input: [no_input]
      invalid: [invalid]
      on_failure: bye
  number:
    collect:
      prompt: [enter]
      var: n
      min_digits: 3
      max_digits: 5
      inter_digit_timeout_ms: 1500
      pattern: "^9"
      invalid: [bad]
      retries: 1
      on_failure: bye
    next: lookup
  lookup:
    lookup:
      service: s
      params: { n: "${n}" }
      result: { level: level }
      timeout_ms: 1000
      on_error: failed
    next: check
  check:
    branch:
      - when: "level >= 3 && n != '999'"
        goto: high
      - goto: low
  high: { queue: { name: high, skills: { a: 3 } } }
  low: { queue: { name: low } }
  failed:
    play: [failed]
    next: bye
  offer:
    callback_offer:
      prompt: [offer]
      queue: cb
      on_accept: thanks
      on_decline: low
  thanks: { hangup: { prompt: [thanks] } }
  sub:
    call: { flow: u }
    next: low
  bye: { hangup: {} }
"#;

const SUB: &str = r#"
flow: u
languages: [en]
start: hello
nodes:
  hello:
    play: [hello]
    next: back
  back:
    return: {}
"#;

fn session(now: Instant) -> Session {
    let files = vec![
        (PathBuf::from("t.yaml"), FLOW.to_string()),
        (PathBuf::from("u.yaml"), SUB.to_string()),
    ];
    let set = check_sources(&files, &AnyPrompt).unwrap_or_else(|r| panic!("{}", r.render()));
    Session::new(now, Arc::new(set), "t", Vars::new()).unwrap()
}

fn actions(s: &mut Session) -> Vec<Action> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

fn played(a: &[Action]) -> Vec<String> {
    a.iter()
        .flat_map(|x| match x {
            Action::Play(p) => p.iter().map(|r| r.name.clone()).collect(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn menu_timer_starts_after_the_prompt_and_retries_then_fails() {
    let t0 = Instant::now();
    let mut s = session(t0);
    assert_eq!(played(&actions(&mut s)), ["menu"]);
    assert_eq!(s.poll_timeout(), None, "no timer while the prompt plays");
    let t1 = t0 + Duration::from_secs(4);
    s.handle_playback_done(t1);
    assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_secs(2)));
    s.handle_timeout(t1 + Duration::from_secs(2));
    assert_eq!(played(&actions(&mut s)), ["no_input", "menu"]);
    s.handle_playback_done(t1 + Duration::from_secs(5));
    s.handle_digit(t1 + Duration::from_secs(6), '8');
    assert_eq!(*s.outcome(), Outcome::HungUp, "one retry, then on_failure");
    assert!(s.path().ends_with(&["t/bye".to_string()]));
}

#[test]
fn a_key_during_the_prompt_stops_it_and_is_taken() {
    let t0 = Instant::now();
    let mut s = session(t0);
    actions(&mut s);
    s.handle_digit(t0 + Duration::from_millis(300), '1');
    let a = actions(&mut s);
    assert_eq!(a[0], Action::StopPlayback);
    assert_eq!(played(&a), ["enter"]);
}

#[test]
fn collect_rules_inter_digit_timeout_pattern_and_lookup() {
    let t0 = Instant::now();
    let mut s = session(t0);
    actions(&mut s);
    s.handle_digit(t0, '1');
    actions(&mut s);
    // 1 2 3 then silence: 3 digits but the pattern wants a leading 9.
    for d in ['1', '2', '3'] {
        s.handle_digit(t0, d);
    }
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_millis(1500)));
    s.handle_timeout(t0 + Duration::from_millis(1500));
    assert_eq!(played(&actions(&mut s)), ["bad", "enter"]);
    // 9 4 and # : too short (min 3).
    let t1 = t0 + Duration::from_secs(5);
    for d in ['9', '4', '#'] {
        s.handle_digit(t1, d);
    }
    assert_eq!(*s.outcome(), Outcome::HungUp, "second failure: on_failure");

    // A good entry ends at max_digits and goes to the lookup.
    let mut s = session(t0);
    actions(&mut s);
    s.handle_digit(t0, '1');
    actions(&mut s);
    for d in "94321".chars() {
        s.handle_digit(t0, d);
    }
    let a = actions(&mut s);
    let Some(Action::Lookup { id, params, .. }) = a.last().cloned() else {
        panic!("{a:?}")
    };
    assert_eq!(params["n"], "94321");
    let mut rec = std::collections::BTreeMap::new();
    rec.insert("level".to_string(), Value::Num(4.0));
    s.handle_lookup(t0, id, LookupResult::Found(rec));
    match s.outcome() {
        Outcome::Queued(q) => assert_eq!((q.queue.as_str(), q.skills["a"]), ("high", 3)),
        o => panic!("{o:?}"),
    }
}

#[test]
fn lookup_timeout_takes_the_error_branch() {
    let t0 = Instant::now();
    let mut s = session(t0);
    actions(&mut s);
    s.handle_digit(t0, '1');
    actions(&mut s);
    for d in "999#".chars() {
        s.handle_digit(t0, d);
    }
    actions(&mut s);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(1)));
    s.handle_timeout(t0 + Duration::from_secs(1));
    assert_eq!(played(&actions(&mut s)), ["failed"]);
    assert_eq!(
        s.vars().get("lookup_error"),
        Some(&Value::Str("timeout".into()))
    );
    // A late answer is ignored.
    s.handle_lookup(t0 + Duration::from_secs(2), 1, LookupResult::NotFound);
    assert!(s.path().ends_with(&["t/failed".to_string()]));
}

#[test]
fn branch_else_callback_offer_and_sub_flow() {
    let t0 = Instant::now();
    // 2: check without a level: the else arm.
    let mut s = session(t0);
    actions(&mut s);
    s.handle_digit(t0, '2');
    assert!(matches!(s.outcome(), Outcome::Queued(q) if q.queue == "low"));
    // 3: call-back offer accepted.
    let mut s = session(t0);
    actions(&mut s);
    s.handle_digit(t0, '3');
    actions(&mut s);
    s.handle_digit(t0, '1');
    let a = actions(&mut s);
    assert!(
        a.contains(&Action::Callback { queue: "cb".into() }),
        "{a:?}"
    );
    assert_eq!(played(&a), ["thanks"]);
    // Declined by silence.
    let mut s = session(t0);
    actions(&mut s);
    s.handle_digit(t0, '3');
    actions(&mut s);
    s.handle_playback_done(t0);
    s.handle_timeout(t0 + Duration::from_secs(5));
    assert!(matches!(s.outcome(), Outcome::Queued(q) if q.queue == "low"));
    // 4: sub-flow plays and returns to `next`.
    let mut s = session(t0);
    actions(&mut s);
    s.handle_digit(t0, '4');
    assert_eq!(played(&actions(&mut s)), ["hello"]);
    s.handle_playback_done(t0);
    assert!(matches!(s.outcome(), Outcome::Queued(q) if q.queue == "low"));
    assert_eq!(
        s.path().iter().skip(1).cloned().collect::<Vec<_>>(),
        ["t/sub", "u/hello", "u/back", "t/low"]
    );
}

/// Open on even hours of the Unix clock, for `open("desk")`.
#[derive(Debug)]
struct EvenHours;

impl nida_ivr::Hours for EvenHours {
    fn is_open(&self, calendar: &str, unix: i64) -> Option<bool> {
        (calendar == "desk").then_some((unix / 3600) % 2 == 0)
    }
}

const HOURS: &str = r#"
flow: h
languages: [en]
start: wait
nodes:
  wait:
    play: [welcome]
    next: check
  check:
    branch:
      - when: "open('desk')"
        goto: agent
      - goto: closed
  agent: { queue: { name: desk } }
  closed: { hangup: { prompt: [closed] } }
"#;

fn hours_session(now: Instant, unix: i64) -> Session {
    let files = vec![(PathBuf::from("h.yaml"), HOURS.to_string())];
    let set = check_sources(&files, &AnyPrompt).unwrap_or_else(|r| panic!("{}", r.render()));
    let env = nida_ivr::interp::Env {
        unix,
        hours: Some(Arc::new(EvenHours)),
    };
    Session::start(now, env, Arc::new(set), "h", Vars::new()).unwrap()
}

#[test]
fn open_reads_the_calendar_at_the_time_the_branch_runs() {
    let t0 = Instant::now();
    // The call starts at 01:59:50 (closed); the welcome ends 15 s later,
    // at 02:00:05, when the branch runs: open.
    let mut s = hours_session(t0, 2 * 3600 - 10);
    actions(&mut s);
    s.handle_playback_done(t0 + Duration::from_secs(15));
    assert!(matches!(s.outcome(), Outcome::Queued(q) if q.queue == "desk"));
    // The same call starting at 02:59:50 reaches the branch at 03:00:05.
    let mut s = hours_session(t0, 3 * 3600 - 10);
    actions(&mut s);
    s.handle_playback_done(t0 + Duration::from_secs(15));
    assert_eq!(played(&actions(&mut s)), ["closed"]);
    // Without calendars, nothing is open.
    let files = vec![(PathBuf::from("h.yaml"), HOURS.to_string())];
    let set = check_sources(&files, &AnyPrompt).unwrap();
    let mut s = Session::new(t0, Arc::new(set), "h", Vars::new()).unwrap();
    actions(&mut s);
    s.handle_playback_done(t0);
    assert_eq!(played(&actions(&mut s)), ["closed"]);
}

#[test]
fn menu_choices_and_lookups_are_marked_in_order() {
    use nida_ivr::{Mark, Served};
    let t0 = Instant::now();
    let mut s = session(t0);
    actions(&mut s);
    s.handle_digit(t0, '1');
    actions(&mut s);
    for d in ['9', '1', '2', '#'] {
        s.handle_digit(t0, d);
    }
    let id = actions(&mut s)
        .iter()
        .find_map(|a| match a {
            Action::Lookup { id, .. } => Some(*id),
            _ => None,
        })
        .expect("a lookup");
    s.handle_lookup(t0, id, LookupResult::NotFound);
    assert_eq!(
        s.marks(),
        [
            Mark::Choice {
                node: "t/menu".into(),
                digit: '1'
            },
            Mark::Lookup {
                node: "t/lookup".into(),
                service: "s".into(),
                served: Served::NotFound
            }
        ]
    );
    assert_eq!(s.at(), "t/failed", "not found takes on_error here");
}
