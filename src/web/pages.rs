//! The pages: what each shows, computed from the config (with the ledger's completions
//! applied) and the ledger, rendered by minijinja from `templates/` with HTML autoescape.

use crate::calendar::workdays::WorkCalendar;
use crate::delivery::ledger::{Completion, DeliveryRow, Source};
use crate::plan::config::{Config, Task};
use crate::plan::planner;
use chrono::NaiveDate;
use chrono_tz::Tz;
use minijinja::Environment;
use serde::Serialize;
use std::collections::BTreeMap;

/// Working days left at which a task counts as "due soon".
pub const DUE_SOON: i64 = 5;
/// Tasks per page of `/`: a plan of thousands of tasks stays a page a phone can load.
pub const PAGE_ROWS: usize = 200;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("index.html", include_str!("templates/index.html")),
    ("office.html", include_str!("templates/office.html")),
    ("log.html", include_str!("templates/log.html")),
    ("confirm.html", include_str!("templates/confirm.html")),
    ("done.html", include_str!("templates/done.html")),
    ("error.html", include_str!("templates/error.html")),
];

pub const STYLE: &str = include_str!("templates/style.css");

/// The templates, compiled once. `.html` names are autoescaped: every string from the YAML
/// or the ledger is escaped.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    for (name, src) in TEMPLATES {
        env.add_template(name, src)
            .expect("the built-in page templates compile");
    }
    env
}

/// Renders `name`; a template error is a bug, shown as text.
pub fn render<S: Serialize>(env: &Environment<'_>, name: &str, ctx: S) -> String {
    env.get_template(name)
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|e| format!("template {name}: {e}"))
}

/// Where one office stands on one task.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Cell {
    /// `done`, `on_track`, `due_soon`, `overdue` or `unscheduled`.
    pub state: &'static str,
    pub label: String,
    /// Working days overdue (0 unless overdue).
    pub overdue_days: i64,
}

/// The state of `office`'s share of `task` on `today`: the first occurrence it has not
/// finished decides it; every occurrence finished is done.
pub fn cell(
    cfg: &Config,
    cal: &WorkCalendar,
    task: &Task,
    occs: &Result<Vec<NaiveDate>, String>,
    office: &str,
    today: NaiveDate,
) -> Cell {
    let occs = match occs {
        Ok(o) if !o.is_empty() => o,
        _ => {
            return Cell {
                state: "unscheduled",
                label: "chưa có hạn".into(),
                overdue_days: 0,
            };
        }
    };
    let single = occs.len() == 1;
    let open = occs
        .iter()
        .find(|o| !task.silences(office, **o, single, today, today));
    let Some(occ) = open else {
        return Cell {
            state: "done",
            label: "đã hoàn thành".into(),
            overdue_days: 0,
        };
    };
    let _ = cfg;
    let due = planner::due_day(cal, task, *occ);
    if due < today {
        let n = cal.working_days_between(due, today).max(1);
        Cell {
            state: "overdue",
            label: format!("quá hạn {n} ngày làm việc"),
            overdue_days: n,
        }
    } else {
        let left = cal.working_days_between(today, due);
        let date = due.format("%d/%m/%Y");
        if left <= DUE_SOON {
            Cell {
                state: "due_soon",
                label: format!("sắp đến hạn ({date})"),
                overdue_days: 0,
            }
        } else {
            Cell {
                state: "on_track",
                label: format!("đúng tiến độ (hạn {date})"),
                overdue_days: 0,
            }
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub done: usize,
    pub on_track: usize,
    pub due_soon: usize,
    pub overdue: usize,
    pub unscheduled: usize,
}

impl Counts {
    fn add(&mut self, c: &Cell) {
        match c.state {
            "done" => self.done += 1,
            "on_track" => self.on_track += 1,
            "due_soon" => self.due_soon += 1,
            "overdue" => self.overdue += 1,
            _ => self.unscheduled += 1,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Named {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub id: String,
    pub title: String,
    pub cells: Vec<Option<Cell>>,
}

/// The page `/`: tasks × lead offices.
#[derive(Debug, Serialize)]
pub struct Progress {
    pub counts: Counts,
    /// The columns.
    pub offices: Vec<Named>,
    /// Every office that leads a task, for the filter.
    pub all_offices: Vec<Named>,
    pub sections: Vec<Named>,
    pub rows: Vec<Row>,
    pub office: String,
    pub section: String,
    /// 1-based; the counts are over every page.
    pub page: usize,
    pub pages: usize,
}

/// The progress of every task (of `section`) for every lead office (or `office`).
pub fn progress(
    cfg: &Config,
    cal: &WorkCalendar,
    today: NaiveDate,
    office: Option<&str>,
    section: Option<&str>,
    page: usize,
) -> Progress {
    let mut leads: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for o in &cfg.offices {
        if cfg.tasks.iter().any(|t| t.lead.contains(&o.id)) && seen.insert(o.id.as_str()) {
            leads.push(o.id.as_str());
        }
    }
    let named = |id: &str| Named {
        id: id.to_string(),
        name: cfg.office(id).map_or(id, |o| o.name.as_str()).to_string(),
    };
    let all_offices: Vec<Named> = leads.iter().map(|o| named(o)).collect();
    let columns: Vec<&str> = leads
        .iter()
        .copied()
        .filter(|o| office.is_none_or(|f| f == *o))
        .collect();
    let column: BTreeMap<&str, usize> = columns.iter().enumerate().map(|(i, o)| (*o, i)).collect();
    let mut counts = Counts::default();
    let mut rows = Vec::new();
    let shown = |n: usize| n / PAGE_ROWS + 1 == page;
    let mut n = 0;
    for t in &cfg.tasks {
        if section.is_some_and(|s| s != &*t.section) {
            continue;
        }
        if office.is_some_and(|o| !t.lead.iter().any(|l| l == o)) {
            continue;
        }
        let occs = planner::occurrences(cfg, cal, t);
        let mut cells = vec![None; if shown(n) { columns.len() } else { 0 }];
        for l in &t.lead {
            if let Some(i) = column.get(l.as_str()) {
                let c = cell(cfg, cal, t, &occs, l, today);
                counts.add(&c);
                if let Some(slot) = cells.get_mut(*i) {
                    *slot = Some(c);
                }
            }
        }
        if shown(n) {
            rows.push(Row {
                id: t.id.clone(),
                title: t.title.clone(),
                cells,
            });
        }
        n += 1;
    }
    Progress {
        counts,
        offices: columns.iter().map(|o| named(o)).collect(),
        all_offices,
        sections: cfg
            .sections
            .iter()
            .map(|(id, name)| Named {
                id: id.clone(),
                name: name.clone(),
            })
            .collect(),
        rows,
        office: office.unwrap_or_default().to_string(),
        section: section.unwrap_or_default().to_string(),
        page,
        pages: n.div_ceil(PAGE_ROWS).max(1),
    }
}

/// Tasks overdue per lead office (offices with none included, as 0).
pub fn overdue_by_office(cfg: &Config, cal: &WorkCalendar, today: NaiveDate) -> Vec<(String, u64)> {
    let mut n: BTreeMap<String, u64> = BTreeMap::new();
    for t in &cfg.tasks {
        let occs = planner::occurrences(cfg, cal, t);
        for l in &t.lead {
            let c = cell(cfg, cal, t, &occs, l, today);
            *n.entry(l.clone()).or_default() += u64::from(c.state == "overdue");
        }
    }
    n.into_iter().collect()
}

#[derive(Debug, Serialize)]
pub struct OfficeRow {
    pub id: String,
    pub title: String,
    pub role: &'static str,
    pub phrase: String,
    pub cell: Cell,
}

/// The page `/office/ID`: the office's tasks, lead or cooperating.
pub fn office_rows(
    cfg: &Config,
    cal: &WorkCalendar,
    today: NaiveDate,
    office: &str,
) -> Vec<OfficeRow> {
    cfg.tasks
        .iter()
        .filter_map(|t| {
            let role = if t.lead.iter().any(|l| l == office) {
                "chủ trì"
            } else if t.cooperating.iter().any(|c| c == office) {
                "phối hợp"
            } else {
                return None;
            };
            let occs = planner::occurrences(cfg, cal, t);
            Some(OfficeRow {
                id: t.id.clone(),
                title: t.title.clone(),
                role,
                phrase: t.deadline.phrase.clone(),
                cell: cell(cfg, cal, t, &occs, office, today),
            })
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct LogRow {
    pub due: String,
    pub task: String,
    pub office: String,
    pub kind: String,
    pub status: String,
    pub recipients: String,
}

pub fn log_rows(rows: &[DeliveryRow], tz: Tz) -> Vec<LogRow> {
    rows.iter()
        .map(|r| LogRow {
            due: r
                .due_at
                .with_timezone(&tz)
                .format("%d/%m/%Y %H:%M")
                .to_string(),
            task: r.key.task.clone(),
            office: r.key.office.clone(),
            kind: r.key.kind.clone(),
            status: r.status.to_string(),
            recipients: r.recipients.join(", "),
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct CompletionRow {
    pub recorded: String,
    pub task: String,
    pub office: String,
    pub occurrence: String,
    pub done_on: String,
    pub source: &'static str,
    pub client: Option<String>,
    pub note: Option<String>,
    pub undone: bool,
}

pub fn occurrence_text(occ: Option<(NaiveDate, NaiveDate)>) -> String {
    match occ {
        None => "mọi kỳ".into(),
        Some((a, b)) if a == b => a.format("%d/%m/%Y").to_string(),
        Some((a, b)) => format!("{}–{}", a.format("%d/%m/%Y"), b.format("%d/%m/%Y")),
    }
}

/// The trail, newest first.
pub fn completion_rows(trail: &[Completion], tz: Tz) -> Vec<CompletionRow> {
    trail
        .iter()
        .rev()
        .map(|c| CompletionRow {
            recorded: c
                .recorded_at
                .with_timezone(&tz)
                .format("%d/%m/%Y %H:%M")
                .to_string(),
            task: c.entry.task.clone(),
            office: c
                .entry
                .office
                .clone()
                .unwrap_or_else(|| "mọi đơn vị".into()),
            occurrence: occurrence_text(c.entry.occurrence),
            done_on: c.entry.done_on.format("%d/%m/%Y").to_string(),
            source: match c.entry.source {
                Source::Cli => "dòng lệnh",
                Source::Link => "đường dẫn trong thư",
                Source::Yaml => "tệp cấu hình",
            },
            client: c.entry.client.clone(),
            note: c.entry.note.clone(),
            undone: c.entry.undone,
        })
        .collect()
}

/// A Prometheus label value: backslash, double quote and line feed escaped.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What `/metrics` shows, in the Prometheus text format.
pub struct Metrics {
    pub emails: Vec<(String, String, u64)>,
    pub overdue: Vec<(String, u64)>,
    pub last_sweep: Option<i64>,
    pub rows: [(&'static str, u64); 3],
}

impl Metrics {
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP nhacviec_emails Reminders in the ledger, by status and office.\n# TYPE nhacviec_emails gauge"
        );
        for (status, office, n) in &self.emails {
            let _ = writeln!(
                s,
                "nhacviec_emails{{status=\"{}\",office=\"{}\"}} {n}",
                label(status),
                label(office)
            );
        }
        let _ = writeln!(
            s,
            "# HELP nhacviec_tasks_overdue Tasks overdue, by lead office.\n# TYPE nhacviec_tasks_overdue gauge"
        );
        for (office, n) in &self.overdue {
            let _ = writeln!(
                s,
                "nhacviec_tasks_overdue{{office=\"{}\"}} {n}",
                label(office)
            );
        }
        let _ = writeln!(
            s,
            "# HELP nhacviec_last_successful_sweep_timestamp_seconds When the last sweep that ran to its end finished (0: never).\n# TYPE nhacviec_last_successful_sweep_timestamp_seconds gauge"
        );
        let _ = writeln!(
            s,
            "nhacviec_last_successful_sweep_timestamp_seconds {}",
            self.last_sweep.unwrap_or(0)
        );
        let _ = writeln!(
            s,
            "# HELP nhacviec_ledger_rows Rows in the ledger, by table.\n# TYPE nhacviec_ledger_rows gauge"
        );
        for (table, n) in &self.rows {
            let _ = writeln!(s, "nhacviec_ledger_rows{{table=\"{table}\"}} {n}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_strings_are_escaped_in_every_page() {
        let env = environment();
        let html = render(
            &env,
            "error.html",
            minijinja::context! { heading => "<script>x</script>", message => "a\"b", plan_title => "<b>", today => "" },
        );
        assert!(!html.contains("<script>x"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
    }

    #[test]
    fn progress_pages_its_rows_and_counts_them_all() {
        let mut yaml = String::from(
            "offices:\n  a:\n    name: A\n    email: a@vpubnd.example\n  b:\n    name: B\n    email: b@vpubnd.example\ntasks:\n",
        );
        for i in 0..450 {
            let lead = if i % 2 == 0 { "a" } else { "b" };
            yaml.push_str(&format!(
                "  - id: I.{i}\n    title: T{i}\n    deadline: 30/06/2024\n    lead: {lead}\n"
            ));
        }
        let env = crate::plan::config::Env::default();
        let cfg = crate::plan::config::from_source(&yaml, std::path::Path::new("t.yaml"), &env)
            .unwrap_or_else(|r| panic!("{}", r.render()))
            .config;
        let today: NaiveDate = "2024-07-01".parse().unwrap();
        let cal = cfg.work_calendar(2024);
        let p = progress(&cfg, &cal, today, None, None, 3);
        assert_eq!((p.page, p.pages, p.rows.len()), (3, 3, 50));
        assert_eq!(p.counts.overdue, 450, "every task counted, not one page");
        assert_eq!(p.rows[0].id, "I.400");
        assert_eq!(p.rows[0].cells[0].as_ref().unwrap().overdue_days, 1);
        let only_b = progress(&cfg, &cal, today, Some("b"), None, 1);
        assert_eq!(
            (only_b.pages, only_b.offices.len(), only_b.counts.overdue),
            (2, 1, 225)
        );
        let soon = progress(&cfg, &cal, "2024-06-25".parse().unwrap(), None, None, 1);
        assert_eq!(soon.counts.due_soon, 450);
    }

    #[test]
    fn metric_labels_are_escaped() {
        let m = Metrics {
            emails: vec![("sent".into(), "a\"b\\c\nd".into(), 2)],
            overdue: vec![],
            last_sweep: None,
            rows: [("deliveries", 2), ("sweeps", 1), ("completions", 0)],
        };
        let t = m.text();
        assert!(t.contains(r#"office="a\"b\\c\nd"} 2"#), "{t}");
    }
}
