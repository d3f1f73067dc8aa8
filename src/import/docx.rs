//! A `.docx` (OOXML): the paragraphs before its first appendix table and the rows of its
//! tables (`w:tbl/w:tr/w:tc`), merged cells resolved to the grid, from `word/document.xml`.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::{Cell, Document};

pub fn read(path: &Path) -> Result<Document> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a .docx (not a zip archive)", path.display()))?;
    let mut xml = String::new();
    zip.by_name("word/document.xml")
        .with_context(|| format!("{} has no word/document.xml", path.display()))?
        .read_to_string(&mut xml)
        .with_context(|| format!("cannot read word/document.xml in {}", path.display()))?;
    parse_document_xml(&xml).with_context(|| format!("{}: word/document.xml", path.display()))
}

fn attr(e: &BytesStart, name: &str) -> Option<String> {
    e.try_get_attribute(name).ok().flatten().and_then(|a| {
        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .ok()
            .map(|v| v.into_owned())
    })
}

#[derive(Default)]
struct CellState {
    paragraphs: Vec<String>,
    span: usize,
    /// `Some(true)`: vMerge continue (same as above); `Some(false)`: restart.
    vmerge: Option<bool>,
}

/// Parses `word/document.xml`. Top-level tables only: a table nested in a cell is read as
/// that cell's text.
pub fn parse_document_xml(xml: &str) -> Result<Document> {
    let mut reader = Reader::from_str(xml);
    let mut doc = Document::default();
    let mut tbl_depth = 0usize;
    let mut seen_table = false;
    // The paragraph being read, and whether it is a list item (w:numPr).
    let mut para = String::new();
    let mut list_item = false;
    let mut row: Vec<Cell> = Vec::new();
    let mut row_header = false;
    let mut cell: Option<CellState> = None;
    // The text of each grid column in the row above, for vMerge continue.
    let mut above: Vec<String> = Vec::new();
    let mut in_text = false;
    loop {
        let ev = reader.read_event().context("malformed XML")?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                match e.name().as_ref() {
                    "w:tbl" if !empty => {
                        tbl_depth += 1;
                        if tbl_depth == 1 {
                            seen_table = true;
                            above.clear();
                        }
                    }
                    "w:tr" if tbl_depth == 1 && !empty => {
                        row.clear();
                        row_header = false;
                    }
                    "w:tblHeader" if tbl_depth == 1 => {
                        row_header = attr(e, "w:val").is_none_or(|v| v != "0" && v != "false");
                    }
                    "w:tc" if tbl_depth == 1 && !empty => {
                        cell = Some(CellState {
                            span: 1,
                            ..CellState::default()
                        });
                    }
                    "w:gridSpan" if tbl_depth == 1 => {
                        if let Some(c) = cell.as_mut() {
                            c.span = attr(e, "w:val")
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(1)
                                .max(1);
                        }
                    }
                    "w:vMerge" if tbl_depth == 1 => {
                        if let Some(c) = cell.as_mut() {
                            c.vmerge = Some(attr(e, "w:val").is_none_or(|v| v != "restart"));
                        }
                    }
                    "w:p" if !empty => {
                        para.clear();
                        list_item = false;
                    }
                    "w:numPr" => list_item = true,
                    "w:t" if !empty => in_text = true,
                    "w:tab" | "w:br" | "w:cr" => para.push(' '),
                    _ => {}
                }
            }
            Event::Text(t) if in_text => para.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_text => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    para.push(c);
                } else {
                    para.push_str(match &*r.into_inner() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    });
                }
            }
            Event::End(ref e) => match e.name().as_ref() {
                "w:t" => in_text = false,
                "w:p" => {
                    let text = if list_item && !para.trim_start().starts_with('-') {
                        format!("- {}", para.trim())
                    } else {
                        para.trim().to_string()
                    };
                    if let Some(c) = cell.as_mut() {
                        c.paragraphs.push(text);
                    } else if tbl_depth == 0 && !seen_table {
                        doc.heading.push(text);
                    }
                    para.clear();
                }
                "w:tc" if tbl_depth == 1 => {
                    if let Some(c) = cell.take() {
                        let col = row.len();
                        let text = c.paragraphs.join("\n").trim().to_string();
                        let merged = c.vmerge == Some(true);
                        let text = if merged {
                            above.get(col).cloned().unwrap_or_default()
                        } else {
                            text
                        };
                        row.push(Cell {
                            text,
                            merged_above: merged,
                        });
                        for _ in 1..c.span {
                            row.push(Cell {
                                text: String::new(),
                                merged_above: merged,
                            });
                        }
                    }
                }
                "w:tr" if tbl_depth == 1 => {
                    above = row.iter().map(|c| c.text.clone()).collect();
                    let starts_stt = row
                        .first()
                        .is_some_and(|c| super::assign::normalize(&c.text) == "stt");
                    // A header row marked to repeat on each page is the header: kept only
                    // when it names the columns (STT …), which is how rows are told apart.
                    if !row_header || starts_stt {
                        doc.rows.push(std::mem::take(&mut row));
                    }
                }
                "w:tbl" => tbl_depth = tbl_depth.saturating_sub(1),
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    if doc.rows.is_empty() && !seen_table {
        bail!("the document has no table");
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;

    fn tc(text: &str, props: &str) -> String {
        format!("<w:tc><w:tcPr>{props}</w:tcPr><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:tc>")
    }

    #[test]
    fn grid_span_and_vertical_merge_are_resolved_to_columns() {
        let xml = format!(
            "<w:document {W}><w:body><w:p><w:r><w:t>KẾ HOẠCH</w:t></w:r></w:p><w:tbl>\
             <w:tr><w:trPr><w:tblHeader/></w:trPr>{}{}</w:tr>\
             <w:tr>{}{}</w:tr>\
             <w:tr>{}{}</w:tr></w:tbl></w:body></w:document>",
            tc("STT", ""),
            tc("Nhiệm vụ", ""),
            tc("I", ""),
            tc("A &amp; B", r#"<w:vMerge w:val="restart"/>"#),
            tc("1", ""),
            tc("", "<w:vMerge/>"),
        );
        let doc = parse_document_xml(&xml).unwrap();
        assert_eq!(doc.heading, vec!["KẾ HOẠCH"]);
        assert_eq!(doc.rows.len(), 3);
        assert_eq!(doc.rows[1][1].text, "A & B");
        assert_eq!(
            doc.rows[2][1],
            Cell {
                text: "A & B".into(),
                merged_above: true
            }
        );
    }
}
