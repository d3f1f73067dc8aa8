//! A composed email as it goes out: its envelope, its Message-ID and its bytes, written once
//! by the [`Composer`](super::Composer) and sent or stored as they are.

use lettre::Message;
use lettre::address::Envelope;
use std::sync::Arc;

/// One email, ready for the wire: what lettre's `Message::formatted()` would give, kept
/// instead of the tree of headers and parts it is made from.
#[derive(Debug, Clone)]
pub struct Email {
    envelope: Envelope,
    /// As in the header (bracketed); empty when the email has none.
    message_id: String,
    /// The `Subject` before its encoding for the header.
    subject: String,
    /// Shared so that the outbox's writer thread takes it without a copy.
    formatted: Arc<Vec<u8>>,
}

impl Email {
    pub(super) fn new(
        envelope: Envelope,
        message_id: String,
        subject: String,
        formatted: Vec<u8>,
    ) -> Email {
        Email {
            envelope,
            message_id,
            subject,
            formatted: Arc::new(formatted),
        }
    }

    /// Who the email is from and to, for MAIL FROM and RCPT TO.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The `Message-ID` header's value (`<…@…>`), or `""` when the email has none.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The subject as written in the template, before its encoding for the header.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The whole email, headers and body, with CRLF line endings.
    pub fn formatted(&self) -> &[u8] {
        &self.formatted
    }

    /// [`formatted`](Email::formatted), shared rather than copied.
    pub fn shared_bytes(&self) -> Arc<Vec<u8>> {
        Arc::clone(&self.formatted)
    }
}

/// An email built with lettre (the admin's notes, tests): its envelope, Message-ID,
/// subject and `formatted()` bytes.
impl From<Message> for Email {
    fn from(msg: Message) -> Email {
        let header = |name: &str| msg.headers().get_raw(name).unwrap_or_default().to_string();
        Email::new(
            msg.envelope().clone(),
            header("Message-ID"),
            header("Subject"),
            msg.formatted(),
        )
    }
}
