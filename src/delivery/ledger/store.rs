//! The seam between the sweep and its ledger: SQLite (one host, the default) or PostgreSQL
//! (several nodes). The sweep and the daemon are async and call [`Store`]'s async methods;
//! the SQLite arm runs the synchronous [`Ledger`] code in place (each call is a short local
//! transaction), the PostgreSQL arm awaits the database.

use super::pg::{PgError, PgLedger};
use super::{
    Completion, DeliveryRow, Ledger, LedgerError, NewDelivery, Outcome, Reservation, SweepRecord,
};
use crate::delivery::reconcile::{self, LedgerStates};
use crate::plan::config::Config;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Either ledger's error, as it is.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Sqlite(#[from] LedgerError),
    #[error(transparent)]
    Pg(#[from] PgError),
}

/// The ledger a sweep writes: the config's `ledger:` chooses it.
#[derive(Debug)]
pub enum Store {
    Sqlite(Ledger),
    Pg(PgLedger),
}

/// What identifies a config's plan and mail settings, for telling nodes with different YAML
/// apart: a short SHA-256 of everything but where this node keeps its own files.
pub fn config_hash(cfg: &Config) -> String {
    let text = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        cfg.plan,
        cfg.offices,
        cfg.groups,
        cfg.sections,
        cfg.leadership,
        cfg.policies,
        cfg.tasks,
        cfg.schedule,
        cfg.mail.grouping,
        cfg.calendar,
        cfg.language,
    );
    let digest = Sha256::digest(text.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// Refuses `what`, which works on a SQLite ledger only, when the config's ledger is on
/// PostgreSQL: it would read or write a SQLite file that no node uses.
pub fn require_sqlite(cfg: &Config, what: &str) -> anyhow::Result<()> {
    if let Some(pg) = &cfg.ledger.postgres {
        anyhow::bail!(crate::tr!(
            "`{what}` chỉ dùng được với sổ gửi SQLite; sổ gửi này ở PostgreSQL ({}). Sao lưu sổ gửi PostgreSQL bằng công cụ của PostgreSQL (pg_dump, bản sao streaming)",
            "`{what}` works with a SQLite ledger only; this one is on PostgreSQL ({}). Back a PostgreSQL ledger up with PostgreSQL's tools (pg_dump, streaming replicas)",
            pg.url
        ));
    }
    Ok(())
}

impl Store {
    /// Opens the config's ledger for sweeping: the SQLite file (created and migrated if
    /// needed) or the PostgreSQL database (connected and migrated, as node `node`).
    pub async fn open(
        cfg: &Config,
        credentials: Option<&Path>,
        node: String,
    ) -> Result<Store, StoreError> {
        Ok(match &cfg.ledger.postgres {
            Some(pg) => Store::Pg(PgLedger::connect(pg, credentials, node).await?),
            None => Store::Sqlite(Ledger::open(&cfg.ledger.path)?),
        })
    }

    /// The SQLite ledger, if that is what this is.
    pub fn sqlite(&self) -> Option<&Ledger> {
        match self {
            Store::Sqlite(l) => Some(l),
            Store::Pg(_) => None,
        }
    }

    pub async fn first_sweep_as_of(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(match self {
            Store::Sqlite(l) => l.first_sweep_as_of()?,
            Store::Pg(p) => p.first_sweep_as_of().await?,
        })
    }

    /// Records a sweep's start under `cfg` (PostgreSQL: with this node and the config's hash,
    /// warning about other nodes with another config).
    pub async fn begin_sweep(
        &mut self,
        as_of: DateTime<Utc>,
        started: DateTime<Utc>,
        cfg: &Config,
    ) -> Result<i64, StoreError> {
        Ok(match self {
            Store::Sqlite(l) => l.begin_sweep(as_of, started)?,
            Store::Pg(p) => p.begin_sweep(as_of, started, &config_hash(cfg)).await?,
        })
    }

    pub async fn finish_sweep(
        &mut self,
        id: i64,
        finished: DateTime<Utc>,
        what: &SweepRecord,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(l) => l.finish_sweep(id, finished, what)?,
            Store::Pg(p) => p.finish_sweep(id, finished, what).await?,
        }
        Ok(())
    }

    /// Every key's state, for [`reconcile`](reconcile::reconcile).
    pub async fn read_states(&self) -> Result<LedgerStates, StoreError> {
        Ok(match self {
            Store::Sqlite(l) => reconcile::read_states(l)?,
            Store::Pg(p) => reconcile::states_from(p.unfinished().await?, p.all_states().await?),
        })
    }

    /// The completions that stand.
    pub async fn completions(&self) -> Result<Vec<Completion>, StoreError> {
        Ok(match self {
            Store::Sqlite(l) => l.completions()?,
            Store::Pg(p) => p.completions().await?,
        })
    }

    pub async fn unfinished(&self) -> Result<Vec<DeliveryRow>, StoreError> {
        Ok(match self {
            Store::Sqlite(l) => l.unfinished()?,
            Store::Pg(p) => p.unfinished().await?,
        })
    }

    pub async fn skip(
        &mut self,
        items: &[NewDelivery],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        Ok(match self {
            Store::Sqlite(l) => l.skip(items, reason, now)?,
            Store::Pg(p) => p.skip(items, reason, now).await?,
        })
    }

    /// Reserves each email; `None` for one another node holds (PostgreSQL only: the SQLite
    /// ledger has one writer, and gives every email its Message-ID).
    pub async fn reserve_many(
        &mut self,
        reservations: &[Reservation],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<String>>, StoreError> {
        Ok(match self {
            Store::Sqlite(l) => l
                .reserve_many(reservations, now)?
                .into_iter()
                .map(Some)
                .collect(),
            Store::Pg(p) => p.reserve_many(reservations, now).await?,
        })
    }

    pub async fn release(&mut self, message_ids: &[String]) -> Result<usize, StoreError> {
        Ok(match self {
            Store::Sqlite(l) => l.release(message_ids)?,
            Store::Pg(p) => p.release(message_ids).await?,
        })
    }

    pub async fn finish_scoped(
        &mut self,
        results: &[(String, Option<String>, Outcome)],
    ) -> Result<usize, StoreError> {
        Ok(match self {
            Store::Sqlite(l) => l.finish_scoped(results)?,
            Store::Pg(p) => p.finish_scoped(results).await?,
        })
    }

    pub async fn finish_many(
        &mut self,
        results: &[(String, Outcome)],
    ) -> Result<usize, StoreError> {
        let scoped: Vec<(String, Option<String>, Outcome)> = results
            .iter()
            .map(|(id, o)| (id.clone(), None, o.clone()))
            .collect();
        self.finish_scoped(&scoped).await
    }

    pub async fn mark_failed(
        &mut self,
        message_id: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.finish_many(&[(
            message_id.to_string(),
            Outcome::Failed {
                error: error.to_string(),
                at: now,
            },
        )])
        .await
    }
}
