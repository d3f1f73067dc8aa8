//! `nhacviec plan`'s output: the nudges due now, then the upcoming ones, then the tasks with
//! no date yet, as a text table, CSV or JSON.

use super::table::write_bom;
use super::{
    Format, Kind, Table, View, days_left_text, end_json_array, format_local, sorted_order,
    to_string, write_csv_row, write_json_object,
};
use crate::plan::config::Config;
use crate::plan::planner::{self, Nudge, Plan, Upcoming};
use crate::t;
use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;
use std::borrow::Cow;
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

/// The cells of one `plan` row, rewritten in place for each nudge: a year of a large plan
/// has millions of rows, and a fresh `String` per cell was most of the printing's work.
struct PlanRow {
    cells: [String; 10],
    machine: bool,
    /// The text table with `--wide`: weekdays spelled out.
    wide: bool,
    /// The send time and deadline the cells hold: rows come in time order, so both
    /// repeat and are formatted once per run of equal values.
    send_at: Option<DateTime<Tz>>,
    occurrence: Option<NaiveDate>,
    /// The task the task and phrase cells hold.
    task: Option<std::sync::Arc<str>>,
}

impl PlanRow {
    fn new(machine: bool, wide: bool) -> Self {
        Self {
            cells: Default::default(),
            machine,
            wide,
            send_at: None,
            occurrence: None,
            task: None,
        }
    }

    /// `task_index`: the task's place in `cfg.tasks` when known (no lookup by id).
    fn fill(&mut self, cfg: &Config, n: &Nudge, task_index: Option<usize>, status: &str) {
        use std::fmt::Write as _;
        let machine = self.machine;
        let [
            send_at,
            st,
            task,
            office,
            role,
            kind,
            deadline,
            phrase,
            days_left,
            recipients,
        ] = &mut self.cells;
        if self.send_at != Some(n.send_at) {
            send_at.clear();
            if machine {
                send_at.push_str(&n.send_at.to_rfc3339());
            } else if self.wide {
                send_at.push_str(&format_local(&n.send_at));
            } else {
                let _ = write!(send_at, "{}", n.send_at.format("%d/%m/%Y %H:%M"));
            }
            self.send_at = Some(n.send_at);
        }
        st.clear();
        st.push_str(if machine {
            status
        } else {
            status_label(status)
        });
        if self.task.as_ref() != Some(&n.task) {
            self.task = Some(n.task.clone());
            task.clear();
            task.push_str(&n.task);
            phrase.clear();
            let t = match task_index {
                Some(i) => cfg.tasks.get(i),
                None => cfg.task(&n.task),
            };
            if let Some(t) = t {
                phrase.push_str(&t.deadline.phrase);
            }
        }
        office.clear();
        office.push_str(&n.office);
        role.clear();
        role.push_str(if machine {
            n.role.code()
        } else {
            role_label(n.role)
        });
        kind.clear();
        if machine {
            let _ = n.kind.write_code(kind);
        } else {
            kind.push_str(&kind_label(&n.kind));
        }
        if self.occurrence != Some(n.occurrence) {
            deadline.clear();
            if machine {
                let _ = write!(deadline, "{}", n.occurrence.format("%Y-%m-%d"));
            } else if !self.wide {
                let _ = write!(deadline, "{}", n.occurrence.format("%d/%m/%Y"));
            } else {
                let _ = write!(
                    deadline,
                    "{} {}",
                    super::weekday(n.occurrence),
                    n.occurrence.format("%d/%m/%Y")
                );
            }
            self.occurrence = Some(n.occurrence);
        }
        days_left.clear();
        if machine {
            let _ = write!(days_left, "{}", n.days_left);
        } else {
            days_left.push_str(&days_left_text(n));
        }
        recipients.clear();
        // JSON and CSV carry the stable codes, in either language.
        recipients.push_str(match (n.add_head, n.add_leadership, machine) {
            (true, true, true) => "head, leadership",
            (true, false, true) => "head",
            (false, true, true) => "leadership",
            (true, true, false) => t!("trưởng đơn vị, lãnh đạo", "head, leadership"),
            (true, false, false) => t!("trưởng đơn vị", "head"),
            (false, true, false) => t!("lãnh đạo", "leadership"),
            _ => "",
        });
    }
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
    let upcoming = plan.upcoming.iter().map(|n| (Cow::Borrowed(n), None));
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
    let upcoming = upcoming
        .into_nudges(cfg)
        .map(|(n, i)| (Cow::Owned(n), Some(i)));
    write_rows(w, cfg, plan, upcoming, office, task, view)
}

/// A row to print: the nudge, its task's place in `cfg.tasks` if known, its status.
type Row<'n> = (Cow<'n, Nudge>, Option<usize>, &'n str);

fn write_rows<'n>(
    w: &mut dyn Write,
    cfg: &Config,
    plan: &'n Plan,
    upcoming: impl Iterator<Item = (Cow<'n, Nudge>, Option<usize>)>,
    office: Option<&str>,
    task: Option<&str>,
    view: &View,
) -> std::io::Result<()> {
    let format = view.format;
    let keep =
        |n: &Nudge| office.is_none_or(|o| *n.office == *o) && task.is_none_or(|t| *n.task == *t);
    let machine = format != Format::Table;
    let rows = plan
        .due
        .iter()
        .filter(|n| keep(n))
        .map(|n| (Cow::Borrowed(n), None, due_status(plan.sendable_now, n)))
        .chain(
            upcoming
                .filter(|(n, _)| keep(n))
                .map(|(n, i)| (n, i, "planned")),
        );
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
        cfg,
        row: PlanRow::new(machine, view.wide),
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

/// The writer of the nudges' rows in one format.
struct Rows<'a> {
    cfg: &'a Config,
    row: PlanRow,
}

impl Rows<'_> {
    fn write_csv<'n>(
        &mut self,
        w: &mut dyn Write,
        view: &View,
        rows: impl Iterator<Item = Row<'n>>,
    ) -> std::io::Result<()> {
        if view.bom {
            write_bom(w)?;
        }
        write_csv_row(w, plan_columns().iter().map(|(k, _)| *k))?;
        for (n, i, status) in rows {
            self.row.fill(self.cfg, &n, i, status);
            write_csv_row(w, self.row.cells.iter().map(String::as_str))?;
        }
        Ok(())
    }

    fn write_json<'n>(
        &mut self,
        w: &mut dyn Write,
        rows: impl Iterator<Item = Row<'n>>,
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
        for (n, i, status) in rows {
            self.row.fill(self.cfg, &n, i, status);
            write_json_object(w, first, 4, &keys, &kinds, &order, &self.row.cells)?;
            first = false;
        }
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

    fn write_table<'n>(
        &mut self,
        w: &mut dyn Write,
        view: &View,
        rows: impl Iterator<Item = Row<'n>>,
        unscheduled: impl Iterator<Item = [String; 3]>,
    ) -> std::io::Result<()> {
        let mut t = Table::new(&plan_columns())
            .narrow(NARROW)
            .whole(&["send_at", "task", "office", "deadline"]);
        for (n, i, status) in rows {
            self.row.fill(self.cfg, &n, i, status);
            t.push(self.row.cells.to_vec());
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
