//! The SMTP side of [`Sender`](super::Sender): a small connection pool over lettre's
//! single-connection API and TLS set-up. One email's transaction (MAIL, RCPT, DATA) is in
//! [`super::transaction`].

use super::transaction::{Primed, offers_pipelining, reply_of, transact};
use super::{Delivery, SendError, TransportError, sanitize_reply};
use crate::delivery::email::Email;
use crate::plan::config::{Security, Smtp};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
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
/// `TCP_NODELAY` set: each step of a transaction is one write (see [`super::transaction`]),
/// which should leave at once rather than wait for the ACK of the one before.
pub(super) struct Pool {
    pub(super) cfg: Smtp,
    pub(super) credentials: Option<Credentials>,
    hello: ClientId,
    tls: PoolTls,
    /// Healthy connections waiting for the next email, at most `pool_size`.
    idle: Mutex<Vec<(Conn, Instant)>>,
}

/// One open, greeted (and secured, and logged-in) connection.
pub(super) struct Conn {
    pub(super) smtp: AsyncSmtpConnection,
    /// The server offers PIPELINING (RFC 2920): the envelope goes out in one write.
    pub(super) pipelining: bool,
    /// An email's envelope was written ahead: only that email may go next, and the
    /// connection never goes back to the pool.
    pub(super) primed: Option<Primed>,
    /// When it was last used: its age in the pool counts from then.
    used: Instant,
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
    async fn checkout(&self) -> Result<Conn, PoolError> {
        loop {
            let next = self.idle.lock().expect("never poisoned").pop();
            let Some((mut conn, since)) = next else { break };
            let age = since.elapsed();
            if age >= STALE {
                continue;
            }
            if age < FRESH || conn.smtp.test_connected().await {
                return Ok(conn);
            }
        }
        self.connect().await
    }

    /// Keeps a healthy connection for the next email, up to `pool_size` of them. One primed
    /// for an email is dropped: the server waits for that email's content, and closing the
    /// connection is how a transaction ends without it.
    pub(super) fn checkin(&self, conn: Conn) {
        if conn.smtp.has_broken() || conn.primed.is_some() {
            return;
        }
        let mut idle = self.idle.lock().expect("never poisoned");
        if idle.len() < self.cfg.pool_size.max(1) as usize {
            let used = conn.used;
            idle.push((conn, used));
        }
    }

    /// Connects, greets, secures (TLS is required for StartTls: without it the server gets
    /// nothing more than EHLO), asks whether the server pipelines, then authenticates.
    async fn connect(&self) -> Result<Conn, PoolError> {
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
        let pipelining = match offers_pipelining(&mut conn, &self.hello).await {
            Ok(p) => p,
            Err(e) => {
                conn.abort().await;
                return Err(PoolError::Smtp(e));
            }
        };
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
        Ok(Conn {
            smtp: conn,
            pipelining,
            primed: None,
            used: Instant::now(),
        })
    }

    /// One email over `held` (a connection kept from the email before, see
    /// [`Session`](super::Session)) or a pooled one; a connection that failed is not kept.
    /// Drives the envelope itself, so that one refused recipient does not lose the email
    /// for the others and a `452` (too many recipients) sends the rest in a further
    /// transaction of the same message. `data_sent` is set once content starts going out
    /// (after the server's `354`, and stays set after a first transaction of a split
    /// envelope): from then on, a lost connection or a timeout leaves the outcome unknown.
    /// With `next`, its envelope goes out with this email's content when it can, and the
    /// connection stays in `held`, primed for it.
    pub(super) async fn send(
        &self,
        held: &mut Option<Conn>,
        msg: &Email,
        next: Option<&Email>,
        data_sent: &AtomicBool,
    ) -> Result<Delivery, PoolError> {
        let mut conn = self.take(held, msg).await?;
        let primed = conn.primed.is_some();
        let mut result = transact(&mut conn, msg, next, data_sent).await;
        if primed
            && !data_sent.load(std::sync::atomic::Ordering::SeqCst)
            && matches!(&result, Err(PoolError::Smtp(e)) if e.status().is_none())
        {
            // The connection died while it waited (a server that closes after each
            // email): nothing of this email went out; it goes on a new connection.
            drop(conn);
            conn = self.checkout().await?;
            result = transact(&mut conn, msg, next, data_sent).await;
        }
        conn.used = Instant::now();
        match result {
            Ok(delivery) => {
                *held = Some(conn);
                Ok(delivery)
            }
            // Every recipient refused: the transaction was reset and the connection is
            // in step, as it is when the email could not go as it is (nothing was sent).
            Err(e @ (PoolError::AllRefused { .. } | PoolError::Client(_))) => {
                *held = Some(conn);
                Err(e)
            }
            // Primed, the server reads what follows as the next email's content: QUIT
            // would be taken for it. Closed without a word.
            Err(e) if conn.primed.is_some() => Err(e),
            Err(e) => {
                conn.smtp.abort().await;
                Err(e)
            }
        }
    }

    /// The connection for `msg`: the one held when it is idle or primed for `msg`, else a
    /// pooled or new one. A held idle one goes through the pool, to be checked like any.
    async fn take(&self, held: &mut Option<Conn>, msg: &Email) -> Result<Conn, PoolError> {
        if let Some(conn) = held.take() {
            match &conn.primed {
                Some(p) if p.message_id == msg.message_id() => return Ok(conn),
                // Primed for another email: dropped (`checkin` does not keep it).
                _ => self.checkin(conn),
            }
        }
        self.checkout().await
    }
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
