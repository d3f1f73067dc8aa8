//! `reminders:`: the named reminder policies.

use super::*;
use crate::plan::diag::suggest;
use crate::plan::yaml::{Node, Value};
use std::collections::BTreeMap;

const POLICY_KEYS: &[&str] = &[
    "before",
    "on_day",
    "overdue_every",
    "overdue_weekly_after",
    "overdue_limit",
    "escalate",
    "cooperating",
];
const ESCALATE_KEYS: &[&str] = &["head_after", "leadership_after"];

impl Reader<'_> {
    pub(super) fn policies(&self, node: Option<&Node>) -> BTreeMap<String, Policy> {
        let mut out = BTreeMap::new();
        if let Some(node) = node {
            if let Value::Map(entries) = &node.value {
                for (k, v) in entries {
                    if let Some(p) = self.policy(&k.name, v) {
                        out.insert(k.name.to_string(), p);
                    }
                }
            } else {
                self.error(
                    node.pos,
                    crate::tr!(
                        "`reminders` phải là một khối các chính sách có tên",
                        "`reminders` must be a block of named policies"
                    ),
                    crate::tr!(
                        "ví dụ:\nreminders:\n  default:\n    before: [14d, 7d, 3wd, 1wd]",
                        "e.g.\nreminders:\n  default:\n    before: [14d, 7d, 3wd, 1wd]"
                    ),
                );
            }
        }
        out.entry("default".to_string())
            .or_insert_with(Policy::builtin);
        out
    }

    pub(super) fn policy(&self, name: &str, node: &Node) -> Option<Policy> {
        let whose = crate::tr!("chính sách nhắc `{name}`", "reminder policy `{name}`");
        let m = self.map(node, &whose, POLICY_KEYS)?;
        let builtin = Policy::builtin();
        let mut before: Vec<Offset> = match m.get("before") {
            Some(n) => self
                .texts(n, "`before`")
                .into_iter()
                .filter_map(|(s, p)| self.parse(&s, p, "`before`").map(|Before(o)| o))
                .collect(),
            None => builtin.before.clone(),
        };
        before.sort_by(|a, b| b.approx_days().total_cmp(&a.approx_days()));
        before.dedup();
        let on_day = self.opt(&m, "on_day").unwrap_or(true);
        let overdue_every = match m.get("overdue_every") {
            Some(n) if matches!(&n.value, Value::Scalar(s) if &**s == "false" || &**s == "never") => {
                None
            }
            Some(n) => self.checked(n, "`overdue_every`", |o: Offset| match o.n {
                0 => Err(Problem::new(
                    crate::tr!(
                        "`overdue_every` không thể là 0",
                        "`overdue_every` cannot be 0"
                    ),
                    crate::tr!(
                        "viết ví dụ `3wd`, hoặc `never` để không nhắc khi quá hạn",
                        "write e.g. `3wd`, or `never` for no overdue reminders"
                    ),
                )),
                _ => offset_in_range(o, "`overdue_every`"),
            }),
            None => builtin.overdue_every,
        };
        let overdue_weekly_after = match m.get("overdue_weekly_after") {
            Some(n) if matches!(&n.value, Value::Scalar(s) if &**s == "false" || &**s == "never") => {
                None
            }
            Some(_) => self.opt::<Offset>(&m, "overdue_weekly_after"),
            None => builtin.overdue_weekly_after,
        };
        let overdue_limit = match m.get("overdue_limit") {
            Some(n) if matches!(&n.value, Value::Scalar(s) if &**s == "none" || &**s == "unlimited") => {
                None
            }
            Some(_) => self.opt_checked(&m, "overdue_limit", |v: u32| match v {
                0..=MAX_OVERDUE_LIMIT => Ok(v),
                _ => Err(Problem::new(
                    crate::tr!(
                        "`overdue_limit` {v} nằm ngoài khoảng cho phép",
                        "`overdue_limit` {v} is out of range"
                    ),
                    crate::tr!(
                        "viết một số từ 0 đến {MAX_OVERDUE_LIMIT}, hoặc `unlimited`",
                        "write a number from 0 to {MAX_OVERDUE_LIMIT}, or `unlimited`"
                    ),
                )),
            }),
            None => builtin.overdue_limit,
        };
        let (head_after, leadership_after) = match m.get("escalate") {
            Some(n) => self.escalate(n, &builtin),
            None => (builtin.head_after, builtin.leadership_after),
        };
        let cooperating = match m.get("cooperating") {
            None => builtin.cooperating,
            Some(n) => self.coop_rule(n),
        };
        Some(Policy {
            name: name.to_string(),
            before,
            on_day,
            overdue_every,
            overdue_weekly_after,
            overdue_limit,
            head_after,
            leadership_after,
            cooperating,
        })
    }

    /// `escalate:`: when the head, then the leadership, are added to overdue nudges.
    fn escalate(&self, n: &Node, builtin: &Policy) -> (Option<Offset>, Option<Offset>) {
        let Some(e) = self.map(n, "`escalate`", ESCALATE_KEYS) else {
            return (builtin.head_after, builtin.leadership_after);
        };
        let head_after = self.opt(&e, "head_after").map(|Span(o)| o);
        let leadership_after = self.opt(&e, "leadership_after").map(|Span(o)| o);
        if let (Some(h), Some(l)) = (head_after, leadership_after)
            && l.approx_days() < h.approx_days()
        {
            self.warn(
                n.pos,
                crate::tr!(
                    "lãnh đạo được báo trước cả trưởng đơn vị",
                    "the leadership is added before the head"
                ),
                crate::tr!(
                    "thường thì `head_after` ngắn hơn `leadership_after`",
                    "usually `head_after` is shorter than `leadership_after`"
                ),
            );
        }
        (head_after, leadership_after)
    }

    /// `cooperating: [first, last]`: which nudges the cooperating offices receive.
    fn coop_rule(&self, n: &Node) -> CoopRule {
        let mut c = CoopRule::default();
        for (s, p) in self.texts(n, "`cooperating`") {
            match s.as_str() {
                "first" => c.first = true,
                "last" => c.last = true,
                "all" => {
                    c.all_before = true;
                    c.on_day = true;
                }
                "before" => c.all_before = true,
                "on_day" => c.on_day = true,
                "overdue" => c.overdue = true,
                "none" => {}
                other => self.error(
                    p,
                    crate::tr!(
                        "không có lựa chọn `{other}` cho `cooperating`",
                        "unknown choice `{other}` for `cooperating`"
                    ),
                    crate::tr!(
                        "{}; các lựa chọn là first, last, before, on_day, overdue, all, none",
                        "{}; the choices are first, last, before, on_day, overdue, all, none",
                        suggest(
                            other,
                            [
                                "first", "last", "before", "on_day", "overdue", "all", "none"
                            ]
                        )
                    ),
                ),
            }
        }
        c
    }
}

/// The most overdue reminders a policy may ask for.
const MAX_OVERDUE_LIMIT: u32 = 400;

/// An offset in `before:`: at least a day, since `0d` is the deadline itself, and at most
/// [`MAX_OFFSET_DAYS`].
struct Before(Offset);

impl FromNode for Before {
    fn from_text(s: &str, what: &str) -> Result<Self, Problem> {
        match s.parse::<Offset>() {
            Ok(o) if o.n > 0 => offset_in_range(o, what).map(Before),
            Ok(_) => Err(Problem::new(
                crate::tr!(
                    "`0d` trước hạn chính là ngày hạn",
                    "`0d` before the deadline is the deadline itself"
                ),
                crate::tr!(
                    "dùng `on_day: true` để nhắc vào đúng ngày hạn",
                    "use `on_day: true` for a nudge on the day"
                ),
            )),
            Err(e) => Err(Problem::new(
                e,
                crate::tr!(
                    "viết ngày lịch dạng `7d` và ngày làm việc dạng `3wd`",
                    "write calendar days as `7d` and working days as `3wd`"
                ),
            )),
        }
    }
}
