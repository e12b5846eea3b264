//! The command-line tools besides the daemon: the test caller
//! (`nida call`), reports, agent, supervisor, flow and notify commands, and the one error
//! type they share.

pub mod agentcmd;
pub mod caller;
pub mod flowcmd;
pub mod notifycmd;
pub mod report;
pub mod supervisorcmd;

use std::path::PathBuf;

/// Why a command could not do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// An option's value nida cannot use.
    #[error("{option} {value:?}: {hint}")]
    Option {
        /// The option, e.g. `--from`.
        option: &'static str,
        /// What was given.
        value: String,
        /// What to give instead.
        hint: &'static str,
    },
    /// Options that are each valid but do not fit together or with the
    /// stored data (`--to` before `--from`, a user another agent has).
    #[error("{0}")]
    Conflict(String),
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The store could not be opened, read or written.
    #[error(transparent)]
    Store(#[from] nida_store::StoreError),
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// The file or address.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A WAV file could not be read or written.
    #[error("{what}: {message}")]
    Audio {
        /// The file.
        what: String,
        /// What the decoder or writer said.
        message: String,
    },
}

impl CliError {
    /// An I/O error on `what`.
    pub fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> CliError {
        let what = what.to_string();
        move |source| CliError::Io { what, source }
    }

    /// An audio file error on `path`.
    pub fn audio(path: &std::path::Path) -> impl FnOnce(String) -> CliError {
        let what = path.display().to_string();
        move |message| CliError::Audio { what, message }
    }

    /// A missing database.
    pub fn no_database(db: PathBuf) -> CliError {
        CliError::NotFound(format!("no database at {}", db.display()))
    }
}

/// A store command's outcome: its text on standard output (exit 0), or
/// `who: error` on standard error (exit 2).
pub fn print_outcome(who: &str, outcome: Result<String, CliError>) -> std::process::ExitCode {
    match outcome {
        Ok(text) => {
            print!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{who}: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
