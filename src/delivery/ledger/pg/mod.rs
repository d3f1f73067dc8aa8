//! The PostgreSQL ledger: one database that any number of nodes with the same YAML share.
//!
//! # The concurrency contract
//!
//! Every node sweeps on its own schedule; what keeps them from sending an email twice is the
//! database, never a node's memory or clock:
//!
//! - **One owner per email.** A node reserves an email's rows before sending it, in one
//!   transaction: a new row is an `INSERT … ON CONFLICT DO NOTHING` on the unique key
//!   (task, occurrence, office, kind), so of two nodes reserving the same nudge one inserts
//!   and the other loses gracefully and does not send that email. Each reserved row records
//!   its `owner` (the node's id) and a `lease_until` taken from the **database's** clock
//!   (`now() + lease`).
//! - **Leases expire.** A node that dies mid-sweep leaves its rows `pending`; once their lease
//!   has passed, another node's sweep claims them and sends the email again **under the same
//!   Message-ID**, so the one duplicate a crash can cause is recognisable. Rows another node
//!   holds (a live lease, or locked by its transaction) are skipped (`FOR UPDATE SKIP
//!   LOCKED`), as are retries another node has already claimed.
//! - **Same config.** Each sweep is recorded with its node and a hash of the config; a node
//!   that sees another node's recent sweep under a different hash warns loudly, since two
//!   different plans on one ledger would each send what the other considers wrong.
//!
//! Nothing is sent unrecorded: if the database is unreachable, no reservation is made and no
//! email goes out; the sweep fails, the daemon logs it and tries again at its next sweep.

mod error;
mod migrate;
mod read;
mod schema;
mod tls;
mod write;

pub use error::PgError;
pub use migrate::Copied;
pub use read::{NodeSweep, PgStatus};
pub use schema::SCHEMA_VERSION;

use crate::plan::config::PgLedger as PgConfig;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::path::Path;
use std::time::Duration;

/// How long connecting (and waiting for a pooled connection) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections kept: the sweep uses one at a time, the web pages and `status` one more.
const POOL_SIZE: usize = 4;

/// A PostgreSQL ledger, for one node.
pub struct PgLedger {
    pool: Pool,
    /// The URL without a password, for messages.
    url: String,
    /// This node's id, recorded as the owner of its reservations and with its sweeps.
    node: String,
    lease: Duration,
}

impl std::fmt::Debug for PgLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLedger")
            .field("url", &self.url)
            .field("node", &self.node)
            .finish()
    }
}

/// This node's id: `$NHACVIEC_NODE` if set, else the host name.
pub fn node_id() -> String {
    if let Some(n) = std::env::var("NHACVIEC_NODE")
        .ok()
        .filter(|n| !n.trim().is_empty())
    {
        return n.trim().to_string();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The password: `password_file:`, else the systemd credential `ledger-password` when
/// `$CREDENTIALS_DIRECTORY` has one, else none (trust, peer or certificate authentication).
fn password(cfg: &PgConfig, credentials: Option<&Path>) -> Result<Option<String>, PgError> {
    let path = match (&cfg.password_file, credentials) {
        (Some(p), _) => p.clone(),
        (None, Some(dir)) if dir.join("ledger-password").is_file() => dir.join("ledger-password"),
        _ => return Ok(None),
    };
    let s = std::fs::read_to_string(&path).map_err(|e| PgError::Password {
        what: path.display().to_string(),
        detail: e.to_string(),
    })?;
    Ok(Some(s.trim_end_matches(['\r', '\n']).to_string()))
}

impl PgLedger {
    /// Connects (failing at once, with the reason, if the database cannot be reached) and
    /// migrates the schema.
    pub async fn connect(
        cfg: &PgConfig,
        credentials: Option<&Path>,
        node: String,
    ) -> Result<PgLedger, PgError> {
        let url = cfg.url.clone();
        let mut pg: tokio_postgres::Config = url.parse().map_err(|e| PgError::Connect {
            url: url.clone(),
            detail: error::describe(&e),
        })?;
        if let Some(p) = password(cfg, credentials)? {
            pg.password(p);
        }
        pg.connect_timeout(CONNECT_TIMEOUT)
            .application_name("nhacviec")
            // The server's NOTICEs ("relation … already exists, skipping" at every start)
            // would reach the journal as noise: only warnings and errors come back.
            .options("-c client_min_messages=warning")
            .ssl_mode(match cfg.sslmode {
                crate::plan::config::SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                crate::plan::config::SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                _ => tokio_postgres::config::SslMode::Require,
            });
        let mc = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match tls::connector(cfg)? {
            Some(tls) => Manager::from_config(pg, tls, mc),
            None => Manager::from_config(pg, tokio_postgres::NoTls, mc),
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| PgError::Connect {
                url: url.clone(),
                detail: e.to_string(),
            })?;
        let ledger = PgLedger {
            pool,
            url,
            node,
            lease: cfg.lease,
        };
        ledger.migrate().await?;
        Ok(ledger)
    }

    /// The URL, without a password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// A pooled connection; a broken one (the server restarted) is replaced.
    async fn client(&self) -> Result<deadpool_postgres::Client, PgError> {
        self.pool.get().await.map_err(|e| PgError::Connect {
            url: self.url.clone(),
            detail: match &e {
                deadpool_postgres::PoolError::Backend(b) => error::describe(b),
                other => other.to_string(),
            },
        })
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Whole seconds, as the SQLite ledger keeps them: both backends answer alike.
fn secs(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}
