//! The daemon loop: one `select!` over its events, in the manner of mini-redis' expiry task
//! (sleep until the next deadline, or wake up early for an event) with the shutdown passed
//! in, as mini-redis' `server::run` takes it.
//!
//! The loop decides only *when* to sweep and reload; [`Work`] does it. The daemon's
//! [`Work`] sweeps the real ledger; the loop's own tests drive a recording one with paused
//! time.

use crate::service::shutdown::Shutdown;
use anyhow::{Context as _, Result};
use sd_notify::NotifyState;
use std::future::Future;
use std::time::Duration;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Events waiting for the loop; more are coalesced (a full queue already holds a sweep).
pub const EVENTS: usize = 16;

/// What wakes the loop up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A configured sweep time (from the cron scheduler).
    SweepDue,
    /// The earliest retry fell due (from the loop's own timer).
    RetryDue,
    /// SIGHUP: read the config again.
    Reload,
    /// SIGUSR1: sweep at once.
    SweepNow,
    /// End the loop.
    Stop,
}

/// What the loop drives.
pub trait Work {
    /// One sweep; `trigger` says why, for the log. Returns how long until a retry falls
    /// due, if one is waiting.
    fn sweep(&mut self, trigger: &'static str) -> impl Future<Output = Option<Duration>>;

    /// Reads and validates the config again. `Ok(true)`: the new one took over; `Ok(false)`:
    /// it was refused and the old one keeps running.
    fn reload(&mut self) -> impl Future<Output = Result<bool>>;

    /// Called when the loop goes back to waiting after a sweep: a place to give back what
    /// the sweep used. Nothing by default.
    fn rest(&mut self) {}
}

/// Sweeps at once, then on every event until `shutdown` is requested, a [`Event::Stop`]
/// arrives or every sender of `events` is gone. A reload that took over sweeps at once: a
/// newly assigned office hears about its task now, not at the next scheduled sweep.
pub async fn drive(
    work: &mut impl Work,
    mut events: mpsc::Receiver<Event>,
    shutdown: &Shutdown,
) -> Result<()> {
    let mut retry_at = deadline(work.sweep("start-up").await);
    work.rest();
    loop {
        let event = tokio::select! {
            biased;
            () = shutdown.requested() => Event::Stop,
            () = sleep_until(retry_at) => Event::RetryDue,
            e = events.recv() => e.unwrap_or(Event::Stop),
        };
        let trigger = match event {
            Event::Stop => break,
            Event::SweepDue => "schedule",
            Event::RetryDue => "retry",
            Event::SweepNow => "SIGUSR1",
            Event::Reload => {
                if !work.reload().await? {
                    continue;
                }
                "reload"
            }
        };
        retry_at = deadline(work.sweep(trigger).await);
        work.rest();
    }
    Ok(())
}

fn deadline(wait: Option<Duration>) -> Option<Instant> {
    wait.map(|d| Instant::now() + d)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Turns signals into the loop's events, from a task of its own so that a signal is
/// answered while a sweep runs. SIGTERM and SIGINT request `shutdown`; a second one exits
/// at once. SIGHUP and SIGUSR1 become [`Event::Reload`] and [`Event::SweepNow`] when
/// `events` is given, and keep their default action otherwise.
pub fn spawn_signals(shutdown: Shutdown, events: Option<mpsc::Sender<Event>>) -> Result<()> {
    let mut term = signal(SignalKind::terminate()).context(crate::t!(
        "không nghe được tín hiệu SIGTERM",
        "cannot listen for SIGTERM"
    ))?;
    let mut int = signal(SignalKind::interrupt()).context(crate::t!(
        "không nghe được tín hiệu SIGINT",
        "cannot listen for SIGINT"
    ))?;
    let (mut hup, mut usr1) = match events {
        Some(_) => (
            Some(signal(SignalKind::hangup()).context(crate::t!(
                "không nghe được tín hiệu SIGHUP",
                "cannot listen for SIGHUP"
            ))?),
            Some(signal(SignalKind::user_defined1()).context(crate::t!(
                "không nghe được tín hiệu SIGUSR1",
                "cannot listen for SIGUSR1"
            ))?),
        ),
        None => (None, None),
    };
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = term.recv() => Event::Stop,
                _ = int.recv() => Event::Stop,
                Some(()) = recv(&mut hup) => Event::Reload,
                Some(()) = recv(&mut usr1) => Event::SweepNow,
            };
            match (event, &events) {
                (Event::Stop, _) => stop_requested(&shutdown),
                // A full channel: the loop is busy and has this event queued already.
                (e, Some(tx)) => {
                    let _ = tx.try_send(e);
                }
                (_, None) => {}
            }
        }
    });
    Ok(())
}

async fn recv(sig: &mut Option<Signal>) -> Option<()> {
    match sig {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

fn stop_requested(shutdown: &Shutdown) {
    if shutdown.request() >= 2 {
        tracing::warn!("tín hiệu dừng lần hai: thoát ngay (second stop signal: exiting now)");
        std::process::exit(1);
    }
    tracing::info!(
        "được yêu cầu dừng: gửi nốt các thư đang gửi (stop requested: finishing the emails in flight)"
    );
    notify(&[NotifyState::Stopping]);
}

/// Tells systemd (through `$NOTIFY_SOCKET`); outside systemd there is nothing to tell.
pub fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "could not notify systemd");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;

    const MINUTE: Duration = Duration::from_secs(60);

    /// Records what the loop asked for; answers with scripted retry waits and reload results.
    #[derive(Default)]
    struct Recorder {
        log: Rc<RefCell<Vec<String>>>,
        /// Returned by the sweeps in turn; then nothing to retry.
        waits: VecDeque<Duration>,
        reloads: VecDeque<bool>,
        /// Requested during the next sweep, as a SIGTERM arriving mid-sweep would.
        stop_during_sweep: Option<Shutdown>,
    }

    impl Work for Recorder {
        async fn sweep(&mut self, trigger: &'static str) -> Option<Duration> {
            self.log.borrow_mut().push(format!("sweep {trigger}"));
            if let Some(s) = self.stop_during_sweep.take() {
                s.request();
            }
            self.waits.pop_front()
        }

        async fn reload(&mut self) -> Result<bool> {
            let ok = self.reloads.pop_front().unwrap_or(true);
            let what = if ok { "reload ok" } else { "reload refused" };
            self.log.borrow_mut().push(what.to_string());
            Ok(ok)
        }
    }

    fn seen(log: &Rc<RefCell<Vec<String>>>) -> Vec<String> {
        log.borrow().clone()
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_due_in_ten_minutes_fires_then_a_stop_event_ends_the_loop() {
        let mut work = Recorder {
            waits: VecDeque::from([10 * MINUTE]),
            ..Recorder::default()
        };
        let log = work.log.clone();
        let (tx, rx) = mpsc::channel(EVENTS);
        let shutdown = Shutdown::new();
        let script = async {
            tokio::time::sleep(9 * MINUTE).await;
            assert_eq!(seen(&log), ["sweep start-up"], "not due yet");
            tokio::time::advance(2 * MINUTE).await;
            tokio::task::yield_now().await;
            assert_eq!(seen(&log), ["sweep start-up", "sweep retry"]);
            // Nothing else to retry: an hour goes by quietly.
            tokio::time::sleep(60 * MINUTE).await;
            assert_eq!(seen(&log).len(), 2);
            tx.send(Event::Stop).await.unwrap();
        };
        let (ended, ()) = tokio::join!(drive(&mut work, rx, &shutdown), script);
        ended.unwrap();
        assert_eq!(seen(&log), ["sweep start-up", "sweep retry"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reload_sweeps_at_once_and_a_refused_one_leaves_the_retry_timer_running() {
        let mut work = Recorder {
            waits: VecDeque::from([30 * MINUTE]),
            reloads: VecDeque::from([false, true]),
            ..Recorder::default()
        };
        let log = work.log.clone();
        let (tx, rx) = mpsc::channel(EVENTS);
        let shutdown = Shutdown::new();
        let script = async {
            tokio::time::sleep(MINUTE).await;
            tx.send(Event::Reload).await.unwrap();
            tokio::time::sleep(MINUTE).await;
            assert_eq!(seen(&log), ["sweep start-up", "reload refused"]);
            // The retry planned at start-up still comes, 30 minutes after start-up.
            tokio::time::sleep(28 * MINUTE + Duration::from_secs(1)).await;
            assert_eq!(seen(&log)[2], "sweep retry");
            tx.send(Event::Reload).await.unwrap();
            tx.send(Event::SweepNow).await.unwrap();
            tx.send(Event::SweepDue).await.unwrap();
            drop(tx);
        };
        let (ended, ()) = tokio::join!(drive(&mut work, rx, &shutdown), script);
        ended.unwrap();
        assert_eq!(
            seen(&log),
            [
                "sweep start-up",
                "reload refused",
                "sweep retry",
                "reload ok",
                "sweep reload",
                "sweep SIGUSR1",
                "sweep schedule",
            ],
            "a closed channel ends the loop after the queued events"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_request_ends_the_wait_for_a_retry_an_hour_away() {
        let mut work = Recorder {
            waits: VecDeque::from([60 * MINUTE]),
            ..Recorder::default()
        };
        let log = work.log.clone();
        let (_tx, rx) = mpsc::channel(EVENTS);
        let shutdown = Shutdown::new();
        let start = Instant::now();
        let script = async {
            tokio::time::sleep(MINUTE).await;
            shutdown.request();
        };
        let (ended, ()) = tokio::join!(drive(&mut work, rx, &shutdown), script);
        ended.unwrap();
        assert_eq!(seen(&log), ["sweep start-up"]);
        assert!(start.elapsed() < 2 * MINUTE, "{:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_requested_during_a_sweep_wins_over_queued_events() {
        let shutdown = Shutdown::new();
        let mut work = Recorder {
            stop_during_sweep: Some(shutdown.clone()),
            waits: VecDeque::from([Duration::ZERO]),
            ..Recorder::default()
        };
        let log = work.log.clone();
        let (tx, rx) = mpsc::channel(EVENTS);
        tx.send(Event::SweepNow).await.unwrap();
        drive(&mut work, rx, &shutdown).await.unwrap();
        assert_eq!(seen(&log), ["sweep start-up"], "no sweep after the stop");
    }
}
