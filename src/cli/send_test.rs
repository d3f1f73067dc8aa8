//! `nhacviec send-test`: one sample reminder through the configured transport.

use super::{ConfigArg, load_or_print, now_or, runtime};
use crate::delivery::transport::SecretEnv;
use crate::delivery::{email, sweep};
use crate::plan::config::{Config, Loaded};
use anyhow::{Context, Result};
use std::process::ExitCode;

pub(super) fn send_test(config: &ConfigArg, to: &str) -> Result<ExitCode> {
    let Some(Loaded { config, .. }) = load_or_print(config)? else {
        return Ok(super::exit::Exit::Failure.into());
    };
    runtime()?.block_on(send(config, to))
}

async fn send(config: Config, to: &str) -> Result<ExitCode> {
    let tz = config.schedule.timezone;
    let now = now_or(None, tz)?;
    let ctx = sweep::Context::new(config, &SecretEnv::from_process(), now)?;
    let cfg = &*ctx.config;
    let batch =
        email::sample_batch(cfg, &ctx.calendar, now.with_timezone(&tz), to).context(crate::tr!(
            "cấu hình không có nhiệm vụ nào để dựng email nhắc mẫu",
            "the config has no task to build a sample reminder from"
        ))?;
    let id = email::new_message_id(&cfg.mail.message_id_domain);
    let msg = ctx
        .composer
        .compose(cfg, &ctx.calendar, &batch, &id, now.with_timezone(&tz))?;
    match ctx.sender.send(&msg).await {
        Ok(reply) => {
            println!(
                "{}",
                crate::tr!(
                    "đã gửi một email nhắc mẫu tới {to} (Message-ID {id})",
                    "sent a sample reminder to {to} (Message-ID {id})"
                )
            );
            println!(
                "{}",
                crate::tr!("máy chủ trả lời: {reply}", "server reply: {reply}")
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!(
                "nhacviec: {}",
                crate::tr!(
                    "email nhắc mẫu tới {to} chưa được gửi: {e}",
                    "the sample reminder to {to} was not sent: {e}"
                )
            );
            Ok(super::exit::Exit::Failure.into())
        }
    }
}
