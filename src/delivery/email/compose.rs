//! Rendering: the [`Composer`] turns a batch into a multipart email through the templates;
//! [`admin_message`] is the plain note to the admin.

use super::Batch;
use super::context::{context, sample_contexts};
use super::text::{html_escape, one_line};
use crate::calendar::workdays::WorkCalendar;
use crate::plan::config::Config;
use chrono::DateTime;
use chrono_tz::Tz;
use lettre::Message;
use lettre::address::Envelope;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// Why an email could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{}", crate::tr!("không đọc được mẫu {}: {}", "cannot read the template {}: {}", path.display(), source))]
    ReadTemplate {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A template that does not compile or render; `name` is the file (an override's path,
    /// or the built-in name).
    #[error("{}", match line {
        Some(l) => crate::tr!("mẫu {}, dòng {}, bị lỗi: {}", "the template {}, line {}, is broken: {}", name, l, message),
        None => crate::tr!("mẫu {} bị lỗi: {}", "the template {} is broken: {}", name, message),
    })]
    Template {
        name: String,
        line: Option<usize>,
        message: String,
    },
    #[error("{}", crate::tr!("nhiệm vụ `{}` không có trong cấu hình", "task `{}` is not in the config", .0))]
    UnknownTask(String),
    #[error("{}", crate::tr!("đơn vị `{}` không có trong cấu hình", "office `{}` is not in the config", .0))]
    UnknownOffice(String),
    #[error("{}", crate::t!("email không có người nhận", "the email has no recipient"))]
    NoRecipient,
    #[error("{}", crate::tr!("`{}` không phải địa chỉ email hợp lệ", "`{}` is not a valid email address", .0))]
    Address(String),
    #[error("{}", crate::tr!("`{}` không phải Message-ID hợp lệ", "`{}` is not a valid Message-ID", .0))]
    MessageId(String),
    #[error("{}", crate::tr!("không dựng được email: {}", "cannot build the email: {}", .0))]
    Build(#[from] lettre::error::Error),
}

const SUBJECT: &str = "subject.txt";
const TEXT: &str = "body.txt";
const HTML: &str = "body.html";
const BUILTIN: [(&str, &str); 3] = [
    (SUBJECT, include_str!("../templates/subject.txt")),
    (TEXT, include_str!("../templates/body.txt")),
    (HTML, include_str!("../templates/body.html")),
];

/// Makes the "Xác nhận đã hoàn thành" link of one task occurrence for one office
/// (`web::links` signs them); `now` is when the email goes out.
pub trait ConfirmLinks: Send + Sync + std::fmt::Debug {
    fn url(
        &self,
        office: &str,
        task: &str,
        occurrence: chrono::NaiveDate,
        now: DateTime<chrono::Utc>,
    ) -> Option<String>;
}

/// Renders emails. Built once per config: the templates are compiled and checked then.
/// Cheap to clone (the compiled templates are shared), so that each send task composes its
/// own email on whichever worker thread runs it.
#[derive(Clone)]
pub struct Composer {
    env: Arc<Environment<'static>>,
    /// Template name → what to call it in errors (the override's path, or the name).
    origin: Arc<[(&'static str, String)]>,
    /// With `web.base_url`: each task carries its confirmation link.
    links: Option<std::sync::Arc<dyn ConfirmLinks>>,
    /// `mail.from` and `mail.reply_to` as parsed once here (each email has the same), with
    /// the text they were parsed from: another config's are parsed again.
    senders: Arc<[(String, Mailbox)]>,
}

impl std::fmt::Debug for Composer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Composer")
            .field("templates", &self.origin)
            .finish()
    }
}

impl Composer {
    /// Loads the built-in templates, then the overrides in `mail.templates` (same file
    /// names: `subject.txt`, `body.txt`, `body.html`), and renders each once with sample
    /// data so that a broken override stops the program at start, not at the first sweep.
    pub fn new(cfg: &Config) -> Result<Composer, ComposeError> {
        let mut env = Environment::new();
        // Blocks on lines of their own leave no blank lines behind: templates stay readable.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(true);
        // A misspelt variable is an error, not an empty string; `{% if x %}` still works.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        // minijinja's HTML escaping also turns `/` into `&#x2f;`, which makes dates unreadable
        // in the source and unsearchable; escaping `& < > " '` is what HTML needs.
        env.set_formatter(|out, state, value| match value.as_str() {
            Some(s) if state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
                out.write_str(&html_escape(s))?;
                Ok(())
            }
            _ => minijinja::escape_formatter(out, state, value),
        });
        let mut origin = Vec::new();
        for (name, builtin) in BUILTIN {
            let (source, shown) = match cfg.mail.templates.as_ref().map(|d| d.join(name)) {
                Some(path) if path.exists() => {
                    let s = std::fs::read_to_string(&path).map_err(|source| {
                        ComposeError::ReadTemplate {
                            path: path.clone(),
                            source,
                        }
                    })?;
                    (s, path.display().to_string())
                }
                _ => (builtin.to_string(), name.to_string()),
            };
            env.add_template_owned(name, source)
                .map_err(|e| template_error(&shown, &e))?;
            origin.push((name, shown));
        }
        // Not an error here: an address that does not parse fails each email as before.
        let senders = std::iter::once(&cfg.mail.from)
            .chain(&cfg.mail.reply_to)
            .filter_map(|s| Some((s.clone(), Mailbox::from_str(s.trim()).ok()?)))
            .collect();
        let composer = Composer {
            env: Arc::new(env),
            origin: origin.into(),
            links: None,
            senders,
        };
        for ctx in sample_contexts() {
            let ctx = minijinja::Value::from_serialize(&ctx);
            for (name, _) in BUILTIN {
                composer.render(name, &ctx)?;
            }
        }
        Ok(composer)
    }

    /// Each task of the emails composed from now on carries a confirmation link.
    pub fn set_links(&mut self, links: Option<std::sync::Arc<dyn ConfirmLinks>>) {
        self.links = links;
    }

    /// Renders template `name`. `ctx` is a context already turned into a template value
    /// ([`minijinja::Value::from_serialize`]) once for the three templates of an email, so
    /// that it is not serialized again for each of them.
    fn render(&self, name: &str, ctx: &minijinja::Value) -> Result<String, ComposeError> {
        let shown = self
            .origin
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s.as_str())
            .unwrap_or(name);
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx.clone()))
            .map_err(|e| template_error(shown, &e))
    }

    /// The email for `batch`: multipart/alternative, plain text and HTML, in Vietnamese.
    ///
    /// `message_id` is used as given; the bracketed form of [`new_message_id`] is expected,
    /// and brackets are added when missing. `now` is the Date header and the day the days
    /// left are counted from.
    pub fn compose(
        &self,
        cfg: &Config,
        cal: &WorkCalendar,
        batch: &Batch,
        message_id: &str,
        now: DateTime<Tz>,
    ) -> Result<Message, ComposeError> {
        let mut ctx = context(cfg, cal, batch, now)?;
        if let Some(links) = &self.links {
            ctx.set_confirm_urls(|task, occ| links.url(&batch.office, task, occ, now.to_utc()));
        }
        let ctx = minijinja::Value::from_serialize(&ctx);
        let subject = one_line(&self.render(SUBJECT, &ctx)?);
        let text = self.render(TEXT, &ctx)?;
        let html = self.render(HTML, &ctx)?;

        let id = message_id.trim();
        if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ComposeError::MessageId(message_id.to_string()));
        }
        let id = if id.starts_with('<') && id.ends_with('>') {
            id.to_string()
        } else {
            format!("<{id}>")
        };
        let mailbox = |s: &str| parse_mailbox(s).map_err(|_| ComposeError::Address(s.into()));
        let sender = |s: &str| match self.senders.iter().find(|(text, _)| text == s) {
            Some((_, m)) => Ok(m.clone()),
            None => mailbox(s),
        };
        let from = sender(&cfg.mail.from)?;
        // The envelope is given, not read back from the headers just written: lettre would
        // parse the To and Cc headers again for it. Same addresses, same order.
        let mut envelope_to = Vec::with_capacity(batch.to.len() + batch.cc.len());
        let mut b = Message::builder()
            .from(from.clone())
            .subject(subject)
            .date(now.into())
            .message_id(Some(id));
        if let Some(r) = &cfg.mail.reply_to {
            b = b.reply_to(sender(r)?);
        }
        if batch.to.is_empty() {
            return Err(ComposeError::NoRecipient);
        }
        for t in &batch.to {
            let m = mailbox(t)?;
            envelope_to.push(m.email.clone());
            b = b.to(m);
        }
        for c in &batch.cc {
            let m = mailbox(c)?;
            envelope_to.push(m.email.clone());
            b = b.cc(m);
        }
        b = b.envelope(
            Envelope::new(Some(from.email), envelope_to).map_err(|_| ComposeError::NoRecipient)?,
        );
        // RFC 3834: an automatic message; well-behaved vacation responders stay quiet.
        b = b.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ));
        b = b.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Content-Language"),
            "vi".into(),
        ));
        let body = MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(super::mime::body(&text)),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(super::mime::body(&html)),
            );
        Ok(b.multipart(body)?)
    }
}

/// A plain-text message to the admin address (a delivery that failed for good). Not a
/// reminder: no templates, no ledger row.
pub fn admin_message(
    cfg: &Config,
    to: &str,
    subject: &str,
    body: &str,
    now: DateTime<Tz>,
) -> Result<Message, ComposeError> {
    let mailbox =
        |s: &str| Mailbox::from_str(s.trim()).map_err(|_| ComposeError::Address(s.into()));
    Ok(Message::builder()
        .from(mailbox(&cfg.mail.from)?)
        .to(mailbox(to)?)
        .subject(one_line(subject))
        .date(now.into())
        .message_id(Some(new_message_id(&cfg.mail.message_id_domain)))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ))
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_string())?)
}

/// `Mailbox::from_str(s.trim())`, without lettre's RFC 2822 parser for the common case of
/// a bare address of plain atoms (`dv-00001@vpubnd.example`): that parser gives such an
/// address back as it is, with no name, and [`Address::new`] checks it the same either way.
fn parse_mailbox(s: &str) -> Result<Mailbox, lettre::address::AddressError> {
    let s = s.trim();
    match s.split_once('@') {
        Some((user, domain)) if plain_atoms(user, b"_+-") && plain_atoms(domain, b"-") => {
            Ok(Mailbox::new(None, lettre::Address::new(user, domain)?))
        }
        _ => Mailbox::from_str(s),
    }
}

/// `s` is ASCII letters, digits and `extra` in runs joined by single dots.
fn plain_atoms(s: &str, extra: &[u8]) -> bool {
    s.split('.').all(|atom| {
        !atom.is_empty()
            && atom
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    })
}

fn template_error(name: &str, e: &minijinja::Error) -> ComposeError {
    ComposeError::Template {
        name: name.to_string(),
        line: e.line(),
        message: match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        },
    }
}

/// A fresh Message-ID in the bracketed form lettre and RFC 5322 want:
/// `<32 hex digits@domain>`.
pub fn new_message_id(domain: &str) -> String {
    format!("<{:032x}@{}>", rand::random::<u128>(), domain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn plain_addresses_parse_as_lettre_parses_them() {
        let same = |s: &str| {
            let want = Mailbox::from_str(s.trim()).map_err(|e| e.to_string());
            let got = parse_mailbox(s).map_err(|e| e.to_string());
            assert_eq!(got, want, "{s:?}");
        };
        for s in [
            "dv-00001@vpubnd.example",
            " hctc@vpubnd.example ",
            "a.b+c_d@x-y.example",
            "HCTC@VPUBND.example",
            "a..b@x.example",
            ".a@x.example",
            "a.@x.example",
            "a@x..example",
            "a@-x.example",
            "a@x.example-",
            "a@localhost",
            "a@b@c.example",
            "@x.example",
            "a@",
            "Trưởng phòng <truong@vpubnd.example>",
            "tên@vpubnd.example",
        ] {
            same(s);
        }
        let pieces = ["a", "Z", "0", ".", "-", "_", "+", "@", " ", "é", "<", ">"];
        let mut rng = rand::rng();
        for _ in 0..5000 {
            let s: String = (0..rng.random_range(1..14))
                .map(|_| pieces[rng.random_range(0..pieces.len())])
                .collect();
            same(&s);
        }
    }
}
