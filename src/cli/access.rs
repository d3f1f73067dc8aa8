//! Whether the ledger can be read by whoever runs the command, and what to do when not.

use anyhow::{Result, anyhow};
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// `Ok(false)`: there is no ledger yet (a fresh install). `Ok(true)`: it can be opened for
/// reading. An error: it exists but this user may not read it; the message says what to do.
pub fn ledger_readable(path: &Path) -> Result<bool> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            return Err(denied(path, nearest_group(path)));
        }
        Err(e) => return Err(cannot_read(path, e)),
    };
    match std::fs::File::open(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            let group = (meta.mode() & 0o040 != 0).then(|| meta.gid());
            Err(denied(path, group.and_then(group_name)))
        }
        Err(e) => Err(cannot_read(path, e)),
    }
}

fn cannot_read(path: &Path, e: std::io::Error) -> anyhow::Error {
    let path = path.display();
    anyhow!(crate::tr!(
        "không đọc được sổ gửi {path}: {e}",
        "cannot read the ledger {path}: {e}"
    ))
}

/// The message, in one place for the message catalogue.
fn denied(path: &Path, group: Option<String>) -> anyhow::Error {
    let who = match group {
        Some(g) => crate::tr!(
            "hãy chạy với quyền root (sudo) hoặc bằng một thành viên của nhóm `{g}`",
            "run as root (sudo) or as a member of the group `{g}`"
        ),
        None => crate::tr!(
            "hãy chạy với quyền root (sudo nhacviec …)",
            "run as root (sudo nhacviec …)"
        ),
    };
    let path = path.display();
    anyhow!(crate::tr!(
        "không đọc được sổ gửi {path}: không có quyền — {who}",
        "cannot read the ledger {path}: permission denied — {who}"
    ))
}

/// The group that may read the nearest folder above `path` this user can see, if any.
fn nearest_group(path: &Path) -> Option<String> {
    let meta = path
        .ancestors()
        .skip(1)
        .find_map(|p| std::fs::metadata(p).ok())?;
    (meta.mode() & 0o050 == 0o050)
        .then(|| meta.gid())
        .and_then(group_name)
}

/// The name of group `gid`, from /etc/group.
fn group_name(gid: u32) -> Option<String> {
    if gid == 0 {
        return None;
    }
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id = f.nth(1)?.parse::<u32>().ok()?;
        (id == gid).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ledger_is_a_fresh_install() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!ledger_readable(&dir.path().join("nhacviec.db")).unwrap());
        let f = dir.path().join("x.db");
        std::fs::write(&f, b"").unwrap();
        assert!(ledger_readable(&f).unwrap());
    }

    #[test]
    fn the_message_says_what_to_do() {
        let vi = crate::i18n::scoped(crate::i18n::Lang::Vi, || {
            denied(Path::new("/var/lib/nhacviec/nhacviec.db"), None).to_string()
        });
        assert_eq!(
            vi,
            "không đọc được sổ gửi /var/lib/nhacviec/nhacviec.db: không có quyền — hãy chạy với quyền root (sudo nhacviec …)"
        );
        crate::i18n::set_for_thread(Some(crate::i18n::Lang::En));
        let e = denied(Path::new("/var/lib/nhacviec/nhacviec.db"), None).to_string();
        assert_eq!(
            e,
            "cannot read the ledger /var/lib/nhacviec/nhacviec.db: permission denied — run as root (sudo nhacviec …)"
        );
    }
}
