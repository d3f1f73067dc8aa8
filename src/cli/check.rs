//! `nhacviec check`: validate the config, and sum it up with its next nudge.

use super::exit::Exit;
use super::render::{self, check::Summary};
use super::{ConfigArg, load_or_print_with, now_or};
use crate::calendar::workdays::WorkCalendar;
use crate::plan::config::{self, Config, Env, Loaded};
use crate::plan::diag::{Diagnostic, Report};
use crate::plan::planner;
use anyhow::Result;
use chrono::{Datelike, NaiveDate};
use std::process::ExitCode;

pub(super) fn check(arg: &ConfigArg, at: Option<&str>) -> Result<ExitCode> {
    // "Today" is the config's local day: the reader warns about `done:` dates after it.
    // The file is read once, as of the usual time zone, and again only when its own time
    // zone makes it another day: reading a large plan is most of `check`'s time.
    let usual = chrono_tz::Asia::Ho_Chi_Minh;
    let env = |now: chrono::DateTime<chrono::Utc>, tz: chrono_tz::Tz| Env {
        today: Some(now.with_timezone(&tz).date_naive()),
        ..Env::from_process()
    };
    let first = now_or(at, usual)?;
    let Ok(mut loaded) = config::load(&arg.path, &env(first, usual)) else {
        // Printed as every command prints a broken config.
        let _ = load_or_print_with(arg, &env(first, usual))?;
        return Ok(Exit::Failure.into());
    };
    let tz = loaded.config.schedule.timezone;
    let mut now = first;
    if tz != usual {
        now = now_or(at, tz)?;
        if now.with_timezone(&tz).date_naive() != first.with_timezone(&usual).date_naive() {
            let Some(again) = load_or_print_with(arg, &env(now, tz))? else {
                return Ok(Exit::Failure.into());
            };
            loaded = again;
        } else if !loaded.report.items.is_empty() {
            loaded.report.eprint();
        }
    } else if !loaded.report.items.is_empty() {
        loaded.report.eprint();
    }
    let Loaded { config, mut report } = loaded;
    // The text the warnings quoted, if they did: the stale plan's warning quotes it too,
    // and a large plan's text is not read a second time beside it.
    let source = std::mem::take(&mut report.source);
    let cal = config.work_calendar(now.with_timezone(&tz).year());
    let stale = stale_plan(&config, &cal, source, now.with_timezone(&tz).date_naive());
    // Only the next nudge is shown: look a month ahead first, and further only if the
    // month is empty. Nothing before now is planned or kept (see `planner::next_nudge`).
    let horizons = [31, 366, 800].map(|days| now + chrono::Duration::days(days));
    let (next, unscheduled) = planner::next_nudge_within(&config, &cal, now, &horizons);
    let summary = Summary {
        config: &config,
        unscheduled,
        next: next.as_ref(),
        warnings: report.warning_count() + usize::from(stale),
    };
    render::to_stdout(crate::t!("bản tóm tắt", "the summary"), |w| {
        render::check::write_check(w, &summary)
    })?;
    // The process ends now: a large plan's config is not freed string by string.
    std::mem::forget(config);
    Ok(ExitCode::SUCCESS)
}

/// Warns (located, like the reader's warnings) when every dated deadline of the plan is
/// before `today`: its reminders are all in the past, only overdue ones are left. Returns
/// whether it warned. `source` is the file's text when it is at hand (empty: read again).
/// `cal` is the calendar of today's year.
fn stale_plan(config: &Config, cal: &WorkCalendar, source: String, today: NaiveDate) -> bool {
    let last = config
        .tasks
        .iter()
        .filter_map(|t| planner::last_occurrence(config, cal, t))
        .max();
    let (Some(last), Some(first)) = (last, config.tasks.first()) else {
        return false;
    };
    if last >= today {
        return false;
    }
    let mut r = Report::new(&config.path, "");
    r.source = if source.is_empty() {
        std::fs::read_to_string(&config.path).unwrap_or_default()
    } else {
        source
    };
    r.push(
        Diagnostic::warning(
            Some(first.pos),
            crate::tr!(
                "mọi hạn của kế hoạch này đã qua (hạn cuối là {}; hôm nay là {}): không còn lần nhắc trước hạn nào, chỉ còn nhắc quá hạn",
                "every deadline of this plan is already past (the last is {}; today is {}): no reminder before a deadline is left, only overdue ones",
                last.format("%d/%m/%Y"),
                today.format("%d/%m/%Y")
            ),
        )
        .with_hint(crate::tr!("đây là kế hoạch của năm trước? Nạp kế hoạch năm nay (`nhacviec import`), hoặc ghi `done:` cho các nhiệm vụ đã xong", "is this last year's plan? Load this year's (`nhacviec import`), or mark the finished tasks `done:`")),
    );
    r.eprint();
    true
}
