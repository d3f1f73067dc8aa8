//! The body of each part of an email, encoded in one linear pass each for line endings and
//! the transfer encoding.
//!
//! The output is byte for byte what lettre's `Body::new(String)` makes of the same text (the
//! same choice of 7bit, quoted-printable or base64, the same CRLF line endings, the same soft
//! line breaks): the tests hold it to that. lettre gets there by inserting each `\r` into
//! the string in place, a copy of the rest of the body per line, and its quoted-printable
//! encoder builds a `String` one `char` at a time; a reminder's body is a few kilobytes
//! of Vietnamese text and HTML, and at thousands of emails per sweep that was a tenth of
//! the composing. [`write`] appends the encoded body to the email's one buffer.

use base64::Engine;
#[cfg(test)]
use lettre::message::Body;
use lettre::message::header::ContentTransferEncoding;

/// The longest encoded line, without its CRLF (RFC 2045).
const LINE: usize = 76;

/// `text`, encoded as lettre's `Body::new(text)` would: see [`encoding`] and [`write`].
#[cfg(test)]
pub(super) fn body(text: &str) -> Body {
    let encoding = encoding(text);
    let mut out = Vec::new();
    write(text, encoding, &mut out);
    Body::dangerous_pre_encoded(out, encoding)
}

/// The transfer encoding lettre's `Body::new(text)` chooses (`email_encoding`'s choice for
/// a `str`, without SMTPUTF8), judged on the text before its line endings become CRLF:
/// 7bit when `text` is ASCII with short lines, else quoted-printable unless more than a
/// third of its bytes need escaping, then base64 (never 8bit: the server may not offer
/// 8BITMIME).
pub(super) fn encoding(text: &str) -> ContentTransferEncoding {
    let text = text.as_bytes();
    if text.is_ascii() && !line_too_long(text) {
        ContentTransferEncoding::SevenBit
    } else if quoted_printable_efficient(text) {
        ContentTransferEncoding::QuotedPrintable
    } else {
        ContentTransferEncoding::Base64
    }
}

/// Appends `text` to `out` in `encoding` (the one [`encoding`] chose for it), with CRLF
/// line endings: the bytes of lettre's `Body::new(text)`.
pub(super) fn write(text: &str, encoding: ContentTransferEncoding, out: &mut Vec<u8>) {
    match encoding {
        ContentTransferEncoding::QuotedPrintable => {
            quoted_printable(&crlf(text.as_bytes()), out);
        }
        ContentTransferEncoding::Base64 => base64(&crlf(text.as_bytes()), out),
        _ => crlf_into(text.as_bytes(), out),
    }
}

/// Some line is too long for 7bit. Measured as `email_encoding` does: the first line from
/// the start, every later one from the previous `\n`, the last one to the end.
fn line_too_long(text: &[u8]) -> bool {
    let mut last = 0;
    for (i, _) in text.iter().enumerate().filter(|(_, b)| **b == b'\n') {
        if i - last >= LINE {
            return true;
        }
        last = i;
    }
    text.len() - last >= LINE
}

/// At most a third of the bytes need escaping (line breaks count).
fn quoted_printable_efficient(text: &[u8]) -> bool {
    let escaped = text
        .iter()
        .filter(|b| !matches!(b, b'\t' | b' '..=b'~'))
        .count();
    escaped <= text.len() / 3
}

/// Every `\n` not already preceded by `\r` becomes `\r\n`.
fn crlf(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 32);
    crlf_into(text, &mut out);
    out
}

/// [`crlf`], appended to `out`.
fn crlf_into(text: &[u8], out: &mut Vec<u8>) {
    for line in text.split_inclusive(|b| *b == b'\n') {
        match line.split_last() {
            Some((b'\n', rest)) => {
                out.extend_from_slice(rest);
                // A piece that is only `\n` follows another `\n` or starts the text.
                if rest.last() != Some(&b'\r') {
                    out.push(b'\r');
                }
                out.push(b'\n');
            }
            _ => out.extend_from_slice(line),
        }
    }
}

/// Base64 in lines of 76 characters joined by CRLF, the last one without it, appended to
/// `out`.
fn base64(data: &[u8], out: &mut Vec<u8>) {
    let engine = &base64::engine::general_purpose::STANDARD;
    out.reserve(data.len().div_ceil(57) * (LINE + 2));
    let mut line = [0u8; LINE];
    for (i, chunk) in data.chunks(LINE / 4 * 3).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        let n = engine
            .encode_slice(chunk, &mut line)
            .expect("57 bytes fit a 76-character line");
        out.extend_from_slice(&line[..n]);
    }
}

/// Quoted-printable of a text with CRLF line endings, as the `quoted_printable` crate's
/// `encode` (text mode, 76 characters) writes it: CRLF stays a hard line break, a space or
/// tab before it is escaped, a lone CR is `=0D`, lines are cut by `=` soft breaks.
/// Appended to `out`.
fn quoted_printable(input: &[u8], out: &mut Vec<u8>) {
    out.reserve(input.len() + input.len() / 2);
    let start = out.len();
    let mut q = Qp {
        out,
        start,
        on_line: 0,
        backup: start,
    };
    let mut was_cr = false;
    let mut i = 0;
    while i < input.len() {
        let byte = input[i];
        i += 1;
        if was_cr {
            was_cr = false;
            if byte == b'\n' {
                q.escape_trailing_space();
                q.out.extend_from_slice(b"\r\n");
                q.on_line = 0;
                continue;
            }
            q.append(b"=0D");
        }
        if byte == b'\r' {
            was_cr = true;
            continue;
        }
        // A run of bytes that need no escaping, while at least 3 characters are left on
        // the line: copied as they are.
        if LINE - q.on_line >= 3 && !needs_escape(byte) {
            let max_run = LINE - q.on_line - 2;
            let start = i - 1;
            let mut end = i;
            while end < input.len() && end - start < max_run && !needs_escape(input[end]) {
                end += 1;
            }
            q.out.extend_from_slice(&input[start..end]);
            q.on_line += end - start;
            q.backup = q.out.len();
            i = end;
            continue;
        }
        match byte {
            b'=' => q.append(b"=3D"),
            b'\t' | b' '..=b'~' => q.append(&[byte]),
            _ => q.append(&hex(byte)),
        }
    }
    if was_cr {
        q.append(b"=0D");
    } else {
        q.escape_trailing_space();
    }
}

fn needs_escape(b: u8) -> bool {
    !matches!(b, b'\t' | b' '..=b'<' | b'>'..=b'~')
}

fn hex(b: u8) -> [u8; 3] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    [b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0x0f)]]
}

/// The quoted-printable output and where its current line stands.
struct Qp<'a> {
    out: &'a mut Vec<u8>,
    /// Where the encoded text starts in `out`.
    start: usize,
    /// Characters on the current output line.
    on_line: usize,
    /// Where the last thing appended starts: a soft break goes there when the line is full.
    backup: usize,
}

impl Qp<'_> {
    fn append(&mut self, piece: &[u8]) {
        if self.on_line + piece.len() > LINE {
            if self.on_line == LINE {
                // No room even for the `=`: the break goes before the last thing appended.
                self.on_line = self.out.len() - self.backup;
                self.out
                    .splice(self.backup..self.backup, b"=\r\n".iter().copied());
            } else {
                self.out.extend_from_slice(b"=\r\n");
                self.on_line = 0;
            }
        }
        self.out.extend_from_slice(piece);
        self.on_line += piece.len();
        self.backup = self.out.len() - piece.len();
    }

    /// A space or tab may not end an encoded line (RFC 2045, 6.7 (3)).
    fn escape_trailing_space(&mut self) {
        if self.out.len() == self.start {
            return;
        }
        let escaped: &[u8] = match self.out.last() {
            Some(b' ') => b"=20",
            Some(b'\t') => b"=09",
            _ => return,
        };
        self.on_line -= 1;
        self.out.pop();
        self.append(escaped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// What lettre makes of `text`: the reference.
    fn lettre_body(text: &str) -> (ContentTransferEncoding, Vec<u8>) {
        let b = Body::new(text.to_string());
        (b.encoding(), b.into_vec())
    }

    fn ours(text: &str) -> (ContentTransferEncoding, Vec<u8>) {
        let b = body(text);
        (b.encoding(), b.into_vec())
    }

    fn same_as_lettre(text: &str) {
        let (want_enc, want) = lettre_body(text);
        let (got_enc, got) = ours(text);
        assert_eq!(got_enc, want_enc, "encoding of {text:?}");
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "body of {text:?}"
        );
    }

    #[test]
    fn each_encoding_as_lettre_chooses_it() {
        // 7bit: ASCII, short lines.
        assert_eq!(ours("Hello\nworld\n").0, ContentTransferEncoding::SevenBit);
        // Quoted-printable: mostly ASCII with some Vietnamese, or an ASCII line too long.
        assert_eq!(
            ours("<p>Kính gửi: <strong>Phòng Kinh tế</strong></p>\n").0,
            ContentTransferEncoding::QuotedPrintable
        );
        assert_eq!(
            ours(&"x".repeat(200)).0,
            ContentTransferEncoding::QuotedPrintable
        );
        // Base64: mostly Vietnamese.
        assert_eq!(
            ours("Kính gửi: Phòng Hành chính – Tổ chức\n").0,
            ContentTransferEncoding::Base64
        );
        for text in [
            "Hello\nworld\n",
            "<p>Kính gửi: <strong>Phòng Kinh tế</strong></p>\n",
            "Kính gửi: Phòng Hành chính – Tổ chức\n",
        ] {
            same_as_lettre(text);
        }
    }

    #[test]
    fn edges_of_lines_and_escapes_as_lettre() {
        let cases = [
            String::new(),
            "\n".into(),
            "\n\nabc\n".into(),
            "a\r\nb\rc\n\r\n".into(),
            "trailing space \nand tab\t\nend ".into(),
            "trailing space at the end of it all\t".into(),
            "ends in a lone CR\r".into(),
            format!("{}\n", "a".repeat(75)),
            format!("{}\n", "a".repeat(76)),
            format!("{}\n{}", "a".repeat(74), "b".repeat(75)),
            format!("{}=", "a".repeat(75)),
            format!("{}==", "a".repeat(74)),
            format!("{}é", "a".repeat(74)),
            format!("{} \n", "a".repeat(75)),
            format!("{}\t\r\n", "é".repeat(30)),
            "=".repeat(100),
            " ".repeat(100),
            "é".repeat(100),
            format!("{}\n", "x=y ".repeat(60)),
        ];
        for text in &cases {
            same_as_lettre(text);
        }
    }

    #[test]
    fn random_texts_as_lettre() {
        // Pieces that meet at every position of a line: ASCII, escapes, spaces before line
        // breaks, CR and LF alone and together, two- and three-byte characters.
        let pieces = [
            "a", "bc", " ", "\t", "=", "\n", "\r\n", "\r", "ệ", "–", "Phòng ", "<td>", "xyz ",
        ];
        let mut rng = rand::rng();
        for _ in 0..3000 {
            let n = rng.random_range(0..400);
            let mut text = String::new();
            // Mostly-ASCII and mostly-Vietnamese texts, so both QP and base64 are chosen.
            let bias = rng.random_range(0..3);
            for _ in 0..n {
                let p = if bias == 0 && rng.random_bool(0.7) {
                    "Đề nghị "
                } else {
                    pieces[rng.random_range(0..pieces.len())]
                };
                text.push_str(p);
            }
            same_as_lettre(&text);
        }
    }
}
