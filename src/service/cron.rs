//! The configured sweep times: tokio-cron-scheduler jobs whose only work is to send
//! [`Event::SweepDue`] into the daemon loop.

use crate::plan::config::Config;
use crate::service::event_loop::Event;
use anyhow::{Context as _, Result};
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};
use uuid::Uuid;

pub struct Cron {
    scheduler: JobScheduler,
    jobs: Vec<Uuid>,
    events: mpsc::Sender<Event>,
}

impl Cron {
    /// Schedules `cfg`'s sweep times and starts the scheduler.
    pub async fn start(cfg: &Config, events: mpsc::Sender<Event>) -> Result<Cron> {
        let scheduler = JobScheduler::new().await.context(crate::t!(
            "không khởi động được bộ lập lịch quét",
            "cannot start the sweep scheduler"
        ))?;
        let jobs = schedule(&scheduler, cfg, &events).await?;
        scheduler.start().await.context(crate::t!(
            "không khởi động được bộ lập lịch quét",
            "cannot start the sweep scheduler"
        ))?;
        Ok(Cron {
            scheduler,
            jobs,
            events,
        })
    }

    /// After a reload from `old` to `new`: the jobs follow the new sweep times.
    pub async fn follow(&mut self, old: &Config, new: &Config) -> Result<()> {
        if !needs_new_jobs(old, new) {
            return Ok(());
        }
        for id in self.jobs.drain(..) {
            let _ = self.scheduler.remove(&id).await;
        }
        self.jobs = schedule(&self.scheduler, new, &self.events).await?;
        Ok(())
    }

    pub async fn shutdown(mut self) {
        let _ = self.scheduler.shutdown().await;
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
    events: &mpsc::Sender<Event>,
) -> Result<Vec<Uuid>> {
    let mut ids = Vec::new();
    for sw in &cfg.schedule.sweeps {
        let tx = events.clone();
        let job = Job::new_async_tz(sw.six_fields(), cfg.schedule.timezone, move |_id, _lock| {
            let tx = tx.clone();
            Box::pin(async move {
                // A full channel means a sweep is already queued: nothing is lost.
                let _ = tx.try_send(Event::SweepDue);
            })
        })
        .with_context(|| format!("the sweep time `{}` cannot be scheduled", sw.expr))?;
        ids.push(scheduler.add(job).await.context(crate::t!(
            "không lên lịch được một lần quét",
            "cannot schedule a sweep"
        ))?);
    }
    Ok(ids)
}
