//! `reminders:`: the named reminder policies.

use super::*;
use crate::plan::diag::{Diagnostic, suggest};
use crate::plan::yaml::{Node, Value};
use std::collections::BTreeMap;

const POLICY_KEYS: &[&str] = &[
    "before",
    "on_day",
    "overdue_every",
    "overdue_limit",
    "escalate",
    "cooperating",
];
const ESCALATE_KEYS: &[&str] = &["head_after", "leadership_after"];

impl Reader<'_> {
    pub(super) fn policies(
        &self,
        node: Option<&Node>,
        errs: &mut Vec<Diagnostic>,
    ) -> BTreeMap<String, Policy> {
        let mut out = BTreeMap::new();
        if let Some(node) = node {
            if let Value::Map(entries) = &node.value {
                for (k, v) in entries {
                    if let Some(p) = self.policy(&k.name, v, errs) {
                        out.insert(k.name.clone(), p);
                    }
                }
            } else {
                errs.push(err(
                    node.pos,
                    "`reminders` must be a block of named policies",
                    "e.g.\nreminders:\n  default:\n    before: [14d, 7d, 3wd, 1wd]",
                ));
            }
        }
        out.entry("default".to_string())
            .or_insert_with(Policy::builtin);
        out
    }

    pub(super) fn policy(
        &self,
        name: &str,
        node: &Node,
        errs: &mut Vec<Diagnostic>,
    ) -> Option<Policy> {
        let m = node.map(&format!("reminder policy `{name}`"), POLICY_KEYS, errs)?;
        m.check_unknown(errs);
        let builtin = Policy::builtin();
        let mut before: Vec<Offset> = match m.get("before") {
            Some(n) => n
                .text_list("`before`", errs)
                .into_iter()
                .filter_map(|(s, p)| match s.parse::<Offset>() {
                    Ok(o) if o.n > 0 => Some(o),
                    Ok(_) => {
                        errs.push(err(
                            p,
                            "`0d` before the deadline is the deadline itself",
                            "use `on_day: true` for a nudge on the day",
                        ));
                        None
                    }
                    Err(e) => {
                        errs.push(err(
                            p,
                            e,
                            "write calendar days as `7d` and working days as `3wd`",
                        ));
                        None
                    }
                })
                .collect(),
            None => builtin.before.clone(),
        };
        before.sort_by(|a, b| b.approx_days().total_cmp(&a.approx_days()));
        before.dedup();
        let on_day = m
            .get("on_day")
            .and_then(|n| parse_bool(n, "`on_day`", errs))
            .unwrap_or(true);
        let overdue_every = match m.get("overdue_every") {
            Some(n) if matches!(&n.value, Value::Scalar(s) if s == "false" || s == "never") => None,
            Some(n) => parse_offset(n, "`overdue_every`", errs).filter(|o| {
                if o.n == 0 {
                    errs.push(err(
                        n.pos,
                        "`overdue_every` cannot be 0",
                        "write e.g. `3wd`, or `never` for no overdue reminders",
                    ));
                }
                o.n > 0
            }),
            None => builtin.overdue_every,
        };
        let overdue_limit = m
            .get("overdue_limit")
            .and_then(|n| parse_u32(n, "`overdue_limit`", errs));
        let (mut head_after, mut leadership_after) = (builtin.head_after, builtin.leadership_after);
        if let Some(n) = m.get("escalate")
            && let Some(e) = n.map("`escalate`", ESCALATE_KEYS, errs)
        {
            {
                e.check_unknown(errs);
                head_after = e
                    .get("head_after")
                    .and_then(|n| parse_offset(n, "`head_after`", errs));
                leadership_after = e
                    .get("leadership_after")
                    .and_then(|n| parse_offset(n, "`leadership_after`", errs));
                if let (Some(h), Some(l)) = (head_after, leadership_after)
                    && l.approx_days() < h.approx_days()
                {
                    errs.push(warn(
                        n.pos,
                        "the leadership is added before the head",
                        "usually `head_after` is shorter than `leadership_after`",
                    ));
                }
            }
        }
        let cooperating = match m.get("cooperating") {
            None => builtin.cooperating,
            Some(n) => {
                let mut c = CoopRule::default();
                for (s, p) in n.text_list("`cooperating`", errs) {
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
                        other => errs.push(err(
                            p,
                            format!("unknown choice `{other}` for `cooperating`"),
                            format!("{}; the choices are first, last, before, on_day, overdue, all, none", suggest(other, ["first", "last", "before", "on_day", "overdue", "all", "none"])),
                        )),
                    }
                }
                c
            }
        };
        Some(Policy {
            name: name.to_string(),
            before,
            on_day,
            overdue_every,
            overdue_limit,
            head_after,
            leadership_after,
            cooperating,
        })
    }
}
