//! The delivery issue's "Done when", end to end: the real `nhacviec` binary as a child
//! process, the test SMTP server (inside this process) over loopback, and a real SQLite
//! ledger in a temporary folder. Time is driven with `--at`; the clock then runs on at the
//! real pace, so retries take real (short) time.

mod support;

use mail_parser::{Address, MessageParser};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};
use support::daemon::{Daemon, Spawn, nhacviec};
use support::smtp::{Received, SmtpServer, Stage};

/// How long to wait for anything the daemon does: generous, only a failure waits this long.
const WAIT: Duration = Duration::from_secs(30);

/// Thursday 25/01/2024, a working day, three working days before the deadline 30/01/2024.
const THURSDAY: &str = "2024-01-25T08:00";

/// SMTP settings for most tests: give up on a silent server after 2 s.
const QUICK: &str = ", timeout: 2s";

const FROM: &str = "nhacviec@vpubnd.example";
const ADMIN: &str = "admin@vpubnd.example";

/// Three offices, two tasks. At [`THURSDAY`], with `digest` and `cooperating: cc`:
/// - to ttth, cc hctc: IV.1 (ttth, lead), IV.2 (ttth, lead), IV.1 (hctc, cooperating);
/// - to both addresses of kt: IV.2 (kt, lead).
const SMALL: &str = r#"
offices:
  hctc:
    name: Phòng Hành chính – Tổ chức
    email: hctc@vpubnd.example
  ttth:
    name: Trung tâm Tin học – Công báo
    email: ttth@vpubnd.example
  kt:
    name: Phòng Kinh tế
    email: [kt@vpubnd.example, "Phó phòng Kinh tế <pp.kt@vpubnd.example>"]
tasks:
  - id: IV.1
    section: IV
    title: Xây dựng kế hoạch cải cách hành chính năm 2024 của đơn vị
    product: Kế hoạch CCHC năm 2024 của Trung tâm
    deadline: 30/01/2024
    lead: ttth
    cooperating: hctc
  - id: IV.2
    section: IV
    title: Rà soát, đơn giản hóa thủ tục hành chính
    deadline: 30/01/2024
    lead: [kt, ttth]
"#;

/// The rest of every test config: plan, reminders, schedule, mail over SMTP to the test
/// server, quick retries, and the ledger next to the config.
fn config_yaml(port: u16, offices_and_tasks: &str, grouping: &str, smtp_extra: &str) -> String {
    format!(
        r#"plan:
  title: Kế hoạch cải cách hành chính năm 2024 của Văn phòng UBND tỉnh
  reference: Quyết định số 20/QĐ-VPUBND ngày 18/01/2024
  year: 2024
sections:
  IV: Tổ chức thực hiện
{offices_and_tasks}
reminders:
  default:
    before: [3wd]
    on_day: true
schedule:
  timezone: Asia/Ho_Chi_Minh
  sweeps: ["0 8 * * *"]
  window: "07:30-17:00"
mail:
  from: Nhắc việc – Văn phòng UBND tỉnh <{FROM}>
  reply_to: Phòng Hành chính – Tổ chức <hctc@vpubnd.example>
  admin: {ADMIN}
  grouping: {grouping}
  cooperating: cc
  transport:
    smtp: {{ host: 127.0.0.1, port: {port}, security: none, allow_plaintext: true{smtp_extra} }}
  retry: {{ attempts: 4, initial: 1s, max: 2s }}
ledger:
  path: ledger.db
"#
    )
}

/// `offices` offices, each the lead of each of `tasks` tasks: `offices × tasks` nudges at
/// [`THURSDAY`].
fn many(offices: usize, tasks: usize) -> String {
    let mut s = String::from("offices:\n");
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
    s
}

/// A temporary folder holding the config (and, once something ran, the ledger).
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    fn new(yaml: &str) -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("nhacviec.yaml");
        std::fs::write(&config, yaml).expect("write config");
        Setup { dir, config }
    }

    fn cfg(&self) -> &str {
        self.config.to_str().expect("utf-8 path")
    }

    /// Runs `nhacviec <args> -c <config>` to completion.
    fn run(&self, args: &[&str]) -> Output {
        let out = nhacviec()
            .args(args)
            .args(["-c", self.cfg()])
            .stdin(Stdio::null())
            .output()
            .expect("run nhacviec");
        eprintln!(
            "$ nhacviec {} -> {:?}\n{}{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Every ledger row, as `nhacviec log --format json` shows it; empty while there is no
    /// ledger yet.
    fn ledger(&self) -> Vec<Value> {
        if !self.dir.path().join("ledger.db").exists() {
            return Vec::new();
        }
        let out = nhacviec()
            .args(["log", "--format", "json", "-c", self.cfg()])
            .stdin(Stdio::null())
            .output()
            .expect("run nhacviec log");
        assert!(
            out.status.success(),
            "log failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
        })
    }

    /// [`Setup::ledger`] while a daemon may be creating it: `None` until it can be read
    /// (the file appears a moment before its schema does).
    fn poll_ledger(&self) -> Option<Vec<Value>> {
        let out = nhacviec()
            .args(["log", "--format", "json", "-c", self.cfg()])
            .stdin(Stdio::null())
            .output()
            .expect("run nhacviec log");
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).expect("json"))
    }

    /// Starts `nhacviec run --at <at>`, its output going to `<name>.log` in the folder.
    fn daemon(&self, name: &str, at: &str) -> Daemon {
        self.spawn(name, &["run", "--at", at])
    }

    /// Starts `nhacviec <args> -c <config>` in the background, its output going to
    /// `<name>.log` in the folder.
    fn spawn(&self, name: &str, args: &[&str]) -> Daemon {
        Spawn::new(&self.dir.path().join(format!("{name}.log")))
            .args(args)
            .args(["-c", self.cfg()])
            .stdout_to_log()
            .start()
    }
}

/// SIGTERM, then waits (at most [`WAIT`]) for the exit.
fn terminate(d: &mut Daemon) -> ExitStatus {
    d.signal("TERM");
    d.wait_exit_blocking(WAIT)
}

/// Polls `f` until it answers, for at most [`WAIT`].
fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(x) = f() {
            return x;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn field<'a>(row: &'a Value, k: &str) -> &'a str {
    row[k].as_str().unwrap_or_default()
}

/// `attempts`, a JSON number in `log --format json`.
fn attempts(row: &Value) -> u64 {
    row["attempts"].as_u64().expect("attempts is a number")
}

/// `<id@domain>` and `id@domain` alike, as `id@domain`.
fn bare(id: &str) -> String {
    id.trim().trim_matches(['<', '>']).to_string()
}

fn message_id(r: &Received) -> String {
    let m = MessageParser::default()
        .parse(&r.data)
        .expect("a parseable message");
    bare(m.message_id().expect("a Message-ID"))
}

fn addrs(a: Option<&Address>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address())
            .map(String::from)
            .collect()
    })
    .unwrap_or_default()
}

/// How many times each Message-ID occurs.
fn count_ids(msgs: &[Received]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in msgs {
        *m.entry(message_id(r)).or_insert(0) += 1;
    }
    m
}

/// The ledger's Message-IDs (bare), each with its rows.
fn by_message(rows: &[Value]) -> BTreeMap<String, Vec<&Value>> {
    let mut m: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for r in rows {
        m.entry(bare(field(r, "message_id"))).or_default().push(r);
    }
    m
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_delivers_every_due_nudge_once_and_records_its_message_id() {
    let server = SmtpServer::start().await;
    let s = Setup::new(&config_yaml(server.port(), SMALL, "digest", QUICK));

    let out = s.run(&["run", "--once", "--at", THURSDAY]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("sent 4 reminder(s) in 2 email(s); 0 failed"),
        "{}",
        stdout(&out)
    );

    let got = server.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    let rows = s.ledger();
    assert_eq!(rows.len(), 4, "{rows:#?}");
    for r in &rows {
        assert_eq!(field(r, "status"), "sent", "{r}");
        assert_eq!(attempts(r), 1, "{r}");
        assert_eq!(field(r, "kind"), "before-3wd", "{r}");
    }
    let keys: BTreeSet<(&str, &str)> = rows
        .iter()
        .map(|r| (field(r, "task"), field(r, "office")))
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            ("IV.1", "hctc"),
            ("IV.1", "ttth"),
            ("IV.2", "kt"),
            ("IV.2", "ttth")
        ])
    );
    let ledger_ids = by_message(&rows);
    assert_eq!(ledger_ids.len(), 2, "{ledger_ids:#?}");

    for r in &got {
        assert_eq!(r.from, FROM);
        let m = MessageParser::default().parse(&r.data).expect("parseable");
        let id = bare(m.message_id().expect("Message-ID"));
        let recorded = ledger_ids
            .get(&id)
            .unwrap_or_else(|| panic!("Message-ID {id} is not in the ledger: {rows:#?}"));
        // The ledger's recipients are To then Cc: exactly the envelope.
        for row in recorded {
            let recipients: Vec<&str> = field(row, "recipients")
                .split(", ")
                .map(|a| match a.split_once('<') {
                    Some((_, rest)) => rest.trim_end_matches('>'),
                    None => a,
                })
                .collect();
            assert_eq!(recipients, r.to, "{row}");
            assert!(field(row, "reply").starts_with("250 "), "{row}");
        }
        assert_eq!(addrs(m.from()), vec![FROM]);
        assert_eq!(
            m.from().and_then(|a| a.first()).and_then(|a| a.name()),
            Some("Nhắc việc – Văn phòng UBND tỉnh")
        );
        assert_eq!(addrs(m.reply_to()), vec!["hctc@vpubnd.example"]);
        assert!(
            m.date()
                .expect("Date")
                .to_rfc3339()
                .starts_with("2024-01-25T01:0"),
            "the Date header is the --at time: {:?}",
            m.date()
        );
        assert_eq!(m.text_body_count(), 1);
        assert_eq!(m.html_body_count(), 1);
        let text = m.body_text(0).expect("text part");
        let html = m.body_html(0).expect("html part");
        assert!(!html.contains("Content-Type"), "{html}");
        let subject = m.subject().expect("Subject");
        match addrs(m.to()).as_slice() {
            [to] if to == "ttth@vpubnd.example" => {
                assert_eq!(
                    subject,
                    "[Nhắc việc] 2 nhiệm vụ sắp đến hạn — Trung tâm Tin học – Công báo"
                );
                assert_eq!(addrs(m.cc()), vec!["hctc@vpubnd.example"]);
                assert_eq!(recorded.len(), 3, "{recorded:#?}");
                assert!(
                    text.starts_with("Kính gửi: Trung tâm Tin học – Công báo\r\n"),
                    "{text}"
                );
                assert!(html.contains("Kính gửi: <strong>Trung tâm Tin học – Công báo</strong>"));
                for part in [&text, &html] {
                    for want in [
                        "Nhiệm vụ IV.1",
                        "Nhiệm vụ IV.2",
                        "Xây dựng kế hoạch cải cách hành chính năm 2024 của đơn vị",
                        "Rà soát, đơn giản hóa thủ tục hành chính",
                        "Thứ Ba, 30/01/2024",
                        "còn 3 ngày làm việc",
                        "Phòng Hành chính – Tổ chức",
                    ] {
                        assert!(part.contains(want), "missing {want:?} in:\n{part}");
                    }
                }
            }
            [a, b] if a == "kt@vpubnd.example" && b == "pp.kt@vpubnd.example" => {
                assert_eq!(
                    subject,
                    "[Nhắc việc] Còn 3 ngày làm việc: Rà soát, đơn giản hóa thủ tục hành chính — hạn 30/01/2024"
                );
                assert!(addrs(m.cc()).is_empty());
                assert_eq!(recorded.len(), 1, "{recorded:#?}");
                assert!(text.starts_with("Kính gửi: Phòng Kinh tế\r\n"), "{text}");
                for part in [&text, &html] {
                    for want in ["Phòng Kinh tế", "Nhiệm vụ IV.2"] {
                        assert!(part.contains(want), "missing {want:?} in:\n{part}");
                    }
                    assert!(!part.contains("IV.1"), "{part}");
                }
            }
            other => panic!("unexpected To {other:?}"),
        }
    }

    // The same command again: the ledger knows everything, nothing new goes out.
    let again = s.run(&["run", "--once", "--at", THURSDAY]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("sent 0 reminder(s) in 0 email(s)"),
        "{}",
        stdout(&again)
    );
    assert_eq!(server.received().len(), 2);
    assert_eq!(s.ledger(), rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_reply_is_retried_under_the_same_message_id() {
    let server = SmtpServer::start().await;
    let s = Setup::new(&config_yaml(server.port(), SMALL, "digest", QUICK));
    server.fail_next(Stage::Data, 451, "4.3.0 Hệ thống bận, thử lại sau", 1);

    let out = s.run(&["run", "--once", "--at", THURSDAY]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("sent 4 reminder(s) in 2 email(s); 0 failed, 0 left to retry"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("waiting to retry"),
        "{}",
        stderr(&out)
    );

    // Two emails delivered, each once; three attempts seen, one Message-ID twice.
    let delivered = count_ids(&server.received());
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    assert!(delivered.values().all(|n| *n == 1), "{delivered:?}");
    let tried = count_ids(&server.attempts());
    assert_eq!(tried.values().sum::<usize>(), 3, "{tried:?}");
    let twice: Vec<&String> = tried
        .iter()
        .filter(|(_, n)| **n == 2)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(twice.len(), 1, "{tried:?}");
    let retried = twice[0];

    let rows = s.ledger();
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert_eq!(field(r, "status"), "sent", "{r}");
        let want = if &bare(field(r, "message_id")) == retried {
            2
        } else {
            1
        };
        assert_eq!(attempts(r), want, "{r}");
    }
    assert_eq!(
        by_message(&rows).keys().collect::<Vec<_>>(),
        delivered.keys().collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_reply_fails_for_good_and_tells_the_admin() {
    let server = SmtpServer::start().await;
    let s = Setup::new(&config_yaml(server.port(), SMALL, "digest", QUICK));
    server.fail_next(Stage::Data, 550, "5.7.1 Thư bị từ chối", 1);

    let out = s.run(&["run", "--once", "--at", THURSDAY]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = s.ledger();
    assert_eq!(rows.len(), 4);
    let failed: Vec<&Value> = rows
        .iter()
        .filter(|r| field(r, "status") == "failed")
        .collect();
    assert!(!failed.is_empty(), "{rows:#?}");
    let failed_id = bare(field(failed[0], "message_id"));
    for r in &rows {
        if bare(field(r, "message_id")) == failed_id {
            assert_eq!(field(r, "status"), "failed", "{r}");
            assert_eq!(attempts(r), 1, "{r}");
            assert!(
                field(r, "reply").contains("550 5.7.1 Thư bị từ chối"),
                "{r}"
            );
        } else {
            assert_eq!(field(r, "status"), "sent", "{r}");
        }
    }
    assert!(
        stdout(&out).contains(&format!("{} failed, 0 left to retry", failed.len())),
        "{}",
        stdout(&out)
    );

    // Not retried: the server saw that message once.
    let tried = count_ids(&server.attempts());
    assert_eq!(tried.get(&failed_id), Some(&1), "{tried:?}");

    // The admin hears about it, with every task the message carried.
    let got = server.received();
    let reports: Vec<&Received> = got.iter().filter(|r| r.to == [ADMIN]).collect();
    assert_eq!(reports.len(), 1, "{got:#?}");
    let m = MessageParser::default()
        .parse(&reports[0].data)
        .expect("parseable");
    assert_eq!(m.subject(), Some("[nhacviec] Thư nhắc việc không gửi được"));
    let body = m.body_text(0).expect("text");
    assert!(body.contains(&failed_id), "{body}");
    assert!(body.contains("550 5.7.1 Thư bị từ chối"), "{body}");
    for r in &failed {
        let line = format!("- {} ({})", field(r, "task"), field(r, "office"));
        assert!(body.contains(&line), "missing {line:?} in:\n{body}");
    }
    // The failed email is the only one not delivered; the report is not in the ledger.
    let delivered = count_ids(&got);
    assert!(!delivered.contains_key(&failed_id));
    assert_eq!(
        delivered.len(),
        2,
        "one reminder and the report: {delivered:?}"
    );

    // A later run leaves a failed delivery alone.
    let again = s.run(&["run", "--once", "--at", THURSDAY]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(count_ids(&server.attempts()).get(&failed_id), Some(&1));
    assert_eq!(s.ledger(), rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_retries_until_the_server_is_back_then_stops_on_sigterm() {
    let mut server = SmtpServer::start().await;
    let s = Setup::new(&config_yaml(server.port(), SMALL, "digest", QUICK));
    server.stop().await;

    let mut daemon = s.daemon("daemon", THURSDAY);
    // The first attempts find nobody listening and are recorded for a retry, as a
    // connection failure (not a refusal by a server).
    let rows = wait_until("the first failed attempts", || {
        let rows = s.poll_ledger()?;
        (rows.len() == 4 && rows.iter().all(|r| field(r, "status") == "retrying")).then_some(rows)
    });
    for r in &rows {
        assert!(field(r, "reply").contains("cannot connect"), "{r}");
    }
    server.restart().await;

    let rows = wait_until("every nudge sent", || {
        let rows = s.poll_ledger()?;
        (rows.len() == 4 && rows.iter().all(|r| field(r, "status") == "sent")).then_some(rows)
    });
    // Longer than the longest backoff: no stray retry follows.
    std::thread::sleep(Duration::from_secs(3));
    let status = terminate(&mut daemon);
    assert_eq!(status.code(), Some(0), "{status:?}");

    let delivered = count_ids(&server.received());
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    assert!(delivered.values().all(|n| *n == 1), "{delivered:?}");
    assert_eq!(
        by_message(&rows).keys().collect::<Vec<_>>(),
        delivered.keys().collect::<Vec<_>>()
    );
    for r in &rows {
        assert!(attempts(r) >= 2, "{r}");
    }
    assert_eq!(s.ledger(), rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_once_run_that_waits_for_a_retry() {
    let mut server = SmtpServer::start().await;
    // A long backoff, as in production (the default waits up to an hour).
    let yaml = config_yaml(server.port(), SMALL, "digest", QUICK)
        .replace("initial: 1s, max: 2s", "initial: 10m, max: 1h");
    let s = Setup::new(&yaml);
    server.stop().await;

    let mut run = s.spawn("once", &["run", "--once", "--at", THURSDAY]);
    wait_until("the first failed attempts", || {
        let rows = s.poll_ledger()?;
        (rows.len() == 4 && rows.iter().all(|r| field(r, "status") == "retrying")).then_some(())
    });
    let status = terminate(&mut run);
    assert_eq!(
        status.code(),
        Some(1),
        "not everything went out: {status:?}"
    );
    let log = std::fs::read_to_string(run.log_path()).expect("log");
    assert!(
        log.contains("sent 0 reminder(s) in 0 email(s); 0 failed, 4 left to retry"),
        "{log}"
    );
    // Still owed, not dropped: the next run retries them.
    let rows = s.ledger();
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter()
            .all(|r| field(r, "status") == "retrying" && attempts(r) == 1),
        "{rows:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_email_in_flight_finish_and_starts_no_new_one() {
    let server = SmtpServer::start().await;
    // Six nudges, one email each, one at a time; the second hangs a while in DATA.
    let s = Setup::new(&config_yaml(
        server.port(),
        &many(3, 2),
        "per-nudge",
        ", pool_size: 1, timeout: 10s",
    ));
    server.stall_data_after(1, Duration::from_secs(3));

    let mut daemon = s.daemon("daemon-1", THURSDAY);
    wait_until("a send hanging in DATA", || {
        (server.stalls() == 1).then_some(())
    });
    let status = terminate(&mut daemon);
    assert_eq!(status.code(), Some(0), "{status:?}");

    // The email in flight was answered and recorded; nothing else was started.
    let rows = s.ledger();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(
        rows.iter().all(|r| field(r, "status") == "sent"),
        "{rows:#?}"
    );
    assert_eq!(server.received().len(), 2);
    // The second and the third envelopes went with the content before them; the third
    // email's content never went: its connection was closed waiting for it.
    assert_eq!(server.ahead(), 2);
    assert_eq!(server.attempts().len(), 2);

    // The next start sends the rest.
    let mut daemon = s.daemon("daemon-2", THURSDAY);
    let rows = wait_until("all six sent", || {
        let rows = s.poll_ledger()?;
        (rows.len() == 6 && rows.iter().all(|r| field(r, "status") == "sent")).then_some(rows)
    });
    assert_eq!(terminate(&mut daemon).code(), Some(0));
    let delivered = count_ids(&server.received());
    assert_eq!(delivered.len(), 6, "{delivered:?}");
    assert!(delivered.values().all(|n| *n == 1), "{delivered:?}");
    assert_eq!(by_message(&rows).len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_a_new_task_goes_out_at_once_sigusr1_sweeps() {
    let server = SmtpServer::start().await;
    let yaml = config_yaml(server.port(), SMALL, "digest", QUICK);
    let s = Setup::new(&yaml);
    let mut daemon = s.daemon("daemon", THURSDAY);
    let all_sent = |n: usize| {
        let rows = s.poll_ledger()?;
        (rows.len() == n && rows.iter().all(|r| field(r, "status") == "sent")).then_some(rows)
    };
    wait_until("the start-up sweep", || all_sent(4));

    // A broken config is refused; the old one keeps running.
    std::fs::write(&s.config, yaml.replace("lead: ttth", "lead: nobody")).expect("write");
    daemon.signal("HUP");
    let log = wait_until("the reload refused", || {
        let log = std::fs::read_to_string(daemon.log_path()).ok()?;
        log.contains("reload refused").then_some(log)
    });
    assert!(
        log.contains("nobody"),
        "the error names the problem:\n{log}"
    );

    // A new task for kt: the reload sweeps at once, kt hears about it now.
    let added = yaml.replace(
        "    lead: [kt, ttth]\n",
        "    lead: [kt, ttth]\n  - id: IV.3\n    section: IV\n    title: Báo cáo kết quả cải cách hành chính quý I\n    deadline: 30/01/2024\n    lead: kt\n",
    );
    assert_ne!(added, yaml);
    std::fs::write(&s.config, &added).expect("write");
    daemon.signal("HUP");
    let rows = wait_until("the new task sent", || all_sent(5));
    assert!(
        rows.iter()
            .any(|r| field(r, "task") == "IV.3" && field(r, "office") == "kt"),
        "{rows:#?}"
    );
    let got = server.received();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(got[2].to, ["kt@vpubnd.example", "pp.kt@vpubnd.example"]);

    // SIGUSR1 sweeps now: nothing is owed, nothing goes out, the daemon carries on.
    daemon.signal("USR1");
    wait_until("the SIGUSR1 sweep", || {
        let log = std::fs::read_to_string(daemon.log_path()).ok()?;
        log.contains("trigger=\"SIGUSR1\"").then_some(())
    });
    assert_eq!(server.received().len(), 3);
    assert_eq!(terminate(&mut daemon).code(), Some(0));
    assert_eq!(s.ledger(), rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_send_loses_nothing_and_resends_under_the_same_message_id() {
    let server = SmtpServer::start().await;
    // 25 nudges, one email each, one at a time; the 6th hangs in DATA until the crash.
    let s = Setup::new(&config_yaml(
        server.port(),
        &many(5, 5),
        "per-nudge",
        ", pool_size: 1, timeout: 10s",
    ));
    server.stall_data_after(5, Duration::from_secs(120));

    let mut first = s.daemon("daemon-1", THURSDAY);
    wait_until("a send hanging in DATA", || {
        (server.stalls() == 1).then_some(())
    });
    first.kill_hard();

    // Reservations and outcomes are written in batches: after the crash every row is
    // `sent` or `pending`, the email cut off is `pending`, and at most one reservation
    // batch (32 emails per connection, at least 128: here all 25) is `pending`. What was
    // accepted is never lost; a `pending` row that went out is re-sent under its
    // Message-ID, one that did not is sent once.
    let rows = s.ledger();
    let status = |st: &str| rows.iter().filter(|r| field(r, "status") == st).count();
    assert_eq!(rows.len(), 25, "all 25 reserved in one batch: {rows:#?}");
    assert_eq!(status("sent") + status("pending"), rows.len(), "{rows:#?}");
    assert!(status("sent") <= 5, "{rows:#?}");
    assert!(
        (20..=25).contains(&status("pending")),
        "the rest of the batch in flight: {rows:#?}"
    );
    let attempts = server.attempts();
    let in_flight = message_id(attempts.last().expect("an attempt"));
    let pending: BTreeSet<String> = rows
        .iter()
        .filter(|r| field(r, "status") == "pending")
        .map(|r| bare(field(r, "message_id")))
        .collect();
    assert!(pending.contains(&in_flight), "{rows:#?}");
    // Every email the server accepted is in the ledger, sent or pending.
    let recorded: BTreeSet<String> = rows.iter().map(|r| bare(field(r, "message_id"))).collect();
    for r in server.received() {
        assert!(recorded.contains(&message_id(&r)), "{rows:#?}");
    }
    let in_flight_to = attempts.last().expect("an attempt").to.clone();

    server.behave();
    let mut second = s.daemon("daemon-2", THURSDAY);
    let rows = wait_until("all 25 nudges sent", || {
        let rows = s.poll_ledger()?;
        (rows.len() == 25 && rows.iter().all(|r| field(r, "status") == "sent")).then_some(rows)
    });
    let status = terminate(&mut second);
    assert_eq!(status.code(), Some(0), "{status:?}");

    let keys: BTreeSet<(&str, &str)> = rows
        .iter()
        .map(|r| (field(r, "task"), field(r, "office")))
        .collect();
    assert_eq!(keys.len(), 25, "every nudge once");
    let ids = by_message(&rows);
    assert_eq!(ids.len(), 25, "one message per nudge");
    assert!(ids.contains_key(&in_flight), "kept its Message-ID");

    let delivered = count_ids(&server.received());
    assert_eq!(
        delivered.keys().collect::<Vec<_>>(),
        ids.keys().collect::<Vec<_>>()
    );
    for (id, n) in &delivered {
        if pending.contains(id) {
            assert!((1..=2).contains(n), "{id}: {n}");
        } else {
            assert_eq!(*n, 1, "{id} delivered {n} times");
        }
    }
    // The email cut off by the crash went out again, the same message to the same people.
    let tried = count_ids(&server.attempts());
    assert_eq!(tried.get(&in_flight), Some(&2), "{tried:?}");
    let resent: Vec<Received> = server
        .received()
        .into_iter()
        .filter(|r| message_id(r) == in_flight)
        .collect();
    assert!(resent.iter().all(|r| r.to == in_flight_to), "{resent:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_is_read_in_the_configs_time_zone_by_run_once_and_the_dry_run() {
    let server = SmtpServer::start().await;
    let yaml = config_yaml(server.port(), SMALL, "digest", QUICK)
        .replace("timezone: Asia/Ho_Chi_Minh", "timezone: America/New_York");
    let s = Setup::new(&yaml);
    // 08:00 in New York; read in Vietnam's zone it would be 20:00 the evening before.
    for args in [
        ["run", "--dry-run", "--at", THURSDAY],
        ["run", "--once", "--at", THURSDAY],
    ] {
        let out = s.run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.contains("25/01/2024 08:00"), "{args:?}: {err}");
        assert!(!err.contains("24/01/2024 20:00"), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_sends_nothing_and_send_test_sends_one() {
    let server = SmtpServer::start().await;
    let s = Setup::new(&config_yaml(server.port(), SMALL, "digest", QUICK));

    let out = s.run(&["run", "--dry-run", "--at", THURSDAY]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "would send an email to ttth@vpubnd.example (cc hctc@vpubnd.example): [Nhắc việc] 2 nhiệm vụ sắp đến hạn",
        "would send an email to kt@vpubnd.example, Phó phòng Kinh tế <pp.kt@vpubnd.example>: [Nhắc việc] Còn 3 ngày làm việc",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(
        text.contains("dry run: would send 4 reminder(s) in 2 email(s); nothing was sent"),
        "{text}"
    );
    assert!(!text.contains("sent 4 reminder(s)"), "{text}");
    assert_eq!(server.connections(), 0, "a dry run does not even connect");
    assert!(server.attempts().is_empty());
    assert!(
        !s.dir.path().join("ledger.db").exists(),
        "a dry run does not even create the ledger"
    );

    let out = s.run(&["send-test", "--to", "someone@vpubnd.example"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = server.received();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].to, ["someone@vpubnd.example"]);
    let text = stdout(&out);
    assert!(text.contains("server reply: 250 2.0.0 OK queued"), "{text}");
    let id = message_id(&got[0]);
    assert!(
        text.contains(&format!("(Message-ID <{id}>)")),
        "{text} does not name {id}"
    );
    let m = MessageParser::default()
        .parse(&got[0].data)
        .expect("parseable");
    assert_eq!(addrs(m.to()), ["someone@vpubnd.example"]);
    // A sample of the config's first dated task (IV.1), counted from the real today.
    let subject = m.subject().expect("Subject");
    assert!(subject.starts_with('['), "{subject}");
    let text = m.body_text(0).expect("text part");
    assert!(text.contains("Nhiệm vụ IV.1"), "{text}");
    assert!(m.body_html(0).is_some());
    assert!(s.ledger().is_empty(), "send-test records nothing");

    // After a real run, a dry run plans against the recorded history: nothing is left.
    let out = s.run(&["run", "--once", "--at", THURSDAY]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = s.ledger();
    assert_eq!(before.len(), 4);
    let out = s.run(&["run", "--dry-run", "--at", THURSDAY]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("dry run: would send 0 reminder(s) in 0 email(s)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(s.ledger(), before, "a dry run writes nothing");
}

#[test]
fn the_seed_plan_writes_the_centres_nudges_into_the_outbox() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/khanh-hoa-2024.yaml");
    let config = dir.path().join("khanh-hoa-2024.yaml");
    std::fs::copy(&seed, &config).expect("copy the seed plan");
    let s = Setup {
        dir,
        config: config.clone(),
    };
    let outbox = s.dir.path().join("outbox");
    let files = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&outbox)
            .map(|d| d.map(|e| e.expect("entry").path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };

    let out = s.run(&["run", "--once", "--at", "2024-01-22T08:00"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let written = files();
    assert!(
        written
            .iter()
            .all(|p| p.extension().is_some_and(|e| e == "eml")),
        "only whole .eml files: {written:?}"
    );
    assert!(s.dir.path().join("nhacviec.db").exists());

    let log = s.run(&["log", "--format", "json"]);
    assert!(log.status.success(), "{}", stderr(&log));
    let rows: Vec<Value> = serde_json::from_slice(&log.stdout).expect("json");
    assert!(
        rows.iter().all(|r| field(r, "status") == "sent"),
        "{rows:#?}"
    );
    let ids = by_message(&rows);
    assert_eq!(ids.len(), written.len(), "one file per email: {written:?}");

    let mut centres = BTreeSet::new();
    for path in &written {
        let bytes = std::fs::read(path).expect("read .eml");
        let m = MessageParser::default().parse(&bytes).expect("parseable");
        let id = bare(m.message_id().expect("Message-ID"));
        let recorded = ids
            .get(&id)
            .unwrap_or_else(|| panic!("{} is not in the ledger", path.display()));
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        assert!(
            recorded.iter().all(|r| field(r, "reply").ends_with(&name)),
            "{recorded:#?}"
        );
        let to = addrs(m.to());
        let Some(centre) = ["a", "b", "c"]
            .into_iter()
            .find(|c| to == [format!("trungtam-{c}@vpubnd.example")])
        else {
            continue;
        };
        centres.insert(centre);
        assert_eq!(recorded.len(), 1, "{recorded:#?}");
        assert_eq!(field(recorded[0], "task"), "TCTH.1");
        assert_eq!(field(recorded[0], "office"), format!("trung-tam-{centre}"));
        let subject = m.subject().expect("Subject");
        assert!(
            subject.starts_with("[Nhắc việc] Còn 7 ngày: Các Trung tâm xây dựng kế hoạch"),
            "{subject}"
        );
        let text = m.body_text(0).expect("text part");
        let html = m.body_html(0).expect("html part");
        for part in [&text, &html] {
            for want in [
                "Nhiệm vụ TCTH.1",
                "Kế hoạch cải cách hành chính năm 2024 của Trung tâm",
                "trước ngày 30/01/2024",
                // Read strictly: the work is due by the last working day before 30/01.
                "tức chậm nhất Thứ Hai 29/01/2024",
                "Phòng Hành chính – Tổ chức",
            ] {
                assert!(part.contains(want), "missing {want:?} in:\n{part}");
            }
        }
        assert_eq!(addrs(m.reply_to()), vec!["hctc@vpubnd.example"]);
        if centre == "a" && std::env::var_os("NHACVIEC_SHOW_EMAIL").is_some() {
            println!("Subject: {subject}\n\n{text}");
        }
    }
    assert_eq!(centres, BTreeSet::from(["a", "b", "c"]), "{written:?}");

    let log = s.run(&["log", "--task", "TCTH.1"]);
    assert!(log.status.success(), "{}", stderr(&log));
    for c in ["trung-tam-a", "trung-tam-b", "trung-tam-c"] {
        assert!(stdout(&log).contains(c), "{}", stdout(&log));
    }

    let again = s.run(&["run", "--once", "--at", "2024-01-22T08:00"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("sent 0 reminder(s)"),
        "{}",
        stdout(&again)
    );
    assert_eq!(files(), written);
}

/// The message sent to `addr` among `msgs` (in its RCPT TO).
fn sent_to<'a>(msgs: &'a [Received], addr: &str) -> Vec<&'a Received> {
    msgs.iter()
        .filter(|r| r.to.iter().any(|a| a == addr))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_recipient_fails_only_its_own_rows_and_the_others_still_get_the_email() {
    let server = SmtpServer::start().await;
    let s = Setup::new(&config_yaml(server.port(), SMALL, "digest", QUICK));
    // hctc is copied on ttth's email (it cooperates on IV.1): its only address is refused.
    server.reject_recipient("hctc@vpubnd.example");

    let out = s.run(&["run", "--once", "--at", THURSDAY]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let got = server.received();
    // ttth still got its email, without hctc in the envelope.
    let to_ttth = sent_to(&got, "ttth@vpubnd.example");
    assert_eq!(to_ttth.len(), 1, "{got:#?}");
    assert_eq!(to_ttth[0].to, ["ttth@vpubnd.example"]);
    let ttth_id = message_id(to_ttth[0]);

    let rows = s.ledger();
    assert_eq!(rows.len(), 4, "{rows:#?}");
    for r in &rows {
        match (field(r, "office"), bare(field(r, "message_id")) == ttth_id) {
            ("hctc", true) => {
                assert_eq!(field(r, "status"), "failed", "{r}");
                assert!(field(r, "reply").contains("hctc@vpubnd.example"), "{r}");
                assert!(field(r, "reply").contains("550"), "{r}");
            }
            ("ttth", true) => {
                assert_eq!(field(r, "status"), "sent", "{r}");
                // The refused copy is noted on the rows that were sent.
                assert!(field(r, "reply").starts_with("250"), "{r}");
                assert!(
                    field(r, "reply").contains("<hctc@vpubnd.example> refused"),
                    "{r}"
                );
            }
            _ => assert_eq!(field(r, "status"), "sent", "{r}"),
        }
    }
    // The admin report names the refused address and the office that got nothing.
    let reports: Vec<&Received> = got.iter().filter(|r| r.to == [ADMIN]).collect();
    assert_eq!(reports.len(), 1, "{got:#?}");
    let m = MessageParser::default()
        .parse(&reports[0].data)
        .expect("parseable");
    let body = m.body_text(0).expect("text");
    assert!(body.contains("hctc@vpubnd.example"), "{body}");
    assert!(body.contains("550"), "{body}");
    assert!(body.contains(&ttth_id), "{body}");
    assert!(body.contains("Đơn vị không nhận được thư: hctc"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_recipients_splits_the_envelope_under_one_message_id() {
    let server = SmtpServer::start().await;
    let s = Setup::new(&config_yaml(server.port(), SMALL, "digest", QUICK));
    server.too_many_after(1);

    let out = s.run(&["run", "--once", "--at", THURSDAY]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = server.received();
    // Two emails of two recipients each, every one sent as two transactions of one
    // recipient, each pair under one Message-ID.
    assert_eq!(got.len(), 4, "{got:#?}");
    let mut per_id: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &got {
        assert_eq!(r.to.len(), 1, "{r:?}");
        per_id
            .entry(message_id(r))
            .or_default()
            .extend(r.to.iter().cloned());
    }
    let want: BTreeSet<BTreeSet<String>> = [
        ["ttth@vpubnd.example", "hctc@vpubnd.example"],
        ["kt@vpubnd.example", "pp.kt@vpubnd.example"],
    ]
    .iter()
    .map(|p| p.iter().map(|a| a.to_string()).collect())
    .collect();
    assert_eq!(
        per_id.values().cloned().collect::<BTreeSet<_>>(),
        want,
        "{per_id:?}"
    );
    let rows = s.ledger();
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert_eq!(field(r, "status"), "sent", "{r}");
        assert_eq!(attempts(r), 1, "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_keeps_the_reminders_for_later_and_alerts_the_admin() {
    let server = SmtpServer::start().await;
    let extra = format!("{QUICK}, username: nhacviec, password_file: smtp-password");
    let mut yaml = config_yaml(server.port(), SMALL, "digest", &extra);
    // Retries far enough apart that the test sees them waiting.
    yaml = yaml.replace(
        "retry: { attempts: 4, initial: 1s, max: 2s }",
        "retry: { attempts: 4, initial: 3s, max: 3s }",
    );
    let s = Setup::new(&yaml);
    std::fs::write(s.dir.path().join("smtp-password"), "rotated-away\n").unwrap();
    server.refuse_login(true);

    let mut daemon = s.daemon("daemon", THURSDAY);
    daemon.wait_log("refused nhacviec's login", 1, WAIT).await;
    let rows = wait_until("every nudge waiting to retry", || {
        let rows = s.poll_ledger()?;
        (rows.len() == 4 && rows.iter().all(|r| field(r, "status") == "retrying")).then_some(rows)
    });
    for r in &rows {
        assert!(field(r, "reply").contains("refused the login: 535"), "{r}");
    }
    assert!(server.logins() >= 1);
    // The password is fixed (the server accepts it again): the reminders go out.
    server.refuse_login(false);
    let rows = wait_until("every nudge sent", || {
        let rows = s.poll_ledger()?;
        (rows.len() == 4 && rows.iter().all(|r| field(r, "status") == "sent")).then_some(rows)
    });
    let status = terminate(&mut daemon);
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(rows.iter().all(|r| attempts(r) >= 2), "{rows:#?}");
    // One alert per sweep in the log, not one per reminder.
    let log = daemon.log_text();
    let alerts = log.matches("refused nhacviec's login").count();
    assert!(alerts >= 1 && alerts < 4 * rows.len(), "{log}");
}

/// A password rotated for longer than the retries last: the reminders keep waiting (never
/// `failed`: the email was never offered), and go out once the login works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_refused_past_every_retry_still_loses_no_reminder() {
    let server = SmtpServer::start().await;
    let extra = format!("{QUICK}, username: nhacviec, password_file: smtp-password");
    let yaml = config_yaml(server.port(), SMALL, "digest", &extra).replace(
        "retry: { attempts: 4, initial: 1s, max: 2s }",
        "retry: { attempts: 2, initial: 1s, max: 1s }",
    );
    let s = Setup::new(&yaml);
    std::fs::write(s.dir.path().join("smtp-password"), "rotated-away\n").unwrap();
    server.refuse_login(true);
    let mut daemon = s.daemon("daemon", THURSDAY);
    // Twice the attempts the config allows, and still waiting.
    let rows = wait_until("four tries of every email, none given up", || {
        let rows = s.poll_ledger()?;
        assert!(
            rows.iter().all(|r| field(r, "status") != "failed"),
            "{rows:#?}"
        );
        (rows.len() == 4 && rows.iter().all(|r| attempts(r) >= 4)).then_some(rows)
    });
    assert!(
        rows.iter().all(|r| field(r, "status") == "retrying"),
        "{rows:#?}"
    );
    assert!(server.received().is_empty());
    server.refuse_login(false);
    wait_until("every nudge sent", || {
        let rows = s.poll_ledger()?;
        (rows.len() == 4 && rows.iter().all(|r| field(r, "status") == "sent")).then_some(rows)
    });
    let status = terminate(&mut daemon);
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reply_after_the_data_is_an_unknown_outcome_resent_under_the_same_message_id() {
    let server = SmtpServer::start().await;
    let s = Setup::new(&config_yaml(server.port(), SMALL, "digest", QUICK));
    // The first message's content is answered by a closed connection; the next one's by
    // silence longer than the client waits (2 s per step, 4 s in all), then a late 250.
    server.close_after_data(1);
    server.stall_data(Duration::from_secs(6));

    let out = s.run(&["run", "--once", "--at", THURSDAY]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(!err.contains("cannot connect"), "{err}");

    // Each email was tried twice under its one Message-ID, the first time recorded as an
    // unknown outcome.
    let tried = count_ids(&server.attempts());
    assert_eq!(tried.len(), 2, "{tried:?}");
    assert!(tried.values().all(|n| *n == 2), "{tried:?}");
    for id in tried.keys() {
        assert!(
            err.lines()
                .any(|l| l.contains(id.as_str()) && l.contains("outcome unknown")),
            "{id}: {err}"
        );
    }
    let rows = s.ledger();
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert_eq!(field(r, "status"), "sent", "{r}");
        assert_eq!(attempts(r), 2, "{r}");
        assert!(tried.contains_key(&bare(field(r, "message_id"))), "{r}");
    }
}

/// `run --once` against a closed port says why in the chosen language: Vietnamese unless
/// told otherwise, English with `NHACVIEC_LANG=en`; its closing summary too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_explained_in_the_chosen_language() {
    let mut server = SmtpServer::start().await;
    let yaml = config_yaml(server.port(), SMALL, "digest", QUICK)
        .replace("attempts: 4, initial: 1s", "attempts: 1, initial: 1s");
    server.stop().await;
    for (lang, connect, summary) in [
        (
            None,
            "không kết nối được",
            "đã gửi 0 lần nhắc trong 0 email",
        ),
        (
            Some("en"),
            "cannot connect",
            "sent 0 reminder(s) in 0 email(s)",
        ),
    ] {
        let s = Setup::new(&yaml);
        let mut cmd = nhacviec();
        cmd.env_remove("NHACVIEC_LANG")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env_remove("LANG");
        if let Some(l) = lang {
            cmd.env("NHACVIEC_LANG", l);
        }
        let out = cmd
            .args(["run", "--once", "--at", THURSDAY, "-c", s.cfg()])
            .stdin(Stdio::null())
            .output()
            .expect("run nhacviec");
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains(connect), "{lang:?}: {}", stderr(&out));
        assert!(stdout(&out).contains(summary), "{lang:?}: {}", stdout(&out));
        let other = if lang.is_none() {
            "cannot connect"
        } else {
            "không kết nối được"
        };
        assert!(!stderr(&out).contains(other), "{lang:?}: {}", stderr(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sweeping_process_on_one_ledger_refuses_and_nothing_goes_out_twice() {
    let server = SmtpServer::start().await;
    // Six nudges, one email each, one at a time; the second hangs in DATA, so the first
    // run is mid-send when the second starts.
    let s = Setup::new(&config_yaml(
        server.port(),
        &many(3, 2),
        "per-nudge",
        ", pool_size: 1, timeout: 10s",
    ));
    server.stall_data_after(1, Duration::from_secs(3));

    let mut first = s.spawn("once-1", &["run", "--once", "--at", THURSDAY]);
    wait_until("a send hanging in DATA", || {
        (server.stalls() == 1).then_some(())
    });
    let second = s.run(&["run", "--once", "--at", THURSDAY]);
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    let err = stderr(&second);
    assert!(err.contains("in use by another nhacviec process"), "{err}");
    assert!(err.contains(&format!("PID {}", first.pid())), "{err}");
    assert!(err.contains("ledger.db.lock"), "{err}");
    // The daemon is refused the same way (systemd's restart policy then retries it).
    let mut daemon = s.daemon("daemon-1", THURSDAY);
    assert_eq!(daemon.exit_code(WAIT).await, 1, "{}", daemon.tail());
    assert!(
        daemon
            .log_text()
            .contains("in use by another nhacviec process")
    );

    assert_eq!(first.exit_code(WAIT).await, 0, "{}", first.tail());
    let rows = s.ledger();
    assert_eq!(rows.len(), 6, "{rows:#?}");
    assert!(
        rows.iter().all(|r| field(r, "status") == "sent"),
        "{rows:#?}"
    );
    let delivered = count_ids(&server.received());
    assert_eq!(delivered.len(), 6, "{delivered:?}");
    assert!(delivered.values().all(|n| *n == 1), "{delivered:?}");
    // The lock went with the first process: the next run proceeds and owes nothing.
    let third = s.run(&["run", "--once", "--at", THURSDAY]);
    assert_eq!(third.status.code(), Some(0), "{}", stderr(&third));
    assert_eq!(server.received().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_leaves_its_lock_file_but_not_its_lock() {
    let server = SmtpServer::start().await;
    let s = Setup::new(&config_yaml(
        server.port(),
        &many(3, 2),
        "per-nudge",
        ", pool_size: 1, timeout: 10s",
    ));
    server.stall_data_after(1, Duration::from_secs(120));
    let mut first = s.daemon("daemon-1", THURSDAY);
    wait_until("a send hanging in DATA", || {
        (server.stalls() == 1).then_some(())
    });
    let pid = first.pid();
    first.kill_hard();
    // The file still names the dead process; the kernel dropped its flock with it.
    let lock = s.dir.path().join("ledger.db.lock");
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap().trim(),
        pid.to_string()
    );
    server.behave();
    let out = s.run(&["run", "--once", "--at", THURSDAY]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = s.ledger();
    assert_eq!(rows.len(), 6, "{rows:#?}");
    assert!(
        rows.iter().all(|r| field(r, "status") == "sent"),
        "{rows:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_backup_copies_what_the_running_daemon_has_in_its_wal() {
    let server = SmtpServer::start().await;
    let s = Setup::new(&config_yaml(server.port(), &many(3, 2), "per-nudge", QUICK));
    let mut daemon = s.daemon("daemon-1", THURSDAY);
    let rows = wait_until("all six sent", || {
        let rows = s.poll_ledger()?;
        (rows.len() == 6 && rows.iter().all(|r| field(r, "status") == "sent")).then_some(rows)
    });
    // The daemon holds the ledger open and its last commits are still in the WAL only.
    let wal = s.dir.path().join("ledger.db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0, "WAL is empty");

    let copy = s.dir.path().join("backup").join("copy.db");
    std::fs::create_dir(copy.parent().unwrap()).unwrap();
    let out = s.run(&["ledger", "backup", copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(said.contains("6 deliveries"), "{said}");
    assert!(said.contains("integrity check: ok"), "{said}");
    assert!(
        said.contains(&format!(
            "{} bytes",
            std::fs::metadata(&copy).unwrap().len()
        )),
        "{said}"
    );

    // The copy alone, with no -wal next to it, holds every row.
    assert!(!s.dir.path().join("backup").join("copy.db-wal").exists());
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mut stmt = conn
        .prepare("SELECT message_id, status FROM deliveries")
        .unwrap();
    let copied: BTreeSet<(String, String)> = stmt
        .query_map([], |r| Ok((bare(&r.get::<_, String>(0)?), r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let live: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (bare(field(r, "message_id")), field(r, "status").to_string()))
        .collect();
    assert_eq!(copied, live);

    // Never over an existing file.
    let again = s.run(&["ledger", "backup", copy.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("never overwrites"),
        "{}",
        stderr(&again)
    );
    assert_eq!(terminate(&mut daemon).code(), Some(0));
}
