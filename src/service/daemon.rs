//! `nhacviec run`: the service.
//!
//! Sweeps run at start-up, at the configured cron times (tokio-cron-scheduler), when a
//! retry falls due, after a reload and on SIGUSR1: [`event_loop::drive`] waits on all of
//! these at once and this module's [`Service`] does the work.
//!
//! Signals: SIGHUP reloads (validated with the same code as `check`; a bad config is logged
//! in full and the old one keeps running); SIGTERM or SIGINT stops after the emails in
//! flight are recorded; a second one exits at once. systemd hears READY=1, RELOADING=1 and
//! STOPPING=1 through `$NOTIFY_SOCKET`, and watchdog pings when `WatchdogSec=` is set.

use crate::delivery::ledger::Store;
use crate::delivery::ledger::lock::WriterLock;
use crate::delivery::ledger::store::Held;
use crate::delivery::reconcile::LedgerStates;
use crate::delivery::sweep::{self, Context, SweepReport};
use crate::delivery::transport::SecretEnv;
use crate::plan::config::{self, Config, Env};
use crate::service::changes;
use crate::service::clock::Clock;
use crate::service::cron::Cron;
use crate::service::event_loop::{self, Event, Work, notify};
use crate::service::shutdown::Shutdown;
use anyhow::Result;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sd_notify::NotifyState;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub config_path: PathBuf,
    /// Run as of this moment (the clock then runs on from it).
    pub at: Option<At>,
    /// One sweep (with its retries), then exit.
    pub once: bool,
}

/// A moment as the user wrote it (`--at`), read in the config's time zone once the daemon
/// has loaded the config: the file is loaded once, not a second time for its time zone.
#[derive(Clone)]
pub struct At(pub Arc<dyn Fn(Tz) -> Result<DateTime<Utc>> + Send + Sync>);

impl std::fmt::Debug for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("At(..)")
    }
}

/// Loads and validates the config, logging its warnings. On errors logs all of them and
/// fails with a pointer to `check`.
pub fn load_or_explain(path: &Path) -> Result<Config> {
    match load(path) {
        Ok(c) => Ok(c),
        Err(errors) => {
            for e in &errors {
                tracing::error!("{e}");
            }
            anyhow::bail!(crate::tr!(
                "cấu hình có {} lỗi; chạy `nhacviec check -c {}` để xem chúng kèm cách sửa",
                "the config has {} error(s); run `nhacviec check -c {}` to see them with their fix",
                errors.len(),
                path.display()
            ));
        }
    }
}

fn load(path: &Path) -> Result<Config, Vec<String>> {
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
    // A reload waits on the load of the file, while the second core has nothing to do.
    crate::plan::pipeline_loads(true);
    let config = load_or_explain(&opts.config_path)?;
    let at = match &opts.at {
        Some(At(at)) => Some(at(config.schedule.timezone)?),
        None => None,
    };
    let clock = match at {
        Some(t) => Clock::starting_at(t),
        None => Clock::real(),
    };
    let secrets = SecretEnv::from_process();
    let ctx = crate::web::with_links(Context::new(config, &secrets, clock.now())?)?;
    // One sweeping process per ledger, for the whole life of this one: a second would send
    // what this one is sending. Refused at once; systemd's restart policy retries the daemon.
    // A PostgreSQL ledger is shared by design: its rows' leases keep nodes apart.
    let _writer = match &ctx.config.ledger.postgres {
        None => Some(WriterLock::acquire(&ctx.config.ledger.path)?),
        Some(_) => None,
    };
    let mut ledger = Store::open(
        &ctx.config,
        secrets.credentials_directory.as_deref(),
        crate::delivery::ledger::pg::node_id(),
    )
    .await?;
    let outbox = match &ctx.config.mail.transport {
        config::Transport::Outbox(dir) => Some(dir.as_path()),
        config::Transport::Smtp(_) => None,
    };
    if let Some(sqlite) = ledger.sqlite() {
        crate::delivery::ledger::guard::check_start(sqlite, at, outbox)?;
    }
    let shutdown = Shutdown::new();

    if opts.once {
        event_loop::spawn_signals(shutdown.clone(), None)?;
        let report = once(&ctx, &mut ledger, &clock, &shutdown).await?;
        return Ok(if report.all_delivered() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }

    // Signals first: a SIGHUP that finds no handler ends the process, and one may come as
    // soon as the status pages answer. Events sent before the loop runs wait in the channel.
    let (events, rx) = mpsc::channel::<Event>(event_loop::EVENTS);
    event_loop::spawn_signals(shutdown.clone(), Some(events.clone()))?;
    // The status pages and confirmation links, when `web.listen` is set.
    let web = crate::web::start(&ctx.config, Arc::new(move || clock.now())).await?;
    web.when_quiet(WEB_QUIET, || {
        let r = crate::service::rest::release();
        tracing::debug!(
            advised_kb = r.advised / 1024,
            "trả lại các trang chương trình sau khi phục vụ trang web (program pages given back after serving the pages)"
        );
    });
    let web = Some(web);
    let cron = Cron::start(&ctx.config, events).await?;
    spawn_watchdog();
    tracing::info!(
        config = %opts.config_path.display(),
        ledger = %ctx.config.ledger.path.display(),
        tasks = ctx.config.tasks.len(),
        sweeps = %ctx.config.schedule.sweeps.iter().map(|s| s.expr.as_str()).collect::<Vec<_>>().join(", "),
        "nhacviec started"
    );
    notify(&[NotifyState::Ready, NotifyState::Status("running")]);

    let mut service = Service {
        config_path: opts.config_path,
        ctx,
        ledger,
        clock,
        secrets,
        shutdown: shutdown.clone(),
        cron,
        web,
        reloaded: None,
        states: None,
        retired: None,
    };
    let result = event_loop::drive(&mut service, rx, &shutdown).await;
    notify(&[NotifyState::Stopping]);
    tracing::info!("nhacviec đang dừng (nhacviec stopping)");
    service.cron.shutdown().await;
    result.map(|()| ExitCode::SUCCESS)
}

/// How long after another node's lease expires (by the database's clock) the daemon sweeps
/// to take its emails over: the lease has then passed for the database too, so the sweep
/// finds them claimable instead of waking again at once.
const TAKEOVER_MARGIN: Duration = Duration::from_secs(1);

/// How long the pages must be asked nothing before the daemon gives back what serving them
/// read (`service/rest.rs`).
const WEB_QUIET: Duration = Duration::from_secs(5);

/// What the daemon loop drives: sweeps of the real ledger and reloads of the config file.
pub struct Service {
    config_path: PathBuf,
    ctx: Context,
    ledger: Store,
    clock: Clock,
    secrets: SecretEnv,
    /// Polled between emails by each sweep.
    shutdown: Shutdown,
    cron: Cron,
    web: Option<crate::web::Server>,
    /// What the last reload changed, logged after the sweep it triggers: the reload's
    /// result is then the last line of the journal. Worked out meanwhile, off the async
    /// threads: that sweep does not wait for it.
    reloaded: Option<tokio::task::JoinHandle<Vec<String>>>,
    /// The ledger's states as read when the last reload began, for the sweep that follows
    /// it (see [`Service::reload`]); taken by that sweep, never kept for a later one.
    states: Option<LedgerStates>,
    /// The context a reload replaced, freed after the sweep that follows it: freeing a
    /// large plan takes a while and would delay that sweep and the reload's log line.
    retired: Option<Context>,
}

impl Work for Service {
    async fn sweep(&mut self, trigger: &'static str) -> Option<Duration> {
        let states = if trigger == "reload" {
            self.states.take()
        } else {
            None
        };
        let r = run_sweep(
            &self.ctx,
            &mut self.ledger,
            &self.clock,
            &self.shutdown,
            trigger,
            states,
        )
        .await;
        if trigger == "reload"
            && let Some(changes) = self.reloaded.take()
        {
            let changes = changes.await.unwrap_or_else(|e| {
                tracing::error!(error = %e, event = "reload", "không liệt kê được các thay đổi (cannot list the changes): {e}");
                Vec::new()
            });
            log_reloaded(&self.config_path, &changes, r.as_ref().ok());
        }
        if let Some(old) = self.retired.take() {
            // Off the async threads: signals and the next event are answered meanwhile.
            tokio::task::spawn_blocking(move || drop(old));
        }
        match r {
            Ok(r) => {
                let retry = r
                    .next_retry
                    .map(|t| (t - self.clock.now()).to_std().unwrap_or(Duration::ZERO));
                // Another node's emails are taken over once its lease expires (it died, or
                // lost the database): wake just after, by the database's clock, never before.
                let takeover = r
                    .held_elsewhere
                    .iter()
                    .map(|h| h.expires_in + TAKEOVER_MARGIN)
                    .min();
                retry.into_iter().chain(takeover).min()
            }
            // The ledger could not be written (disk full, read-only): try again after the
            // longest retry wait, so that freed space is used without a restart and a
            // failing disk is not hammered in a loop.
            Err(_) => Some(self.ctx.config.mail.retry.max),
        }
    }

    async fn reload(&mut self) -> Result<bool> {
        notify(&[NotifyState::Reloading, monotonic_now()]);
        let (path, old) = (self.config_path.clone(), self.ctx.config.clone());
        let (secrets, clock) = (self.secrets.clone(), self.clock);
        // Reading and validating a large plan takes CPU time: off the async threads, so
        // that a stop signal and the watchdog are answered meanwhile.
        let load = tokio::task::spawn_blocking(move || reload(&path, &old, &secrets, &clock));
        // The sweep that follows a reload reads the ledger's states now, while the file
        // loads: the event loop runs nothing else until that sweep, and in a SQLite ledger
        // only this process's sweeps write deliveries (one sweeping process per ledger), so
        // the states are those the sweep would read at its start. A shared PostgreSQL
        // ledger's other nodes write at any time either way: the reservations decide, not
        // this read. A refused reload drops them.
        let (loaded, states) = tokio::join!(load, self.ledger.read_states());
        let loaded = loaded.unwrap_or_else(|e| {
                tracing::error!(error = %e, event = "reload", "không nạp lại cấu hình (reload refused): {e}");
                None
            });
        let Some(new_ctx) = loaded else {
            notify(&[
                NotifyState::Ready,
                NotifyState::Status("running (reload failed: old config kept)"),
            ]);
            return Ok(false);
        };
        self.cron.follow(&self.ctx.config, &new_ctx.config).await?;
        let (old, new) = (self.ctx.config.clone(), new_ctx.config.clone());
        self.retired = Some(std::mem::replace(&mut self.ctx, new_ctx));
        if let Some(web) = &mut self.web {
            web.update(&self.ctx.config).await;
        }
        self.reloaded = Some(tokio::task::spawn_blocking(move || {
            changes::describe(&old, &new)
        }));
        self.states = states.ok();
        notify(&[
            NotifyState::Ready,
            NotifyState::Status("running (reloaded)"),
        ]);
        Ok(true)
    }

    fn rest(&mut self) {
        let r = crate::service::rest::release();
        tracing::debug!(
            advised_kb = r.advised / 1024,
            supported = r.supported,
            "trả lại các trang chương trình cho đến lần quét sau (program pages given back until the next sweep)"
        );
    }
}

/// One sweep, then its retries as they fall due, until nothing is left to retry or a stop
/// is requested while waiting for one.
async fn once(
    ctx: &Context,
    ledger: &mut Store,
    clock: &Clock,
    stop: &Shutdown,
) -> Result<SweepReport> {
    let mut total = SweepReport::default();
    loop {
        let at = clock.now();
        let r = sweep::sweep(ctx, ledger, clock, stop).await?;
        log_report(ctx, at, &r, "once");
        total.sent += r.sent;
        total.emails += r.emails;
        total.skipped += r.skipped;
        total.failed += r.failed;
        total.dropped += r.dropped;
        total.retrying = r.retrying;
        total.interrupted |= r.interrupted;
        total.outside_window = r.outside_window;
        total.held_elsewhere = r.held_elsewhere.clone();
        match r.next_retry {
            Some(t) if !stop.is_requested() && !r.outside_window => {
                let wait = (t - clock.now()).to_std().unwrap_or(Duration::ZERO);
                tracing::info!(
                    seconds = wait.as_secs_f64(),
                    "chờ gửi lại (waiting to retry)"
                );
                // A backoff may be an hour: a stop request must not wait for it.
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.requested() => {}
                }
            }
            _ => {
                // Rows still waiting for a retry that this run will not make; not those
                // another node is sending under a live lease: they are not this run's failure.
                total.retrying = ledger.left_here().await?;
                break;
            }
        }
    }
    if total.outside_window {
        tracing::warn!(
            "không phải ngày làm việc trong khung giờ gửi: không gửi gì (not a working day inside the sending window: nothing was sent)"
        );
    }
    println!(
        "{}",
        crate::tr!(
            "đã gửi {} lần nhắc trong {} email; {} thất bại, {} chờ thử lại, {} bỏ qua",
            "sent {} reminder(s) in {} email(s); {} failed, {} left to retry, {} skipped",
            total.sent,
            total.emails,
            total.failed,
            total.retrying,
            total.skipped
        )
    );
    if !total.held_elsewhere.is_empty() {
        println!(
            "{}",
            crate::tr!(
                "nút khác đang gửi (không phải lỗi của lần chạy này): {}",
                "other nodes are sending (not this run's failure): {}",
                Held::describe(&total.held_elsewhere)
            )
        );
    }
    Ok(total)
}

async fn run_sweep(
    ctx: &Context,
    ledger: &mut Store,
    clock: &Clock,
    stop: &Shutdown,
    why: &str,
    states: Option<LedgerStates>,
) -> Result<SweepReport> {
    let at = clock.now();
    let r = sweep::sweep_read(ctx, ledger, clock, stop, states).await;
    match &r {
        Ok(r) => log_report(ctx, at, r, why),
        // A ledger that cannot be written (disk full, read-only) is logged and the daemon
        // waits for the next sweep instead of crashing into a restart loop.
        Err(e) => tracing::error!(
            error = %format!("{e:#}"), trigger = why,
            "quét {} thất bại: {e:#}", local(ctx, at)
        ),
    }
    r
}

fn local(ctx: &Context, at: DateTime<Utc>) -> String {
    at.with_timezone(&ctx.config.schedule.timezone)
        .format("%d/%m/%Y %H:%M")
        .to_string()
}

/// One line per sweep, in words: `quét 22/01/2024 08:00: gửi 4 thư (5 lời nhắc), 0 lỗi,
/// bỏ qua 0`; the counts stay as fields.
fn log_report(ctx: &Context, at: DateTime<Utc>, r: &SweepReport, why: &str) {
    let mut text = if r.outside_window {
        format!(
            "quét {}: ngày nghỉ hoặc ngoài giờ gửi, không gửi gì",
            local(ctx, at)
        )
    } else {
        format!(
            "quét {}: gửi {} thư ({} lời nhắc), {} lỗi",
            local(ctx, at),
            r.emails,
            r.sent,
            r.failed
        )
    };
    text.push_str(&format!(", bỏ qua {}", r.skipped));
    if r.retrying > 0 {
        text.push_str(&format!(", {} chờ gửi lại", r.retrying));
    }
    if !r.held_elsewhere.is_empty() {
        text.push_str(&format!("; {}", Held::describe(&r.held_elsewhere)));
    }
    if r.dropped > 0 {
        text.push_str(&format!(", {} bỏ vì không còn trong kế hoạch", r.dropped));
    }
    if r.interrupted {
        text.push_str(" (dừng giữa chừng)");
    }
    tracing::info!(
        trigger = why,
        sent = r.sent,
        emails = r.emails,
        retrying = r.retrying,
        failed = r.failed,
        skipped = r.skipped,
        outside_window = r.outside_window,
        "{text}"
    );
}

/// The reload's result, after the sweep it triggered: each change, then one line that
/// sums it up (the last line the reload leaves in the journal).
fn log_reloaded(path: &Path, changes: &[String], swept: Option<&SweepReport>) {
    for l in changes {
        tracing::info!(change = %l, "thay đổi cấu hình: {l}");
    }
    let what = match changes.len() {
        0 => "không có gì thay đổi".to_string(),
        n => format!("{n} thay đổi"),
    };
    let sweep = match swept {
        Some(r) => format!("đã quét lại ngay: gửi {} thư", r.emails),
        None => "lần quét ngay sau đó thất bại (xem dòng trên)".to_string(),
    };
    tracing::info!(
        config = %path.display(), changes = changes.len(), event = "reload",
        "đã nạp lại cấu hình {}: {what}; {sweep}", path.display()
    );
}

/// Reads and validates the file; on errors logs all of them and returns `None`.
fn reload(path: &Path, old: &Arc<Config>, secrets: &SecretEnv, clock: &Clock) -> Option<Context> {
    let new = match load(path) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                tracing::error!("{e}");
            }
            tracing::error!(
                errors = errors.len(),
                event = "reload",
                "không nạp lại cấu hình: tệp có {} lỗi (reload refused); vẫn chạy cấu hình cũ",
                errors.len()
            );
            return None;
        }
    };
    // The daemon holds the ledger it opened (and, on SQLite, its writer lock): a new one
    // cannot be swapped in under a running sweep. Refused rather than half applied.
    if old.ledger != new.ledger {
        tracing::error!(
            event = "reload",
            old_ledger = %ledger_name(&old.ledger),
            new_ledger = %ledger_name(&new.ledger),
            "không nạp lại cấu hình: `ledger:` đã đổi ({} → {}); đổi sổ gửi cần khởi động lại dịch vụ (systemctl restart nhacviec); vẫn chạy cấu hình cũ (reload refused: `ledger:` changed; changing the ledger needs a restart; the old config keeps running)",
            ledger_name(&old.ledger),
            ledger_name(&new.ledger)
        );
        return None;
    }
    match Context::new(new, secrets, clock.now()).and_then(crate::web::with_links) {
        Ok(new_ctx) => Some(new_ctx),
        Err(e) => {
            tracing::error!(
                error = %format!("{e:#}"), event = "reload",
                "không nạp lại cấu hình (reload refused): {e:#}; vẫn chạy cấu hình cũ"
            );
            None
        }
    }
}

/// The ledger as a message names it: its PostgreSQL URL (never a password) or its file.
fn ledger_name(l: &config::LedgerConfig) -> String {
    match &l.postgres {
        Some(pg) => pg.url.clone(),
        None => l.path.display().to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::fs;

    const PLAN: &str = "plan:\n  year: 2024\noffices:\n  phong-a:\n    name: Phòng A\n    email: a@vpubnd.example\n  phong-b:\n    name: Phòng B\n    email: b@vpubnd.example\nreminders:\n  default:\n    before: [3wd]\n    on_day: true\n    overdue_every: never\n    escalate: {}\ntasks:\n  - id: T.1\n    title: Báo cáo quý I\n    deadline: 15/03/2024\n    lead: phong-a\nEXTRA\nmail:\n  from: Nhắc việc <nhacviec@vpubnd.example>\n  transport:\n    outbox: OUTBOX\nledger:\n  path: LEDGER\n";
    const T2_FOR_B: &str =
        "  - id: T.2\n    title: Số hóa hồ sơ\n    deadline: 15/03/2024\n    lead: phong-b\n";

    fn emails(outbox: &Path) -> Vec<String> {
        let mut all: Vec<String> = fs::read_dir(outbox)
            .map(|d| {
                d.map(|e| fs::read_to_string(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        all.sort();
        all
    }

    /// The real service on an outbox and a ledger in a temp dir, driven by queued events.
    #[tokio::test]
    async fn a_reload_event_swaps_the_config_and_a_refused_one_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let (path, outbox) = (dir.path().join("nhacviec.yaml"), dir.path().join("outbox"));
        let yaml = |extra: &str| {
            PLAN.replace("EXTRA\n", extra)
                .replace("OUTBOX", &outbox.display().to_string())
                .replace("LEDGER", &dir.path().join("l.db").display().to_string())
        };
        fs::write(&path, yaml("")).unwrap();
        let config = load_or_explain(&path).unwrap();
        // Friday 15/03/2024 at 08:00 in Hà Nội: T.1 is due today.
        let at = chrono_tz::Asia::Ho_Chi_Minh
            .with_ymd_and_hms(2024, 3, 15, 8, 0, 0)
            .unwrap();
        let clock = Clock::starting_at(at.with_timezone(&Utc));
        let secrets = SecretEnv::default();
        let ctx = Context::new(config, &secrets, clock.now()).unwrap();
        let ledger =
            Store::Sqlite(crate::delivery::ledger::Ledger::open(&ctx.config.ledger.path).unwrap());
        let (tx, rx) = mpsc::channel(event_loop::EVENTS);
        let cron = Cron::start(&ctx.config, tx.clone()).await.unwrap();
        let shutdown = Shutdown::new();
        let mut service = Service {
            config_path: path.clone(),
            ctx,
            ledger,
            clock,
            secrets,
            shutdown: shutdown.clone(),
            cron,
            web: None,
            reloaded: None,
            states: None,
            retired: None,
        };

        // The clerk adds T.2 for office B, then SIGHUP.
        fs::write(&path, yaml(T2_FOR_B)).unwrap();
        tx.send(Event::Reload).await.unwrap();
        tx.send(Event::Stop).await.unwrap();
        event_loop::drive(&mut service, rx, &shutdown)
            .await
            .unwrap();
        assert_eq!(
            service.ctx.config.tasks.len(),
            2,
            "the new config took over"
        );
        let sent = emails(&outbox);
        assert_eq!(sent.len(), 2, "start-up sent T.1, the reload T.2");
        assert!(sent.iter().any(|m| m.contains("b@vpubnd.example")));

        // A broken file is refused: the old config keeps running, nothing more is sent.
        fs::write(
            &path,
            yaml(T2_FOR_B).replace("lead: phong-b", "lead: phong-c"),
        )
        .unwrap();
        let (tx, rx) = mpsc::channel(event_loop::EVENTS);
        tx.send(Event::Reload).await.unwrap();
        tx.send(Event::SweepNow).await.unwrap();
        tx.send(Event::Stop).await.unwrap();
        event_loop::drive(&mut service, rx, &shutdown)
            .await
            .unwrap();
        assert_eq!(service.ctx.config.tasks.len(), 2);
        assert_eq!(
            service.ctx.config.tasks[1].lead,
            ["phong-b"],
            "still the old config"
        );
        assert_eq!(emails(&outbox).len(), 2, "already sent: nothing again");

        // Another ledger needs a restart: the reload is refused and the old config (with
        // its ledger) keeps running; the new file is never created.
        let other = dir.path().join("other.db");
        fs::write(
            &path,
            yaml(T2_FOR_B).replace(
                &dir.path().join("l.db").display().to_string(),
                &other.display().to_string(),
            ),
        )
        .unwrap();
        let (tx, rx) = mpsc::channel(event_loop::EVENTS);
        tx.send(Event::Reload).await.unwrap();
        tx.send(Event::Stop).await.unwrap();
        event_loop::drive(&mut service, rx, &shutdown)
            .await
            .unwrap();
        assert_eq!(service.ctx.config.ledger.path, dir.path().join("l.db"));
        assert!(!other.exists(), "the new ledger was not opened");
        service.cron.shutdown().await;
    }
}
