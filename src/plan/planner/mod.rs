//! The planner: which nudges are due now, which were missed, which come next.
//!
//! [`plan`] is a pure function of the config, the working-day calendar, the moment `now`
//! and the set of nudges the ledger already knows. It does no IO and never reads the clock,
//! so `nhacviec plan` (what will be sent) and `nhacviec run` (what is sent) cannot disagree:
//! both call it and differ only in what they do with the answer.
//!
//! Total: no value in the YAML makes it panic or run long. Its date arithmetic is checked
//! (clippy's `arithmetic_side_effects` is denied here): a nudge whose day would leave the
//! calendar is not planned. Overdue repeats are computed one step from the last, and at most
//! [`MAX_OVERDUE_STEPS`] of them per deadline occurrence.
#![deny(clippy::arithmetic_side_effects)]

mod nudges;
mod schedule;
mod send_times;
mod upcoming;

use crate::calendar::workdays::{WorkCalendar, WorkDayIndex};
use crate::plan::config::{Config, Offset, Policy, Task, Unit};
use crate::plan::deadline::Rule;
use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use nudges::{Schedules, TaskCtx, nudges_for};
use send_times::SendTimes;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
pub use upcoming::{Indexed, Places, Upcoming};

/// What kind of nudge, relative to its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `n` days (or working days) before the deadline.
    Before(Offset),
    /// On the deadline (or the last working day before it).
    OnDay,
    /// Overdue by this much (a repeat while overdue).
    Overdue(Offset),
    /// The office's head is added.
    EscalateHead,
    /// Listed in the leadership's daily digest (the first time).
    EscalateLeadership,
    /// Listed in the leadership's digest again, overdue by this much (weekly repeats).
    LeadershipAgain(Offset),
}

impl Kind {
    /// The stable code stored in the ledger; part of the "already sent" key.
    pub fn code(&self) -> String {
        let mut s = String::new();
        let _ = self.write_code(&mut s);
        s
    }

    /// [`Kind::code`], written into `w`: printing millions of them need not allocate.
    pub fn write_code(&self, w: &mut impl std::fmt::Write) -> std::fmt::Result {
        match self {
            Kind::Before(o) => write!(w, "before-{o}"),
            Kind::OnDay => w.write_str("on-day"),
            Kind::Overdue(o) => write!(w, "overdue-{o}"),
            Kind::EscalateHead => w.write_str("escalation-head"),
            Kind::EscalateLeadership => w.write_str("escalation-leadership"),
            Kind::LeadershipAgain(o) => write!(w, "escalation-leadership-{o}"),
        }
    }

    /// In Vietnamese, for tables.
    pub fn label(&self) -> String {
        fn span(o: &Offset) -> String {
            match o.unit {
                Unit::Days => format!("{} ngày", o.n),
                Unit::WorkingDays => format!("{} ngày làm việc", o.n),
            }
        }
        match self {
            Kind::Before(o) => format!("trước {}", span(o)),
            // Not "đúng hạn", which reads as "on time".
            Kind::OnDay => "đến hạn hôm nay".into(),
            Kind::Overdue(o) => format!("quá hạn {}", span(o)),
            Kind::EscalateHead => "báo trưởng đơn vị".into(),
            Kind::EscalateLeadership => "báo Lãnh đạo Văn phòng".into(),
            Kind::LeadershipAgain(o) => format!("báo Lãnh đạo Văn phòng (quá hạn {})", span(o)),
        }
    }

    /// When two nudges of one deadline fall on the same day, the weightier one is kept.
    fn weight(&self) -> (u8, i64) {
        // Tenths of a day: an offset is at most u32::MAX working days, so this fits.
        let tenths = |o: &Offset| (o.approx_days() * 10.0) as i64;
        match self {
            Kind::Before(o) => (0, tenths(o).saturating_neg()),
            Kind::OnDay => (1, 0),
            Kind::Overdue(o) => (2, tenths(o)),
            Kind::EscalateHead => (3, 0),
            Kind::EscalateLeadership => (4, 0),
            Kind::LeadershipAgain(o) => (4, (o.approx_days() * 10.0) as i64),
        }
    }

    pub fn is_overdue(&self) -> bool {
        matches!(
            self,
            Kind::Overdue(_)
                | Kind::EscalateHead
                | Kind::EscalateLeadership
                | Kind::LeadershipAgain(_)
        )
    }

    /// An item of the leadership's digest, not an email to the office itself.
    pub fn is_leadership(&self) -> bool {
        matches!(self, Kind::EscalateLeadership | Kind::LeadershipAgain(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Chủ trì: the office that owes the task.
    Lead,
    /// Phối hợp.
    Cooperating,
    /// An overdue nudge that goes up the ladder (head, leadership).
    Escalation,
}

impl Role {
    pub fn code(&self) -> &'static str {
        match self {
            Role::Lead => "lead",
            Role::Cooperating => "cooperating",
            Role::Escalation => "escalation",
        }
    }
    pub fn label(&self) -> &'static str {
        match self {
            Role::Lead => "chủ trì",
            Role::Cooperating => "phối hợp",
            Role::Escalation => "chủ trì (báo cáo cấp trên)",
        }
    }
}

/// The ledger's unique key: a nudge is sent at most once per key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NudgeKey {
    pub task: String,
    /// The deadline occurrence the nudge is about.
    pub occurrence: NaiveDate,
    pub office: String,
    /// [`Kind::code`].
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nudge {
    /// The task's id. Shared by every nudge of the task: a year of a large plan has
    /// millions of nudges, and a copy of the id in each was most of their memory.
    pub task: Arc<str>,
    /// The office's id, shared the same way.
    pub office: Arc<str>,
    pub role: Role,
    pub kind: Kind,
    /// The deadline this nudge is about.
    pub occurrence: NaiveDate,
    /// The working day it goes out.
    pub date: NaiveDate,
    /// The sweep that sends it.
    pub send_at: DateTime<Tz>,
    /// Days from `date` to the deadline, negative when overdue, counted in `unit`.
    pub days_left: i64,
    pub unit: Unit,
    /// The office's head is added to the recipients.
    pub add_head: bool,
    /// Listed in the leadership's daily digest (never copied on the office's own email).
    pub add_leadership: bool,
    /// Sent after its planned day, and why.
    pub late: Late,
}

/// Why a nudge goes out after its planned day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Late {
    /// On its day.
    #[default]
    No,
    /// nhacviec had never run before: the first reminder from the system.
    FirstStart,
    /// nhacviec was not running on its day.
    Downtime,
}

impl Late {
    pub fn is_late(self) -> bool {
        self != Late::No
    }
}

impl std::fmt::Display for NudgeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "task {} / deadline {} / office {} / {}",
            self.task, self.occurrence, self.office, self.kind
        )
    }
}

impl Nudge {
    pub fn key(&self) -> NudgeKey {
        NudgeKey {
            task: self.task.to_string(),
            occurrence: self.occurrence,
            office: self.office.to_string(),
            kind: self.kind.code(),
        }
    }
}

/// A task that has no date yet, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnscheduledTask {
    pub task: String,
    pub phrase: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Due now and not yet sent: what a sweep at `now` sends (only when `sendable_now`).
    pub due: Vec<Nudge>,
    /// Missed while nhacviec was not running and superseded by a later one of the same
    /// deadline occurrence and office (or too old): recorded as skipped, never sent.
    pub skipped: Vec<Nudge>,
    /// Later than `now`, up to the horizon, in time order.
    pub upcoming: Vec<Nudge>,
    pub unscheduled: Vec<UnscheduledTask>,
    /// `now` is a working day inside the sending window.
    pub sendable_now: bool,
    /// Missed before the first sweep and not due: settled by that first start, with no
    /// ledger row of their own (see [`Settled`]).
    pub settled: usize,
}

/// Everything a sweep at `now` must do, and what comes next up to `until`.
///
/// `known` holds the keys the ledger already has (sent, failed, skipped or in flight):
/// those are never due again.
pub fn plan(
    cfg: &Config,
    cal: &WorkCalendar,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    known: &HashSet<NudgeKey>,
) -> Plan {
    plan_settled(cfg, cal, now, until, known, &Settled::default())
}

/// The keys a ledger holds (sent, failed, skipped or in flight): never due again.
pub trait Known {
    fn knows(&self, key: &NudgeKey) -> bool;
    /// [`Known::knows`] of `n`'s key: a ledger that can find it without building the key
    /// says so here.
    fn knows_nudge(&self, n: &Nudge) -> bool {
        self.knows(&n.key())
    }
    /// Holds no key: a nudge's key need not be built to ask.
    fn is_empty(&self) -> bool;
}

impl<S: std::hash::BuildHasher> Known for HashSet<NudgeKey, S> {
    fn knows(&self, key: &NudgeKey) -> bool {
        self.contains(key)
    }

    fn is_empty(&self) -> bool {
        HashSet::is_empty(self)
    }
}

/// What the ledger implies without a row per nudge.
#[derive(Debug, Clone, Default)]
pub struct Settled {
    /// The first sweep's as-of time. A missed nudge planned before it that catch-up does not
    /// send (superseded, or too old) was settled by that first start: it is neither sent nor
    /// given a `skipped` row. Catch-up itself still applies before it: an office that first
    /// appears later (a task reassigned) still gets the latest reminder it missed.
    pub before: Option<DateTime<Utc>>,
    /// Keys in flight (pending, retrying): planned again whatever `before` says, so that
    /// their email can be rebuilt.
    pub in_flight: HashSet<NudgeKey>,
}

impl Settled {
    /// A nudge catch-up does not send is settled rather than skipped: planned before the
    /// first sweep, and not in flight.
    fn covers(&self, n: &Nudge) -> bool {
        self.before.is_some_and(|b| n.send_at < b)
            && (self.in_flight.is_empty() || !self.in_flight.contains(&n.key()))
    }
}

/// [`plan`], with the nudges `settled` implies left out as if the ledger held them.
pub fn plan_settled(
    cfg: &Config,
    cal: &WorkCalendar,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    known: &HashSet<NudgeKey>,
    settled: &Settled,
) -> Plan {
    plan_listed(cfg, cal, now, until, known, settled, false)
}

/// What a sweep at `now` on a ledger that has swept before needs of [`plan_settled`]`(now,
/// now)`: the same `due` and `skipped`, without making the nudges they cannot depend on.
///
/// `settled.before` must be the first sweep's as-of time (`None`: plans everything). Left out,
/// for every task with no key in `settled.in_flight`: the nudges of days before both the
/// catch-up window and the first sweep's day (a day's margin before the earlier of them).
/// Why the answer is the same: such a nudge goes out on its own day, before every nudge kept,
/// so per group (task, occurrence, office) it is older than all of them. Left out with the
/// ledger rows among them, it leaves out exactly the missed nudges of the group older than
/// the kept ones, and keeps the newest row's cut for the rest. Each of those missed nudges
/// is older than the catch-up window, so never due; planned before the first sweep and not
/// in flight, so settled, never skipped. Only `settled` then counts less: it is reported on
/// a first start alone, when this must not be used.
pub fn plan_sweep(
    cfg: &Config,
    cal: &WorkCalendar,
    now: DateTime<Utc>,
    known: &dyn Known,
    settled: &Settled,
) -> Plan {
    plan_listed(cfg, cal, now, now, known, settled, true)
}

/// [`plan_settled`] (`recent`: [`plan_sweep`]) with its upcoming nudges listed and sorted.
fn plan_listed(
    cfg: &Config,
    cal: &WorkCalendar,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    known: &dyn Known,
    settled: &Settled,
    recent: bool,
) -> Plan {
    let mut listed = Listed::default();
    let mut out = plan_cut(cfg, cal, now, until, known, settled, &mut listed, recent);
    out.upcoming = listed.nudges;
    sort_plan(&mut out, &mut listed.keys);
    out
}

/// [`plan_settled`] with the upcoming nudges held compactly and handed out one at a time
/// ([`Upcoming`]): `out.upcoming` is left empty. For long periods of large plans.
pub fn plan_streamed(
    cfg: &Config,
    cal: &WorkCalendar,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    known: &HashSet<NudgeKey>,
    settled: &Settled,
) -> (Plan, Upcoming) {
    let mut upcoming = Upcoming::default();
    let mut out = plan_into(cfg, cal, now, until, known, settled, &mut upcoming);
    sort_plan(&mut out, &mut []);
    (out, upcoming)
}

/// The plan both of the above make, its upcoming nudges handed to `upcoming`, unsorted.
fn plan_into(
    cfg: &Config,
    cal: &WorkCalendar,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    known: &HashSet<NudgeKey>,
    settled: &Settled,
    upcoming: &mut dyn UpcomingSink,
) -> Plan {
    plan_cut(cfg, cal, now, until, known, settled, upcoming, false)
}

/// [`plan_into`]; with `recent`, without the nudges [`plan_sweep`] leaves out.
#[allow(clippy::too_many_arguments)]
fn plan_cut(
    cfg: &Config,
    cal: &WorkCalendar,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    known: &dyn Known,
    settled: &Settled,
    upcoming: &mut dyn UpcomingSink,
    recent: bool,
) -> Plan {
    let (mut out, horizon) = start(cfg, cal, now, until);
    let (span_from, span_to) = index_span(horizon.today, horizon.last_day);
    let idx = WorkDayIndex::new(cal, span_from, span_to);
    let mut times = SendTimes::new(cfg, span_from, span_to);
    let catch_up_from = catch_up_from(cfg, &idx, horizon.today);
    let since = if recent {
        Since::recent(cfg, catch_up_from, settled)
    } else {
        Since::default()
    };
    let (missed, through) = collect(
        cfg, cal, &idx, &mut times, &horizon, known, &since, &mut out, upcoming,
    );
    catch_up(&horizon, catch_up_from, missed, &through, settled, &mut out);
    out
}

/// The first day whose nudges a plan makes, per task.
#[derive(Default)]
struct Since<'a> {
    /// `None`: every day.
    day: Option<NaiveDate>,
    /// Tasks planned from their first day all the same.
    whole: HashSet<&'a str>,
}

impl<'a> Since<'a> {
    /// [`plan_sweep`]'s: the day before both the catch-up window and the first sweep's day,
    /// except for the tasks with a key in flight.
    fn recent(cfg: &Config, catch_up_from: NaiveDate, settled: &'a Settled) -> Self {
        let Some(before) = settled.before else {
            return Self::default();
        };
        let first_day = before.with_timezone(&cfg.schedule.timezone).date_naive();
        Self {
            day: catch_up_from.min(first_day).pred_opt(),
            whole: settled.in_flight.iter().map(|k| k.task.as_str()).collect(),
        }
    }

    fn of(&self, task: &str) -> NaiveDate {
        match self.day {
            Some(d) if !self.whole.contains(task) => d,
            _ => NaiveDate::MIN,
        }
    }
}

/// The first day of the catch-up window ending `today`. A window reaching past the first
/// date there is catches up everything.
fn catch_up_from(cfg: &Config, idx: &WorkDayIndex, today: NaiveDate) -> NaiveDate {
    match cfg.schedule.catch_up.unit {
        Unit::Days => today.checked_sub_days(Days::new(u64::from(cfg.schedule.catch_up.n))),
        Unit::WorkingDays => idx.checked_sub_working_days(today, cfg.schedule.catch_up.n),
    }
    .unwrap_or(NaiveDate::MIN)
}

/// The plan's first fields and horizon.
fn start(
    cfg: &Config,
    cal: &WorkCalendar,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> (Plan, Horizon) {
    let tz = cfg.schedule.timezone;
    let now_local = now.with_timezone(&tz);
    let today = now_local.date_naive();
    let out = Plan {
        sendable_now: cal.is_working_day(today)
            && now_local.time() >= cfg.schedule.window_start
            && now_local.time() <= cfg.schedule.window_end,
        ..Plan::default()
    };
    let horizon = Horizon {
        now_local,
        today,
        until,
        last_day: until.with_timezone(&tz).date_naive(),
    };
    (out, horizon)
}

/// Where the upcoming nudges go as they are planned.
trait UpcomingSink {
    fn push(&mut self, n: Nudge, task_rank: u32, office_rank: u32);
}

/// [`plan`]'s: every nudge, and its sort key, for [`sort_plan`].
#[derive(Default)]
struct Listed {
    nudges: Vec<Nudge>,
    keys: Vec<(SortKey, u32)>,
}

impl UpcomingSink for Listed {
    fn push(&mut self, n: Nudge, task_rank: u32, office_rank: u32) {
        let key = (n.send_at.naive_utc(), task_rank, office_rank, n.kind);
        let at = u32::try_from(self.nudges.len()).unwrap_or(u32::MAX);
        self.keys.push((key, at));
        self.nudges.push(n);
    }
}

impl UpcomingSink for Upcoming {
    fn push(&mut self, n: Nudge, task_rank: u32, office_rank: u32) {
        Upcoming::push(self, n, task_rank, office_rank);
    }
}

/// The first nudge after `now` up to `until` — the first of [`Plan::upcoming`] with an
/// empty ledger — and the number of tasks with no date yet: `check`'s summary.
///
/// Nothing before today is made or kept: for a plan whose deadlines are long past, [`plan`]
/// holds every missed overdue repeat since them to decide what catch-up sends.
pub fn next_nudge(
    cfg: &Config,
    cal: &WorkCalendar,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> (Option<Nudge>, usize) {
    next_nudge_within(cfg, cal, now, &[until])
}

/// [`next_nudge`] up to the first of `horizons` (in growing order) that has one: what
/// asking [`next_nudge`] with each in turn gives, but a task whose whole schedule is
/// already past when looked at up to one horizon is not looked at again for the next
/// (a plan long past has nothing left anywhere, and every task would be planned again).
pub fn next_nudge_within(
    cfg: &Config,
    cal: &WorkCalendar,
    now: DateTime<Utc>,
    horizons: &[DateTime<Utc>],
) -> (Option<Nudge>, usize) {
    let tz = cfg.schedule.timezone;
    let now_local = now.with_timezone(&tz);
    let today = now_local.date_naive();
    let office_ids: HashMap<&str, (Arc<str>, u32)> = ranks(cfg.offices.iter().map(|o| &*o.id))
        .into_iter()
        .zip(&cfg.offices)
        .map(|(r, o)| (o.id.as_str(), (Arc::from(o.id.as_str()), r)))
        .collect();
    // The tasks still to look at, by place in the plan: those with a date, then (after the
    // first horizon) those that may still have a nudge.
    let mut live: Vec<usize> = Vec::new();
    let mut unscheduled = 0usize;
    for (task_at, task) in cfg.tasks.iter().enumerate() {
        if matches!(task.deadline.rule, Rule::Unscheduled(_)) {
            unscheduled = unscheduled.saturating_add(1);
        } else {
            live.push(task_at);
        }
    }
    let mut first = true;
    for &until in horizons {
        let last_day = until.with_timezone(&tz).date_naive();
        let (span_from, span_to) = index_span(today, last_day);
        let idx = WorkDayIndex::new(cal, span_from, span_to);
        let mut times = SendTimes::new(cfg, span_from, span_to);
        let mut batch = Vec::new();
        let mut schedules = Schedules::default();
        // The policy of the task before, looked up again only when the name changes.
        let mut policy: Option<(&str, &Policy)> = None;
        // The order of `sort_plan`: a task's place in id order is its id, then its place in
        // the plan (what sorting the ids once would give, without sorting them).
        let mut next: Option<(NextKey, Nudge)> = None;
        live.retain(|&task_at| {
            let task = &cfg.tasks[task_at];
            let Some(occurrences) = occurrence_dates(cfg, cal, task) else {
                // Waiting for a task not done yet: a dated task in no horizon.
                if first {
                    unscheduled = unscheduled.saturating_add(1);
                }
                return false;
            };
            let single = occurrences.len() == 1;
            let p = match policy {
                Some((name, p)) if std::ptr::eq(name, &*task.policy) => p,
                _ => {
                    let p = cfg.policy(&task.policy);
                    policy = Some((&*task.policy, p));
                    p
                }
            };
            // Made with the task's first nudge: most tasks of a past plan have none left.
            let task_id = OnceCell::new();
            let mut alive = false;
            for &occ in occurrences.iter() {
                let ctx = TaskCtx {
                    cfg,
                    cal: &idx,
                    task,
                    task_id: &task_id,
                    office_ids: &office_ids,
                    policy: p,
                    today,
                    from_day: today,
                };
                let made = Some(&mut schedules);
                alive |= nudges_for(&ctx, occ, single, last_day, &mut times, made, &mut batch);
                for (nudge, office_rank) in batch.drain(..) {
                    if nudge.send_at <= now_local || nudge.send_at > until {
                        continue;
                    }
                    // The order of `sort_plan`; of equal keys, the first made (a stable sort).
                    let key = (
                        nudge.send_at.naive_utc(),
                        task.id.as_str(),
                        task_at,
                        office_rank,
                        nudge.kind,
                    );
                    if next.as_ref().is_none_or(|(k, _)| key < *k) {
                        next = Some((key, nudge));
                    }
                }
            }
            alive
        });
        first = false;
        if let Some((_, n)) = next {
            return (Some(n), unscheduled);
        }
    }
    (None, unscheduled)
}

/// [`next_nudge`]'s order: send time, task id and place in the plan, office rank, kind.
type NextKey<'a> = (chrono::NaiveDateTime, &'a str, usize, u32, Kind);

/// Where a plan stands and how far it looks.
struct Horizon {
    now_local: DateTime<Tz>,
    today: NaiveDate,
    /// Upcoming nudges are planned up to this moment, and to this day.
    until: DateTime<Utc>,
    last_day: NaiveDate,
}

/// The days the working-day index covers: from two years before `today` to two years
/// after `last_day` (or today), at most [`MAX_INDEX_YEARS`] after today.
fn index_span(today: NaiveDate, last_day: NaiveDate) -> (NaiveDate, NaiveDate) {
    // Working-day arithmetic in constant time over the years a plan normally touches;
    // dates outside are answered by the calendar itself.
    // Bounded: the table holds a number per day, and `--until` may name any year.
    let span_from = NaiveDate::from_ymd_opt(today.year().saturating_sub(2), 1, 1).unwrap_or(today);
    let span_end_year = last_day
        .max(today)
        .year()
        .saturating_add(2)
        .min(today.year().saturating_add(MAX_INDEX_YEARS));
    let span_to = NaiveDate::from_ymd_opt(span_end_year, 12, 31).unwrap_or(today);
    (span_from, span_to)
}

/// Missed nudges, per (task, deadline occurrence, office): only the latest of each is
/// sent, the rest are skipped. Per occurrence: an open Q1 must not silence Q2. The
/// leadership's digest items are a line of their own: they never replace the office's.
type Group = (Arc<str>, NaiveDate, Arc<str>, bool);

/// The missed nudges of each group, in the order they were planned.
type Missed = BTreeMap<Group, Vec<Nudge>>;

/// Of each group, the latest send time the ledger holds a row for: what was planned before
/// it was superseded by that row (sent, skipped or in flight) and is never due again.
type Through = rustc_hash::FxHashMap<Group, DateTime<Tz>>;

fn group_of(n: &Nudge) -> Group {
    (
        n.task.clone(),
        n.occurrence,
        n.office.clone(),
        n.kind.is_leadership(),
    )
}

/// Every nudge of every task the ledger does not hold: the missed ones returned by group
/// (with how far the ledger's rows reach in each group), the upcoming ones (up to `until`)
/// in `out.upcoming`, their sort keys returned in the same order; a task without deadline
/// dates in `out.unscheduled`.
#[allow(clippy::too_many_arguments)]
fn collect(
    cfg: &Config,
    cal: &WorkCalendar,
    idx: &WorkDayIndex,
    times: &mut SendTimes,
    horizon: &Horizon,
    known: &dyn Known,
    since: &Since,
    out: &mut Plan,
    upcoming: &mut dyn UpcomingSink,
) -> (Missed, Through) {
    // Each due day's schedule made once per policy: it depends on neither the task nor
    // the first day asked for.
    let mut schedules = Schedules::default();
    // One shared copy of each office id for all of its nudges, with the id's place in
    // sorted order (the same for tasks): the upcoming nudges, millions for a large plan,
    // are sorted on these numbers instead of comparing the ids.
    let office_ids: HashMap<&str, (Arc<str>, u32)> = ranks(cfg.offices.iter().map(|o| &*o.id))
        .into_iter()
        .zip(&cfg.offices)
        .map(|(r, o)| (o.id.as_str(), (Arc::from(o.id.as_str()), r)))
        .collect();
    // Only upcoming nudges are sorted on them: none when the plan looks no further than now.
    let task_ranks = if horizon.until > horizon.now_local {
        ranks(cfg.tasks.iter().map(|t| &*t.id))
    } else {
        vec![0; cfg.tasks.len()]
    };
    let mut batch = Vec::new();
    let mut missed = Missed::new();
    let mut through = Through::default();
    for (task, &task_rank) in cfg.tasks.iter().zip(&task_ranks) {
        let occurrences = match occurrences(cfg, cal, task) {
            Ok(o) => o,
            Err(reason) => {
                out.unscheduled.push(UnscheduledTask {
                    task: task.id.clone(),
                    phrase: task.deadline.phrase.clone(),
                    reason,
                });
                continue;
            }
        };
        let policy = cfg.policy(&task.policy);
        let single = occurrences.len() == 1;
        // Made with the task's first nudge: most tasks of a past plan have none left.
        let task_id = OnceCell::new();
        let from_day = since.of(&task.id);
        for occ in occurrences {
            let ctx = TaskCtx {
                cfg,
                cal: idx,
                task,
                task_id: &task_id,
                office_ids: &office_ids,
                policy,
                today: horizon.today,
                from_day,
            };
            let made = Some(&mut schedules);
            nudges_for(&ctx, occ, single, horizon.last_day, times, made, &mut batch);
            for (nudge, office_rank) in batch.drain(..) {
                // Building a key allocates: skip it when the ledger knows nothing.
                if !known.is_empty() && known.knows_nudge(&nudge) {
                    let t = through.entry(group_of(&nudge)).or_insert(nudge.send_at);
                    *t = (*t).max(nudge.send_at);
                    continue;
                }
                if nudge.send_at <= horizon.now_local {
                    missed.entry(group_of(&nudge)).or_default().push(nudge);
                } else if nudge.send_at <= horizon.until {
                    upcoming.push(nudge, task_rank, office_rank);
                }
            }
        }
    }
    (missed, through)
}

/// Of each group of missed nudges later than the ledger's rows of that group, the latest is
/// due (late if its day is past) when it falls inside the catch-up window; everything else
/// is skipped, or settled when the first start covers it.
fn catch_up(
    horizon: &Horizon,
    catch_up_from: NaiveDate,
    missed: Missed,
    through: &Through,
    settled: &Settled,
    out: &mut Plan,
) {
    let today = horizon.today;
    let not_sent = |n: Nudge, out: &mut Plan| {
        if settled.covers(&n) {
            out.settled = out.settled.saturating_add(1);
        } else {
            out.skipped.push(n);
        }
    };
    for (group, mut list) in missed {
        // Older than a row of the same group: superseded by what the ledger holds.
        if let Some(t) = through.get(&group) {
            list.retain(|n| n.send_at > *t);
        }
        list.sort_by_key(|n| (n.send_at, n.kind.weight()));
        let Some(latest) = list.pop() else {
            continue;
        };
        for n in list {
            not_sent(n, out);
        }
        if latest.date >= catch_up_from {
            out.due.push(Nudge {
                late: if latest.date < today {
                    Late::Downtime
                } else {
                    Late::No
                },
                ..latest
            });
        } else {
            not_sent(latest, out);
        }
    }
}

/// Puts each list of the plan in send order: by time, task, office and kind.
fn sort_plan(out: &mut Plan, upcoming_keys: &mut [(SortKey, u32)]) {
    // Compared in place: a key that cloned the task and office ids made sorting a year of
    // 100,000 tasks spend most of its time copying strings.
    let order = |a: &Nudge, b: &Nudge| {
        (a.send_at, &a.task, &a.office, a.kind).cmp(&(b.send_at, &b.task, &b.office, b.kind))
    };
    out.due.sort_by(order);
    out.skipped.sort_by(order);
    // The same order as `order`: the ranks order as the ids do, and the position breaks
    // ties as a stable sort would.
    upcoming_keys.sort_unstable();
    permute(
        &mut out.upcoming,
        upcoming_keys.iter().map(|(_, i)| *i as usize),
    );
}

/// When a nudge is sent, its task's and office's places in id order, and its kind.
type SortKey = (chrono::NaiveDateTime, u32, u32, Kind);

/// Each id's place among the ids sorted.
fn ranks<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<u32> {
    let ids: Vec<&str> = ids.collect();
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|i| ids[*i]);
    let mut rank = vec![0; ids.len()];
    for (r, i) in order.into_iter().enumerate() {
        rank[i] = u32::try_from(r).unwrap_or(u32::MAX);
    }
    rank
}

/// Reorders `v` in place so that position `k` holds what was at the `k`-th index of
/// `order` (a permutation of `0..v.len()`).
fn permute<T>(v: &mut [T], order: impl Iterator<Item = usize>) {
    let order: Vec<usize> = order.collect();
    debug_assert_eq!(order.len(), v.len());
    let mut placed = vec![false; v.len()];
    for start in 0..v.len() {
        if placed[start] {
            continue;
        }
        // Follow the cycle through `start`, one swap per element.
        let mut k = start;
        loop {
            placed[k] = true;
            let src = order[k];
            if src == start {
                break;
            }
            v.swap(k, src);
            k = src;
        }
    }
}

/// The deadline dates of a task, or why it has none yet.
pub fn occurrences(
    cfg: &Config,
    cal: &WorkCalendar,
    task: &Task,
) -> Result<Vec<NaiveDate>, String> {
    match &task.deadline.rule {
        Rule::Dates(ds) => Ok(ds.clone()),
        Rule::Periodic(p) => Ok(p.dates(cal)),
        Rule::After { task: dep, days } => {
            let Some(dep_task) = cfg.task(dep) else {
                return Err(format!("waits for task {dep}, which is not in the plan"));
            };
            match dep_task.fully_done() {
                Some(done) => done
                    .checked_add_days(Days::new(u64::from(*days)))
                    .map(|d| vec![d])
                    .ok_or_else(|| format!("{days} days after task {dep} is past the year 262143")),
                None => Err(format!(
                    "waits for task {dep} to be done (mark it with `done:` and this one is scheduled {days} days later)"
                )),
            }
        }
        Rule::Unscheduled(u) => Err(u.explain().to_string()),
    }
}

/// The last of [`occurrences`], if the task has any.
pub fn last_occurrence(cfg: &Config, cal: &WorkCalendar, task: &Task) -> Option<NaiveDate> {
    occurrence_dates(cfg, cal, task)?.iter().copied().max()
}

/// [`occurrences`] without the reason a task has none: the dates written in the config
/// borrowed, not copied, and no message made for each unscheduled task.
fn occurrence_dates<'t>(
    cfg: &Config,
    cal: &WorkCalendar,
    task: &'t Task,
) -> Option<Cow<'t, [NaiveDate]>> {
    match &task.deadline.rule {
        Rule::Dates(ds) => Some(Cow::Borrowed(ds)),
        Rule::Periodic(p) => Some(Cow::Owned(p.dates(cal))),
        Rule::After { task: dep, days } => cfg
            .task(dep)?
            .fully_done()?
            .checked_add_days(Days::new(u64::from(*days)))
            .map(|d| Cow::Owned(vec![d])),
        Rule::Unscheduled(_) => None,
    }
}

/// At most this many overdue repeats per deadline occurrence, whatever `overdue_limit` says
/// (or when it says nothing): every 3 working days, 400 repeats are about five years of
/// reminders. A deadline typed with a wrong year (`30/01/1024`) is that far in the past, and
/// stepping through a thousand years of repeats, all of them missed, would take minutes.
pub const MAX_OVERDUE_STEPS: u32 = 400;

/// The working-day index covers at most this many years after today; later dates are
/// answered by the calendar itself.
const MAX_INDEX_YEARS: i32 = 20;

/// The day the work of occurrence `occ` is due: `occ` itself, or for "trước ngày X" (read
/// strictly) the last working day before X.
pub fn due_day(cal: &WorkCalendar, task: &Task, occ: NaiveDate) -> NaiveDate {
    if task.deadline.exclusive {
        occ.pred_opt()
            .map_or(occ, |d| cal.working_day_on_or_before(d))
    } else {
        occ
    }
}

/// Which occurrence of a repeated deadline this is, in words: `Quý II/2024` (quarterly),
/// `Tháng 06/2024` (monthly), `mốc 1/2: 30/06/2024` (checkpoints), `lần 2/3: 30/09/2024`
/// (a list of dates). `None` for a single deadline.
pub fn occurrence_name(
    cfg: &Config,
    cal: &WorkCalendar,
    task: &Task,
    occ: NaiveDate,
) -> Option<String> {
    use crate::plan::deadline::{Period, Phrase, parse_phrase};
    match &task.deadline.rule {
        Rule::Periodic(p) => Some(match p.every {
            Period::Quarter => {
                let q = ["I", "II", "III", "IV"][(occ.month0() / 3) as usize];
                format!("Quý {q}/{}", occ.year())
            }
            Period::Month => format!("Tháng {:02}/{}", occ.month(), occ.year()),
        }),
        Rule::Dates(ds) if ds.len() > 1 => {
            let k = ds.iter().position(|d| *d == occ)?.saturating_add(1);
            let word = match parse_phrase(&task.deadline.phrase) {
                Ok(Phrase::Checkpoints { .. }) => "mốc",
                _ => "lần",
            };
            Some(format!(
                "{word} {k}/{}: {}",
                ds.len(),
                occ.format("%d/%m/%Y")
            ))
        }
        _ => {
            let _ = (cfg, cal);
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
pub(crate) mod tests {
    use super::*;
    use crate::plan::config::{Env, Policy, from_source};
    use chrono::TimeZone;
    use std::path::Path;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        chrono_tz::Asia::Ho_Chi_Minh
            .from_local_datetime(
                &chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap(),
            )
            .unwrap()
            .with_timezone(&Utc)
    }

    fn cfg(tasks: &str) -> Config {
        let src = format!(
            "plan:\n  year: 2024\noffices:\n  hctc:\n    name: Phòng HC-TC\n    email: hctc@vpubnd.example\n    head: truong.hctc@vpubnd.example\n  kt:\n    name: Phòng Kinh tế\n    email: kt@vpubnd.example\n  snv:\n    name: Sở Nội vụ\nleadership: hctc\ntasks:\n{tasks}"
        );
        from_source(&src, Path::new("t.yaml"), &Env::default())
            .unwrap_or_else(|r| panic!("{}", r.render()))
            .config
    }

    /// The plan on a plain Monday-to-Friday week, with an empty ledger.
    fn plain(c: &Config, now: &str, until: &str) -> Plan {
        plan(
            c,
            &WorkCalendar::weekends_only(),
            at(now),
            at(until),
            &HashSet::new(),
        )
    }

    fn upcoming(c: &Config, now: &str, until: &str) -> Vec<(String, String, String, NaiveDate)> {
        plain(c, now, until)
            .upcoming
            .into_iter()
            .map(|n| {
                (
                    n.task.to_string(),
                    n.office.to_string(),
                    n.kind.code(),
                    n.date,
                )
            })
            .collect()
    }

    /// `next_nudge` finds the first nudge `plan` would list, without planning the past:
    /// on the seed plan, before, during and long after its year, near and far.
    #[test]
    fn the_next_nudge_is_the_first_upcoming_one() {
        let c = crate::plan::config::seed_config();
        let mut found = 0;
        for now in [
            "2023-12-20 10:00",
            "2024-01-01 08:00",
            "2024-01-22 07:59",
            "2024-01-22 08:00",
            "2024-06-14 16:30",
            "2024-12-31 23:00",
            "2025-03-01 08:00",
            "2026-11-30 12:00",
        ] {
            let cal = c.work_calendar(at(now).year());
            for days in [1, 31, 366, 800] {
                let until = at(now) + chrono::Duration::days(days);
                let p = plan(&c, &cal, at(now), until, &HashSet::new());
                let (next, unscheduled) = next_nudge(&c, &cal, at(now), until);
                assert_eq!(next.as_ref(), p.upcoming.first(), "{now} + {days} days");
                assert_eq!(unscheduled, p.unscheduled.len());
                found += usize::from(next.is_some());
            }
        }
        assert!(found > 20, "{found}");
    }

    /// A small deterministic random source for tests.
    pub(crate) struct Rng(pub u64);

    impl Rng {
        pub(crate) fn below(&mut self, n: u64) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) % n
        }
    }

    /// A plan of `n` tasks in the shapes `scripts/gen-config` writes (its reminder policies,
    /// every dated deadline form, several leads, cooperating offices without an address, a
    /// third done); `seed` picks the dates and offices.
    pub(crate) fn generated(n: usize, seed: u64) -> Config {
        let mut r = Rng(seed);
        let mut y = String::from(
            "plan:\n  year: 2024\noffices:\n  lanh-dao:\n    name: Lãnh đạo\n    email: ld@vpubnd.example\n",
        );
        for i in 0..12 {
            y += &format!("  dv-{i}:\n    name: Đơn vị {i}\n");
            if i % 6 != 5 {
                y += &format!("    email: dv{i}@vpubnd.example\n");
            }
            if i % 3 == 0 {
                y += &format!("    head: truong.dv{i}@vpubnd.example\n");
            }
        }
        y += "leadership: lanh-dao\nreminders:\n  default:\n    before: [14d, 7d, 3wd, 1wd]\n    on_day: true\n    overdue_every: 3wd\n    overdue_limit: 10\n    escalate:\n      head_after: 5wd\n      leadership_after: 10wd\n    cooperating: [first, last]\n  ca-nam:\n    before: [30d, 14d, 5wd, 1wd]\n    on_day: true\n    overdue_every: 5wd\n    overdue_limit: 6\n    escalate:\n      head_after: 5wd\n      leadership_after: 15wd\n    cooperating: [first, last]\n  thua:\n    before: [7d]\n    on_day: true\n    overdue_every: never\n    cooperating: none\n  day-du:\n    before: [30d, 14d, 7d, 3wd, 1wd]\n    on_day: true\n    overdue_every: 2wd\n    overdue_limit: 4\n    escalate:\n      head_after: 3wd\n      leadership_after: 8wd\n    cooperating: [all, overdue]\n  chi-truoc:\n    before: [10wd, 2wd]\n    on_day: false\n    overdue_every: never\n    escalate:\n      head_after: 1wd\n    cooperating: [before]\n";
        y += "schedule:\n  sweeps: [\"0 8 * * *\"]\n  window: \"07:30-17:00\"\n  catch_up: 7d\ntasks:\n";
        let policies = ["", "", "ca-nam", "thua", "day-du", "chi-truoc"];
        for t in 0..n {
            let (m, d) = (r.below(12) + 1, r.below(28) + 1);
            y += &format!("  - id: T.{t}\n    title: nhiệm vụ {t}\n");
            y += &match t % 8 {
                0 | 1 => format!("    deadline: trước ngày {d:02}/{m:02}/2024\n"),
                2 => format!("    deadline: {d:02}/{m:02}/2024\n"),
                3 => format!("    deadline: Tháng {m:02}/2024\n"),
                4 => format!("    deadline: Quý {}/2024\n", (m - 1) / 3 + 1),
                5 => format!(
                    "    deadline:\n      phrase: Theo quy định\n      every: quarter\n      day: {d}\n      working_days_after: {}\n",
                    r.below(3)
                ),
                6 => "    deadline:\n      phrase: Theo quy định\n      every: month\n      day: last\n".to_string(),
                _ => format!(
                    "    deadline:\n      phrase: Theo kế hoạch\n      dates: [2024-{m:02}-{d:02}, 2024-{:02}-{d:02}]\n",
                    (m + 3).min(12)
                ),
            };
            let office = |r: &mut Rng| format!("dv-{}", r.below(12));
            y += &match t % 5 {
                0 => format!("    lead: [{}, {}]\n", office(&mut r), office(&mut r)),
                _ => format!("    lead: {}\n", office(&mut r)),
            };
            if t % 3 != 0 {
                y += &format!("    cooperating: [{}]\n", office(&mut r));
            }
            let policy = policies[t % policies.len()];
            if !policy.is_empty() {
                y += &format!("    reminders: {policy}\n");
            }
            if t % 3 == 1 && t % 8 < 3 {
                y += &format!(
                    "    done: 2024-{:02}-{:02}\n",
                    r.below(12) + 1,
                    r.below(28) + 1
                );
            }
        }
        from_source(&y, Path::new("g.yaml"), &Env::default())
            .unwrap_or_else(|r| panic!("{}", r.render()))
            .config
    }

    /// `next_nudge` (each due day's schedule made once, the past passed over) finds what
    /// `plan` lists first, on a generated plan of every deadline form and policy shape: at
    /// every hour from a week before the plan's year to long after it.
    #[test]
    fn the_next_nudge_of_a_generated_plan_is_the_first_upcoming_one() {
        let c = generated(80, 3);
        let cal = c.work_calendar(2024);
        let mut r = Rng(5);
        let mut now = at("2023-12-25 00:00");
        let (mut checked, mut found) = (0, 0);
        while now < at("2026-12-31 00:00") {
            for days in [1, 31, 366] {
                let until = now + chrono::Duration::days(days);
                let p = plan(&c, &cal, now, until, &HashSet::new());
                let (next, unscheduled) = next_nudge(&c, &cal, now, until);
                assert_eq!(next.as_ref(), p.upcoming.first(), "{now} + {days} days");
                assert_eq!(unscheduled, p.unscheduled.len());
                checked += 1;
                found += usize::from(next.is_some());
            }
            // Mostly inside the year, at any hour of any day.
            let hours = if now.year() == 2024 {
                1 + r.below(60)
            } else {
                24 * (1 + r.below(40))
            };
            now += chrono::Duration::hours(hours as i64);
        }
        assert!(checked > 600 && found > 500, "{checked} {found}");
    }

    /// `next_nudge_within` gives what asking `next_nudge` with each horizon in turn gives,
    /// though it passes over the tasks already past at an earlier horizon: on a generated
    /// plan and the seed plan, from before their year to long after it, where most tasks
    /// are past and the later horizons are asked.
    #[test]
    fn the_next_nudge_within_horizons_is_the_first_found_in_turn() {
        let seed = crate::plan::config::seed_config();
        // The leadership told long after the office's last reminder: a horizon between the
        // two cuts only the leadership's item.
        let late_digest = from_source(
            "plan:\n  year: 2024\noffices:\n  ld:\n    name: Lãnh đạo\n    email: ld@vpubnd.example\n  a:\n    name: A\n    email: a@vpubnd.example\nleadership: ld\nreminders:\n  default:\n    before: [3wd]\n    on_day: true\n    overdue_every: 2wd\n    overdue_limit: 2\n    escalate:\n      leadership_after: 40wd\n    cooperating: none\ntasks:\n  - id: I.1\n    title: một\n    deadline: 15/03/2024\n    lead: a\n  - id: I.2\n    title: hai\n    deadline: 20/09/2024\n    lead: a\n",
            Path::new("late.yaml"),
            &Env::default(),
        )
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config;
        let (mut checked, mut later, mut none) = (0, 0, 0);
        for c in [generated(120, 7), seed, late_digest] {
            let cal = c.work_calendar(2024);
            let mut r = Rng(11);
            let mut now = at("2023-10-01 00:00");
            while now < at("2028-06-30 00:00") {
                for days in [[1, 31, 366], [31, 366, 800], [3, 90, 1500]] {
                    let horizons = days.map(|d| now + chrono::Duration::days(d));
                    let mut expected = (None, 0);
                    for (i, &until) in horizons.iter().enumerate() {
                        expected = next_nudge(&c, &cal, now, until);
                        if expected.0.is_some() {
                            later += usize::from(i > 0);
                            break;
                        }
                    }
                    none += usize::from(expected.0.is_none());
                    let got = next_nudge_within(&c, &cal, now, &horizons);
                    assert_eq!(got.0, expected.0, "{now} + {days:?} days");
                    assert_eq!(got.1, expected.1, "{now} + {days:?} days");
                    checked += 1;
                }
                now += chrono::Duration::hours((1 + r.below(24 * 20)) as i64);
            }
        }
        // Found at a later horizon, and nothing anywhere, both often.
        assert!(
            checked > 500 && later > 50 && none > 50,
            "{checked} {later} {none}"
        );
    }

    /// `plan_streamed` hands out the nudges `plan_settled` lists, in the same order, and
    /// the rest of the plan is the same.
    #[test]
    fn streamed_upcoming_nudges_are_the_listed_ones() {
        let c = crate::plan::config::seed_config();
        for (now, until) in [
            ("2024-01-01 08:00", "2024-12-31 23:59"),
            ("2024-03-15 09:00", "2024-06-30 23:59"),
            ("2024-07-01 07:00", "2025-12-31 23:59"),
        ] {
            let cal = c.work_calendar(at(now).year());
            let listed = plan(&c, &cal, at(now), at(until), &HashSet::new());
            // A ledger that holds a few of them.
            let known: HashSet<NudgeKey> =
                listed.upcoming.iter().step_by(7).map(Nudge::key).collect();
            let settled = Settled::default();
            let listed = plan_settled(&c, &cal, at(now), at(until), &known, &settled);
            let (streamed, upcoming) =
                plan_streamed(&c, &cal, at(now), at(until), &known, &settled);
            assert_eq!(upcoming.len(), listed.upcoming.len());
            let got: Vec<Nudge> = upcoming.into_nudges(&c).map(|(n, _)| n).collect();
            assert!(got.len() > 20, "{now}: {}", got.len());
            assert_eq!(got, listed.upcoming, "{now}");
            assert!(streamed.upcoming.is_empty());
            assert_eq!(streamed.due, listed.due);
            assert_eq!(streamed.skipped, listed.skipped);
            assert_eq!(streamed.unscheduled, listed.unscheduled);
            assert_eq!(streamed.settled, listed.settled);
        }
    }

    /// Due Tuesday 30/01/2024, that day included (a bare date).
    const ONE: &str = "  - id: T\n    title: t\n    deadline: 30/01/2024\n    lead: hctc\n    cooperating: [kt, snv]\n";

    #[test]
    fn default_policy_before_a_tuesday_deadline() {
        let c = cfg(ONE);
        let got = upcoming(&c, "2024-01-01 07:00", "2024-01-31 23:00");
        let lead: Vec<(String, NaiveDate)> = got
            .iter()
            .filter(|g| g.1 == "hctc")
            .map(|g| (g.2.clone(), g.3))
            .collect();
        assert_eq!(
            lead,
            vec![
                ("before-14d".into(), d("2024-01-16")),
                ("before-7d".into(), d("2024-01-23")),
                ("before-3wd".into(), d("2024-01-25")),
                ("before-1wd".into(), d("2024-01-29")),
                ("on-day".into(), d("2024-01-30")),
            ]
        );
        // The cooperating office gets the first and the last; Sở Nội vụ has no address.
        let coop: Vec<(String, NaiveDate)> = got
            .iter()
            .filter(|g| g.1 == "kt")
            .map(|g| (g.2.clone(), g.3))
            .collect();
        assert_eq!(
            coop,
            vec![
                ("before-14d".into(), d("2024-01-16")),
                ("before-1wd".into(), d("2024-01-29"))
            ]
        );
        assert!(!got.iter().any(|g| g.1 == "snv"));
    }

    #[test]
    fn before_a_date_means_by_the_last_working_day_before_it() {
        // "trước ngày 30/01/2024": due Monday 29/01; every offset counts to it, the key keeps
        // the occurrence 30/01, and overdue starts on 30/01 itself.
        let c = cfg(&ONE.replace("deadline: 30/01/2024", "deadline: trước ngày 30/01/2024"));
        let p = plain(&c, "2024-01-01 07:00", "2024-02-05 23:00");
        let lead: Vec<(String, NaiveDate, i64)> = p
            .upcoming
            .iter()
            .filter(|n| &*n.office == "hctc")
            .map(|n| (n.kind.code(), n.date, n.days_left))
            .collect();
        assert_eq!(
            lead,
            vec![
                ("before-14d".into(), d("2024-01-15"), 14),
                ("before-7d".into(), d("2024-01-22"), 7),
                ("before-3wd".into(), d("2024-01-24"), 3),
                ("before-1wd".into(), d("2024-01-26"), 1),
                ("on-day".into(), d("2024-01-29"), 0),
                ("overdue-3wd".into(), d("2024-02-01"), -3),
            ]
        );
        assert!(p.upcoming.iter().all(|n| n.occurrence == d("2024-01-30")));
        // A bare date includes the day.
        let p = plain(&cfg(ONE), "2024-01-01 07:00", "2024-01-30 23:00");
        assert!(
            p.upcoming
                .iter()
                .any(|n| n.kind == Kind::OnDay && n.date == d("2024-01-30"))
        );
    }

    #[test]
    fn nudges_move_back_from_weekends_never_past_the_deadline() {
        // Deadline Monday 01/07/2024: 7d before is Monday 24/06; 14d Monday 17/06;
        // a 2d offset lands on Saturday 29/06 and moves to Friday 28/06.
        let c = cfg(
            "  - id: T\n    title: t\n    deadline: 01/07/2024\n    lead: hctc\n    reminders: p\nreminders:\n  p:\n    before: [2d, 1d]\n    overdue_every: never\n    escalate: {}\n",
        );
        let got = upcoming(&c, "2024-06-01 07:00", "2024-07-31 23:00");
        let days: Vec<NaiveDate> = got.iter().map(|g| g.3).collect();
        // 2d → Sat 29/06 → Fri 28/06; 1d → Sun 30/06 → Fri 28/06 (same day: one nudge).
        assert_eq!(days, vec![d("2024-06-28"), d("2024-07-01")]);
        assert_eq!(
            got[0].2, "before-1d",
            "the closer reminder wins the shared day"
        );
    }

    #[test]
    fn overdue_repeats_space_out_stop_and_escalate_weekly() {
        let c = cfg(ONE);
        let p = plain(&c, "2024-01-31 07:00", "2024-06-30 23:00");
        let lead: Vec<(String, NaiveDate, bool, bool)> = p
            .upcoming
            .iter()
            .filter(|n| &*n.office == "hctc")
            .map(|n| (n.kind.code(), n.date, n.add_head, n.add_leadership))
            .collect();
        let row = |k: &str, day: &str, head: bool, leadership: bool| {
            (k.to_string(), d(day), head, leadership)
        };
        assert_eq!(
            lead,
            vec![
                // Every 3 working days for two weeks; the head copied once from 5, on the
                // next reminder (6), so that it adds no day of email…
                row("overdue-3wd", "2024-02-02", false, false),
                row("escalation-head", "2024-02-07", true, false),
                row("overdue-9wd", "2024-02-12", false, false),
                // … the leadership's digest from 10, a line apart from the office's email …
                row("escalation-leadership", "2024-02-13", false, true),
                // … then weekly, the head at most weekly, the digest on the same days …
                row("overdue-15wd", "2024-02-20", true, false),
                row("escalation-leadership-15wd", "2024-02-20", false, true),
                row("overdue-20wd", "2024-02-27", true, false),
                row("escalation-leadership-20wd", "2024-02-27", false, true),
                row("overdue-25wd", "2024-03-05", true, false),
                row("escalation-leadership-25wd", "2024-03-05", false, true),
                row("overdue-30wd", "2024-03-12", true, false),
                row("escalation-leadership-30wd", "2024-03-12", false, true),
                // … and no more after the eighth overdue reminder.
                row("overdue-35wd", "2024-03-19", true, false),
                row("escalation-leadership-35wd", "2024-03-19", false, true),
            ]
        );
        assert!(
            p.upcoming
                .iter()
                .filter(|n| &*n.office == "hctc")
                .all(|n| n.days_left < 0)
        );
        assert_eq!(p.upcoming[1].role, Role::Escalation);
        // Configurable per policy: unbounded and never weekly is today's old behaviour.
        let c = cfg(&format!(
            "{}    reminders: p\nreminders:\n  p:\n    overdue_every: 3wd\n    overdue_weekly_after: never\n    overdue_limit: unlimited\n    escalate: {{}}\n",
            ONE
        ));
        let p = plain(&c, "2024-01-31 07:00", "2024-06-30 23:00");
        let overdue = p.upcoming.iter().filter(|n| &*n.office == "hctc").count();
        assert!(overdue > 30, "every 3 working days until June: {overdue}");
    }

    #[test]
    fn done_tasks_are_silent_and_release_their_dependents() {
        let tasks = "  - id: III.3\n    title: a\n    deadline: Quý II/2024\n    lead: hctc\n  - id: IV.2\n    title: b\n    deadline: {phrase: Sau khi Đề án được phê duyệt, after: III.3, days: 30}\n    lead: hctc\n";
        let c = cfg(tasks);
        let p = plain(&c, "2024-06-01 07:00", "2024-12-31 23:00");
        assert_eq!(p.unscheduled.len(), 1);
        assert_eq!(p.unscheduled[0].task, "IV.2");
        assert!(p.unscheduled[0].reason.contains("III.3"));

        let c = cfg(&tasks.replace(
            "lead: hctc\n  - id: IV.2",
            "lead: hctc\n    done: 2024-06-10\n  - id: IV.2",
        ));
        let p = plain(&c, "2024-06-01 07:00", "2024-12-31 23:00");
        assert!(p.unscheduled.is_empty());
        assert!(
            p.upcoming.iter().all(|n| &*n.task == "IV.2"),
            "III.3 is done"
        );
        assert!(
            p.upcoming
                .iter()
                .any(|n| n.kind == Kind::OnDay && n.occurrence == d("2024-07-10"))
        );
    }

    #[test]
    fn after_downtime_only_the_latest_missed_nudge_is_due() {
        let c = cfg(ONE);
        // Down from before 16/01 until Thursday 25/01 at 08:00.
        let p = plain(&c, "2024-01-25 08:00", "2024-01-25 23:00");
        let due: Vec<(String, String, bool)> = p
            .due
            .iter()
            .map(|n| (n.office.to_string(), n.kind.code(), n.late.is_late()))
            .collect();
        assert_eq!(due, vec![("hctc".into(), "before-3wd".into(), false)]);
        // kt's only missed nudge (16/01) is older than the 7-day catch-up window.
        let skipped: Vec<(String, String)> = p
            .skipped
            .iter()
            .map(|n| (n.office.to_string(), n.kind.code()))
            .collect();
        assert_eq!(
            skipped,
            vec![
                ("hctc".into(), "before-14d".into()),
                ("kt".into(), "before-14d".into()),
                ("hctc".into(), "before-7d".into())
            ]
        );
        assert!(p.sendable_now);
        // Down only since Friday 19/01: on Monday 22/01 the 16/01 nudges are still caught up, late.
        let p = plain(&c, "2024-01-22 08:00", "2024-01-22 23:00");
        let due: Vec<(String, String, bool)> = p
            .due
            .iter()
            .map(|n| (n.office.to_string(), n.kind.code(), n.late.is_late()))
            .collect();
        assert_eq!(
            due,
            vec![
                ("hctc".into(), "before-14d".into(), true),
                ("kt".into(), "before-14d".into(), true)
            ]
        );
    }

    /// A quarterly report (VII.5's rule: the 14th of the quarter's last month plus 2
    /// working days) whose Q1 is still open.
    const QUARTERLY: &str = "  - id: Q\n    title: q\n    deadline: {phrase: Theo quy định, every: quarter, day: 14, working_days_after: 2}\n    lead: hctc\n";

    /// Sweeps every working day at 08:00 from `from` to `to`, recording what each sends.
    fn replay(c: &Config, from: &str, to: &str) -> (Vec<NudgeKey>, Vec<NudgeKey>) {
        let cal = WorkCalendar::weekends_only();
        let (mut sent, mut skipped) = (Vec::new(), Vec::new());
        let mut known = HashSet::new();
        let mut day = d(from);
        while day <= d(to) {
            if cal.is_working_day(day) {
                let now = at(&format!("{day} 08:00"));
                let p = plan(c, &cal, now, now, &known);
                for n in p.due {
                    known.insert(n.key());
                    sent.push(n.key());
                }
                for n in p.skipped {
                    known.insert(n.key());
                    skipped.push(n.key());
                }
            }
            day = day.succ_opt().unwrap();
        }
        (sent, skipped)
    }

    #[test]
    fn an_open_occurrence_never_silences_the_next_one() {
        let c = cfg(QUARTERLY);
        let (sent, skipped) = replay(&c, "2024-03-01", "2024-06-28");
        assert!(skipped.is_empty(), "{skipped:?}");
        let q2: Vec<String> = sent
            .iter()
            .filter(|k| k.occurrence == d("2024-06-18"))
            .map(|k| k.kind.clone())
            .collect();
        assert_eq!(
            q2,
            [
                "before-14d",
                "before-7d",
                "before-3wd",
                "before-1wd",
                "on-day",
                "overdue-3wd",
                "escalation-head"
            ]
        );
        // Q1 went on being nagged meanwhile, and stopped at its limit.
        let q1 = sent
            .iter()
            .filter(|k| k.occurrence == d("2024-03-18"))
            .count();
        assert!(q1 > 5, "{q1}");
    }

    #[test]
    fn with_a_sweep_every_working_day_every_planned_nudge_is_sent() {
        let c = cfg(&format!("{ONE}{QUARTERLY}"));
        let all: Vec<NudgeKey> = plain(&c, "2024-01-01 07:00", "2024-12-31 23:00")
            .upcoming
            .iter()
            .map(Nudge::key)
            .collect();
        let (sent, skipped) = replay(&c, "2024-01-01", "2024-12-31");
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(sent, all);
    }

    #[test]
    fn after_downtime_only_the_latest_of_each_occurrence_is_late() {
        let c = cfg(QUARTERLY);
        // Down from Friday 07/06 until Monday 24/06 at 08:00: Q2's before-7d (11/06),
        // before-3wd (13/06), before-1wd (17/06), on-day (18/06) and overdue-3wd (21/06)
        // were missed (Q1's reminders had ended in May).
        let cal = WorkCalendar::weekends_only();
        let (sent, _) = replay(&c, "2024-03-01", "2024-06-06");
        let known: HashSet<NudgeKey> = sent.into_iter().collect();
        let p = plan(
            &c,
            &cal,
            at("2024-06-24 08:00"),
            at("2024-06-24 08:00"),
            &known,
        );
        let due: Vec<(NaiveDate, String, bool)> = p
            .due
            .iter()
            .map(|n| (n.occurrence, n.kind.code(), n.late.is_late()))
            .collect();
        assert_eq!(due, vec![(d("2024-06-18"), "overdue-3wd".into(), true)]);
        let skipped: Vec<String> = p.skipped.iter().map(|n| n.kind.code()).collect();
        assert_eq!(skipped, ["before-7d", "before-3wd", "before-1wd", "on-day"]);
    }

    #[test]
    fn a_first_start_settles_the_backlog_before_it() {
        let c = cfg(ONE);
        let cal = WorkCalendar::weekends_only();
        // The first sweep ran on 25/01 at 08:00: the 16/01 and 23/01 nudges it settled have
        // no rows, and are never due or skipped again.
        let settled = Settled {
            before: Some(at("2024-01-25 08:00")),
            in_flight: HashSet::new(),
        };
        let p = plan_settled(
            &c,
            &cal,
            at("2024-01-29 08:00"),
            at("2024-01-29 08:00"),
            &HashSet::new(),
            &settled,
        );
        let due: Vec<String> = p.due.iter().map(|n| n.key().to_string()).collect();
        assert_eq!(
            due,
            [
                "task T / deadline 2024-01-30 / office hctc / before-1wd",
                "task T / deadline 2024-01-30 / office kt / before-1wd"
            ]
        );
        // 25/01's own nudge (at the first sweep's time) was due then, not settled: without
        // a row it is still missed.
        assert!(p.skipped.iter().any(|n| n.kind.code() == "before-3wd"));
        // A key in flight is planned again even before the baseline.
        let mut in_flight = HashSet::new();
        let k = NudgeKey {
            task: "T".into(),
            occurrence: d("2024-01-30"),
            office: "hctc".into(),
            kind: "before-7d".into(),
        };
        in_flight.insert(k.clone());
        let p = plan_settled(
            &c,
            &cal,
            at("2024-01-29 08:00"),
            at("2024-01-29 08:00"),
            &HashSet::new(),
            &Settled {
                in_flight,
                ..settled
            },
        );
        assert!(p.skipped.iter().any(|n| n.key() == k));
    }

    #[test]
    fn finishing_one_occurrence_stops_its_nagging_only() {
        // Q1's report (due 18/03) done on 20/03, named by its period; Q2's still owed.
        let c = cfg(&format!(
            "{QUARTERLY}    done: [{{ occurrence: Quý I/2024, date: 2024-03-20 }}]\n"
        ));
        let p = plain(&c, "2024-03-25 07:00", "2024-06-30 23:00");
        assert!(p.upcoming.iter().all(|n| n.occurrence != d("2024-03-18")));
        assert!(p.upcoming.iter().any(|n| n.occurrence == d("2024-06-18")));
        // By its date and office: the same.
        let c = cfg(&format!(
            "{QUARTERLY}    done: [{{ occurrence: 2024-03-18, office: hctc, date: 2024-03-20 }}]\n"
        ));
        let p = plain(&c, "2024-03-25 07:00", "2024-06-30 23:00");
        assert!(p.upcoming.iter().all(|n| n.occurrence != d("2024-03-18")));
        // A done date still ahead silences from that day only: a replay of the year with
        // every task done on its deadline sends the reminders before it and nothing after.
        let c = cfg(&ONE.replace("lead: hctc\n", "lead: hctc\n    done: 2024-01-30\n"));
        let p = plain(&c, "2024-01-01 07:00", "2024-03-31 23:00");
        let kinds: Vec<String> = p
            .upcoming
            .iter()
            .filter(|n| &*n.office == "hctc")
            .map(|n| n.kind.code())
            .collect();
        assert_eq!(
            kinds,
            ["before-14d", "before-7d", "before-3wd", "before-1wd"]
        );
        let p = plain(&c, "2024-01-31 07:00", "2024-03-31 23:00");
        assert!(p.upcoming.is_empty());
    }

    #[test]
    fn occurrences_are_named() {
        let cal = WorkCalendar::weekends_only();
        let c = cfg(&format!(
            "{QUARTERLY}  - id: C\n    title: c\n    deadline: ít nhất 02 lần/năm\n    lead: hctc\n  - id: L\n    title: l\n    deadline: {{phrase: Theo kế hoạch, dates: [2024-03-31, 2024-06-30, 2024-09-30]}}\n    lead: hctc\n  - id: M\n    title: m\n    deadline: {{phrase: Theo quy định, every: month, day: last}}\n    lead: hctc\n"
        ));
        let name = |id: &str, occ: &str| occurrence_name(&c, &cal, c.task(id).unwrap(), d(occ));
        assert_eq!(name("Q", "2024-06-18").as_deref(), Some("Quý II/2024"));
        assert_eq!(
            name("C", "2024-06-30").as_deref(),
            Some("mốc 1/2: 30/06/2024")
        );
        assert_eq!(
            name("L", "2024-06-30").as_deref(),
            Some("lần 2/3: 30/06/2024")
        );
        assert_eq!(name("M", "2024-06-30").as_deref(), Some("Tháng 06/2024"));
    }

    #[test]
    fn known_keys_are_never_due_again() {
        let c = cfg(ONE);
        let cal = WorkCalendar::weekends_only();
        let first = plan(
            &c,
            &cal,
            at("2024-01-16 08:00"),
            at("2024-01-16 23:00"),
            &HashSet::new(),
        );
        assert_eq!(first.due.len(), 2);
        let known: HashSet<NudgeKey> = first.due.iter().map(Nudge::key).collect();
        let again = plan(
            &c,
            &cal,
            at("2024-01-16 09:00"),
            at("2024-01-16 23:00"),
            &known,
        );
        assert!(again.due.is_empty());
    }

    #[test]
    fn nothing_is_sendable_on_a_day_off_or_outside_the_window() {
        let c = cfg(ONE);
        let cal = WorkCalendar::weekends_only();
        assert!(
            !plan(
                &c,
                &cal,
                at("2024-01-20 08:00"),
                at("2024-01-21 00:00"),
                &HashSet::new()
            )
            .sendable_now
        );
        assert!(
            !plan(
                &c,
                &cal,
                at("2024-01-22 18:00"),
                at("2024-01-23 00:00"),
                &HashSet::new()
            )
            .sendable_now
        );
    }

    #[test]
    fn permute_moves_each_element_to_its_place() {
        let mut v = vec!['a', 'b', 'c', 'd', 'e', 'f'];
        permute(&mut v, [3, 0, 5, 1, 2, 4].into_iter());
        assert_eq!(v, vec!['d', 'a', 'f', 'b', 'c', 'e']);
        assert_eq!(ranks(["b", "c", "a"].into_iter()), vec![1, 2, 0]);
    }

    #[test]
    fn send_time_is_the_first_sweep_in_the_window() {
        let c = cfg(&format!(
            "{ONE}schedule:\n  sweeps: [\"0 6 * * *\", \"30 9 * * 1-5\"]\n"
        ));
        let p = plain(&c, "2024-01-01 07:00", "2024-01-20 00:00");
        assert_eq!(
            p.upcoming[0]
                .send_at
                .format("%Y-%m-%d %H:%M %:z")
                .to_string(),
            "2024-01-16 09:30 +07:00"
        );
    }

    /// Plans `tasks` for a month and fails if that takes more than a second.
    fn plan_quickly(c: &Config) -> Plan {
        let start = std::time::Instant::now();
        let p = plain(c, "2024-03-01 08:00", "2024-04-01 08:00");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(1),
            "took {:?}",
            start.elapsed()
        );
        p
    }

    fn with_policy(deadline: &str, policy: &str) -> Config {
        cfg(&format!(
            "  - id: T\n    title: t\n    deadline: {deadline}\n    lead: hctc\n    reminders: p\nreminders:\n  p:\n{policy}"
        ))
    }

    #[test]
    fn a_deadline_a_thousand_years_ago_is_planned_quickly() {
        // `30/01/1024`: stepping overdue repeats from 1024 re-walked from the deadline for
        // every step, minutes of work.
        // `check` refuses these years; the planner must cope with them all the same.
        for deadline in ["1024-01-30", "0000-01-30"] {
            let mut c = with_policy("30/01/2024", "    before: [7d]\n");
            c.tasks[0].deadline.rule = Rule::Dates(vec![d(deadline)]);
            let p = plan_quickly(&c);
            let overdue = p.skipped.iter().filter(|n| n.kind.is_overdue()).count()
                + p.due.iter().filter(|n| n.kind.is_overdue()).count();
            assert!(overdue <= MAX_OVERDUE_STEPS as usize + 2, "{overdue}");
            assert!(
                p.upcoming.is_empty(),
                "{deadline}: five years of repeats at most"
            );
        }
    }

    #[test]
    fn offsets_past_the_calendar_are_left_out() {
        // `check` refuses these offsets; the planner must cope with them all the same.
        let edits: [fn(&mut Policy); 5] = [
            |p| p.before.insert(0, Offset::days(97_000_000)),
            |p| p.before.insert(0, Offset::working(u32::MAX)),
            |p| p.overdue_every = Some(Offset::days(100_000_000)),
            |p| p.overdue_every = Some(Offset::working(u32::MAX)),
            |p| {
                p.head_after = Some(Offset::days(100_000_000));
                p.leadership_after = Some(Offset::working(u32::MAX));
            },
        ];
        for (policy, edit) in edits.iter().enumerate() {
            let mut c = with_policy("30/03/2024", "    before: [7d]\n");
            edit(c.policies.get_mut("p").expect("policy p"));
            let p = plan_quickly(&c);
            // The reasonable nudges are still planned: 7 days before 30/03 is Fri 22/03.
            assert!(
                p.upcoming
                    .iter()
                    .any(|n| n.kind.code() == "before-7d" && n.date == d("2024-03-22")),
                "{policy}: {:?}",
                p.upcoming
            );
        }
    }

    #[test]
    fn a_catch_up_window_past_the_calendar_catches_up_everything() {
        for catch_up in [Offset::days(100_000_000), Offset::working(u32::MAX)] {
            let mut c = cfg(ONE);
            c.schedule.catch_up = catch_up;
            let p = plan_quickly(&c);
            assert!(!p.due.is_empty(), "{catch_up}");
            assert!(p.due.iter().all(|n| n.late.is_late()), "{catch_up}");
        }
    }

    #[test]
    fn a_send_time_in_a_dst_gap_moves_to_the_first_time_after_it() {
        // Europe/Berlin springs forward on 31/03/2024 from 02:00 to 03:00: 02:30 does not
        // exist that day, and the sweep's send time is 03:00 CEST (01:00 UTC).
        let c = cfg(&format!(
            "{ONE}schedule:\n  timezone: Europe/Berlin\n  window: 02:30-17:00\n  sweeps: [\"30 2 * * *\"]\n"
        ));
        let spring = d("2024-03-31");
        let mut times = SendTimes::new(&c, d("2024-03-30"), d("2024-04-01"));
        let utc = |s: &str| {
            Utc.from_utc_datetime(
                &chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap(),
            )
        };
        assert_eq!(
            times.at(spring).with_timezone(&Utc),
            utc("2024-03-31 01:00")
        );
        // The days around it keep 02:30 local time (CET, then CEST).
        assert_eq!(
            times.at(d("2024-03-30")).with_timezone(&Utc),
            utc("2024-03-30 01:30")
        );
        assert_eq!(
            times.at(d("2024-04-01")).with_timezone(&Utc),
            utc("2024-04-01 00:30")
        );
        // Outside the cached range too.
        let mut other = SendTimes::new(&c, d("2024-01-01"), d("2024-01-02"));
        assert_eq!(
            other.at(spring).with_timezone(&Utc),
            utc("2024-03-31 01:00")
        );
    }
}
