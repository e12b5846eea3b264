//! `nida notify FILE.csv`: sends the notifications of a CSV file to the
//! running daemon's API (`POST /api/notifications`), in batches, and
//! prints the id of each. The header names the columns: `number` and
//! `flow` are needed, `language` and `id` are optional, and every other
//! column is a variable of the flow (`status`, `application`, ...). An
//! empty `flow` or `language` cell takes `--flow` or none.

use crate::cli::CliError;
use crate::ops::notices::MOST_PER_REQUEST;
use serde_json::{json, Map, Value};
use std::path::Path;

/// Reads the file into the API's JSON notifications; a bad row is named
/// by its line.
pub fn read(path: &Path, default_flow: Option<&str>) -> Result<Vec<Value>, CliError> {
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| CliError::Conflict(format!("{}: {e}", path.display())))?;
    let headers = r
        .headers()
        .map_err(|e| CliError::Conflict(format!("{}: {e}", path.display())))?
        .clone();
    if !headers.iter().any(|h| h == "number") {
        return Err(CliError::Conflict(format!(
            "{}: the header has no `number` column",
            path.display()
        )));
    }
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| CliError::Conflict(format!("{}: {e}", path.display())))?;
        let line = rec.position().map_or(0, |p| p.line());
        let mut n = Map::new();
        let mut vars = Map::new();
        for (h, v) in headers.iter().zip(rec.iter()) {
            match h {
                "number" | "flow" | "language" | "id" if !v.is_empty() => {
                    n.insert(h.into(), json!(v));
                }
                "number" | "flow" | "language" | "id" => {}
                _ => {
                    vars.insert(h.into(), json!(v));
                }
            }
        }
        if !n.contains_key("flow") {
            match default_flow {
                Some(f) => {
                    n.insert("flow".into(), json!(f));
                }
                None => {
                    return Err(CliError::Conflict(format!(
                        "{}:{line}: no flow (a `flow` column or --flow)",
                        path.display()
                    )))
                }
            }
        }
        if !n.contains_key("number") {
            return Err(CliError::Conflict(format!(
                "{}:{line}: no number",
                path.display()
            )));
        }
        n.insert("vars".into(), Value::Object(vars));
        out.push(Value::Object(n));
    }
    Ok(out)
}

/// Sends them to `api` (the daemon's HTTP address) with `token`; the ids
/// in order. Stops at the first batch the daemon refuses (those before
/// it are taken).
pub fn send(api: &str, token: &str, list: &[Value]) -> Result<Vec<String>, CliError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::io("tokio runtime"))?;
    let url = format!("{}/api/notifications", api.trim_end_matches('/'));
    let mut ids = Vec::new();
    for (i, batch) in list.chunks(MOST_PER_REQUEST).enumerate() {
        let body = Value::Array(batch.to_vec()).to_string();
        let (status, text) = rt
            .block_on(crate::base::httpc::request(
                "POST",
                &url,
                Some(token),
                Some(&body),
            ))
            .map_err(|e| CliError::Conflict(format!("{url}: {e}")))?;
        if status != 202 {
            return Err(CliError::Conflict(format!(
                "{url}: {status} for rows {} to {} ({} taken before): {text}",
                i * MOST_PER_REQUEST + 1,
                i * MOST_PER_REQUEST + batch.len(),
                ids.len()
            )));
        }
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        ids.extend(
            v["ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(str::to_string)),
        );
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_become_the_notification_and_its_variables() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("n.csv");
        std::fs::write(
            &f,
            "number,language,status,application,flow\n\
             0501234567,ar,approved,20240002,\n\
             \"0507654321\",fr,\"needs documents, see letter\",20240003,other\n",
        )
        .unwrap();
        let got = read(&f, Some("notify_status")).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["flow"], "notify_status");
        assert_eq!(got[0]["vars"]["status"], "approved");
        assert_eq!(got[1]["flow"], "other");
        assert_eq!(got[1]["vars"]["status"], "needs documents, see letter");
        assert!(got[1]["vars"].get("language").is_none());
        let err = read(&f, None).unwrap_err().to_string();
        assert!(
            err.ends_with(":2: no flow (a `flow` column or --flow)"),
            "{err}"
        );
        std::fs::write(&f, "phone,flow\n1,x\n").unwrap();
        assert!(read(&f, None)
            .unwrap_err()
            .to_string()
            .contains("no `number`"));
    }
}
