//! What the templates see: the [`Context`] of one email, built from its batch, and where
//! a deadline stands ([`Due`]).

use super::text::{block, one_line, shorten};
use super::{Batch, ComposeError};
use crate::calendar::workdays::{Dmy, WorkCalendar, date_vi, weekday_vi};
use crate::plan::config::{Config, Office, Task, Unit};
use crate::plan::planner::{self, Late, Nudge, Role};
use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Where a deadline stands on a given day, counted in the nudge's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// `n` (working) days left.
    Before(i64, Unit),
    /// The deadline falls on a day off and today is the last working day before it.
    LastWorkingDay,
    Today,
    /// Overdue by `n` (working) days (0 when no working day has passed since).
    Overdue(i64, Unit),
}

impl Due {
    /// Counted from `today`, not from the day the nudge was planned: a late nudge tells the
    /// truth on the day it arrives.
    pub fn on(cal: &WorkCalendar, today: NaiveDate, deadline: NaiveDate, unit: Unit) -> Due {
        let n = match unit {
            Unit::Days => (deadline - today).num_days(),
            Unit::WorkingDays => cal.working_days_between(today, deadline),
        };
        if deadline == today {
            Due::Today
        } else if deadline > today {
            if n > 0 {
                Due::Before(n, unit)
            } else {
                Due::LastWorkingDay
            }
        } else {
            Due::Overdue(-n, unit)
        }
    }

    /// `còn 3 ngày làm việc`, `hạn hôm nay`, `đã quá hạn 4 ngày làm việc`.
    pub fn text(self) -> String {
        fn span(n: i64, u: Unit) -> String {
            match u {
                Unit::Days => format!("{n} ngày"),
                Unit::WorkingDays => format!("{n} ngày làm việc"),
            }
        }
        match self {
            Due::Before(n, u) => format!("còn {}", span(n, u)),
            Due::LastWorkingDay => "hôm nay là ngày làm việc cuối cùng trước hạn".into(),
            Due::Today => "hạn hôm nay".into(),
            Due::Overdue(0, _) => "đã quá hạn".into(),
            Due::Overdue(n, u) => format!("đã quá hạn {}", span(n, u)),
        }
    }

    fn code(self) -> &'static str {
        match self {
            Due::Before(..) => "before",
            Due::LastWorkingDay => "last_working_day",
            Due::Today => "today",
            Due::Overdue(..) => "overdue",
        }
    }
}

/// Subject tags, from least to most pressing.
const TAG_BEFORE: &str = "Nhắc việc";
const TAG_TODAY: &str = "Đến hạn";
const TAG_OVERDUE: &str = "Quá hạn";
const TAG_ESCALATION: &str = "Quá hạn – báo cáo";

/// What the templates see. Every field is always present, so overrides may test any of them.
#[derive(Debug, Serialize)]
pub(super) struct Context {
    office: OfficeCtx,
    plan: PlanCtx,
    items: Vec<Item>,
    /// The most pressing tag of all items.
    tag: String,
    overdue_count: usize,
    today_count: usize,
    /// Some item arrives after its planned day.
    late: bool,
    /// … because nhacviec runs for the first time: it is the first reminder, not an apology.
    first_start: bool,
    /// The leadership's daily digest of escalated items (each item names its offices).
    digest: bool,
    /// `Thứ Năm, 25/01/2024`.
    today: String,
    /// Whom to ask: the Reply-To, else the sender.
    contact: String,
    /// Names of the offices copied because of escalation.
    escalated_to: Vec<String>,
    /// Names of the cooperating offices copied on this email.
    cc_offices: Vec<String>,
}

#[derive(Debug, Serialize)]
struct OfficeCtx {
    id: String,
    name: String,
}

#[derive(Debug, Serialize)]
struct PlanCtx {
    title: String,
    reference: String,
}

#[derive(Debug, Serialize)]
struct Item {
    task_id: String,
    section: String,
    section_name: Option<String>,
    title: String,
    title_short: String,
    product: Option<String>,
    /// The deadline as the plan writes it.
    phrase: String,
    /// `30/01/2024`.
    deadline: String,
    /// `Thứ Ba, 30/01/2024`; for "trước ngày X": `trước ngày 30/01/2024, tức chậm nhất
    /// Thứ Hai 29/01/2024`.
    deadline_long: String,
    /// For subjects: `30/01/2024`, or `trước 30/01/2024`.
    deadline_short: String,
    /// Which occurrence of a repeated deadline: `Quý II/2024`, `mốc 1/2: 30/06/2024`.
    occurrence: Option<String>,
    /// `before`, `last_working_day`, `today` or `overdue`.
    state: &'static str,
    /// `còn 3 ngày làm việc`, `hạn hôm nay`, …
    days_left: String,
    /// `lead` or `cooperating`.
    role: &'static str,
    /// `chủ trì`, `phối hợp`.
    role_label: &'static str,
    lead_names: String,
    cooperating_names: String,
    /// The other lead offices, when the lead is shared (đồng chủ trì); else empty.
    co_lead_names: String,
    /// Where the result goes or who appraises it (`report_to:`); else empty.
    report_to_names: String,
    add_head: bool,
    add_leadership: bool,
    tag: String,
    late: bool,
    /// The day it was planned for (`Thứ Hai, 22/01/2024`).
    planned: String,
    /// In the leadership's digest: the offices (chủ trì) still owing it.
    offices: String,
    /// "Xác nhận đã hoàn thành": the office's one-click confirmation (with `web.base_url`).
    confirm_url: Option<String>,
    /// The occurrence it is about (for its confirmation link).
    #[serde(skip)]
    occurrence_date: NaiveDate,
}

impl Context {
    /// Gives each item its confirmation link, `url(task, occurrence)`; none in the
    /// leadership's digest (the leadership confirms nothing).
    pub(super) fn set_confirm_urls(&mut self, url: impl Fn(&str, NaiveDate) -> Option<String>) {
        if self.digest {
            return;
        }
        for i in &mut self.items {
            i.confirm_url = url(&i.task_id, i.occurrence_date);
        }
    }
}

fn office_name(cfg: &Config, id: &str) -> String {
    cfg.office(id)
        .map(|o| one_line(&o.name))
        .unwrap_or_else(|| id.to_string())
}

/// What the templates see for `batch` on the day of `now`.
pub(super) fn context(
    cfg: &Config,
    cal: &WorkCalendar,
    batch: &Batch,
    now: DateTime<Tz>,
) -> Result<Context, ComposeError> {
    let office = cfg
        .office(&batch.office)
        .ok_or_else(|| ComposeError::UnknownOffice(batch.office.clone()))?;
    let today = now.date_naive();
    let digest = batch.nudges.iter().all(|n| n.kind.is_leadership()) && !batch.nudges.is_empty();
    let (items, cc_offices) = items(cfg, cal, batch, today, digest)?;
    let tag = top_tag(&items);
    let escalated_to = escalated_to(cfg, office, batch);
    Ok(Context {
        office: OfficeCtx {
            id: office.id.clone(),
            name: one_line(&office.name),
        },
        plan: PlanCtx {
            title: one_line(&cfg.plan.title),
            reference: one_line(&cfg.plan.reference),
        },
        overdue_count: items.iter().filter(|i| i.state == "overdue").count(),
        today_count: items
            .iter()
            .filter(|i| i.state == "today" || i.state == "last_working_day")
            .count(),
        late: items.iter().any(|i| i.late),
        first_start: batch
            .nudges
            .iter()
            .any(|n| n.late == Late::FirstStart && n.date < today),
        digest,
        items,
        tag,
        today: date_vi(today),
        contact: one_line(cfg.mail.reply_to.as_deref().unwrap_or(&cfg.mail.from)),
        escalated_to,
        cc_offices,
    })
}

/// The items the email lists, each task and deadline once, and the names of the
/// cooperating offices copied on it.
///
/// In the leadership's digest, an item owed by several offices is listed once and names
/// them all; on a lead's email, a cooperating office's nudge for the same deadline is not
/// listed again, its office is named among those copied.
fn items(
    cfg: &Config,
    cal: &WorkCalendar,
    batch: &Batch,
    today: NaiveDate,
    digest: bool,
) -> Result<(Vec<Item>, Vec<String>), ComposeError> {
    let mut items: Vec<Item> = Vec::new();
    let mut cc_offices = Vec::new();
    let mut shown: BTreeSet<(Arc<str>, NaiveDate)> = BTreeSet::new();
    // The digest's items by task and deadline: a digest of thousands is not searched per nudge.
    let mut listed: HashMap<(Arc<str>, NaiveDate), usize> = HashMap::new();
    for n in &batch.nudges {
        if digest {
            let name = office_name(cfg, &n.office);
            if let Some(item) = listed
                .get(&(n.task.clone(), n.occurrence))
                .map(|i| &mut items[*i])
            {
                if !item.offices.split(", ").any(|o| o == name) {
                    item.offices = format!("{}, {name}", item.offices);
                }
                continue;
            }
        } else if *n.office != *batch.office {
            // A cooperating office copied on the lead's email: named, not listed again.
            let name = office_name(cfg, &n.office);
            if !cc_offices.contains(&name) {
                cc_offices.push(name);
            }
            if shown.contains(&(n.task.clone(), n.occurrence)) {
                continue;
            }
        }
        shown.insert((n.task.clone(), n.occurrence));
        let task = cfg
            .task(&n.task)
            .ok_or_else(|| ComposeError::UnknownTask(n.task.to_string()))?;
        if digest {
            listed.insert((n.task.clone(), n.occurrence), items.len());
        }
        items.push(item(cfg, cal, task, n, today, digest));
    }
    Ok((items, cc_offices))
}

/// One listed item: `n`'s deadline for `task`, as of `today`.
fn item(
    cfg: &Config,
    cal: &WorkCalendar,
    task: &Task,
    n: &Nudge,
    today: NaiveDate,
    digest: bool,
) -> Item {
    let due_day = planner::due_day(cal, task, n.occurrence);
    let due = Due::on(cal, today, due_day, n.unit);
    let escalated = n.add_head || n.add_leadership || n.role == Role::Escalation;
    let tag = match due {
        Due::Overdue(..) if escalated => TAG_ESCALATION,
        Due::Overdue(..) => TAG_OVERDUE,
        Due::Today | Due::LastWorkingDay => TAG_TODAY,
        Due::Before(..) => TAG_BEFORE,
    };
    let names = |ids: &[String]| {
        ids.iter()
            .map(|i| office_name(cfg, i))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let title = one_line(&task.title);
    Item {
        task_id: task.id.clone(),
        section: task.section.to_string(),
        section_name: cfg.section_name(&task.section).map(one_line),
        title_short: shorten(&title, 70),
        title,
        product: task.product.as_deref().map(block).filter(|p| !p.is_empty()),
        phrase: one_line(&task.deadline.phrase),
        deadline: Dmy(n.occurrence).to_string(),
        deadline_long: if task.deadline.exclusive {
            format!(
                "trước ngày {}, tức chậm nhất {} {}",
                Dmy(n.occurrence),
                weekday_vi(due_day),
                Dmy(due_day)
            )
        } else {
            date_vi(n.occurrence)
        },
        deadline_short: if task.deadline.exclusive {
            format!("trước {}", Dmy(n.occurrence))
        } else {
            Dmy(n.occurrence).to_string()
        },
        occurrence: planner::occurrence_name(cfg, cal, task, n.occurrence),
        state: due.code(),
        days_left: due.text(),
        role: if n.role == Role::Cooperating {
            "cooperating"
        } else {
            "lead"
        },
        role_label: if n.role == Role::Cooperating {
            "phối hợp"
        } else {
            "chủ trì"
        },
        lead_names: names(&task.lead),
        cooperating_names: names(&task.cooperating),
        co_lead_names: if task.shared_lead && n.role != Role::Cooperating {
            let others: Vec<String> = task
                .lead
                .iter()
                .filter(|o| **o != *n.office)
                .cloned()
                .collect();
            names(&others)
        } else {
            String::new()
        },
        report_to_names: names(&task.report_to),
        add_head: n.add_head,
        add_leadership: n.add_leadership,
        tag: tag.to_string(),
        late: n.late.is_late() && n.date < today,
        planned: date_vi(n.date),
        offices: if digest {
            office_name(cfg, &n.office)
        } else {
            String::new()
        },
        confirm_url: None,
        occurrence_date: n.occurrence,
    }
}

/// The most pressing tag of `items`; [`TAG_BEFORE`] when there are none.
fn top_tag(items: &[Item]) -> String {
    let rank = |t: &str| {
        [TAG_BEFORE, TAG_TODAY, TAG_OVERDUE, TAG_ESCALATION]
            .iter()
            .position(|x| *x == t)
            .unwrap_or(0)
    };
    items
        .iter()
        .map(|i| i.tag.as_str())
        .max_by_key(|t| rank(t))
        .unwrap_or(TAG_BEFORE)
        .to_string()
}

/// Names of those copied because the office's own nudges escalate: its head, the
/// leadership.
fn escalated_to(cfg: &Config, office: &Office, batch: &Batch) -> Vec<String> {
    let mut escalated_to = Vec::new();
    let own = || batch.nudges.iter().filter(|n| *n.office == *batch.office);
    if own().any(|n| n.add_head) && office.head.is_some() {
        escalated_to.push(format!("Trưởng {}", one_line(&office.name)));
    }
    if own().any(|n| n.add_leadership)
        && let Some(l) = cfg.leadership.as_deref()
    {
        escalated_to.push(office_name(cfg, l));
    }
    escalated_to
}

/// Contexts that take the templates through their branches, to check overrides at start.
pub(super) fn sample_contexts() -> Vec<Context> {
    let item = |state: &'static str, tag: &str, late: bool, coop: bool| Item {
        task_id: "IV.1".into(),
        section: "IV".into(),
        section_name: Some("Tổ chức thực hiện".into()),
        title: "Xây dựng kế hoạch cải cách hành chính năm 2024".into(),
        title_short: "Xây dựng kế hoạch cải cách hành chính năm 2024".into(),
        product: Some("Kế hoạch CCHC năm 2024".into()),
        phrase: "trước ngày 30/01/2024".into(),
        deadline: "30/01/2024".into(),
        deadline_long: "trước ngày 30/01/2024, tức chậm nhất Thứ Hai 29/01/2024".into(),
        deadline_short: "trước 30/01/2024".into(),
        occurrence: Some("Quý I/2024".into()),
        state,
        days_left: "còn 3 ngày làm việc".into(),
        role: if coop { "cooperating" } else { "lead" },
        role_label: if coop { "phối hợp" } else { "chủ trì" },
        lead_names: "Phòng Hành chính – Tổ chức".into(),
        cooperating_names: "Phòng Kinh tế".into(),
        co_lead_names: if late {
            "Phòng Kiểm soát thủ tục hành chính".into()
        } else {
            String::new()
        },
        report_to_names: "Sở Nội vụ".into(),
        add_head: tag == TAG_ESCALATION,
        add_leadership: tag == TAG_ESCALATION,
        tag: tag.into(),
        late,
        planned: "Thứ Hai, 22/01/2024".into(),
        offices: "Phòng Kinh tế, Phòng Hành chính – Tổ chức".into(),
        confirm_url: late.then(|| "https://nhacviec.vpubnd.example/confirm/abc.def".into()),
        occurrence_date: NaiveDate::default(),
    };
    let ctx = |items: Vec<Item>| Context {
        office: OfficeCtx {
            id: "hctc".into(),
            name: "Phòng Hành chính – Tổ chức".into(),
        },
        plan: PlanCtx {
            title: "Kế hoạch cải cách hành chính năm 2024".into(),
            reference: "Quyết định số 20/QĐ-VPUBND ngày 18/01/2024".into(),
        },
        overdue_count: items.iter().filter(|i| i.state == "overdue").count(),
        today_count: items.iter().filter(|i| i.state == "today").count(),
        late: items.iter().any(|i| i.late),
        first_start: false,
        digest: false,
        tag: items
            .last()
            .map(|i| i.tag.clone())
            .unwrap_or_else(|| TAG_BEFORE.into()),
        items,
        today: "Thứ Năm, 25/01/2024".into(),
        contact: "hctc@vpubnd.example".into(),
        escalated_to: vec!["Lãnh đạo Văn phòng".into()],
        cc_offices: vec!["Phòng Kinh tế".into()],
    };
    let mut first = ctx(vec![item("before", TAG_BEFORE, true, false)]);
    first.first_start = true;
    let mut digest = ctx(vec![
        item("overdue", TAG_ESCALATION, false, false),
        item("overdue", TAG_ESCALATION, false, false),
    ]);
    digest.digest = true;
    vec![
        first,
        digest,
        ctx(vec![item("before", TAG_BEFORE, false, false)]),
        ctx(vec![item("today", TAG_TODAY, true, true)]),
        ctx(vec![item("overdue", TAG_ESCALATION, false, false)]),
        ctx(vec![
            item("before", TAG_BEFORE, false, false),
            item("last_working_day", TAG_TODAY, false, true),
            item("overdue", TAG_OVERDUE, true, false),
        ]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::email::tests::{at, config};
    use crate::plan::config::{Offset, Unit};
    use crate::plan::planner::{Kind, Late};

    fn leadership(task: &str, office: &str, occurrence: NaiveDate) -> Nudge {
        Nudge {
            task: Arc::from(task),
            office: Arc::from(office),
            role: Role::Escalation,
            kind: Kind::LeadershipAgain(Offset::working(5)),
            occurrence,
            date: occurrence,
            send_at: at("2024-02-20 08:00"),
            days_left: -5,
            unit: Unit::WorkingDays,
            add_head: false,
            add_leadership: true,
            late: Late::No,
        }
    }

    #[test]
    fn a_digest_lists_each_task_and_deadline_once_naming_every_office() {
        let c = config("");
        let d = |s: &str| NaiveDate::parse_from_str(s, "%d/%m/%Y").unwrap();
        let batch = Batch {
            office: "ldvp".into(),
            nudges: vec![
                leadership("IV.1", "hctc", d("30/01/2024")),
                leadership("VII.1", "hctc", d("31/01/2024")),
                leadership("IV.1", "kt", d("30/01/2024")),
                leadership("IV.1", "hctc", d("30/01/2024")),
                leadership("IV.1", "kt", d("31/01/2024")),
            ],
            to: vec!["ldvp@vpubnd.example".into()],
            cc: Vec::new(),
        };
        let ctx = context(&c, &c.work_calendar(2024), &batch, at("2024-02-20 08:00")).unwrap();
        assert!(ctx.digest);
        let got: Vec<(&str, &str, &str)> = ctx
            .items
            .iter()
            .map(|i| (&*i.task_id, &*i.deadline, &*i.offices))
            .collect();
        let (hctc, kt) = (office_name(&c, "hctc"), office_name(&c, "kt"));
        assert_eq!(
            got,
            vec![
                ("IV.1", "30/01/2024", &*format!("{hctc}, {kt}")),
                ("VII.1", "31/01/2024", &*hctc),
                ("IV.1", "31/01/2024", &*kt),
            ]
        );
    }
}
