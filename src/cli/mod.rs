//! The command line: parsing arguments, reading the clock once, printing results.
//!
//! Everything here is thin: each command loads what it needs, calls the library, and prints.
//! The clock is read in exactly one place ([`now_or`]) so every command can be run "as of"
//! another moment with `--at`.

use crate::calendar::workdays::weekday_vi;
use crate::delivery::ledger::{Ledger, LogFilter, Status};
use crate::delivery::transport::SecretEnv;
use crate::delivery::{email, sweep};
use crate::plan::config::{self, Config, Env, Loaded};
use crate::plan::planner::{self, Nudge, NudgeKey, Plan};
use crate::service::clock::Clock;
use crate::service::{daemon, logging};
use calendar_report::CalendarFormat;
use log_report::render_log;
use output::{Format, Table};

pub mod calendar_report;
pub mod ics;
pub mod import;
pub mod log_report;
pub mod output;
pub mod plan_ics;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use clap::{Args, Parser, Subcommand};
use std::collections::HashSet;
use std::io::Write;
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
        } => {
            // The time zone for `--at` comes from the config, read again by the daemon.
            let at = match at {
                Some(s) => {
                    let tz = config::load(&config.path, &Env::from_process())
                        .map(|l| l.config.schedule.timezone)
                        .unwrap_or(chrono_tz::Asia::Ho_Chi_Minh);
                    Some(parse_at(&s, tz)?)
                }
                None => None,
            };
            let rt = runtime()?;
            let code = rt.block_on(daemon::run(daemon::RunOptions {
                config_path: config.path,
                at,
                once: once || dry_run,
                dry_run,
            }));
            // Every send was awaited and recorded before `run` returned; what is left are
            // the scheduler's idle helper threads, which must not delay the exit.
            rt.shutdown_background();
            code
        }
        Command::SendTest { config, to } => {
            let Some(Loaded { config, .. }) = load_or_print(&config)? else {
                return Ok(ExitCode::from(1));
            };
            runtime()?.block_on(send_test(config, &to))
        }
        Command::Check { config, at } => check(&config, at.as_deref()),
        Command::Import(args) => import::run(&args),
        Command::Plan {
            config,
            at,
            days,
            until,
            office,
            task,
            format,
        } => plan_cmd(&config, at.as_deref(), days, until, office, task, format),
        Command::Log {
            config,
            office,
            task,
            status,
            since,
            until,
            limit,
            format,
        } => {
            let Some(Loaded { config, .. }) = load_or_print(&config)? else {
                return Ok(ExitCode::from(1));
            };
            let tz = config.schedule.timezone;
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
            print!("{}", render_log(&rows, tz, &name, format));
            Ok(ExitCode::SUCCESS)
        }
        Command::Calendar {
            config,
            year,
            month,
            format,
        } => {
            // The clerk's additions count when there is a config; without one (a default
            // path that does not exist) the built-in calendar is shown.
            let from_config =
                if config.path.exists() || std::env::var_os("NHACVIEC_CONFIG").is_some() {
                    let Some(Loaded { config, .. }) = load_or_print(&config)? else {
                        return Ok(ExitCode::from(1));
                    };
                    Some(config)
                } else {
                    None
                };
            let tz = from_config
                .as_ref()
                .map(|c| c.schedule.timezone)
                .unwrap_or(chrono_tz::Asia::Ho_Chi_Minh);
            let year = year.unwrap_or_else(|| Clock::real().now().with_timezone(&tz).year());
            let cal = match &from_config {
                Some(c) => c.work_calendar(year),
                None => crate::calendar::holidays::vietnam_calendar(year - 1..=year + 1),
            };
            print!("{}", calendar_report::render(&cal, year, month, format));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn plan_cmd(
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
    let known = if config.ledger.path.exists() {
        known_keys(&Ledger::open_read_only(&config.ledger.path)?)?
    } else {
        HashSet::new()
    };
    let cal = config.work_calendar(now.with_timezone(&tz).year());
    let plan = planner::plan(&config, &cal, now, until, &known);
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    write_plan(
        &mut out,
        &config,
        &plan,
        office.as_deref(),
        task.as_deref(),
        format,
    )
    .and_then(|()| out.flush())
    .context("cannot write the plan")?;
    Ok(ExitCode::SUCCESS)
}

/// Every key the ledger holds, whatever its state: the planner's "already known".
pub fn known_keys(ledger: &Ledger) -> Result<HashSet<NudgeKey>> {
    Ok(ledger.all_states()?.into_keys().collect())
}

/// One thread is plenty: the daemon waits on the network and the clock, and a small
/// footprint matters more than parallelism here.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn send_test(config: Config, to: &str) -> Result<ExitCode> {
    let now = Clock::real().now();
    let tz = config.schedule.timezone;
    let ctx = sweep::Context::new(config, &SecretEnv::from_process(), now)?;
    let cfg = &*ctx.config;
    let batch = email::sample_batch(cfg, &ctx.calendar, now.with_timezone(&tz), to)
        .context("the config has no task to build a sample reminder from")?;
    let id = email::new_message_id(&cfg.mail.message_id_domain);
    let msg = ctx
        .composer
        .compose(cfg, &ctx.calendar, &batch, &id, now.with_timezone(&tz))?;
    match ctx.sender.send(&msg).await {
        Ok(reply) => {
            println!("sent a sample reminder to {to} (Message-ID {id})");
            println!("server reply: {reply}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("nhacviec: the sample reminder to {to} was not sent: {e}");
            Ok(ExitCode::from(1))
        }
    }
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

fn check(arg: &ConfigArg, at: Option<&str>) -> Result<ExitCode> {
    let Some(Loaded { config, report }) = load_or_print(arg)? else {
        return Ok(ExitCode::from(1));
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
        if !plan.due.is_empty() || !plan.upcoming.is_empty() {
            break;
        }
    }
    let reachable = config
        .offices
        .iter()
        .filter(|o| !o.emails.is_empty())
        .count();
    let unscheduled = plan.unscheduled.len();
    println!("{}: OK", config.path.display());
    if !config.plan.title.is_empty() {
        println!("  plan:      {}", config.plan.title);
    }
    println!(
        "  offices:   {} ({} with an email address), {} groups",
        config.offices.len(),
        reachable,
        config.groups.len()
    );
    println!(
        "  tasks:     {} ({} scheduled, {} with no date yet)",
        config.tasks.len(),
        config.tasks.len() - unscheduled,
        unscheduled
    );
    match plan.due.first().or(plan.upcoming.first()) {
        Some(n) => println!(
            "  next nudge: {} — {} to {} ({})",
            format_local(&n.send_at),
            n.task,
            n.office,
            n.kind.label()
        ),
        None => println!("  next nudge: none planned"),
    }
    if report.warning_count() > 0 {
        println!("  {} warning(s), shown above", report.warning_count());
    }
    Ok(ExitCode::SUCCESS)
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

fn format_local(t: &DateTime<Tz>) -> String {
    format!(
        "{} {}",
        weekday_vi(t.date_naive()),
        t.format("%d/%m/%Y %H:%M")
    )
}

fn days_left_text(n: &Nudge) -> String {
    let unit = match n.unit {
        config::Unit::Days => "ngày",
        config::Unit::WorkingDays => "ngày làm việc",
    };
    match n.days_left {
        0 => "hôm nay".to_string(),
        d if d > 0 => format!("còn {d} {unit}"),
        d => format!("quá {} {unit}", -d),
    }
}

/// The columns of `plan`: (key for JSON and CSV, title for the text table).
const PLAN_COLUMNS: [(&str, &str); 10] = [
    ("send_at", "Gửi lúc"),
    ("status", "Trạng thái"),
    ("task", "Nhiệm vụ"),
    ("office", "Đơn vị"),
    ("role", "Vai trò"),
    ("kind", "Loại"),
    ("deadline", "Hạn"),
    ("deadline_phrase", "Tiến độ (kế hoạch)"),
    ("days_left", "Còn"),
    ("recipients", "Gửi thêm"),
];

/// The cells of one `plan` row, rewritten in place for each nudge: a year of a large plan
/// has millions of rows, and a fresh `String` per cell was most of the printing's work.
struct PlanRow {
    cells: [String; 10],
    machine: bool,
    /// The send time and deadline the cells hold: rows come in time order, so both
    /// repeat and are formatted once per run of equal values.
    send_at: Option<DateTime<Tz>>,
    occurrence: Option<NaiveDate>,
    /// The task the task and phrase cells hold.
    task: Option<std::sync::Arc<str>>,
}

impl PlanRow {
    fn new(machine: bool) -> Self {
        Self {
            cells: Default::default(),
            machine,
            send_at: None,
            occurrence: None,
            task: None,
        }
    }

    fn fill(&mut self, cfg: &Config, n: &Nudge, status: &str) {
        use std::fmt::Write as _;
        let machine = self.machine;
        let [
            send_at,
            st,
            task,
            office,
            role,
            kind,
            deadline,
            phrase,
            days_left,
            recipients,
        ] = &mut self.cells;
        if self.send_at != Some(n.send_at) {
            send_at.clear();
            if machine {
                send_at.push_str(&n.send_at.to_rfc3339());
            } else {
                send_at.push_str(&format_local(&n.send_at));
            }
            self.send_at = Some(n.send_at);
        }
        st.clear();
        st.push_str(status);
        if self.task.as_ref() != Some(&n.task) {
            self.task = Some(n.task.clone());
            task.clear();
            task.push_str(&n.task);
            phrase.clear();
            if let Some(t) = cfg.task(&n.task) {
                phrase.push_str(&t.deadline.phrase);
            }
        }
        office.clear();
        office.push_str(&n.office);
        role.clear();
        role.push_str(if machine {
            n.role.code()
        } else {
            n.role.label()
        });
        kind.clear();
        if machine {
            let _ = n.kind.write_code(kind);
        } else {
            kind.push_str(&n.kind.label());
        }
        if self.occurrence != Some(n.occurrence) {
            deadline.clear();
            if machine {
                let _ = write!(deadline, "{}", n.occurrence.format("%Y-%m-%d"));
            } else {
                let _ = write!(
                    deadline,
                    "{} {}",
                    weekday_vi(n.occurrence),
                    n.occurrence.format("%d/%m/%Y")
                );
            }
            self.occurrence = Some(n.occurrence);
        }
        days_left.clear();
        if machine {
            let _ = write!(days_left, "{}", n.days_left);
        } else {
            days_left.push_str(&days_left_text(n));
        }
        recipients.clear();
        recipients.push_str(match (n.add_head, n.add_leadership) {
            (true, true) => "trưởng đơn vị, lãnh đạo",
            (true, false) => "trưởng đơn vị",
            (false, true) => "lãnh đạo",
            _ => "",
        });
    }
}

/// A CSV field, quoted when it needs to be (as [`Table`] writes them).
fn write_csv_field(w: &mut impl Write, s: &str) -> std::io::Result<()> {
    if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        write!(w, "\"{}\"", s.replace('"', "\"\""))
    } else {
        w.write_all(s.as_bytes())
    }
}

fn write_csv_row<'a>(
    w: &mut impl Write,
    cells: impl IntoIterator<Item = &'a str>,
) -> std::io::Result<()> {
    for (i, c) in cells.into_iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        write_csv_field(w, c)?;
    }
    w.write_all(b"\r\n")
}

/// One row as a JSON object, laid out as `serde_json::to_string_pretty` lays out an element
/// of an array that is the value of a top-level key: keys in sorted order (`order`), an
/// empty cell as `null`.
fn write_json_object(
    w: &mut impl Write,
    first: bool,
    keys: &[&str],
    order: &[usize],
    cells: &[String],
) -> std::io::Result<()> {
    w.write_all(if first { b"\n    {" } else { b",\n    {" })?;
    for (i, &c) in order.iter().enumerate() {
        w.write_all(if i == 0 { b"\n      " } else { b",\n      " })?;
        serde_json::to_writer(&mut *w, keys[c])?;
        w.write_all(b": ")?;
        if cells[c].is_empty() {
            w.write_all(b"null")?;
        } else {
            serde_json::to_writer(&mut *w, cells[c].as_str())?;
        }
    }
    w.write_all(b"\n    }")
}

/// The column indices in the order serde_json writes the keys of an object (sorted).
fn sorted_order(keys: &[&str]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|i| keys[*i]);
    order
}

/// Writes the plan: due now first, then upcoming, then the tasks with no date. CSV and
/// JSON go out row by row as the nudges are read; the text table is collected first, to
/// align its columns.
pub fn write_plan(
    w: &mut impl Write,
    cfg: &Config,
    plan: &Plan,
    office: Option<&str>,
    task: Option<&str>,
    format: Format,
) -> std::io::Result<()> {
    let keep =
        |n: &&Nudge| office.is_none_or(|o| *n.office == *o) && task.is_none_or(|t| *n.task == *t);
    let machine = format != Format::Table;
    let rows = plan
        .due
        .iter()
        .filter(keep)
        .map(|n| {
            let status = match (plan.sendable_now, n.late) {
                (true, false) => "due now",
                (true, true) => "late, due now",
                (false, false) => "at next sweep",
                (false, true) => "late, at next sweep",
            };
            (n, status)
        })
        .chain(plan.upcoming.iter().filter(keep).map(|n| (n, "planned")));
    let unscheduled_columns = [
        ("task", "Nhiệm vụ"),
        ("deadline_phrase", "Tiến độ (kế hoạch)"),
        ("reason", "Chưa có hạn vì"),
    ];
    let unscheduled = plan
        .unscheduled
        .iter()
        .filter(|x| task.is_none_or(|t| x.task == t))
        .filter(|x| {
            office.is_none_or(|o| {
                cfg.task(&x.task)
                    .is_some_and(|t| t.lead.iter().chain(&t.cooperating).any(|i| i == o))
            })
        })
        .map(|x| [x.task.clone(), x.phrase.clone(), x.reason.clone()]);
    let mut row = PlanRow::new(machine);
    match format {
        Format::Csv => {
            write_csv_row(w, PLAN_COLUMNS.iter().map(|(k, _)| *k))?;
            for (n, status) in rows {
                row.fill(cfg, n, status);
                write_csv_row(w, row.cells.iter().map(String::as_str))?;
            }
        }
        Format::Json => {
            let keys: Vec<&str> = PLAN_COLUMNS.iter().map(|(k, _)| *k).collect();
            let order = sorted_order(&keys);
            w.write_all(b"{\n  \"nudges\": [")?;
            let mut first = true;
            for (n, status) in rows {
                row.fill(cfg, n, status);
                write_json_object(w, first, &keys, &order, &row.cells)?;
                first = false;
            }
            w.write_all(if first { b"],\n" } else { b"\n  ],\n" })?;
            let keys: Vec<&str> = unscheduled_columns.iter().map(|(k, _)| *k).collect();
            let order = sorted_order(&keys);
            w.write_all(b"  \"unscheduled\": [")?;
            let mut first = true;
            for cells in unscheduled {
                write_json_object(w, first, &keys, &order, &cells)?;
                first = false;
            }
            w.write_all(if first { b"]\n}\n" } else { b"\n  ]\n}\n" })?;
        }
        Format::Ics => plan_ics::write(w, cfg, office, task)?,
        Format::Table => {
            let mut t = Table::new(&PLAN_COLUMNS);
            for (n, status) in rows {
                row.fill(cfg, n, status);
                t.push(row.cells.to_vec());
            }
            let mut u = Table::new(&unscheduled_columns);
            for cells in unscheduled {
                u.push(cells.to_vec());
            }
            if t.is_empty() {
                w.write_all(b"No nudges in this period.\n")?;
            } else {
                w.write_all(t.render(Format::Table).as_bytes())?;
            }
            if !u.is_empty() {
                write!(w, "\nTasks with no date yet ({}):\n", u.len())?;
                w.write_all(u.render(Format::Table).as_bytes())?;
            }
        }
    }
    Ok(())
}

/// [`write_plan`] into a string.
pub fn render_plan(
    cfg: &Config,
    plan: &Plan,
    office: Option<&str>,
    task: Option<&str>,
    format: Format,
) -> String {
    let mut out = Vec::new();
    write_plan(&mut out, cfg, plan, office, task, format).expect("writing to memory");
    String::from_utf8(out).expect("the plan is text")
}
