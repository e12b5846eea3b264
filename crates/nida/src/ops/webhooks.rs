//! Webhooks: each configured URL gets a JSON POST for the events it asks
//! for (`queued`, `answered`, `ended`, `callback`, `survey`, `voicemail`,
//! `notification`), so that an
//! SMS gateway or a CRM can follow a citizen's request. Events come from
//! the centre's event stream and from what the store writes; each webhook
//! has its own worker and bounded queue, so a slow or dead receiver never
//! holds up a call (past the queue's size, events for it are dropped and
//! logged). A failed POST (no connection, or a status other than 2xx) is
//! retried with a doubling back-off up to the webhook's `attempts`.

use crate::base::db::{StoreHandle, Stored};
use crate::centre::{CentreEvent, CentreHandle};
use crate::config::WebhookDef;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, info, warn};

/// Events waiting per webhook before new ones are dropped.
const QUEUE: usize = 10_000;

/// Longest wait between tries.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One event for the receivers.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// `queued`, `answered`, `ended`, `callback`, `survey`.
    pub event: &'static str,
    /// The JSON body.
    pub body: Value,
}

/// Turns the centre's events into webhook events; `calls` remembers each
/// waiting task's Call-ID and queue for the `answered` event.
pub fn from_centre(ev: &CentreEvent, calls: &mut HashMap<u64, (String, String)>) -> Option<Hook> {
    let at = crate::clock::unix_now();
    match ev {
        CentreEvent::Queued { task, info } => {
            calls.insert(*task, (info.call_id.clone(), info.queue.clone()));
            Some(Hook {
                event: "queued",
                body: json!({
                    "event": "queued", "at": at, "call_id": info.call_id, "queue": info.queue,
                    "language": info.language, "vars": info.vars,
                }),
            })
        }
        CentreEvent::Connected { agent, task } => {
            let (call_id, queue) = calls.get(task).cloned().unwrap_or_default();
            Some(Hook {
                event: "answered",
                body: json!({
                    "event": "answered", "at": at, "call_id": call_id, "queue": queue, "agent": agent,
                }),
            })
        }
        CentreEvent::Ended { task, .. } => {
            calls.remove(task);
            None
        }
        CentreEvent::Offer { .. } | CentreEvent::AgentState { .. } => None,
    }
}

/// Turns what the store wrote into webhook events.
pub fn from_store(s: &Stored) -> Vec<Hook> {
    match s {
        Stored::Call(r) => {
            let mut out = vec![Hook {
                event: "ended",
                body: json!({ "event": "ended", "at": r.ended_at, "record": r }),
            }];
            if let Some(v) = &r.voicemail {
                // What an agent (or a ticketing system) needs to call back;
                // the audio is fetched through the API.
                out.push(Hook {
                    event: "voicemail",
                    body: json!({
                        "event": "voicemail", "at": r.ended_at, "call_id": r.call_id,
                        "caller": r.caller, "queue": v.queue, "language": r.language,
                        "seconds": v.seconds, "vars": r.vars,
                    }),
                });
            }
            if let Some(rating) = r.rating {
                out.push(Hook {
                    event: "survey",
                    body: json!({
                        "event": "survey", "at": r.ended_at, "call_id": r.call_id, "queue": r.queue,
                        "agent": r.agent, "rating": rating, "low": r.low_rating(),
                    }),
                });
            }
            out
        }
        // Each attempt's end, so a gateway can send an SMS when the call
        // failed (`final` and not `delivered`).
        Stored::Notification(c, number) => match &c.attempt {
            Some(a) => vec![Hook {
                event: "notification",
                body: json!({
                    "event": "notification", "at": c.at, "id": c.id, "number": number,
                    "state": c.state, "attempts": c.attempts, "next_at": c.next_at,
                    "result": a.result, "call_id": a.call_id,
                    "final": c.state == "delivered" || c.state == "failed",
                    "delivered": c.state == "delivered",
                }),
            }],
            None => Vec::new(),
        },
        Stored::Callback(c) => vec![Hook {
            event: "callback",
            body: json!({
                "event": "callback", "at": c.updated_at, "call_id": c.call_id, "number": c.number,
                "queue": c.queue, "language": c.language, "status": c.status, "attempts": c.attempts,
                "vars": c.vars,
            }),
        }],
    }
}

/// The wait before try `n` (1 is the first retry).
pub fn backoff(first: Duration, n: u32) -> Duration {
    first
        .saturating_mul(1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX))
        .min(MAX_BACKOFF)
}

/// Starts one worker per webhook and the task that feeds them.
pub fn start(hooks: &[WebhookDef], centre: &CentreHandle, store: &StoreHandle) {
    if hooks.is_empty() {
        return;
    }
    let mut workers = Vec::new();
    for h in hooks {
        let (tx, rx) = mpsc::channel::<Hook>(QUEUE);
        tokio::spawn(deliver(h.clone(), rx));
        workers.push((h.events.clone(), h.url.clone(), tx));
    }
    let mut centre_rx = centre.events.subscribe();
    let mut store_rx = store.notices.subscribe();
    tokio::spawn(async move {
        let mut calls = HashMap::new();
        loop {
            let hooks: Vec<Hook> = tokio::select! {
                ev = centre_rx.recv() => match ev {
                    Ok(ev) => from_centre(&ev, &mut calls).into_iter().collect(),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        warn!(missed = n, "webhooks fell behind the centre's events");
                        continue;
                    }
                    Err(_) => return,
                },
                s = store_rx.recv() => match s {
                    Ok(s) => from_store(&s),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        warn!(missed = n, "webhooks fell behind the store");
                        continue;
                    }
                    Err(_) => return,
                },
            };
            for hook in hooks {
                for (events, url, tx) in &workers {
                    if !events.is_empty() && !events.iter().any(|e| e == hook.event) {
                        continue;
                    }
                    if tx.try_send(hook.clone()).is_err() {
                        warn!(%url, event = hook.event, "webhook queue full: event dropped");
                    }
                }
            }
        }
    });
}

/// Posts a webhook's events in order, each retried with back-off.
async fn deliver(h: WebhookDef, mut rx: mpsc::Receiver<Hook>) {
    let first = Duration::from_millis(h.backoff_ms);
    while let Some(hook) = rx.recv().await {
        let body = hook.body.to_string();
        let mut tries = 0;
        loop {
            tries += 1;
            // The client bounds the request's time (connect and total).
            let sent =
                crate::base::httpc::request("POST", &h.url, h.token.as_deref(), Some(&body)).await;
            match sent {
                Ok((status, _)) if (200..300).contains(&status) => {
                    debug!(url = %h.url, event = hook.event, tries, "webhook delivered");
                    break;
                }
                other => {
                    let why = match other {
                        Ok((status, _)) => format!("HTTP {status}"),
                        Err(e) => e.to_string(),
                    };
                    if tries >= h.attempts {
                        warn!(url = %h.url, event = hook.event, tries, %why, "webhook given up");
                        break;
                    }
                    let wait = backoff(first, tries);
                    info!(url = %h.url, event = hook.event, tries, %why, retry_ms = wait.as_millis() as u64, "webhook failed: retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::centre::CallInfo;

    #[test]
    fn the_back_off_doubles_up_to_a_minute() {
        let first = Duration::from_millis(500);
        assert_eq!(backoff(first, 1), Duration::from_millis(500));
        assert_eq!(backoff(first, 2), Duration::from_millis(1000));
        assert_eq!(backoff(first, 4), Duration::from_millis(4000));
        assert_eq!(backoff(first, 10), MAX_BACKOFF);
        assert_eq!(backoff(first, 40), MAX_BACKOFF);
    }

    #[test]
    fn centre_events_become_queued_and_answered() {
        let mut calls = HashMap::new();
        let info = CallInfo {
            call_id: "c1".into(),
            queue: "visa".into(),
            language: "ur".into(),
            ..CallInfo::default()
        };
        let q = from_centre(&CentreEvent::Queued { task: 4, info }, &mut calls).unwrap();
        assert_eq!((q.event, &q.body["language"]), ("queued", &json!("ur")));
        let a = from_centre(&CentreEvent::Connected { agent: 2, task: 4 }, &mut calls).unwrap();
        assert_eq!(a.event, "answered");
        assert_eq!(a.body["call_id"], "c1");
        assert_eq!(a.body["agent"], 2);
        let e = CentreEvent::Ended {
            task: 4,
            reason: "Completed".into(),
        };
        assert!(from_centre(&e, &mut calls).is_none());
        assert!(calls.is_empty());
    }

    #[test]
    fn a_rated_record_also_makes_a_survey_event() {
        let r = nida_store::CallRecord {
            call_id: "c2".into(),
            rating: Some(2),
            agent: Some(3),
            ..Default::default()
        };
        let hooks = from_store(&Stored::Call(Box::new(r)));
        assert_eq!(
            hooks.iter().map(|h| h.event).collect::<Vec<_>>(),
            ["ended", "survey"]
        );
        assert_eq!(hooks[1].body["low"], true);
        let unrated = from_store(&Stored::Call(Box::default()));
        assert_eq!(unrated.len(), 1);
        let message = from_store(&Stored::Call(Box::new(nida_store::CallRecord {
            call_id: "c3".into(),
            voicemail: Some(nida_store::VoicemailLeft {
                file: "/d/voicemail/x.wav".into(),
                seconds: 8.0,
                queue: "visa".into(),
                number: Some("971501234567".into()),
            }),
            ..Default::default()
        })));
        assert_eq!(message[1].event, "voicemail");
        assert_eq!(message[1].body["queue"], "visa");
        assert!(
            !message[1].body.to_string().contains("x.wav"),
            "no file path leaves nida"
        );
    }
}
