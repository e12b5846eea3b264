//! `[notifications]`: how nida calls citizens with a status notification
//! (the attempts and their waits, the ring time, answering-machine
//! detection, the calendar it calls within) and the pace per trunk.

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// `[notifications]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Attempts in all.
    pub attempts: u32,
    /// Wait after a busy line.
    pub retry_busy_seconds: u64,
    /// Wait after a phone nobody answered.
    pub retry_no_answer_seconds: u64,
    /// How long the phone rings.
    pub ring_seconds: u64,
    /// Listen for answering machines and speak after their beep.
    pub detect_machine: bool,
    /// Call only while this calendar is open.
    pub calendar: Option<String>,
    /// New calls a second per trunk.
    pub calls_per_second: u32,
    /// Live notification calls per trunk.
    pub concurrent: u32,
    /// Pace of one trunk, by name, instead of the two above.
    pub trunks: BTreeMap<String, TrunkPace>,
    /// Notifications waiting at most; past it the API answers 503.
    pub max_pending: usize,
    /// The number the citizen sees calling (the user part of From; the
    /// trunk may rewrite it).
    pub from: String,
}

/// One trunk's pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkPace {
    /// New calls a second.
    pub calls_per_second: u32,
    /// Live notification calls.
    pub concurrent: u32,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            attempts: 3,
            retry_busy_seconds: 300,
            retry_no_answer_seconds: 900,
            ring_seconds: 30,
            detect_machine: true,
            calendar: None,
            calls_per_second: 1,
            concurrent: 4,
            trunks: BTreeMap::new(),
            max_pending: 100_000,
            from: "nida".into(),
        }
    }
}

/// What is wrong with `[notifications]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyConfigError {
    /// A count or time that must be above zero.
    #[error("{0} must be more than 0")]
    Zero(&'static str),
    /// A calendar not under `[calendars]`.
    #[error("calendar {0:?} is not under [calendars]")]
    Calendar(String),
    /// A pace for a trunk not under `[[trunks]]`.
    #[error("trunks: {0:?} is not a trunk")]
    Trunk(String),
}

impl NotificationsConfig {
    /// Checks the values against the calendars and trunks configured.
    pub fn validate(
        &self,
        calendars: &nida_call::calendar::Calendars,
        trunks: &[nida_sip::trunk::TrunkConfig],
    ) -> Result<(), NotifyConfigError> {
        let paces = self
            .trunks
            .values()
            .flat_map(|p| [p.calls_per_second, p.concurrent]);
        for (key, v) in [
            ("attempts", self.attempts),
            (
                "ring_seconds",
                self.ring_seconds.min(u32::MAX as u64) as u32,
            ),
            ("calls_per_second", self.calls_per_second),
            ("concurrent", self.concurrent),
            (
                "max_pending",
                self.max_pending.min(u32::MAX as usize) as u32,
            ),
        ]
        .into_iter()
        .chain(paces.map(|v| ("trunks.*", v)))
        {
            if v == 0 {
                return Err(NotifyConfigError::Zero(key));
            }
        }
        if let Some(c) = self
            .calendar
            .as_ref()
            .filter(|c| calendars.get(c).is_none())
        {
            return Err(NotifyConfigError::Calendar(c.clone()));
        }
        if let Some(t) = self
            .trunks
            .keys()
            .find(|t| !trunks.iter().any(|c| &c.name == *t))
        {
            return Err(NotifyConfigError::Trunk(t.clone()));
        }
        Ok(())
    }

    /// The scheduler's policy.
    pub fn policy(&self) -> nida_call::notifier::Policy {
        nida_call::notifier::Policy {
            attempts: self.attempts,
            retry_busy: Duration::from_secs(self.retry_busy_seconds),
            retry_no_answer: Duration::from_secs(self.retry_no_answer_seconds),
            ring: Duration::from_secs(self.ring_seconds),
            detect_machine: self.detect_machine,
            calendar: self.calendar.clone(),
            max_pending: self.max_pending,
        }
    }

    /// The default pace and each trunk's own.
    pub fn paces(
        &self,
    ) -> (
        nida_call::notifier::Pace,
        HashMap<String, nida_call::notifier::Pace>,
    ) {
        let pace = |per_second, concurrent| nida_call::notifier::Pace {
            per_second,
            concurrent,
        };
        (
            pace(self.calls_per_second, self.concurrent),
            self.trunks
                .iter()
                .map(|(n, p)| (n.clone(), pace(p.calls_per_second, p.concurrent)))
                .collect(),
        )
    }
}
