//! Lookup backends for the IVR's `lookup` nodes: the embedded sample
//! backend (a JSON file of records) and HTTP services (GET with parameters
//! in the URL, or POST with a JSON body), answered as [`LookupResult`]s.

use crate::config::LookupConfig;
use nida_ivr::{LookupResult, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

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

/// A lookup over HTTP: GET with the parameters in the URL, or POST with
/// them as a JSON body.
async fn http(url: &str, post: bool, params: &BTreeMap<String, String>) -> LookupResult {
    let mut url = url.to_string();
    for (k, v) in params {
        url = url.replace(&format!("{{{k}}}"), &encode(v));
    }
    let body = post.then(|| serde_json::to_string(params).unwrap_or_default());
    let method = if post { "POST" } else { "GET" };
    let (status, body) =
        match crate::base::httpc::request(method, &url, None, body.as_deref()).await {
            Ok(r) => r,
            Err(e) => return LookupResult::Error(e.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding() {
        assert_eq!(encode("a b/é"), "a%20b%2F%C3%A9");
    }
}
