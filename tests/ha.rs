//! High availability: nodes sharing one PostgreSQL ledger, through the real binary, against
//! a throwaway cluster (`tests/support/pg.rs`) and the test SMTP server.
//!
//! What is checked each time: every nudge due is delivered, each under exactly one
//! Message-ID (the one its ledger row holds); a Message-ID may arrive twice only where a
//! node died or lost its connection after sending and before recording (a same-Message-ID
//! re-send, recognisable by the receiver). Nothing is sent that the ledger does not hold.

mod support;

use mail_parser::MessageParser;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::daemon::{Daemon, Spawn, nhacviec};
use support::pg;
use support::skip::skip_or_fail;
use support::smtp::{Received, SmtpServer};

/// Thursday 25/01/2024, a working day, three working days before the deadline 30/01/2024.
const THURSDAY: &str = "2024-01-25T08:00";

/// How long anything may take; only a failure waits this long.
const WAIT: Duration = Duration::from_secs(60);

/// The cluster every test here shares, or a skip (a failure under CI).
fn cluster() -> Option<&'static pg::Cluster> {
    let c = pg::shared();
    if c.is_none() {
        skip_or_fail(
            "PostgreSQL's initdb and pg_ctl are not installed (scripts/test installs them)",
        );
    }
    c
}

/// `offices × tasks` nudges at [`THURSDAY`], one email each (`per-nudge`), to an SMTP server
/// on `port`, the ledger at `url` with the password in `ledger.pw` and this `lease`.
fn config_yaml(port: u16, offices: usize, tasks: usize, url: &str, lease: &str) -> String {
    let mut s = String::from(
        "plan:\n  title: Kế hoạch thử\n  year: 2024\nsections:\n  IV: Tổ chức thực hiện\noffices:\n",
    );
    for o in 1..=offices {
        s.push_str(&format!(
            "  p{o}:\n    name: Phòng số {o}\n    email: phong{o}@vpubnd.example\n"
        ));
    }
    let all: Vec<String> = (1..=offices).map(|o| format!("p{o}")).collect();
    s.push_str("tasks:\n");
    for t in 1..=tasks {
        s.push_str(&format!(
            "  - id: IV.{t}\n    section: IV\n    title: Nhiệm vụ thử số {t}\n    deadline: 30/01/2024\n    lead: [{}]\n",
            all.join(", ")
        ));
    }
    s.push_str(&format!(
        r#"reminders:
  default:
    before: [3wd]
    on_day: true
schedule:
  timezone: Asia/Ho_Chi_Minh
  sweeps: ["0 8 * * *"]
  window: "07:30-17:00"
mail:
  from: Nhắc việc <nhacviec@vpubnd.example>
  grouping: per-nudge
  transport:
    smtp: {{ host: 127.0.0.1, port: {port}, security: none, allow_plaintext: true, timeout: 5s, pool_size: 16 }}
  retry: {{ attempts: 4, initial: 1s, max: 2s }}
ledger:
  url: {url}
  password_file: ledger.pw
  sslmode: disable
  lease: {lease}
"#
    ));
    s
}

/// One node: its own folder (config, password file, logs), as on its own host.
struct Node {
    dir: tempfile::TempDir,
    name: String,
}

impl Node {
    fn new(name: &str, yaml: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nhacviec.yaml"), yaml).unwrap();
        std::fs::write(dir.path().join("ledger.pw"), format!("{}\n", pg::PASSWORD)).unwrap();
        Node {
            dir,
            name: name.into(),
        }
    }

    fn cfg(&self) -> PathBuf {
        self.dir.path().join("nhacviec.yaml")
    }

    /// `nhacviec <args> --at THURSDAY -c <config>` in the background as this node.
    fn spawn(&self, log: &str, args: &[&str]) -> Daemon {
        Spawn::new(&self.dir.path().join(format!("{log}.log")))
            .args(args)
            .args(["--at", THURSDAY, "-c"])
            .args([self.cfg()])
            .env("NHACVIEC_NODE", &self.name)
            .stdout_to_log()
            .start()
    }
}

fn bare(id: &str) -> String {
    id.trim().trim_matches(['<', '>']).to_string()
}

fn message_id(r: &Received) -> String {
    let m = MessageParser::default()
        .parse(&r.data)
        .expect("a parseable message");
    bare(m.message_id().expect("a Message-ID"))
}

/// How many times each Message-ID arrived.
fn count_ids(msgs: &[Received]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in msgs {
        *m.entry(message_id(r)).or_insert(0) += 1;
    }
    m
}

/// The ledger's rows as `status message_id` lines, by psql.
fn ledger_rows(c: &pg::Cluster, db: &pg::Database) -> Vec<(String, String)> {
    c.psql(db, "SELECT status, message_id FROM deliveries ORDER BY id")
        .lines()
        .map(|l| {
            let (s, m) = l.split_once('|').expect("status|message_id");
            (s.to_string(), bare(m))
        })
        .collect()
}

/// Every one of `expected` rows sent, each under its own Message-ID, and exactly the
/// ledger's Message-IDs received: no nudge went out under a second id, nothing unrecorded.
/// Returns how many duplicates (same-Message-ID re-sends) arrived.
fn assert_delivered_once(
    c: &pg::Cluster,
    db: &pg::Database,
    server: &SmtpServer,
    expected: usize,
) -> usize {
    let rows = ledger_rows(c, db);
    assert_eq!(rows.len(), expected, "ledger rows");
    let not_sent: Vec<_> = rows.iter().filter(|(s, _)| s != "sent").collect();
    assert!(not_sent.is_empty(), "{not_sent:?}");
    let ids: BTreeSet<String> = rows.iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(ids.len(), expected, "one Message-ID per nudge (per-nudge)");
    let got = count_ids(&server.received());
    let received: BTreeSet<String> = got.keys().cloned().collect();
    let unrecorded: Vec<_> = received.difference(&ids).collect();
    assert!(
        unrecorded.is_empty(),
        "sent but not in the ledger: {unrecorded:?}"
    );
    let lost: Vec<_> = ids.difference(&received).collect();
    assert!(
        lost.is_empty(),
        "in the ledger but never received: {lost:?}"
    );
    got.values().map(|n| n - 1).sum()
}

/// Waits until `f` holds, polling; fails after [`WAIT`].
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn each_test_gets_its_own_database_on_the_throwaway_cluster() {
    let Some(c) = cluster() else { return };
    let a = c.database("own_a");
    let b = c.database("own_b");
    assert_ne!(a.name, b.name);
    c.psql(
        &a,
        "CREATE TABLE only_in_a (x int); INSERT INTO only_in_a VALUES (7)",
    );
    assert_eq!(c.psql(&a, "SELECT x FROM only_in_a"), "7");
    assert_eq!(
        c.psql(
            &b,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"
        ),
        "0"
    );
    // Served on loopback, with the user the URL names.
    assert!(a.url().starts_with("postgresql://nhacviec@127.0.0.1:"));
    assert_eq!(c.psql(&a, "SELECT current_user"), "nhacviec");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_one_database_deliver_each_email_exactly_once() {
    let Some(c) = cluster() else { return };
    let db = c.database("two_daemons");
    let server = SmtpServer::start().await;
    // 900 emails, more than one node reserves at once (512 with 16 connections), so that
    // both take part; a lease far longer than the test: no re-send is allowed at all.
    let yaml = config_yaml(server.port(), 30, 30, &db.url(), "10m");
    let (a, b) = (Node::new("node-a", &yaml), Node::new("node-b", &yaml));
    // Nobody is greeted until both nodes have reserved: a node that started late on a busy
    // machine found everything sent already, and the test could not tell it took part.
    server.hold_greetings(true);
    let mut da = a.spawn("daemon", &["run"]);
    let mut db_ = b.spawn("daemon", &["run"]);
    let end = Instant::now() + Duration::from_secs(8);
    let owners = || {
        c.psql(&db, "SELECT to_regclass('deliveries') IS NOT NULL") == "t"
            && c.psql(&db, "SELECT count(DISTINCT owner) FROM deliveries") == "2"
    };
    while !owners() && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.hold_greetings(false);
    until("900 emails", || server.received().len() >= 900).await;
    until("both sweeps recorded", || {
        c.psql(
            &db,
            "SELECT count(DISTINCT node) FROM sweeps WHERE finished IS NOT NULL",
        ) == "2"
    })
    .await;
    let dups = assert_delivered_once(c, &db, &server, 900);
    assert_eq!(dups, 0, "a duplicate without any failure");
    assert_eq!(server.received().len(), 900);
    // Both took part: each node owns some of the rows.
    let owners = c.psql(&db, "SELECT count(DISTINCT owner) FROM deliveries");
    assert_eq!(owners, "2", "both nodes sent");
    for d in [&mut da, &mut db_] {
        assert!(d.running(), "{}", d.tail());
        d.signal("TERM");
        assert!(d.wait_exit(WAIT).await.success(), "{}", d.tail());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_sigkills_of_one_node_lose_nothing_and_duplicate_only_under_the_same_message_id() {
    let Some(c) = cluster() else { return };
    let db = c.database("ten_kills");
    let server = SmtpServer::start().await;
    // 2,000 emails; a 2 s lease so that the survivor takes over a dead node's emails soon.
    let yaml = config_yaml(server.port(), 40, 50, &db.url(), "2s");
    let (a, b) = (Node::new("node-a", &yaml), Node::new("node-b", &yaml));
    // B sweeps in a loop of `run --once` until nothing is left, through all of A's deaths.
    let survivor = async {
        let mut runs = 0;
        loop {
            let mut d = b.spawn(&format!("once-{runs}"), &["run", "--once"]);
            let code = d.exit_code(WAIT).await;
            assert!(code == 0 || code == 1, "exit {code}: {}", d.tail());
            runs += 1;
            let left = c.psql(
                &db,
                "SELECT count(*) FROM deliveries WHERE status <> 'sent'",
            );
            if left == "0" && c.psql(&db, "SELECT count(*) FROM deliveries") == "2000" {
                return runs;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let killer = async {
        let mut orphaned = 0;
        for kill in 0..10 {
            let mut d = a.spawn(&format!("killed-{kill}"), &["run", "--once"]);
            // Killed mid-sweep: once it has recorded a few emails of its own (more of its
            // reservations are then in flight), or after a while if it has nothing to do.
            let end = Instant::now() + Duration::from_secs(10);
            while d.log_text().matches("đã gửi").count() < 5 && Instant::now() < end && d.running()
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            d.kill_hard();
            // What the dead node left in flight, for another node (or its restart) to send.
            let left: usize = c
                .psql(
                    &db,
                    "SELECT count(*) FROM deliveries WHERE owner = 'node-a' AND status = 'pending'",
                )
                .parse()
                .unwrap();
            orphaned += left;
        }
        orphaned
    };
    let (runs, orphaned) = tokio::join!(survivor, killer);
    assert!(
        orphaned > 0,
        "no kill left a reservation in flight: the kills tested nothing"
    );
    assert!(runs >= 1);
    let dups = assert_delivered_once(c, &db, &server, 2000);
    eprintln!(
        "{orphaned} reservations orphaned by the kills, {dups} same-Message-ID re-sends, {runs} surviving runs"
    );
    // The killed node did send (and record) part of the work between its deaths.
    let by_a: usize = c
        .psql(
            &db,
            "SELECT count(*) FROM deliveries WHERE owner = 'node-a'",
        )
        .parse()
        .unwrap();
    assert!(
        by_a > 0,
        "node-a never got to send: the kills tested nothing"
    );
    // Every node seen is recorded with its sweeps.
    assert_eq!(
        c.psql(&db, "SELECT string_agg(DISTINCT node, ',') FROM sweeps"),
        "node-a,node-b"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_restarted_mid_sweep_both_daemons_survive_and_finish() {
    if pg::bin_dir().is_none() {
        skip_or_fail("PostgreSQL's initdb and pg_ctl are not installed");
        return;
    }
    // Its own cluster: restarting the shared one would cut the other tests' connections.
    let c = pg::Cluster::start().unwrap();
    let db = c.database("restart");
    let mut server = SmtpServer::start().await;
    let yaml = config_yaml(server.port(), 20, 30, &db.url(), "10m");
    let (a, b) = (Node::new("node-a", &yaml), Node::new("node-b", &yaml));
    // Slow the mail server down so that the restart lands mid-sweep.
    server.stall_data(Duration::from_millis(15));
    let mut da = a.spawn("daemon", &["run"]);
    let mut db_ = b.spawn("daemon", &["run"]);
    until("the sweep under way", || server.received().len() >= 60).await;
    c.restart();
    let after_restart = server.received().len();
    assert!(
        after_restart < 600,
        "the restart came too late to test anything"
    );
    server.behave();
    // The sweeps that lost the database fail; each daemon sweeps again after its retry wait.
    until("600 emails", || server.received().len() >= 600).await;
    until("nothing left in flight", || {
        c.psql(
            &db,
            "SELECT count(*) FROM deliveries WHERE status <> 'sent'",
        ) == "0"
    })
    .await;
    assert_delivered_once(&c, &db, &server, 600);
    for d in [&mut da, &mut db_] {
        assert!(d.running(), "a daemon died: {}", d.tail());
        d.signal("TERM");
        assert!(d.wait_exit(WAIT).await.success(), "{}", d.tail());
    }
    let logs = da.log_text() + &db_.log_text();
    assert!(
        logs.contains("PostgreSQL ledger"),
        "the lost connection is logged: {logs}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_at_start_is_a_clear_error_and_a_failure_exit_for_systemd() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgresql://nhacviec@127.0.0.1:{port}/nhacviec");
    let node = Node::new("node-a", &config_yaml(25, 1, 1, &url, "1m"));
    let out = nhacviec()
        .args(["run", "--at", THURSDAY, "-c"])
        .arg(node.cfg())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Restart=on-failure restarts on any exit status but 0.
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot connect to the PostgreSQL ledger postgresql://nhacviec@127.0.0.1:{port}/nhacviec"
        )),
        "{err}"
    );
    assert!(err.contains("Is the database server running"), "{err}");
    assert!(!err.contains(pg::PASSWORD), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_different_config_is_reported_loudly_and_the_password_comes_from_a_credential()
 {
    let Some(c) = cluster() else { return };
    let db = c.database("config_hash");
    let server = SmtpServer::start().await;
    let yaml = config_yaml(server.port(), 2, 2, &db.url(), "10m");
    let a = Node::new("node-a", &yaml);
    let mut d = a.spawn("once", &["run", "--once"]);
    assert_eq!(d.exit_code(WAIT).await, 0, "{}", d.tail());
    // B has one more task, and its password in systemd's credentials folder instead.
    let other = config_yaml(server.port(), 2, 3, &db.url(), "10m")
        .replace("  password_file: ledger.pw\n", "");
    let b = Node::new("node-b", &other);
    let creds = b.dir.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("ledger-password"), pg::PASSWORD).unwrap();
    let mut d = Spawn::new(&b.dir.path().join("once.log"))
        .args(["run", "--once", "--at", THURSDAY, "-c"])
        .args([b.cfg()])
        .env("NHACVIEC_NODE", "node-b")
        .env("CREDENTIALS_DIRECTORY", &creds)
        .stdout_to_log()
        .start();
    assert_eq!(d.exit_code(WAIT).await, 0, "{}", d.tail());
    let log = d.log_text();
    assert!(
        log.contains("node node-a also sends from this ledger but with a DIFFERENT config"),
        "{log}"
    );
    // B sent only the new task's nudges: A's were already sent.
    assert_eq!(server.received().len(), 6);
}

/// Puts the first `n` rows back in flight, as node `owner` would hold them mid-sweep: sent
/// by nobody yet, `pending` under a lease that ends `lease` from now (the database's clock).
fn hold(c: &pg::Cluster, db: &pg::Database, owner: &str, n: usize, lease: &str) -> Vec<String> {
    c.psql(
        db,
        &format!(
            "UPDATE deliveries SET status = 'pending', sent_at = NULL, owner = '{owner}', \
             lease_until = now() + interval '{lease}' \
             WHERE id IN (SELECT id FROM deliveries ORDER BY id LIMIT {n})"
        ),
    );
    c.psql(
        db,
        &format!("SELECT message_id FROM deliveries WHERE owner = '{owner}' ORDER BY id"),
    )
    .lines()
    .map(bare)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_leaves_another_nodes_emails_under_a_live_lease_alone_and_does_not_fail_for_them()
{
    let Some(c) = cluster() else { return };
    let db = c.database("once_held");
    let server = SmtpServer::start().await;
    let yaml = config_yaml(server.port(), 2, 2, &db.url(), "10m");
    let b = Node::new("node-b", &yaml);
    let first = cli(&b, &["run", "--once", "--at", THURSDAY]);
    assert!(first.status.success(), "{}", text(&first));
    assert_eq!(server.received().len(), 4);
    // node-a is mid-sweep: it holds two of the emails under a live lease.
    let held = hold(c, &db, "node-a", 2, "1 hour");
    assert_eq!(held.len(), 2);
    // The dry run says what the run then does: node-a's emails are not this node's to send.
    let dry = cli(&b, &["run", "--dry-run", "--at", THURSDAY]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    let shown = String::from_utf8_lossy(&dry.stdout).to_string();
    assert!(!shown.contains("would send again"), "{shown}");
    assert!(
        shown.contains("not this sweep's to send: 2 email(s) being sent by node node-a"),
        "{shown}"
    );
    assert!(
        shown.contains("would send 0 reminder(s) in 0 email(s)"),
        "{shown}"
    );
    let again = cli(&b, &["run", "--once", "--at", THURSDAY]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let out = text(&again);
    assert!(out.contains("0 left to retry"), "{out}");
    assert!(
        out.contains("2 email(s) being sent by node node-a"),
        "{out}"
    );
    assert_eq!(server.received().len(), 4, "node-a's emails left to node-a");
    // node-a died: once its lease has passed, this node sends them, under their Message-IDs.
    c.psql(
        &db,
        "UPDATE deliveries SET lease_until = now() - interval '1 second' WHERE owner = 'node-a'",
    );
    let takeover = cli(&b, &["run", "--once", "--at", THURSDAY]);
    assert_eq!(takeover.status.code(), Some(0), "{}", text(&takeover));
    assert!(
        !text(&takeover).contains("being sent by node"),
        "{}",
        text(&takeover)
    );
    let dups = assert_delivered_once(c, &db, &server, 4);
    assert_eq!(dups, 2);
    let ids = count_ids(&server.received());
    for id in &held {
        assert_eq!(ids[id], 2, "{id} re-sent under its own Message-ID");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_takes_over_another_nodes_emails_when_their_lease_expires_without_spinning() {
    let Some(c) = cluster() else { return };
    let db = c.database("daemon_takeover");
    let server = SmtpServer::start().await;
    let yaml = config_yaml(server.port(), 2, 2, &db.url(), "10m");
    let b = Node::new("node-b", &yaml);
    let first = cli(&b, &["run", "--once", "--at", THURSDAY]);
    assert!(first.status.success(), "{}", text(&first));
    let sweeps = |c: &pg::Cluster| -> usize {
        c.psql(&db, "SELECT count(*) FROM sweeps WHERE node = 'node-b'")
            .parse()
            .unwrap()
    };
    let before = sweeps(c);
    // node-a holds two emails for 3 more seconds, then is gone. The next scheduled sweep
    // is a day away: only the lease's expiry can wake node-b for them.
    let held = hold(c, &db, "node-a", 2, "3 seconds");
    let started = Instant::now();
    let mut d = b.spawn("daemon", &["run"]);
    until("node-a's two emails taken over", || {
        server.received().len() >= 6
    })
    .await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "sent before the lease expired: {took:?}"
    );
    until("the take-over recorded", || {
        c.psql(
            &db,
            "SELECT count(*) FROM deliveries WHERE status <> 'sent'",
        ) == "0"
    })
    .await;
    let dups = assert_delivered_once(c, &db, &server, 4);
    assert_eq!(dups, 2);
    let ids = count_ids(&server.received());
    for id in &held {
        assert_eq!(ids[id], 2, "{id} re-sent under its own Message-ID");
    }
    // The start-up sweep and the take-over: no sweeping in a loop while the lease held,
    // nor after.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let swept = sweeps(c) - before;
    assert!((2..=3).contains(&swept), "{swept} sweeps: {}", d.tail());
    assert!(d.running(), "{}", d.tail());
    d.signal("TERM");
    assert!(d.wait_exit(WAIT).await.success(), "{}", d.tail());
}

/// `yaml` with the SQLite ledger `ledger.db` instead of PostgreSQL.
fn on_sqlite(yaml: &str) -> String {
    let cut = yaml.find("ledger:\n").expect("a ledger section");
    format!("{}ledger:\n  path: ledger.db\n", &yaml[..cut])
}

fn cli(node: &Node, args: &[&str]) -> std::process::Output {
    let out = nhacviec()
        .args(args)
        .arg("-c")
        .arg(node.cfg())
        .env("NHACVIEC_NODE", &node.name)
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

fn text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_ledger_migrates_into_postgresql_once_and_log_and_status_read_it_there() {
    let Some(c) = cluster() else { return };
    let db = c.database("migrate");
    let server = SmtpServer::start().await;
    let yaml = config_yaml(server.port(), 3, 4, &db.url(), "10m");
    // One host on SQLite sends the day's 12 emails.
    let node = Node::new("node-a", &on_sqlite(&yaml));
    let once = cli(&node, &["run", "--once", "--at", THURSDAY]);
    assert!(once.status.success(), "{}", text(&once));
    assert_eq!(server.received().len(), 12);
    let status = cli(&node, &["ledger", "status"]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(text(&status).contains("SQLite ledger"), "{}", text(&status));
    assert!(
        text(&status).contains("deliveries: sent 12"),
        "{}",
        text(&status)
    );
    let before = cli(&node, &["log", "--format", "json"]);
    assert!(before.status.success(), "{}", text(&before));

    let url = db.url();
    let pw = node.dir.path().join("ledger.pw").display().to_string();
    let args = [
        "ledger",
        "migrate",
        "--to",
        &url,
        "--password-file",
        &pw,
        "--sslmode",
        "disable",
    ];
    let migrated = cli(&node, &args);
    assert!(migrated.status.success(), "{}", text(&migrated));
    assert!(
        text(&migrated).contains("12 deliveries, 1 sweeps, 0 completions"),
        "{}",
        text(&migrated)
    );
    // Twice would mix two histories: refused, nothing changed.
    let again = cli(&node, &args);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(
        text(&again).contains("already holds data"),
        "{}",
        text(&again)
    );
    assert_eq!(c.psql(&db, "SELECT count(*) FROM deliveries"), "12");

    // The node now on PostgreSQL: `log` shows the same history, and a sweep sends nothing
    // again.
    std::fs::write(node.cfg(), &yaml).unwrap();
    let after = cli(&node, &["log", "--format", "json"]);
    assert!(after.status.success(), "{}", text(&after));
    let ids = |o: &std::process::Output| -> BTreeSet<String> {
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
        rows.iter()
            .map(|r| format!("{} {}", r["message_id"], r["status"]))
            .collect()
    };
    assert_eq!(ids(&after), ids(&before));
    assert_eq!(ids(&after).len(), 12);
    let once = cli(&node, &["run", "--once", "--at", THURSDAY]);
    assert!(once.status.success(), "{}", text(&once));
    assert_eq!(
        server.received().len(),
        12,
        "nothing sent twice after the move"
    );
    let status = cli(&node, &["ledger", "status"]);
    let st = text(&status);
    assert!(status.status.success(), "{st}");
    assert!(st.contains(&format!("PostgreSQL ledger {url}")), "{st}");
    assert!(st.contains("node node-a: last sweep at"), "{st}");
    assert!(st.contains("holding 0 reminder(s)"), "{st}");
    assert!(st.contains("deliveries: sent 12"), "{st}");
    // SQLite-only commands say what to use instead.
    let backup = cli(&node, &["ledger", "backup", "copy.db"]);
    assert_eq!(backup.status.code(), Some(1));
    assert!(
        text(&backup).contains("`ledger backup` works with a SQLite ledger only"),
        "{}",
        text(&backup)
    );
}

/// The nudges `plan --at THURSDAY` lists.
fn planned(node: &Node) -> usize {
    let out = cli(node, &["plan", "--at", THURSDAY, "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["nudges"].as_array().expect("nudges").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_plan_and_dry_run_work_on_the_postgresql_ledger_as_run_sees_it() {
    let Some(c) = cluster() else { return };
    let db = c.database("completions_plan");
    let server = SmtpServer::start().await;
    // 3 offices × 4 tasks: 12 emails on Thursday, 12 more on the deadline.
    let yaml = config_yaml(server.port(), 3, 4, &db.url(), "10m");
    let node = Node::new("node-a", &yaml);
    let dry = |node: &Node| {
        let out = cli(node, &["run", "--dry-run", "--at", THURSDAY]);
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    assert!(dry(&node).contains("would send 12 reminder(s) in 12 email(s)"));
    // Thursday's, the deadline's and the first overdue ones: as many for each task.
    let fresh = planned(&node);
    assert_eq!(fresh % 4, 0);
    assert!(fresh >= 24, "{fresh}");

    // IV.1 is done: written to PostgreSQL (never a SQLite file), and every node plans with it.
    let done = cli(
        &node,
        &["done", "IV.1", "--on", "2024-01-24", "--note", "đã nộp"],
    );
    assert!(done.status.success(), "{}", text(&done));
    assert_eq!(
        c.psql(&db, "SELECT task, source, note, undone FROM completions"),
        "IV.1|cli|đã nộp|f"
    );
    assert!(
        !node.dir.path().join("nhacviec.db").exists(),
        "no stray SQLite file"
    );
    assert!(dry(&node).contains("would send 9 reminder(s) in 9 email(s)"));
    assert_eq!(planned(&node), fresh / 4 * 3, "IV.1's nudges are gone");
    // Withdrawn, then done again: the trail keeps every row, the newest stands.
    let undone = cli(&node, &["undone", "IV.1"]);
    assert!(undone.status.success(), "{}", text(&undone));
    assert!(dry(&node).contains("would send 12 reminder(s)"));
    let again = cli(&node, &["undone", "IV.1"]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "nothing left to undo: {}",
        text(&again)
    );
    assert!(
        cli(&node, &["done", "IV.1", "--on", "2024-01-24"])
            .status
            .success()
    );
    assert_eq!(c.psql(&db, "SELECT count(*) FROM completions"), "3");

    // What `plan` and the dry run show is what `run` sends; then nothing is left to send.
    let once = cli(&node, &["run", "--once", "--at", THURSDAY]);
    assert!(once.status.success(), "{}", text(&once));
    assert_eq!(server.received().len(), 9);
    assert!(dry(&node).contains("would send 0 reminder(s) in 0 email(s)"));
    assert_eq!(
        planned(&node),
        fresh / 4 * 3 - 9,
        "Thursday's nine are sent: the later nudges of IV.2–IV.4 are left"
    );
}

/// A daemon of node-a on `db` with its pages on a free loopback port, once it has sent
/// its two emails (IV.1 and IV.2 to p1): the SMTP server, the port, the node, the daemon.
async fn daemon_with_pages(db: &pg::Database) -> (SmtpServer, u16, Node, Daemon) {
    let server = SmtpServer::start().await;
    let web = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yaml = config_yaml(server.port(), 1, 2, &db.url(), "10m")
        + &format!("web:\n  listen: 127.0.0.1:{web}\n  base_url: http://127.0.0.1:{web}/\n");
    let node = Node::new("node-a", &yaml);
    let d = node.spawn("daemon", &["run"]);
    until("both emails", || server.received().len() >= 2).await;
    (server, web, node, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_link_records_its_completion_in_postgresql_and_the_pages_read_it() {
    let Some(c) = cluster() else { return };
    let db = c.database("web_links");
    let (server, web, node, mut d) = daemon_with_pages(&db).await;
    // IV.1's email carries the link that confirms it.
    let link = server
        .received()
        .iter()
        .find_map(|r| {
            let m = MessageParser::default().parse(&r.data)?;
            let body = m.body_text(0)?.to_string();
            if !m.subject()?.contains("Nhiệm vụ thử số 1 ") {
                return None;
            }
            let at = body.find("Xác nhận đã hoàn thành: ")? + "Xác nhận đã hoàn thành: ".len();
            Some(body[at..].split_whitespace().next()?.to_string())
        })
        .expect("a confirmation link in IV.1's email");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let page = |r: Result<ureq::http::Response<ureq::Body>, ureq::Error>| {
        let mut r = r.expect("an answer");
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    let (code, body) = page(agent.get(&link).call());
    assert_eq!(code, 200, "{body}");
    let (code, body) = page(agent.post(&link).send_form([("note", "đã nộp")]));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        c.psql(&db, "SELECT task, office, source, note FROM completions"),
        "IV.1|p1|link|đã nộp"
    );
    // Any node's pages read it there, as do `/metrics` and the log page.
    let base = format!("http://127.0.0.1:{web}");
    let (code, metrics) = page(agent.get(format!("{base}/metrics")).call());
    assert_eq!(code, 200, "{metrics}");
    assert!(
        metrics.contains("nhacviec_ledger_rows{table=\"completions\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nhacviec_ledger_rows{table=\"deliveries\"} 2"),
        "{metrics}"
    );
    let (code, log) = page(agent.get(format!("{base}/log")).call());
    assert_eq!(code, 200, "{log}");
    assert!(log.contains("đã nộp"), "{log}");
    assert!(
        !node.dir.path().join("nhacviec.db").exists(),
        "no stray SQLite file"
    );
    assert!(d.running(), "{}", d.tail());
    d.signal("TERM");
    assert!(d.wait_exit(WAIT).await.success(), "{}", d.tail());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_connection_is_encrypted_and_verified_as_sslmode_asks() {
    let Some(c) = cluster() else { return };
    // A database the server serves over TLS only (`hostssl`; `hostnossl … reject`).
    let db = c.tls_only_database();
    let server = SmtpServer::start().await;
    let plain = config_yaml(server.port(), 2, 2, &db.url(), "10m");
    let with = |mode: &str, ca: bool| {
        let ca = if ca {
            format!("  ca_file: {}\n", c.ca_file().display())
        } else {
            String::new()
        };
        plain.replace("  sslmode: disable\n", &format!("  sslmode: {mode}\n{ca}"))
    };

    // verify-full with the CA that signed the server's certificate for 127.0.0.1: the sweep
    // runs over TLS (the only way in) and records what it sent.
    let verified = Node::new("node-a", &with("verify-full", true));
    let mut d = verified.spawn("once", &["run", "--once"]);
    assert_eq!(d.exit_code(WAIT).await, 0, "{}", d.tail());
    let sent = server.received().len();
    assert!(sent > 0, "{}", d.tail());
    let rows = c.psql(
        &db,
        "SELECT count(DISTINCT message_id) FROM deliveries WHERE status = 'sent'",
    );
    assert_eq!(rows, sent.to_string());

    // require: encrypted, the certificate not checked (libpq's meaning) — it connects too.
    let required = Node::new("node-b", &with("require", false));
    let out = cli(&required, &["ledger", "status"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("node-a"), "{}", text(&out));

    // verify-full without the CA: the public roots do not know the throwaway CA.
    let untrusted = Node::new("node-c", &with("verify-full", false));
    let out = cli(&untrusted, &["ledger", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).to_lowercase().contains("certificate"),
        "{}",
        text(&out)
    );

    // disable: the server refuses a connection without TLS, and the error says why.
    let unencrypted = Node::new("node-d", &plain);
    let out = cli(&unencrypted, &["ledger", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no encryption"), "{}", text(&out));
    assert!(
        text(&out).contains("set `sslmode: verify-full`"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(pg::PASSWORD), "{}", text(&out));
}

/// The pages while the database is down: each answers at once, in Vietnamese, with 503 and
/// what is wrong (never a hang, never an empty page), `/healthz` still answers, the daemon
/// stays up, and the pages read the ledger again once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_say_so_while_the_database_is_down_and_recover_after() {
    if cluster().is_none() {
        return;
    }
    // A cluster of its own: stopping the shared one would stop the other tests' too.
    let c = pg::Cluster::start().unwrap_or_else(|e| panic!("a cluster of its own: {e}"));
    let db = c.database("pages_down");
    let (_server, web, _node, mut d) = daemon_with_pages(&db).await;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let base = format!("http://127.0.0.1:{web}");
    let get = |path: &str| {
        let started = Instant::now();
        let mut r = agent
            .get(format!("{base}{path}"))
            .call()
            .unwrap_or_else(|e| panic!("{path}: no answer: {e}"));
        let body = r.body_mut().read_to_string().unwrap();
        (r.status().as_u16(), body, started.elapsed())
    };
    for path in ["/", "/log", "/office/p1", "/metrics"] {
        let (code, body, _) = get(path);
        assert_eq!(code, 200, "{path}: {body}");
    }

    c.stop();
    for path in ["/", "/log", "/office/p1"] {
        let (code, body, took) = get(path);
        assert_eq!(code, 503, "{path}: {body}");
        assert!(body.contains("sổ gửi"), "{path}: {body}");
        assert!(took < Duration::from_secs(20), "{path} took {took:?}");
    }
    let (code, body, _) = get("/metrics");
    assert_eq!(code, 503, "/metrics: {body}");
    let (code, body, _) = get("/healthz");
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    assert!(d.running(), "{}", d.tail());

    c.start_again();
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, body, _) = get("/log");
        if code == 200 {
            assert!(body.contains("p1"), "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/log after the restart: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    d.signal("TERM");
    assert!(d.wait_exit(WAIT).await.success(), "{}", d.tail());
}
