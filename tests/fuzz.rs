//! Fuzzing with proptest (stable Rust, no nightly): three targets, each fed pure bytes and
//! text as well as grammar-aware inputs built from the plan's own keys and phrases.
//!
//! - `yaml`: the YAML reader, `plan::yaml::parse`.
//! - `deadline`: the deadline-phrase parser, `plan::deadline::parse_phrase` (and the
//!   checkpoints it names).
//! - `check`: the whole `check` path: `plan::config::from_source`, the report, the working
//!   calendar and the planner over a month and a year, as `nhacviec check` does.
//!
//! Every case must return within a second and never panic. `cargo test` replays the
//! corpus in `tests/corpus/<target>/` (interesting inputs and every crash found) and runs
//! a few hundred fresh cases per target. `NHACVIEC_FUZZ_SECS=600 cargo test --test fuzz
//! -- --nocapture` runs each target for that long and prints the figures; with
//! `NHACVIEC_FUZZ_OUT=<dir>` it also writes the failures and the slowest inputs there, to
//! be copied into the corpus.

use chrono::{TimeZone, Utc};
use nhacviec::calendar::workdays::WorkCalendar;
use nhacviec::plan::config::{Env, from_source};
use nhacviec::plan::deadline::{Phrase, checkpoints, parse_phrase};
use nhacviec::plan::planner;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a single case may take.
const CASE_LIMIT: Duration = Duration::from_secs(1);
/// Fresh cases per strategy in an ordinary `cargo test`.
const QUICK_CASES: u32 = 256;

const SEED: &str = include_str!("../config/khanh-hoa-2024.yaml");

fn yaml_target(s: &str) {
    let _ = nhacviec::plan::yaml::parse(s);
}

fn deadline_target(s: &str) {
    let _ = nhacviec::plan::deadline::fold(s);
    if let Ok(Phrase::Checkpoints { times, year }) = parse_phrase(s) {
        let _ = checkpoints(times, year.unwrap_or(2024));
    }
}

fn check_target(s: &str) {
    match from_source(s, Path::new("fuzz.yaml"), &Env::default()) {
        Err(report) => {
            let _ = report.render();
        }
        Ok(loaded) => {
            let _ = loaded.report.render();
            let cfg = loaded.config;
            let now = Utc.with_ymd_and_hms(2024, 3, 1, 1, 0, 0).unwrap();
            let cal = cfg.work_calendar(2024);
            for days in [31, 366] {
                let p = planner::plan(
                    &cfg,
                    &cal,
                    now,
                    now + chrono::Duration::days(days),
                    &HashSet::new(),
                );
                std::hint::black_box(p.upcoming.len());
            }
            // The plain week as well: no holiday data at all.
            let _ = planner::plan(
                &cfg,
                &WorkCalendar::weekends_only(),
                now,
                now + chrono::Duration::days(31),
                &HashSet::new(),
            );
        }
    }
}

#[derive(Clone, Copy)]
struct Target {
    name: &'static str,
    run: fn(&str),
}

const YAML: Target = Target {
    name: "yaml",
    run: yaml_target,
};
const DEADLINE: Target = Target {
    name: "deadline",
    run: deadline_target,
};
const CHECK: Target = Target {
    name: "check",
    run: check_target,
};

/// Runs one case: no panic, within [`CASE_LIMIT`] of CPU time. A case still running after
/// ten times the limit (wall time) is reported as a hang (its thread is left behind).
fn one_case(t: Target, input: &str) -> Result<Duration, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let owned = input.to_string();
    let run = t.run;
    std::thread::Builder::new()
        .name(format!("fuzz-{}", t.name))
        // The stack of a program's main thread, where `nhacviec check` runs.
        .stack_size(8 << 20)
        .spawn(move || {
            let start = Instant::now();
            let cpu = thread_cpu();
            let r = std::panic::catch_unwind(|| run(&owned));
            // CPU time where the kernel tells it: the tests run side by side on shared
            // cores, and waiting for a core is not the case's own slowness.
            let took = match (cpu, thread_cpu()) {
                (Some(a), Some(b)) => b.saturating_sub(a),
                _ => start.elapsed(),
            };
            let _ = tx.send((r.is_ok(), took));
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    match rx.recv_timeout(CASE_LIMIT * 10) {
        Ok((true, took)) if took < CASE_LIMIT => Ok(took),
        Ok((true, took)) => Err(format!("took {took:?}, over {CASE_LIMIT:?}")),
        Ok((false, _)) => Err("panicked".into()),
        Err(_) => Err(format!("still running after {:?}", CASE_LIMIT * 10)),
    }
}

/// The CPU time of the calling thread (Linux: `/proc/thread-self/schedstat`, in ns).
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// What a run of one target saw.
#[derive(Default)]
struct Stats {
    cases: u64,
    failures: Vec<(String, String)>,
    /// The slowest inputs, slowest first.
    slowest: Vec<(Duration, String)>,
}

impl Stats {
    fn note(&mut self, took: Duration, input: &str) {
        self.cases += 1;
        if self.slowest.len() < 8 || took > self.slowest.last().map(|s| s.0).unwrap_or_default() {
            self.slowest.push((took, input.to_string()));
            self.slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
            self.slowest.truncate(8);
        }
    }
}

/// Runs `strategy` through `t` for `cases` cases, or until `until` when given.
fn fuzz<S>(t: Target, strategy: S, cases: u32, until: Option<Instant>, stats: &Mutex<Stats>)
where
    S: Strategy<Value = String>,
{
    loop {
        let mut runner = TestRunner::new(RunnerConfig {
            cases,
            failure_persistence: None,
            // A failing input is kept as found: shrinking a hang would take minutes.
            max_shrink_iters: 64,
            ..RunnerConfig::default()
        });
        let result = runner.run(&strategy, |input| {
            match one_case(t, &input) {
                Ok(took) => stats.lock().unwrap().note(took, &input),
                Err(why) => {
                    let mut s = stats.lock().unwrap();
                    s.cases += 1;
                    s.failures.push((why.clone(), input.clone()));
                    return Err(TestCaseError::fail(why));
                }
            }
            Ok(())
        });
        if result.is_err() {
            return;
        }
        match until {
            Some(end) if Instant::now() < end => continue,
            _ => return,
        }
    }
}

// ---- generators -------------------------------------------------------------------------

/// Numbers as a clerk (or a cat on the keyboard) might type them.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "0",
            "00",
            "1",
            "01",
            "2",
            "3",
            "7",
            "12",
            "13",
            "14",
            "28",
            "29",
            "30",
            "31",
            "32",
            "99",
            "400",
            "1024",
            "0000",
            "1899",
            "1900",
            "2024",
            "2100",
            "9999",
            "97000000",
            "100000000",
            "2147483647",
            "4294967295",
            "4294967296",
            "18446744073709551615",
            "99999999999999999999",
        ])
        .prop_map(String::from),
        (0u64..5000).prop_map(|n| n.to_string()),
        any::<u32>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
    ]
}

fn year() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (2020u32..2030).prop_map(|n| n.to_string()),
        1 => number(),
    ]
}

fn offset() -> impl Strategy<Value = String> {
    (
        number(),
        prop::sample::select(vec!["d", "wd", " ngày", " ngày làm việc", "x", ""]),
    )
        .prop_map(|(n, u)| format!("{n}{u}"))
}

/// Durations, up to past `u64` seconds: `parse_duration_text` once overflowed on
/// `n * 60` (the crashes are kept in `tests/corpus/check/`).
fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        (number(), prop::sample::select(vec!["s", "", "ms", "x"]))
            .prop_map(|(n, u)| format!("{n}{u}")),
        (
            any::<u64>(),
            prop::sample::select(vec!["m", "min", "h", "d"])
        )
            .prop_map(|(n, u)| format!("{n}{u}")),
    ]
}

fn date() -> impl Strategy<Value = String> {
    (year(), number(), number()).prop_map(|(y, m, d)| format!("{y}-{m:0>2}-{d:0>2}"))
}

/// Deadline phrases in the known forms, with numbers mutated.
fn phrase() -> impl Strategy<Value = String> {
    let prefix = prop::sample::select(vec![
        "",
        "trước ngày ",
        "Trước ngày ",
        "truoc ngay ",
        "chậm nhất ",
        "hạn ",
        "Hoàn thành trước ",
        "ngày ",
    ]);
    let quarter = prop::sample::select(vec!["I", "II", "III", "IV", "V", "1", "4", "0", "iv"]);
    let word = prop::sample::select(vec![
        "Thường xuyên",
        "Theo quy định",
        "Theo hướng dẫn",
        "Theo tiến độ",
        "Theo lịch",
        "Sau khi Đề án được phê duyệt",
        "Hằng ngày",
        "Định kỳ",
        "sớm nhất có thể",
        "",
    ]);
    prop_oneof![
        (prefix, number(), number(), year()).prop_map(|(p, d, m, y)| format!("{p}{d}/{m}/{y}")),
        (year(), number(), number()).prop_map(|(y, m, d)| format!("{y}-{m}-{d}")),
        (number(), year()).prop_map(|(m, y)| format!("Tháng {m}/{y}")),
        (number(), year()).prop_map(|(m, y)| format!("tháng {m} năm {y}")),
        (quarter, year()).prop_map(|(q, y)| format!("Quý {q}/{y}")),
        year().prop_map(|y| format!("Trong năm {y}")),
        (number(), proptest::option::of(year()))
            .prop_map(|(n, y)| format!("ít nhất {n} lần/năm {}", y.unwrap_or_default())),
        word.prop_map(String::from),
        ("\\PC{0,12}", "[ .;,]{0,3}").prop_map(|(a, b)| format!("trước ngày 30/01/2024{b}{a}")),
    ]
}

/// A YAML scalar that stays on one line (quoted when it holds YAML's own characters).
fn q(s: &str) -> String {
    if s.is_empty() || s.contains([':', '#', '{', '}', '[', ']', ',', '"', '\'', '\\']) {
        format!("{s:?}")
    } else {
        s.to_string()
    }
}

/// The deadline of a task: a phrase, a periodic rule, dates, or a wait for another task.
fn deadline_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => phrase().prop_map(|p| q(&p)),
        1 => (
            prop::sample::select(vec!["month", "quarter", "year", "week", ""]),
            prop_oneof![number(), Just("last".to_string())],
            number(),
            number(),
            date(),
            date(),
        )
            .prop_map(|(every, day, moq, wda, from, until)| format!(
                "{{phrase: Theo quy định, every: {every}, day: {day}, month_of_quarter: {moq}, working_days_after: {wda}, from: {from}, until: {until}}}"
            )),
        1 => (date(), date()).prop_map(|(a, b)| format!("{{phrase: Theo lịch, dates: [{a}, {b}]}}")),
        1 => number().prop_map(|n| format!("{{phrase: Sau khi xong, after: U, days: {n}}}")),
        1 => (number(), year()).prop_map(|(n, y)| format!("{{phrase: {n} lần/năm {y}, checkpoints: {n}}}")),
    ]
}

/// A whole config built from the seed's keys, with hostile values where numbers go.
fn config_text() -> impl Strategy<Value = String> {
    let policy = (
        prop::collection::vec(offset(), 0..4),
        any::<bool>(),
        proptest::option::of(offset()),
        proptest::option::of(number()),
        proptest::option::of(offset()),
        proptest::option::of(offset()),
    );
    let schedule = (
        offset(),
        prop::sample::select(vec![
            "0 8 * * *",
            "30 9 * * 1-5",
            "0 0 29 2 *",
            "*/1 * * * *",
            "61 25 * * *",
            "0 8 31 4 *",
        ]),
        prop::sample::select(vec![
            "07:30-17:00",
            "00:00-23:59",
            "17:00-07:30",
            "25:00-26:00",
        ]),
        prop::sample::select(vec![
            "Asia/Ho_Chi_Minh",
            "UTC",
            "Pacific/Kiritimati",
            "Nowhere/City",
        ]),
    );
    let mail = (duration(), number(), duration(), duration(), any::<bool>());
    (
        year(),
        deadline_value(),
        deadline_value(),
        proptest::option::of(date()),
        proptest::option::of(date()),
        policy,
        schedule,
        mail,
    )
        .prop_map(
            |(plan_year, d1, d2, done, day_off, policy, schedule, mail)| {
                let (before, on_day, every, limit, head, lead) = policy;
                let mut y = format!(
                    "plan:\n  year: {plan_year}\noffices:\n  hctc:\n    name: Phòng HC-TC\n    email: hctc@vpubnd.example\n    head: truong.hctc@vpubnd.example\n  kt:\n    name: Phòng Kinh tế\n    email: kt@vpubnd.example\nleadership: hctc\n"
                );
                if let Some(d) = &day_off {
                    y.push_str(&format!("calendar:\n  days_off:\n    {d}: Nghỉ\n"));
                }
                y.push_str(&format!(
                    "tasks:\n  - id: T\n    title: Báo cáo\n    deadline: {d1}\n    lead: hctc\n    cooperating: kt\n    reminders: p\n"
                ));
                if let Some(d) = &done {
                    y.push_str(&format!("  - id: U\n    title: Đề án\n    deadline: {d2}\n    lead: kt\n    done: {d}\n"));
                } else {
                    y.push_str(&format!("  - id: U\n    title: Đề án\n    deadline: {d2}\n    lead: kt\n"));
                }
                y.push_str(&format!(
                    "reminders:\n  p:\n    before: [{}]\n    on_day: {on_day}\n",
                    before.join(", ")
                ));
                if let Some(e) = every {
                    y.push_str(&format!("    overdue_every: {e}\n"));
                }
                if let Some(l) = limit {
                    y.push_str(&format!("    overdue_limit: {l}\n"));
                }
                if head.is_some() || lead.is_some() {
                    y.push_str("    escalate:\n");
                    if let Some(h) = head {
                        y.push_str(&format!("      head_after: {h}\n"));
                    }
                    if let Some(l) = lead {
                        y.push_str(&format!("      leadership_after: {l}\n"));
                    }
                }
                let (catch_up, sweep, window, tz) = schedule;
                y.push_str(&format!(
                    "schedule:\n  timezone: {tz}\n  sweeps: [\"{sweep}\"]\n  window: \"{window}\"\n  catch_up: {catch_up}\n"
                ));
                let (timeout, attempts, initial, max, smtp) = mail;
                y.push_str("mail:\n  from: Văn phòng <nhacviec@vpubnd.example>\n  transport:\n");
                if smtp {
                    y.push_str(&format!(
                        "    smtp:\n      host: mail.example.org\n      timeout: {timeout}\n"
                    ));
                } else {
                    y.push_str("    outbox: outbox\n");
                }
                y.push_str(&format!(
                    "  retry:\n    attempts: {attempts}\n    initial: {initial}\n    max: {max}\nledger:\n  path: ledger.sqlite\n"
                ));
                y
            },
        )
}

/// The seed plan with a few lines changed: a number replaced, a line dropped, doubled or
/// cut short.
fn seed_mutation() -> impl Strategy<Value = String> {
    let lines: Vec<&'static str> = SEED.lines().collect();
    let n = lines.len();
    prop::collection::vec((0..n, 0u8..4, number(), 0usize..80), 1..6).prop_map(move |edits| {
        let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        for (i, op, num, cut) in edits {
            let i = i % l.len().max(1);
            if l.is_empty() {
                break;
            }
            match op {
                0 => {
                    // The first run of digits becomes `num`.
                    let s = &l[i];
                    if let Some(a) = s.find(|c: char| c.is_ascii_digit()) {
                        let b = s[a..]
                            .find(|c: char| !c.is_ascii_digit())
                            .map_or(s.len(), |b| a + b);
                        l[i] = format!("{}{num}{}", &s[..a], &s[b..]);
                    }
                }
                1 => {
                    l.remove(i);
                }
                2 => {
                    let dup = l[i].clone();
                    l.insert(i, dup);
                }
                _ => {
                    let s = &l[i];
                    let mut at = cut.min(s.len());
                    while !s.is_char_boundary(at) {
                        at -= 1;
                    }
                    l[i] = s[..at].to_string();
                }
            }
        }
        l.join("\n")
    })
}

fn bytes_as_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..512)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// YAML-ish text: the characters YAML cares about, keys of the plan, indentation.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "plan:",
        "tasks:",
        "offices:",
        "- ",
        "  ",
        "\n",
        ": ",
        "{",
        "}",
        "[",
        "]",
        ",",
        "&a ",
        "*a",
        "<<: *a",
        "!!str ",
        "!tag ",
        "? ",
        "|",
        ">",
        "'",
        "\"",
        "#",
        "---",
        "...",
        "deadline: ",
        "before: [7d]",
        "id: T",
        "%YAML 1.2\n",
        "\t",
        "\\",
        "~",
        "null",
        "2024-01-30",
        "\u{feff}",
        "\u{0}",
        "é",
        "ệ",
    ]);
    prop::collection::vec(token, 0..80).prop_map(|v| v.concat())
}

// ---- the tests ----------------------------------------------------------------------------

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(target)
}

/// Every file of `tests/corpus/<target>/` through the target.
fn replay(t: Target) -> usize {
    let dir = corpus_dir(t.name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut failures = Vec::new();
    for f in &files {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        if let Err(why) = one_case(t, &text) {
            failures.push(format!("{}: {why}", f.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    files.len()
}

#[test]
fn the_corpus_replays_cleanly() {
    let start = Instant::now();
    for t in [YAML, DEADLINE, CHECK] {
        assert!(replay(t) > 0, "tests/corpus/{} is empty", t.name);
    }
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}

/// How long each target runs: `NHACVIEC_FUZZ_SECS`, or a quick round of fresh cases.
fn budget() -> Option<Duration> {
    std::env::var("NHACVIEC_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
}

/// Runs the strategies of a target (sharing its time), prints the figures, keeps the
/// failures and slowest inputs when asked, and fails on any failure.
fn campaign(t: Target, strategies: fn() -> Vec<BoxedStrategy<String>>) {
    // Generating and shrinking the nested config strategies needs more than a test
    // thread's 2 MiB of stack in a debug build.
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || campaign_on_this_thread(t, strategies()))
        .unwrap()
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

fn campaign_on_this_thread(t: Target, strategies: Vec<BoxedStrategy<String>>) {
    let stats = Mutex::new(Stats::default());
    let start = Instant::now();
    let budget = budget();
    let share = budget.map(|b| b / strategies.len() as u32);
    for s in strategies {
        let until = share.map(|d| Instant::now() + d);
        let cases = if until.is_some() { 2000 } else { QUICK_CASES };
        fuzz(t, s, cases, until, &stats);
        if !stats.lock().unwrap().failures.is_empty() {
            break;
        }
    }
    let stats = stats.into_inner().unwrap();
    let slowest = stats.slowest.first().map(|s| s.0).unwrap_or_default();
    println!(
        "fuzz {}: {} cases in {:.1?}, slowest {slowest:?}, {} failure(s)",
        t.name,
        stats.cases,
        start.elapsed(),
        stats.failures.len()
    );
    if let Ok(out) = std::env::var("NHACVIEC_FUZZ_OUT") {
        let dir = Path::new(&out).join(t.name);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, (_, input)) in stats.failures.iter().enumerate() {
            std::fs::write(dir.join(format!("crash-{i}.txt")), input).unwrap();
        }
        for (i, (_, input)) in stats.slowest.iter().enumerate() {
            std::fs::write(dir.join(format!("slow-{i}.txt")), input).unwrap();
        }
    }
    if let Some((why, input)) = stats.failures.first() {
        panic!("fuzz {}: {why} on input:\n{input}", t.name);
    }
}

#[test]
fn fuzz_yaml() {
    campaign(YAML, || {
        vec![
            bytes_as_text().boxed(),
            "\\PC{0,400}".boxed(),
            yamlish().boxed(),
            config_text().boxed(),
        ]
    });
}

#[test]
fn fuzz_deadline() {
    campaign(DEADLINE, || {
        vec![
            bytes_as_text().boxed(),
            "\\PC{0,80}".boxed(),
            phrase().boxed(),
        ]
    });
}

#[test]
fn fuzz_check() {
    campaign(CHECK, || {
        vec![
            bytes_as_text().boxed(),
            yamlish().boxed(),
            config_text().boxed(),
            seed_mutation().boxed(),
        ]
    });
}
