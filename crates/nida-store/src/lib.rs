//! nida's store: call records, survey results, call-backs and agents'
//! credentials in an embedded SQLite database, and the KPI figures of the
//! contact centre computed from the records.
//!
//! The database lives in one file (`nida.db` in the data folder), in WAL
//! mode with `synchronous = FULL`: a record is on disk when its insert
//! returns, so killing the daemon loses nothing that was written. Its
//! schema carries a version (`PRAGMA user_version`); [`Store::open`] brings
//! an older file up to date with the migrations in [`migrate`] and refuses
//! a file written by a newer nida.

pub mod kpi;
pub mod migrate;
mod notifications;
mod records;

pub use notifications::{AttemptRow, NotificationChange, NotificationRow};

pub use records::{
    AgentHa1, AgentRow, CallRecord, CallbackRow, IvrChoice, IvrEnd, IvrLookup, IvrTrail,
    LegQuality, ListenIn, LookupServed, OutboundRow, Query, SupervisorRow, VoicemailLeft,
    VoicemailRow, Wrapup, WrapupCount,
};

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite refused (the file is not a database, the disk is full, ...).
    #[error("database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The file was written by a newer nida.
    #[error("database {path} has schema version {found}; this nida knows up to {known}")]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// The newest version this build knows.
        known: u32,
    },
    /// The data folder cannot be made or written to.
    #[error("data folder {path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not tried: writes before it still wait for a store that fails.
    #[error("earlier writes still wait for the store")]
    Unwritten,
}

/// Results of the store.
pub type Result<T> = std::result::Result<T, StoreError>;

/// An open database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// The database file in a data folder.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("nida.db")
}

impl Store {
    /// Opens (creating if needed) the database of a data folder and brings
    /// its schema up to date.
    pub fn open_dir(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Folder {
            path: data_dir.to_path_buf(),
            source,
        })?;
        Store::open(&db_path(data_dir))
    }

    /// Opens (creating if needed) a database file and brings its schema up
    /// to date.
    pub fn open(path: &Path) -> Result<Store> {
        let mut store = Store {
            conn: Connection::open(path).map_err(|source| StoreError::Sqlite {
                path: path.to_path_buf(),
                source,
            })?,
            path: path.to_path_buf(),
        };
        // Another process setting up the same new file (the daemon and
        // `nida agent`) can make the switch to WAL or a migration step
        // find the file locked at once, busy timeout or not: try again.
        let mut wait = Duration::from_millis(5);
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match store.set_up() {
                Err(StoreError::Sqlite { source, .. })
                    if is_busy(&source) && std::time::Instant::now() < give_up =>
                {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_millis(200));
                }
                other => {
                    other?;
                    store.owner_only()?;
                    return Ok(store);
                }
            }
        }
    }

    /// Makes the file and its WAL companions readable and writable by
    /// their owner only, whatever they were created with: the store holds
    /// callers' numbers and agents' secrets.
    fn owner_only(&self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let name = self.path.as_os_str().to_os_string();
        for suffix in ["", "-wal", "-shm"] {
            let mut p = name.clone();
            p.push(suffix);
            let p = PathBuf::from(p);
            if !p.exists() {
                continue;
            }
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).map_err(
                |source| StoreError::Folder {
                    path: p.clone(),
                    source,
                },
            )?;
        }
        Ok(())
    }

    fn set_up(&mut self) -> Result<()> {
        self.configure()?;
        let found = migrate::version(&self.conn).map_err(|e| self.err(e))?;
        if found > migrate::LATEST {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
                known: migrate::LATEST,
            });
        }
        migrate::run(&mut self.conn).map_err(|e| self.err(e))?;
        Ok(())
    }

    fn configure(&self) -> Result<()> {
        self.conn
            .busy_timeout(Duration::from_secs(10))
            .map_err(|e| self.err(e))?;
        // WAL lets the API read while the daemon writes; FULL syncs the
        // log at every commit.
        self.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| self.err(e))?;
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.err(e))?;
        self.conn
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| self.err(e))
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<u32> {
        migrate::version(&self.conn).map_err(|e| self.err(e))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// [`Store::err`] as a closure that does not borrow the store (for use
    /// while a transaction holds the connection).
    fn err_fn(&self) -> impl Fn(rusqlite::Error) -> StoreError {
        let path = self.path.clone();
        move |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        }
    }
}

/// Whether SQLite said the file is locked by another connection.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}
