//! `done:`: when a task, one of its offices, or one of its occurrences was done, and the
//! spans that name an occurrence (`Quý I/2024`, `Tháng 06/2024`, a date).

use super::*;
use crate::plan::diag::suggest;
use crate::plan::yaml::{Key, MapReader, Node, Value};
use chrono::NaiveDate;
use std::collections::BTreeMap;

impl Reader<'_> {
    /// `done: 2024-03-01` for the whole task, one date per office, or a list of entries
    /// naming an occurrence (by its date or its period: `Quý I/2024`, `Tháng 06/2024`)
    /// and/or an office: `done: [{ occurrence: Quý I/2024, office: hctc, date: 2024-03-15 }]`.
    pub(super) fn done(
        &self,
        n: &Node,
        what: &str,
        lead: &[String],
        cooperating: &[String],
        plan: &PlanInfo,
    ) -> Done {
        match &n.value {
            Value::Null => Done::Open,
            Value::Seq(items) => Done::List(
                items
                    .iter()
                    .filter_map(|item| self.done_entry(item, what, lead, cooperating, plan))
                    .collect(),
            ),
            Value::Map(entries) => self.done_per_office(entries, what, lead, cooperating, plan),
            _ => self
                .value(n, "`done`")
                .filter(|d| self.plausible_year(*d, plan, n.pos, &format!("{what}: `done`")))
                .map(Done::All)
                .unwrap_or_default(),
        }
    }

    /// One entry of a `done:` list: `{ occurrence: Quý I/2024, office: hctc, date: … }`.
    fn done_entry(
        &self,
        item: &Node,
        what: &str,
        lead: &[String],
        cooperating: &[String],
        plan: &PlanInfo,
    ) -> Option<DoneEntry> {
        let m = self.map(
            item,
            crate::t!("một mục `done`", "a `done` entry"),
            &["occurrence", "office", "date"],
        )?;
        let occurrence = m
            .get("occurrence")
            .and_then(|o| self.done_occurrence(o, what));
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
        let on = self.done_date(&m, what, plan)?;
        Some(DoneEntry {
            occurrence,
            office,
            on,
        })
    }

    /// The `occurrence:` of a `done:` entry, as the span of days it may fall on.
    fn done_occurrence(&self, o: &Node, what: &str) -> Option<(NaiveDate, NaiveDate)> {
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
    }

    /// The `date:` of a `done:` entry, which it must have.
    fn done_date(&self, m: &MapReader, what: &str, plan: &PlanInfo) -> Option<NaiveDate> {
        match m.get("date") {
            Some(v) => self
                .value(v, "`date`")
                .filter(|d| self.plausible_year(*d, plan, v.pos, &format!("{what}: `done`"))),
            None => {
                self.error(
                    m.pos,
                    crate::tr!("{what}: một mục `done` cần `date:`, ngày hoàn thành", "{what}: a `done` entry needs `date:`, the day it was done"),
                    crate::t!("ví dụ `- { occurrence: Quý I/2024, date: 2024-03-15 }` (không dùng `on:`, YAML đọc nó là `true`)", "e.g. `- { occurrence: Quý I/2024, date: 2024-03-15 }` (not `on:`, which YAML reads as `true`)"),
                );
                None
            }
        }
    }

    /// `done: { hctc: 2024-03-01, kstthc: 2024-03-05 }`: one date per office.
    fn done_per_office(
        &self,
        entries: &[(Key, Node)],
        what: &str,
        lead: &[String],
        cooperating: &[String],
        plan: &PlanInfo,
    ) -> Done {
        let mut per = BTreeMap::new();
        for (k, v) in entries {
            if !lead.iter().any(|o| *o == k.name) && !cooperating.iter().any(|o| *o == k.name) {
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
                per.insert(k.name.to_string(), d);
            }
        }
        Done::PerOffice(per)
    }
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
