//! What a sweep tells people besides the offices: one journal line per delivery row and
//! one for skipped nudges, and the admin's reports (a failed reminder, refused recipients,
//! a refused login). Best effort: a report that cannot be sent is logged, never retried,
//! never recorded as a delivery.

use super::{Context, Outgoing, recipients};
use crate::delivery::email;
use crate::delivery::ledger::Status;
use crate::delivery::transport::{Delivery, SendError};
use crate::plan::planner::{Late, Nudge};
use crate::service::clock::Clock;

/// Tells the admin which recipients of an email the server refused, and which offices
/// therefore got nothing. Best effort, like [`report_failure`].
pub(super) async fn report_refusals(
    ctx: &Context,
    clock: &Clock,
    out: &Outgoing,
    delivery: &Delivery,
    failed_offices: &[String],
) {
    let refused: Vec<String> = delivery.refused.iter().map(|r| format!("- {r}")).collect();
    for r in &delivery.refused {
        tracing::error!(
            recipient = %r.address, code = r.code, reply = %r.text,
            email_message_id = %out.message_id, "the mail server refused a recipient"
        );
    }
    let lost = if failed_offices.is_empty() {
        "Các đơn vị khác trên thư vẫn nhận được thư.".to_string()
    } else {
        format!("Đơn vị không nhận được thư: {}.", failed_offices.join(", "))
    };
    let body = format!(
        "Máy chủ thư từ chối một số người nhận của thư nhắc việc (Message-ID {}):\n{}\n\n{}\nTrả lời của máy chủ: {}\n\nXem chi tiết: nhacviec log\n",
        out.message_id,
        refused.join("\n"),
        lost,
        delivery.reply
    );
    send_admin(
        ctx,
        clock,
        "[nhacviec] Máy chủ thư từ chối người nhận",
        &body,
    )
    .await;
}

/// The SMTP login was refused: every reminder waits (retrying) until the password is fixed.
/// Logged as an error and, best effort, emailed to the admin (the same login may well fail
/// for that email too: the log line is the alert that always reaches someone).
pub(super) async fn alert_login_refused(ctx: &Context, clock: &Clock, e: &SendError) {
    tracing::error!(
        error = %e,
        "the mail server refused nhacviec's login: check mail.transport.smtp's username and password; reminders are kept and retried"
    );
    let body = format!(
        "Máy chủ thư từ chối đăng nhập của nhacviec:\n{e}\n\nCác thư nhắc việc được giữ lại và gửi lại sau. Hãy kiểm tra tên đăng nhập và mật khẩu (mail.transport.smtp).\n"
    );
    send_admin(
        ctx,
        clock,
        "[nhacviec] Máy chủ thư từ chối đăng nhập",
        &body,
    )
    .await;
}

/// Sends `body` to `mail.admin`, if configured. Failures are logged, never retried.
async fn send_admin(ctx: &Context, clock: &Clock, subject: &str, body: &str) {
    let cfg = &*ctx.config;
    let Some(admin) = &cfg.mail.admin else { return };
    let now = clock.now().with_timezone(&cfg.schedule.timezone);
    match email::admin_message(cfg, admin, subject, body, now) {
        Ok(msg) => {
            if let Err(e) = ctx.sender.send(&email::Email::from(msg)).await {
                tracing::error!(error = %e, admin = %admin, "could not send a report to the admin address");
            }
        }
        Err(e) => tracing::error!(error = %e, "could not compose the admin report"),
    }
}

/// A few nudges named, for one log line: `VII.5 → hctc, II.3 → kstthc và 4 lời nhắc khác`.
pub(super) fn summary_of(nudges: &[Nudge]) -> String {
    const SHOWN: usize = 3;
    let mut s: Vec<String> = nudges
        .iter()
        .take(SHOWN)
        .map(|n| format!("{} → {}", n.task, n.office))
        .collect();
    if nudges.len() > SHOWN {
        s.push(format!("và {} lời nhắc khác", nudges.len() - SHOWN));
    }
    s.join(", ")
}

/// What one nudge of an email was, in words: `VII.5 → hctc (trước 3 ngày làm việc)`.
fn nudge_words(n: &Nudge) -> String {
    format!(
        "{} → {} ({}{})",
        n.task,
        n.office,
        n.kind.label(),
        match n.late {
            Late::No => "",
            Late::FirstStart => ", lần nhắc đầu tiên",
            Late::Downtime => ", gửi chậm",
        }
    )
}

/// One structured event per delivery row: `journalctl TASK=II.3` finds it, and its
/// MESSAGE says the essentials in words (`đã gửi: VII.5 → hctc (trước 3 ngày làm việc), 1
/// thư tới 2 địa chỉ`), so that `systemctl status` is readable without `-o verbose`.
pub(super) fn log_batch(out: &Outgoing, status: Status, reply: &str) {
    let all = recipients(&out.batch);
    let to = all.join(", ");
    let with = match out.batch.nudges.len() {
        1 => String::new(),
        k => format!(", chung thư với {} lời nhắc khác", k - 1),
    };
    for n in &out.batch.nudges {
        let (task, office, kind) = (&n.task, &n.office, n.kind.code());
        let (message_id, status_str) = (&out.message_id, status.as_str());
        let what = nudge_words(n);
        match status {
            Status::Sent => tracing::info!(
                task = %task, office = %office, kind = %kind, role = n.role.code(),
                recipients = %to, email_message_id = %message_id, status = status_str, late = n.late.is_late(),
                reply = %reply, "đã gửi: {what}, 1 thư tới {} địa chỉ{with}", all.len()
            ),
            Status::Retrying => tracing::warn!(
                task = %task, office = %office, kind = %kind, role = n.role.code(),
                recipients = %to, email_message_id = %message_id, status = status_str,
                error = %reply, "chưa gửi được, sẽ thử lại: {what}: {reply}"
            ),
            _ => tracing::error!(
                task = %task, office = %office, kind = %kind, role = n.role.code(),
                recipients = %to, email_message_id = %message_id, status = status_str,
                error = %reply, "không gửi được: {what}: {reply}"
            ),
        }
    }
}

/// Tells the configured admin address that a reminder failed for good. Best effort: a
/// failure here is logged, never retried, never recorded as a delivery.
pub(super) async fn report_failure(ctx: &Context, clock: &Clock, out: &Outgoing, error: &str) {
    let tasks: Vec<String> = out
        .batch
        .nudges
        .iter()
        .map(|n| format!("- {} ({}), {}", n.task, n.office, n.kind.label()))
        .collect();
    let body = format!(
        "nhacviec không gửi được thư nhắc việc (Message-ID {}) tới {}.\n\nLỗi của máy chủ thư:\n{}\n\nCác nhắc việc trong thư:\n{}\n\nXem chi tiết: nhacviec log --status failed\n",
        out.message_id,
        recipients(&out.batch).join(", "),
        error,
        tasks.join("\n")
    );
    send_admin(ctx, clock, "[nhacviec] Thư nhắc việc không gửi được", &body).await;
}
