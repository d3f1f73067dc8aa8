//! `nhacviec run`: the daemon, or one sweep with `--once`, or a preview with `--dry-run`.

use super::{ConfigArg, parse_at, runtime};
use crate::plan::config::{self, Env};
use crate::service::daemon;
use anyhow::Result;
use std::process::ExitCode;

pub(super) fn run(
    config: ConfigArg,
    once: bool,
    at: Option<&str>,
    dry_run: bool,
) -> Result<ExitCode> {
    // The time zone for `--at` comes from the config, read again by the daemon.
    let at = match at {
        Some(s) => {
            let tz = config::load(&config.path, &Env::from_process())
                .map(|l| l.config.schedule.timezone)
                .unwrap_or(chrono_tz::Asia::Ho_Chi_Minh);
            Some(parse_at(s, tz)?)
        }
        None => None,
    };
    if dry_run {
        return super::dry_run::run(&config.path, at);
    }
    let rt = runtime()?;
    let code = rt.block_on(daemon::run(daemon::RunOptions {
        config_path: config.path,
        at,
        once,
    }));
    // Every send was awaited and recorded before `run` returned; what is left are
    // the scheduler's idle helper threads, which must not delay the exit.
    rt.shutdown_background();
    code
}
