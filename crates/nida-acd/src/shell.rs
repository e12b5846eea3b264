//! The routing core on its own thread: the single writer. Producers (SIP
//! calls, agent pages, timers) send [`Command`]s through a bounded
//! multi-producer channel; the thread applies them in order, fires timers,
//! sends [`Output`]s out, and publishes a [`Snapshot`] that readers load
//! without locks.

use crate::model::*;
use crate::router::{QueueStats, Router};
use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// The agent accepted.
    Accept(AgentId, TaskId),
    /// The agent rejected.
    Reject(AgentId, TaskId),
    /// The task is done.
    Complete(TaskId),
    /// Report the task's place in line ([`Output::Position`]).
    Position(TaskId),
    /// Stop the thread.
    Stop,
}

/// Statistics as of the last command.
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

/// Handle to the core thread.
pub struct Shell {
    /// Where commands go (clone it for each producer).
    pub commands: Sender<Command>,
    /// What the core asks for.
    pub outputs: Receiver<Output>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Shell {
    /// Starts the core thread with a command queue of `capacity`.
    pub fn start(router: Router, capacity: usize, queues: usize) -> Shell {
        let (tx, rx) = crossbeam_channel::bounded::<Command>(capacity);
        let (otx, orx) = crossbeam_channel::unbounded::<Output>();
        let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
        let snap = snapshot.clone();
        let thread = std::thread::spawn(move || run(router, rx, otx, snap, queues));
        Shell {
            commands: tx,
            outputs: orx,
            snapshot,
            thread: Some(thread),
        }
    }

    /// The latest statistics (no lock taken).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// A reader of the statistics that other tasks can keep.
    pub fn snapshots(&self) -> SnapshotReader {
        SnapshotReader(self.snapshot.clone())
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    mut r: Router,
    rx: Receiver<Command>,
    out: crossbeam_channel::Sender<Output>,
    snap: Arc<ArcSwap<Snapshot>>,
    queues: usize,
) {
    let mut commands = 0u64;
    loop {
        let wait = r
            .poll_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(100));
        let cmd = match rx.recv_timeout(wait) {
            Ok(c) => Some(c),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let now = Instant::now();
        // Apply everything that is already queued before publishing.
        let mut batch: Vec<Command> = cmd.into_iter().collect();
        batch.extend(rx.try_iter().take(4096));
        for c in batch {
            commands += 1;
            let _ = match c {
                Command::AddAgent(a) => {
                    r.add_agent(now, a);
                    Ok(())
                }
                Command::Login(a) => r.login(now, a),
                Command::Ready(a) => r.ready(now, a),
                Command::NotReady(a, why) => r.not_ready(now, a, &why),
                Command::Logout(a) => r.logout(now, a),
                Command::Enqueue(t) => {
                    r.enqueue(now, t);
                    Ok(())
                }
                Command::Abandon(t) => r.abandon(now, t),
                Command::Accept(a, t) => r.accept(now, a, t),
                Command::Reject(a, t) => r.reject(now, a, t),
                Command::Complete(t) => r.complete(now, t),
                Command::Position(t) => {
                    r.ask_position(t);
                    Ok(())
                }
                Command::Stop => return,
            };
        }
        r.handle_timeout(now);
        while let Some(o) = r.poll_output() {
            let _ = out.send(o);
        }
        snap.store(Arc::new(Snapshot {
            queues: (0..queues)
                .filter_map(|q| r.queue_stats(QueueId(q as u16)))
                .collect(),
            commands,
            decisions: r.decisions(),
        }));
    }
}
