//! The SMTP side of [`Sender`](super::Sender): a small connection pool over lettre's
//! single-connection API, TLS set-up, and one email's transaction (MAIL, RCPT, DATA).

use super::{Delivery, Refusal, SendError, TransportError, sanitize_reply, unknown};
use crate::plan::config::{Security, Smtp};
use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use std::net::SocketAddr;
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

/// How long an idle connection is reused without a check; older ones are tested with NOOP.
const FRESH: Duration = Duration::from_secs(2);
/// Idle connections older than this are dropped: servers close them after a few minutes.
const STALE: Duration = Duration::from_secs(60);

/// Our own small SMTP pool over lettre's single-connection API. Every socket has
/// `TCP_NODELAY` set: lettre writes the body and the final `.` separately, and with Nagle's
/// algorithm plus the server's delayed ACK each message would wait ~40 ms for the second
/// write.
pub(super) struct Pool {
    pub(super) cfg: Smtp,
    pub(super) credentials: Option<Credentials>,
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
pub(super) enum PoolError {
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
    pub(super) fn new(
        cfg: &Smtp,
        credentials: Option<Credentials>,
    ) -> Result<Pool, TransportError> {
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
    pub(super) async fn send(
        &self,
        msg: &Message,
        data_sent: &AtomicBool,
    ) -> Result<Delivery, PoolError> {
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
    let envelope = msg.envelope();
    let body = msg.formatted();
    let options = mail_options(conn, msg, &body)?;
    let mut pending: Vec<lettre::Address> = envelope.to().to_vec();
    let mut refused: Vec<Refusal> = Vec::new();
    let mut replies: Vec<String> = Vec::new();
    while !pending.is_empty() {
        conn.command(Mail::new(envelope.from().cloned(), options.clone()))
            .await
            .map_err(PoolError::Smtp)?;
        let Recipients {
            accepted,
            later,
            too_many,
        } = rcpt_each(conn, std::mem::take(&mut pending), &mut refused).await?;
        if accepted.is_empty() {
            // Nobody left to send this transaction to; RSET so the connection can be reused.
            conn.command(Rset).await.map_err(PoolError::Smtp)?;
            break;
        }
        let content = Content {
            body: &body,
            accepted: &accepted,
            later_empty: later.is_empty(),
        };
        if let Some(delivery) = data(conn, content, data_sent, &mut replies, &mut refused).await? {
            return Ok(delivery);
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
        return Err(all_refused(&refused));
    }
    Ok(Delivery {
        reply: replies.join("; "),
        refused,
    })
}

/// MAIL FROM's parameters: SMTPUTF8 for non-ASCII addresses, 8BITMIME for a non-ASCII
/// body; an error when the server does not offer the one the email needs.
fn mail_options(
    conn: &AsyncSmtpConnection,
    msg: &Message,
    body: &[u8],
) -> Result<Vec<MailParameter>, PoolError> {
    let envelope = msg.envelope();
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
    Ok(options)
}

/// What one transaction's RCPT TOs left: the recipients taken, those put off by a `452`
/// for a further transaction, and that `452` reply.
struct Recipients {
    accepted: Vec<lettre::Address>,
    later: Vec<lettre::Address>,
    too_many: Option<(u16, String)>,
}

/// RCPT TO for each pending recipient until a `452` (after at least one was taken) puts the
/// rest off; every other refusal is added to `refused`.
async fn rcpt_each(
    conn: &mut AsyncSmtpConnection,
    pending: Vec<lettre::Address>,
    refused: &mut Vec<Refusal>,
) -> Result<Recipients, PoolError> {
    let mut accepted = Vec::new();
    let mut later = Vec::new();
    let mut too_many: Option<(u16, String)> = None;
    for addr in pending {
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
    Ok(Recipients {
        accepted,
        later,
        too_many,
    })
}

/// One transaction's content: the email, the recipients taken, and whether none were put
/// off for a further transaction.
struct Content<'a> {
    body: &'a [u8],
    accepted: &'a [lettre::Address],
    later_empty: bool,
}

/// DATA and the content. The server's reply goes to `replies`; a refusal of a later part
/// of a split envelope goes to `refused`. `Ok(Some(_))` is the email's outcome when the
/// connection failed after the final dot of a later transaction.
async fn data(
    conn: &mut AsyncSmtpConnection,
    content: Content<'_>,
    data_sent: &AtomicBool,
    replies: &mut Vec<String>,
    refused: &mut Vec<Refusal>,
) -> Result<Option<Delivery>, PoolError> {
    conn.command(Data).await.map_err(PoolError::Smtp)?;
    data_sent.store(true, Ordering::SeqCst);
    match conn.message(content.body).await {
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
            Some(_) if replies.is_empty() && content.later_empty => {
                return Err(PoolError::Smtp(e));
            }
            Some((code, text)) => refused.extend(content.accepted.iter().map(|a| Refusal {
                address: a.to_string(),
                code,
                text: text.clone(),
            })),
            // No reply after the final dot: for the first transaction this is the
            // email's outcome; for a later one, its recipients' only.
            None if replies.is_empty() => return Err(PoolError::Unknown(e)),
            None => {
                refused.extend(content.accepted.iter().map(|a| Refusal {
                    address: a.to_string(),
                    code: 451,
                    text: format!("{}: {}", unknown(), sanitize_reply(&e.to_string())),
                }));
                return Ok(Some(Delivery {
                    reply: replies.join("; "),
                    refused: std::mem::take(refused),
                }));
            }
        },
    }
    Ok(None)
}

/// Every recipient was refused: the first transient refusal's code if any, else the
/// first's, with every refusal in the text.
fn all_refused(refused: &[Refusal]) -> PoolError {
    let transient = refused.iter().find(|r| (400..500).contains(&r.code));
    let first = transient.or(refused.first());
    let code = first.map_or(550, |r| r.code);
    let text = refused
        .iter()
        .map(|r| format!("<{}>: {} {}", r.address, r.code, r.text))
        .collect::<Vec<_>>()
        .join("; ");
    PoolError::AllRefused { code, text }
}

/// Sorts lettre's errors into ours, keeping the server's code and text.
pub(super) fn classify(
    server: &str,
    timeout: Duration,
    e: &lettre::transport::smtp::Error,
) -> SendError {
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

/// The longest wait for one SMTP step, whatever `timeout:` says: a day. Larger values (up
/// to `18446744073709551615s`) would overflow the arithmetic on it.
pub(super) const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

/// `timeout:` as used: at least a millisecond, at most [`MAX_TIMEOUT`].
pub(super) fn step_timeout(configured: Duration) -> Duration {
    configured.clamp(Duration::from_millis(1), MAX_TIMEOUT)
}
