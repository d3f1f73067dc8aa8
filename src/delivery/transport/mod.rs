//! Delivering a composed email: over SMTP, or as an `.eml` file into an outbox folder.
//!
//! The SMTP password is read once, in [`Sender::new`], from the source the config names; it
//! never appears in a log line, an error or a `Debug` output.

use crate::plan::config::{Config, SecretSource, Security, Smtp, Transport};
use chrono_tz::Tz;
use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

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

/// How long an idle connection is reused without a check; older ones are tested with NOOP.
const FRESH: Duration = Duration::from_secs(2);
/// Idle connections older than this are dropped: servers close them after a few minutes.
const STALE: Duration = Duration::from_secs(60);

/// Our own small SMTP pool over lettre's single-connection API. Every socket has
/// `TCP_NODELAY` set: lettre writes the body and the final `.` separately, and with Nagle's
/// algorithm plus the server's delayed ACK each message would wait ~40 ms for the second
/// write.
struct Pool {
    cfg: Smtp,
    credentials: Option<Credentials>,
    hello: ClientId,
    tls: PoolTls,
    /// Healthy connections waiting for the next email, at most `pool_size`.
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

enum PoolTls {
    /// STARTTLS, required: lettre upgrades our plain stream with these parameters.
    StartTls(TlsParameters),
    /// Implicit TLS: our own rustls handshake before the greeting.
    Wrapper {
        connector: TlsConnector,
        name: ServerName<'static>,
    },
    None,
}

/// Why a connection could not be opened or used.
enum PoolError {
    Smtp(lettre::transport::smtp::Error),
    Connect(std::io::Error),
    ConnectTimeout,
    Tls(String),
    /// The email cannot go as it is (a needed extension is missing).
    Client(String),
    /// The connection failed after the final `.` of DATA, before the server's reply.
    Unknown(lettre::transport::smtp::Error),
    /// Every recipient was refused; the code is a transient one if any refusal was.
    AllRefused {
        code: u16,
        text: String,
    },
    /// The server refused the login.
    Auth {
        code: u16,
        text: String,
    },
}

/// A rustls client stream, given to lettre as its transport for implicit TLS.
struct TlsTcp(tokio_rustls::client::TlsStream<TcpStream>);

impl std::fmt::Debug for TlsTcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TlsTcp").field(&self.0.get_ref().0).finish()
    }
}

impl AsyncRead for TlsTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// The province's own CA from `ca_file`, read once, as PEM.
fn extra_root(smtp: &Smtp) -> Result<Option<Vec<u8>>, TransportError> {
    let Some(path) = &smtp.ca_file else {
        return Ok(None);
    };
    let pem = std::fs::read(path).map_err(|e| TransportError::Tls {
        host: smtp.host.clone(),
        detail: format!("cannot read the CA certificate {}: {e}", path.display()),
    })?;
    Certificate::from_pem(&pem).map_err(|e| TransportError::Tls {
        host: smtp.host.clone(),
        detail: format!("{} is not a PEM certificate: {e}", path.display()),
    })?;
    Ok(Some(pem))
}

fn build_tls(smtp: &Smtp) -> Result<PoolTls, TransportError> {
    let tls_err = |detail: String| TransportError::Tls {
        host: smtp.host.clone(),
        detail,
    };
    // The public roots, plus the province's own CA when `ca_file` names one.
    let extra = extra_root(smtp)?;
    Ok(match smtp.security {
        Security::StartTls => {
            let mut b = TlsParameters::builder(smtp.host.clone());
            if let Some(pem) = &extra {
                let c = Certificate::from_pem(pem).map_err(|e| tls_err(e.to_string()))?;
                b = b.add_root_certificate(c);
            }
            PoolTls::StartTls(b.build_rustls().map_err(|e| tls_err(e.to_string()))?)
        }
        Security::Tls => {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Some(pem) = &extra {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| tls_err(format!("the CA certificate: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| tls_err(format!("the CA certificate: {e}")))?;
                }
            }
            let config = ClientConfig::builder_with_provider(Arc::new(
                tokio_rustls::rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            let name = ServerName::try_from(smtp.host.clone())
                .map_err(|e| tls_err(format!("not a valid server name: {e}")))?;
            PoolTls::Wrapper {
                connector: TlsConnector::from(Arc::new(config)),
                name,
            }
        }
        Security::None => PoolTls::None,
    })
}

impl Pool {
    fn new(cfg: &Smtp, credentials: Option<Credentials>) -> Result<Pool, TransportError> {
        Ok(Pool {
            tls: build_tls(cfg)?,
            cfg: cfg.clone(),
            credentials,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// An idle connection that still answers, or a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, PoolError> {
        loop {
            let next = self.idle.lock().expect("never poisoned").pop();
            let Some((mut conn, since)) = next else { break };
            let age = since.elapsed();
            if age >= STALE {
                continue;
            }
            if age < FRESH || conn.test_connected().await {
                return Ok(conn);
            }
        }
        self.connect().await
    }

    /// Keeps a healthy connection for the next email, up to `pool_size` of them.
    fn checkin(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().expect("never poisoned");
        if idle.len() < self.cfg.pool_size.max(1) as usize {
            idle.push((conn, Instant::now()));
        }
    }

    /// Connects, greets, secures (TLS is required for StartTls: without it the server gets
    /// nothing more than EHLO), then authenticates.
    async fn connect(&self) -> Result<AsyncSmtpConnection, PoolError> {
        let cfg = &self.cfg;
        let step = step_timeout(cfg.timeout);
        let tcp = tokio::time::timeout(step, TcpStream::connect((cfg.host.as_str(), cfg.port)))
            .await
            .map_err(|_| PoolError::ConnectTimeout)?
            .map_err(PoolError::Connect)?;
        tcp.set_nodelay(true).map_err(PoolError::Connect)?;
        let stream: Box<dyn AsyncTokioStream> = match &self.tls {
            PoolTls::Wrapper { connector, name } => {
                let tls = tokio::time::timeout(step, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| PoolError::ConnectTimeout)?
                    .map_err(|e| PoolError::Tls(e.to_string()))?;
                Box::new(TlsTcp(tls))
            }
            PoolTls::StartTls(_) | PoolTls::None => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(PoolError::Smtp)?;
        // Dropped, not aborted, on failure: after a failed upgrade lettre holds no stream
        // to say QUIT on.
        if let PoolTls::StartTls(params) = &self.tls {
            conn.starttls(params.clone(), &self.hello)
                .await
                .map_err(PoolError::Smtp)?;
        }
        if let Some(credentials) = &self.credentials {
            // Never in plaintext unless the config chose plaintext. (lettre cannot see that
            // our own implicit-TLS stream is encrypted.)
            let allowed = match self.tls {
                PoolTls::Wrapper { .. } | PoolTls::None => true,
                PoolTls::StartTls(_) => conn.is_encrypted(),
            };
            if !allowed {
                conn.abort().await;
                return Err(PoolError::Tls(
                    "the connection is not encrypted; the password was not sent".into(),
                ));
            }
            if let Err(e) = conn
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
            {
                conn.abort().await;
                return Err(match reply_of(&e) {
                    Some((code, text)) => PoolError::Auth { code, text },
                    None => PoolError::Smtp(e),
                });
            }
        }
        Ok(conn)
    }

    /// One email over a pooled connection; a connection that failed is not kept. Drives the
    /// envelope itself, so that one refused recipient does not lose the email for the others
    /// and a `452` (too many recipients) sends the rest in a further transaction of the same
    /// message. `data_sent` is set once content starts going out (after the server's `354`,
    /// and stays set after a first transaction of a split envelope): from then on, a lost
    /// connection or a timeout leaves the outcome unknown.
    async fn send(&self, msg: &Message, data_sent: &AtomicBool) -> Result<Delivery, PoolError> {
        let mut conn = self.checkout().await?;
        let result = transact(&mut conn, msg, data_sent).await;
        match result {
            Ok(delivery) => {
                self.checkin(conn);
                Ok(delivery)
            }
            Err(e) => {
                conn.abort().await;
                Err(e)
            }
        }
    }
}

/// A negative reply, as code and sanitised text.
fn reply_of(e: &lettre::transport::smtp::Error) -> Option<(u16, String)> {
    let code = e.status()?.to_string().parse().ok()?;
    let text = std::error::Error::source(e)
        .map(|s| sanitize_reply(&s.to_string()))
        .unwrap_or_default();
    Some((code, text))
}

/// MAIL, RCPT for each recipient, DATA, the content; again for those a `452` put off.
async fn transact(
    conn: &mut AsyncSmtpConnection,
    msg: &Message,
    data_sent: &AtomicBool,
) -> Result<Delivery, PoolError> {
    use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
    use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
    let envelope = msg.envelope();
    let body = msg.formatted();
    let mut options = Vec::new();
    let non_ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(PoolError::Client(
                "the envelope has non-ASCII addresses but the server does not offer SMTPUTF8"
                    .into(),
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !body.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(PoolError::Client(
                "the email is not ASCII but the server does not offer 8BITMIME".into(),
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let mut pending: Vec<lettre::Address> = envelope.to().to_vec();
    let mut refused: Vec<Refusal> = Vec::new();
    let mut replies: Vec<String> = Vec::new();
    while !pending.is_empty() {
        conn.command(Mail::new(envelope.from().cloned(), options.clone()))
            .await
            .map_err(PoolError::Smtp)?;
        let mut accepted = Vec::new();
        let mut later = Vec::new();
        let mut too_many: Option<(u16, String)> = None;
        for addr in pending.drain(..) {
            if too_many.is_some() {
                later.push(addr);
                continue;
            }
            match conn.command(Rcpt::new(addr.clone(), vec![])).await {
                Ok(_) => accepted.push(addr),
                Err(e) => match reply_of(&e) {
                    Some((452, text)) if !accepted.is_empty() => {
                        too_many = Some((452, text));
                        later.push(addr);
                    }
                    Some((code, text)) => refused.push(Refusal {
                        address: addr.to_string(),
                        code,
                        text,
                    }),
                    None => return Err(PoolError::Smtp(e)),
                },
            }
        }
        if accepted.is_empty() {
            // Nobody left to send this transaction to; RSET so the connection can be reused.
            conn.command(lettre::transport::smtp::commands::Rset)
                .await
                .map_err(PoolError::Smtp)?;
            break;
        }
        conn.command(Data).await.map_err(PoolError::Smtp)?;
        data_sent.store(true, Ordering::SeqCst);
        match conn.message(&body).await {
            Ok(reply) => {
                let text = reply.message().collect::<Vec<_>>().join(" ");
                replies.push(
                    format!("{} {}", reply.code(), sanitize_reply(&text))
                        .trim_end()
                        .to_string(),
                );
            }
            Err(e) => match reply_of(&e) {
                // The content itself was refused: for these recipients, as for all.
                Some(_) if replies.is_empty() && later.is_empty() => {
                    return Err(PoolError::Smtp(e));
                }
                Some((code, text)) => refused.extend(accepted.iter().map(|a| Refusal {
                    address: a.to_string(),
                    code,
                    text: text.clone(),
                })),
                // No reply after the final dot: for the first transaction this is the
                // email's outcome; for a later one, its recipients' only.
                None if replies.is_empty() => return Err(PoolError::Unknown(e)),
                None => {
                    refused.extend(accepted.iter().map(|a| Refusal {
                        address: a.to_string(),
                        code: 451,
                        text: format!("{}: {}", unknown(), sanitize_reply(&e.to_string())),
                    }));
                    return Ok(Delivery {
                        reply: replies.join("; "),
                        refused,
                    });
                }
            },
        }
        if let Some((code, text)) = too_many {
            tracing::info!(
                code,
                reply = %text,
                remaining = later.len(),
                "the mail server takes fewer recipients per email; sending the rest in another transaction"
            );
        }
        pending = later;
    }
    if replies.is_empty() {
        // Every recipient was refused.
        let transient = refused.iter().find(|r| (400..500).contains(&r.code));
        let first = transient.or(refused.first());
        let code = first.map_or(550, |r| r.code);
        let text = refused
            .iter()
            .map(|r| format!("<{}>: {} {}", r.address, r.code, r.text))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(PoolError::AllRefused { code, text });
    }
    Ok(Delivery {
        reply: replies.join("; "),
        refused,
    })
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
    pub async fn send(&self, msg: &Message) -> Result<String, SendError> {
        self.deliver(msg).await.map(|d| d.describe())
    }

    /// Delivers one email to every recipient the server takes: see [`Delivery`].
    pub async fn deliver(&self, msg: &Message) -> Result<Delivery, SendError> {
        match &*self.inner {
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
                let result = tokio::time::timeout(bound, pool.send(msg, &data_sent)).await;
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
        sanitize_reply(&parts.join(": "))
    };
    if let Some(code) = e.status() {
        let text = std::error::Error::source(e)
            .map(|s| sanitize_reply(&s.to_string()))
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

/// Writes `<dir>/<YYYYMMDD-HHMMSS>-<id>.eml` whole or not at all: into a temporary file in
/// the same folder, flushed and fsynced, renamed into place, then the folder fsynced so the
/// rename survives a crash. Any failure (a full disk above all) removes the temporary file
/// and is a transient [`SendError::Outbox`]: the ledger then records the email as not sent,
/// and a later sweep tries again. (A tokio file keeps a failed write's error until a flush
/// that nobody called: a full disk once left empty `.eml` files recorded as sent. Plain std
/// IO on a blocking thread has no such buffer.)
async fn write_outbox(dir: &Path, tz: Tz, msg: &Message) -> Result<String, SendError> {
    let name = format!(
        "{}-{}.eml",
        crate::service::clock::Clock::real()
            .now()
            .with_timezone(&tz)
            .format("%Y%m%d-%H%M%S"),
        id_local_part(msg)
    );
    let dir = dir.to_path_buf();
    let bytes = msg.formatted();
    let path = dir.join(&name);
    let shown = path.clone();
    tokio::task::spawn_blocking(move || write_whole(&dir, &name, &bytes))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(format!("the writer failed: {e}"))))
        .map_err(|source| SendError::Outbox {
            path: shown.clone(),
            source,
        })?;
    Ok(shown.display().to_string())
}

/// [`write_outbox`]'s blocking part: `dir/name` holds `bytes` and is on disk, or it does not
/// exist and neither does any temporary file.
fn write_whole(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.flush()?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, dir.join(name))
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename is durable once the folder is; an error here leaves a whole file behind,
    // but reporting it makes the ledger retry and the reader may see the email twice,
    // never half of one.
    std::fs::File::open(dir)?.sync_all()
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

/// The longest wait for one SMTP step, whatever `timeout:` says: a day. Larger values (up
/// to `18446744073709551615s`) would overflow the arithmetic on it.
const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

/// `timeout:` as used: at least a millisecond, at most [`MAX_TIMEOUT`].
fn step_timeout(configured: Duration) -> Duration {
    configured.clamp(Duration::from_millis(1), MAX_TIMEOUT)
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
        let out = dir.path().join("outbox");
        let path = write_outbox(&out, chrono_tz::Asia::Ho_Chi_Minh, &msg)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), msg.formatted());
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
