//! SIP over WebSocket (RFC 7118) on the HTTP listener, for web phones
//! (JsSIP, SIP.js) that cannot speak UDP or TCP: `GET /sip` with the
//! `sip` subprotocol upgrades to a WebSocket that carries one SIP message
//! per WebSocket message, both ways (over TLS on the HTTPS listener: `WSS`).
//! To the SIP driver it is one more stream connection (transport `WS`): requests are authenticated by
//! digest as on any transport, and what nida sends to the peer goes back
//! over this connection, the only way to reach it (its Contact's host is
//! not an address). Bounds: the HTTP listener's connection limits, the SIP
//! guard's rate per source, the largest SIP message, an idle time, and a
//! bounded queue of messages to send. When the connection ends, the
//! peer's registration and calls end with it.

use crate::base::bus::ToDriver;
use crate::ops::api::{error, Api};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::Response;
use nida_sip::Transport;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::debug;

/// The subprotocol RFC 7118 registers.
pub const SUBPROTOCOL: &str = "sip";

/// Messages waiting to be written to one peer, at most.
const SEND_QUEUE: usize = 256;

/// How the SIP WebSockets are bounded.
#[derive(Debug, Clone, Copy)]
pub struct WsLimits {
    /// The largest SIP message (a WebSocket message past it closes the
    /// connection).
    pub max_message: usize,
    /// A connection silent this long is closed (web phones send a
    /// REGISTER refresh or a ping well within it).
    pub idle: Duration,
}

/// `GET /sip`: the WebSocket upgrade, for peers that ask for `sip`.
pub(crate) async fn upgrade(
    State(api): State<Api>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    axum::Extension(secure): axum::Extension<crate::ops::http::Secure>,
    ws: WebSocketUpgrade,
) -> Response {
    let asked = ws.requested_protocols().any(|p| {
        p.to_str()
            .is_ok_and(|p| p.eq_ignore_ascii_case(SUBPROTOCOL))
    });
    if !asked {
        return error(
            StatusCode::BAD_REQUEST,
            "SIP over WebSocket needs the `sip` subprotocol (RFC 7118)",
        );
    }
    let limits = api.sip_ws;
    let driver = api.driver.clone();
    ws.protocols([SUBPROTOCOL])
        .max_message_size(limits.max_message)
        .max_frame_size(limits.max_message)
        .on_upgrade(move |socket| {
            let transport = if secure.0 {
                Transport::Wss
            } else {
                Transport::Ws
            };
            serve(socket, peer, transport, driver, limits)
        })
}

/// Shuttles messages between the WebSocket and the SIP driver until
/// either side ends.
async fn serve(
    mut socket: WebSocket,
    peer: SocketAddr,
    transport: Transport,
    driver: mpsc::Sender<ToDriver>,
    limits: WsLimits,
) {
    let (wtx, mut wrx) = mpsc::channel::<Vec<u8>>(SEND_QUEUE);
    if driver
        .send(ToDriver::StreamOpen(transport, peer, wtx))
        .await
        .is_err()
    {
        return;
    }
    debug!(%peer, "SIP WebSocket open");
    loop {
        tokio::select! {
            got = tokio::time::timeout(limits.idle, socket.recv()) => {
                let data = match got {
                    Err(_) => {
                        debug!(%peer, "SIP WebSocket silent too long: closing");
                        break;
                    }
                    Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => break,
                    Ok(Some(Ok(Message::Text(t)))) => t.as_str().as_bytes().to_vec(),
                    Ok(Some(Ok(Message::Binary(b)))) => b.to_vec(),
                    // Pings are answered by the WebSocket layer itself.
                    Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                };
                let m = ToDriver::StreamMessage(transport, peer, data);
                if driver.send(m).await.is_err() {
                    break;
                }
            }
            out = wrx.recv() => {
                let Some(data) = out else { break };
                let m = match String::from_utf8(data) {
                    Ok(text) => Message::Text(text.into()),
                    Err(e) => Message::Binary(e.into_bytes().into()),
                };
                if socket.send(m).await.is_err() {
                    break;
                }
            }
        }
    }
    debug!(%peer, "SIP WebSocket closed");
    let _ = driver.send(ToDriver::StreamClosed(transport, peer)).await;
}
