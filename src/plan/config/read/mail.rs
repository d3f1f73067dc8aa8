//! `mail:`: addresses, grouping, the transport (outbox or SMTP) and retries.

use super::*;
use crate::plan::diag::{Diagnostic, Pos};
use crate::plan::yaml::{Node, Value};
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
    pub(super) fn mail(&self, node: Option<&Node>, errs: &mut Vec<Diagnostic>) -> Option<Mail> {
        let empty = Node {
            value: Value::Null,
            pos: Pos::default(),
        };
        let m = node.unwrap_or(&empty).map("`mail`", MAIL_KEYS, errs)?;
        m.check_unknown(errs);
        let addr = |key: &str, errs: &mut Vec<Diagnostic>| {
            let n = m.get(key)?;
            let s = n.text(&format!("`{key}`"), errs)?;
            parse_mailbox(&s, n.pos, &format!("`{key}`"), errs)
        };
        let from = addr("from", errs)
            .unwrap_or_else(|| "Nhắc việc <nhacviec@localhost.example>".to_string());
        let reply_to = addr("reply_to", errs);
        let admin = addr("admin", errs);
        let message_id_domain = m.opt_text("message_id_domain", errs).unwrap_or_else(|| {
            lettre::message::Mailbox::from_str(&from)
                .map(|mb| mb.email.domain().to_string())
                .unwrap_or_else(|_| "nhacviec.invalid".into())
        });
        if message_id_domain.is_empty()
            || message_id_domain
                .contains(|c: char| c.is_whitespace() || c == '@' || c == '>' || c == '<')
        {
            errs.push(err(
                m.key_pos("message_id_domain").unwrap_or(m.pos),
                format!("`{message_id_domain}` is not a domain name"),
                "write a domain such as `vpubnd.example`",
            ));
        }
        let grouping = match m.opt_text("grouping", errs).as_deref() {
            None | Some("digest") => Grouping::Digest,
            Some("per-nudge") | Some("per_nudge") => Grouping::PerNudge,
            Some(other) => {
                errs.push(err(
                    m.key_pos("grouping").unwrap_or(m.pos),
                    format!("unknown grouping `{other}`"),
                    "write `digest` (one email per office per sweep) or `per-nudge`",
                ));
                Grouping::Digest
            }
        };
        let cooperating = match m.opt_text("cooperating", errs).as_deref() {
            None | Some("separate") => CoopDelivery::Separate,
            Some("cc") => CoopDelivery::Cc,
            Some(other) => {
                errs.push(err(
                    m.key_pos("cooperating").unwrap_or(m.pos),
                    format!("unknown choice `{other}` for mail.cooperating"),
                    "write `separate` (their own email) or `cc`",
                ));
                CoopDelivery::Separate
            }
        };
        let templates = m.opt_text("templates", errs).map(|p| self.resolve(&p));
        let transport = match m.get("transport") {
            None => Transport::Outbox(self.state_path("outbox")),
            Some(n) => self.transport(n, errs)?,
        };
        let mut retry = Retry {
            attempts: 5,
            initial: Duration::from_secs(60),
            max: Duration::from_secs(3600),
        };
        if let Some(n) = m.get("retry")
            && let Some(r) = n.map("`retry`", RETRY_KEYS, errs)
        {
            r.check_unknown(errs);
            if let Some(a) = r
                .get("attempts")
                .and_then(|n| parse_u32(n, "`attempts`", errs))
            {
                retry.attempts = a.max(1);
            }
            if let Some(d) = r
                .get("initial")
                .and_then(|n| parse_duration(n, "`initial`", errs))
            {
                retry.initial = d;
            }
            if let Some(d) = r.get("max").and_then(|n| parse_duration(n, "`max`", errs)) {
                retry.max = d;
            }
        }
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

    pub(super) fn transport(&self, node: &Node, errs: &mut Vec<Diagnostic>) -> Option<Transport> {
        let m = node.map("`mail.transport`", TRANSPORT_KEYS, errs)?;
        m.check_unknown(errs);
        match (m.get("outbox"), m.get("smtp")) {
            (Some(_), Some(_)) => {
                errs.push(err(
                    m.pos,
                    "`transport` has both `outbox` and `smtp`",
                    "keep one: `smtp:` to send, `outbox:` to write .eml files",
                ));
                None
            }
            (Some(o), None) => Some(Transport::Outbox(self.resolve(&o.text("`outbox`", errs)?))),
            (None, Some(s)) => self.smtp(s, errs).map(Transport::Smtp),
            (None, None) => Some(Transport::Outbox(self.state_path("outbox"))),
        }
    }

    pub(super) fn smtp(&self, node: &Node, errs: &mut Vec<Diagnostic>) -> Option<Smtp> {
        let m = node.map("`smtp`", SMTP_KEYS, errs)?;
        m.check_unknown(errs);
        let host = m.req_text("host", errs)?;
        let security = match m.opt_text("security", errs).as_deref() {
            None | Some("starttls") => Security::StartTls,
            Some("tls") => Security::Tls,
            Some("none") => Security::None,
            Some(other) => {
                errs.push(err(m.key_pos("security").unwrap_or(m.pos), format!("unknown security `{other}`"), "write `starttls` (port 587), `tls` (port 465) or `none` (with `allow_plaintext: true`)"));
                Security::StartTls
            }
        };
        let allow_plain = m
            .get("allow_plaintext")
            .and_then(|n| parse_bool(n, "`allow_plaintext`", errs))
            .unwrap_or(false);
        if security == Security::None {
            let p = m.key_pos("security").unwrap_or(m.pos);
            if !allow_plain {
                errs.push(err(
                    p,
                    "`security: none` sends the password and emails unencrypted",
                    "use `starttls` or `tls`; if you really mean it, add `allow_plaintext: true`",
                ));
            } else if !is_loopback(&host) {
                errs.push(warn(p, format!("emails to `{host}` go unencrypted"), "plaintext is only safe to a server on this machine (127.0.0.1); prefer `starttls`"));
            }
        }
        let port = match m.get("port") {
            Some(n) => {
                let p = parse_u32(n, "`port`", errs)?;
                if p == 0 || p > 65535 {
                    errs.push(err(
                        n.pos,
                        format!("port {p} does not exist"),
                        "587 for starttls, 465 for tls",
                    ));
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
            m.opt_text("password_file", errs)
                .map(|p| ("password_file", SecretSource::File(self.resolve(&p)))),
            m.opt_text("password_credential", errs)
                .map(|c| ("password_credential", SecretSource::Credential(c))),
            m.opt_text("password_env", errs)
                .map(|e| ("password_env", SecretSource::Env(e))),
        ]
        .into_iter()
        .flatten()
        .collect();
        if sources.len() > 1 {
            errs.push(err(
                m.pos,
                format!(
                    "the password is given {} ways: {}",
                    sources.len(),
                    sources
                        .iter()
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "keep one of them",
            ));
        }
        let username = m.opt_text("username", errs);
        if username.is_some() && sources.is_empty() {
            errs.push(warn(m.key_pos("username").unwrap_or(m.pos), "a username but no password source", "add `password_credential: smtp-password` (systemd LoadCredential), `password_file:` or `password_env:`"));
        }
        let timeout = m
            .get("timeout")
            .and_then(|n| parse_duration(n, "`timeout`", errs))
            .unwrap_or(Duration::from_secs(30));
        let pool_size = m
            .get("pool_size")
            .and_then(|n| parse_u32(n, "`pool_size`", errs))
            .unwrap_or(4)
            .max(1);
        let ca_file = m.opt_text("ca_file", errs).map(|p| self.resolve(&p));
        if let Some(p) = &ca_file
            && !p.is_file()
        {
            errs.push(err(
                m.key_pos("ca_file").unwrap_or(m.pos),
                format!("the certificate file {} does not exist", p.display()),
                "give the path of the mail server's CA certificate in PEM form, or remove `ca_file` to trust the public CAs only",
            ));
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
}
