//! `nhacviec log`: what the ledger holds, its latest entries oldest to newest, as
//! `journalctl -n` shows a journal.

use super::exit::Exit;
use super::render::{self, Format, View};
use super::{ConfigArg, access, dates, end_of_day, load_or_print, now_or};
use crate::delivery::ledger::{Ledger, LogFilter, Status};
use crate::plan::config::Loaded;
use anyhow::Result;
use std::process::ExitCode;

/// How many entries the table shows without `-n` or `--all`.
pub const DEFAULT_LINES: usize = 50;

/// The filter as typed: the times are read in the config's time zone once it is loaded.
pub(super) struct Filter {
    pub office: Option<String>,
    pub task: Option<String>,
    pub status: Option<Status>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// `-n`: the latest this many.
    pub lines: Option<usize>,
    /// `--all`: every entry, whatever the format.
    pub all: bool,
    /// `--completions`: the completions trail instead of the deliveries.
    pub completions: bool,
}

pub(super) fn log(config: &ConfigArg, filter: Filter, view: &View) -> Result<ExitCode> {
    if view.format == Format::Ics {
        return Err(super::exit::usage(crate::tr!(
            "`--format ics` chỉ dùng cho `plan`; `log` viết table, json hoặc csv",
            "`--format ics` is for `plan` only; `log` writes table, json or csv"
        )));
    }
    let Some(Loaded { config, .. }) = load_or_print(config)? else {
        return Ok(Exit::Failure.into());
    };
    let tz = config.schedule.timezone;
    let now = now_or(None, tz)?;
    let today = now.with_timezone(&tz).date_naive();
    let Filter {
        office,
        task,
        status,
        since,
        until,
        lines,
        all,
        completions,
    } = filter;
    // The table shows the latest 50 by default; JSON and CSV are exports, whole unless -n.
    let limit = match (lines, all, view.format) {
        (Some(n), _, _) => Some(n),
        (None, false, Format::Table) => Some(DEFAULT_LINES),
        _ => None,
    };
    let filter = LogFilter {
        office,
        task,
        status,
        since: since
            .as_deref()
            .map(|s| dates::parse_moment(s, tz, now))
            .transpose()?,
        until: until
            .as_deref()
            .map(|s| match dates::parse_date(s, today) {
                // A date as `--until` includes that whole day.
                Some(d) => Ok(end_of_day(d, tz) + chrono::Duration::seconds(1)),
                None => dates::parse_moment(s, tz, now),
            })
            .transpose()?,
        limit,
    };
    let (pg_rows, pg_trail) = match &config.ledger.postgres {
        Some(pg) => {
            let (rows, trail) = super::ledger_cmd::pg::log_rows(pg, &filter, completions)?;
            (Some(rows), Some(trail))
        }
        None => (None, None),
    };
    // A ledger this user may not read says so and what to do; a missing one is the
    // ledger's own error below.
    let ledger = match pg_rows {
        Some(_) => None,
        None => {
            access::ledger_readable(&config.ledger.path)?;
            Some(Ledger::open_read_only(&config.ledger.path)?)
        }
    };
    if completions {
        let history = match (&ledger, pg_trail) {
            (Some(l), _) => l.completion_history()?,
            (None, trail) => trail.unwrap_or_default(),
        };
        let trail: Vec<_> = history
            .into_iter()
            .filter(|c| {
                filter
                    .office
                    .as_ref()
                    .is_none_or(|o| c.entry.office.as_ref() == Some(o))
            })
            .filter(|c| filter.task.as_ref().is_none_or(|t| c.entry.task == *t))
            .collect();
        render::to_stdout("the completions", |w| {
            render::completions::write_completions(w, &trail, tz, view)
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    // The ledger gives the newest first; like `journalctl -n`, the latest are shown
    // oldest to newest, so the newest is the last line on the screen.
    let mut rows = match (&ledger, pg_rows) {
        (Some(l), _) => l.query(&filter)?,
        (None, rows) => rows.unwrap_or_default(),
    };
    rows.reverse();
    let name = |id: &str| config.office(id).map(|o| o.name.clone());
    render::to_stdout(crate::t!("nhật ký gửi", "the log"), |w| {
        render::log::write_log(w, &rows, tz, &name, view)
    })?;
    Ok(ExitCode::SUCCESS)
}
