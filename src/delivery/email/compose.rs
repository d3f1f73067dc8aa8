//! Rendering: the [`Composer`] turns a batch into a multipart email through the templates;
//! [`admin_message`] is the plain note to the admin.

use super::Batch;
use super::context::{context, sample_contexts};
use super::message::Email;
use super::text::{html_escape, one_line};
use crate::calendar::workdays::WorkCalendar;
use crate::plan::config::Config;
use chrono::DateTime;
use chrono_tz::Tz;
use lettre::Message;
use lettre::address::Envelope;
use lettre::message::header::{
    self, ContentTransferEncoding, ContentType, HeaderName, HeaderValue, Headers,
};
use lettre::message::{Mailbox, Mailboxes, MultiPart};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use rand::Rng;
use std::borrow::Cow;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

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
    /// `mail.from` and `mail.reply_to` as parsed and encoded once here (each email has the
    /// same), with the text they were parsed from: another config's are parsed again.
    senders: Arc<[Sender]>,
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
            .filter_map(|s| Some(Sender::new(s, Mailbox::from_str(s.trim()).ok()?)))
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
    ) -> Result<Email, ComposeError> {
        let (subject, text, html) = self.texts(cfg, cal, batch, now)?;
        self.write(cfg, batch, message_id, subject, &text, &html, now)
    }

    /// The subject (on one line), the plain text and the HTML of `batch`'s email.
    fn texts(
        &self,
        cfg: &Config,
        cal: &WorkCalendar,
        batch: &Batch,
        now: DateTime<Tz>,
    ) -> Result<(String, String, String), ComposeError> {
        let mut ctx = context(cfg, cal, batch, now)?;
        if let Some(links) = &self.links {
            ctx.set_confirm_urls(|task, occ| links.url(&batch.office, task, occ, now.to_utc()));
        }
        let ctx = minijinja::Value::from_serialize(&ctx);
        let subject = one_line(&self.render(SUBJECT, &ctx)?);
        let text = self.render(TEXT, &ctx)?;
        let html = self.render(HTML, &ctx)?;
        Ok((subject, text, html))
    }

    /// [`compose`](Composer::compose) once the templates are rendered: the headers and the
    /// two parts, written out.
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        cfg: &Config,
        batch: &Batch,
        message_id: &str,
        subject: String,
        text: &str,
        html: &str,
        now: DateTime<Tz>,
    ) -> Result<Email, ComposeError> {
        let id = bracketed_id(message_id)?;
        let from = self.sender(&cfg.mail.from)?;
        let reply_to = match &cfg.mail.reply_to {
            Some(r) => Some(self.sender(r)?),
            None => None,
        };
        if batch.to.is_empty() {
            return Err(ComposeError::NoRecipient);
        }
        // The envelope is the To and Cc addresses in their order, as given: not read back
        // from the headers.
        let mut envelope_to = Vec::with_capacity(batch.to.len() + batch.cc.len());
        let mut mailboxes = |list: &[String]| -> Result<Mailboxes, ComposeError> {
            let mut all = Mailboxes::new();
            for s in list {
                let m = parse_mailbox(s).map_err(|_| ComposeError::Address(s.clone()))?;
                envelope_to.push(m.email.clone());
                all.push(m);
            }
            Ok(all)
        };
        let to = mailboxes(&batch.to)?;
        let cc = mailboxes(&batch.cc)?;
        let envelope = Envelope::new(Some(from.mailbox.email.clone()), envelope_to)
            .map_err(|_| ComposeError::NoRecipient)?;

        // The bytes lettre's `Message::formatted()` gives for the same headers and a
        // multipart/alternative of the two parts, written once into one buffer. Headers
        // that need encoding or folding are encoded by lettre; the rest is cached.
        let fixed = &*FIXED;
        let text_encoding = super::mime::encoding(text);
        let html_encoding = super::mime::encoding(html);
        let mut out = Vec::with_capacity(
            1024 + 4 * subject.len()
                + 64 * (batch.to.len() + batch.cc.len())
                + (text.len() + html.len()) * 7 / 4,
        );
        out.extend_from_slice(&from.from_line);
        let mut headers = Headers::with_capacity(3);
        headers.set(header::Subject::from(subject.clone()));
        headers.set(header::Date::new(now.into()));
        headers.set(header::MessageId::from(id.clone()));
        write_headers(&mut out, &headers);
        if let Some(r) = &reply_to {
            out.extend_from_slice(&r.reply_to_line);
        }
        headers.clear();
        headers.set(header::To::from(to));
        if !batch.cc.is_empty() {
            headers.set(header::Cc::from(cc));
        }
        write_headers(&mut out, &headers);
        // RFC 3834: an automatic message; well-behaved vacation responders stay quiet.
        out.extend_from_slice(&fixed.tail);
        let boundary = boundary();
        out.extend_from_slice(&fixed.content_type.0);
        out.extend_from_slice(&boundary);
        out.extend_from_slice(&fixed.content_type.1);
        out.extend_from_slice(b"\r\n");
        for (kind, body, encoding) in [
            (Kind::Text, text, text_encoding),
            (Kind::Html, html, html_encoding),
        ] {
            out.extend_from_slice(b"--");
            out.extend_from_slice(&boundary);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&fixed.part_head(kind, encoding));
            out.extend_from_slice(b"\r\n");
            super::mime::write(body, encoding, &mut out);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--");
        out.extend_from_slice(&boundary);
        out.extend_from_slice(b"--\r\n");
        Ok(Email::new(envelope, id, subject, out))
    }

    /// `mail.from` or `mail.reply_to` with its header lines: cached when it is this
    /// composer's, else parsed now.
    fn sender(&self, text: &str) -> Result<Cow<'_, Sender>, ComposeError> {
        match self.senders.iter().find(|s| s.text == text) {
            Some(s) => Ok(Cow::Borrowed(s)),
            None => {
                let m = parse_mailbox(text).map_err(|_| ComposeError::Address(text.into()))?;
                Ok(Cow::Owned(Sender::new(text, m)))
            }
        }
    }
}

/// A sender address (`mail.from`, `mail.reply_to`) and its `From` and `Reply-To` lines as
/// lettre encodes them.
#[derive(Clone)]
struct Sender {
    /// The text it was parsed from.
    text: String,
    mailbox: Mailbox,
    from_line: Box<[u8]>,
    reply_to_line: Box<[u8]>,
}

impl Sender {
    fn new(text: &str, mailbox: Mailbox) -> Sender {
        let line = |h: &mut Headers| {
            let mut out = Vec::new();
            write_headers(&mut out, h);
            out.into_boxed_slice()
        };
        let mut from = Headers::new();
        from.set(header::From::from(Mailboxes::from(mailbox.clone())));
        let mut reply_to = Headers::new();
        reply_to.set(header::ReplyTo::from(Mailboxes::from(mailbox.clone())));
        Sender {
            text: text.to_string(),
            from_line: line(&mut from),
            reply_to_line: line(&mut reply_to),
            mailbox,
        }
    }
}

/// The two parts of a reminder.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Html,
}

/// What is the same in every reminder, as lettre formats it.
struct Fixed {
    /// `Auto-Submitted`, `Content-Language` and `MIME-Version`.
    tail: Vec<u8>,
    /// The multipart's `Content-Type` line before and after its boundary.
    content_type: (Vec<u8>, Vec<u8>),
    /// Each part's headers by kind and by transfer encoding (7bit, quoted-printable,
    /// base64: the ones [`super::mime::encoding`] chooses).
    parts: [[Vec<u8>; 3]; 2],
}

/// A boundary of lettre's length, of letters only: where lettre folds the `Content-Type`
/// line depends on the boundary's length alone.
const BOUNDARY_PLACEHOLDER: &str = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

static FIXED: LazyLock<Fixed> = LazyLock::new(|| {
    let mut tail = Headers::new();
    tail.insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("Auto-Submitted"),
        "auto-generated".into(),
    ));
    tail.insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("Content-Language"),
        "vi".into(),
    ));
    tail.set(header::MIME_VERSION_1_0);
    let multipart = MultiPart::alternative()
        .boundary(BOUNDARY_PLACEHOLDER)
        .build();
    let mut content_type = Vec::new();
    write_headers(&mut content_type, multipart.headers());
    let at = content_type
        .windows(BOUNDARY_LEN)
        .position(|w| w == BOUNDARY_PLACEHOLDER.as_bytes())
        .expect("the Content-Type line holds its boundary");
    let after = content_type.split_off(at + BOUNDARY_LEN);
    content_type.truncate(at);
    let encodings = [
        ContentTransferEncoding::SevenBit,
        ContentTransferEncoding::QuotedPrintable,
        ContentTransferEncoding::Base64,
    ];
    Fixed {
        tail: {
            let mut out = Vec::new();
            write_headers(&mut out, &tail);
            out
        },
        content_type: (content_type, after),
        parts: [Kind::Text, Kind::Html].map(|k| encodings.map(|e| part_head(k, e))),
    }
});

impl Fixed {
    fn part_head(&self, kind: Kind, encoding: ContentTransferEncoding) -> Cow<'_, [u8]> {
        let i = match encoding {
            ContentTransferEncoding::SevenBit => 0,
            ContentTransferEncoding::QuotedPrintable => 1,
            ContentTransferEncoding::Base64 => 2,
            _ => return Cow::Owned(part_head(kind, encoding)),
        };
        Cow::Borrowed(&self.parts[kind as usize][i])
    }
}

/// A part's headers as lettre's `SinglePart` writes them: its `Content-Type`, then the
/// `Content-Transfer-Encoding` of its body.
fn part_head(kind: Kind, encoding: ContentTransferEncoding) -> Vec<u8> {
    let mut h = Headers::new();
    h.set(match kind {
        Kind::Text => ContentType::TEXT_PLAIN,
        Kind::Html => ContentType::TEXT_HTML,
    });
    h.set(encoding);
    let mut out = Vec::new();
    write_headers(&mut out, &h);
    out
}

/// The length of lettre's multipart boundaries.
const BOUNDARY_LEN: usize = 40;

/// A random boundary of lettre's alphabet (ASCII letters and digits) and length.
fn boundary() -> [u8; BOUNDARY_LEN] {
    let mut rng = rand::rng();
    std::array::from_fn(|_| rng.sample(rand::distr::Alphanumeric))
}

/// Appends `headers` as lettre's `Display` writes them: `Name: value` lines, each ending
/// in CRLF.
fn write_headers(out: &mut Vec<u8>, headers: &Headers) {
    struct Bytes<'a>(&'a mut Vec<u8>);
    impl std::fmt::Write for Bytes<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
    std::fmt::Write::write_fmt(&mut Bytes(out), format_args!("{headers}"))
        .expect("writing into a Vec does not fail");
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

/// `message_id` trimmed, in brackets (added when missing); an error when it is empty or
/// holds whitespace or control characters.
fn bracketed_id(message_id: &str) -> Result<String, ComposeError> {
    let id = message_id.trim();
    if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ComposeError::MessageId(message_id.to_string()));
    }
    Ok(if id.starts_with('<') && id.ends_with('>') {
        id.to_string()
    } else {
        format!("<{id}>")
    })
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
    use crate::plan::config::Grouping;
    use lettre::message::{Body, SinglePart};
    use rand::seq::IndexedRandom;

    /// The old path, kept as the oracle: lettre's `MessageBuilder` and `MultiPart` (with
    /// `boundary`) as `compose` built every email before it wrote them itself, and lettre's
    /// own `Body::new` for the parts.
    #[allow(clippy::too_many_arguments)]
    fn with_lettre(
        cfg: &Config,
        batch: &Batch,
        message_id: &str,
        subject: &str,
        text: &str,
        html: &str,
        now: DateTime<Tz>,
        boundary: &str,
    ) -> Result<Message, ComposeError> {
        let id = bracketed_id(message_id)?;
        let mailbox =
            |s: &str| Mailbox::from_str(s.trim()).map_err(|_| ComposeError::Address(s.into()));
        let from = mailbox(&cfg.mail.from)?;
        let mut envelope_to = Vec::new();
        let mut b = Message::builder()
            .from(from.clone())
            .subject(subject)
            .date(now.into())
            .message_id(Some(id));
        if let Some(r) = &cfg.mail.reply_to {
            b = b.reply_to(mailbox(r)?);
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
        b = b.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ));
        b = b.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Content-Language"),
            "vi".into(),
        ));
        let body = MultiPart::alternative()
            .boundary(boundary)
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(Body::new(text.to_string())),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(Body::new(html.to_string())),
            );
        Ok(b.multipart(body)?)
    }

    /// The boundary in `raw`'s `Content-Type`.
    fn boundary_of(raw: &[u8]) -> String {
        let key = b"boundary=\"";
        let at = raw
            .windows(key.len())
            .position(|w| w == key)
            .expect("a boundary")
            + key.len();
        String::from_utf8(raw[at..at + BOUNDARY_LEN].to_vec()).unwrap()
    }

    /// `write` gives lettre's bytes, envelope, Message-ID and subject, or lettre's error.
    #[allow(clippy::too_many_arguments)]
    fn same_as_lettre(
        composer: &Composer,
        cfg: &Config,
        batch: &Batch,
        id: &str,
        subject: &str,
        text: &str,
        html: &str,
        now: DateTime<Tz>,
    ) {
        let ours = composer.write(cfg, batch, id, subject.to_string(), text, html, now);
        let email = match ours {
            Ok(email) => email,
            Err(e) => {
                let want = with_lettre(cfg, batch, id, subject, text, html, now, "b")
                    .expect_err("lettre fails too");
                assert_eq!(e.to_string(), want.to_string(), "{batch:?}");
                return;
            }
        };
        let boundary = boundary_of(email.formatted());
        assert!(
            boundary.len() == 40 && boundary.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{boundary}"
        );
        let want = with_lettre(cfg, batch, id, subject, text, html, now, &boundary)
            .unwrap_or_else(|e| panic!("lettre fails where we do not: {e}; {batch:?}"));
        assert_eq!(
            String::from_utf8_lossy(email.formatted()),
            String::from_utf8_lossy(&want.formatted()),
            "{batch:?}"
        );
        assert_eq!(email.formatted(), &want.formatted()[..]);
        assert_eq!(email.envelope(), want.envelope());
        assert_eq!(
            Some(email.message_id()),
            want.headers().get_raw("Message-ID")
        );
        assert_eq!(email.subject(), subject);
    }

    fn seed_batches(cfg: &Config, now: DateTime<Tz>) -> Vec<Batch> {
        let utc = now.to_utc();
        let cal = cfg.work_calendar(2024);
        let due =
            crate::plan::planner::plan(cfg, &cal, utc, utc, &std::collections::HashSet::new()).due;
        super::super::batches(cfg, &due)
    }

    /// Sender texts: bare, named, names that need quoting (a comma, quotes) or encoding and
    /// folding, and one that does not parse.
    const SENDERS: [&str; 7] = [
        "nhacviec@vpubnd.example",
        "Văn phòng UBND tỉnh <nhacviec@vpubnd.example>",
        "\"Văn phòng, UBND tỉnh\" <nv@vpubnd.example>",
        "\"Phòng \\\"HC-TC\\\"\" <hctc@vpubnd.example>",
        "Plain Name <plain@vpubnd.example>",
        "Bộ phận Nhắc việc – Văn phòng Ủy ban nhân dân tỉnh Khánh Hòa, Trung tâm Phục vụ hành chính công <nhac.viec@vpubnd.example>",
        "not an address",
    ];

    /// Recipients: bare, named (Vietnamese, with commas or quotes), long.
    const RECIPIENTS: [&str; 8] = [
        "hctc@vpubnd.example",
        "dv-00001@vpubnd.example",
        "Trưởng phòng HC-TC <truong.hctc@vpubnd.example>",
        "\"Kinh tế, Tài chính\" <kt@vpubnd.example>",
        "\"Sở \\\"Nội vụ\\\"\" <snv@vpubnd.example>",
        "Lãnh đạo Văn phòng <ldvp@vpubnd.example>",
        "a.very.long.local.part.for.folding.tests@a-rather-long-domain-name.vpubnd.example",
        "Ban Chỉ đạo cải cách hành chính tỉnh Khánh Hòa năm 2024 <bcd.cchc@vpubnd.example>",
    ];

    #[test]
    fn seed_batches_are_written_as_lettre_writes_them() {
        let mut cfg = crate::plan::config::seed_config();
        let mut n = 0;
        for grouping in [Grouping::Digest, Grouping::PerNudge] {
            cfg.mail.grouping = grouping;
            let composer = Composer::new(&cfg).unwrap();
            let cal = cfg.work_calendar(2024);
            // Every third day of the year: the reminders before, on and after deadlines.
            let days = (0..122).map(|i| {
                chrono::NaiveDate::from_ymd_opt(2024, 1, 2).unwrap() + chrono::Days::new(3 * i)
            });
            for day in days {
                let now = crate::delivery::email::tests::at(&format!("{day} 08:00"));
                for (i, batch) in seed_batches(&cfg, now).iter().enumerate().take(60) {
                    let id = new_message_id(&cfg.mail.message_id_domain);
                    let email = composer.compose(&cfg, &cal, batch, &id, now).unwrap();
                    let (subject, text, html) = composer.texts(&cfg, &cal, batch, now).unwrap();
                    let boundary = boundary_of(email.formatted());
                    let want =
                        with_lettre(&cfg, batch, &id, &subject, &text, &html, now, &boundary)
                            .unwrap();
                    assert_eq!(
                        String::from_utf8_lossy(email.formatted()),
                        String::from_utf8_lossy(&want.formatted()),
                        "{day} #{i}"
                    );
                    assert_eq!(email.envelope(), want.envelope());
                    n += 1;
                }
            }
        }
        assert!(n > 300, "only {n} emails");
    }

    #[test]
    fn senders_recipients_and_texts_are_written_as_lettre_writes_them() {
        let mut rng = rand::rng();
        let words = [
            "Kế hoạch",
            "cải cách",
            "hành chính",
            "năm 2024",
            "—",
            "[CCHC]",
            "Sở Nội vụ",
            "Plan",
            "report",
            "due",
            "=?utf-8?",
            "\"quoted\"",
            "a,b",
            "(x)",
            "Đề nghị",
            "Thứ Ba, 30/01/2024",
            "https://vpubnd.example/xac-nhan?k=abc&t=1",
            "  ",
            "\t",
        ];
        let lines = [
            "Kính gửi: Phòng Hành chính – Tổ chức\n",
            "Dear office,\n",
            "<p>Kính gửi: <strong>Phòng Kinh tế</strong></p>\n",
            "<td>IV.1</td><td>Kế hoạch CCHC năm 2024 của đơn vị</td>\n",
            "plain ascii line\n",
            "trailing space \n",
            "\n",
            "a line that is rather long, long enough that seven bit would not do for it at all\n",
        ];
        let cfg0 = crate::delivery::email::tests::config("");
        let batch0 =
            seed_batches(&cfg0, crate::delivery::email::tests::at("2024-01-30 08:00")).remove(0);
        let now = crate::delivery::email::tests::at("2024-01-30 08:00");
        for round in 0..400 {
            let mut cfg = cfg0.clone();
            cfg.mail.from = SENDERS[round % 6].to_string();
            cfg.mail.reply_to = match round % 4 {
                0 => None,
                _ => Some(SENDERS.choose(&mut rng).unwrap().to_string()),
            };
            // Most rounds with the composer of this config (its cached sender lines),
            // some with another config's (parsed per email).
            let composer = if round % 5 == 0 {
                Composer::new(&cfg0).unwrap()
            } else {
                Composer::new(&cfg).unwrap()
            };
            let pick = |rng: &mut rand::rngs::ThreadRng, max: usize| -> Vec<String> {
                let n = rng.random_range(0..=max);
                (0..n)
                    .map(|_| RECIPIENTS.choose(rng).unwrap().to_string())
                    .collect()
            };
            let mut batch = batch0.clone();
            batch.to = pick(&mut rng, 6);
            if batch.to.is_empty() && round % 3 != 0 {
                batch.to.push(RECIPIENTS[0].to_string());
            }
            batch.cc = pick(&mut rng, 4);
            let subject: String = (0..rng.random_range(1..30))
                .map(|_| *words.choose(&mut rng).unwrap())
                .collect::<Vec<_>>()
                .join(" ");
            let subject = one_line(&subject);
            let body = |rng: &mut rand::rngs::ThreadRng, ascii: bool| -> String {
                (0..rng.random_range(0..40))
                    .map(|_| {
                        let l = lines.choose(rng).unwrap();
                        if ascii && !l.is_ascii() { "ascii\n" } else { l }
                    })
                    .collect()
            };
            let text = body(&mut rng, round % 3 == 0);
            let html = body(&mut rng, round % 4 == 0);
            same_as_lettre(
                &composer,
                &cfg,
                &batch,
                "<r@vpubnd.example>",
                &subject,
                &text,
                &html,
                now,
            );
        }
    }

    #[test]
    fn errors_are_lettre_s() {
        let cfg = crate::delivery::email::tests::config("");
        let now = crate::delivery::email::tests::at("2024-01-30 08:00");
        let composer = Composer::new(&cfg).unwrap();
        let batch = seed_batches(&cfg, now).remove(0);
        let same = |cfg: &Config, batch: &Batch, id: &str| {
            same_as_lettre(&composer, cfg, batch, id, "s", "t\n", "<p>h</p>\n", now);
            assert!(
                composer
                    .write(cfg, batch, id, "s".into(), "t", "h", now)
                    .is_err()
            );
        };
        for id in ["", "  ", "<a b@x.example>", "<a\u{1}@x.example>"] {
            same(&cfg, &batch, id);
        }
        let mut b = batch.clone();
        b.to.clear();
        same(&cfg, &b, "<a@x.example>");
        let mut b = batch.clone();
        b.to.push("not an address".into());
        same(&cfg, &b, "<a@x.example>");
        let mut b = batch.clone();
        b.cc.push("x@".into());
        same(&cfg, &b, "<a@x.example>");
        let mut c = cfg.clone();
        c.mail.from = "nobody".into();
        same(&c, &batch, "<a@x.example>");
        let mut c = cfg.clone();
        c.mail.reply_to = Some("a@b@c.example".into());
        same(&c, &batch, "<a@x.example>");
        // Brackets are added to a bare id, as before.
        let email = composer
            .write(&cfg, &batch, " abc@x.example ", "s".into(), "t", "h", now)
            .unwrap();
        assert_eq!(email.message_id(), "<abc@x.example>");
        same_as_lettre(&composer, &cfg, &batch, "abc@x.example", "s", "t", "h", now);
    }

    #[test]
    fn boundaries_differ() {
        let a = boundary();
        assert_ne!(a, boundary());
        assert!(a.iter().all(u8::is_ascii_alphanumeric));
    }

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
