use super::super::{TaskSink, read_events};
use super::*;
use crate::plan::diag::Pos;
use crate::plan::yaml::{Key, Node};

const SEED: &str = include_str!("../../../../config/khanh-hoa-2024.yaml");

/// A plan in the shapes `scripts/gen-config` writes, `n` tasks: every deadline form, lists
/// of leads, quoted and numeric-looking scalars.
fn generated(n: usize) -> String {
    let mut y = String::from("plan:\n  year: 2024\noffices:\n");
    for i in 0..40 {
        y += &format!("  dv-{i}:\n    name: \"Đơn vị {i}\"\n    email: dv{i}@vpubnd.example\n");
    }
    y += "reminders:\n  default:\n    before: [14d, 7d, 3wd]\n    on_day: true\n    overdue_every: 3wd\n";
    y += "mail:\n  from: Nhắc việc <nhacviec@vpubnd.example>\n  transport:\n    outbox: ob\n";
    y += "ledger:\n  path: l.db\ntasks:\n";
    for t in 0..n {
        let (m, d) = (t % 12 + 1, t % 28 + 1);
        y += &format!("  - id: \"T.{t}\"\n    title: nhiệm vụ số {t} của kế hoạch\n");
        y += &match t % 4 {
            0 => format!("    deadline: trước ngày {d:02}/{m:02}/2024\n"),
            1 => format!("    deadline: Tháng {m:02}/2024\n"),
            2 => format!(
                "    deadline:\n      phrase: 'Theo quy định'\n      every: quarter\n      day: {d}\n"
            ),
            _ => format!("    deadline:\n      dates: [2024-{m:02}-{d:02}, 2024-12-{d:02}]\n"),
        };
        y += &format!("    lead: [dv-{}, dv-{}]\n", t % 40, (t * 7) % 40);
        if t % 3 == 0 {
            y += "    note: |\n      Ghi chú dài\n      trên hai dòng\n";
        }
    }
    y
}

/// The files compared: read from the events, and left to serde-saphyr at every stage.
fn sources() -> Vec<(&'static str, String)> {
    let big = generated(3000);
    assert!(big.len() > PIPELINE_BYTES, "{}", big.len());
    let late_error = format!("{big}  - id: [unclosed\n    title: x\n");
    let early_error = big.replacen("plan:\n  year: 2024\n", "plan:\n  year: [2024\n", 1);
    let anchors = big.replacen(
        "  - id: \"T.7\"\n",
        "  - &t7\n    id: \"T.7\"\n    extra: *t7\n",
        1,
    );
    let late_anchor = format!("{big}  - id: T.last\n    lead: &l dv-1\n    cooperating: *l\n");
    vec![
        ("seed", SEED.to_string()),
        ("generated", big),
        ("late syntax error", late_error),
        ("early syntax error", early_error),
        ("anchors", anchors),
        ("late anchor", late_anchor),
        ("empty", String::new()),
    ]
}

/// Every event, in order, as the parser gives them (an error as its text).
fn collect<'s>(events: impl Iterator<Item = ParseResult<'s>>) -> Vec<String> {
    events
        .map(|e| match e {
            Ok((event, span)) => format!("{event:?} {span:?}"),
            Err(e) => format!("error {e:?}"),
        })
        .collect()
}

#[test]
fn the_events_handed_over_are_the_parsers_own_none_dropped_reordered_or_repeated() {
    for (name, source) in sources() {
        let source = source.as_str();
        let serial = collect(parser(source));
        assert!(!serial.is_empty(), "{name}");
        // A batch of one, one that divides nothing evenly, and the real size.
        for batch in [1, 7, BATCH] {
            let piped = pipelined(source, batch, collect);
            assert_eq!(piped.len(), serial.len(), "{name}, batches of {batch}");
            if let Some(i) = (0..serial.len()).find(|&i| piped[i] != serial[i]) {
                panic!(
                    "{name}, batches of {batch}: event {i} differs:\n{}\n{}",
                    serial[i], piped[i]
                );
            }
        }
    }
}

/// What the reader sees: each task handed to the sink (with the root's place and the
/// entries before `tasks:`), the tree left, or `None` for serde-saphyr.
fn read<'s>(source: &'s str, events: impl Iterator<Item = ParseResult<'s>>) -> String {
    let mut seen = String::new();
    let mut count = 0usize;
    // Every third task is handed back, to stay in the tree.
    let mut sink = |root: Pos, before: &[(Key, Node)], item: Node| -> Option<Node> {
        count += 1;
        seen += &format!("{root:?} {} {item:?}\n", before.len());
        count.is_multiple_of(3).then_some(item)
    };
    let tree = read_events(source, events, Some(&mut sink as &mut TaskSink));
    format!("{seen}tree: {tree:?}")
}

#[test]
fn the_tree_and_the_tasks_read_from_a_second_thread_are_those_read_here() {
    for (name, source) in sources() {
        let here = read(&source, parser(&source));
        for batch in [1, 7, BATCH] {
            let piped = pipelined(&source, batch, |events| read(&source, events));
            assert!(piped == here, "{name}, batches of {batch}: differs");
        }
        let streamed = name == "seed" || name == "generated";
        assert_eq!(here.ends_with("tree: None"), !streamed, "{name}");
    }
}

#[test]
fn a_reader_that_stops_early_ends_the_parsers_thread() {
    let source = generated(3000);
    for take in [0, 1, BATCH * BATCHES * 3] {
        // Returns only once the parser's thread has ended (the scope waits for it).
        let n = pipelined(&source, BATCH, |events| events.take(take).count());
        assert_eq!(n, take);
    }
}

#[test]
fn a_large_file_is_pipelined_only_once_it_is_turned_on() {
    let source = generated(3000);
    let on_thread =
        |source: &str| with_events(source, |events| matches!(events, Events::Received(_)));
    // Off by default (the other tests of this process never turn it on).
    assert!(!on_thread(&source));
    pipeline_loads(true);
    let (large, small) = (on_thread(&source), on_thread(SEED));
    pipeline_loads(false);
    assert!(large, "a large file, turned on");
    assert!(!small, "a small file stays on the reading thread");
}
