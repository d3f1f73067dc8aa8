//! `ledger migrate --to URL`: a SQLite ledger's whole history copied into an empty
//! PostgreSQL ledger, in one transaction.

use super::PgLedger;
use super::error::{PgError, query_err};
use crate::delivery::ledger::{Ledger, LogFilter};
use chrono::DateTime;

/// What was copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub deliveries: usize,
    pub sweeps: usize,
    pub completions: usize,
}

impl PgLedger {
    /// Copies everything `from` holds. Refuses a target that already holds deliveries, sweeps
    /// or completions: copying twice, or over a ledger in use, would mix two histories.
    /// Either everything is copied or nothing.
    pub async fn copy_from(&self, from: &Ledger) -> Result<Copied, PgError> {
        let action = crate::t!("chép sổ gửi", "copying the ledger");
        let err = || query_err(&self.url, action);
        let sqlite = |e: crate::delivery::ledger::LedgerError| PgError::Query {
            url: self.url.clone(),
            action: action.into(),
            detail: e.to_string(),
            code: None,
        };
        let mut rows = from.query(&LogFilter::default()).map_err(sqlite)?;
        rows.sort_by_key(|r| r.id);
        let sweeps = from.sweeps().map_err(sqlite)?;
        let completions = from.completion_history().map_err(sqlite)?;

        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err())?;
        let held: i64 = tx
            .query_one(
                "SELECT (SELECT count(*) FROM deliveries) + (SELECT count(*) FROM sweeps) \
                 + (SELECT count(*) FROM completions)",
                &[],
            )
            .await
            .map_err(err())?
            .get(0);
        if held > 0 {
            return Err(PgError::NotEmpty {
                url: self.url.clone(),
                rows: held,
            });
        }
        let insert = tx
            .prepare(
                "INSERT INTO deliveries (task, occurrence, office, kind, role, due_at, late, \
                 recipients, message_id, status, reply, attempts, created_at, updated_at, \
                 sent_at, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            )
            .await
            .map_err(err())?;
        for r in &rows {
            let attempts = i32::try_from(r.attempts).unwrap_or(i32::MAX);
            tx.execute(
                &insert,
                &[
                    &r.key.task,
                    &r.key.occurrence,
                    &r.key.office,
                    &r.key.kind,
                    &r.role,
                    &r.due_at,
                    &r.late,
                    &r.recipients.join(","),
                    &r.message_id,
                    &r.status.as_str(),
                    &r.reply,
                    &attempts,
                    &r.created_at,
                    &r.updated_at,
                    &r.sent_at,
                    &r.next_attempt_at,
                ],
            )
            .await
            .map_err(err())?;
        }
        let at = |secs: i64| DateTime::from_timestamp(secs, 0).unwrap_or_default();
        for (_, as_of, started, finished, sendable, complete) in &sweeps {
            // Node and hash empty: the sweeps of the single host before, never a node that
            // could disagree about the config.
            tx.execute(
                "INSERT INTO sweeps (node, config_hash, as_of, started, finished, sendable, \
                 complete, recorded_at) VALUES ('', '', $1, $2, $3, $4, $5, $6)",
                &[
                    &at(*as_of),
                    &at(*started),
                    &finished.map(at),
                    &(*sendable != 0),
                    &(*complete != 0),
                    &at(finished.unwrap_or(*started)),
                ],
            )
            .await
            .map_err(err())?;
        }
        for c in &completions {
            let e = &c.entry;
            let (from, until) = e.occurrence.unzip();
            tx.execute(
                "INSERT INTO completions (task, occ_from, occ_until, office, done_on, \
                 recorded_at, source, note, client, undone) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &e.task,
                    &from,
                    &until,
                    &e.office,
                    &e.done_on,
                    &c.recorded_at,
                    &e.source.as_str(),
                    &e.note,
                    &e.client,
                    &e.undone,
                ],
            )
            .await
            .map_err(err())?;
        }
        tx.commit().await.map_err(err())?;
        Ok(Copied {
            deliveries: rows.len(),
            sweeps: sweeps.len(),
            completions: completions.len(),
        })
    }
}
