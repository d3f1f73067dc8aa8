//! The real `nhacviec` binary as a child process, for the tests that need it running while
//! they act: start it with arguments and environment, wait for a line in its log, send it a
//! signal, wait for it to exit. Every wait has a deadline after which the test FAILS (with
//! the end of the log) instead of hanging; a daemon dropped while running (a failed test) is
//! killed, reaped, and its log shown.
//!
//! ```ignore
//! let mut d = Spawn::new(&dir.join("daemon.log")).args(["run", "-c", cfg]).start();
//! d.wait_log("sweep finished", 1, Duration::from_secs(30)).await;
//! d.signal("TERM");
//! assert!(d.wait_exit(Duration::from_secs(30)).await.success());
//! ```

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How often the waits look again.
const POLL: Duration = Duration::from_millis(20);

/// How many lines of the log a failure shows.
const TAIL_LINES: usize = 40;

/// `nhacviec`, with every variable removed that a service manager or the developer's shell
/// could have set and that would change what it does.
pub fn nhacviec() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nhacviec"));
    for var in [
        "NHACVIEC_CONFIG",
        "NHACVIEC_LOG",
        "STATE_DIRECTORY",
        "CREDENTIALS_DIRECTORY",
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "JOURNAL_STREAM",
    ] {
        c.env_remove(var);
    }
    // The tests assert the English messages, whatever the developer's locale says.
    c.env("NHACVIEC_LANG", "en");
    c.stdin(Stdio::null());
    c
}

/// How to start a daemon: its arguments, environment and log file.
pub struct Spawn {
    cmd: Command,
    log: PathBuf,
    append: bool,
    stdout_to_log: bool,
}

impl Spawn {
    /// `nhacviec` (see [`nhacviec`]) writing its stderr to `log`, created afresh; its stdout
    /// is thrown away unless [`stdout_to_log`](Spawn::stdout_to_log).
    pub fn new(log: &Path) -> Spawn {
        Spawn {
            cmd: nhacviec(),
            log: log.to_path_buf(),
            append: false,
            stdout_to_log: false,
        }
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Spawn {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Spawn {
        self.cmd.env(key, value);
        self
    }

    /// Adds to the log instead of starting it afresh: one log across restarts.
    pub fn append(mut self) -> Spawn {
        self.append = true;
        self
    }

    /// Sends stdout to the log too.
    pub fn stdout_to_log(mut self) -> Spawn {
        self.stdout_to_log = true;
        self
    }

    pub fn start(mut self) -> Daemon {
        let file = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(self.append)
            .truncate(!self.append)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("cannot open the log {}: {e}", self.log.display()));
        let stdout = if self.stdout_to_log {
            Stdio::from(file.try_clone().expect("log file"))
        } else {
            Stdio::null()
        };
        let child = self
            .cmd
            .stdout(stdout)
            .stderr(file)
            .spawn()
            .expect("start nhacviec");
        Daemon {
            child,
            log: self.log,
            status: None,
        }
    }
}

/// A `nhacviec` this test started. Dropped while still running (a failed test), it is
/// killed (SIGKILL) and reaped; dropped during a panic, its log is printed.
pub struct Daemon {
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`HUP`, `USR1`, `TERM`, …) to this child only, by its PID.
    pub fn signal(&self, name: &str) {
        assert!(
            self.status.is_none(),
            "cannot send SIG{name}: nhacviec already exited ({:?})",
            self.status
        );
        let ok = Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -s {name} {} failed", self.pid());
    }

    /// SIGKILL, and reaps it: no chance to record anything.
    pub fn kill_hard(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            self.status = Some(self.child.wait().expect("reap nhacviec"));
        }
    }

    /// Whether it is still running (reaps it if it has exited).
    pub fn running(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status.is_none()
    }

    /// Its exit status, once it has exited.
    pub fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything it has logged so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the log, for failure messages.
    pub fn tail(&self) -> String {
        tail(&self.log)
    }

    /// Waits until at least `times` lines of the log contain every one of `needles`, and
    /// returns the log. Fails if it exits first, or after `within`.
    pub async fn wait_lines(&mut self, needles: &[&str], times: usize, within: Duration) -> String {
        let end = Instant::now() + within;
        loop {
            // Whether it was running is asked before the log is read, so a line logged just
            // before a clean exit is still found.
            let alive = self.running();
            let text = self.log_text();
            if count_lines(&text, needles) >= times {
                return text;
            }
            let needle = needles.join("` and `");
            assert!(
                alive,
                "nhacviec exited ({:?}) before logging `{needle}` (x{times}):\n{}",
                self.status,
                tail_of(&text)
            );
            assert!(
                Instant::now() < end,
                "no `{needle}` (x{times}) in the log within {within:?}:\n{}",
                tail_of(&text)
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// [`wait_lines`](Daemon::wait_lines) for one needle.
    pub async fn wait_log(&mut self, needle: &str, times: usize, within: Duration) -> String {
        self.wait_lines(&[needle], times, within).await
    }

    /// Waits for it to exit; fails after `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let end = Instant::now() + within;
        while self.running() {
            self.assert_before(end, within);
            tokio::time::sleep(POLL).await;
        }
        self.status.expect("exited")
    }

    /// [`wait_exit`](Daemon::wait_exit)'s exit code; -1 when a signal ended it.
    pub async fn exit_code(&mut self, within: Duration) -> i32 {
        self.wait_exit(within).await.code().unwrap_or(-1)
    }

    /// [`wait_exit`](Daemon::wait_exit) for a test that is not async.
    pub fn wait_exit_blocking(&mut self, within: Duration) -> ExitStatus {
        let end = Instant::now() + within;
        while self.running() {
            self.assert_before(end, within);
            std::thread::sleep(POLL);
        }
        self.status.expect("exited")
    }

    fn assert_before(&self, end: Instant, within: Duration) {
        assert!(
            Instant::now() < end,
            "nhacviec did not exit within {within:?}; log:\n{}",
            self.tail()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill_hard();
        if std::thread::panicking() {
            eprintln!("--- nhacviec log {}:\n{}", self.log.display(), self.tail());
        }
    }
}

/// The last lines of a log file.
pub fn tail(log: &Path) -> String {
    tail_of(&fs::read_to_string(log).unwrap_or_default())
}

fn tail_of(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

fn count_lines(text: &str, needles: &[&str]) -> usize {
    text.lines()
        .filter(|l| needles.iter().all(|x| l.contains(x)))
        .count()
}
