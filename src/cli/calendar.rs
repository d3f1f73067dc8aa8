//! `nhacviec calendar`: the days off and the Saturdays worked of a year or a month.

use super::render::{self, calendar::CalendarFormat};
use super::{ConfigArg, load_or_print, now_or};
use crate::plan::config::Loaded;
use anyhow::Result;
use chrono::Datelike;
use std::process::ExitCode;

pub(super) fn calendar(
    config: &ConfigArg,
    year: Option<i32>,
    month: Option<u32>,
    format: CalendarFormat,
) -> Result<ExitCode> {
    // The clerk's additions count when there is a config; without one (a default
    // path that does not exist) the built-in calendar is shown.
    let from_config = if config.path.exists() || std::env::var_os("NHACVIEC_CONFIG").is_some() {
        let Some(Loaded { config, .. }) = load_or_print(config)? else {
            return Ok(super::exit::Exit::Failure.into());
        };
        Some(config)
    } else {
        None
    };
    let tz = from_config
        .as_ref()
        .map(|c| c.schedule.timezone)
        .unwrap_or(chrono_tz::Asia::Ho_Chi_Minh);
    let year = match year {
        Some(y) => y,
        None => now_or(None, tz)?.with_timezone(&tz).year(),
    };
    let cal = match &from_config {
        Some(c) => c.work_calendar(year),
        None => crate::calendar::holidays::vietnam_calendar(year - 1..=year + 1),
    };
    render::to_stdout(crate::t!("lịch", "the calendar"), |w| {
        render::calendar::write_calendar(w, &cal, year, month, format)
    })?;
    Ok(ExitCode::SUCCESS)
}
