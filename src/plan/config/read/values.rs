//! The small value parsers: one [`FromNode`] impl per kind of value a key can hold (offsets,
//! dates, booleans, numbers, durations, addresses, time zones, the sending window, sweep
//! times, the named choices). Each turns the written text into the value or a [`Problem`];
//! the [`Reader`](super::Reader) places the problem at the value and keeps going.

use crate::plan::config::{CoopDelivery, Grouping, Offset, Security, Sweep};
use crate::plan::deadline::{self, Period, Phrase};
use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use std::str::FromStr;
use std::time::Duration;

/// What is wrong with a value, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::plan::config) struct Problem {
    pub message: String,
    pub hint: String,
}

impl Problem {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// A value read from the text of one YAML scalar.
pub(in crate::plan::config) trait FromNode: Sized {
    /// `what` names the value in messages, usually the key in backticks ("`catch_up`").
    fn from_text(s: &str, what: &str) -> Result<Self, Problem>;
}

/// A date in the forms the plan uses (`30/01/2024`, `2024-01-30`), and only a date.
impl FromNode for NaiveDate {
    fn from_text(s: &str, what: &str) -> Result<Self, Problem> {
        match deadline::parse_phrase(s) {
            Ok(Phrase::Date(d)) if !s.contains(['q', 'Q', 't', 'T', 'n', 'N']) => Ok(d),
            // A date in one of the two shapes that is still wrong (31/02/2024): the phrase
            // parser says why. Anything else (`30-01-2024`) is not a date at all, and is not
            // a deadline either: `done:` and its kin take only a date.
            Err(e) if looks_like_a_date(s) => {
                Err(Problem::new(format!("{what}: {}", e.message), e.hint))
            }
            _ => Err(Problem::new(
                crate::tr!(
                    "{what} `{s}` không phải là một ngày",
                    "{what} `{s}` is not a date"
                ),
                crate::tr!(
                    "viết ngày dạng `30/01/2024` hoặc `2024-01-30`",
                    "write a date as `30/01/2024` or `2024-01-30`"
                ),
            )),
        }
    }
}

/// `dd/mm/yyyy` or `yyyy-mm-dd` by shape, whatever the numbers.
fn looks_like_a_date(s: &str) -> bool {
    let digits = |p: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit())
    };
    let s = s.trim();
    let slash: Vec<&str> = s.split('/').collect();
    let dash: Vec<&str> = s.split('-').collect();
    (slash.len() == 3
        && digits(slash[0], 1..=2)
        && digits(slash[1], 1..=2)
        && digits(slash[2], 4..=4))
        || (dash.len() == 3
            && digits(dash[0], 4..=4)
            && digits(dash[1], 1..=2)
            && digits(dash[2], 1..=2))
}

/// `14d` (calendar days) or `3wd` (working days).
impl FromNode for Offset {
    fn from_text(s: &str, what: &str) -> Result<Self, Problem> {
        s.parse::<Offset>().map_err(|e| {
            Problem::new(
                format!("{what}: {e}"),
                "write calendar days as `7d` and working days as `3wd`",
            )
        })
    }
}

impl FromNode for bool {
    fn from_text(s: &str, what: &str) -> Result<Self, Problem> {
        match s.to_lowercase().as_str() {
            "true" | "yes" | "co" | "có" => Ok(true),
            "false" | "no" | "khong" | "không" => Ok(false),
            _ => Err(Problem::new(
                crate::tr!(
                    "{what} phải là `true` hoặc `false`, không phải `{s}`",
                    "{what} must be `true` or `false`, not `{s}`"
                ),
                crate::tr!("viết `true` hoặc `false`", "write `true` or `false`"),
            )),
        }
    }
}

impl FromNode for u32 {
    fn from_text(s: &str, what: &str) -> Result<Self, Problem> {
        s.parse::<u32>().map_err(|_| {
            Problem::new(
                crate::tr!(
                    "{what} phải là một số nguyên, không phải `{s}`",
                    "{what} must be a whole number, not `{s}`"
                ),
                crate::tr!("viết một số, ví dụ `5`", "write a number such as `5`"),
            )
        })
    }
}

/// `30s`, `5m`, `2h`, `1d`.
pub fn parse_duration_text(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = s[..split].parse().ok()?;
    let unit: u64 = match s[split..].trim() {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(unit)?))
}

/// `d` within `lo..=hi`, or a problem naming the allowed range (`what` is the key in
/// backticks).
pub(in crate::plan::config) fn duration_in(
    d: Duration,
    lo: Duration,
    hi: Duration,
    what: &str,
) -> Result<Duration, Problem> {
    if (lo..=hi).contains(&d) {
        Ok(d)
    } else {
        Err(Problem::new(
            crate::tr!("{what} nằm ngoài khoảng cho phép", "{what} is out of range"),
            crate::tr!(
                "viết một khoảng thời gian từ {} đến {}",
                "write a duration from {} to {}",
                human(lo),
                human(hi)
            ),
        ))
    }
}

/// A whole duration in its largest exact unit: `1h`, `7d`, `90s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s >= 86400 && s.is_multiple_of(86400) => format!("{}d", s / 86400),
        _ if s >= 3600 && s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s >= 60 && s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// The longest reminder offset: ten years of calendar days, or of working days.
pub const MAX_OFFSET_DAYS: u32 = 3660;
pub const MAX_OFFSET_WORKING_DAYS: u32 = 2600;

/// `o` between one day and [`MAX_OFFSET_DAYS`] (or [`MAX_OFFSET_WORKING_DAYS`]).
pub(in crate::plan::config) fn offset_in_range(o: Offset, what: &str) -> Result<Offset, Problem> {
    let max = match o.unit {
        crate::plan::config::Unit::Days => MAX_OFFSET_DAYS,
        crate::plan::config::Unit::WorkingDays => MAX_OFFSET_WORKING_DAYS,
    };
    if (1..=max).contains(&o.n) {
        Ok(o)
    } else {
        Err(Problem::new(
            crate::tr!(
                "{what} `{o}` nằm ngoài khoảng cho phép",
                "{what} `{o}` is out of range"
            ),
            crate::tr!(
                "viết từ `1d` đến `{MAX_OFFSET_DAYS}d`, hoặc từ `1wd` đến `{MAX_OFFSET_WORKING_DAYS}wd`",
                "write from `1d` to `{MAX_OFFSET_DAYS}d`, or from `1wd` to `{MAX_OFFSET_WORKING_DAYS}wd`"
            ),
        ))
    }
}

/// A reminder offset, checked by [`offset_in_range`].
pub(in crate::plan::config) struct Span(pub Offset);

impl FromNode for Span {
    fn from_text(s: &str, what: &str) -> Result<Self, Problem> {
        offset_in_range(Offset::from_text(s, what)?, what).map(Span)
    }
}

impl FromNode for Duration {
    fn from_text(s: &str, what: &str) -> Result<Self, Problem> {
        parse_duration_text(s).ok_or_else(|| {
            Problem::new(
                crate::tr!(
                    "{what} `{s}` không phải là một khoảng thời gian",
                    "{what} `{s}` is not a duration"
                ),
                crate::tr!(
                    "viết một số và một đơn vị: `30s`, `5m`, `2h` hoặc `1d`",
                    "write a number and a unit: `30s`, `5m`, `2h` or `1d`"
                ),
            )
        })
    }
}

/// An email address, optionally with a display name (`Phòng Kinh tế <kt@vpubnd.example>`),
/// kept as written (trimmed).
pub(in crate::plan::config) struct Address(pub String);

impl FromNode for Address {
    fn from_text(s: &str, what: &str) -> Result<Self, Problem> {
        match lettre::message::Mailbox::from_str(s.trim()) {
            // An internationalised domain (`ủybannd.example`) is only delivered by servers
            // offering SMTPUTF8; its punycode form goes everywhere.
            Ok(mb) if !mb.email.domain().is_ascii() => {
                let domain = mb.email.domain();
                Err(Problem::new(
                    crate::tr!(
                        "{what} `{s}` có tên miền không phải ASCII `{domain}`",
                        "{what} `{s}` has a non-ASCII domain `{domain}`"
                    ),
                    match idna::domain_to_ascii(domain) {
                        Ok(ascii) => crate::tr!(
                            "viết tên miền ở dạng ASCII (punycode): `{}@{ascii}`",
                            "write the domain in its ASCII (punycode) form: `{}@{ascii}`",
                            mb.email.user()
                        ),
                        Err(_) => crate::tr!(
                            "viết tên miền ở dạng ASCII (punycode), `xn--…`",
                            "write the domain in its ASCII (punycode) form, `xn--…`"
                        ),
                    },
                ))
            }
            Ok(_) => Ok(Address(s.trim().to_string())),
            Err(_) => Err(Problem::new(
                crate::tr!(
                    "{what} `{s}` không phải là địa chỉ email hợp lệ",
                    "{what} `{s}` is not a valid email address"
                ),
                crate::tr!(
                    "viết dạng `ten@tenmien.example`, hoặc `Tên <ten@tenmien.example>`",
                    "write it as `name@domain.example`, or `Tên <name@domain.example>`"
                ),
            )),
        }
    }
}

impl FromNode for Tz {
    fn from_text(s: &str, _what: &str) -> Result<Self, Problem> {
        s.parse::<Tz>().map_err(|_| {
            Problem::new(
                crate::tr!("không có múi giờ `{s}`", "unknown time zone `{s}`"),
                crate::tr!("viết `Asia/Ho_Chi_Minh`", "write `Asia/Ho_Chi_Minh`"),
            )
        })
    }
}

/// The sending window, `07:30-17:00`: start and end in local time, start first.
pub(in crate::plan::config) struct Window(pub NaiveTime, pub NaiveTime);

impl FromNode for Window {
    fn from_text(s: &str, _what: &str) -> Result<Self, Problem> {
        let parsed = s.split_once('-').and_then(|(a, b)| {
            Some((
                NaiveTime::parse_from_str(a.trim(), "%H:%M").ok()?,
                NaiveTime::parse_from_str(b.trim(), "%H:%M").ok()?,
            ))
        });
        match parsed {
            Some((a, b)) if a < b => Ok(Window(a, b)),
            _ => Err(Problem::new(
                crate::tr!(
                    "không đọc được khung giờ gửi `{s}`",
                    "the sending window `{s}` cannot be read"
                ),
                crate::tr!(
                    "viết dạng `07:30-17:00` (giờ bắt đầu trước giờ kết thúc, đồng hồ 24 giờ)",
                    "write it as `07:30-17:00` (start before end, 24-hour clock)"
                ),
            )),
        }
    }
}

/// A sweep time: five cron fields in local time.
impl FromNode for Sweep {
    fn from_text(s: &str, _what: &str) -> Result<Self, Problem> {
        match parse_cron(s) {
            Ok(cron) => Ok(Sweep {
                expr: s.trim().to_string(),
                cron,
            }),
            Err(e) => Err(Problem::new(
                crate::tr!(
                    "không đọc được giờ quét `{s}`: {e}",
                    "the sweep time `{s}` cannot be read: {e}"
                ),
                crate::tr!(
                    "viết năm trường, phút giờ ngày tháng thứ, theo giờ địa phương: `0 8 * * *` là 08:00 mỗi ngày, `30 13 * * 1-5` là 13:30 từ thứ Hai đến thứ Sáu",
                    "write five fields, minute hour day month weekday, in local time: `0 8 * * *` is every day at 08:00, `30 13 * * 1-5` is 13:30 Monday to Friday"
                ),
            )),
        }
    }
}

fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    let fields = expr.split_whitespace().count();
    if fields != 5 {
        return Err(crate::tr!(
            "có {fields} trường, không phải 5",
            "it has {fields} fields, not 5"
        ));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(&format!("0 {}", expr.trim()))
        .map_err(|e| e.to_string())
}

impl FromNode for Grouping {
    fn from_text(s: &str, _what: &str) -> Result<Self, Problem> {
        match s {
            "digest" => Ok(Grouping::Digest),
            "per-nudge" | "per_nudge" => Ok(Grouping::PerNudge),
            other => Err(Problem::new(
                crate::tr!("không có cách gộp `{other}`", "unknown grouping `{other}`"),
                crate::tr!(
                    "viết `digest` (mỗi đơn vị một email mỗi lần quét) hoặc `per-nudge`",
                    "write `digest` (one email per office per sweep) or `per-nudge`"
                ),
            )),
        }
    }
}

impl FromNode for CoopDelivery {
    fn from_text(s: &str, _what: &str) -> Result<Self, Problem> {
        match s {
            "separate" => Ok(CoopDelivery::Separate),
            "cc" => Ok(CoopDelivery::Cc),
            other => Err(Problem::new(
                crate::tr!(
                    "không có lựa chọn `{other}` cho mail.cooperating",
                    "unknown choice `{other}` for mail.cooperating"
                ),
                crate::tr!(
                    "viết `separate` (email riêng) hoặc `cc`",
                    "write `separate` (their own email) or `cc`"
                ),
            )),
        }
    }
}

impl FromNode for Security {
    fn from_text(s: &str, _what: &str) -> Result<Self, Problem> {
        match s {
            "starttls" => Ok(Security::StartTls),
            "tls" => Ok(Security::Tls),
            "none" => Ok(Security::None),
            other => Err(Problem::new(
                crate::tr!(
                    "không có kiểu bảo mật `{other}`",
                    "unknown security `{other}`"
                ),
                crate::tr!(
                    "viết `starttls` (cổng 587), `tls` (cổng 465) hoặc `none` (kèm `allow_plaintext: true`)",
                    "write `starttls` (port 587), `tls` (port 465) or `none` (with `allow_plaintext: true`)"
                ),
            )),
        }
    }
}

/// The period of a periodic deadline: `quarter` or `month` (in Vietnamese too).
impl FromNode for Period {
    fn from_text(s: &str, _what: &str) -> Result<Self, Problem> {
        match s {
            "quarter" | "quy" | "quý" => Ok(Period::Quarter),
            "month" | "thang" | "tháng" => Ok(Period::Month),
            other => Err(Problem::new(
                crate::tr!("không có chu kỳ `{other}`", "unknown period `{other}`"),
                crate::tr!("viết `quarter` hoặc `month`", "write `quarter` or `month`"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Reader;
    use super::*;
    use crate::plan::config::Env;
    use crate::plan::diag::Pos;
    use crate::plan::yaml;
    use std::path::Path;

    const KEYS: &[&str] = &["catch_up", "grouping", "day", "timeout", "window"];

    #[test]
    fn a_done_date_in_another_shape_is_called_a_date_not_a_deadline() {
        crate::i18n::set_for_thread(Some(crate::i18n::Lang::En));
        let e = NaiveDate::from_text("30-01-2024", "`done`").unwrap_err();
        assert!(e.message.contains("is not a date"), "{}", e.message);
        assert!(!e.message.contains("deadline"), "{}", e.message);
        let e = NaiveDate::from_text("31/02/2024", "`done`").unwrap_err();
        assert!(
            e.message.contains("29"),
            "the phrase parser says why: {}",
            e.message
        );
    }

    #[test]
    fn each_key_is_read_once_and_its_problem_placed_where_it_was_written() {
        crate::i18n::set_for_thread(Some(crate::i18n::Lang::En));
        let root = yaml::parse("catch_up: 3 tuần\ngrouping: weekly\nday: 40\ntimeout: 2h\n")
            .expect("valid YAML");
        let env = Env::default();
        let r = Reader::new(Path::new("plan.yaml"), &env);
        let m = r.map(&root, "`x`", KEYS).expect("a map");
        assert_eq!(r.opt::<Offset>(&m, "catch_up"), None);
        assert_eq!(r.opt_choice::<Grouping>(&m, "grouping"), None);
        let day = r.checked(m.get("day").expect("day"), "`day`", |v: u32| match v {
            1..=31 => Ok(v),
            _ => Err(Problem::new(
                format!("day {v} is not a day of a month"),
                "1 to 31",
            )),
        });
        assert_eq!(day, None);
        assert_eq!(r.opt(&m, "timeout"), Some(Duration::from_secs(7200)));
        assert_eq!(r.opt::<Duration>(&m, "window"), None);
        let d = r.into_diagnostics();
        let got: Vec<(&str, Option<Pos>)> = d.iter().map(|d| (d.message.as_str(), d.pos)).collect();
        assert_eq!(
            got,
            vec![
                (
                    "`catch_up`: `3 tuần` has an unknown unit `tuan`",
                    Some(Pos::new(1, 11, 6))
                ),
                ("unknown grouping `weekly`", Some(Pos::new(2, 1, 8))),
                ("day 40 is not a day of a month", Some(Pos::new(3, 6, 2))),
            ]
        );
    }

    #[test]
    fn value_parsers_read_what_the_clerk_writes() {
        crate::i18n::set_for_thread(Some(crate::i18n::Lang::En));
        assert_eq!(Offset::from_text("3wd", "`x`"), Ok(Offset::working(3)));
        assert_eq!(bool::from_text("không", "`x`"), Ok(false));
        assert_eq!(
            NaiveDate::from_text("30/01/2024", "`x`"),
            Ok(NaiveDate::from_ymd_opt(2024, 1, 30).expect("valid"))
        );
        let e = NaiveDate::from_text("Quý II", "`done`").unwrap_err();
        assert_eq!(e.message, "`done` `Quý II` is not a date");
        assert!(Address::from_text("kt@vpubnd.example", "`from`").is_ok());
        let e = Address::from_text("Phòng KT <kt@ủybannd.example>", "`from`")
            .err()
            .expect("an IDN domain is refused");
        assert_eq!(
            e.message,
            "`from` `Phòng KT <kt@ủybannd.example>` has a non-ASCII domain `ủybannd.example`"
        );
        assert!(e.hint.contains("`kt@xn--"), "{}", e.hint);
        assert!(Window::from_text("17:00-07:30", "`window`").is_err());
        assert_eq!(Period::from_text("quý", "`every`"), Ok(Period::Quarter));
    }
}
