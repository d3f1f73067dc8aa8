//! `nhacviec run`: the daemon, or one sweep with `--once`, or a preview with `--dry-run`.

use super::{ConfigArg, parse_at, runtime};
use crate::service::daemon;
use anyhow::Result;
use std::process::ExitCode;
use std::sync::Arc;

pub(super) fn run(
    config: ConfigArg,
    once: bool,
    at: Option<&str>,
    dry_run: bool,
) -> Result<ExitCode> {
    // A moment that cannot be read fails here, before anything starts; it is read again
    // in the config's time zone once the config is loaded (once, by the daemon or the
    // preview).
    let at = match at {
        Some(s) => {
            parse_at(s, chrono_tz::Asia::Ho_Chi_Minh)?;
            let s = s.to_string();
            Some(daemon::At(Arc::new(move |tz| parse_at(&s, tz))))
        }
        None => None,
    };
    if dry_run {
        return super::dry_run::run(&config.path, at);
    }
    let rt = runtime()?;
    let opts = daemon::RunOptions {
        config_path: config.path,
        at,
        once,
    };
    // The daemon runs as a task of the two workers, not on this thread: each email's
    // outcome then wakes the sweep where the connection that sent it runs, instead of
    // waking a third thread (a futex wake and a park per email).
    let code = rt
        .block_on(rt.spawn(daemon::run(opts)))
        .unwrap_or_else(|e| {
            Err(anyhow::anyhow!(crate::tr!(
                "nhacviec dừng vì một lỗi nội bộ: {e}",
                "nhacviec stopped on an internal error: {e}"
            )))
        });
    // Every send was awaited and recorded before `run` returned; what is left are
    // the scheduler's idle helper threads, which must not delay the exit.
    rt.shutdown_background();
    code
}
