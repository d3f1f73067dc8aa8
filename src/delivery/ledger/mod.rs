//! The delivery ledger: one SQLite row per nudge, so that nothing is sent twice or lost.
//!
//! # Delivery guarantee
//!
//! **At-least-once, never a silent loss.** Before the SMTP transaction starts, the caller
//! [`reserve`](Ledger::reserve)s the nudges the email covers: their rows are committed with
//! status `pending` and the email's Message-ID. Only after the server has answered is the row
//! updated ([`mark_sent`](Ledger::mark_sent), [`mark_retrying`](Ledger::mark_retrying),
//! [`mark_failed`](Ledger::mark_failed)), again in a committed, fsync'd transaction.
//!
//! A crash (or power loss) between the two leaves the row `pending`. On restart
//! [`unfinished`](Ledger::unfinished) returns it, and the daemon sends that email again **with
//! the same Message-ID**, so a receiving server or mail client can recognise the duplicate.
//! Reserving the same key again keeps the stored Message-ID for the same reason. A nudge is
//! therefore either recorded as delivered, recorded as failed or skipped (with the reason), or
//! still in flight and re-sent at the next start — it is never forgotten.
//!
//! The daemon batches both writes to save fsyncs: [`reserve_many`](Ledger::reserve_many)
//! reserves the next few dozen emails in one transaction (each is still committed `pending`
//! before it goes out), and [`finish_many`](Ledger::finish_many) records up to 64 outcomes in
//! one. A crash can therefore leave up to one batch of rows `pending` whose emails the server
//! already accepted (or that were reserved but never sent); all of them are re-sent, each
//! with its stored Message-ID, at the next start. Nothing is lost; a duplicate is recognisable.
//!
//! All times are passed in by the caller (`now`); the ledger never reads the clock. In the
//! database they are unix seconds, UTC.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::{Type, Value};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// Schema migrations, applied in order. `PRAGMA user_version` holds how many have run.
/// Never edit an entry that has shipped: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the deliveries table and the indexes `log` and the scheduler need.
    r#"
    CREATE TABLE deliveries (
        id              INTEGER PRIMARY KEY,
        task            TEXT    NOT NULL,
        occurrence      TEXT    NOT NULL,
        office          TEXT    NOT NULL,
        kind            TEXT    NOT NULL,
        role            TEXT    NOT NULL,
        due_at          INTEGER NOT NULL,
        late            INTEGER NOT NULL CHECK (late IN (0, 1)),
        recipients      TEXT    NOT NULL,
        message_id      TEXT    NOT NULL,
        status          TEXT    NOT NULL
                        CHECK (status IN ('pending', 'sent', 'retrying', 'failed', 'skipped')),
        reply           TEXT,
        attempts        INTEGER NOT NULL DEFAULT 0,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL,
        sent_at         INTEGER,
        next_attempt_at INTEGER,
        UNIQUE (task, occurrence, office, kind)
    ) STRICT;
    CREATE INDEX deliveries_office_due ON deliveries (office, due_at);
    CREATE INDEX deliveries_due ON deliveries (due_at);
    CREATE INDEX deliveries_task_due ON deliveries (task, due_at);
    CREATE INDEX deliveries_message ON deliveries (message_id);
    CREATE INDEX deliveries_status_due ON deliveries (status, due_at);
    "#,
];

const SQL_SENT: &str = "UPDATE deliveries SET status = 'sent', reply = ?2, attempts = attempts + 1, \
     sent_at = ?3, next_attempt_at = NULL, updated_at = ?3 \
     WHERE message_id = ?1 AND status IN ('pending', 'retrying')";

const SQL_RETRYING: &str = "UPDATE deliveries SET status = 'retrying', reply = ?2, attempts = attempts + 1, \
     next_attempt_at = ?3, updated_at = ?4 \
     WHERE message_id = ?1 AND status IN ('pending', 'retrying')";

const SQL_FAILED: &str = "UPDATE deliveries SET status = 'failed', reply = ?2, attempts = attempts + 1, \
     next_attempt_at = NULL, updated_at = ?3 \
     WHERE message_id = ?1 AND status IN ('pending', 'retrying')";

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const COLUMNS: &str = "id, task, occurrence, office, kind, role, due_at, late, recipients, \
     message_id, status, reply, attempts, created_at, updated_at, sent_at, next_attempt_at";

/// What identifies one nudge: this task's deadline occurrence, for this office, of this
/// kind. The planner defines it; the ledger's unique constraint enforces it.
pub use crate::plan::planner::NudgeKey as DeliveryKey;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Reserved; the SMTP transaction is (or was, at a crash) in flight.
    Pending,
    /// The server accepted the message.
    Sent,
    /// The last attempt failed temporarily; another is due at `next_attempt_at`.
    Retrying,
    /// Given up: a permanent error or too many attempts.
    Failed,
    /// Deliberately not sent (superseded by a later nudge after downtime).
    Skipped,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Sent,
        Status::Retrying,
        Status::Failed,
        Status::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sent => "sent",
            Status::Retrying => "retrying",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }

    /// Sent, failed and skipped are final: no further email goes out for the key.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Sent | Status::Failed | Status::Skipped)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of `pending`, `sent`, `retrying`, `failed`, `skipped`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown delivery status {0:?}; expected one of pending, sent, retrying, failed, skipped")]
pub struct ParseStatusError(pub String);

impl FromStr for Status {
    type Err = ParseStatusError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| ParseStatusError(s.to_string()))
    }
}

/// A nudge about to be sent (or skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub key: DeliveryKey,
    /// `lead`, `cooperating` or `escalation`.
    pub role: String,
    /// When it was planned to go out.
    pub due_at: DateTime<Utc>,
    /// Sent after downtime, later than planned.
    pub late: bool,
}

/// One email to reserve with [`Ledger::reserve_many`]: its nudges, its recipients (To then
/// Cc) and the Message-ID it would get if none of its nudges is already in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub items: Vec<NewDelivery>,
    pub recipients: Vec<String>,
    pub message_id: String,
}

/// How one attempt at an email ended, for [`Ledger::finish_many`]; `at` is when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server accepted it, with this reply.
    Sent { reply: String, at: DateTime<Utc> },
    /// A temporary failure; due again at `next_attempt_at`.
    Retrying {
        error: String,
        next_attempt_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// Given up.
    Failed { error: String, at: DateTime<Utc> },
}

/// One row of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: i64,
    pub key: DeliveryKey,
    pub role: String,
    pub due_at: DateTime<Utc>,
    pub late: bool,
    /// To then Cc, as given to [`Ledger::reserve`]. Empty for skipped rows.
    pub recipients: Vec<String>,
    /// Empty for skipped rows.
    pub message_id: String,
    pub status: Status,
    /// The server's reply, the error text, or the reason for skipping.
    pub reply: Option<String>,
    /// Completed SMTP attempts (successful or not).
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// What the ledger knows about a key: status, Message-ID, next attempt.
pub type KeyState = (Status, String, Option<DateTime<Utc>>);

/// Which rows `log` shows. `since` is inclusive, `until` exclusive; both filter on `due_at`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub office: Option<String>,
    pub task: Option<String>,
    pub status: Option<Status>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<usize>,
}

/// Everything that can go wrong with the ledger. Each message names the file and says what to
/// check or do.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(
        "cannot create the folder {} for the ledger: {source}. Is the disk full? Is the parent \
         folder writable by the service user? Is the path right?",
        path.display()
    )]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the ledger {} does not exist. It is created by the daemon on its first run; check the \
         `ledger` path in the configuration, or start the daemon once",
        path.display()
    )]
    Missing { path: PathBuf },

    #[error(
        "the ledger {} is read-only, but the daemon must write to it. Is the file (and its \
         folder, which holds the -wal and -shm files) writable by the service user? Is the \
         filesystem mounted read-only?",
        path.display()
    )]
    ReadOnly { path: PathBuf },

    #[error(
        "the ledger {} was written by a newer nhacviec (schema version {found}, this build knows \
         up to {known}). Upgrade nhacviec, or point this one at another ledger file",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },

    #[error(
        "the ledger {} has schema version {found} but this build needs {known}. Start the daemon \
         once so it upgrades the ledger, then run this command again",
        path.display()
    )]
    OlderSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },

    #[error("ledger {}: {action} failed: {source}. {hint}", path.display())]
    Sqlite {
        path: PathBuf,
        action: String,
        hint: &'static str,
        #[source]
        source: Box<rusqlite::Error>,
    },

    #[error(
        "ledger {}: {key} is already {status} (Message-ID {message_id:?}); refusing to send it \
         again. This is a bug in the caller: check `states` before reserving",
        path.display()
    )]
    AlreadyFinal {
        path: PathBuf,
        key: Box<DeliveryKey>,
        status: Status,
        message_id: String,
    },

    #[error(
        "ledger {}: the nudges to reserve were in flight under different messages ({}); re-send \
         each of those messages on its own (see `unfinished`)",
        path.display(), message_ids.join(", ")
    )]
    SplitInFlight {
        path: PathBuf,
        message_ids: Vec<String>,
    },

    #[error("ledger {}: no delivery has Message-ID {message_id:?}", path.display())]
    UnknownMessage { path: PathBuf, message_id: String },

    #[error(
        "ledger {}: the message {message_id:?} is no longer in flight (it is {status}); it was \
         already marked",
        path.display()
    )]
    NotInFlight {
        path: PathBuf,
        message_id: String,
        status: Status,
    },

    #[error("ledger {}: {what}", path.display())]
    InvalidInput { path: PathBuf, what: String },
}

/// What to tell the operator for a given SQLite failure.
fn hint_for(err: &rusqlite::Error) -> &'static str {
    let code = match err {
        rusqlite::Error::SqliteFailure(e, _) => e.code,
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => {
            return "The ledger holds a value this build cannot read; was it edited by hand? \
                    Run `PRAGMA integrity_check` and restore it from a backup if needed.";
        }
        _ => return "This looks like a bug in nhacviec; please report it with this message.",
    };
    match code {
        ErrorCode::DiskFull => {
            "The disk is full: free space on the volume that holds the ledger, then restart."
        }
        ErrorCode::ReadOnly
        | ErrorCode::PermissionDenied
        | ErrorCode::AuthorizationForStatementDenied => {
            "Is the ledger file, and its folder (which holds the -wal and -shm files), writable by \
             the service user? Is the filesystem mounted read-only?"
        }
        ErrorCode::CannotOpen => {
            "Does the folder exist, and is it readable and writable by the service user (SQLite \
             needs to create the -wal and -shm files next to the ledger)? Is the disk full?"
        }
        ErrorCode::SystemIoFailure => {
            "The operating system reported an I/O error: is the disk full? Is the folder writable \
             by the service user? Is the disk failing?"
        }
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
            "Another process holds the ledger locked: is a second nhacviec daemon running on the \
             same file?"
        }
        ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
            "The file is not a nhacviec ledger or is damaged: move it aside and restore it from a \
             backup (the daemon then starts a new one)."
        }
        ErrorCode::ConstraintViolation => {
            "A ledger constraint was violated; this is a bug in nhacviec, please report it."
        }
        _ => "Is the disk full? Is the folder writable by the service user?",
    }
}

/// Turns a SQLite error into one that names the file, the action and what to check.
fn sqlerr(path: &Path, action: &str) -> impl FnOnce(rusqlite::Error) -> LedgerError + use<> {
    let path = path.to_path_buf();
    let action = action.to_string();
    move |source| LedgerError::Sqlite {
        path,
        action,
        hint: hint_for(&source),
        source: Box::new(source),
    }
}

/// The delivery ledger: one SQLite file, opened by one daemon (writes) and any number of `log`
/// readers.
#[derive(Debug)]
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn from_ts(idx: usize, secs: i64) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0).ok_or(rusqlite::Error::IntegralValueOutOfRange(idx, secs))
}

fn date_str(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn map_row(row: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    let occurrence: String = row.get(2)?;
    let occurrence = NaiveDate::parse_from_str(&occurrence, "%Y-%m-%d")
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, Type::Text, Box::new(e)))?;
    let status: String = row.get(10)?;
    let status = status
        .parse::<Status>()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(10, Type::Text, Box::new(e)))?;
    let recipients: String = row.get(8)?;
    let attempts: i64 = row.get(12)?;
    let opt_ts = |idx: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        row.get::<_, Option<i64>>(idx)?
            .map(|s| from_ts(idx, s))
            .transpose()
    };
    Ok(DeliveryRow {
        id: row.get(0)?,
        key: DeliveryKey {
            task: row.get(1)?,
            occurrence,
            office: row.get(3)?,
            kind: row.get(4)?,
        },
        role: row.get(5)?,
        due_at: from_ts(6, row.get(6)?)?,
        late: row.get::<_, i64>(7)? != 0,
        recipients: split_recipients(&recipients),
        message_id: row.get(9)?,
        status,
        reply: row.get(11)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(12, attempts))?,
        created_at: from_ts(13, row.get(13)?)?,
        updated_at: from_ts(14, row.get(14)?)?,
        sent_at: opt_ts(15)?,
        next_attempt_at: opt_ts(16)?,
    })
}

fn split_recipients(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

fn map_state(row: &Row<'_>) -> rusqlite::Result<(DeliveryKey, KeyState)> {
    let occurrence: String = row.get(1)?;
    let occurrence = NaiveDate::parse_from_str(&occurrence, "%Y-%m-%d")
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, Type::Text, Box::new(e)))?;
    let status: String = row.get(4)?;
    let status = status
        .parse::<Status>()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(4, Type::Text, Box::new(e)))?;
    let next = row
        .get::<_, Option<i64>>(6)?
        .map(|s| from_ts(6, s))
        .transpose()?;
    Ok((
        DeliveryKey {
            task: row.get(0)?,
            occurrence,
            office: row.get(2)?,
            kind: row.get(3)?,
        },
        (status, row.get(5)?, next),
    ))
}

/// Builds the `log` query for a filter: the SQL and its parameters.
fn log_query(filter: &LogFilter) -> (String, Vec<Value>) {
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    if let Some(office) = &filter.office {
        clauses.push("office = ?");
        params.push(Value::Text(office.clone()));
    }
    if let Some(task) = &filter.task {
        clauses.push("task = ?");
        params.push(Value::Text(task.clone()));
    }
    if let Some(status) = filter.status {
        clauses.push("status = ?");
        params.push(Value::Text(status.as_str().to_string()));
    }
    if let Some(since) = filter.since {
        clauses.push("due_at >= ?");
        params.push(Value::Integer(ts(since)));
    }
    if let Some(until) = filter.until {
        clauses.push("due_at < ?");
        params.push(Value::Integer(ts(until)));
    }
    let mut sql = format!("SELECT {COLUMNS} FROM deliveries");
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    sql.push_str(" ORDER BY due_at DESC, id DESC");
    if let Some(limit) = filter.limit {
        sql.push_str(" LIMIT ?");
        params.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    }
    (sql, params)
}

impl Ledger {
    /// Opens (creating if needed) the ledger for the daemon: creates the parent folder, sets
    /// WAL mode, FULL synchronous commits, a busy timeout and foreign keys, and runs the
    /// schema migrations.
    /// An in-memory ledger holding a copy of what `path` holds (nothing if it does not exist
    /// yet): a dry run plans against the real history and writes nothing anywhere.
    pub fn scratch_copy(path: &Path) -> Result<Ledger, LedgerError> {
        let err = |action: &str| {
            let action = action.to_string();
            move |source: rusqlite::Error| LedgerError::Sqlite {
                path: path.to_path_buf(),
                action: action.clone(),
                hint: hint_for(&source),
                source: Box::new(source),
            }
        };
        let conn = Connection::open_in_memory().map_err(err("opening a scratch copy of"))?;
        let mut ledger = Ledger {
            conn,
            path: path.to_path_buf(),
        };
        ledger.migrate()?;
        if path.is_file() {
            // Read through a read-only handle so that not even a WAL checkpoint touches it.
            let real = Ledger::open_read_only(path)?;
            let rows = real.query(&LogFilter::default())?;
            let tx = ledger.conn.transaction().map_err(err("copying"))?;
            for r in rows {
                tx.execute(
                    "INSERT INTO deliveries (task, occurrence, office, kind, role, due_at, late, \
                     recipients, message_id, status, reply, attempts, created_at, updated_at, \
                     sent_at, next_attempt_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                    rusqlite::params![
                        r.key.task,
                        r.key.occurrence.to_string(),
                        r.key.office,
                        r.key.kind,
                        r.role,
                        r.due_at.timestamp(),
                        r.late as i64,
                        r.recipients.join(","),
                        r.message_id,
                        r.status.as_str(),
                        r.reply,
                        r.attempts,
                        r.created_at.timestamp(),
                        r.updated_at.timestamp(),
                        r.sent_at.map(|t| t.timestamp()),
                        r.next_attempt_at.map(|t| t.timestamp()),
                    ],
                )
                .map_err(err("copying"))?;
            }
            tx.commit().map_err(err("copying"))?;
        }
        Ok(ledger)
    }

    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| LedgerError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|source| LedgerError::Sqlite {
                path: path.to_path_buf(),
                action: "opening".into(),
                hint: hint_for(&source),
                source: Box::new(source),
            })?;
        let mut ledger = Ledger {
            conn,
            path: path.to_path_buf(),
        };
        // SQLite silently falls back to read-only when the file is write-protected; the daemon
        // cannot work like that, so say so now rather than at the first send.
        if ledger.conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(true) {
            return Err(LedgerError::ReadOnly {
                path: path.to_path_buf(),
            });
        }
        ledger.configure(false)?;
        ledger.migrate()?;
        Ok(ledger)
    }

    /// Opens an existing ledger for reading only (the `log` command). Never creates or
    /// migrates anything.
    pub fn open_read_only(path: &Path) -> Result<Ledger, LedgerError> {
        if !path.is_file() {
            return Err(LedgerError::Missing {
                path: path.to_path_buf(),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|source| LedgerError::Sqlite {
                path: path.to_path_buf(),
                action: "opening read-only".into(),
                hint: hint_for(&source),
                source: Box::new(source),
            })?;
        let ledger = Ledger {
            conn,
            path: path.to_path_buf(),
        };
        ledger.configure(true)?;
        let found = ledger.user_version()?;
        if found > SCHEMA_VERSION {
            return Err(LedgerError::NewerSchema {
                path: ledger.path,
                found,
                known: SCHEMA_VERSION,
            });
        }
        if found < SCHEMA_VERSION {
            return Err(LedgerError::OlderSchema {
                path: ledger.path,
                found,
                known: SCHEMA_VERSION,
            });
        }
        Ok(ledger)
    }

    /// The file this ledger lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&self, read_only: bool) -> Result<(), LedgerError> {
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(sqlerr(&self.path, "setting the busy timeout"))?;
        if !read_only {
            let mode: String = self
                .conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(sqlerr(&self.path, "switching to WAL journal mode"))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(ledger = %self.path.display(), mode, "ledger is not in WAL mode");
            }
        }
        // FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power loss. Losing
        // the `sent` update of an email that went out means sending it again; losing a
        // `pending` reservation of an email that then went out means sending it again under a
        // new Message-ID that nobody can de-duplicate. A sent email must never be forgotten,
        // and the ledger commits a handful of times a day, so the fsync on every commit costs
        // nothing that matters.
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(sqlerr(&self.path, "setting synchronous = FULL"))?;
        self.conn
            .pragma_update(None, "foreign_keys", true)
            .map_err(sqlerr(&self.path, "enabling foreign keys"))?;
        Ok(())
    }

    fn user_version(&self) -> Result<i64, LedgerError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sqlerr(&self.path, "reading the schema version"))
    }

    fn migrate(&mut self) -> Result<(), LedgerError> {
        let found = self.user_version()?;
        if found > SCHEMA_VERSION {
            return Err(LedgerError::NewerSchema {
                path: self.path.clone(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
            let version = i as i64 + 1;
            let on_err = sqlerr(
                &self.path,
                &format!("migrating the schema to version {version}"),
            );
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlerr(&self.path, &format!("starting migration {version}")))?;
            // Another process may have migrated while we waited for the lock.
            let now_at: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(sqlerr(&self.path, "reading the schema version"))?;
            if now_at >= version {
                continue;
            }
            tx.execute_batch(sql)
                .and_then(|()| tx.pragma_update(None, "user_version", version))
                .and_then(|()| tx.commit())
                .map_err(on_err)?;
            tracing::info!(ledger = %self.path.display(), version, "ledger schema migrated");
        }
        Ok(())
    }

    /// What the ledger knows about these keys. Keys it has never seen are absent.
    pub fn states<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k DeliveryKey>,
    ) -> Result<HashMap<DeliveryKey, KeyState>, LedgerError> {
        // One read transaction (a consistent snapshot) and one prepared statement.
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(sqlerr(&self.path, "starting a read"))?;
        let mut out = HashMap::new();
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT status, message_id, next_attempt_at FROM deliveries \
                     WHERE task = ?1 AND occurrence = ?2 AND office = ?3 AND kind = ?4",
                )
                .map_err(sqlerr(&self.path, "preparing the state lookup"))?;
            for key in keys {
                let found = stmt
                    .query_row(
                        (&key.task, date_str(key.occurrence), &key.office, &key.kind),
                        |r| {
                            let status: String = r.get(0)?;
                            let status = status.parse::<Status>().map_err(|e| {
                                rusqlite::Error::FromSqlConversionFailure(
                                    0,
                                    Type::Text,
                                    Box::new(e),
                                )
                            })?;
                            let next = r
                                .get::<_, Option<i64>>(2)?
                                .map(|s| from_ts(2, s))
                                .transpose()?;
                            Ok((status, r.get::<_, String>(1)?, next))
                        },
                    )
                    .optional()
                    .map_err(sqlerr(&self.path, &format!("looking up {key}")))?;
                if let Some(state) = found {
                    out.insert(key.clone(), state);
                }
            }
        }
        tx.finish().map_err(sqlerr(&self.path, "ending a read"))?;
        Ok(out)
    }

    /// What the ledger knows about every key it holds.
    pub fn all_states(&self) -> Result<HashMap<DeliveryKey, KeyState>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT task, occurrence, office, kind, status, message_id, next_attempt_at \
                 FROM deliveries",
            )
            .map_err(sqlerr(&self.path, "preparing the state listing"))?;
        stmt.query_map([], map_state)
            .and_then(|rows| rows.collect::<rusqlite::Result<HashMap<_, _>>>())
            .map_err(sqlerr(&self.path, "listing all states"))
    }

    /// Records, in one transaction, that the email `message_id` is about to go out to
    /// `recipients` (To then Cc) for `items` (several for a digest). Call it BEFORE the SMTP
    /// transaction.
    ///
    /// Returns the Message-ID the email must carry. That is `message_id`, unless some of the
    /// items were already in flight (`pending` or `retrying`: the daemon crashed or is
    /// retrying): their rows are kept with their stored Message-ID, set back to `pending`
    /// with the new recipients, the new items join that message, and the stored Message-ID is
    /// returned so the email goes out again under it.
    ///
    /// Errors, and changes nothing, when an item is already final (`sent`, `failed`,
    /// `skipped`): that is a caller bug, and sending it again would be a duplicate. Errors
    /// too when the in-flight items belong to more than one earlier message.
    pub fn reserve(
        &mut self,
        items: &[NewDelivery],
        recipients: &[String],
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<String, LedgerError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlerr(&path, "starting a reservation"))?;
        let effective = reserve_in(&tx, &path, items, recipients, message_id, now)?;
        tx.commit()
            .map_err(sqlerr(&path, "committing the reservation"))?;
        Ok(effective)
    }

    /// [`reserve`](Ledger::reserve) for several emails in one transaction (one fsync): all of
    /// them are reserved, or, on an error, none. Returns each email's Message-ID, in order.
    /// Later reservations see the earlier ones, as if reserved one after the other.
    pub fn reserve_many(
        &mut self,
        reservations: &[Reservation],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, LedgerError> {
        if reservations.is_empty() {
            return Ok(Vec::new());
        }
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlerr(&path, "starting a reservation"))?;
        let mut ids = Vec::with_capacity(reservations.len());
        for r in reservations {
            ids.push(reserve_in(
                &tx,
                &path,
                &r.items,
                &r.recipients,
                &r.message_id,
                now,
            )?);
        }
        tx.commit()
            .map_err(sqlerr(&path, "committing the reservations"))?;
        Ok(ids)
    }

    /// Takes back reservations whose emails never went out (a stop request came after
    /// [`reserve_many`](Ledger::reserve_many) but before they were handed to the server):
    /// deletes their `pending` rows, in one transaction, so the nudges are simply due again.
    /// Only for Message-IDs whose rows were all created by that reservation: rows that were
    /// already in flight before it may have been sent and must stay. Returns how many rows
    /// were deleted.
    pub fn release(&mut self, message_ids: &[String]) -> Result<usize, LedgerError> {
        if message_ids.is_empty() {
            return Ok(0);
        }
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlerr(&path, "starting to release reservations"))?;
        let mut deleted = 0;
        {
            let mut delete = tx
                .prepare_cached(
                    "DELETE FROM deliveries WHERE message_id = ?1 AND status = 'pending' \
                     AND attempts = 0",
                )
                .map_err(sqlerr(&path, "preparing to release reservations"))?;
            for id in message_ids {
                deleted += delete
                    .execute([id])
                    .map_err(sqlerr(&path, "releasing a reservation"))?;
            }
        }
        tx.commit()
            .map_err(sqlerr(&path, "committing released reservations"))?;
        Ok(deleted)
    }

    /// Records the outcomes of several emails in one transaction (one fsync), each as
    /// [`mark_sent`](Ledger::mark_sent), [`mark_retrying`](Ledger::mark_retrying) or
    /// [`mark_failed`](Ledger::mark_failed) would: all of them, or, on an error, none.
    /// Returns how many rows changed.
    pub fn finish_many(&mut self, results: &[(String, Outcome)]) -> Result<usize, LedgerError> {
        if results.is_empty() {
            return Ok(0);
        }
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlerr(&path, "starting to record outcomes"))?;
        let mut changed = 0;
        for (message_id, outcome) in results {
            changed += match outcome {
                Outcome::Sent { reply, at } => finish_in(
                    &tx,
                    &path,
                    message_id,
                    "recording a sent message",
                    SQL_SENT,
                    &[message_id, reply, &ts(*at)],
                )?,
                Outcome::Retrying {
                    error,
                    next_attempt_at,
                    at,
                } => finish_in(
                    &tx,
                    &path,
                    message_id,
                    "recording a retry",
                    SQL_RETRYING,
                    &[message_id, error, &ts(*next_attempt_at), &ts(*at)],
                )?,
                Outcome::Failed { error, at } => finish_in(
                    &tx,
                    &path,
                    message_id,
                    "recording a failure",
                    SQL_FAILED,
                    &[message_id, error, &ts(*at)],
                )?,
            };
        }
        tx.commit().map_err(sqlerr(&path, "committing outcomes"))?;
        Ok(changed)
    }

    /// The server accepted `message_id`: every in-flight row of it becomes `sent`. Returns how
    /// many rows changed.
    pub fn mark_sent(
        &mut self,
        message_id: &str,
        reply: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        self.finish_many(&[(
            message_id.to_string(),
            Outcome::Sent {
                reply: reply.to_string(),
                at: now,
            },
        )])
    }

    /// A temporary failure: every in-flight row of `message_id` becomes `retrying`, due again
    /// at `next_attempt_at`. Counts the attempt.
    pub fn mark_retrying(
        &mut self,
        message_id: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        self.finish_many(&[(
            message_id.to_string(),
            Outcome::Retrying {
                error: error.to_string(),
                next_attempt_at,
                at: now,
            },
        )])
    }

    /// Given up: every in-flight row of `message_id` becomes `failed`. Counts the attempt.
    pub fn mark_failed(
        &mut self,
        message_id: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        self.finish_many(&[(
            message_id.to_string(),
            Outcome::Failed {
                error: error.to_string(),
                at: now,
            },
        )])
    }

    /// Records `items` as `skipped` for `reason` (a missed nudge superseded by a later one
    /// after downtime). A key the ledger already holds, in any status, is left as it is (an
    /// in-flight one is still re-sent). Returns how many rows were inserted.
    pub fn skip(
        &mut self,
        items: &[NewDelivery],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        let on_err = sqlerr(&self.path, "recording skipped nudges");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlerr(&self.path, "starting to record skipped nudges"))?;
        let mut inserted = 0;
        let result = (|| -> rusqlite::Result<()> {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO deliveries (task, occurrence, office, kind, role, due_at, \
                 late, recipients, message_id, status, reply, attempts, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '', '', 'skipped', ?8, 0, ?9, ?9)",
            )?;
            for item in items {
                let k = &item.key;
                inserted += insert.execute((
                    &k.task,
                    date_str(k.occurrence),
                    &k.office,
                    &k.kind,
                    &item.role,
                    ts(item.due_at),
                    i64::from(item.late),
                    reason,
                    ts(now),
                ))?;
            }
            Ok(())
        })();
        result.map_err(on_err)?;
        tx.commit()
            .map_err(sqlerr(&self.path, "committing skipped nudges"))?;
        Ok(inserted)
    }

    /// The rows still in flight (`pending`, or `retrying`), oldest first: what to re-send after
    /// a restart. Rows of one message share its `message_id`.
    pub fn unfinished(&self) -> Result<Vec<DeliveryRow>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM deliveries WHERE status IN ('pending', 'retrying') \
                 ORDER BY id"
            ))
            .map_err(sqlerr(&self.path, "preparing the unfinished listing"))?;
        stmt.query_map([], map_row)
            .and_then(|rows| rows.collect())
            .map_err(sqlerr(&self.path, "listing unfinished deliveries"))
    }

    /// The rows matching `filter`, newest first (by `due_at`, then `id`).
    pub fn query(&self, filter: &LogFilter) -> Result<Vec<DeliveryRow>, LedgerError> {
        let (sql, params) = log_query(filter);
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(sqlerr(&self.path, "preparing the log query"))?;
        stmt.query_map(rusqlite::params_from_iter(params), map_row)
            .and_then(|rows| rows.collect())
            .map_err(sqlerr(&self.path, "reading the log"))
    }

    /// `PRAGMA integrity_check`: `"ok"`, or SQLite's list of problems.
    pub fn integrity_check(&self) -> Result<String, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(sqlerr(&self.path, "preparing the integrity check"))?;
        let lines = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(sqlerr(&self.path, "checking integrity"))?;
        Ok(lines.join("\n"))
    }
}

/// The body of [`Ledger::reserve`], inside the caller's transaction.
fn reserve_in(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    items: &[NewDelivery],
    recipients: &[String],
    message_id: &str,
    now: DateTime<Utc>,
) -> Result<String, LedgerError> {
    if message_id.trim().is_empty() {
        return Err(LedgerError::InvalidInput {
            path: path.to_path_buf(),
            what: "reserve needs a non-empty Message-ID".into(),
        });
    }
    if items.is_empty() {
        return Ok(message_id.to_string());
    }
    let on_err = |action: &str| sqlerr(path, action);
    let mut in_flight: Vec<String> = Vec::new();
    let mut fresh: Vec<&NewDelivery> = Vec::new();
    let mut existing_ids: Vec<i64> = Vec::new();
    {
        let mut lookup = tx
            .prepare_cached(
                "SELECT id, status, message_id FROM deliveries \
                     WHERE task = ?1 AND occurrence = ?2 AND office = ?3 AND kind = ?4",
            )
            .map_err(on_err("preparing the reservation lookup"))?;
        for item in items {
            let k = &item.key;
            let found = lookup
                .query_row((&k.task, date_str(k.occurrence), &k.office, &k.kind), |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .optional()
                .map_err(on_err("looking up a reservation"))?;
            match found {
                None => fresh.push(item),
                Some((id, status, mid)) => {
                    let status = status.parse::<Status>().map_err(|e| {
                        on_err("reading a reservation")(rusqlite::Error::FromSqlConversionFailure(
                            1,
                            Type::Text,
                            Box::new(e),
                        ))
                    })?;
                    if status.is_final() {
                        return Err(LedgerError::AlreadyFinal {
                            path: path.to_path_buf(),
                            key: Box::new(k.clone()),
                            status,
                            message_id: mid,
                        });
                    }
                    if !in_flight.contains(&mid) {
                        in_flight.push(mid);
                    }
                    existing_ids.push(id);
                }
            }
        }
    }
    let effective = match in_flight.len() {
        0 => message_id.to_string(),
        1 => in_flight.remove(0),
        _ => {
            in_flight.sort();
            return Err(LedgerError::SplitInFlight {
                path: path.to_path_buf(),
                message_ids: in_flight,
            });
        }
    };
    let recipients = recipients.join(",");
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO deliveries (task, occurrence, office, kind, role, due_at, late, \
                     recipients, message_id, status, attempts, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', 0, ?10, ?10)",
            )
            .map_err(on_err("preparing the reservation"))?;
        for item in fresh {
            let k = &item.key;
            insert
                .execute((
                    &k.task,
                    date_str(k.occurrence),
                    &k.office,
                    &k.kind,
                    &item.role,
                    ts(item.due_at),
                    i64::from(item.late),
                    &recipients,
                    &effective,
                    ts(now),
                ))
                .map_err(on_err("reserving a delivery"))?;
        }
        let mut update = tx
            .prepare_cached(
                "UPDATE deliveries SET status = 'pending', recipients = ?2, \
                     next_attempt_at = NULL, updated_at = ?3 WHERE id = ?1",
            )
            .map_err(on_err("preparing the re-reservation"))?;
        for id in existing_ids {
            update
                .execute((id, &recipients, ts(now)))
                .map_err(on_err("re-reserving a delivery"))?;
        }
    }
    Ok(effective)
}

/// Updates every in-flight row of `message_id` inside the caller's transaction; errors when
/// there is none.
fn finish_in(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    message_id: &str,
    action: &str,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<usize, LedgerError> {
    let on_err = sqlerr(path, action);
    let changed = tx
        .prepare_cached(sql)
        .and_then(|mut st| st.execute(params))
        .map_err(on_err)?;
    if changed == 0 {
        let status: Option<String> = tx
            .query_row(
                "SELECT status FROM deliveries WHERE message_id = ?1 ORDER BY id LIMIT 1",
                [message_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(sqlerr(path, "looking up a message"))?;
        return Err(match status {
            None => LedgerError::UnknownMessage {
                path: path.to_path_buf(),
                message_id: message_id.to_string(),
            },
            Some(s) => LedgerError::NotInFlight {
                path: path.to_path_buf(),
                message_id: message_id.to_string(),
                status: s.parse().unwrap_or(Status::Failed),
            },
        });
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn key(task: &str, office: &str, kind: &str) -> DeliveryKey {
        DeliveryKey {
            task: task.into(),
            occurrence: NaiveDate::from_ymd_opt(2024, 1, 31).unwrap(),
            office: office.into(),
            kind: kind.into(),
        }
    }

    fn item(task: &str, office: &str, kind: &str, due_day: u32) -> NewDelivery {
        NewDelivery {
            key: key(task, office, kind),
            role: "lead".into(),
            due_at: Utc.with_ymd_and_hms(2024, 1, due_day, 1, 0, 0).unwrap(),
            late: false,
        }
    }

    fn plan(ledger: &Ledger, filter: &LogFilter) -> String {
        let (sql, params) = log_query(filter);
        let mut stmt = ledger
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    fn ledger_with_rows() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(&dir.path().join("ledger.db")).unwrap();
        let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        // Enough rows, and fresh statistics, that the planner has something to weigh.
        for i in 0..200u32 {
            let it = item(
                &format!("T{}", i % 20),
                &format!("o{}", i % 10),
                "k",
                1 + i % 28,
            );
            let it = NewDelivery {
                key: DeliveryKey {
                    kind: format!("k{i}"),
                    ..it.key
                },
                ..it
            };
            ledger
                .reserve(&[it], &["a@x".into()], &format!("<m{i}@x>"), now)
                .unwrap();
        }
        ledger.conn.execute_batch("ANALYZE").unwrap();
        (dir, ledger)
    }

    #[test]
    fn log_queries_by_office_and_date_use_an_index_and_no_sort() {
        let (_dir, ledger) = ledger_with_rows();
        let since = Utc.with_ymd_and_hms(2024, 1, 5, 0, 0, 0).unwrap();
        let until = Utc.with_ymd_and_hms(2024, 1, 12, 0, 0, 0).unwrap();
        let cases = [
            (
                LogFilter {
                    office: Some("o3".into()),
                    ..Default::default()
                },
                "deliveries_office_due",
            ),
            (
                LogFilter {
                    office: Some("o3".into()),
                    since: Some(since),
                    until: Some(until),
                    limit: Some(50),
                    ..Default::default()
                },
                "deliveries_office_due",
            ),
            (
                LogFilter {
                    since: Some(since),
                    until: Some(until),
                    ..Default::default()
                },
                "deliveries_due",
            ),
            (
                LogFilter {
                    task: Some("T3".into()),
                    ..Default::default()
                },
                "deliveries_task_due",
            ),
            (
                LogFilter {
                    status: Some(Status::Failed),
                    ..Default::default()
                },
                "deliveries_status_due",
            ),
            (
                LogFilter {
                    limit: Some(20),
                    ..Default::default()
                },
                "deliveries_due",
            ),
        ];
        for (filter, index) in cases {
            let p = plan(&ledger, &filter);
            assert!(p.contains(index), "{filter:?} should use {index}:\n{p}");
            assert!(
                !p.contains("TEMP B-TREE"),
                "{filter:?} should not sort:\n{p}"
            );
        }
    }

    #[test]
    fn disk_full_is_an_actionable_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(&dir.path().join("ledger.db")).unwrap();
        let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        ledger
            .reserve(&[item("T", "o", "k", 2)], &["a@x".into()], "<first@x>", now)
            .unwrap();
        // Let the file grow by very little: SQLite then fails exactly as on a full disk.
        let pages: i64 = ledger
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        ledger
            .conn
            .pragma_update(None, "max_page_count", pages + 1)
            .unwrap();
        let long = "x".repeat(2000);
        let mut failure = None;
        for i in 0..200 {
            let it = item(&long, &format!("office-{i}"), &long, 3);
            if let Err(e) = ledger.reserve(
                &[it],
                std::slice::from_ref(&long),
                &format!("<m{i}@x>"),
                now,
            ) {
                failure = Some(e);
                break;
            }
        }
        let err = failure.expect("the ledger should have filled up");
        let msg = err.to_string();
        assert!(msg.contains("disk is full"), "{msg}");
        assert!(msg.contains(&*dir.path().to_string_lossy()), "{msg}");
        // What was committed before is intact and the ledger is still usable for reading.
        assert_eq!(ledger.integrity_check().unwrap(), "ok");
        assert!(!ledger.unfinished().unwrap().is_empty());
    }

    #[test]
    fn status_round_trips_through_its_name() {
        for st in Status::ALL {
            assert_eq!(st.as_str().parse::<Status>().unwrap(), st);
            assert_eq!(st.to_string(), st.as_str());
        }
        let err = "sending".parse::<Status>().unwrap_err();
        assert!(err.to_string().contains("pending, sent"));
    }
}
