//! The API around the agent: voice messages (listed, played, marked
//! handled, called back), wrap-up codes given by agents, and the IVR's
//! figures (containment, exits, lookups) and wrap-up counts over a
//! period.
//!
//! Agents reach the messages and their own wrap-ups under
//! `/api/agents/{id}/...` (their session reaches nothing else); the admin
//! token reaches `/api/voicemails`, `/api/ivr` and `/api/wrapups`.

use crate::base::bus::ToDriver;
use crate::ops::api::{error, query_time, read_store, wav, Api, ApiError};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

/// Most voice messages listed at once.
const MOST_LISTED: u32 = 200;

#[derive(Deserialize)]
pub(crate) struct VoicemailQuery {
    /// Only messages not handled yet.
    open: Option<bool>,
    /// Only this queue's.
    queue: Option<String>,
    limit: Option<u32>,
}

async fn listing(api: &Api, q: VoicemailQuery, base: &str) -> Response {
    let open = q.open.unwrap_or(false);
    let limit = q.limit.unwrap_or(MOST_LISTED).min(MOST_LISTED);
    let queues = q.queue.map(|q| vec![q]);
    let rows = match read_store(api, move |s| s.voicemails(open, queues.as_deref(), limit)).await {
        Ok(rows) => rows,
        Err(e) => return e.into_response(),
    };
    let out: Vec<_> = rows
        .into_iter()
        .map(|r| {
            let audio = format!("{base}/{}/audio", r.id);
            let may_call_back = r.number.is_some();
            let mut v = json!(r);
            // The number a call-back dials stays on the server.
            if let Some(o) = v.as_object_mut() {
                o.remove("number");
                o.remove("file");
                o.insert("audio".into(), json!(audio));
                o.insert("may_call_back".into(), json!(may_call_back));
            }
            v
        })
        .collect();
    Json(json!(out)).into_response()
}

/// `GET /api/voicemails`.
pub(crate) async fn voicemails(
    State(api): State<Api>,
    Query(q): Query<VoicemailQuery>,
) -> Response {
    listing(&api, q, "/api/voicemails").await
}

/// `GET /api/agents/{id}/voicemails`.
pub(crate) async fn agent_voicemails(
    State(api): State<Api>,
    Path(id): Path<u32>,
    Query(q): Query<VoicemailQuery>,
) -> Response {
    listing(&api, q, &format!("/api/agents/{id}/voicemails")).await
}

/// The message's WAV, read from the file its row names (never from a
/// name in the request), which must lie in the voicemail folder.
async fn audio(api: &Api, vm: i64) -> Response {
    let row = match read_store(api, move |s| s.voicemail(vm)).await {
        Ok(Some(r)) => r,
        Ok(None) => return error(StatusCode::NOT_FOUND, "no such voice message"),
        Err(e) => return e.into_response(),
    };
    let folder = api.data_dir.join("voicemail");
    let path = std::path::PathBuf::from(&row.file);
    let inside = match (path.canonicalize(), folder.canonicalize()) {
        (Ok(p), Ok(f)) => p.starts_with(f),
        _ => false,
    };
    const GONE: &str = "the voice message's file is gone";
    if !inside {
        return error(StatusCode::NOT_FOUND, GONE);
    }
    wav(&path, GONE).await
}

/// `GET /api/voicemails/{vm}/audio`.
pub(crate) async fn voicemail_audio(State(api): State<Api>, Path(vm): Path<i64>) -> Response {
    audio(&api, vm).await
}

/// `GET /api/agents/{id}/voicemails/{vm}/audio`.
pub(crate) async fn agent_voicemail_audio(
    State(api): State<Api>,
    Path((_, vm)): Path<(u32, i64)>,
) -> Response {
    audio(&api, vm).await
}

#[derive(Deserialize)]
pub(crate) struct HandledQuery {
    /// Also call the citizen back (through the queue, agent first).
    callback: Option<bool>,
}

/// `POST /api/agents/{id}/voicemails/{vm}/handled[?callback=true]`: the
/// agent dealt with the message; with `callback`, nida books a call-back
/// to the number a trusted trunk proved (never one the caller only
/// claimed) and places it like any call-back.
pub(crate) async fn agent_voicemail_handled(
    State(api): State<Api>,
    Path((agent, vm)): Path<(u32, i64)>,
    Query(q): Query<HandledQuery>,
) -> Response {
    let callback = q.callback.unwrap_or(false);
    let row = match read_store(&api, move |s| s.voicemail(vm)).await {
        Ok(Some(r)) => r,
        Ok(None) => return error(StatusCode::NOT_FOUND, "no such voice message"),
        Err(e) => return e.into_response(),
    };
    let now = crate::clock::unix_now() as i64;
    let booking = if callback {
        let Some(number) = row.number.clone() else {
            return error(
                StatusCode::CONFLICT,
                "the caller's number was not proven by a trusted trunk: no call-back",
            );
        };
        Some(nida_store::CallbackRow {
            call_id: format!("vm{}-{}", row.id, nida_sip::rng::os_token()),
            number,
            source: String::new(),
            called: row.called.clone(),
            queue: row.queue.clone(),
            language: row.language.clone(),
            priority: 0,
            skills: Default::default(),
            vars: row.vars.clone(),
            path: Vec::new(),
            status: nida_call::CallbackStatus::Requested.as_str().into(),
            attempts: 0,
            requested_at: now,
            updated_at: now,
            slot_at: None,
            due_at: None,
        })
    } else {
        None
    };
    if let Some(b) = &booking {
        if !api.store.book_callback(b.clone()).await {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store did not take the call-back",
            );
        }
    }
    let done = api
        .store
        .write_now(Box::new(move |s| {
            s.handle_voicemail(vm, agent, now, callback)
        }))
        .await;
    match done {
        Ok(true) => {}
        Ok(false) => return error(StatusCode::NOT_FOUND, "no such voice message"),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
    if let Some(b) = booking {
        if api
            .driver
            .send(ToDriver::Callback(Box::new(b)))
            .await
            .is_err()
        {
            return error(StatusCode::SERVICE_UNAVAILABLE, "nida is stopping");
        }
    }
    Json(json!({ "ok": true, "callback": callback })).into_response()
}

#[derive(Deserialize)]
pub(crate) struct WrapupBody {
    /// The call (its Call-ID, as the screen pop gave it).
    call_id: String,
    /// The queue it came through.
    queue: String,
    /// The codes picked, from the queue's list.
    codes: Vec<String>,
}

/// `POST /api/agents/{id}/wrapup`: the agent's wrap-up codes for a call,
/// during or after it; only codes of the queue's list.
pub(crate) async fn agent_wrapup(
    State(api): State<Api>,
    Path(agent): Path<u32>,
    Json(b): Json<WrapupBody>,
) -> Response {
    let Some(def) = api.centre.queues.get(&b.queue) else {
        return error(StatusCode::NOT_FOUND, format!("no queue {}", b.queue));
    };
    if b.codes.is_empty() || b.call_id.is_empty() || b.call_id.len() > 256 {
        return error(
            StatusCode::BAD_REQUEST,
            "give the call_id and one code or more",
        );
    }
    if let Some(bad) = b.codes.iter().find(|c| !def.wrapup_codes.contains(c)) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{bad:?} is not a wrap-up code of queue {}", b.queue),
        );
    }
    let w = nida_store::Wrapup {
        call_id: b.call_id,
        agent,
        queue: b.queue,
        codes: b.codes,
        at: crate::clock::unix_now() as i64,
    };
    match api
        .store
        .write_now(Box::new(move |s| s.add_wrapup(&w).map(|()| true)))
        .await
    {
        Ok(_) => Json(json!({ "ok": true })).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

#[derive(Deserialize)]
pub(crate) struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
}

/// The period asked for: today (UTC) by default.
fn period(q: &PeriodQuery) -> Result<(i64, i64), ApiError> {
    let now = crate::clock::unix_now() as i64;
    let parse = |v: &Option<String>, default: i64| v.as_deref().map_or(Ok(default), query_time);
    let from = parse(&q.from, now - now.rem_euclid(86_400))?;
    let to = parse(&q.to, now + 1)?;
    Ok((from, to))
}

/// `GET /api/ivr`: per flow, over a period (today by default), the calls
/// that ran it, containment, how they ended, where contained calls left
/// (the ten most common exits) and lookups served and failed.
pub(crate) async fn ivr(State(api): State<Api>, Query(q): Query<PeriodQuery>) -> Response {
    let (from, to) = match period(&q) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let query = nida_store::Query {
        from: Some(from),
        to: Some(to),
        ..Default::default()
    };
    match read_store(&api, move |s| s.calls(&query)).await {
        Ok(rows) => {
            let out: Vec<_> = nida_store::kpi::ivr_by_flow(&rows, 10)
                .iter()
                .map(|k| {
                    let mut v = json!(k);
                    if let Some(o) = v.as_object_mut() {
                        o.insert("containment".into(), json!(k.containment()));
                        o.insert("mean_seconds".into(), json!(k.mean_seconds()));
                    }
                    v
                })
                .collect();
            Json(json!(out)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /api/wrapups`: how often each code was given, per agent and
/// queue, over a period (today by default).
pub(crate) async fn wrapups(State(api): State<Api>, Query(q): Query<PeriodQuery>) -> Response {
    let (from, to) = match period(&q) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    match read_store(&api, move |s| s.wrapup_counts(from, to)).await {
        Ok(rows) => Json(json!(rows)).into_response(),
        Err(e) => e.into_response(),
    }
}
