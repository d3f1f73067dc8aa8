//! `nhacviec run`: the service loop.
//!
//! Sweeps run at start-up, at the configured cron times (tokio-cron-scheduler), when a
//! retry falls due, after a reload and on SIGUSR1. Between sweeps the loop waits on all of
//! these at once, in the style of mini-redis' expiry worker.
//!
//! Signals: SIGHUP reloads (validated with the same code as `check`; a bad config is logged
//! in full and the old one keeps running); SIGTERM or SIGINT stops after the emails in
//! flight are recorded; a second one exits at once. systemd hears READY=1, RELOADING=1 and
//! STOPPING=1 through `$NOTIFY_SOCKET`, and watchdog pings when `WatchdogSec=` is set.

use crate::delivery::ledger::Ledger;
use crate::delivery::sweep::{self, Context, SweepOptions, SweepReport};
use crate::delivery::transport::SecretEnv;
use crate::plan::config::{self, Config, Env};
use crate::service::changes;
use crate::service::clock::Clock;
use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use sd_notify::NotifyState;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, mpsc};
use tokio_cron_scheduler::{Job, JobScheduler};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub config_path: PathBuf,
    /// Run as of this moment (the clock then runs on from it).
    pub at: Option<DateTime<Utc>>,
    /// One sweep (with its retries), then exit.
    pub once: bool,
    pub dry_run: bool,
}

/// Set by the first SIGTERM/SIGINT; polled between emails.
#[derive(Default)]
struct Shutdown {
    requested: AtomicBool,
    signals: AtomicU32,
    notify: Notify,
}

fn notify(states: &[NotifyState]) {
    // Outside systemd there is no socket and nothing to tell.
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "could not notify systemd");
    }
}

fn load(path: &std::path::Path) -> Result<Config, Vec<String>> {
    config::load(path, &Env::from_process())
        .map(|l| {
            for w in l.report.render_short() {
                tracing::warn!("{w}");
            }
            l.config
        })
        .map_err(|r| r.render_short())
}

pub async fn run(opts: RunOptions) -> Result<ExitCode> {
    let clock = match opts.at {
        Some(t) => Clock::starting_at(t),
        None => Clock::real(),
    };
    let config = match load(&opts.config_path) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                tracing::error!("{e}");
            }
            anyhow::bail!(
                "the config has {} error(s); run `nhacviec check -c {}` to see them with their fix",
                errors.len(),
                opts.config_path.display()
            );
        }
    };
    let secrets = SecretEnv::from_process();
    let mut ctx = Context::new(config, &secrets, clock.now())?;
    // A dry run plans against a copy of the history and leaves the real ledger untouched
    // (not even created).
    let mut ledger = if opts.dry_run {
        Ledger::scratch_copy(&ctx.config.ledger.path)?
    } else {
        Ledger::open(&ctx.config.ledger.path)?
    };
    let sweep_opts = SweepOptions {
        dry_run: opts.dry_run,
    };

    let shutdown = Arc::new(Shutdown::default());
    spawn_signal_watch(shutdown.clone())?;
    let stop = {
        let s = shutdown.clone();
        move || s.requested.load(Ordering::SeqCst)
    };

    if opts.once {
        let report = once(
            &ctx,
            &mut ledger,
            &clock,
            sweep_opts,
            &stop,
            &shutdown.notify,
        )
        .await?;
        return Ok(if report.all_delivered() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }

    let (tick_tx, mut tick_rx) = mpsc::channel::<()>(16);
    let mut scheduler = JobScheduler::new()
        .await
        .context("cannot start the sweep scheduler")?;
    let mut jobs = schedule(&scheduler, &ctx.config, &tick_tx).await?;
    scheduler
        .start()
        .await
        .context("cannot start the sweep scheduler")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    let mut usr1 = signal(SignalKind::user_defined1()).context("cannot listen for SIGUSR1")?;
    spawn_watchdog();

    tracing::info!(
        config = %opts.config_path.display(),
        ledger = %ctx.config.ledger.path.display(),
        tasks = ctx.config.tasks.len(),
        sweeps = %ctx.config.schedule.sweeps.iter().map(|s| s.expr.as_str()).collect::<Vec<_>>().join(", "),
        "nhacviec started"
    );
    notify(&[NotifyState::Ready, NotifyState::Status("running")]);

    let mut report = run_sweep(&ctx, &mut ledger, &clock, sweep_opts, &stop, "start-up").await;
    loop {
        if shutdown.requested.load(Ordering::SeqCst) {
            break;
        }
        let retry_in = match &report {
            Ok(r) => r
                .next_retry
                .map(|t| (t - clock.now()).to_std().unwrap_or(Duration::ZERO)),
            // The ledger could not be written (disk full, read-only): try again after the
            // longest retry wait, so that freed space is used without a restart and a
            // failing disk is not hammered in a loop.
            Err(_) => Some(ctx.config.mail.retry.max),
        };
        let retry_sleep = async {
            match retry_in {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.notify.notified() => {}
            Some(()) = tick_rx.recv() => {
                report = run_sweep(&ctx, &mut ledger, &clock, sweep_opts, &stop, "schedule").await;
            }
            _ = retry_sleep => {
                report = run_sweep(&ctx, &mut ledger, &clock, sweep_opts, &stop, "retry").await;
            }
            _ = usr1.recv() => {
                report = run_sweep(&ctx, &mut ledger, &clock, sweep_opts, &stop, "SIGUSR1").await;
            }
            _ = hup.recv() => {
                notify(&[NotifyState::Reloading, monotonic_now()]);
                match reload(&opts.config_path, &ctx, &secrets, &clock) {
                    Some(new_ctx) => {
                        if needs_new_jobs(&ctx.config, &new_ctx.config) {
                            for id in jobs.drain(..) {
                                let _ = scheduler.remove(&id).await;
                            }
                            jobs = schedule(&scheduler, &new_ctx.config, &tick_tx).await?;
                        }
                        ctx = new_ctx;
                        notify(&[NotifyState::Ready, NotifyState::Status("running (reloaded)")]);
                        // A newly assigned office hears about its task now, not at the
                        // next scheduled sweep.
                        report = run_sweep(&ctx, &mut ledger, &clock, sweep_opts, &stop, "reload").await;
                    }
                    None => notify(&[NotifyState::Ready, NotifyState::Status("running (reload failed: old config kept)")]),
                }
            }
        }
    }
    notify(&[NotifyState::Stopping]);
    tracing::info!("nhacviec stopping");
    let _ = scheduler.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// One sweep, then its retries as they fall due, until nothing is left to retry or a stop
/// is requested (`stopped` is notified) while waiting for one.
async fn once(
    ctx: &Context,
    ledger: &mut Ledger,
    clock: &Clock,
    opts: SweepOptions,
    stop: &(dyn Fn() -> bool + Sync),
    stopped: &Notify,
) -> Result<SweepReport> {
    let mut total = SweepReport::default();
    loop {
        let r = sweep::sweep(ctx, ledger, clock, opts, stop).await?;
        log_report(&r, "once");
        total.sent += r.sent;
        total.emails += r.emails;
        total.skipped += r.skipped;
        total.failed += r.failed;
        total.dropped += r.dropped;
        total.retrying = r.retrying;
        total.interrupted |= r.interrupted;
        total.outside_window = r.outside_window;
        match r.next_retry {
            Some(t) if !stop() && !r.outside_window => {
                let wait = (t - clock.now()).to_std().unwrap_or(Duration::ZERO);
                tracing::info!(seconds = wait.as_secs_f64(), "waiting to retry");
                // A backoff may be an hour: a stop request must not wait for it.
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopped.notified() => {}
                }
            }
            _ => {
                // Rows still waiting for a retry that this run will not make.
                total.retrying = ledger.unfinished()?.len();
                break;
            }
        }
    }
    if total.outside_window {
        tracing::warn!("not a working day inside the sending window: nothing was sent");
    }
    if opts.dry_run {
        println!(
            "dry run: would send {} reminder(s) in {} email(s); nothing was sent or recorded",
            total.sent, total.emails
        );
    } else {
        println!(
            "sent {} reminder(s) in {} email(s); {} failed, {} left to retry, {} skipped",
            total.sent, total.emails, total.failed, total.retrying, total.skipped
        );
    }
    Ok(total)
}

async fn run_sweep(
    ctx: &Context,
    ledger: &mut Ledger,
    clock: &Clock,
    opts: SweepOptions,
    stop: &(dyn Fn() -> bool + Sync),
    why: &str,
) -> Result<SweepReport> {
    let r = sweep::sweep(ctx, ledger, clock, opts, stop).await;
    match &r {
        Ok(r) => log_report(r, why),
        // A ledger that cannot be written (disk full, read-only) is logged and the daemon
        // waits for the next sweep instead of crashing into a restart loop.
        Err(e) => tracing::error!(error = %format!("{e:#}"), trigger = why, "sweep failed"),
    }
    r
}

fn log_report(r: &SweepReport, why: &str) {
    tracing::info!(
        trigger = why,
        sent = r.sent,
        emails = r.emails,
        retrying = r.retrying,
        failed = r.failed,
        skipped = r.skipped,
        outside_window = r.outside_window,
        "sweep done"
    );
}

/// Reads and validates the file; on errors logs all of them and returns `None`.
fn reload(
    path: &std::path::Path,
    ctx: &Context,
    secrets: &SecretEnv,
    clock: &Clock,
) -> Option<Context> {
    let new = match load(path) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                tracing::error!("{e}");
            }
            tracing::error!(
                errors = errors.len(),
                "reload refused: the config has errors; still running on the previous one"
            );
            return None;
        }
    };
    let lines = changes::describe(&ctx.config, &new);
    match Context::new(new, secrets, clock.now()) {
        Ok(new_ctx) => {
            if lines.is_empty() {
                tracing::info!("config reloaded: nothing changed");
            }
            for l in &lines {
                tracing::info!(change = %l, "config reloaded: {l}");
            }
            Some(new_ctx)
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "reload refused; still running on the previous config");
            None
        }
    }
}

fn needs_new_jobs(old: &Config, new: &Config) -> bool {
    let exprs = |c: &Config| {
        c.schedule
            .sweeps
            .iter()
            .map(|s| s.expr.clone())
            .collect::<Vec<_>>()
    };
    exprs(old) != exprs(new) || old.schedule.timezone != new.schedule.timezone
}

async fn schedule(
    scheduler: &JobScheduler,
    cfg: &Config,
    tick: &mpsc::Sender<()>,
) -> Result<Vec<Uuid>> {
    let mut ids = Vec::new();
    for sw in &cfg.schedule.sweeps {
        let tx = tick.clone();
        let job = Job::new_async_tz(sw.six_fields(), cfg.schedule.timezone, move |_id, _lock| {
            let tx = tx.clone();
            Box::pin(async move {
                // A full channel means a sweep is already queued: nothing is lost.
                let _ = tx.try_send(());
            })
        })
        .with_context(|| format!("the sweep time `{}` cannot be scheduled", sw.expr))?;
        ids.push(
            scheduler
                .add(job)
                .await
                .context("cannot schedule a sweep")?,
        );
    }
    Ok(ids)
}

fn spawn_signal_watch(shutdown: Arc<Shutdown>) -> Result<()> {
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            if shutdown.signals.fetch_add(1, Ordering::SeqCst) >= 1 {
                tracing::warn!("second stop signal: exiting now");
                std::process::exit(1);
            }
            tracing::info!("stop requested: finishing the emails in flight");
            notify(&[NotifyState::Stopping]);
            shutdown.requested.store(true, Ordering::SeqCst);
            shutdown.notify.notify_waiters();
            shutdown.notify.notify_one();
        }
    });
    Ok(())
}

fn spawn_watchdog() {
    if let Some(interval) = sd_notify::watchdog_enabled() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval / 2);
            loop {
                tick.tick().await;
                notify(&[NotifyState::Watchdog]);
            }
        });
    }
}

fn monotonic_now() -> NotifyState<'static> {
    NotifyState::monotonic_usec_now().unwrap_or(NotifyState::MonotonicUsec(0))
}
