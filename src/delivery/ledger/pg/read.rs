//! Reading the PostgreSQL ledger: what the sweep needs, `log`, and `ledger status`.

use super::PgLedger;
use super::error::{PgError, query_err};
use crate::delivery::ledger::{
    Completion, DeliveryKey, DeliveryRow, KeyState, LogFilter, NewCompletion, Status,
};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

const COLUMNS: &str = "id, task, occurrence, office, kind, role, due_at, late, recipients, \
     message_id, status, reply, attempts, created_at, updated_at, sent_at, next_attempt_at";

/// One node as `ledger status` shows it: its last sweep and what it holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSweep {
    pub node: String,
    pub config_hash: String,
    pub as_of: DateTime<Utc>,
    /// By the database's clock.
    pub recorded_at: DateTime<Utc>,
    pub finished: bool,
    pub sent: i64,
    /// Its rows `pending` under a live lease.
    pub leased: i64,
}

/// `ledger status` of a PostgreSQL ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgStatus {
    pub nodes: Vec<NodeSweep>,
    /// Rows `pending` whose lease has passed: another node re-sends them at its next sweep.
    pub expired: i64,
    /// Rows by status.
    pub by_status: Vec<(String, i64)>,
}

fn status_of(s: &str) -> Status {
    // The CHECK constraint allows only known names.
    s.parse().unwrap_or(Status::Failed)
}

fn map_row(r: &Row) -> DeliveryRow {
    let recipients: String = r.get(8);
    let attempts: i32 = r.get(12);
    DeliveryRow {
        id: r.get(0),
        key: DeliveryKey {
            task: r.get(1),
            occurrence: r.get(2),
            office: r.get(3),
            kind: r.get(4),
        },
        role: r.get(5),
        due_at: r.get(6),
        late: r.get(7),
        recipients: recipients
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect(),
        message_id: r.get(9),
        status: status_of(r.get(10)),
        reply: r.get(11),
        attempts: u32::try_from(attempts).unwrap_or(0),
        created_at: r.get(13),
        updated_at: r.get(14),
        sent_at: r.get(15),
        next_attempt_at: r.get(16),
    }
}

fn map_completion(r: &Row) -> Completion {
    let from: Option<NaiveDate> = r.get(2);
    let until: Option<NaiveDate> = r.get(3);
    let source: String = r.get(7);
    Completion {
        id: r.get(0),
        recorded_at: r.get(6),
        entry: NewCompletion {
            task: r.get(1),
            occurrence: from.zip(until),
            office: r.get(4),
            done_on: r.get(5),
            source: source
                .parse()
                .unwrap_or(crate::delivery::ledger::Source::Cli),
            note: r.get(8),
            client: r.get(9),
            undone: r.get(10),
        },
    }
}

const COMPLETION_COLUMNS: &str =
    "id, task, occ_from, occ_until, office, done_on, recorded_at, source, note, client, undone";

impl PgLedger {
    async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        action: &str,
    ) -> Result<Vec<Row>, PgError> {
        let client = self.client().await?;
        client
            .query(sql, params)
            .await
            .map_err(query_err(&self.url, action))
    }

    /// The as-of time of the first sweep (of any node) that could send and ran to its end.
    pub async fn first_sweep_as_of(&self) -> Result<Option<DateTime<Utc>>, PgError> {
        let rows = self
            .rows(
                "SELECT as_of FROM sweeps WHERE finished IS NOT NULL AND sendable AND complete \
                 ORDER BY id LIMIT 1",
                &[],
                crate::t!("đọc lần quét đầu tiên", "reading the first sweep"),
            )
            .await?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    /// What the ledger knows about every key it holds.
    pub async fn all_states(&self) -> Result<HashMap<DeliveryKey, KeyState>, PgError> {
        let rows = self
            .rows(
                "SELECT task, occurrence, office, kind, status, message_id, next_attempt_at \
                 FROM deliveries",
                &[],
                crate::t!("liệt kê mọi trạng thái", "listing all states"),
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    DeliveryKey {
                        task: r.get(0),
                        occurrence: r.get(1),
                        office: r.get(2),
                        kind: r.get(3),
                    },
                    (status_of(r.get(4)), r.get(5), r.get(6)),
                )
            })
            .collect())
    }

    /// The rows still in flight (`pending` or `retrying`), oldest first.
    pub async fn unfinished(&self) -> Result<Vec<DeliveryRow>, PgError> {
        let rows = self
            .rows(
                &format!(
                    "SELECT {COLUMNS} FROM deliveries WHERE status IN ('pending', 'retrying') \
                     ORDER BY id"
                ),
                &[],
                crate::t!(
                    "liệt kê các lần gửi chưa xong",
                    "listing unfinished deliveries"
                ),
            )
            .await?;
        Ok(rows.iter().map(map_row).collect())
    }

    /// The emails other nodes are sending now: their rows `pending` under a live lease, by
    /// node, with how long until the first of those leases expires (by the database's clock).
    pub async fn held_elsewhere(
        &self,
    ) -> Result<Vec<crate::delivery::ledger::store::Held>, PgError> {
        let rows = self
            .rows(
                "SELECT owner, count(DISTINCT message_id), count(*), \
                   EXTRACT(EPOCH FROM min(lease_until) - now())::float8 \
                 FROM deliveries WHERE status = 'pending' AND owner IS NOT NULL AND owner <> $1 \
                   AND lease_until > now() \
                 GROUP BY owner ORDER BY owner",
                &[&self.node],
                crate::t!(
                    "liệt kê các lần gửi nút khác đang giữ",
                    "listing the deliveries other nodes hold"
                ),
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let (emails, rows, secs): (i64, i64, f64) = (r.get(1), r.get(2), r.get(3));
                crate::delivery::ledger::store::Held {
                    node: r.get(0),
                    emails: usize::try_from(emails).unwrap_or(0),
                    rows: usize::try_from(rows).unwrap_or(0),
                    expires_in: std::time::Duration::try_from_secs_f64(secs).unwrap_or_default(),
                }
            })
            .collect())
    }

    /// The Message-IDs of the emails other nodes hold under a live lease: a dry run leaves
    /// them out, as the sweep cannot claim them.
    pub async fn held_message_ids(&self) -> Result<std::collections::HashSet<String>, PgError> {
        let rows = self
            .rows(
                "SELECT DISTINCT message_id FROM deliveries WHERE status = 'pending' \
                   AND owner IS NOT NULL AND owner <> $1 AND lease_until > now()",
                &[&self.node],
                crate::t!(
                    "liệt kê các lần gửi nút khác đang giữ",
                    "listing the deliveries other nodes hold"
                ),
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// How many rows are in flight that no other node holds under a live lease: what this
    /// node has left to send or retry.
    pub async fn left_here(&self) -> Result<usize, PgError> {
        let rows = self
            .rows(
                "SELECT count(*) FROM deliveries WHERE status IN ('pending', 'retrying') \
                 AND NOT (status = 'pending' AND owner IS NOT NULL AND owner <> $1 \
                   AND lease_until IS NOT NULL AND lease_until > now())",
                &[&self.node],
                crate::t!(
                    "đếm các lần gửi chưa xong",
                    "counting unfinished deliveries"
                ),
            )
            .await?;
        let n: i64 = rows.first().map_or(0, |r| r.get(0));
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// The rows matching `filter`, newest first (by `due_at`, then `id`), as `log` shows them.
    pub async fn query(&self, filter: &LogFilter) -> Result<Vec<DeliveryRow>, PgError> {
        let status = filter.status.map(|s| s.as_str().to_string());
        let limit = filter.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        let rows = self
            .rows(
                &format!(
                    "SELECT {COLUMNS} FROM deliveries \
                     WHERE ($1::text IS NULL OR office = $1) AND ($2::text IS NULL OR task = $2) \
                     AND ($3::text IS NULL OR status = $3) \
                     AND ($4::timestamptz IS NULL OR due_at >= $4) \
                     AND ($5::timestamptz IS NULL OR due_at < $5) \
                     ORDER BY due_at DESC, id DESC LIMIT $6"
                ),
                &[
                    &filter.office,
                    &filter.task,
                    &status,
                    &filter.since,
                    &filter.until,
                    &limit,
                ],
                crate::t!("đọc nhật ký", "reading the log"),
            )
            .await?;
        Ok(rows.iter().map(map_row).collect())
    }

    /// The completions that stand: the newest row of each (task, occurrence, office), unless
    /// it is a withdrawal. Oldest first.
    pub async fn completions(&self) -> Result<Vec<Completion>, PgError> {
        let rows = self
            .rows(
                &format!(
                    "SELECT {COMPLETION_COLUMNS} FROM completions WHERE id IN (\
                       SELECT max(id) FROM completions \
                       GROUP BY task, occ_from, occ_until, office\
                     ) AND NOT undone ORDER BY id"
                ),
                &[],
                crate::t!("đọc các lần hoàn thành", "reading completions"),
            )
            .await?;
        Ok(rows.iter().map(map_completion).collect())
    }

    /// Every completion row, oldest first: the audit trail.
    pub async fn completion_history(&self) -> Result<Vec<Completion>, PgError> {
        let rows = self
            .rows(
                &format!("SELECT {COMPLETION_COLUMNS} FROM completions ORDER BY id"),
                &[],
                crate::t!("đọc các lần hoàn thành", "reading completions"),
            )
            .await?;
        Ok(rows.iter().map(map_completion).collect())
    }

    /// (status, office, rows), every combination present: `/metrics`.
    pub async fn count_by_status_office(&self) -> Result<Vec<(String, String, u64)>, PgError> {
        let rows = self
            .rows(
                "SELECT status, office, count(*) FROM deliveries GROUP BY status, office \
                 ORDER BY status, office",
                &[],
                crate::t!("đếm các lần gửi", "counting deliveries"),
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let n: i64 = r.get(2);
                (r.get(0), r.get(1), u64::try_from(n).unwrap_or(0))
            })
            .collect())
    }

    /// When the last sweep (of any node) that ran to its end finished.
    pub async fn last_complete_sweep(&self) -> Result<Option<DateTime<Utc>>, PgError> {
        let rows = self
            .rows(
                "SELECT max(finished) FROM sweeps WHERE complete",
                &[],
                crate::t!("đọc lần quét gần nhất", "reading the last sweep"),
            )
            .await?;
        Ok(rows.first().and_then(|r| r.get(0)))
    }

    /// Rows per table: (`deliveries`, `sweeps`, `completions`).
    pub async fn row_counts(&self) -> Result<[(&'static str, u64); 3], PgError> {
        let rows = self
            .rows(
                "SELECT (SELECT count(*) FROM deliveries), (SELECT count(*) FROM sweeps), \
                 (SELECT count(*) FROM completions)",
                &[],
                crate::t!("đếm các dòng", "counting rows"),
            )
            .await?;
        let n = |i: usize| {
            rows.first()
                .map_or(0, |r| u64::try_from(r.get::<_, i64>(i)).unwrap_or(0))
        };
        Ok([
            ("deliveries", n(0)),
            ("sweeps", n(1)),
            ("completions", n(2)),
        ])
    }

    /// Every node seen, with its last sweep and its live leases; expired leases; counts.
    pub async fn status(&self) -> Result<PgStatus, PgError> {
        let action = crate::t!("đọc trạng thái sổ gửi", "reading the ledger's status");
        let nodes = self
            .rows(
                "SELECT DISTINCT ON (s.node) s.node, s.config_hash, s.as_of, s.recorded_at, \
                   s.finished IS NOT NULL, s.sent, \
                   (SELECT count(*) FROM deliveries d WHERE d.owner = s.node \
                      AND d.status = 'pending' AND d.lease_until > now()) \
                 FROM sweeps s WHERE s.node <> '' ORDER BY s.node, s.id DESC",
                &[],
                action,
            )
            .await?
            .iter()
            .map(|r| NodeSweep {
                node: r.get(0),
                config_hash: r.get(1),
                as_of: r.get(2),
                recorded_at: r.get(3),
                finished: r.get(4),
                sent: r.get(5),
                leased: r.get(6),
            })
            .collect();
        let expired = self
            .rows(
                "SELECT count(*) FROM deliveries WHERE status = 'pending' \
                 AND (lease_until IS NULL OR lease_until <= now())",
                &[],
                action,
            )
            .await?
            .first()
            .map_or(0, |r| r.get(0));
        let by_status = self
            .rows(
                "SELECT status, count(*) FROM deliveries GROUP BY status ORDER BY status",
                &[],
                action,
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        Ok(PgStatus {
            nodes,
            expired,
            by_status,
        })
    }
}
