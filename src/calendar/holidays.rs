//! Vietnamese civil-service days off: the statutory holidays, their make-up days (nghỉ bù)
//! and each year's official notice.
//!
//! Two sources are combined:
//!
//! * **Rules** (Bộ luật Lao động 2019, Điều 111–112), for every year: 1/1; Tết Âm lịch,
//!   5 days; Giỗ Tổ Hùng Vương 10/3 âm lịch; 30/4; 1/5; 2/9 and one adjacent day; from 2026
//!   Ngày Văn hóa Việt Nam 24/11. A holiday on a Saturday or Sunday is made up on the next
//!   working day that is not itself a holiday or another make-up day.
//! * **Official data** (`config/ngay-nghi-le.yaml`, embedded in the binary): the days each
//!   year's notice decides. For a year listed there, the notice's days replace the rules'
//!   choice of Tết days and of the day next to 2/9, and add the swapped weekdays off and
//!   the Saturdays worked. The fixed holidays and their make-up days still come from the
//!   rules; a make-up day the notice also lists simply coincides with the rule's.
//!
//! Without official data the Tết days are the last day of the lunar year and 1–4 Tết, and
//! the day next to 2/9 is the weekday that joins the holiday to a weekend (see
//! [`national_day_companion`]), which is what the notices of 2021–2026 chose.

use crate::calendar::lunar::{self, LunarDate};
use crate::calendar::workdays::WorkCalendar;
use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::sync::OnceLock;

/// The official notices, as shipped with the program.
const OFFICIAL_YAML: &str = include_str!("../../config/ngay-nghi-le.yaml");

/// The first year in which 24/11 (Ngày Văn hóa Việt Nam) is a day off.
const CULTURE_DAY_FROM: i32 = 2026;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OfficialFile {
    thong_bao: Vec<OfficialYear>,
}

/// What one year's notice decides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficialYear {
    /// The calendar year the notice is for.
    #[serde(rename = "nam")]
    pub year: i32,
    /// References of the documents (số hiệu văn bản), where known.
    #[serde(rename = "van_ban", default)]
    pub documents: Vec<String>,
    /// A note on where the data comes from.
    #[serde(rename = "ghi_chu", default)]
    pub note: Option<String>,
    /// Weekdays off.
    #[serde(rename = "ngay_nghi", default)]
    pub days_off: Vec<OfficialDay>,
    /// Weekend days worked.
    #[serde(rename = "ngay_lam_bu", default)]
    pub days_worked: Vec<OfficialDay>,
}

/// One day of a notice.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficialDay {
    #[serde(rename = "ngay")]
    pub date: NaiveDate,
    #[serde(rename = "ly_do")]
    pub reason: String,
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Parses and checks the official data: one entry per year, days in their year, days off
/// on weekdays, days worked on weekends, no date listed twice, no empty reason.
pub fn parse_official(yaml: &str) -> Result<BTreeMap<i32, OfficialYear>, String> {
    let file: OfficialFile = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for y in file.thong_bao {
        let mut seen = BTreeSet::new();
        for (day, want_weekend) in y
            .days_off
            .iter()
            .map(|d| (d, false))
            .chain(y.days_worked.iter().map(|d| (d, true)))
        {
            let what = if want_weekend {
                "ngay_lam_bu"
            } else {
                "ngay_nghi"
            };
            if day.date.year() != y.year {
                return Err(format!("{what} {} không thuộc năm {}", day.date, y.year));
            }
            if is_weekend(day.date) != want_weekend {
                let expected = if want_weekend {
                    "thứ Bảy hoặc Chủ nhật"
                } else {
                    "ngày thường"
                };
                return Err(format!("{what} {} phải là {expected}", day.date));
            }
            if day.reason.trim().is_empty() {
                return Err(format!("{what} {} thiếu lý do", day.date));
            }
            if !seen.insert(day.date) {
                return Err(format!("ngày {} được ghi hai lần", day.date));
            }
        }
        let year = y.year;
        if out.insert(year, y).is_some() {
            return Err(format!("năm {year} được ghi hai lần"));
        }
    }
    Ok(out)
}

/// The embedded official data (checked by the tests, so it always parses).
fn official() -> &'static BTreeMap<i32, OfficialYear> {
    static DATA: OnceLock<BTreeMap<i32, OfficialYear>> = OnceLock::new();
    DATA.get_or_init(|| {
        parse_official(OFFICIAL_YAML).expect("config/ngay-nghi-le.yaml is checked by the tests")
    })
}

/// The years for which the program ships an official notice.
pub fn official_data_years() -> BTreeSet<i32> {
    official().keys().copied().collect()
}

/// The official notice for `year`, if the program ships one.
pub fn official_year(year: i32) -> Option<&'static OfficialYear> {
    official().get(&year)
}

/// A statutory holiday computed by the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    pub date: NaiveDate,
    /// Short name, used for the make-up day ("Nghỉ bù Giỗ Tổ Hùng Vương").
    pub name: &'static str,
    /// The reason shown for the day itself.
    pub reason: String,
}

impl Holiday {
    fn new(date: NaiveDate, name: &'static str, reason: impl Into<String>) -> Self {
        Holiday {
            date,
            name,
            reason: reason.into(),
        }
    }
}

const TET: &str = "Tết Nguyên đán";
const NATIONAL_DAY: &str = "Quốc khánh";

/// "29 tháng Chạp", "mùng 1 tháng Giêng", "15/4 nhuận âm lịch".
pub fn lunar_day_name(l: LunarDate) -> String {
    match (l.month, l.leap) {
        (12, false) => format!("{} tháng Chạp", l.day),
        (1, false) if l.day <= 10 => format!("mùng {} tháng Giêng", l.day),
        (1, false) => format!("{} tháng Giêng", l.day),
        _ => l.to_string(),
    }
}

/// The last day of lunar year `year - 1` and 1–4 Tết of lunar year `year`.
fn default_tet_days(year: i32) -> Vec<NaiveDate> {
    let Some(tet) = lunar::tet(year) else {
        return Vec::new();
    };
    let Some(eve) = tet.checked_sub_days(Days::new(1)) else {
        return Vec::new();
    };
    (0..5)
        .filter_map(|i| eve.checked_add_days(Days::new(i)))
        .collect()
}

/// The day next to 2/9 that is off with it when no notice says otherwise: the weekday
/// that joins the holiday to a weekend (Mon → 3/9, Tue → 1/9, Thu → 3/9, Fri → 1/9,
/// Sat → 1/9, Sun → 3/9), and 1/9 when 2/9 is a Wednesday. These are the choices of the
/// notices of 2021–2026.
pub fn national_day_companion(year: i32) -> Option<NaiveDate> {
    let sep2 = NaiveDate::from_ymd_opt(year, 9, 2)?;
    let after = matches!(sep2.weekday(), Weekday::Mon | Weekday::Thu | Weekday::Sun);
    if after {
        sep2.succ_opt()
    } else {
        sep2.pred_opt()
    }
}

/// The statutory holidays of `year` (weekends included, make-up days not). With
/// `with_chosen_days` false the days a notice chooses (Tết, the day next to 2/9) are left
/// out, for a year whose notice lists them.
pub fn statutory_holidays(year: i32, with_chosen_days: bool) -> Vec<Holiday> {
    let ymd = |m, d| NaiveDate::from_ymd_opt(year, m, d);
    let mut out = Vec::new();
    if let Some(d) = ymd(1, 1) {
        out.push(Holiday::new(d, "Tết Dương lịch", "Tết Dương lịch"));
    }
    if with_chosen_days {
        for d in default_tet_days(year) {
            let name = lunar_day_name(lunar::solar_to_lunar(d));
            out.push(Holiday::new(d, TET, format!("{TET} ({name})")));
        }
    }
    if let Some(d) = lunar::lunar_to_solar(LunarDate::new(year, 3, 10)) {
        out.push(Holiday::new(
            d,
            "Giỗ Tổ Hùng Vương",
            "Giỗ Tổ Hùng Vương (10/3 âm lịch)",
        ));
    }
    if let Some(d) = ymd(4, 30) {
        out.push(Holiday::new(
            d,
            "Ngày Chiến thắng 30/4",
            "Ngày Giải phóng miền Nam, thống nhất đất nước (30/4)",
        ));
    }
    if let Some(d) = ymd(5, 1) {
        out.push(Holiday::new(
            d,
            "Ngày Quốc tế Lao động",
            "Ngày Quốc tế Lao động (1/5)",
        ));
    }
    if let Some(d) = ymd(9, 2) {
        out.push(Holiday::new(d, NATIONAL_DAY, "Quốc khánh (2/9)"));
    }
    if with_chosen_days && let Some(d) = national_day_companion(year) {
        out.push(Holiday::new(d, NATIONAL_DAY, "Quốc khánh (ngày liền kề)"));
    }
    if year >= CULTURE_DAY_FROM
        && let Some(d) = ymd(11, 24)
    {
        out.push(Holiday::new(
            d,
            "Ngày Văn hóa Việt Nam",
            "Ngày Văn hóa Việt Nam (24/11)",
        ));
    }
    out.sort_by_key(|h| h.date);
    out
}

/// The weekdays off of `year` by the rules: the holidays on weekdays, and for each holiday
/// on a weekend a make-up day, the next weekday that is neither a holiday nor taken by an
/// earlier make-up day.
pub fn rule_days_off(year: i32, with_chosen_days: bool) -> Vec<Holiday> {
    let holidays = statutory_holidays(year, with_chosen_days);
    let holiday_dates: BTreeSet<NaiveDate> = holidays.iter().map(|h| h.date).collect();
    let mut taken = BTreeSet::new();
    let mut out = Vec::new();
    for h in &holidays {
        if !is_weekend(h.date) {
            out.push(h.clone());
            continue;
        }
        let mut d = h.date;
        while let Some(next) = d.checked_add_days(Days::new(1)) {
            d = next;
            if !is_weekend(d) && !holiday_dates.contains(&d) && !taken.contains(&d) {
                break;
            }
        }
        if d == h.date {
            continue;
        }
        taken.insert(d);
        out.push(Holiday::new(d, h.name, format!("Nghỉ bù {}", h.name)));
    }
    out.sort_by_key(|h| h.date);
    out
}

/// The years the holiday rules are applied to: the lunar calendar's tested range and the
/// years a plan may name. A stray date outside (a typo such as `30/01/1024`) gets the plain
/// week, without computing a thousand years of Tết for it.
pub const RULE_YEARS: RangeInclusive<i32> = 1900..=2100;

/// The civil-service working calendar for `years` (within [`RULE_YEARS`]): the statutory
/// rules for every year, and each year's official notice where the program has one. The
/// clerk's own additions are applied afterwards by the caller (`add_day_off`,
/// `add_working_day`).
pub fn vietnam_calendar(years: RangeInclusive<i32>) -> WorkCalendar {
    let mut cal = WorkCalendar::weekends_only();
    let from = (*years.start()).max(*RULE_YEARS.start());
    let to = (*years.end()).min(*RULE_YEARS.end());
    for year in from..=to {
        let notice = official_year(year);
        for h in rule_days_off(year, notice.is_none()) {
            cal.add_day_off(h.date, h.reason);
        }
        if let Some(notice) = notice {
            for d in &notice.days_off {
                cal.add_day_off(d.date, d.reason.clone());
            }
            for d in &notice.days_worked {
                cal.add_working_day(d.date, d.reason.clone());
            }
        }
    }
    cal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_embedded_data_parses() {
        let data = parse_official(OFFICIAL_YAML).unwrap();
        assert_eq!(data.keys().copied().collect::<Vec<_>>(), [2024, 2025, 2026]);
        assert!(
            data[&2024]
                .documents
                .iter()
                .any(|v| v.contains("5015/TB-LĐTBXH"))
        );
    }

    #[test]
    fn bad_data_is_rejected() {
        let weekend_off = "thong_bao:\n  - nam: 2024\n    ngay_nghi:\n      - { ngay: 2024-05-04, ly_do: \"x\" }\n";
        assert!(
            parse_official(weekend_off)
                .unwrap_err()
                .contains("ngày thường")
        );
        let weekday_worked = "thong_bao:\n  - nam: 2024\n    ngay_lam_bu:\n      - { ngay: 2024-05-03, ly_do: \"x\" }\n";
        assert!(parse_official(weekday_worked).is_err());
        let wrong_year = "thong_bao:\n  - nam: 2025\n    ngay_nghi:\n      - { ngay: 2024-05-03, ly_do: \"x\" }\n";
        assert!(parse_official(wrong_year).is_err());
        let unknown = "thong_bao:\n  - nam: 2024\n    nghi: []\n";
        assert!(parse_official(unknown).is_err());
        let twice = "thong_bao:\n  - nam: 2024\n  - nam: 2024\n";
        assert!(parse_official(twice).is_err());
    }

    #[test]
    fn lunar_day_names() {
        assert_eq!(
            lunar_day_name(LunarDate::new(2023, 12, 30)),
            "30 tháng Chạp"
        );
        assert_eq!(
            lunar_day_name(LunarDate::new(2024, 1, 4)),
            "mùng 4 tháng Giêng"
        );
        assert_eq!(lunar_day_name(LunarDate::new(2024, 3, 10)), "10/3 âm lịch");
    }

    #[test]
    fn companion_of_national_day_follows_the_notices() {
        // 2021 Thu → 3/9, 2022 Fri → 1/9, 2023 Sat → 1/9, 2024 Mon → 3/9,
        // 2025 Tue → 1/9, 2026 Wed → 1/9.
        for (y, want) in [
            (2021, "2021-09-03"),
            (2022, "2022-09-01"),
            (2023, "2023-09-01"),
            (2024, "2024-09-03"),
            (2025, "2025-09-01"),
            (2026, "2026-09-01"),
        ] {
            assert_eq!(national_day_companion(y), Some(d(want)), "{y}");
        }
    }

    #[test]
    fn make_up_days_skip_holidays_and_each_other() {
        let off: Vec<NaiveDate> = rule_days_off(2023, true).iter().map(|h| h.date).collect();
        // Giỗ Tổ Sat 29/4 and 30/4 Sun; Mon 1/5 is itself a holiday.
        assert!(off.contains(&d("2023-05-01")));
        assert!(off.contains(&d("2023-05-02")));
        assert!(off.contains(&d("2023-05-03")));
        assert!(!off.contains(&d("2023-05-04")));
        // 2/9/2023 is a Saturday: Fri 1/9 and Mon 4/9.
        assert!(off.contains(&d("2023-09-01")));
        assert!(off.contains(&d("2023-09-04")));
        assert!(off.iter().all(|d| !is_weekend(*d)));
    }

    #[test]
    fn a_stray_year_costs_nothing() {
        // `30/01/1024` in a 2024 plan made the calendar compute a thousand years of Tết.
        let start = std::time::Instant::now();
        let cal = vietnam_calendar(1023..=2025);
        assert!(start.elapsed() < std::time::Duration::from_millis(300));
        assert!(cal.is_working_day(d("1024-01-30")));
        assert!(
            !cal.is_working_day(d("2024-02-12")),
            "Tết 2024 is still off"
        );
        assert_eq!(
            vietnam_calendar(i32::MIN..=i32::MAX).exceptions().count(),
            { vietnam_calendar(RULE_YEARS).exceptions().count() }
        );
    }
}
