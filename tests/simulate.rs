//! `nhacviec simulate` through the real binary, on a copy of the seed plan in a temp dir: it
//! counts what `run --once` day by day really sends, writes nothing, and a plan whose every
//! deadline is met has no overdue email.

use mail_parser::{Address, MessageParser};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The seed plan copied into `dir` (its ledger and outbox resolve next to it).
fn seed_in(dir: &Path) -> PathBuf {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/khanh-hoa-2024.yaml");
    let copy = dir.join("nhacviec.yaml");
    fs::copy(seed, &copy).unwrap();
    copy
}

fn nhacviec(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nhacviec"))
        .args(args)
        .env_remove("NHACVIEC_CONFIG")
        .env("NHACVIEC_LANG", "en")
        .env_remove("STATE_DIRECTORY")
        .env_remove("JOURNAL_STREAM")
        .output()
        .expect("run nhacviec");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn simulate(cfg: &Path, from: &str, until: &str, extra: &[&str]) -> Value {
    let c = cfg.to_str().unwrap();
    let mut args = vec![
        "simulate", "-c", c, "--from", from, "--until", until, "--format", "json",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = nhacviec(&args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn addrs(a: Option<&Address>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address())
            .map(str::to_lowercase)
            .collect()
    })
    .unwrap_or_default()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn two_weeks_of_january_count_what_run_once_sends_day_by_day() {
    let real = tempfile::tempdir().unwrap();
    let cfg = seed_in(real.path());
    let c = cfg.to_str().unwrap();
    // The daemon's one sweep a day (08:00), as `run --once --at`, on one real ledger.
    for day in 15..=28 {
        let at = format!("2024-01-{day:02}T08:00");
        let (code, out, err) = nhacviec(&["run", "--once", "--at", &at, "-c", c]);
        assert_eq!(code, 0, "{at}: {out}{err}");
    }
    let mut sent: BTreeMap<String, u64> = BTreeMap::new();
    let outbox = real.path().join("outbox");
    let mut emails = 0;
    for name in files(&outbox) {
        let raw = fs::read(outbox.join(&name)).unwrap();
        let m = MessageParser::default().parse(&raw).expect("an email");
        emails += 1;
        for a in addrs(m.to()).into_iter().chain(addrs(m.cc())) {
            *sent.entry(a).or_insert(0) += 1;
        }
    }
    assert!(emails >= 10, "the fortnight sends mail: {emails}");

    let scratch = tempfile::tempdir().unwrap();
    let cfg = seed_in(scratch.path());
    let v = simulate(&cfg, "2024-01-15", "2024-01-28", &[]);
    let simulated: BTreeMap<String, u64> = v["addresses"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(a, n)| (a.clone(), n.as_u64().unwrap()))
        .collect();
    assert_eq!(simulated, sent, "per address, To and Cc alike");
    assert_eq!(v["emails"], emails);
    assert_eq!(v["sweeps"], 14, "one scheduled sweep a day");
    assert_eq!(v["skipped"]["count"], 0);
    assert_eq!(
        files(scratch.path()),
        ["nhacviec.yaml"],
        "simulate wrote nothing: no ledger, no outbox"
    );
}

#[test]
fn a_year_with_every_deadline_met_has_no_overdue_or_escalation_email() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = seed_in(dir.path());
    let met = simulate(
        &cfg,
        "2024-01-01",
        "2024-12-31",
        &["--assume", "done-on-deadline"],
    );
    let never = simulate(
        &cfg,
        "2024-01-01",
        "2024-12-31",
        &["--assume", "never-done"],
    );
    let late_kinds = |v: &Value| -> Vec<String> {
        v["kinds"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with("overdue") || k.starts_with("escalation"))
            .cloned()
            .collect()
    };
    assert_eq!(late_kinds(&met), Vec::<String>::new(), "{:#}", met["kinds"]);
    assert!(!late_kinds(&never).is_empty(), "never done: overdue mail");
    let kinds = |v: &Value, k: &str| {
        v["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == k)
            .count()
    };
    assert_eq!(kinds(&met, "leadership"), 0);
    assert_eq!(kinds(&met, "head"), 0);
    assert!(kinds(&never, "leadership") == 1);
    // Met deadlines still get their reminders before.
    assert!(met["emails"].as_u64().unwrap() > 0);
    assert!(met["emails"].as_u64() < never["emails"].as_u64());
    // The busiest day is one of the weeks' days and counts emails.
    let busiest = &never["busiest_day"];
    assert!(busiest["emails"].as_u64().unwrap() >= 1, "{busiest}");
    assert_eq!(files(dir.path()), ["nhacviec.yaml"]);
}

#[test]
fn the_table_is_in_vietnamese_and_csv_has_stable_keys() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = seed_in(dir.path());
    let c = cfg.to_str().unwrap();
    // Vietnamese by `--lang`, over the English the helper asks for.
    let (code, out, err) = nhacviec(&[
        "--lang",
        "vi",
        "simulate",
        "-c",
        c,
        "--from",
        "2024-01-15",
        "--until",
        "2024-01-28",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Tổng cộng: "), "{out}");
    assert!(out.contains("ngày nhiều thư nhất"), "{out}");
    assert!(out.contains("Bỏ qua"), "{out}");
    assert!(out.contains("Trung tâm A"), "{out}");
    let (code, csv, err) = nhacviec(&[
        "simulate",
        "-c",
        c,
        "--from",
        "2024-01-15",
        "--until",
        "2024-01-28",
        "--format",
        "csv",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        csv.starts_with("week,monday,kind,office,name,emails\r\n"),
        "{csv}"
    );
    assert!(csv.contains("2024-W04,2024-01-22,office,hctc,"), "{csv}");
    let (code, _, err) = nhacviec(&[
        "simulate",
        "-c",
        c,
        "--from",
        "2024-02-01",
        "--until",
        "2024-01-01",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("is after"), "{err}");
    assert_eq!(files(dir.path()), ["nhacviec.yaml"]);
}
