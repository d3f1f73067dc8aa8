//! Rendering of `nhacviec calendar`: the days off and the weekend days worked of a year or
//! a month, as a text table, as JSON, or as an iCalendar (RFC 5545) file to import into a
//! calendar program.

use super::{Format, Table, to_string};
use crate::calendar::lunar::solar_to_lunar;
use crate::calendar::workdays::weekday_vi;
use crate::calendar::workdays::{DayKind, WorkCalendar};
use chrono::NaiveDate;
use serde::Serialize;
use std::io::{self, Write};
use std::str::FromStr;

/// Output format of `nhacviec calendar`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CalendarFormat {
    /// A text table for the terminal.
    #[default]
    Table,
    /// A JSON array, one object per day.
    Json,
    /// An iCalendar file (RFC 5545), one all-day event per day.
    Ics,
}

impl FromStr for CalendarFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "table" => Ok(CalendarFormat::Table),
            "json" => Ok(CalendarFormat::Json),
            "ics" | "ical" => Ok(CalendarFormat::Ics),
            other => Err(crate::tr!(
                "định dạng không hợp lệ: {other} (chọn table, json hoặc ics)",
                "invalid format: {other} (choose table, json or ics)"
            )),
        }
    }
}

/// Whether a listed day is off or worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EntryKind {
    /// A day off ("nghỉ").
    #[serde(rename = "nghỉ")]
    Off,
    /// A weekend day worked (crate::t!("làm bù", "worked")).
    #[serde(rename = "làm bù")]
    Worked,
}

impl EntryKind {
    pub fn label(self) -> &'static str {
        match self {
            EntryKind::Off => "nghỉ",
            EntryKind::Worked => crate::t!("làm bù", "worked"),
        }
    }
}

/// One listed day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CalendarEntry {
    /// ISO date (`YYYY-MM-DD` in JSON).
    pub date: NaiveDate,
    /// "Thứ Hai" … "Chủ nhật".
    pub weekday: &'static str,
    pub kind: EntryKind,
    pub reason: String,
    /// "29/12 âm lịch", "15/4 nhuận âm lịch".
    pub lunar: String,
}

/// First and last day of the period, or `None` for a month outside 1..=12 (or a year
/// chrono cannot represent).
pub fn period(year: i32, month: Option<u32>) -> Option<(NaiveDate, NaiveDate)> {
    match month {
        None => Some((
            NaiveDate::from_ymd_opt(year, 1, 1)?,
            NaiveDate::from_ymd_opt(year, 12, 31)?,
        )),
        Some(m) => {
            let first = NaiveDate::from_ymd_opt(year, m, 1)?;
            let next = if m == 12 {
                NaiveDate::from_ymd_opt(year + 1, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(year, m + 1, 1)?
            };
            Some((first, next.pred_opt()?))
        }
    }
}

/// The days off and weekend days worked of the period, in date order.
pub fn entries(cal: &WorkCalendar, year: i32, month: Option<u32>) -> Vec<CalendarEntry> {
    let Some((first, last)) = period(year, month) else {
        return Vec::new();
    };
    cal.exceptions()
        .filter(|(d, _)| (first..=last).contains(d))
        .filter_map(|(date, kind)| {
            let (kind, note) = match kind {
                DayKind::Off(n) => (EntryKind::Off, n),
                DayKind::WorkedWeekend(n) => (EntryKind::Worked, n),
                DayKind::Working | DayKind::Weekend => return None,
            };
            Some(CalendarEntry {
                date,
                weekday: weekday_vi(date),
                kind,
                reason: note.reason,
                lunar: solar_to_lunar(date).to_string(),
            })
        })
        .collect()
}

/// Writes the days off and weekend days worked of `year` (or of one month of it).
pub fn write_calendar(
    w: &mut dyn Write,
    cal: &WorkCalendar,
    year: i32,
    month: Option<u32>,
    format: CalendarFormat,
) -> io::Result<()> {
    let list = entries(cal, year, month);
    match format {
        CalendarFormat::Table => write_table(w, &list, year, month),
        CalendarFormat::Json => {
            serde_json::to_writer_pretty(&mut *w, &list)?;
            w.write_all(b"\n")
        }
        CalendarFormat::Ics => write_ics(w, &list, year, month),
    }
}

/// [`write_calendar`] into a string.
pub fn render(cal: &WorkCalendar, year: i32, month: Option<u32>, format: CalendarFormat) -> String {
    to_string(|w| write_calendar(w, cal, year, month, format))
}

fn period_name(year: i32, month: Option<u32>) -> String {
    match month {
        Some(m) => crate::tr!("tháng {m}/{year}", "month {m}/{year}"),
        None => crate::tr!("năm {year}", "{year}"),
    }
}

fn table_columns() -> [(&'static str, &'static str); 5] {
    [
        ("date", crate::t!("Ngày", "Date")),
        ("weekday", crate::t!("Thứ", "Weekday")),
        ("kind", crate::t!("Loại", "Kind")),
        ("lunar", crate::t!("Âm lịch", "Lunar date")),
        ("reason", crate::t!("Lý do", "Reason")),
    ]
}

fn write_table(
    w: &mut dyn Write,
    list: &[CalendarEntry],
    year: i32,
    month: Option<u32>,
) -> io::Result<()> {
    let name = period_name(year, month);
    if period(year, month).is_none() {
        return writeln!(
            w,
            "{}",
            crate::tr!(
                "Không có {name}: tháng phải từ 1 đến 12.",
                "There is no {name}: the month is 1 to 12."
            )
        );
    }
    writeln!(
        w,
        "{}",
        crate::tr!(
            "Ngày nghỉ và ngày làm bù {name}",
            "Days off and Saturdays worked, {name}"
        )
    )?;
    if list.is_empty() {
        return writeln!(
            w,
            "{}",
            crate::t!(
                "Không có ngày nghỉ lễ hay ngày làm bù nào ngoài thứ Bảy, Chủ nhật.",
                "No holiday or Saturday worked besides the weekends."
            )
        );
    }
    let mut table = Table::new(&table_columns());
    for e in list {
        table.push(vec![
            e.date.format("%d/%m/%Y").to_string(),
            e.weekday.to_string(),
            e.kind.label().to_string(),
            e.lunar.clone(),
            e.reason.clone(),
        ]);
    }
    table.write(w, &super::View::unlimited(Format::Table))?;
    let off = list.iter().filter(|e| e.kind == EntryKind::Off).count();
    let worked = list.len() - off;
    writeln!(
        w,
        "{}",
        crate::tr!(
            "Tổng: {off} ngày nghỉ, {worked} ngày làm bù.",
            "Total: {off} days off, {worked} Saturdays worked."
        )
    )
}

use crate::plan::ics::{ics_escape, ics_fold};

fn write_ics(
    w: &mut dyn Write,
    list: &[CalendarEntry],
    year: i32,
    month: Option<u32>,
) -> io::Result<()> {
    let mut folded = String::new();
    let mut put = |line: String| {
        folded.clear();
        ics_fold(&line, &mut folded);
        w.write_all(folded.as_bytes())
    };
    put("BEGIN:VCALENDAR".into())?;
    put("VERSION:2.0".into())?;
    put("PRODID:-//nhacviec//Lich nghi le Viet Nam//VI".into())?;
    put("CALSCALE:GREGORIAN".into())?;
    put("METHOD:PUBLISH".into())?;
    put(format!(
        "X-WR-CALNAME:{}",
        ics_escape(&format!("Ngày nghỉ và làm bù {}", period_name(year, month)))
    ))?;
    for e in list {
        let day = e.date.format("%Y%m%d");
        let next = e.date.succ_opt().unwrap_or(e.date).format("%Y%m%d");
        let what = match e.kind {
            EntryKind::Off => "Nghỉ",
            EntryKind::Worked => "Đi làm",
        };
        put("BEGIN:VEVENT".into())?;
        put(format!("UID:{day}-nhacviec@nhacviec.invalid"))?;
        // Stable output: the stamp is derived from the date, not the clock, so that
        // re-exporting the same calendar produces the same file.
        put(format!("DTSTAMP:{day}T000000Z"))?;
        put(format!("DTSTART;VALUE=DATE:{day}"))?;
        put(format!("DTEND;VALUE=DATE:{next}"))?;
        put(format!(
            "SUMMARY:{}",
            ics_escape(&format!("{what}: {}", e.reason))
        ))?;
        put(format!(
            "DESCRIPTION:{}",
            ics_escape(&format!(
                "{}, {} ({}). {}",
                e.weekday,
                e.date.format("%d/%m/%Y"),
                e.lunar,
                e.reason
            ))
        ))?;
        put(format!("CATEGORIES:{}", ics_escape(e.kind.label())))?;
        put("TRANSP:TRANSPARENT".into())?;
        put("END:VEVENT".into())?;
    }
    put("END:VCALENDAR".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn sample() -> WorkCalendar {
        let mut cal = WorkCalendar::weekends_only();
        cal.add_day_off(d("2024-04-29"), "Nghỉ hoán đổi, làm bù thứ Bảy 04/05/2024");
        cal.add_working_day(d("2024-05-04"), "Làm bù cho ngày 29/04/2024");
        cal.add_day_off(d("2024-02-09"), "Tết Nguyên đán (30 tháng Chạp)");
        cal
    }

    #[test]
    fn entries_are_limited_to_the_period() {
        let cal = sample();
        assert_eq!(entries(&cal, 2024, None).len(), 3);
        let may = entries(&cal, 2024, Some(5));
        assert_eq!(may.len(), 1);
        assert_eq!(may[0].weekday, "Thứ Bảy");
        assert_eq!(may[0].kind, EntryKind::Worked);
        assert_eq!(entries(&cal, 2024, Some(12)).len(), 0);
        assert_eq!(entries(&cal, 2024, Some(13)).len(), 0);
        assert_eq!(
            period(2024, Some(2)),
            Some((d("2024-02-01"), d("2024-02-29")))
        );
        assert_eq!(
            period(2024, Some(12)),
            Some((d("2024-12-01"), d("2024-12-31")))
        );
    }

    #[test]
    fn table_lists_weekday_kind_and_lunar_date() {
        let t = render(&sample(), 2024, Some(2), CalendarFormat::Table);
        let row = t.lines().find(|l| l.starts_with("09/02/2024")).unwrap();
        assert!(row.contains("Thứ Sáu"), "{row}");
        assert!(row.contains("nghỉ"), "{row}");
        assert!(row.contains("30/12 âm lịch"), "{row}");
        assert!(row.ends_with("Tết Nguyên đán (30 tháng Chạp)"), "{row}");
        assert!(t.contains("Tổng: 1 ngày nghỉ, 0 ngày làm bù."));
        let empty = render(&sample(), 2024, Some(12), CalendarFormat::Table);
        assert!(empty.contains("Không có ngày nghỉ lễ"));
    }

    #[test]
    fn json_uses_iso_dates() {
        let j = render(&sample(), 2024, None, CalendarFormat::Json);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), 3);
        assert_eq!(arr[0]["date"], "2024-02-09");
        assert_eq!(arr[0]["weekday"], "Thứ Sáu");
        assert_eq!(arr[0]["kind"], "nghỉ");
        assert_eq!(arr[0]["lunar"], "30/12 âm lịch");
        assert_eq!(arr[2]["kind"], "làm bù");
    }

    #[test]
    fn ics_text_is_escaped_and_folded() {
        assert_eq!(ics_escape("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
        let long = format!("SUMMARY:{}", "Tết Nguyên đán ".repeat(10));
        let mut out = String::new();
        ics_fold(&long, &mut out);
        assert!(out.ends_with("\r\n"));
        let lines: Vec<&str> = out.trim_end_matches("\r\n").split("\r\n").collect();
        assert!(lines.len() > 2);
        assert!(lines.iter().all(|l| l.len() <= 75));
        assert!(lines[1..].iter().all(|l| l.starts_with(' ')));
        // Unfolding gives the original line back.
        let unfolded: String = out.trim_end_matches("\r\n").replace("\r\n ", "");
        assert_eq!(unfolded, long);
    }

    #[test]
    fn formats_parse_from_the_command_line() {
        assert_eq!("ICS".parse::<CalendarFormat>(), Ok(CalendarFormat::Ics));
        assert_eq!("json".parse::<CalendarFormat>(), Ok(CalendarFormat::Json));
        assert!("csv".parse::<CalendarFormat>().is_err());
    }
}
