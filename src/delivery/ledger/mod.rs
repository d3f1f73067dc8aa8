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
//! reserves the next 32 emails per connection (at least 128) in one transaction (each is still committed `pending`
//! before it goes out), and [`finish_many`](Ledger::finish_many) records up to 64 outcomes in
//! one. A crash can therefore leave up to one batch of rows `pending` whose emails the server
//! already accepted (or that were reserved but never sent); all of them are re-sent, each
//! with its stored Message-ID, at the next start. Nothing is lost; a duplicate is recognisable.
//!
//! All times are passed in by the caller (`now`); the ledger never reads the clock. In the
//! database they are unix seconds, UTC.

mod backup;
mod completions;
mod error;
pub mod guard;
mod key_map;
pub mod lock;
mod memory;
mod open;
pub mod pg;
mod read;
mod stats;
pub mod store;
mod write;

/// Keys and deliveries the ledger's unit tests share.
#[cfg(test)]
mod fixtures {
    use super::{DeliveryKey, NewDelivery};
    use chrono::{NaiveDate, TimeZone, Utc};

    pub fn key(task: &str, office: &str, kind: &str) -> DeliveryKey {
        DeliveryKey {
            task: task.into(),
            occurrence: NaiveDate::from_ymd_opt(2024, 1, 31).unwrap(),
            office: office.into(),
            kind: kind.into(),
        }
    }

    pub fn item(task: &str, office: &str, kind: &str, due_day: u32) -> NewDelivery {
        NewDelivery {
            key: key(task, office, kind),
            role: "lead".into(),
            due_at: Utc.with_ymd_and_hms(2024, 1, due_day, 1, 0, 0).unwrap(),
            late: false,
        }
    }
}

pub use backup::BackupReport;
pub use completions::{Completion, NewCompletion, Source};
use error::sqlerr;
pub use error::{LedgerError, ParseStatusError};
pub use key_map::{KeyMap, KeyRef};
pub use open::SCHEMA_VERSION;
pub use read::StateRow;
pub use store::{Store, StoreError};

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

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

/// What one sweep did, recorded when it finishes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepRecord {
    /// Its as-of time was a working day inside the sending window.
    pub sendable: bool,
    /// Nudges sent (one email may carry several).
    pub sent: usize,
    /// Nudges recorded as skipped (one row each).
    pub skipped: usize,
    /// Nudges of a first start's backlog settled without a row each.
    pub settled: usize,
    /// It ran to its end (no stop request cut it short).
    pub complete: bool,
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

impl Ledger {
    /// Runs `f` in one IMMEDIATE transaction (the write lock is taken at once) and commits it;
    /// if `f` fails, the transaction is rolled back and nothing it did is kept. `begin` and
    /// `commit` name the step in the error when SQLite fails to start or to commit.
    fn in_tx<T>(
        &mut self,
        begin: &str,
        commit: &str,
        f: impl FnOnce(&Transaction<'_>, &Path) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlerr(path, begin))?;
        let value = f(&tx, path)?;
        tx.commit().map_err(sqlerr(path, commit))?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
