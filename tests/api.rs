//! The admin API end to end: token checks, every documented path answering,
//! agent state changes, the agent page's log-in and its limits, a real call
//! (`nida call`) seen waiting in the live calls, queues, metrics and event
//! stream, then its record in the store, the webhook receiver getting its
//! events after a failed first try, and a flow reload refused with the
//! file's line and column while the old flows keep serving; agents added
//! with `nida agent` served after a restart.

use crate::common;

use common::{wait, Nida, TOKEN};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One HTTP request; returns the status and the body.
fn request(
    nida: &Nida,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    common::http(nida.http, method, path, token, body)
}

fn get(nida: &Nida, path: &str) -> serde_json::Value {
    let (status, body) = request(nida, "GET", path, Some(TOKEN), "");
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// Logs in on the agent page's API; the session's answer.
fn agent_login(nida: &Nida, user: &str, password: &str) -> serde_json::Value {
    let body = serde_json::json!({ "user": user, "password": password }).to_string();
    let (code, answer) = request(nida, "POST", "/api/agent-login", None, &body);
    assert_eq!(code, 200, "{answer}");
    serde_json::from_str(&answer).unwrap()
}

/// A webhook receiver that answers 500 to the first POST and 200 after.
fn receiver() -> (u16, Arc<Mutex<Vec<serde_json::Value>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for (n, conn) in l.incoming().enumerate() {
            let Ok(mut c) = conn else { continue };
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut len = 0;
            let mut auth = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                // Header names are case-insensitive (RFC 9110): keep the value.
                if lower.starts_with("authorization:") {
                    auth = line["authorization:".len()..].trim().to_string();
                }
            }
            let mut body = vec![0u8; len];
            let _ = r.read_exact(&mut body);
            let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            v["_auth"] = auth.into();
            let code = if n == 0 {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            v["_answered"] = code.into();
            sink.lock().unwrap().push(v);
            let _ = write!(
                c,
                "HTTP/1.1 {code}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (port, got)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn the_admin_api_serves_live_state_records_metrics_events_and_webhooks() {
    let (hook_port, hooks) = receiver();
    let nobody = common::ports(2);
    let nida = Nida::start_with(|dir| {
        copy_dir(&common::repo().join("ivr-flows"), &dir.join("flows"));
        format!(
            "data_dir = \"{data}\"\nflows_dir = \"{flows}\"\n\
             [[agents]]\nid = 1\nuser = \"1001\"\npassword = \"pw-one\"\nname = \"Amina\"\n\
             skills = {{ visa = 5 }}\nlanguages = [\"en\", \"ar\"]\ncontact = \"sip:1001@127.0.0.1:{nobody}\"\n\
             [[agents]]\nid = 2\nuser = \"1002\"\npassword = \"pw-two\"\nname = \"Bilal\"\n\
             skills = {{ police = 5 }}\nlanguages = [\"ur\"]\n\
             [queues.visa_general]\nannounce_seconds = 0\n\
             [[webhooks]]\nurl = \"http://127.0.0.1:{hook_port}/hook\"\nevents = [\"queued\", \"ended\"]\n\
             token = \"hook-secret\"\nbackoff_ms = 200\n",
            data = dir.join("data").display(),
            flows = dir.join("flows").display(),
        )
    });

    // Tokens.
    assert_eq!(request(&nida, "GET", "/health", None, "").0, 200);
    assert_eq!(request(&nida, "GET", "/api/status", None, "").0, 401);
    assert_eq!(
        request(&nida, "GET", "/api/status", Some("wrong-token-123"), "").0,
        401
    );
    assert_eq!(request(&nida, "GET", "/metrics", None, "").0, 401);
    let status = get(&nida, "/api/status");
    assert!(status["calls"].is_u64(), "{status}");

    // Every documented path without parameters answers, and only with the
    // token unless documented as public.
    let doc = get(&nida, "/api/openapi.json");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "{}", paths.len());
    for (path, ops) in paths {
        if path.contains('{') || ops.get("get").is_none() || path == "/api/events" {
            continue;
        }
        let public = ops["get"]["security"] == serde_json::json!([]);
        let (code, _) = request(&nida, "GET", path, Some(TOKEN), "");
        assert_eq!(code, 200, "{path}");
        let (code, _) = request(&nida, "GET", path, None, "");
        assert_eq!(
            code,
            if public { 200 } else { 401 },
            "{path} without a token"
        );
    }

    // Queues and agents.
    let queues = get(&nida, "/api/queues");
    let names: Vec<&str> = queues
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"visa_general"), "{names:?}");
    assert!(wait(Duration::from_secs(5), || get(&nida, "/api/agents")
        [0]["state"]
        == "available"));
    let (code, _) = request(
        &nida,
        "POST",
        "/api/agents/1/not_ready?reason=lunch%20break",
        Some(TOKEN),
        "",
    );
    assert_eq!(code, 202);
    assert_eq!(
        request(&nida, "POST", "/api/agents/9/ready", Some(TOKEN), "").0,
        404
    );
    assert_eq!(
        request(&nida, "POST", "/api/agents/1/dance", Some(TOKEN), "").0,
        404
    );
    assert!(wait(Duration::from_secs(5), || {
        let a = get(&nida, "/api/agents/1");
        a["agent"]["state"] == "not_ready" && a["agent"]["reason"] == "lunch break"
    }));

    // The agent page's log-in: the same answer for a wrong user and a
    // wrong password; a session reaches only its own agent.
    let (code, wrong_pw) = request(
        &nida,
        "POST",
        "/api/agent-login",
        None,
        r#"{"user":"1001","password":"nope"}"#,
    );
    assert_eq!(code, 401);
    let (code, wrong_user) = request(
        &nida,
        "POST",
        "/api/agent-login",
        None,
        r#"{"user":"9999","password":"pw-one"}"#,
    );
    assert_eq!(code, 401);
    assert_eq!(wrong_pw, wrong_user);
    let session = agent_login(&nida, "1001", "pw-one");
    let agent_token = session["token"].as_str().unwrap().to_string();
    assert_eq!(session["agent"], 1);
    assert_eq!(
        request(&nida, "GET", "/api/agents/1", Some(&agent_token), "").0,
        200
    );
    assert_eq!(
        request(&nida, "GET", "/api/agents", Some(&agent_token), "").0,
        403
    );
    assert_eq!(
        request(&nida, "GET", "/api/records", Some(&agent_token), "").0,
        403
    );
    assert_eq!(
        request(&nida, "GET", "/metrics", Some(&agent_token), "").0,
        403
    );

    // The event stream: the token never goes in a URL; a ticket does, once.
    assert_eq!(
        request(
            &nida,
            "GET",
            &format!("/api/events?token={TOKEN}"),
            None,
            ""
        )
        .0,
        401
    );
    let (status, body) = request(&nida, "POST", "/api/events/ticket", Some(TOKEN), "");
    assert_eq!(status, 200, "{body}");
    let ticket = serde_json::from_str::<serde_json::Value>(&body).unwrap()["ticket"]
        .as_str()
        .unwrap()
        .to_string();
    let events = common::events(nida.http, &format!("/api/events?ticket={ticket}"), None);

    // A caller asks for an agent (English, then 0) and gives up waiting.
    let caller = Command::new(env!("CARGO_BIN_EXE_nida"))
        .args(["call", &format!("sip:8005@{}", nida.sip)])
        .args([
            "--digits",
            "2,0",
            "--barge-in-ms",
            "1500",
            "--max-seconds",
            "12",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait(Duration::from_secs(15), || {
            get(&nida, "/api/calls")
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["state"] == "waiting" && c["info"]["queue"] == "visa_general")
        }),
        "{}",
        nida.log()
    );
    let tile = |nida: &Nida| {
        get(nida, "/api/queues")
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["name"] == "visa_general")
            .cloned()
            .unwrap()
    };
    assert_eq!(tile(&nida)["waiting"], 1);
    // Agent 2 has no visa skill: the visa queue's tile counts agent 1 only.
    assert_eq!(tile(&nida)["agents"], serde_json::json!({ "not_ready": 1 }));
    let (_, metrics) = request(&nida, "GET", "/metrics", Some(TOKEN), "");
    assert!(
        metrics.contains("nida_queue_waiting{queue=\"visa_general\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nida_agents{state=\"not_ready\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nida_sip_responses_total{code=\"200\",direction=\"sent\"}"),
        "{metrics}"
    );
    let out = caller.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Its record, the figures and the events.
    assert!(wait(Duration::from_secs(10), || get(&nida, "/api/records")
        .as_array()
        .unwrap()
        .len()
        == 1));
    let rec = &get(&nida, "/api/records?queue=visa_general")[0];
    assert_eq!(rec["outcome"], "abandoned", "{rec}");
    assert_eq!(
        get(&nida, "/api/records?queue=police")
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        get(&nida, "/api/records?from=2000-01-01&to=2000-01-02")
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        request(&nida, "GET", "/api/records?from=soon", Some(TOKEN), "").0,
        400
    );
    let stats = get(&nida, "/api/stats");
    let hour = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["queue"] == "visa_general")
        .unwrap();
    assert_eq!(
        (hour["offered"].as_u64(), hour["abandoned"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(wait(Duration::from_secs(3), || tile(&nida)["waiting"] == 0));
    assert_eq!(tile(&nida)["abandoned"], 1);
    let (_, metrics) = request(&nida, "GET", "/metrics", Some(TOKEN), "");
    assert!(
        metrics.contains("nida_calls_offered_total{queue=\"visa_general\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nida_calls_abandoned_total{queue=\"visa_general\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nida_rtp_packets_received_total "),
        "{metrics}"
    );
    let kinds: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        kinds.contains(&"queued".to_string()) && kinds.contains(&"ended".to_string()),
        "{kinds:?}"
    );

    // Webhooks: the first POST failed and was retried; then the record.
    assert!(
        wait(Duration::from_secs(10), || hooks
            .lock()
            .unwrap()
            .iter()
            .any(|h| h["event"] == "ended")),
        "{:?}\n{}",
        hooks.lock().unwrap(),
        nida.log()
    );
    let got = hooks.lock().unwrap().clone();
    assert_eq!(got[0]["event"], "queued");
    assert_eq!(got[0]["_answered"], "500 Internal Server Error");
    assert_eq!(
        got[1]["event"], "queued",
        "the same event again after the failure"
    );
    assert_eq!(got[1]["call_id"], got[0]["call_id"]);
    assert_eq!(got[0]["_auth"], "Bearer hook-secret");
    assert!(
        got.iter()
            .all(|h| h["event"] == "queued" || h["event"] == "ended"),
        "{got:?}"
    );
    let ended = got.iter().find(|h| h["event"] == "ended").unwrap();
    assert_eq!(ended["record"]["outcome"], "abandoned");
    assert!(
        nida.wait_log("webhook failed: retrying", Duration::from_secs(5)),
        "{}",
        nida.log()
    );

    // Flow reload: good, broken (refused with file:line:column), good again.
    let reload = |nida: &Nida| request(nida, "POST", "/api/flows/reload", Some(TOKEN), "");
    let (code, body) = reload(&nida);
    assert_eq!(code, 200, "{body}");
    let main = nida.dir.join("flows/main.yaml");
    let good = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, good.replacen("start:", "start: [", 1)).unwrap();
    let (code, body) = reload(&nida);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("main.yaml:"), "{body}");
    std::fs::write(&main, &good).unwrap();
    let (code, body) = reload(&nida);
    assert_eq!(code, 200, "{body}");

    // Recordings: none yet, and no way out of their folder.
    assert_eq!(get(&nida, "/api/recordings"), serde_json::json!([]));
    let (code, _) = request(
        &nida,
        "GET",
        "/api/recordings/..%2F..%2F/nida.toml",
        Some(TOKEN),
        "",
    );
    assert!(code == 400 || code == 404, "{code}");
    let (code, _) = request(
        &nida,
        "GET",
        "/api/recordings/2026-01-01/nope.wav",
        Some(TOKEN),
        "",
    );
    assert_eq!(code, 404);
}

#[test]
fn nida_report_reads_the_store_as_csv_and_html() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let mut store = nida_store::Store::open_dir(&data).unwrap();
    let day = 1_795_305_600; // 2026-11-22
    let rec = |queue: &str, at: i64, wait: Option<f64>, outcome: &str, rating: Option<u8>| {
        nida_store::CallRecord {
            call_id: format!("{queue}{at}"),
            queue: queue.into(),
            queued_at: Some(at),
            ended_at: at + 100,
            outcome: outcome.into(),
            agent: wait.map(|_| 1),
            wait_seconds: wait,
            talk_seconds: wait.map(|_| 120.0),
            service_level_seconds: 20,
            rating,
            ..Default::default()
        }
    };
    for r in [
        rec(
            "visa_general",
            day + 9 * 3600,
            Some(12.0),
            "answered",
            Some(5),
        ),
        rec("visa_general", day + 9 * 3600 + 60, None, "abandoned", None),
        rec("police", day + 10 * 3600, Some(40.0), "answered", Some(1)),
        rec("police", day - 3600, Some(1.0), "answered", None), // the day before
    ] {
        store.insert_call(&r).unwrap();
    }
    store
        .add_wrapup(&nida_store::Wrapup {
            call_id: format!("visa_general{}", day + 9 * 3600),
            agent: 1,
            queue: "visa_general".into(),
            codes: vec!["visa status given".into()],
            at: day + 9 * 3600 + 200,
        })
        .unwrap();
    drop(store);
    let cfg = dir.join("nida.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}\"\n[[agents]]\nid = 1\nuser = \"1001\"\npassword = \"pw\"\nname = \"Amina\"\nlanguages = [\"ar\"]\n",
            data.display()
        ),
    )
    .unwrap();
    let report = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_nida"))
            .arg("--config")
            .arg(&cfg)
            .arg("report")
            .args(args)
            .output()
            .unwrap()
    };
    let out = report(&["--from", "2026-11-22", "--to", "2026-11-23"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "queue,period,offered,answered,abandoned,abandon_rate_percent,service_level_percent,asa_seconds,aht_seconds,satisfaction,rated",
            "police,2026-11-22,1,1,0,0.0,0.0,40.0,120.0,1.0,1",
            "visa_general,2026-11-22,2,1,1,50.0,50.0,12.0,120.0,5.0,1",
        ]
    );
    assert!(csv.contains("\n1,Amina,2,2,3.0,1,1,0,0,0,1\n"), "{csv}");
    assert!(
        csv.contains("\nqueue,wrapup_code,agent,count\nvisa_general,visa status given,1,1\n"),
        "{csv}"
    );
    let out = report(&[
        "--from",
        "2026-11-22",
        "--to",
        "2026-11-23",
        "--queue",
        "police",
        "--by",
        "hour",
    ]);
    let csv = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        csv.lines().nth(1),
        Some("police,2026-11-22T10:00Z,1,1,0,0.0,0.0,40.0,120.0,1.0,1")
    );
    assert!(!csv.contains("visa_general"));
    let page = dir.join("report.html");
    let out = report(&[
        "--from",
        "2026-11-22",
        "--to",
        "2026-11-23",
        "--format",
        "html",
        "--by",
        "hour",
        "--output",
        page.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("<section class=\"queue\"").count(), 2);
    assert!(html.contains("<svg class=\"plot\""), "{html}");
    assert!(html.contains("Amina"));
    for bad in [
        vec!["--from", "monday", "--to", "2026-11-23"],
        vec!["--from", "2026-11-23", "--to", "2026-11-22"],
        vec![
            "--from",
            "2026-11-22",
            "--to",
            "2026-11-23",
            "--format",
            "pdf",
        ],
    ] {
        let out = report(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("nida report: "));
    }
}

#[test]
fn an_agent_added_with_nida_agent_is_served_after_a_restart() {
    let nida = Nida::start_with(|dir| format!("data_dir = \"{}\"\n", dir.join("data").display()));
    let cfg = nida.dir.join("nida.toml");
    let agent = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_nida"))
            .arg("--config")
            .arg(&cfg)
            .arg("agent")
            .args(args)
            .output()
            .unwrap()
    };
    let out = agent(&[
        "add",
        "--id",
        "7",
        "--user",
        "1007",
        "--password",
        "pw-seven",
        "--name",
        "Nadia",
        "--skill",
        "visa=6",
        "--language",
        "ar",
        "--language",
        "fr",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("next start"));
    // Bad input is refused with the reason and stores nothing.
    for (bad, why) in [
        (
            vec![
                "add",
                "--id",
                "8",
                "--user",
                "1008",
                "--password",
                "x",
                "--skill",
                "visa=11",
                "--language",
                "ar",
            ],
            "not 1 to 10",
        ),
        (
            vec![
                "add",
                "--id",
                "8",
                "--user",
                "1007",
                "--password",
                "x",
                "--language",
                "ar",
            ],
            "already belongs to agent 7",
        ),
        (vec!["remove", "--id", "99"], "no stored agent 99"),
    ] {
        let out = agent(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("nida agent: ") && err.contains(why),
            "{err}"
        );
    }
    let list = String::from_utf8(agent(&["list"]).stdout).unwrap();
    assert_eq!(
        list,
        "id\tuser\tname\tskills\tlanguages\tcontact\n7\t1007\tNadia\tvisa=6\tar,fr\t\n"
    );
    assert!(!list.contains("pw-seven"));

    // After a restart the agent is known: listed, and able to log in to
    // the agent page with the stored password.
    assert_eq!(get(&nida, "/api/agents"), serde_json::json!([]));
    let nida = nida.kill_and_restart();
    let agents = get(&nida, "/api/agents");
    assert_eq!(agents[0]["id"], 7);
    assert_eq!(agents[0]["skills"], serde_json::json!({ "visa": 6 }));
    agent_login(&nida, "1007", "pw-seven");
    let out = agent(&["remove", "--id", "7"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(agent(&["list"]).stdout).unwrap(),
        "id\tuser\tname\tskills\tlanguages\tcontact\n"
    );
}

#[test]
fn a_supervisor_added_with_nida_supervisor_registers_after_a_restart() {
    let nida = Nida::start_with(|dir| {
        format!(
            "data_dir = \"{}\"\n[[agents]]\nid = 1\nuser = \"1001\"\npassword = \"pw-one\"\nlanguages = [\"en\"]\n",
            dir.join("data").display()
        )
    });
    let cfg = nida.dir.join("nida.toml");
    let supervisor = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_nida"))
            .arg("--config")
            .arg(&cfg)
            .arg("supervisor")
            .args(args)
            .output()
            .unwrap()
    };
    let out = supervisor(&[
        "add",
        "--user",
        "sup7",
        "--password",
        "pw-sup",
        "--name",
        "Mariam",
        "--queue",
        "visa_general",
        "--agent",
        "1",
        "--agent",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (bad, why) in [
        (
            vec!["add", "--user", "1001", "--password", "x", "--queue", "*"],
            "belongs to an agent",
        ),
        (
            vec!["add", "--user", "s", "--password", "", "--queue", "*"],
            "may not be empty",
        ),
        (
            vec![
                "add",
                "--user",
                "s",
                "--password",
                "x",
                "--queue",
                "*",
                "--contact",
                "tel:1",
            ],
            "sip:user@ip:port",
        ),
        (vec!["remove", "--user", "nobody"], "no stored supervisor"),
    ] {
        let out = supervisor(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("nida supervisor: ") && err.contains(why),
            "{err}"
        );
    }
    let list = String::from_utf8(supervisor(&["list"]).stdout).unwrap();
    assert_eq!(
        list,
        "user\tname\tqueues\tagents\tcontact\nsup7\tMariam\tvisa_general\t1,2\t\n"
    );
    assert!(!list.contains("pw-sup"));
    // Known after a restart, without their secret, and their phone
    // registers with the stored password (kept as HA1s).
    let nida = nida.kill_and_restart();
    assert_eq!(
        get(&nida, "/api/supervisors"),
        serde_json::json!([{ "user": "sup7", "name": "Mariam", "queues": ["visa_general"], "agents": [1, 2] }])
    );
    let phone = crate::agents::Baresip::start(nida.sip, "sup7", "pw-sup", true);
    assert!(
        nida.wait_log("supervisor registered user=sup7", Duration::from_secs(10)),
        "{}\n{}",
        nida.log(),
        phone.log()
    );
    assert!(supervisor(&["remove", "--user", "sup7"]).status.success());
}

/// An agent's wrap-up codes through their page's session: only the
/// queue's codes are taken, they are stored before the answer, and they
/// are counted per agent and queue; another agent's path stays closed.
#[test]
fn an_agent_gives_wrap_up_codes_from_the_queues_list() {
    let nida = Nida::start(
        "[[agents]]\nid = 1\nuser = \"1001\"\npassword = \"pw-one\"\nlanguages = [\"en\"]\n\
         [queues.visa_general]\nwrapup_codes = [\"visa status given\", \"needs follow-up\"]\n",
    );
    let token = agent_login(&nida, "1001", "pw-one")["token"]
        .as_str()
        .unwrap()
        .to_string();
    let agent = get(&nida, "/api/agents/1");
    assert!(agent.get("agent").is_some());
    let (_, page) = request(&nida, "GET", "/api/agents/1", Some(&token), "");
    assert!(
        page.contains(
            "\"wrapup_codes\":{\"visa_general\":[\"visa status given\",\"needs follow-up\"]}"
        ),
        "{page}"
    );
    let wrap = |codes: &str| {
        request(
            &nida,
            "POST",
            "/api/agents/1/wrapup",
            Some(&token),
            &format!(r#"{{"call_id":"c-1","queue":"visa_general","codes":{codes}}}"#),
        )
    };
    let (code, body) = wrap(r#"["made up"]"#);
    assert_eq!(code, 400, "{body}");
    let (code, body) = wrap(r#"["visa status given","needs follow-up"]"#);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        request(&nida, "POST", "/api/agents/2/wrapup", Some(&token), "{}").0,
        403,
        "an agent's session reaches only their own paths"
    );
    let counts = get(&nida, "/api/wrapups");
    let counts = counts.as_array().unwrap();
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!(counts
        .iter()
        .all(|c| c["agent"] == 1 && c["queue"] == "visa_general" && c["count"] == 1));
}
