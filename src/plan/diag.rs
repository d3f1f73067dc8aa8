//! Diagnostics a clerk can act on: where (file:line:column), the offending text with a caret
//! under it, what is wrong, and what to write instead.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    /// `lỗi`/`error`, `cảnh báo`/`warning`: how a diagnostic starts.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Error => crate::t!("lỗi", "error"),
            Severity::Warning => crate::t!("cảnh báo", "warning"),
        }
    }
}

/// A place in the YAML source. Lines and columns count from 1, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
    /// Length of the offending text in characters (at least 1 for the caret).
    pub len: u32,
}

impl Pos {
    pub fn new(line: u32, column: u32, len: u32) -> Self {
        Self { line, column, len }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// `None` for problems that belong to the file as a whole (a missing section).
    pub pos: Option<Pos>,
    /// What to write instead, in a sentence (the same sentence for many diagnostics is
    /// one static text, not a copy for each).
    pub hint: Option<Cow<'static, str>>,
}

impl Diagnostic {
    pub fn error(pos: Option<Pos>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            message: message.into(),
            pos,
            hint: None,
        }
    }

    pub fn warning(pos: Option<Pos>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            message: message.into(),
            pos,
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<Cow<'static, str>>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Every diagnostic of one file, with the source text to quote from.
#[derive(Debug, Clone)]
pub struct Report {
    pub path: PathBuf,
    pub source: String,
    pub items: Vec<Diagnostic>,
}

impl Report {
    pub fn new(path: &Path, source: &str) -> Self {
        Self {
            path: path.to_path_buf(),
            source: source.to_string(),
            items: Vec::new(),
        }
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.items.len() - self.error_count()
    }

    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    /// Errors first, then warnings, each in file order.
    pub fn sort(&mut self) {
        self.items.sort_by_key(|d| (d.severity, d.pos));
        self.items.dedup();
    }

    /// Renders every diagnostic like a compiler does:
    ///
    /// ```text
    /// lỗi: không có đơn vị `hctc2`
    ///   --> config/plan.yaml:120:11
    ///     |
    /// 120 |     lead: hctc2
    ///     |           ^^^^^
    ///     = có phải ý bạn là `hctc`?
    /// ```
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out).expect("writing to memory");
        String::from_utf8(out).expect("diagnostics are UTF-8")
    }

    /// [`Self::render`] written to `w` one diagnostic at a time: a large plan's warnings
    /// run to megabytes, which are not held as one text before they are printed.
    pub fn write_to(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        // The quoted lines are found by walking forward through the source: the items are
        // sorted by place (errors, then warnings), so it is walked through once or twice,
        // with no index of every line (16 bytes a line) and no search from the top for each.
        let mut lines = LineCursor::new(&self.source);
        // The path as shown, made once: `check` of a large plan writes a diagnostic for
        // hundreds of thousands of places.
        let path = self.path.display().to_string();
        for d in &self.items {
            write_one(w, &path, &mut lines, d)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }

    /// [`Self::write_to`] standard error, buffered, as `eprint!` would print the rendering
    /// (an error writing to it is ignored: there is nowhere else to say so).
    pub fn eprint(&self) {
        use std::io::Write as _;
        let mut err = std::io::BufWriter::with_capacity(1 << 16, std::io::stderr().lock());
        let _ = self.write_to(&mut err).and_then(|()| err.flush());
    }

    /// One line per diagnostic (`file:line:col: error: message (hint)`), for logs.
    pub fn render_short(&self) -> Vec<String> {
        self.items
            .iter()
            .map(|d| {
                let loc = match d.pos {
                    Some(p) => format!("{}:{}:{}", self.path.display(), p.line, p.column),
                    None => self.path.display().to_string(),
                };
                let sev = d.severity.label();
                let message = escape_controls(&d.message);
                match &d.hint {
                    Some(h) => format!("{loc}: {sev}: {message} ({})", escape_controls(h)),
                    None => format!("{loc}: {sev}: {message}"),
                }
            })
            .collect()
    }
}

/// The lines of a source, as `str::lines` splits them, found by number with a cursor that
/// walks forward (and starts over for a line before it).
struct LineCursor<'a> {
    source: &'a str,
    /// Where line `next` starts.
    at: usize,
    /// The number (1-based) of the line starting at `at`.
    next: usize,
}

impl<'a> LineCursor<'a> {
    fn new(source: &'a str) -> Self {
        Self {
            source,
            at: 0,
            next: 1,
        }
    }

    /// Line `n` (1-based), if the source has it.
    fn get(&mut self, n: usize) -> Option<&'a str> {
        if n == 0 {
            return None;
        }
        if n < self.next {
            (self.at, self.next) = (0, 1);
        }
        let Some(start) = skip_lines(self.source.as_bytes(), self.at, n - self.next)
            .filter(|s| *s < self.source.len())
        else {
            // Past the end: every later line is missing too, and an earlier one starts over.
            self.next = usize::MAX;
            return None;
        };
        let rest = &self.source[start..];
        // A `\r` before the `\n` ends the line with it; the last line keeps a `\r` of its own.
        let (line, after) = match rest.find('\n') {
            Some(e) => (
                rest[..e].strip_suffix('\r').unwrap_or(&rest[..e]),
                start + e + 1,
            ),
            None => (rest, self.source.len()),
        };
        (self.at, self.next) = (after, n + 1);
        Some(line)
    }
}

/// Where the line `k` lines after the one starting at `at` starts, if there are that many
/// line ends. A large plan's warnings quote lines all through it: its megabytes are
/// counted through 64 bytes at a time, and searched only in the block where the line is.
fn skip_lines(bytes: &[u8], mut at: usize, mut k: usize) -> Option<usize> {
    const BLOCK: usize = 64;
    while k > 0 {
        if let Some(block) = bytes.get(at..at + BLOCK) {
            let ends = block.iter().filter(|b| **b == b'\n').count();
            if ends < k {
                k -= ends;
                at += BLOCK;
                continue;
            }
        }
        at += bytes.get(at..)?.iter().position(|b| *b == b'\n')? + 1;
        k -= 1;
    }
    Some(at)
}

fn write_one(
    w: &mut dyn std::io::Write,
    path: &str,
    lines: &mut LineCursor,
    d: &Diagnostic,
) -> std::io::Result<()> {
    let sev = d.severity.label();
    writeln!(w, "{sev}: {}", escape_controls(&d.message))?;
    match d.pos {
        Some(p) if p.line > 0 => {
            // As many spaces as the line number has digits (at most 10), borrowed.
            const SPACES: &str = "          ";
            let gutter = p.line.checked_ilog10().unwrap_or(0) as usize + 1;
            let pad = &SPACES[..gutter];
            writeln!(w, "{pad}--> {path}:{}:{}", p.line, p.column)?;
            if let Some(text) = lines.get(p.line as usize) {
                let text = mask_secret(text);
                writeln!(w, "{pad} |")?;
                writeln!(w, "{} | {}", p.line, escape_controls(&text))?;
                // The caret counts in characters as shown: an escaped control character
                // takes the width of its escape.
                let col = p.column.saturating_sub(1) as usize;
                let mut caret = String::with_capacity(col + 1);
                for c in text.chars().take(col) {
                    match c {
                        '\t' => caret.push('\t'),
                        c => caret.extend(std::iter::repeat_n(' ', shown_width(c))),
                    }
                }
                let avail: usize = text.chars().skip(col).map(shown_width).sum();
                let len = (p.len as usize).clamp(1, avail.max(1));
                caret.extend(std::iter::repeat_n('^', len));
                writeln!(w, "{pad} | {caret}")?;
            }
            if let Some(h) = &d.hint {
                let h = escape_controls(h);
                if h.contains('\n') {
                    writeln!(w, "{pad} = {}", indent_hint(&h, &format!("{pad}   ")))?;
                } else {
                    // One line (most hints): nothing to indent.
                    writeln!(w, "{pad} = {h}")?;
                }
            }
        }
        _ => {
            writeln!(w, "  --> {path}")?;
            if let Some(h) = &d.hint {
                writeln!(w, "   = {}", indent_hint(&escape_controls(h), "     "))?;
            }
        }
    }
    Ok(())
}

/// How many characters `c` takes as [`shown`].
fn shown_width(c: char) -> usize {
    if c.is_control() && c != '\t' && c != '\n' {
        c.escape_default().count()
    } else {
        1
    }
}

/// How `c` is shown to a terminal: a control character (an escape sequence's ESC, a
/// carriage return, a bell) as its Rust escape `\u{1b}`, so that text quoted from the YAML
/// cannot move the cursor, recolour or retitle the terminal; a tab and a newline as they are.
fn shown(c: char) -> String {
    if c.is_control() && c != '\t' && c != '\n' {
        c.escape_default().collect()
    } else {
        c.to_string()
    }
}

/// `text` with its control characters escaped (see [`shown`]).
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !has_control(text) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().map(shown).collect())
}

/// Whether `text` has a control character other than tab and line feed, found in its
/// bytes: U+0000–U+001F and U+007F are single bytes, U+0080–U+009F are `C2 80`–`C2 9F`
/// (a large plan's warnings are scanned for them, every message, hint and quoted line).
fn has_control(text: &str) -> bool {
    let b = text.as_bytes();
    b.iter().enumerate().any(|(i, &c)| match c {
        b'\t' | b'\n' => false,
        0..=0x1F | 0x7F => true,
        0xC2 => b.get(i + 1).is_some_and(|n| (0x80..=0x9F).contains(n)),
        _ => false,
    })
}

/// A `password: hunter2` line quoted back as `password: ****`: the config reader refuses
/// secret-looking keys, and its error must not print the secret to a terminal or a log.
fn mask_secret(line: &str) -> std::borrow::Cow<'_, str> {
    let line = mask_url_password(line);
    let Some((key, value)) = line.split_once(':') else {
        return line;
    };
    let name = key
        .trim()
        .trim_start_matches("- ")
        .trim()
        .trim_matches(['"', '\'']);
    if value.trim().is_empty() || !crate::plan::config::is_secret_key(name) {
        return line.clone();
    }
    let lead = value.len() - value.trim_start().len();
    format!("{key}:{}****", &value[..lead]).into()
}

/// `postgresql://user:secret@host/db` quoted back as `postgresql://user:****@host/db`: a
/// password written into a URL (which the reader refuses) must not be printed either.
fn mask_url_password(line: &str) -> std::borrow::Cow<'_, str> {
    let Some(start) = line.find("://").map(|i| i + 3) else {
        return line.into();
    };
    let rest = &line[start..];
    let authority_end = rest.find(['/', ' ', '"', '\'']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return line.into();
    };
    let Some(colon) = rest[..at].find(':') else {
        return line.into();
    };
    format!("{}{}****{}", &line[..start], &rest[..=colon], &rest[at..]).into()
}

/// Continuation lines of a multi-line hint (a YAML example) line up under its first line.
fn indent_hint(hint: &str, pad: &str) -> String {
    hint.lines().collect::<Vec<_>>().join(&format!("\n{pad}"))
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(dist, c)| {
            let longest = c.chars().count().max(word.chars().count());
            *dist <= 2.max(longest / 3) && *dist < longest
        })
        .min_by_key(|(dist, c)| (*dist, c.len()))
        .map(|(_, c)| c)
}

/// Names from a hash map in sorted order, so that a [`suggest`] hint listing them reads the
/// same on every run.
pub fn sorted<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = names.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// "did you mean `x`?" or the list of valid names when nothing is close.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str> + Clone) -> String {
    match closest(word, candidates.clone()) {
        Some(c) => crate::tr!("có phải ý bạn là `{c}`?", "did you mean `{c}`?"),
        None => {
            let all: Vec<&str> = candidates.into_iter().collect();
            if all.is_empty() {
                crate::tr!("chưa có tên nào được khai báo", "none are defined yet")
            } else if all.len() <= 12 {
                let names = all.join(", ");
                crate::tr!("các tên hợp lệ: {names}", "valid names: {names}")
            } else {
                let names = all[..12].join(", ");
                crate::tr!(
                    "các tên hợp lệ gồm: {names} …",
                    "valid names include: {names} …"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte scan finds the control characters `char::is_control` finds, on texts of
    /// every character up to U+00FF and some beyond.
    #[test]
    fn control_characters_are_found_in_the_bytes() {
        let chars: Vec<char> = (0u32..0x100)
            .chain([0x1E00, 0x1EA1, 0x2028, 0xFEFF, 0x1F600])
            .filter_map(char::from_u32)
            .collect();
        for &c in &chars {
            for text in [
                format!("{c}"),
                format!("ab{c}"),
                format!("ơ{c}ư"),
                format!("{c}\u{80}"),
            ] {
                let expected = text
                    .chars()
                    .any(|c| c.is_control() && c != '\t' && c != '\n');
                assert_eq!(has_control(&text), expected, "{text:?}");
            }
        }
    }

    /// The cursor finds the lines `str::lines` gives, asked in any order, on texts of
    /// short and long lines ending in `\n`, `\r\n`, a lone `\r` or nothing.
    #[test]
    fn the_line_cursor_finds_the_lines_str_lines_gives() {
        let mut r = crate::plan::planner::tests::Rng(23);
        let pieces = [
            "a",
            "ơ",
            "\n",
            "\r\n",
            "\r",
            "",
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "\n\n",
        ];
        for _ in 0..300 {
            let text: String = (0..r.below(400))
                .map(|_| pieces[r.below(pieces.len() as u64) as usize])
                .collect();
            let lines: Vec<&str> = text.lines().collect();
            let mut cursor = LineCursor::new(&text);
            for _ in 0..60 {
                let n = r.below(lines.len() as u64 + 3) as usize;
                let expected = n.checked_sub(1).and_then(|i| lines.get(i).copied());
                assert_eq!(cursor.get(n), expected, "line {n} of {text:?}");
            }
            for n in 1..=lines.len() + 1 {
                assert_eq!(
                    cursor.get(n),
                    lines.get(n - 1).copied(),
                    "line {n} of {text:?}"
                );
            }
        }
    }
    use crate::i18n::{Lang, scoped};

    #[test]
    fn a_hint_over_sorted_names_reads_the_same_whatever_the_map_order() {
        let a = scoped(Lang::En, || {
            suggest("zzzzzz", sorted(["so-tc", "hctc", "cntt"]))
        });
        let b = scoped(Lang::En, || {
            suggest("zzzzzz", sorted(["cntt", "so-tc", "hctc"]))
        });
        assert_eq!(a, "valid names: cntt, hctc, so-tc");
        assert_eq!(a, b);
    }

    #[test]
    fn a_password_in_a_url_is_masked_when_the_line_is_quoted() {
        assert_eq!(
            mask_secret("  url: postgresql://nhacviec:hunter2@db.example/nv"),
            "  url: postgresql://nhacviec:****@db.example/nv"
        );
        assert_eq!(
            mask_secret("  url: \"postgresql://u:p%40ss@db.example:5432/nv\""),
            "  url: \"postgresql://u:****@db.example:5432/nv\""
        );
        // No password: the line as written.
        assert_eq!(
            mask_secret("  url: postgresql://nhacviec@db.example/nv"),
            "  url: postgresql://nhacviec@db.example/nv"
        );
        assert_eq!(
            mask_secret("  url: https://example.org/a:b@c"),
            "  url: https://example.org/a:b@c"
        );
    }

    #[test]
    fn renders_in_vietnamese_by_default() {
        let mut r = Report::new(Path::new("plan.yaml"), "a: 1\n");
        r.push(
            Diagnostic::warning(Some(Pos::new(1, 1, 1)), "x").with_hint(suggest("hctc2", ["hctc"])),
        );
        let text = scoped(Lang::Vi, || r.render());
        assert!(text.starts_with("cảnh báo: x\n"), "{text}");
        assert!(text.contains("= có phải ý bạn là `hctc`?"), "{text}");
    }

    #[test]
    fn renders_location_caret_and_hint() {
        scoped(Lang::En, renders_location_caret_and_hint_en);
    }

    fn renders_location_caret_and_hint_en() {
        let src = "offices:\n  hctc:\n    name: X\ntasks:\n  - lead: hctc2\n";
        let mut r = Report::new(Path::new("plan.yaml"), src);
        r.push(
            Diagnostic::error(Some(Pos::new(5, 11, 5)), "unknown office `hctc2`")
                .with_hint("did you mean `hctc`?"),
        );
        let text = r.render();
        assert!(text.contains("error: unknown office `hctc2`"), "{text}");
        assert!(text.contains(" --> plan.yaml:5:11"), "{text}");
        assert!(
            text.contains("5 |   - lead: hctc2\n  |           ^^^^^\n"),
            "{text}"
        );
        assert!(text.contains("= did you mean `hctc`?"), "{text}");
    }

    #[test]
    fn the_gutter_is_as_wide_as_the_line_number_and_hints_line_up_under_it() {
        let src: String = (1..=120).map(|n| format!("k{n}: v\n")).collect();
        let mut r = Report::new(Path::new("plan.yaml"), &src);
        r.push(Diagnostic::error(Some(Pos::new(9, 1, 2)), "a").with_hint("one line"));
        r.push(Diagnostic::error(Some(Pos::new(10, 1, 3)), "b").with_hint("e.g.\nk: v\n"));
        r.push(Diagnostic::error(Some(Pos::new(120, 1, 4)), "c").with_hint("x\ny"));
        r.push(Diagnostic::error(None, "d").with_hint("p\nq"));
        let text = r.render();
        let parts: Vec<&str> = text.split("\n\n").collect();
        assert_eq!(
            parts[..4],
            [
                "a\n --> plan.yaml:9:1\n  |\n9 | k9: v\n  | ^^\n  = one line",
                "b\n  --> plan.yaml:10:1\n   |\n10 | k10: v\n   | ^^^\n   = e.g.\n     k: v",
                "c\n   --> plan.yaml:120:1\n    |\n120 | k120: v\n    | ^^^^\n    = x\n      y",
                "d\n  --> plan.yaml\n   = p\n     q",
            ]
            .map(|p| format!("{}: {p}", Severity::Error.label())),
            "{text}"
        );
    }

    #[test]
    fn a_secret_is_masked_and_control_characters_escaped_in_the_snippet() {
        scoped(Lang::En, secret_masked_en);
    }

    fn secret_masked_en() {
        let src = "mail:\n  password: hunter2 # old\n  from: \"\u{1b}[31mA\" <a@vpubnd.example>\n";
        let mut r = Report::new(Path::new("plan.yaml"), src);
        r.push(Diagnostic::error(
            Some(Pos::new(2, 3, 8)),
            "`password` puts a secret",
        ));
        r.push(Diagnostic::error(
            Some(Pos::new(3, 15, 1)),
            "bad `\u{1b}[31mA`",
        ));
        let text = r.render();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("2 |   password: ****\n  |   ^^^^^^^^\n"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "{text:?}");
        // The caret stays under the `A` after the escape's 6 characters.
        assert!(
            text.contains(
                "3 |   from: \"\\u{1b}[31mA\" <a@vpubnd.example>\n  |                    ^\n"
            ),
            "{text}"
        );
        assert!(text.contains("error: bad `\\u{1b}[31mA`"), "{text}");
        assert!(r.render_short().iter().all(|l| !l.contains('\u{1b}')));
    }

    /// The quoted lines are found by a cursor walking forward: items out of file order, a
    /// line past the end and CRLF endings quote what `str::lines` gives.
    #[test]
    fn lines_are_quoted_whatever_the_order_of_the_items() {
        scoped(Lang::En, || {
            let src = "a: 1\r\nb: 2\r\nc: 3\n";
            let mut r = Report::new(Path::new("p.yaml"), src);
            for line in [3, 1, 9, 2, 2] {
                r.push(Diagnostic::warning(Some(Pos::new(line, 1, 1)), "w"));
            }
            let block = |n: u32, text: &str| {
                format!("warning: w\n --> p.yaml:{n}:1\n  |\n{n} | {text}\n  | ^\n\n")
            };
            let expected = [
                block(3, "c: 3"),
                block(1, "a: 1"),
                "warning: w\n --> p.yaml:9:1\n\n".to_string(),
                block(2, "b: 2"),
                block(2, "b: 2"),
            ]
            .concat();
            assert_eq!(r.render(), expected);
            let mut streamed = Vec::new();
            r.write_to(&mut streamed).unwrap();
            assert_eq!(String::from_utf8(streamed).unwrap(), expected);
        });
    }

    #[test]
    fn closest_finds_typos_but_not_strangers() {
        let names = ["hctc", "kstthc", "kinh-te", "qttv"];
        assert_eq!(closest("hctc2", names), Some("hctc"));
        assert_eq!(closest("kinhte", names), Some("kinh-te"));
        assert_eq!(closest("zzzzzzzz", names), None);
    }
}
