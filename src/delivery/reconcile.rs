//! What a sweep does, decided without any IO: the planner's answer at `now` set against what
//! the ledger holds. [`reconcile`] is the single place that decides what is sent, sent again,
//! skipped or dropped; the sweep only carries the decisions out.

use crate::calendar::workdays::WorkCalendar;
use crate::delivery::ledger::{DeliveryKey, Ledger, LedgerError, Status};
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

/// Every key the ledger holds, with its state: the sweep's input, a plain value.
pub type LedgerStates = HashMap<DeliveryKey, KeyState>;

/// Reads [`LedgerStates`] from the ledger. The attempts of a message are those of its
/// newest unfinished row.
pub fn read_states(ledger: &Ledger) -> Result<LedgerStates, LedgerError> {
    Ok(states_from(ledger.unfinished()?, ledger.all_states()?))
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
pub fn reconcile(
    cfg: &Config,
    cal: &WorkCalendar,
    states: &LedgerStates,
    first_sweep_as_of: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Decisions {
    let mut out = Decisions {
        first_start: first_sweep_as_of.is_none(),
        ..Decisions::default()
    };
    // Rows in flight whose time has come are planned again so their email can be rebuilt;
    // everything else in the ledger is known and never due again.
    let mut ready: HashMap<&DeliveryKey, &KeyState> = HashMap::new();
    let mut known: HashSet<DeliveryKey> = HashSet::with_capacity(states.len());
    for (key, state) in states {
        let waiting = state.next_attempt_at.is_some_and(|t| t > now);
        if !state.status.is_final() && !waiting {
            ready.insert(key, state);
        } else {
            if state.status == Status::Retrying
                && let Some(t) = state.next_attempt_at
            {
                out.next_retry = Some(out.next_retry.map_or(t, |r| r.min(t)));
            }
            known.insert(key.clone());
        }
    }

    let settled = planner::Settled {
        // A first start settles the backlog before itself.
        before: first_sweep_as_of.or(Some(now)),
        in_flight: ready.keys().map(|k| (*k).clone()).collect(),
    };
    let plan = planner::plan_settled(cfg, cal, now, now, &known, &settled);
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
                .push(key.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::config::{Env, from_source};
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
        let d = decide(&LedgerStates::new(), now);
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
        let d = decide(&LedgerStates::new(), AFTER_DOWNTIME);
        assert_eq!(names(&d.send), ["hctc before-3wd"]);
        assert_eq!(
            names(&d.skip),
            ["hctc before-14d", "kt before-14d", "hctc before-7d"]
        );
        assert!(d.resend.is_empty() && d.drop.is_empty());
        assert_eq!(d.next_retry, None);
        assert!(d.sendable_now);
        // On a Saturday nothing can be sent.
        assert!(!decide(&LedgerStates::new(), "2024-01-27 08:00").sendable_now);
    }

    /// The first nudges of the task, with nothing missed before them.
    const ON_TIME: &str = "2024-01-16 08:00";

    #[test]
    fn sent_and_skipped_rows_are_never_sent_again() {
        let d = decide(&LedgerStates::new(), ON_TIME);
        assert_eq!(names(&d.send), ["hctc before-14d", "kt before-14d"]);
        let mut states = LedgerStates::new();
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
        let mut states = LedgerStates::new();
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
        let d = decide(&LedgerStates::new(), AFTER_DOWNTIME);
        assert!(names(&d.skip).contains(&"kt before-14d".to_string()));
        assert!(!names(&d.send).iter().any(|n| n.starts_with("kt")));
        // Had it gone out before a crash, it goes out again under its Message-ID, as late.
        let mut states = LedgerStates::new();
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
        let mut states = LedgerStates::new();
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
        let mut states = LedgerStates::new();
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
            &LedgerStates::new(),
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
            &LedgerStates::new(),
            first,
            at("2024-02-01 08:00"),
        );
        assert!(!d.first_start);
        assert_eq!(names(&d.send), ["kt before-1wd late", "hctc on-day late"]);
        assert!(d.send.iter().all(|n| n.late == Late::Downtime));
        assert_eq!(names(&d.skip), ["hctc before-1wd"]);
        assert_eq!(d.settled, 0);
    }

    #[test]
    fn in_flight_rows_gone_from_the_plan_are_dropped() {
        let gone = DeliveryKey {
            task: "REMOVED".into(),
            occurrence: chrono::NaiveDate::from_ymd_opt(2024, 1, 30).unwrap(),
            office: "kt".into(),
            kind: "on-day".into(),
        };
        let mut states = LedgerStates::new();
        states.insert(
            gone.clone(),
            state(Status::Pending, "<g@x.example>", None, 0),
        );
        let d = decide(&states, AFTER_DOWNTIME);
        assert_eq!(d.drop["<g@x.example>"], [gone]);
        assert_eq!(names(&d.send), ["hctc before-3wd"]);
    }
}
