//! Status notifications: each one with its state (pending, calling,
//! delivered, failed), and every attempt with its result, so that a
//! restart goes on where it stopped and a supervisor sees what each
//! citizen was told.

use crate::{Result, Store};
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;
use std::collections::BTreeMap;

/// A notification as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotificationRow {
    /// Its id.
    pub id: String,
    /// The number called.
    pub number: String,
    /// The flow played.
    pub flow: String,
    /// The flow's variables.
    pub vars: BTreeMap<String, String>,
    /// The citizen's language, when given.
    pub language: Option<String>,
    /// The trunk it goes out through (empty: none).
    pub trunk: String,
    /// `pending`, `calling`, `delivered`, `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// When it was asked for (Unix seconds).
    pub created_at: i64,
    /// Its last change.
    pub updated_at: i64,
    /// The next attempt's time, when one is planned.
    pub next_at: Option<i64>,
    /// The last attempt's result (`answered`, `machine`, `busy`, ...).
    pub result: Option<String>,
}

/// One attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRow {
    /// The notification.
    pub id: String,
    /// The attempt, from 1.
    pub attempt: u32,
    /// When it ended (Unix seconds).
    pub at: i64,
    /// The call's Call-ID.
    pub call_id: String,
    /// `answered`, `machine`, `hung_up`, `busy`, `no_answer`, `refused`,
    /// `not_placed`, `no_audio`.
    pub result: String,
    /// The SIP status of a refusal.
    pub status: Option<u16>,
    /// Seconds from the answer to the message.
    pub message_after: Option<f64>,
    /// Seconds answered.
    pub seconds: f64,
}

/// A notification's change, with the attempt that made it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotificationChange {
    /// The notification's id.
    pub id: String,
    /// Its state now.
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// When (Unix seconds).
    pub at: i64,
    /// The next attempt's time.
    pub next_at: Option<i64>,
    /// The attempt that ended, if one did.
    pub attempt: Option<AttemptRow>,
}

const COLUMNS: &str = "id, number, flow, vars, language, trunk, state, attempts, created_at, \
                       updated_at, next_at, result";

fn row(r: &Row) -> rusqlite::Result<NotificationRow> {
    let vars: String = r.get(3)?;
    Ok(NotificationRow {
        id: r.get(0)?,
        number: r.get(1)?,
        flow: r.get(2)?,
        vars: serde_json::from_str(&vars).unwrap_or_default(),
        language: r.get(4)?,
        trunk: r.get(5)?,
        state: r.get(6)?,
        attempts: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        next_at: r.get(10)?,
        result: r.get(11)?,
    })
}

impl Store {
    /// Stores new notifications in one transaction: all, or none when
    /// one's id exists already (false).
    pub fn add_notifications(&mut self, list: &[NotificationRow]) -> Result<bool> {
        let err = self.err_fn();
        let tx = self.conn.transaction().map_err(&err)?;
        for n in list {
            let vars = serde_json::to_string(&n.vars).expect("strings serialize");
            let added = tx
                .execute(
                    &format!(
                        "INSERT OR IGNORE INTO notifications ({COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                    ),
                    params![
                        n.id,
                        n.number,
                        n.flow,
                        vars,
                        n.language,
                        n.trunk,
                        n.state,
                        n.attempts,
                        n.created_at,
                        n.updated_at,
                        n.next_at,
                        n.result
                    ],
                )
                .map_err(&err)?;
            if added == 0 {
                // Dropped without commit: nothing of the list is kept.
                return Ok(false);
            }
        }
        tx.commit().map_err(&err)?;
        Ok(true)
    }

    /// Applies a change (and its attempt) in one transaction.
    pub fn change_notification(&mut self, c: &NotificationChange) -> Result<()> {
        let err = self.err_fn();
        let tx = self.conn.transaction().map_err(&err)?;
        tx.execute(
            "UPDATE notifications SET state = ?2, attempts = ?3, updated_at = ?4, next_at = ?5,
                 result = COALESCE(?6, result) WHERE id = ?1",
            params![
                c.id,
                c.state,
                c.attempts,
                c.at,
                c.next_at,
                c.attempt.as_ref().map(|a| a.result.clone())
            ],
        )
        .map_err(&err)?;
        if let Some(a) = &c.attempt {
            tx.execute(
                "INSERT OR REPLACE INTO notification_attempts
                     (id, attempt, at, call_id, result, status, message_after, seconds)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    a.id,
                    a.attempt,
                    a.at,
                    a.call_id,
                    a.result,
                    a.status,
                    a.message_after,
                    a.seconds
                ],
            )
            .map_err(&err)?;
        }
        tx.commit().map_err(&err)
    }

    /// One notification.
    pub fn notification(&self, id: &str) -> Result<Option<NotificationRow>> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM notifications WHERE id = ?1"),
                params![id],
                row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The newest notifications first, at most `limit`.
    pub fn notifications(&self, limit: u32) -> Result<Vec<NotificationRow>> {
        self.select_notifications("ORDER BY created_at DESC, id LIMIT ?1", params![limit])
    }

    /// Notifications not yet delivered or failed (to schedule at start; an
    /// attempt cut by a restart counts as made).
    pub fn open_notifications(&self) -> Result<Vec<NotificationRow>> {
        self.select_notifications(
            "WHERE state IN ('pending', 'calling') ORDER BY created_at, id",
            params![],
        )
    }

    fn select_notifications(
        &self,
        rest: &str,
        p: impl rusqlite::Params,
    ) -> Result<Vec<NotificationRow>> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM notifications {rest}"))
            .map_err(|e| self.err(e))?;
        let rows = st.query_map(p, row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// A notification's attempts, in order.
    pub fn notification_attempts(&self, id: &str) -> Result<Vec<AttemptRow>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, attempt, at, call_id, result, status, message_after, seconds
                 FROM notification_attempts WHERE id = ?1 ORDER BY attempt",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![id], |r| {
                Ok(AttemptRow {
                    id: r.get(0)?,
                    attempt: r.get(1)?,
                    at: r.get(2)?,
                    call_id: r.get(3)?,
                    result: r.get(4)?,
                    status: r.get(5)?,
                    message_after: r.get(6)?,
                    seconds: r.get(7)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_row(id: &str) -> NotificationRow {
        NotificationRow {
            id: id.into(),
            number: "0501234567".into(),
            flow: "notify_status".into(),
            vars: BTreeMap::from([("status".into(), "approved".into())]),
            language: Some("ar".into()),
            trunk: "carrier".into(),
            state: "pending".into(),
            attempts: 0,
            created_at: 100,
            updated_at: 100,
            next_at: Some(100),
            result: None,
        }
    }

    #[test]
    fn a_notification_keeps_its_state_and_every_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open_dir(dir.path()).unwrap();
        assert!(s.add_notifications(&[new_row("a")]).unwrap());
        // One id taken: none of the list is stored.
        assert!(!s.add_notifications(&[new_row("c"), new_row("a")]).unwrap());
        assert!(s.notification("c").unwrap().is_none());
        assert!(s.add_notifications(&[new_row("b")]).unwrap());
        let attempt = |n: u32, result: &str| AttemptRow {
            id: "a".into(),
            attempt: n,
            at: 200 + n as i64,
            call_id: format!("c{n}"),
            result: result.into(),
            status: None,
            message_after: None,
            seconds: 0.0,
        };
        s.change_notification(&NotificationChange {
            id: "a".into(),
            state: "pending".into(),
            attempts: 1,
            at: 201,
            next_at: Some(501),
            attempt: Some(attempt(1, "busy")),
        })
        .unwrap();
        s.change_notification(&NotificationChange {
            id: "a".into(),
            state: "calling".into(),
            attempts: 2,
            at: 501,
            next_at: None,
            attempt: None,
        })
        .unwrap();
        let a = s.notification("a").unwrap().unwrap();
        assert_eq!(
            (a.state.as_str(), a.attempts, a.result.as_deref()),
            ("calling", 2, Some("busy"))
        );
        assert_eq!(a.vars.get("status").map(String::as_str), Some("approved"));
        let open: Vec<String> = s
            .open_notifications()
            .unwrap()
            .into_iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(open, ["a", "b"]);
        let mut done = attempt(2, "machine");
        done.message_after = Some(6.5);
        s.change_notification(&NotificationChange {
            id: "a".into(),
            state: "delivered".into(),
            attempts: 2,
            at: 520,
            next_at: None,
            attempt: Some(done),
        })
        .unwrap();
        let tried: Vec<String> = s
            .notification_attempts("a")
            .unwrap()
            .into_iter()
            .map(|a| a.result)
            .collect();
        assert_eq!(tried, ["busy", "machine"]);
        let open: Vec<String> = s
            .open_notifications()
            .unwrap()
            .into_iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(open, ["b"]);
        assert_eq!(s.notifications(10).unwrap().len(), 2);
        assert!(s.notification("zz").unwrap().is_none());
    }
}
