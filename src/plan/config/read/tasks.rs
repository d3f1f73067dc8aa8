//! `tasks:`: each task, its deadline in every written form, its offices, and the checks
//! across tasks (duplicate ids, unknown and circular `after:`).

use super::*;
use crate::plan::deadline::{self, DayOfMonth, Period, Periodic, Phrase, Rule, Unscheduled};
use crate::plan::diag::{Diagnostic, Pos, suggest};
use crate::plan::yaml::{Node, Value};
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

const TASK_KEYS: &[&str] = &[
    "id",
    "section",
    "title",
    "product",
    "deadline",
    "lead",
    "cooperating",
    "done",
    "reminders",
    "note",
];
const DEADLINE_KEYS: &[&str] = &[
    "phrase",
    "date",
    "dates",
    "after",
    "days",
    "every",
    "day",
    "month_of_quarter",
    "working_days_after",
    "from",
    "until",
    "checkpoints",
];

impl Reader<'_> {
    pub(super) fn tasks(
        &self,
        node: Option<&Node>,
        root: Pos,
        names: &Names,
        plan: &PlanInfo,
        errs: &mut Vec<Diagnostic>,
    ) -> Vec<Task> {
        let mut out: Vec<Task> = Vec::new();
        let Some(node) = node else {
            errs.push(
                Diagnostic::error(Some(root), "the config has no `tasks:` section")
                    .with_hint("add `tasks:` with one `- id: …` block per task"),
            );
            return out;
        };
        let Value::Seq(items) = &node.value else {
            errs.push(err(
                node.pos,
                "`tasks` must be a list: each task starts with `- id:`",
                "e.g.\ntasks:\n  - id: II.3\n    title: …",
            ));
            return out;
        };
        // Every id written, even of tasks that fail to read, so that one broken task does
        // not make the tasks that wait for it report a second, misleading error.
        let written_ids: Vec<String> = items
            .iter()
            .filter_map(|i| match &i.value {
                Value::Map(entries) => entries
                    .iter()
                    .find(|(k, _)| k.name == "id")
                    .and_then(|(_, v)| v.as_str().map(str::to_string)),
                _ => None,
            })
            .collect();
        let mut seen: HashMap<String, Pos> = HashMap::new();
        for item in items {
            let Some(t) = self.task(item, names, plan, errs) else {
                continue;
            };
            if let Some(first) = seen.get(&t.id) {
                errs.push(err(
                    t.pos,
                    format!(
                        "task id `{}` is used twice (first on line {})",
                        t.id, first.line
                    ),
                    "give each task its own id, e.g. `II.3` and `II.4`",
                ));
                continue;
            }
            seen.insert(t.id.clone(), t.pos);
            out.push(t);
        }
        // `after:` references need every id, so they are checked once all tasks are read.
        let ids: Vec<&str> = written_ids.iter().map(String::as_str).collect();
        // A set for the lookups: a list made this quadratic in the number of tasks.
        let known: HashSet<&str> = ids.iter().copied().collect();
        let mut bad = Vec::new();
        for t in &out {
            if let Rule::After { task, .. } = &t.deadline.rule
                && !known.contains(task.as_str())
            {
                bad.push(err(
                    t.pos,
                    format!("task {} waits for unknown task `{task}`", t.id),
                    suggest(task, ids.iter().copied()),
                ));
            }
        }
        errs.extend(bad);
        out
    }

    pub(super) fn task(
        &self,
        node: &Node,
        names: &Names,
        plan: &PlanInfo,
        errs: &mut Vec<Diagnostic>,
    ) -> Option<Task> {
        let m = node.map("a task", TASK_KEYS, errs)?;
        m.check_unknown(errs);
        let id = m.req_text("id", errs)?;
        let id_pos = m.get("id").map(|n| n.pos).unwrap_or(node.pos);
        if id.is_empty() || id.contains(|c: char| c.is_whitespace() || c == ',') {
            errs.push(err(
                id_pos,
                format!("task id `{id}` has spaces or commas"),
                "write ids like `II.3`",
            ));
        }
        let what = format!("task {id}");
        let section = match m.opt_text("section", errs) {
            Some(s) => s,
            None => id.split('.').next().unwrap_or(&id).to_string(),
        };
        if !names.sections.is_empty() && !names.sections.contains_key(&section) {
            errs.push(err(
                m.key_pos("section").unwrap_or(id_pos),
                format!("{what}: unknown section `{section}`"),
                format!(
                    "{}; sections are listed under `sections:`",
                    suggest(&section, names.sections.keys().map(String::as_str))
                ),
            ));
        }
        let title = m.req_text("title", errs).unwrap_or_default();
        let deadline = match m.get("deadline") {
            Some(n) => self.deadline(n, &what, plan, errs),
            None => {
                errs.push(err(id_pos, format!("{what} has no `deadline`"), "add `deadline:` with the phrase from the plan's Tiến độ column, e.g. `deadline: Quý II/2024`"));
                None
            }
        };
        let lead = match m.get("lead") {
            Some(n) => names.expand(n, "lead", errs),
            None => {
                errs.push(err(
                    id_pos,
                    format!("{what} has no `lead` office"),
                    "add `lead:` with the office that chairs it (chủ trì), e.g. `lead: hctc`",
                ));
                vec![]
            }
        };
        let mut cooperating = m
            .get("cooperating")
            .map(|n| names.expand(n, "cooperating", errs))
            .unwrap_or_default();
        cooperating.retain(|o| !lead.contains(o));
        let done = match m.get("done") {
            None => Done::Open,
            Some(n) => match &n.value {
                Value::Null => Done::Open,
                Value::Map(entries) => {
                    let mut per = BTreeMap::new();
                    for (k, v) in entries {
                        if !lead.contains(&k.name) && !cooperating.contains(&k.name) {
                            errs.push(err(
                                k.pos,
                                format!("{what}: `{}` is not one of its offices", k.name),
                                suggest(&k.name, lead.iter().map(String::as_str)),
                            ));
                        }
                        if let Some(d) = parse_date(v, "`done`", errs) {
                            per.insert(k.name.clone(), d);
                        }
                    }
                    Done::PerOffice(per)
                }
                _ => parse_date(n, "`done`", errs)
                    .map(Done::All)
                    .unwrap_or_default(),
            },
        };
        let policy = match m.get("reminders") {
            None => "default".to_string(),
            Some(n) => {
                let p = n.text("`reminders`", errs).unwrap_or_default();
                if !names.policies.contains_key(&p) {
                    errs.push(err(
                        n.pos,
                        format!("unknown reminder policy `{p}`"),
                        suggest(&p, names.policies.keys().map(String::as_str)),
                    ));
                }
                p
            }
        };
        Some(Task {
            id: id.clone(),
            section,
            title,
            product: m.opt_text("product", errs),
            deadline: deadline?,
            lead,
            cooperating,
            done,
            policy,
            note: m.opt_text("note", errs),
            pos: id_pos,
        })
    }

    pub(super) fn deadline(
        &self,
        node: &Node,
        what: &str,
        plan: &PlanInfo,
        errs: &mut Vec<Diagnostic>,
    ) -> Option<Deadline> {
        // The short form: only the phrase.
        if let Value::Scalar(phrase) = &node.value {
            let rule = match deadline::parse_phrase(phrase) {
                Ok(p) => self.phrase_rule(p, node.pos, what, plan, errs)?,
                Err(e) => {
                    errs.push(err(node.pos, format!("{what}: {}", e.message), e.hint));
                    return None;
                }
            };
            return Some(Deadline {
                phrase: phrase.clone(),
                rule,
            });
        }
        let m = node.map(&format!("the deadline of {what}"), DEADLINE_KEYS, errs)?;
        m.check_unknown(errs);
        let phrase_node = m.get("phrase");
        let phrase = m.req_text("phrase", errs)?;
        let parsed = match deadline::parse_phrase(&phrase) {
            Ok(p) => Some(p),
            Err(e) => {
                errs.push(err(
                    phrase_node.map(|n| n.pos).unwrap_or(m.pos),
                    format!("{what}: {}", e.message),
                    e.hint,
                ));
                None
            }
        };
        let explicit = ["date", "dates", "after", "every", "checkpoints"]
            .into_iter()
            .filter(|k| m.get(k).is_some())
            .collect::<Vec<_>>();
        if explicit.len() > 1 {
            errs.push(err(
                m.pos,
                format!(
                    "{what}: the deadline has both `{}` and `{}`",
                    explicit[0], explicit[1]
                ),
                "keep one way of giving the date",
            ));
            return None;
        }
        let rule = if let Some(n) = m.get("date") {
            Rule::Dates(vec![parse_date(n, "`date`", errs)?])
        } else if let Some(n) = m.get("dates") {
            let mut ds: Vec<NaiveDate> = match &n.value {
                Value::Seq(items) => items
                    .iter()
                    .filter_map(|i| parse_date(i, "a date in `dates`", errs))
                    .collect(),
                _ => {
                    errs.push(err(
                        n.pos,
                        "`dates` must be a list",
                        "write `dates: [2024-06-30, 2024-12-31]`",
                    ));
                    return None;
                }
            };
            ds.sort();
            ds.dedup();
            if ds.is_empty() {
                return None;
            }
            Rule::Dates(ds)
        } else if let Some(n) = m.get("after") {
            let task = n.text("`after`", errs)?;
            let days = m
                .get("days")
                .and_then(|n| parse_u32(n, "`days`", errs))
                .unwrap_or(0);
            if m.get("days").is_none() {
                errs.push(warn(
                    n.pos,
                    format!("{what} is due the same day `{task}` is done"),
                    "add `days: 30` (or another number) to give the office time after it",
                ));
            }
            if !matches!(parsed, Some(Phrase::AfterOther)) {
                errs.push(warn(
                    n.pos,
                    format!("{what} waits for `{task}` but its phrase `{phrase}` does not say so"),
                    "the plan usually writes `Sau khi …` for such tasks",
                ));
            }
            Rule::After { task, days }
        } else if let Some(n) = m.get("every") {
            let every = match n.text("`every`", errs)?.as_str() {
                "quarter" | "quy" | "quý" => Period::Quarter,
                "month" | "thang" | "tháng" => Period::Month,
                other => {
                    errs.push(err(
                        n.pos,
                        format!("unknown period `{other}`"),
                        "write `quarter` or `month`",
                    ));
                    return None;
                }
            };
            let day = match m.get("day") {
                None => DayOfMonth::Last,
                Some(d) if d.as_str() == Some("last") => DayOfMonth::Last,
                Some(d) => {
                    let v = parse_u32(d, "`day`", errs)?;
                    if !(1..=31).contains(&v) {
                        errs.push(err(
                            d.pos,
                            format!("day {v} is not a day of a month"),
                            "write 1 to 31, or `last`",
                        ));
                        return None;
                    }
                    DayOfMonth::Day(v)
                }
            };
            let month_of_quarter = m
                .get("month_of_quarter")
                .and_then(|n| {
                    let v = parse_u32(n, "`month_of_quarter`", errs)?;
                    if !(1..=3).contains(&v) {
                        errs.push(err(
                            n.pos,
                            "`month_of_quarter` must be 1, 2 or 3",
                            "3 is the quarter's last month",
                        ));
                    }
                    Some(v)
                })
                .unwrap_or(3);
            let working_days_after = m
                .get("working_days_after")
                .and_then(|n| parse_u32(n, "`working_days_after`", errs))
                .unwrap_or(0);
            let year = plan.year;
            let from = match m.get("from") {
                Some(n) => parse_date(n, "`from`", errs)?,
                None => match year {
                    Some(y) => NaiveDate::from_ymd_opt(y, 1, 1)?,
                    None => {
                        errs.push(err(n.pos, format!("{what}: a periodic deadline needs `from:` and `until:`, or `plan.year`"), "add `year: 2024` under `plan:`"));
                        return None;
                    }
                },
            };
            let until = match m.get("until") {
                Some(n) => parse_date(n, "`until`", errs)?,
                None => NaiveDate::from_ymd_opt(chrono::Datelike::year(&from), 12, 31)?,
            };
            if until < from {
                errs.push(err(
                    m.pos,
                    format!("{what}: `until` is before `from`"),
                    "swap them",
                ));
                return None;
            }
            Rule::Periodic(Periodic {
                every,
                day,
                month_of_quarter,
                working_days_after,
                from,
                until,
            })
        } else if let Some(n) = m.get("checkpoints") {
            let times = parse_u32(n, "`checkpoints`", errs)?;
            let year = match parsed {
                Some(Phrase::Date(d)) => chrono::Datelike::year(&d),
                Some(Phrase::Checkpoints { year: Some(y), .. }) => y,
                _ => match plan.year {
                    Some(y) => y,
                    None => {
                        errs.push(err(
                            n.pos,
                            format!("{what}: checkpoints need a year"),
                            "add `year: 2024` under `plan:`",
                        ));
                        return None;
                    }
                },
            };
            match deadline::checkpoints(times, year) {
                Some(ds) => Rule::Dates(ds),
                None => {
                    errs.push(err(
                        n.pos,
                        format!("{times} checkpoints cannot be spread evenly over 12 months"),
                        "use 1, 2, 3, 4, 6 or 12, or list them with `dates:`",
                    ));
                    return None;
                }
            }
        } else {
            for k in [
                "days",
                "day",
                "month_of_quarter",
                "working_days_after",
                "from",
                "until",
            ] {
                if let Some(p) = m.key_pos(k) {
                    errs.push(err(
                        p,
                        format!("`{k}` has no effect without `after:` or `every:`"),
                        "add the missing key or remove this one",
                    ));
                }
            }
            self.phrase_rule(
                parsed?,
                phrase_node.map(|n| n.pos).unwrap_or(m.pos),
                what,
                plan,
                errs,
            )?
        };
        Some(Deadline { phrase, rule })
    }

    pub(super) fn phrase_rule(
        &self,
        p: Phrase,
        pos: Pos,
        what: &str,
        plan: &PlanInfo,
        errs: &mut Vec<Diagnostic>,
    ) -> Option<Rule> {
        Some(match p {
            Phrase::Date(d) => Rule::Dates(vec![d]),
            Phrase::Checkpoints { times, year } => {
                let Some(y) = year.or(plan.year) else {
                    errs.push(err(
                        pos,
                        format!("{what}: `N lần/năm` needs a year"),
                        "write `02 lần/năm 2024`, or add `year: 2024` under `plan:`",
                    ));
                    return None;
                };
                Rule::Dates(deadline::checkpoints(times, y)?)
            }
            Phrase::Ongoing => Rule::Unscheduled(Unscheduled::Ongoing),
            Phrase::SetByOthers => Rule::Unscheduled(Unscheduled::SetByOthers),
            Phrase::ByRegulation => Rule::Unscheduled(Unscheduled::ByRegulation),
            Phrase::AfterOther => {
                errs.push(err(pos, format!("{what}: the deadline waits for another task, but which one?"), "write the deadline as a block:\n      deadline:\n        phrase: Sau khi Đề án được phê duyệt\n        after: III.3\n        days: 30"));
                return None;
            }
        })
    }
}

pub(super) struct Names<'a> {
    pub(super) offices: &'a HashMap<String, usize>,
    pub(super) groups: &'a BTreeMap<String, Vec<String>>,
    pub(super) policies: &'a BTreeMap<String, Policy>,
    pub(super) sections: &'a BTreeMap<String, String>,
}

impl Names<'_> {
    /// Office ids and groups, groups expanded into their members, without repeats.
    pub(super) fn expand(&self, node: &Node, key: &str, errs: &mut Vec<Diagnostic>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (id, p) in node.text_list(&format!("`{key}`"), errs) {
            if self.offices.contains_key(&id) {
                if !out.contains(&id) {
                    out.push(id);
                }
            } else if let Some(members) = self.groups.get(&id) {
                for mbr in members {
                    if !out.contains(mbr) {
                        out.push(mbr.clone());
                    }
                }
            } else {
                let all = self
                    .offices
                    .keys()
                    .map(String::as_str)
                    .chain(self.groups.keys().map(String::as_str));
                errs.push(err(
                    p,
                    format!("unknown office or group `{id}` in `{key}`"),
                    suggest(&id, all),
                ));
            }
        }
        out
    }
}

/// Dependency cycles (`A` after `B` after `A`) would leave every task in them waiting forever.
pub(super) fn check_dependencies(
    tasks: &[Task],
    index: &HashMap<String, usize>,
    errs: &mut Vec<Diagnostic>,
) {
    let next = |i: usize| match &tasks[i].deadline.rule {
        Rule::After { task, .. } => index.get(task).copied(),
        _ => None,
    };
    let mut reported: BTreeSet<usize> = BTreeSet::new();
    for start in 0..tasks.len() {
        let mut path = vec![start];
        let mut cur = start;
        while let Some(n) = next(cur) {
            if let Some(at) = path.iter().position(|p| *p == n) {
                let cycle: Vec<usize> = path[at..].to_vec();
                if cycle.iter().all(|c| !reported.contains(c)) {
                    let names: Vec<&str> = cycle.iter().map(|c| tasks[*c].id.as_str()).collect();
                    errs.push(err(
                        tasks[cycle[0]].pos,
                        format!(
                            "tasks wait for each other in a circle: {} → {}",
                            names.join(" → "),
                            names[0]
                        ),
                        "one of them must have a date of its own: remove one `after:`",
                    ));
                    reported.extend(cycle);
                }
                break;
            }
            path.push(n);
            cur = n;
        }
    }
}
