//! `check`'s warnings through the real binary (placeholder offices, escalations to a head
//! with no address, a plan entirely in the past, `done:` dates in the future or outside the
//! plan's years), each located as file:line:column; and the seed's roles as the plan writes
//! them (Sở Nội vụ receives and appraises, it does not cooperate).

use nhacviec::plan::config::{Env, load};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn seed_in(dir: &Path) -> PathBuf {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/khanh-hoa-2024.yaml");
    let copy = dir.join("nhacviec.yaml");
    fs::copy(seed, &copy).unwrap();
    copy
}

/// `nhacviec check -c FILE --at AT` → (exit code, stdout, stderr).
fn check(cfg: &Path, at: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nhacviec"))
        .args(["check", "-c", cfg.to_str().unwrap(), "--at", at])
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

/// The `--> file:line:col` under the warning that contains `needle`.
fn located(stderr: &str, needle: &str) -> String {
    let mut lines = stderr.lines();
    while let Some(l) = lines.next() {
        if l.starts_with("warning:") && l.contains(needle) {
            let at = lines.next().unwrap_or_default().trim();
            return at.trim_start_matches("--> ").to_string();
        }
    }
    panic!("no warning with {needle:?} in:\n{stderr}")
}

fn line_of(file: &Path, text: &str) -> usize {
    fs::read_to_string(file)
        .unwrap()
        .lines()
        .position(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no {text:?} in {}", file.display()))
        + 1
}

#[test]
fn the_seed_warns_about_its_placeholder_centres_and_their_missing_heads() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = seed_in(dir.path());
    let (code, out, err) = check(&cfg, "2024-01-22T08:00");
    assert_eq!(code, 0, "warnings, not errors:\n{err}");
    let c = cfg.display().to_string();
    for centre in ["trung-tam-a", "trung-tam-b", "trung-tam-c"] {
        let line = fs::read_to_string(&cfg)
            .unwrap()
            .lines()
            .position(|l| l == format!("  {centre}:"))
            .unwrap()
            + 1;
        assert_eq!(
            located(&err, &format!("office `{centre}` (")),
            format!("{c}:{line}:3")
        );
        assert!(err.contains(&format!(
            "office `{centre}` has no `head:`, but the reminder policy `default` escalates"
        )));
    }
    assert!(err.contains("still lead to it: TCTH.1"), "{err}");
    assert!(out.contains("6 warning(s)"), "{out}");
    // Nothing about dates: the plan is current and nothing is marked done.
    assert!(
        !err.contains("marked done") && !err.contains("already past"),
        "{err}"
    );

    // Once the centres are real, and have heads, those warnings go.
    let yaml = fs::read_to_string(&cfg).unwrap();
    let filled = yaml
        .replace("    placeholder: true", "    head: truong@vpubnd.example #")
        .replace(" (chỗ trống – điền tên Trung tâm thật)", "");
    fs::write(&cfg, filled).unwrap();
    let (code, out, err) = check(&cfg, "2024-01-22T08:00");
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning:"), "{err}");
    assert!(!out.contains("warning(s)"), "{out}");
}

#[test]
fn a_plan_all_in_the_past_and_done_dates_out_of_place_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = seed_in(dir.path());
    // Started two years late: every deadline is behind.
    let (code, _, err) = check(&cfg, "2026-11-30T08:00");
    assert_eq!(code, 0, "{err}");
    let first_task = line_of(&cfg, "- id: TCTH.1");
    assert_eq!(
        located(&err, "every deadline of this plan is already past"),
        format!("{}:{first_task}:9", cfg.display())
    );

    let yaml = fs::read_to_string(&cfg).unwrap();
    let marked = yaml
        .replacen(
            "    lead: cac-trung-tam ",
            "    done: 2024-03-05\n    lead: cac-trung-tam ",
            1,
        )
        .replacen(
            "    deadline: Quý II/2024\n    lead: hctc\n",
            "    deadline: Quý II/2024\n    lead: hctc\n    done: { hctc: 2019-06-20 }\n",
            1,
        );
    assert_ne!(marked, yaml);
    fs::write(&cfg, &marked).unwrap();
    let (code, _, err) = check(&cfg, "2024-02-01T08:00");
    assert_eq!(code, 0, "{err}");
    let at = located(
        &err,
        "task TCTH.1 is marked done on 05/03/2024, which is after today",
    );
    assert_eq!(
        at,
        format!("{}:{}:11", cfg.display(), line_of(&cfg, "done: 2024-03-05"))
    );
    let at = located(
        &err,
        "task III.3 is marked done on 20/06/2019, outside the plan's years",
    );
    assert!(
        at.starts_with(&format!(
            "{}:{}:",
            cfg.display(),
            line_of(&cfg, "2019-06-20")
        )),
        "{at}"
    );
    // In March the TCTH.1 date is no longer in the future.
    let (_, _, err) = check(&cfg, "2024-03-06T08:00");
    assert!(!err.contains("which is after today"), "{err}");
}

#[test]
fn the_seed_says_who_receives_and_appraises_and_who_shares_the_lead() {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/khanh-hoa-2024.yaml");
    let cfg = load(&seed, &Env::default())
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config;
    for id in ["VII.5", "III.1", "III.2", "III.3", "III.4"] {
        let t = cfg.task(id).unwrap();
        assert_eq!(t.report_to, ["so-noi-vu"], "{id}");
        assert!(!t.cooperating.iter().any(|o| o == "so-noi-vu"), "{id}");
    }
    for id in ["II.5", "IV.4"] {
        assert!(cfg.task(id).unwrap().cooperating.is_empty(), "{id}");
    }
    assert!(cfg.office("vpcp").is_none() && cfg.office("bo-noi-vu").is_none());
    assert!(
        cfg.task("II.5")
            .unwrap()
            .deadline
            .phrase
            .contains("Văn phòng Chính phủ")
    );
    assert!(
        cfg.task("IV.4")
            .unwrap()
            .deadline
            .phrase
            .contains("Bộ Nội vụ")
    );
    // III.2 still has its cooperating offices.
    assert!(!cfg.task("III.2").unwrap().cooperating.is_empty());
    // Two offices share VI.2; each centre owns its own TCTH.1.
    assert!(cfg.task("VI.2").unwrap().shared_lead);
    assert!(!cfg.task("TCTH.1").unwrap().shared_lead);
    assert!(cfg.office("trung-tam-a").unwrap().placeholder);
    assert!(!cfg.office("hctc").unwrap().placeholder);
}

/// `check` reads the file once as of Asia/Ho_Chi_Minh's day, and again when the config's
/// own time zone makes it another day: "today" is the config's, and each warning is
/// printed once.
#[test]
fn today_is_the_config_time_zones_day_and_each_warning_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = seed_in(dir.path());
    let yaml = fs::read_to_string(&cfg).unwrap();
    let marked = yaml
        .replacen(
            "timezone: Asia/Ho_Chi_Minh",
            "timezone: America/New_York",
            1,
        )
        .replacen(
            "    lead: cac-trung-tam ",
            "    done: 2024-03-05\n    lead: cac-trung-tam ",
            1,
        );
    assert_ne!(marked, yaml);
    fs::write(&cfg, &marked).unwrap();
    let warned = "task TCTH.1 is marked done on 05/03/2024, which is after today (04/03/2024)";
    // 20:00 in New York on 04/03 is already 05/03 in Hà Nội.
    let (code, _, err) = check(&cfg, "2024-03-05T01:00:00Z");
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.matches(warned).count(), 1, "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    let distinct: std::collections::HashSet<&&str> = warnings.iter().collect();
    assert!(warnings.len() > 2, "{err}");
    assert_eq!(distinct.len(), warnings.len(), "each warning once: {err}");
    // The same moment in the usual time zone: 05/03, not after today.
    fs::write(
        &cfg,
        marked.replacen("America/New_York", "Asia/Ho_Chi_Minh", 1),
    )
    .unwrap();
    let (code, _, err) = check(&cfg, "2024-03-05T01:00:00Z");
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("which is after today"), "{err}");
}
