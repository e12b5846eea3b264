//! The routing core, sans-IO: which waiting task goes to which agent, now.
//!
//! Every change comes in through a `&mut self` method with `now`; what the
//! shell must do comes out of [`Router::poll_output`]; timers (offer
//! timeouts, wrap-up, escalation, longest wait) fire in
//! [`Router::handle_timeout`]. The rules it keeps at every step:
//! - an agent holds at most its capacity, and is offered one task at a time;
//! - a task is waiting, offered (to one agent, or to several in ring-all),
//!   connected to one agent, or ended with a reason;
//! - within a priority, tasks go strictly in arrival order among those an
//!   agent can take (a task keeps its place after a rejected offer);
//! - no agent who could take a waiting task stays available.

use crate::model::*;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Errors of the commands that name agents and tasks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcdError {
    /// No such agent.
    #[error("unknown agent {0:?}")]
    UnknownAgent(AgentId),
    /// No such task (it may have ended).
    #[error("unknown task {0:?}")]
    UnknownTask(TaskId),
    /// The task is not offered to this agent (withdrawn, or never).
    #[error("task {0:?} is not offered to agent {1:?}")]
    NotOffered(TaskId, AgentId),
}

/// A rule of the core found broken by [`Router::check`]: what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("routing core rule broken: {0}")]
pub struct Violation(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskState {
    Waiting,
    Offered,
    Connected(AgentId),
}

#[derive(Debug, Clone)]
struct Task {
    spec: TaskSpec,
    queue: QueueId,
    seq: u64,
    enqueued: Instant,
    state: TaskState,
    /// Escalation steps applied.
    step: usize,
    required: Vec<(SkillId, u8)>,
    overflow: Vec<(SkillId, u8)>,
    languages: u64,
    /// Agents who rejected or missed it, and until when they are skipped.
    declined: Vec<(AgentId, Instant)>,
    offered_to: Vec<AgentId>,
    offer_generation: u64,
    connected_at: Option<Instant>,
    /// The index buckets (slot, level) the task is in while it waits (see
    /// `Router::index`).
    indexed: Vec<(u32, u8)>,
}

/// (language, key skill) packed in a `u32`: the buckets of waiting tasks
/// an agent looks through. The key skill is the first required skill (or
/// that of the overflow set), `NO_SKILL` when none is required. Queues are
/// not part of the key: an agent serves every queue, in one line order.
type IndexKey = u32;
const NO_SKILL: u16 = u16::MAX;
/// Minimum levels 0 (no skill needed) to 10.
const LEVELS: usize = 11;

fn index_key(lang: u8, skill: u16) -> IndexKey {
    (lang as u32) << 16 | skill as u32
}

/// A task's place in line as one number: higher priority first, then
/// arrival order.
type LineKey = u64;

fn line_key(priority: u8, seq: u64) -> LineKey {
    ((255 - priority) as u64) << 56 | (seq & ((1 << 56) - 1))
}

/// Waiting tasks of one (language, key skill), split by the minimum level
/// they need in that skill, each part in line order. `upto[l]` caches the
/// first task in line among parts `0..=l`, so an agent with level `l` reads
/// one entry per bucket it serves.
#[derive(Debug)]
struct Bucket {
    parts: [BTreeSet<(LineKey, TaskId)>; LEVELS],
    upto: [(LineKey, TaskId); LEVELS],
}

/// An empty slot in `Bucket::upto`.
const NONE: (LineKey, TaskId) = (LineKey::MAX, TaskId(u64::MAX));

impl Default for Bucket {
    fn default() -> Bucket {
        Bucket {
            parts: Default::default(),
            upto: [NONE; LEVELS],
        }
    }
}

impl Bucket {
    fn insert(&mut self, level: usize, entry: (LineKey, TaskId)) {
        self.parts[level].insert(entry);
        for u in &mut self.upto[level..] {
            if entry < *u {
                *u = entry;
            }
        }
    }

    fn remove(&mut self, level: usize, entry: (LineKey, TaskId)) {
        self.parts[level].remove(&entry);
        if self.upto[level] == entry {
            let mut best = if level == 0 {
                NONE
            } else {
                self.upto[level - 1]
            };
            for l in level..LEVELS {
                if let Some(first) = self.parts[l].first() {
                    best = best.min(*first);
                }
                self.upto[l] = best;
            }
        }
    }

    /// The first in line among parts `0..=level`.
    fn first(&self, level: u8) -> Option<(LineKey, TaskId)> {
        Some(self.upto[level as usize]).filter(|e| *e != NONE)
    }
}

/// A multiply-rotate hasher for small integer keys (the default SipHash
/// costs more than the lookup itself on the routing path and on a media
/// thread's per-packet path). Only for keys nida chooses itself (ids,
/// configuration), never for caller input.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(*b as u64);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64);
    }
    fn write_u16(&mut self, i: u16) {
        self.write_u64(i as u64);
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A map keyed by nida's own small integers, hashed by [`KeyHasher`].
pub type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<KeyHasher>>;

#[derive(Debug, Clone)]
struct Agent {
    cfg: AgentConfig,
    levels: Vec<u8>,
    languages: u64,
    /// The index buckets (slots) this agent can serve, with its level in
    /// the key skill (0 for tasks needing no skill).
    buckets: Vec<(u32, u8)>,
    state: AgentState,
    active: [u8; 3],
    idle_since: Instant,
    missed: u32,
    handled: u64,
    /// Not ready (or logout) asked while busy: applied when work ends.
    after_work: Option<AgentState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Offer(TaskId, u64),
    Reoffer(TaskId),
    WrapUp(AgentId),
    Wait(TaskId),
}

/// Per-queue counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueStats {
    /// Tasks waiting now.
    pub waiting: usize,
    /// Arrival of the oldest waiting task.
    pub oldest: Option<Instant>,
    /// Tasks that entered.
    pub offered: u64,
    /// Tasks connected to an agent.
    pub answered: u64,
    /// Of those, within the service-level threshold.
    pub answered_in_sl: u64,
    /// Tasks abandoned while waiting or ringing.
    pub abandoned: u64,
    /// Recent average handle time (exponentially weighted).
    pub aht: Duration,
    /// Total waiting time of answered tasks.
    pub total_answer_wait: Duration,
}

/// A queue with its waiting line.
#[derive(Debug)]
struct Queue {
    cfg: QueueConfig,
    waiting: BTreeMap<(Reverse<u8>, u64), TaskId>,
    rr_cursor: u32,
    stats: QueueStats,
}

/// The routing core.
#[derive(Debug)]
pub struct Router {
    queues: Vec<Queue>,
    agents: FastMap<AgentId, Agent>,
    tasks: FastMap<TaskId, Task>,
    /// Agents that can take more work, oldest idle first.
    available: BTreeSet<(Instant, AgentId)>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    outputs: VecDeque<Output>,
    next_seq: u64,
    rng: u64,
    decisions: u64,
    /// Waiting tasks (not those ringing an agent) by language, key skill
    /// and minimum level, each part in line order: an agent looks only at
    /// the parts it could serve.
    index: Vec<Bucket>,
    /// The slot of each (language, key skill) in `index`.
    slots: FastMap<IndexKey, u32>,
}

fn skills_ok(levels: &[u8], req: &[(SkillId, u8)]) -> bool {
    req.iter()
        .all(|(s, min)| *min == 0 || levels.get(s.0 as usize).is_some_and(|l| l >= min))
}

fn mask(langs: &[LangId]) -> u64 {
    langs.iter().fold(0, |m, l| m | (1u64 << (l.0 % 64)))
}

impl Router {
    /// A core with these queues (a queue's id is its index).
    pub fn new(queues: Vec<QueueConfig>, seed: u64) -> Router {
        Router {
            queues: queues
                .into_iter()
                .map(|cfg| Queue {
                    cfg,
                    waiting: BTreeMap::new(),
                    rr_cursor: 0,
                    stats: QueueStats {
                        aht: Duration::from_secs(180),
                        ..Default::default()
                    },
                })
                .collect(),
            agents: FastMap::default(),
            tasks: FastMap::default(),
            available: BTreeSet::new(),
            timers: BinaryHeap::new(),
            outputs: VecDeque::new(),
            next_seq: 0,
            rng: seed | 1,
            decisions: 0,
            index: Vec::new(),
            slots: FastMap::default(),
        }
    }

    /// Next output.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to call [`Router::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Routing decisions made so far (an offer is one decision).
    pub fn decisions(&self) -> u64 {
        self.decisions
    }

    /// Adds (or replaces the profile of) an agent, logged out.
    pub fn add_agent(&mut self, now: Instant, cfg: AgentConfig) {
        let max = cfg
            .skills
            .iter()
            .map(|(s, _)| s.0 as usize + 1)
            .max()
            .unwrap_or(0);
        let mut levels = vec![0u8; max];
        for (s, l) in &cfg.skills {
            levels[s.0 as usize] = *l;
        }
        let languages = mask(&cfg.languages);
        let mut buckets = Vec::new();
        for lang in (0..64u8).filter(|l| languages & (1u64 << l) != 0) {
            buckets.push((self.slot(index_key(lang, NO_SKILL)), 0));
            for (skill, level) in levels.iter().enumerate().filter(|(_, l)| **l > 0) {
                let slot = self.slot(index_key(lang, skill as u16));
                buckets.push((slot, (*level).min(10)));
            }
        }
        let id = cfg.id;
        if let Some(old) = self.agents.get(&id) {
            self.available.remove(&(old.idle_since, id));
        }
        self.agents.insert(
            id,
            Agent {
                cfg,
                levels,
                languages,
                buckets,
                state: AgentState::LoggedOut,
                active: [0; 3],
                idle_since: now,
                missed: 0,
                handled: 0,
                after_work: None,
            },
        );
    }

    /// An agent logs in (not ready until [`Router::ready`]).
    pub fn login(&mut self, now: Instant, id: AgentId) -> Result<(), AcdError> {
        let a = self.agents.get_mut(&id).ok_or(AcdError::UnknownAgent(id))?;
        if a.state == AgentState::LoggedOut {
            a.missed = 0;
            self.set_state(
                id,
                AgentState::NotReady(NotReady::Reason("logged in".into())),
            );
        }
        let _ = now;
        Ok(())
    }

    /// An agent is ready for work.
    pub fn ready(&mut self, now: Instant, id: AgentId) -> Result<(), AcdError> {
        let a = self.agents.get_mut(&id).ok_or(AcdError::UnknownAgent(id))?;
        match a.state {
            AgentState::NotReady(_) => {
                a.missed = 0;
                a.idle_since = now;
                self.make_available(now, id);
            }
            AgentState::Busy | AgentState::WrapUp => a.after_work = None,
            _ => {}
        }
        Ok(())
    }

    /// An agent takes a break (at once, or after the work in hand).
    pub fn not_ready(&mut self, now: Instant, id: AgentId, reason: &str) -> Result<(), AcdError> {
        let state = self.state_of(id)?;
        let nr = AgentState::NotReady(NotReady::Reason(reason.into()));
        match state {
            AgentState::Available => {
                self.unavailable(id);
                if self.agents[&id].active.iter().all(|a| *a == 0) {
                    self.set_state(id, nr);
                } else {
                    self.set_state(id, AgentState::Busy);
                    self.agent_mut(id).after_work = Some(nr);
                }
            }
            AgentState::Offered(task) => {
                self.withdraw_offer(now, task, id);
                self.set_state(id, nr);
            }
            AgentState::Busy | AgentState::WrapUp => self.agent_mut(id).after_work = Some(nr),
            AgentState::NotReady(_) => self.set_state(id, nr),
            AgentState::LoggedOut => {}
        }
        Ok(())
    }

    /// An agent logs out; an offer ringing them goes back to the line.
    pub fn logout(&mut self, now: Instant, id: AgentId) -> Result<(), AcdError> {
        let state = self.state_of(id)?;
        match state {
            AgentState::Offered(task) => {
                self.withdraw_offer(now, task, id);
                self.set_state(id, AgentState::LoggedOut);
            }
            AgentState::Busy | AgentState::WrapUp
                if self.agents[&id].active.iter().any(|a| *a > 0) =>
            {
                self.unavailable(id);
                self.agent_mut(id).after_work = Some(AgentState::LoggedOut);
            }
            _ => {
                self.unavailable(id);
                self.set_state(id, AgentState::LoggedOut);
            }
        }
        self.leave_empty_queues(now);
        Ok(())
    }

    /// A task arrives. It is refused when its queue is full, or when no
    /// agent who could take it is logged in and the queue does not let
    /// tasks join then.
    pub fn enqueue(&mut self, now: Instant, spec: TaskSpec) {
        let id = spec.id;
        let refuse = |r: &mut Router, why| {
            r.outputs.push_back(Output::Ended {
                task: id,
                reason: EndReason::Refused(why),
            })
        };
        if self.tasks.contains_key(&id) {
            return refuse(self, Refusal::DuplicateTask);
        }
        let Some(q) = self.queues.get(spec.queue.0 as usize) else {
            return refuse(self, Refusal::UnknownQueue);
        };
        if q.cfg.max_len.is_some_and(|m| q.waiting.len() >= m) {
            return refuse(self, Refusal::QueueFull);
        }
        let task = Task {
            queue: spec.queue,
            seq: self.next_seq,
            enqueued: now,
            state: TaskState::Waiting,
            step: 0,
            required: spec.skills.clone(),
            overflow: Vec::new(),
            languages: 1u64 << (spec.language.0 % 64),
            declined: Vec::new(),
            offered_to: Vec::new(),
            offer_generation: 0,
            connected_at: None,
            indexed: Vec::new(),
            spec,
        };
        if !self.queues[task.queue.0 as usize].cfg.join_when_empty && !self.anyone_could_take(&task)
        {
            return refuse(self, Refusal::NoAgents);
        }
        self.next_seq += 1;
        let q = &mut self.queues[task.queue.0 as usize];
        q.waiting
            .insert((Reverse(task.spec.priority), task.seq), id);
        q.stats.offered += 1;
        self.tasks.insert(id, task);
        self.index_add(id);
        self.arm_wait_timer(id);
        self.route_task(now, id);
    }

    /// The caller left (while waiting or ringing); a connected task ends as
    /// completed.
    pub fn abandon(&mut self, now: Instant, id: TaskId) -> Result<(), AcdError> {
        self.leave_line(now, id, EndReason::Abandoned)
    }

    /// The caller chose to be called back at a later time: the task leaves
    /// the line (it is not counted abandoned; the call-back comes back as
    /// a new task when it is due).
    pub fn reschedule(&mut self, now: Instant, id: TaskId) -> Result<(), AcdError> {
        self.leave_line(now, id, EndReason::Rescheduled)
    }

    /// A task leaves the line for `reason` (abandoned ones are counted);
    /// agents it rang are released, and a connected one ends as completed.
    fn leave_line(&mut self, now: Instant, id: TaskId, reason: EndReason) -> Result<(), AcdError> {
        let task = self.tasks.get(&id).ok_or(AcdError::UnknownTask(id))?;
        let released = match task.state {
            TaskState::Connected(_) => return self.complete(now, id),
            TaskState::Offered => task.offered_to.clone(),
            TaskState::Waiting => Vec::new(),
        };
        for &agent in &released {
            self.outputs.push_back(Output::Withdraw { task: id, agent });
            self.release_offer(now, id, agent);
        }
        if reason == EndReason::Abandoned {
            self.queue_of(id).stats.abandoned += 1;
        }
        self.end_task(id, reason);
        self.route_agents(now, released);
        Ok(())
    }

    /// The agent accepts the task offered to them.
    pub fn accept(&mut self, now: Instant, agent: AgentId, id: TaskId) -> Result<(), AcdError> {
        let task = self.ringing(agent, id)?;
        let others: Vec<AgentId> = task
            .offered_to
            .iter()
            .copied()
            .filter(|a| *a != agent)
            .collect();
        let (channel, enqueued) = (task.spec.channel, task.enqueued);
        for &other in &others {
            self.outputs.push_back(Output::Withdraw {
                task: id,
                agent: other,
            });
            self.release_offer(now, id, other);
        }
        let key = {
            let t = self.tasks.get_mut(&id).expect("checked above");
            t.state = TaskState::Connected(agent);
            t.offered_to.clear();
            t.connected_at = Some(now);
            (Reverse(t.spec.priority), t.seq)
        };
        self.index_remove(id);
        let q = self.queue_of(id);
        q.waiting.remove(&key);
        q.stats.answered += 1;
        let waited = now.saturating_duration_since(enqueued);
        q.stats.total_answer_wait += waited;
        if waited <= q.cfg.service_level {
            q.stats.answered_in_sl += 1;
        }
        let a = self.agent_mut(agent);
        a.active[channel.index()] += 1;
        a.missed = 0;
        let spare = a.active.iter().zip(a.cfg.capacity).any(|(x, c)| *x < c);
        self.outputs
            .push_back(Output::Connected { task: id, agent });
        if spare && channel != Channel::Voice {
            self.make_available(now, agent);
        } else {
            self.set_state(agent, AgentState::Busy);
        }
        self.route_agents(now, others);
        Ok(())
    }

    /// The agent rejects the offer: the task keeps its place in line.
    pub fn reject(&mut self, now: Instant, agent: AgentId, id: TaskId) -> Result<(), AcdError> {
        self.ringing(agent, id)?;
        self.missed_offer(now, id, agent);
        Ok(())
    }

    /// The agent finished the task: wrap-up, then the next.
    pub fn complete(&mut self, now: Instant, id: TaskId) -> Result<(), AcdError> {
        let task = self.tasks.get(&id).ok_or(AcdError::UnknownTask(id))?;
        let TaskState::Connected(agent) = task.state else {
            return self.abandon(now, id);
        };
        let (channel, connected) = (task.spec.channel, task.connected_at);
        if let Some(c) = connected {
            let q = self.queue_of(id);
            let handle = now.saturating_duration_since(c);
            // Weight of the newest handle time: 1/8.
            q.stats.aht = (q.stats.aht * 7 + handle) / 8;
        }
        let wrap = self.queue_of(id).cfg.wrap_up;
        self.end_task(id, EndReason::Completed);
        let a = self.agent_mut(agent);
        a.active[channel.index()] = a.active[channel.index()].saturating_sub(1);
        a.handled += 1;
        let idle = a.active.iter().all(|x| *x == 0);
        match a.state.clone() {
            // Ringing for another task (spare capacity): that goes on.
            AgentState::Offered(_) => {}
            _ if idle => {
                self.unavailable(agent);
                if wrap.is_zero() {
                    self.after_work(now, agent);
                } else {
                    self.set_state(agent, AgentState::WrapUp);
                    self.timers
                        .push(Reverse((now + wrap, Timer::WrapUp(agent))));
                }
            }
            AgentState::Busy if self.agents[&agent].after_work.is_none() => {
                self.make_available(now, agent)
            }
            AgentState::Available => self.route_agent(now, agent),
            _ => {}
        }
        Ok(())
    }

    /// Fires offer timeouts, wrap-up ends, escalations and longest waits.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Offer(task, generation) => {
                    let Some(t) = self.tasks.get(&task) else {
                        continue;
                    };
                    if t.state != TaskState::Offered || t.offer_generation != generation {
                        continue;
                    }
                    for agent in t.offered_to.clone() {
                        self.outputs.push_back(Output::Withdraw { task, agent });
                        self.missed_offer(now, task, agent);
                    }
                }
                Timer::WrapUp(agent) => {
                    if self
                        .agents
                        .get(&agent)
                        .is_some_and(|a| a.state == AgentState::WrapUp)
                    {
                        self.after_work(now, agent);
                    }
                }
                Timer::Wait(task) => self.waited(now, task),
                Timer::Reoffer(task) => {
                    if let Some(t) = self.tasks.get_mut(&task) {
                        t.declined.retain(|(_, until)| *until > now);
                        self.route_task(now, task);
                    }
                }
            }
        }
    }

    /// Position in line (1 is next) and estimated wait, for announcements.
    pub fn position(&self, id: TaskId) -> Option<(usize, Duration)> {
        let t = self.tasks.get(&id)?;
        if t.state != TaskState::Waiting {
            return None;
        }
        let q = &self.queues[t.queue.0 as usize];
        let ahead = q.waiting.range(..(Reverse(t.spec.priority), t.seq)).count();
        let staffed = self
            .agents
            .values()
            .filter(|a| !matches!(a.state, AgentState::LoggedOut | AgentState::NotReady(_)))
            .filter(|a| a.languages & t.languages != 0 && skills_ok(&a.levels, &t.required))
            .count()
            .max(1);
        let wait = q.stats.aht * (ahead as u32 + 1) / staffed as u32;
        Some((ahead + 1, wait))
    }

    /// Reports the task's place and estimated wait as an
    /// [`Output::Position`] (nothing when it is not waiting).
    pub fn ask_position(&mut self, id: TaskId) {
        if let Some((place, wait)) = self.position(id) {
            self.outputs.push_back(Output::Position {
                task: id,
                place,
                wait,
            });
        }
    }

    /// Counters of a queue.
    pub fn queue_stats(&self, q: QueueId) -> Option<QueueStats> {
        let queue = self.queues.get(q.0 as usize)?;
        let mut s = queue.stats.clone();
        s.waiting = queue.waiting.len();
        s.oldest = queue
            .waiting
            .values()
            .filter_map(|t| self.tasks.get(t))
            .map(|t| t.enqueued)
            .min();
        Some(s)
    }

    /// An agent's state.
    pub fn agent_state(&self, id: AgentId) -> Option<&AgentState> {
        self.agents.get(&id).map(|a| &a.state)
    }

    /// Tasks waiting, as (task, queue, priority, arrival order).
    pub fn waiting(&self) -> Vec<(TaskId, QueueId, u8, u64)> {
        self.tasks
            .iter()
            .filter(|(_, t)| t.state == TaskState::Waiting)
            .map(|(id, t)| (*id, t.queue, t.spec.priority, t.seq))
            .collect()
    }

    /// Whether the agent could take the task by skills, languages and
    /// capacity, and has not declined it (its current state aside).
    pub fn could_take(&self, agent: AgentId, task: TaskId) -> bool {
        match (self.agents.get(&agent), self.tasks.get(&task)) {
            (Some(a), Some(t)) => {
                Self::matches(a, t) && !t.declined.iter().any(|(d, _)| *d == agent)
            }
            _ => false,
        }
    }

    /// The task this agent would be offered if it were free now: the
    /// routing decision without its effects (a read-only query, e.g. for
    /// "next in line" on the agent's page; its state and spare capacity are
    /// not considered).
    pub fn next_task(&self, agent: AgentId) -> Option<TaskId> {
        let a = self.agents.get(&agent)?;
        self.choose(a, agent, false)
    }

    /// Whether the core still holds the task (waiting, offered or connected).
    pub fn has_task(&self, task: TaskId) -> bool {
        self.tasks.contains_key(&task)
    }

    /// Checks the core's rules; returns the first broken one.
    pub fn check(&self) -> Result<(), Violation> {
        for (id, a) in &self.agents {
            for c in 0..3 {
                if a.active[c] > a.cfg.capacity[c] {
                    return Err(Violation(format!("{id:?} over capacity on channel {c}")));
                }
            }
            let listed = self.available.contains(&(a.idle_since, *id));
            if listed != (a.state == AgentState::Available) {
                return Err(Violation(format!(
                    "{id:?} availability index disagrees with {:?}",
                    a.state
                )));
            }
            if let AgentState::Offered(t) = a.state {
                let ok = self
                    .tasks
                    .get(&t)
                    .is_some_and(|t| t.state == TaskState::Offered && t.offered_to.contains(id));
                if !ok {
                    return Err(Violation(format!("{id:?} stuck offered {t:?}")));
                }
            }
        }
        for b in &self.index {
            for l in 0..LEVELS {
                let first = b.parts[..=l].iter().filter_map(|p| p.first()).min();
                if first != b.first(l as u8).as_ref() {
                    return Err(Violation(format!(
                        "index cache {:?} is not the first in line",
                        b.upto[l]
                    )));
                }
            }
        }
        let indexed: usize = self
            .index
            .iter()
            .flat_map(|b| b.parts.iter())
            .map(BTreeSet::len)
            .sum();
        let expected: usize = self
            .tasks
            .values()
            .filter(|t| t.state == TaskState::Waiting)
            .map(|t| Self::index_keys(t).len())
            .sum();
        if indexed != expected {
            return Err(Violation(format!(
                "index holds {indexed} entries, waiting tasks need {expected}"
            )));
        }
        let mut connected: HashMap<AgentId, [u8; 3]> = HashMap::new();
        for (id, t) in &self.tasks {
            let in_line = self.queues[t.queue.0 as usize]
                .waiting
                .get(&(Reverse(t.spec.priority), t.seq))
                == Some(id);
            match t.state {
                TaskState::Waiting | TaskState::Offered if !in_line => {
                    return Err(Violation(format!("{id:?} lost its place in line")))
                }
                TaskState::Connected(_) if in_line => {
                    return Err(Violation(format!("{id:?} connected but in line")))
                }
                TaskState::Offered => {
                    let strategy = self.queues[t.queue.0 as usize].cfg.strategy;
                    if t.offered_to.is_empty()
                        || (t.offered_to.len() > 1 && strategy != Strategy::RingAll)
                    {
                        return Err(Violation(format!("{id:?} offered to {:?}", t.offered_to)));
                    }
                    for a in &t.offered_to {
                        if self.agents.get(a).map(|a| &a.state) != Some(&AgentState::Offered(*id)) {
                            return Err(Violation(format!(
                                "{id:?} offered to {a:?} who is not ringing for it"
                            )));
                        }
                    }
                }
                TaskState::Connected(a) => {
                    connected.entry(a).or_default()[t.spec.channel.index()] += 1
                }
                TaskState::Waiting => {
                    // Work conservation: no available agent could take it.
                    for (_, a) in &self.available {
                        let declined = t.declined.iter().any(|(d, _)| d == a);
                        if !declined && Self::matches(&self.agents[a], t) {
                            return Err(Violation(format!(
                                "{a:?} is available while {id:?}, which it can take, waits"
                            )));
                        }
                    }
                }
            }
        }
        for (id, a) in &self.agents {
            if connected.get(id).copied().unwrap_or_default() != a.active {
                return Err(Violation(format!(
                    "{id:?} active {:?} but connected tasks disagree",
                    a.active
                )));
            }
        }
        Ok(())
    }

    // ---- internals ----

    fn state_of(&self, id: AgentId) -> Result<AgentState, AcdError> {
        Ok(self
            .agents
            .get(&id)
            .ok_or(AcdError::UnknownAgent(id))?
            .state
            .clone())
    }

    /// The task, when it is ringing this agent.
    fn ringing(&self, agent: AgentId, id: TaskId) -> Result<&Task, AcdError> {
        let task = self.tasks.get(&id).ok_or(AcdError::UnknownTask(id))?;
        if task.state != TaskState::Offered || !task.offered_to.contains(&agent) {
            return Err(AcdError::NotOffered(id, agent));
        }
        Ok(task)
    }

    fn agent_mut(&mut self, id: AgentId) -> &mut Agent {
        self.agents
            .get_mut(&id)
            .expect("agent ids are checked at the entry points")
    }

    fn queue_of(&mut self, task: TaskId) -> &mut Queue {
        let q = self.tasks[&task].queue;
        &mut self.queues[q.0 as usize]
    }

    fn set_state(&mut self, id: AgentId, state: AgentState) {
        let a = self.agent_mut(id);
        if a.state != state {
            a.state = state.clone();
            self.outputs
                .push_back(Output::AgentState { agent: id, state });
        }
    }

    fn unavailable(&mut self, id: AgentId) {
        let idle = self.agents[&id].idle_since;
        self.available.remove(&(idle, id));
    }

    fn make_available(&mut self, now: Instant, id: AgentId) {
        let idle = self.agents[&id].idle_since;
        self.available.insert((idle, id));
        self.set_state(id, AgentState::Available);
        self.route_agent(now, id);
    }

    fn after_work(&mut self, now: Instant, id: AgentId) {
        match self.agent_mut(id).after_work.take() {
            Some(state) => self.set_state(id, state),
            None => {
                self.agent_mut(id).idle_since = now;
                self.make_available(now, id);
            }
        }
    }

    fn matches(a: &Agent, t: &Task) -> bool {
        Self::has_room(a, t) && Self::fits(a, t)
    }

    fn has_room(a: &Agent, t: &Task) -> bool {
        a.active[t.spec.channel.index()] < a.cfg.capacity[t.spec.channel.index()]
    }

    /// Skills and languages (capacity aside).
    fn fits(a: &Agent, t: &Task) -> bool {
        a.languages & t.languages != 0
            && (skills_ok(&a.levels, &t.required)
                || (!t.overflow.is_empty() && skills_ok(&a.levels, &t.overflow)))
    }

    fn eligible(&self, a: AgentId, t: &Task) -> bool {
        self.agents.get(&a).is_some_and(|agent| {
            agent.state == AgentState::Available
                && !t.declined.iter().any(|(d, _)| *d == a)
                && !t.offered_to.contains(&a)
                && Self::matches(agent, t)
        })
    }

    fn anyone_could_take(&self, t: &Task) -> bool {
        self.agents
            .values()
            .any(|a| a.state != AgentState::LoggedOut && Self::matches(a, t))
    }

    /// Offers a waiting task to the agent(s) its queue's strategy picks.
    fn route_task(&mut self, now: Instant, id: TaskId) {
        let Some(t) = self.tasks.get(&id) else { return };
        if t.state != TaskState::Waiting {
            return;
        }
        let qi = t.queue.0 as usize;
        let strategy = self.queues[qi].cfg.strategy;
        let candidates = self
            .available
            .iter()
            .map(|(_, a)| *a)
            .filter(|a| self.eligible(*a, t));
        let chosen: Vec<AgentId> = match strategy {
            Strategy::LongestIdle => candidates.take(1).collect(),
            Strategy::RingAll => candidates.collect(),
            Strategy::BestSkill => {
                let required = t.required.clone();
                candidates
                    .map(|a| {
                        let lv = &self.agents[&a].levels;
                        let score: u32 = required
                            .iter()
                            .map(|(s, _)| *lv.get(s.0 as usize).unwrap_or(&0) as u32)
                            .sum();
                        (Reverse(score), a)
                    })
                    .min_by_key(|(score, _)| *score)
                    .map(|(_, a)| a)
                    .into_iter()
                    .collect()
            }
            Strategy::FewestCalls => candidates
                .min_by_key(|a| self.agents[a].handled)
                .into_iter()
                .collect(),
            Strategy::RoundRobin => {
                let cursor = self.queues[qi].rr_cursor;
                let all: Vec<AgentId> = candidates.collect();
                let next = all
                    .iter()
                    .filter(|a| a.0 > cursor)
                    .min()
                    .or_else(|| all.iter().min())
                    .copied();
                next.into_iter().collect()
            }
            Strategy::WeightedRandom => {
                let all: Vec<(AgentId, u64)> = candidates
                    .map(|a| (a, self.agents[&a].cfg.weight as u64))
                    .collect();
                let total: u64 = all.iter().map(|(_, w)| w).sum();
                if total == 0 {
                    all.first().map(|(a, _)| *a).into_iter().collect()
                } else {
                    self.rng ^= self.rng << 13;
                    self.rng ^= self.rng >> 7;
                    self.rng ^= self.rng << 17;
                    let mut pick = self.rng % total;
                    all.iter()
                        .find(|(_, w)| {
                            if pick < *w {
                                true
                            } else {
                                pick -= w;
                                false
                            }
                        })
                        .map(|(a, _)| *a)
                        .into_iter()
                        .collect()
                }
            }
        };
        if chosen.is_empty() {
            return;
        }
        if strategy == Strategy::RoundRobin {
            self.queues[qi].rr_cursor = chosen[0].0;
        }
        self.offer(now, id, &chosen);
    }

    fn offer(&mut self, now: Instant, id: TaskId, agents: &[AgentId]) {
        self.decisions += 1;
        let timeout = self.queue_of(id).cfg.offer_timeout;
        let t = self.tasks.get_mut(&id).expect("routed tasks exist");
        t.state = TaskState::Offered;
        t.offer_generation += 1;
        t.offered_to.clear();
        t.offered_to.extend_from_slice(agents);
        let generation = t.offer_generation;
        self.index_remove(id);
        self.timers
            .push(Reverse((now + timeout, Timer::Offer(id, generation))));
        for &a in agents {
            self.unavailable(a);
            self.set_state(a, AgentState::Offered(id));
            self.outputs.push_back(Output::Offer { task: id, agent: a });
        }
    }

    /// An available agent takes the best task it can: highest priority,
    /// then earliest arrival, across queues.
    fn route_agent(&mut self, now: Instant, agent: AgentId) {
        let Some(a) = self.agents.get(&agent) else {
            return;
        };
        if a.state != AgentState::Available {
            return;
        }
        let Some(tid) = self.choose(a, agent, true) else {
            return;
        };
        let qi = self.tasks[&tid].queue.0 as usize;
        if self.queues[qi].cfg.strategy == Strategy::RingAll {
            // Ring everyone who can take it, this agent included.
            let t = &self.tasks[&tid];
            let all: Vec<AgentId> = self
                .available
                .iter()
                .map(|(_, a)| *a)
                .filter(|a| self.eligible(*a, t))
                .collect();
            self.offer(now, tid, &all);
        } else {
            self.offer(now, tid, &[agent]);
        }
    }

    /// The routing decision for one agent: the first task in line
    /// (priority, then arrival, across queues) among the waiting tasks it
    /// can take by skills and languages and has not declined; with `room`,
    /// only tasks on a channel where it has spare capacity.
    fn choose(&self, a: &Agent, agent: AgentId, room: bool) -> Option<TaskId> {
        // The first in line among the buckets this agent serves (one cached
        // entry per bucket); when it is for this agent, the usual case,
        // nothing earlier can be.
        let first = a
            .buckets
            .iter()
            .map(|&(slot, level)| self.index[slot as usize].upto[level as usize])
            .min()
            .filter(|e| *e != NONE)?;
        if self.takes(a, agent, first.1, room) {
            return Some(first.1);
        }
        // Some task is not for this agent (declined, another skill missing,
        // no room on its channel): look deeper, stopping in each part at
        // the best found so far.
        let mut best: Option<(LineKey, TaskId)> = None;
        for &(slot, level) in &a.buckets {
            for part in &self.index[slot as usize].parts[..=level as usize] {
                for e in part {
                    if best.is_some_and(|b| *e >= b) {
                        break;
                    }
                    if self.takes(a, agent, e.1, room) {
                        best = Some(*e);
                        break;
                    }
                }
            }
        }
        best.map(|(_, t)| t)
    }

    /// Whether the agent can take this waiting task (with `room`: now).
    fn takes(&self, a: &Agent, id: AgentId, task: TaskId, room: bool) -> bool {
        let t = &self.tasks[&task];
        t.state == TaskState::Waiting
            && !t.declined.iter().any(|(d, _)| *d == id)
            && (!room || Self::has_room(a, t))
            && Self::fits(a, t)
    }

    /// Routes agents who became available, longest idle first.
    fn route_agents(&mut self, now: Instant, mut agents: Vec<AgentId>) {
        agents.sort_by_key(|a| self.agents.get(a).map(|a| a.idle_since));
        for a in agents {
            self.route_agent(now, a);
        }
    }

    /// An agent no longer rings for a task; the task goes back to its place
    /// in line when nobody rings for it any more.
    fn release_offer(&mut self, now: Instant, id: TaskId, agent: AgentId) {
        if let Some(t) = self.tasks.get_mut(&id) {
            t.offered_to.retain(|a| *a != agent);
            if t.offered_to.is_empty() && t.state == TaskState::Offered {
                t.state = TaskState::Waiting;
                self.index_add(id);
            }
        }
        if self.agents.get(&agent).map(|a| &a.state) == Some(&AgentState::Offered(id)) {
            self.make_available_later(agent);
        }
        let _ = now;
    }

    /// Marks an agent available without routing yet (the caller routes).
    fn make_available_later(&mut self, agent: AgentId) {
        let idle = self.agents[&agent].idle_since;
        self.available.insert((idle, agent));
        self.set_state(agent, AgentState::Available);
    }

    /// Withdraws an offer because the agent leaves (not ready, logout):
    /// not a missed offer; the caller sets the agent's new state.
    fn withdraw_offer(&mut self, now: Instant, id: TaskId, agent: AgentId) {
        self.outputs.push_back(Output::Withdraw { task: id, agent });
        self.release_offer(now, id, agent);
        self.unavailable(agent);
        self.route_task(now, id);
    }

    /// A rejected or unanswered offer.
    fn missed_offer(&mut self, now: Instant, id: TaskId, agent: AgentId) {
        let until = now + self.queue_of(id).cfg.reoffer_after;
        if let Some(t) = self.tasks.get_mut(&id) {
            t.declined.retain(|(d, _)| *d != agent);
            t.declined.push((agent, until));
        }
        self.timers.push(Reverse((until, Timer::Reoffer(id))));
        self.release_offer(now, id, agent);
        let max = self.queue_of(id).cfg.max_missed;
        let a = self.agent_mut(agent);
        a.missed += 1;
        if max > 0 && a.missed >= max {
            self.unavailable(agent);
            self.set_state(agent, AgentState::NotReady(NotReady::MissedOffers));
        }
        self.route_task(now, id);
        self.route_agent(now, agent);
    }

    fn end_task(&mut self, id: TaskId, reason: EndReason) {
        self.index_remove(id);
        if let Some(t) = self.tasks.remove(&id) {
            self.queues[t.queue.0 as usize]
                .waiting
                .remove(&(Reverse(t.spec.priority), t.seq));
            self.outputs.push_back(Output::Ended { task: id, reason });
        }
    }

    /// The index parts of a task: per language it accepts, its key skill
    /// (the first it needs at some level, or none) at that level, and the
    /// key skill of its overflow set.
    fn index_keys(t: &Task) -> Vec<(IndexKey, u8)> {
        let key = |set: &[(SkillId, u8)]| {
            set.iter()
                .find(|(_, min)| *min > 0)
                .map(|(s, min)| (s.0, (*min).min(10)))
                .unwrap_or((NO_SKILL, 0))
        };
        let mut skills = vec![key(&t.required)];
        if !t.overflow.is_empty() {
            skills.push(key(&t.overflow));
        }
        (0..64u8)
            .filter(|l| t.languages & (1u64 << l) != 0)
            .flat_map(|l| skills.iter().map(move |(s, min)| (index_key(l, *s), *min)))
            .collect()
    }

    /// Puts a waiting task in the index (again, after a change).
    fn index_add(&mut self, id: TaskId) {
        self.index_remove(id);
        let Some(t) = self.tasks.get_mut(&id) else {
            return;
        };
        if t.state != TaskState::Waiting {
            return;
        }
        let entry = (line_key(t.spec.priority, t.seq), id);
        let mut indexed = std::mem::take(&mut t.indexed);
        for (k, level) in Self::index_keys(t) {
            let slot = self.slot(k);
            self.index[slot as usize].insert(level as usize, entry);
            indexed.push((slot, level));
        }
        if let Some(t) = self.tasks.get_mut(&id) {
            t.indexed = indexed;
        }
    }

    /// Takes a task out of the index (it rings an agent, or ended).
    fn index_remove(&mut self, id: TaskId) {
        let Some(t) = self.tasks.get_mut(&id) else {
            return;
        };
        let entry = (line_key(t.spec.priority, t.seq), id);
        for &(slot, level) in &t.indexed {
            self.index[slot as usize].remove(level as usize, entry);
        }
        t.indexed.clear();
    }

    /// The slot of a (language, key skill) bucket, made when first needed.
    fn slot(&mut self, key: IndexKey) -> u32 {
        let next = self.index.len() as u32;
        let slot = *self.slots.entry(key).or_insert(next);
        if slot == next {
            self.index.push(Bucket::default());
        }
        slot
    }

    /// The next moment a waiting task needs attention (escalation or
    /// longest wait).
    fn arm_wait_timer(&mut self, id: TaskId) {
        let t = &self.tasks[&id];
        let q = &self.queues[t.queue.0 as usize].cfg;
        let next_step = q.escalations.get(t.step).map(|e| t.enqueued + e.after);
        let max = q.max_wait.as_ref().map(|(d, _)| t.enqueued + *d);
        if let Some(at) = [next_step, max].into_iter().flatten().min() {
            self.timers.push(Reverse((at, Timer::Wait(id))));
        }
    }

    fn waited(&mut self, now: Instant, id: TaskId) {
        let Some(t) = self.tasks.get(&id) else { return };
        if matches!(t.state, TaskState::Connected(_)) {
            return;
        }
        let qcfg = self.queues[t.queue.0 as usize].cfg.clone();
        let waited = now.saturating_duration_since(t.enqueued);
        // Longest wait: leave by the queue's exit.
        if let Some((max, exit)) = &qcfg.max_wait {
            if waited >= *max {
                if t.state != TaskState::Waiting {
                    // Ringing an agent now: look again in a second.
                    self.timers
                        .push(Reverse((now + Duration::from_secs(1), Timer::Wait(id))));
                    return;
                }
                match exit {
                    Exit::Queue(q) => self.move_to(now, id, *q),
                    other => self.end_task(id, EndReason::Exited(other.clone())),
                }
                return;
            }
        }
        let mut moved = None;
        while let Some(step) = qcfg.escalations.get(self.tasks[&id].step) {
            if waited < step.after {
                break;
            }
            let t = self.tasks.get_mut(&id).expect("exists");
            t.step += 1;
            match step.relax {
                Relax::SkillLevel(s, min) => {
                    for r in t.required.iter_mut().filter(|r| r.0 == s) {
                        r.1 = r.1.min(min);
                    }
                }
                Relax::OverflowSkill(s, min) => t.overflow.push((s, min)),
                Relax::Language(l) => t.languages |= 1u64 << (l.0 % 64),
                Relax::Queue(q) => moved = Some(q),
            }
        }
        if let Some(q) = moved {
            self.move_to(now, id, q);
            return;
        }
        // Languages or skills may have changed: the buckets too.
        self.index_add(id);
        self.arm_wait_timer(id);
        self.route_task(now, id);
    }

    /// Moves a task to another queue, keeping its arrival order.
    fn move_to(&mut self, now: Instant, id: TaskId, q: QueueId) {
        if q.0 as usize >= self.queues.len() {
            return;
        }
        self.index_remove(id);
        let t = self.tasks.get_mut(&id).expect("exists");
        let key = (Reverse(t.spec.priority), t.seq);
        let old = t.queue;
        t.queue = q;
        t.step = 0;
        self.queues[old.0 as usize].waiting.remove(&key);
        self.queues[q.0 as usize].waiting.insert(key, id);
        self.index_add(id);
        self.arm_wait_timer(id);
        self.route_task(now, id);
    }

    /// Queues that let tasks leave when nobody can serve them.
    fn leave_empty_queues(&mut self, _now: Instant) {
        let mut leaving = Vec::new();
        for q in self.queues.iter().filter(|q| q.cfg.leave_when_empty) {
            for tid in q.waiting.values() {
                let t = &self.tasks[tid];
                if t.state == TaskState::Waiting && !self.anyone_could_take(t) {
                    let exit = q.cfg.max_wait.as_ref().map(|(_, e)| e.clone());
                    leaving.push((*tid, exit));
                }
            }
        }
        for (tid, exit) in leaving {
            let reason = match exit {
                Some(e) => EndReason::Exited(e),
                None => EndReason::Refused(Refusal::NoAgents),
            };
            self.end_task(tid, reason);
        }
    }
}
