//! `nhacviec check`'s summary of a valid config.

use super::format_local;
use crate::plan::config::Config;
use crate::plan::planner::Nudge;
use crate::{t, tr};
use std::io::{self, Write};

/// What `check` found, once the config loaded.
pub struct Summary<'a> {
    pub config: &'a Config,
    /// How many tasks have no date yet.
    pub unscheduled: usize,
    /// The first nudge that will go out, if any is planned.
    pub next: Option<&'a Nudge>,
    /// How many warnings were printed (to stderr) while loading.
    pub warnings: usize,
}

/// The summary: the plan's title, the offices and tasks counted, the next nudge.
pub fn write_check(w: &mut dyn Write, s: &Summary<'_>) -> io::Result<()> {
    let config = s.config;
    let reachable = config
        .offices
        .iter()
        .filter(|o| !o.emails.is_empty())
        .count();
    let path = config.path.display();
    writeln!(w, "{}", tr!("{path}: hợp lệ", "{path}: OK"))?;
    if !config.plan.title.is_empty() {
        let title = &config.plan.title;
        writeln!(w, "{}", tr!("  kế hoạch:  {title}", "  plan:      {title}"))?;
    }
    let (offices, groups) = (config.offices.len(), config.groups.len());
    writeln!(
        w,
        "{}",
        tr!(
            "  đơn vị:    {offices} ({reachable} có địa chỉ email), {groups} nhóm",
            "  offices:   {offices} ({reachable} with an email address), {groups} groups"
        )
    )?;
    let (tasks, unscheduled) = (config.tasks.len(), s.unscheduled);
    let scheduled = tasks - unscheduled;
    writeln!(
        w,
        "{}",
        tr!(
            "  nhiệm vụ:  {tasks} ({scheduled} đã có lịch, {unscheduled} chưa có ngày)",
            "  tasks:     {tasks} ({scheduled} scheduled, {unscheduled} with no date yet)"
        )
    )?;
    match s.next {
        Some(n) => {
            let (at, task, office) = (format_local(&n.send_at), &n.task, &n.office);
            let kind = super::plan::kind_label(&n.kind);
            writeln!(
                w,
                "{}",
                tr!(
                    "  lần nhắc tới: {at} — {task} gửi {office} ({kind})",
                    "  next nudge: {at} — {task} to {office} ({kind})"
                )
            )?
        }
        None => writeln!(
            w,
            "{}",
            t!(
                "  lần nhắc tới: chưa có lần nào",
                "  next nudge: none planned"
            )
        )?,
    }
    if s.warnings > 0 {
        let n = s.warnings;
        writeln!(
            w,
            "{}",
            tr!(
                "  {n} cảnh báo, xem ở trên",
                "  {n} warning(s), shown above"
            )
        )?;
    }
    Ok(())
}
