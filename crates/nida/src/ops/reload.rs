//! Hot reload of IVR flows: on SIGHUP, and when a file in the flows folder
//! changes (checked twice a second), the folder is loaded and checked again.
//! A valid set replaces the current one for new calls (calls in progress
//! keep the version they started with); an invalid one is refused with its
//! diagnostics in the log and the old flows keep serving.

use crate::config::Config;
use nida_ivr::FlowSet;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tracing::{error, info};

/// Modification times and sizes of the flow files: a change in any
/// (including a file added or removed) means reload.
fn fingerprint(dir: &Path) -> Vec<(String, Option<SystemTime>, u64)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            matches!(
                e.path().extension().and_then(|x| x.to_str()),
                Some("yaml" | "yml")
            )
        })
        .map(|e| {
            let m = e.metadata().ok();
            (
                e.file_name().to_string_lossy().to_string(),
                m.as_ref().and_then(|m| m.modified().ok()),
                m.map(|m| m.len()).unwrap_or(0),
            )
        })
        .collect();
    v.sort();
    v
}

/// Why a reload was refused (the old flows keep serving).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The flows do not pass the checker.
    #[error("{0}")]
    Invalid(#[from] nida_ivr::Report),
    /// Flows name queues the centre does not run (queues are set at start).
    #[error("{}", .0.join("\n"))]
    UnknownQueues(Vec<String>),
    /// The dial plan or the default flow names flows that are gone.
    #[error("the dial plan names flows that are gone: {}", .0.join(", "))]
    MissingFlows(Vec<String>),
}

/// Loads and checks the flows again; publishes them when valid. Returns
/// how many flows serve now, or why the old ones keep serving.
///
/// The centre's queues are set at start: a flow naming a queue it does not
/// know is refused with the file, line and column that name it.
pub fn reload(
    cfg: &Config,
    queues: &BTreeSet<String>,
    tx: &watch::Sender<Arc<FlowSet>>,
    why: &str,
) -> Result<usize, ReloadError> {
    let checked = check(cfg, queues);
    match &checked {
        Ok(set) => {
            info!(%why, flows = set.flows.len(), "flows reloaded");
        }
        Err(e) => error!(%why, "reload refused; the old flows keep serving:\n{e}"),
    }
    let set = checked?;
    let n = set.flows.len();
    tx.send_replace(Arc::new(set));
    Ok(n)
}

/// The flows of the folder, when they pass the checker and fit the
/// centre's queues and the dial plan.
fn check(cfg: &Config, queues: &BTreeSet<String>) -> Result<FlowSet, ReloadError> {
    let set = crate::cli::flowcmd::load(&cfg.flows_dir, &cfg.prompts_dir, &cfg.calendar_names())?;
    let unknown: Vec<String> = set
        .queue_uses()
        .into_iter()
        .filter(|(q, ..)| !queues.contains(q))
        .map(|(q, file, line, column)| {
            format!(
                "{}:{line}:{column}: queue {q} is not one the centre runs (queues are set at start: restart nida to add one)",
                file.display()
            )
        })
        .collect();
    if !unknown.is_empty() {
        return Err(ReloadError::UnknownQueues(unknown));
    }
    let missing: Vec<String> = cfg
        .dial_plan
        .values()
        .chain(cfg.default_flow.iter())
        .filter(|f| set.get(f).is_none())
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(ReloadError::MissingFlows(missing));
    }
    Ok(set)
}

/// [`fingerprint`] off the tokio workers (it reads the folder).
async fn fingerprint_blocking(cfg: &Arc<Config>) -> Vec<(String, Option<SystemTime>, u64)> {
    let cfg = cfg.clone();
    tokio::task::spawn_blocking(move || fingerprint(&cfg.flows_dir))
        .await
        .unwrap_or_default()
}

/// Watches for SIGHUP and file changes until the process ends. Reading
/// the folder and checking the flows run on the blocking pool, never on a
/// tokio worker.
pub async fn watch(
    cfg: Arc<Config>,
    queues: Arc<BTreeSet<String>>,
    tx: Arc<watch::Sender<Arc<FlowSet>>>,
) {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut last = fingerprint_blocking(&cfg).await;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        let why = tokio::select! {
            _ = async {
                match hup.as_mut() {
                    Some(h) => { h.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => "SIGHUP",
            _ = tick.tick() => {
                let now = fingerprint_blocking(&cfg).await;
                if now == last {
                    continue;
                }
                "file change"
            }
        };
        last = fingerprint_blocking(&cfg).await;
        let (cfg, queues, tx) = (cfg.clone(), queues.clone(), tx.clone());
        let _ = tokio::task::spawn_blocking(move || reload(&cfg, &queues, &tx, why)).await;
    }
}
