//! `nhacviec import`: a plan's appendix table (.docx, or text copied from a PDF) → nhacviec YAML.
//! Owns reading documents and writing a reviewable config; it may not touch the loader, the
//! planner or the ledger (configs are read here as plain YAML, never validated or scheduled).

pub mod assign;
pub mod docx;
pub mod text;
pub mod yaml_out;

use std::path::Path;

use anyhow::{Context, Result};

use crate::import::assign::{Assignment, Catalog};

/// A document as the importer sees it: the paragraphs before the appendix (for the title and
/// reference) and the rows of its tables, in order.
#[derive(Debug, Default, Clone)]
pub struct Document {
    pub heading: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// One table cell. `merged_above`: a vertically merged cell (`w:vMerge` continue) that
/// repeats the text of the cell above it, which `text` holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub merged_above: bool,
}

impl Cell {
    pub fn plain(text: &str) -> Self {
        Cell {
            text: text.to_string(),
            merged_above: false,
        }
    }
}

/// One row of the appendix, its cells joined across page breaks, markup removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTask {
    pub id: String,
    pub section: String,
    pub title: String,
    pub product: String,
    pub deadline: String,
    pub assignment: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appendix {
    pub title: Option<String>,
    pub reference: Option<String>,
    pub year: Option<i32>,
    /// Section id (`II`) → its name, in document order.
    pub sections: Vec<(String, String)>,
    pub tasks: Vec<RawTask>,
}

/// Reads `path` (by its extension: `.docx`, anything else as text) and writes the YAML.
pub fn import_file(path: &Path, offices: Option<&Path>, year: Option<i32>) -> Result<String> {
    let doc = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("docx"))
    {
        docx::read(path)?
    } else {
        let s = std::fs::read_to_string(path)
            .with_context(|| crate::tr!("không đọc được {}", "cannot read {}", path.display()))?;
        text::read(&s)
    };
    let mut appendix = appendix(&doc);
    if year.is_some() {
        appendix.year = year;
    }
    if appendix.tasks.is_empty() {
        anyhow::bail!(crate::tr!(
            "{}: không tìm thấy bảng phụ lục (bảng có hàng tiêu đề bắt đầu bằng STT, Nhiệm vụ)",
            "{}: no appendix table found (a table whose header starts with STT, Nhiệm vụ)",
            path.display()
        ));
    }
    let base = match offices {
        Some(p) => Some(yaml_out::Base::read(p)?),
        None => None,
    };
    let catalog = base.as_ref().map(|b| b.catalog.clone()).unwrap_or_default();
    Ok(yaml_out::write(&appendix, &catalog, base.as_ref()))
}

/// The appendix's sections and tasks from a document's rows; its title, reference and year
/// from the heading.
pub fn appendix(doc: &Document) -> Appendix {
    let (title, reference) = heading(&doc.heading);
    let mut out = Appendix {
        title,
        reference,
        ..Appendix::default()
    };
    let mut header: Option<Vec<String>> = None;
    let mut section = String::new();
    let mut current: Option<[String; 5]> = None;
    let flush = |cur: &mut Option<[String; 5]>, out: &mut Appendix, section: &str| {
        if let Some(c) = cur.take() {
            out.tasks.push(RawTask {
                id: format!("{section}.{}", c[0]),
                section: section.to_string(),
                title: clean_sentence(&c[1]),
                product: product(&c[2]),
                deadline: clean_sentence(&c[3]),
                assignment: clean(&c[4]),
            });
        }
    };
    for row in &doc.rows {
        let texts: Vec<String> = row.iter().map(|c| c.text.trim().to_string()).collect();
        let first = texts.first().map(|s| norm_key(s)).unwrap_or_default();
        if first == "stt" {
            header.get_or_insert_with(|| texts.clone());
            continue;
        }
        if header.is_none() || header.as_ref() == Some(&texts) {
            continue;
        }
        let first_raw = texts[0].trim_end_matches(['.', ')']);
        if is_roman(first_raw) {
            flush(&mut current, &mut out, &section);
            section = first_raw.to_string();
            let name = texts.get(1).map(|s| sentence_case(&clean(s)));
            out.sections
                .push((section.clone(), name.unwrap_or_default()));
        } else if !first_raw.is_empty() && first_raw.chars().all(|c| c.is_ascii_digit()) {
            flush(&mut current, &mut out, &section);
            let mut c: [String; 5] = Default::default();
            c[0] = first_raw.to_string();
            for (i, cell) in row.iter().enumerate().skip(1).take(4) {
                c[i] = cell.text.trim().to_string();
            }
            current = Some(c);
        } else if first_raw.is_empty()
            && let Some(c) = current.as_mut()
        {
            // The rest of the row above, continued after a page break: a merged cell
            // (vMerge continue) is the same cell, not more text.
            for (i, cell) in row.iter().enumerate().skip(1).take(4) {
                let t = cell.text.trim();
                if cell.merged_above || t.is_empty() {
                    continue;
                }
                if !c[i].is_empty() {
                    c[i].push(' ');
                }
                c[i].push_str(t);
            }
        }
    }
    flush(&mut current, &mut out, &section);
    out.year = out
        .title
        .iter()
        .chain(&out.reference)
        .find_map(|s| year_in(s));
    out
}

fn year_in(s: &str) -> Option<i32> {
    let re = regex::Regex::new(r"(?:năm |/)(20\d\d)\b").expect("regex");
    re.captures(s).and_then(|c| c[1].parse().ok())
}

fn is_roman(s: &str) -> bool {
    !s.is_empty() && s.len() <= 6 && s.chars().all(|c| matches!(c, 'I' | 'V' | 'X'))
}

/// Lowercase, NFC, one space: for comparing header cells.
fn norm_key(s: &str) -> String {
    assign::normalize(s)
}

/// Markup removed (HTML tags a PDF copy leaves in cells, `**` bold marks), whitespace
/// collapsed.
pub fn clean(s: &str) -> String {
    let tags = regex::Regex::new(r"<[^>]*>").expect("regex");
    let s = tags.replace_all(s, " ");
    let s = s.replace("**", "");
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// [`clean`], and the full stop that ends a cell dropped.
fn clean_sentence(s: &str) -> String {
    let s = clean(s);
    s.strip_suffix('.').map(str::to_string).unwrap_or(s)
}

/// A product cell: a bullet list ("- a - b", or `<ul>` items) becomes "a; b".
fn product(raw: &str) -> String {
    let s = clean(raw);
    let listed = s.starts_with("- ") || raw.contains("<ul") || raw.contains("<li");
    if !listed {
        return clean_sentence(&s);
    }
    let bullet = regex::Regex::new(r"(?:^|\s)-\s+(\p{Lu}|\d)").expect("regex");
    let mut items = Vec::new();
    let mut last = 0;
    let mut starts: Vec<usize> = bullet
        .captures_iter(&s)
        .map(|c| c.get(1).expect("group").start())
        .collect();
    starts.push(s.len() + 1);
    let head = s[..starts[0].min(s.len())]
        .trim()
        .trim_start_matches('-')
        .trim();
    if !head.is_empty() {
        items.push(clean_sentence(head));
    }
    for w in starts.windows(2) {
        let end = w[1].min(s.len() + 1);
        let piece = &s[w[0]..end.saturating_sub(1).max(w[0])];
        let piece = piece
            .trim()
            .trim_end_matches('-')
            .trim()
            .trim_end_matches('.');
        if !piece.is_empty() {
            items.push(piece.trim().to_string());
        }
        last = end;
    }
    let _ = last;
    items.join("; ")
}

/// "CẢI CÁCH THỦ TỤC HÀNH CHÍNH (TTHC)" → "Cải cách thủ tục hành chính (TTHC)": words in
/// parentheses are kept as written (abbreviations).
fn sentence_case(s: &str) -> String {
    if s.chars().any(|c| c.is_lowercase()) {
        return s.to_string();
    }
    let mut out = String::new();
    let mut depth = 0;
    let mut first = true;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth > 0 || !c.is_alphabetic() {
            out.push(c);
        } else if first {
            out.push(c);
            first = false;
        } else {
            out.extend(c.to_lowercase());
        }
        if c.is_alphabetic() {
            first = false;
        }
    }
    out
}

/// The plan's title ("Về việc ban hành Kế hoạch …", or the line under "KẾ HOẠCH") and its
/// reference ("(Kèm theo Quyết định số …)").
fn heading(lines: &[String]) -> (Option<String>, Option<String>) {
    let lines: Vec<String> = lines.iter().map(|l| clean(l)).collect();
    let joined_from = |i: usize, first: &str| {
        let mut s = first.to_string();
        for l in &lines[i + 1..] {
            if l.chars().next().is_some_and(|c| c.is_lowercase()) {
                s.push(' ');
                s.push_str(l);
            } else {
                break;
            }
        }
        s
    };
    let mut title = None;
    for (i, l) in lines.iter().enumerate() {
        if let Some(rest) = l.strip_prefix("Về việc ban hành ") {
            title = Some(upper_first(&joined_from(i, rest)));
            break;
        }
    }
    if title.is_none()
        && let Some(i) = lines.iter().position(|l| norm_key(l) == "kế hoạch")
        && let Some(next) = lines[i + 1..].iter().position(|l| !l.is_empty())
    {
        let l = &lines[i + 1 + next];
        title = Some(format!("Kế hoạch {}", lower_first(l)));
    }
    let mut reference = None;
    for (i, l) in lines.iter().enumerate() {
        let Some(start) = l
            .find("(Kèm theo ")
            .or_else(|| l.find("(Ban hành kèm theo "))
        else {
            continue;
        };
        let mut s = l[start..].to_string();
        for l in &lines[i + 1..] {
            if s.contains(')') || l.is_empty() {
                break;
            }
            s.push(' ');
            s.push_str(l);
        }
        let inner = s.split_once("theo ").map(|(_, r)| r).unwrap_or("");
        let inner = inner.split(')').next().unwrap_or("").trim();
        if inner.starts_with("Quyết định") || inner.starts_with("Văn bản") {
            reference = Some(inner.to_string());
            break;
        }
    }
    (title, reference)
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Each task's Phân công read against the offices of `catalog`.
pub fn assignments(appendix: &Appendix, catalog: &Catalog) -> Vec<Assignment> {
    appendix
        .tasks
        .iter()
        .map(|t| assign::parse(&t.assignment, catalog))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bullet_products_become_one_line() {
        assert_eq!(
            product("<ul> - 100% công chức đạt chuẩn - Báo cáo kết quả </ul>"),
            "100% công chức đạt chuẩn; Báo cáo kết quả"
        );
        assert_eq!(
            product("- Chức năng A. - Nhắc việc B"),
            "Chức năng A; Nhắc việc B"
        );
        assert_eq!(product("Xây dựng phần mềm."), "Xây dựng phần mềm");
        // A dash inside a name is no bullet.
        assert_eq!(product("Kinh tế - xã hội"), "Kinh tế - xã hội");
    }

    #[test]
    fn upper_case_section_names_become_sentence_case() {
        assert_eq!(
            sentence_case("CẢI CÁCH THỦ TỤC HÀNH CHÍNH (TTHC)"),
            "Cải cách thủ tục hành chính (TTHC)"
        );
        assert_eq!(sentence_case("Đã viết thường"), "Đã viết thường");
    }
}
