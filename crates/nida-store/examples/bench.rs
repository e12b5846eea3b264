//! Store figures: durable call-record writes per second, then the time and
//! memory to read a period back and compute its figures per queue and day.
//!
//! `cargo run --release -p nida-store --example bench [RECORDS=200000] [FOLDER]`
//! (the folder should be on the disk nida's `data_dir` uses; a temporary
//! folder by default).

use nida_store::kpi::{agent_ratings, by_queue, Bucket};
use nida_store::{CallRecord, Query, Store};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("nida-store-bench-{}", std::process::id()))
        });
    let _ = std::fs::remove_dir_all(&dir);
    let mut store = Store::open_dir(&dir).expect("store opens");
    let queues = ["visa_general", "visa_urgent", "residency", "police"];
    let langs = ["ar", "en", "fr", "ur", "ru", "zh", "es"];
    let start_day = 1_793_577_600; // 2026-11-01 00:00 UTC
                                   // One call every ~13 s: a 200,000-call month.
    let step = (30 * 86_400 / n.max(1)).max(1) as i64;
    let t = Instant::now();
    for i in 0..n {
        let queued = start_day + i as i64 * step;
        let answered = i % 10 != 0;
        let r = CallRecord {
            call_id: format!("{i:08x}@bench"),
            caller: "+000000000".into(),
            called: "8005".into(),
            queued_at: Some(queued),
            ended_at: queued + 300,
            queue: queues[i % queues.len()].into(),
            language: langs[i % langs.len()].into(),
            outcome: if answered { "answered" } else { "abandoned" }.into(),
            agent: answered.then_some((i % 100) as u32 + 1),
            wait_seconds: Some((i % 90) as f64),
            talk_seconds: answered.then_some(180.0 + (i % 120) as f64),
            service_level_seconds: 20,
            rating: (answered && i % 3 == 0).then_some((i % 5) as u8 + 1),
            path: vec!["main/welcome".into(), "main/agent".into()],
            vars: [("application".to_string(), format!("2024{i:04}"))].into(),
            ..CallRecord::default()
        };
        store.insert_call(&r).expect("insert");
    }
    let write = t.elapsed();
    println!(
        "write: {n} records, each durable on its own, in {:.1} s = {:.0} records/s",
        write.as_secs_f64(),
        n as f64 / write.as_secs_f64()
    );
    let size = std::fs::metadata(dir.join("nida.db"))
        .map(|m| m.len())
        .unwrap_or(0)
        + std::fs::metadata(dir.join("nida.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!(
        "size: {:.1} MiB, {:.0} bytes per record",
        size as f64 / 1048576.0,
        size as f64 / n as f64
    );
    let t = Instant::now();
    let rows = store
        .calls(&Query {
            from: Some(start_day),
            to: Some(start_day + 30 * 86_400),
            ..Query::default()
        })
        .expect("read");
    let read = t.elapsed();
    let t = Instant::now();
    let days = by_queue(&rows, Bucket::Day);
    let hours = by_queue(&rows, Bucket::Hour);
    let agents = agent_ratings(&rows);
    let kpi = t.elapsed();
    println!(
        "report: read {} records in {:.2} s, figures ({} queue-days, {} queue-hours, {} agents) in {:.3} s",
        rows.len(),
        read.as_secs_f64(),
        days.len(),
        hours.len(),
        agents.len(),
        kpi.as_secs_f64()
    );
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(l) = status.lines().find(|l| l.starts_with("VmHWM")) {
            println!("peak memory: {}", l.trim_start_matches("VmHWM:").trim());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
