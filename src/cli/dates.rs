//! Dates and moments as a clerk types them, on every option that takes one: `2024-09-30`,
//! `30/09/2024`, `hôm nay`/`today`, `hôm qua`/`yesterday`, `ngày mai`/`tomorrow`, `-7d`
//! (seven days ago), `+7d`; a moment adds a time (`2024-09-30T08:00`, `30/09/2024 08:00`)
//! or is RFC 3339. Relative words count from the moment [`super::now_or`] read.

use super::exit::usage;
use anyhow::{Context, Result};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use unicode_normalization::UnicodeNormalization;

/// What the options accept, for error messages.
pub fn accepted() -> &'static str {
    crate::t!(
        "viết một ngày (2024-09-30 hoặc 30/09/2024), hôm nay/today, hôm qua/yesterday, -7d, \
         một giờ địa phương (2024-09-30T08:00) hoặc RFC 3339 (2024-09-30T08:00:00+07:00)",
        "write a date (2024-09-30 or 30/09/2024), hôm nay/today, hôm qua/yesterday, -7d, \
         a local time (2024-09-30T08:00) or RFC 3339 (2024-09-30T08:00:00+07:00)"
    )
}

/// A date: absolute or relative to `today`.
pub fn parse_date(s: &str, today: NaiveDate) -> Option<NaiveDate> {
    let s: String = s.trim().nfc().collect::<String>().to_lowercase();
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match s.as_str() {
        "hôm nay" | "today" => return Some(today),
        "hôm qua" | "yesterday" => return today.pred_opt(),
        "ngày mai" | "tomorrow" => return today.succ_opt(),
        _ => {}
    }
    if let Some(days) = s.strip_suffix('d')
        && (days.starts_with('-') || days.starts_with('+'))
        && let Ok(n) = days.parse::<i64>()
    {
        return today.checked_add_signed(Duration::try_days(n)?);
    }
    NaiveDate::parse_from_str(&s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(&s, "%d/%m/%Y"))
        .ok()
}

/// A date as [`parse_date`] reads it, or a usage error naming the option.
pub fn date_arg(option: &str, s: &str, today: NaiveDate) -> Result<NaiveDate> {
    parse_date(s, today).ok_or_else(|| {
        let accepted = accepted();
        usage(crate::tr!(
            "{option}: không đọc được `{s}`: {accepted}",
            "{option}: cannot read `{s}`: {accepted}"
        ))
    })
}

/// A moment: RFC 3339, a local date-time, or a date (the start of that day), in `tz`.
pub fn parse_moment(s: &str, tz: Tz, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let t = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(t) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%d/%m/%Y %H:%M:%S",
        "%d/%m/%Y %H:%M",
    ] {
        if let Ok(ndt) = NaiveDateTime::parse_from_str(t, fmt) {
            return local(ndt, tz);
        }
    }
    let today = now.with_timezone(&tz).date_naive();
    match parse_date(t, today) {
        Some(d) => local(d.and_time(NaiveTime::MIN), tz),
        None => {
            let accepted = accepted();
            Err(usage(crate::tr!(
                "không đọc được `{t}` thành một thời điểm: {accepted}",
                "cannot read `{t}` as a moment: {accepted}"
            )))
        }
    }
}

fn local(ndt: NaiveDateTime, tz: Tz) -> Result<DateTime<Utc>> {
    tz.from_local_datetime(&ndt)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .context(crate::t!(
            "giờ địa phương đó không tồn tại",
            "that local time does not exist"
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn every_way_a_clerk_writes_a_date() {
        let today = d("2024-10-07");
        for (typed, want) in [
            ("2024-09-30", "2024-09-30"),
            ("30/09/2024", "2024-09-30"),
            ("hôm nay", "2024-10-07"),
            ("Hôm  nay", "2024-10-07"),
            // NFD, as some keyboards type it.
            ("ho\u{302}m qua", "2024-10-06"),
            ("today", "2024-10-07"),
            ("yesterday", "2024-10-06"),
            ("-7d", "2024-09-30"),
            ("+1d", "2024-10-08"),
            ("ngày mai", "2024-10-08"),
        ] {
            assert_eq!(parse_date(typed, today), Some(d(want)), "{typed}");
        }
        for bad in ["31/02/2024", "7d", "hôm kia", ""] {
            assert_eq!(parse_date(bad, today), None, "{bad}");
        }
    }

    #[test]
    fn moments_are_local_and_relative_to_now() {
        let tz = chrono_tz::Asia::Ho_Chi_Minh;
        let now = Utc.with_ymd_and_hms(2024, 10, 7, 3, 0, 0).unwrap();
        let at = |s| parse_moment(s, tz, now).unwrap().to_rfc3339();
        assert_eq!(at("2024-09-30T08:00"), "2024-09-30T01:00:00+00:00");
        assert_eq!(at("30/09/2024 08:00"), "2024-09-30T01:00:00+00:00");
        assert_eq!(at("-7d"), "2024-09-29T17:00:00+00:00");
        assert_eq!(at("hôm nay"), "2024-10-06T17:00:00+00:00");
        assert_eq!(at("2024-09-30T08:00:00+07:00"), "2024-09-30T01:00:00+00:00");
        let e = parse_moment("next week", tz, now).unwrap_err();
        assert_eq!(
            super::super::exit::code_of(&e),
            super::super::exit::Exit::Usage
        );
    }
}
