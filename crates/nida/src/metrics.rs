//! Prometheus `/metrics`: the routing core's per-queue statistics (offered,
//! answered, abandoned, waiting, longest wait, service level, speed of
//! answer), handle time and satisfaction from the call records written
//! since start, agents by state from the live board, RTP loss and jitter,
//! and SIP responses by code, in the text exposition format.

use crate::centre::CentreHandle;
use crate::db::{Notices, Stored};
use crate::driver::Counters;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

/// Sums over the call records written since start, per queue.
#[derive(Debug, Clone, Default)]
pub struct RecordTotals {
    /// Queue to (talk seconds, answered calls with a talk time).
    pub handle: BTreeMap<String, (f64, u64)>,
    /// Queue to (sum of ratings, ratings).
    pub ratings: BTreeMap<String, (u64, u64)>,
    /// Call-backs by status.
    pub callbacks: BTreeMap<String, u64>,
}

/// Follows what the store writes; returns the running totals.
pub fn follow(notices: &Notices) -> watch::Receiver<Arc<RecordTotals>> {
    let mut rx = notices.subscribe();
    let (tx, out) = watch::channel(Arc::new(RecordTotals::default()));
    tokio::spawn(async move {
        let mut t = RecordTotals::default();
        loop {
            match rx.recv().await {
                Ok(Stored::Call(r)) => {
                    if let (Some(_), Some(talk)) = (r.wait_seconds, r.talk_seconds) {
                        let h = t.handle.entry(r.queue.clone()).or_default();
                        h.0 += talk;
                        h.1 += 1;
                    }
                    if let Some(rating) = r.rating {
                        let s = t.ratings.entry(r.queue.clone()).or_default();
                        s.0 += u64::from(rating);
                        s.1 += 1;
                    }
                }
                Ok(Stored::Callback(c)) => *t.callbacks.entry(c.status).or_default() += 1,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
            tx.send_replace(Arc::new(t.clone()));
        }
    });
    out
}

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes one metric family: HELP, TYPE and its samples.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// The store's families: writes waiting for a failing store, writes
/// given up.
pub fn store_health(h: &crate::db::StoreHealth) -> String {
    let mut out = String::new();
    let load =
        |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed) as f64;
    family(
        &mut out,
        "nida_store_unwritten",
        "gauge",
        "Records, call-back changes and audit rows the store did not take yet (kept in memory, tried again).",
        &[(String::new(), load(&h.unwritten))],
    );
    family(
        &mut out,
        "nida_store_given_up_total",
        "counter",
        "Writes given up after the in-memory bound of unwritten ones was reached.",
        &[(String::new(), load(&h.lost))],
    );
    out
}

/// The whole exposition (but the store's, see [`store_health`]).
pub fn render(counters: &Counters, centre: &CentreHandle, totals: &RecordTotals) -> String {
    let mut out = String::new();
    let snap = centre.stats.load();
    let now = Instant::now();
    let names: Vec<&String> = centre.queues.keys().collect();
    let per_queue = |f: &dyn Fn(&nida_acd::QueueStats) -> Option<f64>| -> Vec<(String, f64)> {
        names
            .iter()
            .zip(&snap.queues)
            .filter_map(|(n, q)| f(q).map(|v| (format!("queue=\"{}\"", label(n)), v)))
            .collect()
    };
    family(
        &mut out,
        "nida_calls_offered_total",
        "counter",
        "Calls that joined the queue.",
        &per_queue(&|q| Some(q.offered as f64)),
    );
    family(
        &mut out,
        "nida_calls_answered_total",
        "counter",
        "Calls an agent took.",
        &per_queue(&|q| Some(q.answered as f64)),
    );
    family(
        &mut out,
        "nida_calls_answered_in_service_level_total",
        "counter",
        "Calls an agent took within the queue's service-level threshold.",
        &per_queue(&|q| Some(q.answered_in_sl as f64)),
    );
    family(
        &mut out,
        "nida_calls_abandoned_total",
        "counter",
        "Callers who hung up before an agent took the call.",
        &per_queue(&|q| Some(q.abandoned as f64)),
    );
    family(
        &mut out,
        "nida_queue_waiting",
        "gauge",
        "Calls waiting now.",
        &per_queue(&|q| Some(q.waiting as f64)),
    );
    family(
        &mut out,
        "nida_queue_longest_wait_seconds",
        "gauge",
        "Wait of the oldest call waiting now.",
        &per_queue(&|q| {
            Some(
                q.oldest
                    .map_or(0.0, |o| now.saturating_duration_since(o).as_secs_f64()),
            )
        }),
    );
    family(
        &mut out,
        "nida_service_level_ratio",
        "gauge",
        "Answered within the threshold over answered plus abandoned, since start.",
        &per_queue(&|q| {
            let base = q.answered + q.abandoned;
            (base > 0).then(|| q.answered_in_sl as f64 / base as f64)
        }),
    );
    family(
        &mut out,
        "nida_average_speed_of_answer_seconds",
        "gauge",
        "Mean wait of answered calls, since start.",
        &per_queue(&|q| {
            (q.answered > 0).then(|| q.total_answer_wait.as_secs_f64() / q.answered as f64)
        }),
    );
    let by_queue = |m: &BTreeMap<String, (f64, u64)>| -> Vec<(String, f64)> {
        m.iter()
            .filter(|(_, (_, n))| *n > 0)
            .map(|(q, (sum, n))| (format!("queue=\"{}\"", label(q)), sum / *n as f64))
            .collect()
    };
    family(
        &mut out,
        "nida_average_handle_time_seconds",
        "gauge",
        "Mean time with the agent of answered calls ended since start.",
        &by_queue(&totals.handle),
    );
    let ratings: BTreeMap<String, (f64, u64)> = totals
        .ratings
        .iter()
        .map(|(q, (s, n))| (q.clone(), (*s as f64, *n)))
        .collect();
    family(
        &mut out,
        "nida_satisfaction_average",
        "gauge",
        "Mean rating (1 to 5) given in the survey, since start.",
        &by_queue(&ratings),
    );
    family(
        &mut out,
        "nida_survey_responses_total",
        "counter",
        "Surveys answered.",
        &totals
            .ratings
            .iter()
            .map(|(q, (_, n))| (format!("queue=\"{}\"", label(q)), *n as f64))
            .collect::<Vec<_>>(),
    );
    family(
        &mut out,
        "nida_callback_changes_total",
        "counter",
        "Call-back state changes, by new state.",
        &totals
            .callbacks
            .iter()
            .map(|(s, n)| (format!("status=\"{}\"", label(s)), *n as f64))
            .collect::<Vec<_>>(),
    );
    let mut states: BTreeMap<&str, u64> = [
        "logged_out",
        "available",
        "ringing",
        "talking",
        "wrap_up",
        "not_ready",
    ]
    .into_iter()
    .map(|s| (s, 0))
    .collect();
    for a in centre.live.borrow().agents.values() {
        *states.entry(a.state).or_default() += 1;
    }
    family(
        &mut out,
        "nida_agents",
        "gauge",
        "Agents by state.",
        &states
            .iter()
            .map(|(s, n)| (format!("state=\"{s}\""), *n as f64))
            .collect::<Vec<_>>(),
    );
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    family(
        &mut out,
        "nida_calls_active",
        "gauge",
        "Calls in progress.",
        &[(String::new(), load(&counters.calls))],
    );
    family(
        &mut out,
        "nida_overload_rejects_total",
        "counter",
        "Calls refused with 503 (over capacity).",
        &[(String::new(), load(&counters.overload_rejects))],
    );
    let p = counters.protection.load();
    family(
        &mut out,
        "nida_protection_dropped_total",
        "counter",
        "SIP messages dropped by the per-source protection, by reason.",
        &[
            ("reason=\"blocked\"".to_string(), p.blocked as f64),
            ("reason=\"rate\"".to_string(), p.too_fast as f64),
            ("reason=\"size\"".to_string(), p.too_large as f64),
        ],
    );
    family(
        &mut out,
        "nida_protection_calls_refused_total",
        "counter",
        "Calls refused for the per-source call limit.",
        &[(String::new(), p.dialogs_refused as f64)],
    );
    family(
        &mut out,
        "nida_protection_blocks_total",
        "counter",
        "Sources blocked after repeated authentication failures.",
        &[(String::new(), p.blocks as f64)],
    );
    let trunks = counters.trunks.borrow().clone();
    family(
        &mut out,
        "nida_trunk_registered",
        "gauge",
        "1 when the trunk is registered to its carrier.",
        &trunks
            .iter()
            .filter(|t| t.registration != "off")
            .map(|t| {
                let up = t.registration == "registered";
                (format!("trunk=\"{}\"", t.name), f64::from(u8::from(up)))
            })
            .collect::<Vec<_>>(),
    );
    family(
        &mut out,
        "nida_trunk_address_up",
        "gauge",
        "1 when the trunk address answers its health checks.",
        &trunks
            .iter()
            .flat_map(|t| {
                t.addresses.iter().map(|a| {
                    (
                        format!("trunk=\"{}\",address=\"{}\"", t.name, a.address),
                        f64::from(u8::from(a.health == "up")),
                    )
                })
            })
            .collect::<Vec<_>>(),
    );
    family(
        &mut out,
        "nida_rtp_packets_received_total",
        "counter",
        "RTP packets received on finished call legs.",
        &[(String::new(), load(&counters.rtp_received))],
    );
    family(
        &mut out,
        "nida_rtp_packets_lost_total",
        "counter",
        "RTP packets lost on finished call legs (RFC 3550).",
        &[(String::new(), load(&counters.rtp_lost))],
    );
    family(
        &mut out,
        "nida_rtp_ports_in_use",
        "gauge",
        "RTP ports held by calls and legs now.",
        &[(String::new(), load(&counters.rtp_ports_in_use))],
    );
    family(
        &mut out,
        "nida_rtp_packets_foreign_total",
        "counter",
        "RTP packets dropped on finished call legs: they came from another source than the peer.",
        &[(String::new(), load(&counters.rtp_foreign))],
    );
    let legs = load(&counters.rtp_legs);
    family(
        &mut out,
        "nida_rtp_jitter_seconds_average",
        "gauge",
        "Mean interarrival jitter of finished call legs.",
        &[(
            String::new(),
            if legs > 0.0 {
                load(&counters.rtp_jitter_us) / legs / 1e6
            } else {
                0.0
            },
        )],
    );
    let codes = |c: &crate::driver::StatusCounts, dir: &str| -> Vec<(String, f64)> {
        c.seen()
            .into_iter()
            .map(|(code, n)| (format!("code=\"{code}\",direction=\"{dir}\""), n as f64))
            .collect()
    };
    let mut sip = codes(&counters.responses_sent, "sent");
    sip.extend(codes(&counters.responses_received, "received"));
    family(
        &mut out,
        "nida_sip_responses_total",
        "counter",
        "SIP responses by status code, sent and received.",
        &sip,
    );
    family(
        &mut out,
        "nida_sip_messages_malformed_total",
        "counter",
        "SIP messages that failed to parse or validate.",
        &[(String::new(), load(&counters.sip_malformed))],
    );
    family(
        &mut out,
        "nida_sip_responses_foreign_total",
        "counter",
        "SIP responses dropped: they came from another address or connection than their request went to.",
        &[(String::new(), load(&counters.sip_foreign_responses))],
    );
    out
}
