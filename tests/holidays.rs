//! The civil-service calendar against the reference list of 2024–2026, and the rules alone.

use chrono::{Datelike, NaiveDate, Weekday};
use nhacviec::calendar::holidays::{official_data_years, vietnam_calendar};
use nhacviec::calendar::workdays::{DayKind, WorkCalendar};
use std::collections::BTreeSet;

const CIVIL_SERVICE: &str = include_str!("data/vn-civil-service-2024-2026.csv");

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// (weekdays off, weekend days worked) of `year` according to the calendar.
fn exceptions(cal: &WorkCalendar, year: i32) -> (BTreeSet<NaiveDate>, BTreeSet<NaiveDate>) {
    let mut off = BTreeSet::new();
    let mut worked = BTreeSet::new();
    for (date, kind) in cal.exceptions().filter(|(d, _)| d.year() == year) {
        match kind {
            DayKind::Off(note) => {
                assert!(!note.reason.trim().is_empty(), "{date} has no reason");
                off.insert(date);
            }
            DayKind::WorkedWeekend(note) => {
                assert!(!note.reason.trim().is_empty(), "{date} has no reason");
                worked.insert(date);
            }
            other => panic!("{date}: unexpected exception {other:?}"),
        }
    }
    (off, worked)
}

/// (weekdays off, weekend days worked) of `year` according to the reference CSV.
fn reference(year: i32) -> (BTreeSet<NaiveDate>, BTreeSet<NaiveDate>) {
    let mut off = BTreeSet::new();
    let mut worked = BTreeSet::new();
    for line in CIVIL_SERVICE
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
    {
        let mut f = line.splitn(4, ',');
        let date = d(f.next().unwrap());
        let weekday: Weekday = f.next().unwrap().parse().unwrap();
        assert_eq!(date.weekday(), weekday, "{line}");
        if date.year() != year {
            continue;
        }
        match f.next().unwrap() {
            "off" => assert!(off.insert(date)),
            "work" => assert!(worked.insert(date)),
            other => panic!("unknown kind {other}"),
        }
    }
    (off, worked)
}

#[test]
fn official_years_are_2024_to_2026() {
    assert_eq!(
        official_data_years().into_iter().collect::<Vec<_>>(),
        [2024, 2025, 2026]
    );
}

#[test]
fn years_2024_to_2026_equal_the_reference_exactly() {
    let cal = vietnam_calendar(2023..=2027);
    for year in 2024..=2026 {
        let (off, worked) = exceptions(&cal, year);
        let (want_off, want_worked) = reference(year);
        assert!(!want_off.is_empty());
        assert_eq!(
            off.difference(&want_off).collect::<Vec<_>>(),
            Vec::<&NaiveDate>::new(),
            "{year}: days off not in the reference"
        );
        assert_eq!(
            want_off.difference(&off).collect::<Vec<_>>(),
            Vec::<&NaiveDate>::new(),
            "{year}: reference days off missing"
        );
        assert_eq!(worked, want_worked, "{year}: Saturdays worked");
    }
}

#[test]
fn reasons_are_vietnamese_and_specific() {
    let cal = vietnam_calendar(2024..=2026);
    let reason = |s: &str| match cal.day_kind(d(s)) {
        DayKind::Off(n) | DayKind::WorkedWeekend(n) => n.reason,
        other => panic!("{s}: {other:?}"),
    };
    assert_eq!(reason("2024-02-09"), "Tết Nguyên đán (30 tháng Chạp)");
    assert_eq!(reason("2024-05-04"), "Làm bù cho ngày 29/04/2024");
    assert_eq!(reason("2026-04-27"), "Nghỉ bù Giỗ Tổ Hùng Vương");
    assert!(reason("2024-04-18").starts_with("Giỗ Tổ Hùng Vương"));
    assert!(reason("2026-11-24").starts_with("Ngày Văn hóa Việt Nam"));
}

#[test]
fn in_2023_gio_to_and_30_4_on_the_weekend_are_made_up_on_2_and_3_may() {
    let cal = vietnam_calendar(2023..=2023);
    for s in ["2023-05-01", "2023-05-02", "2023-05-03"] {
        assert!(!cal.is_working_day(d(s)), "{s} should be off");
    }
    assert!(cal.is_working_day(d("2023-05-04")));
    for s in ["2023-05-02", "2023-05-03"] {
        match cal.day_kind(d(s)) {
            DayKind::Off(n) => assert!(n.reason.starts_with("Nghỉ bù"), "{s}: {}", n.reason),
            other => panic!("{s}: {other:?}"),
        }
    }
}

#[test]
fn a_year_without_a_notice_follows_the_rules() {
    assert!(!official_data_years().contains(&2027));
    let cal = vietnam_calendar(2027..=2027);
    let (off, worked) = exceptions(&cal, 2027);
    assert!(worked.is_empty());
    // Tết 2027 is Sat 06/02: the eve (Fri 05/02), 1–4 Tết (Sat–Tue), and two make-up days
    // for the weekend (Wed 10/02, Thu 11/02).
    let tet: BTreeSet<NaiveDate> = [
        "2027-02-05",
        "2027-02-08",
        "2027-02-09",
        "2027-02-10",
        "2027-02-11",
    ]
    .into_iter()
    .map(d)
    .collect();
    assert!(tet.is_subset(&off), "Tết days off: {off:?}");
    assert!(cal.is_working_day(d("2027-02-12")));
    assert!(cal.is_working_day(d("2027-02-04")));
    let rest: BTreeSet<NaiveDate> = [
        "2027-01-01", // Fri
        "2027-04-16", // Giỗ Tổ, Fri
        "2027-04-30", // Fri
        "2027-05-03", // 1/5 is a Saturday: made up on Mon 3/5
        "2027-09-02", // Thu
        "2027-09-03", // the adjacent Friday
        "2027-11-24", // Wed
    ]
    .into_iter()
    .map(d)
    .collect();
    let expected: BTreeSet<NaiveDate> = tet.union(&rest).copied().collect();
    assert_eq!(off, expected);
}

#[test]
fn the_working_day_helpers_see_the_holidays() {
    let cal = vietnam_calendar(2024..=2024);
    // Tết 2024: off from Thu 08/02 to Wed 14/02.
    assert_eq!(
        cal.working_day_on_or_after(d("2024-02-08")),
        d("2024-02-15")
    );
    assert_eq!(cal.add_working_days(d("2024-02-07"), 1), d("2024-02-15"));
    // Sat 04/05/2024 is worked.
    assert!(cal.is_working_day(d("2024-05-04")));
    // Fri 26/04 → Mon 06/05: Thu 2, Fri 3, Sat 4 (worked) and Mon 6.
    assert_eq!(
        cal.working_days_between(d("2024-04-26"), d("2024-05-06")),
        4
    );
}

mod ics {
    use super::*;
    use nhacviec::cli::render::calendar::{CalendarFormat, entries, render};

    /// Unfolded content lines, after checking the physical lines.
    fn content_lines(ics: &str) -> Vec<String> {
        assert!(ics.ends_with("\r\n"));
        // Every line break is CRLF: no bare LF, no bare CR.
        assert_eq!(ics.matches('\n').count(), ics.matches("\r\n").count());
        assert_eq!(ics.matches('\r').count(), ics.matches("\r\n").count());
        let physical: Vec<&str> = ics.trim_end_matches("\r\n").split("\r\n").collect();
        for l in &physical {
            assert!(l.len() <= 75, "{} octets: {l}", l.len());
            assert!(!l.is_empty());
        }
        let mut out: Vec<String> = Vec::new();
        for l in physical {
            if let Some(rest) = l.strip_prefix(' ') {
                out.last_mut().expect("continuation first").push_str(rest);
            } else {
                out.push(l.to_string());
            }
        }
        out
    }

    #[test]
    fn ics_of_2024_is_structurally_valid() {
        let cal = vietnam_calendar(2024..=2024);
        let ics = render(&cal, 2024, None, CalendarFormat::Ics);
        let lines = content_lines(&ics);
        assert_eq!(lines.first().unwrap(), "BEGIN:VCALENDAR");
        assert_eq!(lines.last().unwrap(), "END:VCALENDAR");
        assert!(lines.contains(&"VERSION:2.0".to_string()));
        assert!(lines.iter().any(|l| l.starts_with("PRODID:")));

        let mut stack: Vec<String> = Vec::new();
        let mut events = Vec::new();
        let mut current: Vec<String> = Vec::new();
        for l in &lines {
            assert!(l.contains(':'), "not a content line: {l}");
            if let Some(name) = l.strip_prefix("BEGIN:") {
                stack.push(name.to_string());
                if name == "VEVENT" {
                    assert_eq!(stack, ["VCALENDAR", "VEVENT"]);
                    current.clear();
                }
            } else if let Some(name) = l.strip_prefix("END:") {
                assert_eq!(stack.pop().as_deref(), Some(name), "unbalanced END:{name}");
                if name == "VEVENT" {
                    events.push(current.clone());
                }
            } else if stack.last().map(String::as_str) == Some("VEVENT") {
                current.push(l.clone());
            }
        }
        assert!(stack.is_empty());

        let expected = entries(&cal, 2024, None);
        assert_eq!(events.len(), expected.len());
        assert_eq!(events.len(), 13);
        let mut uids = BTreeSet::new();
        for (ev, entry) in events.iter().zip(&expected) {
            let prop = |name: &str| -> Vec<&String> {
                ev.iter()
                    .filter(|l| {
                        l.starts_with(&format!("{name}:")) || l.starts_with(&format!("{name};"))
                    })
                    .collect()
            };
            for name in ["UID", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY"] {
                assert_eq!(prop(name).len(), 1, "{name} in {ev:?}");
            }
            let day = entry.date.format("%Y%m%d").to_string();
            let next = entry.date.succ_opt().unwrap().format("%Y%m%d").to_string();
            assert_eq!(
                prop("UID")[0],
                &format!("UID:{day}-nhacviec@nhacviec.invalid")
            );
            assert!(uids.insert(prop("UID")[0].clone()));
            assert_eq!(prop("DTSTART")[0], &format!("DTSTART;VALUE=DATE:{day}"));
            assert_eq!(prop("DTEND")[0], &format!("DTEND;VALUE=DATE:{next}"));
            // TEXT values never contain an unescaped comma or semicolon.
            let summary = prop("SUMMARY")[0].strip_prefix("SUMMARY:").unwrap();
            let bare = summary
                .replace("\\\\", "")
                .replace("\\,", "")
                .replace("\\;", "");
            assert!(!bare.contains(',') && !bare.contains(';'), "{summary}");
        }
        // The swapped Monday's reason has a comma, escaped in the file.
        assert!(
            lines
                .iter()
                .any(|l| l == "SUMMARY:Nghỉ: Nghỉ hoán đổi\\, làm bù thứ Bảy 04/05/2024")
        );
        // Some lines are long enough to be folded (the Vietnamese descriptions).
        assert!(ics.contains("\r\n "));
    }

    #[test]
    fn ics_of_one_month_has_only_that_month() {
        let cal = vietnam_calendar(2024..=2024);
        let ics = render(&cal, 2024, Some(5), CalendarFormat::Ics);
        let lines = content_lines(&ics);
        let starts: Vec<&String> = lines.iter().filter(|l| l.starts_with("DTSTART")).collect();
        assert_eq!(
            starts,
            ["DTSTART;VALUE=DATE:20240501", "DTSTART;VALUE=DATE:20240504"]
        );
    }
}
