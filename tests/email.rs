//! Emails end to end: planned from a config, grouped, composed, sent over loopback SMTP to
//! a real (small) server, and read back as a mail client would.

mod support;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use mail_parser::MessageParser;
use nhacviec::delivery::email::{Batch, Composer, batches, new_message_id};
use nhacviec::delivery::transport::{SecretEnv, SendError, Sender};
use nhacviec::plan::config::{Config, Env, from_source};
use nhacviec::plan::planner::plan;
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;
use support::smtp::{SmtpServer, Stage};

/// Two tasks of the 2024 CCHC plan of Văn phòng UBND tỉnh Khánh Hòa.
const PLAN: &str = r#"
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
    head: truong.hctc@vpubnd.example
  ttth:
    name: Trung tâm Tin học – Công báo
    email: ttth@vpubnd.example
  kt:
    name: Phòng Kinh tế
    email: kt@vpubnd.example
  ldvp:
    name: Lãnh đạo Văn phòng
    email: ldvp@vpubnd.example
leadership: ldvp
tasks:
  - id: IV.1
    title: Xây dựng kế hoạch cải cách hành chính năm 2024 của đơn vị và gửi về Phòng Hành chính – Tổ chức
    product: Kế hoạch CCHC năm 2024 của Trung tâm
    deadline: trước ngày 30/01/2024
    lead: ttth
    cooperating: hctc
  - id: VII.1
    title: TITLE71
    product: Quyết định của Văn phòng UBND tỉnh
    deadline: Tháng 01/2024
    lead: ttth
mail:
  from: Nhắc việc – Văn phòng UBND tỉnh <nhacviec@vpubnd.example>
  reply_to: Phòng Hành chính – Tổ chức <hctc@vpubnd.example>
  GROUPING
  transport:
    smtp:
      host: 127.0.0.1
      port: PORT
      security: none
      allow_plaintext: true
      timeout: 1s
"#;

const TITLE71: &str = "Ban hành Kế hoạch tuyên truyền CCHC tỉnh Khánh Hòa năm 2024";

fn config(port: u16, grouping: &str, title71: &str) -> Config {
    let src = PLAN
        .replace("PORT", &port.to_string())
        .replace("GROUPING", grouping)
        .replace("TITLE71", title71);
    from_source(&src, Path::new("t.yaml"), &Env::default())
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config
}

fn at(s: &str) -> DateTime<Tz> {
    chrono_tz::Asia::Ho_Chi_Minh
        .from_local_datetime(&chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap())
        .unwrap()
}

fn due_batches(cfg: &Config, now: DateTime<Tz>) -> Vec<Batch> {
    let now = now.with_timezone(&Utc);
    let p = plan(cfg, &cfg.work_calendar(2024), now, now, &HashSet::new());
    batches(cfg, &p.due)
}

/// Composes and sends `batch`; returns the message id used.
async fn send(cfg: &Config, batch: &Batch, now: DateTime<Tz>) -> Result<String, SendError> {
    let composer = Composer::new(cfg).unwrap();
    let id = new_message_id(&cfg.mail.message_id_domain);
    let msg = composer
        .compose(cfg, &cfg.work_calendar(2024), batch, &id, now)
        .unwrap();
    let sender = Sender::new(cfg, &SecretEnv::default()).unwrap();
    sender.send(&msg).await.map(|_| id)
}

fn addrs(a: Option<&mail_parser::Address>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address())
            .map(String::from)
            .collect()
    })
    .unwrap_or_default()
}

#[tokio::test]
async fn a_single_nudge_reads_right_in_a_mail_client() {
    let server = SmtpServer::start().await;
    let cfg = config(server.port(), "grouping: per-nudge", TITLE71);
    // Wednesday 24/01: three working days before Monday 29/01, the last working day before
    // "trước ngày 30/01/2024".
    let now = at("2024-01-24 08:00");
    let bs = due_batches(&cfg, now);
    let b = bs
        .iter()
        .find(|b| &*b.nudges[0].task == "IV.1" && b.office == "ttth")
        .expect("IV.1 is due for ttth");
    let id = send(&cfg, b, now).await.unwrap();

    let got = server.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].from, "nhacviec@vpubnd.example");
    assert_eq!(got[0].to, vec!["ttth@vpubnd.example"]);
    let raw = String::from_utf8(got[0].data.clone()).unwrap();
    let m = MessageParser::default().parse(&got[0].data).unwrap();
    assert_eq!(
        m.subject().unwrap(),
        "[Nhắc việc] Còn 3 ngày làm việc: Xây dựng kế hoạch cải cách hành chính năm 2024 của đơn vị và gửi về… — hạn trước 30/01/2024"
    );
    assert_eq!(addrs(m.from()), vec!["nhacviec@vpubnd.example"]);
    assert_eq!(addrs(m.to()), vec!["ttth@vpubnd.example"]);
    assert!(addrs(m.cc()).is_empty());
    assert_eq!(addrs(m.reply_to()), vec!["hctc@vpubnd.example"]);
    assert_eq!(Some(id.trim_matches(['<', '>'])), m.message_id());
    assert!(raw.contains("Content-Type: multipart/alternative"), "{raw}");
    assert!(
        raw.contains("Content-Type: text/plain; charset=utf-8"),
        "{raw}"
    );
    assert!(
        raw.contains("Content-Type: text/html; charset=utf-8"),
        "{raw}"
    );
    assert_eq!(m.date().unwrap().to_rfc3339(), "2024-01-24T01:00:00Z");
    let text = m.body_text(0).unwrap();
    let html = m.body_html(0).unwrap();
    for part in [&text, &html] {
        for want in [
            "Kính gửi: ",
            "Trung tâm Tin học – Công báo",
            "Xây dựng kế hoạch cải cách hành chính năm 2024 của đơn vị và gửi về Phòng Hành chính – Tổ chức",
            "Nhiệm vụ IV.1",
            "Mục IV. Tổ chức thực hiện",
            "Kế hoạch CCHC năm 2024 của Trung tâm",
            "trước ngày 30/01/2024, tức chậm nhất Thứ Hai 29/01/2024",
            "còn 3 ngày làm việc",
            "chủ trì",
            "chủ trì; đơn vị phối hợp: Phòng Hành chính – Tổ chức",
            "Quyết định số 20/QĐ-VPUBND ngày 18/01/2024",
            "hctc@vpubnd.example",
        ] {
            assert!(part.contains(want), "missing {want:?} in:\n{part}");
        }
    }
    assert!(!text.contains("đến chậm"), "not a late nudge:\n{text}");
    if std::env::var_os("NHACVIEC_SHOW_EMAIL").is_some() {
        println!("Subject: {}\n\n{text}", m.subject().unwrap());
    }
}

#[tokio::test]
async fn a_digest_lists_every_task_of_the_office() {
    let server = SmtpServer::start().await;
    let cfg = config(server.port(), "grouping: digest", TITLE71);
    // Monday 29/01: IV.1 ("trước ngày 30/01") is due today; VII.1's reminder of Friday
    // 26/01 and the cooperating office's last one (26/01) were missed and arrive late, the
    // latter in an email of its own.
    let now = at("2024-01-29 08:00");
    let bs = due_batches(&cfg, now);
    assert_eq!(bs.len(), 2, "{bs:?}");
    for b in &bs {
        send(&cfg, b, now).await.unwrap();
    }
    let got = server.wait_for(2, Duration::from_secs(5)).await;
    let parsed: Vec<_> = got
        .iter()
        .map(|r| MessageParser::default().parse(&r.data).unwrap())
        .collect();
    let by_to = |a: &str| {
        parsed
            .iter()
            .find(|m| addrs(m.to()) == vec![a.to_string()])
            .unwrap()
    };
    let digest = by_to("ttth@vpubnd.example");
    assert_eq!(
        digest.subject().unwrap(),
        "[Đến hạn] 2 nhiệm vụ đến hạn và sắp đến hạn — Trung tâm Tin học – Công báo"
    );
    let text = digest.body_text(0).unwrap();
    for want in [
        "1. Nhiệm vụ IV.1",
        "hạn hôm nay",
        "2. Nhiệm vụ VII.1",
        TITLE71,
        "Tháng 01/2024",
        "Thứ Tư, 31/01/2024",
        "còn 2 ngày làm việc",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let coop = by_to("hctc@vpubnd.example");
    assert!(
        coop.subject().unwrap().starts_with("[Đến hạn] "),
        "{:?}",
        coop.subject()
    );
    let text = coop.body_text(0).unwrap();
    for want in [
        "phối hợp với Trung tâm Tin học – Công báo (đơn vị chủ trì)",
        "đến chậm",
        "hạn hôm nay",
        "Đề nghị đơn vị phối hợp với Trung tâm Tin học – Công báo thực hiện nhiệm vụ này.",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // A cooperating office is asked to coordinate, not to hand in the result itself.
    assert!(!text.contains("gửi kết quả trong ngày hôm nay"), "{text}");
}

/// Co-leads are told they share the lead; where the result goes is named, and that office
/// (with no address) gets nothing and is never called cooperating.
#[test]
fn co_leads_share_the_lead_and_the_result_goes_where_report_to_says() {
    let src = PLAN
        .replace("PORT", "2525")
        .replace("GROUPING", "grouping: per-nudge")
        .replace("TITLE71", TITLE71)
        .replace("  ldvp:\n", "  snv:\n    name: Sở Nội vụ\n  ldvp:\n")
        .replace(
            "    deadline: Tháng 01/2024\n    lead: ttth\n",
            "    deadline: Tháng 01/2024\n    lead: [ttth, kt]\n    report_to: snv\n",
        );
    let cfg = from_source(&src, Path::new("t.yaml"), &Env::default())
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config;
    let vii1 = cfg.task("VII.1").unwrap();
    assert_eq!(vii1.report_to, ["snv"]);
    assert!(vii1.cooperating.is_empty());
    let now = at("2024-01-31 08:00");
    let bs = due_batches(&cfg, now);
    assert!(
        bs.iter()
            .all(|b| b.nudges.iter().all(|n| &*n.office != "snv"))
    );
    let composer = Composer::new(&cfg).unwrap();
    let text_for = |office: &str| {
        let b = bs
            .iter()
            .find(|b| b.office == office && &*b.nudges[0].task == "VII.1")
            .unwrap_or_else(|| panic!("no VII.1 email for {office}: {bs:#?}"));
        let msg = composer
            .compose(&cfg, &cfg.work_calendar(2024), b, "<t@example.org>", now)
            .unwrap();
        let raw = msg.formatted();
        let parsed = MessageParser::default().parse(&raw).unwrap();
        parsed.body_text(0).unwrap().to_string()
    };
    let kt = text_for("kt");
    assert!(
        kt.contains("Vai trò của đơn vị: đồng chủ trì với Trung tâm Tin học – Công báo"),
        "{kt}"
    );
    assert!(kt.contains("Kết quả gửi: Sở Nội vụ"), "{kt}");
    assert!(!kt.contains("phối hợp: Sở Nội vụ"), "{kt}");
    let ttth = text_for("ttth");
    assert!(ttth.contains("đồng chủ trì với Phòng Kinh tế"), "{ttth}");
}

#[tokio::test]
async fn the_leadership_gets_one_digest_never_a_copy_of_the_office_email() {
    let server = SmtpServer::start().await;
    let cfg = config(server.port(), "grouping: per-nudge", TITLE71);
    // Monday 19/02: IV.1 (due by Monday 29/01, "trước ngày 30/01/2024") is 10 working days
    // overdue, Tết 08–14/02 not counted.
    let now = at("2024-02-19 08:00");
    let bs = due_batches(&cfg, now);
    // No email of an office copies the leadership.
    assert!(
        bs.iter()
            .filter(|b| b.office != "ldvp")
            .all(|b| !b.cc.iter().any(|a| a.contains("ldvp"))),
        "{bs:?}"
    );
    let digests: Vec<_> = bs.iter().filter(|b| b.office == "ldvp").collect();
    assert_eq!(digests.len(), 1, "{bs:?}");
    let b = digests[0];
    assert!(b.nudges.iter().any(|n| &*n.task == "IV.1"));
    assert!(b.cc.is_empty());
    send(&cfg, b, now).await.unwrap();
    let got = server.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].to, vec!["ldvp@vpubnd.example"]);
    let m = MessageParser::default().parse(&got[0].data).unwrap();
    let subject = m.subject().unwrap();
    assert!(
        subject.starts_with("[Quá hạn – báo cáo] Tổng hợp 1 nhiệm vụ quá hạn"),
        "{subject}"
    );
    let text = m.body_text(0).unwrap();
    assert!(text.contains("1. Nhiệm vụ IV.1"), "{text}");
    assert!(text.contains("Đơn vị chủ trì: "), "{text}");
    assert!(text.contains("đã quá hạn 10 ngày làm việc"), "{text}");
}

#[tokio::test]
async fn yaml_text_cannot_add_a_header() {
    let server = SmtpServer::start().await;
    let evil = r#""Ban hành kế hoạch\r\nBcc: x@evil.example\r\n\r\n<b>bold</b>""#;
    let cfg = config(server.port(), "grouping: per-nudge", evil);
    let now = at("2024-01-29 08:00");
    let bs = due_batches(&cfg, now);
    let b = bs.iter().find(|b| &*b.nudges[0].task == "VII.1").unwrap();
    send(&cfg, b, now).await.unwrap();
    let got = server.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].to, vec!["ttth@vpubnd.example"]);
    let m = MessageParser::default().parse(&got[0].data).unwrap();
    assert!(m.header("Bcc").is_none());
    let raw = String::from_utf8(got[0].data.clone()).unwrap();
    let headers = raw.split("\r\n\r\n").next().unwrap();
    assert!(
        !headers
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc")),
        "{headers}"
    );
    assert!(
        m.subject()
            .unwrap()
            .contains("Ban hành kế hoạch Bcc: x@evil.example <b>bold</b>"),
        "{:?}",
        m.subject()
    );
    let html = m.body_html(0).unwrap();
    assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;"), "{html}");
    assert!(!html.contains("<b>bold</b>"), "{html}");
}

fn first_batch(cfg: &Config) -> Batch {
    due_batches(cfg, at("2024-01-25 08:00")).remove(0)
}

#[tokio::test]
async fn server_replies_are_classified() {
    let mut server = SmtpServer::start().await;
    let cfg = config(server.port(), "grouping: digest", TITLE71);
    let b = first_batch(&cfg);
    let now = at("2024-01-25 08:00");

    server.fail_next(Stage::Mail, 451, "4.3.0 Hệ thống bận, thử lại sau", 1);
    let e = send(&cfg, &b, now).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert_eq!(e.code(), Some(451));
    assert!(e.to_string().contains("451 4.3.0 Hệ thống bận"), "{e}");

    server.fail_next(Stage::Data, 550, "5.7.1 message refused", 1);
    let e = send(&cfg, &b, now).await.unwrap_err();
    assert!(!e.is_transient(), "{e}");
    assert!(e.to_string().contains("550 5.7.1 message refused"), "{e}");

    server.reject_recipient("ttth@vpubnd.example");
    let e = send(&cfg, &b, now).await.unwrap_err();
    assert!(!e.is_transient(), "{e}");
    assert_eq!(e.code(), Some(550));
    assert!(e.to_string().contains("no such user"), "{e}");
    assert!(server.received().is_empty());

    server.stop().await;
    let e = send(&cfg, &b, now).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(matches!(e, SendError::Connection { .. }), "{e:?}");

    server.restart().await;
    server.behave();
    let cfg2 = config(server.port(), "grouping: per-nudge", TITLE71);
    let b2 = first_batch(&cfg2);
    send(&cfg2, &b2, now).await.unwrap();
    assert_eq!(server.wait_for(1, Duration::from_secs(5)).await.len(), 1);
}

#[tokio::test]
async fn a_server_stalling_in_data_is_an_unknown_outcome_and_the_next_send_works() {
    // Asserts the English text.
    nhacviec::i18n::set_for_thread(Some(nhacviec::i18n::Lang::En));
    let server = SmtpServer::start().await;
    let cfg = config(server.port(), "grouping: digest", TITLE71);
    let b = first_batch(&cfg);
    let now = at("2024-01-25 08:00");
    let composer = Composer::new(&cfg).unwrap();
    let sender = Sender::new(&cfg, &SecretEnv::default()).unwrap();
    let msg = |id: &str| {
        composer
            .compose(&cfg, &cfg.work_calendar(2024), &b, id, now)
            .unwrap()
    };

    server.stall_data(Duration::from_secs(5));
    let started = std::time::Instant::now();
    let e = sender.send(&msg("<a@vpubnd.example>")).await.unwrap_err();
    // The content went out and no reply came: the outcome is unknown (it may have been
    // delivered), not a connection failure.
    assert!(matches!(e, SendError::Unknown { .. }), "{e:?}");
    assert!(e.to_string().starts_with("outcome unknown"), "{e}");
    assert!(e.is_transient());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    let reply = sender.send(&msg("<b@vpubnd.example>")).await.unwrap();
    assert!(reply.starts_with("250"), "{reply}");
}

#[tokio::test]
async fn the_outbox_holds_whole_parseable_emails() {
    let dir = tempfile::tempdir().unwrap();
    let src = PLAN
        .replace("PORT", "25")
        .replace("GROUPING", "")
        .replace("TITLE71", TITLE71);
    let src = src.split("  transport:").next().unwrap().to_string()
        + &format!(
            "  transport:\n    outbox: {}\n",
            dir.path().join("outbox").display()
        );
    let cfg = from_source(&src, Path::new("t.yaml"), &Env::default())
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config;
    let now = at("2024-01-25 08:00");
    let b = due_batches(&cfg, now).remove(0);
    let composer = Composer::new(&cfg).unwrap();
    let msg = composer
        .compose(
            &cfg,
            &cfg.work_calendar(2024),
            &b,
            "<abc123@vpubnd.example>",
            now,
        )
        .unwrap();
    let sender = Sender::new(&cfg, &SecretEnv::default()).unwrap();
    let path = sender.send(&msg).await.unwrap();
    assert!(path.ends_with("-abc123.eml"), "{path}");
    let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(files.len(), 1, "no temporary file is left: {files:?}");
    let bytes = std::fs::read(&path).unwrap();
    let m = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(m.message_id(), Some("abc123@vpubnd.example"));
    assert!(m.subject().unwrap().starts_with("[Nhắc việc] "));
}

#[tokio::test]
async fn a_broken_template_override_names_its_file_and_line() {
    // Asserts the English text.
    nhacviec::i18n::set_for_thread(Some(nhacviec::i18n::Lang::En));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("body.txt"),
        "Kính gửi {{ office.name }}\n{% if %}\n",
    )
    .unwrap();
    let src = PLAN
        .replace("PORT", "2525")
        .replace("TITLE71", TITLE71)
        .replace("GROUPING", &format!("templates: {}", dir.path().display()));
    let cfg = from_source(&src, Path::new("t.yaml"), &Env::default())
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config;
    let e = Composer::new(&cfg).unwrap_err().to_string();
    assert!(e.contains("body.txt, line 2"), "{e}");

    // A misspelt variable is caught at start too, not at the first sweep.
    std::fs::write(dir.path().join("body.txt"), "Kính gửi {{ ofice.name }}\n").unwrap();
    let e = Composer::new(&cfg).unwrap_err().to_string();
    assert!(e.contains("body.txt, line 1"), "{e}");

    // A good override replaces the built-in one.
    std::fs::write(dir.path().join("body.txt"), "Kính gửi {{ office.name }}.\n").unwrap();
    let composer = Composer::new(&cfg).unwrap();
    let now = at("2024-01-25 08:00");
    let b = due_batches(&cfg, now).remove(0);
    let msg = composer
        .compose(&cfg, &cfg.work_calendar(2024), &b, "<x@y.example>", now)
        .unwrap();
    let bytes = msg.formatted();
    let m = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(
        m.body_text(0).unwrap().trim(),
        "Kính gửi Trung tâm Tin học – Công báo."
    );
}
