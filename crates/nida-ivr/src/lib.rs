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
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

pub use check::{load_path, AnyPrompt, Diagnostic, Flow, FlowSet, PromptCatalog, Report};
pub use expr::Value;
pub use interp::{Action, LookupResult, Outcome, PromptRef, QueueRequest, Session};
