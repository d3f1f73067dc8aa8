//! The seam between the ledger's completions and the planner: [`apply`] merges them into the
//! config's `done:`, so that the YAML and the ledger both stop reminders and nothing
//! downstream knows which source said so.

use crate::delivery::ledger::{Completion, Ledger, LedgerError};
use crate::plan::config::{Config, Done, DoneEntry, Task};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Merges the standing completions into the tasks' `done:` lists. Completions of tasks no
/// longer in the config are ignored. When every lead office of a task completed the same
/// occurrence, its cooperating offices are done with it too (a group's members each complete
/// their own share).
pub fn apply(cfg: &mut Config, done: &[Completion]) {
    // Per task and occurrence: the lead offices' completion days.
    type Occ = Option<(chrono::NaiveDate, chrono::NaiveDate)>;
    let mut by_lead: BTreeMap<(&str, Occ), BTreeMap<&str, chrono::NaiveDate>> = BTreeMap::new();
    for c in done {
        let e = &c.entry;
        let Some(task) = cfg.task_mut(&e.task) else {
            continue;
        };
        if let Some(o) = &e.office
            && task.lead.contains(o)
        {
            let day = by_lead.entry((&e.task, e.occurrence)).or_default();
            let d = day.entry(o).or_insert(e.done_on);
            *d = (*d).max(e.done_on);
        }
        push(
            task,
            DoneEntry {
                occurrence: e.occurrence,
                office: e.office.clone(),
                on: e.done_on,
            },
        );
    }
    for ((id, occurrence), leads) in by_lead {
        let Some(task) = cfg.task_mut(id) else {
            continue;
        };
        if !task.lead.iter().all(|l| leads.contains_key(l.as_str())) {
            continue;
        }
        let on = leads.values().copied().max().expect("a lead completed");
        for office in task.cooperating.clone() {
            push(
                task,
                DoneEntry {
                    occurrence,
                    office: Some(office),
                    on,
                },
            );
        }
    }
}

/// `cfg` with the ledger's standing completions applied (the same config when there are
/// none).
pub fn applied(cfg: &Arc<Config>, ledger: &Ledger) -> Result<Arc<Config>, LedgerError> {
    Ok(applied_from(cfg, &ledger.completions()?))
}

/// `cfg` with these standing completions applied (the same config when there are none).
pub fn applied_from(cfg: &Arc<Config>, done: &[Completion]) -> Arc<Config> {
    if done.is_empty() {
        return Arc::clone(cfg);
    }
    let mut c = Config::clone(cfg);
    apply(&mut c, done);
    Arc::new(c)
}

/// Adds one entry to the task's `done:`, turning the other forms into the list form (each
/// means the same as a list of entries for every occurrence).
fn push(task: &mut Task, entry: DoneEntry) {
    let mut list = match std::mem::take(&mut task.done) {
        Done::Open => Vec::new(),
        Done::All(on) => vec![DoneEntry {
            occurrence: None,
            office: None,
            on,
        }],
        Done::PerOffice(m) => m
            .into_iter()
            .map(|(office, on)| DoneEntry {
                occurrence: None,
                office: Some(office),
                on,
            })
            .collect(),
        Done::List(v) => v,
    };
    list.push(entry);
    task.done = Done::List(list);
}
