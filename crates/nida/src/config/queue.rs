//! A queue's section turned into the routing core's rules.

use super::QueueDef;
use nida_acd::{Exit, QueueConfig, Strategy};
use std::time::Duration;

/// What is wrong with a queue's section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// A strategy nida does not have.
    #[error("queue {queue}: unknown strategy {strategy:?}")]
    UnknownStrategy {
        /// The queue.
        queue: String,
        /// What was written.
        strategy: String,
    },
    /// An offer that could never ring.
    #[error("queue {0}: offer_timeout_seconds must be more than 0")]
    NoOfferTime(String),
    /// An exit nida does not have.
    #[error("queue {queue}: unknown exit {exit:?}")]
    UnknownExit {
        /// The queue.
        queue: String,
        /// What was written.
        exit: String,
    },
}

/// A queue's rules for the routing core, from the configuration.
pub fn queue_config(name: &str, d: &QueueDef) -> Result<QueueConfig, QueueError> {
    let mut q = QueueConfig::new(name);
    q.strategy = match d.strategy.as_str() {
        "longest_idle" => Strategy::LongestIdle,
        "best_skill" => Strategy::BestSkill,
        "round_robin" => Strategy::RoundRobin,
        "fewest_calls" => Strategy::FewestCalls,
        "ring_all" => Strategy::RingAll,
        "weighted_random" => Strategy::WeightedRandom,
        other => {
            return Err(QueueError::UnknownStrategy {
                queue: name.to_string(),
                strategy: other.to_string(),
            })
        }
    };
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
        let exit = match d.exit.as_deref().unwrap_or("callback") {
            "callback" => Exit::Callback,
            "voicemail" => Exit::Voicemail,
            other => match other.split_once(':') {
                Some(("flow", f)) => Exit::Flow(f.to_string()),
                // Resolved to an id once all queues are known.
                Some(("queue", _)) => Exit::Callback,
                _ => {
                    return Err(QueueError::UnknownExit {
                        queue: name.to_string(),
                        exit: other.to_string(),
                    })
                }
            },
        };
        q.max_wait = Some((Duration::from_secs(secs), exit));
    }
    Ok(q)
}
