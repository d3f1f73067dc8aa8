//! `tasks:`: each task, its deadline in every written form, its offices, and the checks
//! across tasks (duplicate ids, unknown and circular `after:`).

use super::*;
use crate::plan::deadline::{self, DayOfMonth, Period, Periodic, Phrase, Rule, Unscheduled};
use crate::plan::diag::{Diagnostic, Pos, suggest};
use crate::plan::yaml::{MapReader, Node, Value};
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// How many years from the plan's year a date in it may be.
const YEAR_SPAN: u32 = 5;

const TASK_KEYS: &[&str] = &[
    "id",
    "section",
    "title",
    "product",
    "deadline",
    "lead",
    "cooperating",
    "report_to",
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
    ) -> Vec<Task> {
        let mut out: Vec<Task> = Vec::new();
        let Some(node) = node else {
            self.report(
                Diagnostic::error(
                    Some(root),
                    crate::tr!(
                        "cấu hình thiếu mục `tasks:`",
                        "the config has no `tasks:` section"
                    ),
                )
                .with_hint(crate::tr!(
                    "thêm `tasks:`, mỗi nhiệm vụ một khối `- id: …`",
                    "add `tasks:` with one `- id: …` block per task"
                )),
            );
            return out;
        };
        let Value::Seq(items) = &node.value else {
            self.error(
                node.pos,
                crate::tr!(
                    "`tasks` phải là một danh sách: mỗi nhiệm vụ bắt đầu bằng `- id:`",
                    "`tasks` must be a list: each task starts with `- id:`"
                ),
                crate::tr!(
                    "ví dụ:\ntasks:\n  - id: II.3\n    title: …",
                    "e.g.\ntasks:\n  - id: II.3\n    title: …"
                ),
            );
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
            let Some(t) = self.task(item, names, plan) else {
                continue;
            };
            if let Some(first) = seen.get(&t.id) {
                self.error(
                    t.pos,
                    crate::tr!(
                        "mã nhiệm vụ `{}` bị dùng hai lần (lần đầu ở dòng {})",
                        "task id `{}` is used twice (first on line {})",
                        t.id,
                        first.line
                    ),
                    crate::tr!(
                        "cho mỗi nhiệm vụ một mã riêng, ví dụ `II.3` và `II.4`",
                        "give each task its own id, e.g. `II.3` and `II.4`"
                    ),
                );
                continue;
            }
            seen.insert(t.id.clone(), t.pos);
            out.push(t);
        }
        // `after:` references need every id, so they are checked once all tasks are read.
        let ids: Vec<&str> = written_ids.iter().map(String::as_str).collect();
        // A set for the lookups: a list made this quadratic in the number of tasks.
        let known: HashSet<&str> = ids.iter().copied().collect();
        for t in &out {
            if let Rule::After { task, .. } = &t.deadline.rule
                && !known.contains(task.as_str())
            {
                self.error(
                    t.pos,
                    crate::tr!(
                        "nhiệm vụ {} chờ một nhiệm vụ không có: `{task}`",
                        "task {} waits for unknown task `{task}`",
                        t.id
                    ),
                    suggest(task, ids.iter().copied()),
                );
            }
        }
        out
    }

    pub(super) fn task(&self, node: &Node, names: &Names, plan: &PlanInfo) -> Option<Task> {
        let m = self.map(node, crate::t!("một nhiệm vụ", "a task"), TASK_KEYS)?;
        let id = self.req_text(&m, "id")?;
        let id_pos = m.get("id").map(|n| n.pos).unwrap_or(node.pos);
        if id.is_empty() || id.contains(|c: char| c.is_whitespace() || c == ',') {
            self.error(
                id_pos,
                crate::tr!(
                    "mã nhiệm vụ `{id}` có dấu cách hoặc dấu phẩy",
                    "task id `{id}` has spaces or commas"
                ),
                crate::tr!("viết mã dạng `II.3`", "write ids like `II.3`"),
            );
        }
        let what = crate::tr!("nhiệm vụ {id}", "task {id}");
        let section = match self.opt_text(&m, "section") {
            Some(s) => s,
            None => id.split('.').next().unwrap_or(&id).to_string(),
        };
        if !names.sections.is_empty() && !names.sections.contains_key(&section) {
            self.error(
                m.key_pos("section").unwrap_or(id_pos),
                crate::tr!(
                    "{what}: không có phần `{section}`",
                    "{what}: unknown section `{section}`"
                ),
                crate::tr!(
                    "{}; các phần được liệt kê ở `sections:`",
                    "{}; sections are listed under `sections:`",
                    suggest(&section, names.sections.keys().map(String::as_str))
                ),
            );
        }
        let title = self.req_text(&m, "title").unwrap_or_default();
        let deadline = match m.get("deadline") {
            Some(n) => {
                let d = self.deadline(n, &what, plan);
                if let Some(Deadline {
                    rule: Rule::Dates(ds),
                    ..
                }) = &d
                {
                    // One error per deadline is enough: the first implausible year.
                    let _ = ds
                        .iter()
                        .all(|d| self.plausible_year(*d, plan, n.pos, &what));
                }
                d
            }
            None => {
                self.error(id_pos, crate::tr!("{what} thiếu `deadline`", "{what} has no `deadline`"), "add `deadline:` with the phrase from the plan's Tiến độ column, e.g. `deadline: Quý II/2024`");
                None
            }
        };
        let lead = match m.get("lead") {
            Some(n) => self.expand(names, n, "lead"),
            None => {
                self.error(
                    id_pos,
                    crate::tr!(
                        "{what} thiếu đơn vị chủ trì `lead`",
                        "{what} has no `lead` office"
                    ),
                    crate::tr!(
                        "thêm `lead:` với đơn vị chủ trì, ví dụ `lead: hctc`",
                        "add `lead:` with the office that chairs it (chủ trì), e.g. `lead: hctc`"
                    ),
                );
                vec![]
            }
        };
        let mut cooperating = m
            .get("cooperating")
            .map(|n| self.expand(names, n, "cooperating"))
            .unwrap_or_default();
        cooperating.retain(|o| !lead.contains(o));
        let mut report_to = m
            .get("report_to")
            .map(|n| self.expand(names, n, "report_to"))
            .unwrap_or_default();
        report_to.retain(|o| !lead.contains(o) && !cooperating.contains(o));
        // `lead: [kstthc, hctc]` shares the lead; `lead: cac-trung-tam` gives each member
        // its own share.
        let shared_lead = lead.len() > 1
            && m.get("lead")
                .is_some_and(|n| matches!(&n.value, Value::Seq(items) if items.len() > 1));
        let done = match m.get("done") {
            None => Done::Open,
            Some(n) => self.done(n, &what, &lead, &cooperating, plan),
        };
        let policy = match m.get("reminders") {
            None => "default".to_string(),
            Some(n) => {
                let p = self.text(n, "`reminders`").unwrap_or_default();
                if !names.policies.contains_key(&p) {
                    self.error(
                        n.pos,
                        crate::tr!(
                            "không có chính sách nhắc `{p}`",
                            "unknown reminder policy `{p}`"
                        ),
                        suggest(&p, names.policies.keys().map(String::as_str)),
                    );
                }
                p
            }
        };
        Some(Task {
            id: id.clone(),
            section,
            title,
            product: self.opt_text(&m, "product"),
            deadline: deadline?,
            lead,
            cooperating,
            report_to,
            shared_lead,
            done,
            policy,
            note: self.opt_text(&m, "note"),
            pos: id_pos,
        })
    }

    /// `done: 2024-03-01` for the whole task, one date per office, or a list of entries
    /// naming an occurrence (by its date or its period: `Quý I/2024`, `Tháng 06/2024`)
    /// and/or an office: `done: [{ occurrence: Quý I/2024, office: hctc, date: 2024-03-15 }]`.
    fn done(
        &self,
        n: &Node,
        what: &str,
        lead: &[String],
        cooperating: &[String],
        plan: &PlanInfo,
    ) -> Done {
        match &n.value {
            Value::Null => Done::Open,
            Value::Seq(items) => {
                let mut entries = Vec::new();
                for item in items {
                    let Some(m) = self.map(
                        item,
                        crate::t!("một mục `done`", "a `done` entry"),
                        &["occurrence", "office", "date"],
                    ) else {
                        continue;
                    };
                    let occurrence = m.get("occurrence").and_then(|o| {
                        let s = self.text(o, "`occurrence`")?;
                        match occurrence_span(&s) {
                            Some(span) => Some(span),
                            None => {
                                self.error(
                                    o.pos,
                                    crate::tr!("{what}: không đọc được kỳ `{s}`", "{what}: cannot read the occurrence `{s}`"),
                                    crate::tr!("viết ngày hạn của kỳ (`2024-03-18`) hoặc kỳ của nó (`Quý I/2024`, `Tháng 06/2024`)", "write its deadline date (`2024-03-18`) or its period (`Quý I/2024`, `Tháng 06/2024`)"),
                                );
                                None
                            }
                        }
                    });
                    let office = self.opt_text(&m, "office");
                    if let Some(o) = &office
                        && !lead.contains(o)
                        && !cooperating.contains(o)
                    {
                        self.error(
                            m.key_pos("office").unwrap_or(m.pos),
                            crate::tr!(
                                "{what}: `{o}` không phải là đơn vị của nhiệm vụ",
                                "{what}: `{o}` is not one of its offices"
                            ),
                            suggest(o, lead.iter().map(String::as_str)),
                        );
                    }
                    let on = match m.get("date") {
                        Some(v) => self.value(v, "`date`").filter(|d| {
                            self.plausible_year(*d, plan, v.pos, &format!("{what}: `done`"))
                        }),
                        None => {
                            self.error(
                                m.pos,
                                crate::tr!("{what}: một mục `done` cần `date:`, ngày hoàn thành", "{what}: a `done` entry needs `date:`, the day it was done"),
                                crate::t!("ví dụ `- { occurrence: Quý I/2024, date: 2024-03-15 }` (không dùng `on:`, YAML đọc nó là `true`)", "e.g. `- { occurrence: Quý I/2024, date: 2024-03-15 }` (not `on:`, which YAML reads as `true`)"),
                            );
                            None
                        }
                    };
                    if let Some(on) = on {
                        entries.push(DoneEntry {
                            occurrence,
                            office,
                            on,
                        });
                    }
                }
                Done::List(entries)
            }
            Value::Map(entries) => {
                let mut per = BTreeMap::new();
                for (k, v) in entries {
                    if !lead.contains(&k.name) && !cooperating.contains(&k.name) {
                        self.error(
                            k.pos,
                            crate::tr!(
                                "{what}: `{}` không phải là đơn vị của nhiệm vụ",
                                "{what}: `{}` is not one of its offices",
                                k.name
                            ),
                            suggest(&k.name, lead.iter().map(String::as_str)),
                        );
                    }
                    if let Some(d) = self.value(v, "`done`")
                        && self.plausible_year(d, plan, v.pos, &format!("{what}: `done`"))
                    {
                        per.insert(k.name.clone(), d);
                    }
                }
                Done::PerOffice(per)
            }
            _ => self
                .value(n, "`done`")
                .filter(|d| self.plausible_year(*d, plan, n.pos, &format!("{what}: `done`")))
                .map(Done::All)
                .unwrap_or_default(),
        }
    }

    pub(super) fn deadline(&self, node: &Node, what: &str, plan: &PlanInfo) -> Option<Deadline> {
        // The short form: only the phrase.
        if let Value::Scalar(phrase) = &node.value {
            let rule = match deadline::parse_phrase(phrase) {
                Ok(p) => self.phrase_rule(p, node.pos, what, plan)?,
                Err(e) => {
                    self.error(node.pos, format!("{what}: {}", e.message), e.hint);
                    return None;
                }
            };
            return Some(Deadline {
                exclusive: deadline::is_exclusive(phrase),
                phrase: phrase.clone(),
                rule,
            });
        }
        let m = self.map(
            node,
            &crate::tr!("hạn của {what}", "the deadline of {what}"),
            DEADLINE_KEYS,
        )?;
        let phrase_node = m.get("phrase");
        let phrase = self.req_text(&m, "phrase")?;
        let parsed = match deadline::parse_phrase(&phrase) {
            Ok(p) => Some(p),
            Err(e) => {
                self.error(
                    phrase_node.map(|n| n.pos).unwrap_or(m.pos),
                    format!("{what}: {}", e.message),
                    e.hint,
                );
                None
            }
        };
        let explicit = ["date", "dates", "after", "every", "checkpoints"]
            .into_iter()
            .filter(|k| m.get(k).is_some())
            .collect::<Vec<_>>();
        if explicit.len() > 1 {
            self.error(
                m.pos,
                crate::tr!(
                    "{what}: hạn có cả `{}` lẫn `{}`",
                    "{what}: the deadline has both `{}` and `{}`",
                    explicit[0],
                    explicit[1]
                ),
                crate::tr!("giữ một cách ghi ngày", "keep one way of giving the date"),
            );
            return None;
        }
        let rule = if let Some(n) = m.get("date") {
            Rule::Dates(vec![self.value(n, "`date`")?])
        } else if let Some(n) = m.get("dates") {
            self.dates_rule(n)?
        } else if let Some(n) = m.get("after") {
            self.after_rule(&m, n, what, &phrase, parsed.as_ref())?
        } else if let Some(n) = m.get("every") {
            self.periodic_rule(&m, n, what, plan)?
        } else if let Some(n) = m.get("checkpoints") {
            self.checkpoints_rule(n, what, parsed.as_ref(), plan)?
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
                    self.error(
                        p,
                        crate::tr!(
                            "`{k}` không có tác dụng nếu không có `after:` hoặc `every:`",
                            "`{k}` has no effect without `after:` or `every:`"
                        ),
                        crate::tr!(
                            "thêm khóa còn thiếu hoặc bỏ khóa này",
                            "add the missing key or remove this one"
                        ),
                    );
                }
            }
            self.phrase_rule(
                parsed?,
                phrase_node.map(|n| n.pos).unwrap_or(m.pos),
                what,
                plan,
            )?
        };
        Some(Deadline {
            exclusive: deadline::is_exclusive(&phrase),
            phrase,
            rule,
        })
    }

    /// `dates: [2024-06-30, 2024-12-31]`.
    fn dates_rule(&self, n: &Node) -> Option<Rule> {
        let mut ds: Vec<NaiveDate> = match &n.value {
            Value::Seq(items) => items
                .iter()
                .filter_map(|i| {
                    self.value(i, crate::t!("một ngày trong `dates`", "a date in `dates`"))
                })
                .collect(),
            _ => {
                self.error(
                    n.pos,
                    crate::tr!("`dates` phải là một danh sách", "`dates` must be a list"),
                    crate::tr!(
                        "viết `dates: [2024-06-30, 2024-12-31]`",
                        "write `dates: [2024-06-30, 2024-12-31]`"
                    ),
                );
                return None;
            }
        };
        ds.sort();
        ds.dedup();
        if ds.is_empty() {
            return None;
        }
        Some(Rule::Dates(ds))
    }

    /// `after: III.3` (and `days: 30`): due some days after another task is done.
    fn after_rule(
        &self,
        m: &MapReader,
        n: &Node,
        what: &str,
        phrase: &str,
        parsed: Option<&Phrase>,
    ) -> Option<Rule> {
        let task = self.text(n, "`after`")?;
        let days = self.opt(m, "days").unwrap_or(0);
        if m.get("days").is_none() {
            self.warn(
                n.pos,
                crate::tr!(
                    "{what} đến hạn ngay ngày `{task}` hoàn thành",
                    "{what} is due the same day `{task}` is done"
                ),
                crate::tr!(
                    "thêm `days: 30` (hoặc số khác) để đơn vị có thời gian sau đó",
                    "add `days: 30` (or another number) to give the office time after it"
                ),
            );
        }
        if !matches!(parsed, Some(Phrase::AfterOther)) {
            self.warn(
                n.pos,
                crate::tr!(
                    "{what} chờ `{task}` nhưng câu `{phrase}` của nó không nói vậy",
                    "{what} waits for `{task}` but its phrase `{phrase}` does not say so"
                ),
                crate::tr!(
                    "kế hoạch thường viết `Sau khi …` cho những nhiệm vụ như vậy",
                    "the plan usually writes `Sau khi …` for such tasks"
                ),
            );
        }
        Some(Rule::After { task, days })
    }

    /// `every: quarter` (or `month`), with the day, the month of the quarter and the span.
    fn periodic_rule(&self, m: &MapReader, n: &Node, what: &str, plan: &PlanInfo) -> Option<Rule> {
        let every: Period = self.value(n, "`every`")?;
        let day = match m.get("day") {
            None => DayOfMonth::Last,
            Some(d) if d.as_str() == Some("last") => DayOfMonth::Last,
            Some(d) => DayOfMonth::Day(self.checked(d, "`day`", |v: u32| match v {
                1..=31 => Ok(v),
                _ => Err(Problem::new(
                    crate::tr!(
                        "ngày {v} không phải là một ngày trong tháng",
                        "day {v} is not a day of a month"
                    ),
                    crate::tr!("viết từ 1 đến 31, hoặc `last`", "write 1 to 31, or `last`"),
                )),
            })?),
        };
        let month_of_quarter = self
            .opt_checked(m, "month_of_quarter", |v: u32| match v {
                1..=3 => Ok(v),
                _ => Err(Problem::new(
                    crate::tr!(
                        "`month_of_quarter` phải là 1, 2 hoặc 3",
                        "`month_of_quarter` must be 1, 2 or 3"
                    ),
                    crate::tr!("3 là tháng cuối quý", "3 is the quarter's last month"),
                )),
            })
            .unwrap_or(3);
        let working_days_after = self.opt(m, "working_days_after").unwrap_or(0);
        let from = match m.get("from") {
            Some(n) => self
                .value(n, "`from`")
                .filter(|d| self.plausible_year(*d, plan, n.pos, &format!("{what}: `from`")))?,
            None => {
                match plan.year {
                    Some(y) => NaiveDate::from_ymd_opt(y, 1, 1)?,
                    None => {
                        self.error(n.pos, crate::tr!("{what}: hạn định kỳ cần `from:` và `until:`, hoặc `plan.year`", "{what}: a periodic deadline needs `from:` and `until:`, or `plan.year`"), crate::tr!("thêm `year: 2024` dưới `plan:`", "add `year: 2024` under `plan:`"));
                        return None;
                    }
                }
            }
        };
        let until = match m.get("until") {
            Some(n) => self
                .value(n, "`until`")
                .filter(|d| self.plausible_year(*d, plan, n.pos, &format!("{what}: `until`")))?,
            None => NaiveDate::from_ymd_opt(chrono::Datelike::year(&from), 12, 31)?,
        };
        if until < from {
            self.error(
                m.pos,
                crate::tr!(
                    "{what}: `until` trước `from`",
                    "{what}: `until` is before `from`"
                ),
                crate::tr!("đổi chỗ hai giá trị", "swap them"),
            );
            return None;
        }
        Some(Rule::Periodic(Periodic {
            every,
            day,
            month_of_quarter,
            working_days_after,
            from,
            until,
        }))
    }

    /// `checkpoints: 2`: that many dates spread evenly over the phrase's (or plan's) year.
    fn checkpoints_rule(
        &self,
        n: &Node,
        what: &str,
        parsed: Option<&Phrase>,
        plan: &PlanInfo,
    ) -> Option<Rule> {
        let times: u32 = self.value(n, "`checkpoints`")?;
        let year = match parsed {
            Some(Phrase::Date(d)) => chrono::Datelike::year(d),
            Some(Phrase::Checkpoints { year: Some(y), .. }) => *y,
            _ => match plan.year {
                Some(y) => y,
                None => {
                    self.error(
                        n.pos,
                        crate::tr!(
                            "{what}: các mốc kiểm tra cần một năm",
                            "{what}: checkpoints need a year"
                        ),
                        crate::tr!(
                            "thêm `year: 2024` dưới `plan:`",
                            "add `year: 2024` under `plan:`"
                        ),
                    );
                    return None;
                }
            },
        };
        match deadline::checkpoints(times, year) {
            Some(ds) => Some(Rule::Dates(ds)),
            None => {
                self.error(
                    n.pos,
                    crate::tr!(
                        "{times} mốc không chia đều được cho 12 tháng",
                        "{times} checkpoints cannot be spread evenly over 12 months"
                    ),
                    crate::tr!(
                        "dùng 1, 2, 3, 4, 6 hoặc 12, hoặc liệt kê chúng bằng `dates:`",
                        "use 1, 2, 3, 4, 6 or 12, or list them with `dates:`"
                    ),
                );
                None
            }
        }
    }

    pub(super) fn phrase_rule(
        &self,
        p: Phrase,
        pos: Pos,
        what: &str,
        plan: &PlanInfo,
    ) -> Option<Rule> {
        Some(match p {
            Phrase::Date(d) => Rule::Dates(vec![d]),
            Phrase::Checkpoints { times, year } => {
                let Some(y) = year.or(plan.year) else {
                    self.error(
                        pos,
                        crate::tr!(
                            "{what}: `N lần/năm` cần một năm",
                            "{what}: `N lần/năm` needs a year"
                        ),
                        crate::tr!(
                            "viết `02 lần/năm 2024`, hoặc thêm `year: 2024` dưới `plan:`",
                            "write `02 lần/năm 2024`, or add `year: 2024` under `plan:`"
                        ),
                    );
                    return None;
                };
                Rule::Dates(deadline::checkpoints(times, y)?)
            }
            Phrase::Ongoing => Rule::Unscheduled(Unscheduled::Ongoing),
            Phrase::SetByOthers => Rule::Unscheduled(Unscheduled::SetByOthers),
            Phrase::ByRegulation => Rule::Unscheduled(Unscheduled::ByRegulation),
            Phrase::AfterOther => {
                self.error(pos, crate::tr!("{what}: hạn chờ một nhiệm vụ khác, nhưng là nhiệm vụ nào?", "{what}: the deadline waits for another task, but which one?"), crate::tr!("viết hạn thành một khối:\n      deadline:\n        phrase: Sau khi Đề án được phê duyệt\n        after: III.3\n        days: 30", "write the deadline as a block:\n      deadline:\n        phrase: Sau khi Đề án được phê duyệt\n        after: III.3\n        days: 30"));
                return None;
            }
        })
    }

    /// Office ids and groups, groups expanded into their members, without repeats.
    fn expand(&self, names: &Names, node: &Node, key: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (id, p) in self.texts(node, &format!("`{key}`")) {
            if names.offices.contains_key(&id) {
                if !out.contains(&id) {
                    out.push(id);
                }
            } else if let Some(members) = names.groups.get(&id) {
                for mbr in members {
                    if !out.contains(mbr) {
                        out.push(mbr.clone());
                    }
                }
            } else {
                let all = names
                    .offices
                    .keys()
                    .map(String::as_str)
                    .chain(names.groups.keys().map(String::as_str));
                self.error(
                    p,
                    crate::tr!(
                        "không có đơn vị hay nhóm `{id}` (ở `{key}`)",
                        "unknown office or group `{id}` in `{key}`"
                    ),
                    suggest(&id, all),
                );
            }
        }
        out
    }

    /// Dependency cycles (`A` after `B` after `A`) would leave every task in them waiting
    /// forever.
    pub(super) fn check_dependencies(&self, tasks: &[Task], index: &HashMap<String, usize>) {
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
                        let names: Vec<&str> =
                            cycle.iter().map(|c| tasks[*c].id.as_str()).collect();
                        self.error(
                            tasks[cycle[0]].pos,
                            crate::tr!(
                                "các nhiệm vụ chờ nhau thành vòng: {} → {}",
                                "tasks wait for each other in a circle: {} → {}",
                                names.join(" → "),
                                names[0]
                            ),
                            crate::tr!(
                                "một trong số đó phải có ngày riêng: bỏ một `after:`",
                                "one of them must have a date of its own: remove one `after:`"
                            ),
                        );
                        reported.extend(cycle);
                    }
                    break;
                }
                path.push(n);
                cur = n;
            }
        }
    }

    /// `d`'s year is within [`YEAR_SPAN`] years of the plan's year (or there is no plan
    /// year); otherwise an error at `pos` names the year: `30/01/1024` is a typo for 2024,
    /// and no plan runs for decades.
    fn plausible_year(&self, d: NaiveDate, plan: &PlanInfo, pos: Pos, what: &str) -> bool {
        let Some(py) = plan.year else { return true };
        let y = chrono::Datelike::year(&d);
        if y.abs_diff(py) <= YEAR_SPAN {
            return true;
        }
        self.error(
            pos,
            crate::tr!(
                "{what}: năm {y} cách năm của kế hoạch {py} hơn {YEAR_SPAN} năm",
                "{what}: the year {y} is more than {YEAR_SPAN} years from the plan's year {py}"
            ),
            crate::tr!(
                "có phải ý bạn là {py}? viết ví dụ `{:02}/{:02}/{py}`",
                "did you mean {py}? write e.g. `{:02}/{:02}/{py}`",
                chrono::Datelike::day(&d),
                chrono::Datelike::month(&d)
            ),
        );
        false
    }

    /// Leads nobody can email, and dated deadlines outside the plan's year.
    pub(super) fn check_leads_and_years(
        &self,
        tasks: &[Task],
        offices: &[Office],
        office_index: &HashMap<String, usize>,
        office_pos: &HashMap<String, Pos>,
        plan: &PlanInfo,
    ) {
        for t in tasks {
            for o in &t.lead {
                if let Some(office) = office_index.get(o).map(|i| &offices[*i])
                    && office.emails.is_empty()
                {
                    self.warn(
                        t.pos,
                        crate::tr!(
                            "nhiệm vụ {} do `{}` ({}) chủ trì, mà đơn vị này không có địa chỉ email: sẽ không ai được nhắc", "task {} is led by `{}` ({}), which has no email address: it will not be reminded",
                            t.id, o, office.name
                        ),
                        crate::tr!("thêm `email:` cho đơn vị `{o}` (dòng {}), hoặc giao đơn vị khác chủ trì", "add `email:` to office `{o}` (line {}), or make another office lead", office_pos.get(o).map(|p| p.line).unwrap_or(0)),
                    );
                }
            }
            if let Rule::Dates(ds) = &t.deadline.rule
                && let Some(y) = plan.year
                && ds.iter().any(|d| {
                    let dy = chrono::Datelike::year(d);
                    dy != y && dy != y + 1 && dy.abs_diff(y) <= YEAR_SPAN
                })
            {
                self.warn(
                    t.pos,
                    crate::tr!(
                        "nhiệm vụ {} có hạn ngoài năm {y} của kế hoạch",
                        "task {} has a deadline outside the plan's year {y}",
                        t.id
                    ),
                    crate::tr!("kiểm tra năm trong hạn", "check the year in the deadline"),
                );
            }
        }
    }

    /// A plan year without the official days-off notice, and without the clerk's own days.
    pub(super) fn check_notices(
        &self,
        m: &MapReader,
        plan: &PlanInfo,
        tasks: &[Task],
        calendar: &CalendarConfig,
    ) {
        let official = crate::calendar::holidays::official_data_years();
        let mut plan_years: BTreeSet<i32> = plan.year.into_iter().collect();
        for t in tasks {
            if let Rule::Dates(ds) = &t.deadline.rule {
                plan_years.extend(ds.iter().map(chrono::Datelike::year));
            }
        }
        for y in plan_years {
            let clerk_entered = calendar
                .days_off
                .iter()
                .chain(&calendar.working_days)
                .any(|(d, _)| chrono::Datelike::year(d) == y);
            if !official.contains(&y) && !clerk_entered {
                self.report(Diagnostic::warning(
                    m.key_pos("tasks").or(Some(m.pos)),
                    crate::tr!("nhacviec chưa có thông báo nghỉ chính thức của năm {y}: dùng các ngày lễ theo luật, Tết và 2/9 là ước đoán", "nhacviec has no official days-off notice for {y}: it uses the statutory holidays, with Tết and 2/9 guessed"),
                ).with_hint(crate::tr!("khi thông báo của năm được ban hành, thêm các ngày đó vào `calendar:` → `days_off:` và `working_days:` (ví dụ `{y}-02-05: Tết Nguyên đán`)", "when the year's notice is published, add its days under `calendar:` → `days_off:` and `working_days:` (e.g. `{y}-02-05: Tết Nguyên đán`)")));
            }
        }
    }
}

pub(super) struct Names<'a> {
    pub(super) offices: &'a HashMap<String, usize>,
    pub(super) groups: &'a BTreeMap<String, Vec<String>>,
    pub(super) policies: &'a BTreeMap<String, Policy>,
    pub(super) sections: &'a BTreeMap<String, String>,
}

/// The days an occurrence named in `done:` may fall on: one date, or a month's or a
/// quarter's days (`Quý I/2024`: the quarterly report due 18/03/2024).
pub fn occurrence_span(s: &str) -> Option<(NaiveDate, NaiveDate)> {
    let f = crate::plan::deadline::fold(s);
    let f = f.trim();
    if let Ok(d) = NaiveDate::parse_from_str(f, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(f, "%d/%m/%Y"))
    {
        return Some((d, d));
    }
    let end = match crate::plan::deadline::parse_phrase(s) {
        Ok(crate::plan::deadline::Phrase::Date(d)) => d,
        _ => return None,
    };
    let months = if f.starts_with("quy") || f.starts_with("trong quy") {
        3
    } else if f.starts_with("thang") || f.starts_with("trong thang") {
        1
    } else {
        12
    };
    let first = chrono::Datelike::with_day(&end, 1)? - chrono::Months::new(months - 1);
    Some((first, end))
}
