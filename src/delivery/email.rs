//! From due nudges to emails: who gets which nudges ([`batches`]) and what the email says
//! ([`Composer`]).
//!
//! Both are pure: no IO but reading template overrides once in [`Composer::new`], no clock
//! (`now` is passed in). The wording is Vietnamese and lives in templates compiled into the
//! binary (`src/delivery/templates/`); a clerk may override them with files of the same names.

use crate::calendar::workdays::{WorkCalendar, date_vi, weekday_vi};
use crate::plan::config::{Config, CoopDelivery, Grouping, Offset, Unit};
use crate::plan::planner::{self, Kind, Late, Nudge, Role};
use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;
use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// One email: the nudges it delivers and its recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The office the email is addressed to (its `Kính gửi`).
    pub office: String,
    /// Every nudge this email delivers, so that the caller records each in the ledger: first
    /// the office's own, most urgent first; then those of cooperating offices copied on it
    /// (`mail.cooperating: cc`), which the body shows once, with the lead's nudge.
    pub nudges: Vec<Nudge>,
    pub to: Vec<String>,
    /// Escalation (head, leadership) and cooperating offices under `cc`; never repeats `to`.
    pub cc: Vec<String>,
}

/// Groups the due nudges into emails, per `mail.grouping` and `mail.cooperating`.
///
/// Offices without addresses get nothing. The order is the offices' order in the config,
/// then the nudges' urgency, so the same input always gives the same emails.
pub fn batches(cfg: &Config, due: &[Nudge]) -> Vec<Batch> {
    // Looked up in maps, not by scanning the lists: the sorts below call these for every
    // comparison, and a scan made a sweep of 10,000 emails spend seconds here.
    let office_index: HashMap<&str, usize> = cfg
        .offices
        .iter()
        .enumerate()
        .map(|(i, o)| (o.id.as_str(), i))
        .collect();
    let task_index: HashMap<&str, usize> = cfg
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    let office_pos = |id: &str| office_index.get(id).copied().unwrap_or(usize::MAX);
    let task_pos = |id: &str| task_index.get(id).copied().unwrap_or(usize::MAX);
    let reachable = |n: &Nudge| cfg.office(&n.office).is_some_and(|o| !o.emails.is_empty());
    let urgency = |n: &Nudge| {
        (
            n.occurrence,
            task_pos(&n.task),
            n.kind,
            office_pos(&n.office),
        )
    };

    // The leadership's items: one digest email for all offices, never a copy per office.
    let leadership = cfg
        .leadership
        .as_deref()
        .and_then(|l| cfg.office(l))
        .filter(|o| !o.emails.is_empty());
    let mut digest: Vec<&Nudge> = due.iter().filter(|n| n.kind.is_leadership()).collect();
    digest.sort_by_key(|n| urgency(n));
    let mut own: Vec<&Nudge> = due
        .iter()
        .filter(|n| !n.kind.is_leadership() && reachable(n))
        .collect();
    own.sort_by_key(|n| (office_pos(&n.office), urgency(n)));
    // With `cooperating: cc`, a cooperating office's nudge rides on the lead's email for the
    // same deadline when the lead gets one this sweep; otherwise it stays on its own.
    // (host, rider): the rider is delivered on the host's email.
    let mut riders: Vec<(&Nudge, &Nudge)> = Vec::new();
    if cfg.mail.cooperating == CoopDelivery::Cc {
        let (coop, lead): (Vec<&Nudge>, Vec<&Nudge>) =
            own.iter().partition(|n| n.role == Role::Cooperating);
        for n in coop {
            if let Some(host) = lead
                .iter()
                .find(|m| m.task == n.task && m.occurrence == n.occurrence)
            {
                riders.push((host, n));
            }
        }
        own.retain(|o| !riders.iter().any(|(_, r)| std::ptr::eq(*r, *o)));
    }

    // Group the kept nudges: per office (digest) or one each (per nudge).
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, n) in own.iter().enumerate() {
        match (cfg.mail.grouping, groups.last_mut()) {
            (Grouping::Digest, Some(g)) if own[g[0]].office == n.office => g.push(i),
            _ => groups.push(vec![i]),
        }
    }

    let mut out: Vec<Batch> = groups
        .into_iter()
        .map(|g| {
            let office = cfg
                .office(&own[g[0]].office)
                .expect("reachable offices exist");
            let mut nudges: Vec<Nudge> = g.iter().map(|i| own[*i].clone()).collect();
            let mut ride: Vec<&Nudge> = riders
                .iter()
                .filter(|(h, _)| g.iter().any(|i| std::ptr::eq(own[*i], *h)))
                .map(|(_, n)| *n)
                .collect();
            ride.sort_by_key(|n| (office_pos(&n.office), urgency(n)));
            let mut cc: Vec<String> = Vec::new();
            if nudges.iter().any(|n| n.add_head)
                && let Some(h) = &office.head
            {
                cc.push(h.clone());
            }
            for r in &ride {
                if let Some(o) = cfg.office(&r.office) {
                    cc.extend(o.emails.iter().cloned());
                }
            }
            nudges.extend(ride.into_iter().cloned());
            let to = dedup(office.emails.clone(), &[]);
            let cc = dedup(cc, &to);
            Batch {
                office: office.id.clone(),
                nudges,
                to,
                cc,
            }
        })
        .collect();
    if let Some(l) = leadership
        && !digest.is_empty()
    {
        out.push(Batch {
            office: l.id.clone(),
            nudges: digest.into_iter().cloned().collect(),
            to: dedup(l.emails.clone(), &[]),
            cc: Vec::new(),
        });
    }
    out
}

/// The address part, lowercased, for comparing `Tên <a@b>` with `a@b`.
fn address_key(s: &str) -> String {
    Mailbox::from_str(s.trim())
        .map(|m| m.email.to_string())
        .unwrap_or_else(|_| s.trim().to_string())
        .to_lowercase()
}

fn dedup(list: Vec<String>, already: &[String]) -> Vec<String> {
    let mut seen: BTreeSet<String> = already.iter().map(|a| address_key(a)).collect();
    list.into_iter()
        .filter(|a| seen.insert(address_key(a)))
        .collect()
}

/// A one-nudge batch for `send-test`: the config's first task with a date (or, when no task
/// has one, the first task with a deadline three working days from `now`), for its first
/// lead office, addressed only to `to`. `None` when the config has no tasks.
pub fn sample_batch(
    cfg: &Config,
    cal: &WorkCalendar,
    now: DateTime<Tz>,
    to: &str,
) -> Option<Batch> {
    let today = now.date_naive();
    let dated = cfg.tasks.iter().find_map(|t| {
        let ds = planner::occurrences(cfg, cal, t).ok()?;
        let d = ds.iter().find(|d| **d >= today).or(ds.last())?;
        Some((t, *d))
    });
    let (task, occurrence) = match dated {
        Some(x) => x,
        None => (cfg.tasks.first()?, cal.add_working_days(today, 3)),
    };
    let office = task
        .lead
        .first()
        .or(task.cooperating.first())
        .cloned()
        .unwrap_or_default();
    Some(Batch {
        office: office.clone(),
        nudges: vec![Nudge {
            task: Arc::from(task.id.as_str()),
            office: Arc::from(office.as_str()),
            role: Role::Lead,
            kind: Kind::Before(Offset::working(3)),
            occurrence,
            date: today,
            send_at: now,
            days_left: cal.working_days_between(today, occurrence),
            unit: Unit::WorkingDays,
            add_head: false,
            add_leadership: false,
            late: Late::No,
        }],
        to: vec![to.to_string()],
        cc: Vec::new(),
    })
}

/// A fresh Message-ID in the bracketed form lettre and RFC 5322 want:
/// `<32 hex digits@domain>`.
pub fn new_message_id(domain: &str) -> String {
    format!("<{:032x}@{}>", rand::random::<u128>(), domain)
}

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

/// Why an email could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("cannot read the template {}: {source}", path.display())]
    ReadTemplate {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A template that does not compile or render; `name` is the file (an override's path,
    /// or the built-in name).
    #[error("the template {name}{} is broken: {message}", line.map(|l| format!(", line {l},")).unwrap_or_default())]
    Template {
        name: String,
        line: Option<usize>,
        message: String,
    },
    #[error("task `{0}` is not in the config")]
    UnknownTask(String),
    #[error("office `{0}` is not in the config")]
    UnknownOffice(String),
    #[error("the email has no recipient")]
    NoRecipient,
    #[error("`{0}` is not a valid email address")]
    Address(String),
    #[error("`{0}` is not a valid Message-ID")]
    MessageId(String),
    #[error("cannot build the email: {0}")]
    Build(#[from] lettre::error::Error),
}

const SUBJECT: &str = "subject.txt";
const TEXT: &str = "body.txt";
const HTML: &str = "body.html";
const BUILTIN: [(&str, &str); 3] = [
    (SUBJECT, include_str!("templates/subject.txt")),
    (TEXT, include_str!("templates/body.txt")),
    (HTML, include_str!("templates/body.html")),
];

/// Renders emails. Built once per config: the templates are compiled and checked then.
pub struct Composer {
    env: Environment<'static>,
    /// Template name → what to call it in errors (the override's path, or the name).
    origin: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for Composer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Composer")
            .field("templates", &self.origin)
            .finish()
    }
}

impl Composer {
    /// Loads the built-in templates, then the overrides in `mail.templates` (same file
    /// names: `subject.txt`, `body.txt`, `body.html`), and renders each once with sample
    /// data so that a broken override stops the program at start, not at the first sweep.
    pub fn new(cfg: &Config) -> Result<Composer, ComposeError> {
        let mut env = Environment::new();
        // Blocks on lines of their own leave no blank lines behind: templates stay readable.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(true);
        // A misspelt variable is an error, not an empty string; `{% if x %}` still works.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        // minijinja's HTML escaping also turns `/` into `&#x2f;`, which makes dates unreadable
        // in the source and unsearchable; escaping `& < > " '` is what HTML needs.
        env.set_formatter(|out, state, value| match value.as_str() {
            Some(s) if state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
                out.write_str(&html_escape(s))?;
                Ok(())
            }
            _ => minijinja::escape_formatter(out, state, value),
        });
        let mut origin = Vec::new();
        for (name, builtin) in BUILTIN {
            let (source, shown) = match cfg.mail.templates.as_ref().map(|d| d.join(name)) {
                Some(path) if path.exists() => {
                    let s = std::fs::read_to_string(&path).map_err(|source| {
                        ComposeError::ReadTemplate {
                            path: path.clone(),
                            source,
                        }
                    })?;
                    (s, path.display().to_string())
                }
                _ => (builtin.to_string(), name.to_string()),
            };
            env.add_template_owned(name, source)
                .map_err(|e| template_error(&shown, &e))?;
            origin.push((name, shown));
        }
        let composer = Composer { env, origin };
        for ctx in sample_contexts() {
            for (name, _) in BUILTIN {
                composer.render(name, &ctx)?;
            }
        }
        Ok(composer)
    }

    fn render(&self, name: &str, ctx: &Context) -> Result<String, ComposeError> {
        let shown = self
            .origin
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s.as_str())
            .unwrap_or(name);
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| template_error(shown, &e))
    }

    /// The email for `batch`: multipart/alternative, plain text and HTML, in Vietnamese.
    ///
    /// `message_id` is used as given; the bracketed form of [`new_message_id`] is expected,
    /// and brackets are added when missing. `now` is the Date header and the day the days
    /// left are counted from.
    pub fn compose(
        &self,
        cfg: &Config,
        cal: &WorkCalendar,
        batch: &Batch,
        message_id: &str,
        now: DateTime<Tz>,
    ) -> Result<Message, ComposeError> {
        let ctx = context(cfg, cal, batch, now)?;
        let subject = one_line(&self.render(SUBJECT, &ctx)?);
        let text = self.render(TEXT, &ctx)?;
        let html = self.render(HTML, &ctx)?;

        let id = message_id.trim();
        if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ComposeError::MessageId(message_id.to_string()));
        }
        let id = if id.starts_with('<') && id.ends_with('>') {
            id.to_string()
        } else {
            format!("<{id}>")
        };
        let mailbox =
            |s: &str| Mailbox::from_str(s.trim()).map_err(|_| ComposeError::Address(s.into()));
        let mut b = Message::builder()
            .from(mailbox(&cfg.mail.from)?)
            .subject(subject)
            .date(now.into())
            .message_id(Some(id));
        if let Some(r) = &cfg.mail.reply_to {
            b = b.reply_to(mailbox(r)?);
        }
        if batch.to.is_empty() {
            return Err(ComposeError::NoRecipient);
        }
        for t in &batch.to {
            b = b.to(mailbox(t)?);
        }
        for c in &batch.cc {
            b = b.cc(mailbox(c)?);
        }
        // RFC 3834: an automatic message; well-behaved vacation responders stay quiet.
        b = b.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ));
        b = b.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Content-Language"),
            "vi".into(),
        ));
        let body = MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(text),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html),
            );
        Ok(b.multipart(body)?)
    }
}

/// A plain-text message to the admin address (a delivery that failed for good). Not a
/// reminder: no templates, no ledger row.
pub fn admin_message(
    cfg: &Config,
    to: &str,
    subject: &str,
    body: &str,
    now: DateTime<Tz>,
) -> Result<Message, ComposeError> {
    let mailbox =
        |s: &str| Mailbox::from_str(s.trim()).map_err(|_| ComposeError::Address(s.into()));
    Ok(Message::builder()
        .from(mailbox(&cfg.mail.from)?)
        .to(mailbox(to)?)
        .subject(one_line(subject))
        .date(now.into())
        .message_id(Some(new_message_id(&cfg.mail.message_id_domain)))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ))
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_string())?)
}

fn template_error(name: &str, e: &minijinja::Error) -> ComposeError {
    ComposeError::Template {
        name: name.to_string(),
        line: e.line(),
        message: match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        },
    }
}

/// Text for one line (a subject, a title): control characters, CR and LF included, become
/// spaces and runs of spaces collapse, so nothing the YAML says can start a header.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text for a block (a product list): line breaks kept, other control characters dropped.
fn block(s: &str) -> String {
    s.replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect::<String>()
        .trim()
        .to_string()
}

/// `s` cut at a word boundary to at most `max` characters, with `…` when cut.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    let at = cut.rfind(' ').filter(|i| *i > max / 2).unwrap_or(cut.len());
    format!("{}…", cut[..at].trim_end_matches([' ', ',', ';', ':']))
}

/// Subject tags, from least to most pressing.
const TAG_BEFORE: &str = "Nhắc việc";
const TAG_TODAY: &str = "Đến hạn";
const TAG_OVERDUE: &str = "Quá hạn";
const TAG_ESCALATION: &str = "Quá hạn – báo cáo";

/// What the templates see. Every field is always present, so overrides may test any of them.
#[derive(Debug, Serialize)]
struct Context {
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
}

fn office_name(cfg: &Config, id: &str) -> String {
    cfg.office(id)
        .map(|o| one_line(&o.name))
        .unwrap_or_else(|| id.to_string())
}

fn context(
    cfg: &Config,
    cal: &WorkCalendar,
    batch: &Batch,
    now: DateTime<Tz>,
) -> Result<Context, ComposeError> {
    let office = cfg
        .office(&batch.office)
        .ok_or_else(|| ComposeError::UnknownOffice(batch.office.clone()))?;
    let today = now.date_naive();
    let mut items = Vec::new();
    let mut cc_offices = Vec::new();
    let mut shown: BTreeSet<(Arc<str>, NaiveDate)> = BTreeSet::new();
    let digest = batch.nudges.iter().all(|n| n.kind.is_leadership()) && !batch.nudges.is_empty();
    for n in &batch.nudges {
        if digest {
            let name = office_name(cfg, &n.office);
            if let Some(item) = items.iter_mut().find(|i: &&mut Item| {
                i.task_id == *n.task && i.deadline == n.occurrence.format("%d/%m/%Y").to_string()
            }) {
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
        items.push(Item {
            task_id: task.id.clone(),
            section: task.section.clone(),
            section_name: cfg.section_name(&task.section).map(one_line),
            title_short: shorten(&title, 70),
            title,
            product: task.product.as_deref().map(block).filter(|p| !p.is_empty()),
            phrase: one_line(&task.deadline.phrase),
            deadline: n.occurrence.format("%d/%m/%Y").to_string(),
            deadline_long: if task.deadline.exclusive {
                format!(
                    "trước ngày {}, tức chậm nhất {} {}",
                    n.occurrence.format("%d/%m/%Y"),
                    weekday_vi(due_day),
                    due_day.format("%d/%m/%Y")
                )
            } else {
                date_vi(n.occurrence)
            },
            deadline_short: if task.deadline.exclusive {
                format!("trước {}", n.occurrence.format("%d/%m/%Y"))
            } else {
                n.occurrence.format("%d/%m/%Y").to_string()
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
        });
    }
    let rank = |t: &str| {
        [TAG_BEFORE, TAG_TODAY, TAG_OVERDUE, TAG_ESCALATION]
            .iter()
            .position(|x| *x == t)
            .unwrap_or(0)
    };
    let tag = items
        .iter()
        .map(|i| i.tag.as_str())
        .max_by_key(|t| rank(t))
        .unwrap_or(TAG_BEFORE)
        .to_string();
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

/// Contexts that take the templates through their branches, to check overrides at start.
fn sample_contexts() -> Vec<Context> {
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

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    use crate::plan::config::{Env, from_source};
    use crate::plan::planner::plan;
    use chrono::{TimeZone, Utc};
    use std::collections::HashSet;
    use std::path::Path;

    /// Two tasks of the 2024 plan of Văn phòng UBND tỉnh Khánh Hòa, due 30/01 and 31/01.
    pub(crate) const PLAN: &str = "\
plan:
  title: Kế hoạch cải cách hành chính năm 2024 của Văn phòng UBND tỉnh
  reference: Quyết định số 20/QĐ-VPUBND ngày 18/01/2024
  year: 2024
sections:
  IV: Tổ chức thực hiện
  VII: Công tác chỉ đạo, điều hành
offices:
  hctc:
    name: Phòng Hành chính – Tổ chức
    email: hctc@vpubnd.example
    head: Trưởng phòng HC-TC <truong.hctc@vpubnd.example>
  kt:
    name: Phòng Kinh tế
    email: [kt@vpubnd.example, HCTC@vpubnd.example]
  snv:
    name: Sở Nội vụ
  ldvp:
    name: Lãnh đạo Văn phòng
    email: ldvp@vpubnd.example
leadership: ldvp
tasks:
  - id: IV.1
    title: Các Trung tâm xây dựng kế hoạch cải cách hành chính năm 2024 của đơn vị
    product: Kế hoạch CCHC năm 2024 của đơn vị
    deadline: trước ngày 30/01/2024
    lead: hctc
    cooperating: [kt, snv]
  - id: VII.1
    title: Ban hành Kế hoạch tuyên truyền CCHC tỉnh Khánh Hòa năm 2024
    product: Quyết định của Văn phòng UBND tỉnh
    deadline: Tháng 01/2024
    lead: hctc
";

    pub(crate) fn config(extra: &str) -> Config {
        from_source(
            &format!("{PLAN}{extra}"),
            Path::new("t.yaml"),
            &Env::default(),
        )
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config
    }

    pub(crate) fn at(s: &str) -> DateTime<Tz> {
        chrono_tz::Asia::Ho_Chi_Minh
            .from_local_datetime(
                &chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap(),
            )
            .unwrap()
    }

    fn due(cfg: &Config, now: &str) -> Vec<Nudge> {
        let now = at(now).with_timezone(&Utc);
        plan(
            cfg,
            &crate::calendar::workdays::WorkCalendar::weekends_only(),
            now,
            now,
            &HashSet::new(),
        )
        .due
    }

    /// Office, nudges (`task office kind`), To, Cc.
    type Shape = (String, Vec<String>, Vec<String>, Vec<String>);

    fn shape(bs: &[Batch]) -> Vec<Shape> {
        bs.iter()
            .map(|b| {
                (
                    b.office.clone(),
                    b.nudges
                        .iter()
                        .map(|n| format!("{} {} {}", n.task, n.office, n.kind.code()))
                        .collect(),
                    b.to.clone(),
                    b.cc.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn digest_groups_per_office_and_cooperating_get_their_own() {
        let c = config("");
        // Tuesday 30/01: IV.1 on the day, VII.1 one working day before; Phòng Kinh tế's
        // last reminder for IV.1 (29/01) was missed and comes late.
        let got = shape(&batches(&c, &due(&c, "2024-01-30 08:00")));
        assert_eq!(
            got,
            vec![
                (
                    "hctc".into(),
                    vec!["IV.1 hctc on-day".into(), "VII.1 hctc before-1wd".into()],
                    vec!["hctc@vpubnd.example".into()],
                    vec![]
                ),
                (
                    "kt".into(),
                    vec!["IV.1 kt before-1wd".into()],
                    vec!["kt@vpubnd.example".into(), "HCTC@vpubnd.example".into()],
                    vec![]
                ),
            ]
        );
    }

    #[test]
    fn per_nudge_and_cc_delivery() {
        let c = config("mail:\n  grouping: per-nudge\n  cooperating: cc\n");
        let got = shape(&batches(&c, &due(&c, "2024-01-30 08:00")));
        assert_eq!(
            got,
            vec![
                (
                    "hctc".into(),
                    vec!["IV.1 hctc on-day".into(), "IV.1 kt before-1wd".into()],
                    vec!["hctc@vpubnd.example".into()],
                    // hctc@ is already in To, whatever its case.
                    vec!["kt@vpubnd.example".into()]
                ),
                (
                    "hctc".into(),
                    vec!["VII.1 hctc before-1wd".into()],
                    vec!["hctc@vpubnd.example".into()],
                    vec![]
                ),
            ]
        );
    }

    #[test]
    fn cc_without_a_lead_email_this_sweep_sends_separately() {
        let c = config("mail:\n  cooperating: cc\n");
        // Friday 16/01 is the first reminder for IV.1: lead and cooperating both get one.
        let got = shape(&batches(&c, &due(&c, "2024-01-16 08:00")));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].3, vec!["kt@vpubnd.example".to_string()]);
        // Only the cooperating office's nudge is due: it gets its own email.
        let only_kt: Vec<Nudge> = due(&c, "2024-01-16 08:00")
            .into_iter()
            .filter(|n| &*n.office == "kt")
            .collect();
        let got = shape(&batches(&c, &only_kt));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "kt");
        assert!(got[0].3.is_empty());
    }

    #[test]
    fn escalation_copies_the_head_and_lists_the_leadership_in_one_digest() {
        let c = config("");
        // Tuesday 13/02 on a plain week (no Tết): IV.1 overdue 10 working days (the
        // leadership's first digest item); VII.1 at 9 (its office only: the head was copied
        // on 08/02, less than a week ago).
        let got = shape(&batches(&c, &due(&c, "2024-02-13 08:00")));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, "hctc");
        assert!(
            got[0].3.is_empty(),
            "never a copy to the leadership: {got:?}"
        );
        assert_eq!(got[1].0, "ldvp");
        assert_eq!(got[1].2, vec!["ldvp@vpubnd.example".to_string()]);
        assert_eq!(
            got[1].1,
            vec!["IV.1 hctc escalation-leadership".to_string()]
        );
        // Tuesday 20/02: IV.1 overdue 15 working days: the head again (a week after 06/02's
        // escalation), and IV.1 in the digest again.
        let got = shape(&batches(&c, &due(&c, "2024-02-20 08:00")));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            got[0].3,
            vec!["Trưởng phòng HC-TC <truong.hctc@vpubnd.example>".to_string()]
        );
        assert_eq!(got[1].0, "ldvp");
    }

    #[test]
    fn built_in_templates_render_every_case() {
        let c = config("");
        let cal = c.work_calendar(2024);
        let composer = Composer::new(&c).unwrap();
        for now in ["2024-01-25 08:00", "2024-01-30 08:00", "2024-02-13 08:00"] {
            for b in batches(&c, &due(&c, now)) {
                let m = composer
                    .compose(&c, &cal, &b, &new_message_id("vpubnd.example"), at(now))
                    .unwrap();
                let raw = String::from_utf8(m.formatted()).unwrap();
                assert!(raw.contains("Subject: "), "{raw}");
            }
        }
    }

    #[test]
    fn sample_batch_uses_the_first_dated_task() {
        let c = config("");
        let b = sample_batch(
            &c,
            &c.work_calendar(2024),
            at("2024-01-10 08:00"),
            "it@vpubnd.example",
        )
        .unwrap();
        assert_eq!(b.office, "hctc");
        assert_eq!(b.to, vec!["it@vpubnd.example".to_string()]);
        assert_eq!(&*b.nudges[0].task, "IV.1");
        assert_eq!(b.nudges[0].occurrence, d("2024-01-30"));
    }

    #[test]
    fn vietnamese_dates() {
        assert_eq!(date_vi(d("2024-01-30")), "Thứ Ba, 30/01/2024");
        assert_eq!(date_vi(d("2024-02-04")), "Chủ nhật, 04/02/2024");
        assert_eq!(date_vi(d("2024-02-03")), "Thứ Bảy, 03/02/2024");
    }

    #[test]
    fn days_left_wording() {
        let cal = WorkCalendar::weekends_only();
        let check = |today: &str, deadline: &str, unit: Unit, want: &str| {
            assert_eq!(
                Due::on(&cal, d(today), d(deadline), unit).text(),
                want,
                "{today} → {deadline}"
            );
        };
        check(
            "2024-01-25",
            "2024-01-30",
            Unit::WorkingDays,
            "còn 3 ngày làm việc",
        );
        check("2024-01-25", "2024-01-30", Unit::Days, "còn 5 ngày");
        check("2024-01-30", "2024-01-30", Unit::WorkingDays, "hạn hôm nay");
        check(
            "2024-02-05",
            "2024-01-30",
            Unit::WorkingDays,
            "đã quá hạn 4 ngày làm việc",
        );
        check("2024-02-05", "2024-01-30", Unit::Days, "đã quá hạn 6 ngày");
        // Deadline on Sunday 30/06/2024: Friday is the last working day before it.
        check(
            "2024-06-28",
            "2024-06-30",
            Unit::WorkingDays,
            "hôm nay là ngày làm việc cuối cùng trước hạn",
        );
        check("2024-06-28", "2024-06-30", Unit::Days, "còn 2 ngày");
        check(
            "2024-07-01",
            "2024-06-30",
            Unit::WorkingDays,
            "đã quá hạn 1 ngày làm việc",
        );
    }

    #[test]
    fn one_line_strips_header_breaks() {
        assert_eq!(
            one_line("Báo cáo\r\nBcc: x@evil.example\t\u{0}!"),
            "Báo cáo Bcc: x@evil.example !"
        );
        assert_eq!(block("- a\r\n- b\u{7}"), "- a\n- b");
    }

    #[test]
    fn shorten_cuts_at_a_word() {
        assert_eq!(shorten("ngắn", 70), "ngắn");
        let s = "Tham mưu ban hành Chương trình hành động nâng cao Chỉ số năng lực cạnh tranh cấp tỉnh (PCI)";
        let got = shorten(s, 50);
        assert!(got.chars().count() <= 50, "{got}");
        assert!(got.ends_with('…'));
        assert!(s.starts_with(got.trim_end_matches('…')), "{got}");
    }

    #[test]
    fn message_ids_are_bracketed_and_unique() {
        let a = new_message_id("vpubnd.example");
        let b = new_message_id("vpubnd.example");
        assert!(a.starts_with('<') && a.ends_with("@vpubnd.example>"), "{a}");
        assert_ne!(a, b);
    }
}
