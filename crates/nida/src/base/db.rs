//! The daemon's side of the store: one thread owns the writing connection
//! and applies writes in the order calls send them (call records, call-back
//! changes); readers (the admin API, the report) open their own connections,
//! which WAL mode lets read while it writes. After each write the thread
//! tells the [`Notices`] listeners (metrics, webhooks) what was stored.

use nida_store::{CallRecord, CallbackRow, NotificationChange, OutboundRow, Store, StoreError};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, oneshot};
use tracing::warn;

/// Whether nida can create files in `data_dir` (creating it if need be).
fn writable(data_dir: &Path) -> Result<(), StoreError> {
    let err = |source| StoreError::Folder {
        path: data_dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(err)?;
    let probe = data_dir.join(format!(".nida-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"ok").map_err(err)?;
    std::fs::remove_file(&probe).map_err(err)
}

/// Something stored, for listeners.
#[derive(Debug, Clone)]
pub enum Stored {
    /// A call record (with its id).
    Call(Box<CallRecord>),
    /// A call-back's new state.
    Callback(Box<CallbackRow>),
    /// A notification's new state (with the number it calls).
    Notification(Box<NotificationChange>, String),
}

/// Listeners of what was stored.
pub type Notices = broadcast::Sender<Stored>;

/// Writes that could not be made, kept in memory and tried again; past
/// this many the oldest is given up (and logged as an error).
pub const MAX_UNWRITTEN: usize = 10_000;

/// How the store is doing, for `/health` and the metrics.
#[derive(Debug, Default)]
pub struct StoreHealth {
    /// Writes waiting to be tried again.
    pub unwritten: AtomicU64,
    /// Writes given up since start (the in-memory bound was reached).
    pub lost: AtomicU64,
    /// The last write error while some wait.
    pub last_error: Mutex<Option<String>>,
}

enum Job {
    Call(Box<CallRecord>, oneshot::Sender<()>),
    Callback(Box<CallbackRow>, Option<oneshot::Sender<bool>>),
    Outbound(OutboundRow),
    Notification(Box<NotificationChange>, String),
    /// Wrap-up codes an agent keyed on their phone.
    Wrapup(Box<nida_store::Wrapup>),
    /// Answered once every job sent before it is done (or kept for retry).
    Flush(oneshot::Sender<()>),
    /// A change someone waits for (an agent's wrap-up, a voice message
    /// marked handled): written now and answered, never kept (the one who
    /// asked is told it failed, and may ask again).
    Now(WriteNow, oneshot::Sender<Result<bool, String>>),
}

/// A change written on the store's thread; true when it found what it
/// changes.
pub type WriteNow = Box<dyn FnOnce(&mut Store) -> Result<bool, StoreError> + Send>;

/// Where calls send what they store.
#[derive(Clone)]
pub struct StoreHandle {
    tx: std::sync::mpsc::Sender<Job>,
    data_dir: PathBuf,
    /// What was stored, as it is.
    pub notices: Notices,
    /// Writes waiting for a store that fails.
    pub health: Arc<StoreHealth>,
}

/// The writer thread's state: the store and what waits to be written.
struct Writer {
    store: Store,
    out: Notices,
    health: Arc<StoreHealth>,
    /// Writes that failed, oldest first: tried again before any new one,
    /// so the order holds.
    retry: VecDeque<Job>,
    pause: Duration,
    /// When what waits is tried next (new jobs do not bring it forward:
    /// a failing disk is not hammered once per call).
    due: Instant,
}

impl Writer {
    /// Writes one job; gives it back with the error when it cannot.
    fn write(&mut self, job: Job) -> Result<(), Box<(Job, StoreError)>> {
        match job {
            Job::Call(mut rec, done) => match self.store.insert_call(&rec) {
                Ok(id) => {
                    rec.id = id;
                    let _ = self.out.send(Stored::Call(rec));
                    let _ = done.send(());
                    Ok(())
                }
                Err(e) => Err(Box::new((Job::Call(rec, done), e))),
            },
            Job::Callback(row, done) => match self.store.put_callback(&row) {
                Ok(()) => {
                    if let Some(d) = done {
                        let _ = d.send(true);
                    }
                    let _ = self.out.send(Stored::Callback(row));
                    Ok(())
                }
                Err(e) => Err(Box::new((Job::Callback(row, done), e))),
            },
            Job::Outbound(row) => match self.store.insert_outbound(&row) {
                Ok(()) => Ok(()),
                Err(e) => Err(Box::new((Job::Outbound(row), e))),
            },
            Job::Notification(c, number) => match self.store.change_notification(&c) {
                Ok(()) => {
                    let _ = self.out.send(Stored::Notification(c, number));
                    Ok(())
                }
                Err(e) => Err(Box::new((Job::Notification(c, number), e))),
            },
            Job::Wrapup(w) => match self.store.add_wrapup(&w) {
                Ok(()) => Ok(()),
                Err(e) => Err(Box::new((Job::Wrapup(w), e))),
            },
            Job::Flush(done) => {
                let _ = done.send(());
                Ok(())
            }
            Job::Now(f, done) => {
                let _ = done.send(f(&mut self.store).map_err(|e| e.to_string()));
                Ok(())
            }
        }
    }

    /// Keeps a failed job for later. A caller waiting on it is answered
    /// now: a call's task may end (its record stays here), a call-back
    /// request is refused (its caller must not be told it is booked).
    fn keep(&mut self, job: Job, e: StoreError) {
        let job = match job {
            Job::Call(rec, done) => {
                warn!(error = %e, call_id = %rec.call_id, "call record not stored yet: kept, tried again");
                let _ = done.send(());
                let (unused, _) = oneshot::channel();
                Job::Call(rec, unused)
            }
            Job::Callback(row, Some(done)) => {
                warn!(error = %e, call_id = %row.call_id, "call-back not stored: not booked");
                let _ = done.send(false);
                return;
            }
            Job::Callback(row, None) => {
                warn!(error = %e, call_id = %row.call_id, "call-back change not stored yet: kept, tried again");
                Job::Callback(row, None)
            }
            Job::Outbound(row) => {
                warn!(error = %e, call_id = %row.call_id, "outbound call audit not stored yet: kept, tried again");
                Job::Outbound(row)
            }
            Job::Notification(c, number) => {
                warn!(error = %e, notification = %c.id, "notification change not stored yet: kept, tried again");
                Job::Notification(c, number)
            }
            Job::Wrapup(w) => {
                warn!(error = %e, call_id = %w.call_id, "wrap-up codes not stored yet: kept, tried again");
                Job::Wrapup(w)
            }
            Job::Flush(done) => {
                let _ = done.send(());
                return;
            }
            Job::Now(_, done) => {
                let _ = done.send(Err(e.to_string()));
                return;
            }
        };
        if self.retry.is_empty() {
            self.due = Instant::now() + self.pause;
        }
        if self.retry.len() >= MAX_UNWRITTEN {
            self.retry.pop_front();
            self.health.lost.fetch_add(1, Ordering::Relaxed);
            tracing::error!("store failing for too long: the oldest unwritten record is given up");
        }
        self.retry.push_back(job);
        // `Unwritten` says only that older writes wait: keep their cause.
        if !matches!(e, StoreError::Unwritten) {
            if let Ok(mut last) = self.health.last_error.lock() {
                *last = Some(e.to_string());
            }
        }
    }

    /// Writes what waits, oldest first, until one fails.
    fn retry(&mut self) {
        while let Some(job) = self.retry.pop_front() {
            if let Err(failed) = self.write(job) {
                let (job, e) = *failed;
                self.retry.push_front(job);
                if let Ok(mut last) = self.health.last_error.lock() {
                    *last = Some(e.to_string());
                }
                self.pause = (self.pause * 2).min(Duration::from_secs(30));
                self.due = Instant::now() + self.pause;
                return;
            }
        }
        self.pause = Duration::from_secs(1);
        if let Ok(mut last) = self.health.last_error.lock() {
            *last = None;
        }
    }

    /// A new job: after what waits, so the order holds.
    fn handle(&mut self, job: Job) {
        if !self.retry.is_empty() && Instant::now() >= self.due {
            self.retry();
        }
        if self.retry.is_empty() {
            if let Err(failed) = self.write(job) {
                let (job, e) = *failed;
                self.keep(job, e);
            }
        } else if let Job::Flush(done) = job {
            let _ = done.send(());
        } else if let Job::Now(_, done) = job {
            // Older writes wait: this one would jump ahead of them.
            let _ = done.send(Err(StoreError::Unwritten.to_string()));
        } else {
            // Still failing: queued behind the others (a call-back request
            // is refused at once by `keep`).
            let e = StoreError::Unwritten;
            self.keep(job, e);
        }
        self.health
            .unwritten
            .store(self.retry.len() as u64, Ordering::Relaxed);
    }

    fn run(mut self, rx: std::sync::mpsc::Receiver<Job>) {
        loop {
            let next = if self.retry.is_empty() {
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                rx.recv_timeout(self.due.saturating_duration_since(Instant::now()))
            };
            match next {
                Ok(job) => self.handle(job),
                Err(RecvTimeoutError::Timeout) => {
                    self.retry();
                    self.health
                        .unwritten
                        .store(self.retry.len() as u64, Ordering::Relaxed);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.retry();
                    if !self.retry.is_empty() {
                        tracing::error!(
                            unwritten = self.retry.len(),
                            "stopping with records the store did not take"
                        );
                    }
                    return;
                }
            }
        }
    }
}

impl StoreHandle {
    /// Opens the data folder's database (migrating it) and starts the
    /// writer thread. A data folder nida cannot write to is an error here,
    /// at start, not a record lost later.
    pub fn start(data_dir: &Path) -> Result<StoreHandle, StoreError> {
        writable(data_dir)?;
        let store = Store::open_dir(data_dir)?;
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let (notices, _) = broadcast::channel(1024);
        let health = Arc::new(StoreHealth::default());
        let writer = Writer {
            store,
            out: notices.clone(),
            health: health.clone(),
            retry: VecDeque::new(),
            pause: Duration::from_secs(1),
            due: Instant::now(),
        };
        std::thread::Builder::new()
            .name("nida-store".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| StoreError::Folder {
                path: data_dir.to_path_buf(),
                source,
            })?;
        Ok(StoreHandle {
            tx,
            data_dir: data_dir.to_path_buf(),
            notices,
            health,
        })
    }

    /// Stores a call record; returns once it is on disk, or kept in memory
    /// to be tried again when the store fails (see [`StoreHealth`]).
    pub async fn call(&self, rec: Box<CallRecord>) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Job::Call(rec, done)).is_err() {
            warn!("store stopped: call record lost");
            return;
        }
        let _ = wait.await;
    }

    /// Stores wrap-up codes keyed on an agent's phone (never waits; kept
    /// and tried again if it fails).
    pub fn wrapup(&self, w: nida_store::Wrapup) {
        if self.tx.send(Job::Wrapup(Box::new(w))).is_err() {
            warn!("store stopped: wrap-up codes lost");
        }
    }

    /// Stores a call-back's state (in order with everything else this
    /// process stores; never waits; kept and tried again if it fails).
    pub fn callback(&self, row: CallbackRow) {
        if self.tx.send(Job::Callback(Box::new(row), None)).is_err() {
            warn!("store stopped: call-back change lost");
        }
    }

    /// Stores a new call-back request; true once it is on disk, false when
    /// the store failed (the request is then dropped: the caller must not
    /// be told it is booked).
    pub async fn book_callback(&self, row: CallbackRow) -> bool {
        let (done, wait) = oneshot::channel();
        if self
            .tx
            .send(Job::Callback(Box::new(row), Some(done)))
            .is_err()
        {
            return false;
        }
        wait.await.unwrap_or(false)
    }

    /// Records a call out to a number and the policy's verdict (never
    /// waits).
    pub fn outbound(&self, row: OutboundRow) {
        if self.tx.send(Job::Outbound(row)).is_err() {
            warn!("store stopped: outbound call audit lost");
        }
    }

    /// Stores a notification's change (in order, never waits; kept and
    /// tried again if it fails); `number` is for the listeners.
    pub fn notification(&self, change: NotificationChange, number: String) {
        if self
            .tx
            .send(Job::Notification(Box::new(change), number))
            .is_err()
        {
            warn!("store stopped: notification change lost");
        }
    }

    /// Writes `f` on the store's thread and answers with its result (an
    /// error when the store fails or older writes still wait).
    pub async fn write_now(&self, f: WriteNow) -> Result<bool, String> {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Job::Now(f, done)).is_err() {
            return Err("the store stopped".into());
        }
        wait.await
            .unwrap_or_else(|_| Err("the store stopped".into()))
    }

    /// Returns once everything sent before is on disk (at shutdown), or
    /// kept for a store that fails: then what is lost is said.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Job::Flush(done)).is_ok() {
            let _ = wait.await;
        }
        let unwritten = self.health.unwritten.load(Ordering::Relaxed);
        if unwritten > 0 {
            tracing::error!(
                unwritten,
                "stopping with writes the store did not take: they are lost"
            );
        }
    }

    /// A reading connection (blocking: use it off the async threads).
    pub fn reader(&self) -> Result<Store, StoreError> {
        Store::open_dir(&self.data_dir)
    }
}
