//! `nhacviec plan`'s output: the nudges due now, then the upcoming ones, then the tasks with
//! no date yet, as a text table, CSV or JSON.

use super::table::write_bom;
use super::{
    Format, Kind, Table, View, days_left_words, end_json_array, format_local, push_json_object,
    sorted_order, to_string, write_csv_row, write_json_object,
};
use crate::plan::config::{Config, Unit};
use crate::plan::planner::{self, Indexed, Nudge, Places, Plan, Upcoming};
use crate::t;
use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;
use std::io::Write;

/// The columns of `plan`: (key for JSON and CSV, title for the text table).
fn plan_columns() -> [(&'static str, &'static str); 10] {
    [
        ("send_at", t!("Gửi lúc", "Send at")),
        ("status", t!("Trạng thái", "Status")),
        ("task", t!("Nhiệm vụ", "Task")),
        ("office", t!("Đơn vị", "Office")),
        ("role", t!("Vai trò", "Role")),
        ("kind", t!("Loại", "Kind")),
        ("deadline", t!("Hạn", "Deadline")),
        (
            "deadline_phrase",
            t!("Tiến độ (kế hoạch)", "Deadline (plan)"),
        ),
        ("days_left", t!("Còn", "Left")),
        ("recipients", t!("Gửi thêm", "Also to")),
    ]
}

/// The columns the text table shows without `--wide`.
const NARROW: &[&str] = &[
    "send_at",
    "status",
    "task",
    "office",
    "kind",
    "deadline",
    "days_left",
];

/// The CLI's words for a kind of nudge: the planner's Vietnamese label, or English.
pub fn kind_label(kind: &planner::Kind) -> String {
    use crate::plan::config::{Offset, Unit};
    use planner::Kind;
    if crate::i18n::lang() == crate::i18n::Lang::Vi {
        return kind.label();
    }
    let span = |o: &Offset| match o.unit {
        Unit::Days => format!("{} day(s)", o.n),
        Unit::WorkingDays => format!("{} working day(s)", o.n),
    };
    match kind {
        Kind::Before(o) => format!("{} before", span(o)),
        Kind::OnDay => "due today".to_string(),
        Kind::Overdue(o) => format!("{} overdue", span(o)),
        Kind::EscalateHead => "to the head".to_string(),
        Kind::EscalateLeadership => "to the leadership".to_string(),
        Kind::LeadershipAgain(o) => format!("to the leadership ({} overdue)", span(o)),
    }
}

/// The CLI's words for a role (the planner's are Vietnamese, for the emails and the journal).
fn role_label(role: planner::Role) -> &'static str {
    match role {
        planner::Role::Lead => t!("chủ trì", "lead"),
        planner::Role::Cooperating => t!("phối hợp", "cooperating"),
        planner::Role::Escalation => t!("chủ trì (báo cáo cấp trên)", "lead (escalated)"),
    }
}

/// The statuses of a planned nudge, in the text table; JSON and CSV keep the English codes.
fn status_label(code: &str) -> &'static str {
    match code {
        "due now" => t!("gửi ngay", "due now"),
        "late, due now" => t!("muộn, gửi ngay", "late, due now"),
        "at next sweep" => t!("lượt quét tới", "at next sweep"),
        "late, at next sweep" => t!("muộn, lượt quét tới", "late, at next sweep"),
        _ => t!("đã lên lịch", "planned"),
    }
}

/// One row to print: a nudge, read where it lies (the plan's own nudges, or the config's
/// ids for a year's nudges handed out by place), and its status.
#[derive(Clone, Copy)]
struct RowView<'a> {
    task: &'a str,
    /// The task's deadline phrase when the nudge came with its place in `cfg.tasks` (no
    /// lookup by id).
    phrase: Option<&'a str>,
    office: &'a str,
    role: planner::Role,
    kind: planner::Kind,
    occurrence: NaiveDate,
    send_at: DateTime<Tz>,
    days_left: i64,
    unit: Unit,
    add_head: bool,
    add_leadership: bool,
    status: &'static str,
}

impl<'a> RowView<'a> {
    fn of_nudge(n: &'a Nudge, status: &'static str) -> Self {
        Self {
            task: &n.task,
            phrase: None,
            office: &n.office,
            role: n.role,
            kind: n.kind,
            occurrence: n.occurrence,
            send_at: n.send_at,
            days_left: n.days_left,
            unit: n.unit,
            add_head: n.add_head,
            add_leadership: n.add_leadership,
            status,
        }
    }

    /// `None` if a rank is not in the config (never: the ranks come from it).
    fn of_ranked(names: &'a Names, n: &Indexed, status: &'static str) -> Option<Self> {
        let (task, phrase) = names.task(n.task as usize)?;
        Some(Self {
            task,
            phrase: Some(phrase),
            office: names.office(n.office as usize)?,
            role: n.role,
            kind: n.kind,
            occurrence: n.occurrence,
            send_at: n.send_at,
            days_left: n.days_left,
            unit: n.unit,
            add_head: n.add_head,
            add_leadership: n.add_leadership,
            status,
        })
    }
}

/// The tasks' ids and deadline phrases and the offices' ids, by rank (place in id order),
/// copied side by side into one buffer: a moment's rows come in rank order, so they read it
/// front to back. For 100k tasks, reading them where they lie in the config (or by place)
/// was a cache miss per row.
struct Names {
    text: String,
    /// Per task, its id and then its phrase in `text`.
    tasks: TaskNames,
    /// Per office: where its id starts and ends.
    offices: Vec<[usize; 2]>,
}

/// Each task's id and phrase, by rank.
enum TaskNames {
    /// Each id kept in its task's record, and each distinct phrase once (a plan has a few
    /// hundred): what a row reads of its task is one 16-byte record, and those of 100,000
    /// tasks nearly fit a core's cache, where ids and phrases side by side took 2.5 MB.
    Packed {
        names: Vec<PackedName>,
        /// Where each phrase starts and ends in [`Names::text`].
        phrases: Vec<[usize; 2]>,
    },
    /// Where the id starts, where it ends (the phrase starts) and where the phrase ends,
    /// when an id is too long to pack or there are too many phrases.
    Whole(Vec<[usize; 3]>),
}

/// A task's name, packed: its id (of at most 13 bytes) and its phrase's place.
#[derive(Clone, Copy)]
struct PackedName {
    phrase: u16,
    len: u8,
    id: [u8; 13],
}

impl TaskNames {
    /// Packed if every id and the phrases fit.
    fn of(text: &str, whole: Vec<[usize; 3]>) -> Self {
        let mut places: std::collections::HashMap<&str, u16> = Default::default();
        let mut phrases: Vec<[usize; 2]> = Vec::new();
        let packed: Option<Vec<PackedName>> = whole
            .iter()
            .map(|&[start, id_end, end]| {
                let phrase = text.get(id_end..end)?;
                let place = match places.get(phrase) {
                    Some(p) => *p,
                    None => {
                        let p = u16::try_from(phrases.len()).ok()?;
                        places.insert(phrase, p);
                        phrases.push([id_end, end]);
                        p
                    }
                };
                let id = text.get(start..id_end)?.as_bytes();
                let mut name = PackedName {
                    phrase: place,
                    len: u8::try_from(id.len()).ok()?,
                    id: [0; 13],
                };
                name.id.get_mut(..id.len())?.copy_from_slice(id);
                Some(name)
            })
            .collect();
        match packed {
            Some(names) => TaskNames::Packed { names, phrases },
            None => TaskNames::Whole(whole),
        }
    }
}

impl Names {
    fn new(cfg: &Config, places: &Places) -> Self {
        Self::build(cfg, places, true)
    }

    /// With `pack`, the task names packed when they fit.
    fn build(cfg: &Config, places: &Places, pack: bool) -> Self {
        let mut text = String::new();
        let whole: Vec<[usize; 3]> = places
            .tasks
            .iter()
            .filter_map(|i| cfg.tasks.get(*i as usize))
            .map(|t| {
                let start = text.len();
                text.push_str(&t.id);
                let id_end = text.len();
                text.push_str(&t.deadline.phrase);
                [start, id_end, text.len()]
            })
            .collect();
        let tasks = if pack {
            TaskNames::of(&text, whole)
        } else {
            TaskNames::Whole(whole)
        };
        let offices = places
            .offices
            .iter()
            .filter_map(|i| cfg.offices.get(*i as usize))
            .map(|o| {
                let start = text.len();
                text.push_str(&o.id);
                [start, text.len()]
            })
            .collect();
        Self {
            text,
            tasks,
            offices,
        }
    }

    /// The id and deadline phrase of the task of rank `i`.
    fn task(&self, i: usize) -> Option<(&str, &str)> {
        match &self.tasks {
            TaskNames::Packed { names, phrases } => {
                let name = names.get(i)?;
                let id = std::str::from_utf8(name.id.get(..usize::from(name.len))?).ok()?;
                let [start, end] = *phrases.get(usize::from(name.phrase))?;
                Some((id, self.text.get(start..end)?))
            }
            TaskNames::Whole(w) => {
                let [start, id_end, end] = *w.get(i)?;
                Some((self.text.get(start..id_end)?, self.text.get(id_end..end)?))
            }
        }
    }

    /// The id of the office of rank `i`.
    fn office(&self, i: usize) -> Option<&str> {
        let [start, end] = *self.offices.get(i)?;
        self.text.get(start..end)
    }
}

/// The cells of `plan`'s rows: a year of a large plan has millions of rows, so the ids and
/// the deadline phrase are read where they lie, and the formatted cells are rewritten in
/// place, each only when its value changes (rows come in time order, so the send time and
/// deadline repeat).
struct PlanRow<'c> {
    cfg: &'c Config,
    machine: bool,
    /// The text table with `--wide`: weekdays spelled out.
    wide: bool,
    send_at: Option<DateTime<Tz>>,
    send_at_cell: String,
    occurrence: Option<NaiveDate>,
    deadline_cell: String,
    /// The task the phrase is of.
    task: Option<&'c str>,
    phrase: &'c str,
    kind: Option<planner::Kind>,
    kind_cell: String,
    /// Each kind's cell, made once: a moment's rows are in task order, so the kind
    /// changes from row to row.
    kind_cells: rustc_hash::FxHashMap<planner::Kind, String>,
    days_left: Option<(i64, Unit)>,
    days_left_cell: String,
}

impl<'c> PlanRow<'c> {
    fn new(cfg: &'c Config, machine: bool, wide: bool) -> Self {
        Self {
            cfg,
            machine,
            wide,
            send_at: None,
            send_at_cell: String::new(),
            occurrence: None,
            deadline_cell: String::new(),
            task: None,
            phrase: "",
            kind: None,
            kind_cell: String::new(),
            kind_cells: Default::default(),
            days_left: None,
            days_left_cell: String::new(),
        }
    }

    /// The row's cells, in the order of [`plan_columns`].
    fn cells<'s>(&'s mut self, n: &RowView<'c>) -> [&'s str; 10] {
        use std::fmt::Write as _;
        let machine = self.machine;
        if self.send_at != Some(n.send_at) {
            let cell = &mut self.send_at_cell;
            cell.clear();
            if machine {
                cell.push_str(&n.send_at.to_rfc3339());
            } else if self.wide {
                cell.push_str(&format_local(&n.send_at));
            } else {
                let _ = write!(cell, "{}", n.send_at.format("%d/%m/%Y %H:%M"));
            }
            self.send_at = Some(n.send_at);
        }
        if self.task != Some(n.task) {
            self.task = Some(n.task);
            let cfg = self.cfg;
            self.phrase = n
                .phrase
                .or_else(|| cfg.task(n.task).map(|t| t.deadline.phrase.as_str()))
                .unwrap_or("");
        }
        if self.kind != Some(n.kind) {
            let made = self.kind_cells.entry(n.kind).or_insert_with(|| {
                if machine {
                    n.kind.code()
                } else {
                    kind_label(&n.kind)
                }
            });
            self.kind_cell.clear();
            self.kind_cell.push_str(made);
            self.kind = Some(n.kind);
        }
        if self.occurrence != Some(n.occurrence) {
            let cell = &mut self.deadline_cell;
            cell.clear();
            if machine {
                push_iso_date(cell, n.occurrence);
            } else if !self.wide {
                let _ = write!(cell, "{}", n.occurrence.format("%d/%m/%Y"));
            } else {
                let _ = write!(
                    cell,
                    "{} {}",
                    super::weekday(n.occurrence),
                    n.occurrence.format("%d/%m/%Y")
                );
            }
            self.occurrence = Some(n.occurrence);
        }
        if self.days_left != Some((n.days_left, n.unit)) {
            let cell = &mut self.days_left_cell;
            cell.clear();
            if machine {
                push_int(cell, n.days_left);
            } else {
                cell.push_str(&days_left_words(n.days_left, n.unit));
            }
            self.days_left = Some((n.days_left, n.unit));
        }
        // JSON and CSV carry the stable codes, in either language.
        let recipients = match (n.add_head, n.add_leadership, machine) {
            (true, true, true) => "head, leadership",
            (true, false, true) => "head",
            (false, true, true) => "leadership",
            (true, true, false) => t!("trưởng đơn vị, lãnh đạo", "head, leadership"),
            (true, false, false) => t!("trưởng đơn vị", "head"),
            (false, true, false) => t!("lãnh đạo", "leadership"),
            _ => "",
        };
        [
            &self.send_at_cell,
            if machine {
                n.status
            } else {
                status_label(n.status)
            },
            n.task,
            n.office,
            if machine {
                n.role.code()
            } else {
                role_label(n.role)
            },
            &self.kind_cell,
            &self.deadline_cell,
            self.phrase,
            &self.days_left_cell,
            recipients,
        ]
    }
}

/// `date` as `%Y-%m-%d` writes it, digit by digit for the years of four digits: the
/// deadline cell changes from row to row.
fn push_iso_date(cell: &mut String, date: NaiveDate) {
    use chrono::Datelike;
    let year = date.year();
    if !(0..=9999).contains(&year) {
        use std::fmt::Write as _;
        let _ = write!(cell, "{}", date.format("%Y-%m-%d"));
        return;
    }
    let digit = |n: u32| char::from_digit(n % 10, 10).unwrap_or('0');
    let year = year.unsigned_abs();
    for d in [year / 1000, year / 100, year / 10, year] {
        cell.push(digit(d));
    }
    for n in [date.month(), date.day()] {
        cell.push('-');
        cell.push(digit(n / 10));
        cell.push(digit(n));
    }
}

/// `n` as `{}` writes it.
fn push_int(cell: &mut String, n: i64) {
    if n < 0 {
        cell.push('-');
    }
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    cell.extend(digits[at..].iter().map(|d| char::from(*d)));
}

/// The cells of a CSV row that never need quoting: the send time, role, kind, deadline
/// and days left as CSV writes them (digits, letters, `-`, `:`, `+`).
const CSV_PLAIN: [bool; 10] = [
    true, false, false, false, true, true, true, false, true, false,
];

/// [`super::push_csv_row`] of a row of `plan`, not looking in the cells that never need quoting.
fn push_plan_csv_row(buf: &mut Vec<u8>, cells: [&str; 10]) {
    for (i, (c, plain)) in cells.into_iter().zip(CSV_PLAIN).enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        super::push_csv_cell(buf, c, plain);
    }
    buf.extend_from_slice(b"\r\n");
}

/// The columns of the tasks with no date yet.
fn unscheduled_columns() -> [(&'static str, &'static str); 3] {
    [
        ("task", t!("Nhiệm vụ", "Task")),
        (
            "deadline_phrase",
            t!("Tiến độ (kế hoạch)", "Deadline (plan)"),
        ),
        ("reason", t!("Chưa có hạn vì", "No date because")),
    ]
}

/// Writes the plan: due now first, then upcoming, then the tasks with no date. CSV and
/// JSON go out row by row as the nudges are read; the text table is collected first, to
/// align its columns.
pub fn write_plan(
    w: &mut dyn Write,
    cfg: &Config,
    plan: &Plan,
    office: Option<&str>,
    task: Option<&str>,
    view: &View,
) -> std::io::Result<()> {
    let upcoming = plan
        .upcoming
        .iter()
        .map(|n| RowView::of_nudge(n, "planned"));
    write_rows(w, cfg, plan, upcoming, office, task, view)
}

/// [`write_plan`] of a plan whose upcoming nudges are handed out one at a time
/// ([`planner::plan_streamed`]): the same output, without holding them all as rows.
pub fn write_plan_streamed(
    w: &mut dyn Write,
    cfg: &Config,
    plan: &Plan,
    upcoming: Upcoming,
    office: Option<&str>,
    task: Option<&str>,
    view: &View,
) -> std::io::Result<()> {
    let names = Names::new(cfg, &Places::of(cfg));
    let upcoming = upcoming
        .into_ranked()
        .filter_map(|n| RowView::of_ranked(&names, &n, "planned"));
    write_rows(w, cfg, plan, upcoming, office, task, view)
}

fn write_rows<'n>(
    w: &mut dyn Write,
    cfg: &'n Config,
    plan: &'n Plan,
    upcoming: impl Iterator<Item = RowView<'n>>,
    office: Option<&str>,
    task: Option<&str>,
    view: &View,
) -> std::io::Result<()> {
    let format = view.format;
    let keep =
        |n: &RowView| office.is_none_or(|o| n.office == o) && task.is_none_or(|t| n.task == t);
    let machine = format != Format::Table;
    let rows = plan
        .due
        .iter()
        .map(|n| RowView::of_nudge(n, due_status(plan.sendable_now, n)))
        .chain(upcoming)
        .filter(keep);
    let unscheduled = plan
        .unscheduled
        .iter()
        .filter(|x| task.is_none_or(|t| x.task == t))
        .filter(|x| {
            office.is_none_or(|o| {
                cfg.task(&x.task)
                    .is_some_and(|t| t.lead.iter().chain(&t.cooperating).any(|i| i == o))
            })
        })
        .map(|x| [x.task.clone(), x.phrase.clone(), x.reason.clone()]);
    // One row, refilled for each nudge (see [`PlanRow`]); the helpers below share it.
    let mut out = Rows {
        row: PlanRow::new(cfg, machine, view.wide),
        buf: Vec::with_capacity(BUF),
    };
    match format {
        Format::Csv => out.write_csv(w, view, rows)?,
        Format::Json => out.write_json(w, rows, unscheduled)?,
        Format::Ics => super::plan_ics::write(w, cfg, office, task)?,
        Format::Table => out.write_table(w, view, rows, unscheduled)?,
    }
    Ok(())
}

/// The status of a nudge that is due: sent now by this sweep or by the next one.
fn due_status(sendable_now: bool, n: &Nudge) -> &'static str {
    match (sendable_now, n.late.is_late()) {
        (true, false) => "due now",
        (true, true) => "late, due now",
        (false, false) => "at next sweep",
        (false, true) => "late, at next sweep",
    }
}

/// How much of CSV or JSON is gathered before it is written.
const BUF: usize = 1 << 16;

/// The writer of the nudges' rows in one format.
struct Rows<'c> {
    row: PlanRow<'c>,
    /// The records not yet written: one buffer for the whole listing.
    buf: Vec<u8>,
}

impl<'c> Rows<'c> {
    /// Writes what is gathered once there is enough of it, or all of it (`all`).
    fn drain(&mut self, w: &mut dyn Write, all: bool) -> std::io::Result<()> {
        if all || self.buf.len() >= BUF {
            w.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn write_csv(
        &mut self,
        w: &mut dyn Write,
        view: &View,
        rows: impl Iterator<Item = RowView<'c>>,
    ) -> std::io::Result<()> {
        if view.bom {
            write_bom(w)?;
        }
        write_csv_row(w, plan_columns().iter().map(|(k, _)| *k))?;
        for n in rows {
            push_plan_csv_row(&mut self.buf, self.row.cells(&n));
            self.drain(w, false)?;
        }
        self.drain(w, true)
    }

    fn write_json(
        &mut self,
        w: &mut dyn Write,
        rows: impl Iterator<Item = RowView<'c>>,
        unscheduled: impl Iterator<Item = [String; 3]>,
    ) -> std::io::Result<()> {
        let kinds: Vec<Kind> = plan_columns()
            .iter()
            .map(|(k, _)| match *k {
                "days_left" => Kind::Number,
                _ => Kind::Text,
            })
            .collect();
        let keys: Vec<&str> = plan_columns().iter().map(|(k, _)| *k).collect();
        let order = sorted_order(&keys);
        w.write_all(b"{\n  \"nudges\": [")?;
        let mut first = true;
        for n in rows {
            let cells = self.row.cells(&n);
            push_json_object(&mut self.buf, first, 4, &keys, &kinds, &order, &cells);
            self.drain(w, false)?;
            first = false;
        }
        self.drain(w, true)?;
        end_json_array(w, first, 4)?;
        w.write_all(b",\n")?;
        let keys: Vec<&str> = unscheduled_columns().iter().map(|(k, _)| *k).collect();
        let order = sorted_order(&keys);
        w.write_all(b"  \"unscheduled\": [")?;
        let mut first = true;
        for cells in unscheduled {
            write_json_object(w, first, 4, &keys, &[], &order, &cells)?;
            first = false;
        }
        end_json_array(w, first, 4)?;
        w.write_all(b"\n}\n")
    }

    fn write_table(
        &mut self,
        w: &mut dyn Write,
        view: &View,
        rows: impl Iterator<Item = RowView<'c>>,
        unscheduled: impl Iterator<Item = [String; 3]>,
    ) -> std::io::Result<()> {
        let mut t = Table::new(&plan_columns())
            .narrow(NARROW)
            .whole(&["send_at", "task", "office", "deadline"]);
        for n in rows {
            t.push(self.row.cells(&n).map(String::from).to_vec());
        }
        let mut u = Table::new(&unscheduled_columns()).whole(&["task"]);
        for cells in unscheduled {
            u.push(cells.to_vec());
        }
        if t.is_empty() {
            writeln!(w, "{}", text::no_nudges())?;
        } else {
            t.write(w, view)?;
        }
        if !u.is_empty() {
            write!(w, "\n{}\n", text::unscheduled(u.len()))?;
            u.write(w, view)?;
        }
        Ok(())
    }
}

/// [`write_plan`] into a string.
pub fn render_plan(
    cfg: &Config,
    plan: &Plan,
    office: Option<&str>,
    task: Option<&str>,
    view: &View,
) -> String {
    to_string(|w| write_plan(w, cfg, plan, office, task, view))
}

/// The words of `plan`'s text table, in one place for the message catalogue.
mod text {
    use crate::{t, tr};
    pub fn no_nudges() -> &'static str {
        t!(
            "Không có lời nhắc nào trong khoảng thời gian này.",
            "No reminders in this period."
        )
    }
    pub fn unscheduled(n: usize) -> String {
        tr!(
            "Nhiệm vụ chưa có hạn ({n}):",
            "Tasks with no date yet ({n}):"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::planner::{NudgeKey, Settled};
    use chrono::{Datelike, TimeZone, Utc};
    use std::collections::HashSet;

    /// Each task's id and phrase, and each office's id, are found by rank, packed or not.
    #[test]
    fn names_are_found_by_rank() {
        let cfg = crate::plan::config::seed_config();
        let places = Places::of(&cfg);
        let want: Vec<(&str, &str)> = places
            .tasks
            .iter()
            .map(|i| &cfg.tasks[*i as usize])
            .map(|t| (t.id.as_str(), t.deadline.phrase.as_str()))
            .collect();
        let mut sorted = want.clone();
        sorted.sort();
        assert_eq!(want, sorted, "in id order");
        for pack in [true, false] {
            let names = Names::build(&cfg, &places, pack);
            assert_eq!(matches!(names.tasks, TaskNames::Packed { .. }), pack);
            let got: Vec<(&str, &str)> = (0..want.len()).map(|r| names.task(r).unwrap()).collect();
            assert_eq!(got, want, "packed: {pack}");
            assert!(names.task(want.len()).is_none());
        }
        // An id too long for a record: all of them kept whole.
        let text = format!("{}ab", "x".repeat(14));
        let TaskNames::Whole(w) = TaskNames::of(&text, vec![[0, 14, 16]]) else {
            panic!("a 14-byte id does not pack");
        };
        assert_eq!(w, vec![[0, 14, 16]]);
        let names = Names::new(&cfg, &places);
        for (r, i) in places.offices.iter().enumerate() {
            assert_eq!(names.office(r), Some(cfg.offices[*i as usize].id.as_str()));
        }
    }

    /// The deadline and the days left are written as `format!` writes them.
    #[test]
    fn dates_and_numbers_are_written_as_format_writes_them() {
        for n in [
            i64::MIN,
            -1_000_001,
            -10,
            -9,
            -1,
            0,
            1,
            9,
            10,
            99,
            100,
            4_321,
            i64::MAX,
        ] {
            let mut cell = String::new();
            push_int(&mut cell, n);
            assert_eq!(cell, n.to_string());
        }
        let mut dates = vec![NaiveDate::MIN, NaiveDate::MAX];
        let mut d = NaiveDate::from_ymd_opt(-2, 12, 25).unwrap();
        while d < NaiveDate::from_ymd_opt(10_001, 1, 1).unwrap() {
            dates.push(d);
            d = d + chrono::Days::new(13);
        }
        for d in dates {
            let mut cell = String::new();
            push_iso_date(&mut cell, d);
            assert_eq!(cell, d.format("%Y-%m-%d").to_string());
        }
    }

    /// The seed plan mid-year, with a catch-up window (due, late and upcoming rows all
    /// print), and its plan to the end of the year.
    fn seed_mid_year() -> (
        Config,
        crate::calendar::workdays::WorkCalendar,
        DateTime<Utc>,
        DateTime<Utc>,
        planner::Plan,
    ) {
        let cfg = crate::plan::config::seed_config();
        let now = Utc.with_ymd_and_hms(2024, 6, 14, 1, 0, 0).unwrap();
        let until = Utc.with_ymd_and_hms(2024, 12, 31, 16, 0, 0).unwrap();
        let cal = cfg.work_calendar(now.year());
        let listed = planner::plan(&cfg, &cal, now, until, &HashSet::new());
        (cfg, cal, now, until, listed)
    }

    /// A row of `plan` is quoted as any CSV row is: the cells it does not look in never
    /// need it, and the ones it does are quoted when they must be.
    #[test]
    fn plan_rows_are_quoted_as_any_csv_row() {
        let (cfg, _, _, _, listed) = seed_mid_year();
        let mut row = PlanRow::new(&cfg, true, false);
        let rows: Vec<RowView> = listed
            .due
            .iter()
            .map(|n| RowView::of_nudge(n, due_status(true, n)))
            .chain(
                listed
                    .upcoming
                    .iter()
                    .map(|n| RowView::of_nudge(n, "planned")),
            )
            .collect();
        assert!(rows.len() > 100, "{}", rows.len());
        let mut quoted = 0;
        for n in &rows {
            let cells = row.cells(n);
            let (mut got, mut want) = (Vec::new(), Vec::new());
            push_plan_csv_row(&mut got, cells);
            super::super::push_csv_row(&mut want, cells);
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap()
            );
            quoted += usize::from(cells.iter().any(|c| c.contains(',')));
        }
        assert!(quoted > 0, "some row has a cell to quote");
        let mut got = Vec::new();
        push_plan_csv_row(
            &mut got,
            ["a", "b,c", "d\"e", "f", "g", "h", "i", "j\nk", "1", ""],
        );
        assert_eq!(got, b"a,\"b,c\",\"d\"\"e\",f,g,h,i,\"j\nk\",1,\r\n");
    }

    /// A plan's rows print the same whether its upcoming nudges are listed (read from the
    /// nudges) or streamed (read from the config by place), in every format and filter.
    #[test]
    fn streamed_and_listed_plans_print_the_same() {
        let (cfg, cal, now, until, listed) = seed_mid_year();
        // A ledger that holds a few of them.
        let known: HashSet<NudgeKey> = listed.upcoming.iter().step_by(5).map(Nudge::key).collect();
        let settled = Settled::default();
        let listed = planner::plan_settled(&cfg, &cal, now, until, &known, &settled);
        assert!(listed.upcoming.len() > 20, "{}", listed.upcoming.len());
        let office = listed.upcoming[0].office.to_string();
        let task = listed.upcoming[3].task.to_string();
        for format in [Format::Table, Format::Csv, Format::Json] {
            for wide in [false, true] {
                let view = View {
                    wide,
                    ..View::unlimited(format)
                };
                for (o, t) in [
                    (None, None),
                    (Some(office.as_str()), None),
                    (None, Some(task.as_str())),
                ] {
                    let want = render_plan(&cfg, &listed, o, t, &view);
                    let (streamed, upcoming) =
                        planner::plan_streamed(&cfg, &cal, now, until, &known, &settled);
                    let got = to_string(|w| {
                        write_plan_streamed(w, &cfg, &streamed, upcoming, o, t, &view)
                    });
                    assert_eq!(got, want, "{format:?} wide={wide} {o:?} {t:?}");
                    assert!(want.lines().count() > 2, "{format:?} {o:?} {t:?}: {want}");
                }
            }
        }
    }
}
