//! One table, three renderings: a table that fits the terminal for people, CSV for
//! spreadsheets, JSON for programs. `plan`, `log` and `calendar` all print through this so
//! their formats agree.
//!
//! The text table is laid out by comfy-table, which measures cells by display width
//! (`unicode-width`: a combining mark takes no column, so NFD and NFC Vietnamese line up
//! alike). By default it shows the columns a person needs and wraps long cells to fit
//! [`View::width`]; `--wide` shows every column, unwrapped. CSV and JSON always carry every
//! column.

use super::{end_json_array, sorted_order, to_string, write_csv_row, write_json_object};
use comfy_table::{ContentArrangement, LineStyle, TableStyle};
use std::io::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    /// iCalendar (RFC 5545): `plan` only.
    Ics,
}

/// How a command's output is laid out: the format and, for the text table, how wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub format: Format,
    /// The text table's width in columns; `None`: no limit.
    pub width: Option<usize>,
    /// Every column, nothing wrapped or cut.
    pub wide: bool,
    /// CSV starts with a byte order mark, so Excel reads it as UTF-8.
    pub bom: bool,
}

impl View {
    /// `format` with no width limit, every column: what tests and other callers want.
    pub fn unlimited(format: Format) -> Self {
        Self {
            format,
            width: None,
            wide: true,
            bom: false,
        }
    }

    /// `format` fitted to `width` columns, the columns a person needs.
    pub fn fitted(format: Format, width: usize) -> Self {
        Self {
            format,
            width: Some(width),
            wide: false,
            bom: false,
        }
    }
}

/// How a column's cells are typed in JSON (CSV and the text table show them as written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// An integer: a JSON number.
    Number,
    /// `true` or `false`: a JSON boolean.
    Bool,
}

#[derive(Debug, Clone)]
struct Column {
    key: &'static str,
    title: &'static str,
    kind: Kind,
    /// Shown in the text table without `--wide`.
    narrow: bool,
    /// Never wrapped (dates, ids): as wide as its content.
    whole: bool,
}

/// Rows of text cells under named columns. The column keys are used as JSON keys and CSV
/// headers; the titles head the text table. An empty cell is JSON `null`.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
}

/// No borders: a rule under the header, columns two spaces apart.
const STYLE: TableStyle =
    TableStyle::new().header_separator(LineStyle::none().fill('─').junction('─'));

/// Without `--wide`, a cell wraps onto at most this many lines, the last ending in `…`.
const MAX_LINES: usize = 3;

impl Table {
    /// `columns`: (key for JSON and CSV, title for the text table); all text, all shown.
    pub fn new(columns: &[(&'static str, &'static str)]) -> Self {
        Self {
            columns: columns
                .iter()
                .map(|&(key, title)| Column {
                    key,
                    title,
                    kind: Kind::Text,
                    narrow: true,
                    whole: false,
                })
                .collect(),
            rows: Vec::new(),
        }
    }

    /// Types the columns `keys` as `kind` in JSON.
    pub fn typed(mut self, keys: &[&str], kind: Kind) -> Self {
        for c in &mut self.columns {
            if keys.contains(&c.key) {
                c.kind = kind;
            }
        }
        self
    }

    /// Shows only the columns `keys` in the text table unless `--wide`.
    pub fn narrow(mut self, keys: &[&str]) -> Self {
        for c in &mut self.columns {
            c.narrow = keys.contains(&c.key);
        }
        self
    }

    /// Never wraps the columns `keys` (dates, ids): the others give way.
    pub fn whole(mut self, keys: &[&str]) -> Self {
        for c in &mut self.columns {
            if keys.contains(&c.key) {
                c.whole = true;
            }
        }
        self
    }

    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn keys(&self) -> Vec<&'static str> {
        self.columns.iter().map(|c| c.key).collect()
    }

    pub fn kinds(&self) -> Vec<Kind> {
        self.columns.iter().map(|c| c.kind).collect()
    }

    /// Writes the table as `view` says.
    pub fn write(&self, w: &mut dyn Write, view: &View) -> io::Result<()> {
        match view.format {
            Format::Table => self.write_text(w, view),
            // Refused before a command gets here: only `plan` has an iCalendar form.
            Format::Ics => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                crate::t!(
                    "`--format ics` chỉ dùng cho `plan`",
                    "`--format ics` is for `plan` only"
                ),
            )),
            Format::Csv => {
                if view.bom {
                    write_bom(w)?;
                }
                write_csv_row(w, self.columns.iter().map(|c| c.key))?;
                for row in &self.rows {
                    write_csv_row(w, row.iter().map(String::as_str))?;
                }
                Ok(())
            }
            Format::Json => {
                let keys = self.keys();
                let kinds = self.kinds();
                let order = sorted_order(&keys);
                w.write_all(b"[")?;
                for (i, row) in self.rows.iter().enumerate() {
                    write_json_object(w, i == 0, 2, &keys, &kinds, &order, row)?;
                }
                end_json_array(w, self.rows.is_empty(), 2)?;
                w.write_all(b"\n")
            }
        }
    }

    /// [`write`](Table::write) into a string.
    pub fn render(&self, view: &View) -> String {
        to_string(|w| self.write(w, view))
    }

    /// The text table: no line wider than `view.width` (as long as each column can have a
    /// few columns), no trailing spaces.
    fn write_text(&self, w: &mut dyn Write, view: &View) -> io::Result<()> {
        let shown: Vec<usize> = (0..self.columns.len())
            .filter(|&i| view.wide || self.columns[i].narrow)
            .collect();
        let mut t = comfy_table::Table::new();
        t.load_style(STYLE);
        t.set_truncation_indicator("…");
        t.set_header(shown.iter().map(|&i| self.columns[i].title));
        for row in &self.rows {
            let mut r = comfy_table::Row::from(shown.iter().map(|&i| row[i].as_str()));
            if !view.wide {
                r.max_height(MAX_LINES);
            }
            t.add_row(r);
        }
        match view.width {
            Some(width) if !view.wide => {
                t.set_content_arrangement(ContentArrangement::Dynamic);
                t.set_width(width.min(u16::MAX as usize) as u16);
            }
            _ => {
                t.set_content_arrangement(ContentArrangement::Disabled);
            }
        }
        let last = shown.len().saturating_sub(1);
        for (i, c) in t.column_iter_mut().enumerate() {
            c.set_padding((0, if i == last { 0 } else { 1 }));
            if self.columns[shown[i]].whole {
                c.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
            }
        }
        for line in t.lines() {
            writeln!(w, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// The UTF-8 byte order mark, for Excel.
pub fn write_bom(w: &mut dyn Write) -> io::Result<()> {
    w.write_all("\u{feff}".as_bytes())
}

/// The display width of a line: what a terminal gives it (combining marks take none).
pub fn display_width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&[("task", "Nhiệm vụ"), ("note", "Ghi chú"), ("n", "Số")])
            .typed(&["n"], Kind::Number);
        t.push(vec!["II.3".into(), "a, \"b\"".into(), "2".into()]);
        t.push(vec!["VII.5".into(), String::new(), String::new()]);
        t
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_ends_lines_in_crlf() {
        let mut view = View::unlimited(Format::Csv);
        assert_eq!(
            sample().render(&view),
            "task,note,n\r\nII.3,\"a, \"\"b\"\"\",2\r\nVII.5,,\r\n"
        );
        view.bom = true;
        assert!(sample().render(&view).starts_with("\u{feff}task,"));
    }

    #[test]
    fn text_aligns_by_display_width() {
        // "Nhiệm vụ" in NFD: its combining marks take no column.
        let nfd = "Nhie\u{323}\u{302}m vu\u{323}";
        let mut t = Table::new(&[("task", "Nhiệm vụ"), ("note", "Ghi chú")]);
        t.push(vec![nfd.into(), "x".into()]);
        t.push(vec!["II.3".into(), "y".into()]);
        let text = t.render(&View::unlimited(Format::Table));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Nhiệm vụ  Ghi chú");
        assert!(lines[1].chars().all(|c| c == '─'), "{}", lines[1]);
        assert_eq!(lines[2], format!("{nfd}  x"));
        assert_eq!(lines[3], "II.3      y");
    }

    #[test]
    fn narrow_tables_fit_and_hide_wide_columns() {
        let mut t = Table::new(&[("task", "Nhiệm vụ"), ("note", "Ghi chú"), ("id", "Mã")])
            .narrow(&["task", "note"]);
        t.push(vec![
            "I.1".into(),
            "lời ghi chú rất dài ".repeat(20),
            "x".into(),
        ]);
        for width in [40, 60, 80] {
            let text = t.render(&View::fitted(Format::Table, width));
            assert!(!text.contains("Mã"), "{text}");
            for l in text.lines() {
                assert!(display_width(l) <= width, "{width}: {l:?}");
            }
            assert!(text.contains('…'), "{text}");
        }
        let wide = t.render(&View {
            wide: true,
            ..View::fitted(Format::Table, 40)
        });
        assert!(wide.contains("Mã"));
        assert_eq!(wide.lines().count(), 3);
    }

    #[test]
    fn json_types_numbers_and_uses_null_for_empty() {
        let v: serde_json::Value =
            serde_json::from_str(&sample().render(&View::unlimited(Format::Json))).unwrap();
        assert_eq!(v[0]["task"], "II.3");
        assert_eq!(v[0]["n"], 2);
        assert!(v[1]["note"].is_null());
        assert!(v[1]["n"].is_null());
    }
}
