//! The rows nida keeps: call records (with their survey result),
//! call-backs (their current state and every change) and agents; how they
//! are written and read back.

use crate::{Result, Store};
use rusqlite::{params, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One call, written when it ends: a call that ran the IVR or queued for
/// an agent (every caller's call does).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Row id (0 before it is written).
    #[serde(default)]
    pub id: i64,
    /// SIP Call-ID of the caller's leg.
    pub call_id: String,
    /// The caller's number.
    pub caller: String,
    /// The number dialled.
    pub called: String,
    /// When it joined the queue (Unix seconds).
    pub queued_at: Option<i64>,
    /// When it ended (Unix seconds).
    pub ended_at: i64,
    /// The queue.
    pub queue: String,
    /// The caller's language.
    pub language: String,
    /// `answered`, `abandoned`, `transferred`, `callback_failed`, ...
    pub outcome: String,
    /// The agent who took it.
    pub agent: Option<u32>,
    /// Seconds from queueing to answer.
    pub wait_seconds: Option<f64>,
    /// Seconds with the agent.
    pub talk_seconds: Option<f64>,
    /// The queue's service-level threshold when the call came.
    pub service_level_seconds: u32,
    /// The caller's rating of the agent, 1 to 5.
    pub rating: Option<u8>,
    /// The recording's file.
    pub recording: Option<String>,
    /// Whether it was a call-back.
    pub callback: bool,
    /// Tries to call the caller back.
    pub callback_attempts: Option<u32>,
    /// The IVR nodes before the queue.
    pub path: Vec<String>,
    /// Variables collected in the IVR.
    pub vars: BTreeMap<String, String>,
    /// Transfers by the agent (queue names or numbers).
    pub transfers: Vec<String>,
    /// The media quality of each leg, as RTP and RTCP measured it.
    #[serde(default)]
    pub media: Vec<LegQuality>,
    /// Seconds the caller spent on hold while talking to an agent.
    #[serde(default)]
    pub hold_seconds: f64,
    /// Times the caller was put on hold.
    #[serde(default)]
    pub holds: u32,
    /// Supervisors who listened in, whispered or barged, and when.
    #[serde(default)]
    pub listens: Vec<ListenIn>,
    /// When the call was answered (Unix seconds).
    #[serde(default)]
    pub started_at: Option<i64>,
    /// The caller's way through the IVR and how it ended there.
    #[serde(default)]
    pub ivr: Option<IvrTrail>,
    /// The agent's wrap-up codes (dispositions) for the call.
    #[serde(default)]
    pub wrapup: Vec<String>,
    /// The voice message the caller left.
    #[serde(default)]
    pub voicemail: Option<VoicemailLeft>,
}

/// A voice message left in a call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VoicemailLeft {
    /// The WAV file.
    pub file: String,
    /// Its length in seconds.
    pub seconds: f64,
    /// The queue it is for.
    pub queue: String,
    /// The caller's number as a trusted trunk asserted it: the only one
    /// a call-back from the message may dial.
    #[serde(default)]
    pub number: Option<String>,
}

/// A voice message as agents list and handle it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VoicemailRow {
    /// Row id.
    pub id: i64,
    /// The call it was left in.
    pub call_id: String,
    /// The caller's number.
    pub caller: String,
    /// The number they dialled.
    pub called: String,
    /// The caller's language.
    pub language: String,
    /// The queue it is for.
    pub queue: String,
    /// The IVR's variables (an application number, ...).
    pub vars: BTreeMap<String, String>,
    /// The WAV file.
    pub file: String,
    /// Its length in seconds.
    pub seconds: f64,
    /// When it was left (Unix seconds).
    pub at: i64,
    /// The agent who marked it handled.
    pub handled_by: Option<u32>,
    /// When.
    pub handled_at: Option<i64>,
    /// Whether a call-back was asked from it.
    pub callback: bool,
    /// The number a call-back may dial (proven by a trusted trunk).
    pub number: Option<String>,
}

/// An agent's wrap-up codes for one call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wrapup {
    /// The call (SIP Call-ID of the caller's leg).
    pub call_id: String,
    /// The agent.
    pub agent: u32,
    /// The queue the call came through.
    pub queue: String,
    /// The codes chosen.
    pub codes: Vec<String>,
    /// When (Unix seconds).
    pub at: i64,
}

/// How often one code was given by one agent in one queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrapupCount {
    /// The agent.
    pub agent: u32,
    /// The queue.
    pub queue: String,
    /// The code.
    pub code: String,
    /// Times given.
    pub count: u64,
}

/// How a call's time in the IVR ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IvrEnd {
    /// The flow ended the call itself: the caller was served by the IVR.
    #[default]
    SelfServed,
    /// The caller asked for an agent (a queue or a call-back).
    Queued,
    /// The caller hung up in the flow (in a menu, a prompt, a lookup).
    CallerHungUp,
    /// The flow failed at run time.
    Error,
    /// The caller left a voicemail.
    Voicemail,
}

impl IvrEnd {
    /// As stored and counted.
    pub fn as_str(self) -> &'static str {
        match self {
            IvrEnd::SelfServed => "self_served",
            IvrEnd::Queued => "queued",
            IvrEnd::CallerHungUp => "caller_hung_up",
            IvrEnd::Error => "error",
            IvrEnd::Voicemail => "voicemail",
        }
    }

    /// Whether the call stayed in the IVR (contained): no agent was asked
    /// for, in line or by a voice message an agent has to answer.
    pub fn contained(self) -> bool {
        matches!(
            self,
            IvrEnd::SelfServed | IvrEnd::CallerHungUp | IvrEnd::Error
        )
    }
}

/// How a lookup went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LookupServed {
    /// The record was found.
    Found,
    /// No such record.
    NotFound,
    /// The backend failed or timed out.
    Failed,
}

impl LookupServed {
    /// As stored and counted.
    pub fn as_str(self) -> &'static str {
        match self {
            LookupServed::Found => "found",
            LookupServed::NotFound => "not_found",
            LookupServed::Failed => "failed",
        }
    }
}

/// A menu key on the caller's way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IvrChoice {
    /// `flow/node` of the menu.
    pub node: String,
    /// The key.
    pub digit: String,
}

/// A lookup on the caller's way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IvrLookup {
    /// `flow/node` of the lookup.
    pub node: String,
    /// The backend.
    pub service: String,
    /// How it went.
    pub result: LookupServed,
}

/// A call's time in the IVR.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IvrTrail {
    /// The first flow run.
    pub flow: String,
    /// How it ended.
    pub end: IvrEnd,
    /// `flow/node` where the caller left the IVR.
    pub exit: String,
    /// Seconds in the IVR.
    pub seconds: f64,
    /// Menu keys, in order.
    #[serde(default)]
    pub choices: Vec<IvrChoice>,
    /// Lookups, in order.
    #[serde(default)]
    pub lookups: Vec<IvrLookup>,
}

/// A supervisor joining a call (or changing mode in it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenIn {
    /// The supervisor's user name.
    pub supervisor: String,
    /// When (Unix seconds).
    pub at: i64,
    /// `listen`, `whisper`, `barge` or `take_over`.
    pub mode: String,
}

/// One leg's media quality in a call record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LegQuality {
    /// Who was on it: `caller`, `agent`, `callback`, `transfer`.
    pub role: String,
    /// Packets lost on the way to nida.
    pub lost: u64,
    /// Share of the peer's packets lost on the way to nida.
    pub loss: f64,
    /// Interarrival jitter of what nida received, in ms.
    pub jitter_ms: f64,
    /// Share of nida's packets the peer reported lost (RTCP).
    pub peer_loss: Option<f64>,
    /// Round-trip time in ms (RTCP).
    pub rtt_ms: Option<f64>,
    /// The E-model's R factor.
    pub r_factor: f64,
    /// The estimated mean opinion score (1 to 4.5).
    pub mos: f64,
}

impl CallRecord {
    /// Whether a rating this low is flagged for review.
    pub fn low_rating(&self) -> bool {
        self.rating.is_some_and(|r| r <= 2)
    }
}

/// A call-back: the citizen asked to be called when their turn comes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallbackRow {
    /// Call-ID of the call that asked.
    pub call_id: String,
    /// The number to call.
    pub number: String,
    /// Where their call came from (`IP:port`), dialled when no outbound
    /// route is set.
    pub source: String,
    /// The number they dialled (shown as the caller of the call-back).
    pub called: String,
    /// The queue.
    pub queue: String,
    /// Their language.
    pub language: String,
    /// The call's priority.
    pub priority: u8,
    /// Skills asked, by name and minimum level.
    pub skills: BTreeMap<String, u8>,
    /// IVR variables.
    pub vars: BTreeMap<String, String>,
    /// The IVR path.
    pub path: Vec<String>,
    /// `requested`, `not_answered`, `answered`, `failed`, `refused`.
    pub status: String,
    /// Tries so far.
    pub attempts: u32,
    /// When it was asked (Unix seconds).
    pub requested_at: i64,
    /// When the status last changed.
    pub updated_at: i64,
    /// For a call-back at a time the caller chose: the start of the slot
    /// (Unix seconds), as they heard it.
    #[serde(default)]
    pub slot_at: Option<i64>,
    /// And when it is made: the slot's start, or later in its hour.
    #[serde(default)]
    pub due_at: Option<i64>,
}

impl CallbackRow {
    /// Still to be done (asked, or tried and to be tried again).
    pub fn pending(&self) -> bool {
        matches!(self.status.as_str(), "requested" | "not_answered")
    }
}

/// An agent kept in the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentRow {
    /// Agent id.
    pub id: u32,
    /// SIP user.
    pub user: String,
    /// Display name.
    pub name: String,
    /// Digest password in clear: only in rows stored before HA1s were
    /// (empty otherwise); the daemon hashes it at start.
    pub password: String,
    /// The digest secret as HA1s, for the realm they were made for.
    pub ha1: Option<AgentHa1>,
    /// Skills and levels.
    pub skills: BTreeMap<String, u8>,
    /// Languages.
    pub languages: Vec<String>,
    /// Fixed contact URI.
    pub contact: Option<String>,
    /// Ready as soon as the phone registers.
    pub ready_on_register: bool,
}

/// A supervisor kept in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisorRow {
    /// SIP user.
    pub user: String,
    /// Display name.
    pub name: String,
    /// The digest secret as HA1s.
    pub ha1: AgentHa1,
    /// Fixed contact URI.
    pub contact: Option<String>,
    /// Queues whose calls they may join (`*`: all).
    pub queues: Vec<String>,
    /// Only these agents' calls, when given.
    pub agents: Option<Vec<u32>>,
}

/// An agent's digest secret without the password: `H(user:realm:password)`
/// with MD5 and with SHA-256, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentHa1 {
    /// The realm they were computed for (another realm needs the
    /// password again).
    pub realm: String,
    /// With MD5.
    pub md5: String,
    /// With SHA-256.
    pub sha256: String,
}

/// Which records to read.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Queued (or ended, for calls never queued) at or after (Unix seconds).
    pub from: Option<i64>,
    /// Before (Unix seconds).
    pub to: Option<i64>,
    /// Only this queue.
    pub queue: Option<String>,
    /// At most this many, newest first (all, oldest first, when `None`).
    pub limit: Option<u32>,
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn parse<T: for<'a> Deserialize<'a> + Default>(s: String) -> T {
    serde_json::from_str(&s).unwrap_or_default()
}

const CALL_COLUMNS: &str = "id, call_id, caller, called, queued_at, ended_at, queue, language, \
    outcome, agent, wait_seconds, talk_seconds, service_level_seconds, rating, recording, \
    callback, callback_attempts, path, vars, transfers, media, hold_seconds, holds, listens, \
    started_at, ivr, voicemail";

/// The columns read back: the record's, then its wrap-up codes.
const CALL_READ: &str =
    "calls.id, calls.call_id, caller, called, queued_at, ended_at, calls.queue, \
    language, outcome, calls.agent, wait_seconds, talk_seconds, service_level_seconds, rating, \
    recording, callback, callback_attempts, path, vars, transfers, media, hold_seconds, holds, \
    listens, started_at, ivr, voicemail, \
    (SELECT json_group_array(code) FROM (SELECT code FROM wrapups w \
     WHERE w.call_id = calls.call_id ORDER BY w.id))";

fn call_row(r: &Row) -> rusqlite::Result<CallRecord> {
    Ok(CallRecord {
        id: r.get(0)?,
        call_id: r.get(1)?,
        caller: r.get(2)?,
        called: r.get(3)?,
        queued_at: r.get(4)?,
        ended_at: r.get(5)?,
        queue: r.get(6)?,
        language: r.get(7)?,
        outcome: r.get(8)?,
        agent: r.get(9)?,
        wait_seconds: r.get(10)?,
        talk_seconds: r.get(11)?,
        service_level_seconds: r.get(12)?,
        rating: r.get(13)?,
        recording: r.get(14)?,
        callback: r.get(15)?,
        callback_attempts: r.get(16)?,
        path: parse(r.get(17)?),
        vars: parse(r.get(18)?),
        transfers: parse(r.get(19)?),
        media: r
            .get::<_, Option<String>>(20)?
            .map(parse)
            .unwrap_or_default(),
        hold_seconds: r.get::<_, Option<f64>>(21)?.unwrap_or_default(),
        holds: r.get::<_, Option<u32>>(22)?.unwrap_or_default(),
        listens: r
            .get::<_, Option<String>>(23)?
            .map(parse)
            .unwrap_or_default(),
        started_at: r.get(24)?,
        ivr: r
            .get::<_, Option<String>>(25)?
            .and_then(|s| serde_json::from_str(&s).ok()),
        voicemail: r
            .get::<_, Option<String>>(26)?
            .and_then(|s| serde_json::from_str(&s).ok()),
        wrapup: r
            .get::<_, Option<String>>(27)?
            .map(parse)
            .unwrap_or_default(),
    })
}

/// The columns [`voicemail_row`] reads, in its order.
const VOICEMAIL_COLUMNS: &str = "id, call_id, caller, called, language, queue, vars, file, \
    seconds, at, handled_by, handled_at, callback, number";

fn voicemail_row(r: &Row) -> rusqlite::Result<VoicemailRow> {
    Ok(VoicemailRow {
        id: r.get(0)?,
        call_id: r.get(1)?,
        caller: r.get(2)?,
        called: r.get(3)?,
        language: r.get(4)?,
        queue: r.get(5)?,
        vars: parse(r.get(6)?),
        file: r.get(7)?,
        seconds: r.get(8)?,
        at: r.get(9)?,
        handled_by: r.get(10)?,
        handled_at: r.get(11)?,
        callback: r.get(12)?,
        number: r.get(13)?,
    })
}

const CALLBACK_COLUMNS: &str = "call_id, number, source, called, queue, language, priority, \
    skills, vars, path, status, attempts, requested_at, updated_at, slot_at, due_at";

fn callback_row(r: &Row) -> rusqlite::Result<CallbackRow> {
    Ok(CallbackRow {
        call_id: r.get(0)?,
        number: r.get(1)?,
        source: r.get(2)?,
        called: r.get(3)?,
        queue: r.get(4)?,
        language: r.get(5)?,
        priority: r.get(6)?,
        skills: parse(r.get(7)?),
        vars: parse(r.get(8)?),
        path: parse(r.get(9)?),
        status: r.get(10)?,
        attempts: r.get(11)?,
        requested_at: r.get(12)?,
        updated_at: r.get(13)?,
        slot_at: r.get(14)?,
        due_at: r.get(15)?,
    })
}

/// A call nida placed to a number (a call-back, a transfer), or was
/// refused to place: the audit trail of the outbound policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundRow {
    /// Unix seconds.
    pub at: i64,
    /// The call it was for.
    pub call_id: String,
    /// `callback` or `transfer`.
    pub purpose: String,
    /// The number, in nida's format.
    pub number: String,
    /// `allowed`, or why not (`not_allowed`, `hourly_cap`, `number_cap`).
    pub verdict: String,
}

impl Store {
    /// Writes a call record, and its survey result when the caller rated;
    /// returns the record's id. On disk when it returns.
    pub fn insert_call(&mut self, c: &CallRecord) -> Result<i64> {
        let err = self.err_fn();
        let tx = self.conn.transaction().map_err(&err)?;
        tx.execute(
            &format!(
                "INSERT INTO calls ({}) VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
                 ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)",
                CALL_COLUMNS
            ),
            params![
                c.call_id,
                c.caller,
                c.called,
                c.queued_at,
                c.ended_at,
                c.queue,
                c.language,
                c.outcome,
                c.agent,
                c.wait_seconds,
                c.talk_seconds,
                c.service_level_seconds,
                c.rating,
                c.recording,
                c.callback,
                c.callback_attempts,
                json(&c.path),
                json(&c.vars),
                json(&c.transfers),
                json(&c.media),
                c.hold_seconds,
                c.holds,
                json(&c.listens),
                c.started_at,
                c.ivr.as_ref().map(json),
                c.voicemail.as_ref().map(json),
            ],
        )
        .map_err(&err)?;
        let id = tx.last_insert_rowid();
        if let Some(v) = &c.voicemail {
            tx.execute(
                "INSERT OR IGNORE INTO voicemails
                 (call_id, caller, called, language, queue, vars, file, seconds, at, number)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    c.call_id,
                    c.caller,
                    c.called,
                    c.language,
                    v.queue,
                    json(&c.vars),
                    v.file,
                    v.seconds,
                    c.ended_at,
                    v.number
                ],
            )
            .map_err(&err)?;
        }
        if let Some(rating) = c.rating {
            tx.execute(
                "INSERT INTO surveys (call, agent, queue, rating, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, c.agent, c.queue, rating, c.ended_at],
            )
            .map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(id)
    }

    /// Keeps an agent's wrap-up codes for a call (a code given twice is
    /// kept once); the call's record shows them whether it was written
    /// before or after. On disk when it returns.
    pub fn add_wrapup(&mut self, w: &Wrapup) -> Result<()> {
        let err = self.err_fn();
        let tx = self.conn.transaction().map_err(&err)?;
        for code in &w.codes {
            tx.execute(
                "INSERT OR IGNORE INTO wrapups (call_id, agent, queue, code, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![w.call_id, w.agent, w.queue, code, w.at],
            )
            .map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(())
    }

    /// How often each wrap-up code was given, per agent and queue, from
    /// `from` (inclusive) to `to` (exclusive), Unix seconds.
    pub fn wrapup_counts(&self, from: i64, to: i64) -> Result<Vec<WrapupCount>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT agent, queue, code, COUNT(*) FROM wrapups WHERE at >= ?1 AND at < ?2
                 GROUP BY agent, queue, code ORDER BY queue, code, agent",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![from, to], |r| {
                Ok(WrapupCount {
                    agent: r.get(0)?,
                    queue: r.get(1)?,
                    code: r.get(2)?,
                    count: r.get::<_, i64>(3)?.max(0) as u64,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Voice messages, newest first: only those not handled yet when
    /// `open_only`; of `queues` when given; at most `limit`.
    pub fn voicemails(
        &self,
        open_only: bool,
        queues: Option<&[String]>,
        limit: u32,
    ) -> Result<Vec<VoicemailRow>> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {VOICEMAIL_COLUMNS} FROM voicemails
                     WHERE (?1 = 0 OR handled_at IS NULL) ORDER BY at DESC, id DESC"
            ))
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![open_only], voicemail_row)
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for r in rows {
            let r = r.map_err(|e| self.err(e))?;
            if queues.is_none_or(|q| q.contains(&r.queue)) {
                out.push(r);
                if out.len() >= limit as usize {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// One voice message.
    pub fn voicemail(&self, id: i64) -> Result<Option<VoicemailRow>> {
        self.conn
            .query_row(
                &format!("SELECT {VOICEMAIL_COLUMNS} FROM voicemails WHERE id = ?1"),
                params![id],
                voicemail_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Marks a voice message handled by `agent` (and whether a call-back
    /// was asked from it); false when there is no such message. On disk
    /// when it returns.
    pub fn handle_voicemail(
        &mut self,
        id: i64,
        agent: u32,
        at: i64,
        callback: bool,
    ) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "UPDATE voicemails SET handled_by = ?2, handled_at = ?3,
                 callback = MAX(callback, ?4) WHERE id = ?1",
                params![id, agent, at, callback],
            )
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// Voice message files left before `before` (Unix seconds), for the
    /// retention sweep, with their rows removed.
    pub fn expire_voicemails(&mut self, before: i64) -> Result<Vec<String>> {
        let files: Vec<String> = {
            let mut st = self
                .conn
                .prepare("SELECT file FROM voicemails WHERE at < ?1")
                .map_err(|e| self.err(e))?;
            let rows = st
                .query_map(params![before], |r| r.get(0))
                .map_err(|e| self.err(e))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(|e| self.err(e))?
        };
        self.conn
            .execute("DELETE FROM voicemails WHERE at < ?1", params![before])
            .map_err(|e| self.err(e))?;
        Ok(files)
    }

    /// Call records matching `q`.
    pub fn calls(&self, q: &Query) -> Result<Vec<CallRecord>> {
        let order = if q.limit.is_some() { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {CALL_READ} FROM calls
             WHERE (?1 IS NULL OR COALESCE(queued_at, ended_at) >= ?1)
               AND (?2 IS NULL OR COALESCE(queued_at, ended_at) < ?2)
               AND (?3 IS NULL OR queue = ?3)
             ORDER BY id {order} LIMIT COALESCE(?4, -1)"
        );
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![q.from, q.to, q.queue, q.limit], call_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Records a call-back's state (a new one, or a change), with the
    /// change in its history. On disk when it returns.
    pub fn put_callback(&mut self, c: &CallbackRow) -> Result<()> {
        let err = self.err_fn();
        let tx = self.conn.transaction().map_err(&err)?;
        tx.execute(
            &format!(
                "INSERT INTO callbacks ({CALLBACK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, \
                 ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
                 ON CONFLICT(call_id) DO UPDATE SET status = excluded.status,
                   attempts = excluded.attempts, updated_at = excluded.updated_at,
                   priority = excluded.priority"
            ),
            params![
                c.call_id,
                c.number,
                c.source,
                c.called,
                c.queue,
                c.language,
                c.priority,
                json(&c.skills),
                json(&c.vars),
                json(&c.path),
                c.status,
                c.attempts,
                c.requested_at,
                c.updated_at,
                c.slot_at,
                c.due_at,
            ],
        )
        .map_err(&err)?;
        tx.execute(
            "INSERT INTO callback_events (call_id, status, attempts, at) VALUES (?1, ?2, ?3, ?4)",
            params![c.call_id, c.status, c.attempts, c.updated_at],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// Records a call nida placed, or was refused to place, to a number.
    pub fn insert_outbound(&mut self, o: &OutboundRow) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO outbound_calls (at, call_id, purpose, number, verdict) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![o.at, o.call_id, o.purpose, o.number, o.verdict],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The calls out to numbers, oldest first.
    pub fn outbound_calls(&self) -> Result<Vec<OutboundRow>> {
        let mut st = self
            .conn
            .prepare("SELECT at, call_id, purpose, number, verdict FROM outbound_calls ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(OutboundRow {
                    at: r.get(0)?,
                    call_id: r.get(1)?,
                    purpose: r.get(2)?,
                    number: r.get(3)?,
                    verdict: r.get(4)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Call-backs, oldest request first; only the pending ones when
    /// `pending_only`.
    pub fn callbacks(&self, pending_only: bool) -> Result<Vec<CallbackRow>> {
        let filter = if pending_only {
            "WHERE status IN ('requested', 'not_answered')"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {CALLBACK_COLUMNS} FROM callbacks {filter} ORDER BY requested_at, rowid"
        );
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = st.query_map([], callback_row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// One call-back's history: (status, attempts, at), oldest first.
    pub fn callback_history(&self, call_id: &str) -> Result<Vec<(String, u32, i64)>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT status, attempts, at FROM callback_events WHERE call_id = ?1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([call_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Adds or replaces an agent.
    pub fn put_agent(&mut self, a: &AgentRow) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO agents (id, user, name, password, skills, languages, contact,
                   ready_on_register, realm, ha1_md5, ha1_sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT(id) DO UPDATE SET user = excluded.user, name = excluded.name,
                   password = excluded.password, skills = excluded.skills,
                   languages = excluded.languages, contact = excluded.contact,
                   ready_on_register = excluded.ready_on_register, realm = excluded.realm,
                   ha1_md5 = excluded.ha1_md5, ha1_sha256 = excluded.ha1_sha256",
                params![
                    a.id,
                    a.user,
                    a.name,
                    a.password,
                    json(&a.skills),
                    json(&a.languages),
                    a.contact,
                    a.ready_on_register,
                    a.ha1.as_ref().map(|h| h.realm.as_str()),
                    a.ha1.as_ref().map(|h| h.md5.as_str()),
                    a.ha1.as_ref().map(|h| h.sha256.as_str()),
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Removes an agent; false when there was none.
    pub fn remove_agent(&mut self, id: u32) -> Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM agents WHERE id = ?1", [id])
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// The stored agents, by id.
    pub fn agents(&self) -> Result<Vec<AgentRow>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, user, name, password, skills, languages, contact, ready_on_register,
                   realm, ha1_md5, ha1_sha256
                 FROM agents ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(AgentRow {
                    id: r.get(0)?,
                    user: r.get(1)?,
                    name: r.get(2)?,
                    password: r.get(3)?,
                    skills: parse(r.get(4)?),
                    languages: parse(r.get(5)?),
                    contact: r.get(6)?,
                    ready_on_register: r.get(7)?,
                    ha1: match (r.get(8)?, r.get(9)?, r.get(10)?) {
                        (Some(realm), Some(md5), Some(sha256)) => {
                            Some(AgentHa1 { realm, md5, sha256 })
                        }
                        _ => None,
                    },
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// One agent by id.
    pub fn agent(&self, id: u32) -> Result<Option<AgentRow>> {
        Ok(self.agents()?.into_iter().find(|a| a.id == id))
    }

    /// Adds or replaces a supervisor (by user).
    pub fn put_supervisor(&mut self, s: &SupervisorRow) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO supervisors (user, name, realm, ha1_md5, ha1_sha256, contact, queues, agents)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(user) DO UPDATE SET name = excluded.name, realm = excluded.realm,
                   ha1_md5 = excluded.ha1_md5, ha1_sha256 = excluded.ha1_sha256,
                   contact = excluded.contact, queues = excluded.queues, agents = excluded.agents",
                params![
                    s.user,
                    s.name,
                    s.ha1.realm,
                    s.ha1.md5,
                    s.ha1.sha256,
                    s.contact,
                    json(&s.queues),
                    s.agents.as_ref().map(json),
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Removes a supervisor; false when there was none.
    pub fn remove_supervisor(&mut self, user: &str) -> Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM supervisors WHERE user = ?1", [user])
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// The stored supervisors, by user.
    pub fn supervisors(&self) -> Result<Vec<SupervisorRow>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT user, name, realm, ha1_md5, ha1_sha256, contact, queues, agents
                 FROM supervisors ORDER BY user",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(SupervisorRow {
                    user: r.get(0)?,
                    name: r.get(1)?,
                    ha1: AgentHa1 {
                        realm: r.get(2)?,
                        md5: r.get(3)?,
                        sha256: r.get(4)?,
                    },
                    contact: r.get(5)?,
                    queues: parse(r.get(6)?),
                    agents: r.get::<_, Option<String>>(7)?.map(parse),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Whether a call record with this Call-ID exists.
    pub fn has_call(&self, call_id: &str) -> Result<bool> {
        self.conn
            .query_row("SELECT 1 FROM calls WHERE call_id = ?1", [call_id], |_| {
                Ok(())
            })
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.err(e))
    }
}
