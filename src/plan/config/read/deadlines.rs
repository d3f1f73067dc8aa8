//! A task's `deadline:` in every written form: the short phrase, or a map with `date`,
//! `dates`, `after`, `every` or `checkpoints` beside the phrase.

use super::*;
use crate::plan::deadline::{self, DayOfMonth, Period, Periodic, Phrase, Rule, Unscheduled};
use crate::plan::diag::Pos;
use crate::plan::yaml::{MapReader, Node, Value};
use chrono::NaiveDate;

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

/// At most this many phrases are remembered: a plan of only distinct phrases is read as
/// before, without a map of all of them.
const PHRASES_KEPT: usize = 4096;

impl Reader<'_> {
    pub(super) fn deadline(&self, node: &Node, what: &str, plan: &PlanInfo) -> Option<Deadline> {
        // The short form: only the phrase.
        if let Value::Scalar(phrase) = &node.value {
            // A phrase read before without a problem means what it meant then: the plan's
            // year, the only other thing it depends on, is the same for every task.
            if let Some((rule, exclusive)) = self.phrases.borrow().get(&**phrase) {
                return Some(Deadline {
                    exclusive: *exclusive,
                    phrase: phrase.to_string(),
                    rule: rule.clone(),
                });
            }
            let problems = self.diags.borrow().len();
            // Folded once, for the phrase's meaning and for `trước` (exclusive).
            let folded = deadline::fold(phrase);
            let rule = match deadline::parse_phrase_folded(phrase, &folded) {
                Ok(p) => self.phrase_rule(p, node.pos, what, plan)?,
                Err(e) => {
                    self.error(node.pos, format!("{what}: {}", e.message), e.hint);
                    return None;
                }
            };
            let exclusive = deadline::is_exclusive_folded(&folded);
            let mut phrases = self.phrases.borrow_mut();
            if self.diags.borrow().len() == problems && phrases.len() < PHRASES_KEPT {
                phrases.insert(Box::from(&**phrase), (rule.clone(), exclusive));
            }
            return Some(Deadline {
                exclusive,
                phrase: phrase.to_string(),
                rule,
            });
        }
        let whose = crate::tr!("hạn của {what}", "the deadline of {what}");
        let m = self.map(node, &whose, DEADLINE_KEYS)?;
        let phrase_node = m.get("phrase");
        let phrase = self.req_text(&m, "phrase")?;
        let folded = deadline::fold(&phrase);
        let parsed = match deadline::parse_phrase_folded(&phrase, &folded) {
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
            exclusive: deadline::is_exclusive_folded(&folded),
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
}
