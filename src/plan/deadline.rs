//! Deadline phrases as the plan writes them, and the dates they mean.
//!
//! The plan says "trước ngày 30/01/2024", "Quý II/2024", "Thường xuyên", "Sau khi Đề án được
//! phê duyệt". [`parse_phrase`] reads such a phrase into a [`Phrase`]; the configuration may add
//! what the phrase alone cannot say (the task it waits for, the rule of a periodic report, the
//! date someone else set) and the result is a [`Rule`]. The phrase itself is always kept for
//! display: people recognise "Quý II/2024", not "2024-06-30".
//!
//! Total: date arithmetic here is checked (clippy's `arithmetic_side_effects` is denied), so
//! no phrase or rule, however odd its numbers, panics.
#![deny(clippy::arithmetic_side_effects)]

use crate::calendar::workdays::WorkCalendar;
use chrono::{Datelike, Months, NaiveDate};
use regex::Regex;
use std::sync::LazyLock;
use unicode_normalization::UnicodeNormalization;

/// What a phrase says on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phrase {
    /// A date: exact, or the last day of a month, quarter or year.
    Date(NaiveDate),
    /// "N lần/năm": N evenly spaced checkpoints in the year (`None`: the plan's year).
    Checkpoints { times: u32, year: Option<i32> },
    /// "Thường xuyên": ongoing, no deadline of its own.
    Ongoing,
    /// "Theo hướng dẫn…", "Theo tiến độ…", "Theo lịch", "Theo Quyết định…": someone else sets
    /// the date; unscheduled until the clerk writes it into the config.
    SetByOthers,
    /// "Theo quy định": a deadline fixed by regulation, often periodic.
    ByRegulation,
    /// "Sau khi …": after something else is done.
    AfterOther,
}

/// How the deadline dates of a task are computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Fixed dates, in order (one for most tasks, several for checkpoints and lists).
    Dates(Vec<NaiveDate>),
    /// A periodic deadline such as the quarterly CCHC report.
    Periodic(Periodic),
    /// After task `task` is done (for every office that owes it), plus `days` calendar days.
    After { task: String, days: u32 },
    /// No date yet; the reason is shown by `plan` and `check`.
    Unscheduled(Unscheduled),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unscheduled {
    Ongoing,
    SetByOthers,
    ByRegulation,
}

impl Unscheduled {
    pub fn explain(self) -> &'static str {
        match self {
            Unscheduled::Ongoing => {
                crate::t!(
                    "việc thường xuyên, không có hạn riêng (thêm `date:` để đặt hạn)",
                    "ongoing work with no deadline of its own (add `date:` to set one)"
                )
            }
            Unscheduled::SetByOthers => {
                crate::t!(
                    "ngày do nơi khác quyết định; viết nó vào `date:` khi đã biết",
                    "the date is set by someone else; write it as `date:` once it is known"
                )
            }
            Unscheduled::ByRegulation => {
                crate::t!(
                    "theo quy định; viết `date:`, `dates:` hoặc `every:` để lên lịch",
                    "set by regulation; write `date:`, `dates:` or `every:` to schedule it"
                )
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Month,
    Quarter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayOfMonth {
    Day(u32),
    Last,
}

/// Every month or quarter: a base day (in the quarter's `month_of_quarter`-th month), then
/// `working_days_after` working days later. Khánh Hòa's CCHC reports: cut-off on the 14th
/// of the quarter's last month, report 2 working days after → 18/03, 18/06, 17/09, 17/12/2024.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periodic {
    pub every: Period,
    pub day: DayOfMonth,
    /// 1 to 3: which month of the quarter holds the base day (ignored for monthly rules).
    pub month_of_quarter: u32,
    pub working_days_after: u32,
    pub from: NaiveDate,
    pub until: NaiveDate,
}

impl Periodic {
    /// The deadlines of the rule between `from` and `until`, both inclusive (by base day),
    /// at most [`MAX_PERIODIC_DATES`] of them.
    pub fn dates(&self, cal: &WorkCalendar) -> Vec<NaiveDate> {
        let mut out = Vec::new();
        let step = match self.every {
            Period::Month => 1,
            Period::Quarter => 3,
        };
        // The first month of the period containing `from`.
        let month = self.from.month0();
        let first_month = match self.every {
            Period::Month => month,
            Period::Quarter => month.saturating_sub(month % 3),
        };
        let Some(mut month_start) =
            NaiveDate::from_ymd_opt(self.from.year(), first_month.saturating_add(1), 1)
        else {
            return out;
        };
        let in_quarter = self.month_of_quarter.clamp(1, 3).saturating_sub(1);
        while month_start <= self.until && out.len() < MAX_PERIODIC_DATES {
            let base_month = match self.every {
                Period::Month => Some(month_start),
                Period::Quarter => month_start.checked_add_months(Months::new(in_quarter)),
            };
            let Some(base_month) = base_month else { break };
            let last = last_day_of_month(base_month.year(), base_month.month());
            let base = match self.day {
                DayOfMonth::Last => last,
                DayOfMonth::Day(d) => base_month.with_day(d).unwrap_or(last),
            };
            if base >= self.from && base <= self.until {
                let due = if self.working_days_after > 0 {
                    cal.checked_add_working_days(base, self.working_days_after)
                } else {
                    Some(base)
                };
                // A deadline past the last date chrono has is no deadline.
                let Some(due) = due else { break };
                out.push(due);
            }
            let Some(next) = month_start.checked_add_months(Months::new(step)) else {
                break;
            };
            month_start = next;
        }
        out
    }
}

/// A periodic rule yields at most this many deadlines: ten years of monthly reports, thirty
/// of quarterly ones (a plan's rules span a year or a few). A rule whose `from` or `until`
/// has a year typo (0001 to 9999) stops there instead of planning ten thousand years of
/// deadlines, each with up to 400 overdue repeats.
pub const MAX_PERIODIC_DATES: usize = 120;

/// The last day of `month` (1 to 12) of `year`. Out-of-range arguments are clamped (month
/// to 1..=12, year to chrono's range), never a panic.
pub fn last_day_of_month(year: i32, month: u32) -> NaiveDate {
    let year = year.clamp(NaiveDate::MIN.year(), NaiveDate::MAX.year());
    let month = month.clamp(1, 12);
    (28..=31)
        .rev()
        .find_map(|d| NaiveDate::from_ymd_opt(year, month, d))
        .unwrap_or(if year < 0 {
            NaiveDate::MIN
        } else {
            NaiveDate::MAX
        })
}

/// `times` evenly spaced checkpoints in `year`, each the last day of a month: 2 → 30/06 and
/// 31/12, 4 → the quarter ends, 12 → every month end. `times` must divide 12.
pub fn checkpoints(times: u32, year: i32) -> Option<Vec<NaiveDate>> {
    if times == 0 || !12u32.is_multiple_of(times) {
        return None;
    }
    let step = 12u32.checked_div(times)?;
    (1..=times)
        .map(|i| Some(last_day_of_month(year, i.checked_mul(step)?)))
        .collect()
}

/// Lower case without Vietnamese diacritics ("Quý II" → "quy ii", "Đề án" → "de an"), spaces
/// collapsed: phrases are matched on this form so that "quý", "Quý" and "quy" all work.
pub fn fold(s: &str) -> String {
    // One pass and one string: a large plan folds every deadline phrase. Only a capital
    // sigma lowercases by its context (final `ς`), as `str::to_lowercase` does it.
    if s.contains('Σ') {
        return fold_by_steps(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    // A run of whitespace is one space between words, none at either end.
    let mut emit = |l: char, out: &mut String| {
        if l.is_whitespace() {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(l);
        }
    };
    let mut push = |c: char, out: &mut String| {
        if c.is_ascii() {
            // Its own lowercase, never a mark: the tables are for the other characters
            // (most of a phrase's letters, and the base letters of the others, are ASCII).
            emit(c.to_ascii_lowercase(), out);
            return;
        }
        if unicode_normalization::char::is_combining_mark(c) {
            return;
        }
        let c = match c {
            'đ' | 'Đ' => 'd',
            c => c,
        };
        for l in c.to_lowercase() {
            emit(l, out);
        }
    };
    if s.chars().all(latin) {
        // Each character decomposed on its own: the stream's reordering of combining marks
        // changes nothing when every mark is dropped and every other character is a starter,
        // as it is for ASCII and the Latin letters Vietnamese is written with. No buffer of
        // the stream's decomposition per character, which was most of the cost of a phrase.
        for c in s.chars() {
            if c.is_ascii() {
                push(c, &mut out);
            } else {
                unicode_normalization::char::decompose_canonical(c, |d| push(d, &mut out));
            }
        }
    } else {
        for c in s.nfd() {
            push(c, &mut out);
        }
    }
    out
}

/// ASCII, the Latin letters with diacritics (Latin-1 to Latin Extended-B, Latin Extended
/// Additional, where Vietnamese's letters are) and the combining diacritical marks: the
/// characters whose canonical decompositions are a starter and marks of U+0300–U+036F.
fn latin(c: char) -> bool {
    matches!(c, '\0'..='\u{24F}' | '\u{300}'..='\u{36F}' | '\u{1E00}'..='\u{1EFF}')
}

/// [`fold`] as its steps say: accents off, lowercase, whitespace runs made one space.
fn fold_by_steps(s: &str) -> String {
    let stripped: String = s
        .nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .map(|c| match c {
            'đ' | 'Đ' => 'd',
            c => c,
        })
        .collect::<String>()
        .to_lowercase();
    stripped.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The accepted forms, listed in errors.
pub const ACCEPTED_FORMS: &str = "`trước ngày 30/01/2024`, `30/01/2024`, `2024-01-30`), \
`Tháng 01/2024`, `Quý II/2024` (I–IV), `Năm 2024`, `Trong năm 2024`, `02 lần/năm 2024`, \
`Thường xuyên`, `Theo hướng dẫn…`, `Theo tiến độ…`, `Theo lịch`, `Theo Quyết định…`, \
`Theo quy định`, `Sau khi …`";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhraseError {
    pub message: String,
    pub hint: String,
}

static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:(?:truoc|cham nhat|han|den|hoan thanh truoc)\s+)?(?:ngay\s+)?(\d{1,2})/(\d{1,2})/(\d{4})$").unwrap()
});
static ISO: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(\d{4})-(\d{2})-(\d{2})$").unwrap());
static MONTH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:trong\s+)?thang\s+(\d{1,2})\s*(?:/|nam)\s*(\d{4})$").unwrap()
});
static QUARTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:trong\s+)?quy\s+(i|ii|iii|iv|1|2|3|4)\s*(?:/|nam)\s*(\d{4})$").unwrap()
});
static YEAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:trong\s+|ca\s+)?nam\s+(\d{4})$").unwrap());
static TIMES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:it nhat\s+)?(\d{1,2})\s*lan\s*/\s*nam(?:\s+(\d{4}))?$").unwrap()
});

/// The texts of the first `N` groups of `re` in `f` (each group of the patterns above
/// takes part in every match).
fn groups<'h, const N: usize>(re: &Regex, f: &'h str) -> Option<[&'h str; N]> {
    let c = re.captures(f)?;
    Some(std::array::from_fn(|i| {
        c.get(i.saturating_add(1)).map_or("", |m| m.as_str())
    }))
}

/// `s` is ASCII digits, as many as `lens` allows.
fn ascii_digits(s: &str, lens: std::ops::RangeInclusive<usize>) -> bool {
    lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// `s` is `a/y`, `a` passing `first` and `y` four ASCII digits.
fn split_year(s: &str, first: impl Fn(&str) -> bool) -> Option<[&str; 2]> {
    let (a, y) = s.split_once('/')?;
    (first(a) && ascii_digits(y, 4..=4)).then_some([a, y])
}

/// [`DATE`]'s groups of its common spellings (`truoc ngay 30/01/2024`, `15/5/2024`), one
/// space between words as [`fold`] leaves them; `None` for any other text.
fn quick_date(f: &str) -> Option<[&str; 3]> {
    let rest = ["truoc ", "cham nhat ", "han ", "den ", "hoan thanh truoc "]
        .iter()
        .find_map(|p| f.strip_prefix(p))
        .unwrap_or(f);
    let rest = rest.strip_prefix("ngay ").unwrap_or(rest);
    let (d, rest) = rest.split_once('/')?;
    let [m, y] = split_year(rest, |m| ascii_digits(m, 1..=2))?;
    ascii_digits(d, 1..=2).then_some([d, m, y])
}

/// [`ISO`]'s groups of `2024-01-30` in ASCII digits.
fn quick_iso(f: &str) -> Option<[&str; 3]> {
    let b = f.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    shape.then(|| [&f[..4], &f[5..7], &f[8..]])
}

/// [`MONTH`]'s groups of `thang 06/2024` and `trong thang 6/2024`.
fn quick_month(f: &str) -> Option<[&str; 2]> {
    let rest = f
        .strip_prefix("trong ")
        .unwrap_or(f)
        .strip_prefix("thang ")?;
    split_year(rest, |m| ascii_digits(m, 1..=2))
}

/// [`QUARTER`]'s groups of `quy ii/2024`, `quy 2/2024` and `trong quy …`.
fn quick_quarter(f: &str) -> Option<[&str; 2]> {
    let rest = f.strip_prefix("trong ").unwrap_or(f).strip_prefix("quy ")?;
    split_year(rest, |q| {
        matches!(q, "i" | "ii" | "iii" | "iv" | "1" | "2" | "3" | "4")
    })
}

/// [`YEAR`]'s group of `nam 2024`, `trong nam 2024` and `ca nam 2024`.
fn quick_year(f: &str) -> Option<[&str; 1]> {
    let rest = ["trong ", "ca "]
        .iter()
        .find_map(|p| f.strip_prefix(p))
        .unwrap_or(f);
    let y = rest.strip_prefix("nam ")?;
    ascii_digits(y, 4..=4).then_some([y])
}

fn date_or_error(y: i32, m: u32, d: u32, written: &str) -> Result<NaiveDate, PhraseError> {
    if !(1..=12).contains(&m) {
        return Err(PhraseError {
            message: crate::tr!(
                "`{written}` có tháng {m}, tháng này không có",
                "`{written}` has month {m}, which does not exist"
            ),
            hint: crate::tr!(
                "viết ngày dạng ngày/tháng/năm, ví dụ `30/01/2024`",
                "write the date as day/month/year, e.g. `30/01/2024`"
            ),
        });
    }
    NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| {
        let last = last_day_of_month(y, m).day();
        PhraseError {
            message: crate::tr!(
                "`{written}` không phải là ngày có thật: tháng {m:02}/{y} có {last} ngày",
                "`{written}` is not a real date: month {m:02}/{y} has {last} days"
            ),
            hint: crate::tr!(
                "ngày cuối của tháng đó là {last:02}/{m:02}/{y}",
                "the last day of that month is {last:02}/{m:02}/{y}"
            ),
        }
    })
}

/// "trước ngày 30/01/2024" read strictly: the work must be in before that day, so the last
/// day to deliver is the last working day before it. A bare date or "đến ngày X" includes X.
pub fn is_exclusive(phrase: &str) -> bool {
    is_exclusive_folded(&fold(phrase))
}

/// [`is_exclusive`] of a phrase already [`fold`]ed.
pub fn is_exclusive_folded(folded: &str) -> bool {
    folded.starts_with("truoc ngay ") || folded.starts_with("truoc ")
}

/// Reads a deadline phrase as the plan writes it.
pub fn parse_phrase(phrase: &str) -> Result<Phrase, PhraseError> {
    parse_phrase_folded(phrase, &fold(phrase))
}

/// [`parse_phrase`] of `phrase` whose [`fold`] is `folded`: the reader folds each phrase
/// once for this and [`is_exclusive_folded`].
pub fn parse_phrase_folded(phrase: &str, folded: &str) -> Result<Phrase, PhraseError> {
    let f = folded.trim_end_matches(['.', ';', ',']).trim();
    let num = |s: &str| s.parse::<u32>().unwrap_or(0);
    // Each pattern is tried only when the text has what it needs (a cheap test of the
    // bytes): most phrases are a month, a quarter or a year, and trying every pattern
    // before the one that matches was most of the cost of reading a phrase.
    let ends_in_digit = f.chars().next_back().is_some_and(char::is_numeric);
    // The common spellings are read by hand first (exactly as the pattern would read
    // them: the tests compare the two), the rest by the patterns.
    if let Some(c) = quick_date(f).or_else(|| {
        (ends_in_digit && f.bytes().filter(|&b| b == b'/').count() >= 2)
            .then(|| groups(&DATE, f))
            .flatten()
    }) {
        let (d, m, y) = (num(c[0]), num(c[1]), num(c[2]) as i32);
        return date_or_error(y, m, d, phrase.trim()).map(Phrase::Date);
    }
    if let Some(c) = quick_iso(f).or_else(|| {
        (ends_in_digit && f.contains('-'))
            .then(|| groups(&ISO, f))
            .flatten()
    }) {
        let (y, m, d) = (num(c[0]) as i32, num(c[1]), num(c[2]));
        return date_or_error(y, m, d, phrase.trim()).map(Phrase::Date);
    }
    if let Some(c) = quick_month(f).or_else(|| {
        (ends_in_digit && f.contains("thang"))
            .then(|| groups(&MONTH, f))
            .flatten()
    }) {
        let (m, y) = (num(c[0]), num(c[1]) as i32);
        if !(1..=12).contains(&m) {
            return Err(PhraseError {
                message: crate::tr!(
                    "`{}` ghi tháng {m}, tháng này không có",
                    "`{}` names month {m}, which does not exist",
                    phrase.trim()
                ),
                hint: crate::tr!(
                    "tháng từ 01 đến 12, ví dụ `Tháng 12/2024`",
                    "months are 01 to 12, e.g. `Tháng 12/2024`"
                ),
            });
        }
        return Ok(Phrase::Date(last_day_of_month(y, m)));
    }
    if let Some(c) = quick_quarter(f).or_else(|| {
        (ends_in_digit && f.contains("quy"))
            .then(|| groups(&QUARTER, f))
            .flatten()
    }) {
        let q = match c[0] {
            "i" | "1" => 1,
            "ii" | "2" => 2,
            "iii" | "3" => 3,
            _ => 4,
        };
        let quarter_end = match q {
            1 => 3,
            2 => 6,
            3 => 9,
            _ => 12,
        };
        return Ok(Phrase::Date(last_day_of_month(
            num(c[1]) as i32,
            quarter_end,
        )));
    }
    if let Some([y]) = quick_year(f).or_else(|| {
        (ends_in_digit && f.contains("nam"))
            .then(|| groups(&YEAR, f))
            .flatten()
    }) {
        return Ok(Phrase::Date(last_day_of_month(num(y) as i32, 12)));
    }
    if let Some(c) = f.contains("lan").then(|| TIMES.captures(f)).flatten() {
        let times = num(&c[1]);
        if times == 0 || !12u32.is_multiple_of(times) {
            return Err(PhraseError {
                message: crate::tr!(
                    "`{}`: {times} mốc không chia đều được cho 12 tháng",
                    "`{}`: {times} checkpoints cannot be spread evenly over 12 months",
                    phrase.trim()
                ),
                hint: crate::tr!(
                    "dùng 1, 2, 3, 4, 6 hoặc 12 lần một năm, hoặc liệt kê các ngày bằng `dates:`",
                    "use 1, 2, 3, 4, 6 or 12 times a year, or list the dates with `dates:`"
                ),
            });
        }
        let year = c.get(2).map(|y| num(y.as_str()) as i32);
        return Ok(Phrase::Checkpoints { times, year });
    }
    if f == "thuong xuyen" || f.starts_with("thuong xuyen ") || f == "hang ngay" {
        return Ok(Phrase::Ongoing);
    }
    if f.starts_with("theo quy dinh") || f.starts_with("dinh ky") {
        return Ok(Phrase::ByRegulation);
    }
    const OTHERS: [&str; 8] = [
        "theo huong dan",
        "theo tien do",
        "theo lich",
        "theo quyet dinh",
        "theo ke hoach",
        "theo chi dao",
        "theo yeu cau",
        "theo van ban",
    ];
    if OTHERS.iter().any(|p| f.starts_with(p)) {
        return Ok(Phrase::SetByOthers);
    }
    if f.starts_with("sau khi") {
        return Ok(Phrase::AfterOther);
    }
    Err(PhraseError {
        message: crate::tr!(
            "không đọc được hạn `{}`",
            "cannot read the deadline `{}`",
            phrase.trim()
        ),
        hint: crate::tr!(
            "viết một trong các dạng: một ngày ({ACCEPTED_FORMS}",
            "write one of: a date ({ACCEPTED_FORMS}"
        ),
    })
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_readings_capture_what_the_patterns_capture() {
        let phrases = [
            "Trước ngày 30/01/2024",
            "trước 5/1/2024",
            "Chậm nhất ngày 15/05/2024",
            "hạn 1/2/2024",
            "Đến ngày 31/12/2024.",
            "Hoàn thành trước ngày 30/6/2024",
            "ngày 27/9/2024",
            "30/01/2024",
            "30/01/20245",
            "130/01/2024",
            "30/01/2024/1",
            "trước ngày 30/01/٢٠٢٤",
            "trước  ngày\t30/01/2024",
            "2024-01-30",
            "2024-1-30",
            "2024-01-300",
            "Tháng 06/2024",
            "Trong tháng 6/2024",
            "tháng 13/2024",
            "tháng 6 năm 2024",
            "tháng 123/2024",
            "Quý II/2024",
            "quý 4/2024",
            "Trong quý iv/2024",
            "Quý V/2024",
            "quý ii / 2024",
            "quý ii năm 2024",
            "Năm 2024",
            "Trong năm 2024",
            "Cả năm 2024",
            "năm 20245",
            "trong cả năm 2024",
            "02 lần/năm 2024",
            "Thường xuyên",
            "",
        ];
        let mut quick = 0;
        for p in phrases {
            let folded = fold(p);
            let f = folded.trim_end_matches(['.', ';', ',']).trim();
            type Pair<const N: usize> = (fn(&str) -> Option<[&str; N]>, &'static LazyLock<Regex>);
            let threes: [Pair<3>; 2] = [(quick_date, &DATE), (quick_iso, &ISO)];
            let twos: [Pair<2>; 2] = [(quick_month, &MONTH), (quick_quarter, &QUARTER)];
            for (hand, re) in threes {
                if let Some(g) = hand(f) {
                    quick += 1;
                    assert_eq!(Some(g), groups(re, f), "{p}");
                }
            }
            for (hand, re) in twos {
                if let Some(g) = hand(f) {
                    quick += 1;
                    assert_eq!(Some(g), groups(re, f), "{p}");
                }
            }
            if let Some(g) = quick_year(f) {
                quick += 1;
                assert_eq!(Some(g), groups(&YEAR, f), "{p}");
            }
        }
        // Every common spelling above is read by hand.
        assert_eq!(quick, 19);
        assert_eq!(
            quick_date("truoc ngay 30/01/2024"),
            Some(["30", "01", "2024"])
        );
        assert_eq!(quick_quarter("quy iv/2024"), Some(["iv", "2024"]));
        assert_eq!(quick_year("ca nam 2024"), Some(["2024"]));
    }

    #[test]
    fn fold_in_one_pass_is_fold_by_steps() {
        for s in [
            "",
            "   ",
            "Trước ngày 30/01/2024",
            "  Quý   II/2024 ",
            "Tháng\t01\n/2024",
            "ĐỊNH KỲ Đột xuất",
            "TRONG NĂM 2024.",
            "Ǆ İstanbul ẞ Ω",
            "ΟΔΟΣ ΣΑΣ Σ",
            "a\u{3000}b\u{a0}c",
            "e\u{301}\u{323} ệ",
        ] {
            assert_eq!(fold(s), fold_by_steps(s), "{s:?}");
        }
        assert_eq!(fold(" Trước  ngày\t30/01 "), "truoc ngay 30/01");
    }

    /// The fast path, character by character, against the stream's decomposition: every
    /// character it takes, alone, after a letter, before and after combining marks (in and
    /// out of canonical order), and the first characters it leaves to the stream.
    #[test]
    fn fold_by_character_is_fold_by_steps_over_the_latin_letters() {
        let mut n = 0;
        for c in ('\0'..='\u{24F}')
            .chain('\u{300}'..='\u{36F}')
            .chain('\u{1E00}'..='\u{1EFF}')
        {
            assert!(latin(c));
            for s in [
                c.to_string(),
                format!("a{c}b"),
                format!("Q{c}\u{323}\u{301} {c}\u{301}\u{323}"),
                format!("\u{301}{c}"),
            ] {
                assert_eq!(fold(&s), fold_by_steps(&s), "{s:?}");
                n += 1;
            }
        }
        assert!(n > 3800);
        for c in [
            '\u{250}', '\u{370}', '\u{1F00}', '\u{3000}', 'Ω', '\u{FB01}',
        ] {
            assert!(!latin(c));
            let s = format!("Quý {c}\u{301}");
            assert_eq!(fold(&s), fold_by_steps(&s), "{s:?}");
        }
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn date(p: &str) -> NaiveDate {
        match parse_phrase(p) {
            Ok(Phrase::Date(d)) => d,
            other => panic!("{p}: {other:?}"),
        }
    }

    #[test]
    fn before_a_date_is_exclusive_and_a_bare_date_inclusive() {
        assert!(is_exclusive("trước ngày 30/01/2024"));
        assert!(is_exclusive("Trước 30/01/2024"));
        assert!(!is_exclusive("30/01/2024"));
        assert!(!is_exclusive("đến ngày 30/01/2024"));
        assert!(!is_exclusive("Quý II/2024"));
    }

    #[test]
    fn exact_dates_in_every_spelling() {
        assert_eq!(date("trước ngày 30/01/2024"), d("2024-01-30"));
        assert_eq!(date("Trước ngày 30/01/2024."), d("2024-01-30"));
        assert_eq!(date("30/01/2024"), d("2024-01-30"));
        assert_eq!(date("2024-01-30"), d("2024-01-30"));
        assert_eq!(date("truoc ngay 5/1/2024"), d("2024-01-05"));
        assert_eq!(date("29/02/2024"), d("2024-02-29"));
    }

    #[test]
    fn impossible_dates_say_the_month_length() {
        crate::i18n::set_for_thread(Some(crate::i18n::Lang::En));
        let e = parse_phrase("30/02/2024").unwrap_err();
        assert!(e.message.contains("has 29 days"), "{e:?}");
        let e = parse_phrase("29/02/2023").unwrap_err();
        assert!(e.message.contains("has 28 days"), "{e:?}");
        assert!(parse_phrase("01/13/2024").is_err());
        assert!(parse_phrase("2024-02-30").is_err());
    }

    #[test]
    fn months_end_on_their_last_day() {
        assert_eq!(date("Tháng 01/2024"), d("2024-01-31"));
        assert_eq!(date("Tháng 02/2024"), d("2024-02-29"));
        assert_eq!(date("Tháng 02/2025"), d("2025-02-28"));
        assert_eq!(date("Tháng 12/2024"), d("2024-12-31"));
        assert_eq!(date("tháng 4 năm 2024"), d("2024-04-30"));
        assert!(parse_phrase("Tháng 13/2024").is_err());
    }

    #[test]
    fn quarters_in_roman_and_arabic() {
        assert_eq!(date("Quý I/2024"), d("2024-03-31"));
        assert_eq!(date("Quý II/2024"), d("2024-06-30"));
        assert_eq!(date("Quý III/2024"), d("2024-09-30"));
        assert_eq!(date("Quý IV/2024"), d("2024-12-31"));
        assert_eq!(date("quy 2/2025"), d("2025-06-30"));
        assert_eq!(date("Trong quý IV năm 2024"), d("2024-12-31"));
        assert!(parse_phrase("Quý V/2024").is_err());
    }

    #[test]
    fn years() {
        assert_eq!(date("Năm 2024"), d("2024-12-31"));
        assert_eq!(date("Trong năm 2024"), d("2024-12-31"));
    }

    #[test]
    fn ongoing_and_set_by_others() {
        assert_eq!(parse_phrase("Thường xuyên"), Ok(Phrase::Ongoing));
        for p in [
            "Theo hướng dẫn",
            "Theo hướng dẫn của Văn phòng Chính phủ",
            "Theo tiến độ của Trung ương",
            "Theo tiến độ triển khai của cấp có thẩm quyền",
            "Theo lịch",
            "Theo Quyết định số 1117/QĐ-UBND ngày 19/5/2023 của Ủy ban nhân dân tỉnh",
            "Theo hướng dẫn, tiến độ của Bộ Nội vụ",
        ] {
            assert_eq!(parse_phrase(p), Ok(Phrase::SetByOthers), "{p}");
        }
        assert_eq!(parse_phrase("Theo quy định"), Ok(Phrase::ByRegulation));
        assert_eq!(
            parse_phrase("Sau khi Đề án được phê duyệt"),
            Ok(Phrase::AfterOther)
        );
    }

    #[test]
    fn times_a_year() {
        assert_eq!(
            parse_phrase("ít nhất 02 lần/năm"),
            Ok(Phrase::Checkpoints {
                times: 2,
                year: None
            })
        );
        assert_eq!(
            parse_phrase("4 lần/năm 2024"),
            Ok(Phrase::Checkpoints {
                times: 4,
                year: Some(2024)
            })
        );
        assert!(parse_phrase("5 lần/năm").is_err());
        assert_eq!(
            checkpoints(2, 2024).unwrap(),
            vec![d("2024-06-30"), d("2024-12-31")]
        );
        assert_eq!(checkpoints(4, 2024).unwrap()[0], d("2024-03-31"));
        assert_eq!(checkpoints(12, 2024).unwrap()[1], d("2024-02-29"));
    }

    #[test]
    fn unknown_phrases_quote_and_list_forms() {
        let e = parse_phrase("sớm nhất có thể").unwrap_err();
        assert!(e.message.contains("`sớm nhất có thể`"));
        assert!(e.hint.contains("Quý II/2024"));
    }

    #[test]
    fn quarterly_cchc_reports_of_khanh_hoa() {
        let rule = Periodic {
            every: Period::Quarter,
            day: DayOfMonth::Day(14),
            month_of_quarter: 3,
            working_days_after: 2,
            from: d("2024-01-01"),
            until: d("2024-12-31"),
        };
        assert_eq!(
            rule.dates(&WorkCalendar::weekends_only()),
            vec![
                d("2024-03-18"),
                d("2024-06-18"),
                d("2024-09-17"),
                d("2024-12-17")
            ]
        );
    }

    #[test]
    fn periodic_rules_cross_a_year_boundary() {
        let monthly = Periodic {
            every: Period::Month,
            day: DayOfMonth::Last,
            month_of_quarter: 1,
            working_days_after: 0,
            from: d("2024-11-15"),
            until: d("2025-02-28"),
        };
        assert_eq!(
            monthly.dates(&WorkCalendar::weekends_only()),
            vec![
                d("2024-11-30"),
                d("2024-12-31"),
                d("2025-01-31"),
                d("2025-02-28")
            ]
        );
        // The December cut-off pushed over New Year by working days lands in January.
        let quarterly = Periodic {
            every: Period::Quarter,
            day: DayOfMonth::Day(31),
            month_of_quarter: 3,
            working_days_after: 1,
            from: d("2024-10-01"),
            until: d("2025-03-31"),
        };
        assert_eq!(
            quarterly.dates(&WorkCalendar::weekends_only()),
            vec![d("2025-01-01"), d("2025-04-01")]
        );
    }

    #[test]
    fn a_periodic_rule_over_millennia_stops_at_its_cap() {
        let rule = Periodic {
            every: Period::Month,
            day: DayOfMonth::Last,
            month_of_quarter: 1,
            working_days_after: u32::MAX,
            from: d("0001-01-01"),
            until: d("9999-12-31"),
        };
        // u32::MAX working days after any base day is past chrono's last date: no deadline.
        assert!(rule.dates(&WorkCalendar::weekends_only()).is_empty());
        let rule = Periodic {
            working_days_after: 2,
            ..rule
        };
        let dates = rule.dates(&WorkCalendar::weekends_only());
        assert_eq!(dates.len(), MAX_PERIODIC_DATES);
        assert_eq!(dates[0], d("0001-02-02"));
    }

    #[test]
    fn odd_numbers_in_phrases_never_panic() {
        for p in [
            "31/12/9999",
            "00/00/0000",
            "Tháng 12/9999",
            "Quý IV/9999",
            "Năm 0000",
            "12 lần/năm 0000",
            "99 lần/năm",
        ] {
            let _ = parse_phrase(p);
        }
        assert_eq!(last_day_of_month(i32::MAX, 99), NaiveDate::MAX);
        assert_eq!(checkpoints(12, i32::MIN).unwrap().len(), 12);
    }
}
