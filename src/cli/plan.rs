//! `nhacviec plan`: the nudges `run` would send in a period, and the tasks with no date yet.

use super::exit::{Exit, usage};
use super::render::{self, View};
use super::{ConfigArg, access, dates, end_of_day, load_or_print, now_or};
use crate::delivery::ledger::pg::node_id;
use crate::delivery::ledger::store::Snapshot;
use crate::delivery::ledger::{Ledger, Store};
use crate::delivery::transport::SecretEnv;
use crate::plan::config::Loaded;
use crate::plan::planner::{self, NudgeKey};
use anyhow::Result;
use chrono::Datelike;
use std::collections::HashSet;
use std::process::ExitCode;

pub(super) fn plan(
    config: &ConfigArg,
    at: Option<&str>,
    days: u32,
    until: Option<&str>,
    office: Option<String>,
    task: Option<String>,
    view: &View,
) -> Result<ExitCode> {
    let Some(Loaded { config, .. }) = load_or_print(config)? else {
        return Ok(Exit::Failure.into());
    };
    let tz = config.schedule.timezone;
    let now = now_or(at, tz)?;
    let until = match until {
        Some(s) => end_of_day(
            dates::date_arg("--until", s, now.with_timezone(&tz).date_naive())?,
            tz,
        ),
        None => now + chrono::Duration::days(days as i64),
    };
    if let Some(id) = &office
        && config.office(id).is_none()
    {
        return Err(usage(crate::tr!(
            "không có đơn vị `{id}` trong {}",
            "there is no office `{id}` in {}",
            config.path.display()
        )));
    }
    if let Some(id) = &task
        && config.task(id).is_none()
    {
        return Err(usage(crate::tr!(
            "không có nhiệm vụ `{id}` trong {}",
            "there is no task `{id}` in {}",
            config.path.display()
        )));
    }
    // What the ledger already holds is not planned again: `plan` shows what `run` would
    // send. Without a ledger yet (a fresh install), nothing has been sent. A ledger this
    // user may not read is an error: ignoring it would plan again what was already sent.
    // Nudges before the first sweep without a row were settled by that first start.
    // The ledger's completions count as the YAML's `done:` does.
    let mut config = config;
    // On PostgreSQL, the database every node shares (the SQLite path is not used there).
    let snapshot = if config.ledger.postgres.is_some() {
        Some(super::runtime()?.block_on(async {
            let mut store = Store::open(
                &config,
                SecretEnv::from_process().credentials_directory.as_deref(),
                node_id(),
            )
            .await?;
            store.snapshot().await
        })?)
    } else if access::ledger_readable(&config.ledger.path)? {
        Some(Snapshot::of_sqlite(&Ledger::open_read_only(
            &config.ledger.path,
        )?)?)
    } else {
        None
    };
    let (known, settled) = match snapshot {
        Some(s) => {
            crate::delivery::completions::apply(&mut config, &s.completions);
            let settled = planner::Settled {
                before: s.first_sweep_as_of,
                ..Default::default()
            };
            (s.states.into_keys().collect(), settled)
        }
        None => (HashSet::new(), planner::Settled::default()),
    };
    let cal = config.work_calendar(now.with_timezone(&tz).year());
    // The upcoming nudges are handed out in order, not held as rows: a year of a large
    // plan has millions.
    let (plan, upcoming) = planner::plan_streamed(&config, &cal, now, until, &known, &settled);
    render::to_stdout(crate::t!("kế hoạch", "the plan"), |w| {
        let (office, task) = (office.as_deref(), task.as_deref());
        render::plan::write_plan_streamed(w, &config, &plan, upcoming, office, task, view)
    })?;
    // The process ends now: freeing a large plan's config string by string took a tenth of
    // `plan --days 1`'s time, for nothing.
    std::mem::forget((plan, config));
    Ok(ExitCode::SUCCESS)
}

/// Every key the ledger holds, whatever its state: the planner's "already known".
pub fn known_keys(ledger: &Ledger) -> Result<HashSet<NudgeKey>> {
    Ok(ledger.all_states()?.into_keys().collect())
}
