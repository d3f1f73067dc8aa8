//! `nhacviec ledger backup`: a consistent copy of the ledger through SQLite's online backup
//! API, safe while the daemon writes to it.
//!
//! Copying `nhacviec.db` alone is not a backup: in WAL mode the latest commits live in
//! `nhacviec.db-wal` until a checkpoint, so such a copy lacks them, and a daemon started on
//! it sends those emails again. The backup API reads through SQLite, WAL included, in one
//! read transaction: the copy is the ledger as of one commit.

use super::Ledger;
use super::error::{LedgerError, sqlerr};
use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a backup copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub path: PathBuf,
    pub deliveries: i64,
    pub sweeps: i64,
    pub completions: i64,
    pub bytes: u64,
}

/// How long a backup waits for a writer that holds the ledger locked (SQLITE_BUSY).
const BUSY_WAIT: Duration = Duration::from_secs(30);

impl Ledger {
    /// Copies this ledger to `dest`, which must not exist yet, and checks the copy with
    /// `PRAGMA integrity_check`.
    pub fn backup_to(&self, dest: &Path) -> Result<BackupReport, LedgerError> {
        // create_new: never overwrites, and no other process can slip a file in between.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)
            .map_err(|source| LedgerError::BackupTarget {
                path: dest.to_path_buf(),
                source,
            })?;
        let result = self.copy_into(dest);
        if result.is_err() {
            // A partial copy is no backup; leave nothing that could be mistaken for one.
            let _ = std::fs::remove_file(dest);
            let mut wal = dest.as_os_str().to_owned();
            wal.push("-wal");
            let _ = std::fs::remove_file(PathBuf::from(wal));
        }
        result
    }

    fn copy_into(&self, dest: &Path) -> Result<BackupReport, LedgerError> {
        let mut to = Connection::open(dest).map_err(sqlerr(dest, "opening the backup"))?;
        {
            let backup =
                Backup::new(&self.conn, &mut to).map_err(sqlerr(dest, "starting the backup"))?;
            let started = Instant::now();
            loop {
                // -1: every page in one step, so one read transaction, so one consistent state.
                match backup
                    .step(-1)
                    .map_err(sqlerr(dest, "copying the ledger into"))?
                {
                    StepResult::Done => break,
                    StepResult::Busy | StepResult::Locked if started.elapsed() < BUSY_WAIT => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    StepResult::More => {}
                    _ => {
                        return Err(sqlerr(dest, "copying the ledger into")(
                            rusqlite::Error::SqliteFailure(
                                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                                Some("the ledger stayed locked".into()),
                            ),
                        ));
                    }
                }
            }
        }
        let check: String = to
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(sqlerr(dest, "checking the backup"))?;
        if check != "ok" {
            return Err(LedgerError::BackupCorrupt {
                path: dest.to_path_buf(),
                report: check,
            });
        }
        let count = |table: &str| -> Result<i64, LedgerError> {
            to.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .map_err(sqlerr(dest, &format!("counting the {table} of the backup")))
        };
        let (deliveries, sweeps, completions) = (
            count("deliveries")?,
            count("sweeps")?,
            count("completions")?,
        );
        // The copy keeps the source's WAL mode: fold its WAL into the file, so that the
        // one file is the whole backup.
        to.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(sqlerr(dest, "checkpointing the backup"))?;
        drop(to);
        let bytes = std::fs::metadata(dest)
            .map_err(|source| LedgerError::BackupTarget {
                path: dest.to_path_buf(),
                source,
            })?
            .len();
        Ok(BackupReport {
            path: dest.to_path_buf(),
            deliveries,
            sweeps,
            completions,
            bytes,
        })
    }
}
