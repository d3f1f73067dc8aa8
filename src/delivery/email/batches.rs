//! Who gets which nudges: grouping the due nudges into emails, address dedup, the
//! leadership's digest, and the sample batch of `send-test`.

use crate::calendar::workdays::WorkCalendar;
use crate::plan::config::{Config, CoopDelivery, Grouping, Office, Offset, Unit};
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
    let order = Order(cfg);
    let reachable = |n: &Nudge| cfg.office(&n.office).is_some_and(|o| !o.emails.is_empty());
    let mut own: Vec<&Nudge> = due
        .iter()
        .filter(|n| !n.kind.is_leadership() && reachable(n))
        .collect();
    // Each key is made once, not at every comparison (stable: equal keys keep their order).
    own.sort_by_cached_key(|n| order.office_first(n));
    let riders = Riders::take(cfg, &mut own);
    let mut out: Vec<Batch> = groups(cfg, &own)
        .into_iter()
        .map(|g| office_batch(cfg, &order, &own, &riders, &g))
        .collect();
    out.extend(leadership_digest(cfg, &order, due));
    out
}

/// Where offices and tasks stand in the config, for sorting nudges: the config's own
/// indexes, one look-up each.
struct Order<'a>(&'a Config);

impl Order<'_> {
    fn office_pos(&self, id: &str) -> usize {
        self.0.office_pos(id).unwrap_or(usize::MAX)
    }

    fn urgency(&self, n: &Nudge) -> (NaiveDate, usize, Kind, usize) {
        (
            n.occurrence,
            self.0.task_pos(&n.task).unwrap_or(usize::MAX),
            n.kind,
            self.office_pos(&n.office),
        )
    }

    /// The office's place, then the nudge's urgency.
    fn office_first(&self, n: &Nudge) -> (usize, (NaiveDate, usize, Kind, usize)) {
        (self.office_pos(&n.office), self.urgency(n))
    }
}

/// With `cooperating: cc`, a cooperating office's nudge rides on the lead's email for the
/// same deadline when the lead gets one this sweep; otherwise it stays on its own.
///
/// Each rider is keyed by its host (the first lead nudge, in `own`'s order, of the same task
/// and occurrence), found by hash: a sweep of thousands of cooperating nudges pairs them in
/// linear time.
struct Riders<'a> {
    /// Host (by address) → its riders, in `own`'s order.
    on: HashMap<*const Nudge, Vec<&'a Nudge>>,
}

impl<'a> Riders<'a> {
    /// Pairs the riders with their hosts and takes them out of `own`.
    fn take(cfg: &Config, own: &mut Vec<&'a Nudge>) -> Riders<'a> {
        let mut on: HashMap<*const Nudge, Vec<&'a Nudge>> = HashMap::new();
        if cfg.mail.cooperating == CoopDelivery::Cc {
            let mut hosts: HashMap<(&str, NaiveDate), &Nudge> = HashMap::new();
            for n in own.iter().filter(|n| n.role != Role::Cooperating) {
                hosts.entry((&*n.task, n.occurrence)).or_insert(*n);
            }
            own.retain(|n| {
                let host = (n.role == Role::Cooperating)
                    .then(|| hosts.get(&(&*n.task, n.occurrence)))
                    .flatten();
                match host {
                    Some(h) => {
                        on.entry(std::ptr::from_ref(*h)).or_default().push(*n);
                        false
                    }
                    None => true,
                }
            });
        }
        Riders { on }
    }

    /// The riders of `host`.
    fn of(&self, host: &Nudge) -> &[&'a Nudge] {
        self.on
            .get(&std::ptr::from_ref(host))
            .map_or(&[], Vec::as_slice)
    }
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
    riders: &Riders,
    g: &[usize],
) -> Batch {
    let office = cfg
        .office(&own[g[0]].office)
        .expect("reachable offices exist");
    let nudges: Vec<Nudge> = g.iter().map(|i| own[*i].clone()).collect();
    let mut ride: Vec<&Nudge> = g.iter().flat_map(|i| riders.of(own[*i])).copied().collect();
    ride.sort_by_cached_key(|n| order.office_first(n));
    addressed(cfg, office, nudges, ride)
}

/// `office`'s email of its own `nudges` and, after them, the riders in `ride`: To its
/// addresses, Cc its head when a nudge adds them and the riders' offices.
fn addressed(cfg: &Config, office: &Office, mut nudges: Vec<Nudge>, ride: Vec<&Nudge>) -> Batch {
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
    digest.sort_by_cached_key(|n| order.urgency(n));
    Some(Batch {
        office: leadership.id.clone(),
        nudges: digest.into_iter().cloned().collect(),
        to: dedup(leadership.emails.clone(), &[]),
        cc: Vec::new(),
    })
}

/// The address part, lowercased, for comparing `Tên <a@b>` with `a@b`.
///
/// A bare address of ASCII letters, digits and `.-_+@` is its own key: lettre's parser
/// gives such an address back as written or refuses it, and either way the key is the text
/// (a test holds the two to the same answer); only the others are parsed.
fn address_key(s: &str) -> String {
    let s = s.trim();
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-_+@".contains(&b))
    {
        return s.to_ascii_lowercase();
    }
    Mailbox::from_str(s)
        .map(|m| m.email.to_string())
        .unwrap_or_else(|_| s.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    /// The grouping as it was before the sort keys were cached and riders found by hash:
    /// maps built per call, keys computed at every comparison, riders paired by scanning
    /// (each email's addresses are then made by the same `addressed`).
    fn batches_by_scan(cfg: &Config, due: &[Nudge]) -> Vec<Batch> {
        let office_index: HashMap<&str, usize> = cfg
            .offices
            .iter()
            .enumerate()
            .map(|(i, o)| (o.id.as_str(), i))
            .collect();
        let task_index: HashMap<&str, usize> = cfg
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.as_str(), i))
            .collect();
        let office_pos = |id: &str| office_index.get(id).copied().unwrap_or(usize::MAX);
        let urgency = |n: &Nudge| {
            let task = task_index.get(&*n.task).copied().unwrap_or(usize::MAX);
            (n.occurrence, task, n.kind, office_pos(&n.office))
        };
        let reachable = |n: &Nudge| cfg.office(&n.office).is_some_and(|o| !o.emails.is_empty());
        let mut own: Vec<&Nudge> = due
            .iter()
            .filter(|n| !n.kind.is_leadership() && reachable(n))
            .collect();
        own.sort_by_key(|n| (office_pos(&n.office), urgency(n)));
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
        let mut out = Vec::new();
        for g in groups(cfg, &own) {
            let office = cfg.office(&own[g[0]].office).unwrap();
            let nudges: Vec<Nudge> = g.iter().map(|i| own[*i].clone()).collect();
            let mut ride: Vec<&Nudge> = riders
                .iter()
                .filter(|(h, _)| g.iter().any(|i| std::ptr::eq(own[*i], *h)))
                .map(|(_, n)| *n)
                .collect();
            ride.sort_by_key(|n| (office_pos(&n.office), urgency(n)));
            out.push(addressed(cfg, office, nudges, ride));
        }
        let mut digest: Vec<&Nudge> = due.iter().filter(|n| n.kind.is_leadership()).collect();
        if let Some(l) = cfg.leadership.as_deref().and_then(|l| cfg.office(l))
            && !l.emails.is_empty()
            && !digest.is_empty()
        {
            digest.sort_by_key(|n| urgency(n));
            out.push(Batch {
                office: l.id.clone(),
                nudges: digest.into_iter().cloned().collect(),
                to: dedup(l.emails.clone(), &[]),
                cc: Vec::new(),
            });
        }
        out
    }

    #[test]
    fn batches_match_the_scanning_grouping_on_a_year_of_the_seed() {
        let mut cfg = crate::plan::config::seed_config();
        let cal = cfg.work_calendar(2024);
        let from = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let until = Utc.with_ymd_and_hms(2024, 12, 31, 0, 0, 0).unwrap();
        let year = planner::plan(&cfg, &cal, from, until, &Default::default()).upcoming;
        assert!(year.len() > 200, "{}", year.len());
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for grouping in [Grouping::Digest, Grouping::PerNudge] {
            for coop in [CoopDelivery::Cc, CoopDelivery::Separate] {
                cfg.mail.grouping = grouping;
                cfg.mail.cooperating = coop;
                // The whole year at once, each week's nudges, and shuffled samples.
                let mut inputs: Vec<Vec<Nudge>> = vec![year.clone()];
                inputs.extend(year.chunks(40).map(<[Nudge]>::to_vec));
                for _ in 0..20 {
                    let mut s: Vec<Nudge> = year
                        .iter()
                        .filter(|_| rng.random_bool(0.3))
                        .cloned()
                        .collect();
                    s.shuffle(&mut rng);
                    inputs.push(s);
                }
                for due in &inputs {
                    let got = batches(&cfg, due);
                    assert_eq!(got, batches_by_scan(&cfg, due), "{grouping:?} {coop:?}");
                }
            }
        }
    }

    #[test]
    fn plain_address_keys_are_what_lettre_parses() {
        let by_lettre = |s: &str| {
            Mailbox::from_str(s.trim())
                .map(|m| m.email.to_string())
                .unwrap_or_else(|_| s.trim().to_string())
                .to_lowercase()
        };
        let pieces = [
            "a", "Z", "0", ".", "-", "_", "+", "@", " ", "é", "<", ">", "\"",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for s in [
            "dv-00001@vpubnd.example",
            " HCTC@VPUBND.example ",
            "Trưởng phòng <Truong@vpubnd.example>",
            "a@b@c.example",
            "a..b@x.example",
        ] {
            assert_eq!(address_key(s), by_lettre(s), "{s:?}");
        }
        for _ in 0..20_000 {
            let s: String = (0..rng.random_range(1..14))
                .map(|_| pieces[rng.random_range(0..pieces.len())])
                .collect();
            assert_eq!(address_key(&s), by_lettre(&s), "{s:?}");
        }
    }
}
