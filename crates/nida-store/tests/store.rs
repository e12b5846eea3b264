//! The store against a real SQLite file: records and survey results
//! written and read back, call-back lifecycle, agents, supervisors, migrations from an
//! older file, refusal of a newer one, and the KPI figures.

use nida_store::kpi::{self, Bucket};
use nida_store::{migrate, AgentRow, CallRecord, CallbackRow, Query, Store, StoreError};
/// A new empty folder, removed when dropped.
fn fresh_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("nida-store-{name}-"))
        .tempdir()
        .unwrap()
}

fn record(queue: &str, queued_at: i64, wait: Option<f64>, outcome: &str) -> CallRecord {
    CallRecord {
        call_id: format!("{queue}-{queued_at}"),
        caller: "+971500000001".into(),
        called: "8005".into(),
        queued_at: Some(queued_at),
        ended_at: queued_at + 100,
        queue: queue.into(),
        language: "ar".into(),
        outcome: outcome.into(),
        agent: wait.map(|_| 7),
        wait_seconds: wait,
        talk_seconds: wait.map(|_| 60.0),
        service_level_seconds: 20,
        path: vec!["lang".into(), "menu".into()],
        vars: [("application".to_string(), "20240002".to_string())].into(),
        ..CallRecord::default()
    }
}

#[test]
fn records_and_surveys_are_written_and_read_back() {
    let tmp = fresh_dir("records");
    let dir = tmp.path().join("data");
    let mut s = Store::open_dir(&dir).unwrap();
    let mut a = record("visa", 1_000, Some(5.0), "answered");
    a.rating = Some(2);
    a.transfers = vec!["visa_urgent".into()];
    a.media = vec![nida_store::LegQuality {
        role: "caller".into(),
        lost: 12,
        loss: 0.02,
        jitter_ms: 3.5,
        peer_loss: Some(0.01),
        rtt_ms: Some(82.0),
        r_factor: 80.1,
        mos: 4.02,
    }];
    a.started_at = Some(960);
    a.ivr = Some(nida_store::IvrTrail {
        flow: "main".into(),
        end: nida_store::IvrEnd::Queued,
        exit: "main/agent".into(),
        seconds: 40.0,
        choices: vec![nida_store::IvrChoice {
            node: "main/menu".into(),
            digit: "0".into(),
        }],
        lookups: vec![nida_store::IvrLookup {
            node: "status/lookup".into(),
            service: "visa_status".into(),
            result: nida_store::LookupServed::Failed,
        }],
    });
    let b = record("police", 2_000, None, "abandoned");
    let c = record("visa", 3_000, Some(30.0), "answered");
    // One code before the record is written, one after (and one twice).
    let wrap = |codes: &[&str]| nida_store::Wrapup {
        call_id: a.call_id.clone(),
        agent: 7,
        queue: "visa".into(),
        codes: codes.iter().map(|c| c.to_string()).collect(),
        at: 1_100,
    };
    s.add_wrapup(&wrap(&["visa status given"])).unwrap();
    a.id = s.insert_call(&a).unwrap();
    s.add_wrapup(&wrap(&["needs follow-up", "visa status given"]))
        .unwrap();
    a.wrapup = vec!["visa status given".into(), "needs follow-up".into()];
    let b_id = s.insert_call(&b).unwrap();
    s.insert_call(&c).unwrap();
    assert!(a.id > 0 && b_id > a.id);
    drop(s);
    // Reopened: everything is there, in order.
    let s = Store::open_dir(&dir).unwrap();
    let all = s.calls(&Query::default()).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0], a);
    assert!(all[0].low_rating());
    assert_eq!(all[1].outcome, "abandoned");
    let visa = s
        .calls(&Query {
            queue: Some("visa".into()),
            ..Query::default()
        })
        .unwrap();
    assert_eq!(visa.len(), 2);
    let window = s
        .calls(&Query {
            from: Some(1_500),
            to: Some(3_000),
            ..Query::default()
        })
        .unwrap();
    assert_eq!(window.len(), 1);
    assert_eq!(window[0].queue, "police");
    let newest = s
        .calls(&Query {
            limit: Some(1),
            ..Query::default()
        })
        .unwrap();
    assert_eq!(newest[0].queued_at, Some(3_000));
    assert!(all[1].wrapup.is_empty());
    assert_eq!(
        s.wrapup_counts(0, 2_000).unwrap(),
        vec![
            nida_store::WrapupCount {
                agent: 7,
                queue: "visa".into(),
                code: "needs follow-up".into(),
                count: 1
            },
            nida_store::WrapupCount {
                agent: 7,
                queue: "visa".into(),
                code: "visa status given".into(),
                count: 1
            }
        ]
    );
    assert!(s.wrapup_counts(2_000, 3_000).unwrap().is_empty());
    assert!(s.has_call("visa-1000").unwrap());
    assert!(!s.has_call("nope").unwrap());
}

#[test]
fn callbacks_keep_their_state_and_history() {
    let tmp = fresh_dir("callbacks");
    let dir = tmp.path().join("data");
    let mut s = Store::open_dir(&dir).unwrap();
    let mut cb = CallbackRow {
        call_id: "cb1".into(),
        number: "+971500000002".into(),
        source: "127.0.0.1:5090".into(),
        called: "8005".into(),
        queue: "visa".into(),
        language: "fr".into(),
        priority: 1,
        status: "requested".into(),
        requested_at: 100,
        updated_at: 100,
        ..CallbackRow::default()
    };
    s.put_callback(&cb).unwrap();
    let other = CallbackRow {
        call_id: "cb2".into(),
        status: "requested".into(),
        requested_at: 50,
        updated_at: 50,
        // At a chosen time: its slot and when it is made.
        slot_at: Some(3600),
        due_at: Some(3780),
        ..cb.clone()
    };
    s.put_callback(&other).unwrap();
    let pending = s.callbacks(true).unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|c| c.call_id.as_str())
            .collect::<Vec<_>>(),
        ["cb2", "cb1"],
        "oldest request first"
    );
    cb.status = "not_answered".into();
    cb.attempts = 1;
    cb.updated_at = 400;
    s.put_callback(&cb).unwrap();
    assert_eq!(
        s.callbacks(true).unwrap().len(),
        2,
        "a missed try stays pending"
    );
    cb.status = "answered".into();
    cb.attempts = 2;
    cb.updated_at = 800;
    s.put_callback(&cb).unwrap();
    let pending = s.callbacks(true).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].call_id, "cb2");
    assert_eq!(
        (pending[0].slot_at, pending[0].due_at),
        (Some(3600), Some(3780))
    );
    let all = s.callbacks(false).unwrap();
    let done = all.iter().find(|c| c.call_id == "cb1").unwrap();
    assert_eq!((done.status.as_str(), done.attempts), ("answered", 2));
    assert_eq!(done.language, "fr");
    assert_eq!(
        s.callback_history("cb1").unwrap(),
        vec![
            ("requested".to_string(), 0, 100),
            ("not_answered".to_string(), 1, 400),
            ("answered".to_string(), 2, 800)
        ]
    );
}

#[test]
fn agents_are_added_replaced_and_removed() {
    let tmp = fresh_dir("agents");
    let dir = tmp.path().join("data");
    let mut s = Store::open_dir(&dir).unwrap();
    let mut a = AgentRow {
        id: 3,
        user: "1003".into(),
        name: "Mariam".into(),
        password: String::new(),
        ha1: Some(nida_store::AgentHa1 {
            realm: "nida".into(),
            md5: "0".repeat(32),
            sha256: "1".repeat(64),
        }),
        skills: [("visa".to_string(), 7)].into(),
        languages: vec!["ar".into(), "en".into()],
        contact: None,
        ready_on_register: true,
    };
    s.put_agent(&a).unwrap();
    a.languages.push("ur".into());
    s.put_agent(&a).unwrap();
    assert_eq!(s.agents().unwrap(), vec![a.clone()]);
    assert_eq!(s.agent(3).unwrap(), Some(a));
    assert!(s.remove_agent(3).unwrap());
    assert!(!s.remove_agent(3).unwrap());
    assert!(s.agents().unwrap().is_empty());
}

#[test]
fn an_older_file_is_migrated_and_keeps_its_records() {
    let tmp = fresh_dir("migrate");
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = nida_store::db_path(&dir);
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        assert_eq!(migrate::run_to(&mut conn, 1).unwrap(), 1);
        assert_eq!(migrate::version(&conn).unwrap(), 1);
        conn.execute(
            "INSERT INTO calls (call_id, caller, called, ended_at, queue, language, outcome, service_level_seconds)
             VALUES ('old', '1', '2', 10, 'visa', 'en', 'abandoned', 20)",
            [],
        )
        .unwrap();
        // No agents table yet.
        assert!(conn.prepare("SELECT id FROM agents").is_err());
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), migrate::LATEST);
    const { assert!(migrate::LATEST >= 2) };
    assert!(s.has_call("old").unwrap());
    assert!(s.agents().unwrap().is_empty());
    drop(s);
    // Opening again runs nothing more.
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(migrate::run(&mut conn).unwrap(), 0);
}

#[test]
fn a_file_from_a_newer_nida_is_refused() {
    let tmp = fresh_dir("newer");
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = nida_store::db_path(&dir);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", migrate::LATEST + 1)
            .unwrap();
    }
    match Store::open(&path) {
        Err(e @ StoreError::TooNew { .. }) => {
            assert!(e.to_string().contains("schema version"), "{e}")
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a newer file was opened"),
    }
}

#[test]
fn key_figures_per_queue_and_hour() {
    let h = 1_795_305_600; // 2026-11-22 00:00 UTC
    let mut rated = record("visa", h + 60, Some(10.0), "answered");
    rated.rating = Some(5);
    let mut low = record("visa", h + 120, Some(40.0), "answered");
    low.rating = Some(1);
    let records = vec![
        rated,
        low,
        record("visa", h + 600, None, "abandoned"),
        record("visa", h + 3_700, Some(2.0), "answered"),
        record("police", h + 30, None, "callback_failed"),
    ];
    let k = kpi::by_queue(&records, Bucket::Hour);
    assert_eq!(k.len(), 3);
    assert_eq!((k[0].queue.as_str(), k[0].start), ("police", h));
    assert_eq!(k[0].offered, 1);
    assert_eq!(k[0].service_level(), None, "neither answered nor abandoned");
    let v = &k[1];
    assert_eq!((v.queue.as_str(), v.start), ("visa", h));
    assert_eq!((v.offered, v.answered, v.abandoned), (3, 2, 1));
    // One of two answered within 20 s, one abandoned: 1 / 3.
    assert!((v.service_level().unwrap() - 100.0 / 3.0).abs() < 1e-9);
    assert_eq!(v.asa(), Some(25.0));
    assert_eq!(v.aht(), Some(60.0));
    assert_eq!(v.satisfaction(), Some(3.0));
    assert!((v.abandon_rate().unwrap() - 100.0 / 3.0).abs() < 1e-9);
    assert_eq!(k[2].start, h + 3_600);
    assert_eq!(k[2].service_level(), Some(100.0));
    let days = kpi::by_queue(&records, Bucket::Day);
    assert_eq!(days.len(), 2);
    assert_eq!(days[1].offered, 4);
    let agents = kpi::agent_ratings(&records);
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].agent, 7);
    assert_eq!(
        (agents[0].answered, agents[0].rated, agents[0].low),
        (3, 2, 1)
    );
    assert_eq!(agents[0].counts, [1, 0, 0, 0, 1]);
    assert_eq!(agents[0].average, Some(3.0));
}

#[test]
fn processes_opening_a_new_file_at_once_migrate_it_once() {
    // The daemon and `nida agent` may open a new data folder together.
    for round in 0..20 {
        let tmp = fresh_dir(&format!("race-{round}"));
        let dir = tmp.path().join("data");
        let openers: Vec<_> = (0..4)
            .map(|_| {
                let dir = dir.clone();
                std::thread::spawn(move || Store::open_dir(&dir).map(|_| ()))
            })
            .collect();
        for o in openers {
            o.join()
                .unwrap()
                .expect("every opener gets the migrated file");
        }
        let store = Store::open_dir(&dir).unwrap();
        assert!(store.agents().unwrap().is_empty());
    }
}

#[test]
fn supervisors_are_stored_replaced_and_removed_by_user() {
    let dir = fresh_dir("supervisors");
    let mut s = Store::open_dir(dir.path()).unwrap();
    let row = nida_store::SupervisorRow {
        user: "sup1".into(),
        name: "Salma".into(),
        ha1: nida_store::AgentHa1 {
            realm: "nida".into(),
            md5: "a".repeat(32),
            sha256: "b".repeat(64),
        },
        contact: None,
        queues: vec!["visa_general".into()],
        agents: Some(vec![1, 2]),
    };
    s.put_supervisor(&row).unwrap();
    let wider = nida_store::SupervisorRow {
        queues: vec!["*".into()],
        agents: None,
        ..row.clone()
    };
    s.put_supervisor(&wider).unwrap();
    drop(s);
    let mut s = Store::open_dir(dir.path()).unwrap();
    assert_eq!(s.supervisors().unwrap(), vec![wider]);
    assert!(s.remove_supervisor("sup1").unwrap());
    assert!(!s.remove_supervisor("sup1").unwrap());
    assert!(s.supervisors().unwrap().is_empty());
}

#[test]
fn voicemails_are_kept_with_their_call_listed_handled_and_expired() {
    let tmp = fresh_dir("voicemails");
    let mut s = Store::open_dir(tmp.path()).unwrap();
    let mut a = record("visa", 1_000, None, "voicemail");
    a.ended_at = 1_050;
    a.vars.insert("application".into(), "20231234".into());
    a.voicemail = Some(nida_store::VoicemailLeft {
        file: "/data/voicemail/a.wav".into(),
        seconds: 12.5,
        queue: "visa".into(),
        number: Some("971501234567".into()),
    });
    let mut b = record("police", 2_000, None, "voicemail");
    b.call_id = "police-2000".into();
    b.ended_at = 2_010;
    b.voicemail = Some(nida_store::VoicemailLeft {
        file: "/data/voicemail/b.wav".into(),
        seconds: 3.0,
        queue: "police".into(),
        number: None,
    });
    s.insert_call(&a).unwrap();
    s.insert_call(&b).unwrap();
    s.insert_call(&record("visa", 3_000, Some(2.0), "answered"))
        .unwrap();
    let all = s.voicemails(false, None, 10).unwrap();
    assert_eq!(all.len(), 2, "only calls with a message");
    assert_eq!(all[0].call_id, "police-2000", "newest first");
    let visa = &all[1];
    assert_eq!(
        (visa.queue.as_str(), visa.seconds, visa.at),
        ("visa", 12.5, 1_050)
    );
    assert_eq!(visa.vars["application"], "20231234");
    assert_eq!(visa.number.as_deref(), Some("971501234567"));
    let only_visa = s
        .voicemails(false, Some(&["visa".to_string()]), 10)
        .unwrap();
    assert_eq!(only_visa.len(), 1);
    assert!(s.handle_voicemail(visa.id, 7, 1_100, true).unwrap());
    assert!(!s.handle_voicemail(999, 7, 1_100, false).unwrap());
    let open = s.voicemails(true, None, 10).unwrap();
    assert_eq!(open.len(), 1);
    let handled = s.voicemail(visa.id).unwrap().unwrap();
    assert_eq!(
        (handled.handled_by, handled.handled_at, handled.callback),
        (Some(7), Some(1_100), true)
    );
    let gone = s.expire_voicemails(2_000).unwrap();
    assert_eq!(gone, vec!["/data/voicemail/a.wav".to_string()]);
    assert_eq!(s.voicemails(false, None, 10).unwrap().len(), 1);
}
