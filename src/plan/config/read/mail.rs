//! `mail:`: addresses, grouping, the transport (outbox or SMTP) and retries.

use super::*;
use crate::plan::yaml::Node;
use std::str::FromStr;
use std::time::Duration;

const MAIL_KEYS: &[&str] = &[
    "from",
    "reply_to",
    "admin",
    "message_id_domain",
    "grouping",
    "cooperating",
    "templates",
    "transport",
    "retry",
];
const TRANSPORT_KEYS: &[&str] = &["outbox", "smtp"];
const SMTP_KEYS: &[&str] = &[
    "host",
    "port",
    "security",
    "allow_plaintext",
    "username",
    "password_file",
    "password_credential",
    "password_env",
    "timeout",
    "pool_size",
    "ca_file",
];
const SECOND: Duration = Duration::from_secs(1);
const RETRY_KEYS: &[&str] = &["attempts", "initial", "max"];

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

impl Reader<'_> {
    pub(super) fn mail(&self, node: Option<&Node>) -> Option<Mail> {
        let m = self.map(node.unwrap_or(&EMPTY), "`mail`", MAIL_KEYS)?;
        let addr = |key: &str| self.opt(&m, key).map(|Address(a)| a);
        let from =
            addr("from").unwrap_or_else(|| "Nhắc việc <nhacviec@localhost.example>".to_string());
        let reply_to = addr("reply_to");
        let admin = addr("admin");
        let message_id_domain = self.opt_text(&m, "message_id_domain").unwrap_or_else(|| {
            lettre::message::Mailbox::from_str(&from)
                .map(|mb| mb.email.domain().to_string())
                .unwrap_or_else(|_| "nhacviec.invalid".into())
        });
        if !message_id_domain.is_ascii() {
            let ascii = idna::domain_to_ascii(&message_id_domain)
                .map(|a| {
                    crate::tr!(
                        "viết dạng punycode của nó `{a}`",
                        "write its punycode form `{a}`"
                    )
                })
                .unwrap_or_else(|_| {
                    crate::tr!(
                        "viết một tên miền ASCII, ví dụ `vpubnd.example`",
                        "write an ASCII domain such as `vpubnd.example`"
                    )
                });
            self.error(
                m.get("message_id_domain").map_or(m.pos, |n| n.pos),
                crate::tr!("`message_id_domain` `{message_id_domain}` không phải ASCII", "`message_id_domain` `{message_id_domain}` is not ASCII"),
                crate::tr!("Message-ID phải là ASCII để được nhận ra khi một email được gửi lại; {ascii}", "a Message-ID must be ASCII to be recognised when an email is sent again; {ascii}"),
            );
        } else if message_id_domain.is_empty()
            || message_id_domain
                .contains(|c: char| c.is_whitespace() || c == '@' || c == '>' || c == '<')
        {
            self.error(
                m.key_pos("message_id_domain").unwrap_or(m.pos),
                crate::tr!(
                    "`{message_id_domain}` không phải là tên miền",
                    "`{message_id_domain}` is not a domain name"
                ),
                crate::tr!(
                    "viết một tên miền, ví dụ `vpubnd.example`",
                    "write a domain such as `vpubnd.example`"
                ),
            );
        }
        let grouping = self.opt_choice(&m, "grouping").unwrap_or(Grouping::Digest);
        let cooperating = self
            .opt_choice(&m, "cooperating")
            .unwrap_or(CoopDelivery::Separate);
        let templates = self.opt_text(&m, "templates").map(|p| self.resolve(&p));
        let transport = match m.get("transport") {
            None => Transport::Outbox(self.state_path("outbox")),
            Some(n) => self.transport(n)?,
        };
        let retry = self.retry(m.get("retry"));
        Some(Mail {
            from,
            reply_to,
            admin,
            message_id_domain,
            grouping,
            cooperating,
            templates,
            transport,
            retry,
        })
    }

    pub(super) fn transport(&self, node: &Node) -> Option<Transport> {
        let m = self.map(node, "`mail.transport`", TRANSPORT_KEYS)?;
        match (m.get("outbox"), m.get("smtp")) {
            (Some(_), Some(_)) => {
                self.error(
                    m.pos,
                    crate::tr!(
                        "`transport` có cả `outbox` lẫn `smtp`",
                        "`transport` has both `outbox` and `smtp`"
                    ),
                    crate::tr!(
                        "giữ một: `smtp:` để gửi, `outbox:` để ghi tệp .eml",
                        "keep one: `smtp:` to send, `outbox:` to write .eml files"
                    ),
                );
                None
            }
            (Some(o), None) => Some(Transport::Outbox(self.resolve(&self.text(o, "`outbox`")?))),
            (None, Some(s)) => self.smtp(s).map(Transport::Smtp),
            (None, None) => Some(Transport::Outbox(self.state_path("outbox"))),
        }
    }

    pub(super) fn smtp(&self, node: &Node) -> Option<Smtp> {
        let m = self.map(node, "`smtp`", SMTP_KEYS)?;
        let host = self.req_text(&m, "host")?;
        let security = self
            .opt_choice(&m, "security")
            .unwrap_or(Security::StartTls);
        let allow_plain = self.opt(&m, "allow_plaintext").unwrap_or(false);
        if security == Security::None {
            let p = m.key_pos("security").unwrap_or(m.pos);
            if !allow_plain {
                self.error(
                    p,
                    crate::tr!("`security: none` gửi mật khẩu và email không mã hóa", "`security: none` sends the password and emails unencrypted"),
                    crate::tr!("dùng `starttls` hoặc `tls`; nếu thật sự muốn vậy, thêm `allow_plaintext: true`", "use `starttls` or `tls`; if you really mean it, add `allow_plaintext: true`"),
                );
            } else if !is_loopback(&host) {
                self.warn(p, crate::tr!("email tới `{host}` đi không mã hóa", "emails to `{host}` go unencrypted"), crate::tr!("không mã hóa chỉ an toàn với máy chủ trên chính máy này (127.0.0.1); nên dùng `starttls`", "plaintext is only safe to a server on this machine (127.0.0.1); prefer `starttls`"));
            }
        }
        let port = match m.get("port") {
            Some(n) => {
                let p: u32 = self.value(n, "`port`")?;
                if p == 0 || p > 65535 {
                    self.error(
                        n.pos,
                        crate::tr!("không có cổng {p}", "port {p} does not exist"),
                        crate::tr!(
                            "587 cho starttls, 465 cho tls",
                            "587 for starttls, 465 for tls"
                        ),
                    );
                }
                p as u16
            }
            None => match security {
                Security::StartTls => 587,
                Security::Tls => 465,
                Security::None => 25,
            },
        };
        let sources: Vec<(&str, SecretSource)> = [
            self.opt_text(&m, "password_file")
                .map(|p| ("password_file", SecretSource::File(self.resolve(&p)))),
            self.opt_text(&m, "password_credential")
                .map(|c| ("password_credential", SecretSource::Credential(c))),
            self.opt_text(&m, "password_env")
                .map(|e| ("password_env", SecretSource::Env(e))),
        ]
        .into_iter()
        .flatten()
        .collect();
        if sources.len() > 1 {
            self.error(
                m.pos,
                crate::tr!(
                    "mật khẩu được cho theo {} cách: {}",
                    "the password is given {} ways: {}",
                    sources.len(),
                    sources
                        .iter()
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                crate::tr!("giữ lại một cách", "keep one of them"),
            );
        }
        let username = self.opt_text(&m, "username");
        if username.is_some() && sources.is_empty() {
            self.warn(m.key_pos("username").unwrap_or(m.pos), crate::tr!("có tên đăng nhập nhưng không có nguồn mật khẩu", "a username but no password source"), crate::tr!("thêm `password_credential: smtp-password` (systemd LoadCredential), `password_file:` hoặc `password_env:`", "add `password_credential: smtp-password` (systemd LoadCredential), `password_file:` or `password_env:`"));
        }
        let timeout = self
            .opt_checked(&m, "timeout", |d| {
                duration_in(d, SECOND, Duration::from_secs(3600), "`timeout`")
            })
            .unwrap_or(Duration::from_secs(30));
        let pool_size = self.opt(&m, "pool_size").unwrap_or(4).max(1);
        let ca_file = self.opt_text(&m, "ca_file").map(|p| self.resolve(&p));
        if let Some(p) = &ca_file
            && !p.is_file()
        {
            self.error(
                m.key_pos("ca_file").unwrap_or(m.pos),
                crate::tr!("không có tệp chứng chỉ {}", "the certificate file {} does not exist", p.display()),
                crate::tr!("cho đường dẫn chứng chỉ CA của máy chủ thư ở dạng PEM, hoặc bỏ `ca_file` để chỉ tin các CA công cộng", "give the path of the mail server's CA certificate in PEM form, or remove `ca_file` to trust the public CAs only"),
            );
        }
        Some(Smtp {
            host,
            port,
            security,
            username,
            password: sources.into_iter().next().map(|(_, s)| s),
            timeout,
            pool_size,
            ca_file,
        })
    }

    /// `retry:`: how often and how patiently a failed email is sent again.
    fn retry(&self, node: Option<&Node>) -> Retry {
        let mut retry = Retry {
            attempts: 5,
            initial: Duration::from_secs(60),
            max: Duration::from_secs(3600),
        };
        if let Some(n) = node
            && let Some(r) = self.map(n, "`retry`", RETRY_KEYS)
        {
            let week = Duration::from_secs(7 * 86400);
            if let Some(a) = self.opt_checked(&r, "attempts", |a: u32| match a {
                1..=50 => Ok(a),
                _ => Err(Problem::new(
                    crate::tr!(
                        "`attempts` {a} nằm ngoài khoảng cho phép",
                        "`attempts` {a} is out of range"
                    ),
                    crate::tr!("viết một số từ 1 đến 50", "write a number from 1 to 50"),
                )),
            }) {
                retry.attempts = a;
            }
            if let Some(d) =
                self.opt_checked(&r, "initial", |d| duration_in(d, SECOND, week, "`initial`"))
            {
                retry.initial = d;
            }
            if let Some(d) = self.opt_checked(&r, "max", |d| duration_in(d, SECOND, week, "`max`"))
            {
                retry.max = d;
            }
        }
        retry
    }
}
