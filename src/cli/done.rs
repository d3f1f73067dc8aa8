//! `nhacviec done` and `nhacviec undone`: record in the ledger that an office finished a
//! task (or one occurrence of it), or withdraw that. Each is a new row: the trail stays.

use super::exit::usage;
use super::{ConfigArg, dates, load_or_print, now_or};
use crate::delivery::ledger::pg::node_id;
use crate::delivery::ledger::{NewCompletion, Source, Store};
use crate::delivery::transport::SecretEnv;
use crate::plan::config::{Loaded, occurrence_span};
use anyhow::Result;
use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct DoneArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The task's id (`II.3`).
    pub task: String,
    /// Only this office's share (default: every office of the task).
    #[arg(long)]
    pub office: Option<String>,
    /// Only this occurrence of a repeated deadline: its date (2024-03-18) or its period
    /// (`Quý I/2024`, `Tháng 06/2024`). Default: every occurrence up to the day it was done.
    #[arg(long)]
    pub occurrence: Option<String>,
    /// The day the work was done (default: today): 2024-03-15, 15/03/2024, hôm qua.
    #[arg(long, allow_hyphen_values = true)]
    pub on: Option<String>,
    /// Why, or what was handed in (kept in the ledger's trail).
    #[arg(long)]
    pub note: Option<String>,
}

/// Records the completion (`undone`: its withdrawal).
pub(super) fn done(args: &DoneArgs, undone: bool) -> Result<ExitCode> {
    let Some(Loaded { config, .. }) = load_or_print(&args.config)? else {
        return Ok(super::exit::Exit::Failure.into());
    };
    let tz = config.schedule.timezone;
    let now = now_or(None, tz)?;
    let today = now.with_timezone(&tz).date_naive();
    let path = config.path.display();
    let Some(task) = config.task(&args.task) else {
        return Err(usage(format!("there is no task `{}` in {path}", args.task)));
    };
    if let Some(o) = &args.office
        && !task.lead.contains(o)
        && !task.cooperating.contains(o)
    {
        let hint = if config.office(o).is_some() {
            "it is neither a lead nor a cooperating office of that task"
        } else {
            "there is no such office"
        };
        return Err(usage(format!(
            "office `{o}` for task `{}` in {path}: {hint}",
            task.id
        )));
    }
    let occurrence = match &args.occurrence {
        None => None,
        Some(s) => Some(occurrence_span(s).ok_or_else(|| {
            usage(format!(
                "--occurrence `{s}`: write a date (2024-03-18) or a period (Quý I/2024, Tháng 06/2024)"
            ))
        })?),
    };
    let done_on = match &args.on {
        Some(s) => dates::date_arg("--on", s, today)?,
        None => today,
    };
    let entry = NewCompletion {
        task: task.id.clone(),
        occurrence,
        office: args.office.clone(),
        done_on,
        source: Source::Cli,
        note: args.note.clone(),
        client: None,
        undone,
    };
    // On either ledger: a SQLite file, or the PostgreSQL database every node shares.
    super::runtime()?.block_on(async {
        let mut ledger = Store::open(
            &config,
            SecretEnv::from_process().credentials_directory.as_deref(),
            node_id(),
        )
        .await?;
        let same = |e: &NewCompletion| {
            e.task == entry.task && e.occurrence == entry.occurrence && e.office == entry.office
        };
        let standing = ledger
            .completions()
            .await?
            .into_iter()
            .any(|c| same(&c.entry));
        if undone && !standing {
            return Err(usage(format!(
                "task `{}`{}: no completion recorded for exactly this office and occurrence; \
                 nothing to undo",
                task.id,
                describe(&entry)
            )));
        }
        ledger.record_completion(&entry, now).await?;
        Ok(())
    })?;
    if undone {
        println!(
            "{}{}: đã hủy ghi nhận hoàn thành",
            task.id,
            describe(&entry)
        );
    } else {
        println!(
            "{}{}: đã ghi nhận hoàn thành ngày {}",
            task.id,
            describe(&entry),
            done_on.format("%d/%m/%Y")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(e: &NewCompletion) -> String {
    let mut s = String::new();
    if let Some(o) = &e.office {
        s.push_str(&format!(", đơn vị {o}"));
    }
    if let Some((a, b)) = e.occurrence {
        if a == b {
            s.push_str(&format!(", kỳ {}", a.format("%d/%m/%Y")));
        } else {
            s.push_str(&format!(
                ", kỳ {}–{}",
                a.format("%d/%m/%Y"),
                b.format("%d/%m/%Y")
            ));
        }
    }
    s
}
