//! The upcoming nudges of a long period, held compactly by day and handed out in send order
//! one at a time: `nhacviec plan` over a year of a large plan.
//!
//! [`super::plan`] holds every upcoming nudge as a [`Nudge`] with its sort key, which for a
//! year of 100,000 tasks (millions of nudges) was most of the memory. Here a nudge is a
//! small record in the bucket of its day: every nudge of a day has the same send time, so
//! the day's bucket holds it once, and task and office are their places in id order (which
//! is also how they sort). A day is sorted only when it is handed out, and its nudges are
//! built back as they are read. The order is [`super::sort_plan`]'s exactly: send time,
//! task, office, kind, then the order they were planned in.
#![deny(clippy::arithmetic_side_effects)]

use super::{Kind, Late, Nudge, Role};
use crate::plan::config::{Config, Unit};
use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

/// One upcoming nudge, without what its day's bucket says (the day and the send time).
#[derive(Debug, Clone, Copy)]
struct Compact {
    /// The order it was planned in: ties of the sort key keep it.
    seq: u32,
    /// The task's and the office's places in id order.
    task: u32,
    office: u32,
    kind: Kind,
    occurrence: NaiveDate,
    /// Fits: two dates of the calendar are less than 2^31 days apart.
    days_left: i32,
    role: Role,
    unit: Unit,
    add_head: bool,
    add_leadership: bool,
}

/// One day's nudges and when that day's sweep sends them.
#[derive(Debug)]
struct Day {
    send_at: DateTime<Tz>,
    nudges: Vec<Compact>,
}

/// The upcoming nudges of a plan, by day.
#[derive(Debug, Default)]
pub struct Upcoming {
    days: BTreeMap<NaiveDate, Day>,
    seq: u32,
    len: usize,
}

impl Upcoming {
    /// Adds a nudge planned after `now`, with its task's and office's places in id order.
    pub(super) fn push(&mut self, n: Nudge, task_rank: u32, office_rank: u32) {
        let c = Compact {
            seq: self.seq,
            task: task_rank,
            office: office_rank,
            kind: n.kind,
            occurrence: n.occurrence,
            days_left: i32::try_from(n.days_left).unwrap_or(if n.days_left < 0 {
                i32::MIN
            } else {
                i32::MAX
            }),
            role: n.role,
            unit: n.unit,
            add_head: n.add_head,
            add_leadership: n.add_leadership,
        };
        self.seq = self.seq.saturating_add(1);
        self.len = self.len.saturating_add(1);
        self.days
            .entry(n.date)
            .or_insert_with(|| Day {
                send_at: n.send_at,
                nudges: Vec::new(),
            })
            .nudges
            .push(c);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The nudges in send order, each with its task's index in `cfg.tasks`. Each day is
    /// sorted when it is reached and let go once read. Each nudge is built back with its
    /// own copies of the ids: [`Upcoming::into_indexed`] is what printing a year uses.
    pub fn into_nudges(self, cfg: &Config) -> impl Iterator<Item = (Nudge, usize)> + '_ {
        self.into_indexed(cfg)
            .map(|u| (u.nudge(cfg), u.task as usize))
    }

    /// The nudges in send order, as [`Upcoming::into_nudges`] hands them out, with the
    /// task and the office as their places in `cfg.tasks` and `cfg.offices`: nothing is
    /// copied or counted per nudge (a year of a large plan has millions).
    pub fn into_indexed(self, cfg: &Config) -> impl Iterator<Item = Indexed> + '_ {
        // Places in id order back to the places in the config.
        let by_rank = |ids: Vec<&str>| {
            let mut order: Vec<(u32, &str)> = ids
                .into_iter()
                .enumerate()
                .map(|(i, id)| (u32::try_from(i).unwrap_or(u32::MAX), id))
                .collect();
            order.sort_by_key(|(_, id)| *id);
            order.into_iter().map(|(i, _)| i).collect::<Vec<u32>>()
        };
        let tasks = Rc::new(by_rank(cfg.tasks.iter().map(|t| t.id.as_str()).collect()));
        let offices = Rc::new(by_rank(cfg.offices.iter().map(|o| o.id.as_str()).collect()));
        // Days in send-time order; days sent at the same moment (never, in practice) are
        // sorted as one, as the whole plan is.
        let mut days: Vec<(NaiveDate, Day)> = self.days.into_iter().collect();
        days.sort_by_key(|(d, day)| (day.send_at.naive_utc(), *d));
        let mut groups: Vec<Vec<(NaiveDate, Day)>> = Vec::new();
        for day in days {
            match groups.last_mut() {
                Some(g) if g[0].1.send_at.naive_utc() == day.1.send_at.naive_utc() => g.push(day),
                _ => groups.push(vec![day]),
            }
        }
        groups.into_iter().flat_map(move |group| {
            let mut all: Vec<(NaiveDate, DateTime<Tz>, Compact)> = group
                .into_iter()
                .flat_map(|(date, day)| {
                    let send_at = day.send_at;
                    day.nudges.into_iter().map(move |c| (date, send_at, c))
                })
                .collect();
            all.sort_unstable_by_key(|(_, _, c)| (c.task, c.office, c.kind, c.seq));
            let (tasks, offices) = (Rc::clone(&tasks), Rc::clone(&offices));
            all.into_iter().filter_map(move |(date, send_at, c)| {
                Some(Indexed {
                    task: *tasks.get(c.task as usize)?,
                    office: *offices.get(c.office as usize)?,
                    role: c.role,
                    kind: c.kind,
                    occurrence: c.occurrence,
                    date,
                    send_at,
                    days_left: i64::from(c.days_left),
                    unit: c.unit,
                    add_head: c.add_head,
                    add_leadership: c.add_leadership,
                })
            })
        })
    }
}

/// An upcoming nudge as [`Upcoming::into_indexed`] hands it out: a [`Nudge`] (on its day,
/// so never late) whose task and office are their places in `cfg.tasks` and `cfg.offices`.
#[derive(Debug, Clone, Copy)]
pub struct Indexed {
    pub task: u32,
    pub office: u32,
    pub role: Role,
    pub kind: Kind,
    pub occurrence: NaiveDate,
    pub date: NaiveDate,
    pub send_at: DateTime<Tz>,
    pub days_left: i64,
    pub unit: Unit,
    pub add_head: bool,
    pub add_leadership: bool,
}

impl Indexed {
    /// The nudge itself, with its own copies of the ids.
    pub fn nudge(&self, cfg: &Config) -> Nudge {
        let id = |s: Option<&String>| Arc::<str>::from(s.map_or("", String::as_str));
        Nudge {
            task: id(cfg.tasks.get(self.task as usize).map(|t| &t.id)),
            office: id(cfg.offices.get(self.office as usize).map(|o| &o.id)),
            role: self.role,
            kind: self.kind,
            occurrence: self.occurrence,
            date: self.date,
            send_at: self.send_at,
            days_left: self.days_left,
            unit: self.unit,
            add_head: self.add_head,
            add_leadership: self.add_leadership,
            late: Late::No,
        }
    }
}
