//! What a sweep does, decided without any IO: the planner's answer at `now` set against what
//! the ledger holds. [`reconcile`] is the single place that decides what is sent, sent again,
//! skipped or dropped; the sweep only carries the decisions out.

use crate::calendar::workdays::WorkCalendar;
use crate::delivery::ledger::{DeliveryKey, Ledger, LedgerError, Status};
use crate::plan::config::Config;
use crate::plan::planner::{self, Nudge};
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
    let attempts: HashMap<String, u32> = ledger
        .unfinished()?
        .into_iter()
        .map(|r| (r.message_id, r.attempts))
        .collect();
    Ok(ledger
        .all_states()?
        .into_iter()
        .map(|(key, (status, message_id, next_attempt_at))| {
            let state = KeyState {
                status,
                attempts: attempts.get(&message_id).copied().unwrap_or(0),
                message_id,
                next_attempt_at,
            };
            (key, state)
        })
        .collect())
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
    /// In flight but no longer in the plan (the config changed): closed as failed, by
    /// Message-ID, with the keys they carried.
    pub drop: BTreeMap<String, Vec<DeliveryKey>>,
    /// The earliest retry still waiting, if any.
    pub next_retry: Option<DateTime<Utc>>,
    /// `now` is a working day inside the sending window: only then is anything sent.
    pub sendable_now: bool,
}

/// Decides a sweep at `now`. Pure: no IO, no clock.
pub fn reconcile(
    cfg: &Config,
    cal: &WorkCalendar,
    states: &LedgerStates,
    now: DateTime<Utc>,
) -> Decisions {
    let mut out = Decisions::default();
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

    let plan = planner::plan(cfg, cal, now, now, &known);
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
    for n in plan.due {
        match ready.remove(&n.key()) {
            Some(state) => resend(n, state),
            None => send.push(n),
        }
    }
    for n in plan.skipped {
        match ready.remove(&n.key()) {
            Some(state) => resend(Nudge { late: true, ..n }, state),
            None => skip.push(n),
        }
    }
    out.send = send;
    out.skip = skip;
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
