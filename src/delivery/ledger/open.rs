//! Opening the ledger (for the daemon, read-only for `log`, or as an in-memory scratch copy)
//! and migrating its schema.

use super::error::{LedgerError, sqlerr};
use super::{Ledger, LogFilter};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
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
    // 2: every sweep, so that a first start is told from downtime, and a first start's
    // backlog is implied by its as-of time instead of a row per nudge. A ledger that already
    // holds deliveries was started before: the oldest due time stands for its first sweep
    // (every nudge missed before that had its own skipped row).
    r#"
    CREATE TABLE sweeps (
        id       INTEGER PRIMARY KEY,
        as_of    INTEGER NOT NULL,
        started  INTEGER NOT NULL,
        finished INTEGER,
        sendable INTEGER NOT NULL DEFAULT 0 CHECK (sendable IN (0, 1)),
        complete INTEGER NOT NULL DEFAULT 0 CHECK (complete IN (0, 1)),
        sent     INTEGER NOT NULL DEFAULT 0,
        skipped  INTEGER NOT NULL DEFAULT 0,
        settled  INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    INSERT INTO sweeps (as_of, started, finished, sendable, complete)
        SELECT MIN(due_at), MIN(created_at), MIN(created_at), 1, 1 FROM deliveries
        HAVING COUNT(*) > 0;
    "#,
    IDENTITY_MIGRATION,
    // 4: completions, an audit trail of `done`, `undone` and confirmed links.
    completions_migration(),
];

/// 3: the ledger's identity, a random id made when it is created (or first migrated), so
/// that a deleted or replaced ledger is told from the one used before (see
/// [`guard`](super::guard)).
const IDENTITY_MIGRATION: &str = r#"
    CREATE TABLE identity (
        id TEXT NOT NULL
    ) STRICT;
    INSERT INTO identity (id) VALUES (lower(hex(randomblob(16))));
"#;

/// The completions table: its own entry, so that it renumbers easily next to others.
const fn completions_migration() -> &'static str {
    super::completions::MIGRATION
}

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite's `synchronous` in WAL mode. Both survive a crash of the process: a commit is in
/// the WAL file (the kernel's page cache) before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Synchronous {
    /// Every commit is fsynced: it also survives a power cut.
    Full,
    /// No fsync at commit: a power cut may lose the commits since the last fsync (the next
    /// FULL commit or checkpoint makes them durable too).
    Normal,
}

impl Ledger {
    /// An in-memory ledger holding a copy of what `path` holds (nothing if it does not exist
    /// yet): a dry run plans against the real history and writes nothing anywhere.
    pub fn scratch_copy(path: &Path) -> Result<Ledger, LedgerError> {
        let conn = Connection::open_in_memory().map_err(sqlerr(
            path,
            crate::t!("mở bản sao tạm của", "opening a scratch copy of"),
        ))?;
        let mut ledger = Ledger {
            conn,
            path: path.to_path_buf(),
        };
        ledger.migrate()?;
        if path.is_file() {
            // Read through a read-only handle so that not even a WAL checkpoint touches it.
            let real = Ledger::open_read_only(path)?;
            let rows = real.query(&LogFilter::default())?;
            let sweeps = real.sweeps()?;
            let completions = real.completion_history()?;
            ledger.in_tx("copying", crate::t!("sao chép", "copying"), |tx, path| {
                for (id, as_of, started, finished, sendable, complete) in sweeps {
                    tx.execute(
                        "INSERT INTO sweeps (id, as_of, started, finished, sendable, complete) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        rusqlite::params![id, as_of, started, finished, sendable, complete],
                    )
                    .map_err(sqlerr(path, crate::t!("sao chép", "copying")))?;
                }
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
                    .map_err(sqlerr(path, crate::t!("sao chép", "copying")))?;
                }
                Ok(())
            })?;
            for c in completions {
                ledger.record_completion(&c.entry, c.recorded_at)?;
            }
        }
        Ok(ledger)
    }

    /// Opens (creating if needed) the ledger for the daemon: creates the parent folder, sets
    /// WAL mode, FULL synchronous commits, a busy timeout and foreign keys, and runs the
    /// schema migrations.
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
        let conn = Connection::open_with_flags(path, flags)
            .map_err(sqlerr(path, crate::t!("mở", "opening")))?;
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
        let conn = Connection::open_with_flags(path, flags)
            .map_err(sqlerr(path, crate::t!("mở chỉ đọc", "opening read-only")))?;
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
        self.conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlerr(
            &self.path,
            crate::t!("đặt thời gian chờ khi bận", "setting the busy timeout"),
        ))?;
        if !read_only {
            let mode: String = self
                .conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(sqlerr(
                    &self.path,
                    crate::t!(
                        "chuyển sang chế độ nhật ký WAL",
                        "switching to WAL journal mode"
                    ),
                ))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(ledger = %self.path.display(), mode, "ledger is not in WAL mode");
            }
        }
        // FULL by default: in WAL mode NORMAL may lose the last commits on power loss, and
        // losing a `pending` reservation of an email that then went out means sending it
        // again under a new Message-ID that nobody can de-duplicate. Only outcomes, whose loss
        // costs a re-send under the same Message-ID, are committed at NORMAL (see
        // `finish_scoped`).
        self.set_synchronous(Synchronous::Full)?;
        self.conn
            .pragma_update(None, "foreign_keys", true)
            .map_err(sqlerr(
                &self.path,
                crate::t!("bật khóa ngoại", "enabling foreign keys"),
            ))?;
        Ok(())
    }

    /// How durable the next commits are: see [`Synchronous`].
    pub(super) fn set_synchronous(&self, level: Synchronous) -> Result<(), LedgerError> {
        let (value, what) = match level {
            Synchronous::Full => (
                "FULL",
                crate::t!("đặt synchronous = FULL", "setting synchronous = FULL"),
            ),
            Synchronous::Normal => (
                "NORMAL",
                crate::t!("đặt synchronous = NORMAL", "setting synchronous = NORMAL"),
            ),
        };
        self.conn
            .pragma_update(None, "synchronous", value)
            .map_err(sqlerr(&self.path, what))
    }

    fn user_version(&self) -> Result<i64, LedgerError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sqlerr(
                &self.path,
                crate::t!("đọc phiên bản lược đồ", "reading the schema version"),
            ))
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
            let step = crate::tr!(
                "nâng lược đồ lên phiên bản {version}",
                "migrating the schema to version {version}"
            );
            let migrated = self.in_tx(
                &crate::tr!("bắt đầu nâng cấp {version}", "starting migration {version}"),
                &step,
                |tx, path| {
                    // Another process may have migrated while we waited for the lock.
                    let now_at: i64 = tx
                        .query_row("PRAGMA user_version", [], |r| r.get(0))
                        .map_err(sqlerr(
                            path,
                            crate::t!("đọc phiên bản lược đồ", "reading the schema version"),
                        ))?;
                    if now_at >= version {
                        return Ok(false);
                    }
                    tx.execute_batch(sql)
                        .and_then(|()| tx.pragma_update(None, "user_version", version))
                        .map_err(sqlerr(path, &step))?;
                    Ok(true)
                },
            )?;
            if !migrated {
                continue;
            }
            tracing::info!(ledger = %self.path.display(), version, "ledger schema migrated");
        }
        Ok(())
    }
}
