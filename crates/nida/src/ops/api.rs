//! The admin HTTP API on `--http-addr` (axum): live calls, queues and
//! agents, agent state changes, flow reload, recordings, call records and
//! call-backs from the store, the day's figures, a server-sent event
//! stream, Prometheus `/metrics`, the OpenAPI description, and the web
//! wallboard and agent page.
//!
//! Everything under `/api` and `/metrics` needs the admin token in the
//! header (`Authorization: Bearer TOKEN`; never in a URL, where logs and
//! histories keep it), except the agent page's own calls: an agent logs in
//! with their SIP user and password (throttled, see [`crate::ops::access`]) and
//! gets a session token that reaches only their own state and events and
//! ends at log-out or when idle. A browser's event stream opens with a
//! ticket (`POST /api/events/ticket`, then `/api/events?ticket=T`), good
//! once for 30 seconds.

use crate::base::bus::Counters;
use crate::base::db::StoreHandle;
use crate::centre::{CentreEvent, CentreHandle, ToCentre};
use crate::config::features::AgentCommand;
use crate::config::AgentDef;
use crate::ops::access::{Access, Who};
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// Reloads the flows now: the number of flows, or the diagnostics.
pub type Reload = Arc<dyn Fn() -> Result<usize, crate::ops::reload::ReloadError> + Send + Sync>;

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
    /// The metrics registry (`/metrics`).
    pub metrics: Arc<prometheus_client::registry::Registry>,
    /// Agent page sessions, event-stream tickets, the log-in throttle.
    access: Arc<Mutex<Access>>,
    /// The digest realm (agents' stored secrets are HA1s for it).
    realm: Arc<str>,
    /// The SIP driver (call-backs booked from the API start there).
    pub driver: tokio::sync::mpsc::Sender<crate::base::bus::ToDriver>,
    /// Status notifications (none: the API answers 503 to them).
    pub notify: Option<crate::ops::notices::Notify>,
    /// How SIP over WebSocket connections are bounded.
    pub sip_ws: crate::ops::sipws::WsLimits,
}

/// A JSON error.
pub(crate) fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({ "error": message.into() }))).into_response()
}

/// An error answered as JSON with its status.
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

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
        realm: &str,
        driver: tokio::sync::mpsc::Sender<crate::base::bus::ToDriver>,
    ) -> Api {
        let times = crate::ops::metrics::Times::default();
        let totals = crate::ops::metrics::follow(&store.notices, times.clone());
        let live = crate::ops::metrics::Live {
            counters: counters.clone(),
            centre: centre.clone(),
            totals,
            health: store.health.clone(),
        };
        let metrics = Arc::new(crate::ops::metrics::registry(&times, live));
        Api {
            counters,
            centre,
            store,
            data_dir,
            token: token.into(),
            agents: Arc::new(agents),
            reload,
            metrics,
            access: Arc::new(Mutex::new(Access::new())),
            realm: realm.into(),
            driver,
            notify: None,
            sip_ws: crate::ops::sipws::WsLimits {
                max_message: 65_535,
                idle: std::time::Duration::from_secs(300),
            },
        }
    }

    /// The API with its SIP over WebSocket bounds.
    pub fn with_sip_websocket(mut self, limits: crate::ops::sipws::WsLimits) -> Api {
        self.sip_ws = limits;
        self
    }

    /// The API state with status notifications.
    pub fn with_notifications(mut self, n: crate::ops::notices::Notify) -> Api {
        self.notify = Some(n);
        self
    }

    fn who(&self, headers: &HeaderMap, query: Option<&str>) -> Option<Who> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        let now = std::time::Instant::now();
        let mut access = self.access.lock().ok()?;
        let Some(given) = bearer else {
            // Only a ticket travels in the URL, once.
            let ticket = query?
                .split('&')
                .find_map(|kv| kv.strip_prefix("ticket="))?;
            return access.take_ticket(now, ticket);
        };
        if constant_eq(given.as_bytes(), self.token.as_bytes()) {
            return Some(Who::Admin);
        }
        access.session(now, &given).map(Who::Agent)
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the token; agents reach only their own paths.
async fn auth(State(api): State<Api>, mut req: Request, next: Next) -> Response {
    // A ticket opens the event stream and nothing else.
    let query = (req.uri().path() == "/api/events")
        .then(|| req.uri().query())
        .flatten();
    let Some(who) = api.who(req.headers(), query) else {
        return error(StatusCode::UNAUTHORIZED, "a valid token is needed");
    };
    if let Who::Agent(id) = who {
        let path = req.uri().path();
        let own = format!("/api/agents/{id}");
        let allowed = ["/api/events", "/api/events/ticket", "/api/agent-logout"].contains(&path)
            || path == own
            || path.starts_with(&(own + "/"));
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
        .route("/api/calls/{task}/supervise", post(supervise))
        .route("/api/supervisors", get(supervisors))
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
        .route("/api/ivr", get(crate::ops::desk::ivr))
        .route("/api/wrapups", get(crate::ops::desk::wrapups))
        .route("/api/voicemails", get(crate::ops::desk::voicemails))
        .route(
            "/api/notifications",
            get(crate::ops::notices::list).post(crate::ops::notices::submit),
        )
        .route("/api/notifications/{id}", get(crate::ops::notices::one))
        .route(
            "/api/voicemails/{vm}/audio",
            get(crate::ops::desk::voicemail_audio),
        )
        .route(
            "/api/agents/{id}/voicemails",
            get(crate::ops::desk::agent_voicemails),
        )
        .route(
            "/api/agents/{id}/voicemails/{vm}/audio",
            get(crate::ops::desk::agent_voicemail_audio),
        )
        .route(
            "/api/agents/{id}/voicemails/{vm}/handled",
            post(crate::ops::desk::agent_voicemail_handled),
        )
        .route(
            "/api/agents/{id}/wrapup",
            post(crate::ops::desk::agent_wrapup),
        )
        .route("/api/events", get(events))
        .route("/api/events/ticket", post(events_ticket))
        .route("/api/agent-logout", post(agent_logout))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(api.clone(), auth));
    Router::new()
        .route("/health", get(health))
        .route("/api/openapi.json", get(openapi))
        .route("/api/agent-login", post(agent_login))
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/wallboard") }),
        )
        .route("/sip", get(crate::ops::sipws::upgrade))
        .route("/wallboard", get(|| page(crate::ops::web::WALLBOARD)))
        .route("/agent", get(|| page(crate::ops::web::AGENT)))
        .route("/nida.js", get(script))
        .route("/phone.js", get(phone_script))
        .route("/nida.css", get(style))
        .merge(protected)
        .layer(axum::middleware::from_fn(crate::ops::http::bounded_body))
        .with_state(api)
}

/// Serves until the process ends, within the HTTP listener's bounds
/// (`limits`: the source networks' prefixes, the trusted networks).
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: Api,
    limits: nida_sip::guard::GuardConfig,
    https: Option<(tokio::net::TcpListener, tokio_rustls::TlsAcceptor)>,
) {
    let router = router(api);
    if let Some((l, acceptor)) = https {
        let (router, limits) = (router.clone(), limits.clone());
        tokio::spawn(async move {
            crate::ops::http::serve(l, router, &limits, Some(acceptor)).await;
        });
    }
    crate::ops::http::serve(listener, router, &limits, None).await;
}

async fn page(html: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

async fn phone_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        crate::ops::web::PHONE,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        crate::ops::web::SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        crate::ops::web::STYLE,
    )
        .into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::ops::web::OPENAPI,
    )
        .into_response()
}

async fn status(State(api): State<Api>) -> Json<serde_json::Value> {
    let c = &api.counters;
    let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    Json(json!({
        "calls": l(&c.calls),
        "rtp_ports_in_use": l(&c.rtp_ports_in_use),
        "callbacks_pending": api.centre.bookings.pending(),
        "answered": l(&c.answered),
        "overload_rejects": l(&c.overload_rejects),
        "sip_received": l(&c.sip_received),
        "sip_malformed": l(&c.sip_malformed),
        "sip_keepalives": l(&c.sip_keepalives) + l(&c.sip_pings),
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
            // The queues' wrap-up codes, for the page's wrap-up form.
            let codes: std::collections::BTreeMap<&str, &Vec<String>> = api
                .centre
                .queues
                .iter()
                .filter(|(_, d)| !d.wrapup_codes.is_empty())
                .map(|(n, d)| (n.as_str(), &d.wrapup_codes))
                .collect();
            Json(json!({ "agent": a, "call": call, "wrapup_codes": codes })).into_response()
        }
        None => error(StatusCode::NOT_FOUND, format!("no agent {id}")),
    }
}

#[derive(Deserialize)]
struct ReasonQuery {
    reason: Option<String>,
    /// The colleague to consult.
    agent: Option<u32>,
    /// The number to consult.
    number: Option<String>,
    /// The queue whose longest-available agent to consult.
    queue: Option<String>,
}

#[derive(Deserialize)]
struct SuperviseQuery {
    supervisor: String,
    mode: String,
}

/// The supervisors: user, name, queues and team (no secrets).
async fn supervisors(State(api): State<Api>) -> Response {
    Json(api.centre.supervisors.as_ref().clone()).into_response()
}

/// A supervisor joins a talking call (nida rings their phone) in a mode,
/// or switches mode in it.
async fn supervise(
    State(api): State<Api>,
    Path(task): Path<u64>,
    Query(q): Query<SuperviseQuery>,
) -> Response {
    use crate::centre::SuperviseRefusal as R;
    let Some(mode) = nida_call::SuperviseMode::parse(&q.mode) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("mode {:?}: listen, whisper, barge or take_over", q.mode),
        );
    };
    let task = nida_acd::TaskId(task);
    let m = |reply| ToCentre::Supervise {
        user: q.supervisor,
        task,
        mode,
        reply,
    };
    ask_centre(&api, m, |why| match why {
        R::NoSupervisor | R::NotTalking => StatusCode::NOT_FOUND,
        R::Forbidden => StatusCode::FORBIDDEN,
        R::Unreachable => StatusCode::CONFLICT,
    })
    .await
}

/// Sends `m` to the centre: 202, or 503 when the centre stopped.
async fn tell_centre(api: &Api, m: ToCentre) -> Response {
    match api.centre.tx.send(m).await {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({ "ok": true }))).into_response(),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the centre stopped"),
    }
}

/// Sends the centre the request `m` makes of a reply channel and waits
/// for its word: 202, the refusal with the status `status_of` gives it,
/// or 503 when the centre stopped.
async fn ask_centre<E: std::fmt::Display>(
    api: &Api,
    m: impl FnOnce(tokio::sync::oneshot::Sender<Result<(), E>>) -> ToCentre,
    status_of: impl Fn(&E) -> StatusCode,
) -> Response {
    let (reply, answer) = tokio::sync::oneshot::channel();
    if api.centre.tx.send(m(reply)).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the centre stopped");
    }
    match answer.await {
        Ok(Ok(())) => (StatusCode::ACCEPTED, Json(json!({ "ok": true }))).into_response(),
        Ok(Err(why)) => error(status_of(&why), why.to_string()),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the centre stopped"),
    }
}

async fn agent_command(
    State(api): State<Api>,
    Path((id, action)): Path<(u32, String)>,
    Query(q): Query<ReasonQuery>,
) -> Response {
    if !api.centre.agents_by_user.values().any(|a| *a == id) {
        return error(StatusCode::NOT_FOUND, format!("no agent {id}"));
    }
    let consult = match action.as_str() {
        "consult" => match (&q.agent, &q.number, &q.queue) {
            (Some(a), None, None) => Some(crate::centre::ConsultRequest::Agent(*a)),
            (None, Some(n), None) => Some(crate::centre::ConsultRequest::Number(n.clone())),
            (None, None, Some(qn)) => Some(crate::centre::ConsultRequest::Queue(qn.clone())),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "consult needs one of agent=N, number=..., queue=NAME",
                )
            }
        },
        "complete_transfer" => Some(crate::centre::ConsultRequest::Action(
            nida_call::ConsultAction::Complete,
        )),
        "cancel_consult" => Some(crate::centre::ConsultRequest::Action(
            nida_call::ConsultAction::Cancel,
        )),
        "three_way" => Some(crate::centre::ConsultRequest::Action(
            nida_call::ConsultAction::ThreeWay,
        )),
        _ => None,
    };
    let agent = nida_acd::AgentId(id);
    if let Some(what) = consult {
        let m = |reply| ToCentre::Consult { agent, what, reply };
        return ask_centre(&api, m, |_: &crate::centre::ConsultRefusal| {
            StatusCode::CONFLICT
        })
        .await;
    }
    let cmd = match action.as_str() {
        "hold" | "resume" => {
            return tell_centre(&api, ToCentre::Hold(agent, action == "hold")).await
        }
        "login" => AgentCommand::Login,
        "ready" => AgentCommand::Ready,
        "not_ready" => AgentCommand::NotReady(q.reason.unwrap_or_else(|| "break".into())),
        "logout" => AgentCommand::Logout,
        other => return error(StatusCode::NOT_FOUND, format!("no action {other}")),
    };
    tell_centre(&api, ToCentre::Agent(agent, cmd)).await
}

#[derive(Deserialize)]
struct Login {
    user: String,
    password: String,
}

/// The agent page's log-in: SIP user and password give a session token.
/// Wrong tries are logged and throttled per address and per user.
async fn agent_login(
    State(api): State<Api>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Json(l): Json<Login>,
) -> Response {
    let now = std::time::Instant::now();
    let throttled = match api.access.lock() {
        Ok(mut a) => a.may_try_login(now, peer.ip(), &l.user),
        Err(_) => return error(StatusCode::SERVICE_UNAVAILABLE, "try again"),
    };
    if let Err(wait) = throttled {
        tracing::warn!(source = %peer.ip(), user = %l.user, "agent log-in refused: too many wrong tries");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, wait.as_secs().max(1).to_string())],
            Json(json!({ "error": "too many wrong tries; wait before the next" })),
        )
            .into_response();
    }
    let found = api
        .agents
        .iter()
        .find(|a| a.user == l.user && !l.password.is_empty());
    // The same answer, and the same work, for a wrong user and a wrong
    // password.
    let secret = found.map_or(nida_sip::auth::Secret::Password("\u{0}".into()), |a| {
        a.secret()
    });
    let ok = secret.matches(&l.user, &api.realm, &l.password) && found.is_some();
    let Some(a) = found.filter(|_| ok) else {
        tracing::warn!(source = %peer.ip(), user = %l.user, "agent log-in failed: wrong user or password");
        if let Ok(mut access) = api.access.lock() {
            access.login_failed(now, peer.ip(), &l.user);
        }
        return error(StatusCode::UNAUTHORIZED, "wrong user or password");
    };
    let token = session_token(a.id);
    if let Ok(mut access) = api.access.lock() {
        access.start_session(now, a.id, token.clone());
    }
    // An agent with a fixed contact has a desk phone; the others may use
    // the page as their phone.
    let phone = if a.contact.is_some() {
        "desk"
    } else {
        "browser"
    };
    Json(json!({ "token": token, "agent": a.id, "name": a.name, "phone": phone })).into_response()
}

/// Ends the agent page session whose token the request carries.
async fn agent_logout(headers: HeaderMap, State(api): State<Api>) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let ended = api.access.lock().is_ok_and(|mut a| a.end_session(token));
    if ended {
        (StatusCode::OK, Json(json!({ "ok": true }))).into_response()
    } else {
        error(StatusCode::BAD_REQUEST, "not an agent session")
    }
}

/// A ticket that opens the event stream once, within 30 seconds, for
/// whoever asked (admin or agent).
async fn events_ticket(
    State(api): State<Api>,
    axum::Extension(who): axum::Extension<Who>,
) -> Response {
    let ticket = nida_sip::rng::os_token();
    match api.access.lock() {
        Ok(mut a) => {
            a.issue_ticket(std::time::Instant::now(), who, ticket.clone());
            Json(json!({
                "ticket": ticket,
                "expires_seconds": crate::ops::access::TICKET_LIFETIME.as_secs()
            }))
            .into_response()
        }
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "try again"),
    }
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
            Json(json!({ "ok": false, "diagnostics": report.to_string() })),
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
                // A recording still being written (or cut off by a crash)
                // has its temporary name.
                if !name.ends_with(".wav") {
                    continue;
                }
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
    wav(&path, "no such recording").await
}

/// A WAV file's bytes as `audio/wav`, or 404 with `missing`.
pub(crate) async fn wav(path: &std::path::Path, missing: &str) -> Response {
    match tokio::fs::read(path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "audio/wav")], bytes).into_response(),
        Err(_) => error(StatusCode::NOT_FOUND, missing),
    }
}

#[derive(Deserialize)]
struct RecordQuery {
    from: Option<String>,
    to: Option<String>,
    queue: Option<String>,
    limit: Option<u32>,
}

/// A time in a query: Unix seconds or `YYYY-MM-DD`, else 400.
pub(crate) fn query_time(s: &str) -> Result<i64, ApiError> {
    crate::cli::report::parse_time(s).ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("{s:?} is neither Unix seconds nor YYYY-MM-DD"),
        )
    })
}

fn store_query(q: &RecordQuery) -> Result<nida_store::Query, ApiError> {
    let time = |v: &Option<String>| v.as_deref().map(query_time).transpose();
    Ok(nida_store::Query {
        from: time(&q.from)?,
        to: time(&q.to)?,
        queue: q.queue.clone(),
        limit: q.limit,
    })
}

pub(crate) async fn read_store<T: Send + 'static>(
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
        let now = crate::clock::unix_now() as i64;
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
    (
        [(header::CONTENT_TYPE, crate::ops::metrics::CONTENT_TYPE)],
        crate::ops::metrics::render(&api.metrics),
    )
        .into_response()
}

/// `ok`, or 503 while writes wait for a store that fails (a full disk, a
/// folder made read-only): what waits is kept in memory and tried again.
async fn health(State(api): State<Api>) -> Response {
    let h = &api.store.health;
    let waiting = h.unwritten.load(Ordering::Relaxed);
    if waiting == 0 {
        return "ok\n".into_response();
    }
    let why = h
        .last_error
        .lock()
        .ok()
        .and_then(|e| e.clone())
        .unwrap_or_default();
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("store failing: {waiting} writes waiting: {why}\n"),
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
