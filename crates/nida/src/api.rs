//! The admin HTTP API on `--http-addr` (axum): live calls, queues and
//! agents, agent state changes, flow reload, recordings, call records and
//! call-backs from the store, the day's figures, a server-sent event
//! stream, Prometheus `/metrics`, the OpenAPI description, and the web
//! wallboard and agent page.
//!
//! Everything under `/api` and `/metrics` needs the admin token
//! (`Authorization: Bearer TOKEN`, or `?token=TOKEN` for the event stream
//! in a browser), except the agent page's own calls: an agent logs in with
//! their SIP user and password and gets a session token that reaches only
//! their own state and events.

use crate::centre::{AgentCommand, CentreEvent, CentreHandle, ToCentre};
use crate::config::AgentDef;
use crate::db::StoreHandle;
use crate::driver::Counters;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Reloads the flows now: the number of flows, or the diagnostics.
pub type Reload = Arc<dyn Fn() -> Result<usize, String> + Send + Sync>;

/// What the handlers share.
#[derive(Clone)]
pub struct Api {
    /// Live counters.
    pub counters: Arc<Counters>,
    /// The centre.
    pub centre: CentreHandle,
    /// The store.
    pub store: StoreHandle,
    /// Data folder (recordings).
    pub data_dir: PathBuf,
    /// The admin token.
    pub token: Arc<str>,
    /// Agents (for the agent page's log-in).
    pub agents: Arc<Vec<AgentDef>>,
    /// Flow reload.
    pub reload: Reload,
    /// Totals of the records written since start (metrics).
    pub totals: watch::Receiver<Arc<crate::metrics::RecordTotals>>,
    /// Agent page sessions: token to agent id.
    sessions: Arc<Mutex<HashMap<String, u32>>>,
}

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Admin,
    Agent(u32),
}

/// A JSON error.
fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({ "error": message.into() }))).into_response()
}

/// An error answered as JSON with its status.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

impl Api {
    /// The API state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        counters: Arc<Counters>,
        centre: CentreHandle,
        store: StoreHandle,
        data_dir: PathBuf,
        token: String,
        agents: Vec<AgentDef>,
        reload: Reload,
    ) -> Api {
        let totals = crate::metrics::follow(&store.notices);
        Api {
            counters,
            centre,
            store,
            data_dir,
            token: token.into(),
            agents: Arc::new(agents),
            reload,
            totals,
            sessions: Arc::default(),
        }
    }

    fn who(&self, headers: &HeaderMap, query: Option<&str>) -> Option<Who> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        let from_query = query.and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("token="))
                .map(str::to_string)
        });
        let given = bearer.or(from_query)?;
        if constant_eq(given.as_bytes(), self.token.as_bytes()) {
            return Some(Who::Admin);
        }
        let sessions = self.sessions.lock().ok()?;
        sessions.get(&given).map(|id| Who::Agent(*id))
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the token; agents reach only their own paths.
async fn auth(State(api): State<Api>, mut req: Request, next: Next) -> Response {
    let Some(who) = api.who(req.headers(), req.uri().query()) else {
        return error(StatusCode::UNAUTHORIZED, "a valid token is needed");
    };
    if let Who::Agent(id) = who {
        let path = req.uri().path();
        let own = format!("/api/agents/{id}");
        let allowed = path == "/api/events" || path == own || path.starts_with(&(own + "/"));
        if !allowed {
            return error(StatusCode::FORBIDDEN, "agents reach only their own state");
        }
    }
    req.extensions_mut().insert(who);
    next.run(req).await
}

/// The whole HTTP service.
pub fn router(api: Api) -> Router {
    let protected = Router::new()
        .route("/api/status", get(status))
        .route("/api/calls", get(calls))
        .route("/api/queues", get(queues))
        .route("/api/agents", get(agents))
        .route("/api/agents/{id}", get(agent))
        .route("/api/agents/{id}/{action}", post(agent_command))
        .route("/api/flows/reload", post(reload))
        .route("/api/recordings", get(recordings))
        .route("/api/recordings/{day}/{file}", get(recording))
        .route("/api/records", get(records))
        .route("/api/callbacks", get(callbacks))
        .route("/api/trunks", get(trunks))
        .route("/api/stats", get(stats))
        .route("/api/events", get(events))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(api.clone(), auth));
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/api/openapi.json", get(openapi))
        .route("/api/agent-login", post(agent_login))
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/wallboard") }),
        )
        .route("/wallboard", get(|| page(crate::web::WALLBOARD)))
        .route("/agent", get(|| page(crate::web::AGENT)))
        .route("/nida.js", get(script))
        .route("/nida.css", get(style))
        .merge(protected)
        .with_state(api)
}

/// Serves until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, api: Api) {
    if let Err(e) = axum::serve(listener, router(api)).await {
        tracing::error!(error = %e, "admin API stopped");
    }
}

async fn page(html: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        crate::web::SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        crate::web::STYLE,
    )
        .into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::web::OPENAPI,
    )
        .into_response()
}

async fn status(State(api): State<Api>) -> Json<serde_json::Value> {
    let c = &api.counters;
    let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    Json(json!({
        "calls": l(&c.calls),
        "answered": l(&c.answered),
        "overload_rejects": l(&c.overload_rejects),
        "sip_received": l(&c.sip_received),
        "sip_malformed": l(&c.sip_malformed),
        "sip_foreign_responses": l(&c.sip_foreign_responses),
        "dtmf": l(&c.dtmf),
    }))
}

async fn calls(State(api): State<Api>) -> Json<serde_json::Value> {
    let view = api.centre.live.borrow().clone();
    Json(json!(view.calls.values().collect::<Vec<_>>()))
}

/// Per queue: live figures from the routing core and the board.
fn queue_tiles(api: &Api) -> Vec<serde_json::Value> {
    let snap = api.centre.stats.load();
    let view = api.centre.live.borrow().clone();
    let now = std::time::Instant::now();
    api.centre
        .queues
        .iter()
        .zip(&snap.queues)
        .map(|((name, def), q)| {
            let base = q.answered + q.abandoned;
            let talking = view
                .calls
                .values()
                .filter(|c| c.info.queue == *name && c.state == "talking")
                .count();
            json!({
                "name": name,
                "waiting": q.waiting,
                "longest_wait_seconds": q.oldest.map_or(0, |o| now.saturating_duration_since(o).as_secs()),
                "offered": q.offered,
                "answered": q.answered,
                "abandoned": q.abandoned,
                "talking": talking,
                "agents": view.agents_for(name),
                "service_level_seconds": def.service_level_seconds,
                "service_level": (base > 0).then(|| 100.0 * q.answered_in_sl as f64 / base as f64),
                "asa_seconds": (q.answered > 0).then(|| q.total_answer_wait.as_secs_f64() / q.answered as f64),
            })
        })
        .collect()
}

async fn queues(State(api): State<Api>) -> Json<serde_json::Value> {
    Json(json!(queue_tiles(&api)))
}

async fn agents(State(api): State<Api>) -> Json<serde_json::Value> {
    let view = api.centre.live.borrow().clone();
    Json(json!(view.agents.values().collect::<Vec<_>>()))
}

async fn agent(State(api): State<Api>, Path(id): Path<u32>) -> Response {
    let view = api.centre.live.borrow().clone();
    match view.agents.get(&id) {
        Some(a) => {
            let call = a.task.and_then(|t| view.calls.get(&t));
            Json(json!({ "agent": a, "call": call })).into_response()
        }
        None => error(StatusCode::NOT_FOUND, format!("no agent {id}")),
    }
}

#[derive(Deserialize)]
struct ReasonQuery {
    reason: Option<String>,
}

async fn agent_command(
    State(api): State<Api>,
    Path((id, action)): Path<(u32, String)>,
    Query(q): Query<ReasonQuery>,
) -> Response {
    if !api.centre.agents_by_user.values().any(|a| *a == id) {
        return error(StatusCode::NOT_FOUND, format!("no agent {id}"));
    }
    let cmd = match action.as_str() {
        "login" => AgentCommand::Login,
        "ready" => AgentCommand::Ready,
        "not_ready" => AgentCommand::NotReady(q.reason.unwrap_or_else(|| "break".into())),
        "logout" => AgentCommand::Logout,
        other => return error(StatusCode::NOT_FOUND, format!("no action {other}")),
    };
    match api
        .centre
        .tx
        .send(ToCentre::Agent(nida_acd::AgentId(id), cmd))
        .await
    {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({ "ok": true }))).into_response(),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the centre stopped"),
    }
}

#[derive(Deserialize)]
struct Login {
    user: String,
    password: String,
}

/// The agent page's log-in: SIP user and password give a session token.
async fn agent_login(State(api): State<Api>, Json(l): Json<Login>) -> Response {
    let found = api.agents.iter().find(|a| a.user == l.user);
    // The same answer, and the same work, for a wrong user and a wrong
    // password.
    let expected = found.map_or("\u{0}", |a| a.password.as_str());
    let ok = constant_eq(l.password.as_bytes(), expected.as_bytes()) && found.is_some();
    let Some(a) = found.filter(|_| ok) else {
        return error(StatusCode::UNAUTHORIZED, "wrong user or password");
    };
    let token = session_token(a.id);
    if let Ok(mut s) = api.sessions.lock() {
        s.insert(token.clone(), a.id);
    }
    Json(json!({ "token": token, "agent": a.id, "name": a.name })).into_response()
}

/// A fresh session token: 128 bits from the OS CSPRNG.
fn session_token(agent: u32) -> String {
    format!("a{agent}-{}", nida_sip::rng::os_token())
}

async fn reload(State(api): State<Api>) -> Response {
    let reload = api.reload.clone();
    match tokio::task::spawn_blocking(move || reload()).await {
        Ok(Ok(n)) => Json(json!({ "ok": true, "flows": n })).into_response(),
        Ok(Err(report)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "ok": false, "diagnostics": report })),
        )
            .into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "reload failed"),
    }
}

/// A file or folder name that cannot leave its folder.
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

async fn recordings(State(api): State<Api>) -> Json<serde_json::Value> {
    let root = api.data_dir.join("recordings");
    let list = tokio::task::spawn_blocking(move || {
        let mut files = Vec::new();
        for day in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let day_name = day.file_name().to_string_lossy().to_string();
            for f in std::fs::read_dir(day.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let bytes = f.metadata().map(|m| m.len()).unwrap_or(0);
                let name = f.file_name().to_string_lossy().to_string();
                files.push(json!({
                    "day": day_name,
                    "file": name,
                    "bytes": bytes,
                    "url": format!("/api/recordings/{day_name}/{name}"),
                }));
            }
        }
        files.sort_by(|a, b| {
            b["day"]
                .as_str()
                .cmp(&a["day"].as_str())
                .then(a["file"].as_str().cmp(&b["file"].as_str()))
        });
        files
    })
    .await
    .unwrap_or_default();
    Json(json!(list))
}

async fn recording(State(api): State<Api>, Path((day, file)): Path<(String, String)>) -> Response {
    if !plain_name(&day) || !plain_name(&file) {
        return error(StatusCode::BAD_REQUEST, "bad recording name");
    }
    let path = api.data_dir.join("recordings").join(day).join(file);
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "audio/wav")], bytes).into_response(),
        Err(_) => error(StatusCode::NOT_FOUND, "no such recording"),
    }
}

#[derive(Deserialize)]
struct RecordQuery {
    from: Option<String>,
    to: Option<String>,
    queue: Option<String>,
    limit: Option<u32>,
}

fn store_query(q: &RecordQuery) -> Result<nida_store::Query, ApiError> {
    let time = |v: &Option<String>| -> Result<Option<i64>, ApiError> {
        v.as_deref()
            .map(|s| {
                crate::report::parse_time(s).ok_or_else(|| {
                    ApiError(
                        StatusCode::BAD_REQUEST,
                        format!("{s:?} is neither Unix seconds nor YYYY-MM-DD"),
                    )
                })
            })
            .transpose()
    };
    Ok(nida_store::Query {
        from: time(&q.from)?,
        to: time(&q.to)?,
        queue: q.queue.clone(),
        limit: q.limit,
    })
}

async fn read_store<T: Send + 'static>(
    api: &Api,
    f: impl FnOnce(&nida_store::Store) -> nida_store::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let store = api.store.clone();
    tokio::task::spawn_blocking(move || store.reader().and_then(|s| f(&s)))
        .await
        .map_err(|_| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store reader failed".into(),
            )
        })?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn records(State(api): State<Api>, Query(q): Query<RecordQuery>) -> Response {
    let q = match store_query(&q) {
        Ok(q) => q,
        Err(r) => return r.into_response(),
    };
    match read_store(&api, move |s| s.calls(&q)).await {
        Ok(rows) => Json(json!(rows)).into_response(),
        Err(r) => r.into_response(),
    }
}

#[derive(Deserialize)]
struct CallbackQuery {
    pending: Option<bool>,
}

async fn callbacks(State(api): State<Api>, Query(q): Query<CallbackQuery>) -> Response {
    let pending = q.pending.unwrap_or(false);
    match read_store(&api, move |s| s.callbacks(pending)).await {
        Ok(rows) => Json(json!(rows)).into_response(),
        Err(r) => r.into_response(),
    }
}

/// The carrier trunks: registration and the health of each address.
async fn trunks(State(api): State<Api>) -> Response {
    let views = api.counters.trunks.borrow().clone();
    Json(json!(views.as_ref())).into_response()
}

/// The figures per queue and hour over a period (today by default), for
/// the wallboard's charts.
async fn stats(State(api): State<Api>, Query(q): Query<RecordQuery>) -> Response {
    let mut q = match store_query(&q) {
        Ok(q) => q,
        Err(r) => return r.into_response(),
    };
    if q.from.is_none() {
        let now = crate::queued::unix_now() as i64;
        q.from = Some(now - now.rem_euclid(86_400));
    }
    q.limit = None;
    match read_store(&api, move |s| s.calls(&q)).await {
        Ok(rows) => {
            let hours = nida_store::kpi::by_queue(&rows, nida_store::kpi::Bucket::Hour);
            let out: Vec<_> = hours
                .iter()
                .map(|k| {
                    json!({
                        "queue": k.queue,
                        "start": k.start,
                        "offered": k.offered,
                        "answered": k.answered,
                        "abandoned": k.abandoned,
                        "service_level": k.service_level(),
                        "asa_seconds": k.asa(),
                        "aht_seconds": k.aht(),
                        "satisfaction": k.satisfaction(),
                    })
                })
                .collect();
            Json(json!(out)).into_response()
        }
        Err(r) => r.into_response(),
    }
}

/// Whether an agent's event stream carries this event.
fn for_agent(ev: &CentreEvent, id: u32) -> bool {
    match ev {
        CentreEvent::Offer { agent, .. }
        | CentreEvent::Connected { agent, .. }
        | CentreEvent::AgentState { agent, .. } => *agent == id,
        CentreEvent::Queued { .. } | CentreEvent::Ended { .. } => false,
    }
}

async fn events(
    State(api): State<Api>,
    axum::Extension(who): axum::Extension<Who>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let rx = api.centre.events.subscribe();
    let stream = futures_util::stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if let Who::Agent(id) = who {
                        if !for_agent(&ev, id) {
                            continue;
                        }
                    }
                    let data = serde_json::to_string(&ev).unwrap_or_default();
                    return Some((Ok(Event::default().data(data)), rx));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "event stream reader too slow");
                }
                Err(_) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn metrics(State(api): State<Api>) -> Response {
    let totals = api.totals.borrow().clone();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&api.counters, &api.centre, &totals),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_the_recordings_folder() {
        assert!(plain_name("2026-11-23"));
        assert!(plain_name("abc-1_x.wav"));
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", "%2e%2e"] {
            assert!(!plain_name(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_compare_in_full() {
        assert!(constant_eq(b"abc", b"abc"));
        assert!(!constant_eq(b"abc", b"abd"));
        assert!(!constant_eq(b"abc", b"abcd"));
    }
}
