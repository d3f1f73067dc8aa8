//! `nhacviec plan --format ics`: the feed of [`crate::plan::ics`], stamped now.

use std::io::Write;

use crate::plan::config::Config;

/// Writes the feed. `office`/`task` keep only theirs. The whole plan is written, whatever
/// the ledger holds: a calendar shows deadlines, not what is left to send.
pub fn write(
    w: &mut dyn Write,
    cfg: &Config,
    office: Option<&str>,
    task: Option<&str>,
) -> std::io::Result<()> {
    let now = crate::service::clock::Clock::real().now();
    w.write_all(crate::plan::ics::render(cfg, office, task, now).as_bytes())
}
