//! The seam between the sweep and its ledger: SQLite (one host, the default) or PostgreSQL
//! (several nodes). The sweep and the daemon are async and call [`Store`]'s async methods;
//! the SQLite arm runs the synchronous [`Ledger`] code in place (each call is a short local
//! transaction), the PostgreSQL arm awaits the database.

use super::pg::{PgError, PgLedger};
use super::{
    Completion, DeliveryRow, Ledger, LedgerError, NewCompletion, NewDelivery, Outcome, Reservation,
    SweepRecord,
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

/// Emails another node is sending: its rows `pending` under a live lease. Not this node's
/// failure, nor its work until the lease expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub node: String,
    pub emails: usize,
    pub rows: usize,
    /// Until the first of these leases expires, by the database's clock.
    pub expires_in: std::time::Duration,
}

impl Held {
    /// `3 email(s) being sent by node node-a`, in the user's language.
    pub fn describe(held: &[Held]) -> String {
        held.iter()
            .map(|h| {
                crate::tr!(
                    "{} email đang được nút {} gửi",
                    "{} email(s) being sent by node {}",
                    h.emails,
                    h.node
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
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

/// What planning needs from a ledger, read once: `plan` and `run --dry-run` plan against it
/// as a sweep of `run` would, on either backend.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub first_sweep_as_of: Option<DateTime<Utc>>,
    /// Every key's state.
    pub states: LedgerStates,
    /// The completions that stand.
    pub completions: Vec<Completion>,
    /// Rows in flight that are this node's to send or retry (see [`Store::left_here`]).
    pub left_here: usize,
    /// The emails other nodes hold under a live lease (PostgreSQL): by node, and their
    /// Message-IDs. A sweep cannot claim them, so a dry run does not list them as its own.
    pub held_elsewhere: Vec<Held>,
    pub held_ids: std::collections::HashSet<String>,
}

impl Snapshot {
    /// Read from a SQLite ledger, without a runtime.
    pub fn of_sqlite(l: &Ledger) -> Result<Snapshot, LedgerError> {
        Ok(Snapshot {
            first_sweep_as_of: l.first_sweep_as_of()?,
            states: reconcile::read_states(l)?,
            completions: l.completions()?,
            left_here: l.unfinished()?.len(),
            held_elsewhere: Vec::new(),
            held_ids: Default::default(),
        })
    }
}

impl Store {
    /// Where in a sweep's list of `len` emails this node starts reserving. Nodes sharing a
    /// PostgreSQL ledger walk the same list: from the same start, the second would wait on
    /// the first's uncommitted batch, lose it, and trail it to the end without sending. A
    /// start set by the node's id (FNV-1a) spreads them; a SQLite ledger has one node, which
    /// starts at the beginning.
    pub fn start_of(&self, len: usize) -> usize {
        match self {
            Store::Sqlite(_) => 0,
            Store::Pg(pg) if len > 0 => {
                let hash = pg.node().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                });
                usize::try_from(hash % len as u64).unwrap_or(0)
            }
            Store::Pg(_) => 0,
        }
    }

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

    pub async fn first_sweep_as_of(&mut self) -> Result<Option<DateTime<Utc>>, StoreError> {
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
    pub async fn read_states(&mut self) -> Result<LedgerStates, StoreError> {
        Ok(match self {
            Store::Sqlite(l) => reconcile::read_states(l)?,
            Store::Pg(p) => reconcile::states_from(p.unfinished().await?, p.all_states().await?),
        })
    }

    /// The completions that stand.
    pub async fn completions(&mut self) -> Result<Vec<Completion>, StoreError> {
        Ok(match self {
            Store::Sqlite(l) => l.completions()?,
            Store::Pg(p) => p.completions().await?,
        })
    }

    /// Every completion row, oldest first: the audit trail.
    pub async fn completion_history(&mut self) -> Result<Vec<Completion>, StoreError> {
        Ok(match self {
            Store::Sqlite(l) => l.completion_history()?,
            Store::Pg(p) => p.completion_history().await?,
        })
    }

    /// Appends a completion (or its withdrawal), recorded at `now`; returns its id.
    pub async fn record_completion(
        &mut self,
        c: &NewCompletion,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        Ok(match self {
            Store::Sqlite(l) => l.record_completion(c, now)?,
            Store::Pg(p) => p.record_completion(c, now).await?,
        })
    }

    /// What `plan` and `run --dry-run` plan against.
    pub async fn snapshot(&mut self) -> Result<Snapshot, StoreError> {
        Ok(match self {
            Store::Sqlite(l) => Snapshot::of_sqlite(l)?,
            Store::Pg(_) => Snapshot {
                first_sweep_as_of: self.first_sweep_as_of().await?,
                states: self.read_states().await?,
                completions: self.completions().await?,
                left_here: self.left_here().await?,
                held_elsewhere: self.held_elsewhere().await?,
                held_ids: match self {
                    Store::Pg(p) => p.held_message_ids().await?,
                    Store::Sqlite(_) => Default::default(),
                },
            },
        })
    }

    /// The emails other nodes hold under a live lease (none on SQLite: one writer).
    pub async fn held_elsewhere(&mut self) -> Result<Vec<Held>, StoreError> {
        Ok(match self {
            Store::Sqlite(_) => Vec::new(),
            Store::Pg(p) => p.held_elsewhere().await?,
        })
    }

    /// The rows in flight that are this node's to send or retry: all of them on SQLite; on
    /// PostgreSQL, not those another node holds under a live lease.
    pub async fn left_here(&mut self) -> Result<usize, StoreError> {
        Ok(match self {
            Store::Sqlite(l) => l.unfinished()?.len(),
            Store::Pg(p) => p.left_here().await?,
        })
    }

    pub async fn unfinished(&mut self) -> Result<Vec<DeliveryRow>, StoreError> {
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
