//! Reading and checking flow files: every problem becomes a [`Diagnostic`]
//! with file, line and column, rendered like a compiler's, and a set of
//! files is accepted only when it has none.

use crate::expr::{self, Expr, Template};
use crate::flow::{
    BranchArm, CallbackDef, CollectDef, FlowFile, HangupDef, Kind, LookupDef, MenuDef, NodeDef,
    PromptItem, Prompts, QueueDef, S,
};
use crate::say;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One problem in a flow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// Width of the part to underline, in characters.
    pub width: usize,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    fn at<T>(file: &Path, s: &S<T>, message: impl Into<String>) -> Diagnostic {
        let loc = s.referenced;
        Diagnostic {
            file: file.to_path_buf(),
            line: loc.line() as usize,
            column: loc.column() as usize,
            width: (loc.span().len() as usize).max(1),
            message: message.into(),
        }
    }

    /// Renders the diagnostic with the line of source and a caret.
    pub fn render(&self, source: &str) -> String {
        let mut out = format!("error: {}\n", self.message);
        let _ = writeln!(
            out,
            " --> {}:{}:{}",
            self.file.display(),
            self.line,
            self.column
        );
        if let Some(text) = self.line.checked_sub(1).and_then(|l| source.lines().nth(l)) {
            let num = self.line.to_string();
            let pad = " ".repeat(num.len());
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{num} | {text}");
            let width = self
                .width
                .min(
                    text.chars()
                        .count()
                        .saturating_sub(self.column.saturating_sub(1)),
                )
                .max(1);
            let _ = writeln!(
                out,
                "{pad} | {}{}",
                " ".repeat(self.column.saturating_sub(1)),
                "^".repeat(width)
            );
        }
        out
    }
}

/// Which prompts exist, to check every language has them.
pub trait PromptCatalog {
    /// Whether `lang/name` exists.
    fn has(&self, lang: &str, name: &str) -> bool;
}

/// Accepts every prompt (for checking flows without prompt files).
pub struct AnyPrompt;

impl PromptCatalog for AnyPrompt {
    fn has(&self, _: &str, _: &str) -> bool {
        true
    }
}

impl<F: Fn(&str, &str) -> bool> PromptCatalog for F {
    fn has(&self, lang: &str, name: &str) -> bool {
        self(lang, name)
    }
}

/// What a checked node does, with everything it needs: the checker has
/// made sure each part is there, so the interpreter matches on this and
/// never looks a part up at run time.
#[derive(Debug, Clone)]
pub enum Step {
    /// Play prompts, then go on.
    Play {
        /// The prompts.
        prompts: Prompts,
        /// Where to go after.
        next: String,
    },
    /// A menu.
    Menu(MenuDef),
    /// Collect digits, then go on.
    Collect {
        /// How.
        collect: CollectDef,
        /// Where to go after.
        next: String,
    },
    /// Switch the call's language, then go on.
    SetLanguage {
        /// The language.
        lang: String,
        /// Where to go after.
        next: String,
    },
    /// Assign variables (templates), then go on.
    Set {
        /// Variable to template.
        vars: BTreeMap<String, S<String>>,
        /// Where to go after.
        next: String,
    },
    /// Ask a backend, then go on.
    Lookup {
        /// What to ask.
        lookup: LookupDef,
        /// Where to go after.
        next: String,
    },
    /// Go to the first arm whose condition holds.
    Branch(Vec<BranchArm>),
    /// Queue for an agent.
    Queue(QueueDef),
    /// Offer a call-back.
    CallbackOffer(CallbackDef),
    /// Take a voice message.
    Voicemail(crate::flow::VoicemailDef),
    /// End the call.
    Hangup(HangupDef),
    /// Jump.
    Goto(String),
    /// Run a sub-flow, then go on.
    Call {
        /// The sub-flow.
        flow: String,
        /// Where to go when it returns.
        next: String,
    },
    /// Return from a sub-flow.
    Return,
}

impl Step {
    /// The step of a node of `kind`, or `None` when a part it needs is
    /// missing (the checker reports that node).
    fn of(kind: Kind, def: &NodeDef) -> Option<Step> {
        let next = || def.next.as_ref().map(|n| n.value.clone());
        Some(match kind {
            Kind::Play => Step::Play {
                prompts: def.play.as_ref()?.value.clone(),
                next: next()?,
            },
            Kind::Menu => Step::Menu(def.menu.as_ref()?.value.clone()),
            Kind::Collect => Step::Collect {
                collect: def.collect.as_ref()?.value.clone(),
                next: next()?,
            },
            Kind::SetLanguage => Step::SetLanguage {
                lang: def.set_language.as_ref()?.value.clone(),
                next: next()?,
            },
            Kind::Set => Step::Set {
                vars: def.set.as_ref()?.value.clone(),
                next: next()?,
            },
            Kind::Lookup => Step::Lookup {
                lookup: def.lookup.as_ref()?.value.clone(),
                next: next()?,
            },
            Kind::Branch => Step::Branch(def.branch.as_ref()?.value.clone()),
            Kind::Queue => Step::Queue(def.queue.as_ref()?.value.clone()),
            Kind::CallbackOffer => Step::CallbackOffer(def.callback_offer.as_ref()?.value.clone()),
            Kind::Voicemail => Step::Voicemail(def.voicemail.as_ref()?.value.clone()),
            Kind::Hangup => Step::Hangup(def.hangup.as_ref()?.value.clone()),
            Kind::Goto => Step::Goto(def.goto.as_ref()?.value.clone()),
            Kind::Call => Step::Call {
                flow: def.call.as_ref()?.value.flow.value.clone(),
                next: next()?,
            },
            Kind::Return => Step::Return,
        })
    }
}

/// A checked node, ready for the interpreter.
#[derive(Debug, Clone)]
pub struct Node {
    /// The node's name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// What it does.
    pub step: Step,
    /// The node as written.
    pub def: NodeDef,
    /// Compiled `branch` conditions, in order (`None` is else).
    pub conditions: Vec<Option<Expr>>,
    /// Compiled `collect` pattern.
    pub pattern: Option<regex_lite::Regex>,
}

impl Node {
    /// The menu, if this is a menu node.
    pub fn menu(&self) -> Option<&MenuDef> {
        match &self.step {
            Step::Menu(m) => Some(m),
            _ => None,
        }
    }

    /// The collection, if this is a collect node.
    pub fn collect(&self) -> Option<&CollectDef> {
        match &self.step {
            Step::Collect { collect, .. } => Some(collect),
            _ => None,
        }
    }

    /// The offer, if this is a call-back offer node.
    pub fn callback_offer(&self) -> Option<&CallbackDef> {
        match &self.step {
            Step::CallbackOffer(c) => Some(c),
            _ => None,
        }
    }

    /// The lookup, if this is a lookup node.
    pub fn lookup(&self) -> Option<&LookupDef> {
        match &self.step {
            Step::Lookup { lookup, .. } => Some(lookup),
            _ => None,
        }
    }

    /// Where the node goes on, for the kinds that do.
    pub fn next(&self) -> Option<&str> {
        match &self.step {
            Step::Play { next, .. }
            | Step::Collect { next, .. }
            | Step::SetLanguage { next, .. }
            | Step::Set { next, .. }
            | Step::Lookup { next, .. }
            | Step::Call { next, .. } => Some(next),
            _ => None,
        }
    }
}

/// A checked flow.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Its name.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Its languages; the first is the default.
    pub languages: Vec<String>,
    /// The first node.
    pub start: String,
    /// Nodes by name (shared: a running call holds the node it is at).
    pub nodes: BTreeMap<String, Arc<Node>>,
}

/// Every flow of a folder, checked together (sub-flows refer to each other).
#[derive(Debug, Clone, Default)]
pub struct FlowSet {
    /// Flows by name.
    pub flows: BTreeMap<String, Arc<Flow>>,
}

impl FlowSet {
    /// A flow by name.
    pub fn get(&self, name: &str) -> Option<&Arc<Flow>> {
        self.flows.get(name)
    }

    /// The agent queues the flows hand calls to (queue nodes and call-back
    /// offers), sorted, each once.
    pub fn queues(&self) -> Vec<String> {
        let mut out = std::collections::BTreeSet::new();
        for node in self.flows.values().flat_map(|f| f.nodes.values()) {
            if let Some(q) = &node.def.queue {
                out.insert(q.value.name.value.clone());
            }
            if let Some(c) = &node.def.callback_offer {
                out.insert(c.value.queue.value.clone());
            }
            if let Some(v) = &node.def.voicemail {
                out.insert(v.value.queue.value.clone());
            }
        }
        out.into_iter().collect()
    }

    /// Where each queue is named (queue nodes and call-back offers): the
    /// queue, its file, line and column, in file order.
    pub fn queue_uses(&self) -> Vec<(String, PathBuf, usize, usize)> {
        let mut out = Vec::new();
        for f in self.flows.values() {
            for node in f.nodes.values() {
                let named = [
                    node.def.queue.as_ref().map(|q| &q.value.name),
                    node.def.callback_offer.as_ref().map(|c| &c.value.queue),
                    node.def.voicemail.as_ref().map(|v| &v.value.queue),
                ];
                for s in named.into_iter().flatten() {
                    let loc = s.referenced;
                    out.push((
                        s.value.clone(),
                        f.file.clone(),
                        loc.line() as usize,
                        loc.column() as usize,
                    ));
                }
            }
        }
        out.sort_by(|a, b| (&a.1, a.2, a.3).cmp(&(&b.1, b.2, b.3)));
        out
    }

    /// Each agent queue with the skill sets its queue nodes ask for (an
    /// agent who has one of the sets, at its levels, serves the queue; a
    /// queue only named by call-back offers has none).
    pub fn queue_skills(&self) -> BTreeMap<String, BTreeSet<BTreeMap<String, u8>>> {
        let mut out: BTreeMap<String, BTreeSet<BTreeMap<String, u8>>> = self
            .queues()
            .into_iter()
            .map(|q| (q, BTreeSet::new()))
            .collect();
        for node in self.flows.values().flat_map(|f| f.nodes.values()) {
            if let Some(q) = &node.def.queue {
                let skills = q
                    .value
                    .skills
                    .iter()
                    .map(|(k, v)| (k.clone(), v.value))
                    .collect();
                out.entry(q.value.name.value.clone())
                    .or_default()
                    .insert(skills);
            }
        }
        out
    }
}

/// Diagnostics, with the sources needed to render them.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The problems found.
    pub diagnostics: Vec<Diagnostic>,
    sources: HashMap<PathBuf, String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Report {}

impl Report {
    /// All diagnostics rendered, followed by a count.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            let src = self.sources.get(&d.file).map(String::as_str).unwrap_or("");
            out.push_str(&d.render(src));
            out.push('\n');
        }
        let n = self.diagnostics.len();
        let _ = writeln!(
            out,
            "error: {n} problem{} found",
            if n == 1 { "" } else { "s" }
        );
        out
    }
}

/// Reads every `*.yaml` file of a folder (or one file) and checks them;
/// any calendar name is taken.
pub fn load_path(path: &Path, prompts: &dyn PromptCatalog) -> Result<FlowSet, Report> {
    load_path_with(path, prompts, None)
}

/// [`load_path`], with the configuration's calendars: `open("x")` of a
/// calendar not among them is an error at its place.
pub fn load_path_with(
    path: &Path,
    prompts: &dyn PromptCatalog,
    calendars: Option<&BTreeSet<String>>,
) -> Result<FlowSet, Report> {
    let mut files = Vec::new();
    let mut report = Report::default();
    let io_error = |p: &Path, e: std::io::Error| Diagnostic {
        file: p.to_path_buf(),
        line: 0,
        column: 0,
        width: 0,
        message: format!("cannot read: {e}"),
    };
    if path.is_dir() {
        match std::fs::read_dir(path) {
            Ok(rd) => {
                let mut paths: Vec<PathBuf> = rd
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                    })
                    .collect();
                paths.sort();
                for p in paths {
                    match std::fs::read_to_string(&p) {
                        Ok(text) => files.push((p, text)),
                        Err(e) => report.diagnostics.push(io_error(&p, e)),
                    }
                }
            }
            Err(e) => report.diagnostics.push(io_error(path, e)),
        }
    } else {
        match std::fs::read_to_string(path) {
            Ok(text) => files.push((path.to_path_buf(), text)),
            Err(e) => report.diagnostics.push(io_error(path, e)),
        }
    }
    if !report.diagnostics.is_empty() {
        return Err(report);
    }
    check_sources_with(&files, prompts, calendars)
}

/// Checks flows given as (path, text) pairs; any calendar name is taken.
pub fn check_sources(
    files: &[(PathBuf, String)],
    prompts: &dyn PromptCatalog,
) -> Result<FlowSet, Report> {
    check_sources_with(files, prompts, None)
}

/// [`check_sources`], with the configuration's calendars.
pub fn check_sources_with(
    files: &[(PathBuf, String)],
    prompts: &dyn PromptCatalog,
    calendars: Option<&BTreeSet<String>>,
) -> Result<FlowSet, Report> {
    let mut report = Report::default();
    let mut parsed: Vec<(PathBuf, FlowFile)> = Vec::new();
    for (path, text) in files {
        // YAML ends a line at LF, CRLF or a lone CR; with every break
        // made LF, positions and the lines shown under them agree.
        let text = &text.replace("\r\n", "\n").replace('\r', "\n");
        report.sources.insert(path.clone(), text.clone());
        match serde_saphyr::from_str::<FlowFile>(text) {
            Ok(f) => parsed.push((path.clone(), f)),
            Err(e) => report.diagnostics.push(yaml_diagnostic(path, text, &e)),
        }
    }
    let names: BTreeSet<String> = parsed.iter().map(|(p, f)| flow_name(p, f)).collect();
    let mut set = FlowSet::default();
    for (path, file) in parsed {
        let name = flow_name(&path, &file);
        if set.flows.contains_key(&name) {
            let d = match &file.flow {
                Some(f) => {
                    Diagnostic::at(&path, f, format!("a flow named `{name}` exists already"))
                }
                None => Diagnostic {
                    file: path.clone(),
                    line: 1,
                    column: 1,
                    width: 1,
                    message: format!("a flow named `{name}` exists already"),
                },
            };
            report.diagnostics.push(d);
            continue;
        }
        let mut checker = Checker {
            file: &path,
            flow: &file,
            flows: &names,
            prompts,
            calendars,
            out: &mut report.diagnostics,
        };
        if let Some(flow) = checker.check(name.clone()) {
            set.flows.insert(name, Arc::new(flow));
        }
    }
    if report.diagnostics.is_empty() {
        Ok(set)
    } else {
        Err(report)
    }
}

fn flow_name(path: &Path, f: &FlowFile) -> String {
    f.flow.as_ref().map(|s| s.value.clone()).unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default()
    })
}

fn yaml_diagnostic(path: &Path, source: &str, e: &serde_saphyr::Error) -> Diagnostic {
    let (line, column) = e
        .location()
        .map(|l| (l.line() as usize, l.column() as usize))
        .unwrap_or((0, 0));
    // The reader's own text carries a location and a snippet: keep its
    // first line, which says what is wrong.
    let full = e.to_string();
    let message = full
        .lines()
        .next()
        .unwrap_or("invalid YAML")
        .trim()
        .trim_start_matches("error: ")
        .to_string();
    let mut message = strip_location_suffix(&message);
    if message.starts_with("line ") {
        if let Some((_, rest)) = message.split_once(": ") {
            message = rest.to_string();
        }
    }
    // Underline the word the error points at.
    let width = line
        .checked_sub(1)
        .and_then(|l| source.lines().nth(l))
        .map(|text| {
            text.chars()
                .skip(column.saturating_sub(1))
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                .count()
        })
        .unwrap_or(1)
        .max(1);
    Diagnostic {
        file: path.to_path_buf(),
        line,
        column,
        width,
        message,
    }
}

/// Drops a trailing " at line L column C" the reader may add.
fn strip_location_suffix(m: &str) -> String {
    match m.rfind(" at line ") {
        Some(i) => m[..i].to_string(),
        None => m.to_string(),
    }
}

struct Checker<'a> {
    file: &'a Path,
    flow: &'a FlowFile,
    flows: &'a BTreeSet<String>,
    prompts: &'a dyn PromptCatalog,
    calendars: Option<&'a BTreeSet<String>>,
    out: &'a mut Vec<Diagnostic>,
}

impl Checker<'_> {
    /// `open(...)` names a calendar of the configuration, in quotes.
    fn check_calendars(&mut self, at: &S<String>, e: &expr::Expr) {
        for name in e.calendars() {
            match (name, self.calendars) {
                (None, _) => self.error(at, "`open` takes a calendar's name in quotes"),
                (Some(n), Some(known)) if !known.contains(&n) => {
                    let list = known.iter().cloned().collect::<Vec<_>>().join(", ");
                    self.error(
                        at,
                        format!(
                            "unknown calendar `{n}` (the configuration has: {})",
                            if list.is_empty() { "none" } else { &list }
                        ),
                    )
                }
                _ => {}
            }
        }
    }

    fn error<T>(&mut self, at: &S<T>, msg: impl Into<String>) {
        self.out.push(Diagnostic::at(self.file, at, msg));
    }

    fn check(&mut self, name: String) -> Option<Flow> {
        let before = self.out.len();
        let flow = self.flow;
        let languages: Vec<String> = flow
            .languages
            .value
            .iter()
            .map(|l| l.value.clone())
            .collect();
        if languages.is_empty() {
            self.error(&flow.languages, "a flow needs at least one language");
        }
        for l in &flow.languages.value {
            if !say::LANGUAGES.contains(&l.value.as_str()) {
                self.error(
                    l,
                    format!(
                        "unknown language `{}` (known: {})",
                        l.value,
                        say::LANGUAGES.join(", ")
                    ),
                );
            }
        }
        if !flow.nodes.contains_key(&flow.start.value) {
            self.error(
                &flow.start,
                format!("start node `{}` does not exist", flow.start.value),
            );
        }
        let mut nodes = BTreeMap::new();
        for (node_name, node) in &flow.nodes {
            if let Some(n) = self.check_node(node_name, node, &languages) {
                nodes.insert(node_name.clone(), Arc::new(n));
            }
        }
        if self.out.len() > before {
            return None;
        }
        self.check_graph(&nodes);
        if self.out.len() > before {
            return None;
        }
        Some(Flow {
            name,
            file: self.file.to_path_buf(),
            languages,
            start: flow.start.value.clone(),
            nodes,
        })
    }

    fn check_node(&mut self, name: &str, node: &S<NodeDef>, languages: &[String]) -> Option<Node> {
        let def = &node.value;
        let kinds = def.kinds();
        let kind = match kinds.as_slice() {
            [(k, _)] => *k,
            [] => {
                self.error(node, format!("node `{name}` has no kind: give it one of play, menu, collect, set_language, set, lookup, branch, queue, callback_offer, voicemail, hangup, goto, call, return"));
                return None;
            }
            more => {
                let list: Vec<&str> = more.iter().map(|(_, n)| *n).collect();
                self.error(
                    node,
                    format!(
                        "node `{name}` has several kinds ({}): one per node",
                        list.join(", ")
                    ),
                );
                return None;
            }
        };
        if kind.uses_next() && def.next.is_none() {
            self.error(node, format!("node `{name}` needs `next`"));
        }
        if !kind.uses_next() {
            if let Some(n) = &def.next {
                self.error(
                    n,
                    format!("a `{}` node does not continue: remove `next`", kinds[0].1),
                );
            }
        }
        for t in def.targets() {
            if !self.flow.nodes.contains_key(&t.value) {
                let hint = closest(&t.value, self.flow.nodes.keys());
                self.error(t, format!("target `{}` does not exist{hint}", t.value));
            }
        }
        for list in def.prompt_lists() {
            self.check_prompts(list, languages);
        }
        if let Some(l) = &def.set_language {
            if !languages.contains(&l.value) {
                self.error(
                    l,
                    format!(
                        "`{}` is not one of this flow's languages ({})",
                        l.value,
                        languages.join(", ")
                    ),
                );
            }
        }
        if let Some(m) = &def.menu {
            for (digit, target) in &m.value.choices {
                if digit.chars().count() != 1 || !"0123456789*#".contains(digit.as_str()) {
                    self.error(
                        target,
                        format!("menu choice `{digit}` is not one key (0-9, * or #)"),
                    );
                }
            }
        }
        let mut pattern = None;
        if let Some(c) = &def.collect {
            let c = &c.value;
            if c.min_digits > c.max_digits || c.max_digits == 0 {
                self.error(
                    &c.var,
                    format!(
                        "min_digits {} and max_digits {} do not make a range",
                        c.min_digits, c.max_digits
                    ),
                );
            }
            if c.terminator.chars().count() > 1
                || (!c.terminator.is_empty() && !"#*".contains(c.terminator.as_str()))
            {
                self.error(
                    &c.var,
                    format!("terminator `{}` must be `#`, `*` or empty", c.terminator),
                );
            }
            if let Some(p) = &c.pattern {
                match regex_lite::Regex::new(&p.value) {
                    Ok(r) => pattern = Some(r),
                    Err(e) => {
                        let first = e.to_string().lines().last().unwrap_or_default().to_string();
                        self.error(p, format!("bad pattern: {first}"));
                    }
                }
            }
        }
        if let Some(s) = &def.set {
            for v in s.value.values() {
                self.check_template(v);
            }
        }
        if let Some(l) = &def.lookup {
            for v in l.value.params.values() {
                self.check_template(v);
            }
        }
        if let Some(c) = &def.call {
            if !self.flows.contains(&c.value.flow.value) {
                let hint = closest(&c.value.flow.value, self.flows.iter());
                self.error(
                    &c.value.flow,
                    format!("flow `{}` does not exist{hint}", c.value.flow.value),
                );
            }
        }
        if let Some(q) = &def.queue {
            for (skill, level) in &q.value.skills {
                if !(1..=10).contains(&level.value) {
                    self.error(
                        level,
                        format!("skill `{skill}` level {} is not from 1 to 10", level.value),
                    );
                }
            }
        }
        let mut conditions = Vec::new();
        if let Some(b) = &def.branch {
            let arms = &b.value;
            for (i, arm) in arms.iter().enumerate() {
                match &arm.when {
                    Some(w) => match expr::parse(&w.value) {
                        Ok(e) => {
                            self.check_calendars(w, &e);
                            conditions.push(Some(e))
                        }
                        Err(e) => self.error(w, format!("bad condition: {e}")),
                    },
                    None if i + 1 == arms.len() => conditions.push(None),
                    None => self.error(&arm.goto, "only the last arm may go without `when`"),
                }
            }
            if arms.last().is_some_and(|a| a.when.is_some()) {
                self.error(
                    b,
                    "a branch needs a last arm without `when` (where to go otherwise)",
                );
            }
        }
        let step = Step::of(kind, def)?;
        Some(Node {
            name: name.to_string(),
            kind,
            step,
            def: def.clone(),
            conditions,
            pattern,
        })
    }

    fn check_template(&mut self, t: &S<String>) {
        if let Err(e) = Template::parse(&t.value) {
            self.error(t, format!("bad template: {e}"));
        }
    }

    fn check_prompts(&mut self, list: &Prompts, languages: &[String]) {
        for item in list {
            match &item.value {
                PromptItem::Name(n) => match Template::parse(n) {
                    Ok(t) => {
                        if let Some(name) = t.literal() {
                            let missing: Vec<&str> = languages
                                .iter()
                                .filter(|l| !self.prompts.has(l, name))
                                .map(String::as_str)
                                .collect();
                            if !missing.is_empty() {
                                self.error(
                                    item,
                                    format!("prompt `{name}` is missing in {}", missing.join(", ")),
                                );
                            }
                        }
                    }
                    Err(e) => self.error(item, format!("bad prompt template: {e}")),
                },
                PromptItem::Say { say: kind, value } => {
                    if let Err(e) = Template::parse(value) {
                        self.error(item, format!("bad template: {e}"));
                    }
                    for l in languages {
                        let missing: Vec<String> = say::blocks_for(l, *kind)
                            .into_iter()
                            .filter(|b| !self.prompts.has(l, b))
                            .collect();
                        if !missing.is_empty() {
                            self.error(
                                item,
                                format!(
                                    "saying a {kind:?} in {l} needs prompts that are missing: {}",
                                    missing.join(", ")
                                )
                                .to_lowercase(),
                            );
                        }
                    }
                }
            }
        }
    }

    /// Unreachable nodes and loops that never wait for the caller.
    fn check_graph(&mut self, nodes: &BTreeMap<String, Arc<Node>>) {
        let edges = |n: &Node| -> Vec<String> {
            n.def
                .targets()
                .into_iter()
                .map(|t| t.value.clone())
                .collect()
        };
        let mut seen = BTreeSet::new();
        let mut stack = vec![self.flow.start.value.clone()];
        while let Some(n) = stack.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            if let Some(node) = nodes.get(&n) {
                stack.extend(edges(node));
            }
        }
        for (name, node) in &self.flow.nodes {
            if !seen.contains(name) {
                self.error(
                    node,
                    format!(
                        "node `{name}` cannot be reached from `{}`",
                        self.flow.start.value
                    ),
                );
            }
        }
        // A cycle among nodes that never wait for input would spin forever.
        let quiet: BTreeMap<&String, Vec<String>> = nodes
            .iter()
            .filter(|(_, n)| !n.kind.waits_for_input())
            .map(|(k, n)| (k, edges(n)))
            .collect();
        let mut state: HashMap<&String, u8> = HashMap::new();
        let mut reported = BTreeSet::new();
        for start in quiet.keys() {
            let mut path: Vec<&String> = Vec::new();
            self.find_cycle(start, &quiet, &mut state, &mut path, &mut reported);
        }
    }

    fn find_cycle<'n>(
        &mut self,
        at: &'n String,
        quiet: &'n BTreeMap<&'n String, Vec<String>>,
        state: &mut HashMap<&'n String, u8>,
        path: &mut Vec<&'n String>,
        reported: &mut BTreeSet<String>,
    ) {
        match state.get(at) {
            Some(2) => return,
            Some(1) => {
                let from = path.iter().position(|p| *p == at).unwrap_or(0);
                let cycle: Vec<&str> = path[from..].iter().map(|s| s.as_str()).collect();
                if reported.insert(cycle.iter().min().copied().unwrap_or_default().to_string()) {
                    let node = &self.flow.nodes[at];
                    self.error(
                        node,
                        format!(
                            "loop that never waits for the caller: {} -> {}",
                            cycle.join(" -> "),
                            at
                        ),
                    );
                }
                return;
            }
            _ => {}
        }
        state.insert(at, 1);
        path.push(at);
        if let Some(next) = quiet.get(at) {
            for n in next {
                if let Some((key, _)) = quiet.get_key_value(n) {
                    self.find_cycle(key, quiet, state, path, reported);
                }
            }
        }
        path.pop();
        state.insert(at, 2);
    }
}

/// " (did you mean `x`?)" when a name is one or two edits from a known one.
fn closest<'a>(name: &str, known: impl Iterator<Item = &'a String>) -> String {
    known
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}
