//! `nhacviec import FILE`: the plan's appendix (.docx, or text copied from a PDF) as YAML
//! on stdout, for the clerk to review and `check`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The plan: a .docx, or its text copied from a PDF (tab-separated table cells).
    pub file: PathBuf,
    /// An existing nhacviec config: its offices and groups are matched by name, and its
    /// settings (offices, groups, leadership, reminders, schedule, mail, ledger) carried over.
    #[arg(long)]
    pub offices: Option<PathBuf>,
    /// The plan's year, when the document does not say it.
    #[arg(long)]
    pub year: Option<i32>,
}

pub fn run(args: &ImportArgs) -> Result<ExitCode> {
    let yaml = crate::import::import_file(&args.file, args.offices.as_deref(), args.year)?;
    print!("{yaml}");
    Ok(ExitCode::SUCCESS)
}
