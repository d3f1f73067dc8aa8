//! Writes the imported plan as nhacviec YAML by hand: serializers drop comments, and every
//! uncertain choice must be a comment at its line for the clerk to review.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::Appendix;
use super::assign::{self, Catalog, Mention};

/// Every comment that asks the clerk to decide starts with this, so they can be found.
pub const REVIEW: &str = "# KIỂM TRA:";

/// The top-level keys of a config that do not depend on the year's plan: carried over.
const CARRIED: &[&str] = &[
    "offices",
    "groups",
    "leadership",
    "reminders",
    "schedule",
    "mail",
    "ledger",
];

/// An existing config whose offices and settings the import reuses.
#[derive(Debug, Clone)]
pub struct Base {
    /// The carried top-level blocks, as written (comments included), in file order.
    blocks: Vec<(String, String)>,
    pub catalog: Catalog,
    office_ids: Vec<String>,
}

#[derive(Deserialize, Default)]
struct Lite {
    #[serde(default)]
    offices: BTreeMap<String, LiteOffice>,
    #[serde(default)]
    groups: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct LiteOffice {
    #[serde(default)]
    name: Option<String>,
}

impl Base {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| crate::tr!("không đọc được {}", "cannot read {}", path.display()))?;
        Self::from_text(&text).with_context(|| {
            crate::tr!(
                "{}: không phải tệp cấu hình nhacviec",
                "{}: not a nhacviec config",
                path.display()
            )
        })
    }

    pub fn from_text(text: &str) -> Result<Self> {
        let lite: Lite = serde_saphyr::from_str(text)?;
        let offices: Vec<(String, String)> = lite
            .offices
            .iter()
            .map(|(id, o)| (id.clone(), o.name.clone().unwrap_or_else(|| id.clone())))
            .collect();
        let groups: Vec<String> = lite.groups.keys().cloned().collect();
        Ok(Base {
            blocks: top_level_blocks(text)
                .into_iter()
                .filter(|(k, _)| CARRIED.contains(&k.as_str()))
                .collect(),
            catalog: Catalog::new(&offices, &groups),
            office_ids: offices.into_iter().map(|(id, _)| id).collect(),
        })
    }
}

/// Splits a YAML file into its top-level keys' blocks: the comments just above a key, the
/// key's line and everything indented under it.
fn top_level_blocks(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let top = line.chars().next().is_some_and(|c| !c.is_whitespace());
        if top && !line.starts_with('#') && !line.starts_with("---") {
            let key = line.split(':').next().unwrap_or("").trim().to_string();
            let mut block = std::mem::take(&mut pending);
            block.push_str(line);
            block.push('\n');
            out.push((key, block));
        } else if top || line.trim().is_empty() {
            // A comment at column 0 or a blank line: it belongs to what follows.
            pending.push_str(line);
            pending.push('\n');
        } else if let Some((_, block)) = out.last_mut() {
            block.push_str(&pending);
            pending.clear();
            block.push_str(line);
            block.push('\n');
        }
    }
    out
}

/// A YAML scalar: plain when that reads back as the same string, double-quoted otherwise.
pub fn scalar(s: &str) -> String {
    let special = s.is_empty()
        || s != s.trim()
        || s.starts_with([
            '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%',
            '@', '`',
        ])
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.contains(['\n', '\t', '\r'])
        || s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '+' || c == '.')
        || matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "~"
        );
    if !special {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One comment line's text: no line breaks.
fn comment_text(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `key: value`, or a flow list for several, with the comments that go with it.
fn ids_value(ids: &[String]) -> String {
    match ids {
        [one] => scalar(one),
        many => format!(
            "[{}]",
            many.iter()
                .map(|s| scalar(s))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Ids for the mentions, the notes to the clerk about them, and the offices to propose.
fn resolve(
    mentions: &[Mention],
    role: &str,
    proposals: &mut Vec<(String, String)>,
    known: &[String],
) -> (Vec<String>, Vec<String>) {
    let mut ids = Vec::new();
    let mut notes = Vec::new();
    for m in mentions {
        match m {
            Mention::Known(id) => ids.push(id.clone()),
            Mention::Guessed { id, phrase } => {
                ids.push(id.clone());
                notes.push(format!("\"{phrase}\" hiểu là nhóm `{id}`: xác nhận"));
            }
            Mention::Vague(phrase) => notes.push(format!(
                "{role}: \"{phrase}\" không nêu tên đơn vị: thêm mã đơn vị nếu cần"
            )),
            Mention::Unknown(name) => {
                let mut id = assign::slug(name);
                if let Some(rest) = id.strip_prefix("phong-") {
                    id = rest.to_string();
                }
                if known.contains(&id) {
                    id = format!("{id}-moi");
                }
                if !proposals.iter().any(|(p, _)| *p == id) {
                    proposals.push((id.clone(), name.clone()));
                }
                ids.push(id.clone());
                notes.push(format!(
                    "\"{name}\" không có trong danh sách đơn vị: đề xuất mã mới `{id}`, xác nhận"
                ));
            }
        }
    }
    let mut seen = Vec::new();
    ids.retain(|i| {
        let fresh = !seen.contains(i);
        seen.push(i.clone());
        fresh
    });
    (ids, notes)
}

fn put_review(out: &mut String, indent: &str, notes: &[String]) {
    for n in notes {
        let _ = writeln!(out, "{indent}{REVIEW} {}", comment_text(n));
    }
}

/// What the document leaves to the clerk about a deadline: the decisions nhacviec needs
/// that the phrase does not make.
fn deadline_notes(task: &super::RawTask) -> Vec<String> {
    let phrase = assign::normalize(&task.deadline);
    let mut notes = Vec::new();
    if phrase.starts_with("sau khi") {
        notes.push(
            "hạn tính sau khi một nhiệm vụ khác xong: viết thành khối `phrase:`, `after:` (mã nhiệm vụ đó), `days:`"
                .to_string(),
        );
    }
    let title = assign::normalize(&task.title);
    if title.contains("lần/năm") || phrase.contains("lần/năm") {
        notes.push(
            "làm nhiều lần trong năm: thêm `checkpoints:` vào khối `deadline:` nếu cần".to_string(),
        );
    }
    if phrase == "theo quy định" && title.contains("định kỳ") {
        notes.push(
            "báo cáo định kỳ: viết `every:`, `day:`, `working_days_after:` nếu cần nhắc theo kỳ"
                .to_string(),
        );
    }
    notes
}

/// The whole YAML: the plan, its sections and tasks, and (with `base`) the carried settings.
pub fn write(appendix: &Appendix, catalog: &Catalog, base: Option<&Base>) -> String {
    let mut out = String::new();
    out.push_str(
        "# Nhập bằng `nhacviec import` từ Phụ lục của kế hoạch. Xem lại mọi dòng có\n\
         # \"KIỂM TRA:\", sửa nếu cần, rồi chạy `nhacviec check -c <tệp này>`.\n\n",
    );
    write_plan(&mut out, appendix);
    write_sections(&mut out, appendix);
    // The tasks first, into their own buffer: they decide which offices to propose.
    let known: Vec<String> = base.map(|b| b.office_ids.clone()).unwrap_or_default();
    let (tasks, proposals) = write_tasks(appendix, catalog, &known);
    write_settings(&mut out, base, &proposals);
    out.push_str(&tasks);
    out
}

/// The `plan:` block, with a note to the clerk for each field the document did not give.
fn write_plan(out: &mut String, appendix: &Appendix) {
    out.push_str("plan:\n");
    match &appendix.title {
        Some(t) => {
            let _ = writeln!(out, "  title: {}", scalar(t));
        }
        None => {
            let _ = writeln!(
                out,
                "  title: \"\"   {REVIEW} không thấy tên kế hoạch: điền vào"
            );
        }
    }
    if let Some(r) = &appendix.reference {
        let _ = writeln!(out, "  reference: {}", scalar(r));
    } else {
        let _ = writeln!(
            out,
            "  {REVIEW} không thấy số, ngày văn bản ban hành: thêm `reference:`"
        );
    }
    match appendix.year {
        Some(y) => {
            let _ = writeln!(out, "  year: {y}");
        }
        None => {
            let _ = writeln!(out, "  {REVIEW} không thấy năm của kế hoạch: thêm `year:`");
        }
    }
}

fn write_sections(out: &mut String, appendix: &Appendix) {
    out.push_str("\nsections:\n");
    for (id, name) in &appendix.sections {
        let _ = writeln!(out, "  {}: {}", scalar(id), scalar(name));
    }
}

/// The `tasks:` block, and the new offices its assignments name, in order of first mention.
fn write_tasks(
    appendix: &Appendix,
    catalog: &Catalog,
    known: &[String],
) -> (String, Vec<(String, String)>) {
    let mut proposals: Vec<(String, String)> = Vec::new();
    let mut tasks = String::from("\ntasks:\n");
    let mut last_section = String::new();
    // Offices proposed so far join the catalog: "Phòng HC-TC" then "Phòng Hành chính – Tổ
    // chức" is one new office, not two.
    let mut grown = catalog.clone();
    for task in &appendix.tasks {
        if task.section != last_section {
            let name = appendix
                .sections
                .iter()
                .find(|(id, _)| *id == task.section)
                .map(|(_, n)| n.as_str())
                .unwrap_or("");
            let _ = writeln!(
                tasks,
                "\n  # ---- {}. {} ----",
                task.section,
                comment_text(name)
            );
            last_section = task.section.clone();
        }
        let a = assign::parse(&task.assignment, &grown);
        write_task_fields(&mut tasks, task);
        write_task_offices(&mut tasks, &a, &mut proposals, known);
        // Sent the result ("gửi Sở Nội vụ thẩm định", in the assignment or the product):
        // `report_to:`, named in the emails, never reminded.
        let mut report_to = assign::sent_to(&task.assignment, &grown);
        for id in assign::sent_to(&task.product, &grown) {
            if !report_to.contains(&id) {
                report_to.push(id);
            }
        }
        report_to.retain(|id| {
            !a.lead
                .iter()
                .chain(&a.cooperating)
                .any(|m| *m == assign::Mention::Known(id.clone()))
        });
        if !report_to.is_empty() {
            let _ = writeln!(
                tasks,
                "    report_to: {}   # nơi nhận hoặc thẩm định kết quả (\"gửi …\"): nêu trong email, không được nhắc",
                ids_value(&report_to)
            );
        }
        if proposals.len() > grown.proposed() {
            grown = catalog.clone();
            grown.add_offices(&proposals);
        }
        let others: Vec<&String> = a
            .also_named
            .iter()
            .filter(|id| !report_to.contains(id))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                tasks,
                "    # Cũng nêu trong Phân công, không phải đơn vị phối hợp: {}",
                others
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    (tasks, proposals)
}

/// A task's id, title, product and deadline, with the notes its deadline calls for.
fn write_task_fields(tasks: &mut String, task: &super::RawTask) {
    let _ = writeln!(tasks, "  - id: {}", scalar(&task.id));
    let _ = writeln!(tasks, "    title: {}", scalar(&task.title));
    if !task.product.is_empty() {
        let _ = writeln!(tasks, "    product: {}", scalar(&task.product));
    }
    if task.deadline.is_empty() {
        let _ = writeln!(tasks, "    deadline: \"\"   {REVIEW} cột Tiến độ trống");
    } else {
        let _ = writeln!(tasks, "    deadline: {}", scalar(&task.deadline));
    }
    for note in deadline_notes(task) {
        let _ = writeln!(tasks, "    {REVIEW} {note}");
    }
    let _ = writeln!(tasks, "    # Phân công: {}", comment_text(&task.assignment));
}

/// A task's `lead:` and `cooperating:`; an office that leads is not also listed as
/// cooperating.
fn write_task_offices(
    tasks: &mut String,
    a: &assign::Assignment,
    proposals: &mut Vec<(String, String)>,
    known: &[String],
) {
    let (lead, lead_notes) = resolve(&a.lead, "chủ trì", proposals, known);
    put_review(tasks, "    ", &lead_notes);
    if lead.is_empty() {
        let _ = writeln!(
            tasks,
            "    lead: []   {REVIEW} không đọc được đơn vị chủ trì: điền mã đơn vị"
        );
    } else {
        let _ = writeln!(tasks, "    lead: {}", ids_value(&lead));
    }
    let (mut coop, coop_notes) = resolve(&a.cooperating, "phối hợp", proposals, known);
    coop.retain(|c| !lead.contains(c));
    put_review(tasks, "    ", &coop_notes);
    if !coop.is_empty() {
        let _ = writeln!(tasks, "    cooperating: {}", ids_value(&coop));
    }
}

/// The carried blocks of `base` in its order, the proposed offices appended to its
/// `offices:`; without one, an `offices:` block of the proposals alone.
fn write_settings(out: &mut String, base: Option<&Base>, proposals: &[(String, String)]) {
    let mut proposal_text = String::new();
    for (id, name) in proposals {
        let _ = writeln!(
            proposal_text,
            "  {}:   {REVIEW} đơn vị mới, đọc từ Phân công: xác nhận tên, thêm email nếu cần nhắc\n    name: {}",
            scalar(id),
            scalar(name)
        );
    }
    let mut wrote_offices = false;
    if let Some(b) = base {
        for (key, block) in &b.blocks {
            out.push('\n');
            if key == "offices" {
                out.push_str(block.trim_end());
                out.push('\n');
                out.push_str(&proposal_text);
                wrote_offices = true;
            } else {
                out.push_str(block.trim_end());
                out.push('\n');
            }
        }
    }
    if !wrote_offices {
        out.push_str("\noffices:\n");
        out.push_str(&proposal_text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_quoted_only_when_needed() {
        assert_eq!(scalar("Quý II/2024"), "Quý II/2024");
        assert_eq!(scalar("- gạch đầu dòng"), "\"- gạch đầu dòng\"");
        assert_eq!(scalar("a: b"), "\"a: b\"");
        assert_eq!(scalar("2024"), "\"2024\"");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("“Đúng, đủ” \"x\""), "“Đúng, đủ” \"x\"");
        assert_eq!(scalar("\"x\""), "\"\\\"x\\\"\"");
        assert_eq!(scalar("a #b"), "\"a #b\"");
    }

    #[test]
    fn blocks_keep_their_comments() {
        let text = "# head\nplan:\n  title: x\n\n# the offices\noffices:\n  a:\n    name: A\n  # indented\n  b:\n    name: B\nmail:\n  from: x\n";
        let b = top_level_blocks(text);
        let keys: Vec<&str> = b.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["plan", "offices", "mail"]);
        assert_eq!(
            b[1].1,
            "\n# the offices\noffices:\n  a:\n    name: A\n  # indented\n  b:\n    name: B\n"
        );
    }
}
