//! SMTP pipelining (RFC 2920): the envelope of each email goes out in one write when the
//! server offers PIPELINING, every reply is still read and judged on its own, and a server
//! that does not offer it gets one command at a time. Against the test server (which counts
//! pipelined envelopes) and against Postfix's `smtp-sink` when it is installed.

mod support;

use lettre::Message;
use nhacviec::delivery::email::Email;
use nhacviec::delivery::transport::{Delivery, SecretEnv, SendError, Sender};
use nhacviec::plan::config::{Env, from_source};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::skip::skip_or_fail;
use support::smtp::{SmtpServer, Stage};

const FROM: &str = "nhacviec@vpubnd.example";

/// A sender to 127.0.0.1:`port`, `pool` connections.
fn sender(port: u16, pool: u32) -> Sender {
    let src = format!(
        "offices:\n  a:\n    name: A\n    email: a@vpubnd.example\ntasks: []\nmail:\n  from: {FROM}\n  transport:\n    smtp:\n      host: 127.0.0.1\n      port: {port}\n      security: none\n      allow_plaintext: true\n      timeout: 2s\n      pool_size: {pool}\n"
    );
    let cfg = from_source(&src, Path::new("t.yaml"), &Env::default())
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config;
    Sender::new(&cfg, &SecretEnv::default()).unwrap()
}

/// An email to `to`, with lines that start with a dot (they must arrive as written).
fn email(n: usize, to: &[&str]) -> Email {
    let mut b = Message::builder()
        .message_id(Some(format!("<{n}@vpubnd.example>")))
        .from(FROM.parse().unwrap())
        .subject(format!("Nhắc việc {n}"));
    for a in to {
        b = b.to(a.parse().unwrap());
    }
    b.body(format!(
        "Kinh gui don vi,\r\n.mot dong bat dau bang dau cham\r\n.\r\nso {n}\r\n"
    ))
    .unwrap()
    .into()
}

fn body_of(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

#[tokio::test]
async fn the_envelope_goes_in_one_write_when_the_server_offers_pipelining() {
    let server = SmtpServer::start().await;
    let s = sender(server.port(), 1);
    for n in 0..3 {
        let d = s
            .deliver(&email(n, &["a@vpubnd.example", "b@vpubnd.example"]))
            .await
            .unwrap();
        assert!(d.reply.starts_with("250"), "{d:?}");
        assert!(d.refused.is_empty(), "{d:?}");
    }
    let got = server.received();
    assert_eq!(got.len(), 3, "{got:#?}");
    for (n, r) in got.iter().enumerate() {
        assert_eq!(r.from, FROM);
        assert_eq!(r.to, ["a@vpubnd.example", "b@vpubnd.example"]);
        let body = body_of(&r.data);
        assert!(
            body.contains("\r\n.mot dong bat dau bang dau cham\r\n.\r\nso"),
            "{body}"
        );
        assert!(body.contains(&format!("<{n}@vpubnd.example>")), "{body}");
    }
    assert_eq!(server.pipelined(), 3, "every envelope arrived in one piece");
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_server_without_pipelining_gets_one_command_at_a_time() {
    let server = SmtpServer::start().await;
    server.pipelining(false);
    let s = sender(server.port(), 1);
    for n in 0..2 {
        s.deliver(&email(n, &["a@vpubnd.example", "b@vpubnd.example"]))
            .await
            .unwrap();
    }
    let got = server.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(body_of(&got[1].data).contains("\r\n.mot dong"));
    assert_eq!(server.pipelined(), 0);
}

#[tokio::test]
async fn pipelined_a_refused_recipient_fails_only_itself_and_the_connection_stays_in_step() {
    let server = SmtpServer::start().await;
    let s = sender(server.port(), 1);
    server.reject_recipient("b@vpubnd.example");
    let to = ["a@vpubnd.example", "b@vpubnd.example", "c@vpubnd.example"];
    let d: Delivery = s.deliver(&email(1, &to)).await.unwrap();
    assert_eq!(d.refused.len(), 1, "{d:?}");
    assert_eq!(d.refused[0].address, "b@vpubnd.example");
    assert_eq!(d.refused[0].code, 550);
    // The next email on the same connection reads its own replies, not left-overs.
    server.behave();
    let d = s.deliver(&email(2, &to)).await.unwrap();
    assert!(d.refused.is_empty(), "{d:?}");
    let got = server.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].to, ["a@vpubnd.example", "c@vpubnd.example"]);
    assert_eq!(got[1].to, to);
    assert_eq!(server.connections(), 1);
    assert_eq!(server.pipelined(), 2);
}

#[tokio::test]
async fn pipelined_a_452_sends_the_rest_in_further_transactions_of_the_same_message() {
    let server = SmtpServer::start().await;
    let s = sender(server.port(), 1);
    server.too_many_after(2);
    let to = [
        "a@vpubnd.example",
        "b@vpubnd.example",
        "c@vpubnd.example",
        "d@vpubnd.example",
        "e@vpubnd.example",
    ];
    let d = s.deliver(&email(7, &to)).await.unwrap();
    assert!(d.refused.is_empty(), "{d:?}");
    // Three transactions: two, two and one recipients, one reply each.
    assert_eq!(d.reply.matches("250").count(), 3, "{d:?}");
    let got = server.received();
    let envelopes: Vec<Vec<String>> = got.iter().map(|r| r.to.clone()).collect();
    assert_eq!(
        envelopes,
        [&to[0..2], &to[2..4], &to[4..5]]
            .map(|p| p.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    );
    for r in &got {
        assert!(body_of(&r.data).contains("<7@vpubnd.example>"));
    }
    assert_eq!(server.pipelined(), 3);
}

#[tokio::test]
async fn pipelined_all_recipients_refused_sends_no_content_and_resets() {
    let server = SmtpServer::start().await;
    let s = sender(server.port(), 1);
    server.reject_recipient("a@vpubnd.example");
    server.reject_recipient("b@vpubnd.example");
    let e = s
        .deliver(&email(1, &["a@vpubnd.example", "b@vpubnd.example"]))
        .await
        .unwrap_err();
    match &e {
        SendError::Rejected { code, text } => {
            assert_eq!(*code, 550);
            assert!(text.contains("a@vpubnd.example"), "{text}");
            assert!(text.contains("b@vpubnd.example"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert!(server.attempts().is_empty(), "no content went out");
    assert_eq!(server.resets(), 1);
    // The connection was reset, not dropped, and takes the next email.
    server.behave();
    s.deliver(&email(2, &["a@vpubnd.example"])).await.unwrap();
    assert_eq!(server.received().len(), 1);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn pipelined_a_refused_mail_from_or_content_fails_the_email_and_the_next_one_goes() {
    let server = SmtpServer::start().await;
    let s = sender(server.port(), 1);
    server.fail_next(Stage::Mail, 451, "4.3.0 try later", 1);
    let e = s
        .deliver(&email(1, &["a@vpubnd.example"]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(451), "{e}");
    server.fail_next(Stage::Data, 554, "5.6.0 content refused", 1);
    let e = s
        .deliver(&email(2, &["a@vpubnd.example"]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(554), "{e}");
    assert!(!e.is_transient());
    s.deliver(&email(3, &["a@vpubnd.example"])).await.unwrap();
    let got = server.received();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(body_of(&got[0].data).contains("<3@vpubnd.example>"));
}

#[tokio::test]
async fn pipelined_no_reply_after_the_content_is_an_unknown_outcome() {
    let server = SmtpServer::start().await;
    let s = sender(server.port(), 1);
    server.close_after_data(1);
    let e = s
        .deliver(&email(1, &["a@vpubnd.example"]))
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Unknown { .. }), "{e:?}");
    assert_eq!(server.attempts().len(), 1);
    s.deliver(&email(1, &["a@vpubnd.example"])).await.unwrap();
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn a_session_sends_each_envelope_with_the_content_before_it() {
    let server = SmtpServer::start().await;
    let s = sender(server.port(), 1);
    let emails: Vec<Email> = (0..4)
        .map(|n| email(n, &["a@vpubnd.example", "b@vpubnd.example"]))
        .collect();
    let mut session = s.session();
    for (n, e) in emails.iter().enumerate() {
        let d = session.deliver(e, emails.get(n + 1)).await.unwrap();
        assert!(d.reply.starts_with("250"), "{d:?}");
        assert!(d.refused.is_empty(), "{d:?}");
    }
    drop(session);
    let got = server.received();
    assert_eq!(got.len(), 4, "{got:#?}");
    for (n, r) in got.iter().enumerate() {
        assert_eq!(r.to, ["a@vpubnd.example", "b@vpubnd.example"]);
        let body = body_of(&r.data);
        assert!(body.contains(&format!("<{n}@vpubnd.example>")), "{body}");
        assert!(
            body.contains("\r\n.mot dong bat dau bang dau cham\r\n.\r\nso"),
            "{body}"
        );
        assert!(
            !body.contains("MAIL FROM"),
            "no envelope inside a content: {body}"
        );
    }
    // The first envelope goes alone; the three after it ride on a content.
    assert_eq!(server.pipelined(), 4);
    assert_eq!(server.ahead(), 3);
    assert_eq!(server.connections(), 1);
    // The session gave its connection back: a later email reuses it.
    s.deliver(&email(9, &["a@vpubnd.example"])).await.unwrap();
    assert_eq!(server.connections(), 1);
    assert_eq!(server.ahead(), 3);
}

#[tokio::test]
async fn an_email_named_next_but_not_sent_is_never_delivered() {
    let server = SmtpServer::start().await;
    let s = sender(server.port(), 1);
    let (first, named, other) = (
        email(1, &["a@vpubnd.example"]),
        email(2, &["a@vpubnd.example"]),
        email(3, &["a@vpubnd.example"]),
    );
    let mut session = s.session();
    session.deliver(&first, Some(&named)).await.unwrap();
    assert_eq!(server.ahead(), 1);
    // Another email instead: the primed connection is closed, the other goes on a new one.
    session.deliver(&other, None).await.unwrap();
    drop(session);
    // And a session dropped while primed closes its connection the same way.
    let mut session = s.session();
    session
        .deliver(&email(4, &["a@vpubnd.example"]), Some(&named))
        .await
        .unwrap();
    drop(session);
    assert_eq!(
        server.connections(),
        2,
        "the idle one went back to the pool"
    );
    // Not the primed one, which was closed: the next email opens a new connection.
    s.deliver(&email(5, &["a@vpubnd.example"])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ids: Vec<String> = server
        .attempts()
        .iter()
        .map(|r| {
            let body = body_of(&r.data);
            let at = body.find("Message-ID: <").expect("a Message-ID") + 13;
            body[at..at + 1].to_string()
        })
        .collect();
    assert_eq!(
        ids,
        ["1", "3", "4", "5"],
        "the named email's content never went"
    );
    assert_eq!(server.received().len(), 4);
    assert_eq!(server.connections(), 3);
}

#[tokio::test]
async fn a_refused_envelope_sent_ahead_fails_only_its_own_email() {
    let server = SmtpServer::start().await;
    let s = sender(server.port(), 1);
    server.reject_recipient("b@vpubnd.example");
    let emails = [
        email(1, &["a@vpubnd.example"]),
        email(2, &["b@vpubnd.example"]),
        email(3, &["a@vpubnd.example", "b@vpubnd.example"]),
        email(4, &["a@vpubnd.example"]),
    ];
    let mut session = s.session();
    session.deliver(&emails[0], Some(&emails[1])).await.unwrap();
    let e = session
        .deliver(&emails[1], Some(&emails[2]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(550), "{e}");
    let d = session.deliver(&emails[2], Some(&emails[3])).await.unwrap();
    assert_eq!(d.refused.len(), 1, "{d:?}");
    assert_eq!(d.refused[0].address, "b@vpubnd.example");
    session.deliver(&emails[3], None).await.unwrap();
    let got = server.received();
    let to: Vec<Vec<String>> = got.iter().map(|r| r.to.clone()).collect();
    assert_eq!(
        to,
        [
            vec!["a@vpubnd.example".to_string()],
            vec!["a@vpubnd.example".to_string()],
            vec!["a@vpubnd.example".to_string()],
        ]
    );
    assert_eq!(
        server.connections(),
        1,
        "a refusal keeps the connection in step"
    );
}

#[tokio::test]
async fn a_server_that_closes_after_each_email_costs_the_one_sent_ahead_nothing() {
    let server = SmtpServer::start().await;
    let s = sender(server.port(), 1);
    server.close_after_reply(2);
    let emails: Vec<Email> = (0..3).map(|n| email(n, &["a@vpubnd.example"])).collect();
    let mut session = s.session();
    for (n, e) in emails.iter().enumerate() {
        let d = session.deliver(e, emails.get(n + 1)).await.unwrap();
        assert!(d.reply.starts_with("250"), "{d:?}");
    }
    let got = server.received();
    assert_eq!(got.len(), 3, "{got:#?}");
    for (n, r) in got.iter().enumerate() {
        assert!(body_of(&r.data).contains(&format!("<{n}@vpubnd.example>")));
    }
    assert_eq!(server.connections(), 3);
}

#[tokio::test]
async fn a_refused_content_leaves_the_email_sent_ahead_to_a_new_connection() {
    let server = SmtpServer::start().await;
    let s = sender(server.port(), 1);
    server.fail_next(Stage::Data, 554, "5.6.0 content refused", 1);
    let (first, second) = (
        email(1, &["a@vpubnd.example"]),
        email(2, &["a@vpubnd.example"]),
    );
    let mut session = s.session();
    let e = session.deliver(&first, Some(&second)).await.unwrap_err();
    assert_eq!(e.code(), Some(554), "{e}");
    session.deliver(&second, None).await.unwrap();
    let got = server.received();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(body_of(&got[0].data).contains("<2@vpubnd.example>"));
}

#[tokio::test]
async fn a_server_without_pipelining_gets_no_envelope_ahead() {
    let server = SmtpServer::start().await;
    server.pipelining(false);
    let s = sender(server.port(), 1);
    let emails: Vec<Email> = (0..3).map(|n| email(n, &["a@vpubnd.example"])).collect();
    let mut session = s.session();
    for (n, e) in emails.iter().enumerate() {
        session.deliver(e, emails.get(n + 1)).await.unwrap();
    }
    assert_eq!(server.received().len(), 3);
    assert_eq!((server.pipelined(), server.ahead()), (0, 0));
    assert_eq!(server.connections(), 1);
}

/// Postfix's `smtp-sink`, dumping each transaction into `dir`, on a free loopback port.
struct Sink {
    child: Child,
    port: u16,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp_sink(dir: &Path) -> Option<Sink> {
    let bin = ["/usr/sbin/smtp-sink", "/usr/bin/smtp-sink"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(bin);
    // As root it must drop to another user, who must be able to write the dumps. (The
    // tests have no libc binding: `id -u` says who we are.)
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        cmd.args(["-u", "nobody"]);
    }
    let template = format!("{}/", dir.display());
    let child = cmd
        .args(["-d", &template, &format!("127.0.0.1:{port}"), "16"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let sink = Sink { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "smtp-sink did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(sink)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_smtp_sink_takes_pipelined_emails_whole_with_each_envelope_sent_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let dumps = dir.path().join("dumps");
    std::fs::create_dir(&dumps).unwrap();
    let Some(sink) = smtp_sink(&dumps) else {
        skip_or_fail("Postfix's smtp-sink is not installed (apt-get install postfix)");
        return;
    };
    let s = sender(sink.port, 3);
    let to = ["a@vpubnd.example", "b@vpubnd.example"];
    // Ten emails on each of three connections, as a sweep sends them: each envelope after
    // the first goes in the same write as the content before it.
    let mut sends = tokio::task::JoinSet::new();
    for k in 0..3 {
        let s = s.clone();
        sends.spawn(async move {
            let emails: Vec<Email> = (k * 10..k * 10 + 10).map(|n| email(n, &to)).collect();
            let mut session = s.session();
            let mut replies = Vec::new();
            for (i, e) in emails.iter().enumerate() {
                replies.push(session.deliver(e, emails.get(i + 1)).await);
            }
            replies
        });
    }
    while let Some(r) = sends.join_next().await {
        for d in r.unwrap() {
            let d = d.unwrap();
            assert!(d.reply.starts_with("250"), "{d:?}");
            assert!(d.refused.is_empty(), "{d:?}");
        }
    }
    // Every transaction is dumped, with its envelope and the content as received.
    let deadline = Instant::now() + Duration::from_secs(10);
    let files = loop {
        let files: Vec<_> = walk(&dumps);
        if files.len() >= 30 || Instant::now() > deadline {
            break files;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(files.len(), 30, "{files:?}");
    let mut ids = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.contains(&format!("X-Mail-Args: <{FROM}>")), "{text}");
        assert!(text.contains("X-Rcpt-Args: <a@vpubnd.example>"), "{text}");
        assert!(text.contains("X-Rcpt-Args: <b@vpubnd.example>"), "{text}");
        assert!(
            text.contains("\n.mot dong bat dau bang dau cham\n.\nso"),
            "{text}"
        );
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .map(String::from);
        ids.push(id);
    }
    ids.sort();
    let want: Vec<_> = {
        let mut w: Vec<_> = (0..30)
            .map(|n| Some(format!("<{n}@vpubnd.example>")))
            .collect();
        w.sort();
        w
    };
    assert_eq!(ids, want);
}

/// Every file under `dir`, however deep.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
