//! The status pages and the confirmation links, through the real daemon over loopback HTTP:
//! a link from a real email in the outbox → GET shows the form and changes nothing → POST
//! records the completion → the next sweep sends nothing more for that office and
//! occurrence; forged, tampered and expired tokens get 4xx and record nothing; a task title
//! with `<script>` is escaped on every page; `promtool check metrics` accepts `/metrics`; an
//! office's calendar feed is `plan --format ics` and dies with the key.

#[path = "support/daemon.rs"]
mod daemon;
#[path = "support/skip.rs"]
mod skip;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SCRIPT_TITLE: &str = "<script>alert(1)</script> Các Trung tâm xây dựng kế hoạch";

struct Site {
    dir: tempfile::TempDir,
    base: String,
    agent: ureq::Agent,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Site {
    fn new() -> Site {
        Site::on(free_port())
    }

    fn on(port: u16) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let seed = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/khanh-hoa-2024.yaml"),
        )
        .unwrap();
        let old = "title: Các Trung tâm xây dựng kế hoạch cải cách hành chính năm 2024 của đơn vị và gửi về Phòng Hành chính – Tổ chức";
        assert!(seed.contains(old));
        let yaml = seed.replace(old, &format!("title: \"{SCRIPT_TITLE}\""))
            + &format!(
                "\nweb:\n  listen: 127.0.0.1:{port}\n  base_url: http://127.0.0.1:{port}/\n"
            );
        std::fs::write(dir.path().join("plan.yaml"), yaml).unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        Site {
            dir,
            base: format!("http://127.0.0.1:{port}"),
            agent,
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("plan.yaml")
    }

    /// Moves `web.listen` (and `base_url`) to `port` in the config file.
    fn move_to(&self, port: u16) {
        let yaml = std::fs::read_to_string(self.config()).unwrap();
        let at = yaml.rfind("\nweb:\n").unwrap();
        let moved = format!(
            "{}\nweb:\n  listen: 127.0.0.1:{port}\n  base_url: http://127.0.0.1:{port}/\n",
            &yaml[..at]
        );
        std::fs::write(self.config(), moved).unwrap();
    }

    fn answers(&self, port: u16) -> bool {
        self.agent
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .call()
            .is_ok_and(|r| r.status() == 200)
    }

    fn cli(&self, args: &[&str]) -> Output {
        daemon::nhacviec()
            .args(args)
            .arg("-c")
            .arg(self.config())
            .current_dir(self.dir.path())
            .output()
            .expect("run nhacviec")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn get(&self, path: &str) -> (u16, String, ureq::http::HeaderMap) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut r = self.agent.get(&url).call().expect("GET");
        let headers = r.headers().clone();
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap(),
            headers,
        )
    }

    fn post(&self, url: &str) -> (u16, String) {
        let mut r = self
            .agent
            .post(url)
            .send_form([("note", "đã gửi kế hoạch <b>")])
            .expect("POST");
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    }

    fn completions(&self) -> Vec<(String, String, String, String)> {
        let db = rusqlite::Connection::open(self.dir.path().join("nhacviec.db")).unwrap();
        let mut st = db
            .prepare("SELECT task, office, source, IFNULL(client, '') FROM completions ORDER BY id")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn plan_csv(&self, at: &str) -> String {
        self.ok(&["plan", "--at", at, "--days", "60", "--format", "csv"])
    }
}

/// The text parts of the emails in the outbox.
fn outbox(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir.join("outbox")) else {
        return Vec::new();
    };
    // Only the finished `.eml` files: the outbox writes each under a temporary name first.
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| {
            let raw = std::fs::read(&p).unwrap();
            let m = mail_parser::MessageParser::default()
                .parse(&raw)
                .expect("an email");
            (
                m.body_text(0).expect("text part").to_string(),
                m.body_html(0).expect("html part").to_string(),
            )
        })
        .collect()
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn link_in(text: &str) -> Option<String> {
    let at = text.find("Xác nhận đã hoàn thành: ")?;
    let rest = &text[at + "Xác nhận đã hoàn thành: ".len()..];
    Some(rest.split_whitespace().next()?.to_string())
}

/// A token signed with the real key but expired an hour before 2024-01-22.
fn expired_token(dir: &Path) -> String {
    let key = std::fs::read(dir.join("link-key")).expect("the generated key");
    let payload = format!(
        "v1\ntrung-tam-a\nTCTH.1\n2024-01-30\n{}",
        1_705_881_600 - 3_600
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.trim_ascii()).unwrap();
    mac.update(payload.as_bytes());
    format!(
        "{}.{}",
        B64.encode(&payload),
        B64.encode(mac.finalize().into_bytes())
    )
}

#[test]
fn a_link_from_an_email_confirms_completion_and_the_pages_show_it() {
    let s = Site::new();
    // A dry run writes nothing, not even the link key.
    s.ok(&["run", "--dry-run", "--at", "2024-01-22T08:00"]);
    assert!(!s.dir.path().join("link-key").exists());
    let plan_before = s.plan_csv("2024-01-24T08:00");
    let mut d = daemon::Spawn::new(&s.dir.path().join("daemon.log"))
        .args(["run", "--at", "2024-01-22T08:00", "-c"])
        .args([s.config()])
        .start();
    // The start-up sweep's emails: the one to trung-tam-a carries its link.
    let (text, html) = wait_for("trung-tam-a's email with a link", || {
        outbox(s.dir.path())
            .into_iter()
            .find(|(t, _)| t.contains("/confirm/") && t.contains("Kính gửi: Trung tâm A"))
    });
    let url = link_in(&text).expect("a confirmation link in the text part");
    assert!(url.starts_with(&s.base), "{url}");
    assert!(
        html.contains(&format!("href=\"{url}\"")),
        "the HTML part has it too"
    );
    assert!(
        !html.contains("<script>alert"),
        "the email escapes the title"
    );
    wait_for("the web server", || {
        s.agent.get(format!("{}/healthz", s.base)).call().ok()
    });

    // GET shows the form and changes nothing.
    let (code, page, headers) = s.get(&url);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("<form method=\"post\""), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)"), "{page}");
    assert!(!page.contains("<script>"), "{page}");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"));
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(s.completions().is_empty());
    assert_eq!(s.plan_csv("2024-01-24T08:00"), plan_before);

    // Forged, tampered and expired tokens: 4xx, nothing recorded, by GET or POST.
    let token = url.rsplit('/').next().unwrap().to_string();
    let (payload, mac) = token.split_once('.').unwrap();
    let mut p = B64.decode(payload).unwrap();
    let i = p.iter().position(|b| *b == b'a').unwrap();
    p[i] = b'b';
    let tampered = format!("{}.{mac}", B64.encode(&p));
    let forged = format!("{payload}.{}", B64.encode([7u8; 32]));
    let expired = expired_token(s.dir.path());
    for (bad, code) in [
        (tampered.as_str(), 403),
        (forged.as_str(), 403),
        ("not-a-token", 403),
        (expired.as_str(), 410),
    ] {
        let u = format!("{}/confirm/{bad}", s.base);
        let (got, page, _) = s.get(&u);
        assert_eq!(got, code, "GET {bad}: {page}");
        assert!(page.contains("id=\"error\""), "{page}");
        assert_eq!(s.post(&u).0, code, "POST {bad}");
    }
    assert!(s.completions().is_empty(), "nothing recorded");

    // POST records it, once.
    let (code, page) = s.post(&url);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("id=\"recorded\""), "{page}");
    let rows = s.completions();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (
            &rows[0].0[..],
            &rows[0].1[..],
            &rows[0].2[..],
            &rows[0].3[..]
        ),
        ("TCTH.1", "trung-tam-a", "link", "127.0.0.1")
    );
    let (code, again) = s.post(&url);
    assert_eq!(code, 200);
    assert!(again.contains("đã được ghi nhận trước đó"), "{again}");
    assert_eq!(s.completions().len(), 1);
    let (_, page, _) = s.get(&url);
    assert!(page.contains("id=\"already\""), "{page}");

    // The pages show it done, and escape the title everywhere.
    let (code, index, index_headers) = s.get("/");
    assert_eq!(code, 200);
    // The server's own time over the page, for `scripts/bench` and developer tools.
    let timing = index_headers["server-timing"].to_str().unwrap();
    let ms = timing
        .strip_prefix("render;dur=")
        .and_then(|d| d.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("Server-Timing: {timing}"));
    assert!(ms.is_finite() && ms >= 0.0, "Server-Timing: {timing}");
    let row = index
        .split("<tr>")
        .find(|r| r.contains(">TCTH.1<"))
        .expect("TCTH.1's row");
    assert!(row.contains("data-state=\"done\""), "{row}");
    assert!(row.contains("data-state=\"due_soon\"") || row.contains("data-state=\"overdue\""));
    let (_, office, _) = s.get("/office/trung-tam-a");
    let (_, filtered, _) = s.get("/?office=trung-tam-b&section=TCTH");
    let (_, log, _) = s.get("/log?task=TCTH.1");
    assert!(log.contains("đường dẫn trong thư"), "{log}");
    assert!(log.contains("&lt;b&gt;"), "the note is escaped: {log}");
    for page in [&index, &office, &filtered, &log] {
        assert!(
            !page.contains("<script>") && !page.contains("<b>"),
            "{page}"
        );
    }
    assert!(index.contains("&lt;script&gt;alert(1)"));
    assert!(office.contains("&lt;script&gt;alert(1)"));
    assert!(filtered.contains("&lt;script&gt;alert(1)"));
    assert_eq!(s.get("/office/nope").0, 404);
    // Bounded: a huge header, a huge target, a huge body.
    let big = "x".repeat(10_000);
    let r = s
        .agent
        .get(format!("{}/", s.base))
        .header("X-Big", &big)
        .call()
        .unwrap();
    assert_eq!(r.status(), 431);
    assert_eq!(s.get(&format!("/confirm/{}", "a".repeat(3_000))).0, 414);
    let r = s
        .agent
        .post(&url)
        .send_form([("note", "y".repeat(10_000).as_str())])
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(s.get("/style.css").0, 200);

    // /metrics: promtool accepts it.
    let (code, metrics, _) = s.get("/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("nhacviec_emails{status=\"sent\",office=\"trung-tam-a\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nhacviec_ledger_rows{table=\"completions\"} 1"),
        "{metrics}"
    );
    promtool(&metrics);

    d.signal("TERM");
    assert!(d.wait_exit_blocking(Duration::from_secs(30)).success());

    // `plan` and the next sweep leave trung-tam-a alone for that deadline; the others not.
    let plan_after = s.plan_csv("2024-01-24T08:00");
    assert!(plan_before.contains("TCTH.1,trung-tam-a"));
    assert!(!plan_after.contains("TCTH.1,trung-tam-a"), "{plan_after}");
    assert!(plan_after.contains("TCTH.1,trung-tam-b"));
    let before = outbox(s.dir.path()).len();
    s.ok(&["run", "--once", "--at", "2024-01-24T08:00"]);
    assert!(
        outbox(s.dir.path()).len() > before,
        "the other centres are still reminded"
    );
    let trail = s.ok(&["log", "--completions", "--format", "csv"]);
    assert!(
        trail.contains(",TCTH.1,trung-tam-a,2024-01-30,2024-01-22,done,link,127.0.0.1,"),
        "{trail}"
    );
    let log = s.ok(&["log", "--all", "--format", "csv", "--office", "trung-tam-a"]);
    assert_eq!(
        log.matches("TCTH.1").count(),
        1,
        "only the first reminder: {log}"
    );
}

/// `promtool check metrics` on `text`: skipped (failing under CI) without promtool.
fn promtool(text: &str) {
    use std::io::Write as _;
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        skip::skip_or_fail("promtool is not installed (Debian package `prometheus`)");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_port_in_use_stops_the_start_and_a_reload_rebinds_or_keeps_the_old_listener() {
    // In use at start: a clear error, and the daemon does not run.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let s = Site::on(port);
    let mut d = daemon::Spawn::new(&s.dir.path().join("refused.log"))
        .args(["run", "--at", "2024-01-22T08:00", "-c"])
        .args([s.config()])
        .start();
    let status = d.wait_exit_blocking(Duration::from_secs(30));
    assert!(!status.success());
    assert!(
        d.log_text()
            .contains(&format!("cannot listen on 127.0.0.1:{port} (web.listen)")),
        "{}",
        d.log_text()
    );
    drop(taken);

    // Running on A; a reload moves it to B; a reload to a port in use keeps B.
    let a = free_port();
    s.move_to(a);
    let mut d = daemon::Spawn::new(&s.dir.path().join("daemon.log"))
        .args(["run", "--at", "2024-01-22T08:00", "-c"])
        .args([s.config()])
        .start();
    wait_for("the server on A", || s.answers(a).then_some(()));
    let b = free_port();
    s.move_to(b);
    d.signal("HUP");
    wait_for("the server on B", || s.answers(b).then_some(()));
    wait_for("A closed", || (!s.answers(a)).then_some(()));
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    s.move_to(busy.local_addr().unwrap().port());
    d.signal("HUP");
    wait_for("the refusal in the log", || {
        d.log_text().contains("web server not moved").then_some(())
    });
    assert!(
        d.log_text()
            .contains(&format!("still listening on 127.0.0.1:{b}"))
    );
    assert!(s.answers(b), "the old listener is kept");
    d.signal("TERM");
    assert!(d.wait_exit_blocking(Duration::from_secs(30)).success());
}

/// Headless Chromium, the browser of the Debian package `chromium`, if installed.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Runs headless Chromium on `url` with `args` (a profile in `dir`), killed after a minute.
fn browse(browser: &str, dir: &Path, args: &[String], url: &str) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-breakpad",
            "--disable-crash-reporter",
            "--window-size=412,915",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let end = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("chromium did not finish with {url} in a minute");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

#[test]
fn a_real_browser_shows_the_progress_page_and_the_confirmation_form() {
    let Some(browser) = chromium() else {
        skip::skip_or_fail("chromium is not installed (Debian package `chromium`)");
        return;
    };
    let s = Site::new();
    s.ok(&[
        "done",
        "TCTH.1",
        "--office",
        "trung-tam-b",
        "--on",
        "2024-01-20",
    ]);
    let mut d = daemon::Spawn::new(&s.dir.path().join("daemon.log"))
        .args(["run", "--at", "2024-01-22T08:00", "-c"])
        .args([s.config()])
        .start();
    let (text, _) = wait_for("trung-tam-a's email with a link", || {
        outbox(s.dir.path())
            .into_iter()
            .find(|(t, _)| t.contains("/confirm/") && t.contains("Kính gửi: Trung tâm A"))
    });
    let url = link_in(&text).unwrap();
    wait_for("the web server", || {
        s.answers(s.base.rsplit(':').next().unwrap().parse().unwrap())
            .then_some(())
    });

    let dom = browse(
        browser,
        s.dir.path(),
        &["--dump-dom".into()],
        &format!("{}/", s.base),
    );
    let row = dom
        .split("<tr>")
        .find(|r| r.contains(">TCTH.1<"))
        .unwrap_or_else(|| panic!("TCTH.1's row in {dom}"));
    assert!(
        row.contains("data-state=\"done\""),
        "trung-tam-b is done: {row}"
    );
    assert!(
        row.contains("data-state=\"due_soon\""),
        "the others are due soon: {row}"
    );
    assert!(dom.contains("id=\"count-done\">1<"), "{dom}");
    assert!(!dom.contains("<script>alert"), "the title stays text");

    let dom = browse(browser, s.dir.path(), &["--dump-dom".into()], &url);
    assert!(dom.contains("<form method=\"post\""), "{dom}");
    assert!(
        dom.contains("Xác nhận đơn vị đã hoàn thành nhiệm vụ này"),
        "{dom}"
    );
    let shot = s.dir.path().join("confirm.png");
    browse(
        browser,
        s.dir.path(),
        &[format!("--screenshot={}", shot.display())],
        &url,
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 2_000,
        "{} bytes",
        png.len()
    );
    assert!(
        s.completions().iter().all(|c| c.2 == "cli"),
        "the browser's GET recorded nothing"
    );
    d.signal("TERM");
    assert!(d.wait_exit_blocking(Duration::from_secs(30)).success());
}

/// `office-id<TAB>URL` of `nhacviec web feeds`.
fn feeds(s: &Site) -> Vec<(String, String)> {
    s.ok(&["web", "feeds"])
        .lines()
        .map(|l| {
            let (id, url) = l.split_once('\t').expect("office-id<TAB>URL");
            (id.to_string(), url.to_string())
        })
        .collect()
}

/// The feed without its DTSTAMP lines (when it was made).
fn undated(ics: &str) -> String {
    ics.split("\r\n")
        .filter(|l| !l.starts_with("DTSTAMP:"))
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// How many events Python's `icalendar` reads in `ics`; `None`: it is missing (skipped).
fn icalendar_events(dir: &Path, ics: &str) -> Option<usize> {
    let python = ["/usr/bin/python3", "python3"].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import icalendar"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(python) = python else {
        skip::skip_or_fail("python3-icalendar is missing (apt-get install python3-icalendar)");
        return None;
    };
    let path = dir.join("feed.ics");
    std::fs::write(&path, ics).unwrap();
    let out = Command::new(python)
        .args([
            "-c",
            "import sys, icalendar\nc = icalendar.Calendar.from_ical(open(sys.argv[1], 'rb').read())\nprint(len(c.walk('VEVENT')))",
            path.to_str().unwrap(),
        ])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "icalendar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap(),
    )
}

#[test]
fn an_office_subscribes_to_its_feed_and_a_new_key_revokes_it() {
    let s = Site::new();
    // A completion in the ledger: the feed shows it as the CLI does.
    s.ok(&[
        "done",
        "TCTH.1",
        "--office",
        "trung-tam-a",
        "--on",
        "2024-01-25",
    ]);
    let start = |log: &str| {
        let d = daemon::Spawn::new(&s.dir.path().join(log))
            .args(["run", "--at", "2024-01-22T08:00", "-c"])
            .args([s.config()])
            .start();
        wait_for("the web server", || {
            s.agent.get(format!("{}/healthz", s.base)).call().ok()
        });
        d
    };
    let mut d = start("daemon.log");
    let urls = feeds(&s);
    assert!(urls.len() > 1, "{urls:?}");
    let (_, url) = urls.iter().find(|(id, _)| id == "trung-tam-a").unwrap();
    assert!(
        url.starts_with(&format!("{}/ics/office/trung-tam-a.ics?token=", s.base)),
        "{url}"
    );

    // The feed is the CLI's, but for the moment it was made.
    let (code, body, headers) = s.get(url);
    assert_eq!(code, 200, "{body}");
    assert_eq!(headers["content-type"], "text/calendar; charset=utf-8");
    let cli = s.ok(&["plan", "--format", "ics", "--office", "trung-tam-a"]);
    assert!(
        cli.replace("\r\n ", "")
            .contains("Đã hoàn thành ngày 25/01/2024"),
        "{cli}"
    );
    assert_eq!(undated(&body), undated(&cli));
    if let Some(n) = icalendar_events(s.dir.path(), &body) {
        assert!(n > 0);
        assert_eq!(n, body.matches("BEGIN:VEVENT").count());
    }

    // A forged token, another office's, none: 403 and nothing of the plan.
    let (path, _) = url.split_once("?token=").unwrap();
    let (_, other) = urls.iter().find(|(id, _)| id != "trung-tam-a").unwrap();
    let other_token = other.split_once("?token=").unwrap().1;
    for bad in [
        format!("{path}?token={}", B64.encode([7u8; 32])),
        format!("{path}?token={other_token}"),
        format!("{path}?token=not-a-token!"),
        path.to_string(),
    ] {
        let (code, body, _) = s.get(&bad);
        assert_eq!(code, 403, "{bad}: {body}");
        assert!(
            !body.contains("VCALENDAR") && !body.contains("TCTH"),
            "{body}"
        );
    }
    // A well-signed token for an office the plan does not have: 404.
    let key = std::fs::read(s.dir.path().join("link-key")).expect("the generated key");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.trim_ascii()).unwrap();
    mac.update(b"ics\nno-such-office");
    let ghost = format!(
        "{}/ics/office/no-such-office.ics?token={}",
        s.base,
        B64.encode(mac.finalize().into_bytes())
    );
    assert_eq!(s.get(&ghost).0, 404);

    // A new key and a restart: the old address is refused, the new one works.
    d.signal("TERM");
    assert!(d.wait_exit_blocking(Duration::from_secs(30)).success());
    std::fs::write(
        s.dir.path().join("rotated-key"),
        "a new random key, rotated by the clerk\n",
    )
    .unwrap();
    let yaml = std::fs::read_to_string(s.config()).unwrap();
    std::fs::write(
        s.config(),
        yaml.trim_end().to_string() + "\n  link_key_file: rotated-key\n",
    )
    .unwrap();
    let mut d = start("daemon2.log");
    let (code, body, _) = s.get(url);
    assert_eq!(code, 403, "{body}");
    let (_, new_url) = feeds(&s)
        .into_iter()
        .find(|(id, _)| id == "trung-tam-a")
        .unwrap();
    assert_ne!(&new_url, url);
    let (code, body, _) = s.get(&new_url);
    assert_eq!(code, 200);
    assert_eq!(undated(&body), undated(&cli));

    // Rotated again, and a reload instead of a restart: the pages check with the new key
    // at once (the reload's emails sign with it too).
    std::fs::write(
        s.dir.path().join("rotated-key"),
        "another random key, rotated on a reload\n",
    )
    .unwrap();
    d.signal("HUP");
    wait_for("the reload", || {
        let log = std::fs::read_to_string(s.dir.path().join("daemon2.log")).unwrap_or_default();
        log.contains("khóa liên kết đã đổi").then_some(())
    });
    let (code, body, _) = s.get(&new_url);
    assert_eq!(code, 403, "{body}");
    let (_, newest) = feeds(&s)
        .into_iter()
        .find(|(id, _)| id == "trung-tam-a")
        .unwrap();
    assert_ne!(newest, new_url);
    let (code, body, _) = s.get(&newest);
    assert_eq!(code, 200, "{body}");
    d.signal("TERM");
    assert!(d.wait_exit_blocking(Duration::from_secs(30)).success());
}
