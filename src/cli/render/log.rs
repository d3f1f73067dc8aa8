//! `nhacviec log`: the ledger's rows as a table, CSV or JSON, in the office's time zone.

use super::table::display_width;
use super::{Format, Kind, Table, View, to_string};
use crate::delivery::ledger::{DeliveryRow, Status};
use crate::t;
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use std::io::{self, Write};

/// In the text table only, replies wider than this many columns are cut with `…`.
const REPLY_WIDTH: usize = 48;

fn columns() -> [(&'static str, &'static str); 14] {
    [
        ("due_at", t!("Dự kiến gửi", "Due at")),
        ("sent_at", t!("Đã gửi lúc", "Sent at")),
        ("task", t!("Nhiệm vụ", "Task")),
        ("occurrence", t!("Hạn", "Deadline")),
        ("office", t!("Mã đơn vị", "Office")),
        ("office_name", t!("Đơn vị", "Office name")),
        ("kind", t!("Loại nhắc", "Kind")),
        ("role", t!("Vai trò", "Role")),
        ("status", t!("Trạng thái", "Status")),
        ("recipients", t!("Người nhận", "Recipients")),
        ("message_id", "Message-ID"),
        ("attempts", t!("Số lần gửi", "Attempts")),
        ("reply", t!("Phản hồi / lỗi", "Reply / error")),
        ("late", t!("Gửi muộn", "Late")),
    ]
}

/// A delivery's status in words, for the text table (JSON and CSV keep the codes).
pub fn status_word(s: Status) -> &'static str {
    match s {
        Status::Pending => t!("đang gửi", "pending"),
        Status::Sent => t!("đã gửi", "sent"),
        Status::Retrying => t!("sẽ thử lại", "retrying"),
        Status::Failed => t!("thất bại", "failed"),
        Status::Skipped => t!("bỏ qua", "skipped"),
    }
}

/// A role code in words, for the text table.
fn role_word(code: &str) -> String {
    match code {
        "lead" => t!("chủ trì", "lead").to_string(),
        "cooperating" => t!("phối hợp", "cooperating").to_string(),
        "escalation" => t!("chủ trì (báo cáo cấp trên)", "lead (escalated)").to_string(),
        other => other.to_string(),
    }
}

/// The columns the text table shows without `--wide`.
const NARROW: &[&str] = &["due_at", "task", "office", "kind", "status", "reply"];

/// Writes ledger rows in the order given (`log` gives them oldest first).
///
/// Times are shown in `tz`: `22/01/2024 08:00` in the text table (`2024-01-22 08:00 +07:00`
/// with `--wide`), RFC 3339 with the offset (`2024-01-22T08:00:00+07:00`) in JSON and CSV.
/// `office_name` gives the Vietnamese name of an office id, if the configuration knows it.
/// The text table shortens long replies and puts multi-line ones on one line; JSON and CSV
/// carry them whole, `attempts` as a number and `late` as a boolean.
pub fn write_log(
    w: &mut dyn Write,
    rows: &[DeliveryRow],
    tz: Tz,
    office_name: &dyn Fn(&str) -> Option<String>,
    view: &View,
) -> io::Result<()> {
    let table_view = view.format == Format::Table;
    let time = |t: DateTime<Utc>| {
        let local = t.with_timezone(&tz);
        match (table_view, view.wide) {
            (true, false) => local.format("%d/%m/%Y %H:%M").to_string(),
            (true, true) => local.format("%Y-%m-%d %H:%M %:z").to_string(),
            (false, _) => local.to_rfc3339_opts(SecondsFormat::Secs, false),
        }
    };
    let mut table = Table::new(&columns())
        .typed(&["attempts"], Kind::Number)
        .typed(&["late"], Kind::Bool)
        .narrow(NARROW)
        .whole(&["due_at", "task", "office", "status"]);
    for row in rows {
        let reply = row.reply.as_deref().unwrap_or_default();
        let reply = if table_view && !view.wide {
            abbreviate(reply, REPLY_WIDTH)
        } else if table_view {
            one_line(reply)
        } else {
            reply.to_string()
        };
        let late = match (table_view, row.late) {
            (true, true) => t!("muộn", "late").to_string(),
            (true, false) => String::new(),
            (false, late) => late.to_string(),
        };
        table.push(vec![
            time(row.due_at),
            row.sent_at.map(time).unwrap_or_default(),
            row.key.task.clone(),
            row.key.occurrence.format("%Y-%m-%d").to_string(),
            row.key.office.clone(),
            office_name(&row.key.office).unwrap_or_default(),
            row.key.kind.clone(),
            if table_view {
                role_word(&row.role)
            } else {
                row.role.clone()
            },
            if table_view {
                status_word(row.status).to_string()
            } else {
                row.status.to_string()
            },
            row.recipients.join(", "),
            row.message_id.clone(),
            row.attempts.to_string(),
            reply,
            late,
        ]);
    }
    table.write(w, view)
}

/// [`write_log`] into a string.
pub fn render_log(
    rows: &[DeliveryRow],
    tz: Tz,
    office_name: &dyn Fn(&str) -> Option<String>,
    view: &View,
) -> String {
    to_string(|w| write_log(w, rows, tz, office_name, view))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One line, at most `width` columns wide on a terminal, ending in `…` when shortened.
/// Combining marks take no column and are never cut from their letter.
fn abbreviate(s: &str, width: usize) -> String {
    let one_line = one_line(s);
    if display_width(&one_line) <= width {
        return one_line;
    }
    let mut cut = String::new();
    let mut used = 0;
    for c in one_line.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > width.saturating_sub(1) {
            break;
        }
        used += w;
        cut.push(c);
    }
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::ledger::{DeliveryKey, Status};
    use chrono::{NaiveDate, TimeZone};

    fn row() -> DeliveryRow {
        let t = |h| Utc.with_ymd_and_hms(2024, 1, 22, h, 0, 0).unwrap();
        DeliveryRow {
            id: 7,
            key: DeliveryKey {
                task: "II.3".into(),
                occurrence: NaiveDate::from_ymd_opt(2024, 1, 31).unwrap(),
                office: "stp".into(),
                kind: "truoc-3wd".into(),
            },
            role: "lead".into(),
            due_at: t(1),
            late: true,
            recipients: vec!["vanthu@stp.gov.vn".into(), "pgd@stp.gov.vn".into()],
            message_id: "<nv.7@nhacviec>".into(),
            status: Status::Sent,
            reply: Some(format!(
                "250 2.0.0 Ok: queued as 4XyZ\n{} tail",
                "x".repeat(100)
            )),
            attempts: 2,
            created_at: t(1),
            updated_at: t(2),
            sent_at: Some(t(2)),
            next_attempt_at: None,
        }
    }

    fn names(id: &str) -> Option<String> {
        (id == "stp").then(|| "Sở Tư pháp".to_string())
    }

    const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    #[test]
    fn table_shows_local_times_names_and_short_replies() {
        crate::i18n::set_for_thread(Some(crate::i18n::Lang::Vi));
        let mut skipped = row();
        skipped.key.office = "sxd".into();
        skipped.status = Status::Skipped;
        skipped.sent_at = None;
        skipped.late = false;
        skipped.recipients.clear();
        skipped.reply = Some("superseded".into());
        let text = render_log(
            &[row(), skipped.clone()],
            HCM,
            &names,
            &View::unlimited(Format::Table),
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("Dự kiến gửi"));
        let first = lines[2];
        assert!(first.starts_with("2024-01-22 08:00 +07:00  2024-01-22 09:00 +07:00  II.3"));
        assert!(first.contains("Sở Tư pháp"));
        assert!(first.contains("vanthu@stp.gov.vn, pgd@stp.gov.vn"));
        assert!(first.contains("250 2.0.0 Ok: queued as 4XyZ xxxx"));
        assert!(first.contains(" tail"), "--wide carries the whole reply");
        assert!(first.trim_end().ends_with("muộn"));
        // The unknown office has no name; the row still lines up.
        assert!(lines[3].contains("sxd"));
        assert!(
            lines[3].contains("bỏ qua"),
            "the table shows words, not codes"
        );

        // Without --wide: the columns a person needs, the reply cut to fit.
        let narrow = render_log(
            &[row(), skipped],
            HCM,
            &names,
            &View::fitted(Format::Table, 100),
        );
        let first = narrow.lines().nth(2).unwrap();
        assert!(first.starts_with("22/01/2024 08:00  II.3"), "{narrow}");
        assert!(narrow.contains('…'), "{narrow}");
        assert!(!narrow.contains("tail"));
        assert!(!narrow.contains("Message-ID"));
        assert!(narrow.lines().all(|l| display_width(l) <= 100), "{narrow}");
    }

    #[test]
    fn json_and_csv_carry_rfc3339_times_and_whole_replies() {
        let json: serde_json::Value = serde_json::from_str(&render_log(
            &[row()],
            HCM,
            &names,
            &View::unlimited(Format::Json),
        ))
        .unwrap();
        let r = &json[0];
        assert_eq!(r["due_at"], "2024-01-22T08:00:00+07:00");
        assert_eq!(r["sent_at"], "2024-01-22T09:00:00+07:00");
        assert_eq!(r["office_name"], "Sở Tư pháp");
        assert_eq!(r["status"], "sent");
        assert_eq!(r["attempts"], 2);
        assert_eq!(r["late"], true);
        assert!(r["reply"].as_str().unwrap().ends_with(" tail"));

        let csv = render_log(&[row()], HCM, &names, &View::unlimited(Format::Csv));
        let mut lines = csv.split("\r\n");
        assert_eq!(
            lines.next().unwrap(),
            "due_at,sent_at,task,occurrence,office,office_name,kind,role,status,recipients,\
             message_id,attempts,reply,late"
        );
        let data = lines.next().unwrap();
        assert!(data.starts_with("2024-01-22T08:00:00+07:00,2024-01-22T09:00:00+07:00,II.3,"));
        assert!(data.contains("\"vanthu@stp.gov.vn, pgd@stp.gov.vn\""));
    }

    #[test]
    fn abbreviate_counts_characters() {
        assert_eq!(abbreviate("ngắn", 10), "ngắn");
        assert_eq!(abbreviate("Hộp thư đầy quá", 8), "Hộp thư…");
        assert_eq!(abbreviate("a\r\n  b", 10), "a b");
        // NFD: the marks take no column and stay with their letter.
        let nfd = "Ho\u{302}\u{323}p thu\u{31b} đa\u{300}y qua\u{301}";
        assert_eq!(abbreviate(nfd, 8), "Ho\u{302}\u{323}p thu\u{31b}…");
    }
}
