//! What the single writer needs besides the [`Router`]: the [`Command`]s
//! producers send it, applied in order with [`Router::apply`], and the
//! [`Snapshot`] of statistics it publishes after each batch, which
//! readers load without locks. The writer itself (the task or thread that
//! owns the router, its queue and its clock) belongs to the shell: this
//! crate keeps no thread and reads no clock.

use crate::model::*;
use crate::router::{AcdError, QueueStats, Router};
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::Instant;

/// A change for the core.
#[derive(Debug, Clone)]
pub enum Command {
    /// Add or update an agent.
    AddAgent(AgentConfig),
    /// Log in.
    Login(AgentId),
    /// Ready for work.
    Ready(AgentId),
    /// Not ready, with a reason.
    NotReady(AgentId, String),
    /// Log out.
    Logout(AgentId),
    /// A task arrives.
    Enqueue(TaskSpec),
    /// The caller left.
    Abandon(TaskId),
    /// The caller chose a call-back at a later time.
    Reschedule(TaskId),
    /// The agent accepted.
    Accept(AgentId, TaskId),
    /// The agent rejected.
    Reject(AgentId, TaskId),
    /// The task is done.
    Complete(TaskId),
    /// Report the task's place in line ([`Output::Position`]).
    Position(TaskId),
}

impl Router {
    /// Applies one command at `now`.
    pub fn apply(&mut self, now: Instant, c: Command) -> Result<(), AcdError> {
        match c {
            Command::AddAgent(a) => {
                self.add_agent(now, a);
                Ok(())
            }
            Command::Login(a) => self.login(now, a),
            Command::Ready(a) => self.ready(now, a),
            Command::NotReady(a, why) => self.not_ready(now, a, &why),
            Command::Logout(a) => self.logout(now, a),
            Command::Enqueue(t) => {
                self.enqueue(now, t);
                Ok(())
            }
            Command::Abandon(t) => self.abandon(now, t),
            Command::Reschedule(t) => self.reschedule(now, t),
            Command::Accept(a, t) => self.accept(now, a, t),
            Command::Reject(a, t) => self.reject(now, a, t),
            Command::Complete(t) => self.complete(now, t),
            Command::Position(t) => {
                self.ask_position(t);
                Ok(())
            }
        }
    }
}

/// Statistics as of the last published batch.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Per queue, in queue order.
    pub queues: Vec<QueueStats>,
    /// Commands applied.
    pub commands: u64,
    /// Routing decisions made.
    pub decisions: u64,
}

/// Loads the latest [`Snapshot`] without locks; cheap to clone.
#[derive(Clone)]
pub struct SnapshotReader(Arc<ArcSwap<Snapshot>>);

impl SnapshotReader {
    /// The latest statistics.
    pub fn load(&self) -> Arc<Snapshot> {
        self.0.load_full()
    }
}

/// The writer's side of the snapshots.
pub struct Publisher {
    snap: Arc<ArcSwap<Snapshot>>,
    queues: usize,
    commands: u64,
}

impl Publisher {
    /// A publisher for a router of `queues` queues, and its first reader.
    pub fn new(queues: usize) -> (Publisher, SnapshotReader) {
        let snap = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
        let reader = SnapshotReader(snap.clone());
        (
            Publisher {
                snap,
                queues,
                commands: 0,
            },
            reader,
        )
    }

    /// Counts `n` commands applied.
    pub fn applied(&mut self, n: u64) {
        self.commands += n;
    }

    /// Publishes the router's statistics now.
    pub fn publish(&self, r: &Router) {
        self.snap.store(Arc::new(Snapshot {
            queues: (0..self.queues)
                .filter_map(|q| r.queue_stats(QueueId(q as u16)))
                .collect(),
            commands: self.commands,
            decisions: r.decisions(),
        }));
    }
}
