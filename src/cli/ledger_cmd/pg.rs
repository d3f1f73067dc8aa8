//! `ledger migrate --to URL` and `ledger status`: the commands of a PostgreSQL ledger
//! (`status` also reads a SQLite one).

use crate::delivery::ledger::Ledger;
use crate::delivery::ledger::pg::{PgLedger, node_id};
use crate::plan::config::{Config, PgLedger as PgConfig, SslMode};
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `--sslmode`, as the YAML's `sslmode:`.
pub fn parse_sslmode(s: &str) -> Result<SslMode, String> {
    match s {
        "disable" => Ok(SslMode::Disable),
        "prefer" => Ok(SslMode::Prefer),
        "require" => Ok(SslMode::Require),
        "verify-full" => Ok(SslMode::VerifyFull),
        _ => Err(crate::t!(
            "chọn disable, prefer, require hoặc verify-full",
            "choose disable, prefer, require or verify-full"
        )
        .into()),
    }
}

fn credentials() -> Option<PathBuf> {
    std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(PathBuf::from)
        .filter(|p| !p.as_os_str().is_empty())
}

/// Copies the config's SQLite ledger into the PostgreSQL database at `to`.
pub fn migrate(
    config: &Config,
    to: &str,
    password_file: Option<PathBuf>,
    sslmode: SslMode,
) -> Result<ExitCode> {
    if !(to.starts_with("postgresql://") || to.starts_with("postgres://")) {
        return Err(super::super::exit::usage(crate::t!(
            "--to phải là một URL postgresql://người-dùng@máy-chủ/cơ-sở-dữ-liệu",
            "--to must be a postgresql://user@host/database URL"
        )));
    }
    if to
        .parse::<tokio_postgres::Config>()
        .is_ok_and(|c| c.get_password().is_some())
    {
        return Err(super::super::exit::usage(crate::t!(
            "đừng đưa mật khẩu vào URL (nó hiện trong danh sách tiến trình): dùng --password-file hoặc thông tin xác thực systemd `ledger-password`",
            "do not put the password in the URL (process listings show it): use --password-file or the systemd credential `ledger-password`"
        )));
    }
    let path = &config.ledger.path;
    let from = Ledger::open_read_only(path)?;
    let target = PgConfig {
        url: to.to_string(),
        password_file,
        sslmode,
        ca_file: None,
        lease: Duration::from_secs(300),
    };
    let copied = super::super::runtime()?.block_on(async {
        let pg = PgLedger::connect(&target, credentials().as_deref(), node_id()).await?;
        pg.copy_from(&from).await
    })?;
    let (d, s, c) = (copied.deliveries, copied.sweeps, copied.completions);
    println!(
        "{}",
        crate::tr!(
            "đã chép sổ gửi {} vào {to}: {d} lượt gửi, {s} lượt quét, {c} lượt hoàn thành. Giờ hãy đặt `ledger: {{ url: {to} }}` trong cấu hình của mọi nút rồi khởi động lại chúng",
            "copied the ledger {} to {to}: {d} deliveries, {s} sweeps, {c} completions. Now set `ledger: {{ url: {to} }}` in every node's config and restart them",
            path.display()
        )
    );
    Ok(ExitCode::SUCCESS)
}

fn when(t: DateTime<Utc>, config: &Config) -> String {
    t.with_timezone(&config.schedule.timezone)
        .format("%d/%m/%Y %H:%M:%S")
        .to_string()
}

/// The nodes seen, their last sweeps and config hashes, the leases pending; for SQLite, its
/// one host's last sweep and what is in flight.
pub fn status(config: &Config) -> Result<ExitCode> {
    let Some(pg) = &config.ledger.postgres else {
        return sqlite_status(config);
    };
    let st = super::super::runtime()?.block_on(async {
        let l = PgLedger::connect(pg, credentials().as_deref(), node_id()).await?;
        l.status().await
    })?;
    println!(
        "{}",
        crate::tr!("sổ gửi PostgreSQL {}", "PostgreSQL ledger {}", pg.url)
    );
    if st.nodes.is_empty() {
        println!(
            "{}",
            crate::t!("chưa nút nào quét", "no node has swept yet")
        );
    }
    let hashes: std::collections::BTreeSet<&str> =
        st.nodes.iter().map(|n| n.config_hash.as_str()).collect();
    for n in &st.nodes {
        let state = if n.finished {
            crate::t!("xong", "finished")
        } else {
            crate::t!("đang chạy hoặc bị ngắt", "running or cut short")
        };
        println!(
            "{}",
            crate::tr!(
                "nút {}: lần quét cuối lúc {} (tính đến {}, {state}, gửi {} lời nhắc), cấu hình {}, đang giữ {} lời nhắc",
                "node {}: last sweep at {} (as of {}, {state}, {} reminder(s) sent), config {}, holding {} reminder(s)",
                n.node,
                when(n.recorded_at, config),
                when(n.as_of, config),
                n.sent,
                n.config_hash,
                n.leased
            )
        );
    }
    if hashes.len() > 1 {
        println!(
            "{}",
            crate::t!(
                "CẢNH BÁO: các nút dùng cấu hình KHÁC nhau; mọi nút phải dùng cùng một tệp YAML",
                "WARNING: the nodes run DIFFERENT configs; every node must run the same YAML"
            )
        );
    }
    println!(
        "{}",
        crate::tr!(
            "lời nhắc đang chờ có hạn giữ chỗ đã hết (nút khác sẽ gửi lại): {}",
            "pending reminders whose lease has expired (another node re-sends them): {}",
            st.expired
        )
    );
    print_counts(st.by_status.iter().map(|(s, n)| (s.as_str(), *n)));
    Ok(ExitCode::SUCCESS)
}

fn sqlite_status(config: &Config) -> Result<ExitCode> {
    let path = &config.ledger.path;
    let ledger = Ledger::open_read_only(path)?;
    println!(
        "{}",
        crate::tr!("sổ gửi SQLite {}", "SQLite ledger {}", path.display())
    );
    match ledger.last_complete_sweep()? {
        Some(t) => println!(
            "{}",
            crate::tr!(
                "lần quét trọn vẹn cuối: {}",
                "last complete sweep: {}",
                when(t, config)
            )
        ),
        None => println!(
            "{}",
            crate::t!("chưa có lần quét trọn vẹn nào", "no complete sweep yet")
        ),
    }
    let mut counts: std::collections::BTreeMap<String, i64> = Default::default();
    for (status, _office, n) in ledger.count_by_status_office()? {
        *counts.entry(status).or_default() += i64::try_from(n).unwrap_or(i64::MAX);
    }
    print_counts(counts.iter().map(|(s, n)| (s.as_str(), *n)));
    Ok(ExitCode::SUCCESS)
}

fn print_counts<'a>(counts: impl Iterator<Item = (&'a str, i64)>) {
    // Statuses in the reader's language, as `log` shows them.
    let line: Vec<String> = counts
        .map(|(s, n)| match s.parse() {
            Ok(st) => format!("{} {n}", crate::cli::render::log::status_word(st)),
            Err(_) => format!("{s} {n}"),
        })
        .collect();
    if line.is_empty() {
        println!("{}", crate::t!("chưa có lượt gửi nào", "no deliveries yet"));
    } else {
        println!(
            "{}",
            crate::tr!("lượt gửi: {}", "deliveries: {}", line.join(", "))
        );
    }
}

/// `log` of a PostgreSQL ledger: its rows, or its completions' trail.
pub fn log_rows(
    pg: &PgConfig,
    filter: &crate::delivery::ledger::LogFilter,
    completions: bool,
) -> Result<(
    Vec<crate::delivery::ledger::DeliveryRow>,
    Vec<crate::delivery::ledger::Completion>,
)> {
    let r = super::super::runtime()?.block_on(async {
        let l = PgLedger::connect(pg, credentials().as_deref(), node_id()).await?;
        if completions {
            Ok::<_, crate::delivery::ledger::pg::PgError>((
                Vec::new(),
                l.completion_history().await?,
            ))
        } else {
            Ok((l.query(filter).await?, Vec::new()))
        }
    })?;
    Ok(r)
}
