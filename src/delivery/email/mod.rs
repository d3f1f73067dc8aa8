//! From due nudges to emails: who gets which nudges ([`batches`]) and what the email says
//! ([`Composer`]).
//!
//! Both are pure: no IO but reading template overrides once in [`Composer::new`], no clock
//! (`now` is passed in). The wording is Vietnamese and lives in templates compiled into the
//! binary (`src/delivery/templates/`); a clerk may override them with files of the same names.

mod batches;
mod compose;
mod context;
mod message;
mod mime;
mod text;

pub use batches::{Batch, batches, sample_batch};
pub use compose::{ComposeError, Composer, ConfirmLinks, admin_message, new_message_id};
pub use context::Due;
pub use message::Email;
pub use text::{one_line, shorten};

#[cfg(test)]
mod tests {
    use super::text::block;
    use super::*;
    use crate::calendar::workdays::{WorkCalendar, date_vi};
    use crate::plan::config::{Config, Unit};
    use crate::plan::planner::Nudge;
    use chrono::{DateTime, NaiveDate};
    use chrono_tz::Tz;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    use crate::plan::config::{Env, from_source};
    use crate::plan::planner::plan;
    use chrono::{TimeZone, Utc};
    use std::collections::HashSet;
    use std::path::Path;

    /// Two tasks of the 2024 plan of Văn phòng UBND tỉnh Khánh Hòa, due 30/01 and 31/01.
    pub(crate) const PLAN: &str = "\
plan:
  title: Kế hoạch cải cách hành chính năm 2024 của Văn phòng UBND tỉnh
  reference: Quyết định số 20/QĐ-VPUBND ngày 18/01/2024
  year: 2024
sections:
  IV: Tổ chức thực hiện
  VII: Công tác chỉ đạo, điều hành
offices:
  hctc:
    name: Phòng Hành chính – Tổ chức
    email: hctc@vpubnd.example
    head: Trưởng phòng HC-TC <truong.hctc@vpubnd.example>
  kt:
    name: Phòng Kinh tế
    email: [kt@vpubnd.example, HCTC@vpubnd.example]
  snv:
    name: Sở Nội vụ
  ldvp:
    name: Lãnh đạo Văn phòng
    email: ldvp@vpubnd.example
leadership: ldvp
tasks:
  - id: IV.1
    title: Các Trung tâm xây dựng kế hoạch cải cách hành chính năm 2024 của đơn vị
    product: Kế hoạch CCHC năm 2024 của đơn vị
    deadline: trước ngày 30/01/2024
    lead: hctc
    cooperating: [kt, snv]
  - id: VII.1
    title: Ban hành Kế hoạch tuyên truyền CCHC tỉnh Khánh Hòa năm 2024
    product: Quyết định của Văn phòng UBND tỉnh
    deadline: Tháng 01/2024
    lead: hctc
";

    pub(crate) fn config(extra: &str) -> Config {
        from_source(
            &format!("{PLAN}{extra}"),
            Path::new("t.yaml"),
            &Env::default(),
        )
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config
    }

    pub(crate) fn at(s: &str) -> DateTime<Tz> {
        chrono_tz::Asia::Ho_Chi_Minh
            .from_local_datetime(
                &chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap(),
            )
            .unwrap()
    }

    fn due(cfg: &Config, now: &str) -> Vec<Nudge> {
        let now = at(now).with_timezone(&Utc);
        plan(
            cfg,
            &crate::calendar::workdays::WorkCalendar::weekends_only(),
            now,
            now,
            &HashSet::new(),
        )
        .due
    }

    /// Office, nudges (`task office kind`), To, Cc.
    type Shape = (String, Vec<String>, Vec<String>, Vec<String>);

    fn shape(bs: &[Batch]) -> Vec<Shape> {
        bs.iter()
            .map(|b| {
                (
                    b.office.clone(),
                    b.nudges
                        .iter()
                        .map(|n| format!("{} {} {}", n.task, n.office, n.kind.code()))
                        .collect(),
                    b.to.clone(),
                    b.cc.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn digest_groups_per_office_and_cooperating_get_their_own() {
        let c = config("");
        // Tuesday 30/01: IV.1 on the day, VII.1 one working day before; Phòng Kinh tế's
        // last reminder for IV.1 (29/01) was missed and comes late.
        let got = shape(&batches(&c, &due(&c, "2024-01-30 08:00")));
        assert_eq!(
            got,
            vec![
                (
                    "hctc".into(),
                    vec!["IV.1 hctc on-day".into(), "VII.1 hctc before-1wd".into()],
                    vec!["hctc@vpubnd.example".into()],
                    vec![]
                ),
                (
                    "kt".into(),
                    vec!["IV.1 kt before-1wd".into()],
                    vec!["kt@vpubnd.example".into(), "HCTC@vpubnd.example".into()],
                    vec![]
                ),
            ]
        );
    }

    #[test]
    fn per_nudge_and_cc_delivery() {
        let c = config("mail:\n  grouping: per-nudge\n  cooperating: cc\n");
        let got = shape(&batches(&c, &due(&c, "2024-01-30 08:00")));
        assert_eq!(
            got,
            vec![
                (
                    "hctc".into(),
                    vec!["IV.1 hctc on-day".into(), "IV.1 kt before-1wd".into()],
                    vec!["hctc@vpubnd.example".into()],
                    // hctc@ is already in To, whatever its case.
                    vec!["kt@vpubnd.example".into()]
                ),
                (
                    "hctc".into(),
                    vec!["VII.1 hctc before-1wd".into()],
                    vec!["hctc@vpubnd.example".into()],
                    vec![]
                ),
            ]
        );
    }

    #[test]
    fn cc_without_a_lead_email_this_sweep_sends_separately() {
        let c = config("mail:\n  cooperating: cc\n");
        // Friday 16/01 is the first reminder for IV.1: lead and cooperating both get one.
        let got = shape(&batches(&c, &due(&c, "2024-01-16 08:00")));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].3, vec!["kt@vpubnd.example".to_string()]);
        // Only the cooperating office's nudge is due: it gets its own email.
        let only_kt: Vec<Nudge> = due(&c, "2024-01-16 08:00")
            .into_iter()
            .filter(|n| &*n.office == "kt")
            .collect();
        let got = shape(&batches(&c, &only_kt));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "kt");
        assert!(got[0].3.is_empty());
    }

    #[test]
    fn escalation_copies_the_head_and_lists_the_leadership_in_one_digest() {
        let c = config("");
        // Tuesday 13/02 on a plain week (no Tết): IV.1 overdue 10 working days (the
        // leadership's first digest item); VII.1 at 9 (its office only: the head was copied
        // on 08/02, less than a week ago).
        let got = shape(&batches(&c, &due(&c, "2024-02-13 08:00")));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, "hctc");
        assert!(
            got[0].3.is_empty(),
            "never a copy to the leadership: {got:?}"
        );
        assert_eq!(got[1].0, "ldvp");
        assert_eq!(got[1].2, vec!["ldvp@vpubnd.example".to_string()]);
        assert_eq!(
            got[1].1,
            vec!["IV.1 hctc escalation-leadership".to_string()]
        );
        // Tuesday 20/02: IV.1 overdue 15 working days: the head again (a week after 06/02's
        // escalation), and IV.1 in the digest again.
        let got = shape(&batches(&c, &due(&c, "2024-02-20 08:00")));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            got[0].3,
            vec!["Trưởng phòng HC-TC <truong.hctc@vpubnd.example>".to_string()]
        );
        assert_eq!(got[1].0, "ldvp");
    }

    #[test]
    fn built_in_templates_render_every_case() {
        let c = config("");
        let cal = c.work_calendar(2024);
        let composer = Composer::new(&c).unwrap();
        for now in ["2024-01-25 08:00", "2024-01-30 08:00", "2024-02-13 08:00"] {
            for b in batches(&c, &due(&c, now)) {
                let m = composer
                    .compose(&c, &cal, &b, &new_message_id("vpubnd.example"), at(now))
                    .unwrap();
                let raw = String::from_utf8(m.formatted().to_vec()).unwrap();
                assert!(raw.contains("Subject: "), "{raw}");
            }
        }
    }

    #[test]
    fn sample_batch_uses_the_first_dated_task() {
        let c = config("");
        let b = sample_batch(
            &c,
            &c.work_calendar(2024),
            at("2024-01-10 08:00"),
            "it@vpubnd.example",
        )
        .unwrap();
        assert_eq!(b.office, "hctc");
        assert_eq!(b.to, vec!["it@vpubnd.example".to_string()]);
        assert_eq!(&*b.nudges[0].task, "IV.1");
        assert_eq!(b.nudges[0].occurrence, d("2024-01-30"));
    }

    #[test]
    fn vietnamese_dates() {
        assert_eq!(date_vi(d("2024-01-30")), "Thứ Ba, 30/01/2024");
        assert_eq!(date_vi(d("2024-02-04")), "Chủ nhật, 04/02/2024");
        assert_eq!(date_vi(d("2024-02-03")), "Thứ Bảy, 03/02/2024");
    }

    #[test]
    fn days_left_wording() {
        let cal = WorkCalendar::weekends_only();
        let check = |today: &str, deadline: &str, unit: Unit, want: &str| {
            assert_eq!(
                Due::on(&cal, d(today), d(deadline), unit).text(),
                want,
                "{today} → {deadline}"
            );
        };
        check(
            "2024-01-25",
            "2024-01-30",
            Unit::WorkingDays,
            "còn 3 ngày làm việc",
        );
        check("2024-01-25", "2024-01-30", Unit::Days, "còn 5 ngày");
        check("2024-01-30", "2024-01-30", Unit::WorkingDays, "hạn hôm nay");
        check(
            "2024-02-05",
            "2024-01-30",
            Unit::WorkingDays,
            "đã quá hạn 4 ngày làm việc",
        );
        check("2024-02-05", "2024-01-30", Unit::Days, "đã quá hạn 6 ngày");
        // Deadline on Sunday 30/06/2024: Friday is the last working day before it.
        check(
            "2024-06-28",
            "2024-06-30",
            Unit::WorkingDays,
            "hôm nay là ngày làm việc cuối cùng trước hạn",
        );
        check("2024-06-28", "2024-06-30", Unit::Days, "còn 2 ngày");
        check(
            "2024-07-01",
            "2024-06-30",
            Unit::WorkingDays,
            "đã quá hạn 1 ngày làm việc",
        );
    }

    #[test]
    fn one_line_strips_header_breaks() {
        assert_eq!(
            one_line("Báo cáo\r\nBcc: x@evil.example\t\u{0}!"),
            "Báo cáo Bcc: x@evil.example !"
        );
        assert_eq!(block("- a\r\n- b\u{7}"), "- a\n- b");
    }

    #[test]
    fn shorten_cuts_at_a_word() {
        assert_eq!(shorten("ngắn", 70), "ngắn");
        let s = "Tham mưu ban hành Chương trình hành động nâng cao Chỉ số năng lực cạnh tranh cấp tỉnh (PCI)";
        let got = shorten(s, 50);
        assert!(got.chars().count() <= 50, "{got}");
        assert!(got.ends_with('…'));
        assert!(s.starts_with(got.trim_end_matches('…')), "{got}");
    }

    #[test]
    fn message_ids_are_bracketed_and_unique() {
        let a = new_message_id("vpubnd.example");
        let b = new_message_id("vpubnd.example");
        assert!(a.starts_with('<') && a.ends_with("@vpubnd.example>"), "{a}");
        assert_ne!(a, b);
    }
}
