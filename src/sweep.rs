//! One sweep: the planner's answer at `now`, minus what the ledger holds, composed, sent and
//! recorded.
//!
//! The ledger decides "already sent", never memory: every row is written `pending` before
//! its email goes out and updated after, so a sweep after a crash, a restart or a reload
//! picks up exactly where the last one stopped. Correctness does not depend on when sweeps
//! run: each one sends whatever is due and not yet sent.

use crate::calendar::WorkCalendar;
use crate::clock::Clock;
use crate::config::Config;
use crate::email::{self, Batch, Composer};
use crate::ledger::{DeliveryKey, Ledger, NewDelivery, Status};
use crate::planner::{self, Nudge};
use crate::transport::{SecretEnv, SendError, Sender};
use anyhow::{Context as _, Result};
use chrono::{DateTime, Datelike, Utc};
use rand::Rng;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tokio::task::JoinSet;

/// Everything a sweep needs that is built once per config (and rebuilt on reload).
pub struct Context {
    pub config: Arc<Config>,
    pub calendar: WorkCalendar,
    pub composer: Composer,
    pub sender: Sender,
}

impl Context {
    pub fn new(config: Config, secrets: &SecretEnv, now: DateTime<Utc>) -> Result<Self> {
        let year = now.with_timezone(&config.schedule.timezone).year();
        let calendar = config.work_calendar(year);
        let composer = Composer::new(&config).context("cannot load the email templates")?;
        let sender = Sender::new(&config, secrets).context("cannot set up the mail transport")?;
        Ok(Self {
            config: Arc::new(config),
            calendar,
            composer,
            sender,
        })
    }
}

/// What one sweep did, in nudges (one email may carry several).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub sent: usize,
    pub emails: usize,
    pub retrying: usize,
    pub failed: usize,
    pub skipped: usize,
    /// In flight at a crash, but no longer in the plan (the config changed meanwhile).
    pub dropped: usize,
    /// The earliest retry still waiting, if any: the daemon wakes up for it.
    pub next_retry: Option<DateTime<Utc>>,
    /// `now` was not a working day inside the sending window: nothing was sent.
    pub outside_window: bool,
    /// Stopped early because of a shutdown request.
    pub interrupted: bool,
}

impl SweepReport {
    /// Everything due went out (nothing failed, nothing left to retry).
    pub fn all_delivered(&self) -> bool {
        self.failed == 0 && self.retrying == 0 && !self.interrupted
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SweepOptions {
    /// Render and print what would be sent; record nothing, send nothing.
    pub dry_run: bool,
}

/// One email about to go out, with the ledger rows it carries.
struct Outgoing {
    batch: Batch,
    message_id: String,
    /// Transport attempts made before this one.
    attempts_before: u32,
}

/// Runs one sweep at `clock.now()`. `stop` is polled between emails: once it says stop, no
/// new email starts; those already in flight finish and are recorded.
pub async fn sweep(
    ctx: &Context,
    ledger: &mut Ledger,
    clock: &Clock,
    opts: SweepOptions,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<SweepReport> {
    let cfg = &*ctx.config;
    let now = clock.now();
    let mut report = SweepReport::default();

    let states = ledger.all_states()?;
    // Rows in flight (pending after a crash, or retrying) whose time has come are planned
    // again so their email can be rebuilt; everything else in the ledger is known.
    let mut ready: HashMap<DeliveryKey, String> = HashMap::new();
    let mut known: HashSet<DeliveryKey> = HashSet::with_capacity(states.len());
    for (key, (status, message_id, next_at)) in states {
        let waiting = next_at.is_some_and(|t| t > now);
        if !status.is_final() && !waiting {
            ready.insert(key, message_id);
        } else {
            if status == Status::Retrying
                && let Some(t) = next_at
            {
                report.next_retry = Some(report.next_retry.map_or(t, |r| r.min(t)));
            }
            known.insert(key);
        }
    }

    let plan = planner::plan(cfg, &ctx.calendar, now, now, &known);
    let mut retry: BTreeMap<String, Vec<Nudge>> = BTreeMap::new();
    let mut due = Vec::new();
    let mut skip = Vec::new();
    for n in plan.due {
        match ready.remove(&n.key()) {
            Some(id) => retry.entry(id).or_default().push(n),
            None => due.push(n),
        }
    }
    for n in plan.skipped {
        match ready.remove(&n.key()) {
            Some(id) => retry.entry(id).or_default().push(Nudge { late: true, ..n }),
            None => skip.push(n),
        }
    }

    if opts.dry_run {
        return dry_run(ctx, now, &due, &retry, &skip);
    }

    if !skip.is_empty() {
        let items: Vec<NewDelivery> = skip.iter().map(new_delivery).collect();
        report.skipped = ledger.skip(
            &items,
            "missed while nhacviec was not running; a later reminder replaced it, or it is older than the catch-up window",
            now,
        )?;
        for n in &skip {
            tracing::info!(
                task = %n.task, office = %n.office, kind = %n.kind.code(), status = "skipped",
                "missed reminder recorded as skipped"
            );
        }
    }

    // In flight but gone from the plan: the office no longer owes it (reassigned, done,
    // removed). Such a message is closed, never silently left pending.
    let unfinished = ledger.unfinished()?;
    let attempts: HashMap<String, u32> = unfinished
        .iter()
        .map(|r| (r.message_id.clone(), r.attempts))
        .collect();
    let gone: BTreeMap<String, Vec<DeliveryKey>> =
        ready.into_iter().fold(BTreeMap::new(), |mut m, (k, id)| {
            m.entry(id).or_default().push(k);
            m
        });
    for (id, keys) in gone {
        if retry.contains_key(&id) {
            // Part of the message is still owed: it is re-sent with what remains.
            continue;
        }
        ledger.mark_failed(
            &id,
            "dropped: no longer in the plan after a config change",
            now,
        )?;
        report.dropped += keys.len();
        for k in keys {
            tracing::warn!(
                task = %k.task, office = %k.office, kind = %k.kind, email_message_id = %id,
                status = "failed", "an unsent reminder is no longer in the plan; dropped"
            );
        }
    }

    if !plan.sendable_now {
        report.outside_window = true;
        return Ok(report);
    }

    let mut outgoing: Vec<Outgoing> = Vec::new();
    for (id, nudges) in retry {
        let mut batches = email::batches(cfg, &nudges);
        let Some(mut first) = batches.pop() else {
            continue;
        };
        // The same config made one email of these; if it now makes several, they still
        // go as the one message they were recorded as.
        for b in batches {
            first.nudges.extend(b.nudges);
            for a in b.to.into_iter().chain(b.cc) {
                if !first.to.contains(&a) && !first.cc.contains(&a) {
                    first.cc.push(a);
                }
            }
        }
        outgoing.push(Outgoing {
            attempts_before: attempts.get(&id).copied().unwrap_or(0),
            batch: first,
            message_id: id,
        });
    }
    for batch in email::batches(cfg, &due) {
        outgoing.push(Outgoing {
            batch,
            message_id: email::new_message_id(&cfg.mail.message_id_domain),
            attempts_before: 0,
        });
    }

    send_all(ctx, ledger, clock, outgoing, stop, &mut report).await?;
    Ok(report)
}

fn new_delivery(n: &Nudge) -> NewDelivery {
    NewDelivery {
        key: n.key(),
        role: n.role.code().to_string(),
        due_at: n.send_at.with_timezone(&Utc),
        late: n.late,
    }
}

fn recipients(b: &Batch) -> Vec<String> {
    b.to.iter().chain(&b.cc).cloned().collect()
}

/// Sends with at most the pool's size in flight, recording each outcome as it arrives.
async fn send_all(
    ctx: &Context,
    ledger: &mut Ledger,
    clock: &Clock,
    outgoing: Vec<Outgoing>,
    stop: &(dyn Fn() -> bool + Sync),
    report: &mut SweepReport,
) -> Result<()> {
    let cfg = &*ctx.config;
    let tz = cfg.schedule.timezone;
    let limit = ctx.sender.concurrency();
    let mut in_flight: JoinSet<(Outgoing, Result<String, SendError>)> = JoinSet::new();
    let mut queue = outgoing.into_iter();
    loop {
        while in_flight.len() < limit {
            if stop() {
                report.interrupted = queue.len() > 0;
                break;
            }
            let Some(mut out) = queue.next() else { break };
            let now = clock.now();
            let items: Vec<NewDelivery> = out.batch.nudges.iter().map(new_delivery).collect();
            // Written before the email goes out: a crash from here on re-sends it with this
            // Message-ID, never forgets it.
            out.message_id =
                ledger.reserve(&items, &recipients(&out.batch), &out.message_id, now)?;
            let message = match ctx.composer.compose(
                cfg,
                &ctx.calendar,
                &out.batch,
                &out.message_id,
                now.with_timezone(&tz),
            ) {
                Ok(m) => m,
                Err(e) => {
                    let text = format!("the email could not be composed: {e}");
                    ledger.mark_failed(&out.message_id, &text, now)?;
                    log_batch(&out, Status::Failed, &text);
                    report.failed += out.batch.nudges.len();
                    continue;
                }
            };
            let sender = ctx.sender.clone();
            in_flight.spawn(async move {
                let result = sender.send(&message).await;
                (out, result)
            });
        }
        let Some(done) = in_flight.join_next().await else {
            break;
        };
        let (out, result) = done.context("a send task panicked")?;
        record(ctx, ledger, clock, out, result, report).await?;
    }
    if queue.len() > 0 {
        report.interrupted = true;
    }
    Ok(())
}

async fn record(
    ctx: &Context,
    ledger: &mut Ledger,
    clock: &Clock,
    out: Outgoing,
    result: Result<String, SendError>,
    report: &mut SweepReport,
) -> Result<()> {
    let now = clock.now();
    let retry = &ctx.config.mail.retry;
    let n = out.batch.nudges.len();
    match result {
        Ok(reply) => {
            ledger.mark_sent(&out.message_id, &reply, now)?;
            log_batch(&out, Status::Sent, &reply);
            report.sent += n;
            report.emails += 1;
        }
        Err(e) if e.is_transient() && out.attempts_before + 1 < retry.attempts => {
            let wait = backoff(retry.initial, retry.max, out.attempts_before);
            let next = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
            let text = e.to_string();
            ledger.mark_retrying(&out.message_id, &text, next, now)?;
            log_batch(&out, Status::Retrying, &text);
            report.retrying += n;
            report.next_retry = Some(report.next_retry.map_or(next, |r| r.min(next)));
        }
        Err(e) => {
            let text = e.to_string();
            ledger.mark_failed(&out.message_id, &text, now)?;
            log_batch(&out, Status::Failed, &text);
            report.failed += n;
            report_failure(ctx, clock, &out, &text).await;
        }
    }
    Ok(())
}

/// `initial · 2^attempts`, capped at `max`, with ±20 % jitter so that many offices that
/// failed together do not retry together.
pub fn backoff(
    initial: std::time::Duration,
    max: std::time::Duration,
    attempts_before: u32,
) -> std::time::Duration {
    let base = initial
        .saturating_mul(
            1u32.checked_shl(attempts_before.min(20))
                .unwrap_or(u32::MAX),
        )
        .min(max);
    let jitter: f64 = rand::rng().random_range(0.8..1.2);
    base.mul_f64(jitter).min(max)
}

/// One structured event per delivery row: `journalctl TASK=II.3` finds it.
fn log_batch(out: &Outgoing, status: Status, reply: &str) {
    let to = recipients(&out.batch).join(", ");
    for n in &out.batch.nudges {
        let (task, office, kind) = (&n.task, &n.office, n.kind.code());
        let (message_id, status_str) = (&out.message_id, status.as_str());
        match status {
            Status::Sent => tracing::info!(
                task = %task, office = %office, kind = %kind, role = n.role.code(),
                recipients = %to, email_message_id = %message_id, status = status_str, late = n.late,
                reply = %reply, "reminder sent"
            ),
            Status::Retrying => tracing::warn!(
                task = %task, office = %office, kind = %kind, role = n.role.code(),
                recipients = %to, email_message_id = %message_id, status = status_str,
                error = %reply, "reminder not sent yet; will retry"
            ),
            _ => tracing::error!(
                task = %task, office = %office, kind = %kind, role = n.role.code(),
                recipients = %to, email_message_id = %message_id, status = status_str,
                error = %reply, "reminder could not be delivered"
            ),
        }
    }
}

/// Tells the configured admin address that a reminder failed for good. Best effort: a
/// failure here is logged, never retried, never recorded as a delivery.
async fn report_failure(ctx: &Context, clock: &Clock, out: &Outgoing, error: &str) {
    let cfg = &*ctx.config;
    let Some(admin) = &cfg.mail.admin else { return };
    let tasks: Vec<String> = out
        .batch
        .nudges
        .iter()
        .map(|n| format!("- {} ({}), {}", n.task, n.office, n.kind.label()))
        .collect();
    let body = format!(
        "nhacviec không gửi được thư nhắc việc (Message-ID {}) tới {}.\n\nLỗi của máy chủ thư:\n{}\n\nCác nhắc việc trong thư:\n{}\n\nXem chi tiết: nhacviec log --status failed\n",
        out.message_id,
        recipients(&out.batch).join(", "),
        error,
        tasks.join("\n")
    );
    let now = clock.now().with_timezone(&cfg.schedule.timezone);
    match email::admin_message(
        cfg,
        admin,
        "[nhacviec] Thư nhắc việc không gửi được",
        &body,
        now,
    ) {
        Ok(msg) => {
            if let Err(e) = ctx.sender.send(&msg).await {
                tracing::error!(error = %e, admin = %admin, "could not report a failed delivery to the admin address");
            }
        }
        Err(e) => tracing::error!(error = %e, "could not compose the failure report"),
    }
}

fn dry_run(
    ctx: &Context,
    now: DateTime<Utc>,
    due: &[Nudge],
    retry: &BTreeMap<String, Vec<Nudge>>,
    skip: &[Nudge],
) -> Result<SweepReport> {
    let cfg = &*ctx.config;
    let mut report = SweepReport::default();
    let tz = cfg.schedule.timezone;
    let mut all: Vec<(String, Batch)> = retry
        .iter()
        .flat_map(|(id, ns)| email::batches(cfg, ns).into_iter().map(|b| (id.clone(), b)))
        .collect();
    all.extend(
        email::batches(cfg, due)
            .into_iter()
            .map(|b| ("(new)".to_string(), b)),
    );
    for (id, batch) in &all {
        let msg = ctx
            .composer
            .compose(
                cfg,
                &ctx.calendar,
                batch,
                &email::new_message_id(&cfg.mail.message_id_domain),
                now.with_timezone(&tz),
            )
            .context("an email could not be composed")?;
        let subject = msg
            .headers()
            .get_raw("Subject")
            .map(str::to_string)
            .unwrap_or_default();
        println!(
            "would send {} to {}{}: {} [{}]",
            if id == "(new)" { "an email" } else { "again" },
            batch.to.join(", "),
            if batch.cc.is_empty() {
                String::new()
            } else {
                format!(" (cc {})", batch.cc.join(", "))
            },
            subject,
            batch
                .nudges
                .iter()
                .map(|n| format!("{} {}", n.task, n.kind.code()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        report.emails += 1;
        report.sent += batch.nudges.len();
    }
    for n in skip {
        println!(
            "would record as skipped: {} {} {}",
            n.task,
            n.office,
            n.kind.code()
        );
    }
    report.skipped = skip.len();
    Ok(report)
}
