//! Flow files: the YAML an ops engineer writes, read into typed nodes with
//! the line and column of every value kept for diagnostics.
//!
//! ```yaml
//! flow: main
//! languages: [ar, en]
//! start: welcome
//! nodes:
//!   welcome:
//!     play: [welcome]
//!     next: menu
//!   menu:
//!     menu:
//!       prompt: [main_menu]
//!       choices: { "1": status, "0": agent }
//!       on_failure: bye
//!   ...
//! ```
//!
//! A node is a map with exactly one kind key (`play`, `menu`, `collect`,
//! `set_language`, `set`, `lookup`, `branch`, `queue`, `callback_offer`,
//! `voicemail`, `hangup`, `goto`, `call`, `return`) and, for the kinds that continue,
//! `next`.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

/// A value with where it was written.
pub type S<T> = Spanned<T>;

/// One entry of a prompt list: a prompt name (which may use `${...}`), or
/// a value said in the call's language.
#[derive(Debug, Clone, Deserialize, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum PromptItem {
    /// A prompt by name, e.g. `welcome` or `status_${status}`.
    Name(String),
    /// `{ say: number, value: "${amount}" }`.
    Say {
        /// What kind of value.
        say: SayKind,
        /// The value, a template.
        value: String,
    },
}

/// How a value is spoken.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SayKind {
    /// Digit by digit ("two zero two three").
    Digits,
    /// As a number ("two thousand and twenty-three").
    Number,
    /// A date, `YYYY-MM-DD`.
    Date,
    /// A time of day, `HH:MM`.
    Time,
    /// An amount with currency, `125.50` (dirhams and fils).
    Money,
}

/// A list of prompt items.
pub type Prompts = Vec<S<PromptItem>>;

/// `menu`: a prompt, one target per digit, retries on no input or a wrong
/// digit.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MenuDef {
    /// Played on entry and after each failure.
    #[schemars(with = "Vec<PromptItem>")]
    pub prompt: Prompts,
    /// Digit to target node.
    #[schemars(with = "BTreeMap<String, String>")]
    pub choices: BTreeMap<String, S<String>>,
    /// Wait after the prompt for a digit (ms).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Tries after the first before `on_failure`.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Played when nothing was pressed.
    #[serde(default)]
    #[schemars(with = "Vec<PromptItem>")]
    pub no_input: Prompts,
    /// Played when a digit has no choice.
    #[serde(default)]
    #[schemars(with = "Vec<PromptItem>")]
    pub invalid: Prompts,
    /// Where to go when the retries run out.
    #[schemars(with = "String")]
    pub on_failure: S<String>,
}

/// `collect`: digits into a variable.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectDef {
    /// Played on entry and after each failure.
    #[schemars(with = "Vec<PromptItem>")]
    pub prompt: Prompts,
    /// Variable that receives the digits.
    #[schemars(with = "String")]
    pub var: S<String>,
    /// Fewest digits accepted.
    #[serde(default = "one")]
    pub min_digits: u32,
    /// Most digits; collection ends when reached.
    #[serde(default = "twenty")]
    pub max_digits: u32,
    /// Key that ends the entry (`#` by default; empty for none).
    #[serde(default = "hash")]
    pub terminator: String,
    /// Wait for the first digit after the prompt (ms).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Wait between digits (ms).
    #[serde(default = "inter_digit")]
    pub inter_digit_timeout_ms: u64,
    /// Regular expression the digits must match.
    #[schemars(with = "Option<String>")]
    pub pattern: Option<S<String>>,
    /// Read the digits back and ask 1 to confirm, 2 to enter again.
    #[serde(default)]
    pub confirm: bool,
    /// Tries after the first before `on_failure`.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Played when the entry is refused.
    #[serde(default)]
    #[schemars(with = "Vec<PromptItem>")]
    pub invalid: Prompts,
    /// Where to go when the retries run out.
    #[schemars(with = "String")]
    pub on_failure: S<String>,
}

/// `lookup`: a request to a configured backend.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupDef {
    /// Backend service name from the configuration.
    #[schemars(with = "String")]
    pub service: S<String>,
    /// Request parameters (templates).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub params: BTreeMap<String, S<String>>,
    /// Variable to response field.
    #[serde(default)]
    pub result: BTreeMap<String, String>,
    /// How long to wait (ms).
    #[serde(default = "lookup_timeout")]
    pub timeout_ms: u64,
    /// Where to go when the record does not exist (defaults to `on_error`).
    #[schemars(with = "Option<String>")]
    pub on_not_found: Option<S<String>>,
    /// Where to go on an error or timeout.
    #[schemars(with = "String")]
    pub on_error: S<String>,
}

/// One arm of `branch`: a condition and a target; the last arm may omit
/// the condition (else).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchArm {
    /// Condition; absent means always.
    #[schemars(with = "Option<String>")]
    pub when: Option<S<String>>,
    /// Target node.
    #[schemars(with = "String")]
    pub goto: S<String>,
}

/// `queue`: hand the call to the routing core.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueDef {
    /// Queue name.
    #[schemars(with = "String")]
    pub name: S<String>,
    /// Skill to minimum level (1 to 10).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, u8>")]
    pub skills: BTreeMap<String, S<u8>>,
    /// Priority (higher first).
    #[serde(default)]
    pub priority: u8,
}

/// `callback_offer`: offer to call the caller back, keeping their place.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackDef {
    /// The offer.
    #[schemars(with = "Vec<PromptItem>")]
    pub prompt: Prompts,
    /// Queue the call-back joins.
    #[schemars(with = "String")]
    pub queue: S<String>,
    /// Digit that accepts.
    #[serde(default = "digit_one")]
    pub accept: String,
    /// Wait for the answer (ms).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Where to go after accepting.
    #[schemars(with = "String")]
    pub on_accept: S<String>,
    /// Where to go otherwise.
    #[schemars(with = "String")]
    pub on_decline: S<String>,
}

/// `voicemail`: the caller leaves a message (greeting, beep, up to
/// `max_seconds`, `#` or silence ends it), kept for the queue's agents;
/// the flow ends here.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VoicemailDef {
    /// The queue whose agents call back (and see it on their page).
    #[schemars(with = "String")]
    pub queue: S<String>,
    /// The greeting before the beep (`voicemail_greeting` when empty).
    #[serde(default)]
    #[schemars(with = "Vec<PromptItem>")]
    pub prompt: Prompts,
    /// The longest message, in seconds.
    #[serde(default = "voicemail_max")]
    pub max_seconds: u32,
    /// Silence that ends the message, in seconds.
    #[serde(default = "voicemail_silence")]
    pub silence_seconds: u32,
}

/// `hangup`: optionally a last prompt, then the end of the call.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HangupDef {
    /// Played before hanging up.
    #[serde(default)]
    #[schemars(with = "Vec<PromptItem>")]
    pub prompt: Prompts,
}

/// `call`: run another flow, then continue at `next` when it returns.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubflowDef {
    /// The flow's name.
    #[schemars(with = "String")]
    pub flow: S<String>,
}

/// `return: {}` ends a sub-flow.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnDef {}

/// A node as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeDef {
    /// Play prompts, then `next`.
    #[schemars(with = "Option<Vec<PromptItem>>")]
    pub play: Option<S<Prompts>>,
    /// A menu.
    #[schemars(with = "Option<MenuDef>")]
    pub menu: Option<S<MenuDef>>,
    /// Digit collection, then `next`.
    #[schemars(with = "Option<CollectDef>")]
    pub collect: Option<S<CollectDef>>,
    /// Switch the call's language, then `next`.
    #[schemars(with = "Option<String>")]
    pub set_language: Option<S<String>>,
    /// Assign variables (templates), then `next`.
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub set: Option<S<BTreeMap<String, S<String>>>>,
    /// A backend lookup, then `next`.
    #[schemars(with = "Option<LookupDef>")]
    pub lookup: Option<S<LookupDef>>,
    /// Conditions.
    #[schemars(with = "Option<Vec<BranchArm>>")]
    pub branch: Option<S<Vec<BranchArm>>>,
    /// Queue for an agent.
    #[schemars(with = "Option<QueueDef>")]
    pub queue: Option<S<QueueDef>>,
    /// Offer a call-back.
    #[schemars(with = "Option<CallbackDef>")]
    pub callback_offer: Option<S<CallbackDef>>,
    /// Take a voice message, then end the call.
    #[schemars(with = "Option<VoicemailDef>")]
    pub voicemail: Option<S<VoicemailDef>>,
    /// End the call.
    #[schemars(with = "Option<HangupDef>")]
    pub hangup: Option<S<HangupDef>>,
    /// Jump.
    #[schemars(with = "Option<String>")]
    pub goto: Option<S<String>>,
    /// Run a sub-flow, then `next`.
    #[schemars(with = "Option<SubflowDef>")]
    pub call: Option<S<SubflowDef>>,
    /// Return from a sub-flow.
    #[serde(rename = "return")]
    #[schemars(with = "Option<ReturnDef>")]
    pub ret: Option<S<ReturnDef>>,
    /// The node after this one.
    #[schemars(with = "Option<String>")]
    pub next: Option<S<String>>,
}

/// A flow file as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowFile {
    /// The flow's name (the file name without `.yaml` when absent).
    #[schemars(with = "Option<String>")]
    pub flow: Option<S<String>>,
    /// What the flow is for.
    #[serde(default)]
    pub description: String,
    /// Languages whose prompts must all exist.
    #[schemars(with = "Vec<String>")]
    pub languages: S<Vec<S<String>>>,
    /// First node.
    #[schemars(with = "String")]
    pub start: S<String>,
    /// The nodes by name.
    #[schemars(with = "BTreeMap<String, NodeDef>")]
    pub nodes: BTreeMap<String, S<NodeDef>>,
}

fn default_timeout() -> u64 {
    5000
}
fn default_retries() -> u32 {
    2
}
fn one() -> u32 {
    1
}
fn twenty() -> u32 {
    20
}
fn hash() -> String {
    "#".into()
}
fn inter_digit() -> u64 {
    3000
}
fn lookup_timeout() -> u64 {
    3000
}
fn voicemail_max() -> u32 {
    120
}
fn voicemail_silence() -> u32 {
    5
}
fn digit_one() -> String {
    "1".into()
}

/// The kind of a node, from its one kind key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `play`
    Play,
    /// `menu`
    Menu,
    /// `collect`
    Collect,
    /// `set_language`
    SetLanguage,
    /// `set`
    Set,
    /// `lookup`
    Lookup,
    /// `branch`
    Branch,
    /// `queue`
    Queue,
    /// `callback_offer`
    CallbackOffer,
    /// `voicemail`
    Voicemail,
    /// `hangup`
    Hangup,
    /// `goto`
    Goto,
    /// `call`
    Call,
    /// `return`
    Return,
}

impl Kind {
    /// Whether the node waits for the caller (a loop through it is fine).
    pub fn waits_for_input(self) -> bool {
        matches!(self, Kind::Menu | Kind::Collect | Kind::CallbackOffer)
    }

    /// Whether the node continues at `next`.
    pub fn uses_next(self) -> bool {
        matches!(
            self,
            Kind::Play | Kind::Collect | Kind::SetLanguage | Kind::Set | Kind::Lookup | Kind::Call
        )
    }
}

impl NodeDef {
    /// The kind keys present, with their names.
    pub fn kinds(&self) -> Vec<(Kind, &'static str)> {
        let mut k = Vec::new();
        let mut add = |present: bool, kind, name| {
            if present {
                k.push((kind, name));
            }
        };
        add(self.play.is_some(), Kind::Play, "play");
        add(self.menu.is_some(), Kind::Menu, "menu");
        add(self.collect.is_some(), Kind::Collect, "collect");
        add(
            self.set_language.is_some(),
            Kind::SetLanguage,
            "set_language",
        );
        add(self.set.is_some(), Kind::Set, "set");
        add(self.lookup.is_some(), Kind::Lookup, "lookup");
        add(self.branch.is_some(), Kind::Branch, "branch");
        add(self.queue.is_some(), Kind::Queue, "queue");
        add(
            self.callback_offer.is_some(),
            Kind::CallbackOffer,
            "callback_offer",
        );
        add(self.voicemail.is_some(), Kind::Voicemail, "voicemail");
        add(self.hangup.is_some(), Kind::Hangup, "hangup");
        add(self.goto.is_some(), Kind::Goto, "goto");
        add(self.call.is_some(), Kind::Call, "call");
        add(self.ret.is_some(), Kind::Return, "return");
        k
    }

    /// Every node name this node can go to, with where it is written.
    pub fn targets(&self) -> Vec<&S<String>> {
        let mut t: Vec<&S<String>> = Vec::new();
        t.extend(self.next.as_ref());
        t.extend(self.goto.as_ref());
        if let Some(m) = &self.menu {
            t.extend(m.value.choices.values());
            t.push(&m.value.on_failure);
        }
        if let Some(c) = &self.collect {
            t.push(&c.value.on_failure);
        }
        if let Some(l) = &self.lookup {
            t.push(&l.value.on_error);
            t.extend(l.value.on_not_found.as_ref());
        }
        if let Some(b) = &self.branch {
            t.extend(b.value.iter().map(|a| &a.goto));
        }
        if let Some(c) = &self.callback_offer {
            t.push(&c.value.on_accept);
            t.push(&c.value.on_decline);
        }
        t
    }

    /// Every prompt list in the node.
    pub fn prompt_lists(&self) -> Vec<&Prompts> {
        let mut p: Vec<&Prompts> = Vec::new();
        p.extend(self.play.as_ref().map(|s| &s.value));
        if let Some(m) = &self.menu {
            p.extend([&m.value.prompt, &m.value.no_input, &m.value.invalid]);
        }
        if let Some(c) = &self.collect {
            p.extend([&c.value.prompt, &c.value.invalid]);
        }
        if let Some(c) = &self.callback_offer {
            p.push(&c.value.prompt);
        }
        if let Some(h) = &self.hangup {
            p.push(&h.value.prompt);
        }
        if let Some(v) = &self.voicemail {
            p.push(&v.value.prompt);
        }
        p
    }
}
