//! Lookup backends for the IVR's `lookup` nodes: the embedded sample
//! backend (a JSON file of records) and HTTP services (GET with parameters
//! in the URL, or POST with a JSON body), answered as [`LookupResult`]s.

use crate::config::LookupConfig;
use nida_ivr::{LookupResult, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Errors loading a backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// The records file cannot be read or is not a JSON object of objects.
    #[error("lookup `{service}`: {message}")]
    Load {
        /// The service.
        service: String,
        /// What is wrong.
        message: String,
    },
}

/// A ready backend.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Records in memory, keyed by one parameter.
    File {
        /// Key to record.
        records: HashMap<String, BTreeMap<String, Value>>,
        /// The parameter holding the key.
        key: String,
    },
    /// An HTTP service.
    Http {
        /// URL with `{param}` placeholders.
        url: String,
        /// GET or POST.
        post: bool,
    },
}

/// All configured backends by service name.
pub type Backends = HashMap<String, Backend>;

/// Reads every configured backend (files are loaded once, here).
pub fn load(cfg: &BTreeMap<String, LookupConfig>) -> Result<Backends, LookupError> {
    let mut out = HashMap::new();
    for (name, l) in cfg {
        let err = |message: String| LookupError::Load {
            service: name.clone(),
            message,
        };
        let backend = match (&l.file, &l.url) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| err(format!("{}: {e}", path.display())))?;
                let json: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| err(format!("{}: {e}", path.display())))?;
                let obj = json
                    .as_object()
                    .ok_or_else(|| err(format!("{}: not a JSON object", path.display())))?;
                let mut records = HashMap::new();
                for (k, v) in obj {
                    records.insert(
                        k.clone(),
                        record(v).ok_or_else(|| err(format!("record {k} is not an object")))?,
                    );
                }
                Backend::File {
                    records,
                    key: l.key.clone(),
                }
            }
            (None, Some(url)) => {
                if !url.starts_with("http://") {
                    return Err(err(format!("{url}: only http:// URLs are supported")));
                }
                Backend::Http {
                    url: url.clone(),
                    post: l.method == "POST",
                }
            }
            (None, None) => return Err(err("needs `file` or `url`".into())),
        };
        out.insert(name.clone(), backend);
    }
    Ok(out)
}

fn record(v: &serde_json::Value) -> Option<BTreeMap<String, Value>> {
    Some(
        v.as_object()?
            .iter()
            .map(|(k, x)| (k.clone(), value(x)))
            .collect(),
    )
}

fn value(x: &serde_json::Value) -> Value {
    match x {
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Number(n) => Value::Num(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Null => Value::Null,
        other => Value::Str(other.to_string()),
    }
}

/// Answers one lookup within `timeout`.
pub async fn lookup(
    backend: &Backend,
    params: &BTreeMap<String, String>,
    timeout: Duration,
) -> LookupResult {
    match backend {
        Backend::File { records, key } => match params.get(key).and_then(|k| records.get(k)) {
            Some(r) => LookupResult::Found(r.clone()),
            None => LookupResult::NotFound,
        },
        Backend::Http { url, post } => {
            match tokio::time::timeout(timeout, http(url, *post, params)).await {
                Ok(r) => r,
                Err(_) => LookupResult::Error("timeout".into()),
            }
        }
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A minimal HTTP/1.1 client: one request per connection.
async fn http(url: &str, post: bool, params: &BTreeMap<String, String>) -> LookupResult {
    let mut url = url.to_string();
    for (k, v) in params {
        url = url.replace(&format!("{{{k}}}"), &encode(v));
    }
    let rest = url.trim_start_matches("http://");
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let mut stream = match tokio::net::TcpStream::connect(&addr).await {
        Ok(s) => s,
        Err(e) => return LookupResult::Error(format!("connect {addr}: {e}")),
    };
    let req = if post {
        let body = serde_json::to_string(params).unwrap_or_default();
        format!(
            "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        format!("GET {path} HTTP/1.1\r\nHost: {hostport}\r\nAccept: application/json\r\nConnection: close\r\n\r\n")
    };
    if let Err(e) = stream.write_all(req.as_bytes()).await {
        return LookupResult::Error(format!("send: {e}"));
    }
    let mut resp = Vec::new();
    if let Err(e) = stream.take(1 << 20).read_to_end(&mut resp).await {
        return LookupResult::Error(format!("read: {e}"));
    }
    let text = String::from_utf8_lossy(&resp);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return LookupResult::Error("malformed HTTP response".into());
    };
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    match status {
        200 => match serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .as_ref()
            .and_then(record)
        {
            Some(r) => LookupResult::Found(r),
            None => LookupResult::Error("response is not a JSON object".into()),
        },
        404 => LookupResult::NotFound,
        other => LookupResult::Error(format!("HTTP {other}")),
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_and_chunks() {
        assert_eq!(encode("a b/é"), "a%20b%2F%C3%A9");
        assert_eq!(dechunk("4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n"), "{\"a\":1}");
    }
}
