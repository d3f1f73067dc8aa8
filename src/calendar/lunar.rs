//! The Vietnamese lunar calendar (âm lịch), computed astronomically for UTC+7.
//!
//! The rules of the calendar:
//!
//! * a lunar month starts on the local (UTC+7) day that contains the new moon (sóc);
//! * month 11 is the month that contains the winter solstice (Đông chí, sun at 270°);
//! * a year from one month 11 to the next either has 12 months or 13; in a 13-month year the
//!   first month after month 11 that contains no major solar term (trung khí, the sun crossing
//!   a multiple of 30°) is the leap month and repeats the number of the month before it.
//!
//! The astronomy follows Jean Meeus: the new moons use the mean-phase series with the
//! periodic terms from *Astronomical Formulae for Calculators* (epoch 1900, `T` in Julian
//! centuries from 1900 January 0.5), corrected from dynamical to universal time with a
//! quadratic ΔT; the sun's longitude uses the low-accuracy solar theory of *Astronomical
//! Algorithms*, chapter 25 (apparent longitude). Which solar term a day belongs to is judged
//! at the local midnight that starts the day.
//!
//! With these choices every month start of 1900–2100 agrees with the published reference
//! table (`tests/data/lunar-month-starts-1900-2100.csv`). The ΔT term matters: without it
//! the month 9 of 2085 would start a day early (that new moon falls seconds after midnight).
//!
//! The month starts are computed once, on first use, for the lunar years 1899–2101 (which
//! covers every solar day of 1900–2100) and looked up by binary search afterwards. Dates
//! outside that range are computed on the fly, with the same method.

use chrono::{Datelike, NaiveDate};
use std::f64::consts::PI;
use std::fmt;
use std::sync::OnceLock;

/// A date of the Vietnamese lunar calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LunarDate {
    /// The lunar year (the year that starts at Tết), e.g. 2024 for Giáp Thìn.
    pub year: i32,
    /// 1..=12.
    pub month: u32,
    /// 1..=30.
    pub day: u32,
    /// Whether the month is the leap month (tháng nhuận) that repeats `month`.
    pub leap: bool,
}

impl LunarDate {
    /// A regular (non-leap) lunar date.
    pub fn new(year: i32, month: u32, day: u32) -> Self {
        LunarDate {
            year,
            month,
            day,
            leap: false,
        }
    }
}

impl fmt::Display for LunarDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.leap {
            write!(f, "{}/{} nhuận âm lịch", self.day, self.month)
        } else {
            write!(f, "{}/{} âm lịch", self.day, self.month)
        }
    }
}

/// The time zone of the Vietnamese calendar, in days east of Greenwich.
const TZ_DAYS: f64 = 7.0 / 24.0;
/// The Julian day number of 0000-12-31 in the proleptic Gregorian calendar, so that
/// `num_days_from_ce() + JDN_CE_OFFSET` is the Julian day number of a date.
const JDN_CE_OFFSET: i64 = 1_721_425;
/// Mean length of the synodic month, days.
const SYNODIC_MONTH: f64 = 29.530_588_853;
/// Julian date of the mean new moon with index 0 (1900 January 0.76, Meeus' epoch).
const NEW_MOON_EPOCH: f64 = 2_415_020.759_33;

/// The first and last lunar "solstice years" kept in the precomputed table. The year `y`
/// here runs from month 11 of lunar year `y - 1` up to (not including) month 11 of `y`.
const TABLE_FIRST: i32 = 1899;
const TABLE_LAST: i32 = 2102;

fn jdn(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce()) + JDN_CE_OFFSET
}

fn from_jdn(j: i64) -> Option<NaiveDate> {
    let days = i32::try_from(j - JDN_CE_OFFSET).ok()?;
    NaiveDate::from_num_days_from_ce_opt(days)
}

fn deg_sin(deg: f64) -> f64 {
    (deg * PI / 180.0).sin()
}

/// Universal time (Julian date) of the new moon with index `k` (0 = January 1900).
fn new_moon_ut(k: i64) -> f64 {
    let k = k as f64;
    let t = k / 1236.85;
    let t2 = t * t;
    let t3 = t2 * t;
    let mean = NEW_MOON_EPOCH + 29.530_588_68 * k + 0.000_117_8 * t2 - 0.000_000_155 * t3
        + 0.000_33 * deg_sin(166.56 + 132.87 * t - 0.009_173 * t2);
    // Mean anomaly of the sun, of the moon, and the moon's argument of latitude.
    let m = 359.2242 + 29.105_356_08 * k - 0.000_033_3 * t2 - 0.000_003_47 * t3;
    let mm = 306.0253 + 385.816_918_06 * k + 0.010_730_6 * t2 + 0.000_012_36 * t3;
    let f = 21.2964 + 390.670_506_46 * k - 0.001_652_8 * t2 - 0.000_002_39 * t3;
    let periodic = [
        ((0.1734 - 0.000_393 * t), m),
        (0.0021, 2.0 * m),
        (-0.4068, mm),
        (0.0161, 2.0 * mm),
        (-0.0004, 3.0 * mm),
        (0.0104, 2.0 * f),
        (-0.0051, m + mm),
        (-0.0074, m - mm),
        (0.0004, 2.0 * f + m),
        (-0.0004, 2.0 * f - m),
        (-0.0006, 2.0 * f + mm),
        (0.0010, 2.0 * f - mm),
        (0.0005, m + 2.0 * mm),
    ]
    .iter()
    .map(|(coef, arg)| coef * deg_sin(*arg))
    .sum::<f64>();
    // ΔT (dynamical minus universal time) in days, a quadratic in centuries from 1900.
    let delta_t = -0.000_278 + 0.000_265 * t + 0.000_262 * t2;
    mean + periodic - delta_t
}

/// The Julian day number of the local (UTC+7) day that contains new moon `k`.
fn new_moon_day(k: i64) -> i64 {
    (new_moon_ut(k) + 0.5 + TZ_DAYS).floor() as i64
}

/// The sun's apparent longitude in degrees, 0..360, at Julian date `jd` (Meeus AA ch. 25:
/// geometric mean longitude plus the equation of centre, corrected for nutation and
/// aberration).
fn sun_longitude(jd: f64) -> f64 {
    let t = (jd - 2_451_545.0) / 36_525.0;
    let t2 = t * t;
    let l0 = 280.466_45 + 36_000.769_83 * t + 0.000_303_2 * t2;
    let m = 357.529_10 + 35_999.050_30 * t - 0.000_155_9 * t2 - 0.000_000_48 * t * t2;
    let c = (1.914_600 - 0.004_817 * t - 0.000_014 * t2) * deg_sin(m)
        + (0.019_993 - 0.000_101 * t) * deg_sin(2.0 * m)
        + 0.000_290 * deg_sin(3.0 * m);
    let omega = 125.04 - 1_934.136 * t;
    (l0 + c - 0.005_69 - 0.004_78 * deg_sin(omega)).rem_euclid(360.0)
}

/// Which 30° sector (0..12) the sun is in at the local midnight that starts day `day_jdn`.
/// A major solar term falls in a month exactly when the sector changes between the start
/// of that month and the start of the next one.
fn sun_sector(day_jdn: i64) -> u32 {
    let midnight = day_jdn as f64 - 0.5 - TZ_DAYS;
    ((sun_longitude(midnight) / 30.0).floor() as u32).min(11)
}

/// A rough index of the new moon near Julian day number `j` (can be off by one).
fn approx_new_moon_index(j: i64) -> i64 {
    ((j as f64 - NEW_MOON_EPOCH) / SYNODIC_MONTH).floor() as i64
}

/// Index of the new moon that starts lunar month 11 of the year ending in solar year `y`:
/// the month whose first day starts before the sun reaches 270° and whose successor's
/// first day starts at or after it.
fn month11_index(y: i32) -> i64 {
    let dec31 = NaiveDate::from_ymd_opt(y, 12, 31).map_or_else(
        // Years chrono cannot represent: fall back to an arithmetic estimate.
        || (f64::from(y - 1900) * 365.2425) as i64 + 2_415_385,
        jdn,
    );
    let mut k = approx_new_moon_index(dec31);
    while sun_sector(new_moon_day(k)) >= 9 {
        k -= 1;
    }
    while sun_sector(new_moon_day(k + 1)) < 9 {
        k += 1;
    }
    k
}

/// First day of a lunar month and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MonthStart {
    jdn: i64,
    year: i32,
    month: u32,
    leap: bool,
}

/// The months from month 11 of lunar year `y - 1` up to (not including) month 11 of `y`,
/// followed by the start of that next month 11 (unnamed, only to bound the last month).
fn solstice_year(y: i32) -> Vec<MonthStart> {
    let a = month11_index(y - 1);
    let b = month11_index(y);
    let count = b - a;
    let leap_offset = if count == 13 {
        // The first month after month 11 that contains no major term.
        (1..13).find(|&i| sun_sector(new_moon_day(a + i)) == sun_sector(new_moon_day(a + i + 1)))
    } else {
        None
    };
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count {
        let (n, leap) = match leap_offset {
            Some(l) if i == l => (i - 1, true),
            Some(l) if i > l => (i - 1, false),
            _ => (i, false),
        };
        // n = 0 is month 11, n = 1 month 12, n = 2 month 1 of the new year...
        let month = ((n + 10) % 12 + 1) as u32;
        let year = if month >= 11 { y - 1 } else { y };
        out.push(MonthStart {
            jdn: new_moon_day(a + i),
            year,
            month,
            leap,
        });
    }
    out
}

fn table() -> &'static [MonthStart] {
    static TABLE: OnceLock<Vec<MonthStart>> = OnceLock::new();
    TABLE.get_or_init(|| (TABLE_FIRST..=TABLE_LAST).flat_map(solstice_year).collect())
}

/// The lunar date of `date` (a solar, i.e. Gregorian, date) in Vietnam.
pub fn solar_to_lunar(date: NaiveDate) -> LunarDate {
    let j = jdn(date);
    let start = month_containing(table(), j).unwrap_or_else(|| {
        // Outside the table: the solstice years around the date always contain it.
        let y = date.year();
        let months: Vec<MonthStart> = (y - 1..=y + 1).flat_map(solstice_year).collect();
        month_containing(&months, j).expect("three solstice years cover their middle year")
    });
    LunarDate {
        year: start.year,
        month: start.month,
        day: (j - start.jdn + 1) as u32,
        leap: start.leap,
    }
}

/// The month in `months` (sorted by start) that contains day `j`, if `j` is before the
/// start of the last listed month (which serves only as a bound).
fn month_containing(months: &[MonthStart], j: i64) -> Option<MonthStart> {
    // Index of the first month starting after j.
    let after = months.partition_point(|m| m.jdn <= j);
    if after == 0 || after == months.len() {
        return None;
    }
    Some(months[after - 1])
}

/// The solar date of lunar date `l`, or `None` if there is no such date (day 30 of a
/// 29-day month, a leap flag on a month that is not leap that year, month or day out of
/// range).
pub fn lunar_to_solar(l: LunarDate) -> Option<NaiveDate> {
    if !(1..=12).contains(&l.month) || !(1..=30).contains(&l.day) {
        return None;
    }
    let (start, len) = month_bounds(l.year, l.month, l.leap)?;
    if i64::from(l.day) > len {
        return None;
    }
    from_jdn(start + i64::from(l.day) - 1)
}

/// Julian day number of the first day and the length in days of a lunar month.
fn month_bounds(year: i32, month: u32, leap: bool) -> Option<(i64, i64)> {
    let matches = |m: &MonthStart| m.year == year && m.month == month && m.leap == leap;
    let t = table();
    // Lunar year `y` spans solstice years `y` and `y + 1`; its last month needs the first
    // month of `y + 2` as a bound.
    let in_table = (TABLE_FIRST..=TABLE_LAST - 2).contains(&year);
    let local;
    let months: &[MonthStart] = if in_table {
        t
    } else {
        // Month 11 and 12 of `year` belong to solstice year `year + 1`.
        local = (year..=year + 2)
            .flat_map(solstice_year)
            .collect::<Vec<_>>();
        &local
    };
    // (year, month, leap) increases with the date: month 11 of year y - 1 comes before
    // month 1 of y, and a leap month right after the regular month it repeats.
    let key = (year, month, leap);
    let i = months.partition_point(|m| (m.year, m.month, m.leap) < key);
    if !months.get(i).is_some_and(matches) {
        return None;
    }
    let next = months.get(i + 1)?;
    Some((months[i].jdn, next.jdn - months[i].jdn))
}

/// The number of days (29 or 30) of a lunar month, or `None` if there is no such month.
pub fn month_length(year: i32, month: u32, leap: bool) -> Option<u32> {
    month_bounds(year, month, leap).map(|(_, len)| len as u32)
}

/// The leap month of lunar year `year`, if it has one (a leap month 11 or 12 counts for
/// the lunar year it is numbered in).
pub fn leap_month(year: i32) -> Option<u32> {
    (1..=12).find(|&m| month_bounds(year, m, true).is_some())
}

/// The solar date of Tết (1/1) of lunar year `year`.
pub fn tet(year: i32) -> Option<NaiveDate> {
    lunar_to_solar(LunarDate::new(year, 1, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn jdn_matches_the_j2000_epoch() {
        assert_eq!(jdn(d("2000-01-01")), 2_451_545);
        assert_eq!(from_jdn(2_451_545), Some(d("2000-01-01")));
    }

    #[test]
    fn tet_2024_and_its_eve() {
        assert_eq!(solar_to_lunar(d("2024-02-10")), LunarDate::new(2024, 1, 1));
        let eve = solar_to_lunar(d("2024-02-09"));
        assert_eq!((eve.year, eve.month, eve.leap), (2023, 12, false));
        assert_eq!(lunar_to_solar(eve), Some(d("2024-02-09")));
    }

    #[test]
    fn display_marks_leap_months() {
        assert_eq!(LunarDate::new(2024, 3, 10).to_string(), "10/3 âm lịch");
        let leap = LunarDate {
            year: 2020,
            month: 4,
            day: 15,
            leap: true,
        };
        assert_eq!(leap.to_string(), "15/4 nhuận âm lịch");
    }

    #[test]
    fn impossible_dates_are_rejected() {
        // 2020 has a leap month 4, 2024 has none.
        assert!(
            lunar_to_solar(LunarDate {
                leap: true,
                ..LunarDate::new(2020, 4, 1)
            })
            .is_some()
        );
        assert!(
            lunar_to_solar(LunarDate {
                leap: true,
                ..LunarDate::new(2024, 4, 1)
            })
            .is_none()
        );
        assert!(lunar_to_solar(LunarDate::new(2024, 13, 1)).is_none());
        assert!(lunar_to_solar(LunarDate::new(2024, 1, 0)).is_none());
        // Exactly one of day 30 existing or not, according to the month length.
        let len = month_length(2024, 1, false).unwrap();
        assert!(len == 29 || len == 30);
        assert_eq!(
            lunar_to_solar(LunarDate::new(2024, 1, 30)).is_some(),
            len == 30
        );
        assert_eq!(leap_month(2020), Some(4));
        assert_eq!(leap_month(2024), None);
    }

    #[test]
    fn dates_outside_the_table_still_convert() {
        let l = solar_to_lunar(d("1850-06-15"));
        assert_eq!(lunar_to_solar(l), Some(d("1850-06-15")));
        let l = solar_to_lunar(d("2150-06-15"));
        assert_eq!(lunar_to_solar(l), Some(d("2150-06-15")));
        // The edges of the table, on both sides.
        for s in ["1898-12-01", "2101-12-31", "2102-01-15", "2103-12-31"] {
            let l = solar_to_lunar(d(s));
            assert_eq!(lunar_to_solar(l), Some(d(s)), "{s}: {l:?}");
        }
        for y in [1899, 2100, 2101, 2102] {
            assert!(month_length(y, 12, false).is_some(), "month 12 of {y}");
        }
    }
}
