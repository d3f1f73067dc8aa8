//! `nhacviec check`'s summary of a valid config.

use super::format_local;
use crate::plan::config::Config;
use crate::plan::planner::Nudge;
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
    writeln!(w, "{}: OK", config.path.display())?;
    if !config.plan.title.is_empty() {
        writeln!(w, "  plan:      {}", config.plan.title)?;
    }
    writeln!(
        w,
        "  offices:   {} ({} with an email address), {} groups",
        config.offices.len(),
        reachable,
        config.groups.len()
    )?;
    writeln!(
        w,
        "  tasks:     {} ({} scheduled, {} with no date yet)",
        config.tasks.len(),
        config.tasks.len() - s.unscheduled,
        s.unscheduled
    )?;
    match s.next {
        Some(n) => writeln!(
            w,
            "  next nudge: {} — {} to {} ({})",
            format_local(&n.send_at),
            n.task,
            n.office,
            super::plan::kind_label(&n.kind)
        )?,
        None => writeln!(w, "  next nudge: none planned")?,
    }
    if s.warnings > 0 {
        writeln!(w, "  {} warning(s), shown above", s.warnings)?;
    }
    Ok(())
}
