//! What can go wrong with the ledger, and what to tell the operator about it.

use super::{DeliveryKey, Status};
use rusqlite::ErrorCode;
use std::path::{Path, PathBuf};

/// A status name that is not one of `pending`, `sent`, `retrying`, `failed`, `skipped`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", crate::tr!(
    "trạng thái gửi không rõ {:?}; cần là một trong pending, sent, retrying, failed, skipped",
    "unknown delivery status {:?}; expected one of pending, sent, retrying, failed, skipped",
    .0
))]
pub struct ParseStatusError(pub String);

/// Everything that can go wrong with the ledger. Each message names the file and says what to
/// check or do.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{}", crate::tr!(
        "không tạo được thư mục {} cho sổ gửi: {}. Đĩa có đầy không? Thư mục cha có cho người \
         dùng của dịch vụ ghi không? Đường dẫn có đúng không?",
        "cannot create the folder {} for the ledger: {}. Is the disk full? Is the parent \
         folder writable by the service user? Is the path right?",
        path.display(), source
    ))]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}", crate::tr!(
        "sổ gửi {} không tồn tại. Tiến trình nền tạo nó ở lần chạy đầu; hãy kiểm tra đường dẫn \
         `ledger` trong cấu hình, hoặc chạy tiến trình nền một lần",
        "the ledger {} does not exist. It is created by the daemon on its first run; check the \
         `ledger` path in the configuration, or start the daemon once",
        path.display()
    ))]
    Missing { path: PathBuf },

    #[error("{}", crate::tr!(
        "sổ gửi {} chỉ đọc được, nhưng tiến trình nền phải ghi vào nó. Tệp (và thư mục của nó, \
         nơi có các tệp -wal và -shm) có cho người dùng của dịch vụ ghi không? Hệ thống tệp có \
         bị gắn chỉ đọc không?",
        "the ledger {} is read-only, but the daemon must write to it. Is the file (and its \
         folder, which holds the -wal and -shm files) writable by the service user? Is the \
         filesystem mounted read-only?",
        path.display()
    ))]
    ReadOnly { path: PathBuf },

    #[error("{}", crate::tr!(
        "sổ gửi {} do một bản nhacviec mới hơn ghi (phiên bản lược đồ {}, bản này chỉ biết \
         đến {}). Hãy nâng cấp nhacviec, hoặc chỉ bản này sang một tệp sổ gửi khác",
        "the ledger {} was written by a newer nhacviec (schema version {}, this build knows \
         up to {}). Upgrade nhacviec, or point this one at another ledger file",
        path.display(), found, known
    ))]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },

    #[error("{}", crate::tr!(
        "sổ gửi {} có phiên bản lược đồ {} nhưng bản này cần {}. Hãy chạy tiến trình nền một \
         lần để nó nâng cấp sổ gửi, rồi chạy lại lệnh này",
        "the ledger {} has schema version {} but this build needs {}. Start the daemon \
         once so it upgrades the ledger, then run this command again",
        path.display(), found, known
    ))]
    OlderSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },

    #[error("{}", crate::tr!(
        "không ghi được bản sao lưu {}: {}. Sao lưu không bao giờ ghi đè: chọn một đường dẫn chưa có, trong thư mục người chạy lệnh ghi được",
        "cannot write the backup {}: {}. A backup never overwrites: choose a path that does not exist yet, in a folder the user running this can write",
        path.display(), source
    ))]
    BackupTarget {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}", crate::tr!(
        "bản sao lưu {} không qua được kiểm tra toàn vẹn của SQLite: {}. Bản sao đã bị xóa; kiểm tra ổ đĩa rồi sao lưu lại",
        "the backup {} failed SQLite's integrity check: {}. It was removed; check the disk, then run the backup again",
        path.display(), report
    ))]
    BackupCorrupt { path: PathBuf, report: String },

    #[error("{}", crate::tr!(
        "sổ gửi {}: {} thất bại: {}. {}",
        "ledger {}: {} failed: {}. {}",
        path.display(), action, source, hint
    ))]
    Sqlite {
        path: PathBuf,
        action: String,
        hint: &'static str,
        #[source]
        source: Box<rusqlite::Error>,
    },

    #[error("{}", crate::tr!(
        "sổ gửi {}: {} đã ở trạng thái {} (Message-ID {:?}); không gửi lại. Đây là lỗi của \
         nơi gọi: hãy xem `states` trước khi giữ chỗ",
        "ledger {}: {} is already {} (Message-ID {:?}); refusing to send it \
         again. This is a bug in the caller: check `states` before reserving",
        path.display(), key, status, message_id
    ))]
    AlreadyFinal {
        path: PathBuf,
        key: Box<DeliveryKey>,
        status: Status,
        message_id: String,
    },

    #[error("{}", crate::tr!(
        "sổ gửi {}: các lần nhắc cần giữ chỗ đang được gửi trong những thư khác nhau ({}); hãy \
         gửi lại riêng từng thư đó (xem `unfinished`)",
        "ledger {}: the nudges to reserve were in flight under different messages ({}); re-send \
         each of those messages on its own (see `unfinished`)",
        path.display(), message_ids.join(", ")
    ))]
    SplitInFlight {
        path: PathBuf,
        message_ids: Vec<String>,
    },

    #[error("{}", crate::tr!(
        "sổ gửi {}: không lần gửi nào có Message-ID {:?}",
        "ledger {}: no delivery has Message-ID {:?}",
        path.display(), message_id
    ))]
    UnknownMessage { path: PathBuf, message_id: String },

    #[error("{}", crate::tr!(
        "sổ gửi {}: thư {:?} không còn đang gửi (nó đã ở trạng thái {}); nó đã được đánh dấu",
        "ledger {}: the message {:?} is no longer in flight (it is {}); it was \
         already marked",
        path.display(), message_id, status
    ))]
    NotInFlight {
        path: PathBuf,
        message_id: String,
        status: Status,
    },

    #[error("{}", crate::tr!("sổ gửi {}: {}", "ledger {}: {}", path.display(), what))]
    InvalidInput { path: PathBuf, what: String },
}

/// What to tell the operator for a given SQLite failure.
fn hint_for(err: &rusqlite::Error) -> &'static str {
    let code = match err {
        rusqlite::Error::SqliteFailure(e, _) => e.code,
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => {
            return crate::t!(
                "Sổ gửi có một giá trị bản này không đọc được; có ai sửa tay không? Hãy chạy \
                 `PRAGMA integrity_check` và khôi phục từ bản sao lưu nếu cần.",
                "The ledger holds a value this build cannot read; was it edited by hand? \
                 Run `PRAGMA integrity_check` and restore it from a backup if needed."
            );
        }
        _ => {
            return crate::t!(
                "Có vẻ đây là lỗi của nhacviec; hãy báo lỗi kèm thông báo này.",
                "This looks like a bug in nhacviec; please report it with this message."
            );
        }
    };
    match code {
        ErrorCode::DiskFull => {
            crate::t!(
                "Đĩa đã đầy: hãy giải phóng chỗ trên ổ chứa sổ gửi, rồi khởi động lại.",
                "The disk is full: free space on the volume that holds the ledger, then restart."
            )
        }
        ErrorCode::ReadOnly
        | ErrorCode::PermissionDenied
        | ErrorCode::AuthorizationForStatementDenied => {
            crate::t!(
                "Tệp sổ gửi và thư mục của nó (nơi có các tệp -wal và -shm) có cho người dùng của \
                 dịch vụ ghi không? Hệ thống tệp có bị gắn chỉ đọc không?",
                "Is the ledger file, and its folder (which holds the -wal and -shm files), writable by \
                 the service user? Is the filesystem mounted read-only?"
            )
        }
        ErrorCode::CannotOpen => {
            crate::t!(
                "Thư mục có tồn tại, và người dùng của dịch vụ có đọc và ghi được không (SQLite \
                 cần tạo các tệp -wal và -shm cạnh sổ gửi)? Đĩa có đầy không?",
                "Does the folder exist, and is it readable and writable by the service user (SQLite \
                 needs to create the -wal and -shm files next to the ledger)? Is the disk full?"
            )
        }
        ErrorCode::SystemIoFailure => {
            crate::t!(
                "Hệ điều hành báo lỗi vào/ra: đĩa có đầy không? Thư mục có cho người dùng của dịch \
                 vụ ghi không? Đĩa có đang hỏng không?",
                "The operating system reported an I/O error: is the disk full? Is the folder writable \
                 by the service user? Is the disk failing?"
            )
        }
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
            crate::t!(
                "Một tiến trình khác đang khóa sổ gửi: có tiến trình nền nhacviec thứ hai chạy trên \
                 cùng tệp không?",
                "Another process holds the ledger locked: is a second nhacviec daemon running on the \
                 same file?"
            )
        }
        ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
            crate::t!(
                "Tệp không phải sổ gửi của nhacviec hoặc đã hỏng: hãy chuyển nó sang chỗ khác và \
                 khôi phục từ bản sao lưu (nếu không, tiến trình nền sẽ tạo sổ mới).",
                "The file is not a nhacviec ledger or is damaged: move it aside and restore it from a \
                 backup (the daemon then starts a new one)."
            )
        }
        ErrorCode::ConstraintViolation => {
            crate::t!(
                "Một ràng buộc của sổ gửi bị vi phạm; đây là lỗi của nhacviec, hãy báo lỗi.",
                "A ledger constraint was violated; this is a bug in nhacviec, please report it."
            )
        }
        _ => crate::t!(
            "Đĩa có đầy không? Thư mục có cho người dùng của dịch vụ ghi không?",
            "Is the disk full? Is the folder writable by the service user?"
        ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{Lang, scoped};

    #[test]
    fn ledger_errors_and_their_hints_speak_the_chosen_language() {
        let missing = || {
            LedgerError::Missing {
                path: PathBuf::from("so-gui.db"),
            }
            .to_string()
        };
        let vi = scoped(Lang::Vi, missing);
        assert!(vi.starts_with("sổ gửi so-gui.db không tồn tại"), "{vi}");
        let en = scoped(Lang::En, missing);
        assert!(
            en.starts_with("the ledger so-gui.db does not exist"),
            "{en}"
        );
        let busy = || {
            let e = rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                None,
            );
            sqlerr(Path::new("so-gui.db"), "write")(e).to_string()
        };
        let vi = scoped(Lang::Vi, busy);
        assert!(vi.contains("Một tiến trình khác đang khóa sổ gửi"), "{vi}");
        let en = scoped(Lang::En, busy);
        assert!(
            en.contains("Another process holds the ledger locked"),
            "{en}"
        );
    }
}
