//! The upcoming nudges of a long period, held compactly by day and handed out in send order
//! one at a time: `nhacviec plan` over a year of a large plan.
//!
//! [`super::plan`] holds every upcoming nudge as a [`Nudge`] with its sort key, which for a
//! year of 100,000 tasks (millions of nudges) was most of the memory. Here a nudge is a
//! small record in the bucket of its send time (every nudge of a day has the same one, so
//! the bucket holds it once), and task and office are their places in id order (which is
//! also how they sort). A bucket is sorted only when it is handed out, and its nudges are
//! built back as they are read. The order is [`super::sort_plan`]'s exactly: send time,
//! task, office, kind, then the order they were planned in.
#![deny(clippy::arithmetic_side_effects)]

use super::{Kind, Late, Nudge, Role};
use crate::plan::config::{Config, Offset, Unit};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use chrono_tz::Tz;
use std::sync::Arc;

/// One upcoming nudge, without what its bucket says (the send time, and the day but for its
/// place among the bucket's days): 24 bytes, held as a 16-byte [`Narrow`] when it fits.
#[derive(Debug, Clone, Copy)]
struct Compact {
    /// The task's and the office's places in id order.
    task: u32,
    office: u32,
    /// The kind's offset (0 for the kinds without one).
    kind_n: u32,
    occurrence: NaiveDate,
    /// Fits: two dates of the calendar are less than 2^31 days apart.
    days_left: i32,
    /// The kind, the role, both units and the two flags; see [`Compact::pack`].
    bits: u16,
    /// The nudge's day: its place in its bucket's `days`.
    day: u8,
}

const _: () = assert!(std::mem::size_of::<Compact>() == 24);

const KIND_BITS: u16 = 0b111;
const KIND_WORKING: u16 = 1 << 3;
const ROLE_SHIFT: u16 = 4;
const ROLE_BITS: u16 = 0b11 << ROLE_SHIFT;
const UNIT_WORKING: u16 = 1 << 6;
const ADD_HEAD: u16 = 1 << 7;
const ADD_LEADERSHIP: u16 = 1 << 8;

impl Compact {
    fn pack(n: &Nudge, task: u32, office: u32, day: u8) -> Self {
        let working = |u: Unit| u == Unit::WorkingDays;
        let (tag, offset): (u16, Option<Offset>) = match n.kind {
            Kind::Before(o) => (0, Some(o)),
            Kind::OnDay => (1, None),
            Kind::Overdue(o) => (2, Some(o)),
            Kind::EscalateHead => (3, None),
            Kind::EscalateLeadership => (4, None),
            Kind::LeadershipAgain(o) => (5, Some(o)),
        };
        let role: u16 = match n.role {
            Role::Lead => 0,
            Role::Cooperating => 1,
            Role::Escalation => 2,
        };
        let mut bits = tag | role << ROLE_SHIFT;
        if offset.is_some_and(|o| working(o.unit)) {
            bits |= KIND_WORKING;
        }
        if working(n.unit) {
            bits |= UNIT_WORKING;
        }
        if n.add_head {
            bits |= ADD_HEAD;
        }
        if n.add_leadership {
            bits |= ADD_LEADERSHIP;
        }
        Compact {
            task,
            office,
            kind_n: offset.map_or(0, |o| o.n),
            occurrence: n.occurrence,
            days_left: i32::try_from(n.days_left).unwrap_or(if n.days_left < 0 {
                i32::MIN
            } else {
                i32::MAX
            }),
            bits,
            day,
        }
    }

    fn unit(working: bool) -> Unit {
        if working {
            Unit::WorkingDays
        } else {
            Unit::Days
        }
    }

    fn kind(&self) -> Kind {
        let offset = Offset {
            n: self.kind_n,
            unit: Self::unit(self.bits & KIND_WORKING != 0),
        };
        match self.bits & KIND_BITS {
            0 => Kind::Before(offset),
            1 => Kind::OnDay,
            2 => Kind::Overdue(offset),
            3 => Kind::EscalateHead,
            4 => Kind::EscalateLeadership,
            _ => Kind::LeadershipAgain(offset),
        }
    }

    /// The sort key of [`Compact::kind`]'s task, office and kind, as one number: `Kind`
    /// orders by variant (the tag's order), then offset (its count, then its unit).
    fn order(&self) -> u128 {
        (u128::from(self.task) << 96)
            | (u128::from(self.office) << 64)
            | (u128::from(self.bits & KIND_BITS) << 40)
            | (u128::from(self.kind_n) << 8)
            | u128::from(self.bits & KIND_WORKING != 0)
    }

    fn role(&self) -> Role {
        match (self.bits & ROLE_BITS) >> ROLE_SHIFT {
            0 => Role::Lead,
            1 => Role::Cooperating,
            _ => Role::Escalation,
        }
    }
}

/// Nudges are held in blocks of this many, each allocated whole: a bucket wastes at most
/// one block's free end, where a growing `Vec` per day left up to half of its capacity
/// unused (60 % over the nudges of a year of 100,000 tasks).
const BLOCK: usize = 1024;

/// A [`Compact`] in 16 bytes, for the nudges whose numbers fit (all of them in any real
/// plan): an office's place below 65,536, an offset, a distance to the deadline and to the
/// occurrence within ±32,767 days. A nudge that does not fit is kept whole (see
/// [`Bucket::wide`]).
#[derive(Debug, Clone, Copy)]
struct Narrow {
    task: u32,
    office: u16,
    kind_n: u16,
    /// The occurrence, in days from the nudge's day.
    occurrence: i16,
    days_left: i16,
    bits: u16,
    day: u8,
}

const _: () = assert!(std::mem::size_of::<Narrow>() == 16);

impl Narrow {
    fn of(c: &Compact, date: NaiveDate) -> Option<Narrow> {
        let occurrence = c.occurrence.signed_duration_since(date).num_days();
        Some(Narrow {
            task: c.task,
            office: u16::try_from(c.office).ok()?,
            kind_n: u16::try_from(c.kind_n).ok()?,
            occurrence: i16::try_from(occurrence).ok()?,
            days_left: i16::try_from(c.days_left).ok()?,
            bits: c.bits,
            day: c.day,
        })
    }

    /// [`Compact::order`] but for the task: office, then kind.
    fn order(&self) -> u64 {
        (u64::from(self.office) << 20)
            | (u64::from(self.bits & KIND_BITS) << 17)
            | (u64::from(self.kind_n) << 1)
            | u64::from(self.bits & KIND_WORKING != 0)
    }

    fn widen(&self, date: NaiveDate) -> Compact {
        Compact {
            task: self.task,
            office: u32::from(self.office),
            kind_n: u32::from(self.kind_n),
            // Fits: `of` took it from a date of the calendar.
            occurrence: date
                .checked_add_signed(chrono::TimeDelta::days(i64::from(self.occurrence)))
                .unwrap_or(date),
            days_left: i32::from(self.days_left),
            bits: self.bits,
            day: self.day,
        }
    }
}

/// The nudges sent at one moment (a day's first sweep), in the order they were planned.
#[derive(Debug)]
struct Bucket {
    send_at: DateTime<Tz>,
    /// The days of its nudges: one, but for a send time shared by two days (a DST gap
    /// pushing a day's sending window into the next day), which the whole plan's order
    /// treats as one moment too.
    days: Vec<NaiveDate>,
    blocks: Vec<Vec<Narrow>>,
    /// The nudges that do not fit a [`Narrow`], each with its place in the bucket's order.
    wide: Vec<(usize, Compact)>,
    len: usize,
}

impl Bucket {
    fn day_place(&mut self, date: NaiveDate) -> u8 {
        let at = match self.days.iter().position(|d| *d == date) {
            Some(at) => at,
            None => {
                self.days.push(date);
                self.days.len().saturating_sub(1)
            }
        };
        // A send time is within a day of its nudges' day: at most three days share one.
        u8::try_from(at).unwrap_or(u8::MAX)
    }

    fn push(&mut self, c: Compact, date: NaiveDate) {
        let Some(n) = Narrow::of(&c, date) else {
            self.wide.push((self.len, c));
            self.len = self.len.saturating_add(1);
            return;
        };
        self.len = self.len.saturating_add(1);
        match self.blocks.last_mut() {
            Some(b) if b.len() < BLOCK => b.push(n),
            _ => {
                let mut b = Vec::with_capacity(BLOCK);
                b.push(n);
                self.blocks.push(b);
            }
        }
    }

    /// Its nudges, in the order they were planned.
    fn into_planned(self) -> (DateTime<Tz>, Vec<NaiveDate>, Vec<Compact>) {
        let mut all: Vec<Compact> = Vec::with_capacity(self.len);
        let day = |n: &Narrow| {
            self.days
                .get(usize::from(n.day))
                .copied()
                .unwrap_or_default()
        };
        if self.wide.is_empty() {
            for block in &self.blocks {
                all.extend(block.iter().map(|n| n.widen(day(n))));
            }
        } else {
            let mut wide = self.wide.into_iter().peekable();
            for n in self.blocks.iter().flatten() {
                while let Some((_, c)) = wide.next_if(|(at, _)| *at == all.len()) {
                    all.push(c);
                }
                all.push(n.widen(day(n)));
            }
            all.extend(wide.map(|(_, c)| c));
        }
        (self.send_at, self.days, all)
    }
}

impl Bucket {
    /// Its nudges in the plan's order (send time, task, office, kind, then the order they
    /// were planned in), built back one at a time, and its days.
    ///
    /// Nudges are planned task by task, and a moment holds thousands of tasks with a few
    /// nudges each: its nudges are sorted by task with a radix sort of (task, place) pairs,
    /// stable, then each task's few by office and kind. A bucket with a nudge held whole is
    /// sorted as whole records.
    fn into_sorted(self) -> (Vec<NaiveDate>, Sorted) {
        if !self.wide.is_empty() || u32::try_from(self.len).is_err() {
            let (_, days, mut all) = self.into_planned();
            // Stable: nudges equal in all three keep the order they were planned in.
            all.sort_by_key(Compact::order);
            return (days, Sorted::Whole(all.into_iter()));
        }
        let mut keys: Vec<(u32, u32)> = self
            .blocks
            .iter()
            .flatten()
            .zip(0u32..)
            .map(|(n, at)| (n.task, at))
            .collect();
        radix_sort_by_first(&mut keys);
        let blocks = self.blocks;
        let narrow = |at: u32| Sorted::narrow_at(&blocks, at);
        for run in keys.chunk_by_mut(|a, b| a.0 == b.0) {
            if run.len() > 1 {
                // Stable: the run is in planned order.
                run.sort_by_key(|(_, at)| narrow(*at).map(Narrow::order));
            }
        }
        let order: Vec<u32> = keys.into_iter().map(|(_, at)| at).collect();
        let sorted = Sorted::Narrow {
            blocks,
            days: self.days.clone(),
            order: order.into_iter(),
        };
        (self.days, sorted)
    }
}

/// Sorts `keys` by their first number, stably: least significant digit first, 11 bits a
/// pass, as many passes as the largest number needs (two for 100,000 tasks).
fn radix_sort_by_first(keys: &mut Vec<(u32, u32)>) {
    const BITS: u32 = 11;
    const DIGITS: usize = 1 << BITS;
    let mask = u32::try_from(DIGITS).unwrap_or(u32::MAX).saturating_sub(1);
    let max = keys.iter().map(|k| k.0).max().unwrap_or(0);
    let mut spare: Vec<(u32, u32)> = vec![(0, 0); keys.len()];
    let mut shift = 0;
    while shift < u32::BITS && max.checked_shr(shift).is_some_and(|m| m != 0) {
        let digit = |k: &(u32, u32)| (k.0.checked_shr(shift).unwrap_or(0) & mask) as usize;
        // Where each digit's keys start: counted, then summed.
        let mut next = vec![0usize; DIGITS];
        for k in keys.iter() {
            if let Some(c) = next.get_mut(digit(k)) {
                *c = c.saturating_add(1);
            }
        }
        let mut sum = 0usize;
        for c in &mut next {
            let n = *c;
            *c = sum;
            sum = sum.saturating_add(n);
        }
        for k in keys.iter() {
            if let Some(c) = next.get_mut(digit(k)) {
                if let Some(slot) = spare.get_mut(*c) {
                    *slot = *k;
                }
                *c = c.saturating_add(1);
            }
        }
        std::mem::swap(keys, &mut spare);
        shift = shift.saturating_add(BITS);
    }
}

/// A bucket's nudges in order, as [`Bucket::into_sorted`] hands them out.
enum Sorted {
    /// Every nudge narrow: the blocks, and the places of the nudges in order.
    Narrow {
        blocks: Vec<Vec<Narrow>>,
        days: Vec<NaiveDate>,
        order: std::vec::IntoIter<u32>,
    },
    Whole(std::vec::IntoIter<Compact>),
}

impl Sorted {
    fn narrow_at(blocks: &[Vec<Narrow>], at: u32) -> Option<&Narrow> {
        let at = at as usize;
        blocks
            .get(at.checked_div(BLOCK)?)?
            .get(at.checked_rem(BLOCK)?)
    }
}

impl Iterator for Sorted {
    type Item = Compact;

    fn next(&mut self) -> Option<Compact> {
        match self {
            Sorted::Narrow {
                blocks,
                days,
                order,
            } => {
                let n = Sorted::narrow_at(blocks, order.next()?)?;
                Some(n.widen(days.get(usize::from(n.day)).copied().unwrap_or_default()))
            }
            Sorted::Whole(all) => all.next(),
        }
    }
}

/// The upcoming nudges of a plan, by send time.
#[derive(Debug, Default)]
pub struct Upcoming {
    /// In the order they were made; sorted by send time when handed out.
    buckets: Vec<Bucket>,
    /// Each send time's place in `buckets`: found by hashing, not by walking a tree of a
    /// few hundred moments for each of millions of nudges.
    at: rustc_hash::FxHashMap<NaiveDateTime, usize>,
    len: usize,
}

impl Upcoming {
    /// Adds a nudge planned after `now`, with its task's and office's places in id order.
    pub(super) fn push(&mut self, n: Nudge, task_rank: u32, office_rank: u32) {
        self.len = self.len.saturating_add(1);
        let buckets = &mut self.buckets;
        let at = *self.at.entry(n.send_at.naive_utc()).or_insert_with(|| {
            buckets.push(Bucket {
                send_at: n.send_at,
                days: Vec::new(),
                blocks: Vec::new(),
                wide: Vec::new(),
                len: 0,
            });
            buckets.len().saturating_sub(1)
        });
        let Some(bucket) = buckets.get_mut(at) else {
            return;
        };
        let day = bucket.day_place(n.date);
        bucket.push(Compact::pack(&n, task_rank, office_rank, day), n.date);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The nudges in send order, each with its task's index in `cfg.tasks`. Each moment is
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
        let places = Places::of(cfg);
        self.into_ranked().filter_map(move |mut n| {
            n.task = *places.tasks.get(n.task as usize)?;
            n.office = *places.offices.get(n.office as usize)?;
            Some(n)
        })
    }

    /// [`Upcoming::into_indexed`] with the task and the office as their places in id order
    /// (their ranks; [`Places`] takes them back to the config). Each moment's nudges come
    /// in rank order: what is read per rank, laid out in rank order, is read front to back.
    pub fn into_ranked(self) -> impl Iterator<Item = Indexed> {
        let mut buckets = self.buckets;
        // One bucket per send time: they come out in send order.
        buckets.sort_unstable_by_key(|b| b.send_at.naive_utc());
        buckets.into_iter().flat_map(|bucket| {
            let send_at = bucket.send_at;
            let (days, sorted) = bucket.into_sorted();
            sorted.filter_map(move |c| {
                Some(Indexed {
                    task: c.task,
                    office: c.office,
                    role: c.role(),
                    kind: c.kind(),
                    occurrence: c.occurrence,
                    date: *days.get(usize::from(c.day))?,
                    send_at,
                    days_left: i64::from(c.days_left),
                    unit: Compact::unit(c.bits & UNIT_WORKING != 0),
                    add_head: c.bits & ADD_HEAD != 0,
                    add_leadership: c.bits & ADD_LEADERSHIP != 0,
                })
            })
        })
    }
}

/// The places in the config of the tasks and the offices, by rank (place in id order).
#[derive(Debug)]
pub struct Places {
    pub tasks: Vec<u32>,
    pub offices: Vec<u32>,
}

impl Places {
    pub fn of(cfg: &Config) -> Self {
        let by_rank = |ids: Vec<&str>| {
            let mut order: Vec<(u32, &str)> = ids
                .into_iter()
                .enumerate()
                .map(|(i, id)| (u32::try_from(i).unwrap_or(u32::MAX), id))
                .collect();
            // Stable, as the planner's ranks are.
            order.sort_by_key(|(_, id)| *id);
            order.into_iter().map(|(i, _)| i).collect::<Vec<u32>>()
        };
        Self {
            tasks: by_rank(cfg.tasks.iter().map(|t| t.id.as_str()).collect()),
            offices: by_rank(cfg.offices.iter().map(|o| o.id.as_str()).collect()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The moment the tests' nudges are sent at: 04/03/2024 08:00 in Vietnam.
    fn moment() -> chrono::DateTime<Tz> {
        let tz: Tz = "Asia/Ho_Chi_Minh".parse().unwrap();
        tz.with_ymd_and_hms(2024, 3, 4, 8, 0, 0).unwrap()
    }

    /// Every kind, with offsets of both units, small and as large as they come.
    fn kinds() -> Vec<Kind> {
        let o = |n, unit| Offset { n, unit };
        vec![
            Kind::Before(o(14, Unit::Days)),
            Kind::Before(o(14, Unit::WorkingDays)),
            Kind::Before(o(3, Unit::WorkingDays)),
            Kind::OnDay,
            Kind::Overdue(o(2, Unit::Days)),
            Kind::Overdue(o(2600, Unit::WorkingDays)),
            Kind::Overdue(o(u32::MAX, Unit::Days)),
            Kind::Overdue(o(u32::MAX, Unit::WorkingDays)),
            Kind::EscalateHead,
            Kind::EscalateLeadership,
            Kind::LeadershipAgain(o(7, Unit::Days)),
        ]
    }

    /// A plan of one task, T, led by office o: the config the nudges are handed out from.
    fn one_task() -> Config {
        let src = "plan:\n  year: 2024\noffices:\n  o:\n    name: O\n    email: o@vpubnd.example\ntasks:\n  - id: T\n    title: t\n    deadline: 30/01/2024\n    lead: o\n";
        crate::plan::config::from_source(
            src,
            std::path::Path::new("t.yaml"),
            &crate::plan::config::Env::default(),
        )
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config
    }

    /// The packed key orders as task, office and kind do.
    #[test]
    fn the_packed_order_is_the_order_of_task_office_and_kind() {
        let send_at = moment();
        let kinds = kinds();
        let mut all = Vec::new();
        for task in [0, 1, u32::MAX] {
            for office in [0, 7, u32::MAX] {
                for &kind in &kinds {
                    let n = Nudge {
                        task: "T".into(),
                        office: "o".into(),
                        role: Role::Lead,
                        kind,
                        occurrence: send_at.date_naive(),
                        date: send_at.date_naive(),
                        send_at,
                        days_left: 0,
                        unit: Unit::Days,
                        add_head: false,
                        add_leadership: false,
                        late: Late::No,
                    };
                    all.push(Compact::pack(&n, task, office, 0));
                }
            }
        }
        for a in &all {
            for b in &all {
                assert_eq!(
                    a.order().cmp(&b.order()),
                    (a.task, a.office, a.kind()).cmp(&(b.task, b.office, b.kind())),
                    "{:?} {:?}",
                    a.kind(),
                    b.kind()
                );
            }
        }
    }

    /// Nudges equal in task, office and kind keep the order they were planned in, whether
    /// they are held narrow or, their numbers too large, whole.
    #[test]
    fn narrow_and_wide_nudges_of_a_moment_keep_their_planned_order() {
        let send_at = moment();
        let date = send_at.date_naive();
        // Occurrences a few days back fit; a century back does not.
        let occurrences: Vec<NaiveDate> = [3, 40_000, 5, 7, 50_000, 60_000, 9]
            .iter()
            .map(|d| date - chrono::Days::new(*d))
            .collect();
        let mut upcoming = Upcoming::default();
        for occurrence in &occurrences {
            let n = Nudge {
                task: "T".into(),
                office: "o".into(),
                role: Role::Lead,
                kind: Kind::Overdue(Offset {
                    n: 3,
                    unit: Unit::WorkingDays,
                }),
                occurrence: *occurrence,
                date,
                send_at,
                days_left: -3,
                unit: Unit::WorkingDays,
                add_head: false,
                add_leadership: false,
                late: Late::No,
            };
            upcoming.push(n, 0, 0);
        }
        let bucket = upcoming.buckets.first().unwrap();
        assert_eq!((bucket.wide.len(), bucket.len), (3, 7), "three held whole");
        let cfg = one_task();
        let got: Vec<NaiveDate> = upcoming
            .into_nudges(&cfg)
            .map(|(n, _)| n.occurrence)
            .collect();
        assert_eq!(got, occurrences);
    }

    /// A moment of many tasks (ranks needing two and three radix passes), each with
    /// several nudges, comes out in the order of a stable sort on task, office and kind.
    #[test]
    fn a_large_moment_comes_out_as_a_stable_sort_orders_it() {
        let send_at = moment();
        let date = send_at.date_naive();
        let kinds = kinds();
        // A small generator: the test needs no crate for it.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for max_task in [50u64, 100_000, 5_000_000_000] {
            let mut upcoming = Upcoming::default();
            let mut want = Vec::new();
            for planned in 0..5000u32 {
                let task = u32::try_from(next(max_task.min(u64::from(u32::MAX)))).unwrap();
                let office = u32::try_from(next(3)).unwrap();
                let kind = kinds[usize::try_from(next(4)).unwrap()];
                // The distance to the deadline tells the nudges apart.
                let days_left = i64::from(planned);
                let n = Nudge {
                    task: "T".into(),
                    office: "o".into(),
                    role: Role::Lead,
                    kind,
                    occurrence: date,
                    date,
                    send_at,
                    days_left: days_left % 30_000,
                    unit: Unit::Days,
                    add_head: false,
                    add_leadership: false,
                    late: Late::No,
                };
                upcoming.push(n, task, office);
                want.push((task, office, kind, days_left % 30_000));
            }
            want.sort_by_key(|(t, o, k, _)| (*t, *o, *k));
            let got: Vec<(u32, u32, Kind, i64)> = upcoming
                .into_ranked()
                .map(|n| (n.task, n.office, n.kind, n.days_left))
                .collect();
            assert_eq!(got, want, "tasks below {max_task}");
        }
    }

    /// Every kind, role, unit and flag comes back as it was packed.
    #[test]
    fn a_packed_nudge_comes_back_whole() {
        let send_at = moment();
        let date = send_at.date_naive();
        let kinds = kinds();
        let mut upcoming = Upcoming::default();
        let mut want = Vec::new();
        for (i, kind) in kinds.into_iter().enumerate() {
            for role in [Role::Lead, Role::Cooperating, Role::Escalation] {
                for unit in [Unit::Days, Unit::WorkingDays] {
                    for (add_head, add_leadership) in
                        [(false, false), (true, false), (false, true), (true, true)]
                    {
                        let n = Nudge {
                            task: "T".into(),
                            office: "o".into(),
                            role,
                            kind,
                            occurrence: NaiveDate::from_ymd_opt(2023, 12, 31).unwrap(),
                            date,
                            send_at,
                            days_left: if i % 2 == 0 { -40 } else { i64::from(i as u8) },
                            unit,
                            add_head,
                            add_leadership,
                            late: Late::No,
                        };
                        upcoming.push(n.clone(), 0, 0);
                        want.push(n);
                    }
                }
            }
        }
        let cfg = one_task();
        let mut got: Vec<Nudge> = upcoming.into_nudges(&cfg).map(|(n, _)| n).collect();
        let key = |n: &Nudge| (n.kind, n.role, n.unit, n.add_head, n.add_leadership);
        got.sort_by_key(key);
        want.sort_by_key(key);
        assert_eq!(got, want);
    }
}
