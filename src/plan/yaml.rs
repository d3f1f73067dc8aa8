//! The YAML source as a tree of nodes that remember where they were written.
//!
//! serde-saphyr parses the text (syntax errors, duplicate keys, anchors) and hands every
//! value over with its location. The configuration is then read from this tree by hand,
//! through [`MapReader`], so that every problem — unknown key, wrong type, bad reference —
//! is collected with its line and column instead of stopping at the first one.

use crate::plan::diag::{Diagnostic, Pos, suggest};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};
use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar as written (numbers and booleans keep their source text: `01` stays `01`).
    /// A [`Text`], and collections as boxed slices of the exact size: a large plan's tree
    /// is millions of these.
    Scalar(Text),
    Seq(Box<[Node]>),
    Map(Box<[(Key, Node)]>),
    Null,
}

/// A scalar's text: up to [`Text::INLINE`] bytes in place (ids, office ids, dates, most
/// deadline phrases), longer in a box. Most scalars of a large plan are short: holding them
/// in place spares an allocation each, and the heap the holes they leave when freed.
#[derive(Clone)]
pub enum Text {
    Inline { len: u8, bytes: [u8; Text::INLINE] },
    Boxed(Box<str>),
}

impl Text {
    /// As many bytes as fit beside the length and the tag in the size of a box.
    pub const INLINE: usize = 22;
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            // Only whole `str`s are put in place (`From<&str>`): always UTF-8.
            Text::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Text::Boxed(b) => b,
        }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        match u8::try_from(s.len()) {
            Ok(len) if s.len() <= Text::INLINE => {
                let mut bytes = [0; Text::INLINE];
                bytes[..s.len()].copy_from_slice(s.as_bytes());
                Text::Inline { len, bytes }
            }
            _ => Text::Boxed(s.into()),
        }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        if s.len() <= Text::INLINE {
            Text::from(s.as_str())
        } else {
            Text::Boxed(s.into_boxed_str())
        }
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// A key the config knows is the static name, not a copy per task (see [`key_name`]).
    pub name: Cow<'static, str>,
    pub pos: Pos,
}

/// `name` as a key: the static name when it is one the config reads, so that the keys of
/// a large plan's tasks, repeated on every task, allocate nothing.
pub fn key_name(name: &str) -> Cow<'static, str> {
    match KNOWN_KEYS.iter().find(|k| **k == name) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(name.to_string()),
    }
}

/// The keys of tasks and offices, the ones repeated thousands of times in a large plan,
/// most frequent first.
const KNOWN_KEYS: &[&str] = &[
    "id",
    "title",
    "deadline",
    "lead",
    "section",
    "product",
    "cooperating",
    "report_to",
    "done",
    "reminders",
    "note",
    "name",
    "email",
    "head",
    "placeholder",
    "date",
    "dates",
    "every",
    "after",
    "office",
    "occurrence",
    "phrase",
    "days",
    "day",
    "month_of_quarter",
    "working_days_after",
    "from",
    "until",
    "checkpoints",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

fn pos_of(loc: &Location) -> Pos {
    let len = loc.span().len().max(1);
    Pos::new(loc.line() as u32, loc.column() as u32, len as u32)
}

/// [`pos_of`] the location serde-saphyr makes of a parser event's span.
pub(super) fn pos_of_span(span: &granit_parser::Span) -> Pos {
    let len = span.len().max(1);
    Pos::new(
        span.start.line() as u32,
        (span.start.col() + 1) as u32,
        len as u32,
    )
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: Spanned<Value> = Spanned::deserialize(d)?;
        Ok(Node {
            pos: pos_of(&s.referenced),
            value: s.value,
        })
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: Spanned<Value> = Spanned::deserialize(d)?;
        let name = match s.value {
            Value::Scalar(s) => key_name(&s),
            Value::Null => Cow::Borrowed(""),
            _ => return Err(de::Error::custom("a key must be a plain name")),
        };
        Ok(Key {
            name,
            pos: pos_of(&s.referenced),
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Scalar(v.into()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
                Ok(Value::Scalar(v.into()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Scalar(v.to_string().into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Scalar(v.to_string().into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(Value::Scalar(v.to_string().into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Scalar(v.to_string().into()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Value, D2::Error> {
                Value::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Value::Seq(v.into_boxed_slice()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = a.next_entry()? {
                    v.push((k, x));
                }
                Ok(Value::Map(v.into_boxed_slice()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses the whole file. A syntax error is returned as one located diagnostic; YAML cannot
/// be read past it, so it is the only error reported for the file.
pub fn parse(source: &str) -> Result<Node, Diagnostic> {
    if source.trim().is_empty() {
        return Err(
            Diagnostic::error(None, crate::tr!("tệp trống", "the file is empty")).with_hint(
                crate::tr!(
                    "hãy bắt đầu từ cấu hình mẫu: nó có các mục `offices:` và `tasks:`",
                    "start from the example config: it has `offices:` and `tasks:` sections"
                ),
            ),
        );
    }
    // serde-saphyr's default budget (250,000 nodes, 1,000,000 events) rejects a plan past
    // about 15,000 tasks. The file is the clerk's own, not input from the network: allow
    // plans of a few hundred thousand tasks, and keep the default limits on aliases, depth
    // and documents that stop a hostile file (an alias bomb) from growing without bound.
    // Most files are plain YAML, read straight from the parser's events; the rest (and
    // every error) is serde-saphyr's, below.
    if let Some(node) = super::yaml_events::parse(source) {
        return Ok(node);
    }
    parse_with_serde(source)
}

/// The tree of a plain YAML file (see [`parse`]), each item of its root's `tasks:` handed
/// to `sink` as soon as it is read (those it takes are not in the tree); `None` when the
/// file is not one [`parse`] reads from the parser's events (an error, anchors, an empty
/// file…): it is then to be read with [`parse`], from the start.
pub fn parse_streaming(source: &str, sink: &mut super::yaml_events::TaskSink) -> Option<Node> {
    if source.trim().is_empty() {
        return None;
    }
    super::yaml_events::parse_with(source, Some(sink))
}

/// [`parse`] through serde-saphyr: what the file's diagnostics come from.
fn parse_with_serde(source: &str) -> Result<Node, Diagnostic> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_nodes: 20_000_000,
            max_events: 40_000_000,
        },
    };
    let node: Node = serde_saphyr::from_str_with_options(source, options)
        .map_err(|e| syntax_error(source, &e))?;
    // Scalars that YAML read as numbers lose their leading zeros ("01"); take them back
    // from the source text so that "Tháng 01" and ids like "07" stay as written.
    Ok(restore_scalars(node, source))
}

/// The first tab at or after `from` (1-based line and column), where the YAML scanner
/// complains about a tab: it reports where the scalar before it began, often a line early.
fn tab_at_or_after(source: &str, from: Pos) -> Option<Pos> {
    let start_line = from.line.max(1);
    for (i, line) in source.lines().enumerate().skip(start_line as usize - 1) {
        let skip = if i + 1 == start_line as usize {
            from.column.saturating_sub(1) as usize
        } else {
            0
        };
        if let Some(col) = line.chars().skip(skip).position(|c| c == '\t') {
            let line_no = u32::try_from(i + 1).ok()?;
            let col = u32::try_from(col + skip + 1).ok()?;
            return Some(Pos::new(line_no, col, 1));
        }
    }
    None
}

fn syntax_error(source: &str, e: &serde_saphyr::Error) -> Diagnostic {
    let pos = e.location().map(|l| pos_of(&l));
    if e.to_string().contains("tab")
        && let Some(tab) = pos.and_then(|p| tab_at_or_after(source, p))
    {
        return Diagnostic::error(
            Some(tab),
            crate::tr!(
                "dấu tab ở đây: YAML thụt lề bằng dấu cách, không dùng tab",
                "a tab here: YAML indents with spaces, not tabs"
            ),
        )
        .with_hint(crate::tr!(
            "thay dấu tab bằng dấu cách, thẳng hàng với các khóa cùng khối (thường là 4 dấu cách trong một nhiệm vụ)",
            "replace the tab with spaces, aligned with the keys of the same block (usually 4 spaces inside a task)"
        ));
    }
    // The library's text carries its own location and snippet; keep only the message.
    let full = e.to_string();
    let first = full.lines().next().unwrap_or("").trim();
    let msg = first
        .strip_prefix("error: ")
        .unwrap_or(first)
        .split_once(": ")
        .filter(|(head, _)| head.starts_with("line "))
        .map(|(_, rest)| rest)
        .unwrap_or(first);
    if let Some(key) = msg.strip_prefix("duplicate mapping key: ") {
        let key = key.split(',').next().unwrap_or(key).trim();
        return Diagnostic::error(
            pos,
            crate::tr!(
                "`{key}` được viết hai lần trong cùng một khối",
                "`{key}` is written twice in the same block"
            ),
        )
        .with_hint(crate::tr!(
            "giữ lại một; nếu là nhiệm vụ hoặc đơn vị trùng mã, hãy đổi tên một cái",
            "keep one of them; for a task or office with the same id, rename one"
        ));
    }
    Diagnostic::error(pos, crate::tr!("không đọc được YAML ở đây: {msg}", "the YAML cannot be read here: {msg}")).with_hint(
        crate::tr!("kiểm tra thụt lề (dùng dấu cách, không dùng tab), dấu hai chấm của `khóa: giá trị`, và các dấu nháy, dấu ngoặc đã đóng", "check the indentation (spaces, not tabs), the `key: value` colons, and that quotes and brackets are closed"),
    )
}

fn restore_scalars(mut node: Node, source: &str) -> Node {
    fn walk(n: &mut Node, lines: &[&str]) {
        match &mut n.value {
            Value::Scalar(s) => {
                if s.parse::<f64>().is_ok()
                    && let Some(line) = lines.get(n.pos.line.saturating_sub(1) as usize)
                {
                    let written: String = line
                        .chars()
                        .skip(n.pos.column.saturating_sub(1) as usize)
                        .take(n.pos.len as usize)
                        .collect();
                    if !written.is_empty()
                        && written
                            .chars()
                            .all(|c| c.is_ascii_digit() || ".-+eE_".contains(c))
                    {
                        *s = written.into();
                    }
                }
            }
            Value::Seq(items) => items.iter_mut().for_each(|i| walk(i, lines)),
            Value::Map(entries) => entries.iter_mut().for_each(|(_, v)| walk(v, lines)),
            Value::Null => {}
        }
    }
    let lines: Vec<&str> = source.lines().collect();
    walk(&mut node, &lines);
    node
}

impl Node {
    pub fn kind_name(&self) -> &'static str {
        match self.value {
            Value::Scalar(_) => crate::t!("một giá trị đơn", "a single value"),
            Value::Seq(_) => crate::t!("một danh sách", "a list"),
            Value::Map(_) => crate::t!(
                "một khối các dòng `khóa: giá trị`",
                "a block of `key: value` lines"
            ),
            Value::Null => crate::t!("không có gì", "nothing"),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// A text value, or an error saying what was expected.
    /// `what` is only written out for the error: a `format_args!` costs nothing otherwise.
    pub fn text(&self, what: impl fmt::Display, errs: &mut Vec<Diagnostic>) -> Option<String> {
        match &self.value {
            Value::Scalar(s) => Some(s.to_string()),
            _ => {
                errs.push(
                    Diagnostic::error(
                        Some(self.pos),
                        crate::tr!(
                            "{what} phải là một giá trị đơn, không phải {}",
                            "{what} must be a single value, not {}",
                            self.kind_name()
                        ),
                    )
                    .with_hint(crate::tr!(
                        "viết nó trên cùng dòng, sau dấu hai chấm, ví dụ `name: Phòng Kinh tế`",
                        "write it on the same line after the colon, e.g. `name: Phòng Kinh tế`"
                    )),
                );
                None
            }
        }
    }

    /// One value or a list of values (`email: a@x.example` or `email: [a@x.example, b@x.example]`).
    pub fn text_list(
        &self,
        what: impl fmt::Display,
        errs: &mut Vec<Diagnostic>,
    ) -> Vec<(String, Pos)> {
        match &self.value {
            Value::Scalar(s) => vec![(s.to_string(), self.pos)],
            Value::Null => vec![],
            Value::Seq(items) => items
                .iter()
                .filter_map(|i| i.text(&what, errs).map(|s| (s, i.pos)))
                .collect(),
            Value::Map(_) => {
                errs.push(
                    Diagnostic::error(
                        Some(self.pos),
                        crate::tr!(
                            "{what} phải là một giá trị hoặc một danh sách, không phải {}",
                            "{what} must be a value or a list, not {}",
                            self.kind_name()
                        ),
                    )
                    .with_hint(crate::tr!(
                        "viết `[a, b]` hoặc mỗi dòng một `- a`",
                        "write `[a, b]` or one `- a` per line"
                    )),
                );
                vec![]
            }
        }
    }

    pub fn map<'a>(
        &'a self,
        what: &'a str,
        known: &'static [&'static str],
        errs: &mut Vec<Diagnostic>,
    ) -> Option<MapReader<'a>> {
        match &self.value {
            Value::Map(entries) => Some(MapReader {
                entries,
                known,
                what,
                pos: self.pos,
            }),
            Value::Null => Some(MapReader {
                entries: &[],
                known,
                what,
                pos: self.pos,
            }),
            _ => {
                errs.push(
                    Diagnostic::error(
                        Some(self.pos),
                        crate::tr!(
                            "{what} phải là một khối các dòng `khóa: giá trị`, không phải {}",
                            "{what} must be a block of `key: value` lines, not {}",
                            self.kind_name()
                        ),
                    )
                    .with_hint(crate::tr!(
                        "các khóa được phép: {}",
                        "allowed keys: {}",
                        known.join(", ")
                    )),
                );
                None
            }
        }
    }
}

/// Reads the keys of one mapping and reports the keys nobody asked for.
pub struct MapReader<'a> {
    pub entries: &'a [(Key, Node)],
    known: &'static [&'static str],
    what: &'a str,
    pub pos: Pos,
}

impl<'a> MapReader<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        debug_assert!(
            self.known.contains(&key),
            "{key} missing from the known keys"
        );
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    pub fn key_pos(&self, key: &str) -> Option<Pos> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(k, _)| k.pos)
    }

    /// A required text field.
    pub fn req_text(&self, key: &str, errs: &mut Vec<Diagnostic>) -> Option<String> {
        match self.get(key) {
            Some(n) if !matches!(n.value, Value::Null) => n.text(format_args!("`{key}`"), errs),
            _ => {
                errs.push(
                    Diagnostic::error(
                        Some(self.pos),
                        crate::tr!("{} thiếu `{key}`", "{} has no `{key}`", self.what),
                    )
                    .with_hint(crate::tr!(
                        "thêm một dòng `{key}: …`",
                        "add a line `{key}: …`"
                    )),
                );
                None
            }
        }
    }

    pub fn opt_text(&self, key: &str, errs: &mut Vec<Diagnostic>) -> Option<String> {
        match self.get(key) {
            Some(n) if !matches!(n.value, Value::Null) => n.text(format_args!("`{key}`"), errs),
            _ => None,
        }
    }

    /// Reports every key that is not in the known list, with the closest known key.
    pub fn check_unknown(&self, errs: &mut Vec<Diagnostic>) {
        for (k, _) in self.entries {
            if !self.known.contains(&&*k.name) {
                errs.push(
                    Diagnostic::error(
                        Some(k.pos),
                        crate::tr!(
                            "khóa lạ `{}` trong {}",
                            "unknown key `{}` in {}",
                            k.name,
                            self.what
                        ),
                    )
                    .with_hint(suggest(&k.name, self.known.iter().copied())),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_are_held_in_place_in_a_node_of_five_words() {
        assert_eq!(std::mem::size_of::<Value>(), 24);
        assert_eq!(std::mem::size_of::<Node>(), 40);
        for s in [
            "",
            "II.3",
            "Quý II/2024",
            "1234567890123456789012",
            "ệệệệệệệ",
        ] {
            let t = Text::from(s);
            assert!(matches!(t, Text::Inline { .. }), "{s:?}");
            assert_eq!(&*t, s);
            assert_eq!(Text::from(s.to_string()), t);
        }
        for s in ["12345678901234567890123", "Báo cáo kết quả thực hiện"] {
            let t = Text::from(s.to_string());
            assert!(matches!(t, Text::Boxed(_)), "{s:?}");
            assert_eq!(&*t, s);
            assert_eq!(Text::from(s), t);
        }
    }

    #[test]
    fn keeps_positions_and_leading_zeros() {
        let n = parse("a: 01\nb:\n  - x\n").unwrap();
        let Value::Map(entries) = &n.value else {
            panic!("map")
        };
        assert_eq!(entries[0].0.name, "a");
        assert_eq!(entries[0].1.as_str(), Some("01"));
        assert_eq!(entries[0].1.pos, Pos::new(1, 4, 2));
        let Value::Seq(items) = &entries[1].1.value else {
            panic!("seq")
        };
        assert_eq!(items[0].pos.line, 3);
    }

    #[test]
    fn duplicate_keys_are_located() {
        crate::i18n::set_for_thread(Some(crate::i18n::Lang::En));
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.pos.map(|p| p.line), Some(3));
        assert!(e.message.contains("`a` is written twice"), "{}", e.message);
    }

    #[test]
    fn a_tab_is_pointed_at_where_it_is_not_where_the_scalar_before_it_began() {
        let src = "tasks:\n  - id: A\n    product: Báo cáo\n\tdeadline: Quý III/2024\n";
        let e = parse(src).expect_err("a tab in the indentation");
        let pos = e.pos.expect("located");
        assert_eq!((pos.line, pos.column), (4, 1), "{e:?}");
    }

    #[test]
    fn syntax_errors_are_located() {
        crate::i18n::set_for_thread(Some(crate::i18n::Lang::En));
        let e = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(e.pos.is_some());
        assert!(
            e.message.starts_with("the YAML cannot be read here"),
            "{}",
            e.message
        );
    }

    /// The tree read from the parser's events is serde-saphyr's, node for node, or it is
    /// left to serde-saphyr.
    fn same_tree_or_left(src: &str) -> bool {
        let Some(fast) = crate::plan::yaml_events::parse(src) else {
            return false;
        };
        let slow = parse_with_serde(src)
            .unwrap_or_else(|e| panic!("fast read what serde-saphyr refuses ({e:?}):\n{src}"));
        assert_eq!(fast, slow, "trees differ for:\n{src}");
        true
    }

    #[test]
    fn the_event_tree_is_serde_saphyrs_tree() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for file in ["config/khanh-hoa-2024.yaml", "config/ngay-nghi-le.yaml"] {
            let src = std::fs::read_to_string(dir.join(file)).unwrap();
            assert!(
                same_tree_or_left(&src),
                "{file} is plain YAML: read from events"
            );
        }
        for sub in ["tests/corpus/yaml", "tests/corpus/check"] {
            for e in std::fs::read_dir(dir.join(sub)).unwrap() {
                let bytes = std::fs::read(e.unwrap().path()).unwrap();
                if let Ok(src) = String::from_utf8(bytes) {
                    same_tree_or_left(&src);
                }
            }
        }
        // Scalars YAML may read as another value, in keys and values, plain and quoted.
        let scalars = [
            "01",
            "007",
            "1",
            "-1",
            "+1",
            "1.50",
            "1_000",
            "-0",
            "0",
            "1.",
            "1-2",
            "--1",
            "-",
            "_",
            "2024-01-30",
            "30/01/2024",
            "14d",
            "3wd",
            "1e5",
            "1E5",
            "0x1F",
            "0X1F",
            "0o17",
            "0b101",
            ".5",
            "-.5",
            ".inf",
            "-.inf",
            ".nan",
            "inf",
            "nan",
            "NaN",
            "Infinity",
            "true",
            "True",
            "yes",
            "Y",
            "n",
            "No",
            "ON",
            "off",
            "null",
            "Null",
            "NULL",
            "~",
            "",
            "08:00",
            "1:30",
            "18446744073709551616",
            "99999999999999999999999",
            "\"01\"",
            "'1.50'",
            "\"\\x31\"",
            "'true'",
            "\"null\"",
            "''",
            "Quý II/2024",
            "Tháng 01",
            "a: b",
            "<<",
            "12 34",
        ];
        let mut read = 0;
        for v in scalars {
            for src in [
                format!("a: {v}\nb:\n  - {v}\n  - x\n"),
                format!("{v}: x\nb: 1\n"),
                format!("c: [{v}, {v}]\nd: {{e: {v}}}\n"),
                format!("Tháng ơi: {v}\n"),
                format!("a: |\n  {v}\nb: >\n  {v}\n"),
                // Lines ended by `\r\n` or a lone `\r`, and letters of several bytes before
                // the scalar on its line: it is read where it is written.
                format!("a: {v}\r\nb:\r\n  - {v}\r\n  - x\r\n"),
                format!("ư: x\rb: {v}\nc: [ơ, {v}]\n"),
                format!("đ: [ơ, {v}, \"ư\", {v}]\n# ơ\nc: {{ơ: ư, e: {v}}}\n"),
            ] {
                read += usize::from(same_tree_or_left(&src));
            }
        }
        assert!(read > 100, "most of these are read from events: {read}");
        for src in [
            "a: 1\na: 2\n",
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "--- \na: 1\n---\nb: 2\n",
            "- a\n- b\n",
            "x\n",
            "\u{feff}a: 1\n",
            "a: [1, 2\n",
            "a:\n\tb: 1\n",
        ] {
            assert!(!same_tree_or_left(src), "left to serde-saphyr: {src:?}");
        }
        // A large mapping finds its duplicates through a set.
        let mut big: String = (0..40).map(|i| format!("k{i}: {i}\n")).collect();
        assert!(same_tree_or_left(&big));
        big.push_str("k7: again\n");
        assert!(!same_tree_or_left(&big));
    }

    #[test]
    fn unknown_keys_get_a_suggestion() {
        crate::i18n::set_for_thread(Some(crate::i18n::Lang::En));
        let n = parse("name: X\nemial: a@b.example\n").unwrap();
        let mut errs = vec![];
        let m = n.map("office `x`", &["name", "email"], &mut errs).unwrap();
        m.check_unknown(&mut errs);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].hint.as_deref(), Some("did you mean `email`?"));
        assert_eq!(errs[0].pos, Some(Pos::new(2, 1, 5)));
    }
}
