//! One behaviour per test, in virtual time: each strategy, each escalation
//! rule, the offer lifecycle, queue limits, position and estimated wait,
//! and the single writer's command queue.

use nida_acd::{
    AgentConfig, AgentId, AgentState, Channel, EndReason, Escalation, Exit, LangId, NotReady,
    Output, QueueConfig, QueueId, Refusal, Relax, Router, SkillId, Strategy, TaskId, TaskSpec,
};
use std::time::{Duration, Instant};

const AR: LangId = LangId(0);
const EN: LangId = LangId(1);
const VISA: SkillId = SkillId(0);
const FR: LangId = LangId(6);

fn agent(id: u32, level: u8, langs: &[LangId]) -> AgentConfig {
    AgentConfig {
        id: AgentId(id),
        skills: vec![(VISA, level)],
        languages: langs.to_vec(),
        capacity: [1, 0, 0],
        weight: id + 1,
    }
}

fn task(id: u64, min: u8, lang: LangId, priority: u8) -> TaskSpec {
    TaskSpec {
        id: TaskId(id),
        queue: QueueId(0),
        skills: vec![(VISA, min)],
        language: lang,
        priority,
        channel: Channel::Voice,
    }
}

/// A router with one queue and agents logged in and ready, one second
/// apart (agent 0 idle longest).
fn setup(q: QueueConfig, agents: Vec<AgentConfig>) -> (Router, Instant) {
    let t0 = Instant::now();
    let mut r = Router::new(vec![q], 1);
    for (i, a) in agents.into_iter().enumerate() {
        let id = a.id;
        let at = t0 + Duration::from_secs(i as u64);
        r.add_agent(at, a);
        r.login(at, id).unwrap();
        r.ready(at, id).unwrap();
    }
    outputs(&mut r);
    (r, t0 + Duration::from_secs(100))
}

fn outputs(r: &mut Router) -> Vec<Output> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

fn offers(out: &[Output]) -> Vec<(u64, u32)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Offer { task, agent } => Some((task.0, agent.0)),
            _ => None,
        })
        .collect()
}

fn strategy(s: Strategy) -> QueueConfig {
    let mut q = QueueConfig::new("q");
    q.strategy = s;
    q.wrap_up = Duration::ZERO;
    q
}

#[test]
fn longest_idle_by_default() {
    let (mut r, now) = setup(
        QueueConfig::new("q"),
        vec![agent(5, 3, &[AR]), agent(6, 3, &[AR])],
    );
    r.enqueue(now, task(1, 1, AR, 0));
    assert_eq!(offers(&outputs(&mut r)), [(1, 5)]);
}

#[test]
fn best_skill_then_longest_idle() {
    let (mut r, now) = setup(
        strategy(Strategy::BestSkill),
        vec![agent(1, 3, &[AR]), agent(2, 9, &[AR]), agent(3, 9, &[AR])],
    );
    r.enqueue(now, task(1, 1, AR, 0));
    assert_eq!(offers(&outputs(&mut r)), [(1, 2)]);
}

#[test]
fn round_robin_takes_turns() {
    let (mut r, mut now) = setup(
        strategy(Strategy::RoundRobin),
        vec![agent(1, 3, &[AR]), agent(2, 3, &[AR]), agent(3, 3, &[AR])],
    );
    let mut got = Vec::new();
    for i in 0..4 {
        r.enqueue(now, task(i, 1, AR, 0));
        let (t, a) = offers(&outputs(&mut r))[0];
        got.push(a);
        r.accept(now, AgentId(a), TaskId(t)).unwrap();
        now += Duration::from_secs(1);
        r.complete(now, TaskId(t)).unwrap();
        outputs(&mut r);
    }
    assert_eq!(got, [1, 2, 3, 1]);
}

#[test]
fn fewest_calls_first() {
    let (mut r, mut now) = setup(
        strategy(Strategy::FewestCalls),
        vec![agent(1, 3, &[AR]), agent(2, 3, &[AR])],
    );
    r.enqueue(now, task(1, 1, AR, 0));
    assert_eq!(offers(&outputs(&mut r)), [(1, 1)]);
    r.accept(now, AgentId(1), TaskId(1)).unwrap();
    now += Duration::from_secs(5);
    r.complete(now, TaskId(1)).unwrap();
    outputs(&mut r);
    // Agent 1 is now idle longest too, but has taken one call.
    r.enqueue(now, task(2, 1, AR, 0));
    assert_eq!(offers(&outputs(&mut r)), [(2, 2)]);
}

#[test]
fn ring_all_first_to_accept_wins_and_the_others_are_withdrawn() {
    let (mut r, now) = setup(
        strategy(Strategy::RingAll),
        vec![agent(1, 3, &[AR]), agent(2, 3, &[AR]), agent(3, 3, &[EN])],
    );
    r.enqueue(now, task(1, 1, AR, 0));
    assert_eq!(
        offers(&outputs(&mut r)),
        [(1, 1), (1, 2)],
        "only agents who speak Arabic"
    );
    r.accept(now, AgentId(2), TaskId(1)).unwrap();
    let out = outputs(&mut r);
    assert!(out.contains(&Output::Withdraw {
        task: TaskId(1),
        agent: AgentId(1)
    }));
    assert!(out.contains(&Output::Connected {
        task: TaskId(1),
        agent: AgentId(2)
    }));
    assert_eq!(
        r.accept(now, AgentId(1), TaskId(1))
            .unwrap_err()
            .to_string(),
        "task TaskId(1) is not offered to agent AgentId(1)"
    );
    assert_eq!(r.agent_state(AgentId(1)), Some(&AgentState::Available));
    r.check().unwrap();
}

#[test]
fn ring_all_the_withdrawn_agent_takes_the_task_that_came_meanwhile() {
    let (mut r, now) = setup(
        strategy(Strategy::RingAll),
        vec![agent(1, 3, &[AR]), agent(2, 3, &[AR])],
    );
    r.enqueue(now, task(1, 1, AR, 0));
    assert_eq!(offers(&outputs(&mut r)), [(1, 1), (1, 2)]);
    // Both ring: the next caller waits.
    r.enqueue(now, task(2, 1, AR, 0));
    assert_eq!(offers(&outputs(&mut r)), []);
    r.accept(now, AgentId(1), TaskId(1)).unwrap();
    let out = outputs(&mut r);
    assert!(out.contains(&Output::Withdraw {
        task: TaskId(1),
        agent: AgentId(2)
    }));
    assert_eq!(
        offers(&out),
        [(2, 2)],
        "agent 2 rings for the second caller"
    );
    r.check().unwrap();
}

#[test]
fn weighted_random_is_seeded_and_uses_weights() {
    let (mut r, mut now) = setup(
        strategy(Strategy::WeightedRandom),
        vec![agent(0, 3, &[AR]), agent(9, 3, &[AR])],
    );
    let mut counts = [0u32; 2];
    for i in 0..200 {
        r.enqueue(now, task(i, 1, AR, 0));
        let (t, a) = offers(&outputs(&mut r))[0];
        counts[usize::from(a == 9)] += 1;
        r.accept(now, AgentId(a), TaskId(t)).unwrap();
        now += Duration::from_millis(10);
        r.complete(now, TaskId(t)).unwrap();
        outputs(&mut r);
    }
    // Weights 1 and 10.
    assert!(counts[1] > counts[0] * 4, "{counts:?}");
}

#[test]
fn first_come_first_served_within_priority_and_priority_first() {
    let (mut r, now) = setup(QueueConfig::new("q"), vec![]);
    r.enqueue(now, task(1, 1, AR, 0));
    r.enqueue(now, task(2, 1, AR, 0));
    r.enqueue(now, task(3, 1, AR, 5));
    r.add_agent(now, agent(7, 3, &[AR]));
    r.login(now, AgentId(7)).unwrap();
    r.ready(now, AgentId(7)).unwrap();
    assert_eq!(offers(&outputs(&mut r)), [(3, 7)], "higher priority first");
    // The ringing task is still ahead in line until it is answered.
    assert_eq!(r.position(TaskId(1)).unwrap().0, 2);
    assert_eq!(r.position(TaskId(2)).unwrap().0, 3);
    r.accept(now, AgentId(7), TaskId(3)).unwrap();
    assert_eq!(r.position(TaskId(1)).unwrap().0, 1);
}

#[test]
fn next_task_is_the_decision_without_its_effects() {
    let (mut r, now) = setup(QueueConfig::new("q"), vec![]);
    // A level-5 Arabic task first, then a level-1 one, then English.
    r.enqueue(now, task(1, 5, AR, 0));
    r.enqueue(now, task(2, 1, AR, 0));
    r.enqueue(now, task(3, 1, EN, 0));
    r.add_agent(now, agent(7, 3, &[AR, EN]));
    r.add_agent(now, agent(8, 9, &[EN]));
    assert_eq!(r.next_task(AgentId(7)), Some(TaskId(2)), "level 3 < 5");
    assert_eq!(r.next_task(AgentId(8)), Some(TaskId(3)), "English only");
    assert_eq!(r.next_task(AgentId(9)), None, "unknown agent");
    // Nothing changed: the decision is taken for real when 7 is ready.
    assert!(outputs(&mut r).is_empty());
    r.login(now, AgentId(7)).unwrap();
    r.ready(now, AgentId(7)).unwrap();
    assert_eq!(offers(&outputs(&mut r)), [(2, 7)]);
    // While task 2 rings agent 7, agent 7's next is task 3.
    assert_eq!(r.next_task(AgentId(7)), Some(TaskId(3)));
}

#[test]
fn reject_keeps_the_place_and_the_next_agent_gets_it() {
    let mut q = QueueConfig::new("q");
    q.reoffer_after = Duration::from_secs(30);
    let (mut r, now) = setup(q, vec![agent(1, 3, &[AR])]);
    r.enqueue(now, task(1, 1, AR, 0));
    r.enqueue(now, task(2, 1, AR, 0));
    outputs(&mut r);
    r.reject(now, AgentId(1), TaskId(1)).unwrap();
    // Agent 1 is skipped for task 1 for a while, so it gets task 2 ...
    assert_eq!(offers(&outputs(&mut r)), [(2, 1)]);
    // ... and a new agent gets task 1, still first in line.
    r.add_agent(now, agent(2, 3, &[AR]));
    r.login(now, AgentId(2)).unwrap();
    r.ready(now, AgentId(2)).unwrap();
    assert_eq!(offers(&outputs(&mut r)), [(1, 2)]);
    r.check().unwrap();
}

#[test]
fn missed_offers_time_out_and_make_the_agent_not_ready() {
    let mut q = QueueConfig::new("q");
    q.max_missed = 2;
    q.offer_timeout = Duration::from_secs(15);
    q.reoffer_after = Duration::ZERO;
    let (mut r, mut now) = setup(q, vec![agent(1, 3, &[AR])]);
    r.enqueue(now, task(1, 1, AR, 0));
    outputs(&mut r);
    now += Duration::from_secs(15);
    r.handle_timeout(now);
    let out = outputs(&mut r);
    assert!(out.contains(&Output::Withdraw {
        task: TaskId(1),
        agent: AgentId(1)
    }));
    assert_eq!(offers(&out), [(1, 1)], "offered again at once: nobody else");
    now += Duration::from_secs(15);
    r.handle_timeout(now);
    outputs(&mut r);
    assert_eq!(
        r.agent_state(AgentId(1)),
        Some(&AgentState::NotReady(NotReady::MissedOffers))
    );
    assert_eq!(r.position(TaskId(1)).unwrap().0, 1, "the task still waits");
    r.check().unwrap();
}

#[test]
fn a_call_back_for_later_leaves_the_line_without_counting_as_abandoned() {
    let (mut r, now) = setup(QueueConfig::new("q"), vec![agent(1, 3, &[AR])]);
    r.enqueue(now, task(1, 1, AR, 0));
    outputs(&mut r);
    r.reschedule(now, TaskId(1)).unwrap();
    let out = outputs(&mut r);
    assert!(out.contains(&Output::Withdraw {
        task: TaskId(1),
        agent: AgentId(1)
    }));
    assert!(out.contains(&Output::Ended {
        task: TaskId(1),
        reason: EndReason::Rescheduled
    }));
    assert_eq!(r.agent_state(AgentId(1)), Some(&AgentState::Available));
    let stats = r.queue_stats(nida_acd::QueueId(0)).unwrap();
    assert_eq!(stats.abandoned, 0);
    assert!(r.position(TaskId(1)).is_none(), "out of the line");
    r.check().unwrap();
}

#[test]
fn caller_hangs_up_during_the_offer_and_logout_during_an_offer() {
    let (mut r, now) = setup(QueueConfig::new("q"), vec![agent(1, 3, &[AR])]);
    r.enqueue(now, task(1, 1, AR, 0));
    outputs(&mut r);
    r.abandon(now, TaskId(1)).unwrap();
    let out = outputs(&mut r);
    assert!(out.contains(&Output::Withdraw {
        task: TaskId(1),
        agent: AgentId(1)
    }));
    assert!(out.contains(&Output::Ended {
        task: TaskId(1),
        reason: EndReason::Abandoned
    }));
    assert_eq!(r.agent_state(AgentId(1)), Some(&AgentState::Available));
    r.enqueue(now, task(2, 1, AR, 0));
    outputs(&mut r);
    r.logout(now, AgentId(1)).unwrap();
    let out = outputs(&mut r);
    assert!(out.contains(&Output::Withdraw {
        task: TaskId(2),
        agent: AgentId(1)
    }));
    assert_eq!(
        r.position(TaskId(2)).unwrap().0,
        1,
        "back in line, not lost"
    );
    r.check().unwrap();
}

#[test]
fn wrap_up_then_the_next_task() {
    let mut q = QueueConfig::new("q");
    q.wrap_up = Duration::from_secs(30);
    let (mut r, now) = setup(q, vec![agent(1, 3, &[AR])]);
    r.enqueue(now, task(1, 1, AR, 0));
    r.enqueue(now, task(2, 1, AR, 0));
    outputs(&mut r);
    r.accept(now, AgentId(1), TaskId(1)).unwrap();
    r.complete(now + Duration::from_secs(60), TaskId(1))
        .unwrap();
    assert!(offers(&outputs(&mut r)).is_empty(), "wrap-up first");
    assert_eq!(r.agent_state(AgentId(1)), Some(&AgentState::WrapUp));
    r.handle_timeout(now + Duration::from_secs(90));
    assert_eq!(offers(&outputs(&mut r)), [(2, 1)]);
}

#[test]
fn escalation_relaxes_the_level_then_adds_a_language() {
    let mut q = QueueConfig::new("q");
    q.escalations = vec![
        Escalation {
            after: Duration::from_secs(30),
            relax: Relax::SkillLevel(VISA, 2),
        },
        Escalation {
            after: Duration::from_secs(60),
            relax: Relax::Language(EN),
        },
    ];
    // The agent who rejects is not offered the task again within this test.
    q.reoffer_after = Duration::from_secs(120);
    let (mut r, now) = setup(q, vec![agent(1, 2, &[EN]), agent(2, 2, &[AR])]);
    r.enqueue(now, task(1, 5, AR, 0));
    assert!(offers(&outputs(&mut r)).is_empty());
    r.handle_timeout(now + Duration::from_secs(30));
    assert_eq!(
        offers(&outputs(&mut r)),
        [(1, 2)],
        "level relaxed: the Arabic speaker"
    );
    r.reject(now + Duration::from_secs(31), AgentId(2), TaskId(1))
        .unwrap();
    outputs(&mut r);
    r.handle_timeout(now + Duration::from_secs(60));
    assert_eq!(
        offers(&outputs(&mut r)),
        [(1, 1)],
        "English accepted after 60 s"
    );
}

#[test]
fn overflow_skill_and_overflow_queue() {
    let mut q = QueueConfig::new("q");
    q.escalations = vec![Escalation {
        after: Duration::from_secs(20),
        relax: Relax::OverflowSkill(SkillId(3), 1),
    }];
    let t0 = Instant::now();
    let mut r = Router::new(vec![q, QueueConfig::new("other")], 1);
    let a = AgentConfig {
        id: AgentId(1),
        skills: vec![(SkillId(3), 4)],
        languages: vec![AR],
        capacity: [1, 0, 0],
        weight: 1,
    };
    r.add_agent(t0, a);
    r.login(t0, AgentId(1)).unwrap();
    r.ready(t0, AgentId(1)).unwrap();
    r.enqueue(t0, task(1, 5, AR, 0));
    assert!(offers(&outputs(&mut r)).is_empty());
    r.handle_timeout(t0 + Duration::from_secs(20));
    assert_eq!(offers(&outputs(&mut r)), [(1, 1)]);

    let mut q = QueueConfig::new("q");
    q.escalations = vec![Escalation {
        after: Duration::from_secs(20),
        relax: Relax::Queue(QueueId(1)),
    }];
    let mut r = Router::new(vec![q, QueueConfig::new("other")], 1);
    r.enqueue(t0, task(2, 5, AR, 0));
    r.handle_timeout(t0 + Duration::from_secs(20));
    assert_eq!(r.queue_stats(QueueId(1)).unwrap().waiting, 1);
    assert_eq!(r.queue_stats(QueueId(0)).unwrap().waiting, 0);
}

#[test]
fn longest_wait_exit_queue_limit_and_empty_queue_policies() {
    let mut q = QueueConfig::new("q");
    q.max_wait = Some((Duration::from_secs(300), Exit::Callback));
    q.max_len = Some(1);
    let t0 = Instant::now();
    let mut r = Router::new(vec![q], 1);
    r.enqueue(t0, task(1, 1, FR, 0));
    r.enqueue(t0, task(2, 1, FR, 0));
    assert!(outputs(&mut r).contains(&Output::Ended {
        task: TaskId(2),
        reason: EndReason::Refused(Refusal::QueueFull)
    }));
    r.handle_timeout(t0 + Duration::from_secs(300));
    assert!(outputs(&mut r).contains(&Output::Ended {
        task: TaskId(1),
        reason: EndReason::Exited(Exit::Callback)
    }));

    let mut q = QueueConfig::new("q");
    q.join_when_empty = false;
    q.leave_when_empty = true;
    let mut r = Router::new(vec![q], 1);
    r.enqueue(t0, task(3, 1, AR, 0));
    assert!(outputs(&mut r).contains(&Output::Ended {
        task: TaskId(3),
        reason: EndReason::Refused(Refusal::NoAgents)
    }));
    r.add_agent(t0, agent(1, 3, &[AR]));
    r.login(t0, AgentId(1)).unwrap();
    r.enqueue(t0, task(4, 1, AR, 0));
    assert!(
        r.position(TaskId(4)).is_some(),
        "joins: an agent is logged in (not ready)"
    );
    r.logout(t0, AgentId(1)).unwrap();
    assert!(outputs(&mut r).contains(&Output::Ended {
        task: TaskId(4),
        reason: EndReason::Refused(Refusal::NoAgents)
    }));
}

#[test]
fn estimated_wait_from_handle_times_and_staffing() {
    let (mut r, mut now) = setup(
        QueueConfig::new("q"),
        vec![agent(1, 3, &[AR]), agent(2, 3, &[AR])],
    );
    // Two calls of 60 s teach the average handle time.
    for i in 0..2 {
        r.enqueue(now, task(i, 1, AR, 0));
    }
    for o in offers(&outputs(&mut r)) {
        r.accept(now, AgentId(o.1), TaskId(o.0)).unwrap();
    }
    now += Duration::from_secs(60);
    for i in 0..2 {
        r.complete(now, TaskId(i)).unwrap();
    }
    r.not_ready(now, AgentId(1), "lunch").unwrap();
    r.not_ready(now, AgentId(2), "lunch").unwrap();
    for i in 10..14 {
        r.enqueue(now, task(i, 1, AR, 0));
    }
    let (pos, wait) = r.position(TaskId(13)).unwrap();
    assert_eq!(pos, 4);
    // Nobody staffed: counted as one agent; AHT between 60 and 180 s.
    assert!(
        wait >= Duration::from_secs(4 * 60) && wait <= Duration::from_secs(4 * 180),
        "{wait:?}"
    );
    // The same figures as an output, for the shell to announce.
    outputs(&mut r);
    r.ask_position(TaskId(13));
    r.ask_position(TaskId(999));
    assert_eq!(
        outputs(&mut r),
        [Output::Position {
            task: TaskId(13),
            place: 4,
            wait
        }]
    );
}

#[test]
fn the_single_writer_applies_commands_from_two_producers_in_order() {
    use nida_acd::writer::{Command, Publisher};
    let t0 = Instant::now();
    let mut r = Router::new(vec![QueueConfig::new("q")], 1);
    let (mut publisher, reader) = Publisher::new(1);
    let (tx, rx) = crossbeam_channel::bounded::<Command>(4096);
    tx.send(Command::AddAgent(agent(1, 3, &[AR]))).unwrap();
    tx.send(Command::Login(AgentId(1))).unwrap();
    let producers: Vec<_> = (0..2u64)
        .map(|p| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    tx.send(Command::Enqueue(task(p * 1000 + i, 1, AR, 0)))
                        .unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    tx.send(Command::Ready(AgentId(1))).unwrap();
    drop(tx);
    // The writer: one consumer applying everything queued, in order.
    for c in rx.iter() {
        r.apply(t0, c).unwrap();
        publisher.applied(1);
    }
    publisher.publish(&r);
    let offers: Vec<Output> = std::iter::from_fn(|| r.poll_output())
        .filter(|o| matches!(o, Output::Offer { .. }))
        .collect();
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert!(matches!(
        offers[0],
        Output::Offer {
            agent: AgentId(1),
            ..
        }
    ));
    let snap = reader.load();
    assert_eq!(snap.commands, 1003);
    assert_eq!(snap.queues[0].offered, 1000);
    assert_eq!(
        snap.queues[0].waiting, 1000,
        "one is ringing, still in line"
    );
}
