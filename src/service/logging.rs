//! Where log events go: the journal under systemd (structured fields, so that
//! `journalctl -u nhacviec TASK=II.3` finds a task's deliveries), JSON lines with
//! `--log-format json`, readable text on stderr otherwise.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Text,
    Json,
}

/// `info`, except the sweep scheduler's own start-up chatter ("Uninited", "Job creator
/// created"), which would otherwise land in the journal on every start.
fn filter() -> EnvFilter {
    EnvFilter::try_from_env("NHACVIEC_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,tokio_cron_scheduler=warn"))
}

/// Installs the global subscriber. Under systemd (`JOURNAL_STREAM` set) events go to the
/// journal with their fields upper-cased (TASK, OFFICE, EMAIL_MESSAGE_ID, STATUS…; not MESSAGE_ID, which
/// journald reserves for catalog ids).
///
/// tracing-journald upper-cases field names but by default also prefixes them with `F_`
/// (`F_TASK`), which would make `journalctl TASK=II.3` find nothing: the prefix is turned off.
pub fn init(target: Target) {
    let under_systemd = std::env::var_os("JOURNAL_STREAM").is_some();
    if under_systemd
        && target == Target::Text
        && let Ok(journald) = tracing_journald::layer()
    {
        let _ = tracing_subscriber::registry()
            .with(filter())
            .with(
                journald
                    .with_field_prefix(None)
                    .with_syslog_identifier("nhacviec".into()),
            )
            .try_init();
        return;
    }
    use std::io::IsTerminal;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colour only on a terminal, and never when NO_COLOR is set (no-color.org).
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none());
    let _ = match target {
        Target::Json => tracing_subscriber::registry()
            .with(filter())
            .with(fmt.json().flatten_event(true))
            .try_init(),
        Target::Text => tracing_subscriber::registry()
            .with(filter())
            .with(fmt.with_target(false))
            .try_init(),
    };
}
