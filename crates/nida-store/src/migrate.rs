//! Schema migrations: an ordered list of SQL scripts. The file's
//! `user_version` is the number of scripts applied; opening a file runs the
//! ones it lacks, each in its own transaction with its version bump, so a
//! crash mid-migration leaves the file at the last complete version.

use rusqlite::Connection;

/// The migrations, oldest first. Never edit one that has shipped: add a
/// new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: call records, survey results, call-backs and their history.
    "CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        call_id TEXT NOT NULL,
        caller TEXT NOT NULL,
        called TEXT NOT NULL,
        queued_at INTEGER,
        ended_at INTEGER NOT NULL,
        queue TEXT NOT NULL,
        language TEXT NOT NULL,
        outcome TEXT NOT NULL,
        agent INTEGER,
        wait_seconds REAL,
        talk_seconds REAL,
        service_level_seconds INTEGER NOT NULL,
        rating INTEGER,
        recording TEXT,
        callback INTEGER NOT NULL DEFAULT 0,
        callback_attempts INTEGER,
        path TEXT NOT NULL DEFAULT '[]',
        vars TEXT NOT NULL DEFAULT '{}',
        transfers TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX calls_by_time ON calls(queued_at);
    CREATE INDEX calls_by_queue ON calls(queue, queued_at);
    CREATE TABLE surveys (
        id INTEGER PRIMARY KEY,
        call INTEGER NOT NULL REFERENCES calls(id),
        agent INTEGER,
        queue TEXT NOT NULL,
        rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
        at INTEGER NOT NULL
    );
    CREATE INDEX surveys_by_agent ON surveys(agent, at);
    CREATE TABLE callbacks (
        call_id TEXT PRIMARY KEY,
        number TEXT NOT NULL,
        source TEXT NOT NULL,
        called TEXT NOT NULL,
        queue TEXT NOT NULL,
        language TEXT NOT NULL,
        priority INTEGER NOT NULL,
        skills TEXT NOT NULL DEFAULT '{}',
        vars TEXT NOT NULL DEFAULT '{}',
        path TEXT NOT NULL DEFAULT '[]',
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        requested_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX callbacks_by_status ON callbacks(status);
    CREATE TABLE callback_events (
        id INTEGER PRIMARY KEY,
        call_id TEXT NOT NULL REFERENCES callbacks(call_id),
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        at INTEGER NOT NULL
    );",
    // 2: agents' credentials and profiles (beside the config's).
    "CREATE TABLE agents (
        id INTEGER PRIMARY KEY,
        user TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        password TEXT NOT NULL,
        skills TEXT NOT NULL DEFAULT '{}',
        languages TEXT NOT NULL DEFAULT '[]',
        contact TEXT,
        ready_on_register INTEGER NOT NULL DEFAULT 1
    );",
    // 3: every call nida placed to a number, and the policy's verdict.
    "CREATE TABLE outbound_calls (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        call_id TEXT NOT NULL,
        purpose TEXT NOT NULL,
        number TEXT NOT NULL,
        verdict TEXT NOT NULL
    );
    CREATE INDEX outbound_calls_by_time ON outbound_calls(at);",
    // 4: agents' digest secrets as HA1 (MD5 and SHA-256) for their realm;
    // `password` stays empty for them (rows of version 2 keep theirs until
    // the daemon hashes them at start).
    "ALTER TABLE agents ADD COLUMN realm TEXT;
    ALTER TABLE agents ADD COLUMN ha1_md5 TEXT;
    ALTER TABLE agents ADD COLUMN ha1_sha256 TEXT;",
    // 5: each leg's media quality (loss, jitter, round trip, MOS) as JSON.
    "ALTER TABLE calls ADD COLUMN media TEXT;",
    // 6: time the caller spent on hold, how often, and supervisors'
    // listen-ins (JSON).
    "ALTER TABLE calls ADD COLUMN hold_seconds REAL;
    ALTER TABLE calls ADD COLUMN holds INTEGER;
    ALTER TABLE calls ADD COLUMN listens TEXT;",
    // 7: supervisors kept in the store (beside the config's), their
    // digest secrets as HA1s only.
    "CREATE TABLE supervisors (
        user TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        realm TEXT NOT NULL,
        ha1_md5 TEXT NOT NULL,
        ha1_sha256 TEXT NOT NULL,
        contact TEXT,
        queues TEXT NOT NULL,
        agents TEXT
    );",
    // 8: every call has a record: when it was answered and its way
    // through the IVR (JSON); the agents' wrap-up codes, given during or
    // after the call (before or after its record is written).
    "ALTER TABLE calls ADD COLUMN started_at INTEGER;
    ALTER TABLE calls ADD COLUMN ivr TEXT;
    CREATE TABLE wrapups (
        id INTEGER PRIMARY KEY,
        call_id TEXT NOT NULL,
        agent INTEGER NOT NULL,
        queue TEXT NOT NULL,
        code TEXT NOT NULL,
        at INTEGER NOT NULL,
        UNIQUE (call_id, code)
    );
    CREATE INDEX wrapups_by_agent ON wrapups(agent, at);
    ALTER TABLE calls ADD COLUMN voicemail TEXT;
    CREATE TABLE voicemails (
        id INTEGER PRIMARY KEY,
        call_id TEXT NOT NULL UNIQUE,
        caller TEXT NOT NULL,
        called TEXT NOT NULL,
        language TEXT NOT NULL,
        queue TEXT NOT NULL,
        vars TEXT NOT NULL DEFAULT '{}',
        file TEXT NOT NULL,
        seconds REAL NOT NULL,
        at INTEGER NOT NULL,
        handled_by INTEGER,
        handled_at INTEGER,
        callback INTEGER NOT NULL DEFAULT 0,
        number TEXT
    );
    CREATE INDEX voicemails_by_queue ON voicemails(queue, handled_at, at);",
    // 9: status notification calls and each of their attempts.
    "CREATE TABLE notifications (
        id TEXT PRIMARY KEY,
        number TEXT NOT NULL,
        flow TEXT NOT NULL,
        vars TEXT NOT NULL,
        language TEXT,
        trunk TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        next_at INTEGER,
        result TEXT
    );
    CREATE INDEX notifications_by_state ON notifications(state, next_at);
    CREATE TABLE notification_attempts (
        id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        at INTEGER NOT NULL,
        call_id TEXT NOT NULL,
        result TEXT NOT NULL,
        status INTEGER,
        message_after REAL,
        seconds REAL NOT NULL,
        UNIQUE(id, attempt)
    );",
    // 10: call-backs at a time the caller chose: the slot and when.
    "ALTER TABLE callbacks ADD COLUMN slot_at INTEGER;
    ALTER TABLE callbacks ADD COLUMN due_at INTEGER;",
];

/// The newest schema version.
pub const LATEST: u32 = MIGRATIONS.len() as u32;

/// The file's schema version.
pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// Applies the migrations the file lacks; returns how many ran.
pub fn run(conn: &mut Connection) -> rusqlite::Result<usize> {
    run_to(conn, LATEST)
}

/// Applies the migrations up to version `target` (tests use it to build
/// an old file).
pub fn run_to(conn: &mut Connection, target: u32) -> rusqlite::Result<usize> {
    // Each step takes the write lock first and reads the version under it,
    // so two processes opening a new file at once (the daemon and
    // `nida agent`, say) never run the same step twice.
    let mut ran = 0;
    for (i, sql) in MIGRATIONS.iter().enumerate().take(target as usize) {
        let v = i as u32 + 1;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if version(&tx)? >= v {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", v)?;
        tx.commit()?;
        ran += 1;
    }
    Ok(ran)
}
