//! Counts for the status page's `/metrics`: deliveries by status and office, the last
//! successful sweep, rows per table.

use super::error::{LedgerError, sqlerr};
use super::{Ledger, from_ts};
use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;

impl Ledger {
    /// (status, office, rows), every combination present.
    pub fn count_by_status_office(&self) -> Result<Vec<(String, String, u64)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT status, office, COUNT(*) FROM deliveries GROUP BY status, office \
                 ORDER BY status, office",
            )
            .map_err(sqlerr(
                &self.path,
                crate::t!("đếm các lần gửi", "counting deliveries"),
            ))?;
        stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
        })
        .and_then(|rows| rows.collect())
        .map_err(sqlerr(
            &self.path,
            crate::t!("đếm các lần gửi", "counting deliveries"),
        ))
    }

    /// When the last sweep that ran to its end finished.
    pub fn last_complete_sweep(&self) -> Result<Option<DateTime<Utc>>, LedgerError> {
        let secs: Option<i64> = self
            .conn
            .query_row(
                "SELECT MAX(finished) FROM sweeps WHERE complete = 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sqlerr(
                &self.path,
                crate::t!("đọc lần quét gần nhất", "reading the last sweep"),
            ))?
            .flatten();
        secs.map(|s| from_ts(0, s)).transpose().map_err(sqlerr(
            &self.path,
            crate::t!("đọc lần quét gần nhất", "reading the last sweep"),
        ))
    }

    /// Rows per table: (`deliveries`, `sweeps`, `completions`).
    pub fn row_counts(&self) -> Result<[(&'static str, u64); 3], LedgerError> {
        let count = |t: &str| -> Result<u64, LedgerError> {
            self.conn
                .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| n as u64)
                .map_err(sqlerr(
                    &self.path,
                    crate::t!("đếm các dòng", "counting rows"),
                ))
        };
        Ok([
            ("deliveries", count("deliveries")?),
            ("sweeps", count("sweeps")?),
            ("completions", count("completions")?),
        ])
    }
}
