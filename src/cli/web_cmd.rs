//! `nhacviec web feeds`: each office's calendar subscription address, for the clerk to hand
//! out. The daemon's web server serves them (`/ics/office/ID.ics?token=…`).

use super::exit::Exit;
use super::{ConfigArg, load_or_print, render};
use crate::plan::config::Loaded;
use crate::web::links::{LinkKey, feed_url};
use anyhow::{Result, bail};
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum WebCommand {
    /// Print each office's calendar feed address, `office-id<TAB>URL`: a calendar
    /// (Outlook, Google, Thunderbird) subscribes to it. Rotating the link key revokes all.
    Feeds {
        #[command(flatten)]
        config: ConfigArg,
    },
}

pub(super) fn run(cmd: WebCommand) -> Result<ExitCode> {
    match cmd {
        WebCommand::Feeds { config } => feeds(&config),
    }
}

fn feeds(config: &ConfigArg) -> Result<ExitCode> {
    let Some(Loaded { config, .. }) = load_or_print(config)? else {
        return Ok(Exit::Failure.into());
    };
    let Some(base) = &config.web.base_url else {
        bail!(crate::tr!(
            "{} không có `web.base_url`: chưa có địa chỉ để các đơn vị đăng ký lịch",
            "{} has no `web.base_url`: there is no address for the offices to subscribe to",
            config.path.display()
        ));
    };
    // The daemon's key, never a new one: addresses signed with a key the daemon does not
    // hold would be refused.
    let creds = std::env::var_os("CREDENTIALS_DIRECTORY").map(std::path::PathBuf::from);
    let Some(key) = LinkKey::existing(&config.web, creds.as_deref())? else {
        bail!(crate::tr!(
            "chưa có khóa ký đường dẫn ({}): hãy chạy dịch vụ với `web.listen` trước (nó tạo khóa), hoặc đặt `web.link_key_file`",
            "there is no link key yet ({}): start the service with `web.listen` first (it creates one), or set `web.link_key_file`",
            config.web.generated_key.display()
        ));
    };
    render::to_stdout(
        crate::t!("các địa chỉ lịch", "the feed addresses"),
        |w| {
            for o in &config.offices {
                writeln!(w, "{}\t{}", o.id, feed_url(&key, base, &o.id))?;
            }
            Ok(())
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
