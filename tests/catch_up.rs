//! A property of the catch-up: over random small plans, random sweep times and random
//! downtimes, the real sweep (one SQLite ledger, the outbox transport, in a temporary folder)
//! sends exactly what `plan` lists, except what a downtime allows it to skip: a nudge whose
//! day fell while nhacviec was down, superseded by a later nudge of the same occurrence and
//! office, or older than `catch_up` when nhacviec came back. Never one key twice.
//!
//! 16 cases by default (each replays four months of sweeps); `PROPTEST_CASES` raises it.

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use nhacviec::delivery::ledger::{Ledger, LogFilter, Status, Store};
use nhacviec::delivery::sweep::{self, Context};
use nhacviec::delivery::transport::SecretEnv;
use nhacviec::plan::config::{self, Env, Unit};
use nhacviec::plan::planner::{self, Nudge, NudgeKey};
use nhacviec::service::clock::Clock;
use nhacviec::service::shutdown::Shutdown;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};

const OFFICES: [&str; 3] = ["a", "b", "c"];
const FIRST: &str = "2024-01-02";
const LAST: &str = "2024-04-30";

#[derive(Debug, Clone)]
struct TaskSpec {
    /// Days after 01/02/2024 of each deadline.
    dates: Vec<u32>,
    lead: usize,
    coop: Option<usize>,
    policy: usize,
}

#[derive(Debug, Clone)]
struct Case {
    tasks: Vec<TaskSpec>,
    policies: Vec<String>,
    hour: u32,
    catch_up: &'static str,
    /// (days after 10/01/2024, length in days).
    down: Vec<(u32, u32)>,
}

fn policy() -> impl Strategy<Value = String> {
    (
        proptest::sample::subsequence(vec!["14d", "7d", "5wd", "3wd", "1wd", "2d"], 0..=4),
        any::<bool>(),
        prop::sample::select(vec!["never", "2wd", "3wd", "5d"]),
        1u32..=8,
        prop::sample::select(vec!["never", "6wd", "10wd"]),
        prop::sample::select(vec!["", "head_after: 3wd", "head_after: 5wd"]),
        prop::sample::select(vec!["", "leadership_after: 4wd", "leadership_after: 10wd"]),
        prop::sample::select(vec!["[first, last]", "all", "[overdue, on_day]", "none"]),
    )
        .prop_map(
            |(before, on_day, every, limit, weekly, head, leadership, coop)| {
                let escalate = [head, leadership]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "    before: [{}]\n    on_day: {on_day}\n    overdue_every: {every}\n    overdue_limit: {limit}\n    overdue_weekly_after: {weekly}\n    escalate: {{{escalate}}}\n    cooperating: {coop}\n",
                    before.join(", ")
                )
            },
        )
}

fn task(policies: usize) -> impl Strategy<Value = TaskSpec> {
    (
        proptest::collection::vec(0u32..90, 1..=3),
        0..OFFICES.len(),
        proptest::option::of(0..OFFICES.len()),
        0..policies,
    )
        .prop_map(|(mut dates, lead, coop, policy)| {
            dates.sort_unstable();
            dates.dedup();
            TaskSpec {
                dates,
                lead,
                coop: coop.filter(|c| *c != lead),
                policy,
            }
        })
}

fn case() -> impl Strategy<Value = Case> {
    proptest::collection::vec(policy(), 1..=3).prop_flat_map(|policies| {
        let n = policies.len();
        (
            proptest::collection::vec(task(n), 1..=4),
            Just(policies),
            8u32..=16,
            prop::sample::select(vec!["3d", "7d", "5wd"]),
            proptest::collection::vec((0u32..100, 1u32..=10), 0..=2),
        )
            .prop_map(|(tasks, policies, hour, catch_up, down)| Case {
                tasks,
                policies,
                hour,
                catch_up,
                down,
            })
    })
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn yaml(c: &Case) -> String {
    let mut y = String::from("plan:\n  year: 2024\noffices:\n");
    for o in OFFICES {
        y.push_str(&format!(
            "  {o}:\n    name: Phòng {o}\n    email: {o}@vpubnd.example\n    head: truong.{o}@vpubnd.example\n"
        ));
    }
    y.push_str("  ld:\n    name: Lãnh đạo\n    email: ld@vpubnd.example\nleadership: ld\n");
    y.push_str("reminders:\n");
    for (i, p) in c.policies.iter().enumerate() {
        y.push_str(&format!("  p{i}:\n{p}"));
    }
    y.push_str(&format!(
        "schedule:\n  sweeps: [\"0 {} * * *\"]\n  catch_up: {}\ntasks:\n",
        c.hour, c.catch_up
    ));
    for (i, t) in c.tasks.iter().enumerate() {
        let dates: Vec<String> = t
            .dates
            .iter()
            .map(|n| (d("2024-02-01") + Days::new(*n as u64)).to_string())
            .collect();
        y.push_str(&format!(
            "  - id: T{i}\n    title: t{i}\n    deadline: {{phrase: Theo kế hoạch, dates: [{}]}}\n    lead: {}\n    reminders: p{}\n",
            dates.join(", "),
            OFFICES[t.lead],
            t.policy
        ));
        if let Some(c) = t.coop {
            y.push_str(&format!("    cooperating: {}\n", OFFICES[c]));
        }
    }
    y
}

fn group(n: &Nudge) -> (String, NaiveDate, String, bool) {
    (
        n.task.to_string(),
        n.occurrence,
        n.office.to_string(),
        n.kind.is_leadership(),
    )
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nhacviec.yaml");
    std::fs::write(&path, yaml(c)).unwrap();
    let cfg = config::load(&path, &Env::default())
        .unwrap_or_else(|r| panic!("{}\n{}", r.render(), yaml(c)))
        .config;
    let tz = cfg.schedule.timezone;
    let at = |day: NaiveDate| -> DateTime<Utc> {
        tz.from_local_datetime(&day.and_hms_opt(c.hour, 0, 0).unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    let catch_up = cfg.schedule.catch_up;
    let ctx = Context::new(cfg, &SecretEnv::default(), at(d(FIRST))).unwrap();
    let cal = ctx.calendar.clone();
    let down_days: HashSet<NaiveDate> = c
        .down
        .iter()
        .flat_map(|(from, len)| {
            let start = d("2024-01-10") + Days::new(*from as u64);
            (0..*len).map(move |k| start + Days::new(k as u64))
        })
        .collect();

    // What `plan` lists, once, with an empty ledger, up to the last sweep.
    let last_sweep = at(d(LAST));
    let plan = planner::plan(
        &ctx.config,
        &cal,
        at(d(FIRST)) - chrono::Duration::hours(c.hour as i64),
        last_sweep,
        &HashSet::new(),
    )
    .upcoming;

    // Every scheduled sweep, except while down.
    let mut ledger = Store::Sqlite(Ledger::open(&ctx.config.ledger.path).unwrap());
    let stop = Shutdown::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut sweeps: Vec<DateTime<Utc>> = Vec::new();
    let mut day = d(FIRST);
    while day <= d(LAST) {
        if cal.is_working_day(day) && !down_days.contains(&day) {
            let clock = Clock::starting_at(at(day));
            let r = rt
                .block_on(sweep::sweep(&ctx, &mut ledger, &clock, &stop))
                .unwrap();
            prop_assert!(r.all_delivered(), "{r:?}");
            sweeps.push(at(day));
        }
        day = day.succ_opt().unwrap();
    }
    let rows = ledger
        .sqlite()
        .unwrap()
        .query(&LogFilter::default())
        .unwrap();

    // Never one key twice, nothing outside the plan, one email per Message-ID in the outbox.
    let mut seen = HashSet::new();
    for r in &rows {
        prop_assert!(seen.insert(r.key.clone()), "{} twice", r.key);
    }
    let planned: HashMap<NudgeKey, &Nudge> = plan.iter().map(|n| (n.key(), n)).collect();
    for r in &rows {
        prop_assert!(planned.contains_key(&r.key), "{} is not in the plan", r.key);
    }
    let emails: HashSet<&str> = rows
        .iter()
        .filter(|r| r.status == Status::Sent)
        .map(|r| r.message_id.as_str())
        .collect();
    let outbox = std::fs::read_dir(dir.path().join("outbox")).map_or(0, |d| d.count());
    prop_assert_eq!(outbox, emails.len());

    let state: HashMap<&NudgeKey, (Status, bool)> =
        rows.iter().map(|r| (&r.key, (r.status, r.late))).collect();
    let mut groups: BTreeMap<_, Vec<&Nudge>> = BTreeMap::new();
    for n in &plan {
        groups.entry(group(n)).or_default().push(n);
    }
    for n in &plan {
        let key = n.key();
        let got = state.get(&key).copied();
        if !down_days.contains(&n.date) {
            // A sweep ran at its time: sent, on time.
            prop_assert_eq!(got, Some((Status::Sent, false)), "{}", key);
            continue;
        }
        // Missed: the first sweep after it decides.
        let send_at = n.send_at.with_timezone(&Utc);
        let Some(back) = sweeps.iter().copied().find(|s| *s >= send_at) else {
            prop_assert!(got.is_none(), "{} after the last sweep", key);
            continue;
        };
        let today = back.with_timezone(&tz).date_naive();
        let catch_from = match catch_up.unit {
            Unit::Days => today - Days::new(catch_up.n as u64),
            Unit::WorkingDays => cal.sub_working_days(today, catch_up.n),
        };
        let superseded = groups[&group(n)].iter().any(|m| {
            let t = m.send_at.with_timezone(&Utc);
            t > send_at && t <= back
        });
        if superseded || n.date < catch_from {
            prop_assert_eq!(got, Some((Status::Skipped, false)), "{}", key);
        } else {
            prop_assert_eq!(got, Some((Status::Sent, true)), "{} caught up late", key);
        }
    }
    prop_assert!(rows.len() <= plan.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(16),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn run_sends_what_plan_lists_except_what_downtime_skips(c in case()) {
        check(&c)?;
    }
}
