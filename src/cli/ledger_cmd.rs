//! `nhacviec ledger reset --confirm`: after the ledger was deleted, emptied or replaced,
//! the daemon refuses to start (it would re-send every reminder in the catch-up window);
//! this records that the ledger now in place is the one to use.

use super::ConfigArg;
use crate::delivery::ledger::{Ledger, guard};
use crate::plan::config::{self, Env};
use anyhow::{Context as _, Result};
use clap::Subcommand;
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
}

pub(super) fn run(cmd: LedgerCommand) -> Result<ExitCode> {
    match cmd {
        LedgerCommand::Reset { config, confirm } => {
            if !confirm {
                return Err(super::exit::usage(
                    "`ledger reset` accepts the ledger now in place; reminders still in the \
                     catch-up window may go out again. Run it with --confirm to go ahead",
                ));
            }
            let loaded = config::load(&config.path, &Env::from_process()).map_err(|r| {
                anyhow::anyhow!(
                    "the config has errors; run `nhacviec check -c {}`:\n{}",
                    config.path.display(),
                    r.render_short().join("\n")
                )
            })?;
            let path = &loaded.config.ledger.path;
            let ledger = Ledger::open(path)
                .with_context(|| format!("cannot open the ledger {}", path.display()))?;
            let state = guard::confirm(&ledger)?;
            println!(
                "the ledger {} is the one in use from now on (recorded in {})",
                path.display(),
                state.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
