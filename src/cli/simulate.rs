//! `nhacviec simulate`: a period's emails counted before they happen. Every scheduled sweep
//! of the period runs through the real sweep against an in-memory ledger and a transport
//! that delivers nothing: no email, no outbox file, no ledger file.

use super::exit::usage;
use super::render::{self, Format};
use super::{ConfigArg, load_or_print, runtime};
use crate::delivery::simulate::{self, Assume};
use crate::plan::config::Loaded;
use anyhow::Result;
use chrono::NaiveDate;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The first day of the period (inclusive).
    #[arg(long)]
    pub from: NaiveDate,
    /// The last day of the period (inclusive).
    #[arg(long)]
    pub until: NaiveDate,
    /// Which tasks are done: as the config's `done:` says, each on its deadline, or none.
    #[arg(long, value_enum, default_value = "as-written")]
    pub assume: Assume,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

pub(super) fn simulate(args: &SimulateArgs) -> Result<ExitCode> {
    if args.format == Format::Ics {
        return Err(usage(crate::tr!(
            "`--format ics` chỉ dùng cho `plan`: viết table, json hoặc csv",
            "`--format ics` is for `plan` only: write table, json or csv"
        )));
    }
    if args.from > args.until {
        return Err(usage(crate::tr!(
            "khoảng thời gian trống: --from {} sau --until {}",
            "the period is empty: --from {} is after --until {}",
            args.from,
            args.until
        )));
    }
    let Some(Loaded { config, .. }) = load_or_print(&args.config)? else {
        return Ok(ExitCode::from(1));
    };
    // As written: the ledger's completions (`nhacviec done`, the email links) count too.
    let mut config = config;
    if args.assume == Assume::AsWritten && super::access::ledger_readable(&config.ledger.path)? {
        let ledger = crate::delivery::ledger::Ledger::open_read_only(&config.ledger.path)?;
        crate::delivery::completions::apply(&mut config, &ledger.completions()?);
    }
    let rt = runtime()?;
    // The replayed sweeps log as the daemon's would: thousands of lines that say nothing
    // here. Only this command's own output is printed.
    let sim = {
        let _quiet = tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
        rt.block_on(simulate::simulate(
            &config,
            args.from,
            args.until,
            args.assume,
        ))?
    };
    rt.shutdown_background();
    render::to_stdout(crate::t!("bản mô phỏng", "the simulation"), |w| {
        render::simulate::write(w, &config, &sim, args.format)
    })?;
    Ok(ExitCode::SUCCESS)
}
