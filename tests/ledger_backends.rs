//! One ledger test suite, run against both backends: a SQLite file in a temp folder and a
//! database of a throwaway PostgreSQL cluster (`tests/support/pg.rs`). Then what only the
//! shared PostgreSQL ledger promises: several nodes, one owner per email, leases.

#[path = "support/pg.rs"]
mod pg;
#[path = "support/skip.rs"]
mod skip;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use nhacviec::delivery::ledger::pg::PgLedger;
use nhacviec::delivery::ledger::{
    DeliveryKey, Ledger, NewCompletion, NewDelivery, Outcome, Reservation, Source, Status, Store,
    SweepRecord,
};
use nhacviec::plan::config::{PgLedger as PgConfig, SslMode};
use std::time::Duration;

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, day, hour, 0, 0).unwrap()
}

fn key(task: &str, office: &str) -> DeliveryKey {
    DeliveryKey {
        task: task.into(),
        occurrence: NaiveDate::from_ymd_opt(2024, 1, 31).unwrap(),
        office: office.into(),
        kind: "before-3wd".into(),
    }
}

fn item(task: &str, office: &str) -> NewDelivery {
    NewDelivery {
        key: key(task, office),
        role: "lead".into(),
        due_at: at(29, 1),
        late: false,
    }
}

fn email(mid: &str, items: Vec<NewDelivery>) -> Reservation {
    Reservation {
        items,
        recipients: vec!["a@vpubnd.example".into(), "b@vpubnd.example".into()],
        message_id: mid.into(),
    }
}

fn sent(reply: &str) -> Outcome {
    Outcome::Sent {
        reply: reply.into(),
        at: at(29, 2),
    }
}

/// A store and what keeps it alive (its temp folder).
struct Backend {
    store: Store,
    _dir: tempfile::TempDir,
}

fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::Sqlite(Ledger::open(&dir.path().join("ledger.db")).unwrap());
    Backend { store, _dir: dir }
}

/// A fresh database on the shared cluster; `None` (a skip, a failure under CI) without
/// PostgreSQL.
fn database(test: &str) -> Option<pg::Database> {
    let Some(c) = pg::shared() else {
        skip::skip_or_fail("PostgreSQL's initdb and pg_ctl are not installed");
        return None;
    };
    Some(c.database(test))
}

/// Node `node` of the PostgreSQL ledger in `db`, with its password in a file.
async fn node(db: &pg::Database, node: &str, lease: Duration) -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("ledger-password");
    std::fs::write(&pw, format!("{}\n", pg::PASSWORD)).unwrap();
    let cfg = PgConfig {
        url: db.url(),
        password_file: Some(pw),
        sslmode: SslMode::Disable,
        ca_file: None,
        lease,
    };
    let ledger = PgLedger::connect(&cfg, None, node.into()).await.unwrap();
    Backend {
        store: Store::Pg(ledger),
        _dir: dir,
    }
}

async fn postgres(test: &str) -> Option<Backend> {
    let db = database(test)?;
    Some(node(&db, "node-a", Duration::from_secs(300)).await)
}

/// Each scenario runs once per backend.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let mut b = super::sqlite();
                    super::$name(&mut b.store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(mut b) = super::postgres(stringify!($name)).await else { return };
                    super::$name(&mut b.store).await;
                }
            )*
        }
    };
}

both!(
    a_reserved_email_is_pending_then_sent_and_leaves_nothing_in_flight,
    a_key_in_flight_is_reserved_again_under_its_stored_message_id,
    skipping_records_only_keys_never_seen,
    a_released_reservation_is_gone_and_a_retry_comes_back_due,
    an_outcome_for_one_office_leaves_the_others_in_flight,
    the_first_complete_sendable_sweep_dates_the_first_start,
    the_newest_completion_per_key_stands_and_undone_keeps_the_trail,
);

fn completion(office: Option<&str>, undone: bool) -> NewCompletion {
    let d = |s: &str| s.parse::<NaiveDate>().unwrap();
    NewCompletion {
        task: "II.3".into(),
        occurrence: Some((d("2024-01-01"), d("2024-03-31"))),
        office: office.map(str::to_string),
        done_on: d("2024-03-10"),
        source: Source::Link,
        note: Some("đã nộp báo cáo".into()),
        client: Some("192.0.2.7".into()),
        undone,
    }
}

async fn the_newest_completion_per_key_stands_and_undone_keeps_the_trail(s: &mut Store) {
    let now = at(29, 3);
    let first = s
        .record_completion(&completion(Some("kstthc"), false), now)
        .await
        .unwrap();
    let whole = s
        .record_completion(&completion(None, false), now)
        .await
        .unwrap();
    assert!(whole > first, "ids grow");
    assert_eq!(s.completions().await.unwrap().len(), 2);
    s.record_completion(&completion(Some("kstthc"), true), now)
        .await
        .unwrap();
    let standing = s.completions().await.unwrap();
    assert_eq!(standing.len(), 1);
    assert_eq!(standing[0].id, whole);
    assert_eq!(standing[0].entry, completion(None, false));
    assert_eq!(standing[0].recorded_at, now);
    // Done again after the undo: it stands again; nothing was ever deleted.
    s.record_completion(&completion(Some("kstthc"), false), now)
        .await
        .unwrap();
    assert_eq!(s.completions().await.unwrap().len(), 2);
    let trail = s.completion_history().await.unwrap();
    assert_eq!(trail.len(), 4);
    assert_eq!(
        trail.iter().map(|c| c.entry.undone).collect::<Vec<_>>(),
        [false, false, true, false]
    );
}

async fn a_reserved_email_is_pending_then_sent_and_leaves_nothing_in_flight(s: &mut Store) {
    let ids = s
        .reserve_many(
            &[email(
                "<m1@x>",
                vec![item("T.1", "hctc"), item("T.2", "hctc")],
            )],
            at(29, 1),
        )
        .await
        .unwrap();
    assert_eq!(ids, vec![Some("<m1@x>".to_string())]);
    let states = s.read_states().await.unwrap();
    assert_eq!(states.len(), 2);
    assert!(
        states
            .values()
            .all(|k| k.status == Status::Pending && k.message_id == "<m1@x>")
    );
    assert_eq!(s.unfinished().await.unwrap().len(), 2);
    let changed = s
        .finish_many(&[("<m1@x>".into(), sent("250 OK"))])
        .await
        .unwrap();
    assert_eq!(changed, 2);
    assert!(s.unfinished().await.unwrap().is_empty());
    let states = s.read_states().await.unwrap();
    assert!(states.values().all(|k| k.status == Status::Sent));
}

async fn a_key_in_flight_is_reserved_again_under_its_stored_message_id(s: &mut Store) {
    s.reserve_many(&[email("<first@x>", vec![item("T.1", "hctc")])], at(29, 1))
        .await
        .unwrap();
    // A crash: the next sweep reserves the same nudge (with a new one) under a new id.
    let ids = s
        .reserve_many(
            &[email(
                "<second@x>",
                vec![item("T.1", "hctc"), item("T.3", "hctc")],
            )],
            at(29, 3),
        )
        .await
        .unwrap();
    assert_eq!(ids, vec![Some("<first@x>".to_string())]);
    let rows = s.unfinished().await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().all(|r| r.message_id == "<first@x>"),
        "{rows:#?}"
    );
    assert_eq!(
        rows[0].recipients,
        vec!["a@vpubnd.example", "b@vpubnd.example"]
    );
}

async fn skipping_records_only_keys_never_seen(s: &mut Store) {
    s.reserve_many(&[email("<m@x>", vec![item("T.1", "hctc")])], at(29, 1))
        .await
        .unwrap();
    let n = s
        .skip(
            &[item("T.1", "hctc"), item("T.2", "kh-dt")],
            "missed",
            at(29, 1),
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let states = s.read_states().await.unwrap();
    assert_eq!(states[&key("T.1", "hctc")].status, Status::Pending);
    assert_eq!(states[&key("T.2", "kh-dt")].status, Status::Skipped);
    assert_eq!(states[&key("T.2", "kh-dt")].message_id, "");
}

async fn a_released_reservation_is_gone_and_a_retry_comes_back_due(s: &mut Store) {
    s.reserve_many(
        &[
            email("<unsent@x>", vec![item("T.1", "hctc")]),
            email("<tried@x>", vec![item("T.2", "hctc")]),
        ],
        at(29, 1),
    )
    .await
    .unwrap();
    assert_eq!(s.release(&["<unsent@x>".into()]).await.unwrap(), 1);
    let retry_at = at(29, 5);
    s.finish_many(&[(
        "<tried@x>".into(),
        Outcome::Retrying {
            error: "421 busy".into(),
            next_attempt_at: retry_at,
            at: at(29, 2),
        },
    )])
    .await
    .unwrap();
    let states = s.read_states().await.unwrap();
    assert!(!states.contains_key(&key("T.1", "hctc")));
    let st = &states[&key("T.2", "hctc")];
    assert_eq!(st.status, Status::Retrying);
    assert_eq!(st.next_attempt_at, Some(retry_at));
    assert_eq!(st.attempts, 1);
    // Due: reserved again under its id; the attempt count is kept.
    let ids = s
        .reserve_many(&[email("<new@x>", vec![item("T.2", "hctc")])], retry_at)
        .await
        .unwrap();
    assert_eq!(ids, vec![Some("<tried@x>".to_string())]);
    let rows = s.unfinished().await.unwrap();
    assert_eq!((rows[0].status, rows[0].attempts), (Status::Pending, 1));
}

async fn an_outcome_for_one_office_leaves_the_others_in_flight(s: &mut Store) {
    s.reserve_many(
        &[email(
            "<d@x>",
            vec![item("T.1", "hctc"), item("T.1", "kh-dt")],
        )],
        at(29, 1),
    )
    .await
    .unwrap();
    let n = s
        .finish_scoped(&[("<d@x>".into(), Some("kh-dt".into()), sent("250 OK"))])
        .await
        .unwrap();
    assert_eq!(n, 1);
    let states = s.read_states().await.unwrap();
    assert_eq!(states[&key("T.1", "kh-dt")].status, Status::Sent);
    assert_eq!(states[&key("T.1", "hctc")].status, Status::Pending);
}

async fn the_first_complete_sendable_sweep_dates_the_first_start(s: &mut Store) {
    assert_eq!(s.first_sweep_as_of().await.unwrap(), None);
    let cfg = config();
    let a = s.begin_sweep(at(27, 1), at(27, 1), &cfg).await.unwrap();
    // Outside the window: it does not count.
    s.finish_sweep(
        a,
        at(27, 1),
        &SweepRecord {
            complete: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(s.first_sweep_as_of().await.unwrap(), None);
    let b = s.begin_sweep(at(29, 1), at(29, 1), &cfg).await.unwrap();
    s.finish_sweep(
        b,
        at(29, 2),
        &SweepRecord {
            sendable: true,
            complete: true,
            sent: 3,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let c = s.begin_sweep(at(30, 1), at(30, 1), &cfg).await.unwrap();
    s.finish_sweep(
        c,
        at(30, 2),
        &SweepRecord {
            sendable: true,
            complete: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(s.first_sweep_as_of().await.unwrap(), Some(at(29, 1)));
}

/// A small valid config, for the sweeps' config hash.
fn config() -> nhacviec::plan::config::Config {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nhacviec.yaml");
    std::fs::write(&path, CONFIG).unwrap();
    nhacviec::plan::config::load(&path, &nhacviec::plan::config::Env::default())
        .unwrap_or_else(|r| panic!("{:?}", r.render_short()))
        .config
}

const CONFIG: &str = "plan:\n  year: 2024\noffices:\n  hctc:\n    name: Phòng Hành chính\n    email: hctc@vpubnd.example\nreminders:\n  default:\n    before: [3wd]\ntasks:\n  - id: T.1\n    title: Báo cáo\n    deadline: 31/01/2024\n    lead: hctc\nmail:\n  from: Nhắc việc <nhacviec@vpubnd.example>\n  transport:\n    outbox: outbox\n";

// What only the shared ledger promises.

#[tokio::test]
async fn of_two_nodes_reserving_one_email_one_wins_and_the_other_leaves_it_alone() {
    let Some(db) = database("two_nodes_one_email") else {
        return;
    };
    let mut a = node(&db, "node-a", Duration::from_secs(300)).await;
    let mut b = node(&db, "node-b", Duration::from_secs(300)).await;
    let mine = email("<a@x>", vec![item("T.1", "hctc"), item("T.2", "hctc")]);
    assert_eq!(
        a.store.reserve_many(&[mine], at(29, 1)).await.unwrap(),
        vec![Some("<a@x>".to_string())]
    );
    // B planned the same email (and one more) under its own id: it loses that one only.
    let ids = b
        .store
        .reserve_many(
            &[
                email("<b@x>", vec![item("T.2", "hctc"), item("T.1", "hctc")]),
                email("<b2@x>", vec![item("T.9", "hctc")]),
            ],
            at(29, 1),
        )
        .await
        .unwrap();
    assert_eq!(ids, vec![None, Some("<b2@x>".to_string())]);
    let c = pg::shared().unwrap();
    assert_eq!(
        c.psql(
            &db,
            "SELECT owner || ' ' || message_id FROM deliveries ORDER BY task"
        ),
        "node-a <a@x>\nnode-a <a@x>\nnode-b <b2@x>"
    );
}

/// A node's own email in flight, locked for a moment by another node's look-up (which finds
/// it held and leaves it): the node waits for the lock and reserves it again under its
/// Message-ID. Skipping the locked row took it for another node's, and left it until its
/// own lease expired (seen as a stuck row in the HA restart test under load).
#[tokio::test]
async fn a_nodes_own_email_locked_by_another_nodes_look_up_is_still_its_own() {
    let Some(db) = database("own_locked") else {
        return;
    };
    let mut a = node(&db, "node-a", Duration::from_secs(300)).await;
    let mine = || email("<a@x>", vec![item("T.1", "hctc")]);
    assert_eq!(
        a.store.reserve_many(&[mine()], at(29, 1)).await.unwrap(),
        vec![Some("<a@x>".to_string())]
    );
    // Another session holds the row's lock for a while, as node-b's look-up does.
    let c = pg::shared().unwrap();
    let held = pg::Database {
        name: db.name.clone(),
        port: db.port,
    };
    let holder = std::thread::spawn(move || {
        c.psql(
            &held,
            "BEGIN; SELECT id FROM deliveries FOR UPDATE; SELECT pg_sleep(1.5); COMMIT;",
        )
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        a.store.reserve_many(&[mine()], at(29, 1)).await.unwrap(),
        vec![Some("<a@x>".to_string())],
        "its own email, once the lock is let go"
    );
    holder.join().unwrap();
}

#[tokio::test]
async fn a_dead_nodes_reservation_is_taken_over_after_its_lease_under_the_same_message_id() {
    let Some(db) = database("lease_expiry") else {
        return;
    };
    let mut a = node(&db, "node-a", Duration::from_secs(2)).await;
    let mut b = node(&db, "node-b", Duration::from_secs(2)).await;
    a.store
        .reserve_many(&[email("<a@x>", vec![item("T.1", "hctc")])], at(29, 1))
        .await
        .unwrap();
    // A dies here. Within the lease B leaves it alone…
    let early = b
        .store
        .reserve_many(&[email("<b@x>", vec![item("T.1", "hctc")])], at(29, 1))
        .await
        .unwrap();
    assert_eq!(early, vec![None]);
    // …after it, B sends it again under A's Message-ID, as its new owner.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let late = b
        .store
        .reserve_many(&[email("<b@x>", vec![item("T.1", "hctc")])], at(29, 1))
        .await
        .unwrap();
    assert_eq!(late, vec![Some("<a@x>".to_string())]);
    let c = pg::shared().unwrap();
    assert_eq!(
        c.psql(
            &db,
            "SELECT owner || ' ' || status || ' ' || (lease_until > now()) FROM deliveries"
        ),
        "node-b pending true"
    );
    // A comes back and records its late outcome: harmless, the row is simply sent.
    assert_eq!(
        a.store
            .finish_many(&[("<a@x>".into(), sent("250 OK"))])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        b.store
            .finish_many(&[("<a@x>".into(), sent("250 OK"))])
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn two_nodes_reserving_the_same_thousand_emails_at_once_reserve_each_exactly_once() {
    let Some(db) = database("race_thousand") else {
        return;
    };
    let mut a = node(&db, "node-a", Duration::from_secs(300)).await;
    let mut b = node(&db, "node-b", Duration::from_secs(300)).await;
    let plan = |who: &str| -> Vec<Vec<Reservation>> {
        (0..1000)
            .map(|i| {
                email(
                    &format!("<{who}{i}@x>"),
                    vec![item(&format!("T.{i}"), "hctc")],
                )
            })
            .collect::<Vec<_>>()
            .chunks(32)
            .map(|c| c.to_vec())
            .collect()
    };
    let (pa, pb) = (plan("a"), plan("b"));
    let (ra, rb) = tokio::join!(
        async {
            let mut won = Vec::new();
            for batch in pa {
                won.extend(a.store.reserve_many(&batch, at(29, 1)).await.unwrap());
            }
            won
        },
        async {
            let mut won = Vec::new();
            for batch in pb {
                won.extend(b.store.reserve_many(&batch, at(29, 1)).await.unwrap());
            }
            won
        }
    );
    for i in 0..1000 {
        assert!(
            ra[i].is_some() != rb[i].is_some(),
            "email {i}: a {:?}, b {:?}",
            ra[i],
            rb[i]
        );
    }
    let c = pg::shared().unwrap();
    assert_eq!(c.psql(&db, "SELECT count(*) FROM deliveries"), "1000");
}
