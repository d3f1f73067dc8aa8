//! Reading the ledger: key states for the planner and the sweep, the rows in flight, `log`.

use super::error::{LedgerError, sqlerr};
use super::{DeliveryKey, DeliveryRow, KeyState, Ledger, LogFilter, Status, date_str, from_ts, ts};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::{Type, Value};
use rusqlite::{OptionalExtension, Row};
use std::collections::HashMap;

const COLUMNS: &str = "id, task, occurrence, office, kind, role, due_at, late, recipients, \
     message_id, status, reply, attempts, created_at, updated_at, sent_at, next_attempt_at";

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
    let status = status_in(row.get_ref(4)?.as_str()?)?;
    let next = next_attempt_in(row)?;
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

/// A state row's status (column 4).
fn status_in(text: &str) -> rusqlite::Result<Status> {
    text.parse::<Status>()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(4, Type::Text, Box::new(e)))
}

/// A state row's next attempt (column 6), if it has one.
fn next_attempt_in(row: &Row<'_>) -> rusqlite::Result<Option<DateTime<Utc>>> {
    row.get::<_, Option<i64>>(6)?
        .map(|s| from_ts(6, s))
        .transpose()
}

/// One row as [`Ledger::each_state`] reads it, borrowed from the statement.
#[derive(Debug, Clone, Copy)]
pub struct StateRow<'a> {
    pub id: i64,
    pub task: &'a str,
    pub occurrence: NaiveDate,
    pub office: &'a str,
    pub kind: &'a str,
    pub status: Status,
    pub message_id: &'a str,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: u32,
}

fn state_row<'a>(row: &'a Row<'_>) -> rusqlite::Result<StateRow<'a>> {
    let text = |idx: usize| -> rusqlite::Result<&'a str> { Ok(row.get_ref(idx)?.as_str()?) };
    let occurrence = parse_date(text(1)?)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, Type::Text, Box::new(e)))?;
    let status = status_in(text(4)?)?;
    let next_attempt_at = next_attempt_in(row)?;
    let attempts: i64 = row.get(7)?;
    Ok(StateRow {
        id: row.get(8)?,
        task: text(0)?,
        occurrence,
        office: text(2)?,
        kind: text(3)?,
        status,
        message_id: text(5)?,
        next_attempt_at,
        attempts: u32::try_from(attempts)
            .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(7, attempts))?,
    })
}

/// `NaiveDate::parse_from_str(s, "%Y-%m-%d")`, with the form the ledger writes (`2024-06-14`)
/// read without going through the format parser: a sweep reads a date per row.
fn parse_date(s: &str) -> chrono::ParseResult<NaiveDate> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    // Four digits always fit an i32; an impossible date (02-30) is left to the parser's
    // error, as it would have said.
    if b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10))
        && let Some(date) = NaiveDate::from_ymd_opt(y as i32, m, d)
    {
        return Ok(date);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
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
    /// What the ledger knows about these keys. Keys it has never seen are absent.
    pub fn states<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k DeliveryKey>,
    ) -> Result<HashMap<DeliveryKey, KeyState>, LedgerError> {
        // One read transaction (a consistent snapshot) and one prepared statement.
        let tx = self.conn.unchecked_transaction().map_err(sqlerr(
            &self.path,
            crate::t!("bắt đầu một lần đọc", "starting a read"),
        ))?;
        let mut out = HashMap::new();
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT status, message_id, next_attempt_at FROM deliveries \
                     WHERE task = ?1 AND occurrence = ?2 AND office = ?3 AND kind = ?4",
                )
                .map_err(sqlerr(
                    &self.path,
                    crate::t!("chuẩn bị tra trạng thái", "preparing the state lookup"),
                ))?;
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
                    .map_err(sqlerr(
                        &self.path,
                        &crate::tr!("tra {key}", "looking up {key}"),
                    ))?;
                if let Some(state) = found {
                    out.insert(key.clone(), state);
                }
            }
        }
        tx.finish().map_err(sqlerr(
            &self.path,
            crate::t!("kết thúc một lần đọc", "ending a read"),
        ))?;
        Ok(out)
    }

    /// The as-of time of the first sweep that could send and ran to its end: nudges planned
    /// before it and without a row were settled by it. `None`: nhacviec has never run.
    pub fn first_sweep_as_of(&self) -> Result<Option<DateTime<Utc>>, LedgerError> {
        let secs: Option<i64> = self
            .conn
            .query_row(
                "SELECT as_of FROM sweeps WHERE finished IS NOT NULL AND sendable = 1 \
                 AND complete = 1 ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sqlerr(
                &self.path,
                crate::t!("đọc lần quét đầu tiên", "reading the first sweep"),
            ))?;
        secs.map(|s| from_ts(0, s)).transpose().map_err(sqlerr(
            &self.path,
            crate::t!("đọc lần quét đầu tiên", "reading the first sweep"),
        ))
    }

    /// Every sweep, raw: (id, as_of, started, finished, sendable, complete).
    #[allow(clippy::type_complexity)]
    pub(super) fn sweeps(
        &self,
    ) -> Result<Vec<(i64, i64, i64, Option<i64>, i64, i64)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, as_of, started, finished, sendable, complete FROM sweeps")
            .map_err(sqlerr(
                &self.path,
                crate::t!(
                    "chuẩn bị liệt kê các lần quét",
                    "preparing the sweep listing"
                ),
            ))?;
        stmt.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(sqlerr(
            &self.path,
            crate::t!("liệt kê các lần quét", "listing sweeps"),
        ))
    }

    /// What the ledger knows about every key it holds.
    pub fn all_states(&self) -> Result<HashMap<DeliveryKey, KeyState>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT task, occurrence, office, kind, status, message_id, next_attempt_at \
                 FROM deliveries",
            )
            .map_err(sqlerr(
                &self.path,
                crate::t!("chuẩn bị liệt kê trạng thái", "preparing the state listing"),
            ))?;
        stmt.query_map([], map_state)
            .and_then(|rows| rows.collect::<rusqlite::Result<HashMap<_, _>>>())
            .map_err(sqlerr(
                &self.path,
                crate::t!("liệt kê mọi trạng thái", "listing all states"),
            ))
    }
    /// Every row's key and state, read in place and handed to `f` one by one: the sweep's
    /// input, with nothing copied that it does not keep. `attempts` is the row's own.
    pub fn each_state(&self, mut f: impl FnMut(StateRow<'_>)) -> Result<(), LedgerError> {
        let listing = || crate::t!("liệt kê mọi trạng thái", "listing all states");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT task, occurrence, office, kind, status, message_id, next_attempt_at, \
                 attempts, id FROM deliveries",
            )
            .map_err(sqlerr(
                &self.path,
                crate::t!("chuẩn bị liệt kê trạng thái", "preparing the state listing"),
            ))?;
        let mut rows = stmt.query([]).map_err(sqlerr(&self.path, listing()))?;
        while let Some(row) = rows.next().map_err(sqlerr(&self.path, listing()))? {
            f(state_row(row).map_err(sqlerr(&self.path, listing()))?);
        }
        Ok(())
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
            .map_err(sqlerr(
                &self.path,
                crate::t!(
                    "chuẩn bị liệt kê các lần gửi chưa xong",
                    "preparing the unfinished listing"
                ),
            ))?;
        stmt.query_map([], map_row)
            .and_then(|rows| rows.collect())
            .map_err(sqlerr(
                &self.path,
                crate::t!(
                    "liệt kê các lần gửi chưa xong",
                    "listing unfinished deliveries"
                ),
            ))
    }

    /// The rows matching `filter`, newest first (by `due_at`, then `id`).
    pub fn query(&self, filter: &LogFilter) -> Result<Vec<DeliveryRow>, LedgerError> {
        let (sql, params) = log_query(filter);
        let mut stmt = self.conn.prepare(&sql).map_err(sqlerr(
            &self.path,
            crate::t!("chuẩn bị truy vấn nhật ký", "preparing the log query"),
        ))?;
        stmt.query_map(rusqlite::params_from_iter(params), map_row)
            .and_then(|rows| rows.collect())
            .map_err(sqlerr(
                &self.path,
                crate::t!("đọc nhật ký", "reading the log"),
            ))
    }

    /// `PRAGMA integrity_check`: `"ok"`, or SQLite's list of problems.
    pub fn integrity_check(&self) -> Result<String, LedgerError> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check").map_err(sqlerr(
            &self.path,
            crate::t!(
                "chuẩn bị kiểm tra toàn vẹn",
                "preparing the integrity check"
            ),
        ))?;
        let lines = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(sqlerr(
                &self.path,
                crate::t!("kiểm tra toàn vẹn", "checking integrity"),
            ))?;
        Ok(lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::ledger::NewDelivery;
    use chrono::TimeZone;

    use crate::delivery::ledger::fixtures::item;

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
    fn each_state_reads_what_all_states_and_unfinished_read() {
        let (_dir, mut ledger) = ledger_with_rows();
        let now = Utc.with_ymd_and_hms(2024, 1, 2, 0, 0, 0).unwrap();
        ledger.mark_sent("<m3@x>", "250 ok", now).unwrap();
        ledger.mark_failed("<m4@x>", "550 no", now).unwrap();
        let mut seen = HashMap::new();
        ledger
            .each_state(|r| {
                let key = DeliveryKey {
                    task: r.task.into(),
                    occurrence: r.occurrence,
                    office: r.office.into(),
                    kind: r.kind.into(),
                };
                let state = (r.status, r.message_id.to_string(), r.next_attempt_at);
                assert!(seen.insert(key, (state, r.id, r.attempts)).is_none());
            })
            .unwrap();
        let all = ledger.all_states().unwrap();
        assert_eq!(seen.len(), all.len());
        for (k, (state, _, _)) in &seen {
            assert_eq!(Some(state), all.get(k), "{k}");
        }
        let unfinished = ledger.unfinished().unwrap();
        assert_eq!(unfinished.len(), all.len() - 2);
        for r in unfinished {
            let (_, id, attempts) = &seen[&r.key];
            assert_eq!((*id, *attempts), (r.id, r.attempts));
        }
    }

    #[test]
    fn dates_read_as_the_format_parser_reads_them() {
        for s in [
            "2024-06-14",
            "0000-01-01",
            "9999-12-31",
            "2024-02-29",
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-6-14",
            "2024-06-1",
            "+2024-06-14",
            "2024-06-14 ",
            "2024/06/14",
            "20a4-06-14",
            "",
            "2024-06-14x",
            "-001-06-14",
        ] {
            assert_eq!(
                parse_date(s).ok(),
                NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(),
                "{s:?}"
            );
        }
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
}
