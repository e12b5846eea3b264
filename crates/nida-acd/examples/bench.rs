//! Routing-core figures: decisions per second and latency per decision with
//! 10,000 agents, 50 skills, 7 languages and 100,000 waiting tasks; and
//! commands per second through the single writer's input with two
//! producer threads.
//!
//! Run: `cargo run --release -p nida-acd --example bench`

use nida_acd::writer::{Command, Publisher};
use nida_acd::*;
use std::time::{Duration, Instant};

const AGENTS: u32 = 10_000;
const SKILLS: u16 = 50;
const LANGS: u8 = 7;
const WAITING: u64 = 100_000;
const QUEUES: u16 = 10;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn task(rng: &mut Rng, id: u64) -> TaskSpec {
    TaskSpec {
        id: TaskId(id),
        queue: QueueId(rng.below(QUEUES as u64) as u16),
        skills: vec![(
            SkillId(rng.below(SKILLS as u64) as u16),
            1 + rng.below(5) as u8,
        )],
        language: LangId(rng.below(LANGS as u64) as u8),
        priority: rng.below(3) as u8,
        channel: Channel::Voice,
    }
}

fn main() {
    let mut rng = Rng(0x9E3779B97F4A7C15);
    let queues: Vec<QueueConfig> = (0..QUEUES)
        .map(|i| {
            let mut q = QueueConfig::new(&format!("q{i}"));
            q.wrap_up = Duration::ZERO;
            q
        })
        .collect();
    let mut r = Router::new(queues, 1);
    let t0 = Instant::now();
    let mut now = t0;
    for a in 0..AGENTS {
        let skills = (0..8)
            .map(|_| {
                (
                    SkillId(rng.below(SKILLS as u64) as u16),
                    1 + rng.below(10) as u8,
                )
            })
            .collect();
        let languages = vec![LangId(0), LangId(1 + rng.below(LANGS as u64 - 1) as u8)];
        r.add_agent(
            now,
            AgentConfig {
                id: AgentId(a),
                skills,
                languages,
                capacity: [1, 0, 0],
                weight: 1,
            },
        );
        r.login(now, AgentId(a)).unwrap();
    }
    let mut next = 0u64;
    for _ in 0..WAITING {
        let t = task(&mut rng, next);
        next += 1;
        r.enqueue(now, t);
    }
    while r.poll_output().is_some() {}
    // Everyone ready: each agent takes a task; accept them all.
    let start = Instant::now();
    for a in 0..AGENTS {
        r.ready(now, AgentId(a)).unwrap();
    }
    let mut offers = Vec::new();
    while let Some(o) = r.poll_output() {
        if let Output::Offer { task, agent } = o {
            offers.push((task, agent));
        }
    }
    let ready_secs = start.elapsed().as_secs_f64();
    let mut connected: Vec<TaskId> = Vec::new();
    for (t, a) in offers.drain(..) {
        r.accept(now, a, t).unwrap();
        connected.push(t);
    }
    while r.poll_output().is_some() {}
    println!(
        "setup: {} agents, {} skills, {} languages, {} queues; {} agents connected, {} tasks waiting; first round of decisions {:.1} µs each",
        AGENTS,
        SKILLS,
        LANGS,
        QUEUES,
        connected.len(),
        r.waiting().len(),
        ready_secs * 1e6 / AGENTS as f64
    );

    // Steady state: an agent finishes, the core picks its next task, the
    // agent accepts, a new task arrives (the line stays near 100,000).
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100_000);
    let mut lat = Vec::with_capacity(rounds);
    let mut decided = 0u64;
    let before = r.decisions();
    let run = Instant::now();
    for _ in 0..rounds {
        now += Duration::from_millis(1);
        // The shell fires due timers (offer timeouts armed 20 s earlier and
        // now stale) before each event.
        r.handle_timeout(now);
        let i = rng.below(connected.len() as u64) as usize;
        let done = connected.swap_remove(i);
        let t = Instant::now();
        r.complete(now, done).unwrap();
        lat.push(t.elapsed());
        while let Some(o) = r.poll_output() {
            if let Output::Offer { task, agent } = o {
                offers.push((task, agent));
            }
        }
        for (t, a) in offers.drain(..) {
            r.accept(now, a, t).unwrap();
            connected.push(t);
            decided += 1;
        }
        while r.poll_output().is_some() {}
        let t = task(&mut rng, next);
        next += 1;
        r.enqueue(now, t);
        while let Some(o) = r.poll_output() {
            if let Output::Offer { task, agent } = o {
                r.accept(now, agent, task).unwrap();
                connected.push(task);
            }
        }
    }
    let secs = run.elapsed().as_secs_f64();
    lat.sort();
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    println!(
        "steady state: {rounds} completions, {decided} routing decisions, {} total decisions, {:.0} decisions/s overall (including accept and enqueue); per completion+decision p50 {:.2} µs, p99 {:.2} µs",
        r.decisions() - before,
        decided as f64 / secs,
        p(0.5),
        p(0.99)
    );
    r.check().map(|_| ()).unwrap_or_else(|e| panic!("{e}"));

    // The decision alone (no state change): which task would each agent
    // get, for random agents, against the same 100,000-task line.
    let n = 1_000_000;
    let mut lat = Vec::with_capacity(n);
    let mut found = 0u64;
    let run = Instant::now();
    for _ in 0..n {
        let a = AgentId(rng.below(AGENTS as u64) as u32);
        let t = Instant::now();
        let next = r.next_task(a);
        lat.push(t.elapsed());
        found += next.is_some() as u64;
    }
    let secs = run.elapsed().as_secs_f64();
    lat.sort();
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    println!(
        "decision alone: {n} decisions ({found} found a task), {:.0} decisions/s including the timing; p50 {:.2} µs, p99 {:.2} µs",
        n as f64 / secs,
        p(0.5),
        p(0.99)
    );

    // Commands through the single writer with two producers.
    let mut q = QueueConfig::new("q");
    q.join_when_empty = true;
    // The writer: a thread of this example owning the router, fed by a
    // bounded lock-free queue (as the daemon's centre task is).
    let (tx, rx) = crossbeam_channel::bounded::<Command>(65_536);
    let writer = std::thread::spawn(move || {
        let mut r = Router::new(vec![q], 1);
        let (mut publisher, _reader) = Publisher::new(1);
        let mut applied = 0u64;
        for c in rx.iter() {
            let _ = r.apply(Instant::now(), c);
            applied += 1;
            while r.poll_output().is_some() {}
            if applied.is_multiple_of(4096) {
                publisher.applied(4096);
                publisher.publish(&r);
            }
        }
        applied
    });
    let per = 500_000u64;
    let start = Instant::now();
    let producers: Vec<_> = (0..2u64)
        .map(|p| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..per {
                    let id = p * per + i;
                    let cmd = if i % 2 == 0 {
                        Command::Enqueue(TaskSpec {
                            id: TaskId(id),
                            queue: QueueId(0),
                            skills: vec![],
                            language: LangId(0),
                            priority: 0,
                            channel: Channel::Voice,
                        })
                    } else {
                        Command::Abandon(TaskId(id - 1))
                    };
                    tx.send(cmd).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    drop(tx);
    let applied = writer.join().unwrap();
    assert_eq!(applied, 2 * per, "every command applied");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "single writer: {} commands from 2 producer threads in {:.3} s = {:.0} commands/s",
        2 * per,
        secs,
        (2 * per) as f64 / secs
    );
}
