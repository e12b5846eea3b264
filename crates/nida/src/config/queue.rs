//! A queue's section turned into the routing core's rules, and the exits
//! a queue may name.

use super::QueueDef;
use nida_acd::{Exit, QueueConfig};
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// What is wrong with a queue's section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// An offer that could never ring.
    #[error("queue {0}: offer_timeout_seconds must be more than 0")]
    NoOfferTime(String),
}

/// Where a caller goes after the queue's longest wait, as written in the
/// file: `callback`, `voicemail`, `queue:<name>` or `flow:<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueExit {
    /// Be called back, keeping the place in line.
    Callback,
    /// Leave a voice message.
    Voicemail,
    /// Move to the named queue (keeping the arrival time).
    Queue(String),
    /// Go on in the named flow.
    Flow(String),
}

impl std::str::FromStr for QueueExit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match (s, s.split_once(':')) {
            ("callback", _) => QueueExit::Callback,
            ("voicemail", _) => QueueExit::Voicemail,
            (_, Some(("flow", f))) if !f.is_empty() => QueueExit::Flow(f.to_string()),
            (_, Some(("queue", q))) if !q.is_empty() => QueueExit::Queue(q.to_string()),
            _ => {
                return Err(format!(
                    "unknown exit {s:?} (callback, voicemail, queue:<name>, flow:<name>)"
                ))
            }
        })
    }
}

impl<'de> Deserialize<'de> for QueueExit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A queue's rules for the routing core, from the configuration. An exit
/// into another queue is a call-back here; the centre resolves it once
/// every queue has its id.
pub fn queue_config(name: &str, d: &QueueDef) -> Result<QueueConfig, QueueError> {
    let mut q = QueueConfig::new(name);
    q.strategy = d.strategy;
    if d.offer_timeout_seconds == 0 {
        return Err(QueueError::NoOfferTime(name.to_string()));
    }
    q.offer_timeout = Duration::from_secs(d.offer_timeout_seconds);
    q.wrap_up = Duration::from_secs(d.wrap_up_seconds);
    q.max_missed = d.max_missed;
    q.max_len = d.max_len;
    q.service_level = Duration::from_secs(d.service_level_seconds);
    // A caller whose agent rang out goes back to the head of the line and
    // the next agent is tried at once; the one who missed it is skipped
    // for a ring time.
    q.reoffer_after = q.offer_timeout;
    if let Some(secs) = d.max_wait_seconds {
        let exit = match d.exit.clone().unwrap_or(QueueExit::Callback) {
            QueueExit::Callback | QueueExit::Queue(_) => Exit::Callback,
            QueueExit::Voicemail => Exit::Voicemail,
            QueueExit::Flow(f) => Exit::Flow(f),
        };
        q.max_wait = Some((Duration::from_secs(secs), exit));
    }
    Ok(q)
}
