//! TLS and authentication for real: a small SMTP server with a throwaway CA speaks STARTTLS
//! or implicit TLS and AUTH on loopback, and the real binary sends to it with the password
//! read from a systemd credential.

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};

const PASSWORD: &str = "mật-khẩu bí mật 42";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Plain connection that offers STARTTLS (port 587 style).
    StartTls,
    /// A plain server that does not offer STARTTLS at all.
    NoTls,
    /// TLS from the first byte (port 465 style).
    Implicit,
}

#[derive(Debug, Clone, Default)]
struct Session {
    tls: bool,
    auth: Option<(String, String)>,
    data: Option<String>,
}

struct Server {
    port: u16,
    sessions: Arc<Mutex<Vec<Session>>>,
    ca_pem: String,
}

fn b64(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unb64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = s
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= (val(*c) as u32) << (18 - 6 * i);
        }
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

impl Server {
    async fn start(mode: Mode) -> Server {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let store = sessions.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, store) = (acceptor.clone(), store.clone());
                tokio::spawn(async move {
                    let mut s = Session::default();
                    if mode == Mode::Implicit {
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            s.tls = true;
                            let _ = converse(BufReader::new(tls), mode, &mut s, &store).await;
                        }
                    } else {
                        let mut reader = BufReader::new(tcp);
                        if let Ok(true) = converse(&mut reader, mode, &mut s, &store).await {
                            // STARTTLS accepted: the rest of the session is encrypted.
                            if let Ok(tls) = acceptor.accept(reader.into_inner()).await {
                                s.tls = true;
                                let _ = converse(BufReader::new(tls), mode, &mut s, &store).await;
                            }
                        }
                    }
                    if s.data.is_none() {
                        // A session that delivered nothing is kept too, for the tests
                        // that check nothing leaked.
                        store.lock().unwrap().push(s);
                    }
                });
            }
        });
        Server {
            port,
            sessions,
            ca_pem: ca.pem(),
        }
    }

    fn sessions(&self) -> Vec<Session> {
        self.sessions.lock().unwrap().clone()
    }
}

/// Speaks SMTP until QUIT, or until the client asks for STARTTLS (returns `true` then).
async fn converse<S>(
    mut io: S,
    mode: Mode,
    s: &mut Session,
    store: &Mutex<Vec<Session>>,
) -> std::io::Result<bool>
where
    S: AsyncRead + AsyncWrite + AsyncBufReadExt + Unpin,
{
    async fn say<W: AsyncWrite + Unpin>(w: &mut W, line: &str) -> std::io::Result<()> {
        w.write_all(format!("{line}\r\n").as_bytes()).await?;
        w.flush().await
    }
    if !s.tls || mode == Mode::Implicit {
        say(&mut io, "220 127.0.0.1 ESMTP test").await?;
    }
    let mut line = String::new();
    loop {
        line.clear();
        if io.read_line(&mut line).await? == 0 {
            return Ok(false);
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            let mut caps = vec!["250-127.0.0.1"];
            if !s.tls && mode == Mode::StartTls {
                caps.push("250-STARTTLS");
            }
            if s.tls {
                caps.push("250-AUTH PLAIN LOGIN");
            }
            caps.push("250 8BITMIME");
            for c in caps {
                say(&mut io, c).await?;
            }
        } else if upper == "STARTTLS" {
            say(&mut io, "220 2.0.0 Ready to start TLS").await?;
            return Ok(true);
        } else if let Some(rest) = upper.strip_prefix("AUTH PLAIN") {
            let arg = cmd[cmd.len() - rest.len()..].trim().to_string();
            let raw = if arg.is_empty() {
                say(&mut io, "334 ").await?;
                let mut l = String::new();
                io.read_line(&mut l).await?;
                unb64(l.trim())
            } else {
                unb64(&arg)
            };
            let parts: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).to_string())
                .collect();
            s.auth = Some((parts[1].clone(), parts[2].clone()));
            say(&mut io, "235 2.7.0 Authentication successful").await?;
        } else if upper.starts_with("AUTH LOGIN") {
            say(&mut io, &format!("334 {}", b64("Username:"))).await?;
            let mut u = String::new();
            io.read_line(&mut u).await?;
            say(&mut io, &format!("334 {}", b64("Password:"))).await?;
            let mut p = String::new();
            io.read_line(&mut p).await?;
            s.auth = Some((
                String::from_utf8_lossy(&unb64(u.trim())).to_string(),
                String::from_utf8_lossy(&unb64(p.trim())).to_string(),
            ));
            say(&mut io, "235 2.7.0 Authentication successful").await?;
        } else if upper == "DATA" {
            say(&mut io, "354 End data with <CR><LF>.<CR><LF>").await?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if io.read_line(&mut l).await? == 0 || l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            s.data = Some(data);
            // Recorded now: a pooled client keeps the connection open after sending.
            store.lock().unwrap().push(s.clone());
            say(&mut io, "250 2.0.0 OK queued").await?;
        } else if upper == "QUIT" {
            say(&mut io, "221 2.0.0 Bye").await?;
            return Ok(false);
        } else {
            say(&mut io, "250 2.0.0 OK").await?;
        }
    }
}

fn write_config(dir: &Path, port: u16, security: &str, ca: Option<&str>) -> std::path::PathBuf {
    let ca_line = match ca {
        Some(pem) => {
            std::fs::write(dir.join("ca.pem"), pem).unwrap();
            "      ca_file: ca.pem\n"
        }
        None => "",
    };
    let yaml = format!(
        "plan:\n  year: 2024\noffices:\n  hctc:\n    name: Phòng Hành chính – Tổ chức\n    email: hctc@vpubnd.example\ntasks:\n  - id: VII.1\n    title: Kế hoạch tuyên truyền\n    deadline: Tháng 01/2024\n    lead: hctc\nmail:\n  from: Nhắc việc <nhacviec@vpubnd.example>\n  transport:\n    smtp:\n      host: 127.0.0.1\n      port: {port}\n      security: {security}\n      username: nhacviec\n      password_credential: smtp-password\n      timeout: 5s\n{ca_line}ledger:\n  path: ledger.db\n"
    );
    let path = dir.join("plan.yaml");
    std::fs::write(&path, yaml).unwrap();
    std::fs::create_dir_all(dir.join("credentials")).unwrap();
    std::fs::write(
        dir.join("credentials/smtp-password"),
        format!("{PASSWORD}\n"),
    )
    .unwrap();
    path
}

/// Runs the real binary off the async runtime so the server keeps serving.
async fn nhacviec(dir: &Path, args: &[&str]) -> Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_nhacviec"))
            .args(&args)
            .current_dir(&dir)
            .env("CREDENTIALS_DIRECTORY", dir.join("credentials"))
            .env_remove("NHACVIEC_CONFIG")
            .env("NHACVIEC_LANG", "en")
            .env_remove("STATE_DIRECTORY")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_the_password_from_a_systemd_credential() {
    let server = Server::start(Mode::StartTls).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), server.port, "starttls", Some(&server.ca_pem));
    let out = nhacviec(
        dir.path(),
        &[
            "run",
            "--once",
            "--at",
            "2024-01-22T08:00",
            "-c",
            "plan.yaml",
            "--log-format",
            "json",
        ],
    )
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let delivered: Vec<Session> = server
        .sessions()
        .into_iter()
        .filter(|s| s.data.is_some())
        .collect();
    assert_eq!(delivered.len(), 1, "{delivered:#?}");
    assert!(delivered[0].tls, "the message went over STARTTLS");
    assert_eq!(
        delivered[0].auth,
        Some(("nhacviec".to_string(), PASSWORD.to_string())),
        "the password comes from $CREDENTIALS_DIRECTORY/smtp-password, newline dropped"
    );
    assert!(
        delivered[0]
            .data
            .as_deref()
            .unwrap()
            .contains("Message-ID:")
    );
    // The password is never logged, whatever the log format.
    assert!(
        !stderr.contains(PASSWORD) && !stdout.contains(PASSWORD),
        "{stderr}"
    );
    assert!(stderr.contains("\"status\":\"sent\""), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_on_the_submissions_port_style() {
    let server = Server::start(Mode::Implicit).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), server.port, "tls", Some(&server.ca_pem));
    let out = nhacviec(
        dir.path(),
        &["send-test", "--to", "thu@vpubnd.example", "-c", "plan.yaml"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("server reply: 250 2.0.0 OK queued"),
        "{}",
        text(&out.stdout)
    );
    let s = server.sessions();
    assert!(
        s.iter()
            .any(|s| s.tls && s.data.is_some() && s.auth.is_some()),
        "{s:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_required_a_server_without_starttls_gets_nothing() {
    let server = Server::start(Mode::NoTls).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), server.port, "starttls", Some(&server.ca_pem));
    let out = nhacviec(
        dir.path(),
        &["send-test", "--to", "thu@vpubnd.example", "-c", "plan.yaml"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("was not sent"), "{err}");
    assert!(
        server
            .sessions()
            .iter()
            .all(|s| s.data.is_none() && s.auth.is_none()),
        "nothing, not even the password, went out in plaintext"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_certificate_authority_is_refused() {
    let server = Server::start(Mode::StartTls).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), server.port, "starttls", None);
    let out = nhacviec(
        dir.path(),
        &["send-test", "--to", "thu@vpubnd.example", "-c", "plan.yaml"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    // Exit 1 is also a broken config: the reason must be the certificate.
    let err = text(&out.stderr);
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );
    assert!(
        server
            .sessions()
            .iter()
            .all(|s| s.data.is_none() && s.auth.is_none())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_credential_says_what_to_do() {
    let server = Server::start(Mode::StartTls).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), server.port, "starttls", Some(&server.ca_pem));
    std::fs::remove_file(dir.path().join("credentials/smtp-password")).unwrap();
    let out = nhacviec(
        dir.path(),
        &["send-test", "--to", "thu@vpubnd.example", "-c", "plan.yaml"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "a config failure exits 1");
    let err = text(&out.stderr);
    assert!(err.contains("smtp-password"), "{err}");
}
