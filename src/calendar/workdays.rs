//! The working-day calendar: which days are days off and how working days are counted.
//!
//! This is the seam between planning and the Vietnamese holiday rules: the planner asks only
//! the questions below and never knows where the answers come from. The calendar is built once
//! from the configuration (weekends, the statutory holidays, each year's official notice, the
//! clerk's own additions) and is then read-only.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use std::collections::BTreeMap;

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

/// "Thứ Ba, 30/01/2024": how the emails and tables write a date.
pub fn date_vi(date: NaiveDate) -> String {
    format!("{}, {}", weekday_vi(date), date.format("%d/%m/%Y"))
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
#[derive(Debug, Clone, Default)]
pub struct WorkCalendar {
    /// Weekdays off, with their reason.
    off: BTreeMap<NaiveDate, DayNote>,
    /// Weekend days worked, with their reason.
    worked: BTreeMap<NaiveDate, DayNote>,
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
    }

    pub fn day_kind(&self, date: NaiveDate) -> DayKind {
        if let Some(note) = self.off.get(&date) {
            return DayKind::Off(note.clone());
        }
        if let Some(note) = self.worked.get(&date) {
            return DayKind::WorkedWeekend(note.clone());
        }
        match date.weekday() {
            Weekday::Sat | Weekday::Sun => DayKind::Weekend,
            _ => DayKind::Working,
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
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
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

    /// `date` itself if it is a working day, else the closest working day before it.
    pub fn working_day_on_or_before(&self, date: NaiveDate) -> NaiveDate {
        let mut d = date;
        // A year never has more than a few weeks off in a row; the bound only guards
        // against a calendar that a clerk filled with days off.
        for _ in 0..3660 {
            if self.is_working_day(d) {
                return d;
            }
            d = d - Days::new(1);
        }
        date
    }

    /// `date` itself if it is a working day, else the closest working day after it.
    pub fn working_day_on_or_after(&self, date: NaiveDate) -> NaiveDate {
        let mut d = date;
        for _ in 0..3660 {
            if self.is_working_day(d) {
                return d;
            }
            d = d + Days::new(1);
        }
        date
    }

    /// The working day `n` working days before `date` (`n` = 0: `date` moved back to a
    /// working day). `date` itself does not count.
    pub fn sub_working_days(&self, date: NaiveDate, n: u32) -> NaiveDate {
        let mut d = date;
        let mut left = n;
        while left > 0 {
            d = d - Days::new(1);
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        self.working_day_on_or_before(d)
    }

    /// The working day `n` working days after `date`; `date` itself does not count.
    pub fn add_working_days(&self, date: NaiveDate, n: u32) -> NaiveDate {
        let mut d = date;
        let mut left = n;
        while left > 0 {
            d = d + Days::new(1);
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        self.working_day_on_or_after(d)
    }

    /// Working days after `from` up to and including `to` (negative when `to` is earlier).
    /// "Còn N ngày làm việc" on day `from` for a deadline on `to` is this number.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        if to < from {
            return -self.working_days_between(to, from);
        }
        let mut n = 0;
        let mut d = from;
        while d < to {
            d = d + Days::new(1);
            if self.is_working_day(d) {
                n += 1;
            }
        }
        n
    }
}

/// The working-day questions of a [`WorkCalendar`] answered in constant time over a range of
/// dates: the planner asks them several times for every nudge of a year, and walking day by
/// day made them most of its work. Dates outside the range (or answers that would leave it)
/// are handed to the calendar itself, so every answer is the calendar's own.
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
    /// An index of `cal` over `first..=last`.
    pub fn new(cal: &'a WorkCalendar, first: NaiveDate, last: NaiveDate) -> Self {
        let len = (last - first).num_days().max(0) as usize + 1;
        let mut upto = Vec::with_capacity(len);
        let mut working = Vec::new();
        let mut d = first;
        for i in 0..len {
            if cal.is_working_day(d) {
                working.push(i as u32);
            }
            upto.push(working.len() as u32);
            d = d + Days::new(1);
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
        let i = (date - self.first).num_days();
        (i >= 0 && (i as usize) < self.upto.len()).then_some(i as usize)
    }

    fn day(&self, k: usize) -> NaiveDate {
        self.first + Days::new(self.working[k] as u64)
    }

    fn works(&self, i: usize) -> bool {
        self.upto[i] > if i == 0 { 0 } else { self.upto[i - 1] }
    }

    /// [`WorkCalendar::is_working_day`].
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match self.offset(date) {
            Some(i) => self.works(i),
            None => self.cal.is_working_day(date),
        }
    }

    /// [`WorkCalendar::working_day_on_or_before`].
    pub fn working_day_on_or_before(&self, date: NaiveDate) -> NaiveDate {
        if let Some(i) = self.offset(date) {
            if self.works(i) {
                return date;
            }
            let c = self.upto[i] as usize;
            // The calendar gives up after 3660 days; past that, ask it.
            if c > 0 && (date - self.day(c - 1)).num_days() < 3660 {
                return self.day(c - 1);
            }
        }
        self.cal.working_day_on_or_before(date)
    }

    /// [`WorkCalendar::working_day_on_or_after`].
    pub fn working_day_on_or_after(&self, date: NaiveDate) -> NaiveDate {
        if let Some(i) = self.offset(date) {
            if self.works(i) {
                return date;
            }
            let c = self.upto[i] as usize;
            if c < self.working.len() && (self.day(c) - date).num_days() < 3660 {
                return self.day(c);
            }
        }
        self.cal.working_day_on_or_after(date)
    }

    /// [`WorkCalendar::sub_working_days`].
    pub fn sub_working_days(&self, date: NaiveDate, n: u32) -> NaiveDate {
        if n == 0 {
            return self.working_day_on_or_before(date);
        }
        if let Some(i) = self.offset(date) {
            // Working days strictly before `date` inside the range.
            let before = if i == 0 { 0 } else { self.upto[i - 1] as usize };
            if before >= n as usize {
                return self.day(before - n as usize);
            }
        }
        self.cal.sub_working_days(date, n)
    }

    /// [`WorkCalendar::add_working_days`].
    pub fn add_working_days(&self, date: NaiveDate, n: u32) -> NaiveDate {
        if n == 0 {
            return self.working_day_on_or_after(date);
        }
        if let Some(i) = self.offset(date) {
            let k = self.upto[i] as usize + n as usize - 1;
            if k < self.working.len() {
                return self.day(k);
            }
        }
        self.cal.add_working_days(date, n)
    }

    /// [`WorkCalendar::working_days_between`].
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        match (self.offset(from), self.offset(to)) {
            (Some(a), Some(b)) => self.upto[b] as i64 - self.upto[a] as i64,
            _ => self.cal.working_days_between(from, to),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
