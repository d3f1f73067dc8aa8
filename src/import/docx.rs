//! A `.docx` (OOXML): the paragraphs before its first appendix table and the rows of its
//! tables (`w:tbl/w:tr/w:tc`), merged cells resolved to the grid, from `word/document.xml`.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use quick_xml::Reader;
use quick_xml::events::{BytesRef, BytesStart, Event};

use super::{Cell, Document};

pub fn read(path: &Path) -> Result<Document> {
    let file = std::fs::File::open(path)
        .with_context(|| crate::tr!("không mở được {}", "cannot open {}", path.display()))?;
    let mut zip = zip::ZipArchive::new(file).with_context(|| {
        crate::tr!(
            "{} không phải tệp .docx (không phải tệp nén zip)",
            "{} is not a .docx (not a zip archive)",
            path.display()
        )
    })?;
    let mut xml = String::new();
    zip.by_name("word/document.xml")
        .with_context(|| {
            crate::tr!(
                "{} không có word/document.xml",
                "{} has no word/document.xml",
                path.display()
            )
        })?
        .read_to_string(&mut xml)
        .with_context(|| {
            crate::tr!(
                "không đọc được word/document.xml trong {}",
                "cannot read word/document.xml in {}",
                path.display()
            )
        })?;
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

/// What the parser knows at a point in `word/document.xml`.
#[derive(Default)]
struct Parser {
    doc: Document,
    tbl_depth: usize,
    seen_table: bool,
    /// The paragraph being read, and whether it is a list item (w:numPr).
    para: String,
    list_item: bool,
    row: Vec<Cell>,
    row_header: bool,
    cell: Option<CellState>,
    /// The text of each grid column in the row above, for vMerge continue.
    above: Vec<String>,
    in_text: bool,
}

/// Parses `word/document.xml`. Top-level tables only: a table nested in a cell is read as
/// that cell's text.
pub fn parse_document_xml(xml: &str) -> Result<Document> {
    let mut reader = Reader::from_str(xml);
    let mut p = Parser::default();
    loop {
        let ev = reader
            .read_event()
            .context(crate::t!("XML sai cấu trúc", "malformed XML"))?;
        match ev {
            Event::Start(ref e) => p.start(e, false),
            Event::Empty(ref e) => p.start(e, true),
            Event::Text(t) if p.in_text => p.para.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if p.in_text => p.general_ref(r),
            Event::End(ref e) => p.end(e.name().as_ref()),
            Event::Eof => break,
            _ => {}
        }
    }
    if p.doc.rows.is_empty() && !p.seen_table {
        bail!(crate::t!(
            "tài liệu không có bảng nào",
            "the document has no table"
        ));
    }
    Ok(p.doc)
}

impl Parser {
    /// An opening or self-closing tag; `empty` for the latter, which opens nothing.
    fn start(&mut self, e: &BytesStart, empty: bool) {
        let top = self.tbl_depth == 1;
        match e.name().as_ref() {
            "w:tbl" if !empty => {
                self.tbl_depth += 1;
                if self.tbl_depth == 1 {
                    self.seen_table = true;
                    self.above.clear();
                }
            }
            "w:tr" if top && !empty => {
                self.row.clear();
                self.row_header = false;
            }
            "w:tblHeader" if top => {
                self.row_header = attr(e, "w:val").is_none_or(|v| v != "0" && v != "false");
            }
            "w:tc" if top && !empty => {
                self.cell = Some(CellState {
                    span: 1,
                    ..CellState::default()
                });
            }
            "w:gridSpan" if top => {
                if let Some(c) = self.cell.as_mut() {
                    c.span = attr(e, "w:val")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1)
                        .max(1);
                }
            }
            "w:vMerge" if top => {
                if let Some(c) = self.cell.as_mut() {
                    c.vmerge = Some(attr(e, "w:val").is_none_or(|v| v != "restart"));
                }
            }
            "w:p" if !empty => {
                self.para.clear();
                self.list_item = false;
            }
            "w:numPr" => self.list_item = true,
            "w:t" if !empty => self.in_text = true,
            "w:tab" | "w:br" | "w:cr" => self.para.push(' '),
            _ => {}
        }
    }

    /// A character or entity reference inside `w:t`: the five XML entities and `&#…;`.
    fn general_ref(&mut self, r: BytesRef) {
        if let Ok(Some(c)) = r.resolve_char_ref() {
            self.para.push(c);
        } else {
            self.para.push_str(match &*r.into_inner() {
                "amp" => "&",
                "lt" => "<",
                "gt" => ">",
                "quot" => "\"",
                "apos" => "'",
                _ => "",
            });
        }
    }

    fn end(&mut self, name: &str) {
        match name {
            "w:t" => self.in_text = false,
            "w:p" => self.end_paragraph(),
            "w:tc" if self.tbl_depth == 1 => self.end_cell(),
            "w:tr" if self.tbl_depth == 1 => self.end_row(),
            "w:tbl" => self.tbl_depth = self.tbl_depth.saturating_sub(1),
            _ => {}
        }
    }

    /// A paragraph goes to the open cell, or to the heading while no table has been seen.
    fn end_paragraph(&mut self) {
        let text = if self.list_item && !self.para.trim_start().starts_with('-') {
            format!("- {}", self.para.trim())
        } else {
            self.para.trim().to_string()
        };
        if let Some(c) = self.cell.as_mut() {
            c.paragraphs.push(text);
        } else if self.tbl_depth == 0 && !self.seen_table {
            self.doc.heading.push(text);
        }
        self.para.clear();
    }

    /// A cell fills as many grid columns as it spans, so that columns line up across rows;
    /// a vMerge continue takes the text of the cell above it.
    fn end_cell(&mut self) {
        let Some(c) = self.cell.take() else { return };
        let col = self.row.len();
        let merged = c.vmerge == Some(true);
        let text = if merged {
            self.above.get(col).cloned().unwrap_or_default()
        } else {
            c.paragraphs.join("\n").trim().to_string()
        };
        self.row.push(Cell {
            text,
            merged_above: merged,
        });
        for _ in 1..c.span {
            self.row.push(Cell {
                text: String::new(),
                merged_above: merged,
            });
        }
    }

    fn end_row(&mut self) {
        self.above = self.row.iter().map(|c| c.text.clone()).collect();
        let starts_stt = self
            .row
            .first()
            .is_some_and(|c| super::assign::normalize(&c.text) == "stt");
        // A header row marked to repeat on each page is the header: kept only
        // when it names the columns (STT …), which is how rows are told apart.
        if !self.row_header || starts_stt {
            self.doc.rows.push(std::mem::take(&mut self.row));
        }
    }
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
