//! What can go wrong with the ledger, and what to tell the operator about it.

use super::{DeliveryKey, Status};
use rusqlite::ErrorCode;
use std::path::{Path, PathBuf};

/// A status name that is not one of `pending`, `sent`, `retrying`, `failed`, `skipped`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown delivery status {0:?}; expected one of pending, sent, retrying, failed, skipped")]
pub struct ParseStatusError(pub String);

/// Everything that can go wrong with the ledger. Each message names the file and says what to
/// check or do.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(
        "cannot create the folder {} for the ledger: {source}. Is the disk full? Is the parent \
         folder writable by the service user? Is the path right?",
        path.display()
    )]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the ledger {} does not exist. It is created by the daemon on its first run; check the \
         `ledger` path in the configuration, or start the daemon once",
        path.display()
    )]
    Missing { path: PathBuf },

    #[error(
        "the ledger {} is read-only, but the daemon must write to it. Is the file (and its \
         folder, which holds the -wal and -shm files) writable by the service user? Is the \
         filesystem mounted read-only?",
        path.display()
    )]
    ReadOnly { path: PathBuf },

    #[error(
        "the ledger {} was written by a newer nhacviec (schema version {found}, this build knows \
         up to {known}). Upgrade nhacviec, or point this one at another ledger file",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },

    #[error(
        "the ledger {} has schema version {found} but this build needs {known}. Start the daemon \
         once so it upgrades the ledger, then run this command again",
        path.display()
    )]
    OlderSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },

    #[error(
        "cannot write the backup {}: {source}. A backup never overwrites: choose a path that \
         does not exist yet, in a folder the user running this can write",
        path.display()
    )]
    BackupTarget {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the backup {} failed SQLite's integrity check: {report}. It was removed; check the \
         disk, then run the backup again",
        path.display()
    )]
    BackupCorrupt { path: PathBuf, report: String },

    #[error("ledger {}: {action} failed: {source}. {hint}", path.display())]
    Sqlite {
        path: PathBuf,
        action: String,
        hint: &'static str,
        #[source]
        source: Box<rusqlite::Error>,
    },

    #[error(
        "ledger {}: {key} is already {status} (Message-ID {message_id:?}); refusing to send it \
         again. This is a bug in the caller: check `states` before reserving",
        path.display()
    )]
    AlreadyFinal {
        path: PathBuf,
        key: Box<DeliveryKey>,
        status: Status,
        message_id: String,
    },

    #[error(
        "ledger {}: the nudges to reserve were in flight under different messages ({}); re-send \
         each of those messages on its own (see `unfinished`)",
        path.display(), message_ids.join(", ")
    )]
    SplitInFlight {
        path: PathBuf,
        message_ids: Vec<String>,
    },

    #[error("ledger {}: no delivery has Message-ID {message_id:?}", path.display())]
    UnknownMessage { path: PathBuf, message_id: String },

    #[error(
        "ledger {}: the message {message_id:?} is no longer in flight (it is {status}); it was \
         already marked",
        path.display()
    )]
    NotInFlight {
        path: PathBuf,
        message_id: String,
        status: Status,
    },

    #[error("ledger {}: {what}", path.display())]
    InvalidInput { path: PathBuf, what: String },
}

/// What to tell the operator for a given SQLite failure.
fn hint_for(err: &rusqlite::Error) -> &'static str {
    let code = match err {
        rusqlite::Error::SqliteFailure(e, _) => e.code,
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => {
            return "The ledger holds a value this build cannot read; was it edited by hand? \
                    Run `PRAGMA integrity_check` and restore it from a backup if needed.";
        }
        _ => return "This looks like a bug in nhacviec; please report it with this message.",
    };
    match code {
        ErrorCode::DiskFull => {
            "The disk is full: free space on the volume that holds the ledger, then restart."
        }
        ErrorCode::ReadOnly
        | ErrorCode::PermissionDenied
        | ErrorCode::AuthorizationForStatementDenied => {
            "Is the ledger file, and its folder (which holds the -wal and -shm files), writable by \
             the service user? Is the filesystem mounted read-only?"
        }
        ErrorCode::CannotOpen => {
            "Does the folder exist, and is it readable and writable by the service user (SQLite \
             needs to create the -wal and -shm files next to the ledger)? Is the disk full?"
        }
        ErrorCode::SystemIoFailure => {
            "The operating system reported an I/O error: is the disk full? Is the folder writable \
             by the service user? Is the disk failing?"
        }
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
            "Another process holds the ledger locked: is a second nhacviec daemon running on the \
             same file?"
        }
        ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
            "The file is not a nhacviec ledger or is damaged: move it aside and restore it from a \
             backup (the daemon then starts a new one)."
        }
        ErrorCode::ConstraintViolation => {
            "A ledger constraint was violated; this is a bug in nhacviec, please report it."
        }
        _ => "Is the disk full? Is the folder writable by the service user?",
    }
}

/// Turns a SQLite error into one that names the file, the action and what to check.
pub(super) fn sqlerr(
    path: &Path,
    action: &str,
) -> impl FnOnce(rusqlite::Error) -> LedgerError + use<> {
    let path = path.to_path_buf();
    let action = action.to_string();
    move |source| LedgerError::Sqlite {
        path,
        action,
        hint: hint_for(&source),
        source: Box::new(source),
    }
}
