//! The live board: who is waiting, ringing and talking, and each agent's
//! state, as the centre sees it. The centre task is its only writer; it
//! publishes a copy at most a few times a second, which the admin API,
//! the wallboard and the metrics read without touching the centre.

use crate::centre::CallInfo;
use nida_acd::AgentState;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::watch;

/// A call the centre holds.
#[derive(Debug, Clone, Serialize)]
pub struct LiveCall {
    /// Routing-core task id.
    pub task: u64,
    /// `waiting`, `ringing` or `talking`.
    pub state: &'static str,
    /// When it joined the queue (Unix seconds).
    pub queued_at: u64,
    /// The agent ringing or talking.
    pub agent: Option<u32>,
    /// What the call told (queue, language, IVR path and variables).
    pub info: CallInfo,
}

/// An agent.
#[derive(Debug, Clone, Serialize)]
pub struct LiveAgent {
    /// Agent id.
    pub id: u32,
    /// SIP user.
    pub user: String,
    /// Name.
    pub name: String,
    /// Languages.
    pub languages: Vec<String>,
    /// Skills and levels.
    pub skills: BTreeMap<String, u8>,
    /// `logged_out`, `available`, `ringing`, `talking`, `wrap_up`, `not_ready`.
    pub state: &'static str,
    /// Why not ready.
    pub reason: Option<String>,
    /// Since when (Unix seconds).
    pub since: u64,
    /// The call offered or taken.
    pub task: Option<u64>,
}

/// What the board shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveView {
    /// Calls by task.
    pub calls: BTreeMap<u64, LiveCall>,
    /// Agents by id.
    pub agents: BTreeMap<u32, LiveAgent>,
    /// The skill sets each queue's calls ask for (from the flows at start,
    /// and from every call queued since).
    pub queue_skills: BTreeMap<String, BTreeSet<Skills>>,
}

/// Skills and their minimum levels.
pub type Skills = BTreeMap<String, u8>;

/// Whether an agent with `skills` can take a call asking for `need`.
fn meets(skills: &Skills, need: &Skills) -> bool {
    need.iter()
        .all(|(s, l)| skills.get(s).is_some_and(|have| have >= l))
}

impl LiveView {
    /// Agents who can serve `queue` (they meet one of its skill sets; every
    /// agent when none is known), counted by state.
    pub fn agents_for(&self, queue: &str) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for a in self.agents.values().filter(|a| self.serves(a, queue)) {
            *out.entry(a.state).or_default() += 1;
        }
        out
    }

    /// Whether agent `a` can serve `queue`'s calls.
    pub fn serves(&self, a: &LiveAgent, queue: &str) -> bool {
        match self.queue_skills.get(queue) {
            Some(sets) if !sets.is_empty() => sets.iter().any(|need| meets(&a.skills, need)),
            _ => true,
        }
    }

    /// The available agent who can serve `queue` and has waited longest,
    /// but `not` (a consult to a queue rings them).
    pub fn longest_available(&self, queue: &str, not: u32) -> Option<u32> {
        self.agents
            .values()
            .filter(|a| a.state == "available" && a.id != not && self.serves(a, queue))
            .min_by_key(|a| a.since)
            .map(|a| a.id)
    }
}

/// The state name and not-ready reason of a core state.
pub fn state_name(s: &AgentState) -> (&'static str, Option<String>) {
    match s {
        AgentState::LoggedOut => ("logged_out", None),
        AgentState::Available => ("available", None),
        AgentState::Offered(_) => ("ringing", None),
        AgentState::Busy => ("talking", None),
        AgentState::WrapUp => ("wrap_up", None),
        AgentState::NotReady(nida_acd::NotReady::Reason(r)) => ("not_ready", Some(r.clone())),
        AgentState::NotReady(nida_acd::NotReady::MissedOffers) => {
            ("not_ready", Some("missed offers".into()))
        }
    }
}

/// The centre's side: changes, then `publish` when something changed.
pub struct Board {
    view: LiveView,
    dirty: bool,
    tx: watch::Sender<Arc<LiveView>>,
}

impl Board {
    /// The board as the centre last changed it.
    pub fn view(&self) -> &LiveView {
        &self.view
    }

    /// A board with its agents (all logged out) and its readers' end.
    pub fn new(
        agents: Vec<LiveAgent>,
        queue_skills: BTreeMap<String, BTreeSet<Skills>>,
    ) -> (Board, watch::Receiver<Arc<LiveView>>) {
        let view = LiveView {
            calls: BTreeMap::new(),
            agents: agents.into_iter().map(|a| (a.id, a)).collect(),
            queue_skills,
        };
        let (tx, rx) = watch::channel(Arc::new(view.clone()));
        (
            Board {
                view,
                dirty: false,
                tx,
            },
            rx,
        )
    }

    /// A call joined a queue, asking for `skills`.
    pub fn queued(&mut self, task: u64, info: CallInfo, skills: &Skills, now: u64) {
        let sets = self
            .view
            .queue_skills
            .entry(info.queue.clone())
            .or_default();
        if !sets.contains(skills) {
            sets.insert(skills.clone());
        }
        self.view.calls.insert(
            task,
            LiveCall {
                task,
                state: "waiting",
                queued_at: now,
                agent: None,
                info,
            },
        );
        self.dirty = true;
    }

    /// A call is ringing an agent, or talking to one.
    pub fn call_state(&mut self, task: u64, state: &'static str, agent: Option<u32>) {
        if let Some(c) = self.view.calls.get_mut(&task) {
            c.state = state;
            c.agent = agent;
            self.dirty = true;
        }
    }

    /// A call left the centre.
    pub fn ended(&mut self, task: u64) {
        self.dirty |= self.view.calls.remove(&task).is_some();
    }

    /// An agent's state changed.
    pub fn agent(&mut self, id: u32, state: &AgentState, now: u64) {
        let Some(a) = self.view.agents.get_mut(&id) else {
            return;
        };
        let (name, reason) = state_name(state);
        a.state = name;
        a.reason = reason;
        a.since = now;
        a.task = match state {
            AgentState::Offered(t) => Some(t.0),
            // The task offered stays with the agent while they talk.
            AgentState::Busy => a.task,
            _ => None,
        };
        self.dirty = true;
    }

    /// Publishes the board if it changed.
    pub fn publish(&mut self) {
        if self.dirty {
            self.tx.send_replace(Arc::new(self.view.clone()));
            self.dirty = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: u32) -> LiveAgent {
        LiveAgent {
            id,
            user: format!("100{id}"),
            name: "A".into(),
            languages: vec!["ar".into()],
            skills: BTreeMap::new(),
            state: "logged_out",
            reason: None,
            since: 0,
            task: None,
        }
    }

    #[test]
    fn the_board_follows_a_call_and_its_agent() {
        let (mut b, rx) = Board::new(vec![agent(1)], BTreeMap::new());
        b.queued(5, CallInfo::default(), &Skills::new(), 100);
        b.agent(1, &AgentState::Offered(nida_acd::TaskId(5)), 101);
        b.call_state(5, "ringing", Some(1));
        // Nothing reaches readers before publish.
        assert!(rx.borrow().calls.is_empty());
        b.publish();
        assert_eq!(rx.borrow().calls[&5].state, "ringing");
        assert_eq!(rx.borrow().agents[&1].state, "ringing");
        b.agent(1, &AgentState::Busy, 102);
        b.call_state(5, "talking", Some(1));
        b.publish();
        assert_eq!(
            rx.borrow().agents[&1].task,
            Some(5),
            "the task stays while talking"
        );
        b.agent(
            1,
            &AgentState::NotReady(nida_acd::NotReady::Reason("lunch".into())),
            103,
        );
        b.ended(5);
        b.publish();
        let v = rx.borrow().clone();
        assert!(v.calls.is_empty());
        assert_eq!(
            (
                v.agents[&1].state,
                v.agents[&1].reason.as_deref(),
                v.agents[&1].task
            ),
            ("not_ready", Some("lunch"), None)
        );
        // An unknown agent changes nothing.
        b.agent(9, &AgentState::Available, 104);
        b.publish();
        assert_eq!(rx.borrow().agents.len(), 1);
    }

    #[test]
    fn a_consult_to_a_queue_picks_its_longest_available_agent_but_the_asker() {
        let agent = |id: u32, state: &'static str, since: u64, visa: u8| LiveAgent {
            id,
            user: id.to_string(),
            name: String::new(),
            languages: vec![],
            skills: [("visa".to_string(), visa)].into(),
            state,
            reason: None,
            since,
            task: None,
        };
        let view = LiveView {
            agents: [
                agent(1, "available", 10, 5),
                agent(2, "available", 30, 5),
                agent(3, "available", 5, 1),
                agent(4, "talking", 1, 5),
            ]
            .into_iter()
            .map(|a| (a.id, a))
            .collect(),
            queue_skills: [(
                "visa".to_string(),
                [[("visa".to_string(), 3)].into()].into(),
            )]
            .into(),
            ..LiveView::default()
        };
        assert_eq!(view.longest_available("visa", 4), Some(1));
        assert_eq!(view.longest_available("visa", 1), Some(2), "not the asker");
        assert_eq!(view.longest_available("unknown", 1), Some(3), "any agent");
        let busy = LiveView {
            agents: view
                .agents
                .clone()
                .into_iter()
                .filter(|(id, _)| *id > 2)
                .collect(),
            ..view.clone()
        };
        assert_eq!(busy.longest_available("visa", 0), None, "3 lacks the level");
    }

    #[test]
    fn a_queue_counts_the_agents_who_meet_one_of_its_skill_sets() {
        let skilled = |id, skills: &[(&str, u8)]| LiveAgent {
            skills: skills.iter().map(|(s, l)| (s.to_string(), *l)).collect(),
            ..agent(id)
        };
        let need = |skills: &[(&str, u8)]| -> Skills {
            skills.iter().map(|(s, l)| (s.to_string(), *l)).collect()
        };
        let flows = BTreeMap::from([
            ("visa".to_string(), BTreeSet::from([need(&[("visa", 3)])])),
            ("any".to_string(), BTreeSet::new()),
        ]);
        let (mut b, rx) = Board::new(
            vec![
                skilled(1, &[("visa", 5)]),
                skilled(2, &[("visa", 2), ("police", 4)]),
                skilled(3, &[("police", 9)]),
            ],
            flows,
        );
        b.agent(1, &AgentState::Available, 1);
        b.agent(2, &AgentState::Busy, 1);
        b.dirty = true;
        b.publish();
        let v = rx.borrow().clone();
        // Agent 2's visa level is below 3; agent 3 has no visa skill.
        assert_eq!(v.agents_for("visa"), BTreeMap::from([("available", 1)]));
        // No skill sets known: every agent.
        assert_eq!(
            v.agents_for("any"),
            BTreeMap::from([("available", 1), ("logged_out", 1), ("talking", 1)])
        );
        // A call asking for police 4 adds a set: agents 2 and 3 now serve
        // the visa queue too.
        let info = CallInfo {
            queue: "visa".into(),
            ..CallInfo::default()
        };
        b.queued(9, info, &need(&[("police", 4)]), 2);
        b.publish();
        assert_eq!(
            rx.borrow().agents_for("visa"),
            BTreeMap::from([("available", 1), ("logged_out", 1), ("talking", 1)])
        );
    }
}
