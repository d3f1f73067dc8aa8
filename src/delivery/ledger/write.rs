//! Writing the ledger: reservations before a send, outcomes after it, skips and releases.
//! Each public method is one transaction (see [`Ledger::in_tx`]).

use super::error::{LedgerError, sqlerr};
use super::open::Synchronous;
use super::{Ledger, NewDelivery, Outcome, Reservation, Status, SweepRecord, date_str, ts};
use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;
use rusqlite::types::Type;
use std::path::Path;

const SQL_SENT: &str = "UPDATE deliveries SET status = 'sent', reply = ?2, attempts = attempts + 1, \
     sent_at = ?3, next_attempt_at = NULL, updated_at = ?3 \
     WHERE message_id = ?1 AND status IN ('pending', 'retrying') AND (?4 IS NULL OR office = ?4)";

const SQL_RETRYING: &str = "UPDATE deliveries SET status = 'retrying', reply = ?2, attempts = attempts + 1, \
     next_attempt_at = ?3, updated_at = ?4 \
     WHERE message_id = ?1 AND status IN ('pending', 'retrying') AND (?5 IS NULL OR office = ?5)";

const SQL_FAILED: &str = "UPDATE deliveries SET status = 'failed', reply = ?2, attempts = attempts + 1, \
     next_attempt_at = NULL, updated_at = ?3 \
     WHERE message_id = ?1 AND status IN ('pending', 'retrying') AND (?4 IS NULL OR office = ?4)";

impl Ledger {
    /// Records, in one transaction, that the email `message_id` is about to go out to
    /// `recipients` (To then Cc) for `items` (several for a digest). Call it BEFORE the SMTP
    /// transaction.
    ///
    /// Returns the Message-ID the email must carry. That is `message_id`, unless some of the
    /// items were already in flight (`pending` or `retrying`: the daemon crashed or is
    /// retrying): their rows are kept with their stored Message-ID, set back to `pending`
    /// with the new recipients, the new items join that message, and the stored Message-ID is
    /// returned so the email goes out again under it.
    ///
    /// Errors, and changes nothing, when an item is already final (`sent`, `failed`,
    /// `skipped`): that is a caller bug, and sending it again would be a duplicate. Errors
    /// too when the in-flight items belong to more than one earlier message.
    pub fn reserve(
        &mut self,
        items: &[NewDelivery],
        recipients: &[String],
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<String, LedgerError> {
        self.in_tx(
            crate::t!("bắt đầu giữ chỗ", "starting a reservation"),
            crate::t!("lưu chỗ đã giữ", "committing the reservation"),
            |tx, path| reserve_in(tx, path, items, recipients, message_id, now),
        )
    }

    /// [`reserve`](Ledger::reserve) for several emails in one transaction (one fsync): all of
    /// them are reserved, or, on an error, none. Returns each email's Message-ID, in order.
    /// Later reservations see the earlier ones, as if reserved one after the other.
    pub fn reserve_many(
        &mut self,
        reservations: &[Reservation],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, LedgerError> {
        if reservations.is_empty() {
            return Ok(Vec::new());
        }
        self.in_tx(
            crate::t!("bắt đầu giữ chỗ", "starting a reservation"),
            crate::t!("lưu các chỗ đã giữ", "committing the reservations"),
            |tx, path| {
                reservations
                    .iter()
                    .map(|r| reserve_in(tx, path, &r.items, &r.recipients, &r.message_id, now))
                    .collect()
            },
        )
    }

    /// Takes back reservations whose emails never went out (a stop request came after
    /// [`reserve_many`](Ledger::reserve_many) but before they were handed to the server):
    /// deletes their `pending` rows, in one transaction, so the nudges are simply due again.
    /// Only for Message-IDs whose rows were all created by that reservation: rows that were
    /// already in flight before it may have been sent and must stay. Returns how many rows
    /// were deleted.
    pub fn release(&mut self, message_ids: &[String]) -> Result<usize, LedgerError> {
        if message_ids.is_empty() {
            return Ok(0);
        }
        self.in_tx(
            crate::t!("bắt đầu bỏ giữ chỗ", "starting to release reservations"),
            crate::t!("lưu các chỗ đã bỏ giữ", "committing released reservations"),
            |tx, path| {
                let mut delete = tx
                    .prepare_cached(
                        "DELETE FROM deliveries WHERE message_id = ?1 AND status = 'pending' \
                         AND attempts = 0",
                    )
                    .map_err(sqlerr(
                        path,
                        crate::t!("chuẩn bị bỏ giữ chỗ", "preparing to release reservations"),
                    ))?;
                let mut deleted = 0;
                for id in message_ids {
                    deleted += delete.execute([id]).map_err(sqlerr(
                        path,
                        crate::t!("bỏ một chỗ đã giữ", "releasing a reservation"),
                    ))?;
                }
                Ok(deleted)
            },
        )
    }

    /// Records the outcomes of several emails in one transaction (one fsync), each as
    /// [`mark_sent`](Ledger::mark_sent), [`mark_retrying`](Ledger::mark_retrying) or
    /// [`mark_failed`](Ledger::mark_failed) would: all of them, or, on an error, none.
    /// Returns how many rows changed.
    pub fn finish_many(&mut self, results: &[(String, Outcome)]) -> Result<usize, LedgerError> {
        let scoped: Vec<(String, Option<String>, Outcome)> = results
            .iter()
            .map(|(id, o)| (id.clone(), None, o.clone()))
            .collect();
        self.finish_scoped(&scoped)
    }

    /// [`finish_many`](Ledger::finish_many) where an outcome may apply to one office's rows
    /// of a message only (`Some(office)`): the server refused some recipients of an email
    /// and took the others, so its rows end differently. `None` applies to every row.
    pub fn finish_scoped(
        &mut self,
        results: &[(String, Option<String>, Outcome)],
    ) -> Result<usize, LedgerError> {
        if results.is_empty() {
            return Ok(0);
        }
        // Outcomes are committed without an fsync of their own (`synchronous = NORMAL`):
        // durable against a crash of the process at once, and against a power cut with the
        // next reservation's fsync. A power cut can only lose outcomes, whose rows then stay
        // `pending` and are sent again under their Message-ID.
        self.set_synchronous(Synchronous::Normal)?;
        let recorded = self.finish_scoped_in_tx(results);
        let restored = self.set_synchronous(Synchronous::Full);
        let changed = recorded?;
        restored?;
        Ok(changed)
    }

    fn finish_scoped_in_tx(
        &mut self,
        results: &[(String, Option<String>, Outcome)],
    ) -> Result<usize, LedgerError> {
        self.in_tx(
            crate::t!("bắt đầu ghi các kết quả", "starting to record outcomes"),
            crate::t!("lưu các kết quả", "committing outcomes"),
            |tx, path| {
                let mut changed = 0;
                for (message_id, office, outcome) in results {
                    changed += match outcome {
                        Outcome::Sent { reply, at } => finish_in(
                            tx,
                            path,
                            message_id,
                            crate::t!("ghi một thư đã gửi", "recording a sent message"),
                            SQL_SENT,
                            &[message_id, reply, &ts(*at), office],
                        )?,
                        Outcome::Retrying {
                            error,
                            next_attempt_at,
                            at,
                        } => finish_in(
                            tx,
                            path,
                            message_id,
                            crate::t!("ghi một lần thử lại", "recording a retry"),
                            SQL_RETRYING,
                            &[message_id, error, &ts(*next_attempt_at), &ts(*at), office],
                        )?,
                        Outcome::Failed { error, at } => finish_in(
                            tx,
                            path,
                            message_id,
                            crate::t!("ghi một lần thất bại", "recording a failure"),
                            SQL_FAILED,
                            &[message_id, error, &ts(*at), office],
                        )?,
                    };
                }
                Ok(changed)
            },
        )
    }

    /// The server accepted `message_id`: every in-flight row of it becomes `sent`. Returns how
    /// many rows changed.
    pub fn mark_sent(
        &mut self,
        message_id: &str,
        reply: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        self.finish_many(&[(
            message_id.to_string(),
            Outcome::Sent {
                reply: reply.to_string(),
                at: now,
            },
        )])
    }

    /// A temporary failure: every in-flight row of `message_id` becomes `retrying`, due again
    /// at `next_attempt_at`. Counts the attempt.
    pub fn mark_retrying(
        &mut self,
        message_id: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        self.finish_many(&[(
            message_id.to_string(),
            Outcome::Retrying {
                error: error.to_string(),
                next_attempt_at,
                at: now,
            },
        )])
    }

    /// Given up: every in-flight row of `message_id` becomes `failed`. Counts the attempt.
    pub fn mark_failed(
        &mut self,
        message_id: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        self.finish_many(&[(
            message_id.to_string(),
            Outcome::Failed {
                error: error.to_string(),
                at: now,
            },
        )])
    }

    /// Records that a sweep as of `as_of` starts at `started`; returns its id for
    /// [`finish_sweep`](Ledger::finish_sweep).
    pub fn begin_sweep(
        &mut self,
        as_of: DateTime<Utc>,
        started: DateTime<Utc>,
    ) -> Result<i64, LedgerError> {
        self.in_tx(
            crate::t!("bắt đầu ghi một lần quét", "starting to record a sweep"),
            crate::t!("ghi một lần quét", "recording a sweep"),
            |tx, path| {
                tx.execute(
                    "INSERT INTO sweeps (as_of, started) VALUES (?1, ?2)",
                    (ts(as_of), ts(started)),
                )
                .map_err(sqlerr(
                    path,
                    crate::t!("ghi một lần quét", "recording a sweep"),
                ))?;
                Ok(tx.last_insert_rowid())
            },
        )
    }

    /// Records what sweep `id` did and when it finished.
    pub fn finish_sweep(
        &mut self,
        id: i64,
        finished: DateTime<Utc>,
        what: &SweepRecord,
    ) -> Result<(), LedgerError> {
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        self.in_tx(
            crate::t!(
                "bắt đầu ghi kết thúc một lần quét",
                "starting to record a sweep's end"
            ),
            crate::t!("ghi kết thúc một lần quét", "recording a sweep's end"),
            |tx, path| {
                tx.execute(
                    "UPDATE sweeps SET finished = ?2, sendable = ?3, complete = ?4, sent = ?5, \
                     skipped = ?6, settled = ?7 WHERE id = ?1",
                    (
                        id,
                        ts(finished),
                        i64::from(what.sendable),
                        i64::from(what.complete),
                        n(what.sent),
                        n(what.skipped),
                        n(what.settled),
                    ),
                )
                .map_err(sqlerr(
                    path,
                    crate::t!("ghi kết thúc một lần quét", "recording a sweep's end"),
                ))?;
                Ok(())
            },
        )
    }

    /// Records `items` as `skipped` for `reason` (a missed nudge superseded by a later one
    /// after downtime). A key the ledger already holds, in any status, is left as it is (an
    /// in-flight one is still re-sent). Returns how many rows were inserted.
    pub fn skip(
        &mut self,
        items: &[NewDelivery],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        self.in_tx(
            crate::t!(
                "bắt đầu ghi các lần nhắc bỏ qua",
                "starting to record skipped nudges"
            ),
            crate::t!("lưu các lần nhắc bỏ qua", "committing skipped nudges"),
            |tx, path| {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO deliveries (task, occurrence, office, kind, role, \
                         due_at, late, recipients, message_id, status, reply, attempts, \
                         created_at, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '', '', 'skipped', ?8, 0, ?9, ?9)",
                    )
                    .map_err(sqlerr(
                        path,
                        crate::t!("ghi các lần nhắc bỏ qua", "recording skipped nudges"),
                    ))?;
                let mut inserted = 0;
                for item in items {
                    let k = &item.key;
                    inserted += insert
                        .execute((
                            &k.task,
                            date_str(k.occurrence),
                            &k.office,
                            &k.kind,
                            &item.role,
                            ts(item.due_at),
                            i64::from(item.late),
                            reason,
                            ts(now),
                        ))
                        .map_err(sqlerr(
                            path,
                            crate::t!("ghi các lần nhắc bỏ qua", "recording skipped nudges"),
                        ))?;
                }
                Ok(inserted)
            },
        )
    }
}

/// The body of [`Ledger::reserve`], inside the caller's transaction.
fn reserve_in(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    items: &[NewDelivery],
    recipients: &[String],
    message_id: &str,
    now: DateTime<Utc>,
) -> Result<String, LedgerError> {
    if message_id.trim().is_empty() {
        return Err(LedgerError::InvalidInput {
            path: path.to_path_buf(),
            what: crate::t!(
                "giữ chỗ cần một Message-ID không rỗng",
                "reserve needs a non-empty Message-ID"
            )
            .into(),
        });
    }
    if items.is_empty() {
        return Ok(message_id.to_string());
    }
    let recipients = recipients.join(",");
    if insert_all_new(tx, path, items, &recipients, message_id, now)? {
        return Ok(message_id.to_string());
    }
    let Existing {
        mut in_flight,
        fresh,
        existing_ids,
    } = existing(tx, path, items)?;
    let effective = match in_flight.len() {
        0 => message_id.to_string(),
        1 => in_flight.remove(0),
        _ => {
            in_flight.sort();
            return Err(LedgerError::SplitInFlight {
                path: path.to_path_buf(),
                message_ids: in_flight,
            });
        }
    };
    let on_err = |action: &str| sqlerr(path, action);
    {
        let mut insert = tx
            .prepare_cached(&format!("{INSERT_PENDING})"))
            .map_err(on_err(crate::t!(
                "chuẩn bị giữ chỗ",
                "preparing the reservation"
            )))?;
        for item in fresh {
            let k = &item.key;
            insert
                .execute((
                    &k.task,
                    date_str(k.occurrence),
                    &k.office,
                    &k.kind,
                    &item.role,
                    ts(item.due_at),
                    i64::from(item.late),
                    &recipients,
                    &effective,
                    ts(now),
                ))
                .map_err(on_err(crate::t!(
                    "giữ chỗ cho một lần gửi",
                    "reserving a delivery"
                )))?;
        }
        let mut update = tx
            .prepare_cached(
                "UPDATE deliveries SET status = 'pending', recipients = ?2, \
                     next_attempt_at = NULL, updated_at = ?3 WHERE id = ?1",
            )
            .map_err(on_err(crate::t!(
                "chuẩn bị giữ chỗ lại",
                "preparing the re-reservation"
            )))?;
        for id in existing_ids {
            update
                .execute((id, &recipients, ts(now)))
                .map_err(on_err(crate::t!(
                    "giữ chỗ lại cho một lần gửi",
                    "re-reserving a delivery"
                )))?;
        }
    }
    Ok(effective)
}

/// A new `pending` row; the statement ends with `)`, or with `) ON CONFLICT …`.
const INSERT_PENDING: &str = "INSERT INTO deliveries (task, occurrence, office, kind, role, \
     due_at, late, recipients, message_id, status, attempts, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', 0, ?10, ?10";

/// The usual case of [`reserve_in`], in one statement per item instead of a look-up and an
/// insert: every item is new to the ledger, each gets its `pending` row under `message_id`
/// and this returns true. When one is not new (in flight, final, or listed twice), the rows
/// this inserted are deleted again and this returns false, for the look-up to decide; the
/// ledger is then as before the call (row ids included: none were handed out after them).
fn insert_all_new(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    items: &[NewDelivery],
    recipients: &str,
    message_id: &str,
    now: DateTime<Utc>,
) -> Result<bool, LedgerError> {
    let on_err = |action: &str| sqlerr(path, action);
    let mut insert = tx
        .prepare_cached(&format!(
            "{INSERT_PENDING}) ON CONFLICT (task, occurrence, office, kind) DO NOTHING"
        ))
        .map_err(on_err(crate::t!(
            "chuẩn bị giữ chỗ",
            "preparing the reservation"
        )))?;
    let now = ts(now);
    let mut inserted: Vec<i64> = Vec::with_capacity(items.len());
    for item in items {
        let k = &item.key;
        let changed = insert
            .execute((
                &k.task,
                date_str(k.occurrence),
                &k.office,
                &k.kind,
                &item.role,
                ts(item.due_at),
                i64::from(item.late),
                recipients,
                message_id,
                now,
            ))
            .map_err(on_err(crate::t!(
                "giữ chỗ cho một lần gửi",
                "reserving a delivery"
            )))?;
        if changed == 0 {
            let mut delete = tx
                .prepare_cached("DELETE FROM deliveries WHERE id = ?1")
                .map_err(on_err(crate::t!(
                    "chuẩn bị giữ chỗ",
                    "preparing the reservation"
                )))?;
            for id in inserted {
                delete.execute([id]).map_err(on_err(crate::t!(
                    "giữ chỗ cho một lần gửi",
                    "reserving a delivery"
                )))?;
            }
            return Ok(false);
        }
        inserted.push(tx.last_insert_rowid());
    }
    Ok(true)
}

/// What the ledger already holds of the items to reserve.
struct Existing<'a> {
    /// The Message-IDs under which some of them are in flight, each once, in order.
    in_flight: Vec<String>,
    /// The items it has never seen.
    fresh: Vec<&'a NewDelivery>,
    /// The rows of the items in flight.
    existing_ids: Vec<i64>,
}

/// Looks the items up; errors when one is already final (sent, failed or skipped).
fn existing<'a>(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    items: &'a [NewDelivery],
) -> Result<Existing<'a>, LedgerError> {
    let on_err = |action: &str| sqlerr(path, action);
    let mut in_flight: Vec<String> = Vec::new();
    let mut fresh: Vec<&NewDelivery> = Vec::new();
    let mut existing_ids: Vec<i64> = Vec::new();
    {
        let mut lookup = tx
            .prepare_cached(
                "SELECT id, status, message_id FROM deliveries \
                     WHERE task = ?1 AND occurrence = ?2 AND office = ?3 AND kind = ?4",
            )
            .map_err(on_err(crate::t!(
                "chuẩn bị tra chỗ đã giữ",
                "preparing the reservation lookup"
            )))?;
        for item in items {
            let k = &item.key;
            let found = lookup
                .query_row((&k.task, date_str(k.occurrence), &k.office, &k.kind), |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .optional()
                .map_err(on_err(crate::t!(
                    "tìm một chỗ đã giữ",
                    "looking up a reservation"
                )))?;
            match found {
                None => fresh.push(item),
                Some((id, status, mid)) => {
                    let status = status.parse::<Status>().map_err(|e| {
                        on_err(crate::t!("đọc một chỗ đã giữ", "reading a reservation"))(
                            rusqlite::Error::FromSqlConversionFailure(1, Type::Text, Box::new(e)),
                        )
                    })?;
                    if status.is_final() {
                        return Err(LedgerError::AlreadyFinal {
                            path: path.to_path_buf(),
                            key: Box::new(k.clone()),
                            status,
                            message_id: mid,
                        });
                    }
                    if !in_flight.contains(&mid) {
                        in_flight.push(mid);
                    }
                    existing_ids.push(id);
                }
            }
        }
    }
    Ok(Existing {
        in_flight,
        fresh,
        existing_ids,
    })
}

/// Updates every in-flight row of `message_id` inside the caller's transaction; errors when
/// there is none.
fn finish_in(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    message_id: &str,
    action: &str,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<usize, LedgerError> {
    let on_err = sqlerr(path, action);
    let changed = tx
        .prepare_cached(sql)
        .and_then(|mut st| st.execute(params))
        .map_err(on_err)?;
    if changed == 0 {
        let status: Option<String> = tx
            .query_row(
                "SELECT status FROM deliveries WHERE message_id = ?1 ORDER BY id LIMIT 1",
                [message_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(sqlerr(
                path,
                crate::t!("tìm một thư", "looking up a message"),
            ))?;
        return Err(match status {
            None => LedgerError::UnknownMessage {
                path: path.to_path_buf(),
                message_id: message_id.to_string(),
            },
            Some(s) => LedgerError::NotInFlight {
                path: path.to_path_buf(),
                message_id: message_id.to_string(),
                status: s.parse().unwrap_or(Status::Failed),
            },
        });
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    use crate::delivery::ledger::fixtures::item;

    #[test]
    fn a_reservation_that_meets_a_row_in_flight_leaves_no_trace_of_its_first_try() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(&dir.path().join("ledger.db")).unwrap();
        let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let old = item("T1", "o", "k", 2);
        ledger
            .reserve(std::slice::from_ref(&old), &["a@x".into()], "<old@x>", now)
            .unwrap();
        // The new item is tried first and inserted, then the one in flight is met: the email
        // goes out under the stored Message-ID, with both rows under it.
        let new = item("T2", "o", "k", 2);
        let id = ledger
            .reserve(&[new, old], &["b@x".into()], "<new@x>", now)
            .unwrap();
        assert_eq!(id, "<old@x>");
        let rows: Vec<(i64, String, String, String)> = ledger
            .conn
            .prepare("SELECT id, task, message_id, recipients FROM deliveries ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                (1, "T1".into(), "<old@x>".into(), "b@x".into()),
                (2, "T2".into(), "<old@x>".into(), "b@x".into()),
            ]
        );
    }

    #[test]
    fn disk_full_is_an_actionable_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(&dir.path().join("ledger.db")).unwrap();
        let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        ledger
            .reserve(&[item("T", "o", "k", 2)], &["a@x".into()], "<first@x>", now)
            .unwrap();
        // Let the file grow by very little: SQLite then fails exactly as on a full disk.
        let pages: i64 = ledger
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        ledger
            .conn
            .pragma_update(None, "max_page_count", pages + 1)
            .unwrap();
        let long = "x".repeat(2000);
        let mut failure = None;
        for i in 0..200 {
            let it = item(&long, &format!("office-{i}"), &long, 3);
            if let Err(e) = ledger.reserve(
                &[it],
                std::slice::from_ref(&long),
                &format!("<m{i}@x>"),
                now,
            ) {
                failure = Some(e);
                break;
            }
        }
        let err = failure.expect("the ledger should have filled up");
        let msg = err.to_string();
        assert!(msg.contains("disk is full"), "{msg}");
        assert!(msg.contains(&*dir.path().to_string_lossy()), "{msg}");
        // What was committed before is intact and the ledger is still usable for reading.
        assert_eq!(ledger.integrity_check().unwrap(), "ok");
        assert!(!ledger.unfinished().unwrap().is_empty());
    }
}
