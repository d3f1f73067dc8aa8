//! Every nudge of one deadline occurrence: the lead office's schedule, what a cooperating
//! office gets of it, when the head is copied, and one nudge per office and day.
#![deny(clippy::arithmetic_side_effects)]

use super::schedule::{Slot, digest_schedule, lead_schedule};
use super::send_times::SendTimes;
use super::{Kind, Late, Nudge, Role};
use crate::calendar::workdays::WorkDayIndex;
use crate::plan::config::{Config, CoopRule, Policy, Task, Unit};
use chrono::NaiveDate;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

/// What every nudge of one task shares.
pub(super) struct TaskCtx<'a> {
    pub cfg: &'a Config,
    pub cal: &'a WorkDayIndex<'a>,
    pub task: &'a Task,
    /// The task's id, shared by its nudges: made by the first of them.
    pub task_id: &'a OnceCell<Arc<str>>,
    pub office_ids: &'a HashMap<&'a str, (Arc<str>, u32)>,
    pub policy: &'a Policy,
    /// The day the plan is made on: a done date already reached silences everything.
    pub today: NaiveDate,
    /// Nudges of earlier days are not made (their schedule still counts): `check` asks
    /// only for the next one.
    pub from_day: NaiveDate,
}

/// The days every office's nudges are chosen from, for one due day under one policy: the
/// same for every occurrence of every task due that day under that policy.
struct DaySchedule {
    /// The day the work is due: every offset counts to it.
    due: NaiveDate,
    /// The lead office's days, cut at the horizon, in date order.
    lead: Vec<Slot>,
    /// Per day of `lead`: whether the lead office's email copies the head.
    head_copied: Vec<bool>,
    /// The leadership's digest items, in date order.
    digest: Vec<Slot>,
    coop: CoopFilter,
    /// The last day of `lead` and `digest`: no nudge of the schedule is later.
    last: Option<NaiveDate>,
    /// Nothing of it was past the horizon: a farther horizon makes the same schedule.
    whole: bool,
}

impl DaySchedule {
    fn new(ctx: &TaskCtx, due: NaiveDate, last_day: NaiveDate) -> Self {
        let TaskCtx {
            cfg, cal, policy, ..
        } = *ctx;
        let on_day = cal.working_day_on_or_before(due);
        let mut lead = lead_schedule(cal, policy, due, on_day, last_day);
        let has_leadership = cfg
            .leadership
            .as_deref()
            .and_then(|l| cfg.office(l))
            .is_some_and(|o| !o.emails.is_empty());
        let (digest, digest_cut) =
            digest_schedule(cal, policy, has_leadership, due, &lead, last_day);
        // The horizon cuts only after first and last are known, or the horizon would decide
        // which reminder is a cooperating office's "last".
        let coop = CoopFilter::new(policy.cooperating, &lead.days);
        let whole = lead.ended && !digest_cut && lead.days.iter().all(|(d, _, _)| *d <= last_day);
        lead.days.retain(|(d, _, _)| *d <= last_day);
        let head_copied = head_copies(cal, &lead.days, lead.head_day);
        let last = lead.days.iter().chain(&digest).map(|(d, _, _)| *d).max();
        Self {
            due,
            lead: lead.days,
            head_copied,
            digest,
            coop,
            last,
            whole,
        }
    }
}

/// The [`DaySchedule`]s made so far in one plan, by policy and due day: a plan of many tasks
/// has a few hundred due days, and making each one once spares most of the work.
#[derive(Default)]
pub(super) struct Schedules {
    /// The key's first part is the policy's address: the config outlives the plan.
    made: rustc_hash::FxHashMap<(usize, NaiveDate), Rc<DaySchedule>>,
}

/// One occurrence's schedule.
struct OccSchedule<'a> {
    occ: NaiveDate,
    single_occurrence: bool,
    day: &'a DaySchedule,
}

/// Every nudge of one deadline occurrence, for every office of the task, up to `last_day`,
/// appended to `out` with the office's rank. With `schedules`, a due day's schedule made
/// for an earlier occurrence (of any task, under the same policy) is used again; the
/// caller keeps `last_day` and the calendar the same for all of them.
///
/// Returns whether the occurrence may still have nudges from `from_day` on under a farther
/// horizon: `false` when its whole schedule is before that day.
pub(super) fn nudges_for(
    ctx: &TaskCtx,
    occ: NaiveDate,
    single_occurrence: bool,
    last_day: NaiveDate,
    times: &mut SendTimes,
    schedules: Option<&mut Schedules>,
    out: &mut Vec<(Nudge, u32)>,
) -> bool {
    let TaskCtx { cal, task, .. } = *ctx;
    // The day the work is due: the deadline, or for "trước ngày X" the last working day
    // before X. Every offset counts to it; the ledger key keeps the occurrence X.
    let due = match occ.pred_opt() {
        Some(d) if task.deadline.exclusive => cal.working_day_on_or_before(d),
        _ => occ,
    };
    let day = match schedules {
        Some(s) => {
            let key = (std::ptr::from_ref(ctx.policy) as usize, due);
            Rc::clone(
                s.made
                    .entry(key)
                    .or_insert_with(|| Rc::new(DaySchedule::new(ctx, due, last_day))),
            )
        }
        None => Rc::new(DaySchedule::new(ctx, due, last_day)),
    };
    // All of it before the first day asked for: nothing to make.
    if day.last.is_none_or(|l| l < ctx.from_day) {
        return !day.whole;
    }
    let sched = OccSchedule {
        occ,
        single_occurrence,
        day: &day,
    };

    let offices = task
        .lead
        .iter()
        .map(|o| (o, Role::Lead))
        .chain(task.cooperating.iter().map(|o| (o, Role::Cooperating)));
    for (office_id, role) in offices {
        office_nudges(ctx, &sched, office_id, role, times, out);
    }
    true
}

/// The nudges a cooperating office gets, chosen from the lead's schedule.
struct CoopFilter {
    rule: CoopRule,
    /// The lead's first and last reminder before the deadline, before the horizon cut.
    first: Option<NaiveDate>,
    last: Option<NaiveDate>,
}

impl CoopFilter {
    fn new(rule: CoopRule, lead: &[Slot]) -> Self {
        let befores: Vec<&Slot> = lead
            .iter()
            .filter(|(_, k, _)| matches!(k, Kind::Before(_)))
            .collect();
        Self {
            rule,
            first: befores.first().map(|(d, _, _)| *d),
            last: befores.last().map(|(d, _, _)| *d),
        }
    }

    fn gets(&self, d: NaiveDate, k: &Kind) -> bool {
        let coop = self.rule;
        match k {
            Kind::Before(_) => {
                coop.all_before
                    || (coop.first && Some(d) == self.first)
                    || (coop.last && Some(d) == self.last)
            }
            Kind::OnDay => coop.on_day,
            Kind::Overdue(_) => coop.overdue,
            Kind::EscalateHead | Kind::EscalateLeadership | Kind::LeadershipAgain(_) => false,
        }
    }
}

/// The head is copied at `head_after`, then at most weekly: on an overdue reminder at
/// least a week (5 working days) after the last one that copied the head.
fn head_copies(cal: &WorkDayIndex, lead: &[Slot], head_day: Option<NaiveDate>) -> Vec<bool> {
    let mut last_head: Option<NaiveDate> = None;
    lead.iter()
        .map(|(date, kind, _)| {
            let copy = match kind {
                Kind::EscalateHead => true,
                Kind::Overdue(_) => {
                    head_day.is_some_and(|h| *date >= h)
                        && last_head.is_none_or(|l| cal.working_days_between(l, *date) >= 5)
                }
                _ => false,
            };
            if copy {
                last_head = Some(*date);
            }
            copy
        })
        .collect()
}

/// The nudges of one office of the task (as `role`), appended to `out` with its rank.
/// Nothing for an office not in the plan or without an address.
fn office_nudges(
    ctx: &TaskCtx,
    sched: &OccSchedule,
    office_id: &str,
    role: Role,
    times: &mut SendTimes,
    out: &mut Vec<(Nudge, u32)>,
) {
    let TaskCtx {
        cfg,
        cal,
        task,
        task_id,
        office_ids,
        today,
        from_day,
        ..
    } = *ctx;
    let Some(office) = cfg.office(office_id) else {
        return;
    };
    let Some((office_arc, office_rank)) = office_ids.get(office_id) else {
        return;
    };
    if office.emails.is_empty() {
        return;
    }
    let day = sched.day;
    let due = day.due;
    let days_left = |date: NaiveDate, unit: Unit| match unit {
        Unit::Days => due.signed_duration_since(date).num_days(),
        Unit::WorkingDays => cal.working_days_between(date, due),
    };
    // Both lists are in date order: the days before `from_day` are passed over at once.
    let lead_from = day.lead.partition_point(|(d, _, _)| *d < from_day);
    let digest_from = day.digest.partition_point(|(d, _, _)| *d < from_day);
    let own = day.lead[lead_from..]
        .iter()
        .zip(&day.head_copied[lead_from..])
        .map(|(l, h)| (l, *h))
        .chain(day.digest[digest_from..].iter().map(|l| (l, false)));
    for ((date, kind, unit), add_head) in own {
        if role == Role::Cooperating && !day.coop.gets(*date, kind) {
            continue;
        }
        if task.silences(office_id, sched.occ, sched.single_occurrence, *date, today) {
            continue;
        }
        let add_head = role == Role::Lead && add_head;
        let role = match (role, kind) {
            (Role::Lead, k) if k.is_leadership() || *k == Kind::EscalateHead => Role::Escalation,
            (r, _) => r,
        };
        let nudge = Nudge {
            task: Arc::clone(task_id.get_or_init(|| Arc::from(task.id.as_str()))),
            office: Arc::clone(office_arc),
            role,
            kind: *kind,
            occurrence: sched.occ,
            date: *date,
            send_at: times.at(*date),
            days_left: days_left(*date, *unit),
            unit: *unit,
            add_head,
            add_leadership: kind.is_leadership(),
            late: Late::No,
        };
        out.push((nudge, *office_rank));
    }
}
