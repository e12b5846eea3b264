//! IVR flow files: any text as a flow file; the checker must never panic,
//! and every diagnostic must point inside the file (a line of the text,
//! with a column), as ops engineers rely on file:line:column.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nida_ivr::check::check_sources;
use nida_ivr::AnyPrompt;
use std::path::PathBuf;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files = vec![(PathBuf::from("fuzz.yaml"), text.to_string())];
    if let Err(report) = check_sources(&files, &AnyPrompt) {
        // Lines as YAML counts them: LF, CRLF and a lone CR end one.
        let lines = text.replace("\r\n", "\n").split(['\n', '\r']).count();
        for d in &report.diagnostics {
            // Line 0 means "the file as a whole" (no position).
            assert!(d.line <= lines + 1, "{d:?} in {lines} lines");
            assert!(d.line == 0 || d.column >= 1, "{d:?}");
        }
        let _ = report.render();
    }
});
