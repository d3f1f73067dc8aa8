//! Writing the PostgreSQL ledger: reservations that lose gracefully to another node,
//! outcomes, skipped nudges and sweeps.

use super::error::{PgError, query_err};
use super::{PgLedger, secs};
use crate::delivery::ledger::{
    NewCompletion, NewDelivery, Outcome, Reservation, Status, SweepRecord,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;

/// A reservation transaction that lost a deadlock to another node is run again, this often.
const RETRIES: usize = 5;

/// How recent another node's sweep must be for a differing config to be reported.
const RECENT_HOURS: i64 = 24;

const SQL_SENT: &str = "UPDATE deliveries SET status = 'sent', reply = $2, attempts = attempts + 1, \
     sent_at = $3, next_attempt_at = NULL, updated_at = $3, lease_until = NULL \
     WHERE message_id = $1 AND status IN ('pending', 'retrying') AND ($4::text IS NULL OR office = $4)";

const SQL_RETRYING: &str = "UPDATE deliveries SET status = 'retrying', reply = $2, \
     attempts = attempts + 1, next_attempt_at = $3, updated_at = $5, lease_until = NULL \
     WHERE message_id = $1 AND status IN ('pending', 'retrying') AND ($4::text IS NULL OR office = $4)";

const SQL_FAILED: &str = "UPDATE deliveries SET status = 'failed', reply = $2, attempts = attempts + 1, \
     next_attempt_at = NULL, updated_at = $3, lease_until = NULL \
     WHERE message_id = $1 AND status IN ('pending', 'retrying') AND ($4::text IS NULL OR office = $4)";

/// A key's row, locked for the reservation, and whether its owner's lease leaves it free.
macro_rules! lookup {
    () => {
        "SELECT id, status, message_id, \
           (owner IS NULL OR owner = $5 OR lease_until IS NULL OR lease_until <= now()), \
           next_attempt_at \
         FROM deliveries WHERE task = $1 AND occurrence = $2 AND office = $3 AND kind = $4 \
         FOR UPDATE"
    };
}
const LOOKUP_WAITING: &str = lookup!();
const LOOKUP_SKIPPING: &str = concat!(lookup!(), " SKIP LOCKED");

/// How one email's reservation went.
#[derive(Debug, PartialEq, Eq)]
enum Claim {
    /// Its rows are this node's, under this Message-ID.
    Won(String),
    /// Another node holds some of its nudges.
    Lost,
    /// A row it needs is locked by another transaction: look again, waiting for it.
    Contended,
}

impl PgLedger {
    /// Reserves each email's rows as `pending`, owned by this node under a lease, in one
    /// transaction. Per email: `Some(Message-ID)` (its stored one if some of its rows were
    /// already in flight), or `None` when another node holds any of its nudges (a live
    /// lease, a final status, a reservation in progress): then none of its rows is touched
    /// and this node must not send it.
    pub async fn reserve_many(
        &self,
        reservations: &[Reservation],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<String>>, PgError> {
        if reservations.is_empty() {
            return Ok(Vec::new());
        }
        let mut tries = 0;
        loop {
            match self.reserve_once(reservations, now).await {
                Err(e) if e.is_retryable() && tries < RETRIES => tries += 1,
                other => return other,
            }
        }
    }

    async fn reserve_once(
        &self,
        reservations: &[Reservation],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<String>>, PgError> {
        let action = crate::t!("giữ chỗ", "reserving");
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(query_err(&self.url, action))?;
        let mut out = Vec::with_capacity(reservations.len());
        for r in reservations {
            out.push(self.reserve_one(&tx, r, now).await?);
        }
        tx.commit().await.map_err(query_err(&self.url, action))?;
        Ok(out)
    }

    async fn reserve_one(
        &self,
        tx: &Transaction<'_>,
        r: &Reservation,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, PgError> {
        let action = crate::t!("giữ chỗ cho một lần gửi", "reserving a delivery");
        let err = || query_err(&self.url, action);
        if r.message_id.trim().is_empty() {
            return Err(PgError::Query {
                url: self.url.clone(),
                action: action.into(),
                detail: "reserve needs a non-empty Message-ID".into(),
                code: None,
            });
        }
        if r.items.is_empty() {
            return Ok(Some(r.message_id.clone()));
        }
        tx.batch_execute("SAVEPOINT reservation")
            .await
            .map_err(err())?;
        let mut claimed = self.claim(tx, r, now, false).await?;
        if claimed == Claim::Contended {
            // A row the look-up skipped is there: locked by another node's transaction, which
            // may be only looking (and leave it to its owner, maybe this node). Wait for that
            // transaction and judge the row as it is then. A deadlock with it is broken by
            // PostgreSQL and the whole reservation runs again (`reserve_many`).
            tx.batch_execute("ROLLBACK TO SAVEPOINT reservation")
                .await
                .map_err(err())?;
            claimed = self.claim(tx, r, now, true).await?;
        }
        match claimed {
            Claim::Won(_) => tx.batch_execute("RELEASE SAVEPOINT reservation"),
            Claim::Lost | Claim::Contended => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT reservation; RELEASE SAVEPOINT reservation")
            }
        }
        .await
        .map_err(err())?;
        Ok(match claimed {
            Claim::Won(id) => Some(id),
            Claim::Lost | Claim::Contended => None,
        })
    }

    /// The body of one reservation, inside its savepoint. `wait`: look rows up waiting for
    /// other transactions' locks, instead of skipping the rows they hold.
    async fn claim(
        &self,
        tx: &Transaction<'_>,
        r: &Reservation,
        now: DateTime<Utc>,
        wait: bool,
    ) -> Result<Claim, PgError> {
        let action = crate::t!("giữ chỗ cho một lần gửi", "reserving a delivery");
        let err = || query_err(&self.url, action);
        let lookup = tx
            .prepare_cached(if wait {
                LOOKUP_WAITING
            } else {
                LOOKUP_SKIPPING
            })
            .await
            .map_err(err())?;
        let mut fresh: Vec<&NewDelivery> = Vec::new();
        let mut claim_ids: Vec<i64> = Vec::new();
        let mut in_flight: Vec<String> = Vec::new();
        for item in &r.items {
            let k = &item.key;
            let row = tx
                .query_opt(
                    &lookup,
                    &[&k.task, &k.occurrence, &k.office, &k.kind, &self.node],
                )
                .await
                .map_err(err())?;
            // Absent, or locked by another node's transaction: the insert below decides.
            let Some(row) = row else {
                fresh.push(item);
                continue;
            };
            let status: String = row.get(1);
            let free: bool = row.get(3);
            let next: Option<DateTime<Utc>> = row.get(4);
            let claimable = match status.parse::<Status>() {
                Ok(Status::Pending) => free,
                Ok(Status::Retrying) => next.is_none_or(|t| t <= now),
                _ => false,
            };
            if !claimable {
                return Ok(Claim::Lost);
            }
            let mid: String = row.get(2);
            if !in_flight.contains(&mid) {
                in_flight.push(mid);
            }
            claim_ids.push(row.get(0));
        }
        if in_flight.len() > 1 {
            tracing::warn!(message_ids = ?in_flight, "nudges of one email are in flight under several Message-IDs; left for the node that holds them");
            return Ok(Claim::Lost);
        }
        let effective = in_flight.pop().unwrap_or_else(|| r.message_id.clone());
        let recipients = r.recipients.join(",");
        let now = secs(now);
        if !fresh.is_empty() {
            let insert = tx
                .prepare_cached(
                    "INSERT INTO deliveries (task, occurrence, office, kind, role, due_at, late, \
                     recipients, message_id, status, attempts, created_at, updated_at, owner, \
                     lease_until) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10, $10, $11, \
                     now() + $12::float8 * interval '1 millisecond') \
                     ON CONFLICT (task, occurrence, office, kind) DO NOTHING RETURNING id",
                )
                .await
                .map_err(err())?;
            for item in fresh {
                let k = &item.key;
                let inserted = tx
                    .query_opt(
                        &insert,
                        &[
                            &k.task,
                            &k.occurrence,
                            &k.office,
                            &k.kind,
                            &item.role,
                            &secs(item.due_at),
                            &item.late,
                            &recipients,
                            &effective,
                            &now,
                            &self.node,
                            &(self.lease_ms() as f64),
                        ],
                    )
                    .await
                    .map_err(err())?;
                if inserted.is_none() {
                    // There after all: skipped by the look-up (locked), or inserted by
                    // another node since. Waiting, the look-up sees which.
                    return Ok(if wait { Claim::Lost } else { Claim::Contended });
                }
            }
        }
        if !claim_ids.is_empty() {
            let claim = tx
                .prepare_cached(
                    "UPDATE deliveries SET status = 'pending', recipients = $2, next_attempt_at = NULL, \
                     updated_at = $3, owner = $4, lease_until = now() + $5::float8 * interval '1 millisecond' \
                     WHERE id = ANY($1)",
                )
                .await
                .map_err(err())?;
            tx.execute(
                &claim,
                &[
                    &claim_ids,
                    &recipients,
                    &now,
                    &self.node,
                    &(self.lease_ms() as f64),
                ],
            )
            .await
            .map_err(err())?;
        }
        Ok(Claim::Won(effective))
    }

    /// Takes back this node's reservations of emails that never went out.
    pub async fn release(&self, message_ids: &[String]) -> Result<usize, PgError> {
        if message_ids.is_empty() {
            return Ok(0);
        }
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM deliveries WHERE message_id = ANY($1) AND status = 'pending' \
                 AND attempts = 0 AND owner = $2",
                &[&message_ids, &self.node],
            )
            .await
            .map_err(query_err(
                &self.url,
                crate::t!("bỏ giữ chỗ", "releasing reservations"),
            ))?;
        Ok(n as usize)
    }

    /// Records outcomes, each for the in-flight rows of its message (only `office`'s, when
    /// given), in one transaction. A message no longer in flight (another node re-sent it
    /// after this node's lease expired, and recorded it) is logged, not an error.
    pub async fn finish_scoped(
        &self,
        results: &[(String, Option<String>, Outcome)],
    ) -> Result<usize, PgError> {
        if results.is_empty() {
            return Ok(0);
        }
        let action = crate::t!("ghi các kết quả", "recording outcomes");
        let err = || query_err(&self.url, action);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err())?;
        let mut changed = 0;
        // Prepared once per connection (the pool's statement cache), not at every execute.
        let sent = tx.prepare_cached(SQL_SENT).await.map_err(err())?;
        let retrying = tx.prepare_cached(SQL_RETRYING).await.map_err(err())?;
        let failed = tx.prepare_cached(SQL_FAILED).await.map_err(err())?;
        for (mid, office, outcome) in results {
            let n = match outcome {
                Outcome::Sent { reply, at } => {
                    tx.execute(&sent, &[mid, reply, &secs(*at), office]).await
                }
                Outcome::Retrying {
                    error,
                    next_attempt_at,
                    at,
                } => {
                    tx.execute(
                        &retrying,
                        &[mid, error, &secs(*next_attempt_at), office, &secs(*at)],
                    )
                    .await
                }
                Outcome::Failed { error, at } => {
                    tx.execute(&failed, &[mid, error, &secs(*at), office]).await
                }
            }
            .map_err(err())?;
            if n == 0 {
                tracing::warn!(
                    email_message_id = %mid,
                    "the outcome of an email found it no longer in flight: another node sent it again after this node's lease expired"
                );
            }
            changed += n as usize;
        }
        tx.commit().await.map_err(err())?;
        Ok(changed)
    }

    /// Appends one completion (or withdrawal) row, recorded at `now`; returns its id. As on
    /// SQLite, never an update or a delete: the newest row per key is what stands.
    pub async fn record_completion(
        &self,
        c: &NewCompletion,
        now: DateTime<Utc>,
    ) -> Result<i64, PgError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO completions (task, occ_from, occ_until, office, done_on, \
                 recorded_at, source, note, client, undone) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                &[
                    &c.task,
                    &c.occurrence.map(|o| o.0),
                    &c.occurrence.map(|o| o.1),
                    &c.office,
                    &c.done_on,
                    &secs(now),
                    &c.source.as_str(),
                    &c.note,
                    &c.client,
                    &c.undone,
                ],
            )
            .await
            .map_err(query_err(
                &self.url,
                crate::t!("ghi một lần hoàn thành", "recording a completion"),
            ))?;
        Ok(row.get(0))
    }

    /// Records `items` as skipped for `reason`; keys already held are left as they are.
    pub async fn skip(
        &self,
        items: &[NewDelivery],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, PgError> {
        if items.is_empty() {
            return Ok(0);
        }
        let action = crate::t!("ghi các lần nhắc bỏ qua", "recording skipped nudges");
        let err = || query_err(&self.url, action);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(err())?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO deliveries (task, occurrence, office, kind, role, due_at, late, \
                 recipients, message_id, status, reply, attempts, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, '', '', 'skipped', $8, 0, $9, $9) \
                 ON CONFLICT (task, occurrence, office, kind) DO NOTHING",
            )
            .await
            .map_err(err())?;
        let now = secs(now);
        let mut inserted = 0;
        for item in items {
            let k = &item.key;
            inserted += tx
                .execute(
                    &insert,
                    &[
                        &k.task,
                        &k.occurrence,
                        &k.office,
                        &k.kind,
                        &item.role,
                        &secs(item.due_at),
                        &item.late,
                        &reason,
                        &now,
                    ],
                )
                .await
                .map_err(err())? as usize;
        }
        tx.commit().await.map_err(err())?;
        Ok(inserted)
    }

    /// Records that this node starts a sweep as of `as_of` under the config `config_hash`;
    /// first warns, loudly, about every other node that swept recently under another config.
    pub async fn begin_sweep(
        &self,
        as_of: DateTime<Utc>,
        started: DateTime<Utc>,
        config_hash: &str,
    ) -> Result<i64, PgError> {
        let action = crate::t!("ghi một lần quét", "recording a sweep");
        let client = self.client().await?;
        let others = client
            .query(
                "SELECT node, config_hash, max(recorded_at) FROM sweeps \
                 WHERE node <> $1 AND config_hash <> $2 AND config_hash <> '' \
                 AND recorded_at > now() - $3::float8 * interval '1 hour' \
                 GROUP BY node, config_hash ORDER BY node",
                &[&self.node, &config_hash, &(RECENT_HOURS as f64)],
            )
            .await
            .map_err(query_err(&self.url, action))?;
        for row in others {
            let (node, hash, at): (String, String, DateTime<Utc>) =
                (row.get(0), row.get(1), row.get(2));
            tracing::warn!(
                node = %node, their_config = %hash, our_config = %config_hash, last_sweep = %at,
                "{}",
                crate::tr!(
                    "nút {} cũng gửi từ sổ gửi này nhưng với một cấu hình KHÁC (mã {} so với {} của nút này, lần quét gần nhất {}): mọi nút phải dùng cùng một tệp YAML, nếu không chúng sẽ gửi những lời nhắc khác nhau. Hãy đồng bộ tệp cấu hình",
                    "node {} also sends from this ledger but with a DIFFERENT config (hash {} vs this node's {}, last sweep {}): every node must run the same YAML, or they send different reminders. Synchronise the config files",
                    node, hash, config_hash, at.format("%Y-%m-%d %H:%M:%S UTC")
                )
            );
        }
        let row = client
            .query_one(
                "INSERT INTO sweeps (node, config_hash, as_of, started) VALUES ($1, $2, $3, $4) \
                 RETURNING id",
                &[&self.node, &config_hash, &secs(as_of), &secs(started)],
            )
            .await
            .map_err(query_err(&self.url, action))?;
        Ok(row.get(0))
    }

    /// Records what sweep `id` did and when it finished.
    pub async fn finish_sweep(
        &self,
        id: i64,
        finished: DateTime<Utc>,
        what: &SweepRecord,
    ) -> Result<(), PgError> {
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        let client = self.client().await?;
        client
            .execute(
                "UPDATE sweeps SET finished = $2, sendable = $3, complete = $4, sent = $5, \
                 skipped = $6, settled = $7, recorded_at = now() WHERE id = $1",
                &[
                    &id,
                    &secs(finished),
                    &what.sendable,
                    &what.complete,
                    &n(what.sent),
                    &n(what.skipped),
                    &n(what.settled),
                ],
            )
            .await
            .map_err(query_err(
                &self.url,
                crate::t!("ghi kết thúc một lần quét", "recording a sweep's end"),
            ))?;
        Ok(())
    }
}
