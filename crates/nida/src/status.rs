//! A minimal HTTP status endpoint on `--http-addr`: `GET /status` answers a
//! JSON object of live counters, `GET /health` answers `ok`. The admin API
//! grows from here.

use crate::driver::Counters;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::debug;

/// Serves status requests until the process ends.
pub async fn serve(listener: TcpListener, counters: Arc<Counters>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let counters = counters.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut used = 0;
            // Read the request head (bounded).
            while used < buf.len() {
                match stream.read(&mut buf[used..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => used += n,
                }
                if buf[..used].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..used]);
            let path = head.split_whitespace().nth(1).unwrap_or("/");
            let (code, ctype, body) = match (head.starts_with("GET "), path) {
                (true, "/health") => ("200 OK", "text/plain", "ok\n".to_string()),
                (true, "/status") => ("200 OK", "application/json", json(&counters)),
                (true, _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
                (false, _) => (
                    "405 Method Not Allowed",
                    "text/plain",
                    "GET only\n".to_string(),
                ),
            };
            let resp = format!(
                "HTTP/1.1 {code}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            if let Err(e) = stream.write_all(resp.as_bytes()).await {
                debug!(error = %e, "status write failed");
            }
        });
    }
}

fn json(c: &Counters) -> String {
    format!(
        "{{\"calls\":{},\"answered\":{},\"overload_rejects\":{},\"sip_received\":{},\"sip_malformed\":{},\"dtmf\":{}}}\n",
        c.calls.load(Ordering::Relaxed),
        c.answered.load(Ordering::Relaxed),
        c.overload_rejects.load(Ordering::Relaxed),
        c.sip_received.load(Ordering::Relaxed),
        c.sip_malformed.load(Ordering::Relaxed),
        c.dtmf.load(Ordering::Relaxed),
    )
}
