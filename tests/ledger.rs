//! The ledger against real SQLite files in a temporary folder.

#[path = "support/skip.rs"]
mod skip;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use nhacviec::delivery::ledger::{
    DeliveryKey, Ledger, LedgerError, LogFilter, NewDelivery, Outcome, Reservation, Status,
};
use std::path::Path;

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, day, hour, 0, 0).unwrap()
}

fn key(task: &str, office: &str, kind: &str) -> DeliveryKey {
    DeliveryKey {
        task: task.into(),
        occurrence: NaiveDate::from_ymd_opt(2024, 1, 31).unwrap(),
        office: office.into(),
        kind: kind.into(),
    }
}

fn item(task: &str, office: &str, kind: &str, due: DateTime<Utc>) -> NewDelivery {
    NewDelivery {
        key: key(task, office, kind),
        role: "lead".into(),
        due_at: due,
        late: false,
    }
}

fn to(addrs: &[&str]) -> Vec<String> {
    addrs.iter().map(|a| a.to_string()).collect()
}

fn open(dir: &Path) -> Ledger {
    Ledger::open(&dir.join("ledger.db")).unwrap()
}

#[test]
fn creates_the_folder_and_reopens_without_migrating_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("var").join("lib").join("ledger.db");
    {
        let mut l = Ledger::open(&path).unwrap();
        l.reserve(
            &[item("II.3", "stp", "truoc-3wd", at(22, 1))],
            &to(&["a@x"]),
            "<m1@x>",
            at(22, 1),
        )
        .unwrap();
    }
    for _ in 0..3 {
        let l = Ledger::open(&path).unwrap();
        assert_eq!(l.all_states().unwrap().len(), 1);
        assert_eq!(l.integrity_check().unwrap(), "ok");
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, nhacviec::delivery::ledger::SCHEMA_VERSION);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_ledger_from_a_newer_nhacviec_is_refused_clearly() {
    nhacviec::i18n::set_for_thread(Some(nhacviec::i18n::Lang::En)); // asserts English
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(Ledger::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    for err in [
        Ledger::open(&path).unwrap_err(),
        Ledger::open_read_only(&path).unwrap_err(),
    ] {
        assert!(matches!(err, LedgerError::NewerSchema { found: 99, .. }));
        let msg = err.to_string();
        assert!(msg.contains("written by a newer nhacviec"), "{msg}");
        assert!(msg.contains(&*path.to_string_lossy()), "{msg}");
    }
}

#[test]
fn the_unique_key_is_enforced_by_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let mut l = Ledger::open(&path).unwrap();
    l.reserve(
        &[item("II.3", "stp", "dung-han", at(31, 1))],
        &to(&["a@x"]),
        "<m1@x>",
        at(31, 1),
    )
    .unwrap();
    // Behind the ledger's back, the schema itself refuses a second row for the key.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let err = conn
        .execute(
            "INSERT INTO deliveries (task, occurrence, office, kind, role, due_at, late, \
             recipients, message_id, status, attempts, created_at, updated_at) \
             VALUES ('II.3', '2024-01-31', 'stp', 'dung-han', 'lead', 0, 0, '', '<m2@x>', \
             'pending', 0, 0, 0)",
            [],
        )
        .unwrap_err();
    assert!(err.to_string().contains("UNIQUE"), "{err}");
    // And an unknown status is refused by the CHECK constraint.
    let err = conn
        .execute(
            "INSERT INTO deliveries (task, occurrence, office, kind, role, due_at, late, \
             recipients, message_id, status, attempts, created_at, updated_at) \
             VALUES ('II.4', '2024-01-31', 'stp', 'dung-han', 'lead', 0, 0, '', '<m2@x>', \
             'lost', 0, 0, 0)",
            [],
        )
        .unwrap_err();
    assert!(err.to_string().contains("CHECK"), "{err}");
}

#[test]
fn reserve_then_mark_sent_records_the_whole_digest() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(dir.path());
    let items = [
        item("II.3", "stp", "truoc-3wd", at(22, 1)),
        NewDelivery {
            role: "cooperating".into(),
            late: true,
            ..item("VII.5", "stp", "truoc-3wd", at(22, 1))
        },
    ];
    let mid = l
        .reserve(&items, &to(&["vp@stp", "cc@ubnd"]), "<d1@x>", at(22, 2))
        .unwrap();
    assert_eq!(mid, "<d1@x>");
    let keys: Vec<DeliveryKey> = items.iter().map(|i| i.key.clone()).collect();
    let states = l.states(&keys).unwrap();
    assert_eq!(states.len(), 2);
    assert!(
        states
            .values()
            .all(|s| *s == (Status::Pending, "<d1@x>".to_string(), None))
    );

    assert_eq!(
        l.mark_sent("<d1@x>", "250 2.0.0 Ok: queued", at(22, 3))
            .unwrap(),
        2
    );
    let rows = l.query(&LogFilter::default()).unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row.status, Status::Sent);
        assert_eq!(row.recipients, to(&["vp@stp", "cc@ubnd"]));
        assert_eq!(row.reply.as_deref(), Some("250 2.0.0 Ok: queued"));
        assert_eq!(row.attempts, 1);
        assert_eq!(row.created_at, at(22, 2));
        assert_eq!(row.sent_at, Some(at(22, 3)));
        assert_eq!(row.updated_at, at(22, 3));
        assert_eq!(row.next_attempt_at, None);
    }
    let vii5 = rows.iter().find(|r| r.key.task == "VII.5").unwrap();
    assert!(vii5.late);
    assert_eq!(vii5.role, "cooperating");
    assert!(l.unfinished().unwrap().is_empty());

    // Marking it again is a caller bug, reported as such.
    let err = l.mark_sent("<d1@x>", "250", at(22, 4)).unwrap_err();
    assert!(
        matches!(
            err,
            LedgerError::NotInFlight {
                status: Status::Sent,
                ..
            }
        ),
        "{err}"
    );
    let err = l.mark_failed("<nope@x>", "boom", at(22, 4)).unwrap_err();
    assert!(matches!(err, LedgerError::UnknownMessage { .. }), "{err}");
}

#[test]
fn retrying_then_failed_counts_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(dir.path());
    let it = item("II.3", "stp", "qua-han-5wd", at(8, 1));
    l.reserve(std::slice::from_ref(&it), &to(&["a@x"]), "<r@x>", at(8, 1))
        .unwrap();
    l.mark_retrying("<r@x>", "421 try later", at(8, 2), at(8, 1))
        .unwrap();
    let s = &l.states([&it.key]).unwrap()[&it.key];
    assert_eq!(*s, (Status::Retrying, "<r@x>".into(), Some(at(8, 2))));
    assert_eq!(l.unfinished().unwrap().len(), 1);

    // The retry goes out: reserving again keeps the Message-ID and marks it in flight.
    let mid = l
        .reserve(std::slice::from_ref(&it), &to(&["a@x"]), "<r2@x>", at(8, 2))
        .unwrap();
    assert_eq!(mid, "<r@x>");
    l.mark_retrying("<r@x>", "421 still busy", at(8, 4), at(8, 2))
        .unwrap();
    l.mark_failed("<r@x>", "550 mailbox unavailable", at(8, 4))
        .unwrap();
    let row = &l.query(&LogFilter::default()).unwrap()[0];
    assert_eq!(row.status, Status::Failed);
    assert_eq!(row.attempts, 3);
    assert_eq!(row.reply.as_deref(), Some("550 mailbox unavailable"));
    assert_eq!(row.next_attempt_at, None);
    assert_eq!(row.sent_at, None);
    assert!(l.unfinished().unwrap().is_empty());
}

#[test]
fn a_crash_between_reserve_and_send_resends_with_the_same_message_id() {
    let dir = tempfile::tempdir().unwrap();
    let a = item("II.3", "stp", "truoc-14d", at(17, 1));
    let b = item("II.3", "sxd", "truoc-14d", at(17, 1));
    {
        let mut l = open(dir.path());
        l.reserve(
            &[a.clone(), b.clone()],
            &to(&["x@stp"]),
            "<crash@x>",
            at(17, 1),
        )
        .unwrap();
        // The process dies here: no mark_*; the Ledger is simply dropped.
    }
    let mut l = open(dir.path());
    let unfinished = l.unfinished().unwrap();
    assert_eq!(unfinished.len(), 2);
    assert!(unfinished.iter().all(|r| r.message_id == "<crash@x>"));
    assert!(unfinished.iter().all(|r| r.status == Status::Pending));
    assert_eq!(unfinished[0].key, a.key);

    // The planner, not knowing, reserves the same nudges under a fresh Message-ID, plus a new
    // one for the same digest: the stored Message-ID wins for all of them.
    let c = item("II.3", "stc", "truoc-14d", at(17, 1));
    let mid = l
        .reserve(
            &[a.clone(), b.clone(), c.clone()],
            &to(&["y@stp"]),
            "<fresh@x>",
            at(17, 9),
        )
        .unwrap();
    assert_eq!(mid, "<crash@x>");
    let states = l.states([&a.key, &b.key, &c.key]).unwrap();
    assert!(states.values().all(|s| s.1 == "<crash@x>"));
    let row = &l.unfinished().unwrap()[0];
    assert_eq!(row.recipients, to(&["y@stp"]));
    assert_eq!(row.created_at, at(17, 1));
    assert_eq!(row.updated_at, at(17, 9));
    assert_eq!(l.mark_sent("<crash@x>", "250 ok", at(17, 10)).unwrap(), 3);
    assert!(l.unfinished().unwrap().is_empty());
}

#[test]
fn reserving_a_final_key_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(dir.path());
    let a = item("II.3", "stp", "dung-han", at(31, 1));
    l.reserve(std::slice::from_ref(&a), &to(&["a@x"]), "<1@x>", at(31, 1))
        .unwrap();
    l.mark_sent("<1@x>", "250", at(31, 1)).unwrap();
    let fresh = item("II.4", "stp", "dung-han", at(31, 1));
    let err = l
        .reserve(
            &[fresh.clone(), a.clone()],
            &to(&["a@x"]),
            "<2@x>",
            at(31, 2),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            LedgerError::AlreadyFinal {
                status: Status::Sent,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("II.3"), "{err}");
    // All or nothing: the fresh item of the refused batch was not reserved either.
    assert!(l.states([&fresh.key]).unwrap().is_empty());
    assert!(l.reserve(&[a], &to(&[]), " ", at(31, 2)).is_err());
}

#[test]
fn in_flight_keys_of_two_earlier_messages_cannot_be_merged() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(dir.path());
    let a = item("II.3", "stp", "dung-han", at(31, 1));
    let b = item("II.4", "stp", "dung-han", at(31, 1));
    l.reserve(std::slice::from_ref(&a), &to(&["a@x"]), "<a@x>", at(31, 1))
        .unwrap();
    l.reserve(std::slice::from_ref(&b), &to(&["a@x"]), "<b@x>", at(31, 1))
        .unwrap();
    let err = l
        .reserve(&[a, b], &to(&["a@x"]), "<ab@x>", at(31, 2))
        .unwrap_err();
    assert!(matches!(err, LedgerError::SplitInFlight { .. }), "{err}");
    assert!(err.to_string().contains("<a@x>, <b@x>"), "{err}");
}

#[test]
fn skip_records_superseded_nudges_and_leaves_known_keys_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(dir.path());
    let in_flight = item("II.3", "stp", "truoc-3wd", at(22, 1));
    l.reserve(
        std::slice::from_ref(&in_flight),
        &to(&["a@x"]),
        "<f@x>",
        at(22, 1),
    )
    .unwrap();
    let missed = NewDelivery {
        late: true,
        ..item("II.3", "stp", "truoc-14d", at(10, 1))
    };
    let reason = "bị thay bởi nhắc truoc-3wd sau thời gian ngừng";
    let n = l
        .skip(&[missed.clone(), in_flight.clone()], reason, at(22, 1))
        .unwrap();
    assert_eq!(n, 1);
    // Skipping again inserts nothing.
    assert_eq!(
        l.skip(std::slice::from_ref(&missed), "again", at(22, 2))
            .unwrap(),
        0
    );

    let states = l.states([&missed.key, &in_flight.key]).unwrap();
    assert_eq!(states[&missed.key], (Status::Skipped, String::new(), None));
    assert_eq!(states[&in_flight.key].0, Status::Pending);
    assert_eq!(l.all_states().unwrap(), states);

    let skipped = l
        .query(&LogFilter {
            status: Some(Status::Skipped),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].reply.as_deref(), Some(reason));
    assert!(skipped[0].recipients.is_empty());
    assert!(skipped[0].late);
    // Skipped is final: it is never reserved for sending.
    assert!(
        l.reserve(&[missed], &to(&["a@x"]), "<s@x>", at(22, 3))
            .is_err()
    );
}

#[test]
fn states_handles_thousands_of_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(dir.path());
    let items: Vec<NewDelivery> = (0..3000)
        .map(|i| item(&format!("T{i}"), "stp", "dung-han", at(31, 1)))
        .collect();
    l.reserve(&items[..2000], &to(&["a@x"]), "<big@x>", at(31, 1))
        .unwrap();
    let keys: Vec<&DeliveryKey> = items.iter().map(|i| &i.key).collect();
    let states = l.states(keys).unwrap();
    assert_eq!(states.len(), 2000);
    assert!(states.contains_key(&items[1999].key));
    assert!(!states.contains_key(&items[2000].key));
}

#[test]
fn query_filters_and_orders_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(dir.path());
    let mut n = 0;
    for (task, office, day) in [
        ("II.3", "stp", 3),
        ("II.3", "sxd", 3),
        ("II.4", "stp", 5),
        ("II.4", "stp", 5),
        ("VII.5", "stp", 9),
        ("VII.5", "sxd", 12),
    ] {
        n += 1;
        let it = item(task, office, &format!("k{n}"), at(day, 1));
        l.reserve(&[it], &to(&["a@x"]), &format!("<{n}@x>"), at(day, 1))
            .unwrap();
    }
    l.mark_sent("<1@x>", "250", at(3, 2)).unwrap();
    l.mark_failed("<6@x>", "550", at(12, 2)).unwrap();

    let all = l.query(&LogFilter::default()).unwrap();
    let order: Vec<&str> = all.iter().map(|r| r.key.kind.as_str()).collect();
    // due_at descending; equal due_at: the later row (higher id) first.
    assert_eq!(order, ["k6", "k5", "k4", "k3", "k2", "k1"]);

    let kinds = |f: LogFilter| -> Vec<String> {
        l.query(&f)
            .unwrap()
            .into_iter()
            .map(|r| r.key.kind)
            .collect()
    };
    assert_eq!(
        kinds(LogFilter {
            office: Some("stp".into()),
            ..Default::default()
        }),
        ["k5", "k4", "k3", "k1"]
    );
    assert_eq!(
        kinds(LogFilter {
            task: Some("II.4".into()),
            ..Default::default()
        }),
        ["k4", "k3"]
    );
    assert_eq!(
        kinds(LogFilter {
            status: Some(Status::Pending),
            ..Default::default()
        }),
        ["k5", "k4", "k3", "k2"]
    );
    // since inclusive, until exclusive.
    assert_eq!(
        kinds(LogFilter {
            since: Some(at(5, 1)),
            until: Some(at(12, 1)),
            ..Default::default()
        }),
        ["k5", "k4", "k3"]
    );
    assert_eq!(
        kinds(LogFilter {
            office: Some("sxd".into()),
            since: Some(at(3, 1)),
            until: Some(at(12, 2)),
            status: Some(Status::Failed),
            ..Default::default()
        }),
        ["k6"]
    );
    assert_eq!(
        kinds(LogFilter {
            limit: Some(2),
            ..Default::default()
        }),
        ["k6", "k5"]
    );
    assert!(
        kinds(LogFilter {
            office: Some("nobody".into()),
            ..Default::default()
        })
        .is_empty()
    );
}

#[test]
fn read_only_open_of_a_missing_ledger_says_what_to_do() {
    nhacviec::i18n::set_for_thread(Some(nhacviec::i18n::Lang::En)); // asserts English
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere").join("ledger.db");
    let err = Ledger::open_read_only(&path).unwrap_err();
    assert!(matches!(err, LedgerError::Missing { .. }));
    let msg = err.to_string();
    assert!(msg.contains(&*path.to_string_lossy()), "{msg}");
    assert!(msg.contains("start the daemon once"), "{msg}");
    // And it created nothing.
    assert!(!path.parent().unwrap().exists());
}

#[test]
fn read_only_open_reads_and_refuses_to_write() {
    nhacviec::i18n::set_for_thread(Some(nhacviec::i18n::Lang::En)); // asserts English
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let mut w = Ledger::open(&path).unwrap();
    let it = item("II.3", "stp", "dung-han", at(31, 1));
    w.reserve(std::slice::from_ref(&it), &to(&["a@x"]), "<1@x>", at(31, 1))
        .unwrap();
    // A reader alongside the running daemon sees committed rows.
    let mut r = Ledger::open_read_only(&path).unwrap();
    assert_eq!(r.query(&LogFilter::default()).unwrap().len(), 1);
    let err = r.mark_sent("<1@x>", "250", at(31, 2)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("writable by"), "{msg}");
    // An empty file is not a ledger yet.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let err = Ledger::open_read_only(&empty).unwrap_err();
    assert!(
        matches!(err, LedgerError::OlderSchema { found: 0, .. }),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_ledger_is_reported_not_panicked_on() {
    nhacviec::i18n::set_for_thread(Some(nhacviec::i18n::Lang::En)); // asserts English
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    std::fs::write(&path, "đây không phải là cơ sở dữ liệu ".repeat(200)).unwrap();
    let err = Ledger::open(&path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&*path.to_string_lossy()), "{msg}");
    assert!(msg.contains("not a nhacviec ledger"), "{msg}");
}

#[test]
fn a_ledger_path_under_a_regular_file_is_an_actionable_error() {
    nhacviec::i18n::set_for_thread(Some(nhacviec::i18n::Lang::En)); // asserts English
    // Fails the same way for root, unlike permission bits.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, "x").unwrap();
    let err = Ledger::open(&file.join("data").join("ledger.db")).unwrap_err();
    assert!(matches!(err, LedgerError::CreateDir { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&*file.to_string_lossy()), "{msg}");
    assert!(msg.contains("writable by the service user"), "{msg}");
}

#[cfg(unix)]
mod read_only_filesystem {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    /// Makes `path` unwritable: by permission bits, and, where they do not bind (root), by the
    /// immutable attribute. Undoes both when dropped. `None` if neither can be had here.
    struct Unwritable<'a> {
        path: &'a Path,
        immutable: bool,
        mode: u32,
    }

    impl<'a> Unwritable<'a> {
        fn new(path: &'a Path, probe: &Path) -> Option<Self> {
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            let ro = if path.is_dir() { 0o555 } else { 0o444 };
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(ro)).unwrap();
            let mut guard = Unwritable {
                path,
                immutable: false,
                mode,
            };
            if writable(probe) {
                let ok = Command::new("chattr")
                    .arg("+i")
                    .arg(path)
                    .output()
                    .is_ok_and(|o| o.status.success());
                guard.immutable = ok;
                if !ok || writable(probe) {
                    return None;
                }
            }
            Some(guard)
        }
    }

    impl Drop for Unwritable<'_> {
        fn drop(&mut self) {
            if self.immutable {
                let _ = Command::new("chattr").arg("-i").arg(self.path).status();
            }
            let _ = std::fs::set_permissions(self.path, std::fs::Permissions::from_mode(self.mode));
        }
    }

    /// Whether `probe` (a file, or a file to create) can be written.
    fn writable(probe: &Path) -> bool {
        let existed = probe.exists();
        let ok = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(probe)
            .is_ok();
        if ok && !existed {
            let _ = std::fs::remove_file(probe);
        }
        ok
    }

    #[test]
    fn opening_in_a_read_only_folder_is_an_actionable_error() {
        nhacviec::i18n::set_for_thread(Some(nhacviec::i18n::Lang::En)); // asserts English
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("data");
        std::fs::create_dir(&folder).unwrap();
        let Some(_guard) = Unwritable::new(&folder, &folder.join("probe")) else {
            crate::skip::skip_or_fail("cannot make a folder unwritable here");
            return;
        };
        let path = folder.join("ledger.db");
        let err = Ledger::open(&path).unwrap_err();
        let msg = err.to_string();
        eprintln!("{msg}");
        assert!(msg.contains(&*path.to_string_lossy()), "{msg}");
        assert!(msg.contains("writable by the service user"), "{msg}");
    }

    #[test]
    fn opening_a_read_only_ledger_file_is_an_actionable_error() {
        nhacviec::i18n::set_for_thread(Some(nhacviec::i18n::Lang::En)); // asserts English
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        {
            let mut l = Ledger::open(&path).unwrap();
            l.reserve(
                &[item("II.3", "stp", "dung-han", at(31, 1))],
                &to(&["a@x"]),
                "<1@x>",
                at(31, 1),
            )
            .unwrap();
        }
        let Some(_guard) = Unwritable::new(&path, &path) else {
            crate::skip::skip_or_fail("cannot make a file unwritable here");
            return;
        };
        let err = Ledger::open(&path).unwrap_err();
        assert!(matches!(err, LedgerError::ReadOnly { .. }), "{err}");
        let msg = err.to_string();
        eprintln!("{msg}");
        assert!(msg.contains(&*path.to_string_lossy()), "{msg}");
        assert!(msg.contains("writable by the service user"), "{msg}");
        // `log` can still read it.
        let r = Ledger::open_read_only(&path).unwrap();
        assert_eq!(r.query(&LogFilter::default()).unwrap().len(), 1);
    }
}

#[test]
fn batched_reservations_and_outcomes_match_the_single_calls() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(dir.path());
    let now = at(10, 8);
    // A.1 was in flight already (a crash): reserving it again keeps its Message-ID.
    l.reserve(
        &[item("A", "o1", "due", now)],
        &to(&["o1@x"]),
        "<old@x>",
        now,
    )
    .unwrap();
    let ids = l
        .reserve_many(
            &[
                Reservation {
                    items: vec![item("A", "o1", "due", now)],
                    recipients: to(&["o1@x"]),
                    message_id: "<new1@x>".into(),
                },
                Reservation {
                    items: vec![item("B", "o2", "due", now)],
                    recipients: to(&["o2@x"]),
                    message_id: "<new2@x>".into(),
                },
                Reservation {
                    items: vec![item("C", "o3", "due", now)],
                    recipients: to(&["o3@x"]),
                    message_id: "<new3@x>".into(),
                },
            ],
            now,
        )
        .unwrap();
    assert_eq!(ids, ["<old@x>", "<new2@x>", "<new3@x>"]);
    assert_eq!(l.unfinished().unwrap().len(), 3);

    let later = at(10, 9);
    let changed = l
        .finish_many(&[
            (
                "<old@x>".into(),
                Outcome::Sent {
                    reply: "250 ok".into(),
                    at: later,
                },
            ),
            (
                "<new2@x>".into(),
                Outcome::Retrying {
                    error: "451 later".into(),
                    next_attempt_at: at(10, 10),
                    at: later,
                },
            ),
        ])
        .unwrap();
    assert_eq!(changed, 2);
    // <new3@x> never went out: taken back, its nudge is simply due again.
    assert_eq!(l.release(&["<new3@x>".into()]).unwrap(), 1);
    let rows = l.query(&LogFilter::default()).unwrap();
    let by_task = |t: &str| rows.iter().find(|r| r.key.task == t);
    let a = by_task("A").unwrap();
    assert_eq!(
        (a.status, a.attempts, a.sent_at),
        (Status::Sent, 1, Some(later))
    );
    let b = by_task("B").unwrap();
    assert_eq!(
        (b.status, b.next_attempt_at),
        (Status::Retrying, Some(at(10, 10)))
    );
    assert!(by_task("C").is_none());

    // All or nothing: an unknown Message-ID rolls the whole batch back.
    let err = l
        .finish_many(&[
            (
                "<new2@x>".into(),
                Outcome::Failed {
                    error: "550 no".into(),
                    at: later,
                },
            ),
            (
                "<nope@x>".into(),
                Outcome::Failed {
                    error: "550 no".into(),
                    at: later,
                },
            ),
        ])
        .unwrap_err();
    assert!(matches!(err, LedgerError::UnknownMessage { .. }), "{err}");
    let rows = l.query(&LogFilter::default()).unwrap();
    assert!(
        rows.iter()
            .any(|r| r.key.task == "B" && r.status == Status::Retrying)
    );
}

/// The guard, through the real binary: a plan with one task, the outbox transport, the
/// ledger next to the config, in `dir`.
fn guard_setup(dir: &Path) -> std::path::PathBuf {
    let cfg = dir.join("nhacviec.yaml");
    std::fs::write(
        &cfg,
        "offices:\n  ttth:\n    name: Trung tâm Tin học\n    email: ttth@vpubnd.example\n\
         tasks:\n  - id: IV.1\n    title: Xây dựng kế hoạch\n    deadline: 30/01/2024\n    lead: ttth\n\
         reminders:\n  default:\n    before: [3wd]\n    on_day: true\n\
         schedule:\n  timezone: Asia/Ho_Chi_Minh\n  sweeps: [\"0 8 * * *\"]\n  window: \"07:30-17:00\"\n\
         mail:\n  from: nhacviec@vpubnd.example\n  transport:\n    outbox: outbox\n\
         ledger:\n  path: ledger.db\n",
    )
    .unwrap();
    cfg
}

fn nv(cfg: &Path, args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nhacviec"))
        .args(args)
        .arg("-c")
        .arg(cfg)
        .env_remove("NHACVIEC_CONFIG")
        .env("NHACVIEC_LANG", "en")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    eprintln!(
        "$ nhacviec {} -> {:?}\n{}{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn emls(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("outbox")).map_or(0, |d| {
        d.filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml"))
        })
        .count()
    })
}

#[test]
fn a_run_as_of_a_moment_before_the_last_sweep_is_refused_and_points_to_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = guard_setup(dir.path());
    // Thursday 25/01: three working days before the deadline.
    let first = nv(&cfg, &["run", "--once", "--at", "2024-01-25T08:00"]);
    assert_eq!(first.status.code(), Some(0));
    assert_eq!(emls(dir.path()), 1);
    // The same moment again is fine (nothing more is due).
    let again = nv(&cfg, &["run", "--once", "--at", "2024-01-25T08:00"]);
    assert_eq!(again.status.code(), Some(0));
    let before = Ledger::open_read_only(&dir.path().join("ledger.db"))
        .unwrap()
        .query(&LogFilter::default())
        .unwrap();

    let earlier = nv(&cfg, &["run", "--once", "--at", "2024-01-24T08:00"]);
    assert_eq!(earlier.status.code(), Some(1));
    let err = String::from_utf8_lossy(&earlier.stderr);
    assert!(
        err.contains("already records a sweep as of 2024-01-25"),
        "{err}"
    );
    assert!(err.contains("--dry-run"), "{err}");
    // Nothing written, nothing sent.
    let after = Ledger::open_read_only(&dir.path().join("ledger.db"))
        .unwrap()
        .query(&LogFilter::default())
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(emls(dir.path()), 1);
    // The preview it points to works.
    let preview = nv(&cfg, &["run", "--dry-run", "--at", "2024-01-24T08:00"]);
    assert_eq!(preview.status.code(), Some(0));
}

#[test]
fn a_recreated_ledger_is_refused_until_ledger_reset_confirm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = guard_setup(dir.path());
    let first = nv(&cfg, &["run", "--once", "--at", "2024-01-25T08:00"]);
    assert_eq!(first.status.code(), Some(0));
    assert!(dir.path().join("nhacviec.state").is_file());
    assert_eq!(emls(dir.path()), 1);

    // The ledger is deleted (and its WAL with it): a fresh one would send it all again.
    for name in ["ledger.db", "ledger.db-wal", "ledger.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(name));
    }
    let refused = nv(&cfg, &["run", "--once", "--at", "2024-01-25T09:00"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("is not the one nhacviec used before"), "{err}");
    assert!(err.contains("nhacviec ledger reset --confirm"), "{err}");
    assert_eq!(emls(dir.path()), 1, "nothing sent again");

    // A 0-byte ledger is no better.
    std::fs::write(dir.path().join("ledger.db"), b"").unwrap();
    let refused = nv(&cfg, &["run", "--once", "--at", "2024-01-25T09:00"]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(emls(dir.path()), 1, "nothing sent again");

    // Without --confirm, reset does nothing and says why.
    let unconfirmed = nv(&cfg, &["ledger", "reset"]);
    assert_eq!(unconfirmed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("--confirm"));
    let refused = nv(&cfg, &["run", "--once", "--at", "2024-01-25T09:00"]);
    assert_eq!(refused.status.code(), Some(1));

    let reset = nv(&cfg, &["ledger", "reset", "--confirm"]);
    assert_eq!(reset.status.code(), Some(0));
    let go = nv(&cfg, &["run", "--once", "--at", "2024-01-25T09:00"]);
    assert_eq!(go.status.code(), Some(0));
    assert_eq!(emls(dir.path()), 2, "the admin accepted the re-send");
}

#[test]
fn an_empty_ledger_beside_an_outbox_already_used_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = guard_setup(dir.path());
    let first = nv(&cfg, &["run", "--once", "--at", "2024-01-25T08:00"]);
    assert_eq!(first.status.code(), Some(0));
    // The ledger and the state file are both gone (the folder was "cleaned"): the outbox
    // still shows earlier use.
    for name in [
        "ledger.db",
        "ledger.db-wal",
        "ledger.db-shm",
        "nhacviec.state",
    ] {
        let _ = std::fs::remove_file(dir.path().join(name));
    }
    let refused = nv(&cfg, &["run", "--once", "--at", "2024-01-25T09:00"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("the outbox already holds"), "{err}");
    assert_eq!(emls(dir.path()), 1);
    assert!(!dir.path().join("nhacviec.state").exists());
}
