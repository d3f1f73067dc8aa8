//! `schedule:`: time zone, sweep times, the sending window, catch-up.

use super::*;
use crate::plan::diag::Pos;
use crate::plan::yaml::Node;
use chrono::NaiveTime;

const SCHEDULE_KEYS: &[&str] = &["timezone", "sweeps", "window", "catch_up"];

impl Reader<'_> {
    pub(super) fn schedule(&self, node: Option<&Node>) -> Option<Schedule> {
        let m = self.map(node.unwrap_or(&EMPTY), "`schedule`", SCHEDULE_KEYS)?;
        let timezone = match m.get("timezone") {
            None => chrono_tz::Asia::Ho_Chi_Minh,
            Some(n) => {
                let s = self.text(n, "`timezone`")?;
                self.parse(&s, n.pos, "`timezone`")
                    .unwrap_or(chrono_tz::Asia::Ho_Chi_Minh)
            }
        };
        let written: Vec<(String, Pos)> = match m.get("sweeps") {
            Some(n) => self.texts(n, "`sweeps`"),
            None => vec![("0 8 * * *".to_string(), Pos::default())],
        };
        let sweeps: Vec<Sweep> = written
            .iter()
            .filter_map(|(expr, p)| self.parse(expr, *p, crate::t!("một giờ quét", "a sweep time")))
            .collect();
        if m.get("sweeps").is_some() && sweeps.is_empty() && !self.has_errors() {
            self.error(
                m.pos,
                crate::tr!(
                    "`sweeps` trống: sẽ không bao giờ gửi gì",
                    "`sweeps` is empty: nothing would ever be sent"
                ),
                crate::tr!(
                    "viết ít nhất một giờ, ví dụ `sweeps: [\"0 8 * * *\"]`",
                    "write at least one time, e.g. `sweeps: [\"0 8 * * *\"]`"
                ),
            );
        }
        let Window(window_start, window_end) = self.opt(&m, "window").unwrap_or(Window(
            NaiveTime::from_hms_opt(7, 30, 0).expect("valid"),
            NaiveTime::from_hms_opt(17, 0, 0).expect("valid"),
        ));
        for sw in &sweeps {
            if !sweep_hits_window(&sw.cron, window_start, window_end) {
                self.warn(
                    m.key_pos("sweeps").unwrap_or(m.pos),
                    crate::tr!(
                        "lần quét `{}` không bao giờ rơi vào khung giờ gửi {}–{}",
                        "the sweep `{}` never falls inside the sending window {}–{}",
                        sw.expr,
                        window_start.format("%H:%M"),
                        window_end.format("%H:%M")
                    ),
                    crate::tr!(
                        "những lần quét như vậy không gửi gì; hãy dời chúng vào trong khung giờ",
                        "such sweeps send nothing; move them into the window"
                    ),
                );
            }
        }
        let catch_up = self
            .opt(&m, "catch_up")
            .map(|Span(o)| o)
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
