//! A year of operation, replayed: the seed plan over all of 2024, one sweep at every
//! scheduled time (each working day at 08:00), in one ledger, through the real sweep code
//! (`sweep::sweep`, what `run --once --at T` runs) with the outbox transport in a temporary
//! folder. Every nudge `plan` lists is sent exactly once and none is skipped; the volume
//! stays bounded; a week of downtime catches up only the latest nudge of each occurrence;
//! with every task done on its deadline, nothing overdue is ever sent.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use nhacviec::calendar::workdays::WorkCalendar;
use nhacviec::delivery::ledger::{DeliveryKey, DeliveryRow, Ledger, LogFilter, Status, Store};
use nhacviec::delivery::sweep::{self, Context};
use nhacviec::delivery::transport::SecretEnv;
use nhacviec::plan::config::{self, Config, Env};
use nhacviec::plan::planner::{self, NudgeKey};
use nhacviec::service::clock::Clock;
use nhacviec::service::shutdown::Shutdown;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

const SEED: &str = include_str!("../config/khanh-hoa-2024.yaml");

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// 08:00 in Khánh Hòa on `day`: the seed's sweep time.
fn at_eight(day: NaiveDate) -> DateTime<Utc> {
    chrono_tz::Asia::Ho_Chi_Minh
        .from_local_datetime(&day.and_hms_opt(8, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// The seed, with `yaml` as its text, in a temporary folder (its ledger and outbox beside it).
fn seed_in(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("nhacviec.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn load(path: &Path) -> Config {
    config::load(path, &Env::default())
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config
}

/// Every nudge of 2024, as `plan` lists it on 01/01/2024 with an empty ledger.
fn planned(cfg: &Config, cal: &WorkCalendar) -> Vec<planner::Nudge> {
    let from = at_eight(d("2024-01-01")) - chrono::Duration::hours(8);
    let until = at_eight(d("2024-12-31")) + chrono::Duration::hours(15);
    planner::plan(cfg, cal, from, until, &HashSet::new()).upcoming
}

/// Sweeps every working day of 2024 at 08:00, except the days in `down`, through the real
/// sweep code; returns every ledger row.
async fn replay(path: &Path, down: Option<(NaiveDate, NaiveDate)>) -> Vec<DeliveryRow> {
    let cfg = load(path);
    let ctx = Context::new(cfg, &SecretEnv::default(), at_eight(d("2024-01-01"))).unwrap();
    let mut ledger = Store::Sqlite(Ledger::open(&ctx.config.ledger.path).unwrap());
    let stop = Shutdown::new();
    let mut day = d("2024-01-01");
    while day.year() == 2024 {
        let is_down = down.is_some_and(|(a, b)| a <= day && day <= b);
        if ctx.calendar.is_working_day(day) && !is_down {
            let clock = Clock::starting_at(at_eight(day));
            let report = sweep::sweep(&ctx, &mut ledger, &clock, &stop)
                .await
                .unwrap();
            assert!(report.all_delivered(), "{day}: {report:?}");
        }
        day = day.succ_opt().unwrap();
    }
    ledger
        .sqlite()
        .unwrap()
        .query(&LogFilter::default())
        .unwrap()
}

fn keys(rows: &[DeliveryRow], status: Status) -> BTreeSet<NudgeKey> {
    rows.iter()
        .filter(|r| r.status == status)
        .map(|r| r.key.clone())
        .collect()
}

/// Emails per address: (address, ISO year, ISO week) and (address, day) counts, from the
/// ledger's rows (one Message-ID, one email).
struct Volume {
    per_week: BTreeMap<(String, i32, u32), usize>,
    per_day: BTreeMap<(String, NaiveDate), usize>,
    total: BTreeMap<String, usize>,
}

fn volume(rows: &[DeliveryRow]) -> Volume {
    let mut emails: BTreeMap<&str, (NaiveDate, &[String])> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.status == Status::Sent) {
        let day = r
            .sent_at
            .unwrap()
            .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
            .date_naive();
        emails.insert(&r.message_id, (day, &r.recipients));
    }
    let mut v = Volume {
        per_week: BTreeMap::new(),
        per_day: BTreeMap::new(),
        total: BTreeMap::new(),
    };
    for (day, to) in emails.values() {
        for a in to.iter() {
            let w = day.iso_week();
            *v.per_week
                .entry((a.clone(), w.year(), w.week()))
                .or_default() += 1;
            *v.per_day.entry((a.clone(), *day)).or_default() += 1;
            *v.total.entry(a.clone()).or_default() += 1;
        }
    }
    v
}

fn leadership_addresses(cfg: &Config) -> Vec<String> {
    let l = cfg
        .leadership
        .as_deref()
        .and_then(|l| cfg.office(l))
        .unwrap();
    l.emails.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_year_with_every_sweep_sends_every_planned_nudge_once_and_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = seed_in(dir.path(), SEED);
    let cfg = load(&path);
    let cal = cfg.work_calendar(2024);
    let plan = planned(&cfg, &cal);
    let planned: BTreeSet<NudgeKey> = plan.iter().map(|n| n.key()).collect();
    assert_eq!(planned.len(), plan.len(), "a key planned twice");
    // The quarterly report and the two checkpoints are all in the plan.
    for occ in ["2024-03-18", "2024-06-18", "2024-09-17", "2024-12-17"] {
        assert!(
            plan.iter()
                .any(|n| &*n.task == "VII.5" && n.occurrence == d(occ)),
            "VII.5 {occ}"
        );
    }

    let rows = replay(&path, None).await;
    let skipped = keys(&rows, Status::Skipped);
    assert!(skipped.is_empty(), "skipped while running: {skipped:?}");
    let sent = keys(&rows, Status::Sent);
    assert_eq!(rows.len(), sent.len(), "every row is a sent nudge");
    let missing: Vec<_> = planned.difference(&sent).collect();
    let extra: Vec<_> = sent.difference(&planned).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}\nextra {extra:?}"
    );
    assert!(
        rows.iter().all(|r| !r.late),
        "nothing is late with every sweep"
    );
    // Each on the day and at the time `plan` gave it: the plan made at each sweep, looking
    // no further than that sweep, agrees with the plan of the whole year.
    let when: HashMap<NudgeKey, DateTime<Utc>> = plan
        .iter()
        .map(|n| (n.key(), n.send_at.with_timezone(&Utc)))
        .collect();
    for r in &rows {
        assert_eq!(r.due_at, when[&r.key], "{}", r.key);
        let sent = r.sent_at.unwrap();
        assert!(
            sent >= r.due_at && sent - r.due_at < chrono::Duration::hours(1),
            "{}",
            r.key
        );
    }

    // Volume: nobody more than 3 emails in an ISO week; the leadership at most one a day
    // and at most 60 in the year.
    let v = volume(&rows);
    let busiest = v.per_week.iter().max_by_key(|(_, n)| **n).unwrap();
    assert!(
        v.per_week.values().all(|n| *n <= 3),
        "busiest week: {busiest:?}; over 3: {:?}",
        v.per_week
            .iter()
            .filter(|(_, n)| **n > 3)
            .collect::<Vec<_>>()
    );
    for a in leadership_addresses(&cfg) {
        assert!(
            v.per_day
                .iter()
                .filter(|((x, _), _)| *x == a)
                .all(|(_, n)| *n <= 1),
            "{a} got two emails in a day"
        );
        let year = v.total.get(&a).copied().unwrap_or(0);
        assert!(year <= 60, "{a} got {year} emails in 2024");
        assert!(year > 0, "nothing was ever escalated to {a}");
    }
    let emails: BTreeSet<&str> = rows.iter().map(|r| r.message_id.as_str()).collect();
    let files = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .count();
    assert_eq!(files, emails.len(), "one .eml per email in the outbox");
    println!(
        "2024 replayed: {} nudges in {} emails; busiest address-week {busiest:?}; totals {:?}",
        rows.len(),
        emails.len(),
        v.total
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_down_in_june_catches_up_only_the_latest_nudge_of_each_occurrence() {
    let dir = tempfile::tempdir().unwrap();
    let path = seed_in(dir.path(), SEED);
    let cfg = load(&path);
    let cal = cfg.work_calendar(2024);
    let plan = planned(&cfg, &cal);
    let (down_from, down_to, back) = (d("2024-06-10"), d("2024-06-14"), d("2024-06-17"));

    // Expected: per (task, occurrence, office, digest or not), the nudges of the week down
    // and of the day back: the latest goes out (late when it was planned in the week down),
    // the others are skipped. Everything else goes out on its day.
    let mut groups: HashMap<(String, NaiveDate, String, bool), Vec<&planner::Nudge>> =
        HashMap::new();
    let mut expect_sent: BTreeSet<NudgeKey> = BTreeSet::new();
    let mut expect_late: BTreeSet<NudgeKey> = BTreeSet::new();
    let mut expect_skipped: BTreeSet<NudgeKey> = BTreeSet::new();
    for n in &plan {
        if n.date >= down_from && n.date <= back {
            let g = (
                n.task.to_string(),
                n.occurrence,
                n.office.to_string(),
                n.kind.is_leadership(),
            );
            groups.entry(g).or_default().push(n);
        } else {
            expect_sent.insert(n.key());
        }
    }
    for list in groups.values() {
        let latest = list.iter().max_by_key(|n| n.date).unwrap();
        assert_eq!(
            list.iter().filter(|n| n.date == latest.date).count(),
            1,
            "one nudge a day per deadline and office"
        );
        expect_sent.insert(latest.key());
        if latest.date < back {
            expect_late.insert(latest.key());
        }
        for n in list.iter().filter(|n| n.date < latest.date) {
            expect_skipped.insert(n.key());
        }
    }
    assert!(!expect_skipped.is_empty() && !expect_late.is_empty());

    let rows = replay(&path, Some((down_from, down_to))).await;
    assert_eq!(keys(&rows, Status::Sent), expect_sent);
    assert_eq!(keys(&rows, Status::Skipped), expect_skipped);
    let late: BTreeSet<NudgeKey> = rows
        .iter()
        .filter(|r| r.late && r.status == Status::Sent)
        .map(|r| r.key.clone())
        .collect();
    assert_eq!(late, expect_late);
}

/// The seed with every dated task marked done on each of its deadlines.
fn done_on_deadlines(yaml: &str, cfg: &Config, cal: &WorkCalendar) -> String {
    let mut done: HashMap<&str, String> = HashMap::new();
    for t in &cfg.tasks {
        if let Ok(occ) = planner::occurrences(cfg, cal, t) {
            let entries: Vec<String> = occ
                .iter()
                .map(|o| format!("{{ occurrence: {o}, date: {o} }}"))
                .collect();
            done.insert(&t.id, format!("    done: [{}]", entries.join(", ")));
        }
    }
    let mut out = String::new();
    for line in yaml.lines() {
        // A task already marked done keeps only the generated line.
        if line.trim_start().starts_with("done:") && line.starts_with("    ") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if let Some(id) = line.strip_prefix("  - id: ")
            && let Some(l) = done.get(id.split('#').next().unwrap().trim())
        {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_task_done_on_its_deadline_nothing_overdue_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = seed_in(dir.path(), SEED);
    // Twice: a task waiting for another is scheduled once that one is done.
    for _ in 0..2 {
        let cfg = load(&path);
        let cal = cfg.work_calendar(2024);
        let yaml = done_on_deadlines(&std::fs::read_to_string(&path).unwrap(), &cfg, &cal);
        std::fs::write(&path, yaml).unwrap();
    }
    let rows = replay(&path, None).await;
    let overdue: Vec<&DeliveryKey> = rows
        .iter()
        .filter(|r| r.key.kind.starts_with("overdue") || r.key.kind.starts_with("escalation"))
        .map(|r| &r.key)
        .collect();
    assert!(overdue.is_empty(), "{overdue:?}");
    assert!(
        rows.iter().filter(|r| r.status == Status::Sent).count() > 50,
        "the reminders before the deadlines still go out"
    );
    assert!(rows.iter().all(|r| r.status == Status::Sent));
}
