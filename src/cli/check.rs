//! `nhacviec check`: validate the config, and sum it up with its next nudge.

use super::exit::Exit;
use super::render::{self, check::Summary};
use super::{ConfigArg, load_or_print, now_or};
use crate::plan::config::Loaded;
use crate::plan::planner::{self, Plan};
use anyhow::Result;
use chrono::Datelike;
use std::collections::HashSet;
use std::process::ExitCode;

pub(super) fn check(arg: &ConfigArg, at: Option<&str>) -> Result<ExitCode> {
    let Some(Loaded { config, report }) = load_or_print(arg)? else {
        return Ok(Exit::Failure.into());
    };
    let tz = config.schedule.timezone;
    let now = now_or(at, tz)?;
    let cal = config.work_calendar(now.with_timezone(&tz).year());
    // Only the next nudge is shown: look a month ahead first, and further only if the
    // month is empty, rather than planning two years of a large plan every time.
    let mut plan = Plan::default();
    for days in [31, 366, 800] {
        plan = planner::plan(
            &config,
            &cal,
            now,
            now + chrono::Duration::days(days),
            &HashSet::new(),
        );
        if plan.upcoming.iter().any(|n| n.send_at > now) {
            break;
        }
    }
    // The next nudge after now: the planner's "due" ones are missed or due this moment.
    let summary = Summary {
        config: &config,
        unscheduled: plan.unscheduled.len(),
        next: plan
            .due
            .iter()
            .chain(&plan.upcoming)
            .find(|n| n.send_at > now),
        warnings: report.warning_count(),
    };
    render::to_stdout("the summary", |w| render::check::write_check(w, &summary))?;
    Ok(ExitCode::SUCCESS)
}
