//! `log --completions`: the completions trail (`done`, `undone`, confirmed email links),
//! oldest first.

use super::View;
use super::table::Table;
use crate::delivery::ledger::Completion;
use chrono::SecondsFormat;
use chrono_tz::Tz;
use std::io::{self, Write};

const COLUMNS: &[(&str, &str)] = &[
    ("recorded_at", "ghi lúc"),
    ("task", "nhiệm vụ"),
    ("office", "đơn vị"),
    ("occurrence", "kỳ"),
    ("done_on", "ngày hoàn thành"),
    ("action", "ghi nhận"),
    ("source", "nguồn"),
    ("client", "máy"),
    ("note", "ghi chú"),
];

/// Writes the rows in the order given. An empty office or occurrence means every one.
pub fn write_completions(
    w: &mut dyn Write,
    rows: &[Completion],
    tz: Tz,
    view: &View,
) -> io::Result<()> {
    let table_view = view.format == super::Format::Table;
    let mut table = Table::new(COLUMNS)
        .narrow(&[
            "recorded_at",
            "task",
            "office",
            "occurrence",
            "done_on",
            "action",
            "source",
        ])
        .whole(&["recorded_at", "task", "office", "done_on"]);
    for c in rows {
        let e = &c.entry;
        let local = c.recorded_at.with_timezone(&tz);
        table.push(vec![
            if table_view {
                local.format("%d/%m/%Y %H:%M").to_string()
            } else {
                local.to_rfc3339_opts(SecondsFormat::Secs, false)
            },
            e.task.clone(),
            e.office.clone().unwrap_or_default(),
            match e.occurrence {
                None => String::new(),
                Some((a, b)) if a == b => a.to_string(),
                Some((a, b)) => format!("{a}..{b}"),
            },
            e.done_on.to_string(),
            if e.undone { "undone" } else { "done" }.to_string(),
            e.source.as_str().to_string(),
            e.client.clone().unwrap_or_default(),
            e.note.clone().unwrap_or_default(),
        ]);
    }
    table.write(w, view)
}
