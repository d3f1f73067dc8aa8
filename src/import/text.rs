//! The plain-text form of a plan, as copied out of a PDF: paragraphs one per line, the
//! appendix as tab-separated rows, its header repeated at each page break.

use super::{Cell, Document};

/// Splits the text at the appendix: the lines before its first table row are the heading;
/// every tab-separated line from there on is a row.
pub fn read(s: &str) -> Document {
    let s = s.replace("\r\n", "\n");
    let lines: Vec<&str> = s.lines().collect();
    let start = lines
        .iter()
        .position(|l| {
            l.contains('\t')
                && super::assign::normalize(l.split('\t').next().unwrap_or("")) == "stt"
        })
        .unwrap_or(lines.len());
    let heading_end = lines[..start]
        .iter()
        .rposition(|l| super::assign::normalize(l) == "phụ lục")
        .unwrap_or(start);
    Document {
        heading: lines[..heading_end].iter().map(|l| l.to_string()).collect(),
        rows: lines[start..]
            .iter()
            .filter(|l| l.contains('\t'))
            .map(|l| l.split('\t').map(Cell::plain).collect())
            .collect(),
    }
}
