//! The task around the notification scheduler ([`nida_call::notifier`]):
//! it takes the notifications the API stored, restores the open ones at
//! start, asks the driver to place each attempt when the scheduler says
//! so, feeds it the attempts' results, and stores every change (which the
//! webhooks and metrics follow). It decides nothing itself.

use crate::base::bus::ToDriver;
use crate::base::db::StoreHandle;
use crate::config::Config;
use nida_call::notifier::{Notifier, Refused, Request, Update};
use nida_call::{Delivery, NoticeResult};
use nida_store::{AttemptRow, NotificationChange, NotificationRow};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

/// A notification for the scheduler, and where its acceptance goes.
struct Submit {
    req: Request,
    reply: oneshot::Sender<Result<(), Refused>>,
}

/// How the API reaches the scheduler.
#[derive(Clone)]
pub struct NotifierHandle {
    tx: mpsc::Sender<Submit>,
    /// Notifications waiting or under way.
    pending: Arc<AtomicUsize>,
    max: usize,
}

impl NotifierHandle {
    /// The most that may wait.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Notifications waiting or under way.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Hands a stored notification to the scheduler.
    pub async fn submit(&self, req: Request) -> Result<(), Refused> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Submit { req, reply }).await.is_err() {
            return Err(Refused::Full);
        }
        rx.await.unwrap_or(Err(Refused::Full))
    }
}

/// A stored notification as the scheduler takes it.
pub fn request(row: &NotificationRow, unix: i64) -> Request {
    Request {
        id: row.id.clone(),
        number: row.number.clone(),
        flow: row.flow.clone(),
        vars: row.vars.clone(),
        language: row.language.clone(),
        trunk: row.trunk.clone(),
        attempts: row.attempts,
        due: row.next_at.unwrap_or(unix),
    }
}

/// Starts the scheduler's task: the notifications left open by the last
/// run are taken again first (an attempt cut by the stop counts as made,
/// and is tried again now).
pub fn start(
    cfg: &Config,
    store: StoreHandle,
    driver: mpsc::Sender<ToDriver>,
    calendars: Arc<nida_call::calendar::Calendars>,
) -> NotifierHandle {
    let n = &cfg.notifications;
    let (pace, paces) = n.paces();
    let notifier = Notifier::new(n.policy(), pace, paces, calendars);
    let (tx, rx) = mpsc::channel(256);
    let pending = Arc::new(AtomicUsize::new(0));
    let handle = NotifierHandle {
        tx,
        pending: pending.clone(),
        max: n.max_pending,
    };
    tokio::spawn(run(notifier, store, driver, rx, pending));
    handle
}

fn change(u: &Update, at: i64) -> NotificationChange {
    NotificationChange {
        id: u.id.clone(),
        state: u.state.as_str().to_string(),
        attempts: u.attempts,
        at,
        next_at: u.next_at,
        attempt: u.result.as_ref().map(|r| AttemptRow {
            id: r.id.clone(),
            attempt: r.attempt,
            at,
            call_id: r.call_id.clone(),
            result: r.delivery.as_str().to_string(),
            status: match r.delivery {
                Delivery::Refused(code) => Some(code),
                _ => None,
            },
            message_after: r.message_after,
            seconds: r.seconds,
        }),
    }
}

async fn run(
    mut n: Notifier,
    store: StoreHandle,
    driver: mpsc::Sender<ToDriver>,
    mut rx: mpsc::Receiver<Submit>,
    pending: Arc<AtomicUsize>,
) {
    let (results_tx, mut results) = mpsc::channel::<NoticeResult>(256);
    let reader = store.clone();
    let open = tokio::task::spawn_blocking(move || reader.reader()?.open_notifications()).await;
    let unix = crate::clock::unix_now() as i64;
    match open {
        Ok(Ok(rows)) => {
            if !rows.is_empty() {
                info!(
                    notifications = rows.len(),
                    "notifications left open: scheduled again"
                );
            }
            for row in rows {
                if let Err(e) = n.submit(Instant::now(), unix, request(&row, unix)) {
                    warn!(notification = %row.id, "not scheduled again: {e}");
                }
            }
        }
        Ok(Err(e)) => warn!("cannot read the open notifications: {e}"),
        Err(e) => warn!("cannot read the open notifications: {e}"),
    }
    loop {
        let now = Instant::now();
        let unix = crate::clock::unix_now() as i64;
        while let Some(o) = n.poll_dial(now, unix) {
            if driver
                .send(ToDriver::Notify(Box::new(o.notice), results_tx.clone()))
                .await
                .is_err()
            {
                return;
            }
        }
        while let Some(u) = n.poll_update() {
            info!(
                notification = %u.id,
                state = u.state.as_str(),
                attempts = u.attempts,
                result = u.result.as_ref().map(|r| r.delivery.as_str()),
                "notification"
            );
            store.notification(change(&u, unix), u.number.clone());
        }
        pending.store(n.len(), Ordering::Relaxed);
        let wake = n.poll_timeout().unwrap_or(now + Duration::from_secs(3600));
        tokio::select! {
            m = rx.recv() => {
                let Some(Submit { req, reply }) = m else { return };
                let _ = reply.send(n.submit(Instant::now(), crate::clock::unix_now() as i64, req));
            }
            r = results.recv() => {
                if let Some(r) = r {
                    n.handle_result(Instant::now(), crate::clock::unix_now() as i64, r);
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
        }
    }
}
