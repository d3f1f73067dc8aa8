//! The small value parsers: offsets, dates, booleans, numbers, durations, addresses.

use super::*;
use crate::plan::deadline::{self, Phrase};
use crate::plan::diag::{Diagnostic, Pos};
use crate::plan::yaml::Node;
use chrono::NaiveDate;
use std::str::FromStr;
use std::time::Duration;

pub(super) fn parse_date(node: &Node, what: &str, errs: &mut Vec<Diagnostic>) -> Option<NaiveDate> {
    let s = node.text(what, errs)?;
    match deadline::parse_phrase(&s) {
        Ok(Phrase::Date(d)) if !s.contains(['q', 'Q', 't', 'T', 'n', 'N']) => Some(d),
        Err(e) if s.contains('/') || s.contains('-') => {
            errs.push(err(node.pos, format!("{what}: {}", e.message), e.hint));
            None
        }
        _ => {
            errs.push(err(
                node.pos,
                format!("{what} `{s}` is not a date"),
                "write a date as `30/01/2024` or `2024-01-30`",
            ));
            None
        }
    }
}

pub(super) fn parse_offset(node: &Node, what: &str, errs: &mut Vec<Diagnostic>) -> Option<Offset> {
    let s = node.text(what, errs)?;
    match s.parse::<Offset>() {
        Ok(o) => Some(o),
        Err(e) => {
            errs.push(err(
                node.pos,
                format!("{what}: {e}"),
                "write calendar days as `7d` and working days as `3wd`",
            ));
            None
        }
    }
}

pub(super) fn parse_bool(node: &Node, what: &str, errs: &mut Vec<Diagnostic>) -> Option<bool> {
    let s = node.text(what, errs)?;
    match s.to_lowercase().as_str() {
        "true" | "yes" | "co" | "có" => Some(true),
        "false" | "no" | "khong" | "không" => Some(false),
        _ => {
            errs.push(err(
                node.pos,
                format!("{what} must be `true` or `false`, not `{s}`"),
                "write `true` or `false`",
            ));
            None
        }
    }
}

pub(super) fn parse_u32(node: &Node, what: &str, errs: &mut Vec<Diagnostic>) -> Option<u32> {
    let s = node.text(what, errs)?;
    match s.parse::<u32>() {
        Ok(n) => Some(n),
        Err(_) => {
            errs.push(err(
                node.pos,
                format!("{what} must be a whole number, not `{s}`"),
                "write a number such as `5`",
            ));
            None
        }
    }
}

/// `30s`, `5m`, `2h`, `1d`.
pub fn parse_duration_text(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = s[..split].parse().ok()?;
    let secs = match s[split..].trim() {
        "s" => n,
        "m" | "min" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

pub(super) fn parse_duration(
    node: &Node,
    what: &str,
    errs: &mut Vec<Diagnostic>,
) -> Option<Duration> {
    let s = node.text(what, errs)?;
    let d = parse_duration_text(&s);
    if d.is_none() {
        errs.push(err(
            node.pos,
            format!("{what} `{s}` is not a duration"),
            "write a number and a unit: `30s`, `5m`, `2h` or `1d`",
        ));
    }
    d
}

/// An email address, optionally with a display name (`Phòng Kinh tế <kt@vpubnd.example>`).
pub(super) fn parse_mailbox(
    s: &str,
    pos: Pos,
    what: &str,
    errs: &mut Vec<Diagnostic>,
) -> Option<String> {
    match lettre::message::Mailbox::from_str(s.trim()) {
        Ok(_) => Some(s.trim().to_string()),
        Err(_) => {
            errs.push(err(
                pos,
                format!("{what} `{s}` is not a valid email address"),
                "write it as `name@domain.example`, or `Tên <name@domain.example>`",
            ));
            None
        }
    }
}
