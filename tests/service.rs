//! The daemon as systemd runs it: the real binary as a child process, real signals, a real
//! (small) SMTP server on loopback and a real `$NOTIFY_SOCKET`.
//!
//! Each daemon runs `run --at 2024-03-15T08:00` (a Friday, a working day), so the task due
//! that day has its "on the day" nudge due at start-up. Signals are sent with the `kill`
//! command, to the child's own pid only. No test asserts on timing: every wait polls with a
//! generous limit.

mod support;

use serde_json::Value;
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::daemon::{Daemon, Spawn};
use support::smtp::{Received, SmtpServer};

/// Long enough for a slow CI machine; nothing should come close.
const PATIENCE: Duration = Duration::from_secs(30);
const AT: &str = "2024-03-15T08:00";

/// Tasks: `T.1` is due today (15/03/2024) and led by `LEAD1`; `EXTRA` adds more tasks.
const PLAN: &str = r#"plan:
  title: Kế hoạch thử
  year: 2024
offices:
  phong-a:
    name: Phòng A
    email: a@vpubnd.example
  phong-b:
    name: Phòng B
    email: b@vpubnd.example
reminders:
  default:
    before: [3wd, 1wd]
    on_day: true
    overdue_every: never
    escalate: {}
tasks:
  - id: T.1
    title: Báo cáo quý I
    deadline: 15/03/2024
    lead: LEAD1
EXTRA
mail:
  from: Nhắc việc <nhacviec@vpubnd.example>
  transport:
    smtp:
      host: 127.0.0.1
      port: PORT
      security: none
      allow_plaintext: true
ledger:
  path: LEDGER
"#;

/// A second task, due today, led by office B.
const T2_FOR_B: &str =
    "  - id: T.2\n    title: Số hóa hồ sơ\n    deadline: 15/03/2024\n    lead: phong-b\n";

struct Setup {
    dir: tempfile::TempDir,
    port: u16,
}

impl Setup {
    fn new(port: u16) -> Setup {
        Setup {
            dir: tempfile::tempdir().expect("temp dir"),
            port,
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("nhacviec.yaml")
    }

    fn yaml(&self, lead1: &str, extra: &str) -> String {
        PLAN.replace("LEAD1", lead1)
            .replace("EXTRA\n", extra)
            .replace("PORT", &self.port.to_string())
            .replace(
                "LEDGER",
                &self.dir.path().join("nhacviec.db").display().to_string(),
            )
    }

    /// Writes the config the daemon reads (in place, as an editor would).
    fn write(&self, yaml: &str) {
        fs::write(self.config_path(), yaml).expect("write config");
    }

    /// Starts `nhacviec run` on the config; stderr goes to a file the test reads.
    fn start(&self, notify_socket: Option<&Path>) -> Daemon {
        let mut spawn = Spawn::new(&self.dir.path().join("stderr.log")).args([
            "run".as_ref(),
            "-c".as_ref(),
            self.config_path().as_os_str(),
            "--at".as_ref(),
            AT.as_ref(),
        ]);
        if let Some(s) = notify_socket {
            spawn = spawn.env("NOTIFY_SOCKET", s);
        }
        spawn.start()
    }

    /// `nhacviec log --format json` on the same config: the ledger as rows.
    fn ledger_rows(&self) -> Vec<Value> {
        let out = Command::new(env!("CARGO_BIN_EXE_nhacviec"))
            .arg("log")
            .arg("-c")
            .arg(self.config_path())
            .args(["--format", "json"])
            .env_remove("STATE_DIRECTORY")
            .output()
            .expect("run nhacviec log");
        assert!(
            out.status.success(),
            "nhacviec log failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout)
            .expect("log --format json is JSON")
            .as_array()
            .cloned()
            .expect("an array of rows")
    }
}

fn to(m: &Received) -> String {
    m.to.join(",")
}

fn sent_to(server: &SmtpServer, addr: &str) -> usize {
    server
        .received()
        .iter()
        .filter(|m| m.to.iter().any(|t| t == addr))
        .count()
}

/// What the daemon logs after each sweep, with its trigger.
const SWEEP_DONE: &str = ", bỏ qua ";

#[tokio::test]
async fn a_broken_config_on_sighup_keeps_the_old_one_running() {
    let server = SmtpServer::start().await;
    let s = Setup::new(server.port());
    s.write(&s.yaml("phong-a", ""));
    let mut d = s.start(None);
    let got = server.wait_for(1, PATIENCE).await;
    assert_eq!(to(&got[0]), "a@vpubnd.example");

    // An unknown office and a bad date: both errors, each with file:line:column.
    let broken = s
        .yaml("phong-a", "")
        .replace("lead: phong-a", "lead: phong-x")
        .replace("deadline: 15/03/2024", "deadline: 32/13/2024");
    s.write(&broken);
    d.signal("HUP");
    let log = d.wait_log("reload refused", 1, PATIENCE).await;
    let path = s.config_path().display().to_string();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&format!("{path}:")) && l.contains("error"))
        .collect();
    assert!(
        errors.len() >= 2,
        "every error is logged with its place:\n{log}"
    );
    let line_of = |needle: &str| {
        broken
            .lines()
            .position(|l| l.contains(needle))
            .expect("in the YAML")
            + 1
    };
    for needle in ["lead: phong-x", "deadline: 32/13/2024"] {
        let at = format!("{path}:{}:", line_of(needle));
        assert!(
            errors.iter().any(|e| e.contains(&at)),
            "no error at {at}:\n{log}"
        );
    }
    assert!(d.running(), "a bad reload must not stop the daemon");

    // Still sweeping, on the old config: nothing new is due, nothing is sent.
    d.signal("USR1");
    d.wait_lines(&[SWEEP_DONE, "SIGUSR1"], 1, PATIENCE).await;
    assert!(d.running());
    assert_eq!(server.received().len(), 1);

    // A good config with a new task due today: its nudge goes out after the reload.
    s.write(&s.yaml("phong-a", T2_FOR_B));
    d.signal("HUP");
    let got = server.wait_for(2, PATIENCE).await;
    assert_eq!(to(&got[1]), "b@vpubnd.example");
    let log = d.wait_log("đã nạp lại cấu hình", 1, PATIENCE).await;
    assert!(log.contains("T.2"), "the change is logged:\n{log}");

    d.signal("TERM");
    assert!(d.wait_exit(PATIENCE).await.success());
}

#[tokio::test]
async fn a_reassigned_task_moves_its_nudges_to_the_new_office() {
    let server = SmtpServer::start().await;
    let s = Setup::new(server.port());
    s.write(&s.yaml("phong-a", ""));
    let mut d = s.start(None);
    server.wait_for(1, PATIENCE).await;
    assert_eq!(sent_to(&server, "a@vpubnd.example"), 1);

    s.write(&s.yaml("phong-b", ""));
    d.signal("HUP");
    let got = server.wait_for(2, PATIENCE).await;
    assert_eq!(to(&got[1]), "b@vpubnd.example");
    assert!(
        String::from_utf8_lossy(&got[1].data).contains("T.1"),
        "B's email is about T.1"
    );

    // Later sweeps send nothing more, to A or anyone.
    for n in 1..=2 {
        d.signal("USR1");
        d.wait_lines(&[SWEEP_DONE, "SIGUSR1"], n, PATIENCE).await;
    }
    assert_eq!(sent_to(&server, "a@vpubnd.example"), 1);
    assert_eq!(server.received().len(), 2);

    let rows = s.ledger_rows();
    let sent: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r["status"] == "sent")
        .map(|r| {
            (
                r["task"].as_str().unwrap_or(""),
                r["office"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(sent.contains(&("T.1", "phong-a")), "{rows:#?}");
    assert!(sent.contains(&("T.1", "phong-b")), "{rows:#?}");

    d.signal("TERM");
    assert!(d.wait_exit(PATIENCE).await.success());
}

#[tokio::test]
async fn sigterm_lets_a_slow_send_finish_and_be_recorded() {
    let server = SmtpServer::start().await;
    // The server sits on the email's content for a while before accepting it.
    server.stall_data(Duration::from_secs(3));
    let s = Setup::new(server.port());
    s.write(&s.yaml("phong-a", ""));
    let mut d = s.start(None);

    // The send is under way once the daemon has connected.
    let start = Instant::now();
    while server.connections() == 0 {
        assert!(start.elapsed() < PATIENCE, "nhacviec never connected");
        assert!(d.running(), "nhacviec exited:\n{}", d.log_text());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(server.received().is_empty(), "the stall holds the email");
    d.signal("TERM");

    let status = d.wait_exit(PATIENCE).await;
    assert!(status.success(), "exit {status:?}:\n{}", d.log_text());
    assert_eq!(server.received().len(), 1, "the email in flight went out");
    let rows = s.ledger_rows();
    let t1: Vec<&Value> = rows
        .iter()
        .filter(|r| r["task"] == "T.1" && r["office"] == "phong-a" && r["kind"] == "on-day")
        .collect();
    assert_eq!(t1.len(), 1, "{rows:#?}");
    assert_eq!(t1[0]["status"], "sent", "{rows:#?}");
    // The stop request came while the email was on its way.
    let log = d.log_text();
    let pos = |needle: &str| {
        log.find(needle)
            .unwrap_or_else(|| panic!("no `{needle}` in the log:\n{log}"))
    };
    assert!(pos("stop requested") < pos("đã gửi: "), "{log}");
}

/// Reads one datagram from the notify socket (panics after `PATIENCE`).
fn next_notification(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .expect("a notification before the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Reads datagrams until one has the line `want`; returns that datagram.
fn wait_notification(sock: &UnixDatagram, want: &str, seen: &mut Vec<String>) -> String {
    loop {
        let msg = next_notification(sock);
        seen.push(msg.clone());
        if msg.lines().any(|l| l == want) {
            return msg;
        }
    }
}

#[tokio::test]
async fn systemd_hears_ready_reloading_and_stopping() {
    let server = SmtpServer::start().await;
    let s = Setup::new(server.port());
    s.write(&s.yaml("phong-a", ""));
    let sock_path = s.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let mut d = s.start(Some(&sock_path));

    // The blocking reads run beside the runtime, which keeps the SMTP server answering.
    let (sock, mut seen, ready) = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        let ready = wait_notification(&sock, "READY=1", &mut seen);
        (sock, seen, ready)
    })
    .await
    .expect("reader");
    assert!(
        !seen[..seen.len() - 1]
            .iter()
            .any(|m| m.contains("RELOADING=1") || m.contains("STOPPING=1")),
        "{seen:?}"
    );
    assert!(ready.contains("STATUS="), "{ready}");
    server.wait_for(1, PATIENCE).await;

    s.write(&s.yaml("phong-a", T2_FOR_B));
    d.signal("HUP");
    let (sock, seen2, reloading, ready2) = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        let reloading = wait_notification(&sock, "RELOADING=1", &mut seen);
        let ready = wait_notification(&sock, "READY=1", &mut seen);
        (sock, seen, reloading, ready)
    })
    .await
    .expect("reader");
    seen.extend(seen2);
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("RELOADING=1 comes with MONOTONIC_USEC: {reloading:?}"));
    assert!(
        usec.parse::<u64>().is_ok_and(|u| u > 0),
        "MONOTONIC_USEC={usec}"
    );
    assert!(ready2.contains("STATUS=running (reloaded)"), "{ready2}");
    server.wait_for(2, PATIENCE).await;

    d.signal("TERM");
    let (_, seen3, _) = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        let stopping = wait_notification(&sock, "STOPPING=1", &mut seen);
        (sock, seen, stopping)
    })
    .await
    .expect("reader");
    seen.extend(seen3);
    assert!(d.wait_exit(PATIENCE).await.success(), "{}", d.log_text());
    // In order: READY, then RELOADING, READY, then STOPPING.
    let order: Vec<&str> = seen
        .iter()
        .flat_map(|m| m.lines())
        .filter(|l| ["READY=1", "RELOADING=1", "STOPPING=1"].contains(l))
        .collect();
    assert_eq!(
        &order[..4],
        ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"],
        "{seen:?}"
    );
}

#[test]
fn the_installed_config_finds_the_services_ledger_outside_the_service() {
    use nhacviec::plan::config::{Env, Transport, from_source};
    let yaml = "plan:\n  year: 2024\noffices:\n  a:\n    name: A\n    email: a@vpubnd.example\ntasks: []\nmail:\n  from: N <n@vpubnd.example>\n";
    let load = |path: &str, env: &Env| {
        from_source(yaml, Path::new(path), env)
            .unwrap_or_else(|r| panic!("{}", r.render()))
            .config
    };
    // `nhacviec log -c /etc/nhacviec/nhacviec.yaml`, run by hand: no $STATE_DIRECTORY.
    let c = load("/etc/nhacviec/nhacviec.yaml", &Env::default());
    assert_eq!(c.ledger.path, Path::new("/var/lib/nhacviec/nhacviec.db"));
    assert!(
        matches!(&c.mail.transport, Transport::Outbox(p) if p == Path::new("/var/lib/nhacviec/outbox"))
    );
    // The service itself: systemd's $STATE_DIRECTORY wins.
    let env = Env {
        state_directory: Some(PathBuf::from("/var/lib/private/nhacviec")),
        ..Env::default()
    };
    let c = load("/etc/nhacviec/nhacviec.yaml", &env);
    assert_eq!(
        c.ledger.path,
        Path::new("/var/lib/private/nhacviec/nhacviec.db")
    );
    // Any other config keeps its state next to itself.
    let c = load("/srv/plan/nhacviec.yaml", &Env::default());
    assert_eq!(c.ledger.path, Path::new("/srv/plan/nhacviec.db"));
}

/// A plan heavy enough that reading it takes a while, even in a release build: thousands of
/// tasks, all due at the end of the year so that the sweep after the reload sends nothing.
fn heavy_tasks(n: usize) -> String {
    let mut s = String::with_capacity(n * 90);
    for i in 0..n {
        s.push_str(&format!(
            "  - id: H.{i}\n    title: Việc thứ {i}\n    deadline: 31/12/2024\n    lead: phong-a\n"
        ));
    }
    s
}

#[tokio::test]
async fn signals_and_the_watchdog_are_answered_while_a_heavy_config_loads() {
    let server = SmtpServer::start().await;
    let s = Setup::new(server.port());
    s.write(&s.yaml("phong-a", ""));
    let sock_path = s.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(PATIENCE)).expect("timeout");
    // A watchdog of 200 ms: the daemon pings every 100 ms while it is well.
    let mut d = Spawn::new(&s.dir.path().join("stderr.log"))
        .args([
            "run".as_ref(),
            "-c".as_ref(),
            s.config_path().as_os_str(),
            "--at".as_ref(),
            AT.as_ref(),
        ])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "200000")
        .start();
    let sock = tokio::task::spawn_blocking(move || {
        wait_notification(&sock, "READY=1", &mut Vec::new());
        sock
    })
    .await
    .expect("reader");
    server.wait_for(1, PATIENCE).await;

    s.write(&s.yaml("phong-a", &heavy_tasks(12_000)));
    d.signal("HUP");
    // While the new plan is read, the watchdog keeps being pinged...
    let (sock, during) = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        wait_notification(&sock, "RELOADING=1", &mut seen);
        let mut pings = 0;
        let mut during = Vec::new();
        while pings < 2 {
            let msg = next_notification(&sock);
            pings += usize::from(msg.lines().any(|l| l == "WATCHDOG=1"));
            during.push(msg);
        }
        (sock, during)
    })
    .await
    .expect("reader");
    assert!(
        !during.iter().any(|m| m.lines().any(|l| l == "READY=1")),
        "the reload ended before two watchdog pings: either reading the plan blocks the \
         pings, or the plan is too light to prove anything ({during:?})"
    );
    // ...and a stop request is answered before the reading is done.
    d.signal("TERM");
    let after = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        wait_notification(&sock, "STOPPING=1", &mut seen);
        seen
    })
    .await
    .expect("reader");
    assert!(
        !after.iter().any(|m| m.lines().any(|l| l == "READY=1")),
        "STOPPING=1 came only after the reload was done: {after:?}"
    );
    assert!(d.wait_exit(PATIENCE).await.success(), "{}", d.log_text());
}
