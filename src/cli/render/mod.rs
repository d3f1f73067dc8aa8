//! Everything the commands print: the plan, the log, the calendar and the check summary, as
//! text tables, CSV, JSON or iCalendar.
//!
//! Every rendering writes to a `&mut dyn Write` and returns `io::Result`, so a full disk or a
//! closed pipe is an error the command reports, never a panic. CSV fields are quoted in one
//! place ([`write_csv_row`]) and JSON objects laid out in one place ([`write_json_object`]),
//! with serde_json escaping every string.

pub mod calendar;
pub mod check;
pub mod completions;
pub mod log;
pub mod plan;
pub mod plan_ics;
pub mod simulate;
pub mod table;

pub use table::{Format, Kind, Table, View};

use crate::calendar::workdays::weekday_vi;
use crate::plan::config;
use crate::plan::planner::Nudge;
use anyhow::Context;
use chrono::DateTime;
use chrono_tz::Tz;
use std::io::{self, Write};

/// Runs `render` on a buffered standard output and flushes it; `what` names the output in
/// the error ("cannot write the plan").
pub fn to_stdout(
    what: &str,
    render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> anyhow::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    render(&mut out)
        .and_then(|()| out.flush())
        .with_context(|| crate::tr!("không ghi được {what}", "cannot write {what}"))
}

/// What `render` writes, as a string (for tests and callers that want the text).
pub fn to_string(render: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> String {
    let mut out = Vec::new();
    render(&mut out).expect("writing to memory");
    String::from_utf8(out).expect("renderings are UTF-8")
}

/// One CSV record, each field quoted when it needs to be, ended with CRLF (RFC 4180).
pub fn write_csv_row<'a>(
    w: &mut dyn Write,
    cells: impl IntoIterator<Item = &'a str>,
) -> io::Result<()> {
    let mut buf = Vec::new();
    push_csv_row(&mut buf, cells);
    w.write_all(&buf)
}

/// [`write_csv_row`] appended to `buf`: a long listing reuses one buffer and writes each
/// record at once.
pub fn push_csv_row<'a>(buf: &mut Vec<u8>, cells: impl IntoIterator<Item = &'a str>) {
    for (i, c) in cells.into_iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        push_csv_cell(buf, c, false);
    }
    buf.extend_from_slice(b"\r\n");
}

/// One cell of a CSV row, quoted when it must be; a `plain` cell is known never to need it
/// and is not searched.
pub fn push_csv_cell(buf: &mut Vec<u8>, c: &str, plain: bool) {
    if !plain && c.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        buf.push(b'"');
        buf.extend_from_slice(c.replace('"', "\"\"").as_bytes());
        buf.push(b'"');
    } else {
        buf.extend_from_slice(c.as_bytes());
    }
}

/// One row as a JSON object, an element of an array, laid out as
/// `serde_json::to_string_pretty` lays it out when the array's elements sit `indent` spaces
/// in: keys in sorted order (`order`, from [`sorted_order`]), an empty cell as `null`, a
/// cell of a [`Kind::Number`] or [`Kind::Bool`] column as a JSON number or boolean.
/// `first` says whether it is the array's first element.
pub fn write_json_object<S: AsRef<str>>(
    w: &mut dyn Write,
    first: bool,
    indent: usize,
    keys: &[&str],
    kinds: &[Kind],
    order: &[usize],
    cells: &[S],
) -> io::Result<()> {
    let mut buf = Vec::new();
    push_json_object(&mut buf, first, indent, keys, kinds, order, cells);
    w.write_all(&buf)
}

/// [`write_json_object`] appended to `buf`: a long listing reuses one buffer and writes
/// each object at once.
pub fn push_json_object<S: AsRef<str>>(
    buf: &mut Vec<u8>,
    first: bool,
    indent: usize,
    keys: &[&str],
    kinds: &[Kind],
    order: &[usize],
    cells: &[S],
) {
    let pad = |buf: &mut Vec<u8>, n: usize| buf.extend(std::iter::repeat_n(b' ', n));
    // Strings escaped as serde_json escapes them; writing to memory cannot fail.
    let string = |buf: &mut Vec<u8>, s: &str| {
        let _ = serde_json::to_writer(&mut *buf, s);
    };
    if !first {
        buf.push(b',');
    }
    buf.push(b'\n');
    pad(buf, indent);
    buf.push(b'{');
    for (i, &c) in order.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.push(b'\n');
        pad(buf, indent.saturating_add(2));
        string(buf, keys[c]);
        buf.extend_from_slice(b": ");
        let cell = cells[c].as_ref();
        let typed = match kinds.get(c) {
            Some(Kind::Number) => cell.parse::<i64>().is_ok(),
            Some(Kind::Bool) => matches!(cell, "true" | "false"),
            _ => false,
        };
        if cell.is_empty() {
            buf.extend_from_slice(b"null");
        } else if typed {
            buf.extend_from_slice(cell.as_bytes());
        } else {
            string(buf, cell);
        }
    }
    buf.push(b'\n');
    pad(buf, indent);
    buf.push(b'}');
}

/// Ends a JSON array whose elements were written with [`write_json_object`] at `indent`
/// (`empty`: none was); its `[` sits `indent - 2` spaces in.
pub fn end_json_array(w: &mut dyn Write, empty: bool, indent: usize) -> io::Result<()> {
    if empty {
        w.write_all(b"]")
    } else {
        write!(w, "\n{}]", " ".repeat(indent - 2))
    }
}

/// The column indices in the order serde_json writes the keys of an object (sorted).
pub fn sorted_order(keys: &[&str]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|i| keys[*i]);
    order
}

/// Whether an error is a write to a closed pipe: the reader (`head -1`) has what it wanted.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// A moment as people read it: `Thứ Hai 22/01/2024 08:00`.
pub fn format_local(t: &DateTime<Tz>) -> String {
    format!("{} {}", weekday(t.date_naive()), t.format("%d/%m/%Y %H:%M"))
}

/// The day of the week: `Thứ Hai` in Vietnamese, `Mon` in English.
pub fn weekday(d: chrono::NaiveDate) -> String {
    match crate::i18n::lang() {
        crate::i18n::Lang::Vi => weekday_vi(d).to_string(),
        crate::i18n::Lang::En => d.format("%a").to_string(),
    }
}

/// How far the deadline is, in the nudge's unit: `còn 3 ngày làm việc`, `hôm nay`, `quá 2 ngày`.
pub fn days_left_text(n: &Nudge) -> String {
    days_left_words(n.days_left, n.unit)
}

/// [`days_left_text`] of `days_left` days counted in `unit`.
pub fn days_left_words(days_left: i64, unit: config::Unit) -> String {
    let unit = match unit {
        config::Unit::Days => crate::t!("ngày", "day(s)"),
        config::Unit::WorkingDays => crate::t!("ngày làm việc", "working day(s)"),
    };
    match days_left {
        0 => crate::t!("hôm nay", "today").to_string(),
        d if d > 0 => crate::tr!("còn {d} {unit}", "{d} {unit} left"),
        d => {
            let d = -d;
            crate::tr!("quá {d} {unit}", "{d} {unit} late")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_what_needs_quoting() {
        let out = to_string(|w| write_csv_row(w, ["a", "b,c", "say \"hi\"", "x\ny", ""]));
        assert_eq!(out, "a,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\",\r\n");
    }

    #[test]
    fn json_objects_match_serde_pretty_printing() {
        let keys = ["b", "a", "c"];
        let kinds = [Kind::Text, Kind::Number, Kind::Bool];
        let order = sorted_order(&keys);
        let rows = [["x\"y", "1", ""], ["ngày", "-2", "true"]];
        let ours = to_string(|w| {
            w.write_all(b"[")?;
            for (i, r) in rows.iter().enumerate() {
                write_json_object(w, i == 0, 2, &keys, &kinds, &order, r)?;
            }
            end_json_array(w, rows.is_empty(), 2)
        });
        let value: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let mut m = serde_json::Map::new();
                for ((k, c), kind) in keys.iter().zip(r).zip(kinds) {
                    let v = match (c.is_empty(), kind) {
                        (true, _) => serde_json::Value::Null,
                        (false, Kind::Number) => c.parse::<i64>().unwrap().into(),
                        (false, Kind::Bool) => (*c == "true").into(),
                        (false, Kind::Text) => serde_json::Value::String(c.to_string()),
                    };
                    m.insert(k.to_string(), v);
                }
                serde_json::Value::Object(m)
            })
            .collect();
        assert_eq!(ours, serde_json::to_string_pretty(&value).unwrap());
        let empty = to_string(|w| {
            w.write_all(b"[")?;
            end_json_array(w, true, 2)
        });
        assert_eq!(
            empty,
            serde_json::to_string_pretty(&Vec::<u8>::new()).unwrap()
        );
    }
}
