//! The seed plan (config/khanh-hoa-2024.yaml) through the real binary: `check` passes and
//! `plan` shows what the issue promises, on Vietnamese working days.

//!
//! Every test works on a copy of the repository's config folder in its own temp dir: the
//! ledger sits next to the config, and a ledger left in the repository by the README's
//! first command (`cargo run -- run --once …`) must neither change what these tests see
//! nor be written by them.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// The repository's config folder, copied into a temp dir, without any ledger in it.
struct Seed {
    dir: TempDir,
    path: PathBuf,
}

fn repo_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

fn copy_config_folder(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(repo_config()).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name.to_string_lossy().ends_with(".yaml") {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

fn seed() -> Seed {
    let dir = tempfile::tempdir().unwrap();
    copy_config_folder(&dir.path().join("config"));
    let path = dir.path().join("config/khanh-hoa-2024.yaml");
    Seed { dir, path }
}

fn nhacviec(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nhacviec"))
        .args(args)
        .env_remove("NHACVIEC_CONFIG")
        .env("NHACVIEC_LANG", "en")
        .env_remove("STATE_DIRECTORY")
        .output()
        .expect("run nhacviec");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn plan_json(config: &Path, extra: &[&str]) -> Value {
    let c = config.to_str().unwrap();
    let mut args = vec!["plan", "-c", c, "--format", "json"];
    args.extend_from_slice(extra);
    let (code, out, err) = nhacviec(&args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn nudges(v: &Value) -> &Vec<Value> {
    v["nudges"].as_array().unwrap()
}

fn field<'a>(n: &'a Value, k: &str) -> &'a str {
    n[k].as_str().unwrap_or("")
}

#[test]
fn check_passes_on_the_seed_plan() {
    let (code, out, err) = nhacviec(&[
        "check",
        "-c",
        seed().path.to_str().unwrap(),
        "--at",
        "2024-01-15T08:00",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tasks:     30"), "{out}");
    assert!(!err.contains("error"), "{err}");
}

#[test]
fn each_centre_hears_about_its_plan_on_working_days_before_30_01() {
    centres_hear_before_30_01(&seed());
}

fn centres_hear_before_30_01(seed: &Seed) {
    assert!(
        !seed.dir.path().join("config/nhacviec.db").exists(),
        "a fresh copy has no ledger"
    );
    let v = plan_json(&seed.path, &["--at", "2024-01-15T08:00", "--days", "30"]);
    for centre in ["trung-tam-a", "trung-tam-b", "trung-tam-c"] {
        let mine: Vec<&Value> = nudges(&v)
            .iter()
            .filter(|n| field(n, "office") == centre && field(n, "task") == "TCTH.1")
            .collect();
        let before: Vec<&str> = mine
            .iter()
            .filter(|n| field(n, "send_at") < "2024-01-30")
            .map(|n| &field(n, "send_at")[..10])
            .collect();
        // "trước ngày 30/01/2024" is read strictly: due by Monday 29/01 (the on-day
        // reminder), and every reminder before counts to that day.
        assert_eq!(
            before,
            [
                "2024-01-15",
                "2024-01-22",
                "2024-01-24",
                "2024-01-26",
                "2024-01-29"
            ],
            "{centre}"
        );
        assert!(mine.iter().all(|n| field(n, "deadline") == "2024-01-30"));
        assert!(
            mine.iter()
                .all(|n| field(n, "deadline_phrase") == "trước ngày 30/01/2024")
        );
        assert!(mine.iter().all(|n| field(n, "send_at").ends_with("+07:00")));
    }
}

#[test]
fn in_june_the_second_quarter_tasks_come_up_and_others_wait() {
    let v = plan_json(&seed().path, &["--at", "2024-06-01", "--days", "30"]);
    for task in ["I.2", "III.3"] {
        assert!(
            nudges(&v)
                .iter()
                .any(|n| field(n, "task") == task && field(n, "deadline") == "2024-06-30"),
            "{task} is not due 30/06/2024"
        );
    }
    let unscheduled: Vec<(&str, &str, &str)> = v["unscheduled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                field(u, "task"),
                field(u, "deadline_phrase"),
                field(u, "reason"),
            )
        })
        .collect();
    for (task, phrase) in [
        ("I.1", "Theo hướng dẫn"),
        ("II.4", "Theo tiến độ của Trung ương"),
        ("VII.4", "Theo lịch"),
    ] {
        assert!(
            unscheduled.iter().any(|u| u.0 == task && u.1 == phrase),
            "{task}: {unscheduled:?}"
        );
    }
    let iv2 = unscheduled
        .iter()
        .find(|u| u.0 == "IV.2")
        .expect("IV.2 is unscheduled");
    assert!(iv2.2.contains("III.3"), "{iv2:?}");
}

/// The days off of 2024 from the shared reference data.
fn days_off_2024() -> (BTreeSet<String>, BTreeSet<String>) {
    let csv = include_str!("data/vn-civil-service-2024-2026.csv");
    let mut off = BTreeSet::new();
    let mut worked = BTreeSet::new();
    for line in csv.lines().skip(1).filter(|l| l.starts_with("2024")) {
        let mut cells = line.split(',');
        let date = cells.next().unwrap().to_string();
        let _weekday = cells.next();
        match cells.next() {
            Some("off") => off.insert(date),
            Some("work") => worked.insert(date),
            other => panic!("{other:?}"),
        };
    }
    (off, worked)
}

#[test]
fn a_whole_year_of_the_seed_plan_never_nudges_on_a_day_off() {
    let v = plan_json(
        &seed().path,
        &["--at", "2024-01-01", "--until", "2024-12-31"],
    );
    let (off, worked) = days_off_2024();
    assert!(off.contains("2024-02-12") && worked.contains("2024-05-04"));
    let all = nudges(&v);
    assert!(all.len() > 100, "only {} nudges", all.len());
    for n in all {
        let day = &field(n, "send_at")[..10];
        let date: chrono::NaiveDate = day.parse().unwrap();
        use chrono::Datelike;
        let weekend = date.weekday().number_from_monday() >= 6;
        assert!(!off.contains(day), "nudge on a holiday: {n}");
        assert!(!weekend || worked.contains(day), "nudge on a weekend: {n}");
    }
}

#[test]
fn holidays_shape_working_day_offsets_and_a_worked_saturday_counts() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plan.yaml");
    std::fs::write(
        &p,
        "plan:\n  year: 2024\noffices:\n  hctc:\n    name: Phòng HC-TC\n    email: hctc@vpubnd.example\nreminders:\n  default:\n    before: [3wd, 1wd]\n    overdue_every: never\n    escalate: {}\ntasks:\n  - id: A\n    title: a\n    deadline: 02/05/2024\n    lead: hctc\n  - id: B\n    title: b\n    deadline: 06/05/2024\n    lead: hctc\n  - id: C\n    title: c\n    deadline: 15/02/2024\n    lead: hctc\n",
    )
    .unwrap();
    let v = plan_json(&p, &["--at", "2024-01-01", "--until", "2024-12-31"]);
    let of = |task: &str| -> Vec<(String, String)> {
        nudges(&v)
            .iter()
            .filter(|n| field(n, "task") == task)
            .map(|n| {
                (
                    field(n, "send_at")[..10].to_string(),
                    n["days_left"].as_i64().expect("a number").to_string(),
                )
            })
            .collect()
    };
    // 02/05 (Thu): 29/04–01/05 are off, 27–28/04 a weekend: 3 working days back is 24/04.
    assert_eq!(
        of("A"),
        [
            ("2024-04-24".into(), "3".into()),
            ("2024-04-26".into(), "1".into()),
            ("2024-05-02".into(), "0".into())
        ]
    );
    // 06/05 (Mon): the worked Saturday 04/05 is the last working day before it.
    assert_eq!(of("B")[1], ("2024-05-04".into(), "1".into()));
    // 15/02 (Thu), right after Tết (08–14/02): 1wd before is 07/02, 3wd is 05/02.
    assert_eq!(
        of("C"),
        [
            ("2024-02-05".into(), "3".into()),
            ("2024-02-07".into(), "1".into()),
            ("2024-02-15".into(), "0".into())
        ]
    );
}

#[test]
fn changing_one_lead_changes_only_that_tasks_nudges() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(seed().path).unwrap();
    let marker = "  - id: VII.3\n    title: Tổ chức khảo sát mức độ hài lòng của tổ chức, cá nhân đối với sự phục vụ của Văn phòng UBND tỉnh năm 2024\n    product: Báo cáo kết quả khảo sát\n    deadline: Quý III/2024\n    lead: hctc\n";
    assert!(original.contains(marker));
    let changed = original.replace(marker, &marker.replace("lead: hctc", "lead: kinh-te"));
    let p = dir.path().join("plan.yaml");
    std::fs::write(&p, changed).unwrap();
    let args = ["--at", "2024-08-01", "--days", "120"];
    let before = plan_json(&seed().path, &args);
    let after = plan_json(&p, &args);
    let split = |v: &Value, task: bool| -> Vec<String> {
        nudges(v)
            .iter()
            .filter(|n| (field(n, "task") == "VII.3") == task)
            .map(|n| n.to_string())
            .collect()
    };
    assert_eq!(
        split(&before, false),
        split(&after, false),
        "other tasks changed"
    );
    let offices = |v: &Value| -> BTreeSet<String> {
        nudges(v)
            .iter()
            .filter(|n| field(n, "task") == "VII.3")
            .map(|n| field(n, "office").to_string())
            .collect()
    };
    assert_eq!(offices(&before), BTreeSet::from(["hctc".to_string()]));
    assert_eq!(offices(&after), BTreeSet::from(["kinh-te".to_string()]));
    assert_eq!(split(&before, true).len(), split(&after, true).len());
}

/// The README's two commands, in order, on a fresh clone: the main job writes its ledger
/// next to the config it was given, and the plan expectations above still hold.
#[test]
fn the_readme_main_job_first_leaves_the_plan_tests_green() {
    let clone = tempfile::tempdir().unwrap();
    copy_config_folder(&clone.path().join("config"));
    let repo_ledger_before = repo_config().join("nhacviec.db").exists();
    // As the README says it, from the clone's root.
    let out = Command::new(env!("CARGO_BIN_EXE_nhacviec"))
        .args([
            "run",
            "--once",
            "--at",
            "2024-01-22T08:00",
            "-c",
            "config/khanh-hoa-2024.yaml",
        ])
        .current_dir(clone.path())
        .env_remove("NHACVIEC_CONFIG")
        .env("NHACVIEC_LANG", "en")
        .env_remove("STATE_DIRECTORY")
        .output()
        .expect("run nhacviec");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(clone.path().join("config/nhacviec.db").exists());
    let (code, log, err) = nhacviec(&[
        "log",
        "-c",
        clone
            .path()
            .join("config/khanh-hoa-2024.yaml")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(log.contains("TCTH.1"), "{log}");
    assert_eq!(
        repo_config().join("nhacviec.db").exists(),
        repo_ledger_before,
        "the test wrote into the repository"
    );
    centres_hear_before_30_01(&seed());
}
