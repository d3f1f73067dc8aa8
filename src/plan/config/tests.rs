use super::*;
use crate::plan::deadline::Rule;

/// Loads `src`; these tests assert the English texts.
pub(crate) fn load_str(src: &str) -> Result<Loaded, Report> {
    crate::i18n::set_for_thread(Some(crate::i18n::Lang::En));
    from_source(src, Path::new("test.yaml"), &Env::default())
}

const MINIMAL: &str = "\
offices:
  hctc:
    name: Phòng Hành chính – Tổ chức
    email: hctc@vpubnd.example
  kt:
    name: Phòng Kinh tế
    email: [kt@vpubnd.example, kt2@vpubnd.example]
groups:
  cac-phong: [hctc, kt]
tasks:
  - id: I.2
    title: Chương trình PCI
    deadline: Quý II/2024
    lead: hctc
    cooperating: cac-phong
";

#[test]
fn minimal_config_loads_with_defaults() {
    let l = load_str(MINIMAL).unwrap_or_else(|r| panic!("{}", r.render()));
    let c = l.config;
    assert_eq!(c.tasks[0].lead, vec!["hctc"]);
    assert_eq!(
        c.tasks[0].cooperating,
        vec!["kt"],
        "the lead is not also cooperating"
    );
    assert_eq!(&*c.tasks[0].section, "I");
    assert_eq!(
        c.tasks[0].deadline.rule,
        Rule::Dates(vec!["2024-06-30".parse().unwrap()])
    );
    assert_eq!(c.office("kt").unwrap().emails.len(), 2);
    assert_eq!(c.schedule.timezone, chrono_tz::Asia::Ho_Chi_Minh);
    assert!(matches!(c.mail.transport, Transport::Outbox(ref p) if p.ends_with("outbox")));
    assert_eq!(c.policy("default"), &Policy::builtin());
}

#[test]
fn every_error_is_reported_at_once() {
    let src = MINIMAL
        .replace("lead: hctc", "lead: hctc2\n    deadlin: x")
        .replace("kt2@vpubnd.example", "kt2-at-vpubnd");
    let r = load_str(&src).unwrap_err();
    let text = r.render();
    assert!(r.error_count() >= 3, "{text}");
    assert!(text.contains("unknown office or group `hctc2`"), "{text}");
    assert!(text.contains("did you mean `hctc`?"), "{text}");
    assert!(text.contains("unknown key `deadlin`"), "{text}");
    assert!(text.contains("not a valid email address"), "{text}");
}

#[test]
fn secrets_are_refused() {
    let src = format!(
        "{MINIMAL}mail:\n  transport:\n    smtp:\n      host: mail.example.org\n      password: hunter2\n"
    );
    let r = load_str(&src).unwrap_err();
    let text = r.render();
    assert!(
        text.contains("`password` puts a secret in the config file"),
        "{text}"
    );
}

#[test]
fn dependency_cycles_are_found() {
    let src = format!(
        "{MINIMAL}  - id: A
    title: a
    deadline: {{phrase: Sau khi B, after: B, days: 3}}
    lead: hctc
  - id: B
    title: b
    deadline: {{phrase: Sau khi A, after: A, days: 3}}
    lead: hctc
"
    );
    let r = load_str(&src).unwrap_err();
    assert!(
        r.render().contains("in a circle: A → B → A"),
        "{}",
        r.render()
    );
}

#[test]
fn bad_cron_and_window() {
    let src =
        format!("{MINIMAL}schedule:\n  sweeps: [\"0 25 * * *\"]\n  window: \"17:00-07:00\"\n");
    let r = load_str(&src).unwrap_err();
    let text = r.render();
    assert!(
        text.contains("the sweep time `0 25 * * *` cannot be read"),
        "{text}"
    );
    assert!(
        text.contains("the sending window `17:00-07:00` cannot be read"),
        "{text}"
    );
}

#[test]
fn periodic_and_dependency_forms() {
    let src = format!(
        "plan:\n  year: 2024\n{MINIMAL}  - id: VII.5
    title: Báo cáo định kỳ
    deadline: {{phrase: Theo quy định, every: quarter, day: 14, working_days_after: 2}}
    lead: hctc
  - id: IV.2
    title: b
    deadline: {{phrase: Sau khi Đề án được phê duyệt, after: I.2, days: 30}}
    lead: hctc
  - id: I.3
    title: Đối thoại
    deadline: {{phrase: Trong năm 2024, checkpoints: 2}}
    lead: kt
"
    );
    let c = load_str(&src)
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config;
    assert!(matches!(
        c.task("VII.5").unwrap().deadline.rule,
        Rule::Periodic(_)
    ));
    assert_eq!(
        c.task("IV.2").unwrap().deadline.rule,
        Rule::After {
            task: "I.2".into(),
            days: 30
        }
    );
    assert_eq!(
        c.task("I.3").unwrap().deadline.rule,
        Rule::Dates(vec![
            "2024-06-30".parse().unwrap(),
            "2024-12-31".parse().unwrap()
        ])
    );
}

#[test]
fn plaintext_smtp_needs_consent() {
    let src = format!(
        "{MINIMAL}mail:\n  transport:\n    smtp:\n      host: mail.example.org\n      security: none\n"
    );
    assert!(
        load_str(&src)
            .unwrap_err()
            .render()
            .contains("allow_plaintext")
    );
    let src = format!(
        "{MINIMAL}mail:\n  transport:\n    smtp:\n      host: 127.0.0.1\n      port: 2525\n      security: none\n      allow_plaintext: true\n"
    );
    let l = load_str(&src).unwrap_or_else(|r| panic!("{}", r.render()));
    assert_eq!(l.report.warning_count(), 0, "{}", l.report.render());
}

#[test]
fn language_is_vi_or_en() {
    let l =
        load_str(&format!("language: en\n{MINIMAL}")).unwrap_or_else(|r| panic!("{}", r.render()));
    assert_eq!(l.config.language, Some(crate::i18n::Lang::En));
    assert_eq!(load_str(MINIMAL).unwrap().config.language, None);
    let r = load_str(&format!("language: fr\n{MINIMAL}")).unwrap_err();
    assert!(
        r.render().contains("there is no language `fr`"),
        "{}",
        r.render()
    );
    assert_eq!(r.items[0].pos.map(|p| p.line), Some(1));
}

/// An `after:` names any task written, read or not; the hint for an unknown one lists the
/// ids as written, in file order, repeats and unread tasks included.
#[test]
fn after_knows_every_written_id_in_file_order() {
    let task = |id: &str, rest: &str| format!("  - id: {id}\n    title: T\n    lead: hctc\n{rest}");
    let after = |t: &str| {
        format!("    deadline:\n      phrase: Sau khi xong\n      after: {t}\n      days: 5\n")
    };
    let src = [
        MINIMAL.to_string(),
        task("zz.1", "    deadline: Quý II/2024\n"),
        task("broken.2", ""),
        task("zz.1", "    deadline: Quý III/2024\n"),
        task("waits.3", &after("broken.2")),
        task("waits.4", &after("nowhere-at-all")),
    ]
    .concat();
    let r = load_str(&src).unwrap_err();
    let text = r.render();
    assert!(!text.contains("unknown task `broken.2`"), "{text}");
    assert!(text.contains("task id `zz.1` is used twice"), "{text}");
    assert!(
        text.contains(
            "waits for unknown task `nowhere-at-all`\n  --> test.yaml:34:9\n   |\n34 |   - id: waits.4\n   |         ^^^^^^^\n   = valid names: I.2, zz.1, broken.2, zz.1, waits.3, waits.4\n"
        ),
        "{text}"
    );
}

/// The tasks read as the parser reads them (`read::Reader::stream_task`): the same config
/// and the same diagnostics as the whole tree read, and the file read again whole when a
/// section the tasks are read with comes after them.
#[test]
fn tasks_read_as_parsed_are_the_tasks_read_from_the_tree() {
    crate::i18n::set_for_thread(Some(crate::i18n::Lang::En));
    let env = Env {
        today: Some("2024-03-01".parse().unwrap()),
        ..Env::default()
    };
    let path = Path::new("test.yaml");
    // The config's fields, its indexes in order (a hash map's order depends on its history).
    let fields = |c: &Config| {
        let index: std::collections::BTreeMap<_, _> = c.task_index.iter().collect();
        let offices: std::collections::BTreeMap<_, _> = c.office_index.iter().collect();
        format!(
            "{:?}",
            (
                (&c.plan, &c.offices, offices, &c.groups, &c.sections),
                (&c.leadership, &c.policies, &c.tasks, index, &c.mail),
                (&c.ledger, &c.calendar, &c.web, &c.language),
                (
                    c.schedule.timezone,
                    &c.schedule.sweeps.len(),
                    c.schedule.catch_up
                ),
            )
        )
    };
    let streamed = |src: &str| {
        let reader = read::Reader::new(path, &env);
        let mut s = read::Streamed::default();
        let tree = yaml::parse_streaming(src, &mut |root, before, item| {
            reader.stream_task(&mut s, root, before, item)
        })
        .expect("plain YAML");
        let read = match reader.config_streamed(s, tree) {
            read::Finished::Read(c) => Some(c.as_deref().map(fields)),
            read::Finished::Tree(_) => None,
            read::Finished::Again => None,
        };
        let mut diags = reader.into_diagnostics();
        diags.sort_by_key(|d| (d.severity, d.pos));
        read.map(|c| (c, diags))
    };
    let whole = |src: &str| {
        let reader = read::Reader::new(path, &env);
        let c = reader.config(yaml::parse(src).unwrap());
        let mut diags = reader.into_diagnostics();
        diags.sort_by_key(|d| (d.severity, d.pos));
        (c.as_ref().map(fields), diags)
    };
    let broken = MINIMAL
        .replace("lead: hctc", "lead: hctc2\n    password: x\n    deadlin: y")
        .replace(
            "deadline: Quý II/2024",
            "deadline: Quý II/2024\n    done: 2024-05-01",
        )
        + "  - id: I.2\n    title: again\n    deadline: 30/06/2024\n    lead: [kt, hctc]\n";
    let seed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/khanh-hoa-2024.yaml"),
    )
    .unwrap();
    for (i, src) in [MINIMAL.to_string(), broken, seed].iter().enumerate() {
        let (config, diags) = streamed(src).expect("read as parsed");
        let (config2, diags2) = whole(src);
        assert!(config == config2, "configs differ for source {i}");
        assert_eq!(diags, diags2, "source {i}");
        assert!(!diags.is_empty(), "source {i}");
    }
    // A section the tasks are read with, written after them: read again, whole.
    let (head, tasks) = MINIMAL.split_at(MINIMAL.find("tasks:").unwrap());
    assert!(streamed(&format!("{tasks}{head}")).is_none());
    assert!(streamed(&format!("{MINIMAL}language: en\n")).is_none());
    let l = load_str(&format!("{tasks}{head}")).unwrap();
    assert_eq!(l.config.tasks[0].lead, vec!["hctc"]);
    // `language:` before the tasks leaves them in the tree.
    assert!(streamed(&format!("language: en\n{MINIMAL}")).is_none());
}

/// A deadline phrase written again means what it meant the first time, and one with a
/// problem is reported at every task that writes it, not only the first.
#[test]
fn a_repeated_phrase_reads_the_same_and_its_problem_is_reported_each_time() {
    let mut src = String::from(
        "plan:\n  year: 2024\noffices:\n  hctc:\n    name: HCTC\n    email: hctc@vpubnd.example\ntasks:\n",
    );
    let phrases = [
        "trước ngày 30/01/2024",
        "Quý II/2024",
        "02 lần/năm",
        "Thường xuyên",
        "Tháng 7/2024",
        "30/09/2024",
    ];
    for round in 0..3 {
        for (i, p) in phrases.iter().enumerate() {
            src +=
                &format!("  - id: I.{round}{i}\n    title: t\n    deadline: {p}\n    lead: hctc\n");
        }
    }
    let c = load_str(&src)
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config;
    assert_eq!(c.tasks.len(), 18);
    for (i, t) in c.tasks.iter().enumerate() {
        let first = &c.tasks[i % phrases.len()];
        assert_eq!(t.deadline.phrase, phrases[i % phrases.len()]);
        assert_eq!(t.deadline.rule, first.deadline.rule, "{}", t.id);
        assert_eq!(t.deadline.exclusive, first.deadline.exclusive, "{}", t.id);
    }
    assert!(c.tasks[0].deadline.exclusive && !c.tasks[1].deadline.exclusive);
    // Each reading is a reading on its own: the same as a plan of that task alone.
    for t in &c.tasks[..phrases.len()] {
        let alone = format!(
            "plan:\n  year: 2024\noffices:\n  hctc:\n    name: HCTC\n    email: hctc@vpubnd.example\ntasks:\n  - id: X.1\n    title: t\n    deadline: {}\n    lead: hctc\n",
            t.deadline.phrase
        );
        let a = load_str(&alone)
            .unwrap_or_else(|r| panic!("{}", r.render()))
            .config;
        assert_eq!(a.tasks[0].deadline, t.deadline);
    }
    // A phrase without a year where the plan has none, and one that names no task: an
    // error at each of the three tasks that write it.
    let broken = src
        .replace("plan:\n  year: 2024\n", "")
        .replace("Tháng 7/2024", "Sau khi Đề án được phê duyệt");
    let r = load_str(&broken).unwrap_err();
    let text = r.render();
    assert_eq!(text.matches("needs a year").count(), 3, "{text}");
    assert_eq!(text.matches("but which one?").count(), 3, "{text}");
}

/// The cycles found walking once are those the walk from every task finds: the same
/// cycles, in the same order, each from the same task. On random plans of tasks that wait
/// for each other (chains, cycles, tasks waiting for themselves), against that walk.
#[test]
fn dependency_cycles_are_those_every_walk_finds() {
    // Walks from every task in turn, reporting a cycle not reported yet.
    fn from_every_task(next: &[Option<usize>]) -> Vec<Vec<usize>> {
        let mut reported = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for start in 0..next.len() {
            let mut path = vec![start];
            let mut cur = start;
            while let Some(n) = next[cur] {
                if let Some(at) = path.iter().position(|p| *p == n) {
                    let cycle = path[at..].to_vec();
                    if cycle.iter().all(|c| !reported.contains(c)) {
                        reported.extend(cycle.iter().copied());
                        out.push(cycle);
                    }
                    break;
                }
                path.push(n);
                cur = n;
            }
        }
        out
    }
    let mut r = crate::plan::planner::tests::Rng(17);
    let mut with_cycles = 0;
    for round in 0..400 {
        let n = 1 + r.below(40) as usize;
        let waiting = r.below(100);
        let next: Vec<Option<usize>> = (0..n)
            .map(|_| (r.below(100) < waiting).then(|| r.below(n as u64) as usize))
            .collect();
        let expected = from_every_task(&next);
        with_cycles += usize::from(!expected.is_empty());
        let got = read::dependency_cycles(n, |i| next[i]);
        assert_eq!(got, expected, "round {round}: {next:?}");
    }
    assert!(with_cycles > 150, "{with_cycles}");
    // A long chain ending in a cycle of three is walked once.
    let n = 200_000;
    let next = |i: usize| match i {
        _ if i + 1 < n => Some(i + 1),
        _ => Some(n - 3),
    };
    assert_eq!(
        read::dependency_cycles(n, next),
        vec![vec![n - 3, n - 2, n - 1]]
    );
}

/// A file that is UTF-8 up to one Latin-1 letter is refused, at that byte; one that is
/// UTF-8 throughout is read, letters of every width.
#[test]
fn a_file_not_utf8_is_refused_at_the_byte_that_breaks() {
    crate::i18n::set_for_thread(Some(crate::i18n::Lang::En));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.yaml");
    let mut bytes = MINIMAL.as_bytes().to_vec();
    std::fs::write(&path, &bytes).unwrap();
    assert!(load(&path, &Env::default()).is_ok());
    let at = MINIMAL.find("Chương").unwrap();
    bytes.splice(at..at, [b'P', b'h', 0xF2, b'n', b'g', b' ']);
    std::fs::write(&path, &bytes).unwrap();
    let r = load(&path, &Env::default()).unwrap_err();
    let text = r.render();
    assert!(
        text.contains(&format!(
            "the config file is not UTF-8 text (byte {} cannot be read)",
            at + 3
        )),
        "{text}"
    );
}
