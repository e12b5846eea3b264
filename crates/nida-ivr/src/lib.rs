//! nida's IVR: the declarative flow language ops engineers write in
//! `ivr-flows/*.yaml`, its checker, and the interpreter that runs a call
//! through it.
//!
//! - [`flow`]: the file format, read with the position of every value;
//! - [`check`]: diagnostics (`file:line:column` with a caret) and the
//!   checked [`check::FlowSet`];
//! - [`expr`]: the small expression language of conditions and templates;
//! - [`say`]: numbers, dates, times, money and digits in seven languages;
//! - [`interp`]: the sans-IO interpreter, driven with `handle_*(now, ..)`
//!   and drained with `poll_action`/`poll_timeout`.
//!
//! ```text
//!   let mut s = Session::new(now, flows, "main", vars)?;
//!   loop {
//!       while let Some(a) = s.poll_action() { shell.carry_out(a) }
//!       match shell.next_event(s.poll_timeout()) {
//!           Key(d) => s.handle_digit(now, d),
//!           PromptsDone => s.handle_playback_done(now),
//!           Answer(id, r) => s.handle_lookup(now, id, r),
//!           Timer => s.handle_timeout(now),
//!       }
//!   }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod check;
pub mod expr;
pub mod flow;
pub mod interp;
pub mod say;

/// The JSON Schema of flow files, generated from the Rust types, for
/// editors (committed as `ivr-flows/flow.schema.json`).
pub fn schema() -> String {
    let schema = schemars::schema_for!(flow::FlowFile);
    let value = sorted(serde_json::to_value(&schema).unwrap_or_default());
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// The value with every object's keys in order, whether or not a crate in
/// the build turned on serde_json's `preserve_order` (feature unification
/// differs between `cargo run` and `cargo test --workspace`): the schema is
/// the same bytes in every build.
fn sorted(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut pairs: Vec<(String, Value)> = map.into_iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(pairs.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

pub use check::{
    load_path, load_path_with, AnyPrompt, Diagnostic, Flow, FlowSet, PromptCatalog, Report,
};
pub use expr::Value;
pub use interp::{
    Action, Hours, LookupResult, Mark, Outcome, PromptRef, QueueRequest, Served, Session,
    VoicemailRequest,
};
