//! `nhacviec run --dry-run`: what one sweep would send, printed; nothing is sent or
//! recorded. The plan is made against a scratch copy of the ledger, so the real one is left
//! untouched (not even created).

use crate::delivery::ledger::pg::node_id;
use crate::delivery::ledger::store::Snapshot;
use crate::delivery::ledger::{Ledger, Store};
use crate::delivery::preview::{self, Preview};
use crate::delivery::sweep::Context;
use crate::delivery::transport::SecretEnv;
use crate::service::clock::Clock;
use crate::service::daemon;
use anyhow::Result;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Exit status 0 when nothing is left in flight in the ledger, 1 otherwise (as `run
/// --once` would report it).
pub fn run(config_path: &Path, at: Option<daemon::At>) -> Result<ExitCode> {
    let config = daemon::load_or_explain(config_path)?;
    let now = match at {
        Some(at) => (at.0)(config.schedule.timezone)?,
        None => Clock::real().now(),
    };
    let ctx =
        crate::web::with_preview_links(Context::new(config, &SecretEnv::from_process(), now)?)?;
    // The scratch copy is migrated in memory: its "ledger schema migrated" line would read
    // as if the real ledger had been touched. A dry run logs nothing of its own.
    // A PostgreSQL ledger is only read (every node's history is there), never a SQLite file.
    let snapshot = if ctx.config.ledger.postgres.is_some() {
        super::runtime()?.block_on(async {
            let mut store = Store::open(
                &ctx.config,
                SecretEnv::from_process().credentials_directory.as_deref(),
                node_id(),
            )
            .await?;
            store.snapshot().await
        })?
    } else {
        let _quiet = tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
        Snapshot::of_sqlite(&Ledger::scratch_copy(&ctx.config.ledger.path)?)?
    };
    let preview = preview::preview_of(&ctx, &snapshot, now)?;
    // The log says what the dry run would do, never that anything went out.
    tracing::info!(
        would_send = preview.reminders(),
        would_send_emails = preview.emails.len(),
        "chạy thử {}: sẽ gửi {} thư ({} lời nhắc); không gửi, không ghi gì",
        now.with_timezone(&ctx.config.schedule.timezone)
            .format("%d/%m/%Y %H:%M"),
        preview.emails.len(),
        preview.reminders()
    );
    print(&mut std::io::stdout().lock(), &preview)?;
    Ok(if preview.unfinished == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn print(out: &mut impl Write, p: &Preview) -> std::io::Result<()> {
    for e in &p.emails {
        let b = &e.batch;
        writeln!(
            out,
            "{} {}{}: {} [{}]",
            if e.again {
                crate::t!("sẽ gửi lại tới", "would send again to")
            } else {
                crate::t!("sẽ gửi một email tới", "would send an email to")
            },
            b.to.join(", "),
            if b.cc.is_empty() {
                String::new()
            } else {
                format!(" (cc {})", b.cc.join(", "))
            },
            e.subject,
            b.nudges
                .iter()
                .map(|n| format!("{} {}", n.task, n.kind.code()))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    for n in &p.skip {
        writeln!(
            out,
            "{} {} {} {}",
            crate::t!("sẽ ghi là bỏ qua:", "would record as skipped:"),
            n.task,
            n.office,
            n.kind.code()
        )?;
    }
    if !p.held_elsewhere.is_empty() {
        writeln!(
            out,
            "{}: {}",
            crate::t!("không phải của lần quét này", "not this sweep's to send"),
            crate::delivery::ledger::store::Held::describe(&p.held_elsewhere)
        )?;
    }
    let (reminders, emails) = (p.reminders(), p.emails.len());
    writeln!(
        out,
        "{}",
        crate::tr!(
            "chạy thử: sẽ gửi {reminders} lời nhắc trong {emails} email; chưa gửi, chưa ghi gì",
            "dry run: would send {reminders} reminder(s) in {emails} email(s); nothing was sent or recorded"
        )
    )
}
