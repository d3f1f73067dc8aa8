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

/// Reads and validates the file. On any error, the report holds every problem found.
pub fn load(path: &Path, env: &Env) -> Result<Loaded, Report> {
    let source = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => {
            let mut r = Report::new(path, "");
            let hint = match e.kind() {
                std::io::ErrorKind::NotFound => "create it (the example is config/khanh-hoa-2024.yaml in the source), or point to another file with `-c FILE` or NHACVIEC_CONFIG".to_string(),
                std::io::ErrorKind::PermissionDenied => {
                    "make the file readable by the user running nhacviec".to_string()
                }
                _ => "check the path".to_string(),
            };
            r.push(
                Diagnostic::error(None, format!("cannot read the config file: {e}"))
                    .with_hint(hint),
            );
            return Err(r);
        }
    };
    from_source(&source, path, env)
}

/// Reads and validates YAML text as if it came from `path`.
pub fn from_source(source: &str, path: &Path, env: &Env) -> Result<Loaded, Report> {
    // The report quotes the source only when it has something to say: a copy of a large
    // plan's text would otherwise be kept for as long as the config.
    let mut report = Report::new(path, "");
    let root = match yaml::parse(source) {
        Ok(n) => n,
        Err(d) => {
            report.push(d);
            report.source = source.to_string();
            return Err(report);
        }
    };
    let reader = Reader::new(path, env);
    let config = reader.config(&root);
    drop(root);
    for d in reader.into_diagnostics() {
        report.push(d);
    }
    report.sort();
    if !report.items.is_empty() {
        report.source = source.to_string();
    }
    match config {
        Some(config) if !report.has_errors() => Ok(Loaded { config, report }),
        _ => Err(report),
    }
}

mod read;
use read::Reader;
pub use read::values::parse_duration_text;

#[cfg(test)]
mod tests;
