//! The schedule of one deadline occurrence for its lead office: the days before it, the
//! day itself, the overdue repeats (every `overdue_every`, then weekly) and the escalations
//! to the head and to the leadership's digest.
//!
//! Checked date arithmetic only: a day past the calendar is left out, never a panic.
#![deny(clippy::arithmetic_side_effects)]

use super::{Kind, MAX_OVERDUE_STEPS};
use crate::calendar::workdays::WorkDayIndex;
use crate::plan::config::{Offset, Policy, Unit};
use chrono::{Days, NaiveDate};

/// A day a nudge is sent on, its kind, and the unit its "days left" counts in.
pub(super) type Slot = (NaiveDate, Kind, Unit);

/// The lead office's days for one occurrence, not yet cut at the horizon.
pub(super) struct LeadSchedule {
    /// One nudge a day, the weightiest of that day, in date order.
    pub days: Vec<Slot>,
    /// The overdue repeats up to the horizon.
    pub overdue: Vec<(NaiveDate, Offset)>,
    /// Whether `overdue_limit` (not the horizon) ended the overdue repeats.
    pub ended: bool,
    /// The day the head is told, if the policy escalates to it.
    pub head_day: Option<NaiveDate>,
}

/// The schedule of the lead office: before, on the day, overdue with escalation.
/// `due` is the day the work is due, `on_day` its working day, `last_day` the horizon.
pub(super) fn lead_schedule(
    cal: &WorkDayIndex,
    policy: &Policy,
    due: NaiveDate,
    on_day: NaiveDate,
    last_day: NaiveDate,
) -> LeadSchedule {
    let counts_working = policy.before.iter().any(|o| o.unit == Unit::WorkingDays);
    let mut lead: Vec<Slot> = Vec::new();
    for o in &policy.before {
        if let Some(d) = before_day(cal, due, *o) {
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
    // Overdue: every `overdue_every` up to `overdue_weekly_after`, then weekly, at most
    // `overdue_limit` reminders. `ended`: the limit ends them inside the horizon.
    let (overdue, ended) = match policy.overdue_every {
        Some(every) => overdue_steps(
            cal,
            due,
            every,
            policy.overdue_weekly_after,
            policy.overdue_limit,
            last_day,
        ),
        None => (Vec::new(), true),
    };
    for (d, o) in &overdue {
        lead.push((*d, Kind::Overdue(*o), o.unit));
    }
    let head_day = head_day(cal, policy, due);
    if let (Some(t), Some(d)) = (policy.head_after, head_day) {
        lead.push((d, Kind::EscalateHead, t.unit));
    }
    // One nudge a day per deadline: the weightiest wins.
    lead.sort_by_key(|(d, k, _)| (*d, std::cmp::Reverse(k.weight())));
    lead.dedup_by_key(|(d, _, _)| *d);
    LeadSchedule {
        days: lead,
        overdue,
        ended,
        head_day,
    }
}

/// The head is told at `head_after`, on the first overdue reminder from then (which it
/// replaces): an escalation never adds a day of email to the office's week.
/// Found past the horizon too: what the plan says must not depend on how far it looks.
/// A threshold too far to compute is never reached.
fn head_day(cal: &WorkDayIndex, policy: &Policy, due: NaiveDate) -> Option<NaiveDate> {
    policy.head_after.and_then(|t| {
        let d = after_day(cal, due, t)?;
        let Some(every) = policy.overdue_every else {
            return Some(d);
        };
        let reach = d
            .checked_add_days(Days::new(
                (every.approx_days() as u64)
                    .saturating_mul(2)
                    .saturating_add(14),
            ))
            .unwrap_or(d);
        let (steps, _) = overdue_steps(
            cal,
            due,
            every,
            policy.overdue_weekly_after,
            policy.overdue_limit,
            reach,
        );
        Some(steps.iter().map(|(o, _)| *o).find(|o| *o >= d).unwrap_or(d))
    })
}

/// The leadership's digest items: at `leadership_after`, then weekly while the lead
/// office is still reminded (under the limit). Never a copy of the office's own email.
/// Empty when the plan has no leadership to write to. Also whether the horizon (not the
/// end of the reminders) ended them: an item past `last_day` was left out.
pub(super) fn digest_schedule(
    cal: &WorkDayIndex,
    policy: &Policy,
    has_leadership: bool,
    due: NaiveDate,
    lead: &LeadSchedule,
    last_day: NaiveDate,
) -> (Vec<Slot>, bool) {
    let mut digest: Vec<Slot> = Vec::new();
    let mut cut = false;
    if let Some(t) = policy.leadership_after.filter(|_| has_leadership) {
        let last_overdue = lead.overdue.last().map(|(d, _)| *d);
        let mut j: u32 = 0;
        // Weekly while the office is reminded, never more often than its reminders.
        while j <= MAX_OVERDUE_STEPS {
            let o = Offset {
                n: t.n.saturating_add(week(t.unit).saturating_mul(j)),
                unit: t.unit,
            };
            let Some(d) = after_day(cal, due, o) else {
                break;
            };
            let still_reminded = j == 0 || !lead.ended || last_overdue.is_some_and(|l| d <= l);
            if !still_reminded {
                break;
            }
            if d > last_day {
                cut = true;
                break;
            }
            let kind = if j == 0 {
                Kind::EscalateLeadership
            } else {
                Kind::LeadershipAgain(o)
            };
            digest.push((d, kind, t.unit));
            j = j.saturating_add(1);
        }
    }
    (digest, cut)
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

/// A week in `unit`: 5 working days or 7 days.
fn week(unit: Unit) -> u32 {
    match unit {
        Unit::WorkingDays => 5,
        Unit::Days => 7,
    }
}

/// The overdue reminders of a deadline: every `every` while that is no later than
/// `weekly_after`, then weekly from `weekly_after`; at most `limit`, none after `last_day`.
/// Also whether the limit (not `last_day`) ended them.
fn overdue_steps(
    cal: &WorkDayIndex,
    occ: NaiveDate,
    every: Offset,
    weekly_after: Option<Offset>,
    limit: Option<u32>,
    last_day: NaiveDate,
) -> (Vec<(NaiveDate, Offset)>, bool) {
    // Never more than MAX_OVERDUE_STEPS, whatever `overdue_limit` says.
    let limit = limit.unwrap_or(MAX_OVERDUE_STEPS).min(MAX_OVERDUE_STEPS) as usize;
    let weekly_from = weekly_after.and_then(|w| after_day(cal, occ, w));
    let mut out: Vec<(NaiveDate, Offset)> = Vec::new();
    // Each repeat is found from the one before (in working days), so that no step walks
    // from the deadline again. A date too far to compute ends them as the horizon does.
    let mut prev = occ;
    let mut k: u32 = 1;
    while out.len() < limit {
        let Some(o) = scaled(every, k) else {
            return (out, false);
        };
        let next = match every.unit {
            Unit::WorkingDays => cal.checked_add_working_days(prev, every.n),
            Unit::Days => after_day(cal, occ, o),
        };
        let Some(d) = next.filter(|d| *d <= last_day) else {
            return (out, false);
        };
        if weekly_from.is_some_and(|w| d > w) {
            break;
        }
        out.push((d, o));
        prev = d;
        k = k.saturating_add(1);
    }
    if let (Some(w), Some(from)) = (weekly_after, weekly_from) {
        let mut prev = from;
        let mut j: u32 = 1;
        while out.len() < limit {
            let Some(n) = week(w.unit).checked_mul(j).and_then(|x| w.n.checked_add(x)) else {
                return (out, false);
            };
            let o = Offset { n, unit: w.unit };
            let next = match w.unit {
                Unit::WorkingDays => cal.checked_add_working_days(prev, week(w.unit)),
                Unit::Days => after_day(cal, occ, o),
            };
            let Some(d) = next.filter(|d| *d <= last_day) else {
                return (out, false);
            };
            out.push((d, o));
            prev = d;
            j = j.saturating_add(1);
        }
    }
    (out, true)
}
