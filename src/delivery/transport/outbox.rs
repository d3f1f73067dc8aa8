//! The outbox side of [`Sender`](super::Sender): each email as an `.eml` file, written
//! whole or not at all.

use super::SendError;
use crate::delivery::email::Email;
use chrono_tz::Tz;
use std::path::Path;

/// The `Message-ID` without brackets and domain, made safe for a file name.
fn id_local_part(msg: &Email) -> String {
    let id = msg
        .message_id()
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string();
    let local = id.split('@').next().unwrap_or_default();
    let safe: String = local
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() {
        format!("{:016x}", rand::random::<u64>())
    } else {
        safe
    }
}

/// Writes `<dir>/<YYYYMMDD-HHMMSS>-<id>.eml` whole or not at all: into a temporary file in
/// the same folder, flushed and fsynced, renamed into place, then the folder fsynced so the
/// rename survives a crash. Any failure (a full disk above all) removes the temporary file
/// and is a transient [`SendError::Outbox`]: the ledger then records the email as not sent,
/// and a later sweep tries again. (A tokio file keeps a failed write's error until a flush
/// that nobody called: a full disk once left empty `.eml` files recorded as sent. Plain std
/// IO on a blocking thread has no such buffer.)
pub(super) async fn write_outbox(dir: &Path, tz: Tz, msg: &Email) -> Result<String, SendError> {
    let name = format!(
        "{}-{}.eml",
        crate::service::clock::Clock::real()
            .now()
            .with_timezone(&tz)
            .format("%Y%m%d-%H%M%S"),
        id_local_part(msg)
    );
    let dir = dir.to_path_buf();
    let bytes = msg.shared_bytes();
    let path = dir.join(&name);
    let shown = path.clone();
    tokio::task::spawn_blocking(move || write_whole(&dir, &name, &bytes))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(format!("the writer failed: {e}"))))
        .map_err(|source| SendError::Outbox {
            path: shown.clone(),
            source,
        })?;
    Ok(shown.display().to_string())
}

/// [`write_outbox`]'s blocking part: `dir/name` holds `bytes` and is on disk, or it does not
/// exist and neither does any temporary file.
fn write_whole(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.flush()?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, dir.join(name))
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename is durable once the folder is; an error here leaves a whole file behind,
    // but reporting it makes the ledger retry and the reader may see the email twice,
    // never half of one.
    std::fs::File::open(dir)?.sync_all()
}
