//! Prometheus `/metrics`, encoded by prometheus-client in the OpenMetrics
//! text format: histograms of wait, speed of answer and handle time per
//! queue from the call records written since start; and, read at each
//! scrape, the routing core's per-queue statistics (offered, answered,
//! abandoned, waiting, longest wait, service level, speed of answer),
//! handle time and satisfaction averages, agents by state from the live
//! board, trunks, RTP loss and jitter, protection, the store's backlog and
//! SIP responses by code.

use crate::base::bus::Counters;
use crate::base::db::{Notices, StoreHealth, Stored};
use crate::centre::CentreHandle;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the wait and speed-of-answer buckets.
const WAIT_BUCKETS: [f64; 11] = [
    5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
];
/// Upper bounds (seconds) of the handle-time buckets.
const HANDLE_BUCKETS: [f64; 10] = [
    30.0, 60.0, 120.0, 180.0, 300.0, 450.0, 600.0, 900.0, 1800.0, 3600.0,
];

/// A queue label.
type Queue = Vec<(&'static str, String)>;
/// Buckets of the estimated MOS (1 to 4.5).
const MOS_BUCKETS: [f64; 8] = [1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.2, 4.4];
/// Buckets of round-trip times, in seconds.
const RTT_BUCKETS: [f64; 8] = [0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.4, 0.8];
/// Buckets of packet loss, as a share.
const LOSS_BUCKETS: [f64; 7] = [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2];

/// Sums over the call records written since start, per queue.
#[derive(Debug, Clone, Default)]
pub struct RecordTotals {
    /// Queue to (talk seconds, answered calls with a talk time).
    pub handle: BTreeMap<String, (f64, u64)>,
    /// Queue to (sum of ratings, ratings).
    pub ratings: BTreeMap<String, (u64, u64)>,
    /// Call-backs by status.
    pub callbacks: BTreeMap<String, u64>,
    /// Calls that ran a flow, by (first flow, how the IVR part ended).
    pub ivr: BTreeMap<(String, String), u64>,
    /// Lookups by (first flow, result).
    pub lookups: BTreeMap<(String, String), u64>,
    /// Voice messages kept, by queue.
    pub voicemails: BTreeMap<String, u64>,
    /// Notification attempts ended, by result.
    pub notifications: BTreeMap<String, u64>,
}

impl RecordTotals {
    /// Counts one record's IVR part and voice message.
    fn add_journey(&mut self, r: &nida_store::CallRecord) {
        if let Some(t) = &r.ivr {
            let end = t.end.as_str().to_string();
            *self.ivr.entry((t.flow.clone(), end)).or_default() += 1;
            for l in &t.lookups {
                let result = l.result.as_str().to_string();
                *self.lookups.entry((t.flow.clone(), result)).or_default() += 1;
            }
        }
        if let Some(v) = &r.voicemail {
            *self.voicemails.entry(v.queue.clone()).or_default() += 1;
        }
    }
}

/// The time histograms of the call records, per queue.
#[derive(Debug, Clone)]
pub struct Times {
    /// Time in line of every queued call, answered or not.
    wait: Family<Queue, Histogram>,
    /// Time in line of answered calls (speed of answer).
    answer: Family<Queue, Histogram>,
    /// Time with the agent of answered calls.
    handle: Family<Queue, Histogram>,
    /// Estimated MOS of each leg, by role.
    mos: Family<Queue, Histogram>,
    /// Round-trip time of each leg that measured one, by role.
    rtt: Family<Queue, Histogram>,
    /// Packet loss towards nida of each leg, by role.
    loss: Family<Queue, Histogram>,
}

impl Default for Times {
    fn default() -> Self {
        fn wait() -> Histogram {
            Histogram::new(WAIT_BUCKETS)
        }
        fn handle() -> Histogram {
            Histogram::new(HANDLE_BUCKETS)
        }
        Times {
            wait: Family::new_with_constructor(wait as fn() -> Histogram),
            answer: Family::new_with_constructor(wait as fn() -> Histogram),
            handle: Family::new_with_constructor(handle as fn() -> Histogram),
            mos: Family::new_with_constructor(|| Histogram::new(MOS_BUCKETS)),
            rtt: Family::new_with_constructor(|| Histogram::new(RTT_BUCKETS)),
            loss: Family::new_with_constructor(|| Histogram::new(LOSS_BUCKETS)),
        }
    }
}

impl Times {
    /// Counts one call record.
    pub fn observe(&self, r: &nida_store::CallRecord) {
        let q: Queue = vec![("queue", r.queue.clone())];
        let waited = r
            .wait_seconds
            .or_else(|| r.queued_at.map(|at| (r.ended_at - at).max(0) as f64));
        if let Some(w) = waited {
            self.wait.get_or_create(&q).observe(w);
        }
        if let Some(w) = r.wait_seconds {
            self.answer.get_or_create(&q).observe(w);
        }
        if let Some(t) = r.talk_seconds {
            self.handle.get_or_create(&q).observe(t);
        }
        for m in &r.media {
            let role: Queue = vec![("role", m.role.clone())];
            self.mos.get_or_create(&role).observe(m.mos);
            self.loss.get_or_create(&role).observe(m.loss);
            if let Some(rtt) = m.rtt_ms {
                self.rtt.get_or_create(&role).observe(rtt / 1000.0);
            }
        }
    }
}

/// Follows what the store writes: the running totals, and each call
/// record counted in `times`.
pub fn follow(notices: &Notices, times: Times) -> watch::Receiver<Arc<RecordTotals>> {
    let mut rx = notices.subscribe();
    let (tx, out) = watch::channel(Arc::new(RecordTotals::default()));
    tokio::spawn(async move {
        let mut t = RecordTotals::default();
        loop {
            match rx.recv().await {
                Ok(Stored::Call(r)) => {
                    times.observe(&r);
                    t.add_journey(&r);
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
                Ok(Stored::Notification(c, _)) => match &c.attempt {
                    Some(a) => *t.notifications.entry(a.result.clone()).or_default() += 1,
                    None => continue,
                },
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
            tx.send_replace(Arc::new(t.clone()));
        }
    });
    out
}

/// The metrics registry: the record histograms and the live collector.
pub fn registry(times: &Times, live: Live) -> Registry {
    let mut r = Registry::default();
    register_times(&mut r, times);
    r.register_collector(Box::new(live));
    r
}

fn register_times(r: &mut Registry, times: &Times) {
    r.register(
        "nida_wait_seconds",
        "Time in line of queued calls (answered, abandoned or gone by an exit), from the records written since start.",
        times.wait.clone(),
    );
    r.register(
        "nida_answer_seconds",
        "Time in line of answered calls (speed of answer), from the records written since start.",
        times.answer.clone(),
    );
    r.register(
        "nida_handle_seconds",
        "Time with the agent of answered calls, from the records written since start.",
        times.handle.clone(),
    );
    r.register(
        "nida_media_mos",
        "Estimated mean opinion score (E-model) of each call leg, by role, from the records written since start.",
        times.mos.clone(),
    );
    r.register(
        "nida_media_rtt_seconds",
        "RTCP round-trip time of each call leg that measured one, by role.",
        times.rtt.clone(),
    );
    r.register(
        "nida_media_loss_ratio",
        "Share of a call leg's packets lost on the way to nida, by role.",
        times.loss.clone(),
    );
}

/// The whole exposition.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// What is read at each scrape.
pub struct Live {
    /// Live counters.
    pub counters: Arc<Counters>,
    /// The centre (routing statistics, live board).
    pub centre: CentreHandle,
    /// Totals of the records written since start.
    pub totals: watch::Receiver<Arc<RecordTotals>>,
    /// The store's backlog.
    pub health: Arc<StoreHealth>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Live(..)")
    }
}

/// One metric family: a value type and its samples.
enum Samples {
    Gauge(Vec<(Queue, i64)>),
    Ratio(Vec<(Queue, f64)>),
    Counter(Vec<(Queue, u64)>),
}

/// Encodes one family (counters get `_total` from the encoder).
fn family(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: Samples,
) -> Result<(), std::fmt::Error> {
    fn each<V, M: EncodeMetric>(
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        samples: Vec<(Queue, V)>,
        make: fn(V) -> M,
        kind: prometheus_client::metrics::MetricType,
    ) -> Result<(), std::fmt::Error> {
        let mut m = enc.encode_descriptor(name, help, None, kind)?;
        for (labels, v) in samples {
            make(v).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }
    use prometheus_client::metrics::MetricType;
    match samples {
        Samples::Gauge(s) => each(enc, name, help, s, ConstGauge::new, MetricType::Gauge),
        Samples::Ratio(s) => each(enc, name, help, s, ConstGauge::new, MetricType::Gauge),
        Samples::Counter(s) => each(enc, name, help, s, ConstCounter::new, MetricType::Counter),
    }
}

fn none() -> Queue {
    Vec::new()
}

fn one(key: &'static str, v: impl Into<String>) -> Queue {
    vec![(key, v.into())]
}

impl Collector for Live {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.queues(&mut enc)?;
        self.records(&mut enc)?;
        self.agents_and_calls(&mut enc)?;
        self.network(&mut enc)?;
        self.store(&mut enc)
    }
}

impl Live {
    /// The routing core's per-queue statistics.
    fn queues(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = self.centre.stats.load();
        let now = Instant::now();
        let per_queue = |f: &dyn Fn(&nida_acd::QueueStats) -> Option<f64>| -> Vec<(Queue, f64)> {
            self.centre
                .queues
                .keys()
                .zip(&snap.queues)
                .filter_map(|(n, q)| f(q).map(|v| (one("queue", n.as_str()), v)))
                .collect()
        };
        let count = |f: &dyn Fn(&nida_acd::QueueStats) -> u64| -> Vec<(Queue, u64)> {
            self.centre
                .queues
                .keys()
                .zip(&snap.queues)
                .map(|(n, q)| (one("queue", n.as_str()), f(q)))
                .collect()
        };
        family(
            enc,
            "nida_calls_offered",
            "Calls that joined the queue.",
            Samples::Counter(count(&|q| q.offered)),
        )?;
        family(
            enc,
            "nida_calls_answered",
            "Calls an agent took.",
            Samples::Counter(count(&|q| q.answered)),
        )?;
        family(
            enc,
            "nida_calls_answered_in_service_level",
            "Calls an agent took within the queue's service-level threshold.",
            Samples::Counter(count(&|q| q.answered_in_sl)),
        )?;
        family(
            enc,
            "nida_calls_abandoned",
            "Callers who hung up before an agent took the call.",
            Samples::Counter(count(&|q| q.abandoned)),
        )?;
        family(
            enc,
            "nida_queue_waiting",
            "Calls waiting now.",
            Samples::Gauge(
                count(&|q| q.waiting as u64)
                    .into_iter()
                    .map(|(l, v)| (l, v as i64))
                    .collect(),
            ),
        )?;
        family(
            enc,
            "nida_queue_longest_wait_seconds",
            "Wait of the oldest call waiting now.",
            Samples::Ratio(per_queue(&|q| {
                Some(
                    q.oldest
                        .map_or(0.0, |o| now.saturating_duration_since(o).as_secs_f64()),
                )
            })),
        )?;
        family(
            enc,
            "nida_service_level_ratio",
            "Answered within the threshold over answered plus abandoned, since start.",
            Samples::Ratio(per_queue(&|q| {
                let base = q.answered + q.abandoned;
                (base > 0).then(|| q.answered_in_sl as f64 / base as f64)
            })),
        )?;
        family(
            enc,
            "nida_average_speed_of_answer_seconds",
            "Mean wait of answered calls, since start.",
            Samples::Ratio(per_queue(&|q| {
                (q.answered > 0).then(|| q.total_answer_wait.as_secs_f64() / q.answered as f64)
            })),
        )
    }

    /// Averages and counts of the records written since start.
    fn records(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let totals = self.totals.borrow().clone();
        let mean = |m: &BTreeMap<String, (f64, u64)>| -> Vec<(Queue, f64)> {
            m.iter()
                .filter(|(_, (_, n))| *n > 0)
                .map(|(q, (sum, n))| (one("queue", q.as_str()), sum / *n as f64))
                .collect()
        };
        family(
            enc,
            "nida_average_handle_time_seconds",
            "Mean time with the agent of answered calls ended since start.",
            Samples::Ratio(mean(&totals.handle)),
        )?;
        let ratings: BTreeMap<String, (f64, u64)> = totals
            .ratings
            .iter()
            .map(|(q, (s, n))| (q.clone(), (*s as f64, *n)))
            .collect();
        family(
            enc,
            "nida_satisfaction_average",
            "Mean rating (1 to 5) given in the survey, since start.",
            Samples::Ratio(mean(&ratings)),
        )?;
        family(
            enc,
            "nida_survey_responses",
            "Surveys answered.",
            Samples::Counter(
                totals
                    .ratings
                    .iter()
                    .map(|(q, (_, n))| (one("queue", q.as_str()), *n))
                    .collect(),
            ),
        )?;
        let pairs = |m: &BTreeMap<(String, String), u64>, k: &'static str| -> Vec<(Queue, u64)> {
            m.iter()
                .map(|((flow, v), n)| (vec![("flow", flow.clone()), (k, v.clone())], *n))
                .collect()
        };
        family(
            enc,
            "nida_ivr_calls",
            "Calls that ran a flow, by first flow and how the IVR part ended (self_served, caller_hung_up and error stayed in the IVR; queued and voicemail asked for an agent), since start.",
            Samples::Counter(pairs(&totals.ivr, "end")),
        )?;
        family(
            enc,
            "nida_ivr_lookups",
            "Lookups in flows, by first flow and result (found, not_found, failed), since start.",
            Samples::Counter(pairs(&totals.lookups, "result")),
        )?;
        family(
            enc,
            "nida_voicemails",
            "Voice messages kept, by queue, since start.",
            Samples::Counter(
                totals
                    .voicemails
                    .iter()
                    .map(|(q, n)| (one("queue", q.as_str()), *n))
                    .collect(),
            ),
        )?;
        family(
            enc,
            "nida_notification_attempts",
            "Status notification attempts ended, by result (answered, machine, busy, no_answer, ...).",
            Samples::Counter(
                totals
                    .notifications
                    .iter()
                    .map(|(s, n)| (one("result", s.as_str()), *n))
                    .collect(),
            ),
        )?;
        family(
            enc,
            "nida_callback_changes",
            "Call-back state changes, by new state.",
            Samples::Counter(
                totals
                    .callbacks
                    .iter()
                    .map(|(s, n)| (one("status", s.as_str()), *n))
                    .collect(),
            ),
        )
    }

    /// Agents by state, calls in progress and refused, protection.
    fn agents_and_calls(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut states: BTreeMap<&str, i64> = [
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
        for a in self.centre.live.borrow().agents.values() {
            *states.entry(a.state).or_default() += 1;
        }
        family(
            enc,
            "nida_agents",
            "Agents by state.",
            Samples::Gauge(states.iter().map(|(s, n)| (one("state", *s), *n)).collect()),
        )?;
        let c = &self.counters;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        family(
            enc,
            "nida_calls_active",
            "Calls in progress.",
            Samples::Gauge(vec![(none(), load(&c.calls) as i64)]),
        )?;
        family(
            enc,
            "nida_overload_rejects",
            "Calls refused with 503 (over capacity).",
            Samples::Counter(vec![(none(), load(&c.overload_rejects))]),
        )?;
        let p = c.protection.load();
        family(
            enc,
            "nida_protection_dropped",
            "SIP messages dropped by the per-source protection, by reason.",
            Samples::Counter(vec![
                (one("reason", "blocked"), p.blocked),
                (one("reason", "rate"), p.too_fast),
                (one("reason", "size"), p.too_large),
            ]),
        )?;
        family(
            enc,
            "nida_protection_calls_refused",
            "Calls refused for the per-source call limit.",
            Samples::Counter(vec![(none(), p.dialogs_refused)]),
        )?;
        family(
            enc,
            "nida_protection_blocks",
            "Sources blocked after repeated authentication failures.",
            Samples::Counter(vec![(none(), p.blocks)]),
        )
    }

    /// Trunks, RTP and SIP.
    fn network(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = &self.counters;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let trunks = c.trunks.borrow().clone();
        family(
            enc,
            "nida_trunk_registered",
            "1 when the trunk is registered to its carrier.",
            Samples::Gauge(
                trunks
                    .iter()
                    .filter(|t| t.registration != "off")
                    .map(|t| {
                        let up = t.registration == "registered";
                        (one("trunk", t.name.as_str()), i64::from(up))
                    })
                    .collect(),
            ),
        )?;
        family(
            enc,
            "nida_trunk_address_up",
            "1 when the trunk address answers its health checks.",
            Samples::Gauge(
                trunks
                    .iter()
                    .flat_map(|t| {
                        t.addresses.iter().map(|a| {
                            (
                                vec![
                                    ("trunk", t.name.clone()),
                                    ("address", a.address.to_string()),
                                ],
                                i64::from(a.health == "up"),
                            )
                        })
                    })
                    .collect(),
            ),
        )?;
        family(
            enc,
            "nida_rtp_packets_received",
            "RTP packets received on finished call legs.",
            Samples::Counter(vec![(none(), load(&c.rtp_received))]),
        )?;
        family(
            enc,
            "nida_rtp_packets_lost",
            "RTP packets lost on finished call legs (RFC 3550).",
            Samples::Counter(vec![(none(), load(&c.rtp_lost))]),
        )?;
        family(
            enc,
            "nida_rtp_ports_in_use",
            "RTP ports held by calls and legs now.",
            Samples::Gauge(vec![(none(), load(&c.rtp_ports_in_use) as i64)]),
        )?;
        family(
            enc,
            "nida_rtp_packets_foreign",
            "RTP packets dropped on finished call legs: they came from another source than the peer.",
            Samples::Counter(vec![(none(), load(&c.rtp_foreign))]),
        )?;
        let legs = load(&c.rtp_legs);
        let jitter = if legs > 0 {
            load(&c.rtp_jitter_us) as f64 / legs as f64 / 1e6
        } else {
            0.0
        };
        family(
            enc,
            "nida_rtp_jitter_seconds_average",
            "Mean interarrival jitter of finished call legs.",
            Samples::Ratio(vec![(none(), jitter)]),
        )?;
        let codes = |s: &crate::base::bus::StatusCounts, dir: &'static str| -> Vec<(Queue, u64)> {
            s.seen()
                .into_iter()
                .map(|(code, n)| {
                    (
                        vec![("code", code.to_string()), ("direction", dir.to_string())],
                        n,
                    )
                })
                .collect()
        };
        let mut sip = codes(&c.responses_sent, "sent");
        sip.extend(codes(&c.responses_received, "received"));
        family(
            enc,
            "nida_sip_responses",
            "SIP responses by status code, sent and received.",
            Samples::Counter(sip),
        )?;
        family(
            enc,
            "nida_sip_messages_malformed",
            "SIP messages that failed to parse or validate.",
            Samples::Counter(vec![(none(), load(&c.sip_malformed))]),
        )?;
        family(
            enc,
            "nida_sip_keepalives",
            "CRLF keep-alives received (RFC 5626): over UDP ignored, over TCP and TLS answered with a pong.",
            Samples::Counter(vec![
                (one("transport", "udp"), load(&c.sip_keepalives)),
                (one("transport", "stream"), load(&c.sip_pings)),
            ]),
        )?;
        family(
            enc,
            "nida_sip_responses_foreign",
            "SIP responses dropped: they came from another address or connection than their request went to.",
            Samples::Counter(vec![(none(), load(&c.sip_foreign_responses))]),
        )
    }

    /// The store's backlog: writes waiting for a failing store, writes
    /// given up.
    fn store(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let h = &self.health;
        family(
            enc,
            "nida_store_unwritten",
            "Records, call-back changes and audit rows the store did not take yet (kept in memory, tried again).",
            Samples::Gauge(vec![(none(), h.unwritten.load(Ordering::Relaxed) as i64)]),
        )?;
        family(
            enc,
            "nida_store_given_up",
            "Writes given up after the in-memory bound of unwritten ones was reached.",
            Samples::Counter(vec![(none(), h.lost.load(Ordering::Relaxed))]),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        queue: &str,
        outcome: &str,
        wait: Option<f64>,
        talk: Option<f64>,
    ) -> nida_store::CallRecord {
        nida_store::CallRecord {
            queue: queue.into(),
            outcome: outcome.into(),
            queued_at: Some(1_000),
            ended_at: 1_045,
            wait_seconds: wait,
            talk_seconds: talk,
            ..Default::default()
        }
    }

    #[test]
    fn records_fill_the_wait_answer_and_handle_histograms_per_queue() {
        let times = Times::default();
        times.observe(&record("visa", "answered", Some(12.0), Some(200.0)));
        times.observe(&record("visa", "abandoned", None, None));
        times.observe(&record("residency", "answered", Some(3.0), Some(40.0)));
        let mut with_media = record("police", "answered", Some(1.0), Some(10.0));
        with_media.media = vec![nida_store::LegQuality {
            role: "caller".into(),
            loss: 0.03,
            rtt_ms: Some(80.0),
            mos: 3.9,
            ..Default::default()
        }];
        times.observe(&with_media);
        let mut r = Registry::default();
        register_times(&mut r, &times);
        let text = render(&r);
        // Both visa calls waited: 12 s answered, 45 s abandoned.
        assert!(
            text.contains("nida_wait_seconds_count{queue=\"visa\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("nida_wait_seconds_sum{queue=\"visa\"} 57.0"),
            "{text}"
        );
        assert!(
            text.contains("nida_wait_seconds_bucket{le=\"30.0\",queue=\"visa\"} 1"),
            "{text}"
        );
        // Only the answered one counts for the speed of answer.
        assert!(
            text.contains("nida_answer_seconds_count{queue=\"visa\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("nida_handle_seconds_bucket{le=\"60.0\",queue=\"residency\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE nida_handle_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("nida_media_mos_bucket{le=\"4.0\",role=\"caller\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("nida_media_rtt_seconds_bucket{le=\"0.05\",role=\"caller\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("nida_media_loss_ratio_bucket{le=\"0.05\",role=\"caller\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
