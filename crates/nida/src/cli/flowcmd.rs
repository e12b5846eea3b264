//! `nida flow check|simulate|graph`: the ops engineer's tools for flow
//! files, and the loader the daemon shares with them.

use crate::call::lookup::{self, Backends};
use crate::config::Config;
use nida_ivr::check::{FlowSet, Node};
use nida_ivr::expr::Vars;
use nida_ivr::flow::Kind;
use nida_ivr::{Action, Outcome, Session};
use std::collections::HashSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The prompts that exist on disk, by (language, name).
pub fn prompt_index(dir: &Path) -> HashSet<(String, String)> {
    let mut out = HashSet::new();
    let Ok(langs) = std::fs::read_dir(dir) else {
        return out;
    };
    for lang in langs.flatten().filter(|e| e.path().is_dir()) {
        let l = lang.file_name().to_string_lossy().to_string();
        for f in std::fs::read_dir(lang.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let p = f.path();
            let audio = matches!(
                p.extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_ascii_lowercase)
                    .as_deref(),
                Some("wav" | "mp3" | "flac" | "ogg" | "oga")
            );
            if let (true, Some(stem)) = (audio, p.file_stem()) {
                out.insert((l.clone(), stem.to_string_lossy().to_string()));
            }
        }
    }
    out
}

/// Loads and checks the flows under `path` against the prompts on disk;
/// a file is checked with the other flows of its folder (its sub-flows).
pub fn load(
    path: &Path,
    prompts_dir: &Path,
    calendars: &std::collections::BTreeSet<String>,
) -> Result<FlowSet, nida_ivr::Report> {
    let index = prompt_index(prompts_dir);
    let catalog = |lang: &str, name: &str| index.contains(&(lang.to_string(), name.to_string()));
    let folder = if path.is_file() {
        path.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        path.to_path_buf()
    };
    nida_ivr::load_path_with(&folder, &catalog, Some(calendars))
}

/// `nida flow check PATH`.
pub fn check(cfg: &Config, path: &Path) -> ExitCode {
    match load(path, &cfg.prompts_dir, &cfg.calendar_names()) {
        Ok(set) => {
            let nodes: usize = set.flows.values().map(|f| f.nodes.len()).sum();
            println!(
                "ok: {} flow{} ({}), {nodes} nodes",
                set.flows.len(),
                if set.flows.len() == 1 { "" } else { "s" },
                set.flows.keys().cloned().collect::<Vec<_>>().join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(text) => {
            eprint!("{text}");
            ExitCode::from(1)
        }
    }
}

fn flow_name_of(set: &FlowSet, file: &Path) -> Option<String> {
    set.flows
        .values()
        .find(|f| same_file(&f.file, file))
        .map(|f| f.name.clone())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Options of `nida flow simulate`.
pub struct SimulateArgs {
    /// The flow file.
    pub file: PathBuf,
    /// Start in this language.
    pub lang: Option<String>,
    /// Comma-separated key groups; `.` is silence. None: interactive.
    pub digits: Option<String>,
    /// JSON records answering every lookup.
    pub lookup_fixture: Option<PathBuf>,
    /// When calendars are read: Unix seconds or `YYYY-MM-DDTHH:MM` (UTC).
    pub at: Option<String>,
}

/// `--at`: Unix seconds, or a UTC date and time.
fn parse_at(s: &str) -> Option<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    let dt: jiff::civil::DateTime = s.parse().ok()?;
    Some(
        dt.to_zoned(jiff::tz::TimeZone::UTC)
            .ok()?
            .timestamp()
            .as_second(),
    )
}

/// `nida flow simulate`: runs the flow through the daemon's interpreter,
/// printing each prompt and the final action.
pub fn simulate(cfg: &Config, args: SimulateArgs) -> ExitCode {
    let set = match load(&args.file, &cfg.prompts_dir, &cfg.calendar_names()) {
        Ok(s) => Arc::new(s),
        Err(text) => {
            eprint!("{text}");
            return ExitCode::from(1);
        }
    };
    let Some(name) = flow_name_of(&set, &args.file) else {
        eprintln!("nida: {} is not a flow file", args.file.display());
        return ExitCode::from(2);
    };
    let mut lookups = cfg.lookups.clone();
    if let Some(f) = &args.lookup_fixture {
        for l in lookups.values_mut() {
            l.file = Some(f.clone());
            l.url = None;
        }
        if lookups.is_empty() {
            lookups.insert(
                "applications".into(),
                crate::config::LookupConfig {
                    file: Some(f.clone()),
                    key: "number".into(),
                    url: None,
                    method: "GET".into(),
                },
            );
        }
    }
    let backends = match lookup::load(&lookups) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("nida: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nida: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut vars = Vars::new();
    if let Some(l) = &args.lang {
        vars.insert("language".into(), nida_ivr::Value::Str(l.clone()));
    }
    // Virtual time: the clock moves only when the caller stays silent.
    let mut now = Instant::now();
    // `open("...")` reads the configuration's calendars at the wall clock.
    let unix = match args.at.as_deref().map(parse_at) {
        None => crate::clock::unix_now() as i64,
        Some(Some(t)) => t,
        Some(None) => {
            eprintln!("nida flow simulate: --at takes Unix seconds or YYYY-MM-DDTHH:MM (UTC)");
            return ExitCode::from(2);
        }
    };
    let env = nida_ivr::interp::Env {
        unix,
        hours: Some(Arc::new(cfg.calendars())),
    };
    let Some(mut session) = Session::start(now, env, set.clone(), &name, vars) else {
        return ExitCode::FAILURE;
    };
    let mut script: Option<std::vec::IntoIter<String>> = args.digits.as_ref().map(|d| {
        d.split(',')
            .map(|s| s.trim().to_string())
            .collect::<Vec<_>>()
            .into_iter()
    });
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        run_actions(&rt, &backends, &mut session, now);
        if *session.outcome() != Outcome::Running {
            break;
        }
        let input = match script.as_mut() {
            Some(s) => s.next(),
            None => {
                eprint!("keys (empty line: silence)> ");
                lines.next().and_then(Result::ok)
            }
        };
        let Some(keys) = input else {
            println!("(input ended while the flow waits)");
            break;
        };
        let keys = keys.trim().to_string();
        if keys.is_empty() || keys == "." {
            println!("  … silence");
            now = session
                .poll_timeout()
                .unwrap_or(now + Duration::from_secs(10));
            session.handle_timeout(now);
        } else {
            println!("  ⌨ {keys}");
            for d in keys.chars() {
                session.handle_digit(now, d);
                run_actions(&rt, &backends, &mut session, now);
            }
        }
    }
    match session.outcome() {
        Outcome::Queued(q) => {
            let skills: Vec<String> = q.skills.iter().map(|(k, v)| format!("{k}>={v}")).collect();
            println!(
                "result: queue {} (skills {}; language {}; priority {})",
                q.queue,
                if skills.is_empty() {
                    "none".into()
                } else {
                    skills.join(", ")
                },
                q.language,
                q.priority
            );
        }
        Outcome::HungUp => println!("result: hangup"),
        Outcome::Voicemail(q) => println!("result: voicemail for {q}"),
        Outcome::Failed(e) => {
            println!("result: failed: {e}");
            return ExitCode::from(1);
        }
        Outcome::Running => println!("result: still waiting at the end of the input"),
    }
    println!("path: {}", session.path().join(" > "));
    ExitCode::SUCCESS
}

fn run_actions(rt: &tokio::runtime::Runtime, backends: &Backends, s: &mut Session, now: Instant) {
    while let Some(a) = s.poll_action() {
        match a {
            Action::Play(refs) => {
                let names: Vec<String> = refs
                    .iter()
                    .map(|r| format!("{}/{}", r.lang, r.name))
                    .collect();
                println!("▶ {}", names.join(" "));
                s.handle_playback_done(now);
            }
            Action::StopPlayback => {}
            Action::Lookup {
                id,
                service,
                params,
            } => {
                let result = match backends.get(&service) {
                    Some(b) => rt.block_on(lookup::lookup(b, &params, Duration::from_secs(3))),
                    None => nida_ivr::LookupResult::Error(format!("no backend `{service}`")),
                };
                println!("? lookup {service} {params:?} -> {result:?}");
                s.handle_lookup(now, id, result);
            }
            Action::Callback { queue } => println!("☎ call-back requested in {queue}"),
            Action::Queue(_) | Action::Voicemail(_) | Action::Hangup => {}
        }
    }
}

macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

/// `nida flow graph FILE --format mermaid|dot`.
pub fn graph(cfg: &Config, file: &Path, format: &str) -> ExitCode {
    let set = match load(file, &cfg.prompts_dir, &cfg.calendar_names()) {
        Ok(s) => s,
        Err(text) => {
            eprint!("{text}");
            return ExitCode::from(1);
        }
    };
    let Some(name) = flow_name_of(&set, file) else {
        eprintln!("nida: {} is not a flow file", file.display());
        return ExitCode::from(2);
    };
    let flow = &set.flows[&name];
    let mut edges: Vec<(String, String, String)> = Vec::new();
    for (n, node) in &flow.nodes {
        for (label, target) in edges_of(node) {
            edges.push((n.clone(), target, label));
        }
    }
    let mut out = String::new();
    let id = |s: &str| s.replace(['-', '.'], "_");
    match format {
        "mermaid" => {
            outln!(out, "flowchart TD");
            outln!(out, "  start(((start))) --> {}", id(&flow.start));
            for (n, node) in &flow.nodes {
                outln!(
                    out,
                    "  {}[\"{n}<br/><i>{}</i>\"]",
                    id(n),
                    kind_name(node.kind)
                );
            }
            for (a, b, l) in edges {
                if l.is_empty() {
                    outln!(out, "  {} --> {}", id(&a), id(&b));
                } else {
                    outln!(
                        out,
                        "  {} -->|{}| {}",
                        id(&a),
                        l.replace('#', "hash"),
                        id(&b)
                    );
                }
            }
        }
        "dot" => {
            outln!(out, "digraph \"{name}\" {{");
            outln!(
                out,
                "  rankdir=TB; node [shape=box, fontname=\"sans-serif\"];"
            );
            outln!(
                out,
                "  start [shape=circle, label=\"\"]; start -> \"{}\";",
                flow.start
            );
            for (n, node) in &flow.nodes {
                outln!(out, "  \"{n}\" [label=\"{n}\\n{}\"];", kind_name(node.kind));
            }
            for (a, b, l) in edges {
                outln!(out, "  \"{a}\" -> \"{b}\" [label=\"{l}\"];");
            }
            outln!(out, "}}");
        }
        other => {
            eprintln!("nida: unknown graph format {other:?} (mermaid or dot)");
            return ExitCode::from(2);
        }
    }
    use std::io::Write as _;
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().write_all(out.as_bytes());
    ExitCode::SUCCESS
}

fn kind_name(k: Kind) -> String {
    format!("{k:?}").to_lowercase()
}

fn edges_of(node: &Node) -> Vec<(String, String)> {
    let d = &node.def;
    let mut out = Vec::new();
    if let Some(m) = &d.menu {
        for (k, t) in &m.value.choices {
            out.push((k.clone(), t.value.clone()));
        }
        out.push(("failure".into(), m.value.on_failure.value.clone()));
    }
    if let Some(c) = &d.collect {
        out.push(("failure".into(), c.value.on_failure.value.clone()));
    }
    if let Some(l) = &d.lookup {
        out.push(("error".into(), l.value.on_error.value.clone()));
        if let Some(n) = &l.value.on_not_found {
            out.push(("not found".into(), n.value.clone()));
        }
    }
    if let Some(b) = &d.branch {
        for a in &b.value {
            let label = a
                .when
                .as_ref()
                .map(|w| w.value.replace('"', "'"))
                .unwrap_or_else(|| "else".into());
            out.push((label, a.goto.value.clone()));
        }
    }
    if let Some(c) = &d.callback_offer {
        out.push(("accept".into(), c.value.on_accept.value.clone()));
        out.push(("decline".into(), c.value.on_decline.value.clone()));
    }
    if let Some(g) = &d.goto {
        out.push((String::new(), g.value.clone()));
    }
    if let Some(n) = &d.next {
        let label = if d.call.is_some() { "return" } else { "" };
        out.push((label.into(), n.value.clone()));
    }
    out
}
