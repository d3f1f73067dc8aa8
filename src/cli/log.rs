//! `nhacviec log`: what the ledger holds, newest first.

use super::render::{self, Format};
use super::{ConfigArg, end_of_day, load_or_print, parse_at};
use crate::delivery::ledger::{Ledger, LogFilter, Status};
use crate::plan::config::Loaded;
use anyhow::Result;
use chrono::NaiveDate;
use std::process::ExitCode;

/// The filter as typed: the times are read in the config's time zone once it is loaded.
pub(super) struct Filter {
    pub office: Option<String>,
    pub task: Option<String>,
    pub status: Option<Status>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<usize>,
}

pub(super) fn log(config: &ConfigArg, filter: Filter, format: Format) -> Result<ExitCode> {
    if format == Format::Ics {
        anyhow::bail!("`--format ics` is for `plan` only; `log` writes table, json or csv");
    }
    let Some(Loaded { config, .. }) = load_or_print(config)? else {
        return Ok(ExitCode::from(1));
    };
    let tz = config.schedule.timezone;
    let Filter {
        office,
        task,
        status,
        since,
        until,
        limit,
    } = filter;
    let filter = LogFilter {
        office,
        task,
        status,
        since: since.as_deref().map(|s| parse_at(s, tz)).transpose()?,
        until: until
            .as_deref()
            .map(|s| match NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
                // A date as `--until` includes that whole day.
                Ok(d) => Ok(end_of_day(d, tz) + chrono::Duration::seconds(1)),
                Err(_) => parse_at(s, tz),
            })
            .transpose()?,
        limit,
    };
    let ledger = Ledger::open_read_only(&config.ledger.path)?;
    let rows = ledger.query(&filter)?;
    let name = |id: &str| config.office(id).map(|o| o.name.clone());
    render::to_stdout("the log", |w| {
        render::log::write_log(w, &rows, tz, &name, format)
    })?;
    Ok(ExitCode::SUCCESS)
}
