//! The parser's events of a large file, read on a thread of their own.
//!
//! Scanning and parsing the YAML is more than half of loading a large plan, and building the
//! tree (and the tasks, through the sink) from the events is most of the rest. The daemon
//! reloads on a machine with more than one core, so the parser runs on a second thread and
//! hands its events over in batches while this one builds: the reload takes about the
//! longer of the two, not their sum. The consumer is the same code either way
//! ([`super::read_events`]); only where its events come from differs.

use granit_parser::{Options, ParseResult, Parser, StrInput};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

/// Files smaller than this are parsed on the thread that reads them: a thread and its
/// hand-over cost more than they save on a small plan.
const PIPELINE_BYTES: usize = 256 * 1024;

/// Events per batch handed over: one hand-over per this many events.
const BATCH: usize = 1024;

/// Batches waiting for the consumer, at most: the parser is then at most this far ahead,
/// so a large file's events are never all in memory at once.
const BATCHES: usize = 4;

/// Whether large files are parsed on a second thread; see [`pipeline_loads`].
static PIPELINED: AtomicBool = AtomicBool::new(false);

/// Parses large files on a second thread from now on (`true`), or on the reading thread
/// (`false`, the default). The daemon turns it on: its reloads wait on the load, and the
/// second core is idle meanwhile. `check` and `plan` leave it off: they measure in CPU time,
/// which the hand-over only adds to.
pub fn pipeline_loads(on: bool) {
    PIPELINED.store(on, Ordering::Relaxed);
}

/// The parser of `source` with serde-saphyr's options (its budget's limits are the same
/// numbers as the parser's defaults); comments are of no use here.
fn parser(source: &str) -> Parser<'_, StrInput<'_>> {
    let mut options = Options::default();
    options.set_emit_comments(false);
    Parser::new_from_str_with_options(source, options)
}

/// `read` on the events of `source`: from a second thread when [`pipeline_loads`] is on and
/// the file is large, else straight from the parser.
pub(super) fn with_events<'s, R>(source: &'s str, read: impl FnOnce(Events<'s>) -> R) -> R {
    if PIPELINED.load(Ordering::Relaxed) && source.len() >= PIPELINE_BYTES {
        pipelined(source, BATCH, read)
    } else {
        read(Events::Here(parser(source)))
    }
}

/// The events of a file, from the parser itself or from its thread.
// One per load, on the stack: the parser is not worth a box.
#[allow(clippy::large_enum_variant)]
pub(super) enum Events<'s> {
    Here(Parser<'s, StrInput<'s>>),
    Received(Received<'s>),
}

impl<'s> Iterator for Events<'s> {
    type Item = ParseResult<'s>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Events::Here(parser) => parser.next(),
            Events::Received(received) => received.next(),
        }
    }
}

/// `read` on the events of `source`, parsed on a scoped thread and handed over in batches
/// of `batch`. When `read` returns early (an error, a file left to serde-saphyr) the
/// channel closes and the parser stops at its next hand-over. Falls back to parsing here
/// when no thread can be started.
fn pipelined<'s, R>(source: &'s str, batch: usize, read: impl FnOnce(Events<'s>) -> R) -> R {
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = sync_channel(BATCHES);
        let (empty_tx, empty_rx) = channel();
        let produced = std::thread::Builder::new()
            .name("yaml-parser".into())
            .spawn_scoped(scope, move || produce(source, batch, &full_tx, &empty_rx));
        if produced.is_err() {
            return read(Events::Here(parser(source)));
        }
        // `read` drops the receiving end when it returns, before the scope waits for the
        // parser's thread: the parser's next hand-over then fails and it ends.
        read(Events::Received(Received {
            full: full_rx,
            empty: empty_tx,
            batch: VecDeque::new(),
        }))
    })
}

/// The parser's side: its events in batches of `batch`, in order, until the last one or
/// the first error (which ends the batch it is in), or until the consumer is gone.
fn produce<'s>(
    source: &'s str,
    batch: usize,
    full: &SyncSender<Vec<ParseResult<'s>>>,
    empty: &Receiver<Vec<ParseResult<'s>>>,
) {
    let mut events = parser(source);
    loop {
        // A batch the consumer has emptied, so that the batches are allocated once.
        let mut items = empty
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(batch));
        let mut ended = false;
        while items.len() < batch {
            match events.next() {
                Some(item) => {
                    let failed = item.is_err();
                    items.push(item);
                    if failed {
                        ended = true;
                        break;
                    }
                }
                None => {
                    ended = true;
                    break;
                }
            }
        }
        if (!items.is_empty() && full.send(items).is_err()) || ended {
            return;
        }
    }
}

/// The consumer's side: the events of the batches received, in order; the emptied batches
/// go back to the parser.
pub(super) struct Received<'s> {
    full: Receiver<Vec<ParseResult<'s>>>,
    empty: Sender<Vec<ParseResult<'s>>>,
    batch: VecDeque<ParseResult<'s>>,
}

impl<'s> Iterator for Received<'s> {
    type Item = ParseResult<'s>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.batch.pop_front() {
                return Some(item);
            }
            let next = self.full.recv().ok()?;
            let done = std::mem::replace(&mut self.batch, VecDeque::from(next));
            // The parser may have ended already: its batch is then simply dropped.
            if done.capacity() > 0 {
                let _ = self.empty.send(Vec::from(done));
            }
        }
    }
}

#[cfg(test)]
mod tests;
