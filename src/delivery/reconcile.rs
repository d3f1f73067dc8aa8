//! What a sweep does, decided without any IO: the planner's answer at `now` set against what
//! the ledger holds. [`reconcile`] is the single place that decides what is sent, sent again,
//! skipped or dropped; the sweep only carries the decisions out.

use crate::calendar::workdays::WorkCalendar;
use crate::delivery::ledger::{DeliveryKey, KeyMap, Ledger, LedgerError, Status};
use crate::plan::config::Config;
use crate::plan::planner::{self, Late, Nudge};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What the ledger knows about one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    pub status: Status,
    /// Empty for skipped rows.
    pub message_id: String,
    /// When a `retrying` row may go out again.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Transport attempts already made for the row's message.
    pub attempts: u32,
}

/// Every key the ledger holds, with its state: the sweep's input, a plain value. Its keys
/// are held as numbers ([`KeyMap`]): a sweep looks up every nudge it plans among them.
pub type LedgerStates = KeyMap<KeyState>;

/// Reads [`LedgerStates`] from the ledger. The attempts of a message are those of its
/// newest unfinished row.
pub fn read_states(ledger: &Ledger) -> Result<LedgerStates, LedgerError> {
    let mut states = LedgerStates::default();
    // Per Message-ID in flight: its newest unfinished row's id and attempts.
    let mut attempts: HashMap<String, (i64, u32)> = HashMap::new();
    ledger.each_state(|r| {
        if !r.status.is_final() {
            match attempts.get_mut(r.message_id) {
                Some(a) => *a = (*a).max((r.id, r.attempts)),
                None => {
                    attempts.insert(r.message_id.to_string(), (r.id, r.attempts));
                }
            }
        }
        let state = KeyState {
            status: r.status,
            message_id: r.message_id.to_string(),
            next_attempt_at: r.next_attempt_at,
            attempts: 0,
        };
        states.insert_parts(r.task, r.occurrence, r.office, r.kind, state);
    })?;
    if !attempts.is_empty() {
        for s in states.values_mut() {
            if let Some((_, a)) = attempts.get(&s.message_id) {
                s.attempts = *a;
            }
        }
    }
    Ok(states)
}

/// [`LedgerStates`] from the rows in flight and every key's state, as any ledger reads them.
pub fn states_from(
    unfinished: Vec<crate::delivery::ledger::DeliveryRow>,
    all: HashMap<DeliveryKey, crate::delivery::ledger::KeyState>,
) -> LedgerStates {
    let attempts: HashMap<String, u32> = unfinished
        .into_iter()
        .map(|r| (r.message_id, r.attempts))
        .collect();
    all.into_iter()
        .map(|(key, (status, message_id, next_attempt_at))| {
            let state = KeyState {
                status,
                attempts: attempts.get(&message_id).copied().unwrap_or(0),
                message_id,
                next_attempt_at,
            };
            (key, state)
        })
        .collect()
}

/// An email sent again under the Message-ID it was recorded with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resend {
    pub nudges: Vec<Nudge>,
    /// Transport attempts made before this one.
    pub attempts: u32,
}

/// What one sweep at `now` must do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decisions {
    /// Due now and new to the ledger: sent in new emails.
    pub send: Vec<Nudge>,
    /// In flight (pending after a crash, or retrying) and their time has come: sent again,
    /// by Message-ID. Nudges missed meanwhile are marked late.
    pub resend: BTreeMap<String, Resend>,
    /// Missed and new to the ledger: recorded as skipped, never sent.
    pub skip: Vec<Nudge>,
    /// A first start's backlog: missed before nhacviec ever ran, superseded or too old.
    /// Not recorded one row each: the first sweep's as-of time implies them.
    pub settled: usize,
    /// No sweep has run before: late nudges are the system's first reminders.
    pub first_start: bool,
    /// In flight but no longer in the plan (the config changed): closed as failed, by
    /// Message-ID, with the keys they carried.
    pub drop: BTreeMap<String, Vec<DeliveryKey>>,
    /// The earliest retry still waiting, if any.
    pub next_retry: Option<DateTime<Utc>>,
    /// `now` is a working day inside the sending window: only then is anything sent.
    pub sendable_now: bool,
}

/// Decides a sweep at `now`. Pure: no IO, no clock.
///
/// `first_sweep_as_of` is the as-of time of the first sweep the ledger recorded (`None`:
/// nhacviec has never run). Nudges planned before it without a row were settled by that
/// first start; on a first start the backlog is counted in `settled`, not skipped row by row,
/// and a late nudge is the first reminder, not one delayed by downtime.
///
/// After a first start, the past the decisions cannot depend on is not planned again (see
/// [`planner::plan_sweep`]): each sweep's work follows the catch-up window, not the age of
/// the plan.
pub fn reconcile(
    cfg: &Config,
    cal: &WorkCalendar,
    states: &LedgerStates,
    first_sweep_as_of: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Decisions {
    reconcile_with(cfg, cal, states, first_sweep_as_of, now, Planning::Recent)
}

/// In flight (not final, not waiting for a later retry): planned again at `now`.
fn is_ready(state: &KeyState, now: DateTime<Utc>) -> bool {
    let waiting = state.next_attempt_at.is_some_and(|t| t > now);
    !state.status.is_final() && !waiting
}

/// The keys of `states` not in flight at `now`, read in place: what the ledger knows.
struct Held<'a> {
    states: &'a LedgerStates,
    now: DateTime<Utc>,
    /// Whether there is one.
    any: bool,
}

impl planner::Known for Held<'_> {
    fn knows(&self, key: &DeliveryKey) -> bool {
        self.states.get(key).is_some_and(|s| !is_ready(s, self.now))
    }

    fn knows_nudge(&self, n: &Nudge) -> bool {
        self.states
            .get_nudge(n)
            .is_some_and(|s| !is_ready(s, self.now))
    }

    fn is_empty(&self) -> bool {
        !self.any
    }
}

/// How much of the plan [`reconcile_with`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planning {
    /// Every nudge since the plan's start: [`planner::plan_settled`].
    #[cfg_attr(not(test), allow(dead_code))]
    Whole,
    /// Only what the decisions depend on: [`planner::plan_sweep`] (the whole plan on a
    /// first start, whose settled backlog is counted).
    Recent,
}

fn reconcile_with(
    cfg: &Config,
    cal: &WorkCalendar,
    states: &LedgerStates,
    first_sweep_as_of: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    planning: Planning,
) -> Decisions {
    let mut out = Decisions {
        first_start: first_sweep_as_of.is_none(),
        ..Decisions::default()
    };
    // Rows in flight whose time has come are planned again so their email can be rebuilt;
    // everything else in the ledger is known and never due again.
    let recent = planning == Planning::Recent && !out.first_start;
    let mut ready: HashMap<DeliveryKey, &KeyState> = HashMap::new();
    // Only the whole plan needs the known keys copied out of `states`.
    let mut known: HashSet<DeliveryKey> = HashSet::new();
    for (key, state) in states.iter() {
        if is_ready(state, now) {
            ready.insert(key.to_key(), state);
        } else {
            if state.status == Status::Retrying
                && let Some(t) = state.next_attempt_at
            {
                out.next_retry = Some(out.next_retry.map_or(t, |r| r.min(t)));
            }
            if !recent {
                known.insert(key.to_key());
            }
        }
    }

    let settled = planner::Settled {
        // A first start settles the backlog before itself.
        before: first_sweep_as_of.or(Some(now)),
        in_flight: ready.keys().cloned().collect(),
    };
    let plan = if recent {
        let held = Held {
            states,
            now,
            any: ready.len() < states.len(),
        };
        planner::plan_sweep(cfg, cal, now, &held, &settled)
    } else {
        planner::plan_settled(cfg, cal, now, now, &known, &settled)
    };
    out.sendable_now = plan.sendable_now;
    let mut resend = |n: Nudge, state: &KeyState| {
        out.resend
            .entry(state.message_id.clone())
            .or_insert_with(|| Resend {
                nudges: Vec::new(),
                attempts: state.attempts,
            })
            .nudges
            .push(n);
    };
    let mut send = Vec::new();
    let mut skip = Vec::new();
    let first_start = out.first_start;
    for mut n in plan.due {
        if first_start && n.late.is_late() {
            n.late = Late::FirstStart;
        }
        match ready.remove(&n.key()) {
            Some(state) => resend(n, state),
            None => send.push(n),
        }
    }
    for n in plan.skipped {
        match ready.remove(&n.key()) {
            Some(state) => resend(
                Nudge {
                    late: Late::Downtime,
                    ..n
                },
                state,
            ),
            None => skip.push(n),
        }
    }
    out.send = send;
    out.skip = skip;
    // Counted on the first start only: later sweeps find the same backlog settled again.
    if first_start {
        out.settled = plan.settled;
    }
    for (key, state) in ready {
        // Part of the message is still owed: it is re-sent with what remains.
        if !out.resend.contains_key(&state.message_id) {
            out.drop
                .entry(state.message_id.clone())
                .or_default()
                .push(key);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::config::{Env, from_source};
    use crate::plan::planner::tests::{Rng, generated};
    use chrono::TimeZone;
    use std::path::Path;

    /// Due Tuesday 30/01/2024: hctc leads, kt cooperates; the default policy (14d, 7d, 3wd,
    /// 1wd before) and a 7-day catch-up.
    fn cfg() -> Config {
        let src = "plan:\n  year: 2024\noffices:\n  hctc:\n    name: Phòng HC-TC\n    email: hctc@vpubnd.example\n  kt:\n    name: Phòng Kinh tế\n    email: kt@vpubnd.example\ntasks:\n  - id: T\n    title: t\n    deadline: 30/01/2024\n    lead: hctc\n    cooperating: [kt]\n";
        from_source(src, Path::new("t.yaml"), &Env::default())
            .unwrap_or_else(|r| panic!("{}", r.render()))
            .config
    }

    fn at(s: &str) -> DateTime<Utc> {
        let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        chrono_tz::Asia::Ho_Chi_Minh
            .from_local_datetime(&t)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn decide(states: &LedgerStates, now: &str) -> Decisions {
        // A ledger that has run since before the task's first nudge.
        let first = Some(at("2024-01-02 08:00"));
        reconcile(
            &cfg(),
            &WorkCalendar::weekends_only(),
            states,
            first,
            at(now),
        )
    }

    fn names(ns: &[Nudge]) -> Vec<String> {
        ns.iter()
            .map(|n| {
                format!(
                    "{} {}{}",
                    n.office,
                    n.kind.code(),
                    if n.late.is_late() { " late" } else { "" }
                )
            })
            .collect()
    }

    fn state(status: Status, id: &str, next: Option<DateTime<Utc>>, attempts: u32) -> KeyState {
        KeyState {
            status,
            message_id: id.to_string(),
            next_attempt_at: next,
            attempts,
        }
    }

    /// The key of `office`'s nudge `kind` in a fresh plan at `now`.
    fn key(now: &str, office: &str, kind: &str) -> DeliveryKey {
        let d = decide(&LedgerStates::default(), now);
        d.send
            .iter()
            .chain(&d.skip)
            .find(|n| &*n.office == office && n.kind.code() == kind)
            .unwrap_or_else(|| panic!("no {office} {kind} at {now}"))
            .key()
    }

    // Down from before 16/01 until Thursday 25/01: the latest missed nudge of hctc (3wd
    // before, 25/01) is due; the older ones are superseded, and kt's only one (16/01) is
    // older than the 7-day catch-up.
    const AFTER_DOWNTIME: &str = "2024-01-25 08:00";

    #[test]
    fn a_fresh_ledger_sends_what_is_due_and_skips_what_was_missed() {
        let d = decide(&LedgerStates::default(), AFTER_DOWNTIME);
        assert_eq!(names(&d.send), ["hctc before-3wd"]);
        assert_eq!(
            names(&d.skip),
            ["hctc before-14d", "kt before-14d", "hctc before-7d"]
        );
        assert!(d.resend.is_empty() && d.drop.is_empty());
        assert_eq!(d.next_retry, None);
        assert!(d.sendable_now);
        // On a Saturday nothing can be sent.
        assert!(!decide(&LedgerStates::default(), "2024-01-27 08:00").sendable_now);
    }

    /// The first nudges of the task, with nothing missed before them.
    const ON_TIME: &str = "2024-01-16 08:00";

    #[test]
    fn sent_and_skipped_rows_are_never_sent_again() {
        let d = decide(&LedgerStates::default(), ON_TIME);
        assert_eq!(names(&d.send), ["hctc before-14d", "kt before-14d"]);
        let mut states = LedgerStates::default();
        let sent = key(ON_TIME, "hctc", "before-14d");
        states.insert(sent, state(Status::Sent, "<a@x.example>", None, 1));
        let skipped = key(ON_TIME, "kt", "before-14d");
        states.insert(skipped, state(Status::Skipped, "", None, 0));
        let d = decide(&states, ON_TIME);
        assert!(d.send.is_empty(), "{:?}", names(&d.send));
        assert!(d.skip.is_empty() && d.resend.is_empty() && d.drop.is_empty());
    }

    #[test]
    fn pending_rows_from_a_crashed_run_are_sent_again_under_their_message_id() {
        let mut states = LedgerStates::default();
        let k = key(ON_TIME, "hctc", "before-14d");
        states.insert(k, state(Status::Pending, "<crash@x.example>", None, 2));
        let d = decide(&states, ON_TIME);
        assert_eq!(names(&d.send), ["kt before-14d"]);
        let again = &d.resend["<crash@x.example>"];
        assert_eq!(names(&again.nudges), ["hctc before-14d"]);
        assert_eq!(again.attempts, 2);
        assert!(d.drop.is_empty());
    }

    #[test]
    fn missed_nudges_beyond_the_catch_up_are_skipped_unless_already_in_flight() {
        // kt's 16/01 nudge is nine days old: skipped, never sent.
        let d = decide(&LedgerStates::default(), AFTER_DOWNTIME);
        assert!(names(&d.skip).contains(&"kt before-14d".to_string()));
        assert!(!names(&d.send).iter().any(|n| n.starts_with("kt")));
        // Had it gone out before a crash, it goes out again under its Message-ID, as late.
        let mut states = LedgerStates::default();
        let k = key(AFTER_DOWNTIME, "kt", "before-14d");
        states.insert(k, state(Status::Pending, "<kt@x.example>", None, 1));
        let d = decide(&states, AFTER_DOWNTIME);
        assert_eq!(
            names(&d.resend["<kt@x.example>"].nudges),
            ["kt before-14d late"]
        );
        assert!(!names(&d.skip).contains(&"kt before-14d".to_string()));
    }

    #[test]
    fn retrying_rows_go_out_when_their_time_has_come_and_wait_before() {
        let k = key(ON_TIME, "hctc", "before-14d");
        let next = at("2024-01-16 08:10");
        let mut states = LedgerStates::default();
        states.insert(k, state(Status::Retrying, "<r@x.example>", Some(next), 1));
        // Before its time: not sent, not due again, and the loop is told when.
        let d = decide(&states, ON_TIME);
        assert!(d.resend.is_empty(), "{d:?}");
        assert_eq!(names(&d.send), ["kt before-14d"]);
        assert_eq!(d.next_retry, Some(next));
        // Its time has come: sent again under its Message-ID.
        let d = decide(&states, "2024-01-16 08:10");
        let again = &d.resend["<r@x.example>"];
        assert_eq!(names(&again.nudges), ["hctc before-14d"]);
        assert_eq!(again.attempts, 1);
        assert_eq!(d.next_retry, None);
    }

    #[test]
    fn an_office_that_appears_after_the_first_start_still_hears_of_its_task() {
        // The service first swept on Tuesday 23/01 at 17:35, after that day's 08:00
        // reminders; then the task is reassigned from hctc to kt. kt's latest missed reminder
        // (7 days before, 23/01 08:00) is before the first sweep, yet kt never heard of the
        // task: it is due now, late, not settled with the backlog.
        let src = "plan:\n  year: 2024\noffices:\n  hctc:\n    name: Phòng HC-TC\n    email: hctc@vpubnd.example\n  kt:\n    name: Phòng Kinh tế\n    email: kt@vpubnd.example\ntasks:\n  - id: T\n    title: t\n    deadline: 30/01/2024\n    lead: kt\n";
        let reassigned = from_source(src, Path::new("t.yaml"), &Env::default())
            .unwrap_or_else(|r| panic!("{}", r.render()))
            .config;
        let mut states = LedgerStates::default();
        states.insert(
            key("2024-01-23 08:00", "hctc", "before-7d"),
            state(Status::Sent, "<a@x>", None, 1),
        );
        let d = reconcile(
            &reassigned,
            &WorkCalendar::weekends_only(),
            &states,
            Some(at("2024-01-23 17:35")),
            at("2024-01-23 17:40"),
        );
        assert_eq!(names(&d.send), ["kt before-7d"]);
        // Its older reminder (14 days before) stays settled: no row, not sent.
        assert!(d.skip.is_empty(), "{:?}", names(&d.skip));
    }

    #[test]
    fn a_first_start_settles_its_backlog_and_its_late_nudges_are_first_reminders() {
        let cal = WorkCalendar::weekends_only();
        // Never run before; started Friday 26/01: hctc's 25/01 nudge is the latest and goes
        // out late, as the first reminder; the three older ones get no row.
        let d = reconcile(
            &cfg(),
            &cal,
            &LedgerStates::default(),
            None,
            at("2024-01-26 08:00"),
        );
        assert!(d.first_start);
        assert_eq!(names(&d.send), ["hctc before-3wd late"]);
        assert_eq!(d.send[0].late, Late::FirstStart);
        assert!(d.skip.is_empty(), "{:?}", names(&d.skip));
        assert_eq!(d.settled, 3);
        // Once a sweep is recorded, a late nudge is downtime, and the backlog before the
        // first sweep stays settled: only what was missed since is skipped, one row each.
        let first = Some(at("2024-01-26 08:00"));
        let d = reconcile(
            &cfg(),
            &cal,
            &LedgerStates::default(),
            first,
            at("2024-02-01 08:00"),
        );
        assert!(!d.first_start);
        assert_eq!(names(&d.send), ["kt before-1wd late", "hctc on-day late"]);
        assert!(d.send.iter().all(|n| n.late == Late::Downtime));
        assert_eq!(names(&d.skip), ["hctc before-1wd"]);
        assert_eq!(d.settled, 0);
    }

    /// What the sweep does with `d` in the ledger, with outcomes drawn from `r`: most
    /// emails sent, some left pending (a crash), retrying or failed.
    fn carry_out(states: &mut LedgerStates, d: &Decisions, now: DateTime<Utc>, r: &mut Rng) {
        for n in &d.skip {
            states.insert(n.key(), state(Status::Skipped, "", None, 0));
        }
        for keys in d.drop.values() {
            for k in keys {
                let s = states.get_mut(k).expect("dropped keys are in flight");
                s.status = Status::Failed;
                s.next_attempt_at = None;
            }
        }
        if !d.sendable_now {
            return;
        }
        let outcome = |id: &str, attempts: u32, r: &mut Rng| {
            let (status, next) = match r.below(20) {
                0 => (Status::Pending, None),
                1 => (
                    Status::Retrying,
                    Some(now + chrono::Duration::minutes(r.below(3000) as i64)),
                ),
                2 => (Status::Failed, None),
                _ => (Status::Sent, None),
            };
            state(status, id, next, attempts + 1)
        };
        for (id, again) in &d.resend {
            let s = outcome(id, again.attempts, r);
            for n in &again.nudges {
                states.insert(n.key(), s.clone());
            }
        }
        for (i, n) in d.send.iter().enumerate() {
            // One email per office and sweep, as the grouping of a digest would.
            let id = format!("<{}-{}-{i}@x.example>", now.timestamp(), n.office);
            let s = outcome(&id, 0, r);
            states.insert(n.key(), s);
        }
    }

    /// Replays sweeps from `start` to the end of February 2025 — every few hours to a few
    /// days, at any hour, with downtimes of up to three weeks — on a ledger the sweeps fill
    /// (some emails left pending, retrying or failed), switching to `changed` in September.
    /// At every sweep the decisions planned from the recent past are those planned from the
    /// whole plan. Returns the number of sweeps and of decisions compared.
    fn replay_both(cfg: &Config, changed: &Config, start: &str, seed: u64) -> (usize, usize) {
        let cal = cfg.work_calendar(2024);
        let mut r = Rng(seed);
        let mut states = LedgerStates::default();
        let mut first = None;
        let (mut now, end, switch) = (at(start), at("2025-02-28 18:00"), at("2024-09-02 00:00"));
        let (mut sweeps, mut decisions) = (0, 0);
        while now < end {
            let c = if now < switch { cfg } else { changed };
            let whole = reconcile_with(c, &cal, &states, first, now, Planning::Whole);
            let recent = reconcile_with(c, &cal, &states, first, now, Planning::Recent);
            assert_eq!(whole, recent, "sweep at {now} from {start}");
            sweeps += 1;
            decisions +=
                whole.send.len() + whole.skip.len() + whole.resend.len() + whole.drop.len();
            carry_out(&mut states, &whole, now, &mut r);
            if first.is_none() && whole.sendable_now {
                first = Some(now);
            }
            let hours = match r.below(10) {
                0 => 24 * (2 + r.below(20)),
                1 | 2 => 1 + r.below(12),
                _ => 24 + r.below(24 * 3) / 8 * 8,
            };
            now += chrono::Duration::hours(hours as i64)
                + chrono::Duration::minutes(r.below(60) as i64);
        }
        (sweeps, decisions)
    }

    /// The equivalence `plan_sweep` claims, on the seed plan and a generated one: from a
    /// ledger started with the year, in June (as the reload benchmark's) and in November
    /// (every deadline passed), the decisions are the same as with the whole plan made.
    #[test]
    fn planning_the_recent_past_decides_as_planning_the_whole_plan() {
        let seed = crate::plan::config::seed_config();
        // From September: a shorter catch-up in working days, and some tasks done.
        let mut seed_changed = seed.clone();
        seed_changed.schedule.catch_up = crate::plan::config::Offset::working(3);
        for t in seed_changed.tasks.iter_mut().step_by(4) {
            t.done = crate::plan::config::Done::All(
                chrono::NaiveDate::from_ymd_opt(2024, 8, 20).unwrap(),
            );
        }
        // From September: tasks reassigned and moved (the same ids, other draws).
        let (generated_cfg, generated_changed) = (generated(60, 7), generated(60, 8));
        let mut total = (0, 0);
        for (i, start) in ["2024-01-02 08:00", "2024-06-14 08:00", "2024-11-20 10:30"]
            .iter()
            .enumerate()
        {
            for (c, changed) in [(&seed, &seed_changed), (&generated_cfg, &generated_changed)] {
                let (s, d) = replay_both(c, changed, start, 11 + i as u64);
                total = (total.0 + s, total.1 + d);
            }
        }
        assert!(total.0 > 500 && total.1 > 5000, "{total:?}");
    }

    /// The states as a sorted list, to compare two reads.
    fn listed(states: &LedgerStates) -> Vec<(DeliveryKey, KeyState)> {
        let mut v: Vec<_> = states
            .iter()
            .map(|(k, s)| (k.to_key(), s.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn states_read_in_one_pass_are_those_of_every_row_and_the_rows_in_flight() {
        use crate::delivery::ledger::NewDelivery;
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.db")).unwrap();
        let now = at("2024-01-16 08:00");
        let item = |task: &str, office: &str, kind: &str| NewDelivery {
            key: DeliveryKey {
                task: task.into(),
                occurrence: chrono::NaiveDate::from_ymd_opt(2024, 1, 30).unwrap(),
                office: office.into(),
                kind: kind.into(),
            },
            role: "lead".into(),
            due_at: now,
            late: false,
        };
        let to = ["a@x.example".to_string()];
        // Retried twice; then one more key joins the same message: the newest row's
        // attempts are the message's.
        l.reserve(
            &[item("T1", "a", "before-14d"), item("T2", "a", "before-14d")],
            &to,
            "<r@x.example>",
            now,
        )
        .unwrap();
        l.reserve(&[item("T5", "d", "before-14d")], &to, "<q@x.example>", now)
            .unwrap();
        for _ in 0..2 {
            l.mark_retrying("<r@x.example>", "451 later", now, now)
                .unwrap();
            l.mark_retrying("<q@x.example>", "451 later", now, now)
                .unwrap();
        }
        l.reserve(&[item("T3", "a", "on-day")], &to, "<r@x.example>", now)
            .unwrap();
        l.reserve(&[item("T1", "b", "before-14d")], &to, "<p@x.example>", now)
            .unwrap();
        l.reserve(&[item("T2", "b", "before-7d")], &to, "<s@x.example>", now)
            .unwrap();
        l.mark_sent("<s@x.example>", "250 ok", now).unwrap();
        l.reserve(&[item("T4", "b", "on-day")], &to, "<f@x.example>", now)
            .unwrap();
        l.mark_failed("<f@x.example>", "550 no", now).unwrap();
        l.skip(
            &[item("T1", "c", "before-14d"), item("T1", "a", "on-day")],
            "missed",
            now,
        )
        .unwrap();
        let read = read_states(&l).unwrap();
        let oracle = states_from(l.unfinished().unwrap(), l.all_states().unwrap());
        assert_eq!(read.len(), 9);
        assert_eq!(listed(&read), listed(&oracle));
        let attempts = |id: &str| -> Vec<u32> {
            listed(&read)
                .iter()
                .filter(|(_, s)| s.message_id == id)
                .map(|(_, s)| s.attempts)
                .collect()
        };
        assert_eq!(attempts("<q@x.example>"), [2]);
        assert_eq!(attempts("<r@x.example>"), [0, 0, 0]);
    }

    #[test]
    fn in_flight_rows_gone_from_the_plan_are_dropped() {
        let gone = DeliveryKey {
            task: "REMOVED".into(),
            occurrence: chrono::NaiveDate::from_ymd_opt(2024, 1, 30).unwrap(),
            office: "kt".into(),
            kind: "on-day".into(),
        };
        let mut states = LedgerStates::default();
        states.insert(
            gone.clone(),
            state(Status::Pending, "<g@x.example>", None, 0),
        );
        let d = decide(&states, AFTER_DOWNTIME);
        assert_eq!(d.drop["<g@x.example>"], [gone]);
        assert_eq!(names(&d.send), ["hctc before-3wd"]);
    }
}
