//! What changed between two configs, in words a clerk understands. Logged on reload so the
//! journal says "task VII.3 reassigned from Phòng Hành chính – Tổ chức to Phòng Kinh tế",
//! not "config reloaded".

use crate::plan::config::{Config, Done, Task};

fn office_names(cfg: &Config, ids: &[String]) -> String {
    if ids.is_empty() {
        return "nobody".into();
    }
    ids.iter()
        .map(|id| match cfg.office(id) {
            Some(o) => format!("{} ({id})", o.name),
            None => id.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per change, tasks first, then offices, then settings.
pub fn describe(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    describe_tasks(&mut out, old, new);
    describe_offices(&mut out, old, new);
    describe_settings(&mut out, old, new);
    out
}

/// Tasks added, changed (in the plan's order) and removed.
fn describe_tasks(out: &mut Vec<String>, old: &Config, new: &Config) {
    for t in &new.tasks {
        match old.task(&t.id) {
            None => out.push(format!(
                "task {} added: \"{}\", due {}, led by {}",
                t.id,
                t.title,
                t.deadline.phrase,
                office_names(new, &t.lead)
            )),
            Some(o) => describe_task(out, old, new, o, t),
        }
    }
    for o in &old.tasks {
        if new.task(&o.id).is_none() {
            out.push(format!("task {} removed: \"{}\"", o.id, o.title));
        }
    }
}

/// What changed in one task kept from `old` (`o`) to `new` (`t`).
fn describe_task(out: &mut Vec<String>, old: &Config, new: &Config, o: &Task, t: &Task) {
    if o.lead != t.lead {
        out.push(format!(
            "task {} reassigned from {} to {}",
            t.id,
            office_names(old, &o.lead),
            office_names(new, &t.lead)
        ));
    }
    if o.cooperating != t.cooperating {
        out.push(format!(
            "task {}: cooperating offices are now {} (were {})",
            t.id,
            office_names(new, &t.cooperating),
            office_names(old, &o.cooperating)
        ));
    }
    if o.deadline != t.deadline {
        if o.deadline.phrase != t.deadline.phrase {
            out.push(format!(
                "task {}: deadline changed from \"{}\" to \"{}\"",
                t.id, o.deadline.phrase, t.deadline.phrase
            ));
        } else {
            out.push(format!(
                "task {}: the dates of deadline \"{}\" changed",
                t.id, t.deadline.phrase
            ));
        }
    }
    if o.done != t.done {
        out.push(done_line(&t.id, &t.done));
    }
    if o.policy != t.policy {
        out.push(format!(
            "task {}: reminder policy changed from {} to {}",
            t.id, o.policy, t.policy
        ));
    }
    if o.title != t.title || o.product != t.product {
        out.push(format!("task {}: wording changed", t.id));
    }
}

/// A task's new `done:`, in words.
fn done_line(id: &str, done: &Done) -> String {
    match done {
        Done::Open => format!("task {id} is open again"),
        Done::All(d) => format!("task {id} marked done on {}", d.format("%d/%m/%Y")),
        Done::PerOffice(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(office, d)| format!("{office} on {}", d.format("%d/%m/%Y")))
                .collect();
            format!("task {id} done by {}", parts.join(", "))
        }
        Done::List(entries) => {
            let parts: Vec<String> = entries
                .iter()
                .map(|e| {
                    let what = match (e.occurrence, &e.office) {
                        (Some(o), Some(f)) => {
                            format!("deadline {} by {f}", o.1.format("%d/%m/%Y"))
                        }
                        (Some(o), None) => format!("deadline {}", o.1.format("%d/%m/%Y")),
                        (None, Some(f)) => format!("by {f}"),
                        (None, None) => "all".to_string(),
                    };
                    format!("{what} on {}", e.on.format("%d/%m/%Y"))
                })
                .collect();
            format!("task {id} done: {}", parts.join(", "))
        }
    }
}

/// Offices added, changed (their addresses are what a clerk checks) and removed.
fn describe_offices(out: &mut Vec<String>, old: &Config, new: &Config) {
    for o in &new.offices {
        match old.office(&o.id) {
            None => out.push(crate::tr!(
                "thêm đơn vị {}: {}",
                "office {} added: {}",
                o.id,
                o.name
            )),
            Some(prev) if prev != o => out.push(crate::tr!(
                "đơn vị {} ({}) thay đổi: địa chỉ {}",
                "office {} ({}) changed: addresses {}",
                o.id,
                o.name,
                if o.emails.is_empty() {
                    crate::t!("không có", "none").to_string()
                } else {
                    o.emails.join(", ")
                }
            )),
            _ => {}
        }
    }
    for o in &old.offices {
        if new.office(&o.id).is_none() {
            out.push(crate::tr!(
                "bỏ đơn vị {}: {}",
                "office {} removed: {}",
                o.id,
                o.name
            ));
        }
    }
}

/// The settings outside the plan: policies, schedule, mail, calendar and ledger.
fn describe_settings(out: &mut Vec<String>, old: &Config, new: &Config) {
    if old.policies != new.policies {
        out.push(crate::tr!(
            "chính sách nhắc thay đổi",
            "reminder policies changed"
        ));
    }
    let sweeps = |c: &Config| {
        c.schedule
            .sweeps
            .iter()
            .map(|s| s.expr.clone())
            .collect::<Vec<_>>()
    };
    if sweeps(old) != sweeps(new) || old.schedule.timezone != new.schedule.timezone {
        out.push(crate::tr!(
            "giờ quét nay là {}",
            "sweep times are now {}",
            sweeps(new).join(", ")
        ));
    }
    if (old.schedule.window_start, old.schedule.window_end)
        != (new.schedule.window_start, new.schedule.window_end)
    {
        out.push(crate::tr!(
            "khung giờ gửi nay là {}–{}",
            "sending window is now {}–{}",
            new.schedule.window_start.format("%H:%M"),
            new.schedule.window_end.format("%H:%M")
        ));
    }
    if old.mail != new.mail {
        out.push(crate::tr!(
            "cấu hình gửi thư thay đổi",
            "mail settings changed"
        ));
    }
    if old.calendar != new.calendar {
        out.push(crate::tr!(
            "ngày nghỉ hoặc ngày làm bù thay đổi",
            "days off or working days changed"
        ));
    }
    if old.ledger != new.ledger {
        let to = match &new.ledger.postgres {
            Some(pg) => pg.url.clone(),
            None => new.ledger.path.display().to_string(),
        };
        out.push(crate::tr!(
            "sổ gửi đổi thành {}: nạp lại sẽ bị từ chối, cần khởi động lại dịch vụ",
            "the ledger changed to {}: a reload refuses this, it needs a restart of the service",
            to
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::config::{Env, from_source};
    use std::path::Path;

    fn cfg(extra: &str, lead: &str) -> Config {
        crate::i18n::set_for_thread(Some(crate::i18n::Lang::En));
        let src = format!(
            "offices:\n  hctc:\n    name: Phòng Hành chính – Tổ chức\n    email: hctc@vpubnd.example\n  kinh-te:\n    name: Phòng Kinh tế\n    email: kt@vpubnd.example\ntasks:\n  - id: VII.3\n    title: Khảo sát\n    deadline: Quý III/2024\n    lead: {lead}\n{extra}"
        );
        from_source(&src, Path::new("t.yaml"), &Env::default())
            .unwrap_or_else(|r| panic!("{}", r.render()))
            .config
    }

    #[test]
    fn a_reassignment_is_told_in_words() {
        let old = cfg("", "hctc");
        let new = cfg(
            "  - id: V.1\n    title: Xe ô tô\n    deadline: Năm 2024\n    lead: hctc\n",
            "kinh-te",
        );
        let lines = describe(&old, &new);
        assert_eq!(
            lines,
            vec![
                "task VII.3 reassigned from Phòng Hành chính – Tổ chức (hctc) to Phòng Kinh tế (kinh-te)",
                "task V.1 added: \"Xe ô tô\", due Năm 2024, led by Phòng Hành chính – Tổ chức (hctc)",
            ]
        );
        assert_eq!(describe(&new, &old)[1], "task V.1 removed: \"Xe ô tô\"");
        assert!(describe(&old, &old).is_empty());
    }
}
