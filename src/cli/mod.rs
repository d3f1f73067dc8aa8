//! The command line: parsing arguments, reading the clock once, dispatching to a command.
//!
//! Everything here is thin: each command (one file each) loads what it needs, calls the
//! library, and hands the result to [`render`], which does all the printing. The clock is
//! read in exactly one place ([`now_or`]) so every command can be run "as of" another moment
//! with `--at`.

use crate::delivery::ledger::Status;
use crate::plan::config::{self, Env, Loaded};
use crate::service::clock::Clock;
use crate::service::logging;
use render::Format;
use render::calendar::CalendarFormat;

mod calendar;
mod check;
pub mod dry_run;
pub mod import;
mod log;
mod plan;
pub mod render;
mod run;
mod send_test;
mod simulate;

pub use plan::known_keys;
pub use render::plan::{render_plan, write_plan};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "nhacviec",
    version,
    about = "Nhắc việc: email reminders for the tasks of an administrative plan, on working days"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// How to write log events to stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args, Clone)]
pub struct ConfigArg {
    /// The plan's YAML file.
    #[arg(short = 'c', long = "config", env = "NHACVIEC_CONFIG", default_value = config::DEFAULT_PATH)]
    pub path: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config: every error at once, with line, column and a fix.
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// Judge "the next nudge" as of this moment (date, local date-time or RFC 3339).
        #[arg(long)]
        at: Option<String>,
    },
    /// List the nudges that will be sent, in time order, and the tasks with no date yet.
    Plan {
        #[command(flatten)]
        config: ConfigArg,
        /// Plan as of this moment instead of now (date, local date-time or RFC 3339).
        #[arg(long)]
        at: Option<String>,
        /// How far ahead to list, in days.
        #[arg(long, conflicts_with = "until", default_value_t = 30)]
        days: u32,
        /// List up to this date (inclusive) instead of `--days`.
        #[arg(long)]
        until: Option<NaiveDate>,
        /// Only this office's nudges.
        #[arg(long)]
        office: Option<String>,
        /// Only this task's nudges.
        #[arg(long)]
        task: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// The daemon: sweep at the configured times and send what is due.
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// One sweep (and its retries), then exit: 0 if everything went out, 1 if not.
        #[arg(long)]
        once: bool,
        /// Run as of this moment (date, local date-time or RFC 3339): previews and tests.
        #[arg(long)]
        at: Option<String>,
        /// Render what would be sent; send nothing, record nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Send one sample reminder through the configured transport and print the reply.
    SendTest {
        #[command(flatten)]
        config: ConfigArg,
        /// Where to send it.
        #[arg(long)]
        to: String,
    },
    /// Read what was sent: the delivery ledger, newest first.
    Log {
        #[command(flatten)]
        config: ConfigArg,
        /// Only this office's deliveries.
        #[arg(long)]
        office: Option<String>,
        /// Only this task's deliveries.
        #[arg(long)]
        task: Option<String>,
        /// Only deliveries in this state: pending, sent, retrying, failed or skipped.
        #[arg(long)]
        status: Option<Status>,
        /// From this date or moment (planned send time, inclusive).
        #[arg(long)]
        since: Option<String>,
        /// Up to this date (inclusive) or moment (exclusive).
        #[arg(long)]
        until: Option<String>,
        /// At most this many rows.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// The days off and the Saturdays worked, with their reason and lunar date.
    Calendar {
        #[command(flatten)]
        config: ConfigArg,
        /// The year (default: this year).
        #[arg(long)]
        year: Option<i32>,
        /// One month of it (1–12).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=12))]
        month: Option<u32>,
        #[arg(long, value_enum, default_value = "table")]
        format: CalendarFormat,
    },
    /// Read a plan's appendix table (.docx or text from a PDF) and print it as YAML.
    Import(import::ImportArgs),
    /// Replay a period's scheduled sweeps, sending nothing: how many emails each gets.
    Simulate(simulate::SimulateArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nhacviec: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    logging::init(match cli.log_format {
        LogFormat::Text => logging::Target::Text,
        LogFormat::Json => logging::Target::Json,
    });
    match cli.command {
        Command::Run {
            config,
            once,
            at,
            dry_run,
        } => run::run(config, once, at.as_deref(), dry_run),
        Command::SendTest { config, to } => send_test::send_test(&config, &to),
        Command::Check { config, at } => check::check(&config, at.as_deref()),
        Command::Import(args) => import::run(&args),
        Command::Simulate(args) => simulate::simulate(&args),
        Command::Plan {
            config,
            at,
            days,
            until,
            office,
            task,
            format,
        } => plan::plan(&config, at.as_deref(), days, until, office, task, format),
        Command::Log {
            config,
            office,
            task,
            status,
            since,
            until,
            limit,
            format,
        } => log::log(
            &config,
            log::Filter {
                office,
                task,
                status,
                since,
                until,
                limit,
            },
            format,
        ),
        Command::Calendar {
            config,
            year,
            month,
            format,
        } => calendar::calendar(&config, year, month, format),
    }
}

/// One thread is plenty: the daemon waits on the network and the clock, and a small
/// footprint matters more than parallelism here.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Loads the config; on errors prints them all and returns `None`.
fn load_or_print(arg: &ConfigArg) -> Result<Option<Loaded>> {
    match config::load(&arg.path, &Env::from_process()) {
        Ok(l) => {
            if !l.report.items.is_empty() {
                eprint!("{}", l.report.render());
            }
            Ok(Some(l))
        }
        Err(report) => {
            eprint!("{}", report.render());
            eprintln!(
                "{}: {} error(s), {} warning(s)",
                report.path.display(),
                report.error_count(),
                report.warning_count()
            );
            Ok(None)
        }
    }
}

/// `--at` as a moment, or the clock. This is the only place the CLI reads the clock.
pub fn now_or(at: Option<&str>, tz: Tz) -> Result<DateTime<Utc>> {
    match at {
        None => Ok(Clock::real().now()),
        Some(s) => parse_at(s, tz),
    }
}

/// A date (start of that day), a local date-time (`2024-01-15T08:00`), or RFC 3339.
pub fn parse_at(s: &str, tz: Tz) -> Result<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = |ndt: NaiveDateTime| {
        tz.from_local_datetime(&ndt)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .context("that local time does not exist")
    };
    for fmt in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(ndt) = NaiveDateTime::parse_from_str(s, fmt) {
            return local(ndt);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return local(d.and_hms_opt(0, 0, 0).expect("midnight"));
    }
    bail!(
        "cannot read `{s}` as a moment: write a date (2024-01-15), a local time (2024-01-15T08:00) or RFC 3339 (2024-01-15T08:00:00+07:00)"
    )
}

fn end_of_day(d: NaiveDate, tz: Tz) -> DateTime<Utc> {
    tz.from_local_datetime(&d.and_hms_opt(23, 59, 59).expect("valid"))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&d.and_hms_opt(23, 59, 59).expect("valid")))
}
