//! Delivering a composed email: over SMTP, or as an `.eml` file into an outbox folder.
//!
//! The SMTP password is read once, in [`Sender::new`], from the source the config names; it
//! never appears in a log line, an error or a `Debug` output.

use crate::config::{Config, SecretSource, Security, Smtp, Transport};
use chrono_tz::Tz;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
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
    #[error("cannot read the SMTP password from {what}: {detail}")]
    Secret { what: String, detail: String },
    #[error("the SMTP password from {0} is empty")]
    EmptySecret(String),
    #[error("an SMTP password is configured but no `username`")]
    PasswordWithoutUsername,
    #[error("cannot set up TLS for {host}: {detail}")]
    Tls { host: String, detail: String },
}

/// Why one email was not delivered. [`SendError::is_transient`] says whether trying again
/// later may help.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The server answered with a negative reply; code and text as it sent them.
    #[error("the mail server refused the email: {code} {text}")]
    Rejected { code: u16, text: String },
    #[error("cannot connect to the mail server {server}: {detail}")]
    Connection { server: String, detail: String },
    #[error("TLS with the mail server {server} failed: {detail}")]
    Tls { server: String, detail: String },
    #[error("the mail server {server} did not answer within {} s", .after.as_secs())]
    Timeout { server: String, after: Duration },
    /// The email cannot go as it is (e.g. the server lacks a needed extension).
    #[error("the email cannot be sent to {server}: {detail}")]
    Refused { server: String, detail: String },
    #[error("cannot write to the outbox {}: {source}", path.display())]
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
            | SendError::Outbox { .. } => true,
            SendError::Refused { .. } => false,
        }
    }

    /// The server's reply code, when it answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            SendError::Rejected { code, .. } => Some(*code),
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
    Smtp {
        cfg: Smtp,
        credentials: Option<Credentials>,
        /// Replaced after a timeout: a connection abandoned mid-command must not go back
        /// into the pool, where lettre's liveness check would wait on it.
        transport: Mutex<AsyncSmtpTransport<Tokio1Executor>>,
    },
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.inner {
            Inner::Outbox { dir, .. } => f.debug_struct("Sender").field("outbox", dir).finish(),
            Inner::Smtp {
                cfg, credentials, ..
            } => f
                .debug_struct("Sender")
                .field("host", &cfg.host)
                .field("port", &cfg.port)
                .field("security", &cfg.security)
                .field("username", &cfg.username)
                .field(
                    "password",
                    &if credentials.is_some() {
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
            let what = format!("the file {}", p.display());
            (from_file(p, what.clone())?, what)
        }
        SecretSource::Credential(name) => {
            let what = format!("the systemd credential `{name}`");
            let Some(dir) = &env.credentials_directory else {
                return Err(TransportError::Secret {
                    what,
                    detail: "$CREDENTIALS_DIRECTORY is not set: add `LoadCredential=` to the service unit".into(),
                });
            };
            (from_file(&dir.join(name), what.clone())?, what)
        }
        SecretSource::Env(var) => {
            let what = format!("the environment variable {var}");
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

fn build_smtp(
    smtp: &Smtp,
    credentials: Option<&Credentials>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, TransportError> {
    let tls_err = |e: lettre::transport::smtp::Error| TransportError::Tls {
        host: smtp.host.clone(),
        detail: e.to_string(),
    };
    // The public roots, plus the province's own CA when `ca_file` names one.
    let extra_root = match &smtp.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| TransportError::Tls {
                host: smtp.host.clone(),
                detail: format!("cannot read the CA certificate {}: {e}", path.display()),
            })?;
            Some(
                Certificate::from_pem(&pem).map_err(|e| TransportError::Tls {
                    host: smtp.host.clone(),
                    detail: format!("{} is not a PEM certificate: {e}", path.display()),
                })?,
            )
        }
        None => None,
    };
    let tls = || {
        let mut b = TlsParameters::builder(smtp.host.clone());
        if let Some(c) = &extra_root {
            b = b.add_root_certificate(c.clone());
        }
        b.build_rustls().map_err(tls_err)
    };
    // What `starttls_relay` and `relay` do, with the port and pool set below.
    let builder = match smtp.security {
        Security::StartTls => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .tls(Tls::Required(tls()?)),
        Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .tls(Tls::Wrapper(tls()?)),
        Security::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
    };
    let mut builder = builder
        .port(smtp.port)
        .timeout(Some(smtp.timeout))
        .pool_config(PoolConfig::new().max_size(smtp.pool_size));
    if let Some(c) = credentials {
        builder = builder.credentials(c.clone());
    }
    Ok(builder.build())
}

impl Sender {
    /// Must be called inside a Tokio runtime: lettre's SMTP pool starts its idle-connection
    /// reaper as a task.
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
                Inner::Smtp {
                    transport: Mutex::new(build_smtp(smtp, credentials.as_ref())?),
                    cfg: smtp.clone(),
                    credentials,
                }
            }
        };
        Ok(Sender {
            inner: Arc::new(inner),
        })
    }

    /// How many emails may be in flight at once: the SMTP pool's size; one for the outbox.
    pub fn concurrency(&self) -> usize {
        match &*self.inner {
            Inner::Outbox { .. } => 1,
            Inner::Smtp { cfg, .. } => cfg.pool_size.max(1) as usize,
        }
    }

    /// Delivers one email. Returns the server's reply (`250 …`), or the outbox file's path.
    pub async fn send(&self, msg: &Message) -> Result<String, SendError> {
        match &*self.inner {
            Inner::Outbox { dir, tz } => write_outbox(dir, *tz, msg).await,
            Inner::Smtp {
                cfg,
                credentials,
                transport,
            } => {
                let t = transport.lock().expect("never poisoned").clone();
                let server = format!("{}:{}", cfg.host, cfg.port);
                // lettre bounds only the connect with `timeout`; this bounds the whole
                // exchange: connect, EHLO, TLS, AUTH, envelope and data.
                let bound = cfg.timeout * 2;
                match tokio::time::timeout(bound, t.send(msg.clone())).await {
                    Ok(Ok(reply)) => {
                        let text = reply.message().collect::<Vec<_>>().join(" ");
                        Ok(format!("{} {}", reply.code(), text).trim_end().to_string())
                    }
                    Ok(Err(e)) => Err(classify(&server, cfg.timeout, &e)),
                    Err(_) => {
                        if let Ok(fresh) = build_smtp(cfg, credentials.as_ref()) {
                            *transport.lock().expect("never poisoned") = fresh;
                        }
                        Err(SendError::Timeout {
                            server,
                            after: bound,
                        })
                    }
                }
            }
        }
    }
}

/// Sorts lettre's errors into ours, keeping the server's code and text.
fn classify(server: &str, timeout: Duration, e: &lettre::transport::smtp::Error) -> SendError {
    let server = server.to_string();
    // The error's own text is a category ("network error"); the cause says what happened.
    let detail = {
        let mut parts = vec![e.to_string()];
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            let t = s.to_string();
            if !parts.iter().any(|p| p.contains(&t)) {
                parts.push(t);
            }
            src = s.source();
        }
        parts.join(": ")
    };
    if let Some(code) = e.status() {
        let text = std::error::Error::source(e)
            .map(|s| s.to_string())
            .unwrap_or_default();
        let code: u16 =
            code.to_string()
                .parse()
                .unwrap_or(if e.is_transient() { 450 } else { 550 });
        return SendError::Rejected { code, text };
    }
    if e.is_timeout() {
        return SendError::Timeout {
            server,
            after: timeout,
        };
    }
    if e.is_tls() || detail.contains("STARTTLS") {
        return SendError::Tls { server, detail };
    }
    if e.is_client() {
        return SendError::Refused { server, detail };
    }
    SendError::Connection { server, detail }
}

/// The `Message-ID` without brackets and domain, made safe for a file name.
fn id_local_part(msg: &Message) -> String {
    let id = msg
        .headers()
        .get_raw("Message-ID")
        .unwrap_or_default()
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string();
    let local = id.split('@').next().unwrap_or_default();
    let safe: String = local
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() {
        format!("{:016x}", rand::random::<u64>())
    } else {
        safe
    }
}

/// Writes `<dir>/<YYYYMMDD-HHMMSS>-<id>.eml` through a temporary name and a rename, so a
/// reader of the folder never sees half an email.
async fn write_outbox(dir: &Path, tz: Tz, msg: &Message) -> Result<String, SendError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SendError::Outbox { path, source }
    };
    tokio::fs::create_dir_all(dir).await.map_err(err(dir))?;
    let name = format!(
        "{}-{}.eml",
        crate::clock::Clock::real()
            .now()
            .with_timezone(&tz)
            .format("%Y%m%d-%H%M%S"),
        id_local_part(msg)
    );
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let bytes = msg.formatted();
    let write = async {
        use tokio::io::AsyncWriteExt;
        let mut f = tokio::fs::File::create(&tmp).await?;
        f.write_all(&bytes).await?;
        f.sync_all().await?;
        tokio::fs::rename(&tmp, &path).await
    };
    if let Err(e) = write.await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(err(&path)(e));
    }
    Ok(path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let cfg =
            crate::config::from_source(src, Path::new("t.yaml"), &crate::config::Env::default())
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
}
