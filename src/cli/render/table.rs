//! One table, three renderings: aligned text for people, CSV for spreadsheets, JSON for
//! programs. `plan`, `log` and `calendar` all print through this so their formats agree.

use super::{end_json_array, sorted_order, to_string, write_csv_row, write_json_object};
use std::io::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    /// iCalendar (RFC 5545): `plan` only.
    Ics,
}

/// Rows of text cells under named columns. The column keys are used as JSON keys and CSV
/// headers; the titles head the text table.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<(&'static str, &'static str)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// `columns`: (key for JSON and CSV, title for the text table).
    pub fn new(columns: &[(&'static str, &'static str)]) -> Self {
        Self {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
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

    /// Writes the table as `format`.
    pub fn write(&self, w: &mut dyn Write, format: Format) -> io::Result<()> {
        match format {
            Format::Table => self.write_text(w),
            // Refused before a command gets here: only `plan` has an iCalendar form.
            Format::Ics => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "`--format ics` is for `plan` only",
            )),
            Format::Csv => {
                write_csv_row(w, self.columns.iter().map(|(k, _)| *k))?;
                for row in &self.rows {
                    write_csv_row(w, row.iter().map(String::as_str))?;
                }
                Ok(())
            }
            Format::Json => {
                // An array of objects, as serde_json pretty-prints it; an empty cell is `null`.
                let keys: Vec<&str> = self.columns.iter().map(|(k, _)| *k).collect();
                let order = sorted_order(&keys);
                w.write_all(b"[")?;
                for (i, row) in self.rows.iter().enumerate() {
                    write_json_object(w, i == 0, 2, &keys, &order, row)?;
                }
                end_json_array(w, self.rows.is_empty(), 2)?;
                w.write_all(b"\n")
            }
        }
    }

    /// [`write`](Table::write) into a string.
    pub fn render(&self, format: Format) -> String {
        to_string(|w| self.write(w, format))
    }

    /// Columns aligned by characters (not bytes), two spaces apart; the last column is not
    /// padded and no line has trailing spaces.
    fn write_text(&self, w: &mut dyn Write) -> io::Result<()> {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.columns.iter().map(|(_, t)| width(t)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut line = |cells: Vec<&str>| {
            let mut l = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                l.push_str(cell);
                if i + 1 < cells.len() {
                    l.push_str(&" ".repeat(w - width(cell) + 2));
                }
            }
            writeln!(w, "{}", l.trim_end())
        };
        line(self.columns.iter().map(|(_, t)| *t).collect())?;
        for row in &self.rows {
            line(row.iter().map(String::as_str).collect())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&[("task", "Nhiệm vụ"), ("note", "Ghi chú")]);
        t.push(vec!["II.3".into(), "a, \"b\"".into()]);
        t.push(vec!["VII.5".into(), String::new()]);
        t
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(
            sample().render(Format::Csv),
            "task,note\r\nII.3,\"a, \"\"b\"\"\"\r\nVII.5,\r\n"
        );
    }

    #[test]
    fn text_aligns_by_characters_not_bytes() {
        let text = sample().render(Format::Table);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Nhiệm vụ  Ghi chú");
        assert_eq!(lines[1], "II.3      a, \"b\"");
        assert_eq!(lines[2], "VII.5");
    }

    #[test]
    fn json_uses_keys_and_null_for_empty() {
        let v: serde_json::Value = serde_json::from_str(&sample().render(Format::Json)).unwrap();
        assert_eq!(v[0]["task"], "II.3");
        assert!(v[1]["note"].is_null());
    }
}
