//! The HTTP listener: accepts connections for the admin API and the pages
//! within bounds an outsider cannot exhaust. Connections are limited in
//! total and per source network (the SIP guard's connection limits), a
//! request's header must arrive within [`HEADER_TIMEOUT`], its body within
//! [`BODY_TIMEOUT`] and [`MAX_BODY`] bytes, and a failing `accept` (out of
//! file descriptors) backs off instead of spinning (see [`crate::sip::listen`]).
//! The same service is offered over TLS on the HTTPS listener when one is
//! configured.

use crate::sip::listen::Admission;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use nida_sip::guard::GuardConfig;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tracing::debug;

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

/// Whether a request came over TLS (the HTTPS listener): a WebSocket
/// opened there carries SIP as `WSS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secure(pub bool);

/// Serves `router` on `listener` until the process ends (over TLS with
/// `tls`: the HTTPS listener); `limits` gives the source networks'
/// prefixes and the trusted networks.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &GuardConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let admission = Admission::new(GuardConfig {
        max_connections: MAX_CONNECTIONS,
        max_connections_per_source: MAX_CONNECTIONS_PER_SOURCE,
        ..limits.clone()
    });
    let what = if tls.is_some() { "HTTPS" } else { "HTTP" };
    loop {
        let (stream, peer, slot) = admission.accept(&listener, what).await;
        let router = router.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let secure = Secure(tls.is_some());
            let service =
                hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req.extensions_mut().insert(secure);
                    router.clone().oneshot(req.map(Body::new))
                });
            let http = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .to_owned();
            let done = match tls {
                None => {
                    http.serve_connection(TokioIo::new(stream), service)
                        // SIP over WebSocket upgrades the connection (RFC 7118).
                        .with_upgrades()
                        .await
                }
                Some(acceptor) => {
                    // A handshake that never finishes holds no slot for
                    // long.
                    match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => {
                            http.serve_connection(TokioIo::new(s), service)
                                .with_upgrades()
                                .await
                        }
                        Ok(Err(e)) => {
                            debug!(%peer, error = %e, "HTTPS handshake failed");
                            return;
                        }
                        Err(_) => {
                            debug!(%peer, "HTTPS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = done {
                debug!(%peer, error = %e, "HTTP connection ended");
            }
        });
    }
}
