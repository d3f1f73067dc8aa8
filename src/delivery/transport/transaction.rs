//! One email's SMTP transaction over a pooled connection: MAIL FROM, RCPT TO for each
//! recipient, DATA and the content; again for the recipients a `452` put off.
//!
//! When the server offers PIPELINING (RFC 2920), MAIL, every RCPT and DATA go out in one
//! write and their replies are read in order, so an email costs two round trips (the
//! envelope, then the content) instead of three plus one per recipient. Every reply is
//! still looked at on its own: a refused recipient, a `452` and a refused DATA mean what
//! they mean in lockstep. Without PIPELINING each command waits for its reply. Either way
//! the content and its final dot are one write.
//!
//! When the caller already knows the email that follows on the same connection, its
//! envelope rides along with this one's content (RFC 2920 allows the content to start a
//! group): one round trip per email. Its replies are left unread on the connection, which
//! is then [`Primed`] for that email alone; they are read when it is sent. Nothing of it
//! is delivered before its own content goes: a connection closed while primed drops it.

use super::smtp::{Conn, PoolError};
use super::{Delivery, Refusal, sanitize_reply, unknown};
use crate::delivery::email::Email;
use lettre::transport::smtp::Error;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

/// The most recipients sent in one pipelined group. Their replies (some 30 bytes each) must
/// fit in the socket buffers while the group is still being written, or client and server
/// could both wait to write (RFC 2920, section 5); a larger envelope goes in lockstep.
const GROUP_MAX: usize = 100;

/// Whether the server offers PIPELINING: asked with a second EHLO, since lettre keeps only
/// the extensions it knows from the first. Sent before AUTH, once per connection. A server
/// that refuses the EHLO is driven in lockstep.
pub(super) async fn offers_pipelining(
    conn: &mut AsyncSmtpConnection,
    hello: &ClientId,
) -> Result<bool, Error> {
    match conn.command(Ehlo::new(hello.clone())).await {
        Ok(reply) => Ok(lists_pipelining(&reply)),
        Err(e) if e.status().is_some() => Ok(false),
        Err(e) => Err(e),
    }
}

/// An EHLO reply names PIPELINING among its extensions (after the server's name).
fn lists_pipelining(reply: &Response) -> bool {
    reply.message().skip(1).any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("PIPELINING"))
    })
}

/// A negative reply, as code and sanitised text.
pub(super) fn reply_of(e: &Error) -> Option<(u16, String)> {
    let code = e.status()?.to_string().parse().ok()?;
    let text = std::error::Error::source(e)
        .map(|s| sanitize_reply(&s.to_string()))
        .unwrap_or_default();
    Some((code, text))
}

/// An envelope written ahead of its email (MAIL, every RCPT and DATA, riding on the
/// content of the email before), its replies not yet read.
pub(super) struct Primed {
    /// The email it is for: no other may be sent on this connection.
    pub(super) message_id: String,
}

/// MAIL, RCPT for each recipient, DATA, the content; again for those a `452` put off.
/// With `next`, that email's envelope goes out with this one's last content when it can
/// (see the module's documentation), and `conn` is left [`Primed`] for it. A connection
/// primed for `msg` only reads the replies to its envelope.
pub(super) async fn transact(
    conn: &mut Conn,
    msg: &Email,
    next: Option<&Email>,
    data_sent: &AtomicBool,
) -> Result<Delivery, PoolError> {
    let envelope = msg.envelope();
    let body = msg.formatted();
    let options = mail_options(&conn.smtp, envelope, body)?;
    let wire = Wire::new(body);
    let mut pending: Vec<lettre::Address> = envelope.to().to_vec();
    let mut refused: Vec<Refusal> = Vec::new();
    let mut replies: Vec<String> = Vec::new();
    let mut primed = match conn.primed.take() {
        Some(p) if p.message_id == msg.message_id() => true,
        Some(p) => {
            // The server waits for another email's content: nothing may be sent on it
            // (the pool drops such a connection first).
            conn.primed = Some(p);
            return Err(PoolError::Client(
                "the connection is waiting for another email's content".into(),
            ));
        }
        None => false,
    };
    while !pending.is_empty() {
        let mail = Mail::new(envelope.from().cloned(), options.clone());
        let pending_now = std::mem::take(&mut pending);
        let recipients = if std::mem::take(&mut primed) {
            // Written with the email before: MAIL's reply first, then the rest.
            conn.smtp.read_response().await.map_err(PoolError::Smtp)?;
            group_replies(&mut conn.smtp, pending_now, &mut refused).await?
        } else if conn.pipelining && pending_now.len() <= GROUP_MAX {
            envelope_pipelined(&mut conn.smtp, &mail, pending_now, &mut refused).await?
        } else {
            envelope_lockstep(&mut conn.smtp, &mail, pending_now, &mut refused).await?
        };
        let Recipients {
            accepted,
            later,
            too_many,
        } = recipients;
        if accepted.is_empty() {
            // Nobody left to send this transaction to (the connection was RSET).
            break;
        }
        // The next email's envelope rides along with this email's last content.
        let ahead = match (next, &wire) {
            (Some(next), Wire::Text(_)) if later.is_empty() => envelope_ahead(conn, next),
            _ => None,
        };
        if ahead.is_some() {
            // Set before the write: whatever happens from here, the server may hold it.
            conn.primed = next.map(|n| Primed {
                message_id: n.message_id().to_string(),
            });
        }
        let content = Content {
            wire: &wire,
            ahead: ahead.as_deref(),
            accepted: &accepted,
            later_empty: later.is_empty(),
        };
        let smtp = &mut conn.smtp;
        if let Some(delivery) = data(smtp, content, data_sent, &mut replies, &mut refused).await? {
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

/// `next`'s envelope as one pipelined group, when the connection pipelines and the
/// envelope can go as one group; `None` when it must go on its own.
fn envelope_ahead(conn: &Conn, next: &Email) -> Option<String> {
    let envelope = next.envelope();
    if !conn.pipelining || envelope.to().is_empty() || envelope.to().len() > GROUP_MAX {
        return None;
    }
    let options = mail_options(&conn.smtp, envelope, next.formatted()).ok()?;
    let mail = Mail::new(envelope.from().cloned(), options);
    Some(
        Group {
            mail: &mail,
            to: envelope.to(),
        }
        .to_string(),
    )
}

/// MAIL FROM's parameters: SMTPUTF8 for non-ASCII addresses, 8BITMIME for a non-ASCII
/// body; an error when the server does not offer the one the email needs.
fn mail_options(
    conn: &AsyncSmtpConnection,
    envelope: &lettre::address::Envelope,
    body: &[u8],
) -> Result<Vec<MailParameter>, PoolError> {
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
/// for a further transaction, and that `452` reply. When none were taken, the server is
/// not waiting for content: the transaction was reset.
#[derive(Default)]
struct Recipients {
    accepted: Vec<lettre::Address>,
    later: Vec<lettre::Address>,
    too_many: Option<(u16, String)>,
}

impl Recipients {
    /// Sorts one RCPT TO's reply: taken; put off by a `452` once someone was taken (the
    /// server's limit per transaction); else refused. No reply at all fails the email.
    fn take(
        &mut self,
        addr: lettre::Address,
        reply: Result<Response, Error>,
        refused: &mut Vec<Refusal>,
    ) -> Result<(), PoolError> {
        match reply {
            Ok(_) => self.accepted.push(addr),
            Err(e) => match reply_of(&e) {
                Some((452, text)) if !self.accepted.is_empty() => {
                    self.too_many.get_or_insert((452, text));
                    self.later.push(addr);
                }
                Some((code, text)) => refused.push(Refusal {
                    address: addr.to_string(),
                    code,
                    text,
                }),
                None => return Err(PoolError::Smtp(e)),
            },
        }
        Ok(())
    }
}

/// One command at a time: MAIL, RCPT TO for each pending recipient until a `452` puts the
/// rest off, then DATA when someone was taken, RSET when nobody was.
async fn envelope_lockstep(
    conn: &mut AsyncSmtpConnection,
    mail: &Mail,
    pending: Vec<lettre::Address>,
    refused: &mut Vec<Refusal>,
) -> Result<Recipients, PoolError> {
    conn.command(mail).await.map_err(PoolError::Smtp)?;
    let mut r = Recipients::default();
    for addr in pending {
        if r.too_many.is_some() {
            r.later.push(addr);
            continue;
        }
        let reply = conn.command(Rcpt::new(addr.clone(), vec![])).await;
        r.take(addr, reply, refused)?;
    }
    if r.accepted.is_empty() {
        conn.command(Rset).await.map_err(PoolError::Smtp)?;
    } else {
        conn.command(Data).await.map_err(PoolError::Smtp)?;
    }
    Ok(r)
}

/// MAIL, every RCPT TO and DATA in one write (RFC 2920), then their replies in order. A
/// `452` puts off only the recipients it answered: the ones after it were asked too, and
/// those taken are taken. When nobody was taken, DATA must have been refused; a server
/// that says `354` all the same gets the final dot at once. Either way, RSET.
async fn envelope_pipelined(
    conn: &mut AsyncSmtpConnection,
    mail: &Mail,
    pending: Vec<lettre::Address>,
    refused: &mut Vec<Refusal>,
) -> Result<Recipients, PoolError> {
    // The group goes out as one command; its reply is MAIL's. A refused MAIL fails the
    // email and the connection is dropped, unread replies and all.
    conn.command(Group { mail, to: &pending })
        .await
        .map_err(PoolError::Smtp)?;
    group_replies(conn, pending, refused).await
}

/// The replies to a pipelined group after MAIL's, in order: each RCPT TO's, then DATA's
/// (see [`envelope_pipelined`]).
async fn group_replies(
    conn: &mut AsyncSmtpConnection,
    pending: Vec<lettre::Address>,
    refused: &mut Vec<Refusal>,
) -> Result<Recipients, PoolError> {
    let mut r = Recipients::default();
    for addr in pending {
        let reply = conn.read_response().await;
        r.take(addr, reply, refused)?;
    }
    let data = conn.read_response().await;
    match data {
        Ok(_) if !r.accepted.is_empty() => return Ok(r),
        Err(e) if !r.accepted.is_empty() || reply_of(&e).is_none() => {
            return Err(PoolError::Smtp(e));
        }
        Ok(_) => match conn.command(Raw(".\r\n")).await {
            Err(e) if reply_of(&e).is_none() => return Err(PoolError::Smtp(e)),
            _ => {}
        },
        Err(_) => {}
    }
    conn.command(Rset).await.map_err(PoolError::Smtp)?;
    Ok(r)
}

/// MAIL, a RCPT for each of `to` and DATA written as one command.
struct Group<'a> {
    mail: &'a Mail,
    to: &'a [lettre::Address],
}

impl fmt::Display for Group<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.mail)?;
        for a in self.to {
            write!(f, "{}", Rcpt::new(a.clone(), vec![]))?;
        }
        write!(f, "{Data}")
    }
}

/// Text written as it is, as one command.
struct Raw<'a>(&'a str);

impl fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Content followed by the next email's envelope, written as one command.
struct Ahead<'a>(&'a str, &'a str);

impl fmt::Display for Ahead<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)?;
        f.write_str(self.1)
    }
}

/// The content as it goes out after `354`.
enum Wire<'a> {
    /// Dot-stuffed, with the final `CRLF.CRLF`: written at once.
    Text(String),
    /// Not UTF-8 (never the case for our emails): lettre writes it, in two writes.
    Bytes(&'a [u8]),
}

impl<'a> Wire<'a> {
    fn new(body: &'a [u8]) -> Wire<'a> {
        let mut out = stuffed(body);
        out.extend_from_slice(b"\r\n.\r\n");
        match String::from_utf8(out) {
            Ok(s) => Wire::Text(s),
            Err(_) => Wire::Bytes(body),
        }
    }

    /// Writes the content (with `ahead`, the next email's envelope, right after it) and
    /// reads the content's reply.
    async fn send(
        &self,
        conn: &mut AsyncSmtpConnection,
        ahead: Option<&str>,
    ) -> Result<Response, Error> {
        match (self, ahead) {
            (Wire::Text(s), Some(a)) => conn.command(Ahead(s, a)).await,
            (Wire::Text(s), None) => conn.command(Raw(s)).await,
            (Wire::Bytes(b), _) => conn.message(b).await,
        }
    }
}

/// Dot-stuffing (RFC 5321, 4.5.2) exactly as lettre does it: a `.` that starts a line (at
/// the start, or right after CRLF) is doubled. Finds each CRLF-dot with `memchr`'s
/// vectorised search and copies whole runs between them: a byte at a time, this was the
/// costliest step of a send.
fn stuffed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 8);
    if body.first() == Some(&b'.') {
        out.push(b'.');
    }
    let mut from = 0;
    for at in memchr::memmem::find_iter(body, b"\r\n.") {
        let dot = at + 2;
        out.extend_from_slice(&body[from..=dot]);
        out.push(b'.');
        from = dot + 1;
    }
    out.extend_from_slice(&body[from..]);
    out
}

/// One transaction's content: the email, the recipients taken, and whether none were put
/// off for a further transaction.
struct Content<'a> {
    wire: &'a Wire<'a>,
    /// The next email's envelope, written right after the content.
    ahead: Option<&'a str>,
    accepted: &'a [lettre::Address],
    later_empty: bool,
}

/// The content, once the server said `354`. The server's reply goes to `replies`; a
/// refusal of a later part of a split envelope goes to `refused`. `Ok(Some(_))` is the
/// email's outcome when the connection failed after the final dot of a later transaction.
async fn data(
    conn: &mut AsyncSmtpConnection,
    content: Content<'_>,
    data_sent: &AtomicBool,
    replies: &mut Vec<String>,
    refused: &mut Vec<Refusal>,
) -> Result<Option<Delivery>, PoolError> {
    data_sent.store(true, Ordering::SeqCst);
    match content.wire.send(conn, content.ahead).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dot_that_starts_a_line_is_doubled_and_no_other() {
        let cases: [(&[u8], &[u8]); 7] = [
            (b".", b".."),
            (b".a\r\n.b\r\n", b"..a\r\n..b\r\n"),
            (b"a.\r\nb.c", b"a.\r\nb.c"),
            (b"a\r\n..\r\n", b"a\r\n...\r\n"),
            // A bare CR or LF does not start a line (as lettre has it).
            (b"a\r.b\n.c", b"a\r.b\n.c"),
            (b"a\r\r\n.b", b"a\r\r\n..b"),
            ("đ\r\n.Đ".as_bytes(), "đ\r\n..Đ".as_bytes()),
        ];
        for (body, want) in cases {
            assert_eq!(stuffed(body), want, "{:?}", String::from_utf8_lossy(body));
        }
    }

    /// lettre's own dot-stuffing, a byte at a time (its `ClientCodec` is private).
    fn stuffed_as_lettre(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut line_start, mut after_cr) = (true, false);
        for &b in body {
            out.push(b);
            if b == b'\r' {
                (line_start, after_cr) = (false, true);
            } else if after_cr {
                (line_start, after_cr) = (b == b'\n', false);
            } else if line_start {
                if b == b'.' {
                    out.push(b'.');
                }
                line_start = false;
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn stuffing_matches_lettre(body in proptest::collection::vec(
            proptest::sample::select(vec![b'.', b'\r', b'\n', b'a']), 0..40)) {
            proptest::prop_assert_eq!(stuffed(&body), stuffed_as_lettre(&body));
        }
    }

    #[test]
    fn the_content_ends_with_the_final_dot_and_stays_bytes_when_not_utf8() {
        match Wire::new(b"x\r\n.y") {
            Wire::Text(s) => assert_eq!(s, "x\r\n..y\r\n.\r\n"),
            Wire::Bytes(_) => panic!("UTF-8 content goes as text"),
        }
        assert!(matches!(Wire::new(b"\xff\r\n"), Wire::Bytes(b"\xff\r\n")));
    }

    #[test]
    fn the_group_is_mail_every_rcpt_and_data() {
        let mail = Mail::new(Some("a@x.example".parse().unwrap()), vec![]);
        let to: [lettre::Address; 2] = [
            "b@x.example".parse().unwrap(),
            "c@x.example".parse().unwrap(),
        ];
        let group = Group {
            mail: &mail,
            to: &to,
        };
        assert_eq!(
            group.to_string(),
            "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nRCPT TO:<c@x.example>\r\nDATA\r\n"
        );
    }
}
