//! The daemon's side of the store: one thread owns the writing connection
//! and applies writes in the order calls send them (call records, call-back
//! changes); readers (the admin API, the report) open their own connections,
//! which WAL mode lets read while it writes. After each write the thread
//! tells the [`Notices`] listeners (metrics, webhooks) what was stored.

use nida_store::{CallRecord, CallbackRow, OutboundRow, Store, StoreError};
use std::path::{Path, PathBuf};
use tokio::sync::{broadcast, oneshot};
use tracing::warn;

/// Something stored, for listeners.
#[derive(Debug, Clone)]
pub enum Stored {
    /// A call record (with its id).
    Call(CallRecord),
    /// A call-back's new state.
    Callback(CallbackRow),
}

/// Listeners of what was stored.
pub type Notices = broadcast::Sender<Stored>;

enum Job {
    Call(CallRecord, oneshot::Sender<()>),
    Callback(CallbackRow),
    Outbound(OutboundRow),
    /// Answered once every job sent before it is done.
    Flush(oneshot::Sender<()>),
}

/// Where calls send what they store.
#[derive(Clone)]
pub struct StoreHandle {
    tx: std::sync::mpsc::Sender<Job>,
    data_dir: PathBuf,
    /// What was stored, as it is.
    pub notices: Notices,
}

impl StoreHandle {
    /// Opens the data folder's database (migrating it) and starts the
    /// writer thread.
    pub fn start(data_dir: &Path) -> Result<StoreHandle, StoreError> {
        let mut store = Store::open_dir(data_dir)?;
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let (notices, _) = broadcast::channel(1024);
        let out = notices.clone();
        std::thread::Builder::new()
            .name("nida-store".into())
            .spawn(move || {
                for job in rx {
                    match job {
                        Job::Call(mut rec, done) => {
                            match store.insert_call(&rec) {
                                Ok(id) => {
                                    rec.id = id;
                                    let _ = out.send(Stored::Call(rec));
                                }
                                Err(e) => warn!(error = %e, call_id = %rec.call_id, "call record not stored"),
                            }
                            let _ = done.send(());
                        }
                        Job::Callback(row) => match store.put_callback(&row) {
                            Ok(()) => {
                                let _ = out.send(Stored::Callback(row));
                            }
                            Err(e) => warn!(error = %e, call_id = %row.call_id, "call-back not stored"),
                        },
                        Job::Outbound(row) => {
                            if let Err(e) = store.insert_outbound(&row) {
                                warn!(error = %e, call_id = %row.call_id, "outbound call audit not stored");
                            }
                        }
                        Job::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .map_err(|source| StoreError::Folder {
                path: data_dir.to_path_buf(),
                source,
            })?;
        Ok(StoreHandle {
            tx,
            data_dir: data_dir.to_path_buf(),
            notices,
        })
    }

    /// Stores a call record; returns once it is on disk.
    pub async fn call(&self, rec: CallRecord) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Job::Call(rec, done)).is_err() {
            warn!("store stopped: call record lost");
            return;
        }
        let _ = wait.await;
    }

    /// Stores a call-back's state (in order with everything else this
    /// process stores; never waits).
    pub fn callback(&self, row: CallbackRow) {
        if self.tx.send(Job::Callback(row)).is_err() {
            warn!("store stopped: call-back change lost");
        }
    }

    /// Records a call out to a number and the policy's verdict (never
    /// waits).
    pub fn outbound(&self, row: OutboundRow) {
        if self.tx.send(Job::Outbound(row)).is_err() {
            warn!("store stopped: outbound call audit lost");
        }
    }

    /// Returns once everything sent before is on disk (at shutdown).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Job::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }

    /// A reading connection (blocking: use it off the async threads).
    pub fn reader(&self) -> Result<Store, StoreError> {
        Store::open_dir(&self.data_dir)
    }
}
