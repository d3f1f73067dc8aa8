//! A corpus of configs a clerk might break, each checked through the real `nhacviec check`:
//! it must fail with exit code 1, never panic, and point at the offending line with a hint.

use std::path::Path;
use std::process::Command;

const BASE: &str = r#"plan:
  title: Kế hoạch thử
  reference: Quyết định số 1/QĐ-TEST
  year: 2024
offices:
  hctc:
    name: Phòng Hành chính – Tổ chức
    email: hctc@vpubnd.example
    head: truong.hctc@vpubnd.example
  kinh-te:
    name: Phòng Kinh tế
    email: kinhte@vpubnd.example
  so-noi-vu:
    name: Sở Nội vụ
groups:
  cac-phong: [hctc, kinh-te]
reminders:
  default:
    before: [14d, 3wd]
tasks:
  - id: I.2
    title: Chương trình PCI
    deadline: Quý II/2024
    lead: hctc
    cooperating: kinh-te
  - id: III.3
    title: Đề án vị trí việc làm
    deadline: 30/06/2024
    lead: hctc
  - id: IV.2
    title: Cơ cấu công chức
    deadline:
      phrase: Sau khi Đề án được phê duyệt
      after: III.3
      days: 30
    lead: hctc
"#;

struct Case {
    name: &'static str,
    yaml: String,
    /// Words the error message must contain.
    message: &'static str,
    /// Text that must be on the reported line (None: the error has no line).
    on_line: Option<&'static str>,
    /// Words the hint must contain.
    hint: &'static str,
}

fn replace(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "the base config has no `{from}`");
    BASE.replacen(from, to, 1)
}

fn cases() -> Vec<Case> {
    let c = |name, yaml: String, message, on_line, hint| Case {
        name,
        yaml,
        message,
        on_line,
        hint,
    };
    vec![
        c(
            "unclosed bracket",
            replace("[hctc, kinh-te]", "[hctc, kinh-te"),
            "cannot be read",
            None,
            "brackets",
        ),
        c(
            "tab indentation",
            replace("    name: Phòng Kinh tế", "\tname: Phòng Kinh tế"),
            "cannot be read",
            None,
            "indentation",
        ),
        c(
            "duplicate key",
            replace(
                "    email: kinhte@vpubnd.example",
                "    email: kinhte@vpubnd.example\n    email: kt@vpubnd.example",
            ),
            "written twice",
            Some("email: kt@"),
            "keep one",
        ),
        c(
            "duplicate task id",
            replace("  - id: III.3", "  - id: I.2"),
            "task id `I.2` is used twice",
            Some("id: I.2"),
            "its own id",
        ),
        c(
            "misspelled section",
            replace("tasks:", "task:"),
            "unknown key `task`",
            Some("task:"),
            "did you mean `tasks`?",
        ),
        c(
            "misspelled task key",
            replace("    deadline: Quý II/2024", "    deadlin: Quý II/2024"),
            "unknown key `deadlin`",
            Some("deadlin:"),
            "did you mean `deadline`?",
        ),
        c(
            "unknown lead office",
            replace(
                "    lead: hctc\n    cooperating",
                "    lead: hctc2\n    cooperating",
            ),
            "unknown office or group `hctc2`",
            Some("lead: hctc2"),
            "did you mean `hctc`?",
        ),
        c(
            "unknown cooperating group",
            replace("cooperating: kinh-te", "cooperating: cac-phongg"),
            "unknown office or group `cac-phongg`",
            Some("cac-phongg"),
            "did you mean `cac-phong`?",
        ),
        c(
            "invalid email",
            replace("kinhte@vpubnd.example", "kinhte.vpubnd.example"),
            "not a valid email address",
            Some("kinhte.vpubnd.example"),
            "name@domain.example",
        ),
        c(
            "impossible date",
            replace("deadline: 30/06/2024", "deadline: 30/02/2024"),
            "has 29 days",
            Some("30/02/2024"),
            "last day of that month is 29/02/2024",
        ),
        c(
            "unreadable phrase",
            replace("deadline: 30/06/2024", "deadline: sớm nhất có thể"),
            "cannot read the deadline `sớm nhất có thể`",
            Some("sớm nhất"),
            "Quý II/2024",
        ),
        c(
            "dependency cycle",
            replace(
                "    deadline: 30/06/2024",
                "    deadline: {phrase: Sau khi IV.2 xong, after: IV.2, days: 5}",
            ),
            "in a circle",
            Some("id: III.3"),
            "remove one `after:`",
        ),
        c(
            "unknown dependency",
            replace("after: III.3", "after: III.33"),
            "waits for unknown task `III.33`",
            Some("id: IV.2"),
            "did you mean `III.3`?",
        ),
        c(
            "bad cron",
            format!("{BASE}schedule:\n  sweeps: [\"0 8 * *\"]\n"),
            "cannot be read: it has 4 fields",
            Some("0 8 * *"),
            "five fields",
        ),
        c(
            "cron out of range",
            format!("{BASE}schedule:\n  sweeps: [\"0 25 * * *\"]\n"),
            "`0 25 * * *` cannot be read",
            Some("0 25"),
            "five fields",
        ),
        c(
            "password in yaml",
            format!(
                "{BASE}mail:\n  transport:\n    smtp:\n      host: mail.example.org\n      password: hunter2\n"
            ),
            "puts a secret in the config file",
            Some("password: hunter2"),
            "password_credential",
        ),
        c(
            "unknown policy",
            replace(
                "    lead: hctc\n  - id: IV.2",
                "    lead: hctc\n    reminders: gap\n  - id: IV.2",
            ),
            "unknown reminder policy `gap`",
            Some("reminders: gap"),
            "default",
        ),
        c(
            "bad offset unit",
            replace("before: [14d, 3wd]", "before: [14d, 3 tuần]"),
            "unknown unit",
            Some("3 tuần"),
            "`3wd`",
        ),
        c(
            "bad time zone",
            format!("{BASE}schedule:\n  timezone: Asia/Hanoi\n"),
            "unknown time zone `Asia/Hanoi`",
            Some("Asia/Hanoi"),
            "Asia/Ho_Chi_Minh",
        ),
        c(
            "office id with accents",
            replace("  kinh-te:\n", "  kinh-tế:\n")
                .replace("[hctc, kinh-te]", "[hctc]")
                .replace("cooperating: kinh-te", "cooperating: hctc"),
            "may only use letters",
            Some("kinh-tế:"),
            "without accents",
        ),
        c(
            "tasks not a list",
            replace("tasks:\n  - id: I.2", "tasks:\n  id: I.2")
                .replace("  - id: III.3", "  other: 1\n  - id: III.3"),
            "cannot be read",
            None,
            "indentation",
        ),
        c(
            "missing lead",
            replace("    lead: hctc\n    cooperating: kinh-te\n", ""),
            "has no `lead` office",
            Some("id: I.2"),
            "lead: hctc",
        ),
        c(
            "missing title",
            replace("    title: Chương trình PCI\n", ""),
            "has no `title`",
            Some("id: I.2"),
            "title: …",
        ),
        c(
            "plaintext smtp",
            format!(
                "{BASE}mail:\n  transport:\n    smtp:\n      host: mail.example.org\n      security: none\n"
            ),
            "unencrypted",
            Some("security: none"),
            "allow_plaintext",
        ),
        c(
            "bad window",
            format!("{BASE}schedule:\n  window: 8h-17h\n"),
            "sending window `8h-17h` cannot be read",
            Some("8h-17h"),
            "07:30-17:00",
        ),
        c(
            "outbox and smtp",
            format!(
                "{BASE}mail:\n  transport:\n    outbox: out\n    smtp:\n      host: mail.example.org\n"
            ),
            "both `outbox` and `smtp`",
            Some("outbox: out"),
            "keep one",
        ),
        c(
            "month 13",
            replace("deadline: 30/06/2024", "deadline: Tháng 13/2024"),
            "month 13",
            Some("Tháng 13/2024"),
            "01 to 12",
        ),
        c(
            "done for a stranger",
            replace(
                "    lead: hctc\n  - id: IV.2",
                "    lead: hctc\n    done:\n      hctcc: 2024-05-01\n  - id: IV.2",
            ),
            "`hctcc` is not one of its offices",
            Some("hctcc:"),
            "did you mean `hctc`?",
        ),
        c(
            "unknown group member",
            replace("[hctc, kinh-te]", "[hctc, kinhte]"),
            "unknown office `kinhte` in group `cac-phong`",
            Some("[hctc, kinhte]"),
            "did you mean `kinh-te`?",
        ),
        c(
            "after-phrase without a task",
            replace(
                "    deadline: 30/06/2024",
                "    deadline: Sau khi Đề án được phê duyệt",
            ),
            "which one?",
            Some("Sau khi"),
            "after: III.3",
        ),
        c(
            "bad done date",
            replace(
                "    lead: hctc\n  - id: IV.2",
                "    lead: hctc\n    done: 31/04/2024\n  - id: IV.2",
            ),
            "has 30 days",
            Some("31/04/2024"),
            "30/04/2024",
        ),
        c(
            "smtp timeout too long",
            format!(
                "{BASE}mail:\n  transport:\n    smtp:\n      host: mail.example.org\n      timeout: 2h\n"
            ),
            "`timeout` is out of range",
            Some("timeout: 2h"),
            "from 1s to 1h",
        ),
        c(
            "smtp timeout overflowing u64 seconds",
            format!(
                "{BASE}mail:\n  transport:\n    smtp:\n      host: mail.example.org\n      timeout: 307445734561825861d\n"
            ),
            "`timeout` `307445734561825861d` is not a duration",
            Some("307445734561825861d"),
            "a number and a unit",
        ),
        c(
            "retry initial of 0s",
            format!("{BASE}mail:\n  retry:\n    initial: 0s\n"),
            "`initial` is out of range",
            Some("initial: 0s"),
            "from 1s to 7d",
        ),
        c(
            "retry max over a week",
            format!("{BASE}mail:\n  retry:\n    max: 8d\n"),
            "`max` is out of range",
            Some("max: 8d"),
            "from 1s to 7d",
        ),
        c(
            "retry attempts over 50",
            format!("{BASE}mail:\n  retry:\n    attempts: 51\n"),
            "`attempts` 51 is out of range",
            Some("attempts: 51"),
            "from 1 to 50",
        ),
        c(
            "before offset of 97000000 days",
            replace("before: [14d, 3wd]", "before: [97000000d, 3wd]"),
            "`97000000d` is out of range",
            Some("97000000d"),
            "`3660d`",
        ),
        c(
            "overdue_every of 100000000 days",
            replace(
                "before: [14d, 3wd]",
                "before: [14d, 3wd]\n    overdue_every: 100000000d",
            ),
            "`overdue_every` `100000000d` is out of range",
            Some("overdue_every"),
            "`2600wd`",
        ),
        c(
            "head_after of 2601 working days",
            replace(
                "before: [14d, 3wd]",
                "before: [14d, 3wd]\n    escalate:\n      head_after: 2601wd",
            ),
            "`head_after` `2601wd` is out of range",
            Some("head_after"),
            "`1wd` to `2600wd`",
        ),
        c(
            "leadership_after of 0 days",
            replace(
                "before: [14d, 3wd]",
                "before: [14d, 3wd]\n    escalate:\n      leadership_after: 0d",
            ),
            "`leadership_after` `0d` is out of range",
            Some("leadership_after"),
            "`1d`",
        ),
        c(
            "overdue_limit over 400",
            replace(
                "before: [14d, 3wd]",
                "before: [14d, 3wd]\n    overdue_limit: 401",
            ),
            "`overdue_limit` 401 is out of range",
            Some("overdue_limit"),
            "from 0 to 400",
        ),
        c(
            "catch_up of 100000000 days",
            format!("{BASE}schedule:\n  catch_up: 100000000d\n"),
            "`catch_up` `100000000d` is out of range",
            Some("catch_up"),
            "`3660d`",
        ),
        c(
            "deadline year typo",
            replace("deadline: 30/06/2024", "deadline: 30/06/1024"),
            "the year 1024 is more than 5 years from the plan's year 2024",
            Some("30/06/1024"),
            "did you mean 2024? write e.g. `30/06/2024`",
        ),
        c(
            "done year typo",
            replace(
                "    lead: hctc\n  - id: IV.2",
                "    lead: hctc\n    done: 01/03/2204\n  - id: IV.2",
            ),
            "`done`: the year 2204 is more than 5 years",
            Some("01/03/2204"),
            "did you mean 2024?",
        ),
        c(
            "periodic until far beyond the plan",
            replace(
                "    deadline: 30/06/2024",
                "    deadline:\n      phrase: Hằng quý\n      every: quarter\n      until: 2099-12-31",
            ),
            "`until`: the year 2099 is more than 5 years",
            Some("2099-12-31"),
            "did you mean 2024?",
        ),
        c(
            "IDN domain in an office address",
            replace(
                "email: kinhte@vpubnd.example",
                "email: kinhte@kinhtế.example",
            ),
            "has a non-ASCII domain `kinhtế.example`",
            Some("kinhte@kinhtế.example"),
            "punycode",
        ),
        c(
            "non-ASCII message_id_domain",
            format!("{BASE}mail:\n  message_id_domain: vpubnđ.example\n"),
            "`message_id_domain` `vpubnđ.example` is not ASCII",
            Some("message_id_domain: vpubnđ.example"),
            "`xn--",
        ),
        c(
            "empty file",
            String::new(),
            "the file is empty",
            None,
            "example config",
        ),
    ]
}

fn check(path: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nhacviec"))
        .args(["check", "-c"])
        .arg(path)
        .env_remove("NHACVIEC_CONFIG")
        .env("NHACVIEC_LANG", "en")
        .output()
        .expect("run nhacviec");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn the_base_config_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plan.yaml");
    std::fs::write(&p, BASE).unwrap();
    let (code, stderr) = check(&p);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn every_broken_config_gets_a_located_error_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let all = cases();
    assert!(all.len() >= 20);
    let mut failures = Vec::new();
    for case in &all {
        let p = dir.path().join("plan.yaml");
        std::fs::write(&p, &case.yaml).unwrap();
        let (code, stderr) = check(&p);
        let mut problems = Vec::new();
        if code != 1 {
            problems.push(format!("exit code {code}, expected 1"));
        }
        if stderr.contains("panicked") {
            problems.push("it panicked".into());
        }
        // Find the error block whose message matches.
        let block = stderr
            .split("\nerror: ")
            .map(|b| b.trim_start_matches("error: "))
            .find(|b| b.lines().next().unwrap_or("").contains(case.message));
        match block {
            None => problems.push(format!("no error says `{}`", case.message)),
            Some(b) => {
                if let Some(text) = case.on_line {
                    let line = b
                        .lines()
                        .find_map(|l| l.trim().strip_prefix("--> "))
                        .and_then(|loc| loc.rsplit(':').nth(1))
                        .and_then(|n| n.parse::<usize>().ok());
                    match line {
                        Some(n) => {
                            let written = case.yaml.lines().nth(n - 1).unwrap_or("");
                            if !written.contains(text) {
                                problems.push(format!(
                                    "line {n} is `{written}`, expected it to contain `{text}`"
                                ));
                            }
                            if !b.contains('^') {
                                problems.push("no caret under the offending text".into());
                            }
                        }
                        None => problems.push("no file:line:column".into()),
                    }
                } else if !b.contains("plan.yaml") {
                    problems.push("the error does not name the file".into());
                }
                let hint: String = b
                    .lines()
                    .skip_while(|l| !l.trim_start().starts_with("= "))
                    .collect::<Vec<_>>()
                    .join("\n");
                if !hint.contains(case.hint) {
                    problems.push(format!("hint `{hint}` lacks `{}`", case.hint));
                }
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}\n{stderr}", case.name, problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn all_errors_come_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plan.yaml");
    let yaml = replace(
        "lead: hctc\n    cooperating",
        "lead: hctc2\n    cooperating",
    )
    .replace("deadline: 30/06/2024", "deadline: 30/02/2024")
    .replace("kinhte@vpubnd.example", "kinhte.vpubnd.example");
    std::fs::write(&p, yaml).unwrap();
    let (code, stderr) = check(&p);
    assert_eq!(code, 1);
    assert!(stderr.contains("3 error(s)"), "{stderr}");
}
