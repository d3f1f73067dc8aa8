//! The command line's conventions through the real binary, on copies of the seed plan in
//! temp dirs: tables that fit 80, 100 and 120 columns by display width, golden `plan`,
//! `log` and `diff` output, a closed pipe, NO_COLOR, and a ledger the user may not read.
//!
//! `NHACVIEC_UPDATE_GOLDEN=1 cargo test --test cli_output` rewrites tests/golden/.

#[path = "support/skip.rs"]
mod skip;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tempfile::TempDir;
use unicode_width::UnicodeWidthStr;

struct Seed {
    dir: TempDir,
}

impl Seed {
    /// The seed plan in a temp dir; `ran`: after the README's main job at 22/01/2024 08:00.
    fn new(ran: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/khanh-hoa-2024.yaml");
        std::fs::copy(from, dir.path().join("plan.yaml")).unwrap();
        let s = Seed { dir };
        if ran {
            let out = s.run(&["run", "--once", "--at", "2024-01-22T08:00"], &[]);
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
        s
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("plan.yaml")
    }

    fn cmd(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_nhacviec"));
        c.args(args)
            .arg("-c")
            .arg(self.config())
            .current_dir(self.dir.path())
            .env_remove("NHACVIEC_CONFIG")
            .env("NHACVIEC_LANG", "en")
            .env_remove("STATE_DIRECTORY")
            .env_remove("COLUMNS")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.cmd(args, env).output().expect("run nhacviec")
    }

    /// stdout of a command that must succeed, with the temp dir's path as `$DIR`.
    fn ok(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, env);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout).replace(&self.dir.path().display().to_string(), "$DIR")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn golden(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("NHACVIEC_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (NHACVIEC_UPDATE_GOLDEN=1 writes it)",
            path.display()
        )
    });
    assert_eq!(got, want, "{name} differs from tests/golden/{name}");
}

/// The two languages every golden text is kept in.
const LANGS: [&str; 2] = ["vi", "en"];

/// Five configs a clerk might break, each `check`ed in both languages against a golden
/// text: an unknown key, an impossible date, an unknown office, a tab, a missing section.
#[test]
fn broken_config_diagnostics_golden_in_both_languages() {
    let seed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/khanh-hoa-2024.yaml"),
    )
    .unwrap();
    let edit = |from: &str, to: &str| {
        assert_eq!(seed.matches(from).count(), 1, "{from}");
        seed.replacen(from, to, 1)
    };
    let cases = [
        (
            "unknown-key",
            edit(
                "    deadline: Quý III/2024\n    lead: hctc\n",
                "    deadline: Quý III/2024\n    lead: hctc\n    lead_office: hctc\n",
            ),
        ),
        (
            "bad-date",
            edit("deadline: Quý III/2024\n", "deadline: 31/09/2024\n"),
        ),
        (
            "unknown-office",
            edit(
                "    deadline: Quý III/2024\n    lead: hctc\n",
                "    deadline: Quý III/2024\n    lead: hctcc\n",
            ),
        ),
        (
            "tab",
            edit("    deadline: Quý III/2024\n", "\tdeadline: Quý III/2024\n"),
        ),
        (
            "no-tasks",
            "offices:\n  hctc:\n    name: Phòng Hành chính\n    email: hctc@vpubnd.example\n"
                .to_string(),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, yaml) in cases {
        std::fs::write(dir.path().join("plan.yaml"), yaml).unwrap();
        for lang in LANGS {
            let out = Command::new(env!("CARGO_BIN_EXE_nhacviec"))
                .args(["check", "-c", "plan.yaml", "--at", "2024-01-15"])
                .current_dir(dir.path())
                .env_remove("NHACVIEC_CONFIG")
                .env_remove("STATE_DIRECTORY")
                .env("NHACVIEC_LANG", lang)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out.stderr));
            golden(&format!("check-{name}.{lang}.txt"), &text(&out.stderr));
        }
    }
    // The config's `language:` speaks when the environment is silent, not over it.
    let en = "language: en\noffices:\n  hctc:\n    name: X\n";
    std::fs::write(dir.path().join("plan.yaml"), en).unwrap();
    let check = |vars: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_nhacviec"));
        c.args(["check", "-c", "plan.yaml"])
            .current_dir(dir.path())
            .env_remove("NHACVIEC_CONFIG")
            .env_remove("NHACVIEC_LANG")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env("LANG", "C.UTF-8");
        for (k, v) in vars {
            c.env(k, v);
        }
        text(&c.output().unwrap().stderr)
    };
    assert!(
        check(&[]).contains("the config has no `tasks:` section"),
        "{}",
        check(&[])
    );
    let vi = check(&[("LANG", "vi_VN.UTF-8")]);
    assert!(vi.contains("cấu hình thiếu mục `tasks:`"), "{vi}");
}

const PLAN: &[&str] = &["plan", "--at", "2024-01-15T08:00", "--days", "120"];
const LOG: &[&str] = &["log", "--all"];

#[test]
fn tables_fit_80_100_and_120_columns_by_display_width() {
    let s = Seed::new(true);
    for width in [80usize, 100, 120] {
        let w = width.to_string();
        for (args, via_env) in [(PLAN, false), (LOG, false), (PLAN, true), (LOG, true)] {
            let out = if via_env {
                s.ok(args, &[("COLUMNS", &w)])
            } else {
                let mut a = args.to_vec();
                a.extend(["--width", &w]);
                s.ok(&a, &[])
            };
            assert!(out.lines().count() > 5, "{out}");
            let widest = out.lines().map(UnicodeWidthStr::width).max().unwrap();
            assert!(widest <= width, "{args:?} at {width}: {widest} wide\n{out}");
            assert!(
                widest > width - 25,
                "{args:?} uses the room it has: {widest}"
            );
        }
    }
    // Not a terminal and no COLUMNS: 100.
    let out = s.ok(PLAN, &[]);
    assert!(out.lines().all(|l| l.width() <= 100));
    // --wide: every column, one line a row, wider than any terminal here.
    let wide = s.ok(&[LOG, &["--wide"]].concat(), &[]);
    assert!(wide.contains("Message-ID"));
    assert!(wide.lines().map(UnicodeWidthStr::width).max().unwrap() > 120);
}

#[test]
fn plan_golden_table_and_json() {
    let s = Seed::new(false);
    for lang in LANGS {
        golden(
            &format!("plan-100.{lang}.txt"),
            &s.ok(
                &[PLAN, &["--width", "100"]].concat(),
                &[("NHACVIEC_LANG", lang)],
            ),
        );
    }
    // `--lang` wins over the environment.
    assert_eq!(
        s.ok(
            &[PLAN, &["--width", "100", "--lang", "vi"]].concat(),
            &[("NHACVIEC_LANG", "en")]
        ),
        s.ok(
            &[PLAN, &["--width", "100"]].concat(),
            &[("NHACVIEC_LANG", "vi")]
        )
    );
    let json = s.ok(&[PLAN, &["--format", "json"]].concat(), &[]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["nudges"][0]["days_left"].is_i64(), "{json}");
    golden("plan.json", &json);
}

#[test]
fn log_golden_table_and_json() {
    let s = Seed::new(true);
    // The reply (the outbox file) and the Message-ID are new on every run: the golden
    // table stops before the reply column, the JSON leaves those fields out.
    for (lang, reply) in [("vi", "Phản hồi"), ("en", "Reply")] {
        let table = s.ok(
            &[LOG, &["--width", "100"]].concat(),
            &[("NHACVIEC_LANG", lang)],
        );
        let header = table.lines().next().unwrap();
        let at = header.find(reply).expect("reply column");
        let cut = header[..at].width();
        let stable: String = table
            .lines()
            .map(|l| {
                let mut kept = String::new();
                for c in l.chars() {
                    if (kept.clone() + &c.to_string()).width() > cut {
                        break;
                    }
                    kept.push(c);
                }
                format!("{}\n", kept.trim_end())
            })
            .collect();
        golden(&format!("log-100.{lang}.txt"), &stable);
    }
    let json = s.ok(&["log", "--format", "json"], &[]);
    let mut rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    for r in &mut rows {
        assert!(r["attempts"].is_u64() && r["late"].is_boolean(), "{r}");
        let o = r.as_object_mut().unwrap();
        for k in ["message_id", "reply", "sent_at"] {
            assert!(o.remove(k).is_some(), "{k}");
        }
    }
    golden("log.json", &serde_json::to_string_pretty(&rows).unwrap());
    // The latest N, oldest to newest, like journalctl -n.
    let two = s.ok(&["log", "-n", "2", "--format", "csv"], &[]);
    assert_eq!(
        two.split("\r\n").filter(|l| !l.is_empty()).count(),
        3,
        "{two}"
    );
    let all: Vec<&str> = json.lines().filter(|l| l.contains("\"due_at\"")).collect();
    let last_two: Vec<&str> = two.split("\r\n").skip(1).take(2).collect();
    assert!(all.len() > 2);
    for (row, json_line) in last_two.iter().zip(&all[all.len() - 2..]) {
        let due = json_line.split('"').nth(3).unwrap();
        assert!(row.starts_with(due), "{row} / {due}");
    }
}

#[test]
fn diff_tells_a_reassignment_in_words() {
    let s = Seed::new(false);
    let old = std::fs::read_to_string(s.config()).unwrap();
    let marker = "    deadline: Quý III/2024\n    lead: hctc\n";
    assert_eq!(old.matches(marker).count(), 1);
    let new = old.replace(marker, "    deadline: Quý III/2024\n    lead: kinh-te\n");
    std::fs::write(s.dir.path().join("new.yaml"), new).unwrap();
    for lang in LANGS {
        let out = Command::new(env!("CARGO_BIN_EXE_nhacviec"))
            .args([
                "diff",
                "plan.yaml",
                "new.yaml",
                "--at",
                "2024-08-20",
                "--days",
                "60",
            ])
            .current_dir(s.dir.path())
            .env("NHACVIEC_LANG", lang)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        golden(&format!("diff-vii3.{lang}.txt"), &text(&out.stdout));
    }
    let only = Command::new(env!("CARGO_BIN_EXE_nhacviec"))
        .args([
            "diff",
            "plan.yaml",
            "new.yaml",
            "--at",
            "2024-08-20",
            "--office",
            "qttv",
        ])
        .current_dir(s.dir.path())
        .env("NHACVIEC_LANG", "vi")
        .output()
        .unwrap();
    assert!(text(&only.stdout).contains("Kế hoạch không đổi nhiệm vụ nào"));
}

#[test]
fn a_closed_pipe_ends_quietly_with_exit_0() {
    let s = Seed::new(false);
    // Megabytes of CSV: far more than a pipe holds, so the writer meets the closed end.
    let mut child = s
        .cmd(
            &[
                "plan",
                "--at",
                "2024-01-01",
                "--days",
                "3650",
                "--format",
                "csv",
            ],
            &[],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("send_at,"), "{first}");
    // The reader is dropped here: the pipe closes after one line.
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.is_empty(), "{err}");
}

/// The log lines under a pseudo-terminal (`script`), with and without NO_COLOR.
#[test]
fn no_color_turns_off_the_coloured_log_lines() {
    let s = Seed::new(false);
    let line = format!(
        "{} run --once --dry-run --at 2024-01-22T08:00 -c {}",
        env!("CARGO_BIN_EXE_nhacviec"),
        s.config().display()
    );
    let under_tty = |no_color: bool| {
        let mut c = Command::new("script");
        c.args(["-qec", &line, "/dev/null"])
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null());
        if no_color {
            c.env("NO_COLOR", "1");
        } else {
            c.env_remove("NO_COLOR");
        }
        let out = c.output().expect("script (util-linux)");
        text(&out.stdout)
    };
    let coloured = under_tty(false);
    assert!(
        coloured.contains("\x1b["),
        "a terminal gets colour: {coloured}"
    );
    let plain = under_tty(true);
    assert!(plain.contains("INFO"), "{plain}");
    assert!(!plain.contains("\x1b["), "{plain:?}");
}

/// As `nobody`, against a ledger only root may read: a clear message and exit 1.
#[test]
fn an_unreadable_ledger_says_so_and_exits_1() {
    if !rustix_is_root() {
        skip::skip_or_fail("needs root to make a root-only ledger and drop to nobody");
        return;
    }
    let s = Seed::new(true);
    use std::os::unix::fs::PermissionsExt;
    let ledger = s.dir.path().join("nhacviec.db");
    std::fs::set_permissions(&ledger, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(s.config(), std::fs::Permissions::from_mode(0o644)).unwrap();
    for args in [&["log"][..], &["plan", "--at", "2024-01-15"][..]] {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_nhacviec"))
            .args(args)
            .arg("-c")
            .arg(s.config())
            .env_remove("NHACVIEC_CONFIG")
            .env("NHACVIEC_LANG", "en")
            .output()
            .expect("setpriv");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "cannot read the ledger {}: permission denied — run as root (sudo",
                ledger.display()
            )),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    }
}

fn rustix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn exit_codes_follow_one_table() {
    let s = Seed::new(false);
    let code = |args: &[&str]| s.run(args, &[]).status.code();
    assert_eq!(code(&["check"]), Some(0));
    assert_eq!(code(&["plan", "--since-nothing"]), Some(2));
    assert_eq!(code(&["plan", "--at", "next week"]), Some(2));
    assert_eq!(code(&["plan", "--office", "nowhere"]), Some(2));
    let ran = Seed::new(true);
    let log = ran.run(&["log", "--since", "-7d", "--until", "hôm nay"], &[]);
    assert_eq!(log.status.code(), Some(0), "{}", text(&log.stderr));
    let log = ran.run(
        &["log", "--since", "30/09/2020", "--until", "yesterday"],
        &[],
    );
    assert!(text(&log.stdout).contains("TCTH.1"));
    std::fs::write(s.config(), "offices: [\n").unwrap();
    for cmd in ["check", "plan", "log", "run"] {
        let args: &[&str] = if cmd == "run" {
            &["run", "--once"]
        } else {
            &[cmd]
        };
        assert_eq!(code(args), Some(1), "{cmd} on a broken config");
    }
}

#[test]
fn man_and_completions_are_printed() {
    let s = Seed::new(false);
    let man = s.run(&["man"], &[]);
    // `man` takes no -c: clap refuses it, so call it bare.
    assert_eq!(man.status.code(), Some(2));
    let bare = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_nhacviec"))
            .args(args)
            .output()
            .unwrap()
    };
    let man = bare(&["man"]);
    assert!(man.status.success());
    let roff = text(&man.stdout);
    for sub in [
        "check",
        "plan",
        "run",
        "log",
        "diff",
        "calendar",
        "completions",
    ] {
        assert!(roff.contains(&format!(".SS \"nhacviec {sub}\"")), "{sub}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = bare(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        assert!(text(&out.stdout).contains("nhacviec"), "{shell}");
    }
}

/// `--help` speaks the chosen language down to clap's own words: no "Usage:" in Vietnamese.
#[test]
fn help_has_no_english_words_in_vietnamese() {
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["ledger", "reset", "--help"],
    ] {
        let help = |lang: &str| {
            let out = Command::new(env!("CARGO_BIN_EXE_nhacviec"))
                .args(args)
                .env("NHACVIEC_LANG", lang)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0));
            text(&out.stdout)
        };
        let vi = help("vi");
        for english in ["Usage:", "Options:", "Commands:", "Print help"] {
            assert!(!vi.contains(english), "{args:?}: {english} in\n{vi}");
        }
        assert!(
            vi.contains("Cách dùng:") && vi.contains("In trợ giúp."),
            "{vi}"
        );
        let en = help("en");
        assert!(en.contains("Usage:") && en.contains("Print help"), "{en}");
    }
    // `man` follows the language too.
    let man = |lang: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_nhacviec"))
            .arg("man")
            .env("NHACVIEC_LANG", lang)
            .output()
            .unwrap();
        assert!(out.status.success());
        text(&out.stdout)
    };
    let vi = man("vi");
    assert!(vi.contains("Kiểm tra cấu hình") && !vi.contains("Validate the config"));
    assert!(!vi.contains("Print help"));
    assert!(man("en").contains("Validate the config"));
}

/// A mistyped command line is answered in the reader's language, with the command meant and
/// where to read more; exit 2 either way.
#[test]
fn usage_errors_speak_the_chosen_language() {
    let run = |lang: &str, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_nhacviec"))
            .args(args)
            .env("NHACVIEC_LANG", lang)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        text(&out.stderr)
    };
    let vi = run("vi", &["plna"]);
    assert!(vi.contains("lỗi: không có lệnh `plna`"), "{vi}");
    assert!(vi.contains("có lệnh gần giống: `plan`"), "{vi}");
    assert!(vi.contains("Xem thêm: `nhacviec --help`."), "{vi}");
    let vi = run("vi", &["log", "--format", "xlsx"]);
    assert!(
        vi.contains("viết một trong: `table`, `json`, `csv`, `ics`"),
        "{vi}"
    );
    assert!(vi.contains("Xem thêm: `nhacviec log --help`."), "{vi}");
    for s in [run("vi", &["plna"]), run("vi", &["run", "--one"])] {
        for english in ["error:", "Usage:", "tip:", "For more information"] {
            assert!(!s.contains(english), "{english} in\n{s}");
        }
    }
    let en = run("en", &["run", "--one"]);
    assert!(en.contains("unexpected argument '--one'"), "{en}");
    assert!(en.contains("Usage: nhacviec run"), "{en}");
}
