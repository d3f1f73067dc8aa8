//! The clerk's YAML file, read and validated into the types the rest of the program uses.
//!
//! Two stages, as in ripgrep: [`crate::plan::yaml`] mirrors what was written, with locations;
//! [`load`] reads that tree into a [`Config`] and collects every problem into one
//! [`Report`] so the clerk sees all of them at once. Nothing downstream re-validates: a
//! `Config` that exists is consistent (every reference resolves, every date exists).

use crate::plan::diag::{Diagnostic, Report};
use crate::plan::yaml;
use std::path::{Path, PathBuf};

mod model;
pub use model::*;

/// Where the program looks when neither `-c` nor `NHACVIEC_CONFIG` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/nhacviec/nhacviec.yaml";

/// The service's `ConfigurationDirectory=` and `StateDirectory=` (deploy/nhacviec.service).
pub const SERVICE_CONFIG_DIR: &str = "/etc/nhacviec";
pub const SERVICE_STATE_DIR: &str = "/var/lib/nhacviec";

/// What the process environment contributes to defaults. Passed in, not read here, so that
/// loading is the same in tests and under systemd.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// systemd's `$STATE_DIRECTORY`: where the ledger and outbox go by default.
    pub state_directory: Option<PathBuf>,
    /// The day it is, set by `check` only: it turns on the warnings that are `check`'s
    /// (placeholder offices still in use, escalations to a head with no address, `done:`
    /// dates after today or outside the plan's years), which every other command and the
    /// daemon's log would otherwise repeat on each run. `None` (the default): not given.
    pub today: Option<chrono::NaiveDate>,
}

impl Env {
    pub fn from_process() -> Self {
        Self {
            state_directory: std::env::var_os("STATE_DIRECTORY")
                .map(|s| {
                    // systemd may pass several colon-separated folders; the first is ours.
                    let s = s.to_string_lossy().to_string();
                    PathBuf::from(s.split(':').next().unwrap_or(&s))
                })
                .filter(|p| !p.as_os_str().is_empty()),
            today: None,
        }
    }
}

/// A loaded config and the warnings about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub report: Report,
}

/// The largest config file read: a plan of a thousand tasks is well under 1 MiB, and
/// `-c /dev/zero` must end, not fill the memory.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024 * 1024;

/// Reads and validates the file. On any error, the report holds every problem found.
pub fn load(path: &Path, env: &Env) -> Result<Loaded, Report> {
    let refuse = |message: String, hint: String| {
        let mut r = Report::new(path, "");
        r.push(Diagnostic::error(None, message).with_hint(hint));
        r
    };
    let bytes = read_capped(path).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => crate::tr!("hãy tạo nó (bản mẫu là config/khanh-hoa-2024.yaml trong mã nguồn), hoặc chỉ tới tệp khác bằng `-c TỆP` hay NHACVIEC_CONFIG", "create it (the example is config/khanh-hoa-2024.yaml in the source), or point to another file with `-c FILE` or NHACVIEC_CONFIG"),
            std::io::ErrorKind::PermissionDenied => {
                crate::tr!("cho người dùng chạy nhacviec quyền đọc tệp", "make the file readable by the user running nhacviec")
            }
            _ => crate::tr!("kiểm tra đường dẫn", "check the path"),
        };
        refuse(crate::tr!("không đọc được tệp cấu hình: {e}", "cannot read the config file: {e}"), hint)
    })?;
    let Some(bytes) = bytes else {
        return Err(refuse(
            crate::tr!(
                "tệp cấu hình lớn hơn {} MiB",
                "the config file is larger than {} MiB",
                MAX_CONFIG_BYTES / 1024 / 1024
            ),
            crate::tr!(
                "cấu hình của một kế hoạch chỉ vài trăm KiB; kiểm tra rằng `-c` chỉ đúng tệp YAML",
                "a plan's config is a few hundred KiB; check that `-c` names the YAML file"
            ),
        ));
    };
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(refuse(
            crate::tr!(
                "tệp ở dạng UTF-16; hãy lưu lại dạng UTF-8",
                "the file is UTF-16; save it as UTF-8"
            ),
            crate::tr!(
                "trong Notepad: File → Save As → Encoding: UTF-8",
                "in Notepad: File → Save As → Encoding: UTF-8"
            ),
        ));
    }
    // Checked with SIMD first (a large plan's Vietnamese text is slow for the standard
    // check); the standard check runs only to say where a broken file breaks.
    let source = if simdutf8::basic::from_utf8(&bytes).is_ok() {
        // SAFETY: simdutf8 has just found the bytes to be UTF-8.
        unsafe { String::from_utf8_unchecked(bytes) }
    } else {
        String::from_utf8(bytes).map_err(|e| {
            refuse(
                crate::tr!(
                    "tệp cấu hình không phải văn bản UTF-8 (không đọc được byte {})",
                    "the config file is not UTF-8 text (byte {} cannot be read)",
                    e.utf8_error().valid_up_to() + 1
                ),
                crate::tr!(
                    "hãy lưu lại dạng UTF-8 (trong Notepad: File → Save As → Encoding: UTF-8)",
                    "save it as UTF-8 (in Notepad: File → Save As → Encoding: UTF-8)"
                ),
            )
        })?
    };
    // The text is kept for the report's quotes by moving it there, not by a copy: a large
    // plan's text is tens of megabytes.
    let (config, mut report) = read_source(&source, path, env);
    if !report.items.is_empty() {
        report.source = source;
    }
    finish(config, report)
}

/// The file's bytes, or `None` when it has more than [`MAX_CONFIG_BYTES`]: a regular file
/// is refused by its size before it is read, and anything else (`/dev/zero`, a pipe) is
/// read no further than one byte past the limit.
fn read_capped(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > MAX_CONFIG_BYTES {
        return Ok(None);
    }
    // A regular file's size, so that a large plan is read into one buffer of its size
    // rather than one doubled (and copied) a score of times.
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= MAX_CONFIG_BYTES).then_some(bytes))
}

/// Reads and validates YAML text as if it came from `path`.
pub fn from_source(source: &str, path: &Path, env: &Env) -> Result<Loaded, Report> {
    let (config, mut report) = read_source(source, path, env);
    // The report quotes the source only when it has something to say: a copy of a large
    // plan's text would otherwise be kept for as long as the config.
    if !report.items.is_empty() {
        report.source = source.to_string();
    }
    finish(config, report)
}

/// The config read from `source`, if it could be read at all, and its sorted diagnostics
/// in a report without the source text (the caller adds it when there is something to quote).
fn read_source(source: &str, path: &Path, env: &Env) -> (Option<Config>, Report) {
    let mut report = Report::new(path, "");
    // The tasks are read as the parser reads them, so that a large plan's tree is never
    // whole; a file that cannot be read so is read again the usual way, from the start.
    let reader = Reader::new(path, env);
    let mut streamed = read::Streamed::for_size(source.len());
    let tree = yaml::parse_streaming(source, &mut |root, before, item| {
        reader.stream_task(&mut streamed, root, before, item)
    });
    let tree = match tree.map(|tree| reader.config_streamed(streamed, tree)) {
        Some(read::Finished::Read(config)) => {
            // The reader's list itself: no second list grown beside it.
            report.items = reader.into_diagnostics();
            report.sort();
            return (config.map(|c| *c), report);
        }
        Some(read::Finished::Tree(tree)) => Ok(tree),
        Some(read::Finished::Again) | None => yaml::parse(source),
    };
    let root = match tree {
        Ok(n) => n,
        Err(d) => {
            report.push(d);
            return (None, report);
        }
    };
    // The config's `language:` settles the messages' language before any is written.
    crate::i18n::settle(config_language(&root));
    let reader = Reader::new(path, env);
    let config = reader.config(root);
    report.items = reader.into_diagnostics();
    report.sort();
    (config, report)
}

/// The seed plan (`config/khanh-hoa-2024.yaml`), read as `check` reads it: what many tests
/// plan on.
#[cfg(test)]
pub(crate) fn seed_config() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/khanh-hoa-2024.yaml");
    load(&path, &Env::default())
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config
}

fn finish(config: Option<Config>, report: Report) -> Result<Loaded, Report> {
    match config {
        Some(config) if !report.has_errors() => Ok(Loaded { config, report }),
        _ => Err(report),
    }
}

/// The root's `language:` when it names one (the reader reports a wrong one).
fn config_language(root: &yaml::Node) -> Option<crate::i18n::Lang> {
    let yaml::Value::Map(entries) = &root.value else {
        return None;
    };
    entries
        .iter()
        .find(|(k, _)| k.name == "language")
        .and_then(|(_, v)| v.as_str())
        .and_then(|s| match s.trim() {
            "vi" => Some(crate::i18n::Lang::Vi),
            "en" => Some(crate::i18n::Lang::En),
            _ => None,
        })
}

mod office_ids;
use office_ids::OfficeIds;
mod read;
use read::Reader;
pub(crate) use read::is_secret_key;
pub use read::occurrence_span;
pub use read::values::parse_duration_text;

#[cfg(test)]
mod tests;
