//! One sweep: [`reconcile`](crate::delivery::reconcile::reconcile) decides, from the planner
//! and the ledger's states, what is due; this module carries it out: skips recorded, stale
//! messages dropped, emails composed, reserved, sent and recorded.
//!
//! The ledger decides "already sent", never memory: every row is written `pending` before
//! its email goes out and updated after (both in batches), so a sweep after a crash, a
//! restart or a reload picks up where the last one stopped; rows left `pending` are re-sent
//! under their Message-ID. Correctness does not depend on when sweeps
//! run: each one sends whatever is due and not yet sent.

use crate::calendar::workdays::WorkCalendar;
use crate::delivery::email::{self, Batch, Composer, Email};
use crate::delivery::ledger::{
    DeliveryKey, NewDelivery, Outcome, Reservation, Status, Store, SweepRecord,
};
use crate::delivery::reconcile::{self, Decisions, LedgerStates, Resend};
use crate::delivery::transport::{Delivery, Refusal, SecretEnv, SendError, Sender};
use crate::plan::config::Config;
use crate::plan::planner::Nudge;
use crate::service::clock::Clock;
use crate::service::shutdown::Shutdown;
use anyhow::{Context as _, Result};
use chrono::{DateTime, Datelike, Utc};
use rand::Rng;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;

mod report;
use report::{alert_login_refused, log_batch, report_failure, report_refusals, summary_of};

/// Everything a sweep needs that is built once per config (and rebuilt on reload).
pub struct Context {
    pub config: Arc<Config>,
    pub calendar: Arc<WorkCalendar>,
    pub composer: Composer,
    pub sender: Sender,
}

impl Context {
    pub fn new(config: Config, secrets: &SecretEnv, now: DateTime<Utc>) -> Result<Self> {
        let year = now.with_timezone(&config.schedule.timezone).year();
        let calendar = config.work_calendar(year);
        let composer = Composer::new(&config).context(crate::t!(
            "không nạp được các mẫu email",
            "cannot load the email templates"
        ))?;
        let sender = Sender::new(&config, secrets).context(crate::t!(
            "không thiết lập được kênh gửi thư",
            "cannot set up the mail transport"
        ))?;
        Ok(Self {
            config: Arc::new(config),
            calendar: Arc::new(calendar),
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
    /// A first start's backlog (missed before nhacviec ever ran), settled without a row each.
    pub settled: usize,
    /// In flight at a crash, but no longer in the plan (the config changed meanwhile).
    pub dropped: usize,
    /// The earliest retry still waiting, if any: the daemon wakes up for it.
    pub next_retry: Option<DateTime<Utc>>,
    /// `now` was not a working day inside the sending window: nothing was sent.
    pub outside_window: bool,
    /// Stopped early because of a shutdown request.
    pub interrupted: bool,
    /// The server refused the SMTP login: the admin was alerted (once per sweep).
    pub login_refused: bool,
    /// Emails other nodes were sending at the sweep's end (PostgreSQL): not this node's
    /// failure; the daemon takes them over if their lease expires.
    pub held_elsewhere: Vec<crate::delivery::ledger::store::Held>,
}

impl SweepReport {
    /// Everything due went out (nothing failed, nothing left to retry).
    pub fn all_delivered(&self) -> bool {
        self.failed == 0 && self.retrying == 0 && !self.interrupted
    }
}

/// One email about to go out, with the ledger rows it carries.
struct Outgoing {
    batch: Batch,
    message_id: String,
    /// Transport attempts made before this one.
    attempts_before: u32,
    /// Its rows are all new in this sweep (none was in flight before): an unsent
    /// reservation of it can be taken back.
    fresh: bool,
}

/// Runs one sweep at `clock.now()`. `stop` is polled between emails: once a stop is
/// requested, no new email starts; those already in flight finish and are recorded.
pub async fn sweep(
    ctx: &Context,
    ledger: &mut Store,
    clock: &Clock,
    stop: &Shutdown,
) -> Result<SweepReport> {
    sweep_read(ctx, ledger, clock, stop, None).await
}

/// [`sweep`], on the ledger's `states` when the caller read them already (the daemon, while
/// a reload loaded the file): only when nothing could have written deliveries since but
/// what the reservations guard against anyway. `None`: read at the sweep's start.
pub async fn sweep_read(
    ctx: &Context,
    ledger: &mut Store,
    clock: &Clock,
    stop: &Shutdown,
    states: Option<LedgerStates>,
) -> Result<SweepReport> {
    let now = clock.now();
    // The history the decision needs is read before this sweep is recorded in it.
    let first = ledger.first_sweep_as_of().await?;
    // Recording the sweep is bookkeeping: a ledger that cannot take it (a full disk) fails
    // the sweep where it must, at the first reservation, not before planning.
    let id = ledger
        .begin_sweep(now, clock.now(), &ctx.config)
        .await
        .map_err(|e| tracing::warn!(error = %e, "could not record the sweep's start"))
        .ok();
    let d = decide(ctx, ledger, first, now, states).await?;
    let mut report = SweepReport {
        next_retry: d.next_retry,
        settled: d.settled,
        ..SweepReport::default()
    };
    // Said once, by the first start that settles them; later sweeps count the same
    // backlog again and would repeat the line at every sweep.
    if d.settled > 0 && first.is_none() {
        tracing::info!(
            settled = d.settled,
            "bỏ qua {} lời nhắc đã qua trước lần chạy đầu tiên",
            d.settled
        );
    }
    record_skipped(ledger, &d.skip, now, &mut report).await?;
    drop_gone(ledger, d.drop, now, &mut report).await?;
    if !d.sendable_now {
        report.outside_window = true;
    } else {
        let outgoing = outgoing(&ctx.config, d.resend, &d.send);
        send_all(ctx, ledger, clock, outgoing, stop, &mut report).await?;
    }
    report.held_elsewhere = ledger
        .held_elsewhere()
        .await
        .map_err(|e| tracing::warn!(error = %e, "could not list what other nodes hold"))
        .unwrap_or_default();
    let record = SweepRecord {
        sendable: d.sendable_now,
        sent: report.sent,
        skipped: report.skipped,
        settled: report.settled,
        complete: !report.interrupted,
    };
    if let Some(id) = id
        && let Err(e) = ledger.finish_sweep(id, clock.now(), &record).await
    {
        tracing::warn!(error = %e, "could not record the sweep's end");
    }
    Ok(report)
}

/// Reads the ledger's states and reconciles them with the plan at `now`. Planning a large
/// plan takes CPU time: it runs off the async threads, so that signals and the watchdog
/// are still answered meanwhile.
async fn decide(
    ctx: &Context,
    ledger: &mut Store,
    first: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    states: Option<LedgerStates>,
) -> Result<Decisions> {
    let states = match states {
        Some(s) => s,
        None => ledger.read_states().await?,
    };
    let cfg = crate::delivery::completions::applied_from(&ctx.config, &ledger.completions().await?);
    let cal = ctx.calendar.clone();
    tokio::task::spawn_blocking(move || reconcile::reconcile(&cfg, &cal, &states, first, now))
        .await
        .context(crate::t!(
            "lập kế hoạch cho lần quét thất bại",
            "planning the sweep failed"
        ))
}

async fn record_skipped(
    ledger: &mut Store,
    skip: &[Nudge],
    now: DateTime<Utc>,
    report: &mut SweepReport,
) -> Result<()> {
    if skip.is_empty() {
        return Ok(());
    }
    let items: Vec<NewDelivery> = skip.iter().map(new_delivery).collect();
    report.skipped = ledger.skip(
        &items,
        "missed while nhacviec was not running; a later reminder replaced it, or it is older than the catch-up window",
        now,
    ).await?;
    // One line for the sweep (the summary names them); each one only at debug.
    for n in skip {
        tracing::debug!(
            task = %n.task, office = %n.office, kind = %n.kind.code(), status = "skipped",
            "bỏ qua: {} → {} ({}), lẽ ra gửi {}", n.task, n.office, n.kind.label(),
            n.send_at.format("%d/%m/%Y")
        );
    }
    if report.skipped > 0 {
        tracing::info!(
            skipped = report.skipped,
            status = "skipped",
            "bỏ qua {} lời nhắc đã lỡ khi nhacviec không chạy ({}): ghi vào sổ, không gửi",
            report.skipped,
            summary_of(skip)
        );
    }
    Ok(())
}

/// In flight but gone from the plan: the office no longer owes it (reassigned, done,
/// removed). Such a message is closed, never silently left pending.
async fn drop_gone(
    ledger: &mut Store,
    gone: BTreeMap<String, Vec<DeliveryKey>>,
    now: DateTime<Utc>,
    report: &mut SweepReport,
) -> Result<()> {
    for (id, keys) in gone {
        ledger
            .mark_failed(
                &id,
                "dropped: no longer in the plan after a config change",
                now,
            )
            .await?;
        report.dropped += keys.len();
        for k in keys {
            tracing::warn!(
                task = %k.task, office = %k.office, kind = %k.kind, email_message_id = %id,
                status = "failed", "bỏ thư chưa gửi: {} → {} ({}) không còn trong kế hoạch", k.task, k.office, k.kind
            );
        }
    }
    Ok(())
}

/// The emails to send: those sent again first (one per Message-ID), then the new ones.
fn outgoing(cfg: &Config, resend: BTreeMap<String, Resend>, send: &[Nudge]) -> Vec<Outgoing> {
    let mut outgoing: Vec<Outgoing> = Vec::new();
    for (id, again) in resend {
        let mut batches = email::batches(cfg, &again.nudges);
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
            attempts_before: again.attempts,
            batch: first,
            message_id: id,
            fresh: false,
        });
    }
    // Nothing new is the common case (a sweep after a reload): batching nothing makes
    // nothing, but would index every task and office of the config first.
    if send.is_empty() {
        return outgoing;
    }
    for batch in email::batches(cfg, send) {
        outgoing.push(Outgoing {
            batch,
            message_id: email::new_message_id(&cfg.mail.message_id_domain),
            attempts_before: 0,
            fresh: true,
        });
    }
    outgoing
}

fn new_delivery(n: &Nudge) -> NewDelivery {
    NewDelivery {
        key: n.key(),
        role: n.role.code().to_string(),
        due_at: n.send_at.with_timezone(&Utc),
        late: n.late.is_late(),
    }
}

fn recipients(b: &Batch) -> Vec<String> {
    b.to.iter().chain(&b.cc).cloned().collect()
}

/// Emails reserved per ledger transaction, per connection of the pool, and at least
/// [`RESERVE_MIN`]: each reservation is one fsync (a few ms), which must stay small next to
/// the time the pool takes to send what it reserved. A crash leaves at most this many
/// emails `pending` that never went out: they go out on restart, each once.
const RESERVE_PER_CONNECTION: usize = 32;
const RESERVE_MIN: usize = 128;
/// Outcomes waiting to be recorded are written together once this many are waiting.
const FINISH_BATCH: usize = 64;
/// A send not done within this counts as a long wait: the waiting outcomes are recorded
/// first, so that they are not held back behind a slow server.
const FLUSH_GRACE: std::time::Duration = std::time::Duration::from_millis(20);

/// Outcomes received but not yet written to the ledger, with their log lines, which are
/// emitted once the outcome is committed.
#[derive(Default)]
struct Unrecorded {
    rows: Vec<(String, Option<String>, Outcome)>,
    logs: Vec<(Outgoing, Status, String)>,
}

impl Unrecorded {
    fn push(&mut self, out: Outgoing, status: Status, text: String, outcome: Outcome) {
        self.rows.push((out.message_id.clone(), None, outcome));
        self.logs.push((out, status, text));
    }

    /// An outcome for `office`'s rows of the email only; `out` holds those nudges alone.
    fn push_office(
        &mut self,
        office: String,
        out: Outgoing,
        status: Status,
        text: String,
        outcome: Outcome,
    ) {
        self.rows
            .push((out.message_id.clone(), Some(office), outcome));
        self.logs.push((out, status, text));
    }

    /// Writes every waiting outcome in one transaction.
    async fn flush(&mut self, ledger: &mut Store) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        ledger.finish_scoped(&self.rows).await?;
        self.rows.clear();
        for (out, status, text) in self.logs.drain(..) {
            log_batch(&out, status, &text);
        }
        Ok(())
    }
}

/// Sends with at most the pool's size in flight. Emails are reserved in batches (each one
/// `pending` in the ledger before it goes out) and their outcomes recorded in batches: a
/// handful of fsyncs per hundred emails instead of two per email. Every waiting outcome is
/// written before this returns, even on an error.
async fn send_all(
    ctx: &Context,
    ledger: &mut Store,
    clock: &Clock,
    outgoing: Vec<Outgoing>,
    stop: &Shutdown,
    report: &mut SweepReport,
) -> Result<()> {
    let mut unrecorded = Unrecorded::default();
    let sent = send_loop(ctx, ledger, clock, outgoing, stop, report, &mut unrecorded).await;
    let recorded = unrecorded.flush(ledger).await;
    sent.and(recorded)
}

async fn send_loop(
    ctx: &Context,
    ledger: &mut Store,
    clock: &Clock,
    outgoing: Vec<Outgoing>,
    stop: &Shutdown,
    report: &mut SweepReport,
    unrecorded: &mut Unrecorded,
) -> Result<()> {
    let limit = ctx.sender.concurrency();
    let batch = (limit * RESERVE_PER_CONNECTION).max(RESERVE_MIN);
    let mut outgoing = outgoing;
    // Each node of a shared ledger starts at its own point of the list (see `start_of`).
    let start = ledger.start_of(outgoing.len());
    outgoing.rotate_left(start);
    let mut source = outgoing.into_iter();
    let work = Arc::new(Work::default());
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut connections: JoinSet<()> = JoinSet::new();
    // The first reservation before any connection starts: a ledger that refuses it (a full
    // disk) fails the sweep with nothing sent.
    refill(&work, ledger, clock, &mut source, batch, stop).await?;
    for _ in 0..limit {
        connections.spawn(connection(
            ctx,
            *clock,
            work.clone(),
            stop.clone(),
            done_tx.clone(),
        ));
    }
    drop(done_tx);
    let mut done = Vec::new();
    loop {
        // Reserve ahead while the connections still have half a batch to send.
        if work.len() < batch / 2 {
            refill(&work, ledger, clock, &mut source, batch, stop).await?;
        }
        let received = if unrecorded.rows.is_empty() {
            done_rx.recv_many(&mut done, FINISH_BATCH).await
        } else {
            match tokio::time::timeout(FLUSH_GRACE, done_rx.recv_many(&mut done, FINISH_BATCH))
                .await
            {
                Ok(n) => n,
                Err(_) => {
                    unrecorded.flush(ledger).await?;
                    continue;
                }
            }
        };
        if received == 0 {
            // Every connection has ended: all sent, or a stop request.
            break;
        }
        for (out, attempt) in done.drain(..) {
            match attempt {
                Attempt::Sent(result) => {
                    record(ctx, ledger, clock, out, result, report, unrecorded).await?;
                }
                Attempt::NotComposed(text) => {
                    report.failed += out.batch.nudges.len();
                    let outcome = Outcome::Failed {
                        error: text.clone(),
                        at: clock.now(),
                    };
                    unrecorded.push(out, Status::Failed, text, outcome);
                }
            }
            if unrecorded.rows.len() >= FINISH_BATCH {
                unrecorded.flush(ledger).await?;
            }
        }
    }
    while let Some(ended) = connections.join_next().await {
        ended.context(crate::t!("một tác vụ gửi bị sập", "a send task panicked"))?;
    }
    let reserved = work.take_rest();
    if source.len() > 0 || !reserved.is_empty() {
        report.interrupted = true;
    }
    // Reserved but not sent (a stop request): new ones are taken back, so a stop leaves
    // nothing `pending` that never went out; those in flight before stay `pending` and go
    // out under their Message-ID next time.
    let unsent: Vec<String> = reserved
        .iter()
        .filter(|o| o.fresh)
        .map(|o| o.message_id.clone())
        .collect();
    ledger.release(&unsent).await?;
    Ok(())
}

/// Reserves the next `batch` emails of `source` (unless a stop was requested) and hands
/// them to the connections; once `source` is empty, tells them no more will come.
async fn refill(
    work: &Work,
    ledger: &mut Store,
    clock: &Clock,
    source: &mut std::vec::IntoIter<Outgoing>,
    batch: usize,
    stop: &Shutdown,
) -> Result<()> {
    // A batch may come back empty: another node sharing the ledger holds all of it. Then the
    // next one is reserved, so that this node does not stop sending while work is left.
    while !stop.is_requested() {
        let next: Vec<Outgoing> = source.by_ref().take(batch).collect();
        if next.is_empty() {
            break;
        }
        let reserved = reserve(ledger, clock, next).await?;
        if !reserved.is_empty() {
            work.push(reserved);
            break;
        }
    }
    if source.len() == 0 || stop.is_requested() {
        work.close();
    }
    Ok(())
}

/// The reserved emails waiting for a connection, shared by the connections' tasks: each
/// takes its next email itself, so a connection never waits for the sweep's thread.
#[derive(Default)]
struct Work {
    /// The emails, and whether more will come.
    queue: std::sync::Mutex<(VecDeque<Outgoing>, bool)>,
    more: Notify,
}

impl Work {
    fn len(&self) -> usize {
        self.queue.lock().expect("never poisoned").0.len()
    }

    fn push(&self, reserved: VecDeque<Outgoing>) {
        self.queue
            .lock()
            .expect("never poisoned")
            .0
            .extend(reserved);
        self.more.notify_waiters();
    }

    /// Returns an email taken but not started, to the front of the queue.
    fn put_back(&self, out: Outgoing) {
        self.queue.lock().expect("never poisoned").0.push_front(out);
    }

    /// No more emails will be pushed: connections end once the queue is empty.
    fn close(&self) {
        self.queue.lock().expect("never poisoned").1 = true;
        self.more.notify_waiters();
    }

    /// The next email, `None` once closed and empty.
    async fn next(&self) -> Option<Outgoing> {
        loop {
            let more = self.more.notified();
            tokio::pin!(more);
            // Registered before looking, so that a push in between is not missed.
            more.as_mut().enable();
            {
                let mut q = self.queue.lock().expect("never poisoned");
                if let Some(out) = q.0.pop_front() {
                    return Some(out);
                }
                if q.1 {
                    return None;
                }
            }
            more.await;
        }
    }

    /// The next email if one is waiting now.
    fn try_next(&self) -> Option<Outgoing> {
        self.queue.lock().expect("never poisoned").0.pop_front()
    }

    /// What no connection took (after a stop request).
    fn take_rest(&self) -> VecDeque<Outgoing> {
        std::mem::take(&mut self.queue.lock().expect("never poisoned").0)
    }
}

/// One connection of the pool: composes and sends one email after another until there are
/// no more or a stop is requested (checked before each email: the one in flight finishes).
/// Each outcome goes back to the sweep's loop, which records it. The email after the one
/// going out is taken and composed beforehand when one is waiting, so that its envelope
/// can go with this one's content (see [`Session`](crate::delivery::transport::Session));
/// on a stop it is put back unsent.
fn connection(
    ctx: &Context,
    clock: Clock,
    work: Arc<Work>,
    stop: Shutdown,
    done: mpsc::UnboundedSender<(Outgoing, Attempt)>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (config, calendar) = (ctx.config.clone(), ctx.calendar.clone());
    let (composer, sender) = (ctx.composer.clone(), ctx.sender.clone());
    async move {
        let mut session = sender.session();
        // An email that cannot be composed is reported at once, with why.
        let compose = |out: &Outgoing| {
            let now = clock.now().with_timezone(&config.schedule.timezone);
            composer
                .compose(&config, &calendar, &out.batch, &out.message_id, now)
                .map_err(|e| Attempt::NotComposed(format!("the email could not be composed: {e}")))
        };
        let mut ahead: Option<(Outgoing, Email)> = None;
        while !stop.is_requested() {
            let (out, message) = match ahead.take() {
                Some(next) => next,
                None => {
                    let Some(out) = work.next().await else { break };
                    if stop.is_requested() {
                        // Asked to stop while waiting for it: it stays unsent, to be
                        // taken back.
                        work.put_back(out);
                        break;
                    }
                    match compose(&out) {
                        Ok(message) => (out, message),
                        Err(failed) => {
                            if done.send((out, failed)).is_err() {
                                break;
                            }
                            continue;
                        }
                    }
                }
            };
            let mut gone = false;
            while ahead.is_none() && !gone {
                let Some(next) = work.try_next() else { break };
                match compose(&next) {
                    Ok(message) => ahead = Some((next, message)),
                    Err(failed) => gone = done.send((next, failed)).is_err(),
                }
            }
            if gone {
                // The sweep ended on an error: nothing more goes out.
                work.put_back(out);
                break;
            }
            let next = ahead.as_ref().map(|(_, m)| m);
            let attempt = Attempt::Sent(session.deliver(&message, next).await);
            if done.send((out, attempt)).is_err() {
                // The sweep ended on an error: nobody records this any more.
                break;
            }
        }
        if let Some((out, _)) = ahead {
            // Taken ahead but never sent (a stop request, or the sweep ended): back to
            // the queue, to be taken back like any email no connection took.
            work.put_back(out);
        }
    }
}

/// What became of one email a [`connection`] took.
enum Attempt {
    Sent(Result<Delivery, SendError>),
    NotComposed(String),
}

/// Writes `next` to the ledger as `pending`, in one transaction, before any of these emails
/// goes out: a crash from here on re-sends each with its Message-ID, never forgets it.
async fn reserve(
    ledger: &mut Store,
    clock: &Clock,
    next: Vec<Outgoing>,
) -> Result<VecDeque<Outgoing>> {
    let reservations: Vec<Reservation> = next
        .iter()
        .map(|o| Reservation {
            items: o.batch.nudges.iter().map(new_delivery).collect(),
            recipients: recipients(&o.batch),
            message_id: o.message_id.clone(),
        })
        .collect();
    let ids = ledger.reserve_many(&reservations, clock.now()).await?;
    // `None`: another node holds some of its nudges and sends it; this node does not.
    Ok(next
        .into_iter()
        .zip(ids)
        .filter_map(|(out, id)| Some((out, id?)))
        .map(|(mut out, id)| {
            // Another Message-ID back: some rows were in flight already.
            out.fresh &= out.message_id == id;
            out.message_id = id;
            out
        })
        .collect())
}

async fn record(
    ctx: &Context,
    ledger: &mut Store,
    clock: &Clock,
    out: Outgoing,
    result: Result<Delivery, SendError>,
    report: &mut SweepReport,
    unrecorded: &mut Unrecorded,
) -> Result<()> {
    let now = clock.now();
    let retry = &ctx.config.mail.retry;
    let n = out.batch.nudges.len();
    if let Err(e @ SendError::Auth { .. }) = &result
        && !report.login_refused
    {
        report.login_refused = true;
        alert_login_refused(ctx, clock, e).await;
    }
    match result {
        Ok(delivery) if !delivery.refused.is_empty() => {
            report.emails += 1;
            record_partial(ctx, ledger, clock, out, &delivery, report, unrecorded).await?;
        }
        Ok(Delivery { reply, .. }) => {
            report.sent += n;
            report.emails += 1;
            let outcome = Outcome::Sent {
                reply: reply.clone(),
                at: now,
            };
            unrecorded.push(out, Status::Sent, reply, outcome);
        }
        // A refused login is the server refusing nhacviec (a rotated password), not the
        // email: the reminders wait for the login to work, however many tries that takes
        // (each sweep that meets it alerts the admin), and are never given up as failed.
        Err(e)
            if e.is_transient()
                && (out.attempts_before + 1 < retry.attempts
                    || matches!(e, SendError::Auth { .. })) =>
        {
            let wait = backoff(retry.initial, retry.max, out.attempts_before);
            let next = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
            let text = e.to_string();
            report.retrying += n;
            report.next_retry = Some(report.next_retry.map_or(next, |r| r.min(next)));
            let outcome = Outcome::Retrying {
                error: text.clone(),
                next_attempt_at: next,
                at: now,
            };
            unrecorded.push(out, Status::Retrying, text, outcome);
        }
        Err(e) => {
            let text = e.to_string();
            report.failed += n;
            ledger
                .finish_many(&[(
                    out.message_id.clone(),
                    Outcome::Failed {
                        error: text.clone(),
                        at: now,
                    },
                )])
                .await?;
            log_batch(&out, Status::Failed, &text);
            // Reporting sends an email: what is waiting is recorded before that wait.
            unrecorded.flush(ledger).await?;
            report_failure(ctx, clock, &out, &text).await;
        }
    }
    Ok(())
}

/// The addresses that are `n`'s office's own on this email: the leadership's for its digest,
/// the addressed office's (To) for its own nudges, a cooperating office's for a rider.
fn own_addresses(cfg: &Config, b: &Batch, n: &Nudge) -> Vec<String> {
    if n.kind.is_leadership() || *n.office == *b.office {
        b.to.clone()
    } else {
        cfg.office(&n.office)
            .map(|o| o.emails.clone())
            .unwrap_or_default()
    }
}

/// `a@b` from `Tên <a@b>`, lowercased, to compare with the envelope's addresses.
fn address_key(s: &str) -> String {
    s.trim()
        .parse::<lettre::message::Mailbox>()
        .map(|m| m.email.to_string())
        .unwrap_or_else(|_| s.trim().to_string())
        .to_lowercase()
}

/// The server took the email for some recipients and refused others. Per office: if every
/// one of its own addresses was refused, its rows are `failed` (or `retrying`, when a
/// refusal was temporary); otherwise `sent`, with the refused copies (a head, a cooperating
/// office) in the reply. The admin is told which addresses were refused.
async fn record_partial(
    ctx: &Context,
    ledger: &mut Store,
    clock: &Clock,
    out: Outgoing,
    delivery: &Delivery,
    report: &mut SweepReport,
    unrecorded: &mut Unrecorded,
) -> Result<()> {
    let cfg = &*ctx.config;
    let now = clock.now();
    let retry = &cfg.mail.retry;
    let refused: BTreeMap<String, &Refusal> = delivery
        .refused
        .iter()
        .map(|r| (address_key(&r.address), r))
        .collect();
    let mut offices: BTreeMap<String, Vec<Nudge>> = BTreeMap::new();
    for n in &out.batch.nudges {
        offices
            .entry(n.office.to_string())
            .or_default()
            .push(n.clone());
    }
    let mut failed_offices: Vec<String> = Vec::new();
    for (office, nudges) in offices {
        let own = own_addresses(cfg, &out.batch, &nudges[0]);
        let own_refused: Vec<&Refusal> = own
            .iter()
            .filter_map(|a| refused.get(&address_key(a)).copied())
            .collect();
        let part = Outgoing {
            batch: Batch {
                nudges,
                ..out.batch.clone()
            },
            message_id: out.message_id.clone(),
            attempts_before: out.attempts_before,
            fresh: out.fresh,
        };
        let k = part.batch.nudges.len();
        let all_refused = !own.is_empty() && own_refused.len() == own.len();
        if !all_refused {
            report.sent += k;
            let text = delivery.describe();
            let outcome = Outcome::Sent {
                reply: text.clone(),
                at: now,
            };
            unrecorded.push_office(office, part, Status::Sent, text, outcome);
            continue;
        }
        let text = own_refused
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        let transient = own_refused.iter().any(|r| r.is_transient());
        if transient && out.attempts_before + 1 < retry.attempts {
            let wait = backoff(retry.initial, retry.max, out.attempts_before);
            let next = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
            report.retrying += k;
            report.next_retry = Some(report.next_retry.map_or(next, |r| r.min(next)));
            let outcome = Outcome::Retrying {
                error: text.clone(),
                next_attempt_at: next,
                at: now,
            };
            unrecorded.push_office(office, part, Status::Retrying, text, outcome);
        } else {
            report.failed += k;
            failed_offices.push(office.clone());
            let outcome = Outcome::Failed {
                error: text.clone(),
                at: now,
            };
            unrecorded.push_office(office, part, Status::Failed, text, outcome);
        }
    }
    // Reporting sends an email: what is waiting is recorded before that wait.
    unrecorded.flush(ledger).await?;
    report_refusals(ctx, clock, &out, delivery, &failed_offices).await;
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
