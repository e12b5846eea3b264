//! The checker's diagnostics: each broken flow is refused with the right
//! message at the right line and column.

use nida_ivr::check::check_sources;
use nida_ivr::AnyPrompt;
use std::path::PathBuf;

const GOOD: &str = "\
flow: t
languages: [en, ar]
start: menu
nodes:
  menu:
    menu:
      prompt: [main_menu]
      choices: { \"1\": info, \"0\": bye }
      on_failure: bye
  info:
    play: [info]
    next: menu
  bye:
    hangup: {}
";

/// Checks `text` and returns the one diagnostic's (line, column, message)
/// and its rendering.
fn diag(text: &str) -> (usize, usize, String, String) {
    let files = vec![(PathBuf::from("flows/t.yaml"), text.to_string())];
    let report = check_sources(&files, &AnyPrompt).expect_err("the flow is refused");
    assert_eq!(report.diagnostics.len(), 1, "{}", report.render());
    let d = &report.diagnostics[0];
    (d.line, d.column, d.message.clone(), report.render())
}

#[test]
fn the_good_flow_passes() {
    let files = vec![(PathBuf::from("t.yaml"), GOOD.to_string())];
    let set = check_sources(&files, &AnyPrompt).unwrap();
    assert_eq!(set.get("t").unwrap().nodes.len(), 3);
}

#[test]
fn unknown_target_with_a_suggestion_and_a_caret() {
    let (line, col, msg, text) = diag(&GOOD.replace("next: menu", "next: mneu"));
    assert_eq!((line, col), (12, 11));
    assert!(
        msg.contains("target `mneu` does not exist (did you mean `menu`?)"),
        "{msg}"
    );
    assert!(text.contains(" --> flows/t.yaml:12:11"), "{text}");
    assert!(
        text.contains("12 |     next: mneu\n   |           ^^^^"),
        "{text}"
    );
}

#[test]
fn unknown_node_kind_is_a_yaml_error_at_its_key() {
    let (line, col, msg, _) = diag(&GOOD.replace("    hangup: {}", "    hang_up: {}"));
    assert_eq!(line, 14);
    assert!(col >= 5, "{col}");
    assert!(msg.contains("hang_up"), "{msg}");
}

#[test]
fn unknown_field() {
    let (line, _, msg, _) = diag(&GOOD.replace(
        "      on_failure: bye",
        "      on_failure: bye\n      retires: 3",
    ));
    assert_eq!(line, 10);
    assert!(msg.contains("retires"), "{msg}");
}

#[test]
fn unreachable_node() {
    let (line, col, msg, _) = diag(&format!("{GOOD}  orphan:\n    goto: menu\n"));
    assert_eq!((line, col), (16, 5));
    assert!(
        msg.contains("node `orphan` cannot be reached from `menu`"),
        "{msg}"
    );
}

#[test]
fn loop_without_input() {
    let text = GOOD.replace("\"1\": info", "\"1\": a")
        + "  a:\n    goto: b\n  b:\n    play: [info]\n    next: a\n";
    let files = vec![(PathBuf::from("t.yaml"), text)];
    let report = check_sources(&files, &AnyPrompt).unwrap_err();
    let all = report.render();
    assert!(
        all.contains("loop that never waits for the caller"),
        "{all}"
    );
}

#[test]
fn missing_prompt_in_one_language() {
    let files = vec![(PathBuf::from("t.yaml"), GOOD.to_string())];
    let only_en_info = |lang: &str, name: &str| !(lang == "ar" && name == "info");
    let report = check_sources(&files, &only_en_info).unwrap_err();
    assert_eq!(report.diagnostics.len(), 1);
    let d = &report.diagnostics[0];
    assert_eq!((d.line, d.column), (11, 12));
    assert_eq!(d.message, "prompt `info` is missing in ar");
}

#[test]
fn bad_pattern_and_bad_condition() {
    let collect = GOOD.replace(
        "  info:\n    play: [info]\n    next: menu\n",
        "  info:\n    collect:\n      prompt: [info]\n      var: n\n      pattern: \"[0-9\"\n      on_failure: bye\n    next: menu\n",
    );
    let (line, col, msg, _) = diag(&collect);
    assert_eq!((line, col), (14, 16));
    assert!(msg.starts_with("bad pattern"), "{msg}");
    let branch = GOOD.replace(
        "  info:\n    play: [info]\n    next: menu\n",
        "  info:\n    branch:\n      - when: \"x ==\"\n        goto: menu\n      - goto: bye\n",
    );
    let (line, _, msg, _) = diag(&branch);
    assert_eq!(line, 12);
    assert!(msg.starts_with("bad condition"), "{msg}");
}

#[test]
fn two_kinds_in_one_node_and_missing_next() {
    let (line, _, msg, _) =
        diag(&GOOD.replace("    play: [info]\n", "    play: [info]\n    goto: bye\n"));
    assert_eq!(line, 11);
    assert!(msg.contains("several kinds (play, goto)"), "{msg}");
    let (_, _, msg, _) = diag(&GOOD.replace("    next: menu\n", ""));
    assert!(msg.contains("needs `next`"), "{msg}");
}

#[test]
fn yaml_syntax_error_has_a_position() {
    let (line, col, _, text) = diag(&GOOD.replace("languages: [en, ar]", "languages: [en, ar"));
    assert!(line >= 2 && col > 0, "{text}");
}

#[test]
fn unknown_sub_flow_and_language() {
    let (_, _, msg, _) = diag(&GOOD.replace("    play: [info]\n", "    call: { flow: nowhere }\n"));
    assert!(msg.contains("flow `nowhere` does not exist"), "{msg}");
    let (line, col, msg, _) = diag(&GOOD.replace("[en, ar]", "[en, xx]"));
    assert_eq!((line, col), (2, 17));
    assert!(msg.contains("unknown language `xx`"), "{msg}");
}

#[test]
fn the_demo_flows_pass_the_checker() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ivr-flows");
    match nida_ivr::load_path(&dir, &AnyPrompt) {
        Ok(set) => {
            let names: Vec<&String> = set.flows.keys().collect();
            assert_eq!(
                names,
                ["faq", "main", "notify_status", "police", "status", "survey"]
            );
            // The queues the daemon must create for these flows.
            assert_eq!(
                set.queues(),
                [
                    "police_certificates",
                    "police_complaints",
                    "police_criminal",
                    "police_general",
                    "police_traffic",
                    "police_transactions",
                    "visa_general",
                    "visa_status"
                ]
            );
        }
        Err(report) => panic!("{}", report.render()),
    }
}

#[test]
fn rendering_shows_yaml_errors_with_a_caret() {
    let (_, _, _, text) = diag(&GOOD.replace("    hangup: {}", "    hang_up: {}"));
    assert!(text.starts_with("error: unknown field `hang_up`"), "{text}");
    assert!(text.contains("flows/t.yaml:14:5\n"), "{text}");
    assert!(
        text.contains("14 |     hang_up: {}\n   |     ^^^^^^^\n"),
        "{text}"
    );
}

#[test]
fn the_committed_json_schema_is_up_to_date() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ivr-flows/flow.schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == nida_ivr::schema(),
        "ivr-flows/flow.schema.json is out of date: run `cargo run -- flow schema > ivr-flows/flow.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
    let node = &schema["$defs"]["NodeDef"];
    assert_eq!(node["additionalProperties"], false);
    for kind in [
        "play", "menu", "collect", "lookup", "branch", "queue", "return", "next",
    ] {
        assert!(
            node["properties"].get(kind).is_some(),
            "{kind} missing in the schema"
        );
    }
}

#[test]
fn lines_ended_by_cr_alone_or_crlf_are_counted_as_yaml_counts_them() {
    // Found by fuzzing: YAML ends a line at a lone CR too, so the
    // position and the line shown under it must count the same way.
    for eol in ["\r", "\r\n"] {
        let text = GOOD.replace("next: menu", "next: mneu").replace('\n', eol);
        let (line, col, _, rendered) = diag(&text);
        assert_eq!((line, col), (12, 11), "{eol:?}");
        assert!(
            rendered.contains("12 |     next: mneu\n   |           ^^^^"),
            "{eol:?}: {rendered}"
        );
    }
}

#[test]
fn open_names_a_calendar_of_the_configuration() {
    let flow = GOOD.replace(
        "  info:\n    play: [info]\n    next: menu\n",
        "  info:\n    branch:\n      - when: \"open('visa_centre') || open('polic')\"\n        goto: menu\n      - goto: bye\n",
    );
    let files = vec![(PathBuf::from("flows/t.yaml"), flow.clone())];
    let known: std::collections::BTreeSet<String> =
        ["visa_centre".to_string(), "police".to_string()].into();
    let report = nida_ivr::check::check_sources_with(&files, &AnyPrompt, Some(&known))
        .expect_err("an unknown calendar is refused");
    assert_eq!(report.diagnostics.len(), 1, "{}", report.render());
    let d = &report.diagnostics[0];
    assert_eq!((d.line, d.column), (12, 15));
    assert_eq!(
        d.message,
        "unknown calendar `polic` (the configuration has: police, visa_centre)"
    );
    // Without the configuration's list any name passes; a name that is
    // not in quotes never does.
    assert!(check_sources(&files, &AnyPrompt).is_ok());
    let (line, _, msg, _) = diag(&flow.replace("open('polic')", "open(polic)"));
    assert_eq!(line, 12);
    assert_eq!(msg, "`open` takes a calendar's name in quotes");
}
