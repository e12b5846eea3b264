//! The routing core's vocabulary: agents, tasks (calls, chats, e-mails),
//! queues with their strategy and escalation rules, and what the core
//! reports.

use std::time::Duration;

/// An agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(pub u32);

/// A task waiting for an agent: a call, a chat, an e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub u64);

/// A queue, by index in the core's queue list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub u16);

/// A skill, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SkillId(pub u16);

/// A language, by index (at most 64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LangId(pub u8);

/// The kind of work; agents have a capacity per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// A phone call.
    Voice,
    /// A web chat.
    Chat,
    /// An e-mail.
    Email,
}

impl Channel {
    pub(crate) fn index(self) -> usize {
        match self {
            Channel::Voice => 0,
            Channel::Chat => 1,
            Channel::Email => 2,
        }
    }
}

/// How a queue picks among the agents who can take a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The agent idle the longest (the default).
    LongestIdle,
    /// The highest level in the task's skills, then the longest idle.
    BestSkill,
    /// Agents in turn, by id.
    RoundRobin,
    /// The agent who took the fewest tasks, then the longest idle.
    FewestCalls,
    /// Offer to every matching agent; the first to accept wins.
    RingAll,
    /// Random, weighted by the agent's weight (a seeded generator).
    WeightedRandom,
}

/// Where a task goes when it has waited too long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Leave a voice message.
    Voicemail,
    /// Be called back later, keeping the request.
    Callback,
    /// Move to another queue (keeping the original arrival time).
    Queue(QueueId),
    /// Continue in an IVR flow.
    Flow(String),
}

/// What changes after a task has waited a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relax {
    /// Lower the minimum level of a skill.
    SkillLevel(SkillId, u8),
    /// Accept agents who have this skill at this level instead of the
    /// task's skills (an overflow skill set).
    OverflowSkill(SkillId, u8),
    /// Also accept agents speaking this language.
    Language(LangId),
    /// Move to another queue (keeping the original arrival time).
    Queue(QueueId),
}

/// One escalation step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// Waiting time after which the step applies.
    pub after: Duration,
    /// What it relaxes.
    pub relax: Relax,
}

/// A queue's rules.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Name.
    pub name: String,
    /// Agent choice.
    pub strategy: Strategy,
    /// How long an agent has to accept an offer.
    pub offer_timeout: Duration,
    /// Time after a task before the agent is offered the next.
    pub wrap_up: Duration,
    /// Missed offers in a row after which the agent goes not ready.
    pub max_missed: u32,
    /// An agent who rejected or missed a task is not offered it again
    /// before this (others get their chance first).
    pub reoffer_after: Duration,
    /// Most tasks waiting; more are refused.
    pub max_len: Option<usize>,
    /// Longest wait, and where the task goes then.
    pub max_wait: Option<(Duration, Exit)>,
    /// Accept tasks when no agent who could take them is logged in.
    pub join_when_empty: bool,
    /// Send waiting tasks to `max_wait`'s exit (or refuse) when the last
    /// agent who could take them logs out.
    pub leave_when_empty: bool,
    /// Escalation steps, in order of `after`.
    pub escalations: Vec<Escalation>,
    /// Service-level threshold (answered within this counts as in service).
    pub service_level: Duration,
}

impl QueueConfig {
    /// A queue with the usual defaults: longest idle, 20 s to accept,
    /// 10 s wrap-up, not ready after 3 missed offers, the same task offered
    /// again to an agent who missed it after 10 s, join and stay even
    /// when no agent is logged in, 20 s service level.
    pub fn new(name: &str) -> QueueConfig {
        QueueConfig {
            name: name.to_string(),
            strategy: Strategy::LongestIdle,
            offer_timeout: Duration::from_secs(20),
            wrap_up: Duration::from_secs(10),
            max_missed: 3,
            reoffer_after: Duration::from_secs(10),
            max_len: None,
            max_wait: None,
            join_when_empty: true,
            leave_when_empty: false,
            escalations: Vec::new(),
            service_level: Duration::from_secs(20),
        }
    }
}

/// An agent's profile.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Id.
    pub id: AgentId,
    /// Skills with levels 1 to 10.
    pub skills: Vec<(SkillId, u8)>,
    /// Languages spoken.
    pub languages: Vec<LangId>,
    /// Tasks at once per channel: voice, chat, e-mail.
    pub capacity: [u8; 3],
    /// Weight for weighted random choice (0 = never chosen by it).
    pub weight: u32,
}

/// A task to route.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// Id chosen by the caller of the core.
    pub id: TaskId,
    /// The queue.
    pub queue: QueueId,
    /// Required skills with minimum levels.
    pub skills: Vec<(SkillId, u8)>,
    /// The language the task needs.
    pub language: LangId,
    /// Priority: higher first.
    pub priority: u8,
    /// Channel.
    pub channel: Channel,
}

/// Why an agent is not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// Chosen by the agent (break, training, ...).
    Reason(String),
    /// Too many missed offers in a row.
    MissedOffers,
}

/// An agent's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentState {
    /// Not working.
    LoggedOut,
    /// Waiting for work.
    Available,
    /// Offered a task, not yet accepted.
    Offered(TaskId),
    /// Working on tasks (at capacity or not).
    Busy,
    /// After a task, until the wrap-up time is over.
    WrapUp,
    /// Logged in but not taking work.
    NotReady(NotReady),
}

/// Why a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The agent finished it.
    Completed,
    /// The caller left while waiting or while it was offered.
    Abandoned,
    /// The caller chose a call-back at a later time.
    Rescheduled,
    /// Refused at entry.
    Refused(Refusal),
    /// Left the queue by its rules.
    Exited(Exit),
}

/// Why a task was refused at entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The queue is full.
    QueueFull,
    /// No agent who could take it is logged in.
    NoAgents,
    /// The queue does not exist.
    UnknownQueue,
    /// The id is already in use.
    DuplicateTask,
}

/// What the core asks the shell to do or tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Ring this agent for this task.
    Offer {
        /// The task.
        task: TaskId,
        /// The agent.
        agent: AgentId,
    },
    /// Stop ringing this agent for this task.
    Withdraw {
        /// The task.
        task: TaskId,
        /// The agent.
        agent: AgentId,
    },
    /// The agent accepted: bridge them.
    Connected {
        /// The task.
        task: TaskId,
        /// The agent.
        agent: AgentId,
    },
    /// The task is over for the core.
    Ended {
        /// The task.
        task: TaskId,
        /// Why.
        reason: EndReason,
    },
    /// Place in line and estimated wait, as asked with
    /// `Router::ask_position` (for announcements).
    Position {
        /// The task.
        task: TaskId,
        /// 1 is next.
        place: usize,
        /// Estimated wait.
        wait: Duration,
    },
    /// An agent's state changed.
    AgentState {
        /// The agent.
        agent: AgentId,
        /// The new state.
        state: AgentState,
    },
}
