//! The IVR interpreter: runs one call through a flow, sans-IO.
//!
//! The shell (the daemon's call task, or the terminal simulator) feeds it
//! key presses, the end of each prompt, lookup results and timer expiries,
//! and carries out the [`Action`]s it asks for. It never reads the clock:
//! `now` comes with every input and [`Session::poll_timeout`] says when to
//! wake it.

use crate::check::{Flow, FlowSet, Node, Step};
use crate::expr::{Template, Value, Vars};
use crate::flow::{PromptItem, Prompts};
use crate::say;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A prompt to play: language folder and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptRef {
    /// Language.
    pub lang: String,
    /// Prompt name.
    pub name: String,
}

/// A request for the routing core.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRequest {
    /// Queue name.
    pub queue: String,
    /// Skill to minimum level.
    pub skills: BTreeMap<String, u8>,
    /// The caller's language.
    pub language: String,
    /// Priority.
    pub priority: u8,
}

/// A voice message to take.
#[derive(Debug, Clone, PartialEq)]
pub struct VoicemailRequest {
    /// The queue it is for.
    pub queue: String,
    /// The greeting (empty: the standard one).
    pub greeting: Vec<PromptRef>,
    /// The longest message.
    pub max: Duration,
    /// Silence that ends it.
    pub silence: Duration,
    /// The caller's language.
    pub language: String,
}

/// What the interpreter asks the shell to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Play these prompts in order, then call `handle_playback_done`.
    Play(Vec<PromptRef>),
    /// Stop playing at once (the caller pressed a key).
    StopPlayback,
    /// Ask a backend; answer with `handle_lookup(id, ...)`.
    Lookup {
        /// Matches the answer to the request.
        id: u64,
        /// Service name.
        service: String,
        /// Parameters.
        params: BTreeMap<String, String>,
    },
    /// Register a call-back request for this caller.
    Callback {
        /// Queue of the call-back.
        queue: String,
    },
    /// Hand the call to an agent queue (the flow ends here).
    Queue(QueueRequest),
    /// Take a voice message for a queue (the flow ends here).
    Voicemail(VoicemailRequest),
    /// End the call.
    Hangup,
}

/// A backend's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum LookupResult {
    /// The record's fields.
    Found(BTreeMap<String, Value>),
    /// No such record.
    NotFound,
    /// The backend failed or timed out.
    Error(String),
}

/// Opening hours, for `open("calendar")` in conditions.
pub trait Hours: Send + Sync + std::fmt::Debug {
    /// Whether `calendar` is open at `unix` (seconds); `None` when there
    /// is no such calendar.
    fn is_open(&self, calendar: &str, unix: i64) -> Option<bool>;
}

/// What a session reads besides the call: the wall clock at its start
/// (later times follow from the `now` of each input) and the calendars.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// Unix seconds at the session's start.
    pub unix: i64,
    /// The calendars; without them every calendar is closed.
    pub hours: Option<Arc<dyn Hours>>,
}

/// How a lookup went, for the call's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The record was found.
    Found,
    /// No such record.
    NotFound,
    /// The backend failed or did not answer in time.
    Failed,
}

/// A choice or a lookup on the caller's way through the flows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// A menu's key.
    Choice {
        /// `flow/node` of the menu.
        node: String,
        /// The key.
        digit: char,
    },
    /// A lookup and how it went.
    Lookup {
        /// `flow/node` of the lookup.
        node: String,
        /// The backend.
        service: String,
        /// How it went.
        served: Served,
    },
}

/// Most marks kept (a caller looping in a menu cannot grow them further).
const MAX_MARKS: usize = 256;

/// How the session ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Still running.
    Running,
    /// Queued for an agent.
    Queued(QueueRequest),
    /// Handed to voicemail for a queue.
    Voicemail(String),
    /// Hung up by the flow.
    HungUp,
    /// Stopped by an error in the flow at run time.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Wait {
    /// Nothing: run the next node.
    None,
    /// Prompts playing, then go to the node.
    Play { then: Option<String> },
    /// A menu: prompt playing or waiting for a key.
    Menu { tries: u32, playing: bool },
    /// Collecting digits.
    Collect {
        tries: u32,
        digits: String,
        playing: bool,
    },
    /// Waiting for 1 (confirm) or 2 (again) after the read-back.
    Confirm {
        tries: u32,
        digits: String,
        playing: bool,
    },
    /// Waiting for a backend.
    Lookup { id: u64 },
    /// Offer playing or waiting for the key.
    Callback { playing: bool },
    /// Finished.
    Done,
}

/// Limit of nodes run without the caller doing anything: a guard behind
/// the checker's loop detection.
const MAX_QUIET_STEPS: u32 = 1000;

/// One call's run through the flows.
#[derive(Debug)]
pub struct Session {
    flows: Arc<FlowSet>,
    flow: Arc<Flow>,
    stack: Vec<(Arc<Flow>, String)>,
    node: String,
    lang: String,
    vars: Vars,
    wait: Wait,
    deadline: Option<Instant>,
    actions: VecDeque<Action>,
    path: Vec<String>,
    outcome: Outcome,
    next_lookup: u64,
    steps: u64,
    /// Keys pressed while a plain prompt played, kept for the next menu or
    /// collection (type-ahead for callers who know the menus).
    typeahead: VecDeque<char>,
    env: Env,
    started: Instant,
    marks: Vec<Mark>,
}

/// Most keys kept for type-ahead.
const TYPEAHEAD: usize = 32;

impl Session {
    /// Starts `flow` for a call; `vars` holds what the call brings (caller,
    /// called number).
    pub fn new(now: Instant, flows: Arc<FlowSet>, flow: &str, vars: Vars) -> Option<Session> {
        Session::start(now, Env::default(), flows, flow, vars)
    }

    /// [`Session::new`] with the wall clock and the calendars.
    pub fn start(
        now: Instant,
        env: Env,
        flows: Arc<FlowSet>,
        flow: &str,
        vars: Vars,
    ) -> Option<Session> {
        let f = flows.get(flow)?.clone();
        // A language given by the caller's context (a trunk, a dialled
        // number) is used when the flow has it; otherwise the flow's first.
        let lang = match vars.get("language") {
            Some(Value::Str(l)) if f.languages.contains(l) => l.clone(),
            _ => f.languages[0].clone(),
        };
        let mut s = Session {
            lang,
            node: f.start.clone(),
            flow: f,
            flows,
            stack: Vec::new(),
            vars,
            wait: Wait::None,
            deadline: None,
            actions: VecDeque::new(),
            path: Vec::new(),
            outcome: Outcome::Running,
            next_lookup: 1,
            steps: 0,
            typeahead: VecDeque::new(),
            env,
            started: now,
            marks: Vec::new(),
        };
        s.run(now);
        Some(s)
    }

    /// The call's language now.
    pub fn language(&self) -> &str {
        &self.lang
    }

    /// The nodes visited, as `flow/node` (the IVR path for screen pops).
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// The menu choices and lookups so far, in order.
    pub fn marks(&self) -> &[Mark] {
        &self.marks
    }

    /// The flow and node the session is at, as `flow/node`.
    pub fn at(&self) -> String {
        format!("{}/{}", self.flow.name, self.node)
    }

    fn mark(&mut self, m: Mark) {
        if self.marks.len() < MAX_MARKS {
            self.marks.push(m);
        }
    }

    /// The call's variables.
    pub fn vars(&self) -> &Vars {
        &self.vars
    }

    /// How the session stands.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// Nodes run so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Next action for the shell.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When to call [`Session::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    fn node(&self) -> Arc<Node> {
        self.flow.nodes[&self.node].clone()
    }

    fn render(&self, list: &Prompts) -> Result<Vec<PromptRef>, String> {
        let mut out = Vec::new();
        for item in list {
            match &item.value {
                PromptItem::Name(t) => {
                    let name = Template::parse(t)
                        .map_err(|e| e.to_string())?
                        .render(&self.vars);
                    out.push(PromptRef {
                        lang: self.lang.clone(),
                        name,
                    });
                }
                PromptItem::Say { say: kind, value } => {
                    let v = Template::parse(value)
                        .map_err(|e| e.to_string())?
                        .render(&self.vars);
                    for name in say::say(&self.lang, *kind, &v).map_err(|e| e.to_string())? {
                        out.push(PromptRef {
                            lang: self.lang.clone(),
                            name,
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    fn play(&mut self, lists: &[&Prompts]) {
        let mut refs = Vec::new();
        for l in lists {
            match self.render(l) {
                Ok(r) => refs.extend(r),
                Err(e) => {
                    self.fail(e);
                    return;
                }
            }
        }
        self.actions.push_back(Action::Play(refs));
    }

    /// The wait state names a node kind the current node is not: cannot
    /// happen with a checked flow; the call fails cleanly rather than stall.
    fn mismatch(&mut self) {
        self.fail("the node does not match what the call waits for".into());
    }

    fn fail(&mut self, why: String) {
        self.outcome = Outcome::Failed(format!("{}/{}: {why}", self.flow.name, self.node));
        self.wait = Wait::Done;
        self.deadline = None;
        self.actions.push_back(Action::Hangup);
    }

    fn goto(&mut self, target: &str) {
        self.node = target.to_string();
        self.wait = Wait::None;
        self.deadline = None;
    }

    /// Runs nodes until one waits.
    fn run(&mut self, now: Instant) {
        let mut quiet = 0;
        while self.wait == Wait::None {
            quiet += 1;
            if quiet > MAX_QUIET_STEPS {
                self.fail("too many steps without the caller".into());
                return;
            }
            self.steps += 1;
            self.path.push(format!("{}/{}", self.flow.name, self.node));
            self.enter(now);
        }
        self.drain_typeahead(now);
    }

    /// Gives kept keys to a node that takes keys, in order.
    fn drain_typeahead(&mut self, now: Instant) {
        while matches!(
            self.wait,
            Wait::Menu { .. } | Wait::Collect { .. } | Wait::Confirm { .. } | Wait::Callback { .. }
        ) {
            let Some(d) = self.typeahead.pop_front() else {
                break;
            };
            self.digit(now, d);
        }
    }

    fn enter(&mut self, now: Instant) {
        let node = self.node();
        match &node.step {
            Step::Play { prompts, next } => {
                self.play(&[prompts]);
                if self.wait != Wait::Done {
                    self.wait = Wait::Play {
                        then: Some(next.clone()),
                    };
                }
            }
            Step::Menu(m) => {
                self.play(&[&m.prompt]);
                if self.wait != Wait::Done {
                    self.wait = Wait::Menu {
                        tries: 0,
                        playing: true,
                    };
                }
            }
            Step::Collect { collect: c, .. } => {
                self.play(&[&c.prompt]);
                if self.wait != Wait::Done {
                    self.wait = Wait::Collect {
                        tries: 0,
                        digits: String::new(),
                        playing: true,
                    };
                }
            }
            Step::SetLanguage { lang, next } => {
                self.lang = lang.clone();
                self.vars
                    .insert("language".into(), Value::Str(self.lang.clone()));
                self.goto(next);
            }
            Step::Set { vars, next } => {
                for (k, v) in vars {
                    let val = Template::parse(&v.value)
                        .map(|t| t.render(&self.vars))
                        .unwrap_or_default();
                    self.vars.insert(k.clone(), Value::Str(val));
                }
                self.goto(next);
            }
            Step::Lookup { lookup: l, .. } => {
                let params = l
                    .params
                    .iter()
                    .map(|(k, v)| {
                        let val = Template::parse(&v.value)
                            .map(|t| t.render(&self.vars))
                            .unwrap_or_default();
                        (k.clone(), val)
                    })
                    .collect();
                let id = self.next_lookup;
                self.next_lookup += 1;
                self.actions.push_back(Action::Lookup {
                    id,
                    service: l.service.value.clone(),
                    params,
                });
                self.wait = Wait::Lookup { id };
                self.deadline = Some(now + Duration::from_millis(l.timeout_ms));
            }
            Step::Branch(arms) => {
                let unix =
                    self.env.unix + now.saturating_duration_since(self.started).as_secs() as i64;
                let hours = self.env.hours.as_deref();
                let open = |c: &str| hours.and_then(|h| h.is_open(c, unix)).unwrap_or(false);
                let hit = node
                    .conditions
                    .iter()
                    .zip(arms)
                    .find(|(c, _)| {
                        c.as_ref()
                            .is_none_or(|e| e.eval_with(&self.vars, &open).truthy())
                    })
                    .map(|(_, a)| a.goto.value.clone());
                match hit {
                    Some(t) => self.goto(&t),
                    None => self.fail("no branch arm matched".into()),
                }
            }
            Step::Queue(q) => {
                let req = QueueRequest {
                    queue: q.name.value.clone(),
                    skills: q.skills.iter().map(|(k, v)| (k.clone(), v.value)).collect(),
                    language: self.lang.clone(),
                    priority: q.priority,
                };
                self.actions.push_back(Action::Queue(req.clone()));
                self.outcome = Outcome::Queued(req);
                self.wait = Wait::Done;
            }
            Step::Voicemail(v) => {
                let greeting = match self.render(&v.prompt) {
                    Ok(g) => g,
                    Err(e) => return self.fail(e),
                };
                self.actions.push_back(Action::Voicemail(VoicemailRequest {
                    queue: v.queue.value.clone(),
                    greeting,
                    max: Duration::from_secs(u64::from(v.max_seconds.clamp(1, 600))),
                    silence: Duration::from_secs(u64::from(v.silence_seconds.clamp(1, 60))),
                    language: self.lang.clone(),
                }));
                self.outcome = Outcome::Voicemail(v.queue.value.clone());
                self.wait = Wait::Done;
            }
            Step::CallbackOffer(c) => {
                self.play(&[&c.prompt]);
                if self.wait != Wait::Done {
                    self.wait = Wait::Callback { playing: true };
                }
            }
            Step::Hangup(h) => {
                if h.prompt.is_empty() {
                    self.hang_up();
                } else {
                    self.play(&[&h.prompt]);
                    if self.wait != Wait::Done {
                        self.wait = Wait::Play { then: None };
                    }
                }
            }
            Step::Goto(target) => self.goto(target),
            Step::Call { flow: name, next } => {
                let Some(sub) = self.flows.get(name).cloned() else {
                    self.fail(format!("flow `{name}` is not loaded"));
                    return;
                };
                self.stack.push((self.flow.clone(), next.clone()));
                self.flow = sub;
                let start = self.flow.start.clone();
                self.goto(&start);
            }
            Step::Return => match self.stack.pop() {
                Some((flow, target)) => {
                    self.flow = flow;
                    self.goto(&target);
                }
                None => self.hang_up(),
            },
        }
    }

    fn hang_up(&mut self) {
        self.actions.push_back(Action::Hangup);
        self.outcome = Outcome::HungUp;
        self.wait = Wait::Done;
        self.deadline = None;
    }

    /// The prompts asked for have finished playing.
    pub fn handle_playback_done(&mut self, now: Instant) {
        let node = self.node();
        match &mut self.wait {
            Wait::Play { then } => match then.take() {
                Some(t) => {
                    self.goto(&t);
                    self.run(now);
                }
                None => self.hang_up(),
            },
            Wait::Menu { playing, .. } | Wait::Callback { playing } => {
                *playing = false;
                let ms = node
                    .menu()
                    .map(|m| m.timeout_ms)
                    .or(node.callback_offer().map(|c| c.timeout_ms))
                    .unwrap_or(5000);
                self.deadline = Some(now + Duration::from_millis(ms));
            }
            Wait::Collect {
                playing, digits, ..
            } => {
                *playing = false;
                let Some(c) = node.collect() else {
                    return self.mismatch();
                };
                let ms = if digits.is_empty() {
                    c.timeout_ms
                } else {
                    c.inter_digit_timeout_ms
                };
                self.deadline = Some(now + Duration::from_millis(ms));
            }
            Wait::Confirm { playing, .. } => {
                *playing = false;
                let Some(c) = node.collect() else {
                    return self.mismatch();
                };
                self.deadline = Some(now + Duration::from_millis(c.timeout_ms));
            }
            _ => {}
        }
    }

    /// The caller pressed a key.
    pub fn handle_digit(&mut self, now: Instant, digit: char) {
        self.digit(now, digit);
        self.drain_typeahead(now);
    }

    fn digit(&mut self, now: Instant, digit: char) {
        let node = self.node();
        match self.wait.clone() {
            Wait::Menu { tries, playing } => {
                if playing {
                    self.actions.push_back(Action::StopPlayback);
                }
                let Some(m) = node.menu() else {
                    return self.mismatch();
                };
                match m.choices.get(&digit.to_string()) {
                    Some(t) => {
                        self.mark(Mark::Choice {
                            node: self.at(),
                            digit,
                        });
                        self.vars
                            .insert("last_choice".into(), Value::Str(digit.to_string()));
                        self.goto(&t.value.clone());
                        self.run(now);
                    }
                    None => self.retry_menu(now, tries, &m.invalid),
                }
            }
            Wait::Collect {
                tries,
                mut digits,
                playing,
            } => {
                if playing {
                    self.actions.push_back(Action::StopPlayback);
                }
                let Some(c) = node.collect().cloned() else {
                    return self.mismatch();
                };
                if c.terminator.starts_with(digit) {
                    self.finish_collect(now, tries, digits);
                    return;
                }
                digits.push(digit);
                if digits.len() as u32 >= c.max_digits {
                    self.finish_collect(now, tries, digits);
                } else {
                    self.deadline = Some(now + Duration::from_millis(c.inter_digit_timeout_ms));
                    self.wait = Wait::Collect {
                        tries,
                        digits,
                        playing: false,
                    };
                }
            }
            Wait::Confirm {
                tries,
                digits,
                playing,
            } => {
                if playing {
                    self.actions.push_back(Action::StopPlayback);
                }
                let Some(c) = node.collect().cloned() else {
                    return self.mismatch();
                };
                match digit {
                    '1' => self.accept_collect(now, &c.var.value, digits),
                    '2' => self.retry_collect(now, tries, &Vec::new()),
                    _ => self.retry_collect(now, tries, &c.invalid),
                }
            }
            Wait::Callback { playing } => {
                if playing {
                    self.actions.push_back(Action::StopPlayback);
                }
                let Some(c) = node.callback_offer().cloned() else {
                    return self.mismatch();
                };
                if c.accept.starts_with(digit) {
                    self.actions.push_back(Action::Callback {
                        queue: c.queue.value.clone(),
                    });
                    self.vars.insert("callback".into(), Value::Bool(true));
                    self.goto(&c.on_accept.value);
                } else {
                    self.goto(&c.on_decline.value);
                }
                self.run(now);
            }
            // Keys during plain prompts and lookups wait for the next node
            // that takes keys.
            Wait::Play { .. } | Wait::Lookup { .. } | Wait::None => {
                if self.typeahead.len() < TYPEAHEAD {
                    self.typeahead.push_back(digit);
                }
            }
            Wait::Done => {}
        }
    }

    fn retry_menu(&mut self, now: Instant, tries: u32, extra: &Prompts) {
        let node = self.node();
        let Some(m) = node.menu() else {
            return self.mismatch();
        };
        if tries >= m.retries {
            self.goto(&m.on_failure.value);
            self.run(now);
            return;
        }
        self.play(&[extra, &m.prompt]);
        if self.wait != Wait::Done {
            self.deadline = None;
            self.wait = Wait::Menu {
                tries: tries + 1,
                playing: true,
            };
        }
    }

    fn finish_collect(&mut self, now: Instant, tries: u32, digits: String) {
        let node = self.node();
        let Some(c) = node.collect().cloned() else {
            return self.mismatch();
        };
        let long_enough = digits.len() as u32 >= c.min_digits;
        let matches = node.pattern.as_ref().is_none_or(|p| p.is_match(&digits));
        if digits.is_empty() || !long_enough || !matches {
            let extra = if digits.is_empty() {
                Vec::new()
            } else {
                c.invalid.clone()
            };
            self.retry_collect(now, tries, &extra);
            return;
        }
        if c.confirm {
            let mut lists: Vec<PromptRef> = Vec::new();
            lists.push(self.prompt("you_entered"));
            for name in
                say::say(&self.lang, crate::flow::SayKind::Digits, &digits).unwrap_or_default()
            {
                lists.push(self.prompt(&name));
            }
            lists.push(self.prompt("confirm_or_reenter"));
            self.actions.push_back(Action::Play(lists));
            self.deadline = None;
            self.wait = Wait::Confirm {
                tries,
                digits,
                playing: true,
            };
        } else {
            self.accept_collect(now, &c.var.value, digits);
        }
    }

    fn prompt(&self, name: &str) -> PromptRef {
        PromptRef {
            lang: self.lang.clone(),
            name: name.to_string(),
        }
    }

    fn accept_collect(&mut self, now: Instant, var: &str, digits: String) {
        self.vars.insert(var.to_string(), Value::Str(digits));
        let Some(next) = self.node().next().map(str::to_string) else {
            return self.mismatch();
        };
        self.goto(&next);
        self.run(now);
    }

    fn retry_collect(&mut self, now: Instant, tries: u32, extra: &Prompts) {
        let node = self.node();
        let Some(c) = node.collect() else {
            return self.mismatch();
        };
        if tries >= c.retries {
            self.goto(&c.on_failure.value);
            self.run(now);
            return;
        }
        self.play(&[extra, &c.prompt]);
        if self.wait != Wait::Done {
            self.deadline = None;
            self.wait = Wait::Collect {
                tries: tries + 1,
                digits: String::new(),
                playing: true,
            };
        }
    }

    /// A backend answered.
    pub fn handle_lookup(&mut self, now: Instant, id: u64, result: LookupResult) {
        if self.wait != (Wait::Lookup { id }) {
            return;
        }
        let node = self.node();
        let (Some(l), Some(next)) = (node.lookup(), node.next().map(str::to_string)) else {
            return self.mismatch();
        };
        let served = match result {
            LookupResult::Found(_) => Served::Found,
            LookupResult::NotFound => Served::NotFound,
            LookupResult::Error(_) => Served::Failed,
        };
        self.mark(Mark::Lookup {
            node: self.at(),
            service: l.service.value.clone(),
            served,
        });
        match result {
            LookupResult::Found(fields) => {
                for (var, field) in &l.result {
                    let v = fields.get(field).cloned().unwrap_or(Value::Null);
                    self.vars.insert(var.clone(), v);
                }
                self.goto(&next);
            }
            LookupResult::NotFound => {
                let t = l.on_not_found.as_ref().unwrap_or(&l.on_error).value.clone();
                self.goto(&t);
            }
            LookupResult::Error(e) => {
                self.vars.insert("lookup_error".into(), Value::Str(e));
                self.goto(&l.on_error.value.clone());
            }
        }
        self.run(now);
    }

    /// A deadline passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_none_or(|d| d > now) {
            return;
        }
        self.deadline = None;
        let node = self.node();
        match self.wait.clone() {
            Wait::Menu { tries, .. } => {
                let Some(m) = node.menu() else {
                    return self.mismatch();
                };
                self.retry_menu(now, tries, &m.no_input.clone());
            }
            Wait::Collect { tries, digits, .. } => self.finish_collect(now, tries, digits),
            Wait::Confirm { tries, .. } => self.retry_collect(now, tries, &Vec::new()),
            Wait::Lookup { id } => {
                self.handle_lookup(now, id, LookupResult::Error("timeout".into()))
            }
            Wait::Callback { .. } => {
                let Some(c) = node.callback_offer() else {
                    return self.mismatch();
                };
                self.goto(&c.on_decline.value.clone());
                self.run(now);
            }
            _ => {}
        }
    }
}
