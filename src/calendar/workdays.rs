//! The working-day calendar: which days are days off and how working days are counted.
//!
//! This is the seam between planning and the Vietnamese holiday rules: the planner asks only
//! the questions below and never knows where the answers come from. The calendar is built once
//! from the configuration (weekends, the statutory holidays, each year's official notice, the
//! clerk's own additions) and is then read-only.
//!
//! Total by construction: no date arithmetic here can panic (clippy's
//! `arithmetic_side_effects` is denied), and every question costs a few binary searches
//! whatever the dates and counts, so a stray year or a huge offset in the YAML is answered
//! as fast as an ordinary one.
#![deny(clippy::arithmetic_side_effects)]

use chrono::{Datelike, Days, NaiveDate, Weekday};
use std::collections::BTreeMap;
use std::sync::OnceLock;
/// The Vietnamese name of the day of the week ("Thứ Ba", "Chủ nhật").
pub fn weekday_vi(date: NaiveDate) -> &'static str {
    match date.weekday() {
        Weekday::Mon => "Thứ Hai",
        Weekday::Tue => "Thứ Ba",
        Weekday::Wed => "Thứ Tư",
        Weekday::Thu => "Thứ Năm",
        Weekday::Fri => "Thứ Sáu",
        Weekday::Sat => "Thứ Bảy",
        Weekday::Sun => "Chủ nhật",
    }
}

/// A date as `%d/%m/%Y` writes it ("30/01/2024"), without parsing the format each time:
/// `check` writes it in tens of thousands of warnings.
pub struct Dmy(pub NaiveDate);

impl std::fmt::Display for Dmy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.0;
        match d.year() {
            y @ 0..=9999 => write!(f, "{:02}/{:02}/{y:04}", d.day(), d.month()),
            _ => write!(f, "{}", d.format("%d/%m/%Y")),
        }
    }
}

/// "Thứ Ba, 30/01/2024": how the emails and tables write a date.
pub fn date_vi(date: NaiveDate) -> String {
    format!("{}, {}", weekday_vi(date), Dmy(date))
}

/// Why a day is off, or why a weekend day is worked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayNote {
    /// Vietnamese reason shown to the clerk ("Tết Nguyên đán", "Làm bù cho ngày 29/04").
    pub reason: String,
}

/// The answer for one date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayKind {
    /// An ordinary working day (Monday to Friday, not a holiday).
    Working,
    /// A weekend day that is worked in exchange for a weekday off.
    WorkedWeekend(DayNote),
    /// Saturday or Sunday.
    Weekend,
    /// A weekday off: a holiday, a make-up day, a swapped day.
    Off(DayNote),
}

impl DayKind {
    pub fn is_working(&self) -> bool {
        matches!(self, DayKind::Working | DayKind::WorkedWeekend(_))
    }
}

/// The working-day calendar used by the planner.
///
/// Working days are counted as "Mondays to Fridays since a fixed Monday" (a formula)
/// corrected by the exceptions up to the date (a binary search), so every question costs
/// O(log) for any dates chrono can represent. The `checked_*` methods answer `None` when the
/// answer would leave that range; the others saturate.
#[derive(Debug, Clone, Default)]
pub struct WorkCalendar {
    /// Weekdays off, with their reason.
    off: BTreeMap<NaiveDate, DayNote>,
    /// Weekend days worked, with their reason.
    worked: BTreeMap<NaiveDate, DayNote>,
    /// The exceptions that change the count (a weekday off: -1, a weekend day worked: +1),
    /// in date order, each with the running sum up to and including it. Built on first use
    /// after a change.
    deltas: OnceLock<Vec<(NaiveDate, i64)>>,
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// A date as a day number (days from the common era); every `NaiveDate` has one.
fn num(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce())
}

/// The date of a day number, if chrono can represent it.
fn from_num(n: i64) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(i32::try_from(n).ok()?)
}

/// Mondays to Fridays from Monday 0001-01-01 up to and including `date` (counted
/// backwards, negative, before it): only differences of this number mean anything.
fn weekdays_upto(date: NaiveDate) -> i64 {
    // Day 0 is Monday 0001-01-01 (day number 1). Day numbers span ±10^8: no overflow.
    let z = num(date).saturating_sub(1);
    let weeks = z.div_euclid(7);
    let rem = z.rem_euclid(7);
    weeks
        .saturating_mul(5)
        .saturating_add(rem.saturating_add(1).min(5))
}

/// A generous first guess of how many calendar days hold `n` working days.
fn span_guess(n: u32) -> i64 {
    (i64::from(n).saturating_mul(7) / 5).saturating_add(8)
}

impl WorkCalendar {
    /// Monday to Friday, no holidays. Used by tests that want the plain week.
    pub fn weekends_only() -> Self {
        Self::default()
    }

    /// Marks `date` as a day off. A later call for the same date replaces the reason.
    pub fn add_day_off(&mut self, date: NaiveDate, reason: impl Into<String>) {
        self.worked.remove(&date);
        self.off.insert(
            date,
            DayNote {
                reason: reason.into(),
            },
        );
        self.deltas = OnceLock::new();
    }

    /// Marks `date` (normally a Saturday) as a working day.
    pub fn add_working_day(&mut self, date: NaiveDate, reason: impl Into<String>) {
        self.off.remove(&date);
        self.worked.insert(
            date,
            DayNote {
                reason: reason.into(),
            },
        );
        self.deltas = OnceLock::new();
    }

    pub fn day_kind(&self, date: NaiveDate) -> DayKind {
        if let Some(note) = self.off.get(&date) {
            return DayKind::Off(note.clone());
        }
        if let Some(note) = self.worked.get(&date) {
            return DayKind::WorkedWeekend(note.clone());
        }
        if is_weekend(date) {
            DayKind::Weekend
        } else {
            DayKind::Working
        }
    }

    /// The same answer as `day_kind(date).is_working()`, without copying the reason: the
    /// planner asks this for every day it counts.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.off.contains_key(&date) {
            return false;
        }
        if self.worked.contains_key(&date) {
            return true;
        }
        !is_weekend(date)
    }

    /// The days off and weekend days worked that differ from the plain week, in date order.
    pub fn exceptions(&self) -> impl Iterator<Item = (NaiveDate, DayKind)> + '_ {
        let mut all: Vec<(NaiveDate, DayKind)> = self
            .off
            .iter()
            .map(|(d, n)| (*d, DayKind::Off(n.clone())))
            .chain(
                self.worked
                    .iter()
                    .map(|(d, n)| (*d, DayKind::WorkedWeekend(n.clone()))),
            )
            .collect();
        all.sort_by_key(|(d, _)| *d);
        all.into_iter()
    }

    fn deltas(&self) -> &[(NaiveDate, i64)] {
        self.deltas.get_or_init(|| {
            let mut changes: Vec<(NaiveDate, i64)> = self
                .off
                .keys()
                .filter(|d| !is_weekend(**d))
                .map(|d| (*d, -1))
                .chain(
                    self.worked
                        .keys()
                        .filter(|d| is_weekend(**d))
                        .map(|d| (*d, 1)),
                )
                .collect();
            changes.sort_unstable();
            let mut sum = 0i64;
            for (_, delta) in &mut changes {
                sum = sum.saturating_add(*delta);
                *delta = sum;
            }
            changes
        })
    }

    /// Working days from a fixed origin up to and including `date`: the number whose
    /// differences count working days.
    fn upto(&self, date: NaiveDate) -> i64 {
        let deltas = self.deltas();
        let k = deltas.partition_point(|(d, _)| *d <= date);
        let correction = k.checked_sub(1).map_or(0, |i| deltas[i].1);
        weekdays_upto(date).saturating_add(correction)
    }

    fn upto_num(&self, n: i64) -> Option<i64> {
        Some(self.upto(from_num(n)?))
    }

    /// The smallest day number in `(lo, hi]` whose count reaches `target`, given that
    /// `lo`'s does not and `hi`'s does.
    fn first_reaching(&self, target: i64, mut lo: i64, mut hi: i64) -> Option<NaiveDate> {
        // Invariant: upto(lo) < target <= upto(hi).
        while hi.saturating_sub(lo) > 1 {
            let mid = lo.saturating_add(hi.saturating_sub(lo) / 2);
            if self.upto_num(mid)? >= target {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        from_num(hi)
    }

    /// `date` itself if it is a working day, else the closest working day before it;
    /// `None` if there is none in chrono's range.
    pub fn checked_working_day_on_or_before(&self, date: NaiveDate) -> Option<NaiveDate> {
        if self.is_working_day(date) {
            return Some(date);
        }
        self.checked_sub_working_days(date, 1)
    }

    /// `date` itself if it is a working day, else the closest working day after it.
    pub fn checked_working_day_on_or_after(&self, date: NaiveDate) -> Option<NaiveDate> {
        if self.is_working_day(date) {
            return Some(date);
        }
        self.checked_add_working_days(date, 1)
    }

    /// The working day `n` working days before `date` (`n` = 0: `date` moved back to a
    /// working day). `date` itself does not count.
    pub fn checked_sub_working_days(&self, date: NaiveDate, n: u32) -> Option<NaiveDate> {
        if n == 0 {
            return self.checked_working_day_on_or_before(date);
        }
        let min = num(NaiveDate::MIN);
        let hi = num(date).checked_sub(1).filter(|h| *h >= min)?;
        // The n-th working day back is where the count first reaches this.
        let target = self
            .upto_num(hi)?
            .saturating_sub(i64::from(n))
            .saturating_add(1);
        let mut step = span_guess(n);
        loop {
            let lo = hi.saturating_sub(step).max(min);
            if self.upto_num(lo)? < target {
                return self.first_reaching(target, lo, hi);
            }
            if lo == min {
                return None;
            }
            step = step.saturating_mul(2);
        }
    }

    /// The working day `n` working days after `date`; `date` itself does not count.
    pub fn checked_add_working_days(&self, date: NaiveDate, n: u32) -> Option<NaiveDate> {
        if n == 0 {
            return self.checked_working_day_on_or_after(date);
        }
        let max = num(NaiveDate::MAX);
        let lo = num(date);
        let target = self.upto(date).saturating_add(i64::from(n));
        let mut step = span_guess(n);
        loop {
            let hi = lo.saturating_add(step).min(max);
            if self.upto_num(hi)? >= target {
                return self.first_reaching(target, lo, hi);
            }
            if hi == max {
                return None;
            }
            step = step.saturating_mul(2);
        }
    }

    /// [`Self::checked_working_day_on_or_before`], or `date` itself when there is none.
    pub fn working_day_on_or_before(&self, date: NaiveDate) -> NaiveDate {
        self.checked_working_day_on_or_before(date).unwrap_or(date)
    }

    /// [`Self::checked_working_day_on_or_after`], or `date` itself when there is none.
    pub fn working_day_on_or_after(&self, date: NaiveDate) -> NaiveDate {
        self.checked_working_day_on_or_after(date).unwrap_or(date)
    }

    /// [`Self::checked_sub_working_days`], saturating at the first representable date.
    pub fn sub_working_days(&self, date: NaiveDate, n: u32) -> NaiveDate {
        self.checked_sub_working_days(date, n)
            .unwrap_or(NaiveDate::MIN)
    }

    /// [`Self::checked_add_working_days`], saturating at the last representable date.
    pub fn add_working_days(&self, date: NaiveDate, n: u32) -> NaiveDate {
        self.checked_add_working_days(date, n)
            .unwrap_or(NaiveDate::MAX)
    }

    /// Working days after `from` up to and including `to` (negative when `to` is earlier).
    /// "Còn N ngày làm việc" on day `from` for a deadline on `to` is this number.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        self.upto(to).saturating_sub(self.upto(from))
    }
}

/// The working-day questions of a [`WorkCalendar`] answered from a table over a range of
/// dates: the planner asks them several times for every nudge of a year, and even a binary
/// search per question made them much of its work. Dates outside the range (or answers that
/// would leave it) are handed to the calendar itself, so every answer is the calendar's own.
#[derive(Debug, Clone)]
pub struct WorkDayIndex<'a> {
    cal: &'a WorkCalendar,
    first: NaiveDate,
    /// `upto[i]`: working days from `first` to `first + i`, inclusive.
    upto: Vec<u32>,
    /// The working days of the range, as offsets from `first`, in order.
    working: Vec<u32>,
}

impl<'a> WorkDayIndex<'a> {
    /// An index of `cal` over `first..=last` (empty when `last` is before `first`). The
    /// caller bounds the range: the table holds a number per day.
    pub fn new(cal: &'a WorkCalendar, first: NaiveDate, last: NaiveDate) -> Self {
        let len = usize::try_from(last.signed_duration_since(first).num_days())
            .map_or(0, |n| n.saturating_add(1));
        let mut upto = Vec::with_capacity(len);
        let mut working = Vec::new();
        let mut d = Some(first);
        for i in 0..len {
            let Some(day) = d else { break };
            if cal.is_working_day(day) {
                working.push(u32::try_from(i).unwrap_or(u32::MAX));
            }
            upto.push(u32::try_from(working.len()).unwrap_or(u32::MAX));
            d = day.checked_add_days(Days::new(1));
        }
        Self {
            cal,
            first,
            upto,
            working,
        }
    }

    pub fn calendar(&self) -> &'a WorkCalendar {
        self.cal
    }

    fn offset(&self, date: NaiveDate) -> Option<usize> {
        let i = usize::try_from(date.signed_duration_since(self.first).num_days()).ok()?;
        (i < self.upto.len()).then_some(i)
    }

    fn day(&self, k: usize) -> Option<NaiveDate> {
        let off = self.working.get(k)?;
        self.first.checked_add_days(Days::new(u64::from(*off)))
    }

    /// Working days in the range strictly before offset `i`.
    fn before(&self, i: usize) -> usize {
        i.checked_sub(1)
            .and_then(|j| self.upto.get(j))
            .map_or(0, |c| *c as usize)
    }

    fn works(&self, i: usize) -> bool {
        self.upto
            .get(i)
            .is_some_and(|c| *c as usize > self.before(i))
    }

    /// [`WorkCalendar::is_working_day`].
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match self.offset(date) {
            Some(i) => self.works(i),
            None => self.cal.is_working_day(date),
        }
    }

    /// [`WorkCalendar::checked_working_day_on_or_before`].
    pub fn checked_working_day_on_or_before(&self, date: NaiveDate) -> Option<NaiveDate> {
        if let Some(i) = self.offset(date) {
            if self.works(i) {
                return Some(date);
            }
            if let Some(k) = self.before(i).checked_sub(1) {
                return self.day(k);
            }
        }
        self.cal.checked_working_day_on_or_before(date)
    }

    /// [`WorkCalendar::checked_working_day_on_or_after`].
    pub fn checked_working_day_on_or_after(&self, date: NaiveDate) -> Option<NaiveDate> {
        if let Some(i) = self.offset(date) {
            if self.works(i) {
                return Some(date);
            }
            let c = self.upto[i] as usize;
            if c < self.working.len() {
                return self.day(c);
            }
        }
        self.cal.checked_working_day_on_or_after(date)
    }

    /// [`WorkCalendar::checked_sub_working_days`].
    pub fn checked_sub_working_days(&self, date: NaiveDate, n: u32) -> Option<NaiveDate> {
        if n == 0 {
            return self.checked_working_day_on_or_before(date);
        }
        if let Some(i) = self.offset(date)
            && let Some(k) = self.before(i).checked_sub(n as usize)
        {
            return self.day(k);
        }
        self.cal.checked_sub_working_days(date, n)
    }

    /// [`WorkCalendar::checked_add_working_days`].
    pub fn checked_add_working_days(&self, date: NaiveDate, n: u32) -> Option<NaiveDate> {
        if n == 0 {
            return self.checked_working_day_on_or_after(date);
        }
        if let Some(i) = self.offset(date)
            && let Some(k) = (self.upto[i] as usize)
                .checked_add(n as usize)
                .and_then(|k| k.checked_sub(1))
            && k < self.working.len()
        {
            return self.day(k);
        }
        self.cal.checked_add_working_days(date, n)
    }

    /// [`WorkCalendar::working_day_on_or_before`].
    pub fn working_day_on_or_before(&self, date: NaiveDate) -> NaiveDate {
        self.checked_working_day_on_or_before(date).unwrap_or(date)
    }

    /// [`WorkCalendar::working_day_on_or_after`].
    pub fn working_day_on_or_after(&self, date: NaiveDate) -> NaiveDate {
        self.checked_working_day_on_or_after(date).unwrap_or(date)
    }

    /// [`WorkCalendar::sub_working_days`].
    pub fn sub_working_days(&self, date: NaiveDate, n: u32) -> NaiveDate {
        self.checked_sub_working_days(date, n)
            .unwrap_or(NaiveDate::MIN)
    }

    /// [`WorkCalendar::add_working_days`].
    pub fn add_working_days(&self, date: NaiveDate, n: u32) -> NaiveDate {
        self.checked_add_working_days(date, n)
            .unwrap_or(NaiveDate::MAX)
    }

    /// [`WorkCalendar::working_days_between`].
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        match (self.offset(from), self.offset(to)) {
            (Some(a), Some(b)) => i64::from(self.upto[b]).saturating_sub(i64::from(self.upto[a])),
            _ => self.cal.working_days_between(from, to),
        }
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    /// `Dmy` writes what `%d/%m/%Y` writes, for every year chrono can hold.
    #[test]
    fn dmy_writes_what_the_format_writes() {
        let mut years: Vec<i32> = (-12..=12).collect();
        years.extend([
            99, 100, 999, 1000, 1024, 2024, 9998, 9999, 10_000, 99_999, -9999, -10_000,
        ]);
        years.extend([NaiveDate::MIN.year(), NaiveDate::MAX.year()]);
        for y in years {
            for (m, d) in [(1, 1), (1, 31), (2, 28), (9, 9), (10, 10), (12, 31)] {
                let Some(date) = NaiveDate::from_ymd_opt(y, m, d) else {
                    continue;
                };
                assert_eq!(Dmy(date).to_string(), date.format("%d/%m/%Y").to_string());
            }
        }
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn weekends_are_off_and_counting_skips_them() {
        let cal = WorkCalendar::weekends_only();
        // 2024-01-27 is a Saturday.
        assert!(!cal.is_working_day(d("2024-01-27")));
        assert_eq!(
            cal.working_day_on_or_before(d("2024-01-28")),
            d("2024-01-26")
        );
        // Three working days before Tue 30/01 are Thu 25, Fri 26, Mon 29 → Thu 25.
        assert_eq!(cal.sub_working_days(d("2024-01-30"), 3), d("2024-01-25"));
        assert_eq!(cal.add_working_days(d("2024-03-14"), 2), d("2024-03-18"));
        assert_eq!(
            cal.working_days_between(d("2024-01-25"), d("2024-01-30")),
            3
        );
        assert_eq!(
            cal.working_days_between(d("2024-01-30"), d("2024-01-25")),
            -3
        );
    }

    #[test]
    fn added_days_override_the_week() {
        let mut cal = WorkCalendar::weekends_only();
        cal.add_day_off(d("2024-04-29"), "Nghỉ hoán đổi");
        cal.add_working_day(d("2024-05-04"), "Làm bù");
        assert!(!cal.is_working_day(d("2024-04-29")));
        assert!(cal.is_working_day(d("2024-05-04")));
        assert_eq!(cal.exceptions().count(), 2);
    }

    #[test]
    fn the_index_answers_as_the_calendar_does() {
        let mut cal = WorkCalendar::weekends_only();
        cal.add_day_off(d("2024-04-29"), "Nghỉ hoán đổi");
        cal.add_day_off(d("2024-04-30"), "Giải phóng miền Nam");
        cal.add_day_off(d("2024-05-01"), "Quốc tế Lao động");
        cal.add_working_day(d("2024-05-04"), "Làm bù");
        let idx = WorkDayIndex::new(&cal, d("2024-04-01"), d("2024-06-30"));
        let mut a = d("2024-03-20");
        while a <= d("2024-07-10") {
            assert_eq!(idx.is_working_day(a), cal.is_working_day(a), "{a}");
            assert_eq!(
                idx.working_day_on_or_before(a),
                cal.working_day_on_or_before(a),
                "{a}"
            );
            assert_eq!(
                idx.working_day_on_or_after(a),
                cal.working_day_on_or_after(a),
                "{a}"
            );
            for n in [0, 1, 2, 3, 5, 10, 30] {
                assert_eq!(
                    idx.sub_working_days(a, n),
                    cal.sub_working_days(a, n),
                    "{a} -{n}"
                );
                assert_eq!(
                    idx.add_working_days(a, n),
                    cal.add_working_days(a, n),
                    "{a} +{n}"
                );
            }
            let mut b = d("2024-03-25");
            while b <= d("2024-07-05") {
                assert_eq!(
                    idx.working_days_between(a, b),
                    cal.working_days_between(a, b),
                    "{a} {b}"
                );
                b = b + Days::new(3);
            }
            a = a + Days::new(1);
        }
    }
    /// The answers by walking day by day, as the calendar once did.
    fn walk_add(cal: &WorkCalendar, date: NaiveDate, n: u32) -> NaiveDate {
        let (mut d, mut left) = (date, n);
        while left > 0 {
            d = d + Days::new(1);
            if cal.is_working_day(d) {
                left -= 1;
            }
        }
        while !cal.is_working_day(d) {
            d = d + Days::new(1);
        }
        d
    }

    fn walk_sub(cal: &WorkCalendar, date: NaiveDate, n: u32) -> NaiveDate {
        let (mut d, mut left) = (date, n);
        while left > 0 {
            d = d - Days::new(1);
            if cal.is_working_day(d) {
                left -= 1;
            }
        }
        while !cal.is_working_day(d) {
            d = d - Days::new(1);
        }
        d
    }

    #[test]
    fn counting_by_formula_matches_walking_day_by_day() {
        let mut cal = WorkCalendar::weekends_only();
        // Days off in a row (Tết), a weekday off on a weekend (no effect), worked Saturdays.
        for day in [
            "2024-02-08",
            "2024-02-09",
            "2024-02-12",
            "2024-02-13",
            "2024-02-14",
        ] {
            cal.add_day_off(d(day), "Tết");
        }
        cal.add_day_off(d("2024-02-10"), "a Saturday off changes nothing");
        cal.add_working_day(d("2024-02-17"), "Làm bù");
        cal.add_working_day(d("2024-05-04"), "Làm bù");
        cal.add_day_off(d("2024-04-29"), "Nghỉ hoán đổi");
        let mut a = d("2024-01-20");
        while a <= d("2024-05-20") {
            for n in [0, 1, 2, 3, 4, 5, 6, 7, 11, 30, 61] {
                assert_eq!(cal.add_working_days(a, n), walk_add(&cal, a, n), "{a} +{n}");
                assert_eq!(cal.sub_working_days(a, n), walk_sub(&cal, a, n), "{a} -{n}");
            }
            let b = a + Days::new(37);
            let walked = (1..=37)
                .filter(|i| cal.is_working_day(a + Days::new(*i)))
                .count() as i64;
            assert_eq!(cal.working_days_between(a, b), walked, "{a}..{b}");
            assert_eq!(cal.working_days_between(b, a), -walked, "{b}..{a}");
            a = a + Days::new(1);
        }
    }

    #[test]
    fn far_dates_and_huge_counts_neither_panic_nor_take_long() {
        let mut cal = WorkCalendar::weekends_only();
        cal.add_day_off(d("2024-01-01"), "Tết Dương lịch");
        let start = std::time::Instant::now();
        // Before the fix these walked day by day past chrono's last date and panicked.
        assert_eq!(
            cal.checked_add_working_days(d("2024-01-30"), u32::MAX),
            None
        );
        assert_eq!(
            cal.checked_sub_working_days(d("2024-01-30"), u32::MAX),
            None
        );
        assert_eq!(
            cal.add_working_days(d("2024-01-30"), u32::MAX),
            NaiveDate::MAX
        );
        let far = cal
            .checked_add_working_days(d("2024-01-30"), 60_000_000)
            .unwrap();
        assert!(far.year() > 200_000, "{far}");
        assert!(cal.checked_sub_working_days(NaiveDate::MIN, 1).is_none());
        assert!(cal.checked_add_working_days(NaiveDate::MAX, 1).is_none());
        assert_eq!(
            cal.working_days_between(d("0000-01-30"), d("2024-01-30")),
            -cal.working_days_between(d("2024-01-30"), d("0000-01-30"))
        );
        // A year-0 date against an index of 2024: the calendar answers, cheaply.
        let idx = WorkDayIndex::new(&cal, d("2024-01-01"), d("2024-12-31"));
        assert_eq!(
            idx.add_working_days(d("0000-01-28"), 3),
            walk_add(&cal, d("0000-01-28"), 3)
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }
}
