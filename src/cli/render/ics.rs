//! iCalendar (RFC 5545) text: escaping and line folding, shared by every `.ics` nhacviec
//! writes (`calendar --format ics`, `plan --format ics`).

/// Escapes a TEXT value (RFC 5545 §3.3.11).
pub fn ics_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line at 75 octets (RFC 5545 §3.1) without splitting a UTF-8 character,
/// and ends it, and each continuation, with CRLF.
pub fn ics_fold(line: &str, out: &mut String) {
    const LIMIT: usize = 75;
    let mut used = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if used + len > LIMIT {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += len;
    }
    out.push_str("\r\n");
}
