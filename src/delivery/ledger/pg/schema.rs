//! The PostgreSQL schema and its migrations: `schema_version` holds how many have run; a
//! node migrates under an advisory lock, so two nodes starting together do not collide.

use super::PgLedger;
use super::error::{PgError, query_err};

/// Applied in order. Never edit an entry that has shipped: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the tables the SQLite ledger has, plus each reservation's owner and lease, and each
    // sweep's node and config hash.
    r#"
    CREATE TABLE deliveries (
        id              BIGSERIAL PRIMARY KEY,
        task            TEXT        NOT NULL,
        occurrence      DATE        NOT NULL,
        office          TEXT        NOT NULL,
        kind            TEXT        NOT NULL,
        role            TEXT        NOT NULL,
        due_at          TIMESTAMPTZ NOT NULL,
        late            BOOLEAN     NOT NULL,
        recipients      TEXT        NOT NULL,
        message_id      TEXT        NOT NULL,
        status          TEXT        NOT NULL
                        CHECK (status IN ('pending', 'sent', 'retrying', 'failed', 'skipped')),
        reply           TEXT,
        attempts        INTEGER     NOT NULL DEFAULT 0,
        created_at      TIMESTAMPTZ NOT NULL,
        updated_at      TIMESTAMPTZ NOT NULL,
        sent_at         TIMESTAMPTZ,
        next_attempt_at TIMESTAMPTZ,
        owner           TEXT,
        lease_until     TIMESTAMPTZ,
        UNIQUE (task, occurrence, office, kind)
    );
    CREATE INDEX deliveries_office_due ON deliveries (office, due_at);
    CREATE INDEX deliveries_due ON deliveries (due_at);
    CREATE INDEX deliveries_task_due ON deliveries (task, due_at);
    CREATE INDEX deliveries_message ON deliveries (message_id);
    CREATE INDEX deliveries_status_due ON deliveries (status, due_at);
    CREATE TABLE sweeps (
        id          BIGSERIAL PRIMARY KEY,
        node        TEXT        NOT NULL,
        config_hash TEXT        NOT NULL,
        as_of       TIMESTAMPTZ NOT NULL,
        started     TIMESTAMPTZ NOT NULL,
        finished    TIMESTAMPTZ,
        sendable    BOOLEAN     NOT NULL DEFAULT false,
        complete    BOOLEAN     NOT NULL DEFAULT false,
        sent        BIGINT      NOT NULL DEFAULT 0,
        skipped     BIGINT      NOT NULL DEFAULT 0,
        settled     BIGINT      NOT NULL DEFAULT 0,
        recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX sweeps_node ON sweeps (node, recorded_at);
    CREATE TABLE completions (
        id          BIGSERIAL PRIMARY KEY,
        task        TEXT        NOT NULL,
        occ_from    DATE,
        occ_until   DATE,
        office      TEXT,
        done_on     DATE        NOT NULL,
        recorded_at TIMESTAMPTZ NOT NULL,
        source      TEXT        NOT NULL CHECK (source IN ('cli', 'link', 'yaml')),
        note        TEXT,
        client      TEXT,
        undone      BOOLEAN     NOT NULL DEFAULT false,
        CHECK ((occ_from IS NULL) = (occ_until IS NULL))
    );
    CREATE INDEX completions_task ON completions (task, office, occ_from, id);
    CREATE TABLE identity (id TEXT NOT NULL);
    INSERT INTO identity (id) VALUES (md5(random()::text || clock_timestamp()::text));
    "#,
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Any constant: the advisory lock migrations run under.
const MIGRATION_LOCK: i64 = 0x6e68_6163_7669_6563;

impl PgLedger {
    pub(super) async fn migrate(&self) -> Result<(), PgError> {
        let mut client = self.client().await?;
        let step = crate::t!("nâng cấp lược đồ", "migrating the schema");
        let tx = client
            .transaction()
            .await
            .map_err(query_err(&self.url, step))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(query_err(&self.url, step))?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            .await
            .map_err(query_err(&self.url, step))?;
        let found: i64 = tx
            .query_opt("SELECT version FROM schema_version", &[])
            .await
            .map_err(query_err(&self.url, step))?
            .map_or(0, |r| r.get(0));
        if found > SCHEMA_VERSION {
            return Err(PgError::NewerSchema {
                url: self.url.clone(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
            tx.batch_execute(sql)
                .await
                .map_err(query_err(&self.url, step))?;
            tracing::info!(ledger = %self.url, version = i + 1, "ledger schema migrated");
        }
        if found < SCHEMA_VERSION {
            tx.execute("DELETE FROM schema_version", &[])
                .await
                .map_err(query_err(&self.url, step))?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[&SCHEMA_VERSION],
            )
            .await
            .map_err(query_err(&self.url, step))?;
        }
        tx.commit().await.map_err(query_err(&self.url, step))
    }
}
