//! IVR figures: time to load and check 100 flow files, and interpreter
//! steps per second through the demo's status path.
//!
//! Run: `cargo run --release -p nida-ivr --example bench`

use nida_ivr::expr::{Value, Vars};
use nida_ivr::{Action, AnyPrompt, LookupResult, Session};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let src = repo.join("ivr-flows");
    let dir = std::env::temp_dir().join(format!("nida-bench-flows-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // 100 files: 25 renamed copies of each demo flow (sub-flow calls kept
    // pointing at copies of the same generation).
    for i in 0..25 {
        for f in ["main", "status", "faq", "police"] {
            let text = std::fs::read_to_string(src.join(format!("{f}.yaml"))).unwrap();
            let text = text
                .replace("flow: main", &format!("flow: main{i}"))
                .replace("flow: status", &format!("flow: status{i}"))
                .replace("flow: faq", &format!("flow: faq{i}"))
                .replace("flow: police", &format!("flow: police{i}"));
            std::fs::write(dir.join(format!("{f}{i}.yaml")), text).unwrap();
        }
    }
    let index = prompt_index(&repo.join("prompts"));
    let catalog = |l: &str, n: &str| index.contains(&(l.to_string(), n.to_string()));
    let runs = 20;
    let t = Instant::now();
    let mut nodes = 0;
    for _ in 0..runs {
        let set = nida_ivr::load_path(&dir, &catalog).unwrap_or_else(|r| panic!("{}", r.render()));
        nodes = set.flows.values().map(|f| f.nodes.len()).sum::<usize>();
    }
    let per = t.elapsed() / runs;
    println!(
        "load+check 100 flows ({nodes} nodes, prompts checked in 7 languages): {:.2} ms",
        per.as_secs_f64() * 1000.0
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let set = Arc::new(nida_ivr::load_path(&src, &AnyPrompt).unwrap());
    let mut record = BTreeMap::new();
    record.insert("status".to_string(), Value::Str("approved".into()));
    record.insert("updated".to_string(), Value::Str("2026-11-02".into()));
    let sessions = 200_000;
    let t = Instant::now();
    let mut steps = 0u64;
    let mut now = Instant::now();
    for _ in 0..sessions {
        let mut s = Session::new(now, set.clone(), "main", Vars::new()).unwrap();
        let keys = "7120240001";
        drain(&mut s, now, &record);
        for d in keys.chars() {
            s.handle_digit(now, d);
            drain(&mut s, now, &record);
        }
        now += Duration::from_millis(1);
        steps += s.steps();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "interpreter: {sessions} calls through language, menu, collect+confirm, lookup, say status and date: {:.0} steps/s, {:.2} µs per call",
        steps as f64 / secs,
        secs * 1e6 / sessions as f64
    );
}

fn drain(s: &mut Session, now: Instant, record: &BTreeMap<String, Value>) {
    while let Some(a) = s.poll_action() {
        match a {
            Action::Play(_) => s.handle_playback_done(now),
            Action::Lookup { id, .. } => {
                s.handle_lookup(now, id, LookupResult::Found(record.clone()))
            }
            _ => {}
        }
    }
}

fn prompt_index(dir: &Path) -> std::collections::HashSet<(String, String)> {
    let mut out = std::collections::HashSet::new();
    for l in std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
    {
        for f in std::fs::read_dir(l.path()).unwrap().flatten() {
            if let Some(stem) = f.path().file_stem() {
                out.insert((
                    l.file_name().to_string_lossy().to_string(),
                    stem.to_string_lossy().to_string(),
                ));
            }
        }
    }
    out
}
