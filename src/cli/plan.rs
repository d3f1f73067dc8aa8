//! `nhacviec plan`: the nudges `run` would send in a period, and the tasks with no date yet.

use super::render::{self, Format};
use super::{ConfigArg, end_of_day, load_or_print, now_or};
use crate::delivery::ledger::Ledger;
use crate::plan::config::Loaded;
use crate::plan::planner::{self, NudgeKey};
use anyhow::{Result, bail};
use chrono::{Datelike, NaiveDate};
use std::collections::HashSet;
use std::process::ExitCode;

pub(super) fn plan(
    config: &ConfigArg,
    at: Option<&str>,
    days: u32,
    until: Option<NaiveDate>,
    office: Option<String>,
    task: Option<String>,
    format: Format,
) -> Result<ExitCode> {
    let Some(Loaded { config, .. }) = load_or_print(config)? else {
        return Ok(ExitCode::from(1));
    };
    let tz = config.schedule.timezone;
    let now = now_or(at, tz)?;
    let until = match until {
        Some(d) => end_of_day(d, tz),
        None => now + chrono::Duration::days(days as i64),
    };
    if let Some(id) = &office
        && config.office(id).is_none()
    {
        bail!("there is no office `{id}` in {}", config.path.display());
    }
    if let Some(id) = &task
        && config.task(id).is_none()
    {
        bail!("there is no task `{id}` in {}", config.path.display());
    }
    // What the ledger already holds is not planned again: `plan` shows what `run` would
    // send. Without a ledger yet (a fresh install), nothing has been sent.
    // Nudges before the first sweep without a row were settled by that first start.
    let (known, settled) = if config.ledger.path.exists() {
        let ledger = Ledger::open_read_only(&config.ledger.path)?;
        let before = ledger.first_sweep_as_of()?;
        let settled = planner::Settled {
            before,
            ..Default::default()
        };
        (known_keys(&ledger)?, settled)
    } else {
        (HashSet::new(), planner::Settled::default())
    };
    let cal = config.work_calendar(now.with_timezone(&tz).year());
    let plan = planner::plan_settled(&config, &cal, now, until, &known, &settled);
    render::to_stdout("the plan", |w| {
        render::plan::write_plan(
            w,
            &config,
            &plan,
            office.as_deref(),
            task.as_deref(),
            format,
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Every key the ledger holds, whatever its state: the planner's "already known".
pub fn known_keys(ledger: &Ledger) -> Result<HashSet<NudgeKey>> {
    Ok(ledger.all_states()?.into_keys().collect())
}
