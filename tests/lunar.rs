//! The lunar calendar against the reference table of month starts, 1900–2100.

use chrono::{Datelike, Days, NaiveDate};
use nhacviec::calendar::lunar::{LunarDate, leap_month, lunar_to_solar, solar_to_lunar};

const MONTH_STARTS: &str = include_str!("data/lunar-month-starts-1900-2100.csv");

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn rows() -> Vec<(NaiveDate, LunarDate)> {
    MONTH_STARTS
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.trim().split(',').collect();
            assert_eq!(f.len(), 4, "bad row {line}");
            let leap = match f[3] {
                "0" => false,
                "1" => true,
                other => panic!("bad leap flag {other}"),
            };
            (
                d(f[0]),
                LunarDate {
                    year: f[1].parse().unwrap(),
                    month: f[2].parse().unwrap(),
                    day: 1,
                    leap,
                },
            )
        })
        .collect()
}

#[test]
fn the_table_is_complete() {
    let rows = rows();
    // 201 years of about 12.37 months.
    assert!(rows.len() > 2480, "only {} rows", rows.len());
    assert_eq!(rows.first().unwrap().0, d("1900-01-01"));
    assert!(rows.last().unwrap().0.year() == 2100);
}

#[test]
fn every_month_start_converts_to_day_one() {
    let mut wrong = Vec::new();
    for (date, expected) in rows() {
        let got = solar_to_lunar(date);
        if got != expected {
            wrong.push(format!("{date}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} mismatches:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn the_day_before_each_month_start_ends_the_previous_month() {
    let rows = rows();
    for pair in rows.windows(2) {
        let (prev_start, prev) = pair[0];
        let (start, _) = pair[1];
        let eve = start - Days::new(1);
        let got = solar_to_lunar(eve);
        let len = (start - prev_start).num_days() as u32;
        assert!(
            len == 29 || len == 30,
            "month of {prev_start} has {len} days"
        );
        assert_eq!(
            got,
            LunarDate { day: len, ..prev },
            "day before the month starting {start}"
        );
    }
    // Before the first row: 1899-12-31 is the last day of lunar month 11 of 1899.
    let first = solar_to_lunar(d("1899-12-31"));
    assert_eq!((first.year, first.month, first.leap), (1899, 11, false));
    assert!(first.day == 29 || first.day == 30);
}

#[test]
fn month_starts_and_ends_round_trip() {
    let rows = rows();
    for pair in rows.windows(2) {
        let (start, lunar) = pair[0];
        let len = (pair[1].0 - start).num_days() as u32;
        assert_eq!(lunar_to_solar(lunar), Some(start), "{lunar:?}");
        let last = LunarDate { day: len, ..lunar };
        assert_eq!(
            lunar_to_solar(last),
            Some(pair[1].0 - Days::new(1)),
            "{last:?}"
        );
        if len == 29 {
            assert_eq!(
                lunar_to_solar(LunarDate { day: 30, ..lunar }),
                None,
                "{lunar:?}"
            );
        }
        if !lunar.leap && leap_month(lunar.year) != Some(lunar.month) {
            assert_eq!(
                lunar_to_solar(LunarDate {
                    leap: true,
                    ..lunar
                }),
                None,
                "{lunar:?}"
            );
        }
    }
}

#[test]
fn every_day_of_the_range_round_trips() {
    let mut day = d("1900-01-01");
    let end = d("2100-12-31");
    let mut prev = solar_to_lunar(day);
    while day < end {
        day = day + Days::new(1);
        let l = solar_to_lunar(day);
        assert!((1..=30).contains(&l.day), "{day}: {l:?}");
        assert!(
            l.day == prev.day + 1 || l.day == 1,
            "{day}: {prev:?} then {l:?}"
        );
        prev = l;
    }
    let mut day = d("1900-01-01");
    while day <= end {
        assert_eq!(lunar_to_solar(solar_to_lunar(day)), Some(day));
        day = day + Days::new(1);
    }
}

#[test]
fn tet_and_gio_to_2020_to_2030() {
    let table = [
        (2020, "2020-01-25", "2020-04-02"),
        (2021, "2021-02-12", "2021-04-21"),
        (2022, "2022-02-01", "2022-04-10"),
        (2023, "2023-01-22", "2023-04-29"),
        (2024, "2024-02-10", "2024-04-18"),
        (2025, "2025-01-29", "2025-04-07"),
        (2026, "2026-02-17", "2026-04-26"),
        (2027, "2027-02-06", "2027-04-16"),
        (2028, "2028-01-26", "2028-04-04"),
        (2029, "2029-02-13", "2029-04-23"),
        (2030, "2030-02-02", "2030-04-12"),
    ];
    for (year, tet, gio_to) in table {
        assert_eq!(
            lunar_to_solar(LunarDate::new(year, 1, 1)),
            Some(d(tet)),
            "Tết {year}"
        );
        assert_eq!(solar_to_lunar(d(tet)), LunarDate::new(year, 1, 1));
        assert_eq!(
            lunar_to_solar(LunarDate::new(year, 3, 10)),
            Some(d(gio_to)),
            "Giỗ Tổ {year}"
        );
        assert_eq!(solar_to_lunar(d(gio_to)), LunarDate::new(year, 3, 10));
    }
}

#[test]
fn leap_months_of_2020_and_2031() {
    let leap4 = LunarDate {
        year: 2020,
        month: 4,
        day: 1,
        leap: true,
    };
    assert_eq!(lunar_to_solar(leap4), Some(d("2020-05-23")));
    assert_eq!(solar_to_lunar(d("2020-05-23")), leap4);
    let leap3 = LunarDate {
        year: 2031,
        month: 3,
        day: 1,
        leap: true,
    };
    assert_eq!(lunar_to_solar(leap3), Some(d("2031-04-21")));
    // Giỗ Tổ is in the regular month 3.
    assert_eq!(
        lunar_to_solar(LunarDate::new(2031, 3, 10)),
        Some(d("2031-04-01"))
    );
    assert_eq!(leap_month(2031), Some(3));
}

#[test]
fn days_where_the_naive_search_fails_are_day_30() {
    // The next month starts the following day; the day itself is day 30 of the month before.
    for (date, year, month) in [("2054-05-07", 2054, 3), ("2062-04-09", 2062, 2)] {
        assert_eq!(
            solar_to_lunar(d(date)),
            LunarDate::new(year, month, 30),
            "{date}"
        );
        assert_eq!(
            solar_to_lunar(d(date) + Days::new(1)),
            LunarDate::new(year, month + 1, 1)
        );
        assert_eq!(
            lunar_to_solar(LunarDate::new(year, month, 30)),
            Some(d(date))
        );
    }
}

#[test]
fn converting_a_year_of_days_is_fast() {
    // Warm the table up, then time a whole year both ways. The budget is generous enough
    // for unoptimised builds: the lookup itself is a binary search over ~2,500 months.
    let _ = solar_to_lunar(d("2024-01-01"));
    let start = std::time::Instant::now();
    let mut day = d("2024-01-01");
    let mut calls = 0u32;
    while day.year() == 2024 {
        let l = solar_to_lunar(day);
        assert_eq!(lunar_to_solar(l), Some(day));
        calls += 2;
        day = day + Days::new(1);
    }
    let per_call = start.elapsed() / calls;
    assert!(
        per_call < std::time::Duration::from_micros(100),
        "{per_call:?} per call"
    );
}
