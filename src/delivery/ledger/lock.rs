//! One writer per ledger: a process that sweeps holds an exclusive advisory lock on
//! `<ledger>.lock` (next to the ledger, e.g. `nhacviec.db.lock`) for its whole life.
//!
//! Two sweeping processes on one ledger would both find the same nudges due and both send
//! them: SQLite's own locking only orders their writes. The lock is an `flock` on an open
//! file, so the kernel drops it when the process ends however it ends (SIGKILL, a crash): a
//! stale lock file never blocks a restart. The holder writes its PID into the file, so that
//! the one refused can say who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

/// Held for as long as the process sweeps; dropping it (or the process ending) releases
/// the lock.
#[derive(Debug)]
pub struct WriterLock {
    path: PathBuf,
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}", crate::tr!(
        "sổ gửi {} đang được một tiến trình nhacviec khác dùng ({}, giữ tệp khóa {}); mỗi lúc chỉ một tiến trình được gửi từ một sổ gửi. Hãy dừng tiến trình đó trước (`systemctl stop nhacviec` nếu đó là dịch vụ), hoặc cho tiến trình này dùng sổ gửi khác",
        "the ledger {} is in use by another nhacviec process ({}, holding the lock file {}); only one process may send from a ledger at a time. Stop that process first (`systemctl stop nhacviec` if it is the service), or point this one at another ledger",
        ledger.display(), holder, lock.display()
    ))]
    Held {
        ledger: PathBuf,
        lock: PathBuf,
        holder: String,
    },

    #[error("{}", crate::tr!(
        "không khóa được sổ gửi {} qua tệp khóa {}: {}. Người dùng của dịch vụ có ghi được vào thư mục đó không? Ổ đĩa có đầy không?",
        "cannot lock the ledger {} through the lock file {}: {}. Is its folder writable by the service user? Is the disk full?",
        ledger.display(), lock.display(), source
    ))]
    Io {
        ledger: PathBuf,
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}", crate::tr!(
        "sổ gửi {} nằm trên hệ thống tệp chỉ đọc (read-only): không ghi được tệp khóa {}, và cũng không ghi được sổ gửi. Hãy gắn lại thư mục đó ở chế độ ghi được, hoặc đặt `ledger: path:` ở nơi khác",
        "the ledger {} is on a read-only filesystem: the lock file {} cannot be written, and neither can the ledger. Remount its folder writable, or set `ledger: path:` elsewhere",
        ledger.display(), lock.display()
    ))]
    ReadOnly { ledger: PathBuf, lock: PathBuf },
}

/// The lock file of the ledger at `ledger`: the same name with `.lock` appended.
pub fn lock_path(ledger: &Path) -> PathBuf {
    let mut name = ledger.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl WriterLock {
    /// Takes the ledger's writer lock, or fails at once if another process holds it. Creates
    /// the ledger's folder if needed (as [`Ledger::open`](super::Ledger::open) would).
    pub fn acquire(ledger: &Path) -> Result<WriterLock, LockError> {
        let lock = lock_path(ledger);
        let io = |source: std::io::Error| {
            let (ledger, lock) = (ledger.to_path_buf(), lock.clone());
            if source.kind() == std::io::ErrorKind::ReadOnlyFilesystem {
                LockError::ReadOnly { ledger, lock }
            } else {
                LockError::Io {
                    ledger,
                    lock,
                    source,
                }
            }
        };
        if let Some(parent) = lock.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        // Not truncated on open: until the lock is ours, the PID in it is the holder's.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut held = String::new();
                // The holder may be between truncating and writing: then no PID is known.
                let _ = file.read_to_string(&mut held);
                let holder = match held.trim().parse::<u32>() {
                    Ok(pid) => format!("PID {pid}"),
                    Err(_) => crate::t!("PID không rõ", "PID unknown").to_string(),
                };
                return Err(LockError::Held {
                    ledger: ledger.to_path_buf(),
                    lock,
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .map_err(io)?;
        Ok(WriterLock {
            path: lock,
            _file: file,
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_ledger_is_refused_with_the_holders_pid_until_the_first_is_dropped() {
        crate::i18n::set_for_thread(Some(crate::i18n::Lang::En));
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("state").join("nhacviec.db");
        let first = WriterLock::acquire(&ledger).unwrap();
        assert_eq!(
            first.path(),
            dir.path().join("state").join("nhacviec.db.lock")
        );
        assert_eq!(
            std::fs::read_to_string(first.path()).unwrap().trim(),
            std::process::id().to_string()
        );
        // flock locks belong to the open file: a second open in this process conflicts too.
        let err = WriterLock::acquire(&ledger).unwrap_err().to_string();
        assert!(err.contains("in use by another nhacviec process"), "{err}");
        assert!(
            err.contains(&format!("PID {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("nhacviec.db.lock"), "{err}");
        drop(first);
        let again = WriterLock::acquire(&ledger).unwrap();
        // Another ledger in the same folder has its own lock.
        WriterLock::acquire(&dir.path().join("state").join("other.db")).unwrap();
        drop(again);
    }
}
