//! The located tree built straight from the YAML parser's events, for the files that need
//! nothing but plain YAML: one document whose root is a mapping, no anchors, aliases or
//! tags, no duplicate or typed keys.
//!
//! serde-saphyr builds the same tree through serde (`Spanned<Value>` for every node), which
//! took most of the time and memory of loading a large plan. This reads the events of the
//! same parser (granit-parser, the one serde-saphyr drives, with the same default options),
//! so every position is the one serde-saphyr reports. Whatever it is not sure to read
//! exactly as serde-saphyr does — a syntax error, a duplicate key, an anchor, a tag, a
//! scalar YAML might read as a number in another spelling (`0x1F`, `1e5`, `.inf`), a file
//! near serde-saphyr's limits — it hands back to serde-saphyr ([`parse`] returns `None`),
//! so every diagnostic stays serde-saphyr's.

use super::yaml::{Key, Node, Text, Value, key_name, pos_of_span};
use crate::plan::diag::Pos;
use granit_parser::{Event, ParseResult, ScalarStyle};
use rustc_hash::FxHashSet as HashSet;
use std::borrow::Cow;

mod pipeline;
pub use pipeline::pipeline_loads;

/// Deeper than this is left to serde-saphyr, whose budget stops at a depth of 64.
const MAX_DEPTH: usize = 32;

/// More events than this are left to serde-saphyr, whose budget allows 40,000,000.
const MAX_EVENTS: usize = 20_000_000;

/// A mapping with more entries than this finds duplicate keys through a set.
const SCAN_KEYS: usize = 16;

/// An open collection. Its items wait on [`Scratch`]'s stacks, from `start` on, and are
/// moved into a slice of their exact size when it ends: no growing vector per collection.
enum Frame {
    Seq(Pos, usize),
    Map {
        pos: Pos,
        start: usize,
        key: Option<Key>,
        /// The keys seen, once the mapping is too large to scan.
        seen: Option<HashSet<Box<str>>>,
    },
}

/// The items and entries of every open collection, innermost last.
#[derive(Default)]
struct Scratch {
    items: Vec<Node>,
    entries: Vec<(Key, Node)>,
}

/// Takes each item of the root's `tasks:` list as soon as it is read, given the root's
/// place and the root's entries written before `tasks:`; hands the item back when it does
/// not take it, and the item stays in the tree.
pub type TaskSink<'s> = dyn FnMut(Pos, &[(Key, Node)], Node) -> Option<Node> + 's;

/// The tree of `source`, or `None` when serde-saphyr must read it (see the module's note).
pub(super) fn parse(source: &str) -> Option<Node> {
    parse_with(source, None)
}

/// [`parse`], handing the items of the root's `tasks:` to `sink` as they are read: a large
/// plan's tree is then never whole (its tasks are most of it).
pub(super) fn parse_with(source: &str, sink: Option<&mut TaskSink>) -> Option<Node> {
    pipeline::with_events(source, |stream| read_events(source, stream, sink))
}

/// [`parse_with`] on the parser's events, as `stream` hands them over.
fn read_events<'s>(
    source: &'s str,
    stream: impl Iterator<Item = ParseResult<'s>>,
    mut sink: Option<&mut TaskSink>,
) -> Option<Node> {
    if source.starts_with('\u{feff}') {
        return None;
    }
    let mut lines = Lines::new(source);
    let mut stack: Vec<Frame> = Vec::new();
    let mut scratch = Scratch::default();
    let mut root: Option<Node> = None;
    let mut documents = 0u32;
    for (events, item) in stream.enumerate() {
        let (event, span) = item.ok()?;
        if events > MAX_EVENTS {
            return None;
        }
        let pos = pos_of_span(&span);
        match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return None;
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                let in_key = matches!(stack.last(), Some(Frame::Map { key: None, .. }));
                if in_key {
                    let name = key_name(key_text(&text, style)?);
                    add_key(&mut stack, &scratch, Key { name, pos })?;
                } else {
                    let at = Written {
                        pos,
                        byte: span.start.byte_offset(),
                    };
                    let value = scalar(text, style, at, &mut lines)?;
                    add(
                        &mut stack,
                        &mut scratch,
                        &mut root,
                        Node { value, pos },
                        &mut sink,
                    )?;
                }
            }
            Event::SequenceStart(_, anchor, tag) => {
                if anchor != 0 || tag.is_some() || stack.len() >= MAX_DEPTH {
                    return None;
                }
                stack.push(Frame::Seq(pos, scratch.items.len()));
            }
            Event::MappingStart(_, anchor, tag) => {
                if anchor != 0 || tag.is_some() || stack.len() >= MAX_DEPTH {
                    return None;
                }
                stack.push(Frame::Map {
                    pos,
                    start: scratch.entries.len(),
                    key: None,
                    seen: None,
                });
            }
            Event::SequenceEnd => {
                let Some(Frame::Seq(pos, start)) = stack.pop() else {
                    return None;
                };
                let items = scratch.items.drain(start..).collect();
                add(
                    &mut stack,
                    &mut scratch,
                    &mut root,
                    Node {
                        value: Value::Seq(items),
                        pos,
                    },
                    &mut sink,
                )?;
            }
            Event::MappingEnd => {
                let Some(Frame::Map {
                    pos,
                    start,
                    key: None,
                    ..
                }) = stack.pop()
                else {
                    return None;
                };
                let entries = scratch.entries.drain(start..).collect();
                add(
                    &mut stack,
                    &mut scratch,
                    &mut root,
                    Node {
                        value: Value::Map(entries),
                        pos,
                    },
                    &mut sink,
                )?;
            }
            // Aliases, anchors and anything newer: serde-saphyr's.
            #[allow(unreachable_patterns)]
            _ => return None,
        }
    }
    if !stack.is_empty() || documents != 1 {
        return None;
    }
    root.filter(|r| matches!(r.value, Value::Map(_)))
}

/// Puts a finished node where it belongs: the root, an item or a key's value.
fn add(
    stack: &mut [Frame],
    scratch: &mut Scratch,
    root: &mut Option<Node>,
    mut node: Node,
    sink: &mut Option<&mut TaskSink>,
) -> Option<()> {
    // An item of the root's `tasks:` goes to the sink, which may hand it back.
    if let Some(sink) = sink
        && let [
            Frame::Map {
                pos, key: Some(k), ..
            },
            Frame::Seq(..),
        ] = &*stack
        && k.name == "tasks"
    {
        match sink(*pos, &scratch.entries, node) {
            Some(back) => node = back,
            None => return Some(()),
        }
    }
    match stack.last_mut() {
        None => {
            if root.is_some() {
                return None;
            }
            *root = Some(node);
        }
        Some(Frame::Seq(..)) => scratch.items.push(node),
        // A key comes through `add_key`; a value without one is not a plain mapping.
        Some(Frame::Map { key, .. }) => scratch.entries.push((key.take()?, node)),
    }
    Some(())
}

/// Opens a mapping's entry with its key. Only plain names are keys here (see `key_text`);
/// a duplicate goes to serde-saphyr, which reports it.
fn add_key(stack: &mut [Frame], scratch: &Scratch, name: Key) -> Option<()> {
    let Some(Frame::Map {
        start, key, seen, ..
    }) = stack.last_mut()
    else {
        return None;
    };
    let entries = &scratch.entries[*start..];
    if let Some(seen) = seen {
        if !seen.insert(name.name.as_ref().into()) {
            return None;
        }
    } else if entries.iter().any(|(k, _)| k.name == name.name) {
        return None;
    } else if entries.len() >= SCAN_KEYS {
        let mut set: HashSet<Box<str>> = entries
            .iter()
            .map(|(k, _)| k.name.as_ref().into())
            .collect();
        set.insert(name.name.as_ref().into());
        *seen = Some(set);
    }
    *key = Some(name);
    Some(())
}

/// A key as serde-saphyr reads it, when that is surely its text: not a merge key, nor empty,
/// nor a word or number YAML reads as another value.
fn key_text(text: &str, style: ScalarStyle) -> Option<&str> {
    if style != ScalarStyle::Plain {
        return Some(text);
    }
    if text == "<<" || is_null(text) || bool_word(text).is_some() {
        return None;
    }
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    match unsigned.chars().next() {
        Some(c) if c.is_ascii_digit() || c == '.' => None,
        None => None,
        _ if maybe_special_float(text) => None,
        _ => Some(text),
    }
}

/// A value as serde-saphyr's untyped reading leaves it once `yaml::restore_scalars` has
/// taken back the numbers' spelling; `None` when unsure.
fn scalar(text: Cow<str>, style: ScalarStyle, at: Written, lines: &mut Lines) -> Option<Value> {
    if style != ScalarStyle::Plain {
        // Quoted and block scalars are strings; `restore_scalars` still rewrites one that
        // reads as a number into the source text under its position, when that is digits.
        if text.parse::<f64>().is_ok()
            && let Some(w) = lines.written(at)
            && !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_digit() || ".-+eE_".contains(c))
        {
            return Some(Value::Scalar(w.into()));
        }
        return Some(Value::Scalar(boxed(text)));
    }
    if is_null(&text) {
        return Some(Value::Null);
    }
    if let Some(b) = bool_word(&text) {
        return Some(Value::Scalar(if b { "true" } else { "false" }.into()));
    }
    if maybe_special_float(&text) {
        return None;
    }
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(&text);
    let first = unsigned.chars().next();
    if first == Some('.') {
        return None;
    }
    if first.is_some_and(|c| c.is_ascii_digit()) {
        let b = unsigned.as_bytes();
        if b.len() > 1 && b[0] == b'0' && matches!(b[1], b'x' | b'X' | b'o' | b'O' | b'b' | b'B') {
            return None;
        }
        let numeric = |c: char| c.is_ascii_digit() || ".+-_".contains(c);
        if text.chars().all(|c| numeric(c) || c == 'e' || c == 'E') {
            // A number, or text spelled like one: what `restore_scalars` makes of it is
            // the source text, when that is where the parser says it is.
            if text.len() > 300
                || text.contains(['e', 'E'])
                || !lines.written_chars(at)?.eq(text.chars())
            {
                return None;
            }
        }
    }
    Some(Value::Scalar(boxed(text)))
}

/// A scalar's text, in place or in a box of its size.
fn boxed(text: Cow<str>) -> Text {
    match text {
        Cow::Borrowed(t) => t.into(),
        Cow::Owned(t) => t.into(),
    }
}

/// serde-saphyr's null spellings of a plain scalar.
fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// serde-saphyr's YAML 1.1 booleans (its default), which the tree holds as `true`/`false`.
fn bool_word(text: &str) -> Option<bool> {
    let t = text.trim();
    // Every plain scalar is asked: most are longer than the longest word, `false`.
    if t.len() > 5 {
        return None;
    }
    if ["true", "yes", "y", "on"]
        .iter()
        .any(|w| t.eq_ignore_ascii_case(w))
    {
        Some(true)
    } else if ["false", "no", "n", "off"]
        .iter()
        .any(|w| t.eq_ignore_ascii_case(w))
    {
        Some(false)
    } else {
        None
    }
}

/// A short word that may be infinity or not-a-number in some spelling: left to serde-saphyr.
fn maybe_special_float(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() <= 12
        && b.windows(3)
            .any(|w| w.eq_ignore_ascii_case(b"inf") || w.eq_ignore_ascii_case(b"nan"))
}

/// Where a scalar is written: its position, and where the parser says it starts in the
/// source's bytes (if it says).
#[derive(Clone, Copy)]
struct Written {
    pos: Pos,
    byte: Option<usize>,
}

/// The source's lines, to read what is written at a position as `restore_scalars` does.
/// The scalars asked about come in the order they are written, so a cursor walks forward
/// to each: no index of every line's start (8 bytes a line) for the few scalars read.
struct Lines<'a> {
    source: &'a str,
    /// The line (1-based) the cursor is on, and the byte offset where it starts.
    line: usize,
    start: usize,
    /// Whether the source has a carriage return: without one, its lines are the parser's,
    /// and a scalar's line is read from the byte the parser gives instead of walked to.
    has_cr: Option<bool>,
}

impl<'a> Lines<'a> {
    fn new(source: &'a str) -> Self {
        Self {
            source,
            line: 1,
            start: 0,
            has_cr: None,
        }
    }

    /// The text at `at` (1-based line and column in characters, `len` characters), as
    /// `restore_scalars` reads it from `str::lines`.
    fn written(&mut self, at: Written) -> Option<String> {
        Some(self.written_chars(at)?.collect())
    }

    /// [`Self::written`]'s characters, read in place: the plain scalars spelled like
    /// numbers (every date of a large plan) are compared with it, with no copy.
    fn written_chars(&mut self, at: Written) -> Option<impl Iterator<Item = char> + 'a> {
        let Written { pos, byte } = at;
        let source = self.source;
        let has_cr = *self
            .has_cr
            .get_or_insert_with(|| source.as_bytes().contains(&b'\r'));
        // Lines end at `\n` alone, for the parser as for `str::lines`: the parser's byte is
        // on the line the walk below would reach.
        let line = if !has_cr
            && pos.line > 0
            && let Some(b) = byte
            && let Some(before) = source.get(..b)
        {
            let start = before.rfind('\n').map_or(0, |e| e + 1);
            let rest = &source[start..];
            rest.find('\n').map_or(rest, |e| &rest[..e])
        } else {
            self.walk_to(pos.line as usize)?
        };
        Some(
            line.chars()
                .skip(pos.column.saturating_sub(1) as usize)
                .take(pos.len as usize),
        )
    }

    /// Line `n` (1-based) without its line end, walked to from the cursor.
    fn walk_to(&mut self, n: usize) -> Option<&'a str> {
        if n == 0 {
            return None;
        }
        if n < self.line {
            (self.line, self.start) = (1, 0);
        }
        while self.line < n {
            self.start += self.source[self.start..].find('\n')? + 1;
            self.line += 1;
        }
        let rest = &self.source[self.start..];
        let line = rest.find('\n').map_or(rest, |e| &rest[..e]);
        Some(line.strip_suffix('\r').unwrap_or(line))
    }
}
