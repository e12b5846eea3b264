//! The API of status notifications: `POST /api/notifications` takes one
//! notification or a list of them (number, flow, variables, language, an
//! optional id of the sender's own), checks each, stores it and hands it
//! to the scheduler, and answers 202 only once it is stored;
//! `GET /api/notifications[/{id}]` shows their state and attempts.
//!
//! Nothing in a request decides where nida dials but the number, and the
//! number must pass the outbound allow-list (checked here, and again with
//! the hourly caps when the call is placed).

use crate::call::notifier::{request, NotifierHandle};
use crate::config::outbound::OutboundConfig;
use crate::ops::api::{error, read_store, Api};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use nida_store::NotificationRow;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Notifications in one request at most.
pub const MOST_PER_REQUEST: usize = 1000;
/// Variables of one notification at most.
const MOST_VARS: usize = 32;
/// Longest variable name and value.
const LONGEST_NAME: usize = 64;
const LONGEST_VALUE: usize = 256;
/// Longest id and number.
const LONGEST_ID: usize = 64;
const LONGEST_NUMBER: usize = 32;
/// Most listed at once.
const MOST_LISTED: u32 = 500;

/// What the notification API needs besides the store.
#[derive(Clone)]
pub struct Notify {
    /// The scheduler.
    pub handle: NotifierHandle,
    /// The flows as they are now (a notification names one).
    pub flows: tokio::sync::watch::Receiver<Arc<nida_ivr::FlowSet>>,
    /// The numbers nida may call.
    pub outbound: OutboundConfig,
    /// The trunk notifications go out through (empty: none).
    pub trunk: String,
    /// Whether nida has a way out (an outbound trunk or `outbound_uri`).
    pub routed: bool,
}

/// One notification as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNotification {
    /// The sender's own id (a reference for the webhooks); a random one
    /// when absent.
    pub id: Option<String>,
    /// The number to call.
    pub number: String,
    /// The flow the citizen hears.
    pub flow: String,
    /// The flow's variables.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// The citizen's language.
    pub language: Option<String>,
}

/// One notification or a list.
#[derive(Deserialize)]
#[serde(untagged)]
enum Body {
    One(NewNotification),
    Many(Vec<NewNotification>),
}

fn word(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

/// Checks one notification; the message says what is wrong.
fn check(n: &NewNotification, notify: &Notify) -> Result<(), String> {
    if let Some(id) = &n.id {
        if !word(id) || id.len() > LONGEST_ID {
            return Err(format!(
                "id: letters, digits, _ - . and at most {LONGEST_ID}"
            ));
        }
    }
    let digits = n.number.strip_prefix('+').unwrap_or(&n.number);
    if digits.is_empty()
        || n.number.len() > LONGEST_NUMBER
        || !digits.chars().all(|c| c.is_ascii_digit())
    {
        return Err("number: digits (and a leading +) only".into());
    }
    if !notify.outbound.allows(&n.number) {
        return Err("number: not allowed by [outbound] allow".into());
    }
    if !notify.flows.borrow().flows.contains_key(&n.flow) {
        return Err(format!("flow: no flow named {:?}", n.flow));
    }
    if n.vars.len() > MOST_VARS {
        return Err(format!("vars: at most {MOST_VARS}"));
    }
    for (k, v) in &n.vars {
        if !word(k) || k.len() > LONGEST_NAME || v.len() > LONGEST_VALUE {
            return Err(format!(
                "vars: names are words of at most {LONGEST_NAME}, values at most {LONGEST_VALUE} bytes"
            ));
        }
    }
    if let Some(l) = &n.language {
        if !word(l) || l.len() > 16 {
            return Err("language: a language code".into());
        }
    }
    Ok(())
}

fn unavailable(message: &str) -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
    r
}

/// `POST /api/notifications`: 202 with the ids once every one is stored
/// and scheduled; 400 naming the first bad one (then none is taken).
pub(crate) async fn submit(State(api): State<Api>, body: Bytes) -> Response {
    let Some(notify) = api.notify.clone() else {
        return unavailable("notifications are not running");
    };
    if !notify.routed {
        return unavailable("no way out: configure outbound_trunk or outbound_uri");
    }
    let list = match serde_json::from_slice::<Body>(&body) {
        Ok(Body::One(n)) => vec![n],
        Ok(Body::Many(v)) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("not a notification: {e}")),
    };
    if list.is_empty() || list.len() > MOST_PER_REQUEST {
        return error(
            StatusCode::BAD_REQUEST,
            format!("send 1 to {MOST_PER_REQUEST} notifications"),
        );
    }
    for (i, n) in list.iter().enumerate() {
        if let Err(m) = check(n, &notify) {
            return error(StatusCode::BAD_REQUEST, format!("notification {i}: {m}"));
        }
    }
    if notify.handle.pending() + list.len() > notify.handle.max() {
        return unavailable("too many notifications waiting");
    }
    let unix = crate::clock::unix_now() as i64;
    let rows: Vec<NotificationRow> = list
        .into_iter()
        .map(|n| NotificationRow {
            id: n.id.unwrap_or_else(nida_sip::rng::os_token),
            number: n.number,
            flow: n.flow,
            vars: n.vars,
            language: n.language,
            trunk: notify.trunk.clone(),
            state: "pending".into(),
            attempts: 0,
            created_at: unix,
            updated_at: unix,
            next_at: Some(unix),
            result: None,
        })
        .collect();
    // All or none: one transaction, refused whole when an id is taken.
    let to_store = rows.clone();
    let stored = api
        .store
        .write_now(Box::new(move |s| s.add_notifications(&to_store)))
        .await;
    match stored {
        Ok(true) => {}
        Ok(false) => return error(StatusCode::CONFLICT, "a notification with this id exists"),
        Err(e) => return unavailable(&format!("not stored: {e}")),
    }
    let mut ids = Vec::with_capacity(rows.len());
    for row in &rows {
        if let Err(e) = notify.handle.submit(request(row, unix)).await {
            // Stored but not scheduled: it is taken again at the next start.
            tracing::warn!(notification = %row.id, "stored, not scheduled: {e}");
        }
        ids.push(row.id.clone());
    }
    (StatusCode::ACCEPTED, Json(json!({ "ids": ids }))).into_response()
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    limit: Option<u32>,
}

/// `GET /api/notifications`: the newest first.
pub(crate) async fn list(State(api): State<Api>, Query(q): Query<ListQuery>) -> Response {
    let limit = q.limit.unwrap_or(100).min(MOST_LISTED);
    match read_store(&api, move |s| s.notifications(limit)).await {
        Ok(rows) => Json(json!(rows)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /api/notifications/{id}`: its state and every attempt.
pub(crate) async fn one(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let got = read_store(&api, move |s| {
        Ok(match s.notification(&id)? {
            Some(n) => Some((s.notification_attempts(&n.id)?, n)),
            None => None,
        })
    })
    .await;
    match got {
        Ok(Some((attempts, n))) => {
            let mut v = json!(n);
            v["attempt_list"] = json!(attempts);
            Json(v).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "no such notification"),
        Err(e) => e.into_response(),
    }
}
