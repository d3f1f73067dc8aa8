//! The ledger guards itself against the two ways it was seen to go wrong:
//!
//! - **A run as of an earlier moment than the last sweep** (`run --at` used as a preview
//!   against the real ledger, or the daemon started afterwards): the ledger already holds a
//!   later history, so reminders in between would be judged against it. Refused; previews
//!   use `run --dry-run`, which writes nothing.
//! - **A ledger that is not the one used before**: deleted, emptied (a 0-byte file) or
//!   replaced, it would re-send every reminder in the catch-up window. At its first use the
//!   daemon writes [`STATE_FILE`] next to the ledger, holding the ledger's identity (a
//!   random id made with it). A start whose ledger has another identity, or an empty ledger
//!   where the state folder shows earlier use (the state file, or `.eml` files in the
//!   outbox), is refused until the admin runs `nhacviec ledger reset --confirm`, which
//!   records the ledger now in place as the one to use.

use super::Ledger;
use super::error::sqlerr;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

/// The state file's name, in the ledger's folder.
pub const STATE_FILE: &str = "nhacviec.state";

/// A run a start refuses; the text says what to do.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("{}", crate::tr!(
        "sổ gửi {} đã ghi một lần quét lúc {}, muộn hơn thời điểm của lần chạy này {}: \
         chạy như thể ở một thời điểm sớm hơn sẽ xét các lần nhắc theo một lịch sử muộn hơn \
         (và một lần chạy thật ở thời điểm muộn hơn sẽ ghi các lần nhắc ở giữa là đã lỡ). Để \
         xem trước, hãy dùng `nhacviec run --dry-run --at …`, lệnh này không ghi gì",
        "the ledger {} already records a sweep as of {}, later than this run's time {}: \
         a run as of an earlier moment would judge reminders against a later history (and a \
         real run at a later moment records the reminders in between as missed). For a \
         preview use `nhacviec run --dry-run --at …`, which writes nothing",
        ledger.display(), last, at
    ))]
    EarlierThanLastSweep {
        ledger: PathBuf,
        at: DateTime<Utc>,
        last: DateTime<Utc>,
    },
    #[error("{}", crate::tr!(
        "sổ gửi {} không phải sổ nhacviec đã dùng trước đây ({}): nó đã bị xóa, làm trống hoặc \
         thay thế, và chạy với nó sẽ gửi lại mọi lần nhắc còn trong khoảng gửi bù. Hãy đặt \
         lại sổ cũ, hoặc, để bắt đầu lại với sổ này, chạy \
         `nhacviec ledger reset --confirm -c <cấu hình>`",
        "the ledger {} is not the one nhacviec used before ({}): it was deleted, emptied or \
         replaced, and starting with it would send again every reminder still in the catch-up \
         window. Put the old ledger back, or, to start afresh with this one, run \
         `nhacviec ledger reset --confirm -c <config>`",
        ledger.display(),
        why
    ))]
    NotTheSameLedger { ledger: PathBuf, why: String },
    #[error(transparent)]
    Ledger(#[from] super::LedgerError),
    #[error("{}", match what {
        StateOp::Read => crate::tr!("không đọc được {}: {}", "cannot read {}: {}", path.display(), source),
        StateOp::Write => crate::tr!("không ghi được {}: {}", "cannot write {}: {}", path.display(), source),
    })]
    State {
        what: StateOp,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What was being done with the state file when it failed.
#[derive(Debug, Clone, Copy)]
pub enum StateOp {
    Read,
    Write,
}

/// Where the state file of the ledger at `ledger` is.
pub fn state_path(ledger: &Path) -> PathBuf {
    ledger
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join(STATE_FILE)
}

impl Ledger {
    /// The random id the ledger was created with.
    pub fn identity(&self) -> Result<String, super::LedgerError> {
        self.conn
            .query_row("SELECT id FROM identity LIMIT 1", [], |r| r.get(0))
            .map_err(sqlerr(
                &self.path,
                crate::t!("đọc định danh của sổ gửi", "reading the ledger's identity"),
            ))
    }

    /// The as-of time of the latest sweep recorded.
    pub fn last_sweep_as_of(&self) -> Result<Option<DateTime<Utc>>, super::LedgerError> {
        let t: Option<i64> = self
            .conn
            .query_row("SELECT MAX(as_of) FROM sweeps", [], |r| r.get(0))
            .map_err(sqlerr(
                &self.path,
                crate::t!("đọc lần quét gần nhất", "reading the last sweep"),
            ))?;
        Ok(t.and_then(|t| DateTime::from_timestamp(t, 0)))
    }

    /// Whether anything was ever recorded: a sweep or a delivery.
    fn has_history(&self) -> Result<bool, super::LedgerError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sweeps) OR EXISTS (SELECT 1 FROM deliveries)",
                [],
                |r| r.get(0),
            )
            .map_err(sqlerr(
                &self.path,
                crate::t!("đọc lịch sử của sổ gửi", "reading the ledger's history"),
            ))
    }
}

/// How much earlier than the last sweep a run may start without being refused: a run
/// repeated at the same `--at` starts a little before the sweeps of the first one (whose
/// clock ran on while it sent and retried).
const GRACE: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Checked before a real run (the daemon or `--once`) touches the ledger: refuses a start
/// as of a moment earlier than the last sweep (`at`: the run's as-of time, `None` for the
/// clock), and a ledger that is not the one used before. `outbox`: the outbox folder, when
/// the transport is one. At the first use, writes the state file.
pub fn check_start(
    ledger: &Ledger,
    at: Option<DateTime<Utc>>,
    outbox: Option<&Path>,
) -> Result<(), GuardError> {
    if let (Some(at), Some(last)) = (at, ledger.last_sweep_as_of()?)
        && at + GRACE < last
    {
        return Err(GuardError::EarlierThanLastSweep {
            ledger: ledger.path.clone(),
            at,
            last,
        });
    }
    let id = ledger.identity()?;
    let state = state_path(&ledger.path);
    match read_state(&state)? {
        Some(recorded) if recorded == id => Ok(()),
        Some(recorded) => Err(GuardError::NotTheSameLedger {
            ledger: ledger.path.clone(),
            why: crate::tr!(
                "{} ghi tên sổ gửi {recorded}; sổ này là {id}",
                "{} names the ledger {recorded}; this one is {id}",
                state.display()
            ),
        }),
        None => {
            if !ledger.has_history()?
                && let Some(dir) = outbox
                && let Some(eml) = first_eml(dir)
            {
                return Err(GuardError::NotTheSameLedger {
                    ledger: ledger.path.clone(),
                    why: crate::tr!(
                        "nó trống, nhưng hộp thư đi đã có {} và không có {}",
                        "it is empty, but the outbox already holds {} and there is no {}",
                        eml.display(),
                        state.display()
                    ),
                });
            }
            // The first use (or the first since this guard exists): this is the ledger.
            write_state(&state, &id)
        }
    }
}

/// `ledger reset --confirm`: the ledger now in place is the one to use from now on.
pub fn confirm(ledger: &Ledger) -> Result<PathBuf, GuardError> {
    let state = state_path(&ledger.path);
    write_state(&state, &ledger.identity()?)?;
    Ok(state)
}

fn read_state(path: &Path) -> Result<Option<String>, GuardError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("ledger "))
            .map(|s| s.trim().to_string())
            // A state file without the line (damaged) names no ledger: not this one.
            .or(Some(String::new()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(GuardError::State {
            what: StateOp::Read,
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Written whole or not at all (a temporary file, fsynced, renamed): a kill in the middle
/// must not leave a half file that names no ledger and blocks the next start.
fn write_state(path: &Path, id: &str) -> Result<(), GuardError> {
    use std::io::Write;
    let text = format!(
        "# nhacviec: the ledger next to this file is the one in use. Do not edit; see\n\
         # `nhacviec ledger reset --confirm`.\nledger {id}\n"
    );
    let tmp = path.with_extension("state.tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        GuardError::State {
            what: StateOp::Write,
            path: path.to_path_buf(),
            source,
        }
    })
}

fn first_eml(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "eml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_ledger_is_refused_until_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let first = Ledger::open(&path).unwrap();
        check_start(&first, None, None).unwrap();
        assert!(state_path(&path).is_file());
        check_start(&first, None, None).unwrap();
        drop(first);
        std::fs::remove_file(&path).unwrap();
        let second = Ledger::open(&path).unwrap();
        let e = check_start(&second, None, None).unwrap_err();
        assert!(e.to_string().contains("ledger reset --confirm"), "{e}");
        confirm(&second).unwrap();
        check_start(&second, None, None).unwrap();
    }

    #[test]
    fn an_empty_ledger_beside_a_used_outbox_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        std::fs::create_dir(&outbox).unwrap();
        std::fs::write(outbox.join("20240125-080000-x.eml"), "x").unwrap();
        let ledger = Ledger::open(&dir.path().join("ledger.db")).unwrap();
        let e = check_start(&ledger, None, Some(&outbox)).unwrap_err();
        assert!(e.to_string().contains("20240125-080000-x.eml"), "{e}");
        assert!(!state_path(ledger.path()).exists());
    }
}
