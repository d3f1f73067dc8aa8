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

use crate::calendar::workdays::{WorkCalendar, WorkDayIndex};
use crate::plan::config::{Config, Offset, Policy, Task, Unit};
use crate::plan::deadline::Rule;
use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

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
    /// The Office's leadership is added.
    EscalateLeadership,
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
            Kind::OnDay => "đúng hạn".into(),
            Kind::Overdue(o) => format!("quá hạn {}", span(o)),
            Kind::EscalateHead => "báo trưởng đơn vị".into(),
            Kind::EscalateLeadership => "báo Lãnh đạo Văn phòng".into(),
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
        }
    }

    pub fn is_overdue(&self) -> bool {
        matches!(
            self,
            Kind::Overdue(_) | Kind::EscalateHead | Kind::EscalateLeadership
        )
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
    /// The Office's leadership is added to the recipients.
    pub add_leadership: bool,
    /// Sent after its planned day because nhacviec was not running then.
    pub late: bool,
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
    /// Missed while nhacviec was not running and superseded by a later one (or too old):
    /// recorded as skipped, never sent.
    pub skipped: Vec<Nudge>,
    /// Later than `now`, up to the horizon, in time order.
    pub upcoming: Vec<Nudge>,
    pub unscheduled: Vec<UnscheduledTask>,
    /// `now` is a working day inside the sending window.
    pub sendable_now: bool,
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
    let tz = cfg.schedule.timezone;
    let now_local = now.with_timezone(&tz);
    let today = now_local.date_naive();
    let mut out = Plan {
        sendable_now: cal.is_working_day(today)
            && now_local.time() >= cfg.schedule.window_start
            && now_local.time() <= cfg.schedule.window_end,
        ..Plan::default()
    };
    let last_day = until.with_timezone(&tz).date_naive();
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
    let idx = WorkDayIndex::new(cal, span_from, span_to);
    let mut times = SendTimes::new(cfg, span_from, span_to);
    // One shared copy of each office id for all of its nudges, with the id's place in
    // sorted order (the same for tasks): the upcoming nudges, millions for a large plan,
    // are sorted on these numbers instead of comparing the ids.
    let office_ids: HashMap<&str, (Arc<str>, u32)> = ranks(cfg.offices.iter().map(|o| &*o.id))
        .into_iter()
        .zip(&cfg.offices)
        .map(|(r, o)| (o.id.as_str(), (Arc::from(o.id.as_str()), r)))
        .collect();
    let task_ranks = ranks(cfg.tasks.iter().map(|t| &*t.id));
    let mut batch = Vec::new();
    let mut upcoming_keys: Vec<(SortKey, u32)> = Vec::new();

    // Missed nudges, per (task, office): only the latest is sent, the rest are skipped.
    let mut missed: BTreeMap<(Arc<str>, Arc<str>), Vec<Nudge>> = BTreeMap::new();
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
        let task_id: Arc<str> = Arc::from(task.id.as_str());
        for occ in occurrences {
            let ctx = TaskCtx {
                cfg,
                cal: &idx,
                task,
                task_id: &task_id,
                office_ids: &office_ids,
                policy,
            };
            nudges_for(&ctx, occ, single, last_day, &mut times, &mut batch);
            for (nudge, office_rank) in batch.drain(..) {
                // Building a key allocates: skip it when the ledger knows nothing.
                if !known.is_empty() && known.contains(&nudge.key()) {
                    continue;
                }
                if nudge.send_at <= now_local {
                    missed
                        .entry((nudge.task.clone(), nudge.office.clone()))
                        .or_default()
                        .push(nudge);
                } else if nudge.send_at <= until {
                    let key = (
                        nudge.send_at.naive_utc(),
                        task_rank,
                        office_rank,
                        nudge.kind,
                    );
                    let at = u32::try_from(out.upcoming.len()).unwrap_or(u32::MAX);
                    upcoming_keys.push((key, at));
                    out.upcoming.push(nudge);
                }
            }
        }
    }

    // A window reaching past the first date there is catches up everything.
    let catch_up_from = match cfg.schedule.catch_up.unit {
        Unit::Days => today.checked_sub_days(Days::new(u64::from(cfg.schedule.catch_up.n))),
        Unit::WorkingDays => idx.checked_sub_working_days(today, cfg.schedule.catch_up.n),
    }
    .unwrap_or(NaiveDate::MIN);
    for (_, mut list) in missed {
        list.sort_by_key(|n| (n.send_at, n.kind.weight()));
        let latest = list.pop().expect("groups are never empty");
        out.skipped.extend(list);
        if latest.date >= catch_up_from {
            out.due.push(Nudge {
                late: latest.date < today,
                ..latest
            });
        } else {
            out.skipped.push(latest);
        }
    }
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
    out
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

/// The day `offset` before `deadline`, moved back to a working day, or `None` when that
/// would not be before the deadline.
fn before_day(cal: &WorkDayIndex, deadline: NaiveDate, offset: Offset) -> Option<NaiveDate> {
    let d = match offset.unit {
        Unit::Days => cal.checked_working_day_on_or_before(
            deadline.checked_sub_days(Days::new(u64::from(offset.n)))?,
        )?,
        Unit::WorkingDays => cal.checked_sub_working_days(deadline, offset.n)?,
    };
    (d < deadline).then_some(d)
}

/// The day `offset` after `deadline`, on a working day after the deadline; `None` past the
/// last date the calendar can hold.
fn after_day(cal: &WorkDayIndex, deadline: NaiveDate, offset: Offset) -> Option<NaiveDate> {
    match offset.unit {
        Unit::Days => {
            let d = deadline.checked_add_days(Days::new(u64::from(offset.n)))?;
            match cal.checked_working_day_on_or_before(d) {
                Some(back) if back > deadline => Some(back),
                _ => cal.checked_working_day_on_or_after(d),
            }
        }
        Unit::WorkingDays => cal.checked_add_working_days(deadline, offset.n),
    }
}

/// `k` times `o`, or `None` past `u32::MAX` days.
fn scaled(o: Offset, k: u32) -> Option<Offset> {
    Some(Offset {
        n: o.n.checked_mul(k)?,
        unit: o.unit,
    })
}

/// At most this many overdue repeats per deadline occurrence, whatever `overdue_limit` says
/// (or when it says nothing): every 3 working days, 400 repeats are about five years of
/// reminders. A deadline typed with a wrong year (`30/01/1024`) is that far in the past, and
/// stepping through a thousand years of repeats, all of them missed, would take minutes.
pub const MAX_OVERDUE_STEPS: u32 = 400;

/// The working-day index covers at most this many years after today; later dates are
/// answered by the calendar itself.
const MAX_INDEX_YEARS: i32 = 20;

/// What every nudge of one task shares.
struct TaskCtx<'a> {
    cfg: &'a Config,
    cal: &'a WorkDayIndex<'a>,
    task: &'a Task,
    task_id: &'a Arc<str>,
    office_ids: &'a HashMap<&'a str, (Arc<str>, u32)>,
    policy: &'a Policy,
}

/// Every nudge of one deadline occurrence, for every office of the task, up to `last_day`,
/// appended to `out` with the office's rank.
fn nudges_for(
    ctx: &TaskCtx,
    occ: NaiveDate,
    single_occurrence: bool,
    last_day: NaiveDate,
    times: &mut SendTimes,
    out: &mut Vec<(Nudge, u32)>,
) {
    let TaskCtx {
        cfg,
        cal,
        task,
        task_id,
        office_ids,
        policy,
    } = *ctx;
    let on_day = cal.working_day_on_or_before(occ);
    let counts_working = policy.before.iter().any(|o| o.unit == Unit::WorkingDays);
    let days_left = |date: NaiveDate, unit: Unit| match unit {
        Unit::Days => occ.signed_duration_since(date).num_days(),
        Unit::WorkingDays => cal.working_days_between(date, occ),
    };

    // The schedule of the lead office: before, on the day, overdue with escalation.
    let mut lead: Vec<(NaiveDate, Kind, Unit)> = Vec::new();
    for o in &policy.before {
        if let Some(d) = before_day(cal, occ, *o) {
            lead.push((d, Kind::Before(*o), o.unit));
        }
    }
    let day_unit = if counts_working {
        Unit::WorkingDays
    } else {
        Unit::Days
    };
    if policy.on_day {
        lead.push((on_day, Kind::OnDay, day_unit));
    }
    // From these days on the overdue nudges copy the head and the leadership. A threshold
    // too far to compute is never reached.
    let head_at = policy.head_after.and_then(|t| after_day(cal, occ, t));
    let leadership_at = policy.leadership_after.and_then(|t| after_day(cal, occ, t));
    if let (Some(t), Some(d)) = (policy.head_after, head_at) {
        lead.push((d, Kind::EscalateHead, t.unit));
    }
    if let (Some(t), Some(d)) = (policy.leadership_after, leadership_at) {
        lead.push((d, Kind::EscalateLeadership, t.unit));
    }
    if let Some(every) = policy.overdue_every {
        let limit = policy
            .overdue_limit
            .unwrap_or(MAX_OVERDUE_STEPS)
            .min(MAX_OVERDUE_STEPS);
        // Each repeat is found from the one before: n working days after the k-th repeat is
        // the (k+1)-th, so no step walks from the deadline again.
        let mut prev = occ;
        for k in 1..=limit {
            let Some(offset) = scaled(every, k) else {
                break;
            };
            let next = match every.unit {
                Unit::WorkingDays => cal.checked_add_working_days(prev, every.n),
                Unit::Days => after_day(cal, occ, offset),
            };
            let Some(d) = next.filter(|d| *d <= last_day) else {
                break;
            };
            prev = d;
            lead.push((d, Kind::Overdue(offset), every.unit));
        }
    }
    // One nudge a day per deadline: the weightiest wins.
    lead.sort_by_key(|(d, k, _)| (*d, std::cmp::Reverse(k.weight())));
    lead.dedup_by_key(|(d, _, _)| *d);

    // The nudges a cooperating office gets, chosen from the lead's schedule.
    let befores: Vec<&(NaiveDate, Kind, Unit)> = lead
        .iter()
        .filter(|(_, k, _)| matches!(k, Kind::Before(_)))
        .collect();
    let first = befores.first().map(|(d, _, _)| *d);
    let last = befores.last().map(|(d, _, _)| *d);
    // The horizon cuts only after first and last are known, or the horizon would decide
    // which reminder is a cooperating office's "last".
    lead.retain(|(d, _, _)| *d <= last_day);
    let coop = policy.cooperating;
    let coop_gets = |d: NaiveDate, k: &Kind| match k {
        Kind::Before(_) => {
            coop.all_before || (coop.first && Some(d) == first) || (coop.last && Some(d) == last)
        }
        Kind::OnDay => coop.on_day,
        Kind::Overdue(_) => coop.overdue,
        Kind::EscalateHead | Kind::EscalateLeadership => false,
    };

    let offices = task
        .lead
        .iter()
        .map(|o| (o, Role::Lead))
        .chain(task.cooperating.iter().map(|o| (o, Role::Cooperating)));
    for (office_id, role) in offices {
        let Some(office) = cfg.office(office_id) else {
            continue;
        };
        let Some((office_arc, office_rank)) = office_ids.get(office_id.as_str()) else {
            continue;
        };
        if office.emails.is_empty() {
            continue;
        }
        let done = task.done_for(office_id);
        // A whole task done, or a share done for a single deadline, silences every nudge
        // from that day; for repeated deadlines it covers the occurrences up to that day.
        if let Some(done) = done
            && (single_occurrence || occ <= done)
        {
            continue;
        }
        for (date, kind, unit) in &lead {
            if role == Role::Cooperating && !coop_gets(*date, kind) {
                continue;
            }
            let (add_head, add_leadership) = if role == Role::Lead && kind.is_overdue() {
                (
                    head_at.is_some_and(|at| *date >= at),
                    leadership_at.is_some_and(|at| *date >= at),
                )
            } else {
                (false, false)
            };
            let role = match (role, kind) {
                (Role::Lead, Kind::EscalateHead | Kind::EscalateLeadership) => Role::Escalation,
                (r, _) => r,
            };
            let nudge = Nudge {
                task: Arc::clone(task_id),
                office: Arc::clone(office_arc),
                role,
                kind: *kind,
                occurrence: occ,
                date: *date,
                send_at: times.at(*date),
                days_left: days_left(*date, *unit),
                unit: *unit,
                add_head,
                add_leadership: add_leadership || *kind == Kind::EscalateLeadership,
                late: false,
            };
            out.push((nudge, *office_rank));
        }
    }
}

/// When the sweeps fall on a given day: the first sweep inside the sending window.
/// Cached per day: by offset from `first` inside `first..=last`, in a map outside.
struct SendTimes<'a> {
    cfg: &'a Config,
    first: NaiveDate,
    days: Vec<Option<DateTime<Tz>>>,
    cache: HashMap<NaiveDate, DateTime<Tz>>,
}

impl<'a> SendTimes<'a> {
    fn new(cfg: &'a Config, first: NaiveDate, last: NaiveDate) -> Self {
        let len = usize::try_from(last.signed_duration_since(first).num_days())
            .map_or(0, |n| n.saturating_add(1));
        Self {
            cfg,
            first,
            days: vec![None; len],
            cache: HashMap::new(),
        }
    }

    fn at(&mut self, day: NaiveDate) -> DateTime<Tz> {
        let slot = usize::try_from(day.signed_duration_since(self.first).num_days())
            .ok()
            .filter(|i| *i < self.days.len());
        if let Some(i) = slot
            && let Some(t) = self.days[i]
        {
            return t;
        }
        if let Some(t) = self.cache.get(&day) {
            return *t;
        }
        let s = &self.cfg.schedule;
        let tz = s.timezone;
        let local = |t: chrono::NaiveTime| {
            tz.from_local_datetime(&day.and_time(t))
                .earliest()
                .unwrap_or_else(|| tz.from_utc_datetime(&day.and_time(t)))
        };
        let start = local(s.window_start);
        let end = local(s.window_end);
        let first = s
            .sweeps
            .iter()
            .filter_map(|sw| sw.cron.find_next_occurrence(&start, true).ok())
            .filter(|t| *t <= end)
            .min()
            .unwrap_or(start);
        match slot {
            Some(i) => self.days[i] = Some(first),
            None => {
                self.cache.insert(day, first);
            }
        }
        first
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use crate::plan::config::{Env, from_source};
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

    const ONE: &str = "  - id: T\n    title: t\n    deadline: trước ngày 30/01/2024\n    lead: hctc\n    cooperating: [kt, snv]\n";

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
    fn overdue_repeats_and_escalates() {
        let c = cfg(ONE);
        let p = plain(&c, "2024-01-31 07:00", "2024-02-20 23:00");
        let lead: Vec<(String, NaiveDate, bool, bool)> = p
            .upcoming
            .iter()
            .filter(|n| &*n.office == "hctc")
            .map(|n| (n.kind.code(), n.date, n.add_head, n.add_leadership))
            .collect();
        assert_eq!(
            lead,
            vec![
                ("overdue-3wd".into(), d("2024-02-02"), false, false),
                ("escalation-head".into(), d("2024-02-06"), true, false),
                ("overdue-6wd".into(), d("2024-02-07"), true, false),
                ("overdue-9wd".into(), d("2024-02-12"), true, false),
                ("escalation-leadership".into(), d("2024-02-13"), true, true),
                ("overdue-12wd".into(), d("2024-02-15"), true, true),
                ("overdue-15wd".into(), d("2024-02-20"), true, true),
            ]
        );
        assert!(
            p.upcoming
                .iter()
                .filter(|n| &*n.office == "hctc")
                .all(|n| n.days_left < 0)
        );
        assert_eq!(p.upcoming[1].role, Role::Escalation);
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
            .map(|n| (n.office.to_string(), n.kind.code(), n.late))
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
            .map(|n| (n.office.to_string(), n.kind.code(), n.late))
            .collect();
        assert_eq!(
            due,
            vec![
                ("hctc".into(), "before-14d".into(), true),
                ("kt".into(), "before-14d".into(), true)
            ]
        );
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
        for deadline in ["30/01/1024", "30/01/0000"] {
            let c = with_policy(deadline, "    before: [7d]\n");
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
        for policy in [
            "    before: [97000000d, 7d]\n",
            "    before: [4294967295wd, 7d]\n",
            "    before: [7d]\n    overdue_every: 100000000d\n",
            "    before: [7d]\n    overdue_every: 4294967295wd\n",
            "    before: [7d]\n    escalate: {head_after: 100000000d, leadership_after: 4294967295wd}\n",
        ] {
            let c = with_policy("30/03/2024", policy);
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
        for catch_up in ["100000000d", "4294967295wd"] {
            let c = cfg(&format!("{ONE}schedule:\n  catch_up: {catch_up}\n"));
            let p = plan_quickly(&c);
            assert!(!p.due.is_empty(), "{catch_up}");
            assert!(p.due.iter().all(|n| n.late), "{catch_up}");
        }
    }
}
