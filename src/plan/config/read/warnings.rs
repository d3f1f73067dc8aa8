//! `check`'s warnings about a plan that loads but would not do what the clerk expects:
//! tasks still led to placeholder offices, escalations to a head nobody can email, `done:`
//! dates in the future or outside the plan's years. Given only when `check` asks (it sets
//! [`Env::today`]), so that other commands and the daemon's log do not repeat them.

use super::*;
use crate::calendar::workdays::Dmy;
use crate::plan::deadline::{self, Phrase};
use chrono::Datelike;

impl Reader<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_roles_and_done(
        &self,
        done_written: &[DoneWritten],
        offices: &[Office],
        office_ids: &OfficeIds,
        office_pos: &HashMap<String, Pos>,
        policies: &BTreeMap<String, Policy>,
        tasks: &[Task],
        plan: &PlanInfo,
    ) {
        let Some(today) = self.env.today else {
            return;
        };
        self.check_placeholders(offices, office_pos, tasks);
        self.check_heads(offices, office_ids, office_pos, policies, tasks);
        self.check_done_dates(done_written, tasks, plan, today);
    }

    /// An office marked `placeholder: true` that a task still leads to (as lead or
    /// cooperating office): its reminders would go to a stand-in.
    fn check_placeholders(
        &self,
        offices: &[Office],
        office_pos: &HashMap<String, Pos>,
        tasks: &[Task],
    ) {
        // The tasks of each placeholder, in one pass over the tasks: a plan of 100,000
        // tasks and many placeholders made a scan per placeholder slow.
        let mut led: HashMap<&str, Vec<&str>> = offices
            .iter()
            .filter(|o| o.placeholder)
            .map(|o| (o.id.as_str(), Vec::new()))
            .collect();
        if led.is_empty() {
            return;
        }
        for t in tasks {
            for o in t.lead.iter().chain(&t.cooperating) {
                if let Some(ids) = led.get_mut(o.as_str())
                    && ids.last() != Some(&t.id.as_str())
                {
                    ids.push(t.id.as_str());
                }
            }
        }
        for o in offices.iter().filter(|o| o.placeholder) {
            let ids = &led[o.id.as_str()];
            if ids.is_empty() {
                continue;
            }
            let Some(pos) = office_pos.get(&o.id) else {
                continue;
            };
            self.warn(
                *pos,
                crate::tr!(
                    "đơn vị `{}` ({}) là đơn vị tạm (`placeholder: true`), mà vẫn có {} nhiệm vụ do nó chủ trì: {}", "office `{}` ({}) is a placeholder (`placeholder: true`), and {} task(s) still lead to it: {}",
                    o.id,
                    o.name,
                    ids.len(),
                    list(ids)
                ),
                crate::tr!("viết tên và địa chỉ thật của đơn vị rồi bỏ `placeholder: true`, hoặc giao các nhiệm vụ này cho đơn vị khác", "write the real office's name and address and remove `placeholder: true`, or give these tasks to another office"),
            );
        }
    }

    /// A lead office whose policy escalates overdue reminders to its head, with no `head:`.
    fn check_heads(
        &self,
        offices: &[Office],
        office_ids: &OfficeIds,
        office_pos: &HashMap<String, Pos>,
        policies: &BTreeMap<String, Policy>,
        tasks: &[Task],
    ) {
        let builtin = Policy::builtin();
        // By the office's place, found through the reader's index: one hash per lead
        // (a second map by id and a map of the missing ones hashed every lead twice).
        // Each such office's place in `missing` (4 bytes an office), and there its place
        // among the offices, its tasks and the names of their policies (a few; sorted at
        // the end).
        let mut slot: Vec<u32> = vec![u32::MAX; offices.len()];
        let mut missing: Vec<(usize, Vec<&str>, Vec<&str>)> = Vec::new();
        // The policy of the task before, looked up again only when the name changes.
        let mut last: Option<(&str, &Policy)> = None;
        for t in tasks {
            let policy = match last {
                Some((name, p)) if std::ptr::eq(name, &*t.policy) => p,
                _ => {
                    let p = policies
                        .get(&*t.policy)
                        .or_else(|| policies.get("default"))
                        .unwrap_or(&builtin);
                    last = Some((&*t.policy, p));
                    p
                }
            };
            if policy.head_after.is_none() {
                continue;
            }
            for id in &t.lead {
                let Some(i) = office_ids.get(id) else {
                    continue;
                };
                let o = &offices[i];
                // Offices nobody can email are warned about on their own.
                if o.head.is_none() && !o.emails.is_empty() {
                    if slot[i] == u32::MAX {
                        slot[i] = missing.len() as u32;
                        missing.push((i, Vec::new(), Vec::new()));
                    }
                    let (_, ids, names) = &mut missing[slot[i] as usize];
                    ids.push(t.id.as_str());
                    if !names.contains(&policy.name.as_str()) {
                        names.push(policy.name.as_str());
                    }
                }
            }
        }
        drop(slot);
        let mut missing: Vec<_> = missing
            .into_iter()
            .map(|(i, ids, mut names)| {
                names.sort_unstable();
                (offices[i].id.as_str(), (ids, names))
            })
            .collect();
        missing.sort_unstable_by_key(|(id, _)| *id);
        for (id, (ids, names)) in missing {
            let Some(pos) = office_pos.get(id) else {
                continue;
            };
            self.warn(
                *pos,
                crate::tr!(
                    "đơn vị `{id}` không có `head:`, nhưng chính sách nhắc {} báo việc quá hạn của các nhiệm vụ nó chủ trì ({}) lên trưởng đơn vị: bước đó không đến được ai", "office `{id}` has no `head:`, but the reminder policy {} escalates overdue reminders of the tasks it leads ({}) to the head: that step reaches nobody",
                    names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    list(&ids)
                ),
                crate::tr!(
                    "thêm `head: địa-chỉ` cho đơn vị `{id}`, hoặc cho các nhiệm vụ này một chính sách có `escalate:` không có `head_after`", "add `head: address` to office `{id}`, or give these tasks a policy whose `escalate:` has no `head_after`"
                ),
            );
        }
    }

    /// Every date written under a task's `done:` (a date, one per office, or deeper), in
    /// the future (after `today`) or outside the plan's years.
    fn check_done_dates(
        &self,
        done_written: &[DoneWritten],
        tasks: &[Task],
        plan: &PlanInfo,
        today: NaiveDate,
    ) {
        let years = crate::plan::config::plan_years(plan.year, tasks, true);
        // Work on a December deadline is often finished in January.
        let (Some(first), Some(last)) = (years.first().copied(), years.last().map(|y| y + 1))
        else {
            return;
        };
        for DoneWritten { id, dates } in done_written {
            for &(d, pos) in dates {
                if d > today {
                    self.warn(
                        pos,
                        crate::tr!(
                            "nhiệm vụ {id} được ghi là xong ngày {}, sau hôm nay ({})", "task {id} is marked done on {}, which is after today ({})",
                            Dmy(d),
                            Dmy(today)
                        ),
                        crate::t!("nhiệm vụ xong vào ngày nó được hoàn thành: kiểm tra lại ngày (việc nhắc nó đã dừng rồi)", "a task is done on the day it was finished: check the date (its reminders stop already)"),
                    );
                } else if d.year() < first || d.year() > last {
                    self.warn(
                        pos,
                        crate::tr!(
                            "nhiệm vụ {id} được ghi là xong ngày {}, ngoài các năm của kế hoạch ({first}–{})", "task {id} is marked done on {}, outside the plan's years ({first}–{})",
                            Dmy(d),
                            last - 1
                        ),
                        crate::t!("kiểm tra năm của ngày đó", "check the year of the date"),
                    );
                }
            }
        }
    }
}

/// The dates written under a task's `done:`, kept from its node for the warnings about
/// them: the tasks' nodes are dropped as they are read.
pub(super) struct DoneWritten {
    /// The task's `id:` as written, `?` when it has none.
    id: String,
    dates: Vec<(NaiveDate, Pos)>,
}

impl DoneWritten {
    /// What `item`, one of `tasks:`, writes under `done:`, if it has one.
    pub(super) fn of(item: &Node) -> Option<Self> {
        let Value::Map(entries) = &item.value else {
            return None;
        };
        let (_, done) = entries.iter().find(|(k, _)| k.name == "done")?;
        let id = entries
            .iter()
            .find(|(k, _)| k.name == "id")
            .and_then(|(_, n)| match &n.value {
                Value::Scalar(s) => Some(&**s),
                _ => None,
            })
            .unwrap_or("?")
            .to_string();
        let mut dates = Vec::new();
        collect_dates(done, &mut dates);
        Some(Self { id, dates })
    }
}

/// The dates written anywhere under `node`, with their positions.
fn collect_dates(node: &Node, out: &mut Vec<(NaiveDate, Pos)>) {
    match &node.value {
        Value::Scalar(s) => {
            if let Ok(Phrase::Date(d)) = deadline::parse_phrase(s) {
                out.push((d, node.pos));
            }
        }
        Value::Seq(items) => items.iter().for_each(|n| collect_dates(n, out)),
        Value::Map(entries) => entries.iter().for_each(|(_, n)| collect_dates(n, out)),
        Value::Null => {}
    }
}

/// `II.3, II.5, III.1 and 4 more`.
fn list(ids: &[&str]) -> String {
    const SHOWN: usize = 5;
    let mut s = ids
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > SHOWN {
        s.push_str(&crate::tr!(
            " và {} nhiệm vụ nữa",
            " and {} more",
            ids.len() - SHOWN
        ));
    }
    s
}
