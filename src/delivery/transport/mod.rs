//! Delivering a composed email: over SMTP, or as an `.eml` file into an outbox folder.
//!
//! The SMTP password is read once, in [`Sender::new`], from the source the config names; it
//! never appears in a log line, an error or a `Debug` output.

mod outbox;
mod smtp;
mod transaction;

use crate::delivery::email::Email;
use crate::plan::config::{Config, SecretSource, Transport};
use chrono_tz::Tz;
use lettre::transport::smtp::authentication::Credentials;
use outbox::write_outbox;
#[cfg(test)]
use smtp::MAX_TIMEOUT;
use smtp::{Pool, PoolError, classify, step_timeout};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What the process environment offers for secrets. Passed in, so tests need not change
/// the process environment.
#[derive(Clone, Default)]
pub struct SecretEnv {
    /// systemd's `$CREDENTIALS_DIRECTORY` (`LoadCredential=`).
    pub credentials_directory: Option<PathBuf>,
    /// Environment variables, for `password_env:`.
    pub vars: BTreeMap<String, String>,
}

impl SecretEnv {
    pub fn from_process() -> Self {
        Self {
            credentials_directory: std::env::var_os("CREDENTIALS_DIRECTORY")
                .map(PathBuf::from)
                .filter(|p| !p.as_os_str().is_empty()),
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }
}

impl std::fmt::Debug for SecretEnv {
    // The values may be secrets: only the names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretEnv")
            .field("credentials_directory", &self.credentials_directory)
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a [`Sender`] could not be built. Never contains the password.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{}", crate::tr!("không đọc được mật khẩu SMTP từ {}: {}", "cannot read the SMTP password from {}: {}", what, detail))]
    Secret { what: String, detail: String },
    #[error("{}", crate::tr!("mật khẩu SMTP từ {} trống", "the SMTP password from {} is empty", .0))]
    EmptySecret(String),
    #[error("{}", crate::t!("đã cấu hình mật khẩu SMTP nhưng không có `username`", "an SMTP password is configured but no `username`"))]
    PasswordWithoutUsername,
    #[error("{}", crate::tr!("không thiết lập được TLS cho {}: {}", "cannot set up TLS for {}: {}", host, detail))]
    Tls { host: String, detail: String },
}

/// Why one email was not delivered. [`SendError::is_transient`] says whether trying again
/// later may help.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The server answered with a negative reply; code and text as it sent them.
    #[error("{}", crate::tr!("máy chủ thư từ chối email: {} {}", "the mail server refused the email: {} {}", code, text))]
    Rejected { code: u16, text: String },
    #[error("{}", crate::tr!("không kết nối được tới máy chủ thư {}: {}", "cannot connect to the mail server {}: {}", server, detail))]
    Connection { server: String, detail: String },
    #[error("{}", crate::tr!("TLS với máy chủ thư {} thất bại: {}", "TLS with the mail server {} failed: {}", server, detail))]
    Tls { server: String, detail: String },
    #[error("{}", crate::tr!("máy chủ thư {} không trả lời trong {} giây", "the mail server {} did not answer within {} s", server, .after.as_secs()))]
    Timeout { server: String, after: Duration },
    /// The email cannot go as it is (e.g. the server lacks a needed extension).
    #[error("{}", crate::tr!("không gửi được email tới {}: {}", "the email cannot be sent to {}: {}", server, detail))]
    Refused { server: String, detail: String },
    /// The server refused the login (AUTH, e.g. `535`): the password is wrong or was
    /// rotated. Transient: the reminders wait for a fixed password; the admin is alerted.
    #[error("{}", crate::tr!("máy chủ thư {} từ chối đăng nhập: {} {}", "the mail server {} refused the login: {} {}", server, code, text))]
    Auth {
        server: String,
        code: u16,
        text: String,
    },
    /// The content went out but the server did not confirm it (a timeout or a lost
    /// connection after the final `.`): it may have been delivered. Sent again under the
    /// same Message-ID so the receiver can recognise a duplicate.
    #[error("{} ({}: {})", unknown(), server, detail)]
    Unknown { server: String, detail: String },
    #[error("{}", crate::tr!("không ghi được vào hộp thư đi {}: {}", "cannot write to the outbox {}: {}", path.display(), source))]
    Outbox {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SendError {
    /// Worth trying again: no connection, a timeout, TLS setup, a 4xx reply, a full disk.
    /// Permanent: a 5xx reply (bad address, message refused) or an email the server cannot
    /// take as it is.
    pub fn is_transient(&self) -> bool {
        match self {
            SendError::Rejected { code, .. } => (400..500).contains(code),
            SendError::Connection { .. }
            | SendError::Tls { .. }
            | SendError::Timeout { .. }
            | SendError::Outbox { .. }
            | SendError::Auth { .. }
            | SendError::Unknown { .. } => true,
            SendError::Refused { .. } => false,
        }
    }

    /// The server's reply code, when it answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            SendError::Rejected { code, .. } | SendError::Auth { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Delivers emails per `mail.transport`. Built once; clones share the same connection pool,
/// so a sweep can have several sends in flight.
#[derive(Clone)]
pub struct Sender {
    inner: Arc<Inner>,
}

enum Inner {
    Outbox {
        dir: PathBuf,
        tz: Tz,
    },
    Smtp(Box<Pool>),
    /// Accepts every email and delivers none: `simulate`.
    Discard,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.inner {
            Inner::Outbox { dir, .. } => f.debug_struct("Sender").field("outbox", dir).finish(),
            Inner::Discard => f.debug_struct("Sender").field("discard", &true).finish(),
            Inner::Smtp(pool) => f
                .debug_struct("Sender")
                .field("host", &pool.cfg.host)
                .field("port", &pool.cfg.port)
                .field("security", &pool.cfg.security)
                .field("username", &pool.cfg.username)
                .field(
                    "password",
                    &if pool.credentials.is_some() {
                        "<set>"
                    } else {
                        "<none>"
                    },
                )
                .finish(),
        }
    }
}

/// Reads a secret and drops one trailing newline (files and `echo` add one).
pub fn read_secret(source: &SecretSource, env: &SecretEnv) -> Result<String, TransportError> {
    let from_file = |path: &Path, what: String| {
        std::fs::read_to_string(path).map_err(|e| TransportError::Secret {
            what,
            detail: e.to_string(),
        })
    };
    let (mut s, what) = match source {
        SecretSource::File(p) => {
            let what = crate::tr!("tệp {}", "the file {}", p.display());
            (from_file(p, what.clone())?, what)
        }
        SecretSource::Credential(name) => {
            let what = crate::tr!(
                "thông tin xác thực systemd `{name}`",
                "the systemd credential `{name}`"
            );
            let Some(dir) = &env.credentials_directory else {
                return Err(TransportError::Secret {
                    what,
                    detail: crate::t!(
                        "$CREDENTIALS_DIRECTORY chưa được đặt: thêm `LoadCredential=` vào unit của dịch vụ",
                        "$CREDENTIALS_DIRECTORY is not set: add `LoadCredential=` to the service unit"
                    )
                    .into(),
                });
            };
            (from_file(&dir.join(name), what.clone())?, what)
        }
        SecretSource::Env(var) => {
            let what = crate::tr!("biến môi trường {var}", "the environment variable {var}");
            match env.vars.get(var) {
                Some(v) => (v.clone(), what),
                None => {
                    return Err(TransportError::Secret {
                        what,
                        detail: "it is not set".into(),
                    });
                }
            }
        }
    };
    if s.ends_with("\r\n") {
        s.truncate(s.len() - 2);
    } else if s.ends_with('\n') {
        s.truncate(s.len() - 1);
    }
    if s.is_empty() {
        return Err(TransportError::EmptySecret(what));
    }
    Ok(s)
}

/// How a server answered a DATA that it did not confirm: the email may or may not have gone.
pub fn unknown() -> &'static str {
    crate::t!(
        "không rõ kết quả: máy chủ không trả lời sau khi thư đã được gửi",
        "outcome unknown: the server did not answer after the message was sent"
    )
}

/// One recipient the server refused at RCPT TO (or whose part of a split envelope failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub address: String,
    pub code: u16,
    pub text: String,
}

impl Refusal {
    /// A 4xx refusal: this recipient may take the email later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (address, code, text) = (&self.address, self.code, &self.text);
        let s = crate::tr!(
            "<{address}> bị từ chối: {code} {text}",
            "<{address}> refused: {code} {text}"
        );
        f.write_str(&s)
    }
}

/// An email the server accepted for at least one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The server's reply to the content (`250 …`; several, `; `-separated, for a split
    /// envelope), or the outbox file's path.
    pub reply: String,
    /// The recipients that did not get it, with the server's reply for each.
    pub refused: Vec<Refusal>,
}

impl Delivery {
    /// The reply, followed by each refused recipient.
    pub fn describe(&self) -> String {
        let mut s = self.reply.clone();
        for r in &self.refused {
            s.push_str("; ");
            s.push_str(&r.to_string());
        }
        s
    }
}

/// The "reply" of [`Sender::discard`].
pub const DISCARDED: &str = "not sent: simulation";

impl Sender {
    /// Reads the password (if any) and prepares TLS; opens no connection yet.
    pub fn new(cfg: &Config, env: &SecretEnv) -> Result<Sender, TransportError> {
        let inner = match &cfg.mail.transport {
            Transport::Outbox(dir) => Inner::Outbox {
                dir: dir.clone(),
                tz: cfg.schedule.timezone,
            },
            Transport::Smtp(smtp) => {
                let credentials = match (&smtp.username, &smtp.password) {
                    (Some(u), Some(p)) => Some(Credentials::new(u.clone(), read_secret(p, env)?)),
                    (None, Some(_)) => return Err(TransportError::PasswordWithoutUsername),
                    // The config already warned about a username without a password.
                    (_, None) => None,
                };
                Inner::Smtp(Box::new(Pool::new(smtp, credentials)?))
            }
        };
        Ok(Sender {
            inner: Arc::new(inner),
        })
    }

    /// A transport that accepts every email and delivers none, writing nothing anywhere:
    /// `simulate` runs the real sweep through it.
    pub fn discard() -> Sender {
        Sender {
            inner: Arc::new(Inner::Discard),
        }
    }

    /// How many emails may be in flight at once: the SMTP pool's size; one for the outbox.
    pub fn concurrency(&self) -> usize {
        match &*self.inner {
            Inner::Outbox { .. } | Inner::Discard => 1,
            Inner::Smtp(pool) => pool.cfg.pool_size.max(1) as usize,
        }
    }

    /// Delivers one email. Returns the server's reply (`250 …`) followed by any refused
    /// recipient, or the outbox file's path.
    pub async fn send(&self, msg: &Email) -> Result<String, SendError> {
        self.deliver(msg).await.map(|d| d.describe())
    }

    /// Delivers one email to every recipient the server takes: see [`Delivery`].
    pub async fn deliver(&self, msg: &Email) -> Result<Delivery, SendError> {
        self.session().deliver(msg, None).await
    }

    /// A run of emails sent one after another over one connection of the pool: see
    /// [`Session::deliver`].
    pub fn session(&self) -> Session {
        Session {
            sender: self.clone(),
            held: None,
        }
    }
}

/// One connection's run of emails: each sent over the connection the one before used, and
/// an email's envelope sent with the content of the one before it when the caller names it
/// in time (one round trip per email instead of two, see [`transaction`]). Dropped, it
/// gives an idle connection back to the pool and closes one primed for an email that was
/// not sent after all.
pub struct Session {
    sender: Sender,
    held: Option<smtp::Conn>,
}

impl Session {
    /// Delivers `msg` to every recipient the server takes: see [`Delivery`]. `next`, when
    /// given, is the email this session sends next; its envelope may go out with `msg`'s
    /// content. Sending another instead is safe (that connection is closed, and nothing of
    /// `next` was delivered), only slower.
    pub async fn deliver(
        &mut self,
        msg: &Email,
        next: Option<&Email>,
    ) -> Result<Delivery, SendError> {
        match &*self.sender.inner {
            Inner::Outbox { dir, tz } => Ok(Delivery {
                reply: write_outbox(dir, *tz, msg).await?,
                refused: Vec::new(),
            }),
            Inner::Discard => Ok(Delivery {
                reply: DISCARDED.to_string(),
                refused: Vec::new(),
            }),
            Inner::Smtp(pool) => {
                let cfg = &pool.cfg;
                let server = format!("{}:{}", cfg.host, cfg.port);
                // Bounds the whole exchange: connect, EHLO, TLS, AUTH, envelope and data.
                // On a timeout the connection, abandoned mid-command, is dropped with the
                // future that held it: it never goes back to the pool.
                let step = step_timeout(cfg.timeout);
                let bound = step.saturating_mul(2);
                let data_sent = AtomicBool::new(false);
                let send = pool.send(&mut self.held, msg, next, &data_sent);
                let result = tokio::time::timeout(bound, send).await;
                match result {
                    Ok(Ok(delivery)) => Ok(delivery),
                    Ok(Err(PoolError::Smtp(e))) => Err(classify(&server, step, &e)),
                    Ok(Err(PoolError::Connect(e))) => Err(SendError::Connection {
                        server,
                        detail: e.to_string(),
                    }),
                    Ok(Err(PoolError::ConnectTimeout)) => Err(SendError::Timeout {
                        server,
                        after: step,
                    }),
                    Ok(Err(PoolError::Tls(detail))) => Err(SendError::Tls {
                        server,
                        detail: sanitize_reply(&detail),
                    }),
                    Ok(Err(PoolError::Client(detail))) => {
                        Err(SendError::Refused { server, detail })
                    }
                    Ok(Err(PoolError::Unknown(e))) => Err(SendError::Unknown {
                        server,
                        detail: sanitize_reply(&e.to_string()),
                    }),
                    Ok(Err(PoolError::Auth { code, text })) => {
                        Err(SendError::Auth { server, code, text })
                    }
                    Ok(Err(PoolError::AllRefused { code, text })) => {
                        Err(SendError::Rejected { code, text })
                    }
                    Err(_) if data_sent.load(Ordering::SeqCst) => Err(SendError::Unknown {
                        server,
                        detail: format!("no reply within {} s", bound.as_secs()),
                    }),
                    Err(_) => Err(SendError::Timeout {
                        server,
                        after: bound,
                    }),
                }
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let (Some(conn), Inner::Smtp(pool)) = (self.held.take(), &*self.sender.inner) {
            pool.checkin(conn);
        }
    }
}

/// An SMTP server's reply text made safe for a terminal and a log: every control character
/// (C0, DEL, C1) becomes `^X`-style caret notation (`ESC` → `^[`, `DEL` → `^?`) or, for C1,
/// `\u{80}`-style escapes, so a hostile server cannot move the cursor, recolour the
/// terminal or forge log lines.
pub fn sanitize_reply(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match u32::from(c) {
            n @ 0x00..=0x1f => {
                out.push('^');
                out.push(char::from(b'@'.wrapping_add(n as u8)));
            }
            0x7f => out.push_str("^?"),
            n @ 0x80..=0x9f => out.push_str(&format!("\\u{{{n:x}}}")),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::Message;

    fn env_with(dir: Option<&Path>, vars: &[(&str, &str)]) -> SecretEnv {
        SecretEnv {
            credentials_directory: dir.map(Path::to_path_buf),
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn secrets_come_from_file_credential_or_env_and_lose_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n\n").unwrap();
        std::fs::write(dir.path().join("smtp-password"), "cred-pw\r\n").unwrap();
        let env = env_with(Some(dir.path()), &[("SMTP_PW", "env-pw\n")]);
        assert_eq!(
            read_secret(&SecretSource::File(dir.path().join("pw")), &env).unwrap(),
            "s3cret\n"
        );
        assert_eq!(
            read_secret(&SecretSource::Credential("smtp-password".into()), &env).unwrap(),
            "cred-pw"
        );
        assert_eq!(
            read_secret(&SecretSource::Env("SMTP_PW".into()), &env).unwrap(),
            "env-pw"
        );
        let e = read_secret(
            &SecretSource::Credential("smtp-password".into()),
            &SecretEnv::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("LoadCredential"), "{e}");
        let e = read_secret(&SecretSource::Env("NOPE".into()), &env).unwrap_err();
        assert!(e.to_string().contains("NOPE"), "{e}");
    }

    #[tokio::test]
    async fn the_password_never_shows() {
        let env = env_with(None, &[("SMTP_PW", "hunter2")]);
        assert!(!format!("{env:?}").contains("hunter2"));
        let src = "offices:\n  a:\n    name: A\n    email: a@x.example\ntasks: []\nmail:\n  transport:\n    smtp:\n      host: mail.example.org\n      username: nv\n      password_env: SMTP_PW\n";
        let cfg = crate::plan::config::from_source(
            src,
            Path::new("t.yaml"),
            &crate::plan::config::Env::default(),
        )
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config;
        let s = Sender::new(&cfg, &env).unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<set>"), "{shown}");
    }

    #[test]
    fn transient_and_permanent() {
        let r = |code| SendError::Rejected {
            code,
            text: "x".into(),
        };
        assert!(r(451).is_transient());
        assert!(!r(550).is_transient());
        assert!(
            SendError::Timeout {
                server: "s".into(),
                after: Duration::from_secs(1)
            }
            .is_transient()
        );
    }

    #[test]
    fn replies_lose_their_control_characters() {
        let hostile = "250 OK\u{1b}[2J\u{1b}]0;pwned\u{7}\r\nfake log line\u{7f}\u{9b}31m\tend";
        let clean = sanitize_reply(hostile);
        assert_eq!(
            clean,
            "250 OK^[[2J^[]0;pwned^G^M^Jfake log line^?\\u{9b}31m^Iend"
        );
        assert!(!clean.chars().any(char::is_control), "{clean:?}");
        assert_eq!(sanitize_reply("250 2.0.0 Đã nhận"), "250 2.0.0 Đã nhận");
    }

    #[test]
    fn huge_timeouts_are_clamped() {
        // `timeout: 18446744073709551615s` made `timeout * 2` overflow in every send task.
        let huge = Duration::from_secs(u64::MAX);
        assert_eq!(step_timeout(huge), MAX_TIMEOUT);
        assert_eq!(step_timeout(huge).saturating_mul(2), MAX_TIMEOUT * 2);
        assert_eq!(step_timeout(Duration::ZERO), Duration::from_millis(1));
    }

    #[tokio::test]
    async fn a_huge_timeout_in_the_config_sends_without_panicking() {
        let src = "offices:\n  a:\n    name: A\n    email: a@x.example\ntasks: []\nmail:\n  transport:\n    smtp:\n      host: 127.0.0.1\n      port: 1\n";
        let mut cfg = crate::plan::config::from_source(
            src,
            Path::new("t.yaml"),
            &crate::plan::config::Env::default(),
        )
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config;
        // `check` refuses a timeout over an hour; the sender must cope with one all the same.
        if let crate::plan::config::Transport::Smtp(smtp) = &mut cfg.mail.transport {
            smtp.timeout = std::time::Duration::from_secs(u64::MAX);
        }
        let s = Sender::new(&cfg, &SecretEnv::default()).unwrap();
        let msg = Message::builder()
            .from("nv@vpubnd.example".parse().unwrap())
            .to("a@x.example".parse().unwrap())
            .subject("t")
            .body(String::from("x"))
            .unwrap();
        let msg = Email::from(msg);
        // Nothing listens on port 1: a connection error, not a panic.
        let e = s.send(&msg).await.unwrap_err();
        assert!(e.is_transient(), "{e}");
    }

    #[tokio::test]
    async fn the_outbox_file_is_whole_and_no_temporary_file_remains() {
        let dir = tempfile::tempdir().unwrap();
        let msg = Message::builder()
            .message_id(Some("<abc@vpubnd.example>".into()))
            .from("nv@vpubnd.example".parse().unwrap())
            .to("a@x.example".parse().unwrap())
            .subject("t")
            .body(String::from("nội dung"))
            .unwrap();
        let want = msg.formatted();
        let msg = Email::from(msg);
        let out = dir.path().join("outbox");
        let path = write_outbox(&out, chrono_tz::Asia::Ho_Chi_Minh, &msg)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), want);
        let names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].ends_with("-abc.eml"), "{names:?}");
        // A folder that cannot be created is a transient error, not a panic or a success.
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, "x").unwrap();
        let e = write_outbox(&blocked.join("sub"), chrono_tz::Asia::Ho_Chi_Minh, &msg)
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e}");
    }
}
