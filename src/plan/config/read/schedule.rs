//! `schedule:`: time zone, sweep times, the sending window, catch-up.

use super::*;
use crate::plan::diag::{Diagnostic, Pos};
use crate::plan::yaml::{Node, Value};
use chrono::NaiveTime;
use chrono_tz::Tz;

const SCHEDULE_KEYS: &[&str] = &["timezone", "sweeps", "window", "catch_up"];

impl Reader<'_> {
    pub(super) fn schedule(
        &self,
        node: Option<&Node>,
        errs: &mut Vec<Diagnostic>,
    ) -> Option<Schedule> {
        let empty = Node {
            value: Value::Null,
            pos: Pos::default(),
        };
        let m = node
            .unwrap_or(&empty)
            .map("`schedule`", SCHEDULE_KEYS, errs)?;
        m.check_unknown(errs);
        let timezone = match m.get("timezone") {
            None => chrono_tz::Asia::Ho_Chi_Minh,
            Some(n) => {
                let s = n.text("`timezone`", errs)?;
                match s.parse::<Tz>() {
                    Ok(tz) => tz,
                    Err(_) => {
                        errs.push(err(
                            n.pos,
                            format!("unknown time zone `{s}`"),
                            "write `Asia/Ho_Chi_Minh`",
                        ));
                        chrono_tz::Asia::Ho_Chi_Minh
                    }
                }
            }
        };
        let written: Vec<(String, Pos)> = match m.get("sweeps") {
            Some(n) => n.text_list("`sweeps`", errs),
            None => vec![("0 8 * * *".to_string(), Pos::default())],
        };
        let mut sweeps = Vec::new();
        for (expr, p) in written {
            match parse_cron(&expr) {
                Ok(cron) => sweeps.push(Sweep { expr: expr.trim().to_string(), cron }),
                Err(e) => errs.push(err(p, format!("the sweep time `{expr}` cannot be read: {e}"), "write five fields, minute hour day month weekday, in local time: `0 8 * * *` is every day at 08:00, `30 13 * * 1-5` is 13:30 Monday to Friday")),
            }
        }
        if m.get("sweeps").is_some() && sweeps.is_empty() && !errs.iter().any(|e| e.is_error()) {
            errs.push(err(
                m.pos,
                "`sweeps` is empty: nothing would ever be sent",
                "write at least one time, e.g. `sweeps: [\"0 8 * * *\"]`",
            ));
        }
        let (mut window_start, mut window_end) = (
            NaiveTime::from_hms_opt(7, 30, 0).expect("valid"),
            NaiveTime::from_hms_opt(17, 0, 0).expect("valid"),
        );
        if let Some(n) = m.get("window")
            && let Some(s) = n.text("`window`", errs)
        {
            let parsed = s.split_once('-').and_then(|(a, b)| {
                Some((
                    NaiveTime::parse_from_str(a.trim(), "%H:%M").ok()?,
                    NaiveTime::parse_from_str(b.trim(), "%H:%M").ok()?,
                ))
            });
            match parsed {
                Some((a, b)) if a < b => (window_start, window_end) = (a, b),
                _ => errs.push(err(
                    n.pos,
                    format!("the sending window `{s}` cannot be read"),
                    "write it as `07:30-17:00` (start before end, 24-hour clock)",
                )),
            }
        }
        for sw in &sweeps {
            if !sweep_hits_window(&sw.cron, window_start, window_end) {
                errs.push(warn(
                    m.key_pos("sweeps").unwrap_or(m.pos),
                    format!(
                        "the sweep `{}` never falls inside the sending window {}–{}",
                        sw.expr,
                        window_start.format("%H:%M"),
                        window_end.format("%H:%M")
                    ),
                    "such sweeps send nothing; move them into the window",
                ));
            }
        }
        let catch_up = m
            .get("catch_up")
            .and_then(|n| parse_offset(n, "`catch_up`", errs))
            .unwrap_or(Offset::days(7));
        Some(Schedule {
            timezone,
            sweeps,
            window_start,
            window_end,
            catch_up,
        })
    }
}

fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    let fields = expr.split_whitespace().count();
    if fields != 5 {
        return Err(format!("it has {fields} fields, not 5"));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(&format!("0 {}", expr.trim()))
        .map_err(|e| e.to_string())
}

/// Whether a sweep ever runs inside the window (checked over one week of minutes-by-hour).
fn sweep_hits_window(cron: &croner::Cron, start: NaiveTime, end: NaiveTime) -> bool {
    use chrono::TimeZone;
    let Some(mut t) = chrono::Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single() else {
        return true;
    };
    for _ in 0..200 {
        match cron.find_next_occurrence(&t, false) {
            Ok(next) => {
                let time = next.time();
                if time >= start && time <= end {
                    return true;
                }
                t = next;
            }
            Err(_) => return false,
        }
    }
    false
}
