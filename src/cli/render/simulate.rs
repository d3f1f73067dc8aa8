//! `simulate`'s output: a period's email volume per recipient and per ISO week, the busiest
//! day and what would be skipped. The table is in Vietnamese; JSON and CSV keep stable
//! English keys.

use super::{Format, Table, View, write_csv_row};
use crate::calendar::workdays::date_vi;
use crate::delivery::simulate::{Recipient, Simulation, week_code, week_monday};
use crate::plan::config::Config;
use chrono::IsoWeek;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// One recipient's volume: total, and its busiest week.
struct Row<'a> {
    who: &'a Recipient,
    total: usize,
    busiest: Option<(IsoWeek, usize)>,
    weeks: &'a BTreeMap<IsoWeek, usize>,
}

fn rows<'a>(per_week: &'a BTreeMap<Recipient, BTreeMap<IsoWeek, usize>>) -> Vec<Row<'a>> {
    per_week
        .iter()
        .map(|(who, weeks)| Row {
            who,
            total: weeks.values().sum(),
            busiest: weeks.iter().fold(None, |best, (w, n)| match best {
                Some((_, b)) if b >= *n => best,
                _ => Some((*w, *n)),
            }),
            weeks,
        })
        .collect()
}

/// Writes the simulation as `format` (table, json or csv).
pub fn write(w: &mut dyn Write, cfg: &Config, sim: &Simulation, format: Format) -> io::Result<()> {
    match format {
        Format::Json => write_json(w, cfg, sim),
        Format::Csv => write_csv(w, cfg, sim),
        Format::Table | Format::Ics => write_table(w, cfg, sim),
    }
}

fn kind_vi(r: &Recipient) -> &'static str {
    match r {
        Recipient::Office(_) => crate::t!("đơn vị", "office"),
        Recipient::Head(_) => crate::t!("trưởng đơn vị", "head"),
        Recipient::Leadership => crate::t!("lãnh đạo", "leadership"),
        Recipient::Other(_) => "khác",
    }
}

/// The table: the summary, then the volume per recipient and per week, then what would
/// be skipped.
fn write_table(w: &mut dyn Write, cfg: &Config, sim: &Simulation) -> io::Result<()> {
    write_summary(w, sim)?;
    let per_week = sim.per_week();
    write_per_recipient(w, cfg, &per_week)?;
    write_per_week(w, sim, &per_week)?;
    write_skipped(w, sim)
}

/// The period, the sweeps, the total and the busiest day.
fn write_summary(w: &mut dyn Write, sim: &Simulation) -> io::Result<()> {
    writeln!(
        w,
        "{}",
        crate::tr!(
            "Mô phỏng từ {} đến {}, giả định: {}",
            "Simulation from {} to {}, assuming: {}",
            sim.from.format("%d/%m/%Y"),
            sim.until.format("%d/%m/%Y"),
            sim.assume.label()
        )
    )?;
    writeln!(
        w,
        "{}",
        crate::tr!(
            "{} lần quét theo lịch, {} lần rơi vào ngày nghỉ hoặc ngoài giờ gửi (không gửi gì); không thư nào được gửi thật.",
            "{} scheduled sweeps, {} on days off or outside the sending window (sending nothing); no email was really sent.",
            sim.sweeps,
            sim.idle_sweeps
        )
    )?;
    let busiest = match sim.busiest_day() {
        Some((d, n)) => crate::tr!(
            "ngày nhiều thư nhất: {} ({n} thư)",
            "busiest day: {} ({n} emails)",
            date_vi(d)
        ),
        None => crate::t!("không có ngày nào có thư", "no day has an email").to_string(),
    };
    writeln!(
        w,
        "{}",
        crate::tr!(
            "Tổng cộng: {} thư ({} lời nhắc); {busiest}.",
            "Total: {} emails ({} reminders); {busiest}.",
            sim.emails.len(),
            sim.reminders()
        )
    )?;
    if sim.failed > 0 {
        writeln!(
            w,
            "{}",
            crate::tr!(
                "{} lời nhắc không soạn được thư (xem lỗi mẫu thư hoặc địa chỉ).",
                "{} reminders could not be composed (see the template or address errors).",
                sim.failed
            )
        )?;
    }
    Ok(())
}

/// Each recipient's total and busiest week.
fn write_per_recipient(
    w: &mut dyn Write,
    cfg: &Config,
    per_week: &BTreeMap<Recipient, BTreeMap<IsoWeek, usize>>,
) -> io::Result<()> {
    writeln!(
        w,
        "{}",
        crate::t!(
            "\nTheo người nhận (mỗi thư đếm một lần, To và Cc như nhau):",
            "\nBy recipient (each email counted once, To and Cc alike):"
        )
    )?;
    let mut t = Table::new(&[
        ("recipient", crate::t!("Người nhận", "Recipient")),
        ("kind", crate::t!("Vai trò", "Role")),
        ("emails", crate::t!("Cả kỳ", "Whole period")),
        ("week", crate::t!("Tuần nhiều nhất", "Busiest week")),
        ("week_emails", crate::t!("Thư tuần đó", "Emails that week")),
    ]);
    for r in rows(per_week) {
        let (week, n) = r.busiest.map_or((String::new(), String::new()), |(wk, n)| {
            (week_code(wk), n.to_string())
        });
        t.push(vec![
            r.who.label(cfg),
            kind_vi(r.who).to_string(),
            r.total.to_string(),
            week,
            n,
        ]);
    }
    if t.is_empty() {
        writeln!(
            w,
            "{}",
            crate::t!("(không ai nhận thư nào)", "(nobody receives an email)")
        )?;
    } else {
        t.write(w, &View::unlimited(Format::Table))?;
    }
    Ok(())
}

/// Each ISO week with an email, and how many weeks have none.
fn write_per_week(
    w: &mut dyn Write,
    sim: &Simulation,
    per_week: &BTreeMap<Recipient, BTreeMap<IsoWeek, usize>>,
) -> io::Result<()> {
    writeln!(w, "{}", crate::t!("\nTheo tuần (ISO):", "\nBy week (ISO):"))?;
    let mut t = Table::new(&[
        ("week", "Tuần"),
        ("monday", crate::t!("Từ Thứ Hai", "From Monday")),
        ("emails", crate::t!("Tổng thư", "Emails")),
        ("leadership", crate::t!("Lãnh đạo", "Leadership")),
        (
            "office_max",
            crate::t!("Một đơn vị, nhiều nhất", "One office, at most"),
        ),
        (
            "head_max",
            crate::t!("Một trưởng đơn vị, nhiều nhất", "One head, at most"),
        ),
    ]);
    let max_of = |wk: IsoWeek, f: &dyn Fn(&Recipient) -> bool| {
        per_week
            .iter()
            .filter(|(r, _)| f(r))
            .map(|(_, m)| m.get(&wk).copied().unwrap_or(0))
            .max()
            .unwrap_or(0)
    };
    let mut quiet = 0;
    for (wk, n) in sim.weeks() {
        if n == 0 {
            quiet += 1;
            continue;
        }
        t.push(vec![
            week_code(wk),
            week_monday(wk).format("%d/%m/%Y").to_string(),
            n.to_string(),
            max_of(wk, &|r| *r == Recipient::Leadership).to_string(),
            max_of(wk, &|r| matches!(r, Recipient::Office(_))).to_string(),
            max_of(wk, &|r| matches!(r, Recipient::Head(_))).to_string(),
        ]);
    }
    if !t.is_empty() {
        t.write(w, &View::unlimited(Format::Table))?;
    }
    if quiet > 0 {
        writeln!(
            w,
            "{}",
            crate::tr!(
                "{quiet} tuần khác: không thư nào.",
                "{quiet} other weeks: no email."
            )
        )?;
    }
    Ok(())
}

/// The reminders that would be recorded but not sent.
fn write_skipped(w: &mut dyn Write, sim: &Simulation) -> io::Result<()> {
    writeln!(
        w,
        "{}",
        crate::tr!(
            "\nBỏ qua (ghi vào sổ, không gửi): {} lời nhắc",
            "\nSkipped (recorded, not sent): {} reminders",
            sim.skipped.len()
        )
    )?;
    if !sim.skipped.is_empty() {
        let mut t = Table::new(&[
            ("due", crate::t!("Lẽ ra gửi", "Was due")),
            ("task", crate::t!("Nhiệm vụ", "Task")),
            ("office", crate::t!("Đơn vị", "Office")),
            ("kind", "Loại"),
            ("occurrence", "Hạn"),
        ]);
        for s in &sim.skipped {
            t.push(vec![
                s.due.format("%d/%m/%Y %H:%M").to_string(),
                s.task.clone(),
                s.office.clone(),
                s.kind.clone(),
                s.occurrence.format("%d/%m/%Y").to_string(),
            ]);
        }
        t.write(w, &View::unlimited(Format::Table))?;
    }
    Ok(())
}

fn write_json(w: &mut dyn Write, cfg: &Config, sim: &Simulation) -> io::Result<()> {
    let per_week = sim.per_week();
    let recipients: Vec<serde_json::Value> = rows(&per_week)
        .into_iter()
        .map(|r| {
            let weeks: BTreeMap<String, usize> =
                r.weeks.iter().map(|(wk, n)| (week_code(*wk), *n)).collect();
            json!({
                "kind": r.who.kind(),
                "office": r.who.office(cfg),
                "name": r.who.label(cfg),
                "emails": r.total,
                "busiest_week": r.busiest.map(|(wk, _)| week_code(wk)),
                "busiest_week_emails": r.busiest.map_or(0, |(_, n)| n),
                "weeks": weeks,
            })
        })
        .collect();
    let weeks: Vec<serde_json::Value> = sim
        .weeks()
        .into_iter()
        .map(|(wk, n)| {
            json!({
                "week": week_code(wk),
                "monday": week_monday(wk).to_string(),
                "emails": n,
            })
        })
        .collect();
    let skipped: Vec<serde_json::Value> = sim
        .skipped
        .iter()
        .map(|s| {
            json!({
                "task": s.task,
                "office": s.office,
                "kind": s.kind,
                "occurrence": s.occurrence.to_string(),
                "due": s.due.to_rfc3339(),
                "reason": s.reason,
            })
        })
        .collect();
    let v = json!({
        "from": sim.from.to_string(),
        "until": sim.until.to_string(),
        "assume": sim.assume.code(),
        "sweeps": sim.sweeps,
        "idle_sweeps": sim.idle_sweeps,
        "emails": sim.emails.len(),
        "reminders": sim.reminders(),
        "failed": sim.failed,
        "kinds": sim.kinds,
        "busiest_day": sim.busiest_day().map(|(d, n)| json!({"date": d.to_string(), "emails": n})),
        "recipients": recipients,
        "addresses": sim.per_address(),
        "weeks": weeks,
        "skipped": { "count": sim.skipped.len(), "items": skipped },
    });
    serde_json::to_writer_pretty(&mut *w, &v)?;
    w.write_all(b"\n")
}

/// One row per recipient and week with email: `week,monday,kind,office,name,emails`.
fn write_csv(w: &mut dyn Write, cfg: &Config, sim: &Simulation) -> io::Result<()> {
    write_csv_row(w, ["week", "monday", "kind", "office", "name", "emails"])?;
    let per_week = sim.per_week();
    let mut lines: Vec<(IsoWeek, &Recipient, usize)> = per_week
        .iter()
        .flat_map(|(r, weeks)| weeks.iter().map(move |(wk, n)| (*wk, r, *n)))
        .collect();
    lines.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    for (wk, r, n) in lines {
        let (week, monday) = (week_code(wk), week_monday(wk).to_string());
        let (name, count) = (r.label(cfg), n.to_string());
        write_csv_row(
            w,
            [
                week.as_str(),
                monday.as_str(),
                r.kind(),
                r.office(cfg).unwrap_or(""),
                name.as_str(),
                count.as_str(),
            ],
        )?;
    }
    Ok(())
}
