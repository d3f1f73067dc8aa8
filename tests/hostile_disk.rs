//! A full disk under the outbox, for real: a 64 KiB tmpfs mounted for the test (we run as
//! root in CI). A run that cannot write every `.eml` whole must not say it sent them: it
//! exits non-zero, leaves no empty or partial file, and the ledger keeps the rest for a
//! retry; with space again, the next run delivers each email exactly once, whole.
//!
//! Needs `mount`. Where mounting is impossible the test prints "skipped: <reason>" and
//! passes, except under `CI=true`, where it fails.

#[path = "support/skip.rs"]
mod skip;
use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const OFFICES: usize = 200;

/// Unmounts on drop, so a failing assertion does not leave the mount behind.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Result<Mount, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Mount(dir.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("run mount")
            .success();
        assert!(ok, "remount {size}");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn config(dir: &Path, outbox: &Path) -> PathBuf {
    let mut yaml = String::from("plan:\n  year: 2024\noffices:\n");
    for i in 0..OFFICES {
        yaml.push_str(&format!(
            "  o{i:03}:\n    name: Phòng số {i}\n    email: o{i:03}@vpubnd.example\n"
        ));
    }
    let leads: Vec<String> = (0..OFFICES).map(|i| format!("o{i:03}")).collect();
    yaml.push_str(&format!(
        "tasks:\n  - id: T1\n    title: Báo cáo kết quả cải cách hành chính quý I\n    deadline: trước ngày 30/01/2024\n    lead: [{}]\n",
        leads.join(", ")
    ));
    yaml.push_str(&format!(
        "mail:\n  from: Văn phòng <nhacviec@vpubnd.example>\n  transport:\n    outbox: {}\n  retry:\n    attempts: 5\n    initial: 1h\n    max: 1h\nledger:\n  path: {}\n",
        outbox.display(),
        dir.join("ledger.sqlite").display()
    ));
    let path = dir.join("plan.yaml");
    fs::write(&path, yaml).unwrap();
    path
}

fn nhacviec(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nhacviec"));
    c.args(args)
        .env_remove("NHACVIEC_CONFIG")
        .env("NHACVIEC_LANG", "en")
        .env_remove("STATE_DIRECTORY")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM");
    c
}

/// Waits for `child`, killing it and failing after `limit`. Its output is read while it
/// runs: a log longer than a pipe holds would otherwise block it forever.
fn wait(mut child: Child, limit: Duration) -> (i32, String, String) {
    fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    }
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let (out, err) = (out.join().unwrap(), err.join().unwrap());
            return (status.code().unwrap_or(-1), out, err);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every file of the outbox: (name, bytes).
fn outbox_files(outbox: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = fs::read_dir(outbox)
        .map(|rd| {
            rd.map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Each file is a whole `.eml` for one office: parses, names its office, ends as it should.
/// Returns the offices' addresses.
fn check_whole(files: &[(String, Vec<u8>)]) -> BTreeSet<String> {
    let mut to = BTreeSet::new();
    for (name, bytes) in files {
        assert!(name.ends_with(".eml") && !name.starts_with('.'), "{name}");
        assert!(!bytes.is_empty(), "{name} is empty");
        let msg = mail_parser::MessageParser::default()
            .parse(bytes)
            .unwrap_or_else(|| panic!("{name} does not parse"));
        let text = msg.body_text(0).unwrap_or_default();
        assert!(text.contains("T1"), "{name}: the body is cut: {text:?}");
        let raw = String::from_utf8_lossy(bytes);
        if let Some(b) = raw
            .split("boundary=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
        {
            assert!(
                raw.trim_end().ends_with(&format!("--{b}--")),
                "{name} lacks its closing boundary"
            );
        }
        let addr = msg
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_string();
        assert!(to.insert(addr.clone()), "{addr} got two emails");
    }
    to
}

/// The status of each reminder the ledger holds, without the skipped ones (the earlier
/// reminders missed before 29/01, recorded as never to be sent).
fn statuses(config: &Path) -> Vec<String> {
    let out = nhacviec(&["log", "-c", config.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .expect("an array")
        .iter()
        .map(|r| r["status"].as_str().unwrap_or_default().to_string())
        .filter(|s| s != "skipped")
        .collect()
}

fn counts(st: &[String]) -> std::collections::BTreeMap<&str, usize> {
    let mut m = std::collections::BTreeMap::new();
    for s in st {
        *m.entry(s.as_str()).or_default() += 1;
    }
    m
}

#[test]
fn a_full_disk_under_the_outbox_loses_no_email() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    fs::create_dir(&mnt).unwrap();
    let mount = match Mount::tmpfs(&mnt, "64k") {
        Ok(m) => m,
        Err(reason) => {
            skip::skip_or_fail(&format!("cannot mount a tmpfs: {reason}"));
            return;
        }
    };
    let outbox = mnt.join("outbox");
    let config = config(dir.path(), &outbox);
    let cfg = config.to_str().unwrap();

    // Monday 29/01/2024 08:00: each office's 1-working-day reminder is due.
    let child = nhacviec(&["run", "--once", "-c", cfg, "--at", "2024-01-29T08:00"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // The failed writes wait an hour for their retry: stop the run once it says so.
    let (code, out, err) = wait_for_retry_then_stop(child, pid);
    assert_ne!(
        code, 0,
        "a run that could not write its emails succeeded:\n{out}\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let files = outbox_files(&outbox);
    let written = check_whole(&files);
    assert!(
        written.len() < OFFICES,
        "64 KiB cannot hold {OFFICES} emails: {}",
        written.len()
    );
    let st = statuses(&config);
    assert_eq!(st.len(), OFFICES, "{:?}", counts(&st));
    let sent = st.iter().filter(|s| *s == "sent").count();
    assert_eq!(
        sent,
        written.len(),
        "the ledger says sent only for whole files"
    );
    assert!(
        st.iter()
            .all(|s| ["sent", "retrying", "pending"].contains(&s.as_str())),
        "{:?}",
        counts(&st)
    );

    // Space again: the next run, past the retry time, delivers the rest, each once.
    mount.resize("16m");
    let child = nhacviec(&["run", "--once", "-c", cfg, "--at", "2024-01-29T10:30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, out, err) = wait(child, Duration::from_secs(120));
    assert_eq!(code, 0, "{out}\n{err}");
    let files = outbox_files(&outbox);
    assert_eq!(files.len(), OFFICES, "one file per office");
    let all = check_whole(&files);
    assert_eq!(all.len(), OFFICES);
    assert!(written.is_subset(&all));
    let st = statuses(&config);
    assert_eq!(st.len(), OFFICES, "{:?}", counts(&st));
    assert!(st.iter().all(|s| s == "sent"), "{:?}", counts(&st));
}

/// Waits until the run has failed its writes and sleeps for the retry, then sends TERM
/// (a stop request ends the wait at once) and collects its exit.
fn wait_for_retry_then_stop(mut child: Child, pid: u32) -> (i32, String, String) {
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stderr.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    all.extend_from_slice(&buf[..n]);
                    if String::from_utf8_lossy(&all).contains("waiting to retry") {
                        let _ = tx.send(());
                    }
                }
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let start = Instant::now();
    let stopped = loop {
        if rx.try_recv().is_ok() {
            let ok = Command::new("kill")
                .args(["-s", "TERM", &pid.to_string()])
                .status()
                .unwrap()
                .success();
            assert!(ok);
            break true;
        }
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the first run neither finished nor waited to retry in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(150) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the first run did not stop on TERM (stopped: {stopped})");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let err = reader.join().unwrap();
    (status.code().unwrap_or(-1), out, err)
}
