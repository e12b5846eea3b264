//! The ops engineer's flow tools and the daemon's handling of flows, run as
//! the real binary: `nida flow check|simulate|graph`, refusing to start on
//! broken flows, lookups against a real local HTTP server, and hot reload
//! while calls are in progress (sipp calls the running daemon).

use crate::common;

use common::{sipp, Nida};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn nida(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nida"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

fn flows() -> String {
    common::repo().join("ivr-flows").display().to_string()
}

/// A private copy of the demo flows to break or change (removed when
/// dropped).
fn copy_flows(tag: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("nida-flows-{tag}-"))
        .tempdir()
        .unwrap();
    for f in ["main.yaml", "status.yaml", "faq.yaml", "police.yaml"] {
        std::fs::copy(common::repo().join("ivr-flows").join(f), dir.path().join(f)).unwrap();
    }
    dir
}

fn edit(path: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, s.replace(from, to)).unwrap();
}

#[test]
fn check_accepts_the_demo_flows_and_rejects_a_typo_with_its_position() {
    let o = nida(&["flow", "check", &flows()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        out.contains("ok: 6 flows (faq, main, notify_status, police, status, survey)"),
        "{out}"
    );

    let tmp = copy_flows("typo");
    let dir = tmp.path();
    edit(
        &dir.join("status.yaml"),
        "    next: say_status",
        "    next: say_statsu",
    );
    let o = nida(&["flow", "check", &dir.display().to_string()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("error: target `say_statsu` does not exist (did you mean `say_status`?)"),
        "{err}"
    );
    assert!(err.contains("status.yaml:30:11"), "{err}");
    assert!(
        err.contains("30 |     next: say_statsu\n   |           ^^^^^^^^^^"),
        "{err}"
    );
}

#[test]
fn simulate_runs_the_status_path_and_prints_the_final_action() {
    let main = common::repo()
        .join("ivr-flows/main.yaml")
        .display()
        .to_string();
    let o = nida(&["flow", "simulate", &main, "--digits", "7,1,20240004,1,1"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.contains("▶ fr/status_is fr/status_rejected fr/updated_on fr/n_30 fr/month_9 fr/n_2 fr/n_1000 fr/n_20 fr/n_6"), "{out}");
    assert!(
        out.contains("result: queue visa_status (skills visa>=3; language fr; priority 1)"),
        "{out}"
    );
    // --lang starts in a language; a fixture answers the lookups.
    let tmp = tempfile::tempdir().unwrap();
    let fixture = tmp.path().join("fixture.json");
    std::fs::write(
        &fixture,
        r#"{"11112222": {"status": "approved", "updated": "2026-01-01"}}"#,
    )
    .unwrap();
    let status = common::repo()
        .join("ivr-flows/status.yaml")
        .display()
        .to_string();
    let o = nida(&[
        "flow",
        "simulate",
        &status,
        "--lang",
        "en",
        "--digits",
        "11112222,1,2",
        "--lookup-fixture",
        &fixture.display().to_string(),
    ]);
    let (out, _) = text(&o);
    assert!(out.contains("▶ en/status_is en/status_approved en/updated_on en/month_1 en/n_1 en/n_2 en/n_1000 en/n_20 en/n_6"), "{out}");
    assert!(
        out.contains("result: hangup"),
        "return from the top flow ends the call: {out}"
    );
}

#[test]
fn simulate_is_interactive_without_digits() {
    use std::io::Write as _;
    let police = common::repo()
        .join("ivr-flows/police.yaml")
        .display()
        .to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nida"))
        .args(["flow", "simulate", &police])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // English, then silence (an empty line), then the complaints desk and
    // accepting the call-back.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"2\n\n5\n1\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (out, err) = text(&out);
    assert!(err.contains("keys (empty line: silence)>"), "{err}");
    assert!(
        out.contains("▶ en/police_menu\n  … silence\n▶ en/no_input en/police_menu"),
        "{out}"
    );
    assert!(
        out.contains("☎ call-back requested in police_complaints"),
        "{out}"
    );
    assert!(out.contains("▶ en/callback_thanks"), "{out}");
    assert!(out.contains("result: hangup"), "{out}");
}

#[test]
fn graph_draws_mermaid_and_dot() {
    let police = common::repo()
        .join("ivr-flows/police.yaml")
        .display()
        .to_string();
    let (out, _) = text(&nida(&["flow", "graph", &police, "--format", "mermaid"]));
    assert!(out.starts_with("flowchart TD\n"), "{out}");
    assert!(out.contains("police_menu -->|2| criminal"), "{out}");
    assert!(
        out.contains("complaints -->|accept| callback_thanks"),
        "{out}"
    );
    let (out, _) = text(&nida(&["flow", "graph", &police, "--format", "dot"]));
    assert!(out.starts_with("digraph \"police\" {"), "{out}");
    assert!(
        out.contains("\"police_menu\" -> \"criminal\" [label=\"2\"];"),
        "{out}"
    );
    let o = nida(&["flow", "graph", &police, "--format", "png"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn nida_refuses_to_start_on_invalid_flows() {
    let tmp = copy_flows("refuse");
    let dir = tmp.path();
    edit(
        &dir.join("faq.yaml"),
        "play: [tourist_info]",
        "play: [tourist_infos]",
    );
    let cfg = dir.join("nida.toml");
    std::fs::write(
        &cfg,
        format!(
            "sip_addr = \"127.0.0.1:{}\"\nflows_dir = \"{}\"\n",
            common::ports(2),
            dir.display()
        ),
    )
    .unwrap();
    let o = nida(&["--config", &cfg.display().to_string()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("prompt `tourist_infos` is missing in ar, en, hi, ur, fa, fil, fr"),
        "{err}"
    );
    assert!(err.contains("invalid: not starting"), "{err}");
}

/// A real HTTP server on loopback: GET serves `applications/<n>.json` files,
/// POST answers `{"number": ...}` from the same files.
fn http_backend(port: u16, dir: &Path) -> Child {
    let script = r#"
import http.server, json, os, sys
root = sys.argv[2]
class H(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
        path = os.path.join(root, 'applications', body.get('number', '') + '.json')
        if not os.path.exists(path):
            self.send_response(404); self.end_headers(); return
        data = open(path, 'rb').read()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers(); self.wfile.write(data)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
"#;
    let mut child = Command::new("python3")
        .args(["-c", script, &port.to_string(), &dir.display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs the test HTTP server");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the test HTTP server did not start");
}

#[test]
fn lookups_go_to_a_real_http_server_by_get_and_post() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("applications")).unwrap();
    std::fs::write(
        dir.join("applications/30300303.json"),
        r#"{"status": "ready_for_collection", "updated": "2026-11-20", "office": "Al Jafiliya"}"#,
    )
    .unwrap();
    let port = common::ports(2);
    let mut server = http_backend(port, dir);
    let status = common::repo()
        .join("ivr-flows/status.yaml")
        .display()
        .to_string();
    for (method, url) in [
        (
            "GET",
            format!("http://127.0.0.1:{port}/applications/{{number}}.json"),
        ),
        ("POST", format!("http://127.0.0.1:{port}/lookup")),
    ] {
        let cfg = dir.join(format!("{method}.toml"));
        std::fs::write(
            &cfg,
            format!("[lookups.applications]\nurl = \"{url}\"\nmethod = \"{method}\"\n"),
        )
        .unwrap();
        let c = cfg.display().to_string();
        let o = nida(&[
            "--config",
            &c,
            "flow",
            "simulate",
            &status,
            "--lang",
            "ur",
            "--digits",
            "30300303,1,2",
        ]);
        let (out, err) = text(&o);
        assert!(
            out.contains(
                "▶ ur/status_is ur/status_ready_for_collection ur/updated_on ur/n_20 ur/month_11"
            ),
            "{method}: {out}{err}"
        );
        let o = nida(&[
            "--config",
            &c,
            "flow",
            "simulate",
            &status,
            "--lang",
            "ur",
            "--digits",
            "30300399,1,0",
        ]);
        let (out, _) = text(&o);
        assert!(out.contains("-> NotFound"), "{method}: {out}");
        assert!(
            out.contains("▶ ur/application_not_found"),
            "{method}: {out}"
        );
    }
    // A backend that is down: the error branch.
    let _ = server.kill();
    let _ = server.wait();
    let cfg = dir.join("down.toml");
    std::fs::write(
        &cfg,
        format!("[lookups.applications]\nurl = \"http://127.0.0.1:{port}/x/{{number}}\"\n"),
    )
    .unwrap();
    let o = nida(&[
        "--config",
        &cfg.display().to_string(),
        "flow",
        "simulate",
        &status,
        "--digits",
        "30300303,1",
    ]);
    let (out, _) = text(&o);
    assert!(out.contains("-> Error("), "{out}");
    assert!(out.contains("▶ ar/lookup_failed"), "{out}");
}

#[test]
fn hot_reload_serves_new_calls_and_keeps_calls_in_progress_on_their_version() {
    let tmp = copy_flows("reload");
    let dir = tmp.path();
    let nida = Nida::start(&format!("flows_dir = \"{}\"", dir.display()));
    // Call A on the old version, held for four seconds.
    let sip = nida.sip;
    let rtp_a = common::media_ports();
    let a = std::thread::spawn(move || sipp(sip, "uac_basic.xml", rtp_a, &["-d", "4000"]));
    assert!(
        nida.wait_log("running flow", Duration::from_secs(5)),
        "{}",
        nida.log()
    );

    // A broken change is refused and the old flows keep serving.
    edit(
        &dir.join("police.yaml"),
        "    next: choose_language",
        "    next: nowhere",
    );
    assert!(
        nida.wait_log("reload refused", Duration::from_secs(3)),
        "{}",
        nida.log()
    );
    assert!(nida.wait_log("target `nowhere` does not exist", Duration::from_secs(5)));
    // A valid change (the welcome node renamed) is taken within a second.
    edit(
        &dir.join("police.yaml"),
        "    next: nowhere",
        "    next: choose_language",
    );
    edit(
        &dir.join("police.yaml"),
        "start: welcome",
        "start: greeting",
    );
    edit(
        &dir.join("police.yaml"),
        "  welcome:\n    play: [police_welcome]",
        "  greeting:\n    play: [police_welcome]",
    );
    assert!(
        nida.wait_log("flows reloaded", Duration::from_secs(3)),
        "{}",
        nida.log()
    );

    // Call B runs the new version.
    let run = sipp(
        nida.sip,
        "uac_basic.xml",
        common::media_ports(),
        &["-d", "500"],
    );
    assert!(run.ok, "{}", run.output);
    assert!(
        nida.wait_log("path=police/greeting", Duration::from_secs(3)),
        "{}",
        nida.log()
    );
    // Call A ends on the version it started with.
    let run = a.join().unwrap();
    assert!(run.ok, "{}", run.output);
    assert!(
        nida.wait_log("path=police/welcome", Duration::from_secs(3)),
        "{}",
        nida.log()
    );

    // SIGHUP reloads too.
    let pid = nida.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    assert!(
        nida.wait_log("why=SIGHUP", Duration::from_secs(3)),
        "{}",
        nida.log()
    );
}

/// `open("desk")` against the configuration's calendars: `nida flow
/// simulate --at` shows the open and the holiday path, and `nida flow
/// check` refuses a calendar the configuration does not have, at its
/// place.
#[test]
fn simulate_reads_the_calendars_at_the_given_time_and_check_knows_them() {
    let tmp = tempfile::Builder::new()
        .prefix("nida-hours-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let flow = dir.join("hours.yaml");
    std::fs::write(
        &flow,
        "flow: hours\nlanguages: [en]\nstart: check\nnodes:\n  check:\n    branch:\n\
         \x20     - when: \"open('desk')\"\n        goto: agent\n      - goto: closed\n\
         \x20 agent:\n    queue: { name: visa_general }\n\
         \x20 closed:\n    hangup: { prompt: [queue_closed] }\n",
    )
    .unwrap();
    let cfg = dir.join("nida.toml");
    std::fs::write(
        &cfg,
        format!(
            "prompts_dir = \"{}\"\nflows_dir = \"{}\"\n\
             [calendars.desk]\ntime_zone = \"Asia/Dubai\"\nweek = {{ fri = \"09:00-17:00\" }}\n\
             [[calendars.desk.dates]]\ndate = \"2027-01-15\"\nclosed = true\n",
            common::repo().join("prompts").display(),
            dir.display()
        ),
    )
    .unwrap();
    let simulate = |at: &str| {
        text(&nida(&[
            "--config",
            &cfg.display().to_string(),
            "flow",
            "simulate",
            &flow.display().to_string(),
            "--digits",
            ".",
            "--at",
            at,
        ]))
        .0
    };
    // Friday 12:00 in Dubai: open; the Friday before, a holiday: closed.
    let open = simulate("2027-01-22T08:00");
    assert!(open.contains("result: queue visa_general"), "{open}");
    let holiday = simulate("2027-01-15T08:00");
    assert!(holiday.contains("en/queue_closed"), "{holiday}");
    assert!(holiday.contains("result: hangup"), "{holiday}");
    // 17:00 in Dubai is 13:00 UTC.
    assert!(simulate("2027-01-22T13:00").contains("result: hangup"));
    edit(&flow, "open('desk')", "open('dsek')");
    let o = nida(&[
        "--config",
        &cfg.display().to_string(),
        "flow",
        "check",
        &flow.display().to_string(),
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("unknown calendar `dsek` (the configuration has: desk)"),
        "{err}"
    );
    assert!(err.contains("hours.yaml:7:"), "{err}");
}
