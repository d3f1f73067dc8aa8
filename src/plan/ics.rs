//! iCalendar (RFC 5545): the plan's deadlines as a feed, one all-day event per task
//! occurrence and office, with alarms at the policy's reminders — the text of both
//! `nhacviec plan --format ics` and the web server's `/ics/office/ID.ics` — and the escaping
//! and line folding every `.ics` nhacviec writes shares (`calendar --format ics` too).

use std::collections::{BTreeMap, HashSet};

use chrono::{Datelike, NaiveDate, TimeZone, Utc};

use crate::calendar::workdays::WorkCalendar;
use crate::plan::config::{Config, Task, Unit};
use crate::plan::planner::{self, Kind, Role};

/// A reminder's kind and the moment the planner sends it.
type Reminder = (Kind, chrono::DateTime<Utc>);

/// (task, occurrence, office) → the reminders up to the deadline it receives.
type Alarms<'a> = BTreeMap<(&'a str, NaiveDate, &'a str), Vec<Reminder>>;

/// The feed as text; `stamp` is its DTSTAMP (when it was made). `office`/`task` keep only
/// theirs. The whole plan is written, whatever the ledger has sent: a calendar shows
/// deadlines, not what is left to send (the completions in `cfg` drop their alarms).
pub fn render(
    cfg: &Config,
    office: Option<&str>,
    task: Option<&str>,
    stamp: chrono::DateTime<Utc>,
) -> String {
    let tz = cfg.schedule.timezone;
    let year = cfg
        .plan
        .year
        .unwrap_or_else(|| stamp.with_timezone(&tz).year());
    let cal = cfg.work_calendar(year);
    let plan = plan_all(cfg, &cal, year, stamp);
    let before = alarms(&plan);

    let mut out = String::new();
    let mut put = |line: String| ics_fold(&line, &mut out);
    put("BEGIN:VCALENDAR".into());
    put("VERSION:2.0".into());
    put("PRODID:-//nhacviec//Han nhiem vu//VI".into());
    put("CALSCALE:GREGORIAN".into());
    put("METHOD:PUBLISH".into());
    let name = match office.and_then(|o| cfg.office(o)) {
        Some(o) => format!("{} – {}", cfg.plan.title, o.name),
        None => cfg.plan.title.clone(),
    };
    put(format!("X-WR-CALNAME:{}", ics_escape(&name)));
    let dtstamp = stamp.format("%Y%m%dT%H%M%SZ").to_string();
    for t in &cfg.tasks {
        if task.is_some_and(|id| id != t.id) {
            continue;
        }
        let Ok(dates) = planner::occurrences(cfg, &cal, t) else {
            continue;
        };
        let offices = t
            .lead
            .iter()
            .map(|o| (o, Role::Lead))
            .chain(t.cooperating.iter().map(|o| (o, Role::Cooperating)));
        for (o, role) in offices {
            if office.is_some_and(|id| id != o) {
                continue;
            }
            for (k, date) in dates.iter().enumerate() {
                let event = Event {
                    task: t,
                    office: o,
                    role,
                    number: k + 1,
                    date: *date,
                };
                event.write(&dtstamp, &before, &mut put);
            }
        }
    }
    put("END:VCALENDAR".into());
    out
}

/// The planner's own reminder dates: a working-day offset lands where the planner puts it,
/// counting holidays. Planned from well before the first deadline so that none is "past";
/// nothing is known as sent.
fn plan_all(
    cfg: &Config,
    cal: &WorkCalendar,
    year: i32,
    stamp: chrono::DateTime<Utc>,
) -> planner::Plan {
    let tz = cfg.schedule.timezone;
    let years = cfg.years();
    let first = years.first().copied().unwrap_or(year) - 1;
    let last = years.last().copied().unwrap_or(year) + 2;
    let from = tz
        .with_ymd_and_hms(first, 1, 1, 0, 0, 0)
        .single()
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(stamp);
    let until = tz
        .with_ymd_and_hms(last, 1, 1, 0, 0, 0)
        .single()
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(stamp);
    planner::plan(cfg, cal, from, until, &HashSet::new())
}

/// The reminders of each deadline occurrence and office. A working-day reminder the planner
/// merged into another on the same day is not repeated.
fn alarms(plan: &planner::Plan) -> Alarms<'_> {
    let mut before: Alarms = BTreeMap::new();
    for n in plan.due.iter().chain(&plan.upcoming).chain(&plan.skipped) {
        if matches!(n.kind, Kind::Before(_) | Kind::OnDay) {
            before
                .entry((&n.task, n.occurrence, &n.office))
                .or_default()
                .push((n.kind, n.send_at.with_timezone(&Utc)));
        }
    }
    before
}

/// One all-day event: a task's `number`th occurrence, on `date`, for one office.
struct Event<'a> {
    task: &'a Task,
    office: &'a str,
    role: Role,
    number: usize,
    date: NaiveDate,
}

impl Event<'_> {
    fn write(&self, dtstamp: &str, before: &Alarms, put: &mut impl FnMut(String)) {
        let (t, o, role, date) = (self.task, self.office, self.role, &self.date);
        let day = date.format("%Y%m%d");
        let next = date.succ_opt().unwrap_or(*date).format("%Y%m%d");
        put("BEGIN:VEVENT".into());
        // From ids, never dates: a deadline moved and re-imported updates the event.
        put(format!("UID:{}-{}-{}@nhacviec", t.id, self.number, o));
        put(format!("DTSTAMP:{dtstamp}"));
        put(format!("DTSTART;VALUE=DATE:{day}"));
        put(format!("DTEND;VALUE=DATE:{next}"));
        put(format!(
            "SUMMARY:{}",
            ics_escape(&format!("[{}] {} {}", role.label(), t.id, t.title))
        ));
        let done = t.done_for(o);
        put(format!(
            "DESCRIPTION:{}",
            ics_escape(&self.description(done))
        ));
        put(format!("CATEGORIES:{}", ics_escape(role.label())));
        put("TRANSP:TRANSPARENT".into());
        // A task the office has done needs no more reminding.
        if done.is_none() {
            let list = before
                .get(&(t.id.as_str(), *date, o))
                .map(Vec::as_slice)
                .unwrap_or_default();
            for (kind, at) in list {
                write_alarm(t, *kind, at, put);
            }
        }
        put("END:VEVENT".into());
    }

    fn description(&self, done: Option<NaiveDate>) -> String {
        let (t, role) = (self.task, self.role);
        let mut desc = format!("Nhiệm vụ {}: {}\n", t.id, t.title);
        if let Some(p) = &t.product {
            desc.push_str(&format!("Kết quả/sản phẩm: {p}\n"));
        }
        desc.push_str(&format!("Vai trò: {}\n", role.label()));
        desc.push_str(&format!("Tiến độ theo kế hoạch: {}", t.deadline.phrase));
        if let Some(d) = done {
            desc.push_str(&format!("\nĐã hoàn thành ngày {}", d.format("%d/%m/%Y")));
        }
        desc
    }
}

fn write_alarm(t: &Task, kind: Kind, at: &chrono::DateTime<Utc>, put: &mut impl FnMut(String)) {
    put("BEGIN:VALARM".into());
    put("ACTION:DISPLAY".into());
    match kind {
        Kind::Before(o) if o.unit == Unit::Days => put(format!("TRIGGER:-P{}D", o.n)),
        // A working-day offset has no duration, and the due-day
        // reminder may come before the day: the planner's moment.
        _ => put(format!(
            "TRIGGER;VALUE=DATE-TIME:{}",
            at.format("%Y%m%dT%H%M%SZ")
        )),
    }
    put(format!(
        "DESCRIPTION:{}",
        ics_escape(&format!(
            "Nhắc việc {} ({}): {}",
            t.id,
            kind.label(),
            t.title
        ))
    ));
    put("END:VALARM".into());
}

/// Escapes a TEXT value (RFC 5545 §3.3.11).
pub fn ics_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line at 75 octets (RFC 5545 §3.1) without splitting a UTF-8 character,
/// and ends it, and each continuation, with CRLF.
pub fn ics_fold(line: &str, out: &mut String) {
    const LIMIT: usize = 75;
    let mut used = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if used + len > LIMIT {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += len;
    }
    out.push_str("\r\n");
}
