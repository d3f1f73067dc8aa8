//! The ledger a page reads and a confirmation writes: the SQLite file, or the PostgreSQL
//! database this node shares with the others. The pages run on the blocking threads (see
//! `blocking`); a PostgreSQL call is awaited there on the daemon's runtime.

use crate::delivery::ledger::pg::{PgLedger, node_id};
use crate::delivery::ledger::{Completion, DeliveryRow, Ledger, LogFilter, NewCompletion};
use crate::plan::config::Config;
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use tokio::runtime::Handle;

/// The PostgreSQL ledger of the pages, connected at the first page that needs it and kept
/// (its own small pool) until the config names another database.
#[derive(Default)]
pub(super) struct PgSlot(Mutex<Option<Arc<PgLedger>>>);

impl PgSlot {
    fn get(&self, cfg: &Config) -> Result<Option<Arc<PgLedger>>> {
        let Some(pg) = &cfg.ledger.postgres else {
            return Ok(None);
        };
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = slot.as_ref().filter(|l| l.url() == pg.url) {
            return Ok(Some(Arc::clone(l)));
        }
        let creds = crate::delivery::transport::SecretEnv::from_process().credentials_directory;
        let l = Arc::new(Handle::current().block_on(PgLedger::connect(
            pg,
            creds.as_deref(),
            node_id(),
        ))?);
        *slot = Some(Arc::clone(&l));
        Ok(Some(l))
    }
}

/// Either ledger, with the calls the pages make.
pub(super) enum PageLedger {
    Sqlite(Ledger),
    Pg(Arc<PgLedger>),
}

fn wait<T, E>(f: impl std::future::Future<Output = Result<T, E>>) -> Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    Ok(Handle::current().block_on(f)?)
}

impl PageLedger {
    /// The config's ledger, to read (`write`: to record a completion in, created if need be).
    pub(super) fn open(cfg: &Config, pg: &PgSlot, write: bool) -> Result<PageLedger> {
        Ok(match pg.get(cfg)? {
            Some(p) => PageLedger::Pg(p),
            None if write => PageLedger::Sqlite(Ledger::open(&cfg.ledger.path)?),
            None => PageLedger::Sqlite(Ledger::open_read_only(&cfg.ledger.path)?),
        })
    }

    pub(super) fn completions(&self) -> Result<Vec<Completion>> {
        match self {
            PageLedger::Sqlite(l) => Ok(l.completions()?),
            PageLedger::Pg(p) => wait(p.completions()),
        }
    }

    pub(super) fn completion_history(&self) -> Result<Vec<Completion>> {
        match self {
            PageLedger::Sqlite(l) => Ok(l.completion_history()?),
            PageLedger::Pg(p) => wait(p.completion_history()),
        }
    }

    pub(super) fn record_completion(
        &mut self,
        c: &NewCompletion,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        match self {
            PageLedger::Sqlite(l) => Ok(l.record_completion(c, now)?),
            PageLedger::Pg(p) => wait(p.record_completion(c, now)),
        }
    }

    pub(super) fn query(&self, filter: &LogFilter) -> Result<Vec<DeliveryRow>> {
        match self {
            PageLedger::Sqlite(l) => Ok(l.query(filter)?),
            PageLedger::Pg(p) => wait(p.query(filter)),
        }
    }

    pub(super) fn count_by_status_office(&self) -> Result<Vec<(String, String, u64)>> {
        match self {
            PageLedger::Sqlite(l) => Ok(l.count_by_status_office()?),
            PageLedger::Pg(p) => wait(p.count_by_status_office()),
        }
    }

    pub(super) fn last_complete_sweep(&self) -> Result<Option<DateTime<Utc>>> {
        match self {
            PageLedger::Sqlite(l) => Ok(l.last_complete_sweep()?),
            PageLedger::Pg(p) => wait(p.last_complete_sweep()),
        }
    }

    pub(super) fn row_counts(&self) -> Result<[(&'static str, u64); 3]> {
        match self {
            PageLedger::Sqlite(l) => Ok(l.row_counts()?),
            PageLedger::Pg(p) => wait(p.row_counts()),
        }
    }
}
