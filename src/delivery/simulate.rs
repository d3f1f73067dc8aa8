//! A period replayed before it happens: every scheduled sweep from `from` to `until`, run by
//! the real [`sweep`](crate::delivery::sweep::sweep) (the same
//! [`reconcile`](crate::delivery::reconcile::reconcile), batching, composition and ledger
//! writes as the daemon) against an in-memory ledger and a transport that delivers nothing.
//! What the scratch ledger then holds is what the period would send: this module counts it
//! per recipient and per ISO week.

use crate::delivery::email::Composer;
use crate::delivery::ledger::{Ledger, LogFilter, Status};
use crate::delivery::sweep::{self, Context};
use crate::delivery::transport::Sender;
use crate::plan::config::{Config, Done};
use crate::plan::planner;
use crate::service::clock::Clock;
use crate::service::shutdown::Shutdown;
use anyhow::{Context as _, Result};
use chrono::{DateTime, Datelike, IsoWeek, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use lettre::message::Mailbox;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::Arc;

/// Which tasks are done, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Assume {
    /// As the config's `done:` says.
    AsWritten,
    /// Every deadline is met: each task (each occurrence) is marked done on its deadline,
    /// as a clerk would write `done:` the day after.
    DoneOnDeadline,
    /// Nothing is ever done: every `done:` is cleared.
    NeverDone,
}

impl Assume {
    pub fn code(self) -> &'static str {
        match self {
            Assume::AsWritten => "as-written",
            Assume::DoneOnDeadline => "done-on-deadline",
            Assume::NeverDone => "never-done",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Assume::AsWritten => "hoàn thành như cấu hình ghi (done:)",
            Assume::DoneOnDeadline => "mọi nhiệm vụ hoàn thành đúng hạn",
            Assume::NeverDone => "không nhiệm vụ nào hoàn thành",
        }
    }
}

/// Who an address belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Recipient {
    /// An office's own address (its id).
    Office(String),
    /// The head of this office.
    Head(String),
    /// The leadership (`leadership:`).
    Leadership,
    /// An address the config does not name as any of these (the address).
    Other(String),
}

impl Recipient {
    /// `office`, `head`, `leadership`, `other`.
    pub fn kind(&self) -> &'static str {
        match self {
            Recipient::Office(_) => "office",
            Recipient::Head(_) => "head",
            Recipient::Leadership => "leadership",
            Recipient::Other(_) => "other",
        }
    }

    /// The office id it belongs to (the leadership office's for the leadership).
    pub fn office<'a>(&'a self, cfg: &'a Config) -> Option<&'a str> {
        match self {
            Recipient::Office(o) | Recipient::Head(o) => Some(o),
            Recipient::Leadership => cfg.leadership.as_deref(),
            Recipient::Other(_) => None,
        }
    }

    /// In Vietnamese, with the office's name.
    pub fn label(&self, cfg: &Config) -> String {
        let name = |id: &str| cfg.office(id).map_or(id.to_string(), |o| o.name.clone());
        match self {
            Recipient::Office(o) => name(o),
            Recipient::Head(o) => format!("Trưởng đơn vị: {}", name(o)),
            Recipient::Leadership => match cfg.leadership.as_deref() {
                Some(l) => format!("Lãnh đạo: {}", name(l)),
                None => "Lãnh đạo".to_string(),
            },
            Recipient::Other(a) => a.clone(),
        }
    }
}

/// One email the period would send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// The local day it goes out.
    pub day: NaiveDate,
    /// Every address, To and Cc alike, in the address form (`a@b`, lowercased).
    pub addresses: Vec<String>,
    /// The reminders (nudges) it carries.
    pub reminders: usize,
}

/// A reminder the period would record as skipped, never send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub task: String,
    pub office: String,
    pub kind: String,
    pub occurrence: NaiveDate,
    /// When it was planned to go out (local).
    pub due: DateTime<Tz>,
    pub reason: String,
}

/// What a period would send.
#[derive(Debug, Clone)]
pub struct Simulation {
    pub from: NaiveDate,
    pub until: NaiveDate,
    pub assume: Assume,
    /// Scheduled sweeps replayed.
    pub sweeps: usize,
    /// Of those, on a day off or outside the sending window: they send nothing.
    pub idle_sweeps: usize,
    /// In the order they would go out.
    pub emails: Vec<Email>,
    pub skipped: Vec<Skipped>,
    /// Reminders whose email could not be composed (a broken template or address).
    pub failed: usize,
    /// Address (lowercased) → who it belongs to.
    pub owners: BTreeMap<String, Recipient>,
    /// Reminders sent, per kind (`before-14d`, `on-day`, `overdue-3wd`…).
    pub kinds: BTreeMap<String, usize>,
}

/// Replays every scheduled sweep (the `schedule.sweeps` times) from `from` to `until`, both
/// inclusive, local time. Sends nothing and writes nothing: the ledger lives in memory and
/// the transport discards what it is given.
pub async fn simulate(
    base: &Config,
    from: NaiveDate,
    until: NaiveDate,
    assume: Assume,
) -> Result<Simulation> {
    anyhow::ensure!(
        from <= until,
        "the period is empty: --from {from} is after --until {until}"
    );
    let tz = base.schedule.timezone;
    let times = sweep_times(base, from, until);
    let mut ledger = crate::delivery::ledger::Store::Sqlite(Ledger::in_memory()?);
    let stop = Shutdown::new();
    let cleared = match assume {
        Assume::AsWritten => base.clone(),
        Assume::NeverDone | Assume::DoneOnDeadline => {
            let mut c = base.clone();
            for t in &mut c.tasks {
                t.done = Done::Open;
            }
            c
        }
    };
    let mut ctx: Option<(Vec<Done>, i32, Context)> = None;
    let mut idle_sweeps = 0;
    for &at in &times {
        let local = at.with_timezone(&tz);
        let year = local.year();
        let cfg = match assume {
            Assume::DoneOnDeadline => done_before(&cleared, local.date_naive(), year),
            _ => cleared.clone(),
        };
        let done: Vec<Done> = cfg.tasks.iter().map(|t| t.done.clone()).collect();
        let stale = !matches!(&ctx, Some((d, y, _)) if *d == done && *y == year);
        if stale {
            ctx = Some((done, year, context(cfg, year)?));
        }
        let (_, _, c) = ctx.as_ref().expect("built above");
        let report = sweep::sweep(c, &mut ledger, &Clock::starting_at(at), &stop).await?;
        if report.outside_window {
            idle_sweeps += 1;
        }
    }
    let ledger = ledger.sqlite().expect("an in-memory SQLite ledger");
    collect(base, ledger, from, until, assume, times.len(), idle_sweeps)
}

/// What a sweep needs, for `cfg` in `year`, with a transport that delivers nothing.
fn context(cfg: Config, year: i32) -> Result<Context> {
    let calendar = cfg.work_calendar(year);
    let composer = Composer::new(&cfg).context(crate::t!(
        "không nạp được các mẫu email",
        "cannot load the email templates"
    ))?;
    Ok(Context {
        config: Arc::new(cfg),
        calendar: Arc::new(calendar),
        composer,
        sender: Sender::discard(),
    })
}

/// `cfg` as its `done:` would read on `today` if every deadline were met: each task done on
/// its latest deadline before `today` (for a repeated deadline this covers the occurrences up
/// to it). A task waiting for another is scheduled once that one is done, so this repeats
/// until nothing changes.
fn done_before(cleared: &Config, today: NaiveDate, year: i32) -> Config {
    let cal = cleared.work_calendar(year);
    let mut cfg = cleared.clone();
    for _ in 0..=cfg.tasks.len() {
        let mut changed = false;
        for i in 0..cfg.tasks.len() {
            let Ok(occs) = planner::occurrences(&cfg, &cal, &cfg.tasks[i]) else {
                continue;
            };
            let done = occs
                .into_iter()
                .filter(|d| *d < today)
                .max()
                .map_or(Done::Open, Done::All);
            if cfg.tasks[i].done != done {
                cfg.tasks[i].done = done;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    cfg
}

/// Every scheduled sweep time from the start of `from` to the end of `until` (local), in
/// order, each once.
pub fn sweep_times(cfg: &Config, from: NaiveDate, until: NaiveDate) -> Vec<DateTime<Utc>> {
    let tz = cfg.schedule.timezone;
    let start = local_midnight(tz, from);
    let end = local_midnight(tz, until.succ_opt().unwrap_or(until));
    let mut times = BTreeSet::new();
    for sw in &cfg.schedule.sweeps {
        let mut t = start;
        let mut inclusive = true;
        while let Ok(next) = sw.cron.find_next_occurrence(&t, inclusive) {
            if next >= end {
                break;
            }
            times.insert(next.with_timezone(&Utc));
            t = next;
            inclusive = false;
        }
    }
    times.into_iter().collect()
}

fn local_midnight(tz: Tz, d: NaiveDate) -> DateTime<Tz> {
    let midnight = d.and_hms_opt(0, 0, 0).expect("midnight exists");
    tz.from_local_datetime(&midnight)
        .earliest()
        .unwrap_or_else(|| tz.from_utc_datetime(&midnight))
}

/// The emails and skipped reminders the scratch ledger holds.
fn collect(
    cfg: &Config,
    ledger: &Ledger,
    from: NaiveDate,
    until: NaiveDate,
    assume: Assume,
    sweeps: usize,
    idle_sweeps: usize,
) -> Result<Simulation> {
    let tz = cfg.schedule.timezone;
    let mut rows = ledger.query(&LogFilter::default())?;
    rows.sort_by_key(|r| (r.sent_at.unwrap_or(r.updated_at), r.id));
    let mut emails: Vec<Email> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut failed = 0;
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows {
        match r.status {
            Status::Sent => {
                *kinds.entry(r.key.kind.clone()).or_insert(0) += 1;
                if let Some(i) = seen.get(&r.message_id) {
                    emails[*i].reminders += 1;
                    continue;
                }
                let at = r.sent_at.unwrap_or(r.updated_at).with_timezone(&tz);
                let mut addresses: Vec<String> = Vec::new();
                for a in &r.recipients {
                    let a = address(a);
                    if !addresses.contains(&a) {
                        addresses.push(a);
                    }
                }
                seen.insert(r.message_id.clone(), emails.len());
                emails.push(Email {
                    day: at.date_naive(),
                    addresses,
                    reminders: 1,
                });
            }
            Status::Skipped => skipped.push(Skipped {
                task: r.key.task,
                office: r.key.office,
                kind: r.key.kind,
                occurrence: r.key.occurrence,
                due: r.due_at.with_timezone(&tz),
                reason: r.reply.unwrap_or_default(),
            }),
            _ => failed += 1,
        }
    }
    skipped.sort_by(|a, b| (a.due, &a.task, &a.office).cmp(&(b.due, &b.task, &b.office)));
    Ok(Simulation {
        from,
        until,
        assume,
        sweeps,
        idle_sweeps,
        emails,
        skipped,
        failed,
        owners: owners(cfg),
        kinds,
    })
}

/// The address part of `Tên <a@b>`, lowercased.
pub fn address(s: &str) -> String {
    Mailbox::from_str(s.trim())
        .map(|m| m.email.to_string())
        .unwrap_or_else(|_| s.trim().to_string())
        .to_lowercase()
}

/// Who each configured address belongs to: the leadership first, then the offices' own
/// addresses, then the heads.
fn owners(cfg: &Config) -> BTreeMap<String, Recipient> {
    let mut m = BTreeMap::new();
    if let Some(l) = cfg.leadership.as_deref().and_then(|l| cfg.office(l)) {
        for a in &l.emails {
            m.entry(address(a)).or_insert(Recipient::Leadership);
        }
    }
    for o in &cfg.offices {
        for a in &o.emails {
            m.entry(address(a))
                .or_insert_with(|| Recipient::Office(o.id.clone()));
        }
    }
    for o in &cfg.offices {
        if let Some(h) = &o.head {
            m.entry(address(h))
                .or_insert_with(|| Recipient::Head(o.id.clone()));
        }
    }
    m
}

/// An ISO week as `2024-W04`.
pub fn week_code(w: IsoWeek) -> String {
    format!("{}-W{:02}", w.year(), w.week())
}

/// The Monday of an ISO week.
pub fn week_monday(w: IsoWeek) -> NaiveDate {
    NaiveDate::from_isoywd_opt(w.year(), w.week(), chrono::Weekday::Mon).expect("a real week")
}

impl Simulation {
    pub fn reminders(&self) -> usize {
        self.emails.iter().map(|e| e.reminders).sum()
    }

    /// Emails per address, To and Cc alike.
    pub fn per_address(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for e in &self.emails {
            for a in &e.addresses {
                *m.entry(a.clone()).or_insert(0) += 1;
            }
        }
        m
    }

    /// Who receives each email: an office, head or the leadership counts once per email
    /// even when several of its addresses are on it.
    fn recipients_of(&self, e: &Email) -> BTreeSet<Recipient> {
        e.addresses
            .iter()
            .map(|a| {
                self.owners
                    .get(a)
                    .cloned()
                    .unwrap_or_else(|| Recipient::Other(a.clone()))
            })
            .collect()
    }

    /// Emails per recipient and ISO week.
    pub fn per_week(&self) -> BTreeMap<Recipient, BTreeMap<IsoWeek, usize>> {
        let mut m: BTreeMap<Recipient, BTreeMap<IsoWeek, usize>> = BTreeMap::new();
        for e in &self.emails {
            for r in self.recipients_of(e) {
                *m.entry(r).or_default().entry(e.day.iso_week()).or_insert(0) += 1;
            }
        }
        m
    }

    /// Emails per ISO week, every week of the period (none left out).
    pub fn weeks(&self) -> BTreeMap<IsoWeek, usize> {
        let mut m: BTreeMap<IsoWeek, usize> = BTreeMap::new();
        let mut d = self.from;
        while d <= self.until {
            m.entry(d.iso_week()).or_insert(0);
            d = match d.succ_opt() {
                Some(n) => n,
                None => break,
            };
        }
        for e in &self.emails {
            *m.entry(e.day.iso_week()).or_insert(0) += 1;
        }
        m
    }

    /// The day with the most emails (the earliest of equals), if any was sent.
    pub fn busiest_day(&self) -> Option<(NaiveDate, usize)> {
        let mut m: BTreeMap<NaiveDate, usize> = BTreeMap::new();
        for e in &self.emails {
            *m.entry(e.day).or_insert(0) += 1;
        }
        m.into_iter().fold(
            None,
            |best: Option<(NaiveDate, usize)>, (d, n)| match best {
                Some((_, b)) if b >= n => best,
                _ => Some((d, n)),
            },
        )
    }
}
