//! The contact centre's key figures, computed from call records, per queue
//! and per hour or day (the report), and per agent (satisfaction).
//!
//! Definitions (the ones ISO 18295 reporting asks to state):
//! - offered: calls that joined the queue;
//! - answered: calls an agent took;
//! - abandoned: callers who hung up before an agent took the call;
//! - service level: answered within the queue's threshold, as a share of
//!   answered plus abandoned;
//! - average speed of answer: mean wait of answered calls;
//! - average handle time: mean time with the agent of answered calls;
//! - satisfaction: mean rating (1 to 5) of rated calls.
//!
//! And of the IVR, per flow (the first flow a call ran):
//! - calls: calls that ran the flow;
//! - contained: calls that ended in the IVR without asking for an agent
//!   (self-served, hung up in the flow, a flow error; not those that
//!   queued or left a voice message for an agent), as a share of calls
//!   (containment);
//! - self-served: calls the flow itself ended (the caller heard what they
//!   called for);
//! - exits: where contained calls left, by `flow/node`;
//! - lookups served (found or not found) and failed.

use crate::records::{IvrEnd, LookupServed};
use crate::CallRecord;
use serde::Serialize;
use std::collections::BTreeMap;

/// How records are grouped in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Per hour (UTC).
    Hour,
    /// Per day (UTC).
    Day,
}

impl Bucket {
    /// Seconds in one bucket.
    pub fn seconds(self) -> i64 {
        match self {
            Bucket::Hour => 3600,
            Bucket::Day => 86_400,
        }
    }

    /// The start of the bucket holding `unix`.
    pub fn start(self, unix: i64) -> i64 {
        unix.div_euclid(self.seconds()) * self.seconds()
    }
}

/// One queue over one period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Kpi {
    /// The queue.
    pub queue: String,
    /// Start of the period (Unix seconds).
    pub start: i64,
    /// Calls that joined the queue.
    pub offered: u64,
    /// Taken by an agent.
    pub answered: u64,
    /// Of those, within the service-level threshold.
    pub answered_in_sl: u64,
    /// Callers who hung up waiting.
    pub abandoned: u64,
    /// Sum of waits of answered calls (seconds).
    pub answer_wait: f64,
    /// Sum of talk times of answered calls (seconds).
    pub handle: f64,
    /// Answered calls with a talk time.
    pub handled: u64,
    /// Sum of ratings.
    pub rating_sum: u64,
    /// Rated calls.
    pub rated: u64,
}

impl Kpi {
    /// Adds one record.
    pub fn add(&mut self, r: &CallRecord) {
        self.offered += 1;
        if let Some(w) = r.wait_seconds {
            self.answered += 1;
            self.answer_wait += w;
            if w <= f64::from(r.service_level_seconds) {
                self.answered_in_sl += 1;
            }
            if let Some(t) = r.talk_seconds {
                self.handle += t;
                self.handled += 1;
            }
        } else if r.outcome == "abandoned" {
            self.abandoned += 1;
        }
        if let Some(rating) = r.rating {
            self.rating_sum += u64::from(rating);
            self.rated += 1;
        }
    }

    /// Service level in percent (`None` without answered or abandoned calls).
    pub fn service_level(&self) -> Option<f64> {
        let base = self.answered + self.abandoned;
        (base > 0).then(|| 100.0 * self.answered_in_sl as f64 / base as f64)
    }

    /// Average speed of answer in seconds.
    pub fn asa(&self) -> Option<f64> {
        (self.answered > 0).then(|| self.answer_wait / self.answered as f64)
    }

    /// Average handle time in seconds.
    pub fn aht(&self) -> Option<f64> {
        (self.handled > 0).then(|| self.handle / self.handled as f64)
    }

    /// Abandon rate in percent.
    pub fn abandon_rate(&self) -> Option<f64> {
        (self.offered > 0).then(|| 100.0 * self.abandoned as f64 / self.offered as f64)
    }

    /// Mean rating, 1 to 5.
    pub fn satisfaction(&self) -> Option<f64> {
        (self.rated > 0).then(|| self.rating_sum as f64 / self.rated as f64)
    }
}

/// Per queue and period, ordered by queue then time; periods without calls
/// are left out, and so are calls that never queued (IVR only).
pub fn by_queue(records: &[CallRecord], bucket: Bucket) -> Vec<Kpi> {
    let mut groups: BTreeMap<(String, i64), Kpi> = BTreeMap::new();
    for r in records.iter().filter(|r| r.queued_at.is_some()) {
        let start = bucket.start(r.queued_at.unwrap_or(r.ended_at));
        groups
            .entry((r.queue.clone(), start))
            .or_insert_with(|| Kpi {
                queue: r.queue.clone(),
                start,
                ..Kpi::default()
            })
            .add(r);
    }
    groups.into_values().collect()
}

/// One agent's ratings.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgentRatings {
    /// Agent id.
    pub agent: u32,
    /// Calls answered.
    pub answered: u64,
    /// Calls rated.
    pub rated: u64,
    /// Mean rating.
    pub average: Option<f64>,
    /// Ratings of 1 or 2 (to review first).
    pub low: u64,
    /// Count of each rating, 1 to 5.
    pub counts: [u64; 5],
}

/// Ratings per agent, by agent id.
pub fn agent_ratings(records: &[CallRecord]) -> Vec<AgentRatings> {
    let mut by: BTreeMap<u32, AgentRatings> = BTreeMap::new();
    for r in records {
        let Some(agent) = r.agent else { continue };
        let a = by.entry(agent).or_insert_with(|| AgentRatings {
            agent,
            ..AgentRatings::default()
        });
        if r.wait_seconds.is_some() {
            a.answered += 1;
        }
        if let Some(rating @ 1..=5) = r.rating {
            a.rated += 1;
            a.counts[usize::from(rating) - 1] += 1;
            if r.low_rating() {
                a.low += 1;
            }
        }
    }
    for a in by.values_mut() {
        let sum: u64 = a
            .counts
            .iter()
            .enumerate()
            .map(|(i, n)| (i as u64 + 1) * n)
            .sum();
        a.average = (a.rated > 0).then(|| sum as f64 / a.rated as f64);
    }
    by.into_values().collect()
}

/// One flow's IVR figures over a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IvrKpi {
    /// The first flow the calls ran.
    pub flow: String,
    /// Calls that ran it.
    pub calls: u64,
    /// Ended in the IVR without asking for an agent.
    pub contained: u64,
    /// Ended by the flow itself.
    pub self_served: u64,
    /// Hung up by the caller in the flow.
    pub hung_up: u64,
    /// Asked for an agent.
    pub queued: u64,
    /// Left a voicemail.
    pub voicemail: u64,
    /// Stopped by a flow error.
    pub errors: u64,
    /// Lookups answered (found or not found).
    pub lookups_served: u64,
    /// Lookups failed or timed out.
    pub lookups_failed: u64,
    /// Seconds in the IVR, summed.
    pub seconds: f64,
    /// Where contained calls left (`flow/node`), most first, then by name.
    pub exits: Vec<(String, u64)>,
}

impl IvrKpi {
    /// Containment in percent (`None` without calls).
    pub fn containment(&self) -> Option<f64> {
        (self.calls > 0).then(|| 100.0 * self.contained as f64 / self.calls as f64)
    }

    /// Mean seconds in the IVR.
    pub fn mean_seconds(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.seconds / self.calls as f64)
    }
}

/// The IVR figures per flow, by flow name; `top` exits kept per flow.
pub fn ivr_by_flow(records: &[CallRecord], top: usize) -> Vec<IvrKpi> {
    let mut by: BTreeMap<String, (IvrKpi, BTreeMap<String, u64>)> = BTreeMap::new();
    for r in records {
        let Some(t) = &r.ivr else { continue };
        let (k, exits) = by.entry(t.flow.clone()).or_insert_with(|| {
            (
                IvrKpi {
                    flow: t.flow.clone(),
                    ..IvrKpi::default()
                },
                BTreeMap::new(),
            )
        });
        k.calls += 1;
        k.seconds += t.seconds;
        match t.end {
            IvrEnd::SelfServed => k.self_served += 1,
            IvrEnd::Queued => k.queued += 1,
            IvrEnd::CallerHungUp => k.hung_up += 1,
            IvrEnd::Error => k.errors += 1,
            IvrEnd::Voicemail => k.voicemail += 1,
        }
        if t.end.contained() {
            k.contained += 1;
            *exits.entry(t.exit.clone()).or_default() += 1;
        }
        for l in &t.lookups {
            match l.result {
                LookupServed::Found | LookupServed::NotFound => k.lookups_served += 1,
                LookupServed::Failed => k.lookups_failed += 1,
            }
        }
    }
    by.into_values()
        .map(|(mut k, exits)| {
            let mut e: Vec<(String, u64)> = exits.into_iter().collect();
            e.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            e.truncate(top);
            k.exits = e;
            k
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{IvrLookup, IvrTrail};

    fn call(flow: &str, end: IvrEnd, exit: &str, lookups: &[LookupServed]) -> CallRecord {
        CallRecord {
            queued_at: (end == IvrEnd::Queued).then_some(100),
            queue: if end == IvrEnd::Queued {
                "visa".into()
            } else {
                String::new()
            },
            ivr: Some(IvrTrail {
                flow: flow.into(),
                end,
                exit: exit.into(),
                seconds: 30.0,
                choices: Vec::new(),
                lookups: lookups
                    .iter()
                    .map(|&result| IvrLookup {
                        node: format!("{flow}/lookup"),
                        service: "visa_status".into(),
                        result,
                    })
                    .collect(),
            }),
            ..CallRecord::default()
        }
    }

    #[test]
    fn names_as_counted_are_the_names_as_stored() {
        use crate::records::{IvrEnd as E, LookupServed as L};
        for e in [
            E::SelfServed,
            E::Queued,
            E::CallerHungUp,
            E::Error,
            E::Voicemail,
        ] {
            assert_eq!(serde_json::to_value(e).unwrap(), e.as_str());
        }
        for l in [L::Found, L::NotFound, L::Failed] {
            assert_eq!(serde_json::to_value(l).unwrap(), l.as_str());
        }
    }

    #[test]
    fn containment_exits_and_lookups_per_flow() {
        use LookupServed::*;
        let records = vec![
            call("main", IvrEnd::SelfServed, "status/said", &[Found]),
            call("main", IvrEnd::SelfServed, "status/said", &[Found]),
            call("main", IvrEnd::SelfServed, "faq/done", &[]),
            call("main", IvrEnd::CallerHungUp, "main/menu", &[NotFound]),
            call("main", IvrEnd::Queued, "main/agent", &[Failed]),
            call("police", IvrEnd::Error, "police/start", &[]),
            // A record from before IVR trails: not counted.
            CallRecord::default(),
        ];
        let k = ivr_by_flow(&records, 2);
        assert_eq!(k.len(), 2);
        let main = &k[0];
        assert_eq!(
            (
                main.calls,
                main.contained,
                main.self_served,
                main.hung_up,
                main.queued
            ),
            (5, 4, 3, 1, 1)
        );
        assert_eq!(main.containment(), Some(80.0));
        assert_eq!((main.lookups_served, main.lookups_failed), (3, 1));
        assert_eq!(
            main.exits,
            vec![("status/said".to_string(), 2), ("faq/done".to_string(), 1)]
        );
        assert_eq!(main.mean_seconds(), Some(30.0));
        assert_eq!((k[1].errors, k[1].containment()), (1, Some(100.0)));
        // IVR-only calls stay out of the queue figures.
        let q = by_queue(&records, Bucket::Day);
        assert_eq!(q.len(), 1);
        assert_eq!((q[0].queue.as_str(), q[0].offered), ("visa", 1));
    }
}
