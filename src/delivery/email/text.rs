//! Text helpers: what the config says, made safe for a header line, a block or HTML.

/// Text for one line (a subject, a title): control characters, CR and LF included, become
/// spaces and runs of spaces collapse, so nothing the YAML says can start a header.
pub fn one_line(s: &str) -> String {
    // Most texts are one line already: copied as they are, the same string the general
    // path would build.
    if is_one_line(s) {
        return s.to_string();
    }
    // A rendered template ends with a newline: what trails the line goes as it would in the
    // general path, which turns it into spaces and drops them.
    let line = s.trim_end_matches(|c: char| c.is_whitespace() || c.is_control());
    if is_one_line(line) {
        return line.to_string();
    }
    one_line_slow(s)
}

/// `s` has no control character, no whitespace but single spaces between words.
fn is_one_line(s: &str) -> bool {
    // A space first is a leading space.
    let mut after_space = true;
    for c in s.chars() {
        if c == ' ' {
            if after_space {
                return false;
            }
            after_space = true;
        } else if c.is_control() || c.is_whitespace() {
            return false;
        } else {
            after_space = false;
        }
    }
    s.is_empty() || !after_space
}

fn one_line_slow(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text for a block (a product list): line breaks kept, other control characters dropped.
pub(super) fn block(s: &str) -> String {
    s.replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect::<String>()
        .trim()
        .to_string()
}

/// `s` cut at a word boundary to at most `max` characters, with `…` when cut.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    let at = cut.rfind(' ').filter(|i| *i > max / 2).unwrap_or(cut.len());
    format!("{}…", cut[..at].trim_end_matches([' ', ',', ';', ':']))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn one_line_takes_texts_that_are_one_line_as_they_are() {
        assert!(is_one_line("Phòng Kinh tế"));
        assert!(is_one_line(""));
        for s in [
            " a",
            "a ",
            "a  b",
            "a\tb",
            "a\u{a0}b",
            "a\u{2028}b",
            "a\u{7}b",
            " ",
        ] {
            assert!(!is_one_line(s), "{s:?}");
        }
        // Whatever the text, the short cut gives what the general path gives.
        let pieces = [
            "a", "Phòng", " ", "  ", "\t", "\n", "\r\n", "\u{a0}", "\u{0}", "\u{85}", "–", "ệ",
        ];
        let mut rng = rand::rng();
        for _ in 0..5000 {
            let s: String = (0..rng.random_range(0..12))
                .map(|_| pieces[rng.random_range(0..pieces.len())])
                .collect();
            assert_eq!(one_line(&s), one_line_slow(&s), "{s:?}");
        }
    }
}
