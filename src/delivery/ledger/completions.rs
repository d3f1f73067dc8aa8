//! Completions: an office (or everyone) finished a task's occurrence. An audit trail: every
//! `done`, `undone` and confirmed link is a new row, never an update or a delete; the
//! newest row per (task, occurrence, office) is what stands.

use super::error::{LedgerError, sqlerr};
use super::{Ledger, date_str, from_ts, ts};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::Type;
use std::fmt;
use std::str::FromStr;

/// The table, its own migration (see `open.rs`). `occ_from`/`occ_until`: the days the
/// occurrence may fall on (one date, or a quarter's), both NULL for every occurrence;
/// `office` NULL for every office.
pub(super) const MIGRATION: &str = r#"
    CREATE TABLE completions (
        id          INTEGER PRIMARY KEY,
        task        TEXT    NOT NULL,
        occ_from    TEXT,
        occ_until   TEXT,
        office      TEXT,
        done_on     TEXT    NOT NULL,
        recorded_at INTEGER NOT NULL,
        source      TEXT    NOT NULL CHECK (source IN ('cli', 'link', 'yaml')),
        note        TEXT,
        client      TEXT,
        undone      INTEGER NOT NULL DEFAULT 0 CHECK (undone IN (0, 1)),
        CHECK ((occ_from IS NULL) = (occ_until IS NULL))
    ) STRICT;
    CREATE INDEX completions_task ON completions (task, office, occ_from, id);
"#;

/// How a completion was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `nhacviec done` / `undone`.
    Cli,
    /// The confirmation link in an email.
    Link,
    /// Taken over from the YAML's `done:`.
    Yaml,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cli => "cli",
            Source::Link => "link",
            Source::Yaml => "yaml",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Source::Cli, Source::Link, Source::Yaml]
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("unknown completion source `{s}`"))
    }
}

/// A completion to record (or, with `undone`, its withdrawal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCompletion {
    pub task: String,
    /// The days the occurrence may fall on; `None`: every occurrence (up to `done_on`).
    pub occurrence: Option<(NaiveDate, NaiveDate)>,
    /// `None`: every office of the task.
    pub office: Option<String>,
    /// The day the work was done.
    pub done_on: NaiveDate,
    pub source: Source,
    pub note: Option<String>,
    /// The client address of a confirmed link.
    pub client: Option<String>,
    /// This row withdraws the completion.
    pub undone: bool,
}

/// One stored row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub id: i64,
    pub recorded_at: DateTime<Utc>,
    pub entry: NewCompletion,
}

const COLUMNS: &str =
    "id, task, occ_from, occ_until, office, done_on, recorded_at, source, note, client, undone";

fn date_col(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Option<NaiveDate>> {
    row.get::<_, Option<String>>(idx)?
        .map(|s| {
            NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, e.into()))
        })
        .transpose()
}

fn map_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Completion> {
    let occurrence = match (date_col(row, 2)?, date_col(row, 3)?) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => None,
    };
    let source: String = row.get(7)?;
    let source = source
        .parse::<Source>()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(7, Type::Text, e.into()))?;
    Ok(Completion {
        id: row.get(0)?,
        recorded_at: from_ts(6, row.get(6)?)?,
        entry: NewCompletion {
            task: row.get(1)?,
            occurrence,
            office: row.get(4)?,
            done_on: date_col(row, 5)?.unwrap_or_default(),
            source,
            note: row.get(8)?,
            client: row.get(9)?,
            undone: row.get::<_, i64>(10)? != 0,
        },
    })
}

impl Ledger {
    /// Appends one completion (or withdrawal) row, recorded at `now`; returns its id.
    pub fn record_completion(
        &mut self,
        c: &NewCompletion,
        now: DateTime<Utc>,
    ) -> Result<i64, LedgerError> {
        self.in_tx(
            crate::t!(
                "bắt đầu ghi một lần hoàn thành",
                "starting to record a completion"
            ),
            crate::t!("ghi một lần hoàn thành", "recording a completion"),
            |tx, path| {
                tx.execute(
                    "INSERT INTO completions (task, occ_from, occ_until, office, done_on, \
                     recorded_at, source, note, client, undone) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    rusqlite::params![
                        c.task,
                        c.occurrence.map(|o| date_str(o.0)),
                        c.occurrence.map(|o| date_str(o.1)),
                        c.office,
                        date_str(c.done_on),
                        ts(now),
                        c.source.as_str(),
                        c.note,
                        c.client,
                        c.undone as i64,
                    ],
                )
                .map_err(sqlerr(
                    path,
                    crate::t!("ghi một lần hoàn thành", "recording a completion"),
                ))?;
                Ok(tx.last_insert_rowid())
            },
        )
    }

    /// Every completion row, oldest first: the audit trail.
    pub fn completion_history(&self) -> Result<Vec<Completion>, LedgerError> {
        let sql = format!("SELECT {COLUMNS} FROM completions ORDER BY id");
        self.read_completions(&sql)
    }

    /// The completions that stand: the newest row of each (task, occurrence, office), unless
    /// it is a withdrawal. Oldest first.
    pub fn completions(&self) -> Result<Vec<Completion>, LedgerError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM completions WHERE id IN (\
               SELECT MAX(id) FROM completions \
               GROUP BY task, IFNULL(occ_from, ''), IFNULL(occ_until, ''), IFNULL(office, '')\
             ) AND undone = 0 ORDER BY id"
        );
        self.read_completions(&sql)
    }

    /// The completion rows `sql` selects (its columns [`COLUMNS`]).
    fn read_completions(&self, sql: &str) -> Result<Vec<Completion>, LedgerError> {
        let what = crate::t!("đọc các lần hoàn thành", "reading completions");
        let mut stmt = self.conn.prepare(sql).map_err(sqlerr(&self.path, what))?;
        stmt.query_map([], map_row)
            .and_then(|rows| rows.collect())
            .map_err(sqlerr(&self.path, what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn entry(office: Option<&str>, undone: bool) -> NewCompletion {
        NewCompletion {
            task: "II.3".into(),
            occurrence: Some((d("2024-01-01"), d("2024-03-31"))),
            office: office.map(str::to_string),
            done_on: d("2024-03-10"),
            source: Source::Cli,
            note: Some("xong".into()),
            client: None,
            undone,
        }
    }

    #[test]
    fn the_newest_row_per_key_stands_and_undo_keeps_the_trail() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.db")).unwrap();
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        l.record_completion(&entry(Some("kstthc"), false), now)
            .unwrap();
        l.record_completion(&entry(None, false), now).unwrap();
        assert_eq!(l.completions().unwrap().len(), 2);
        l.record_completion(&entry(Some("kstthc"), true), now)
            .unwrap();
        let standing = l.completions().unwrap();
        assert_eq!(standing.len(), 1);
        assert_eq!(standing[0].entry.office, None);
        assert_eq!(standing[0].entry, entry(None, false));
        assert_eq!(standing[0].recorded_at, now);
        // Done again after the undo: it stands again; nothing was ever deleted.
        l.record_completion(&entry(Some("kstthc"), false), now)
            .unwrap();
        assert_eq!(l.completions().unwrap().len(), 2);
        assert_eq!(l.completion_history().unwrap().len(), 4);
    }
}
