//! A dry run of one sweep: what [`reconcile`](crate::delivery::reconcile::reconcile) decides
//! at `now`, composed but neither sent nor recorded. The CLI prints it.

use crate::delivery::email::{self, Batch};
use crate::delivery::ledger::Ledger;
use crate::delivery::ledger::store::Snapshot;
use crate::delivery::reconcile;
use crate::delivery::sweep::Context;
use crate::plan::planner::Nudge;
use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};

/// One email a sweep would send.
#[derive(Debug, Clone)]
pub struct WouldSend {
    /// Sent again under the Message-ID it was recorded with (it was in flight).
    pub again: bool,
    pub batch: Batch,
    pub subject: String,
}

/// What a sweep at `now` would do.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    /// Emails sent again first, then the new ones.
    pub emails: Vec<WouldSend>,
    /// Would be recorded as skipped.
    pub skip: Vec<Nudge>,
    /// A first start's backlog, settled without a row each.
    pub settled: usize,
    /// Rows the ledger holds in flight (pending or retrying) that are this node's.
    pub unfinished: usize,
    /// Emails other nodes are sending now (PostgreSQL): not this sweep's to send.
    pub held_elsewhere: Vec<crate::delivery::ledger::store::Held>,
}

impl Preview {
    /// Reminders (nudges) in the emails.
    pub fn reminders(&self) -> usize {
        self.emails.iter().map(|e| e.batch.nudges.len()).sum()
    }
}

/// Plans a sweep at `now` against `ledger` and composes its emails. Whether `now` is inside
/// the sending window is not asked: a dry run shows what the next sweep in it would send.
pub fn preview(ctx: &Context, ledger: &Ledger, now: DateTime<Utc>) -> Result<Preview> {
    preview_of(ctx, &Snapshot::of_sqlite(ledger)?, now)
}

/// [`preview`] against what was read from either ledger.
pub fn preview_of(ctx: &Context, ledger: &Snapshot, now: DateTime<Utc>) -> Result<Preview> {
    let applied = crate::delivery::completions::applied_from(&ctx.config, &ledger.completions);
    let cfg = &*applied;
    let d = reconcile::reconcile(
        cfg,
        &ctx.calendar,
        &ledger.states,
        ledger.first_sweep_as_of,
        now,
    );
    let tz = cfg.schedule.timezone;
    let mut all: Vec<(bool, Batch)> = d
        .resend
        .iter()
        // Another node's, under a live lease: the sweep would not claim them.
        .filter(|(message_id, _)| !ledger.held_ids.contains(*message_id))
        .flat_map(|(_, r)| {
            email::batches(cfg, &r.nudges)
                .into_iter()
                .map(|b| (true, b))
        })
        .collect();
    all.extend(email::batches(cfg, &d.send).into_iter().map(|b| (false, b)));
    let mut emails = Vec::with_capacity(all.len());
    for (again, batch) in all {
        let msg = ctx
            .composer
            .compose(
                cfg,
                &ctx.calendar,
                &batch,
                &email::new_message_id(&cfg.mail.message_id_domain),
                now.with_timezone(&tz),
            )
            .context(crate::t!(
                "không dựng được một email",
                "an email could not be composed"
            ))?;
        let subject = msg.subject().to_string();
        emails.push(WouldSend {
            again,
            batch,
            subject,
        });
    }
    Ok(Preview {
        emails,
        skip: d.skip,
        settled: d.settled,
        unfinished: ledger.left_here,
        held_elsewhere: ledger.held_elsewhere.clone(),
    })
}
