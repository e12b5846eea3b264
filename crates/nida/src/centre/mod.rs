//! The contact centre: joins calls, agents' phones and the routing core.
//!
//! Calls waiting for an agent, registrations and agent commands come in as
//! [`ToCentre`] messages on one queue; the centre's task owns the routing
//! core and is its single writer: it applies them in order, fires the
//! core's timers, and sends what the core decides (offer, withdraw,
//! connected, position, exit) straight to the call it concerns, whose task
//! places the agent's INVITE: two messages from a decision to the wire.
//! Readers (the API, metrics) load published snapshots. The centre holds
//! no call media.

pub mod live;

use crate::base::bus::ToCall;
use crate::config::features::AgentCommand;
use crate::config::{queue_config, AgentDef, Config, QueueDef};
use nida_acd::writer::{Command, Publisher};
use nida_acd::{
    AgentConfig, AgentId, Channel, EndReason, Exit, LangId, Output, QueueId, Router, SkillId,
    TaskId, TaskSpec,
};
use nida_call::FromCentre;
pub use nida_call::{static_target, CallInfo, Target};
use nida_sip::registrar::Binding;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};
use tracing::{info, warn};

/// Messages to the centre.
#[derive(Debug)]
pub enum ToCentre {
    /// A softphone registered.
    Registered(Binding),
    /// A registration ended.
    Unregistered(String),
    /// A call's request (join, abandon, accept, reject, complete,
    /// position); `call` is where the core's word about it goes.
    Call {
        /// The call's channel.
        call: mpsc::Sender<ToCall>,
        /// The request.
        m: nida_call::ToCentre,
    },
    /// An agent's state, by the agent (feature code) or a supervisor.
    Agent(AgentId, AgentCommand),
    /// The agent page holds (true) or resumes the agent's caller.
    Hold(AgentId, bool),
    /// The agent page consults a colleague or a number, or settles the
    /// consult.
    Consult {
        /// The consulting agent.
        agent: AgentId,
        /// What to do.
        what: ConsultRequest,
        /// Whether it is under way, or why not.
        reply: tokio::sync::oneshot::Sender<Result<(), ConsultRefusal>>,
    },
    /// A supervisor asks to join a talking call (or switch mode in it).
    Supervise {
        /// The supervisor's user name.
        user: String,
        /// The call's task.
        task: TaskId,
        /// How.
        mode: nida_call::SuperviseMode,
        /// Whether nida rings their phone, or why not.
        reply: tokio::sync::oneshot::Sender<Result<(), SuperviseRefusal>>,
    },
}

/// What the agent page asks of a consult.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsultRequest {
    /// Consult this (available) agent.
    Agent(u32),
    /// Consult this number.
    Number(String),
    /// Consult the available agent of this queue who has waited longest.
    Queue(String),
    /// Complete, cancel or join the consult under way.
    Action(nida_call::ConsultAction),
}

/// Why a consult cannot start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConsultRefusal {
    /// The agent talks to nobody.
    #[error("the agent is on no call")]
    NoCall,
    /// The colleague is not available (or not reachable).
    #[error("that agent is not available")]
    Unavailable,
    /// Nobody of that queue is available.
    #[error("no agent of that queue is available")]
    NobodyFree,
}

/// Why a supervisor may not join a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SuperviseRefusal {
    /// No supervisor of that name.
    #[error("no such supervisor")]
    NoSupervisor,
    /// No call of that task talks to an agent.
    #[error("no call of that id is talking to an agent")]
    NotTalking,
    /// The call's queue or agent is outside the supervisor's.
    #[error("the call's queue or agent is not one of the supervisor's")]
    Forbidden,
    /// The supervisor's phone is not registered (and has no contact).
    #[error("the supervisor's phone is not registered")]
    Unreachable,
}

/// Names to the core's numbers: queues, skills, languages.
#[derive(Debug, Default)]
struct Directory {
    queues: HashMap<String, QueueId>,
    skills: HashMap<String, SkillId>,
    langs: HashMap<String, LangId>,
}

impl Directory {
    fn skill(&mut self, name: &str) -> SkillId {
        let next = SkillId(self.skills.len() as u16);
        *self.skills.entry(name.to_string()).or_insert(next)
    }

    fn lang(&mut self, name: &str) -> LangId {
        let next = LangId(self.langs.len().min(63) as u8);
        *self.langs.entry(name.to_string()).or_insert(next)
    }
}

/// A change of an agent's state, for the event stream.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CentreEvent {
    /// A call waits for an agent.
    Queued {
        /// Task.
        task: u64,
        /// The call.
        info: CallInfo,
    },
    /// An agent is offered a call: the screen pop.
    Offer {
        /// Agent id.
        agent: u32,
        /// Task.
        task: u64,
        /// The call.
        info: CallInfo,
    },
    /// An agent took a call.
    Connected {
        /// Agent id.
        agent: u32,
        /// Task.
        task: u64,
    },
    /// A call left the core.
    Ended {
        /// Task.
        task: u64,
        /// Why, as text.
        reason: String,
    },
    /// An agent's state changed.
    AgentState {
        /// Agent id.
        agent: u32,
        /// The new state, as text.
        state: String,
    },
}

/// The handle calls and the driver use.
#[derive(Clone)]
pub struct CentreHandle {
    /// Messages to the centre.
    pub tx: mpsc::Sender<ToCentre>,
    /// Events (offers with screen pop, states) for the API's stream.
    pub events: broadcast::Sender<CentreEvent>,
    /// Queue settings by name.
    pub queues: Arc<BTreeMap<String, QueueDef>>,
    /// The same queues' rules as calls follow them.
    pub rules: Arc<BTreeMap<String, nida_call::QueueRules>>,
    /// Agent id by SIP user.
    pub agents_by_user: Arc<HashMap<String, u32>>,
    /// The live board (calls and agents).
    pub live: tokio::sync::watch::Receiver<Arc<crate::centre::live::LiveView>>,
    /// The routing core's statistics, per queue in the order of `queues`.
    pub stats: nida_acd::writer::SnapshotReader,
    /// The numbers with a call-back pending.
    pub bookings: nida_call::bookings::Bookings,
    /// Opening hours.
    pub calendars: Arc<nida_call::calendar::Calendars>,
    /// The supervisors (for the wallboard's choice), without secrets.
    pub supervisors: Arc<Vec<serde_json::Value>>,
}

/// Starts the centre: the routing core thread and the task that serves it.
/// `flow_queues` are the queue names the flows use (queues the config does
/// not list get the defaults).
pub fn start(
    cfg: &Config,
    flow_queues: BTreeMap<String, BTreeSet<crate::centre::live::Skills>>,
) -> CentreHandle {
    let mut defs: BTreeMap<String, QueueDef> = cfg.queues.clone();
    for q in flow_queues.keys() {
        defs.entry(q.clone()).or_default();
    }
    let mut dir = Directory::default();
    let mut queues = Vec::new();
    for (i, (name, d)) in defs.iter().enumerate() {
        dir.queues.insert(name.clone(), QueueId(i as u16));
        queues.push(queue_config(name, d).expect("checked when the config was read"));
    }
    // Exits into another queue, now that every queue has its id.
    for (q, (name, d)) in queues.iter_mut().zip(&defs) {
        if let (Some(secs), Some(crate::config::QueueExit::Queue(other))) =
            (d.max_wait_seconds, &d.exit)
        {
            match dir.queues.get(other) {
                Some(id) => q.max_wait = Some((Duration::from_secs(secs), Exit::Queue(*id))),
                None => {
                    warn!(queue = %name, exit = %other, "exit to an unknown queue: call-back instead")
                }
            }
        }
    }
    let n = queues.len();
    let mut router = Router::new(queues, cfg.seed.unwrap_or(1));
    let (publisher, stats) = Publisher::new(n);
    let now = Instant::now();
    let mut agents = HashMap::new();
    let mut by_user = HashMap::new();
    for a in &cfg.agents {
        router.add_agent(now, agent_config(&mut dir, a));
        by_user.insert(a.user.clone(), a.id);
        agents.insert(a.id, a.clone());
    }
    let (tx, rx) = mpsc::channel(65_536);
    let (events, _) = broadcast::channel(4096);
    let by_user = Arc::new(by_user);
    let (board, live) = crate::centre::live::Board::new(
        cfg.agents
            .iter()
            .map(|a| crate::centre::live::LiveAgent {
                id: a.id,
                user: a.user.clone(),
                name: a.name.clone(),
                languages: a.languages.clone(),
                skills: a.skills.clone(),
                state: "logged_out",
                reason: None,
                since: crate::clock::unix_now(),
                task: None,
            })
            .collect(),
        flow_queues,
    );
    let rules = defs.iter().map(|(n, d)| (n.clone(), d.rules())).collect();
    let centre = Centre {
        board,
        router,
        publisher,
        dir,
        agents,
        by_user: by_user.clone(),
        targets: HashMap::new(),
        calls: HashMap::new(),
        talking: HashMap::new(),
        supervisors: cfg
            .supervisors
            .iter()
            .map(|s| (s.user.clone(), s.clone()))
            .collect(),
        supervisor_targets: cfg
            .supervisors
            .iter()
            .filter_map(|s| {
                let t = static_target(s.contact.as_ref()?)?;
                Some((s.user.clone(), t))
            })
            .collect(),
        events: events.clone(),
    };
    // Agents with a fixed contact are reachable at once.
    let statics: Vec<(u32, Option<Target>)> = cfg
        .agents
        .iter()
        .filter_map(|a| a.contact.as_ref().map(|c| (a.id, static_target(c))))
        .collect();
    tokio::spawn(centre.run(rx, statics));
    CentreHandle {
        tx,
        events,
        queues: Arc::new(defs),
        rules: Arc::new(rules),
        calendars: Arc::new(cfg.calendars()),
        agents_by_user: by_user,
        live,
        stats,
        bookings: Default::default(),
        supervisors: Arc::new(
            cfg.supervisors
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "user": s.user,
                        "name": s.name,
                        "queues": s.queues,
                        "agents": s.agents,
                    })
                })
                .collect(),
        ),
    }
}

fn agent_config(dir: &mut Directory, a: &AgentDef) -> AgentConfig {
    AgentConfig {
        id: AgentId(a.id),
        skills: a.skills.iter().map(|(s, l)| (dir.skill(s), *l)).collect(),
        languages: a.languages.iter().map(|l| dir.lang(l)).collect(),
        capacity: [1, 0, 0],
        weight: 1,
    }
}

struct Waiting {
    call: mpsc::Sender<ToCall>,
    info: CallInfo,
}

/// Messages applied before the snapshot is published and the core's
/// outputs go out.
const BATCH: usize = 4096;

struct Centre {
    board: crate::centre::live::Board,
    router: Router,
    publisher: Publisher,
    dir: Directory,
    agents: HashMap<u32, AgentDef>,
    by_user: Arc<HashMap<String, u32>>,
    targets: HashMap<u32, Target>,
    calls: HashMap<TaskId, Waiting>,
    /// The task each agent talks on.
    talking: HashMap<u32, TaskId>,
    /// Supervisors by user name, and where their phones are.
    supervisors: HashMap<String, crate::config::SupervisorDef>,
    supervisor_targets: HashMap<String, Target>,
    events: broadcast::Sender<CentreEvent>,
}

impl Centre {
    /// The single writer: messages in order, the core's timers, its
    /// decisions out, the snapshot published after each batch.
    async fn run(mut self, mut rx: mpsc::Receiver<ToCentre>, statics: Vec<(u32, Option<Target>)>) {
        for (id, target) in statics {
            match target {
                Some(t) => {
                    self.targets.insert(id, t);
                    self.command(Command::Login(AgentId(id)));
                    self.command(Command::Ready(AgentId(id)));
                }
                None => warn!(agent = id, "agent contact is not sip:user@ip:port: ignored"),
            }
        }
        let mut publish = tokio::time::interval(Duration::from_millis(200));
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            self.outputs().await;
            self.publisher.publish(&self.router);
            let wake = self
                .router
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                n = rx.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        break;
                    }
                    for m in batch.drain(..) {
                        self.handle(m);
                    }
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                    self.router.handle_timeout(Instant::now());
                }
                _ = publish.tick() => self.board.publish(),
            }
        }
    }

    fn command(&mut self, c: Command) {
        self.publisher.applied(1);
        // A command about a task or agent the core no longer knows (the
        // call left meanwhile) changes nothing.
        let _ = self.router.apply(Instant::now(), c);
    }

    fn handle(&mut self, m: ToCentre) {
        match m {
            ToCentre::Registered(b) if self.supervisors.contains_key(&b.user) => {
                info!(user = %b.user, source = %b.source, "supervisor registered");
                self.supervisor_targets
                    .insert(b.user.clone(), Target::from(&b));
            }
            ToCentre::Unregistered(user) if self.supervisors.contains_key(&user) => {
                let fixed = self.supervisors[&user]
                    .contact
                    .as_ref()
                    .and_then(|c| static_target(c));
                match fixed {
                    Some(t) => self.supervisor_targets.insert(user, t),
                    None => self.supervisor_targets.remove(&user),
                };
            }
            ToCentre::Registered(b) => {
                let Some(a) = self.by_user.get(&b.user).and_then(|id| self.agents.get(id)) else {
                    return;
                };
                let id = a.id;
                let ready = a.ready_on_register;
                info!(agent = id, user = %b.user, source = %b.source, "agent registered");
                self.targets.insert(id, Target::from(&b));
                if ready {
                    self.command(Command::Login(AgentId(id)));
                    self.command(Command::Ready(AgentId(id)));
                }
            }
            ToCentre::Unregistered(user) => {
                if let Some(a) = self.by_user.get(&user).and_then(|id| self.agents.get(id)) {
                    let id = a.id;
                    info!(agent = id, %user, "agent unregistered: logged out");
                    self.targets.remove(&id);
                    self.command(Command::Logout(AgentId(id)));
                }
            }
            ToCentre::Call { call, m } => self.call_request(call, m),
            ToCentre::Agent(a, c) => self.command(match c {
                AgentCommand::Login => Command::Login(a),
                AgentCommand::Ready => Command::Ready(a),
                AgentCommand::NotReady(why) => Command::NotReady(a, why),
                AgentCommand::Logout => Command::Logout(a),
            }),
            ToCentre::Hold(a, on) => match self.talking.get(&a.0).copied() {
                Some(task) => {
                    if let Some(w) = self.calls.get(&task) {
                        let _ = w.call.try_send(ToCall::centre(FromCentre::Hold(on)));
                    }
                }
                None => info!(agent = a.0, "hold asked of an agent on no call"),
            },
            ToCentre::Consult { agent, what, reply } => {
                let _ = reply.send(self.consult(agent, what));
            }
            ToCentre::Supervise {
                user,
                task,
                mode,
                reply,
            } => {
                let _ = reply.send(self.supervise(user, task, mode));
            }
        }
    }

    /// The agent page's consult: a colleague kept out of routing (and
    /// shown the caller's data), a number, or the consult's end.
    fn consult(&mut self, agent: AgentId, what: ConsultRequest) -> Result<(), ConsultRefusal> {
        let task = self
            .talking
            .get(&agent.0)
            .copied()
            .ok_or(ConsultRefusal::NoCall)?;
        let w = self.calls.get(&task).ok_or(ConsultRefusal::NoCall)?;
        let what = match what {
            ConsultRequest::Queue(q) => ConsultRequest::Agent(
                self.board
                    .view()
                    .longest_available(&q, agent.0)
                    .ok_or(ConsultRefusal::NobodyFree)?,
            ),
            other => other,
        };
        let (m, colleague) = match what {
            ConsultRequest::Action(a) => (FromCentre::ConsultAction(a), None),
            ConsultRequest::Number(n) => (
                FromCentre::Consult(nida_call::ConsultTarget::Number(n)),
                None,
            ),
            ConsultRequest::Queue(_) => return Err(ConsultRefusal::NobodyFree),
            ConsultRequest::Agent(other) => {
                let other = AgentId(other);
                let free = self.router.agent_state(other) == Some(&nida_acd::AgentState::Available);
                let target = self
                    .targets
                    .get(&other.0)
                    .filter(|_| free && other != agent)
                    .cloned()
                    .ok_or(ConsultRefusal::Unavailable)?;
                (
                    FromCentre::Consult(nida_call::ConsultTarget::Agent {
                        agent: other,
                        target,
                    }),
                    Some(other),
                )
            }
        };
        w.call
            .try_send(ToCall::centre(m))
            .map_err(|_| ConsultRefusal::NoCall)?;
        if let Some(other) = colleague {
            info!(
                agent = agent.0,
                colleague = other.0,
                "consult: colleague kept out of routing"
            );
            let _ = self.events.send(CentreEvent::Offer {
                agent: other.0,
                task: task.0,
                info: w.info.clone(),
            });
            self.command(Command::NotReady(other, "consult".into()));
        }
        Ok(())
    }

    /// A supervisor joins a talking call their queues allow.
    fn supervise(
        &mut self,
        user: String,
        task: TaskId,
        mode: nida_call::SuperviseMode,
    ) -> Result<(), SuperviseRefusal> {
        let s = self
            .supervisors
            .get(&user)
            .ok_or(SuperviseRefusal::NoSupervisor)?;
        let agent = self
            .talking
            .iter()
            .find(|(_, t)| **t == task)
            .map(|(a, _)| *a)
            .ok_or(SuperviseRefusal::NotTalking)?;
        let w = self.calls.get(&task).ok_or(SuperviseRefusal::NotTalking)?;
        if !s.may_join(&w.info.queue, agent) {
            warn!(supervisor = %user, queue = %w.info.queue, agent, "listen-in outside the supervisor's queues or agents refused");
            return Err(SuperviseRefusal::Forbidden);
        }
        let target = self
            .supervisor_targets
            .get(&user)
            .cloned()
            .ok_or(SuperviseRefusal::Unreachable)?;
        info!(supervisor = %user, task = task.0, mode = mode.as_str(), "supervisor joins a call");
        let m = FromCentre::Supervise {
            supervisor: user,
            target,
            mode,
        };
        w.call
            .try_send(ToCall::centre(m))
            .map_err(|_| SuperviseRefusal::NotTalking)
    }

    fn call_request(&mut self, call: mpsc::Sender<ToCall>, m: nida_call::ToCentre) {
        use nida_call::ToCentre as R;
        match m {
            R::Enqueue {
                task,
                skills,
                priority,
                info,
            } => {
                let Some(queue) = self.dir.queues.get(&info.queue).copied() else {
                    warn!(queue = %info.queue, "no such queue");
                    let _ = call.try_send(ToCall::centre(FromCentre::Refused));
                    return;
                };
                let spec = TaskSpec {
                    id: task,
                    queue,
                    skills: skills
                        .iter()
                        .map(|(s, l)| (self.dir.skill(s), *l))
                        .collect(),
                    language: self.dir.lang(&info.language),
                    priority,
                    channel: Channel::Voice,
                };
                let _ = self.events.send(CentreEvent::Queued {
                    task: task.0,
                    info: info.clone(),
                });
                self.board
                    .queued(task.0, info.clone(), &skills, crate::clock::unix_now());
                self.calls.insert(task, Waiting { call, info });
                self.command(Command::Enqueue(spec));
            }
            R::Abandon(t) => self.command(Command::Abandon(t)),
            R::Reschedule(t) => self.command(Command::Reschedule(t)),
            R::Accept(a, t) => self.command(Command::Accept(a, t)),
            R::Reject(a, t) => self.command(Command::Reject(a, t)),
            R::Complete(t) => self.command(Command::Complete(t)),
            R::Position(t) => self.command(Command::Position(t)),
            R::HandedTo(a, t) => {
                if let Some(w) = self.calls.get(&t) {
                    let _ = self.events.send(CentreEvent::Offer {
                        agent: a.0,
                        task: t.0,
                        info: w.info.clone(),
                    });
                }
            }
            R::ConsultOver(a) => {
                info!(agent = a.0, "consult over: ready again");
                self.command(Command::Ready(a));
            }
        }
    }

    async fn send_to(&self, task: TaskId, m: FromCentre) -> bool {
        match self.calls.get(&task) {
            Some(w) => w.call.send(ToCall::centre(m)).await.is_ok(),
            None => false,
        }
    }

    /// Sends the core's decisions where they go.
    async fn outputs(&mut self) {
        while let Some(o) = self.router.poll_output() {
            self.output(o).await;
        }
    }

    async fn output(&mut self, o: Output) {
        match o {
            Output::Offer { task, agent } => {
                let Some(target) = self.targets.get(&agent.0).cloned() else {
                    warn!(
                        agent = agent.0,
                        "offered an agent nida cannot reach: not ready"
                    );
                    self.command(Command::NotReady(agent, "unreachable".into()));
                    return;
                };
                self.board.call_state(task.0, "ringing", Some(agent.0));
                if let Some(w) = self.calls.get(&task) {
                    let _ = self.events.send(CentreEvent::Offer {
                        agent: agent.0,
                        task: task.0,
                        info: w.info.clone(),
                    });
                }
                let name = self
                    .agents
                    .get(&agent.0)
                    .map(|a| a.name.clone())
                    .unwrap_or_default();
                let offer = FromCentre::Offer {
                    agent,
                    target,
                    name,
                };
                if !self.send_to(task, offer).await {
                    // The call is gone: its abandon is on the way.
                    self.command(Command::Reject(agent, task));
                }
            }
            Output::Withdraw { task, agent } => {
                self.send_to(task, FromCentre::Withdraw(agent)).await;
            }
            Output::Connected { task, agent } => {
                self.talking.insert(agent.0, task);
                self.board.call_state(task.0, "talking", Some(agent.0));
                let _ = self.events.send(CentreEvent::Connected {
                    agent: agent.0,
                    task: task.0,
                });
                if !self.send_to(task, FromCentre::Connected(agent)).await {
                    self.command(Command::Complete(task));
                }
            }
            Output::Position { task, place, wait } => {
                self.send_to(task, FromCentre::Position { place, wait })
                    .await;
            }
            Output::Ended { task, reason } => {
                let _ = self.events.send(CentreEvent::Ended {
                    task: task.0,
                    reason: format!("{reason:?}"),
                });
                match reason {
                    EndReason::Exited(exit) => {
                        self.send_to(task, FromCentre::Exit(exit)).await;
                    }
                    EndReason::Refused(_) => {
                        self.send_to(task, FromCentre::Refused).await;
                    }
                    EndReason::Completed | EndReason::Abandoned | EndReason::Rescheduled => {}
                }
                self.calls.remove(&task);
                self.talking.retain(|_, t| *t != task);
                self.board.ended(task.0);
            }
            Output::AgentState { agent, state } => {
                info!(agent = agent.0, ?state, "agent state");
                self.board.agent(agent.0, &state, crate::clock::unix_now());
                let _ = self.events.send(CentreEvent::AgentState {
                    agent: agent.0,
                    state: format!("{state:?}"),
                });
            }
        }
    }
}
