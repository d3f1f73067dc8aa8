//! `nhacviec ledger reset --confirm`: after the ledger was deleted, emptied or replaced,
//! the daemon refuses to start (it would re-send every reminder in the catch-up window);
//! this records that the ledger now in place is the one to use.
//!
//! `nhacviec ledger backup PATH`: a consistent copy of the ledger, safe while the daemon runs.
//!
//! `nhacviec ledger migrate --to URL`: the SQLite ledger's history copied into PostgreSQL;
//! `nhacviec ledger status`: the nodes seen, their last sweeps, the leases pending.

pub(super) mod pg;

use super::ConfigArg;
use crate::delivery::ledger::{Ledger, guard};
use crate::plan::config::{self, Env};
use anyhow::{Context as _, Result};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Accept the ledger now in place (new, emptied or restored from elsewhere) as the one
    /// to use: the next start sends what it finds due, including the catch-up window.
    Reset {
        #[command(flatten)]
        config: ConfigArg,
        /// Required: reminders still in the catch-up window may be sent again.
        #[arg(long)]
        confirm: bool,
    },
    /// Copy the ledger to PATH (which must not exist) through SQLite's online backup, safe
    /// while the daemon runs. Copying the .db file alone misses what its -wal file holds.
    Backup {
        /// Where to write the copy.
        #[arg(value_name = "PATH")]
        dest: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Copy the SQLite ledger's whole history into an empty PostgreSQL database, then point
    /// every node's `ledger: { url: … }` at it. Refuses a database that holds a ledger already.
    Migrate {
        /// The database: postgresql://user@host[:port]/database, without a password.
        #[arg(long, value_name = "URL")]
        to: String,
        /// The password's file (else the systemd credential `ledger-password`, if any).
        #[arg(long, value_name = "PATH")]
        password_file: Option<PathBuf>,
        /// TLS to the database: disable, prefer, require or verify-full.
        #[arg(long, default_value = "prefer", value_parser = pg::parse_sslmode)]
        sslmode: crate::plan::config::SslMode,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// The nodes seen (PostgreSQL), their last sweeps and config hashes, the leases pending,
    /// and the deliveries by status.
    Status {
        #[command(flatten)]
        config: ConfigArg,
    },
}

pub(super) fn run(cmd: LedgerCommand) -> Result<ExitCode> {
    match cmd {
        LedgerCommand::Migrate {
            to,
            password_file,
            sslmode,
            config,
        } => pg::migrate(&load(&config)?.config, &to, password_file, sslmode),
        LedgerCommand::Status { config } => pg::status(&load(&config)?.config),
        LedgerCommand::Backup { dest, config } => {
            let loaded = load(&config)?;
            crate::delivery::ledger::store::require_sqlite(&loaded.config, "ledger backup")?;
            let path = &loaded.config.ledger.path;
            // Read-only: a backup never creates, migrates or checkpoints the live ledger.
            let ledger = Ledger::open_read_only(path)?;
            let r = ledger.backup_to(&dest)?;
            let (from, to) = (path.display(), r.path.display());
            let (deliveries, sweeps, completions, bytes) =
                (r.deliveries, r.sweeps, r.completions, r.bytes);
            println!(
                "{}",
                crate::tr!(
                    "đã sao lưu sổ gửi {from} vào {to}: {deliveries} lượt gửi, {sweeps} lượt quét, \
                     {completions} lượt hoàn thành, {bytes} byte; kiểm tra toàn vẹn: ok",
                    "backed up the ledger {from} to {to}: {deliveries} deliveries, {sweeps} \
                     sweeps, {completions} completions, {bytes} bytes; integrity check: ok"
                )
            );
            Ok(ExitCode::SUCCESS)
        }
        LedgerCommand::Reset { config, confirm } => {
            if !confirm {
                return Err(super::exit::usage(crate::t!(
                    "`ledger reset` chấp nhận sổ gửi đang có; các lời nhắc còn trong khoảng \
                     gửi bù có thể được gửi lại. Chạy kèm --confirm để tiếp tục",
                    "`ledger reset` accepts the ledger now in place; reminders still in the \
                     catch-up window may go out again. Run it with --confirm to go ahead"
                )));
            }
            let loaded = load(&config)?;
            crate::delivery::ledger::store::require_sqlite(&loaded.config, "ledger reset")?;
            let path = &loaded.config.ledger.path;
            let ledger = Ledger::open(path).with_context(|| {
                let path = path.display();
                crate::tr!(
                    "không mở được sổ gửi {path}",
                    "cannot open the ledger {path}"
                )
            })?;
            let state = guard::confirm(&ledger)?;
            let (path, state) = (path.display(), state.display());
            println!(
                "{}",
                crate::tr!(
                    "từ nay sổ gửi {path} là sổ được dùng (đã ghi vào {state})",
                    "the ledger {path} is the one in use from now on (recorded in {state})"
                )
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load(config: &ConfigArg) -> Result<config::Loaded> {
    config::load(&config.path, &Env::from_process()).map_err(|r| {
        anyhow::anyhow!(crate::tr!(
            "cấu hình có lỗi; hãy chạy `nhacviec check -c {}`:\n{}",
            "the config has errors; run `nhacviec check -c {}`:\n{}",
            config.path.display(),
            r.render_short().join("\n")
        ))
    })
}
