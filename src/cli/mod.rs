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
use exit::Exit;
use render::calendar::CalendarFormat;
use render::{Format, View};

mod access;
mod calendar;
mod check;
pub mod dates;
mod diff;
mod done;
pub mod dry_run;
pub mod exit;
pub mod help;
pub mod import;
mod ledger_cmd;
mod log;
mod meta;
mod plan;
pub mod render;
mod run;
mod send_test;
mod simulate;
mod usage_error;
mod web_cmd;

pub use plan::known_keys;
pub use render::plan::{render_plan, write_plan};

use anyhow::Result;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
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
    /// The language of messages: vi (Vietnamese, the default) or en (English); else
    /// NHACVIEC_LANG, LC_ALL, LC_MESSAGES, LANG, then the config's `language:`.
    #[arg(long, global = true, value_enum)]
    pub lang: Option<LangArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LangArg {
    Vi,
    En,
}

impl From<LangArg> for crate::i18n::Lang {
    fn from(l: LangArg) -> Self {
        match l {
            LangArg::Vi => Self::Vi,
            LangArg::En => Self::En,
        }
    }
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

/// How `plan` and `log` print.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// table (for people), json or csv (every field, for programs).
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Every column, nothing wrapped or cut (the table is as wide as it needs).
    #[arg(long)]
    pub wide: bool,
    /// The table's width in columns (default: the terminal's, or 100 when not a terminal;
    /// `COLUMNS` also sets it).
    #[arg(long, value_parser = clap::value_parser!(u16).range(20..))]
    pub width: Option<u16>,
    /// Start CSV with a byte order mark, so Excel reads its Vietnamese right.
    #[arg(long)]
    pub bom: bool,
}

impl OutputArgs {
    pub fn view(&self) -> View {
        View {
            format: self.format,
            width: Some(self.width.map(usize::from).unwrap_or_else(table_width)),
            wide: self.wide,
            bom: self.bom,
        }
    }
}

/// The width a table fits: `COLUMNS`, else the terminal's, else 100.
fn table_width() -> usize {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&n| n >= 20)
    {
        return n;
    }
    terminal_size::terminal_size_of(std::io::stdout())
        .map(|(w, _)| usize::from(w.0))
        .filter(|&n| n >= 20)
        .unwrap_or(100)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config: every error at once, with line, column and a fix.
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// Judge "the next nudge" as of this moment (date, local date-time or RFC 3339).
        #[arg(long, allow_hyphen_values = true)]
        at: Option<String>,
    },
    /// List the nudges that will be sent, in time order, and the tasks with no date yet.
    Plan {
        #[command(flatten)]
        config: ConfigArg,
        /// Plan as of this moment instead of now (2024-09-30, 30/09/2024, hôm nay, -7d,
        /// 2024-09-30T08:00 or RFC 3339).
        #[arg(long, allow_hyphen_values = true)]
        at: Option<String>,
        /// How far ahead to list, in days.
        #[arg(long, conflicts_with = "until", default_value_t = 30)]
        days: u32,
        /// List up to this date (inclusive) instead of `--days`.
        #[arg(long, allow_hyphen_values = true)]
        until: Option<String>,
        /// Only this office's nudges.
        #[arg(long)]
        office: Option<String>,
        /// Only this task's nudges.
        #[arg(long)]
        task: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// The daemon: sweep at the configured times and send what is due.
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// One sweep (and its retries), then exit: 0 if everything went out, 1 if not.
        #[arg(long)]
        once: bool,
        /// Run as of this moment (date, local date-time or RFC 3339): previews and tests.
        #[arg(long, allow_hyphen_values = true)]
        at: Option<String>,
        /// Render what would be sent; send nothing, record nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Manage the delivery ledger: `ledger reset --confirm` accepts a new or emptied one;
    /// `ledger backup PATH` copies it safely while the daemon runs.
    #[command(subcommand)]
    Ledger(ledger_cmd::LedgerCommand),
    /// Send one sample reminder through the configured transport and print the reply.
    SendTest {
        #[command(flatten)]
        config: ConfigArg,
        /// Where to send it.
        #[arg(long)]
        to: String,
    },
    /// Read what was sent: the delivery ledger's latest entries, oldest to newest.
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
        /// From this date or moment (planned send time, inclusive): 2024-09-30,
        /// 30/09/2024, hôm nay, hôm qua, -7d.
        #[arg(long, allow_hyphen_values = true)]
        since: Option<String>,
        /// Up to this date (inclusive) or moment (exclusive).
        #[arg(long, allow_hyphen_values = true)]
        until: Option<String>,
        /// The latest N entries (default: 50 in the table, all in JSON and CSV).
        #[arg(
            short = 'n',
            long = "lines",
            visible_alias = "limit",
            conflicts_with = "all"
        )]
        lines: Option<usize>,
        /// Every entry.
        #[arg(long)]
        all: bool,
        /// The completions trail instead (`done`, `undone`, confirmed email links); filters
        /// by --office and --task.
        #[arg(long)]
        completions: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// What an edit of the plan changes: tasks reassigned, added, removed, deadlines moved,
    /// and the reminders that move between offices in the next days.
    Diff {
        /// The plan before the edit.
        old: std::path::PathBuf,
        /// The plan after the edit.
        new: std::path::PathBuf,
        /// Only what concerns this office.
        #[arg(long)]
        office: Option<String>,
        /// How many days ahead to compare the reminders.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Compare as of this moment instead of now.
        #[arg(long, allow_hyphen_values = true)]
        at: Option<String>,
    },
    /// Print the manual page nhacviec(1), in roff: `nhacviec man | man -l -`.
    Man,
    /// Print a shell completion script: `nhacviec completions bash > /etc/bash_completion.d/nhacviec`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
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
    /// Record that a task (one office's share, one occurrence) is done: its reminders stop.
    Done(done::DoneArgs),
    /// Withdraw a completion recorded with `done` (same office and occurrence).
    Undone(done::DoneArgs),
    /// Replay a period's scheduled sweeps, sending nothing: how many emails each gets.
    Simulate(simulate::SimulateArgs),
    /// The web server's addresses: `web feeds` prints each office's calendar feed.
    #[command(subcommand)]
    Web(web_cmd::WebCommand),
}

/// Runs the command line; the exit code is one of [`Exit`]'s, for every command.
pub fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The language is needed before parsing: the help and the usage errors speak it.
    crate::i18n::init(lang_flag(&args));
    let cli = match help::localized()
        .try_get_matches_from(&args)
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version go to stdout and exit 0; a usage error exits 2, told
            // in the reader's language.
            match (crate::i18n::lang(), usage_error::vietnamese(&e, &args)) {
                (crate::i18n::Lang::Vi, Some(told)) => eprint!("{told}"),
                _ => {
                    let _ = e.print();
                }
            }
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Done
            }
            .into();
        }
    };
    match run(cli) {
        Ok(code) => code,
        // The reader went away (`nhacviec log | head -1`): it has what it wanted.
        Err(e) if render::is_broken_pipe(&e) => Exit::Done.into(),
        Err(e) => {
            eprintln!("nhacviec: {e:#}");
            exit::code_of(&e).into()
        }
    }
}

/// `--lang vi|en` or `--lang=vi|en` anywhere on the command line (clap checks it again).
fn lang_flag(args: &[std::ffi::OsString]) -> Option<crate::i18n::Lang> {
    let args: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    args.iter().enumerate().find_map(|(i, a)| {
        let value = match a.strip_prefix("--lang") {
            Some("") => args.get(i + 1).copied(),
            Some(v) => v.strip_prefix('='),
            None => None,
        }?;
        match value {
            "vi" => Some(crate::i18n::Lang::Vi),
            "en" => Some(crate::i18n::Lang::En),
            _ => None,
        }
    })
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
        Command::Ledger(cmd) => ledger_cmd::run(cmd),
        Command::SendTest { config, to } => send_test::send_test(&config, &to),
        Command::Check { config, at } => check::check(&config, at.as_deref()),
        Command::Import(args) => import::run(&args),
        Command::Done(args) => done::done(&args, false),
        Command::Undone(args) => done::done(&args, true),
        Command::Simulate(args) => simulate::simulate(&args),
        Command::Web(cmd) => web_cmd::run(cmd),
        Command::Plan {
            config,
            at,
            days,
            until,
            office,
            task,
            output,
        } => plan::plan(
            &config,
            at.as_deref(),
            days,
            until.as_deref(),
            office,
            task,
            &output.view(),
        ),
        Command::Log {
            config,
            office,
            task,
            status,
            since,
            until,
            lines,
            all,
            completions,
            output,
        } => log::log(
            &config,
            log::Filter {
                office,
                task,
                status,
                since,
                until,
                lines,
                all,
                completions,
            },
            &output.view(),
        ),
        Command::Diff {
            old,
            new,
            office,
            days,
            at,
        } => diff::diff(&old, &new, office.as_deref(), days, at.as_deref()),
        Command::Man => meta::man(),
        Command::Completions { shell } => meta::completions(shell),
        Command::Calendar {
            config,
            year,
            month,
            format,
        } => calendar::calendar(&config, year, month, format),
    }
}

/// Two worker threads: a sweep composes emails on one while the other writes the ledger,
/// and signals and the watchdog are answered while either is busy.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            anyhow::anyhow!(crate::tr!(
                "không khởi động được bộ chạy bất đồng bộ: {e}",
                "cannot start the async runtime: {e}"
            ))
        })
}

/// Loads the config; on errors prints them all and returns `None`.
fn load_or_print(arg: &ConfigArg) -> Result<Option<Loaded>> {
    load_or_print_with(arg, &Env::from_process())
}

/// [`load_or_print`] with this environment (`check` adds the day it is).
fn load_or_print_with(arg: &ConfigArg, env: &Env) -> Result<Option<Loaded>> {
    match config::load(&arg.path, env) {
        Ok(l) => {
            if !l.report.items.is_empty() {
                l.report.eprint();
            }
            Ok(Some(l))
        }
        Err(report) => {
            report.eprint();
            let (path, errors, warnings) = (
                report.path.display(),
                report.error_count(),
                report.warning_count(),
            );
            eprintln!(
                "{}",
                crate::tr!(
                    "{path}: {errors} lỗi, {warnings} cảnh báo",
                    "{path}: {errors} error(s), {warnings} warning(s)"
                )
            );
            Ok(None)
        }
    }
}

/// `--at` as a moment, or the clock. This is the only place the CLI reads the clock; the
/// relative dates (`hôm nay`, `-7d`) count from it.
pub fn now_or(at: Option<&str>, tz: Tz) -> Result<DateTime<Utc>> {
    let now = Clock::real().now();
    match at {
        None => Ok(now),
        Some(s) => dates::parse_moment(s, tz, now),
    }
}

/// A moment as typed on an option (see [`dates`]), relative dates counting from now.
pub fn parse_at(s: &str, tz: Tz) -> Result<DateTime<Utc>> {
    let now = now_or(None, tz)?;
    dates::parse_moment(s, tz, now)
}

fn end_of_day(d: NaiveDate, tz: Tz) -> DateTime<Utc> {
    tz.from_local_datetime(&d.and_hms_opt(23, 59, 59).expect("valid"))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&d.and_hms_opt(23, 59, 59).expect("valid")))
}
