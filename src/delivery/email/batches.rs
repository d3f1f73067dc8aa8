//! Who gets which nudges: grouping the due nudges into emails, address dedup, the
//! leadership's digest, and the sample batch of `send-test`.

use crate::calendar::workdays::WorkCalendar;
use crate::plan::config::{Config, CoopDelivery, Grouping, Offset, Unit};
use crate::plan::planner::{self, Kind, Late, Nudge, Role};
use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;
use lettre::message::Mailbox;
use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::Arc;

/// One email: the nudges it delivers and its recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The office the email is addressed to (its `Kính gửi`).
    pub office: String,
    /// Every nudge this email delivers, so that the caller records each in the ledger: first
    /// the office's own, most urgent first; then those of cooperating offices copied on it
    /// (`mail.cooperating: cc`), which the body shows once, with the lead's nudge.
    pub nudges: Vec<Nudge>,
    pub to: Vec<String>,
    /// Escalation (head, leadership) and cooperating offices under `cc`; never repeats `to`.
    pub cc: Vec<String>,
}

/// Groups the due nudges into emails, per `mail.grouping` and `mail.cooperating`.
///
/// Offices without addresses get nothing. The order is the offices' order in the config,
/// then the nudges' urgency, so the same input always gives the same emails.
pub fn batches(cfg: &Config, due: &[Nudge]) -> Vec<Batch> {
    let order = Order::new(cfg);
    let reachable = |n: &Nudge| cfg.office(&n.office).is_some_and(|o| !o.emails.is_empty());
    let mut own: Vec<&Nudge> = due
        .iter()
        .filter(|n| !n.kind.is_leadership() && reachable(n))
        .collect();
    own.sort_by_key(|n| (order.office_pos(&n.office), order.urgency(n)));
    let riders = riders(cfg, &mut own);
    let mut out: Vec<Batch> = groups(cfg, &own)
        .into_iter()
        .map(|g| office_batch(cfg, &order, &own, &riders, &g))
        .collect();
    out.extend(leadership_digest(cfg, &order, due));
    out
}

/// Where offices and tasks stand in the config, for sorting nudges.
///
/// Looked up in maps, not by scanning the lists: the sorts call these for every comparison,
/// and a scan made a sweep of 10,000 emails spend seconds here.
struct Order<'a> {
    office_index: HashMap<&'a str, usize>,
    task_index: HashMap<&'a str, usize>,
}

impl<'a> Order<'a> {
    fn new(cfg: &'a Config) -> Order<'a> {
        Order {
            office_index: cfg
                .offices
                .iter()
                .enumerate()
                .map(|(i, o)| (o.id.as_str(), i))
                .collect(),
            task_index: cfg
                .tasks
                .iter()
                .enumerate()
                .map(|(i, t)| (t.id.as_str(), i))
                .collect(),
        }
    }

    fn office_pos(&self, id: &str) -> usize {
        self.office_index.get(id).copied().unwrap_or(usize::MAX)
    }

    fn task_pos(&self, id: &str) -> usize {
        self.task_index.get(id).copied().unwrap_or(usize::MAX)
    }

    fn urgency(&self, n: &Nudge) -> (NaiveDate, usize, Kind, usize) {
        (
            n.occurrence,
            self.task_pos(&n.task),
            n.kind,
            self.office_pos(&n.office),
        )
    }
}

/// With `cooperating: cc`, a cooperating office's nudge rides on the lead's email for the
/// same deadline when the lead gets one this sweep; otherwise it stays on its own.
///
/// Returns (host, rider) pairs: the rider is delivered on the host's email. The riders are
/// taken out of `own`.
fn riders<'a>(cfg: &Config, own: &mut Vec<&'a Nudge>) -> Vec<(&'a Nudge, &'a Nudge)> {
    let mut riders: Vec<(&Nudge, &Nudge)> = Vec::new();
    if cfg.mail.cooperating == CoopDelivery::Cc {
        let (coop, lead): (Vec<&Nudge>, Vec<&Nudge>) =
            own.iter().partition(|n| n.role == Role::Cooperating);
        for n in coop {
            if let Some(host) = lead
                .iter()
                .find(|m| m.task == n.task && m.occurrence == n.occurrence)
            {
                riders.push((host, n));
            }
        }
        own.retain(|o| !riders.iter().any(|(_, r)| std::ptr::eq(*r, *o)));
    }
    riders
}

/// Groups the kept nudges (indices into `own`): per office (digest) or one each (per nudge).
fn groups(cfg: &Config, own: &[&Nudge]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, n) in own.iter().enumerate() {
        match (cfg.mail.grouping, groups.last_mut()) {
            (Grouping::Digest, Some(g)) if own[g[0]].office == n.office => g.push(i),
            _ => groups.push(vec![i]),
        }
    }
    groups
}

/// The email for one group of an office's nudges, with the riders of its nudges.
fn office_batch(
    cfg: &Config,
    order: &Order,
    own: &[&Nudge],
    riders: &[(&Nudge, &Nudge)],
    g: &[usize],
) -> Batch {
    let office = cfg
        .office(&own[g[0]].office)
        .expect("reachable offices exist");
    let mut nudges: Vec<Nudge> = g.iter().map(|i| own[*i].clone()).collect();
    let mut ride: Vec<&Nudge> = riders
        .iter()
        .filter(|(h, _)| g.iter().any(|i| std::ptr::eq(own[*i], *h)))
        .map(|(_, n)| *n)
        .collect();
    ride.sort_by_key(|n| (order.office_pos(&n.office), order.urgency(n)));
    let mut cc: Vec<String> = Vec::new();
    if nudges.iter().any(|n| n.add_head)
        && let Some(h) = &office.head
    {
        cc.push(h.clone());
    }
    for r in &ride {
        if let Some(o) = cfg.office(&r.office) {
            cc.extend(o.emails.iter().cloned());
        }
    }
    nudges.extend(ride.into_iter().cloned());
    let to = dedup(office.emails.clone(), &[]);
    let cc = dedup(cc, &to);
    Batch {
        office: office.id.clone(),
        nudges,
        to,
        cc,
    }
}

/// The leadership's items: one digest email for all offices, never a copy per office.
/// `None` when the leadership has no address or nothing is due for it.
fn leadership_digest(cfg: &Config, order: &Order, due: &[Nudge]) -> Option<Batch> {
    let leadership = cfg
        .leadership
        .as_deref()
        .and_then(|l| cfg.office(l))
        .filter(|o| !o.emails.is_empty())?;
    let mut digest: Vec<&Nudge> = due.iter().filter(|n| n.kind.is_leadership()).collect();
    if digest.is_empty() {
        return None;
    }
    digest.sort_by_key(|n| order.urgency(n));
    Some(Batch {
        office: leadership.id.clone(),
        nudges: digest.into_iter().cloned().collect(),
        to: dedup(leadership.emails.clone(), &[]),
        cc: Vec::new(),
    })
}

/// The address part, lowercased, for comparing `Tên <a@b>` with `a@b`.
fn address_key(s: &str) -> String {
    Mailbox::from_str(s.trim())
        .map(|m| m.email.to_string())
        .unwrap_or_else(|_| s.trim().to_string())
        .to_lowercase()
}

fn dedup(list: Vec<String>, already: &[String]) -> Vec<String> {
    let mut seen: BTreeSet<String> = already.iter().map(|a| address_key(a)).collect();
    list.into_iter()
        .filter(|a| seen.insert(address_key(a)))
        .collect()
}

/// A one-nudge batch for `send-test`: the config's first task with a date (or, when no task
/// has one, the first task with a deadline three working days from `now`), for its first
/// lead office, addressed only to `to`. `None` when the config has no tasks.
pub fn sample_batch(
    cfg: &Config,
    cal: &WorkCalendar,
    now: DateTime<Tz>,
    to: &str,
) -> Option<Batch> {
    let today = now.date_naive();
    let dated = cfg.tasks.iter().find_map(|t| {
        let ds = planner::occurrences(cfg, cal, t).ok()?;
        let d = ds.iter().find(|d| **d >= today).or(ds.last())?;
        Some((t, *d))
    });
    let (task, occurrence) = match dated {
        Some(x) => x,
        None => (cfg.tasks.first()?, cal.add_working_days(today, 3)),
    };
    let office = task
        .lead
        .first()
        .or(task.cooperating.first())
        .cloned()
        .unwrap_or_default();
    Some(Batch {
        office: office.clone(),
        nudges: vec![Nudge {
            task: Arc::from(task.id.as_str()),
            office: Arc::from(office.as_str()),
            role: Role::Lead,
            kind: Kind::Before(Offset::working(3)),
            occurrence,
            date: today,
            send_at: now,
            days_left: cal.working_days_between(today, occurrence),
            unit: Unit::WorkingDays,
            add_head: false,
            add_leadership: false,
            late: Late::No,
        }],
        to: vec![to.to_string()],
        cc: Vec::new(),
    })
}
