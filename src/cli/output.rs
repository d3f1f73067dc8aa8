//! One table, three renderings: aligned text for people, CSV for spreadsheets, JSON for
//! programs. `plan`, `log` and `calendar` all print through this so their formats agree.

use serde_json::{Map, Value};

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

    pub fn render(&self, format: Format) -> String {
        match format {
            // Only `plan` has an iCalendar form (its own writer); a table is shown instead.
            Format::Table | Format::Ics => self.text(),
            Format::Csv => self.csv(),
            Format::Json => {
                let mut s = serde_json::to_string_pretty(&self.json()).unwrap_or_default();
                s.push('\n');
                s
            }
        }
    }

    /// The rows as an array of objects; an empty cell becomes `null`.
    pub fn json(&self) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|row| {
                    let mut obj = Map::new();
                    for ((key, _), cell) in self.columns.iter().zip(row) {
                        let v = if cell.is_empty() {
                            Value::Null
                        } else {
                            Value::String(cell.clone())
                        };
                        obj.insert((*key).to_string(), v);
                    }
                    Value::Object(obj)
                })
                .collect(),
        )
    }

    fn text(&self) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.columns.iter().map(|(_, t)| width(t)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut out = String::new();
        let mut line = |cells: Vec<&str>| {
            let mut l = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                l.push_str(cell);
                if i + 1 < cells.len() {
                    l.push_str(&" ".repeat(w - width(cell) + 2));
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(self.columns.iter().map(|(_, t)| *t).collect());
        for row in &self.rows {
            line(row.iter().map(String::as_str).collect());
        }
        out
    }

    fn csv(&self) -> String {
        fn field(s: &str) -> String {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.columns.iter().map(|(k, _)| field(k)).collect();
        out.push_str(&header.join(","));
        out.push_str("\r\n");
        for row in &self.rows {
            let cells: Vec<String> = row.iter().map(|c| field(c)).collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
        out
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
        let v = sample().json();
        assert_eq!(v[0]["task"], "II.3");
        assert!(v[1]["note"].is_null());
    }
}
