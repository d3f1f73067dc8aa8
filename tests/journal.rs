//! What the journal reads like, through the real binary on a copy of the seed plan: each
//! delivery says what it was in Vietnamese words and keeps its structured fields, a sweep
//! ends in one summary line, missed reminders are one line per sweep, a dry run never says
//! it sent, and after a reload the reload's result is the last line.

mod support;

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::daemon::{Spawn, nhacviec};

const PATIENCE: Duration = Duration::from_secs(30);

fn seed_in(dir: &Path) -> PathBuf {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/khanh-hoa-2024.yaml");
    let copy = dir.join("nhacviec.yaml");
    fs::copy(seed, &copy).unwrap();
    copy
}

/// `nhacviec ARGS` → (exit code, stdout, stderr).
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = nhacviec();
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run nhacviec");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn events(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn deliveries_and_the_sweep_are_told_in_words_with_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = seed_in(dir.path());
    let c = cfg.to_str().unwrap();
    // Running since the day before: its reminders go out on their day, not as a first start.
    let (code, _, err) = run(&["run", "--once", "--at", "2024-01-19T08:00", "-c", c], &[]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(
        &[
            "--log-format",
            "json",
            "run",
            "--once",
            "--at",
            "2024-01-22T08:00",
            "-c",
            c,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let ev = events(&err);
    let sent: Vec<&Value> = ev.iter().filter(|e| e["status"] == "sent").collect();
    assert!(!sent.is_empty(), "{err}");
    let centre = sent
        .iter()
        .find(|e| e["office"] == "trung-tam-a")
        .unwrap_or_else(|| panic!("no delivery to trung-tam-a: {err}"));
    assert_eq!(
        centre["message"],
        "đã gửi: TCTH.1 → trung-tam-a (trước 7 ngày), 1 thư tới 1 địa chỉ"
    );
    for f in [
        "task",
        "office",
        "kind",
        "status",
        "email_message_id",
        "recipients",
    ] {
        assert!(!centre[f].is_null(), "no `{f}` field: {centre}");
    }
    let summaries: Vec<&str> = ev
        .iter()
        .filter_map(|e| e["message"].as_str())
        .filter(|m| m.starts_with("quét "))
        .collect();
    let emails = sent
        .iter()
        .map(|e| e["email_message_id"].as_str().unwrap())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert_eq!(
        summaries,
        [format!(
            "quét 22/01/2024 08:00: gửi {emails} thư ({} lời nhắc), 0 lỗi, bỏ qua 0",
            sent.len()
        )]
    );

    // The same run as text: the words, not `reminder sent`.
    let dir = tempfile::tempdir().unwrap();
    let cfg = seed_in(dir.path());
    let c = cfg.to_str().unwrap();
    // Running since the day before: its reminders go out on their day, not as a first start.
    let (code, _, err) = run(&["run", "--once", "--at", "2024-01-19T08:00", "-c", c], &[]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&["run", "--once", "--at", "2024-01-22T08:00", "-c", c], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("đã gửi: TCTH.1 → trung-tam-a (trước 7 ngày), 1 thư"),
        "{err}"
    );
    assert!(err.contains("quét 22/01/2024 08:00: gửi "), "{err}");
    assert!(!err.contains("reminder sent"), "{err}");
}

#[test]
fn missed_reminders_are_one_line_per_sweep_and_each_only_at_debug() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = seed_in(dir.path());
    let c = cfg.to_str().unwrap();
    // Running in January, then down until June: the reminders in between were missed.
    let (code, _, err) = run(&["run", "--once", "--at", "2024-01-15T08:00", "-c", c], &[]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(
        &[
            "--log-format",
            "json",
            "run",
            "--once",
            "--at",
            "2024-06-20T08:00",
            "-c",
            c,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let ev = events(&err);
    let skipped: Vec<&Value> = ev.iter().filter(|e| e["status"] == "skipped").collect();
    assert_eq!(skipped.len(), 1, "one line for all of them: {err}");
    let n = skipped[0]["skipped"].as_u64().unwrap();
    assert!(n > 10, "{n}");
    let msg = skipped[0]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!("bỏ qua {n} lời nhắc đã lỡ")),
        "{msg}"
    );
    let summary = ev
        .iter()
        .filter_map(|e| e["message"].as_str())
        .find(|m| m.starts_with("quét 20/06/2024 08:00: "))
        .unwrap_or_else(|| panic!("no summary: {err}"));
    assert!(summary.ends_with(&format!("bỏ qua {n}")), "{summary}");

    let dir = tempfile::tempdir().unwrap();
    let cfg = seed_in(dir.path());
    let c = cfg.to_str().unwrap();
    // Running in January, then down until June: the reminders in between were missed.
    let (code, _, err) = run(&["run", "--once", "--at", "2024-01-15T08:00", "-c", c], &[]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(
        &[
            "--log-format",
            "json",
            "run",
            "--once",
            "--at",
            "2024-06-20T08:00",
            "-c",
            c,
        ],
        &[("NHACVIEC_LOG", "debug")],
    );
    assert_eq!(code, 0, "{err}");
    let each = events(&err)
        .iter()
        .filter(|e| e["status"] == "skipped" && e["level"] == "DEBUG")
        .count() as u64;
    assert_eq!(each, n, "at debug, one line per missed reminder");
}

/// A first start settles the backlog of a plan that began before it and says so once;
/// later sweeps count the same backlog and say nothing of it.
#[test]
fn the_backlog_of_a_first_start_is_told_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = seed_in(dir.path());
    let c = cfg.to_str().unwrap();
    let (code, _, first) = run(&["run", "--once", "--at", "2024-06-20T08:00", "-c", c], &[]);
    assert_eq!(code, 0, "{first}");
    assert!(
        first.contains("lời nhắc đã qua trước lần chạy đầu tiên"),
        "{first}"
    );
    for at in ["2024-06-21T08:00", "2024-06-24T08:00"] {
        let (code, _, later) = run(&["run", "--once", "--at", at, "-c", c], &[]);
        assert_eq!(code, 0, "{later}");
        assert!(!later.contains("trước lần chạy đầu tiên"), "{at}: {later}");
    }
}

#[test]
fn a_dry_run_never_says_it_sent() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = seed_in(dir.path());
    let c = cfg.to_str().unwrap();
    let (code, out, err) = run(
        &[
            "--log-format",
            "json",
            "run",
            "--dry-run",
            "--at",
            "2024-01-22T08:00",
            "-c",
            c,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("would send"), "{out}");
    for e in events(&err) {
        assert!(e.get("sent").is_none() && e["status"] != "sent", "{e}");
        let m = e["message"].as_str().unwrap_or("");
        assert!(!m.contains("đã gửi") && !m.contains("sent"), "{m}");
    }
    assert!(!dir.path().join("nhacviec.db").exists());
}

#[tokio::test]
async fn after_a_reload_the_reload_result_is_the_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = seed_in(dir.path());
    let mut d = Spawn::new(&dir.path().join("stderr.log"))
        .args([
            "run",
            "-c",
            cfg.to_str().unwrap(),
            "--at",
            "2024-01-22T08:00",
        ])
        .start();
    d.wait_log("quét 22/01/2024", 1, PATIENCE).await;
    // The clerk gives TCTH.1 to Phòng Kinh tế as well, then SIGHUP.
    let yaml = fs::read_to_string(&cfg).unwrap();
    let changed = yaml.replacen("lead: cac-trung-tam", "lead: [cac-trung-tam, kinh-te]", 1);
    assert_ne!(
        changed, yaml,
        "the seed still gives TCTH.1 to cac-trung-tam"
    );
    fs::write(&cfg, changed).unwrap();
    d.signal("HUP");
    d.wait_log("đã nạp lại cấu hình", 1, PATIENCE).await;
    // Anything logged after it would have come within this wait: the sweep it triggered
    // logged before it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = d.log_text();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = lines.last().unwrap();
    assert!(last.contains("đã nạp lại cấu hình"), "{log}");
    assert!(last.contains("đã quét lại ngay: gửi 1 thư"), "{log}");
    let reload_sweep = lines
        .iter()
        .rposition(|l| l.contains("đã gửi: TCTH.1 → kinh-te"))
        .unwrap_or_else(|| panic!("the new lead was reminded:\n{log}"));
    assert!(reload_sweep < lines.len() - 1);
    d.signal("TERM");
    assert!(d.wait_exit(PATIENCE).await.success());
}
