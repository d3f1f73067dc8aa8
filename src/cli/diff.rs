//! `nhacviec diff OLD.yaml NEW.yaml`: what an edit of the plan changes, in words, before
//! `systemctl reload` puts it to work: tasks reassigned, added, removed, deadlines moved,
//! and the reminders of the next days that move from one office to another.
//!
//! The comparison of the two configs is the reload log's ([`crate::service::changes`]):
//! the task changes are worded here in Vietnamese, the rest as the journal words them.
//! The reminders are the planner's, on both configs, as of one `now`, with nothing known
//! as sent (the edit's effect, not the ledger's).

use super::exit::{Exit, usage};
use super::render::{self, plan::kind_label};
use super::{ConfigArg, load_or_print, now_or};
use crate::plan::config::{Config, Done, Loaded};
use crate::plan::planner::{self, Nudge};
use crate::service::changes;
use anyhow::Result;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::process::ExitCode;

pub(super) fn diff(
    old: &Path,
    new: &Path,
    office: Option<&str>,
    days: u32,
    at: Option<&str>,
) -> Result<ExitCode> {
    let load = |p: &Path| {
        load_or_print(&ConfigArg {
            path: p.to_path_buf(),
        })
    };
    let (Some(Loaded { config: old, .. }), Some(Loaded { config: new, .. })) =
        (load(old)?, load(new)?)
    else {
        return Ok(Exit::Failure.into());
    };
    if let Some(id) = office
        && old.office(id).is_none()
        && new.office(id).is_none()
    {
        return Err(usage(crate::tr!(
            "không có đơn vị `{id}` trong cả hai kế hoạch",
            "there is no office `{id}` in either plan"
        )));
    }
    let tz = new.schedule.timezone;
    let now = now_or(at, tz)?;
    let report = compare(&old, &new, office, now, days);
    render::to_stdout(crate::t!("các khác biệt", "the differences"), |w| {
        w.write_all(report.as_bytes())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The whole report, as text.
pub fn compare(
    old: &Config,
    new: &Config,
    office: Option<&str>,
    now: DateTime<Utc>,
    days: u32,
) -> String {
    let mut out = String::new();
    let tasks = task_changes(old, new, office);
    // What the reload log says beyond the tasks (offices, schedule, mail settings).
    let others: Vec<String> = if office.is_none() {
        changes::describe(old, new)
            .into_iter()
            .filter(|l| !l.starts_with("task "))
            .collect()
    } else {
        Vec::new()
    };
    if tasks.is_empty() && others.is_empty() {
        out.push_str(text::no_task_changes());
        out.push('\n');
    } else {
        out.push_str(text::tasks_heading());
        out.push('\n');
        for l in tasks.iter().chain(&others) {
            out.push_str("  • ");
            out.push_str(l);
            out.push('\n');
        }
    }
    out.push('\n');
    let tz = new.schedule.timezone;
    let from = now.with_timezone(&tz).date_naive();
    out.push_str(&text::reminders_heading(days, from));
    out.push('\n');
    let moves = reminder_moves(old, new, office, now, days);
    if moves.is_empty() {
        out.push_str(text::no_reminder_changes());
        out.push('\n');
    }
    for l in moves {
        out.push_str("  ");
        out.push_str(&l);
        out.push('\n');
    }
    out
}

fn office_names(cfg: &Config, ids: &[String]) -> String {
    if ids.is_empty() {
        return text::nobody().into();
    }
    ids.iter()
        .map(|id| name(cfg, id))
        .collect::<Vec<_>>()
        .join(", ")
}

fn name(cfg: &Config, id: &str) -> String {
    match cfg.office(id) {
        Some(o) => format!("{} ({id})", o.name),
        None => id.to_string(),
    }
}

/// The task-level changes, in Vietnamese; with `office`, only those touching it.
fn task_changes(old: &Config, new: &Config, office: Option<&str>) -> Vec<String> {
    let touches =
        |ids: &[&Vec<String>]| office.is_none_or(|o| ids.iter().any(|v| v.iter().any(|i| i == o)));
    let mut out = Vec::new();
    for t in &new.tasks {
        let Some(o) = old.task(&t.id) else {
            if touches(&[&t.lead, &t.cooperating]) {
                out.push(text::added(
                    &t.id,
                    &t.title,
                    &t.deadline.phrase,
                    &office_names(new, &t.lead),
                ));
            }
            continue;
        };
        if !touches(&[&t.lead, &t.cooperating, &o.lead, &o.cooperating]) {
            continue;
        }
        if o.lead != t.lead {
            out.push(text::reassigned(
                &t.id,
                &office_names(old, &o.lead),
                &office_names(new, &t.lead),
            ));
        }
        if o.cooperating != t.cooperating {
            out.push(text::cooperating(
                &t.id,
                &office_names(new, &t.cooperating),
                &office_names(old, &o.cooperating),
            ));
        }
        if o.deadline != t.deadline {
            out.push(text::deadline(
                &t.id,
                &o.deadline.phrase,
                &t.deadline.phrase,
            ));
        }
        if o.done != t.done {
            out.push(match &t.done {
                Done::Open => text::reopened(&t.id),
                Done::All(d) => text::done(&t.id, *d),
                Done::PerOffice(m) => text::done_by(
                    &t.id,
                    &m.iter()
                        .map(|(o, d)| format!("{o} ({})", d.format("%d/%m/%Y")))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                Done::List(entries) => text::done_by(
                    &t.id,
                    &entries
                        .iter()
                        .map(|e| {
                            let who = e.office.as_deref().unwrap_or(text::every_office());
                            match e.occurrence {
                                Some((_, occ)) => text::done_for(who, occ, e.on),
                                None => format!("{who} ({})", e.on.format("%d/%m/%Y")),
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            });
        }
    }
    for o in &old.tasks {
        if new.task(&o.id).is_none() && touches(&[&o.lead, &o.cooperating]) {
            out.push(text::removed(&o.id, &o.title));
        }
    }
    out
}

/// One reminder, whoever receives it: the sweep, the task, its deadline and the kind
/// (in time order).
type Slot = (DateTime<chrono_tz::Tz>, String, NaiveDate, String);

fn slots(cfg: &Config, now: DateTime<Utc>, days: u32) -> BTreeMap<Slot, BTreeSet<String>> {
    let tz = cfg.schedule.timezone;
    let until = now + Duration::days(days.into());
    let cal = cfg.work_calendar(now.with_timezone(&tz).year());
    let plan = planner::plan(cfg, &cal, now, until, &HashSet::new());
    let mut map: BTreeMap<Slot, BTreeSet<String>> = BTreeMap::new();
    let upcoming = |n: &&Nudge| n.send_at.with_timezone(&Utc) >= now;
    for n in plan.due.iter().chain(&plan.upcoming).filter(upcoming) {
        map.entry((
            n.send_at,
            n.task.to_string(),
            n.occurrence,
            kind_label(&n.kind),
        ))
        .or_default()
        .insert(n.office.to_string());
    }
    map
}

/// The reminders of the next `days` whose offices differ between the plans.
fn reminder_moves(
    old: &Config,
    new: &Config,
    office: Option<&str>,
    now: DateTime<Utc>,
    days: u32,
) -> Vec<String> {
    let before = slots(old, now, days);
    let after = slots(new, now, days);
    let keys: BTreeSet<&Slot> = before.keys().chain(after.keys()).collect();
    let empty = BTreeSet::new();
    let mut out = Vec::new();
    for key in keys {
        let was = before.get(key).unwrap_or(&empty);
        let is = after.get(key).unwrap_or(&empty);
        let gone: Vec<String> = was.difference(is).cloned().collect();
        let came: Vec<String> = is.difference(was).cloned().collect();
        if gone.is_empty() && came.is_empty() {
            continue;
        }
        if office.is_some_and(|o| !gone.iter().chain(&came).any(|i| i == o)) {
            continue;
        }
        let (send_at, task, occurrence, kind) = key;
        let when = send_at.format("%d/%m/%Y %H:%M").to_string();
        let what = text::reminder(task, kind, *occurrence);
        out.push(match (gone.is_empty(), came.is_empty()) {
            (false, false) => text::moved(
                &when,
                &what,
                &office_names(old, &gone),
                &office_names(new, &came),
            ),
            (false, true) => text::dropped(&when, &what, &office_names(old, &gone)),
            _ => text::new_reminder(&when, &what, &office_names(new, &came)),
        });
    }
    out
}

/// The words of `diff`, in one place for the message catalogue.
mod text {
    use crate::{t, tr};
    use chrono::NaiveDate;

    pub fn tasks_heading() -> &'static str {
        t!("Thay đổi trong kế hoạch:", "Changes in the plan:")
    }
    pub fn no_task_changes() -> &'static str {
        t!(
            "Kế hoạch không đổi nhiệm vụ nào.",
            "The plan changes no task."
        )
    }
    pub fn no_reminder_changes() -> &'static str {
        t!(
            "  Không có lời nhắc nào đổi đơn vị nhận.",
            "  No reminder changes its recipients."
        )
    }
    pub fn nobody() -> &'static str {
        t!("không đơn vị nào", "no office")
    }
    pub fn every_office() -> &'static str {
        t!("mọi đơn vị", "every office")
    }
    pub fn done_for(who: &str, occ: NaiveDate, on: NaiveDate) -> String {
        let (occ, on) = (occ.format("%d/%m/%Y"), on.format("%d/%m/%Y"));
        tr!("{who}, hạn {occ} ({on})", "{who}, deadline {occ} ({on})")
    }

    pub fn reassigned(task: &str, from: &str, to: &str) -> String {
        tr!(
            "Nhiệm vụ {task} giao lại: chủ trì từ {from} sang {to}",
            "Task {task} reassigned: lead from {from} to {to}"
        )
    }
    pub fn added(task: &str, title: &str, phrase: &str, lead: &str) -> String {
        tr!(
            "Thêm nhiệm vụ {task} \"{title}\", hạn {phrase}, chủ trì {lead}",
            "Added task {task} \"{title}\", deadline {phrase}, lead {lead}"
        )
    }
    pub fn removed(task: &str, title: &str) -> String {
        tr!(
            "Bỏ nhiệm vụ {task} \"{title}\"",
            "Removed task {task} \"{title}\""
        )
    }
    pub fn cooperating(task: &str, now: &str, was: &str) -> String {
        tr!(
            "Nhiệm vụ {task}: đơn vị phối hợp nay là {now} (trước là {was})",
            "Task {task}: cooperating offices now {now} (were {was})"
        )
    }
    pub fn deadline(task: &str, was: &str, now: &str) -> String {
        if was == now {
            tr!(
                "Nhiệm vụ {task}: đổi ngày của hạn \"{now}\"",
                "Task {task}: the dates of the deadline \"{now}\" changed"
            )
        } else {
            tr!(
                "Nhiệm vụ {task}: dời hạn từ \"{was}\" sang \"{now}\"",
                "Task {task}: deadline moved from \"{was}\" to \"{now}\""
            )
        }
    }
    pub fn reopened(task: &str) -> String {
        tr!(
            "Nhiệm vụ {task} mở lại (bỏ đánh dấu đã xong)",
            "Task {task} reopened (no longer marked done)"
        )
    }
    pub fn done(task: &str, d: NaiveDate) -> String {
        let d = d.format("%d/%m/%Y");
        tr!(
            "Nhiệm vụ {task} đã xong ngày {d}",
            "Task {task} done on {d}"
        )
    }
    pub fn done_by(task: &str, who: &str) -> String {
        tr!(
            "Nhiệm vụ {task} đã xong ở: {who}",
            "Task {task} done by: {who}"
        )
    }
    pub fn reminders_heading(days: u32, from: NaiveDate) -> String {
        let from = from.format("%d/%m/%Y");
        tr!(
            "Lời nhắc trong {days} ngày tới (từ {from}):",
            "Reminders in the next {days} days (from {from}):"
        )
    }
    pub fn reminder(task: &str, kind: &str, deadline: NaiveDate) -> String {
        let deadline = deadline.format("%d/%m/%Y");
        tr!(
            "{task} ({kind}, hạn {deadline})",
            "{task} ({kind}, deadline {deadline})"
        )
    }
    pub fn moved(when: &str, what: &str, from: &str, to: &str) -> String {
        tr!(
            "{when}  {what}: chuyển từ {from} sang {to}",
            "{when}  {what}: moves from {from} to {to}"
        )
    }
    pub fn dropped(when: &str, what: &str, who: &str) -> String {
        tr!(
            "{when}  {what}: thôi gửi cho {who}",
            "{when}  {what}: no longer to {who}"
        )
    }
    pub fn new_reminder(when: &str, what: &str, who: &str) -> String {
        tr!(
            "{when}  {what}: gửi thêm cho {who}",
            "{when}  {what}: now also to {who}"
        )
    }
}
