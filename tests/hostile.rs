//! Hostile values in the YAML, against the real binary: `check` and `plan` must answer
//! (exit 0, or 1 for a refused config) within 10 s, and never panic. Each value below once
//! made them run for minutes or exit 101.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(10);

fn config(deadline: &str, policy: &str, schedule: &str, smtp: &str) -> String {
    format!(
        "plan:\n  year: 2024\noffices:\n  hctc:\n    name: Phòng HC-TC\n    email: hctc@vpubnd.example\n    head: truong.hctc@vpubnd.example\n  kt:\n    name: Phòng Kinh tế\n    email: kt@vpubnd.example\nleadership: hctc\ntasks:\n  - id: T\n    title: Báo cáo\n    deadline: {deadline}\n    lead: hctc\n    cooperating: kt\n    reminders: p\n  - id: U\n    title: Báo cáo quý\n    deadline: Quý II/2024\n    lead: kt\nreminders:\n  p:\n{policy}schedule:\n{schedule}mail:\n  from: Văn phòng <nhacviec@vpubnd.example>\n  transport:\n{smtp}ledger:\n  path: ledger.sqlite\n"
    )
}

/// (name, YAML): one hostile value each.
fn cases() -> Vec<(&'static str, String)> {
    let before = "    before: [7d, 1wd]\n";
    let sched = "  catch_up: 7d\n";
    let outbox = "    outbox: outbox\n";
    let date = "trước ngày 30/01/2024";
    vec![
        ("year 1024", config("30/01/1024", before, sched, outbox)),
        ("year 0000", config("30/01/0000", before, sched, outbox)),
        ("year 9999", config("31/12/9999", before, sched, outbox)),
        (
            "before 97000000d",
            config(date, "    before: [97000000d]\n", sched, outbox),
        ),
        (
            "before u32::MAX wd",
            config(date, "    before: [4294967295wd]\n", sched, outbox),
        ),
        (
            "before past u32",
            config(date, "    before: [99999999999999999999d]\n", sched, outbox),
        ),
        (
            "overdue_every 100000000d",
            config(
                "30/01/1024",
                "    before: [7d]\n    overdue_every: 100000000d\n",
                sched,
                outbox,
            ),
        ),
        (
            "overdue_every 1wd, no limit, year 0000",
            config(
                "30/01/0000",
                "    before: [7d]\n    overdue_every: 1wd\n    overdue_limit: 4294967295\n",
                sched,
                outbox,
            ),
        ),
        (
            "head_after 100000000d",
            config(
                date,
                "    before: [7d]\n    escalate:\n      head_after: 100000000d\n      leadership_after: 4294967295wd\n",
                sched,
                outbox,
            ),
        ),
        (
            "catch_up 100000000d",
            config(date, before, "  catch_up: 100000000d\n", outbox),
        ),
        (
            "catch_up u32::MAX wd",
            config(date, before, "  catch_up: 4294967295wd\n", outbox),
        ),
        (
            "timeout u64::MAX s",
            config(
                date,
                before,
                sched,
                "    smtp:\n      host: 127.0.0.1\n      port: 1\n      timeout: 18446744073709551615s\n",
            ),
        ),
        (
            "periodic over millennia",
            config(
                "{phrase: Theo quy định, every: month, day: last, working_days_after: 2, from: 0001-01-01, until: 9999-12-31}",
                before,
                sched,
                outbox,
            ),
        ),
    ]
}

/// Runs the binary with `args` in `dir`; kills it and fails after [`LIMIT`].
fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nhacviec"))
        .args(args)
        .current_dir(dir)
        .env_remove("NHACVIEC_CONFIG")
        .env("NHACVIEC_LANG", "en")
        .env_remove("STATE_DIRECTORY")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`nhacviec {}` still running after {LIMIT:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code().unwrap_or(-1), reader.join().unwrap())
}

#[test]
fn check_and_plan_answer_every_hostile_value_quickly() {
    let mut failures = Vec::new();
    for (name, yaml) in cases() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("plan.yaml"), &yaml).unwrap();
        for cmd in [
            vec!["check", "-c", "plan.yaml", "--at", "2024-03-01T08:00"],
            vec!["plan", "-c", "plan.yaml", "--at", "2024-03-01T08:00"],
            vec![
                "plan",
                "-c",
                "plan.yaml",
                "--at",
                "2024-03-01T08:00",
                "--until",
                "9999-12-31",
            ],
        ] {
            let (code, err) = run(dir.path(), &cmd);
            if !(0..=1).contains(&code) || err.contains("panicked") {
                failures.push(format!("{name}: `{}` exited {code}: {err}", cmd.join(" ")));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// 20,000 tasks, each waiting for the next, the last waiting for the one before it: the
/// check for circles among them walks each task once (it walked the chain again from every
/// task: minutes), and names the circle of two.
#[test]
fn a_long_chain_of_waiting_tasks_is_checked_quickly() {
    let n = 20_000;
    let mut yaml = String::from(
        "plan:\n  year: 2024\noffices:\n  hctc:\n    name: Phòng HC-TC\n    email: hctc@vpubnd.example\ntasks:\n",
    );
    for i in 0..n {
        let waits_for = if i + 1 < n { i + 1 } else { n - 2 };
        yaml += &format!(
            "  - id: C.{i}\n    title: Bước {i}\n    deadline:\n      phrase: Sau khi bước trước xong\n      after: C.{waits_for}\n    lead: hctc\n"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plan.yaml"), &yaml).unwrap();
    let (code, err) = run(
        dir.path(),
        &["check", "-c", "plan.yaml", "--at", "2024-03-01T08:00"],
    );
    assert_eq!(code, 1, "{err}");
    let circles: Vec<&str> = err.lines().filter(|l| l.contains("in a circle")).collect();
    assert_eq!(
        circles,
        [format!(
            "error: tasks wait for each other in a circle: C.{} → C.{} → C.{}",
            n - 2,
            n - 1,
            n - 2
        )],
        "{err}"
    );
}

#[test]
fn check_of_an_endless_file_ends_quickly_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run(dir.path(), &["check", "-c", "/dev/zero"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("the config file is larger than 64 MiB"),
        "{err}"
    );
}

#[test]
fn a_utf16_file_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    for bom in [[0xFF, 0xFE], [0xFE, 0xFF]] {
        let mut bytes = bom.to_vec();
        for u in "plan:\n  year: 2024\n".encode_utf16() {
            bytes.extend(if bom[0] == 0xFF {
                u.to_le_bytes()
            } else {
                u.to_be_bytes()
            });
        }
        std::fs::write(dir.path().join("plan.yaml"), bytes).unwrap();
        let (code, err) = run(dir.path(), &["check", "-c", "plan.yaml"]);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("the file is UTF-16; save it as UTF-8"),
            "{err}"
        );
        assert!(!err.contains("check the path"), "{err}");
    }
}

#[test]
fn a_password_in_the_yaml_is_not_quoted_back() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(
        "30/01/2024",
        "    before: [7d]\n",
        "  catch_up: 7d\n",
        "    smtp:\n      host: mail.example.org\n      password: hunter2-S3cret\n",
    );
    std::fs::write(dir.path().join("plan.yaml"), yaml).unwrap();
    let (code, err) = run(dir.path(), &["check", "-c", "plan.yaml"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("`password` puts a secret"), "{err}");
    assert!(err.contains("password: ****"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn control_characters_in_the_yaml_are_escaped_in_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(
        "30/01/2024",
        "    before: [7d]\n",
        "  catch_up: 7d\n",
        "    outbox: outbox\n",
    )
    .replace("lead: kt", "lead: \"kt\u{1b}]0;pwned\u{7}\u{1b}[2J\"");
    std::fs::write(dir.path().join("plan.yaml"), yaml).unwrap();
    let (code, err) = run(dir.path(), &["check", "-c", "plan.yaml"]);
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains(['\u{1b}', '\u{7}']), "{err:?}");
    assert!(err.contains("\\u{1b}[2J"), "{err}");
}
