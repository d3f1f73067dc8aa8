//! Completions through the real binary, on a copy of the seed plan in a temp dir: `done`
//! stops a task's reminders in `plan` and in `run`, `undone` brings them back, and the
//! ledger keeps every row of the trail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tempfile::TempDir;

struct Seed {
    dir: TempDir,
}

impl Seed {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/khanh-hoa-2024.yaml");
        std::fs::copy(from, dir.path().join("plan.yaml")).unwrap();
        Seed { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("plan.yaml")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_nhacviec"))
            .args(args)
            .arg("-c")
            .arg(self.config())
            .current_dir(self.dir.path())
            .env_remove("NHACVIEC_CONFIG")
            .env_remove("STATE_DIRECTORY")
            .stdin(Stdio::null())
            .output()
            .expect("run nhacviec")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// `task,office` of every nudge `plan` lists from 15/01/2024 for 120 days.
    fn planned(&self) -> Vec<String> {
        let csv = self.ok(&[
            "plan",
            "--at",
            "2024-01-15T08:00",
            "--days",
            "120",
            "--format",
            "csv",
        ]);
        csv.lines()
            .skip(1)
            .map(|l| l.split(',').skip(2).take(2).collect::<Vec<_>>().join(","))
            .collect()
    }

    fn trail(&self) -> Vec<(String, Option<String>, i64)> {
        let db = rusqlite::Connection::open(self.dir.path().join("nhacviec.db")).unwrap();
        let mut st = db
            .prepare("SELECT task, office, undone FROM completions ORDER BY id")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

fn count(planned: &[String], key: &str) -> usize {
    planned.iter().filter(|k| *k == key).count()
}

#[test]
fn done_stops_an_offices_reminders_and_undone_brings_them_back() {
    let s = Seed::new();
    let before = s.planned();
    assert!(count(&before, "TCTH.1,trung-tam-a") > 3, "{before:?}");
    assert!(
        count(&before, "TCTH.1,hctc") > 0,
        "the cooperating office is nudged"
    );

    let out = s.ok(&[
        "done",
        "TCTH.1",
        "--office",
        "trung-tam-a",
        "--on",
        "2024-01-10",
        "--note",
        "đã nộp",
    ]);
    assert!(
        out.contains("đã ghi nhận hoàn thành ngày 10/01/2024"),
        "{out}"
    );
    let after = s.planned();
    assert_eq!(count(&after, "TCTH.1,trung-tam-a"), 0, "{after:?}");
    // The other leads still owe their share; so the cooperating office is still nudged.
    assert_eq!(
        count(&after, "TCTH.1,trung-tam-b"),
        count(&before, "TCTH.1,trung-tam-b")
    );
    assert_eq!(count(&after, "TCTH.1,hctc"), count(&before, "TCTH.1,hctc"));

    // Every lead done: the cooperating office's reminders stop too.
    for o in ["trung-tam-b", "trung-tam-c"] {
        s.ok(&["done", "TCTH.1", "--office", o, "--on", "2024-01-12"]);
    }
    assert!(!s.planned().iter().any(|k| k.starts_with("TCTH.1,")));

    s.ok(&["undone", "TCTH.1", "--office", "trung-tam-a"]);
    let back = s.planned();
    assert_eq!(
        count(&back, "TCTH.1,trung-tam-a"),
        count(&before, "TCTH.1,trung-tam-a")
    );
    assert_eq!(count(&back, "TCTH.1,hctc"), count(&before, "TCTH.1,hctc"));
    assert_eq!(count(&back, "TCTH.1,trung-tam-b"), 0);

    // Nothing standing for that key now: a second undo is refused and records nothing.
    let again = s.run(&["undone", "TCTH.1", "--office", "trung-tam-a"]);
    assert_eq!(again.status.code(), Some(2));
    let log = s.ok(&[
        "log",
        "--completions",
        "--task",
        "TCTH.1",
        "--format",
        "csv",
    ]);
    let actions: Vec<&str> = log
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(5).unwrap())
        .collect();
    assert_eq!(actions, ["done", "done", "done", "undone"], "{log}");
    assert!(log.contains(",2024-01-10,done,cli,,đã nộp"), "{log}");
    let trail = s.trail();
    assert_eq!(trail.len(), 4, "{trail:?}");
    assert_eq!(
        trail[0],
        ("TCTH.1".to_string(), Some("trung-tam-a".to_string()), 0)
    );
    assert_eq!(
        trail[3],
        ("TCTH.1".to_string(), Some("trung-tam-a".to_string()), 1)
    );
}

#[test]
fn a_completion_stops_what_run_sends_and_bad_arguments_record_nothing() {
    let s = Seed::new();
    s.ok(&["done", "TCTH.1", "--on", "2024-01-10"]);
    for (args, why) in [
        (vec!["done", "NOPE.1"], "no task"),
        (
            vec!["done", "TCTH.1", "--office", "kstthc"],
            "not its office",
        ),
        (
            vec!["done", "VII.1", "--occurrence", "some day"],
            "no such occurrence",
        ),
    ] {
        let out = s.run(&args);
        assert_eq!(out.status.code(), Some(2), "{why}");
    }
    assert_eq!(s.trail().len(), 1);
    // `simulate` as written counts the ledger's completions; assuming nothing done, not.
    let sim = |assume: &str| {
        s.ok(&[
            "simulate",
            "--from",
            "2024-01-15",
            "--until",
            "2024-02-15",
            "--assume",
            assume,
            "--format",
            "csv",
        ])
        .matches(",trung-tam-a,")
        .count()
    };
    assert_eq!(sim("as-written"), 0);
    assert!(sim("never-done") > 0);
    s.ok(&["run", "--once", "--at", "2024-01-22T08:00"]);
    let log = s.ok(&["log", "--all", "--format", "csv"]);
    assert!(
        log.lines().count() > 1,
        "other tasks are still reminded: {log}"
    );
    assert!(
        !log.contains("TCTH.1"),
        "a task done for every office is not reminded: {log}"
    );
}
