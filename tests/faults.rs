//! Harsh faults, provoked against the real binary with real signals: the SMTP server going
//! away in the middle of a sweep, a server answering 421/451/452 at every stage, 550 for one
//! recipient among several, a server that stalls in the middle of DATA, ten SIGKILLs at
//! random moments of a 1,000-nudge sweep, the ledger read-only or its disk full, and a config
//! replaced with garbage before a reload.
//!
//! After each: nothing is lost (every nudge due is recorded `sent`, or `failed` with the
//! server's reason), a message arrives more than once only when it was in flight at a fault
//! and then always under the same Message-ID, and `PRAGMA integrity_check` says `ok`.
//!
//! The basic cases (one 4xx, one 5xx, server down at start, one kill) live in
//! `tests/delivery.rs`; these go further.

mod support;

use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::daemon::{Daemon, Spawn, tail};
use support::smtp::{Received, SmtpServer, Stage};

/// A moment when every generated task is due: Friday 14/06/2024, at the 08:00 sweep.
const AT: &str = "2024-06-14T08:00";

// ---------------------------------------------------------------------------------------
// A generated plan

#[derive(Clone)]
struct Plan {
    tasks: usize,
    /// Task ids start at this number (a second plan can add tasks to the first).
    first: usize,
    offices: usize,
    port: u16,
    ledger: PathBuf,
    timeout: &'static str,
    pool: u32,
    attempts: u32,
    admin: bool,
    /// Office `dv-000` gets a second address, `phu.dv-000@…`.
    two_addresses: bool,
}

impl Plan {
    fn new(tasks: usize, port: u16, ledger: &Path) -> Plan {
        Plan {
            tasks,
            first: 0,
            offices: 50,
            port,
            ledger: ledger.to_path_buf(),
            timeout: "2s",
            pool: 4,
            attempts: 30,
            admin: false,
            two_addresses: false,
        }
    }

    /// One email per task, each due on 14/06/2024 and nowhere else.
    fn yaml(&self) -> String {
        let mut s = String::from(
            "plan:\n  title: Kế hoạch thử lỗi\n  reference: Quyết định số 1/QĐ-TEST\n  year: 2024\n",
        );
        s.push_str("offices:\n");
        for o in 0..self.offices {
            s.push_str(&format!("  dv-{o:03}:\n    name: Phòng số {o}\n"));
            if o == 0 && self.two_addresses {
                s.push_str("    email: [dv-000@vpubnd.example, phu.dv-000@vpubnd.example]\n");
            } else {
                s.push_str(&format!("    email: dv-{o:03}@vpubnd.example\n"));
            }
        }
        s.push_str(
            "reminders:\n  default:\n    before: []\n    on_day: true\n    overdue_every: never\n    escalate: {}\n    cooperating: none\n",
        );
        s.push_str("tasks:\n");
        for t in self.first..self.first + self.tasks {
            s.push_str(&format!(
                "  - id: T.{t}\n    title: Nhiệm vụ thử số {t}\n    deadline: 14/06/2024\n    lead: dv-{:03}\n",
                t % self.offices
            ));
        }
        s.push_str("mail:\n  from: Nhắc việc <nhacviec@vpubnd.example>\n  grouping: per-nudge\n");
        if self.admin {
            s.push_str("  admin: quantri@vpubnd.example\n");
        }
        s.push_str(&format!(
            "  transport:\n    smtp:\n      host: 127.0.0.1\n      port: {}\n      security: none\n      allow_plaintext: true\n      timeout: {}\n      pool_size: {}\n",
            self.port, self.timeout, self.pool
        ));
        s.push_str(&format!(
            "  retry:\n    attempts: {}\n    initial: 1s\n    max: 2s\n",
            self.attempts
        ));
        s.push_str(&format!("ledger:\n  path: {}\n", self.ledger.display()));
        s
    }

    fn write(&self, path: &Path) {
        fs::write(path, self.yaml()).expect("write config");
    }
}

// ---------------------------------------------------------------------------------------
// The daemon as a child process

/// Starts `nhacviec run --at AT` (with `--once` if asked) on `config`, adding its stderr to
/// `log`: one log across the restarts of a test.
fn start(config: &Path, once: bool, log: &Path) -> Daemon {
    let mut args = vec!["run", "-c", config.to_str().unwrap(), "--at", AT];
    if once {
        args.push("--once");
    }
    Spawn::new(log)
        .args(args)
        .env("NHACVIEC_LOG", "info")
        .append()
        .start()
}

/// Waits until the server holds `n` messages; on time-out, panics with the daemon's log.
async fn wait_received(server: &SmtpServer, n: usize, within: Duration, d: &Daemon) {
    let end = Instant::now() + within;
    while server.received().len() < n {
        assert!(
            Instant::now() < end,
            "expected {n} messages, got {}; log:\n{}",
            server.received().len(),
            d.tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

// ---------------------------------------------------------------------------------------
// What the ledger and the server hold

#[derive(Debug, Clone)]
struct Row {
    task: String,
    status: String,
    message_id: String,
    attempts: i64,
    reply: String,
}

fn ledger_rows(path: &Path) -> Vec<Row> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open ledger");
    let mut stmt = conn
        .prepare("SELECT task, status, message_id, attempts, coalesce(reply, '') FROM deliveries ORDER BY id")
        .expect("prepare");
    stmt.query_map([], |r| {
        Ok(Row {
            task: r.get(0)?,
            status: r.get(1)?,
            message_id: r.get(2)?,
            attempts: r.get(3)?,
            reply: r.get(4)?,
        })
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

fn integrity(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).expect("open ledger");
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check")
}

fn message_id(m: &Received) -> String {
    let text = String::from_utf8_lossy(&m.data);
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("message-id")
                .then(|| v.trim().trim_matches(['<', '>']).to_string())
        })
        .unwrap_or_default()
}

fn bare(id: &str) -> String {
    id.trim().trim_matches(['<', '>']).to_string()
}

/// The checks every fault ends with. `expect_sent` tasks must be `sent` exactly once in the
/// ledger; every message the server holds must be one the ledger recorded (by Message-ID);
/// the copies of a message are at most `max_dups` in all; the ledger is intact.
/// Returns the received messages by Message-ID.
fn assert_consistent(
    ledger: &Path,
    server: &[Received],
    expect_sent: &BTreeSet<String>,
    max_dups: usize,
) -> BTreeMap<String, usize> {
    assert_eq!(integrity(ledger), "ok");
    let rows = ledger_rows(ledger);
    let sent: BTreeMap<&str, &Row> = rows
        .iter()
        .filter(|r| r.status == "sent")
        .map(|r| (r.task.as_str(), r))
        .collect();
    let sent_tasks: BTreeSet<String> = sent.keys().map(|s| s.to_string()).collect();
    let missing: Vec<&String> = expect_sent.difference(&sent_tasks).collect();
    assert!(missing.is_empty(), "not recorded as sent: {missing:?}");
    let unfinished: Vec<&Row> = rows
        .iter()
        .filter(|r| r.status == "pending" || r.status == "retrying")
        .collect();
    assert!(unfinished.is_empty(), "still in flight: {unfinished:?}");

    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    for m in server {
        *copies.entry(message_id(m)).or_default() += 1;
    }
    let ledger_ids: BTreeSet<String> = rows.iter().map(|r| bare(&r.message_id)).collect();
    for id in copies.keys() {
        assert!(
            ledger_ids.contains(id),
            "the server got Message-ID {id}, which the ledger never recorded: a send the ledger forgot"
        );
    }
    for r in sent.values() {
        assert!(
            copies.contains_key(&bare(&r.message_id)),
            "{} is recorded sent as {} but the server never got it",
            r.task,
            r.message_id
        );
    }
    let dups: usize = copies.values().map(|n| n - 1).sum();
    assert!(
        dups <= max_dups,
        "{dups} duplicate copies (at most {max_dups} expected: the sends in flight at the faults)"
    );
    // One copy of a Message-ID = one email: the same recipients each time.
    let mut to_of: BTreeMap<String, &Vec<String>> = BTreeMap::new();
    for m in server {
        let id = message_id(m);
        if let Some(prev) = to_of.insert(id.clone(), &m.to) {
            assert_eq!(prev, &m.to, "copies of {id} went to different recipients");
        }
    }
    copies
}

fn tasks(range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(|t| format!("T.{t}")).collect()
}

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    ledger: PathBuf,
    log: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    Setup {
        config: dir.path().join("plan.yaml"),
        ledger: dir.path().join("ledger.db"),
        log: dir.path().join("nhacviec.log"),
        dir,
    }
}

// ---------------------------------------------------------------------------------------
// The faults

/// The server goes away after some 60 of 300 emails, stays away for a few seconds (the
/// sends in flight die with their connections, the next ones are refused), and comes back
/// on the same port. The same `run --once` finishes the sweep through its retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_dies_in_the_middle_of_a_sweep_and_comes_back() {
    let s = setup();
    let mut server = SmtpServer::start().await;
    let plan = Plan::new(300, server.port(), &s.ledger);
    plan.write(&s.config);

    let mut d = start(&s.config, true, &s.log);
    server.wait_for(60, Duration::from_secs(60)).await;
    server.stop().await;
    let at_stop = server.received().len();
    d.wait_log("sẽ thử lại", 1, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(d.running(), "the sweep gave up while the server was away");
    server.restart().await;
    assert_eq!(
        d.exit_code(Duration::from_secs(120)).await,
        0,
        "{}",
        tail(&s.log)
    );

    assert!(
        at_stop < 300,
        "the server stopped after the sweep had ended"
    );
    let copies = assert_consistent(
        &s.ledger,
        &server.received(),
        &tasks(0..300),
        plan.pool as usize,
    );
    assert_eq!(copies.len(), 300);
    let rows = ledger_rows(&s.ledger);
    assert!(
        rows.iter().any(|r| r.attempts > 1),
        "no row records a failed attempt while the server was down"
    );
}

/// 421, 451 and 452 at MAIL, RCPT and DATA, for several messages of one sweep; then the
/// server behaves. Every email arrives, under the Message-ID it was first recorded with, and
/// the ledger counts the attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_refusals_at_every_stage_then_acceptance() {
    let s = setup();
    let server = SmtpServer::start().await;
    server.fail_next(Stage::Mail, 451, "4.3.0 mailbox busy, try later", 4);
    server.fail_next(Stage::Rcpt, 452, "4.5.3 too many recipients for now", 3);
    server.fail_next(Stage::Data, 421, "4.3.2 service shutting down", 3);
    let plan = Plan::new(40, server.port(), &s.ledger);
    plan.write(&s.config);

    let mut d = start(&s.config, true, &s.log);
    assert_eq!(
        d.exit_code(Duration::from_secs(120)).await,
        0,
        "{}",
        tail(&s.log)
    );
    // A refusal after DATA (421 there) means the server kept nothing: no duplicates at all.
    let copies = assert_consistent(&s.ledger, &server.received(), &tasks(0..40), 0);
    assert_eq!(copies.len(), 40);
    let retried: Vec<Row> = ledger_rows(&s.ledger)
        .into_iter()
        .filter(|r| r.attempts > 1)
        .collect();
    assert!(
        retried.len() >= 10,
        "only {} rows were retried",
        retried.len()
    );
    assert!(
        retried.iter().all(|r| r.reply.starts_with("250")),
        "{retried:?}"
    );
    let log = d.log_text();
    for code in ["451", "452", "421"] {
        assert!(log.contains(code), "the log does not name the {code} reply");
    }
}

/// One office has two addresses and the server refuses one of them with 550. The email
/// still goes to the other address: the office's rows are `sent`, with the refused address
/// and the server's words in their reply; the admin is told which address was refused; the
/// other offices' emails go out; a second run sends nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refused_recipient_among_several() {
    let s = setup();
    let server = SmtpServer::start().await;
    server.reject_recipient("phu.dv-000@vpubnd.example");
    let mut plan = Plan::new(10, server.port(), &s.ledger);
    plan.offices = 5;
    plan.admin = true;
    plan.two_addresses = true;
    plan.write(&s.config);

    let mut d = start(&s.config, true, &s.log);
    // 0: every reminder reached its office (at one of its addresses).
    assert_eq!(
        d.exit_code(Duration::from_secs(60)).await,
        0,
        "{}",
        tail(&s.log)
    );
    let rows = ledger_rows(&s.ledger);
    assert!(rows.iter().all(|r| r.status == "sent"), "{rows:?}");
    // dv-000 leads T.0 and T.5.
    let noted: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r.reply.contains("<phu.dv-000@vpubnd.example> refused: 550"))
        .map(|r| r.task.as_str())
        .collect();
    assert_eq!(noted, BTreeSet::from(["T.0", "T.5"]), "{rows:?}");
    let got = server.received();
    let to_admin: Vec<&Received> = got
        .iter()
        .filter(|m| m.to == ["quantri@vpubnd.example"])
        .collect();
    assert_eq!(
        to_admin.len(),
        2,
        "the admin hears once per email with a refusal"
    );
    for r in rows.iter().filter(|r| r.task == "T.0" || r.task == "T.5") {
        let id = bare(&r.message_id);
        assert!(
            to_admin.iter().any(|m| {
                let text = String::from_utf8_lossy(&m.data);
                text.contains(&id) && text.contains("phu.dv-000@vpubnd.example")
            }),
            "no admin report names {id} and the refused address"
        );
    }
    let reminders: Vec<Received> = got
        .iter()
        .filter(|m| m.to != ["quantri@vpubnd.example"])
        .cloned()
        .collect();
    assert!(
        reminders
            .iter()
            .all(|m| !m.to.iter().any(|a| a == "phu.dv-000@vpubnd.example")),
        "the refused address is in no accepted envelope"
    );
    let copies = assert_consistent(&s.ledger, &reminders, &tasks(0..10), 0);
    assert_eq!(copies.len(), 10);

    // A second run: nothing goes out again.
    let before = server.received().len();
    let mut again = start(&s.config, true, &s.log);
    assert_eq!(again.exit_code(Duration::from_secs(60)).await, 0);
    assert_eq!(server.received().len(), before);
}

/// The server takes the content of one email and then says nothing for longer than the
/// send may take. The send times out, the connection is dropped, and the email is sent again
/// under the same Message-ID (the stalled copy may arrive too: it was in flight).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stalling_in_the_middle_of_data() {
    let s = setup();
    let server = SmtpServer::start().await;
    server.stall_data(Duration::from_secs(6));
    let mut plan = Plan::new(12, server.port(), &s.ledger);
    plan.timeout = "1s"; // the whole exchange is bounded at twice this
    plan.pool = 2;
    plan.write(&s.config);

    let mut d = start(&s.config, true, &s.log);
    assert_eq!(
        d.exit_code(Duration::from_secs(60)).await,
        0,
        "{}",
        tail(&s.log)
    );
    // Recorded as an unknown outcome (the content went out), never as a connection failure.
    let log = d.log_text();
    assert!(
        log.contains("outcome unknown: the server did not answer after the message was sent"),
        "{}",
        tail(&s.log)
    );
    assert!(!log.contains("cannot connect"), "{}", tail(&s.log));
    let rows = ledger_rows(&s.ledger);
    let stalled: Vec<&Row> = rows.iter().filter(|r| r.attempts > 1).collect();
    assert_eq!(stalled.len(), 1, "{rows:?}");
    // Wait for the stalled copy to land, if the server still takes it.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let copies = assert_consistent(&s.ledger, &server.received(), &tasks(0..12), 1);
    assert_eq!(copies.len(), 12);
}

/// 1,000 emails; the daemon is killed with SIGKILL ten times at random moments (a few of
/// them before it has sent anything) and started again each time. In the end every email
/// is recorded sent, the server holds each Message-ID the ledger recorded, and duplicates
/// are at most the sends in flight at the kills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_sigkills_during_a_thousand_nudge_sweep() {
    let s = setup();
    let server = SmtpServer::start().await;
    let plan = Plan::new(1000, server.port(), &s.ledger);
    plan.write(&s.config);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6e6863);

    let mut kills = 0;
    let mut runs = 0;
    // The loop restarts the daemon until ten kills land: with the sweep broken (a daemon
    // that exits at once, sending nothing) it would restart it forever.
    let deadline = Instant::now() + Duration::from_secs(120);
    while kills < 10 {
        assert!(
            Instant::now() < deadline,
            "{kills} kills in {runs} runs after 120 s: {}",
            tail(&s.log)
        );
        runs += 1;
        let mut d = start(&s.config, true, &s.log);
        let base = server.received().len();
        if kills % 4 == 0 {
            // Early: while it opens the ledger, plans, or has just started sending.
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..150))).await;
        } else {
            let left = 1000 - base;
            let target = base + rng.random_range(1..=(left / 3).max(1));
            let end = Instant::now() + Duration::from_secs(60);
            while server.received().len() < target && d.running() && Instant::now() < end {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        if !d.running() {
            // It finished before the kill: start over with fewer left.
            assert_eq!(
                d.exit_code(Duration::from_secs(1)).await,
                0,
                "{}",
                tail(&s.log)
            );
            if server.received().len() >= 1000 {
                break;
            }
            continue;
        }
        d.kill_hard();
        kills += 1;
        assert_eq!(integrity(&s.ledger), "ok", "after kill {kills}");
    }
    let mut last = start(&s.config, true, &s.log);
    assert_eq!(
        last.exit_code(Duration::from_secs(120)).await,
        0,
        "{}",
        tail(&s.log)
    );
    assert!(kills >= 8, "only {kills} kills landed in {runs} runs");
    let copies = assert_consistent(
        &s.ledger,
        &server.received(),
        &tasks(0..1000),
        // Per kill: the sends in flight, plus the outcomes not yet written (the sweep
        // records them in batches of up to 64); each is re-sent under its Message-ID.
        kills * (64 + plan.pool as usize),
    );
    assert_eq!(copies.len(), 1000);
}

/// A filesystem of our own (tmpfs), for the ledger: so that it can be made read-only or
/// filled up. Unmounted when dropped. Needs root (CAP_SYS_ADMIN), which the project's
/// machines and CI have; elsewhere the tests that use it are skipped (see
/// `support::skip`), and under CI they fail.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            support::skip::skip_or_fail("cannot mount a tmpfs here (not root?)");
            return None;
        }
        Some(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    fn remount(&self, mode: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount {mode}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// The ledger's filesystem is read-only when the daemon starts: it says so plainly, names
/// the file, and exits once (no loop, no email sent). Made writable again, the same command
/// sends everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_on_a_read_only_filesystem() {
    let s = setup();
    let Some(fs_) = Tmpfs::mount(&s.dir.path().join("state"), "8m") else {
        return;
    };
    let ledger = fs_.dir.join("ledger.db");
    let server = SmtpServer::start().await;
    let plan = Plan::new(20, server.port(), &ledger);
    plan.write(&s.config);
    // Create the ledger (and its schema) with a first run at a moment when nothing is due.
    let out = Command::new(env!("CARGO_BIN_EXE_nhacviec"))
        .env("NHACVIEC_LANG", "en")
        .args([
            "run",
            "--once",
            "-c",
            s.config.to_str().unwrap(),
            "--at",
            "2024-01-02T08:00",
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs_.remount("ro");

    for once in [true, false] {
        let started = Instant::now();
        let mut d = start(&s.config, once, &s.log);
        assert_eq!(
            d.exit_code(Duration::from_secs(30)).await,
            1,
            "a ledger failure exits 1 (README, exit codes)"
        );
        assert!(started.elapsed() < Duration::from_secs(30));
        let log = d.log_text();
        assert!(log.contains("read-only"), "{log}");
        assert!(log.contains(ledger.to_str().unwrap()), "{log}");
    }
    assert!(server.received().is_empty());

    fs_.remount("rw");
    let mut d = start(&s.config, true, &s.log);
    assert_eq!(
        d.exit_code(Duration::from_secs(60)).await,
        0,
        "{}",
        tail(&s.log)
    );
    assert_consistent(&ledger, &server.received(), &tasks(0..20), 0);
}

/// The ledger's disk fills up while the daemon runs. A sweep that cannot record fails with
/// a message that says the disk is full; the daemon keeps running, does not spin, and sends
/// nothing it could not record first. Space freed, it tries again by itself and sends what
/// was owed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_disk_full_while_running() {
    let s = setup();
    let Some(fs_) = Tmpfs::mount(&s.dir.path().join("state"), "16m") else {
        return;
    };
    let ledger = fs_.dir.join("ledger.db");
    let server = SmtpServer::start().await;
    let mut plan = Plan::new(10, server.port(), &ledger);
    plan.write(&s.config);

    let mut d = start(&s.config, false, &s.log);
    server.wait_for(10, Duration::from_secs(60)).await;
    d.wait_log(", bỏ qua ", 1, Duration::from_secs(30)).await;

    // Fill the disk, then hand the daemon 300 more tasks.
    let filler = fs_.dir.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4k"])
        .arg(format!("of={}", filler.display()))
        .stderr(Stdio::null())
        .status();
    plan.tasks = 310;
    plan.write(&s.config);
    d.signal("HUP");
    d.wait_log(" thất bại: ", 1, Duration::from_secs(60)).await;
    let log = d.log_text();
    assert!(
        log.contains("full"),
        "the error does not say the disk is full:\n{}",
        tail(&s.log)
    );
    // Alive, and not in a tight loop of failing sweeps.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        d.running(),
        "the daemon died of a full disk:\n{}",
        tail(&s.log)
    );
    let failures = count(&d.log_text(), " thất bại: ");
    assert!(
        failures <= 3,
        "{failures} failed sweeps in a couple of seconds"
    );
    // Whatever the server got was recorded first (by Message-ID): checked below.

    // Space freed, the daemon tries again by itself (after `retry.max`, 2 s here).
    fs::remove_file(&filler).expect("free the space");
    wait_received(&server, 310, Duration::from_secs(120), &d).await;
    // Let the last rows be marked, then stop it gently.
    let end = Instant::now() + Duration::from_secs(30);
    while ledger_rows(&ledger).iter().any(|r| r.status == "pending") && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.signal("TERM");
    assert_eq!(d.exit_code(Duration::from_secs(30)).await, 0);
    assert_consistent(
        &ledger,
        &server.received(),
        &tasks(0..310),
        plan.pool as usize,
    );
}

/// The config is replaced with garbage (binary noise, a truncated file, an empty file, a
/// YAML whose references are broken) and the daemon told to reload each time: it refuses,
/// says why, keeps the old config and keeps running, and sends nothing twice. A good config
/// then reloads and its new task goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_config_on_reload_keeps_the_old_one() {
    let s = setup();
    let server = SmtpServer::start().await;
    let mut plan = Plan::new(5, server.port(), &s.ledger);
    plan.write(&s.config);
    let good = plan.yaml();

    let mut d = start(&s.config, false, &s.log);
    server.wait_for(5, Duration::from_secs(60)).await;
    d.wait_log(", bỏ qua ", 1, Duration::from_secs(30)).await;

    let mut noise = vec![0u8; 4096];
    rand::rngs::StdRng::seed_from_u64(7).fill(&mut noise[..]);
    let garbage: Vec<Vec<u8>> = vec![
        noise,
        good.as_bytes()[..good.len() / 2].to_vec(),
        Vec::new(),
        good.replace("lead: dv-001", "lead: khong-co").into_bytes(),
        b"tasks: [\n  - id: {{{\n".to_vec(),
    ];
    for (i, g) in garbage.iter().enumerate() {
        fs::write(&s.config, g).expect("write garbage");
        d.signal("HUP");
        let refused = i + 1;
        let end = Instant::now() + Duration::from_secs(30);
        while count(&d.log_text(), "reload refused") < refused {
            assert!(
                Instant::now() < end,
                "reload {refused} not refused:\n{}",
                tail(&s.log)
            );
            assert!(d.running(), "died on garbage config {i}:\n{}", tail(&s.log));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(d.running());
    }
    // Still on the old config: a sweep now sends nothing (all 5 already sent). Its summary
    // line is awaited in the log, so the assertion below is about a sweep that ran.
    d.signal("USR1");
    let log = d
        .wait_lines(
            &[", bỏ qua ", "trigger=\"SIGUSR1\""],
            1,
            Duration::from_secs(30),
        )
        .await;
    let line = log
        .lines()
        .find(|l| l.contains(", bỏ qua ") && l.contains("trigger=\"SIGUSR1\""))
        .expect("the line waited for");
    assert!(line.contains("sent=0"), "{line}");
    assert_eq!(server.received().len(), 5);

    plan.tasks = 6;
    plan.write(&s.config);
    d.signal("HUP");
    server.wait_for(6, Duration::from_secs(30)).await;
    d.signal("TERM");
    assert_eq!(d.exit_code(Duration::from_secs(30)).await, 0);
    let copies = assert_consistent(&s.ledger, &server.received(), &tasks(0..6), 0);
    assert_eq!(copies.len(), 6);
}
