//! A minimal HTTP endpoint on `--http-addr`: `GET /status` answers a JSON
//! object of live counters, `GET /health` answers `ok`; `POST
//! /agents/{id}/{login,ready,not_ready,logout}` (`?reason=` for not ready)
//! changes an agent's state; `GET /events` streams the centre's events
//! (offers with the screen pop, agent states) as server-sent events;
//! `GET /recordings` lists the call recordings.

use crate::centre::{AgentCommand, CentreHandle, ToCentre};
use crate::driver::Counters;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::debug;

/// Serves status requests until the process ends.
pub async fn serve(
    listener: TcpListener,
    counters: Arc<Counters>,
    centre: CentreHandle,
    data_dir: PathBuf,
) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let counters = counters.clone();
        let centre = centre.clone();
        let data_dir = data_dir.clone();
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
            let target = head.split_whitespace().nth(1).unwrap_or("/");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let get = head.starts_with("GET ");
            let post = head.starts_with("POST ");
            if get && path == "/events" {
                return events(stream, centre).await;
            }
            let (code, ctype, body) = match (get, post, path) {
                (true, _, "/health") => ("200 OK", "text/plain", "ok\n".to_string()),
                (true, _, "/status") => ("200 OK", "application/json", json(&counters)),
                (true, _, "/recordings") => (
                    "200 OK",
                    "application/json",
                    recordings(&data_dir.join("recordings")),
                ),
                (_, true, p) if p.starts_with("/agents/") => agent_command(&centre, p, query).await,
                (true, _, _) | (_, true, _) => {
                    ("404 Not Found", "text/plain", "not found\n".to_string())
                }
                _ => (
                    "405 Method Not Allowed",
                    "text/plain",
                    "GET or POST\n".to_string(),
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

/// `POST /agents/{id}/{login,ready,not_ready,logout}`.
async fn agent_command(
    centre: &CentreHandle,
    path: &str,
    query: &str,
) -> (&'static str, &'static str, String) {
    let mut parts = path.trim_start_matches("/agents/").split('/');
    let (Some(id), Some(action), None) = (parts.next(), parts.next(), parts.next()) else {
        return ("404 Not Found", "text/plain", "not found\n".into());
    };
    let Ok(id) = id.parse::<u32>() else {
        return (
            "400 Bad Request",
            "text/plain",
            "agent id is a number\n".into(),
        );
    };
    if !centre.agents_by_user.values().any(|a| *a == id) {
        return ("404 Not Found", "text/plain", format!("no agent {id}\n"));
    }
    let reason = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("reason="))
        .map(percent_decode)
        .unwrap_or_else(|| "break".into());
    let cmd = match action {
        "login" => AgentCommand::Login,
        "ready" => AgentCommand::Ready,
        "not_ready" => AgentCommand::NotReady(reason),
        "logout" => AgentCommand::Logout,
        _ => return ("404 Not Found", "text/plain", "not found\n".into()),
    };
    match centre
        .tx
        .send(ToCentre::Agent(nida_acd::AgentId(id), cmd))
        .await
    {
        Ok(()) => ("202 Accepted", "application/json", "{\"ok\":true}\n".into()),
        Err(_) => (
            "503 Service Unavailable",
            "text/plain",
            "centre stopped\n".into(),
        ),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (hex, b[i]) {
            (Some(v), _) => {
                out.push(v);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, c) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The recordings, newest day first, as a JSON array of paths.
fn recordings(dir: &std::path::Path) -> String {
    let mut files = Vec::new();
    if let Ok(days) = std::fs::read_dir(dir) {
        for day in days.flatten() {
            if let Ok(entries) = std::fs::read_dir(day.path()) {
                for e in entries.flatten() {
                    files.push(e.path().display().to_string());
                }
            }
        }
    }
    files.sort();
    files.reverse();
    serde_json::to_string(&files).unwrap_or_else(|_| "[]".into()) + "\n"
}

/// Server-sent events: one `data:` line of JSON per centre event.
async fn events(mut stream: tokio::net::TcpStream, centre: CentreHandle) {
    let mut rx = centre.events.subscribe();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    loop {
        let ev = match rx.recv().await {
            Ok(ev) => ev,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                debug!(missed = n, "event stream reader too slow");
                continue;
            }
            Err(_) => return,
        };
        let Ok(json) = serde_json::to_string(&ev) else {
            continue;
        };
        if stream
            .write_all(format!("data: {json}\n\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(percent_decode("lunch%20break"), "lunch break");
        assert_eq!(percent_decode("a+b%2Fc"), "a b/c");
        assert_eq!(percent_decode("bad%zz%4"), "bad%zz%4");
        assert_eq!(percent_decode("%D8%A7"), "ا");
    }
}
