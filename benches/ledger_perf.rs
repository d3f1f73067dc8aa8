//! Measures `log` queries over a large ledger. Not a test: run it by hand, in release mode:
//!
//! ```text
//! cargo bench --bench ledger_perf -- [ROWS] [--keep FILE]    # default 1000000
//! ```
//!
//! With `--keep FILE` the filled ledger is written there and kept, so that `scripts/bench`
//! can time the real `nhacviec log` command over it.
//!
//! It fills a ledger in a temporary folder through the public API (reserve + mark_sent, in
//! digests of 1,000 nudges), then times the queries `log` makes and `states` for a day's plan.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use nhacviec::delivery::ledger::{DeliveryKey, Ledger, LogFilter, NewDelivery, Status};
use std::time::Instant;

const OFFICES: usize = 60;
const TASKS: usize = 400;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let keep = args
        .iter()
        .position(|a| a == "--keep")
        .map(|i| args.get(i + 1).cloned().ok_or("--keep needs a FILE"))
        .transpose()?;
    let rows: usize = args
        .iter()
        .find(|a| !a.starts_with("--") && Some(*a) != keep.as_ref())
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let path = match &keep {
        Some(p) => {
            let p = std::path::PathBuf::from(p);
            if p.exists() {
                return Err(format!("{} exists; --keep writes a new ledger", p.display()).into());
            }
            p
        }
        None => dir.path().join("ledger.db"),
    };
    let mut ledger = Ledger::open(&path)?;
    let start: DateTime<Utc> = Utc.with_ymd_and_hms(2020, 1, 1, 1, 0, 0).unwrap();
    let kinds = ["before-14d", "before-3wd", "on-day", "overdue-5wd"];

    let fill = Instant::now();
    let batch = 1000;
    let mut made = 0;
    while made < rows {
        let n = batch.min(rows - made);
        let items: Vec<NewDelivery> = (made..made + n)
            .map(|i| {
                // Spread over about five years, one row every ~2.6 minutes.
                let due = start + Duration::seconds((i as i64) * 157);
                NewDelivery {
                    key: DeliveryKey {
                        task: format!("T{}", i % TASKS),
                        occurrence: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap()
                            + Duration::days((i / (TASKS * OFFICES * kinds.len())) as i64),
                        office: format!("office-{:02}", (i / TASKS) % OFFICES),
                        kind: kinds[(i / (TASKS * OFFICES)) % kinds.len()].to_string(),
                    },
                    role: "lead".into(),
                    due_at: due,
                    late: false,
                }
            })
            .collect();
        let mid = format!("<perf.{made}@nhacviec>");
        let now = items[0].due_at;
        ledger.reserve(&items, &["vanthu@example.gov.vn".into()], &mid, now)?;
        ledger.mark_sent(&mid, "250 2.0.0 Ok", now)?;
        made += n;
    }
    let size = std::fs::metadata(&path)?.len();
    println!(
        "filled {rows} rows in {:.1?} ({:.1} MiB)",
        fill.elapsed(),
        size as f64 / 1_048_576.0
    );
    drop(ledger);
    let ledger = Ledger::open_read_only(&path)?;

    let mid_time = start + Duration::seconds((rows as i64 / 2) * 157);
    let cases: Vec<(&str, LogFilter)> = vec![
        (
            "office, newest 100",
            LogFilter {
                office: Some("office-17".into()),
                limit: Some(100),
                ..Default::default()
            },
        ),
        (
            "office, one month, all",
            LogFilter {
                office: Some("office-17".into()),
                since: Some(mid_time),
                until: Some(mid_time + Duration::days(30)),
                ..Default::default()
            },
        ),
        (
            "date range one week, all offices",
            LogFilter {
                since: Some(mid_time),
                until: Some(mid_time + Duration::days(7)),
                ..Default::default()
            },
        ),
        (
            "task, newest 100",
            LogFilter {
                task: Some("T123".into()),
                limit: Some(100),
                ..Default::default()
            },
        ),
        (
            "status failed (none)",
            LogFilter {
                status: Some(Status::Failed),
                ..Default::default()
            },
        ),
        (
            "no filter, newest 50",
            LogFilter {
                limit: Some(50),
                ..Default::default()
            },
        ),
    ];
    for (name, filter) in &cases {
        // Best of three: the first run also warms the page cache.
        let mut best = None;
        let mut found = 0;
        for _ in 0..3 {
            let t = Instant::now();
            found = ledger.query(filter)?.len();
            let d = t.elapsed();
            best = Some(best.map_or(d, |b: std::time::Duration| b.min(d)));
        }
        println!("{name:<34} {found:>6} rows  {:>9.2?}", best.unwrap());
    }

    let keys: Vec<DeliveryKey> = (0..5000)
        .map(|i| DeliveryKey {
            task: format!("T{}", i % TASKS),
            occurrence: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
            office: format!("office-{:02}", i % OFFICES),
            kind: "dung-han".into(),
        })
        .collect();
    let t = Instant::now();
    let known = ledger.states(&keys)?.len();
    println!(
        "states for {} keys: {known} known, {:.2?}",
        keys.len(),
        t.elapsed()
    );
    let t = Instant::now();
    let unfinished = ledger.unfinished()?.len();
    println!("unfinished: {unfinished} rows, {:.2?}", t.elapsed());
    Ok(())
}
