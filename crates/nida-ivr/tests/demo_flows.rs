//! Every demo flow simulated down to every leaf: an explorer drives the
//! interpreter through every menu choice, a wrong key, silence, valid,
//! unknown and malformed application numbers, and backend failures, in
//! virtual time, and checks that every node of every flow is reached, that
//! every prompt played exists in `prompts/<lang>/`, and that the visa status
//! path says the right status and date.

use nida_ivr::check::load_path;
use nida_ivr::expr::{Value, Vars};
use nida_ivr::flow::Kind;
use nida_ivr::{Action, LookupResult, Outcome, PromptRef, Session};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The prompts that exist, by (language, name).
fn prompt_files() -> HashSet<(String, String)> {
    let mut out = HashSet::new();
    for lang in std::fs::read_dir(repo().join("prompts")).unwrap().flatten() {
        if !lang.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(lang.path()).unwrap().flatten() {
            let p = f.path();
            if p.extension().and_then(|e| e.to_str()) == Some("wav") {
                out.insert((
                    lang.file_name().to_string_lossy().to_string(),
                    p.file_stem().unwrap().to_string_lossy().to_string(),
                ));
            }
        }
    }
    out
}

fn applications() -> BTreeMap<String, BTreeMap<String, Value>> {
    let text = std::fs::read_to_string(repo().join("ivr-flows/data/applications.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let rec = v
                .as_object()
                .unwrap()
                .iter()
                .map(|(f, x)| {
                    (
                        f.clone(),
                        Value::Str(x.as_str().unwrap_or_default().to_string()),
                    )
                })
                .collect();
            (k.clone(), rec)
        })
        .collect()
}

/// One input the explorer can give at a waiting point.
#[derive(Debug, Clone)]
enum Input {
    Keys(String),
    Silence,
    BackendDown,
}

struct Run {
    played: Vec<PromptRef>,
    outcome: Outcome,
    path: Vec<String>,
}

/// Carries out the session's actions: prompts finish at once, lookups are
/// answered from the sample data (or fail while the backend is down).
fn drain(s: &mut Session, now: Instant, played: &mut Vec<PromptRef>, backend_down: bool) {
    let data = applications();
    while let Some(a) = s.poll_action() {
        match a {
            Action::Play(p) => {
                played.extend(p);
                s.handle_playback_done(now);
            }
            Action::Lookup { id, params, .. } => {
                let r = match data.get(&params["number"]) {
                    _ if backend_down => LookupResult::Error("backend down".into()),
                    Some(rec) => LookupResult::Found(rec.clone()),
                    None => LookupResult::NotFound,
                };
                s.handle_lookup(now, id, r);
            }
            Action::StopPlayback
            | Action::Callback { .. }
            | Action::Queue(_)
            | Action::Voicemail(_)
            | Action::Hangup => {}
        }
    }
}

/// Plays a script of inputs through a session in virtual time.
fn run(flows: &Arc<nida_ivr::FlowSet>, flow: &str, script: &[Input]) -> Run {
    run_with(flows, flow, script, Vars::new())
}

/// Like [`run`], with the flow's variables (a notification's).
fn run_with(flows: &Arc<nida_ivr::FlowSet>, flow: &str, script: &[Input], vars: Vars) -> Run {
    let mut now = Instant::now();
    let mut s = Session::new(now, flows.clone(), flow, vars).unwrap();
    let mut played = Vec::new();
    let mut backend_down = false;
    let mut script = script.iter();
    loop {
        drain(&mut s, now, &mut played, backend_down);
        if *s.outcome() != Outcome::Running {
            break;
        }
        match script.next() {
            Some(Input::Keys(k)) => {
                for d in k.chars() {
                    s.handle_digit(now, d);
                    drain(&mut s, now, &mut played, backend_down);
                }
            }
            Some(Input::Silence) => {
                now = s.poll_timeout().unwrap_or(now + Duration::from_secs(10));
                s.handle_timeout(now);
            }
            Some(Input::BackendDown) => backend_down = true,
            None => break,
        }
    }
    Run {
        played,
        outcome: s.outcome().clone(),
        path: s.path().to_vec(),
    }
}

fn keys(k: &str) -> Input {
    Input::Keys(k.into())
}

#[test]
fn every_node_of_every_demo_flow_is_reached_and_every_prompt_exists() {
    let files = prompt_files();
    let catalog = |lang: &str, name: &str| files.contains(&(lang.to_string(), name.to_string()));
    let flows = Arc::new(
        load_path(&repo().join("ivr-flows"), &catalog).unwrap_or_else(|r| panic!("{}", r.render())),
    );
    let mut visited: BTreeSet<String> = BTreeSet::new();
    let mut missing: BTreeSet<String> = BTreeSet::new();
    let mut scripts: Vec<(&str, Vec<Input>)> = Vec::new();
    // Every language, every main-menu choice.
    for lang in 1..=7 {
        let l = lang.to_string();
        scripts.push(("main", vec![keys(&l), keys("0")]));
        scripts.push(("main", vec![keys(&l), keys("2"), keys("9"), keys("0")]));
        for (i, number) in ["20240001", "20240002", "20240003", "20240004", "20240005"]
            .iter()
            .enumerate()
        {
            let after = ["1", "2", "3"][i % 3];
            scripts.push((
                "main",
                vec![
                    keys(&l),
                    keys("1"),
                    keys(number),
                    keys("1"),
                    keys(after),
                    Input::Silence,
                    Input::Silence,
                    Input::Silence,
                ],
            ));
        }
    }
    // Silence everywhere, wrong keys, re-entry, unknown numbers, a failing backend.
    scripts.push(("main", vec![Input::Silence; 12]));
    scripts.push((
        "main",
        vec![
            keys("8"),
            keys("8"),
            keys("8"),
            keys("8"),
            keys("8"),
            keys("8"),
        ],
    ));
    scripts.push((
        "main",
        vec![
            keys("2"),
            keys("1"),
            keys("2"),
            keys("123"),
            keys("2"),
            keys("20240001"),
            keys("2"),
            keys("20240001"),
            keys("1"),
            keys("3"),
            keys("20240009"),
            keys("1"),
            keys("1"),
            keys("20240009"),
            keys("1"),
            keys("0"),
        ],
    ));
    scripts.push((
        "main",
        vec![
            keys("2"),
            keys("1"),
            Input::BackendDown,
            keys("20240001"),
            keys("1"),
        ],
    ));
    scripts.push((
        "main",
        vec![
            keys("2"),
            keys("1"),
            keys("20240009"),
            keys("1"),
            Input::Silence,
            Input::Silence,
            Input::Silence,
        ],
    ));
    scripts.push((
        "main",
        vec![
            keys("2"),
            keys("1"),
            keys("1#"),
            keys("12345678"),
            keys("5"),
            Input::Silence,
            Input::Silence,
        ],
    ));
    // FAQ tree, three levels.
    for path in [
        "21111", "21121", "23", "2112999", "2119", "2129", "2199", "22", "2219", "2229", "2299",
        "2239", "29", "2x", "21x", "211x",
    ] {
        let mut s = vec![keys("2"), keys("2")];
        s.extend(path[1..].chars().map(|c| keys(&c.to_string())));
        s.extend(vec![Input::Silence; 9]);
        scripts.push(("main", s));
    }
    // Police line: every desk, call-back accepted and declined.
    for k in ["1", "2", "3", "4", "0"] {
        for lang in ["1", "2", "3", "4"] {
            scripts.push(("police", vec![keys(lang), keys(k)]));
        }
    }
    scripts.push(("police", vec![keys("2"), keys("5"), keys("1")]));
    scripts.push(("police", vec![keys("2"), keys("5"), keys("2")]));
    scripts.push(("police", vec![keys("2"), keys("5"), Input::Silence]));
    scripts.push(("police", vec![Input::Silence; 8]));
    // Survey: a rating, a wrong key then nothing, nothing at all.
    scripts.push(("survey", vec![keys("5")]));
    scripts.push(("survey", vec![keys("9"), Input::Silence, Input::Silence]));
    scripts.push(("survey", vec![Input::Silence; 3]));

    // Notification calls: a person presses 2 (again) then 1 (agent), or
    // nothing; a machine hears the status once. Each status has a prompt.
    let mut notices = Vec::new();
    for status in [
        "approved",
        "documents_required",
        "in_review",
        "ready_for_collection",
        "rejected",
    ] {
        for (by, script) in [
            ("human", vec![keys("2"), keys("1")]),
            ("human", vec![Input::Silence; 4]),
            ("machine", vec![]),
        ] {
            let vars: Vars = [
                ("status".to_string(), Value::Str(status.into())),
                ("answered_by".to_string(), Value::Str(by.into())),
            ]
            .into_iter()
            .collect();
            notices.push((script, vars));
        }
    }
    let runs = scripts
        .iter()
        .map(|(flow, script)| (*flow, script.clone(), run(&flows, flow, script)))
        .chain(notices.into_iter().map(|(script, vars)| {
            let r = run_with(&flows, "notify_status", &script, vars);
            ("notify_status", script, r)
        }));
    for (flow, script, r) in runs {
        assert!(
            !matches!(r.outcome, Outcome::Failed(_)),
            "{flow} {script:?}: {:?}",
            r.outcome
        );
        visited.extend(r.path.iter().cloned());
        for p in r.played {
            if !files.contains(&(p.lang.clone(), p.name.clone())) {
                missing.insert(format!("{}/{}", p.lang, p.name));
            }
        }
    }
    let mut unvisited = Vec::new();
    for (name, flow) in &flows.flows {
        for node in flow.nodes.keys() {
            if !visited.contains(&format!("{name}/{node}")) {
                unvisited.push(format!("{name}/{node}"));
            }
        }
        // Every leaf (queue, hangup, return) is among the nodes reached.
        assert!(flow
            .nodes
            .values()
            .any(|n| matches!(n.kind, Kind::Queue | Kind::Hangup | Kind::Return)));
    }
    assert!(unvisited.is_empty(), "never reached: {unvisited:?}");
    assert!(
        missing.is_empty(),
        "prompts played but missing: {missing:?}"
    );
}

#[test]
fn status_path_says_the_status_and_the_date_in_the_chosen_language() {
    let flows = Arc::new(load_path(&repo().join("ivr-flows"), &nida_ivr::AnyPrompt).unwrap());
    // French (7), status (1), the number, confirm (1).
    let r = run(
        &flows,
        "main",
        &[keys("7"), keys("1"), keys("20240002"), keys("1")],
    );
    let names: Vec<String> = r
        .played
        .iter()
        .map(|p| format!("{}/{}", p.lang, p.name))
        .collect();
    let from = names
        .iter()
        .position(|n| n == "fr/status_is")
        .expect("status said");
    assert_eq!(
        names[from..from + 9].join(" "),
        "fr/status_is fr/status_in_review fr/updated_on fr/n_15 fr/month_11 fr/n_2 fr/n_1000 fr/n_20 fr/n_6"
    );
    // The read-back before it: you entered 2 0 2 4 0 0 0 2, press 1 or 2.
    let rb = names.iter().position(|n| n == "fr/you_entered").unwrap();
    assert_eq!(names[rb + 1], "fr/digit_2");
    assert_eq!(names[rb + 9], "fr/confirm_or_reenter");
    assert!(r.path.contains(&"status/say_status".to_string()));
}

#[test]
fn menus_retry_then_fail_over_and_queue_carries_skills_and_language() {
    let flows = Arc::new(load_path(&repo().join("ivr-flows"), &nida_ivr::AnyPrompt).unwrap());
    // Arabic, then silence on the main menu three times: to an agent.
    let r = run(
        &flows,
        "main",
        &[keys("1"), Input::Silence, Input::Silence, Input::Silence],
    );
    let no_input = r.played.iter().filter(|p| p.name == "no_input").count();
    assert_eq!(no_input, 2, "two retries with the no-input prompt");
    match r.outcome {
        Outcome::Queued(q) => {
            assert_eq!(q.queue, "visa_general");
            assert_eq!(q.language, "ar");
            assert_eq!(q.skills.get("visa"), Some(&1));
        }
        other => panic!("{other:?}"),
    }
    // Police, Urdu, criminal desk: priority 2.
    let r = run(&flows, "police", &[keys("3"), keys("2")]);
    match r.outcome {
        Outcome::Queued(q) => assert_eq!(
            (q.queue.as_str(), q.language.as_str(), q.priority),
            ("police_criminal", "ur", 2)
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn keys_pressed_during_a_plain_prompt_are_kept_for_the_next_menu() {
    let flows = Arc::new(load_path(&repo().join("ivr-flows"), &nida_ivr::AnyPrompt).unwrap());
    let mut now = Instant::now();
    let mut s = Session::new(now, flows, "main", Vars::new()).unwrap();
    // The welcome prompt is playing: the caller already presses 7 then 1.
    assert!(matches!(s.poll_action(), Some(Action::Play(p)) if p[0].name == "welcome"));
    s.handle_digit(now, '7');
    s.handle_digit(now, '1');
    now += Duration::from_secs(3);
    s.handle_playback_done(now);
    let mut played = Vec::new();
    drain(&mut s, now, &mut played, false);
    let names: Vec<String> = played
        .iter()
        .map(|p| format!("{}/{}", p.lang, p.name))
        .collect();
    // The language menu took 7 (French), the main menu took 1 (status).
    assert!(
        names.contains(&"fr/enter_application_number".to_string()),
        "{names:?}"
    );
    assert!(s.path().contains(&"main/lang_fr".to_string()));
}

#[test]
fn the_survey_keeps_a_rating_from_1_to_5_only() {
    let flows = Arc::new(load_path(&repo().join("ivr-flows"), &nida_ivr::AnyPrompt).unwrap());
    for (key, rating) in [("4", Some("4")), ("0", None), ("7", None)] {
        let now = Instant::now();
        let mut vars = Vars::new();
        vars.insert("language".into(), Value::Str("fr".into()));
        let mut s = Session::new(now, flows.clone(), "survey", vars).unwrap();
        assert_eq!(s.language(), "fr");
        let mut played = Vec::new();
        drain(&mut s, now, &mut played, false);
        s.handle_digit(now, key.chars().next().unwrap());
        drain(&mut s, now, &mut played, false);
        // Wrong keys are asked again once, then the call ends unrated.
        for _ in 0..4 {
            if *s.outcome() != Outcome::Running {
                break;
            }
            let t = s.poll_timeout().unwrap_or(now + Duration::from_secs(10));
            s.handle_timeout(t);
            drain(&mut s, t, &mut played, false);
        }
        assert_eq!(s.outcome(), &Outcome::HungUp, "{key}");
        let got = s.vars().get("rating").map(|v| v.to_string());
        assert_eq!(got.as_deref(), rating, "{key}");
        let thanked = played.iter().any(|p| p.name == "survey_thanks");
        assert_eq!(thanked, rating.is_some(), "{key}");
    }
}
