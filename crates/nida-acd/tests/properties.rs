//! Random sequences of agent and caller events, checking after every step
//! that the core keeps its rules: capacity, one offer at a time, every task
//! accounted for, first come first served within a priority, and no
//! available agent idle while a task it can take waits.

use nida_acd::{
    AgentConfig, AgentId, Channel, Escalation, Exit, LangId, Output, QueueConfig, QueueId, Relax,
    Router, SkillId, TaskId, TaskSpec,
};
use proptest::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
enum Op {
    Login(u32),
    Ready(u32),
    NotReady(u32),
    Logout(u32),
    Enqueue {
        queue: u16,
        skill: u16,
        level: u8,
        lang: u8,
        priority: u8,
        /// A second required skill (index 3 means none).
        second: (u16, u8),
        /// A chat (agents take two at once) rather than a call.
        chat: bool,
    },
    Abandon(usize),
    Accept(usize),
    Reject(usize),
    Complete(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..6u32).prop_map(Op::Login),
        1 => (0..6u32).prop_map(Op::Ready),
        1 => (0..6u32).prop_map(Op::NotReady),
        1 => (0..6u32).prop_map(Op::Logout),
        // Arrivals three times as often as other events, so lines form.
        3 => (0..4u16, 0..3u16, 1..6u8, 0..3u8, 0..3u8, (0..4u16, 0..5u8), any::<bool>()).prop_map(
            |(queue, skill, level, lang, priority, second, chat)| Op::Enqueue {
                queue,
                skill,
                level,
                lang,
                priority,
                second,
                chat,
            }
        ),
        1 => (0..8usize).prop_map(Op::Abandon),
        1 => (0..8usize).prop_map(Op::Accept),
        1 => (0..8usize).prop_map(Op::Reject),
        1 => (0..8usize).prop_map(Op::Complete),
        1 => (1..40_000u64).prop_map(Op::Advance),
    ]
}

fn queues() -> Vec<QueueConfig> {
    let mut q0 = QueueConfig::new("visa_status");
    q0.escalations = vec![
        Escalation {
            after: Duration::from_secs(20),
            relax: Relax::SkillLevel(SkillId(0), 1),
        },
        Escalation {
            after: Duration::from_secs(40),
            relax: Relax::Language(LangId(1)),
        },
    ];
    q0.max_wait = Some((Duration::from_secs(120), Exit::Callback));
    let mut q1 = QueueConfig::new("residency");
    q1.strategy = nida_acd::Strategy::RingAll;
    q1.wrap_up = Duration::ZERO;
    let mut q2 = QueueConfig::new("traffic");
    q2.strategy = nida_acd::Strategy::BestSkill;
    q2.max_len = Some(3);
    q2.max_missed = 1;
    let mut q3 = QueueConfig::new("complaints");
    q3.strategy = nida_acd::Strategy::RoundRobin;
    q3.escalations = vec![Escalation {
        after: Duration::from_secs(30),
        relax: Relax::Queue(QueueId(0)),
    }];
    vec![q0, q1, q2, q3]
}

fn agents(now: Instant, r: &mut Router) {
    for i in 0..6u32 {
        r.add_agent(
            now,
            AgentConfig {
                id: AgentId(i),
                skills: vec![
                    (SkillId((i % 3) as u16), (i % 5 + 1) as u8),
                    (SkillId(((i + 1) % 3) as u16), 3),
                ],
                languages: vec![LangId((i % 3) as u8), LangId(0)],
                capacity: [1, 2, 0],
                weight: 1,
            },
        );
    }
}

proptest! {
    // 400 cases by default; PROPTEST_CASES=5000 for a longer search.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(400),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_core_keeps_its_rules(ops in proptest::collection::vec(op(), 1..120)) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut r = Router::new(queues(), 7);
        agents(now, &mut r);
        // Half the agents start ready (the ops log others in and out).
        for a in 0..3 {
            r.login(now, AgentId(a)).unwrap();
            r.ready(now, AgentId(a)).unwrap();
        }
        while r.poll_output().is_some() {}
        let mut next_task = 0u64;
        let mut live: Vec<TaskId> = Vec::new();
        let mut ended: BTreeSet<TaskId> = BTreeSet::new();
        let mut offers: Vec<(TaskId, AgentId)> = Vec::new();
        let mut connected: Vec<TaskId> = Vec::new();
        // An agent who rejected or missed a task may be passed over for it
        // for a while (others get it first): those pairs are not FCFS
        // breaches.
        let mut declined: BTreeSet<(TaskId, AgentId)> = BTreeSet::new();
        for op in ops {
            let before: HashMap<TaskId, (u8, u64)> = r.waiting().into_iter().map(|(t, _, p, s)| (t, (p, s))).collect();
            // Who could take each waiting task before this step (escalation
            // only widens this, so a pair true before and after was true
            // when the core decided).
            let can_before: BTreeSet<(TaskId, AgentId)> = before
                .keys()
                .flat_map(|t| (0..6u32).map(move |a| (*t, AgentId(a))))
                .filter(|(t, a)| r.could_take(*a, *t))
                .collect();
            match op {
                Op::Login(a) => { r.login(now, AgentId(a)).unwrap(); }
                Op::Ready(a) => { r.ready(now, AgentId(a)).unwrap(); }
                Op::NotReady(a) => { r.not_ready(now, AgentId(a), "break").unwrap(); }
                Op::Logout(a) => { r.logout(now, AgentId(a)).unwrap(); }
                Op::Enqueue { queue, skill, level, lang, priority, second, chat } => {
                    let id = TaskId(next_task);
                    next_task += 1;
                    live.push(id);
                    let channel = if chat { Channel::Chat } else { Channel::Voice };
                    let mut skills = vec![(SkillId(skill), level)];
                    if second.0 < 3 {
                        // Level 0 means "no minimum" (any agent qualifies).
                        skills.push((SkillId(second.0), second.1));
                    }
                    r.enqueue(now, TaskSpec { id, queue: QueueId(queue), skills, language: LangId(lang), priority, channel });
                }
                Op::Abandon(i) => { if let Some(t) = live.get(i).copied() { let _ = r.abandon(now, t); } }
                Op::Accept(i) => { if let Some((t, a)) = offers.get(i).copied() { let _ = r.accept(now, a, t); } }
                Op::Reject(i) => { if let Some((t, a)) = offers.get(i).copied() { declined.insert((t, a)); let _ = r.reject(now, a, t); } }
                Op::Complete(i) => { if let Some(t) = connected.get(i).copied() { let _ = r.complete(now, t); } }
                Op::Advance(ms) => { now += Duration::from_millis(ms); r.handle_timeout(now); }
            }
            let mut new_offers = Vec::new();
            while let Some(o) = r.poll_output() {
                match o {
                    Output::Offer { task, agent } => { offers.push((task, agent)); new_offers.push((task, agent)); }
                    Output::Withdraw { task, agent } => { declined.insert((task, agent)); offers.retain(|x| *x != (task, agent)) }
                    Output::Connected { task, agent } => { offers.retain(|x| x.0 != task || x.1 != agent); connected.push(task); }
                    Output::Ended { task, .. } => {
                        prop_assert!(ended.insert(task), "{task:?} ended twice");
                        offers.retain(|x| x.0 != task);
                        connected.retain(|x| *x != task);
                    }
                    Output::AgentState { .. } | Output::Position { .. } => {}
                }
            }
            prop_assert_eq!(r.check(), Ok(()));
            // Every task is held by the core or has ended, never both.
            for t in &live {
                prop_assert!(r.has_task(*t) != ended.contains(t), "{t:?} lost");
            }
            // First come, first served within a priority: a new offer never
            // skips a task the agent could take that waited before it and
            // still waits.
            for (task, agent) in new_offers {
                let Some(&(p, s)) = before.get(&task) else { continue };
                for (other, &(op_, os)) in &before {
                    let better = op_ > p || (op_ == p && os < s);
                    let still_waiting = r.waiting().iter().any(|w| w.0 == *other);
                    let passed_over = declined.contains(&(*other, agent));
                    let could = can_before.contains(&(*other, agent)) && r.could_take(agent, *other);
                    prop_assert!(
                        !(better && still_waiting && !passed_over && could),
                        "{agent:?} got {task:?} while {other:?} (priority {op_}, #{os}) waited before it"
                    );
                }
            }
        }
    }
}
