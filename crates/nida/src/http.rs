//! The HTTP listener: accepts connections for the admin API and the pages
//! within bounds an outsider cannot exhaust. Connections are limited in
//! total and per source network (the SIP guard's [`Connections`]), a
//! request's header must arrive within [`HEADER_TIMEOUT`], its body within
//! [`BODY_TIMEOUT`] and [`MAX_BODY`] bytes, and a failing `accept` (out of
//! file descriptors) backs off instead of spinning.

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use nida_sip::guard::{Connections, GuardConfig};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tracing::{debug, warn};

/// Time for a request's header section to arrive.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a request's body to arrive.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request body (the API takes small JSON documents only).
pub const MAX_BODY: usize = 64 * 1024;
/// HTTP connections open at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// HTTP connections open at once from one source network (an office of
/// agents behind one NAT, each page holding its event stream, fits; a
/// reverse proxy in front belongs in `[protection] trusted`).
pub const MAX_CONNECTIONS_PER_SOURCE: usize = 256;

/// Reads a request's whole body within [`BODY_TIMEOUT`] and [`MAX_BODY`]
/// before the handler runs: a slow or endless body gets 408 or 413.
pub async fn bounded_body(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        // Refused at the header, before a byte of it is waited for.
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
    }
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await {
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request body too slow\n").into_response(),
        Ok(Err(_)) => (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response(),
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}

/// A connection's place in the count, given back when it closes.
struct Slot {
    table: Arc<Mutex<Connections>>,
    peer: SocketAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut t) = self.table.lock() {
            t.close(self.peer.ip());
        }
    }
}

/// Serves `router` on `listener` until the process ends; `limits` gives
/// the source networks' prefixes and the trusted networks.
pub async fn serve(listener: TcpListener, router: Router, limits: &GuardConfig) {
    let table = Arc::new(Mutex::new(Connections::new(GuardConfig {
        max_connections: MAX_CONNECTIONS,
        max_connections_per_source: MAX_CONNECTIONS_PER_SOURCE,
        ..limits.clone()
    })));
    let mut backoff = Duration::from_millis(10);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => {
                backoff = Duration::from_millis(10);
                c
            }
            Err(e) => {
                // EMFILE and the like: wait for connections to close.
                warn!(error = %e, pause_ms = backoff.as_millis() as u64, "HTTP accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let admitted = table.lock().map(|mut t| t.open(peer.ip())).unwrap_or(false);
        if !admitted {
            debug!(%peer, "HTTP connection refused: too many open");
            drop(stream);
            continue;
        }
        let slot = Slot {
            table: table.clone(),
            peer,
        };
        let router = router.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service =
                hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    router.clone().oneshot(req.map(Body::new))
                });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "HTTP connection ended");
            }
        });
    }
}
