//! The clerk's YAML file, read and validated into the types the rest of the program uses.
//!
//! Two stages, as in ripgrep: [`crate::plan::yaml`] mirrors what was written, with locations;
//! [`load`] reads that tree into a [`Config`] and collects every problem into one
//! [`Report`] so the clerk sees all of them at once. Nothing downstream re-validates: a
//! `Config` that exists is consistent (every reference resolves, every date exists).

use crate::plan::deadline::{self, DayOfMonth, Period, Periodic, Phrase, Rule, Unscheduled};
use crate::plan::diag::{Diagnostic, Pos, Report, suggest};
use crate::plan::yaml::{self, Node, Value};
use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

mod model;
pub use model::*;

/// Where the program looks when neither `-c` nor `NHACVIEC_CONFIG` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/nhacviec/nhacviec.yaml";

/// The service's `ConfigurationDirectory=` and `StateDirectory=` (deploy/nhacviec.service).
pub const SERVICE_CONFIG_DIR: &str = "/etc/nhacviec";
pub const SERVICE_STATE_DIR: &str = "/var/lib/nhacviec";

/// What the process environment contributes to defaults. Passed in, not read here, so that
/// loading is the same in tests and under systemd.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// systemd's `$STATE_DIRECTORY`: where the ledger and outbox go by default.
    pub state_directory: Option<PathBuf>,
}

impl Env {
    pub fn from_process() -> Self {
        Self {
            state_directory: std::env::var_os("STATE_DIRECTORY")
                .map(|s| {
                    // systemd may pass several colon-separated folders; the first is ours.
                    let s = s.to_string_lossy().to_string();
                    PathBuf::from(s.split(':').next().unwrap_or(&s))
                })
                .filter(|p| !p.as_os_str().is_empty()),
        }
    }
}

/// A loaded config and the warnings about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub report: Report,
}

/// Reads and validates the file. On any error, the report holds every problem found.
pub fn load(path: &Path, env: &Env) -> Result<Loaded, Report> {
    let source = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => {
            let mut r = Report::new(path, "");
            let hint = match e.kind() {
                std::io::ErrorKind::NotFound => "create it (the example is config/khanh-hoa-2024.yaml in the source), or point to another file with `-c FILE` or NHACVIEC_CONFIG".to_string(),
                std::io::ErrorKind::PermissionDenied => {
                    "make the file readable by the user running nhacviec".to_string()
                }
                _ => "check the path".to_string(),
            };
            r.push(
                Diagnostic::error(None, format!("cannot read the config file: {e}"))
                    .with_hint(hint),
            );
            return Err(r);
        }
    };
    from_source(&source, path, env)
}

/// Reads and validates YAML text as if it came from `path`.
pub fn from_source(source: &str, path: &Path, env: &Env) -> Result<Loaded, Report> {
    // The report quotes the source only when it has something to say: a copy of a large
    // plan's text would otherwise be kept for as long as the config.
    let mut report = Report::new(path, "");
    let root = match yaml::parse(source) {
        Ok(n) => n,
        Err(d) => {
            report.push(d);
            report.source = source.to_string();
            return Err(report);
        }
    };
    let mut errs = Vec::new();
    let config = Reader {
        path,
        env,
        base: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
    }
    .config(&root, &mut errs);
    drop(root);
    for d in errs {
        report.push(d);
    }
    report.sort();
    if !report.items.is_empty() {
        report.source = source.to_string();
    }
    match config {
        Some(config) if !report.has_errors() => Ok(Loaded { config, report }),
        _ => Err(report),
    }
}

const ROOT_KEYS: &[&str] = &[
    "plan",
    "offices",
    "groups",
    "sections",
    "leadership",
    "reminders",
    "tasks",
    "schedule",
    "mail",
    "ledger",
    "calendar",
];
const PLAN_KEYS: &[&str] = &["title", "reference", "year"];
const OFFICE_KEYS: &[&str] = &["name", "email", "head", "note"];
const POLICY_KEYS: &[&str] = &[
    "before",
    "on_day",
    "overdue_every",
    "overdue_limit",
    "escalate",
    "cooperating",
];
const ESCALATE_KEYS: &[&str] = &["head_after", "leadership_after"];
const TASK_KEYS: &[&str] = &[
    "id",
    "section",
    "title",
    "product",
    "deadline",
    "lead",
    "cooperating",
    "done",
    "reminders",
    "note",
];
const DEADLINE_KEYS: &[&str] = &[
    "phrase",
    "date",
    "dates",
    "after",
    "days",
    "every",
    "day",
    "month_of_quarter",
    "working_days_after",
    "from",
    "until",
    "checkpoints",
];
const SCHEDULE_KEYS: &[&str] = &["timezone", "sweeps", "window", "catch_up"];
const MAIL_KEYS: &[&str] = &[
    "from",
    "reply_to",
    "admin",
    "message_id_domain",
    "grouping",
    "cooperating",
    "templates",
    "transport",
    "retry",
];
const TRANSPORT_KEYS: &[&str] = &["outbox", "smtp"];
const SMTP_KEYS: &[&str] = &[
    "host",
    "port",
    "security",
    "allow_plaintext",
    "username",
    "password_file",
    "password_credential",
    "password_env",
    "timeout",
    "pool_size",
    "ca_file",
];
const RETRY_KEYS: &[&str] = &["attempts", "initial", "max"];
const LEDGER_KEYS: &[&str] = &["path"];
const CALENDAR_KEYS: &[&str] = &["days_off", "working_days"];
const SECRET_KEYS: &[&str] = &[
    "password", "pass", "passwd", "secret", "token", "api_key", "apikey", "mat_khau",
];

struct Reader<'a> {
    path: &'a Path,
    env: &'a Env,
    base: PathBuf,
}

fn err(pos: Pos, msg: impl Into<String>, hint: impl Into<String>) -> Diagnostic {
    Diagnostic::error(Some(pos), msg).with_hint(hint)
}

fn warn(pos: Pos, msg: impl Into<String>, hint: impl Into<String>) -> Diagnostic {
    Diagnostic::warning(Some(pos), msg).with_hint(hint)
}

/// Secrets must never be written in the YAML: report any key that looks like one, wherever
/// it is, before anything else reads the tree.
/// `fold(name)` is one of [`SECRET_KEYS`]. A plain ASCII name with no spaces folds to its
/// lowercase, so it is compared as it is: folding every key of a large plan allocated
/// several strings per key.
fn is_secret_key(name: &str) -> bool {
    if name.is_ascii() && !name.chars().any(char::is_whitespace) {
        return SECRET_KEYS.iter().any(|s| s.eq_ignore_ascii_case(name));
    }
    SECRET_KEYS.contains(&deadline::fold(name).as_str())
}

fn find_secrets(node: &Node, errs: &mut Vec<Diagnostic>) {
    match &node.value {
        Value::Map(entries) => {
            for (k, v) in entries {
                if is_secret_key(&k.name) {
                    errs.push(err(
                        k.pos,
                        format!("`{}` puts a secret in the config file", k.name),
                        "never write a password here: delete this line and use `password_file:`, `password_credential:` (systemd LoadCredential) or `password_env:`",
                    ));
                }
                find_secrets(v, errs);
            }
        }
        Value::Seq(items) => items.iter().for_each(|i| find_secrets(i, errs)),
        _ => {}
    }
}

pub fn parse_date(node: &Node, what: &str, errs: &mut Vec<Diagnostic>) -> Option<NaiveDate> {
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

fn parse_offset(node: &Node, what: &str, errs: &mut Vec<Diagnostic>) -> Option<Offset> {
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

fn parse_bool(node: &Node, what: &str, errs: &mut Vec<Diagnostic>) -> Option<bool> {
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

fn parse_u32(node: &Node, what: &str, errs: &mut Vec<Diagnostic>) -> Option<u32> {
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

fn parse_duration(node: &Node, what: &str, errs: &mut Vec<Diagnostic>) -> Option<Duration> {
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
fn parse_mailbox(s: &str, pos: Pos, what: &str, errs: &mut Vec<Diagnostic>) -> Option<String> {
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

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

impl Reader<'_> {
    fn resolve(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }

    fn config(&self, root: &Node, errs: &mut Vec<Diagnostic>) -> Option<Config> {
        find_secrets(root, errs);
        let m = root.map("the config file", ROOT_KEYS, errs)?;
        m.check_unknown(errs);

        let plan = m
            .get("plan")
            .map(|n| self.plan(n, errs))
            .unwrap_or_default();
        let sections = self.sections(m.get("sections"), errs);
        let (offices, office_pos) = self.offices(m.get("offices"), m.pos, errs);
        let office_index: HashMap<String, usize> = offices
            .iter()
            .enumerate()
            .map(|(i, o)| (o.id.clone(), i))
            .collect();
        let groups = self.groups(m.get("groups"), &office_index, errs);
        let leadership = m.get("leadership").and_then(|n| {
            let id = n.text("`leadership`", errs)?;
            match offices.iter().find(|o| o.id == id) {
                Some(o) if o.emails.is_empty() => {
                    errs.push(warn(
                        n.pos,
                        format!("the leadership office `{id}` has no email address"),
                        "give it an `email:` so that escalations reach the leadership",
                    ));
                    Some(id)
                }
                Some(_) => Some(id),
                None => {
                    errs.push(err(
                        n.pos,
                        format!("unknown office `{id}` as `leadership`"),
                        suggest(&id, offices.iter().map(|o| o.id.as_str())),
                    ));
                    None
                }
            }
        });
        let policies = self.policies(m.get("reminders"), errs);
        let calendar = self.calendar(m.get("calendar"), errs);
        let schedule = self.schedule(m.get("schedule"), errs);
        let mail = self.mail(m.get("mail"), errs);
        let ledger = self.ledger(m.get("ledger"), errs);

        let names = Names {
            offices: &office_index,
            groups: &groups,
            policies: &policies,
            sections: &sections,
        };
        let tasks = self.tasks(m.get("tasks"), m.pos, &names, &plan, errs);
        let task_index: HashMap<String, usize> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
        check_dependencies(&tasks, &task_index, errs);
        for t in &tasks {
            for o in &t.lead {
                if let Some(office) = office_index.get(o).map(|i| &offices[*i])
                    && office.emails.is_empty()
                {
                    errs.push(warn(
                        t.pos,
                        format!(
                            "task {} is led by `{}` ({}), which has no email address: it will not be reminded",
                            t.id, o, office.name
                        ),
                        format!("add `email:` to office `{o}` (line {}), or make another office lead", office_pos.get(o).map(|p| p.line).unwrap_or(0)),
                    ));
                }
            }
            if let Rule::Dates(ds) = &t.deadline.rule
                && let Some(y) = plan.year
                && ds
                    .iter()
                    .any(|d| chrono::Datelike::year(d) != y && chrono::Datelike::year(d) != y + 1)
            {
                errs.push(warn(
                    t.pos,
                    format!("task {} has a deadline outside the plan's year {y}", t.id),
                    "check the year in the deadline",
                ));
            }
        }

        let official = crate::calendar::holidays::official_data_years();
        let mut plan_years: BTreeSet<i32> = plan.year.into_iter().collect();
        for t in &tasks {
            if let Rule::Dates(ds) = &t.deadline.rule {
                plan_years.extend(ds.iter().map(chrono::Datelike::year));
            }
        }
        for y in plan_years {
            let clerk_entered = calendar
                .days_off
                .iter()
                .chain(&calendar.working_days)
                .any(|(d, _)| chrono::Datelike::year(d) == y);
            if !official.contains(&y) && !clerk_entered {
                errs.push(Diagnostic::warning(
                    m.key_pos("tasks").or(Some(m.pos)),
                    format!("nhacviec has no official days-off notice for {y}: it uses the statutory holidays, with Tết and 2/9 guessed"),
                ).with_hint(format!("when the year's notice is published, add its days under `calendar:` → `days_off:` and `working_days:` (e.g. `{y}-02-05: Tết Nguyên đán`)")));
            }
        }

        Some(Config {
            path: self.path.to_path_buf(),
            plan,
            offices,
            office_index,
            groups,
            sections,
            leadership,
            policies,
            tasks,
            task_index,
            schedule: schedule?,
            mail: mail?,
            ledger,
            calendar,
        })
    }

    fn plan(&self, node: &Node, errs: &mut Vec<Diagnostic>) -> PlanInfo {
        let Some(m) = node.map("`plan`", PLAN_KEYS, errs) else {
            return PlanInfo::default();
        };
        m.check_unknown(errs);
        let year = m.get("year").and_then(|n| {
            let y = parse_u32(n, "`year`", errs)?;
            if !(1900..=2100).contains(&y) {
                errs.push(err(
                    n.pos,
                    format!("year {y} is out of range"),
                    "write a year between 1900 and 2100",
                ));
                return None;
            }
            Some(y as i32)
        });
        PlanInfo {
            title: m.opt_text("title", errs).unwrap_or_default(),
            reference: m.opt_text("reference", errs).unwrap_or_default(),
            year,
        }
    }

    fn sections(
        &self,
        node: Option<&Node>,
        errs: &mut Vec<Diagnostic>,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(node) = node else { return out };
        let Value::Map(entries) = &node.value else {
            errs.push(err(
                node.pos,
                "`sections` must be a block of `ID: name` lines",
                "e.g. `II: Cải cách thủ tục hành chính`",
            ));
            return out;
        };
        for (k, v) in entries {
            if let Some(name) = v.text(&format!("section `{}`", k.name), errs) {
                out.insert(k.name.clone(), name);
            }
        }
        out
    }

    fn offices(
        &self,
        node: Option<&Node>,
        root: Pos,
        errs: &mut Vec<Diagnostic>,
    ) -> (Vec<Office>, HashMap<String, Pos>) {
        let mut out = Vec::new();
        let mut pos = HashMap::new();
        let Some(node) = node else {
            errs.push(
                Diagnostic::error(Some(root), "the config has no `offices:` section").with_hint(
                    "add `offices:` with one block per office: id, then `name:` and `email:`",
                ),
            );
            return (out, pos);
        };
        let Value::Map(entries) = &node.value else {
            errs.push(err(node.pos, "`offices` must be a block of offices, one id per line", "e.g.\noffices:\n  hctc:\n    name: Phòng Hành chính – Tổ chức\n    email: hctc@vpubnd.example"));
            return (out, pos);
        };
        for (k, v) in entries {
            check_id(&k.name, k.pos, "office", errs);
            let what = format!("office `{}`", k.name);
            let Some(m) = v.map(&what, OFFICE_KEYS, errs) else {
                continue;
            };
            m.check_unknown(errs);
            let name = m.req_text("name", errs).unwrap_or_default();
            let emails = m
                .get("email")
                .map(|n| n.text_list("`email`", errs))
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(s, p)| parse_mailbox(&s, p, "email", errs))
                .collect();
            let head = m.get("head").and_then(|n| {
                let s = n.text("`head`", errs)?;
                parse_mailbox(&s, n.pos, "head", errs)
            });
            pos.insert(k.name.clone(), k.pos);
            out.push(Office {
                id: k.name.clone(),
                name,
                emails,
                head,
                note: m.opt_text("note", errs),
            });
        }
        (out, pos)
    }

    fn groups(
        &self,
        node: Option<&Node>,
        offices: &HashMap<String, usize>,
        errs: &mut Vec<Diagnostic>,
    ) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        let Some(node) = node else { return out };
        let Value::Map(entries) = &node.value else {
            errs.push(err(
                node.pos,
                "`groups` must be a block of `group-id: [office, office]` lines",
                "e.g. `cac-phong: [hctc, kstthc, kinh-te]`",
            ));
            return out;
        };
        for (k, v) in entries {
            check_id(&k.name, k.pos, "group", errs);
            if offices.contains_key(&k.name) {
                errs.push(err(
                    k.pos,
                    format!("`{}` is both an office and a group", k.name),
                    "rename the group, e.g. `cac-…`",
                ));
            }
            let mut members = Vec::new();
            for (id, p) in v.text_list(&format!("group `{}`", k.name), errs) {
                if offices.contains_key(&id) {
                    if !members.contains(&id) {
                        members.push(id);
                    }
                } else {
                    errs.push(err(
                        p,
                        format!("unknown office `{id}` in group `{}`", k.name),
                        suggest(&id, offices.keys().map(String::as_str)),
                    ));
                }
            }
            if members.is_empty() {
                errs.push(warn(
                    k.pos,
                    format!("group `{}` has no offices", k.name),
                    "list its offices, e.g. `[hctc, kinh-te]`",
                ));
            }
            out.insert(k.name.clone(), members);
        }
        out
    }

    fn policies(
        &self,
        node: Option<&Node>,
        errs: &mut Vec<Diagnostic>,
    ) -> BTreeMap<String, Policy> {
        let mut out = BTreeMap::new();
        if let Some(node) = node {
            if let Value::Map(entries) = &node.value {
                for (k, v) in entries {
                    if let Some(p) = self.policy(&k.name, v, errs) {
                        out.insert(k.name.clone(), p);
                    }
                }
            } else {
                errs.push(err(
                    node.pos,
                    "`reminders` must be a block of named policies",
                    "e.g.\nreminders:\n  default:\n    before: [14d, 7d, 3wd, 1wd]",
                ));
            }
        }
        out.entry("default".to_string())
            .or_insert_with(Policy::builtin);
        out
    }

    fn policy(&self, name: &str, node: &Node, errs: &mut Vec<Diagnostic>) -> Option<Policy> {
        let m = node.map(&format!("reminder policy `{name}`"), POLICY_KEYS, errs)?;
        m.check_unknown(errs);
        let builtin = Policy::builtin();
        let mut before: Vec<Offset> = match m.get("before") {
            Some(n) => n
                .text_list("`before`", errs)
                .into_iter()
                .filter_map(|(s, p)| match s.parse::<Offset>() {
                    Ok(o) if o.n > 0 => Some(o),
                    Ok(_) => {
                        errs.push(err(
                            p,
                            "`0d` before the deadline is the deadline itself",
                            "use `on_day: true` for a nudge on the day",
                        ));
                        None
                    }
                    Err(e) => {
                        errs.push(err(
                            p,
                            e,
                            "write calendar days as `7d` and working days as `3wd`",
                        ));
                        None
                    }
                })
                .collect(),
            None => builtin.before.clone(),
        };
        before.sort_by(|a, b| b.approx_days().total_cmp(&a.approx_days()));
        before.dedup();
        let on_day = m
            .get("on_day")
            .and_then(|n| parse_bool(n, "`on_day`", errs))
            .unwrap_or(true);
        let overdue_every = match m.get("overdue_every") {
            Some(n) if matches!(&n.value, Value::Scalar(s) if s == "false" || s == "never") => None,
            Some(n) => parse_offset(n, "`overdue_every`", errs).filter(|o| {
                if o.n == 0 {
                    errs.push(err(
                        n.pos,
                        "`overdue_every` cannot be 0",
                        "write e.g. `3wd`, or `never` for no overdue reminders",
                    ));
                }
                o.n > 0
            }),
            None => builtin.overdue_every,
        };
        let overdue_limit = m
            .get("overdue_limit")
            .and_then(|n| parse_u32(n, "`overdue_limit`", errs));
        let (mut head_after, mut leadership_after) = (builtin.head_after, builtin.leadership_after);
        if let Some(n) = m.get("escalate")
            && let Some(e) = n.map("`escalate`", ESCALATE_KEYS, errs)
        {
            {
                e.check_unknown(errs);
                head_after = e
                    .get("head_after")
                    .and_then(|n| parse_offset(n, "`head_after`", errs));
                leadership_after = e
                    .get("leadership_after")
                    .and_then(|n| parse_offset(n, "`leadership_after`", errs));
                if let (Some(h), Some(l)) = (head_after, leadership_after)
                    && l.approx_days() < h.approx_days()
                {
                    errs.push(warn(
                        n.pos,
                        "the leadership is added before the head",
                        "usually `head_after` is shorter than `leadership_after`",
                    ));
                }
            }
        }
        let cooperating = match m.get("cooperating") {
            None => builtin.cooperating,
            Some(n) => {
                let mut c = CoopRule::default();
                for (s, p) in n.text_list("`cooperating`", errs) {
                    match s.as_str() {
                        "first" => c.first = true,
                        "last" => c.last = true,
                        "all" => {
                            c.all_before = true;
                            c.on_day = true;
                        }
                        "before" => c.all_before = true,
                        "on_day" => c.on_day = true,
                        "overdue" => c.overdue = true,
                        "none" => {}
                        other => errs.push(err(
                            p,
                            format!("unknown choice `{other}` for `cooperating`"),
                            format!("{}; the choices are first, last, before, on_day, overdue, all, none", suggest(other, ["first", "last", "before", "on_day", "overdue", "all", "none"])),
                        )),
                    }
                }
                c
            }
        };
        Some(Policy {
            name: name.to_string(),
            before,
            on_day,
            overdue_every,
            overdue_limit,
            head_after,
            leadership_after,
            cooperating,
        })
    }

    fn calendar(&self, node: Option<&Node>, errs: &mut Vec<Diagnostic>) -> CalendarConfig {
        let mut out = CalendarConfig::default();
        let Some(node) = node else { return out };
        let Some(m) = node.map("`calendar`", CALENDAR_KEYS, errs) else {
            return out;
        };
        m.check_unknown(errs);
        let mut read = |key: &str, target: &mut Vec<(NaiveDate, String)>| {
            let Some(n) = m.get(key) else { return };
            let Value::Map(entries) = &n.value else {
                errs.push(err(
                    n.pos,
                    format!("`{key}` must be a block of `date: reason` lines"),
                    "e.g. `2027-02-05: Tết Nguyên đán (theo Thông báo số …)`",
                ));
                return;
            };
            for (k, v) in entries {
                let key_node = Node {
                    value: Value::Scalar(k.name.clone()),
                    pos: k.pos,
                };
                if let Some(d) = parse_date(&key_node, "a calendar day", errs) {
                    let why = v.as_str().unwrap_or("").to_string();
                    target.push((d, why));
                }
            }
        };
        read("days_off", &mut out.days_off);
        read("working_days", &mut out.working_days);
        out
    }

    fn schedule(&self, node: Option<&Node>, errs: &mut Vec<Diagnostic>) -> Option<Schedule> {
        let empty = Node {
            value: Value::Null,
            pos: Pos::default(),
        };
        let m = node
            .unwrap_or(&empty)
            .map("`schedule`", SCHEDULE_KEYS, errs)?;
        m.check_unknown(errs);
        let timezone = match m.get("timezone") {
            None => chrono_tz::Asia::Ho_Chi_Minh,
            Some(n) => {
                let s = n.text("`timezone`", errs)?;
                match s.parse::<Tz>() {
                    Ok(tz) => tz,
                    Err(_) => {
                        errs.push(err(
                            n.pos,
                            format!("unknown time zone `{s}`"),
                            "write `Asia/Ho_Chi_Minh`",
                        ));
                        chrono_tz::Asia::Ho_Chi_Minh
                    }
                }
            }
        };
        let written: Vec<(String, Pos)> = match m.get("sweeps") {
            Some(n) => n.text_list("`sweeps`", errs),
            None => vec![("0 8 * * *".to_string(), Pos::default())],
        };
        let mut sweeps = Vec::new();
        for (expr, p) in written {
            match parse_cron(&expr) {
                Ok(cron) => sweeps.push(Sweep { expr: expr.trim().to_string(), cron }),
                Err(e) => errs.push(err(p, format!("the sweep time `{expr}` cannot be read: {e}"), "write five fields, minute hour day month weekday, in local time: `0 8 * * *` is every day at 08:00, `30 13 * * 1-5` is 13:30 Monday to Friday")),
            }
        }
        if m.get("sweeps").is_some() && sweeps.is_empty() && !errs.iter().any(|e| e.is_error()) {
            errs.push(err(
                m.pos,
                "`sweeps` is empty: nothing would ever be sent",
                "write at least one time, e.g. `sweeps: [\"0 8 * * *\"]`",
            ));
        }
        let (mut window_start, mut window_end) = (
            NaiveTime::from_hms_opt(7, 30, 0).expect("valid"),
            NaiveTime::from_hms_opt(17, 0, 0).expect("valid"),
        );
        if let Some(n) = m.get("window")
            && let Some(s) = n.text("`window`", errs)
        {
            let parsed = s.split_once('-').and_then(|(a, b)| {
                Some((
                    NaiveTime::parse_from_str(a.trim(), "%H:%M").ok()?,
                    NaiveTime::parse_from_str(b.trim(), "%H:%M").ok()?,
                ))
            });
            match parsed {
                Some((a, b)) if a < b => (window_start, window_end) = (a, b),
                _ => errs.push(err(
                    n.pos,
                    format!("the sending window `{s}` cannot be read"),
                    "write it as `07:30-17:00` (start before end, 24-hour clock)",
                )),
            }
        }
        for sw in &sweeps {
            if !sweep_hits_window(&sw.cron, window_start, window_end) {
                errs.push(warn(
                    m.key_pos("sweeps").unwrap_or(m.pos),
                    format!(
                        "the sweep `{}` never falls inside the sending window {}–{}",
                        sw.expr,
                        window_start.format("%H:%M"),
                        window_end.format("%H:%M")
                    ),
                    "such sweeps send nothing; move them into the window",
                ));
            }
        }
        let catch_up = m
            .get("catch_up")
            .and_then(|n| parse_offset(n, "`catch_up`", errs))
            .unwrap_or(Offset::days(7));
        Some(Schedule {
            timezone,
            sweeps,
            window_start,
            window_end,
            catch_up,
        })
    }

    fn mail(&self, node: Option<&Node>, errs: &mut Vec<Diagnostic>) -> Option<Mail> {
        let empty = Node {
            value: Value::Null,
            pos: Pos::default(),
        };
        let m = node.unwrap_or(&empty).map("`mail`", MAIL_KEYS, errs)?;
        m.check_unknown(errs);
        let addr = |key: &str, errs: &mut Vec<Diagnostic>| {
            let n = m.get(key)?;
            let s = n.text(&format!("`{key}`"), errs)?;
            parse_mailbox(&s, n.pos, &format!("`{key}`"), errs)
        };
        let from = addr("from", errs)
            .unwrap_or_else(|| "Nhắc việc <nhacviec@localhost.example>".to_string());
        let reply_to = addr("reply_to", errs);
        let admin = addr("admin", errs);
        let message_id_domain = m.opt_text("message_id_domain", errs).unwrap_or_else(|| {
            lettre::message::Mailbox::from_str(&from)
                .map(|mb| mb.email.domain().to_string())
                .unwrap_or_else(|_| "nhacviec.invalid".into())
        });
        if message_id_domain.is_empty()
            || message_id_domain
                .contains(|c: char| c.is_whitespace() || c == '@' || c == '>' || c == '<')
        {
            errs.push(err(
                m.key_pos("message_id_domain").unwrap_or(m.pos),
                format!("`{message_id_domain}` is not a domain name"),
                "write a domain such as `vpubnd.example`",
            ));
        }
        let grouping = match m.opt_text("grouping", errs).as_deref() {
            None | Some("digest") => Grouping::Digest,
            Some("per-nudge") | Some("per_nudge") => Grouping::PerNudge,
            Some(other) => {
                errs.push(err(
                    m.key_pos("grouping").unwrap_or(m.pos),
                    format!("unknown grouping `{other}`"),
                    "write `digest` (one email per office per sweep) or `per-nudge`",
                ));
                Grouping::Digest
            }
        };
        let cooperating = match m.opt_text("cooperating", errs).as_deref() {
            None | Some("separate") => CoopDelivery::Separate,
            Some("cc") => CoopDelivery::Cc,
            Some(other) => {
                errs.push(err(
                    m.key_pos("cooperating").unwrap_or(m.pos),
                    format!("unknown choice `{other}` for mail.cooperating"),
                    "write `separate` (their own email) or `cc`",
                ));
                CoopDelivery::Separate
            }
        };
        let templates = m.opt_text("templates", errs).map(|p| self.resolve(&p));
        let transport = match m.get("transport") {
            None => Transport::Outbox(self.state_path("outbox")),
            Some(n) => self.transport(n, errs)?,
        };
        let mut retry = Retry {
            attempts: 5,
            initial: Duration::from_secs(60),
            max: Duration::from_secs(3600),
        };
        if let Some(n) = m.get("retry")
            && let Some(r) = n.map("`retry`", RETRY_KEYS, errs)
        {
            r.check_unknown(errs);
            if let Some(a) = r
                .get("attempts")
                .and_then(|n| parse_u32(n, "`attempts`", errs))
            {
                retry.attempts = a.max(1);
            }
            if let Some(d) = r
                .get("initial")
                .and_then(|n| parse_duration(n, "`initial`", errs))
            {
                retry.initial = d;
            }
            if let Some(d) = r.get("max").and_then(|n| parse_duration(n, "`max`", errs)) {
                retry.max = d;
            }
        }
        Some(Mail {
            from,
            reply_to,
            admin,
            message_id_domain,
            grouping,
            cooperating,
            templates,
            transport,
            retry,
        })
    }

    /// A default path in the service's state folder, or next to the config.
    ///
    /// The installed service's own config (in [`SERVICE_CONFIG_DIR`]) read outside the
    /// service, as `nhacviec log` or `plan` do, has its state where the service keeps it:
    /// both find the same ledger with no `ledger.path` in the YAML and no flag.
    fn state_path(&self, name: &str) -> PathBuf {
        match &self.env.state_directory {
            Some(d) => d.join(name),
            None if self.base == Path::new(SERVICE_CONFIG_DIR) => {
                Path::new(SERVICE_STATE_DIR).join(name)
            }
            None => self.base.join(name),
        }
    }

    fn transport(&self, node: &Node, errs: &mut Vec<Diagnostic>) -> Option<Transport> {
        let m = node.map("`mail.transport`", TRANSPORT_KEYS, errs)?;
        m.check_unknown(errs);
        match (m.get("outbox"), m.get("smtp")) {
            (Some(_), Some(_)) => {
                errs.push(err(
                    m.pos,
                    "`transport` has both `outbox` and `smtp`",
                    "keep one: `smtp:` to send, `outbox:` to write .eml files",
                ));
                None
            }
            (Some(o), None) => Some(Transport::Outbox(self.resolve(&o.text("`outbox`", errs)?))),
            (None, Some(s)) => self.smtp(s, errs).map(Transport::Smtp),
            (None, None) => Some(Transport::Outbox(self.state_path("outbox"))),
        }
    }

    fn smtp(&self, node: &Node, errs: &mut Vec<Diagnostic>) -> Option<Smtp> {
        let m = node.map("`smtp`", SMTP_KEYS, errs)?;
        m.check_unknown(errs);
        let host = m.req_text("host", errs)?;
        let security = match m.opt_text("security", errs).as_deref() {
            None | Some("starttls") => Security::StartTls,
            Some("tls") => Security::Tls,
            Some("none") => Security::None,
            Some(other) => {
                errs.push(err(m.key_pos("security").unwrap_or(m.pos), format!("unknown security `{other}`"), "write `starttls` (port 587), `tls` (port 465) or `none` (with `allow_plaintext: true`)"));
                Security::StartTls
            }
        };
        let allow_plain = m
            .get("allow_plaintext")
            .and_then(|n| parse_bool(n, "`allow_plaintext`", errs))
            .unwrap_or(false);
        if security == Security::None {
            let p = m.key_pos("security").unwrap_or(m.pos);
            if !allow_plain {
                errs.push(err(
                    p,
                    "`security: none` sends the password and emails unencrypted",
                    "use `starttls` or `tls`; if you really mean it, add `allow_plaintext: true`",
                ));
            } else if !is_loopback(&host) {
                errs.push(warn(p, format!("emails to `{host}` go unencrypted"), "plaintext is only safe to a server on this machine (127.0.0.1); prefer `starttls`"));
            }
        }
        let port = match m.get("port") {
            Some(n) => {
                let p = parse_u32(n, "`port`", errs)?;
                if p == 0 || p > 65535 {
                    errs.push(err(
                        n.pos,
                        format!("port {p} does not exist"),
                        "587 for starttls, 465 for tls",
                    ));
                }
                p as u16
            }
            None => match security {
                Security::StartTls => 587,
                Security::Tls => 465,
                Security::None => 25,
            },
        };
        let sources: Vec<(&str, SecretSource)> = [
            m.opt_text("password_file", errs)
                .map(|p| ("password_file", SecretSource::File(self.resolve(&p)))),
            m.opt_text("password_credential", errs)
                .map(|c| ("password_credential", SecretSource::Credential(c))),
            m.opt_text("password_env", errs)
                .map(|e| ("password_env", SecretSource::Env(e))),
        ]
        .into_iter()
        .flatten()
        .collect();
        if sources.len() > 1 {
            errs.push(err(
                m.pos,
                format!(
                    "the password is given {} ways: {}",
                    sources.len(),
                    sources
                        .iter()
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "keep one of them",
            ));
        }
        let username = m.opt_text("username", errs);
        if username.is_some() && sources.is_empty() {
            errs.push(warn(m.key_pos("username").unwrap_or(m.pos), "a username but no password source", "add `password_credential: smtp-password` (systemd LoadCredential), `password_file:` or `password_env:`"));
        }
        let timeout = m
            .get("timeout")
            .and_then(|n| parse_duration(n, "`timeout`", errs))
            .unwrap_or(Duration::from_secs(30));
        let pool_size = m
            .get("pool_size")
            .and_then(|n| parse_u32(n, "`pool_size`", errs))
            .unwrap_or(4)
            .max(1);
        let ca_file = m.opt_text("ca_file", errs).map(|p| self.resolve(&p));
        if let Some(p) = &ca_file
            && !p.is_file()
        {
            errs.push(err(
                m.key_pos("ca_file").unwrap_or(m.pos),
                format!("the certificate file {} does not exist", p.display()),
                "give the path of the mail server's CA certificate in PEM form, or remove `ca_file` to trust the public CAs only",
            ));
        }
        Some(Smtp {
            host,
            port,
            security,
            username,
            password: sources.into_iter().next().map(|(_, s)| s),
            timeout,
            pool_size,
            ca_file,
        })
    }

    fn ledger(&self, node: Option<&Node>, errs: &mut Vec<Diagnostic>) -> LedgerConfig {
        let default = LedgerConfig {
            path: self.state_path("nhacviec.db"),
        };
        let Some(node) = node else { return default };
        let Some(m) = node.map("`ledger`", LEDGER_KEYS, errs) else {
            return default;
        };
        m.check_unknown(errs);
        match m.opt_text("path", errs) {
            Some(p) => LedgerConfig {
                path: self.resolve(&p),
            },
            None => default,
        }
    }

    fn tasks(
        &self,
        node: Option<&Node>,
        root: Pos,
        names: &Names,
        plan: &PlanInfo,
        errs: &mut Vec<Diagnostic>,
    ) -> Vec<Task> {
        let mut out: Vec<Task> = Vec::new();
        let Some(node) = node else {
            errs.push(
                Diagnostic::error(Some(root), "the config has no `tasks:` section")
                    .with_hint("add `tasks:` with one `- id: …` block per task"),
            );
            return out;
        };
        let Value::Seq(items) = &node.value else {
            errs.push(err(
                node.pos,
                "`tasks` must be a list: each task starts with `- id:`",
                "e.g.\ntasks:\n  - id: II.3\n    title: …",
            ));
            return out;
        };
        // Every id written, even of tasks that fail to read, so that one broken task does
        // not make the tasks that wait for it report a second, misleading error.
        let written_ids: Vec<String> = items
            .iter()
            .filter_map(|i| match &i.value {
                Value::Map(entries) => entries
                    .iter()
                    .find(|(k, _)| k.name == "id")
                    .and_then(|(_, v)| v.as_str().map(str::to_string)),
                _ => None,
            })
            .collect();
        let mut seen: HashMap<String, Pos> = HashMap::new();
        for item in items {
            let Some(t) = self.task(item, names, plan, errs) else {
                continue;
            };
            if let Some(first) = seen.get(&t.id) {
                errs.push(err(
                    t.pos,
                    format!(
                        "task id `{}` is used twice (first on line {})",
                        t.id, first.line
                    ),
                    "give each task its own id, e.g. `II.3` and `II.4`",
                ));
                continue;
            }
            seen.insert(t.id.clone(), t.pos);
            out.push(t);
        }
        // `after:` references need every id, so they are checked once all tasks are read.
        let ids: Vec<&str> = written_ids.iter().map(String::as_str).collect();
        // A set for the lookups: a list made this quadratic in the number of tasks.
        let known: HashSet<&str> = ids.iter().copied().collect();
        let mut bad = Vec::new();
        for t in &out {
            if let Rule::After { task, .. } = &t.deadline.rule
                && !known.contains(task.as_str())
            {
                bad.push(err(
                    t.pos,
                    format!("task {} waits for unknown task `{task}`", t.id),
                    suggest(task, ids.iter().copied()),
                ));
            }
        }
        errs.extend(bad);
        out
    }

    fn task(
        &self,
        node: &Node,
        names: &Names,
        plan: &PlanInfo,
        errs: &mut Vec<Diagnostic>,
    ) -> Option<Task> {
        let m = node.map("a task", TASK_KEYS, errs)?;
        m.check_unknown(errs);
        let id = m.req_text("id", errs)?;
        let id_pos = m.get("id").map(|n| n.pos).unwrap_or(node.pos);
        if id.is_empty() || id.contains(|c: char| c.is_whitespace() || c == ',') {
            errs.push(err(
                id_pos,
                format!("task id `{id}` has spaces or commas"),
                "write ids like `II.3`",
            ));
        }
        let what = format!("task {id}");
        let section = match m.opt_text("section", errs) {
            Some(s) => s,
            None => id.split('.').next().unwrap_or(&id).to_string(),
        };
        if !names.sections.is_empty() && !names.sections.contains_key(&section) {
            errs.push(err(
                m.key_pos("section").unwrap_or(id_pos),
                format!("{what}: unknown section `{section}`"),
                format!(
                    "{}; sections are listed under `sections:`",
                    suggest(&section, names.sections.keys().map(String::as_str))
                ),
            ));
        }
        let title = m.req_text("title", errs).unwrap_or_default();
        let deadline = match m.get("deadline") {
            Some(n) => self.deadline(n, &what, plan, errs),
            None => {
                errs.push(err(id_pos, format!("{what} has no `deadline`"), "add `deadline:` with the phrase from the plan's Tiến độ column, e.g. `deadline: Quý II/2024`"));
                None
            }
        };
        let lead = match m.get("lead") {
            Some(n) => names.expand(n, "lead", errs),
            None => {
                errs.push(err(
                    id_pos,
                    format!("{what} has no `lead` office"),
                    "add `lead:` with the office that chairs it (chủ trì), e.g. `lead: hctc`",
                ));
                vec![]
            }
        };
        let mut cooperating = m
            .get("cooperating")
            .map(|n| names.expand(n, "cooperating", errs))
            .unwrap_or_default();
        cooperating.retain(|o| !lead.contains(o));
        let done = match m.get("done") {
            None => Done::Open,
            Some(n) => match &n.value {
                Value::Null => Done::Open,
                Value::Map(entries) => {
                    let mut per = BTreeMap::new();
                    for (k, v) in entries {
                        if !lead.contains(&k.name) && !cooperating.contains(&k.name) {
                            errs.push(err(
                                k.pos,
                                format!("{what}: `{}` is not one of its offices", k.name),
                                suggest(&k.name, lead.iter().map(String::as_str)),
                            ));
                        }
                        if let Some(d) = parse_date(v, "`done`", errs) {
                            per.insert(k.name.clone(), d);
                        }
                    }
                    Done::PerOffice(per)
                }
                _ => parse_date(n, "`done`", errs)
                    .map(Done::All)
                    .unwrap_or_default(),
            },
        };
        let policy = match m.get("reminders") {
            None => "default".to_string(),
            Some(n) => {
                let p = n.text("`reminders`", errs).unwrap_or_default();
                if !names.policies.contains_key(&p) {
                    errs.push(err(
                        n.pos,
                        format!("unknown reminder policy `{p}`"),
                        suggest(&p, names.policies.keys().map(String::as_str)),
                    ));
                }
                p
            }
        };
        Some(Task {
            id: id.clone(),
            section,
            title,
            product: m.opt_text("product", errs),
            deadline: deadline?,
            lead,
            cooperating,
            done,
            policy,
            note: m.opt_text("note", errs),
            pos: id_pos,
        })
    }

    fn deadline(
        &self,
        node: &Node,
        what: &str,
        plan: &PlanInfo,
        errs: &mut Vec<Diagnostic>,
    ) -> Option<Deadline> {
        // The short form: only the phrase.
        if let Value::Scalar(phrase) = &node.value {
            let rule = match deadline::parse_phrase(phrase) {
                Ok(p) => self.phrase_rule(p, node.pos, what, plan, errs)?,
                Err(e) => {
                    errs.push(err(node.pos, format!("{what}: {}", e.message), e.hint));
                    return None;
                }
            };
            return Some(Deadline {
                phrase: phrase.clone(),
                rule,
            });
        }
        let m = node.map(&format!("the deadline of {what}"), DEADLINE_KEYS, errs)?;
        m.check_unknown(errs);
        let phrase_node = m.get("phrase");
        let phrase = m.req_text("phrase", errs)?;
        let parsed = match deadline::parse_phrase(&phrase) {
            Ok(p) => Some(p),
            Err(e) => {
                errs.push(err(
                    phrase_node.map(|n| n.pos).unwrap_or(m.pos),
                    format!("{what}: {}", e.message),
                    e.hint,
                ));
                None
            }
        };
        let explicit = ["date", "dates", "after", "every", "checkpoints"]
            .into_iter()
            .filter(|k| m.get(k).is_some())
            .collect::<Vec<_>>();
        if explicit.len() > 1 {
            errs.push(err(
                m.pos,
                format!(
                    "{what}: the deadline has both `{}` and `{}`",
                    explicit[0], explicit[1]
                ),
                "keep one way of giving the date",
            ));
            return None;
        }
        let rule = if let Some(n) = m.get("date") {
            Rule::Dates(vec![parse_date(n, "`date`", errs)?])
        } else if let Some(n) = m.get("dates") {
            let mut ds: Vec<NaiveDate> = match &n.value {
                Value::Seq(items) => items
                    .iter()
                    .filter_map(|i| parse_date(i, "a date in `dates`", errs))
                    .collect(),
                _ => {
                    errs.push(err(
                        n.pos,
                        "`dates` must be a list",
                        "write `dates: [2024-06-30, 2024-12-31]`",
                    ));
                    return None;
                }
            };
            ds.sort();
            ds.dedup();
            if ds.is_empty() {
                return None;
            }
            Rule::Dates(ds)
        } else if let Some(n) = m.get("after") {
            let task = n.text("`after`", errs)?;
            let days = m
                .get("days")
                .and_then(|n| parse_u32(n, "`days`", errs))
                .unwrap_or(0);
            if m.get("days").is_none() {
                errs.push(warn(
                    n.pos,
                    format!("{what} is due the same day `{task}` is done"),
                    "add `days: 30` (or another number) to give the office time after it",
                ));
            }
            if !matches!(parsed, Some(Phrase::AfterOther)) {
                errs.push(warn(
                    n.pos,
                    format!("{what} waits for `{task}` but its phrase `{phrase}` does not say so"),
                    "the plan usually writes `Sau khi …` for such tasks",
                ));
            }
            Rule::After { task, days }
        } else if let Some(n) = m.get("every") {
            let every = match n.text("`every`", errs)?.as_str() {
                "quarter" | "quy" | "quý" => Period::Quarter,
                "month" | "thang" | "tháng" => Period::Month,
                other => {
                    errs.push(err(
                        n.pos,
                        format!("unknown period `{other}`"),
                        "write `quarter` or `month`",
                    ));
                    return None;
                }
            };
            let day = match m.get("day") {
                None => DayOfMonth::Last,
                Some(d) if d.as_str() == Some("last") => DayOfMonth::Last,
                Some(d) => {
                    let v = parse_u32(d, "`day`", errs)?;
                    if !(1..=31).contains(&v) {
                        errs.push(err(
                            d.pos,
                            format!("day {v} is not a day of a month"),
                            "write 1 to 31, or `last`",
                        ));
                        return None;
                    }
                    DayOfMonth::Day(v)
                }
            };
            let month_of_quarter = m
                .get("month_of_quarter")
                .and_then(|n| {
                    let v = parse_u32(n, "`month_of_quarter`", errs)?;
                    if !(1..=3).contains(&v) {
                        errs.push(err(
                            n.pos,
                            "`month_of_quarter` must be 1, 2 or 3",
                            "3 is the quarter's last month",
                        ));
                    }
                    Some(v)
                })
                .unwrap_or(3);
            let working_days_after = m
                .get("working_days_after")
                .and_then(|n| parse_u32(n, "`working_days_after`", errs))
                .unwrap_or(0);
            let year = plan.year;
            let from = match m.get("from") {
                Some(n) => parse_date(n, "`from`", errs)?,
                None => match year {
                    Some(y) => NaiveDate::from_ymd_opt(y, 1, 1)?,
                    None => {
                        errs.push(err(n.pos, format!("{what}: a periodic deadline needs `from:` and `until:`, or `plan.year`"), "add `year: 2024` under `plan:`"));
                        return None;
                    }
                },
            };
            let until = match m.get("until") {
                Some(n) => parse_date(n, "`until`", errs)?,
                None => NaiveDate::from_ymd_opt(chrono::Datelike::year(&from), 12, 31)?,
            };
            if until < from {
                errs.push(err(
                    m.pos,
                    format!("{what}: `until` is before `from`"),
                    "swap them",
                ));
                return None;
            }
            Rule::Periodic(Periodic {
                every,
                day,
                month_of_quarter,
                working_days_after,
                from,
                until,
            })
        } else if let Some(n) = m.get("checkpoints") {
            let times = parse_u32(n, "`checkpoints`", errs)?;
            let year = match parsed {
                Some(Phrase::Date(d)) => chrono::Datelike::year(&d),
                Some(Phrase::Checkpoints { year: Some(y), .. }) => y,
                _ => match plan.year {
                    Some(y) => y,
                    None => {
                        errs.push(err(
                            n.pos,
                            format!("{what}: checkpoints need a year"),
                            "add `year: 2024` under `plan:`",
                        ));
                        return None;
                    }
                },
            };
            match deadline::checkpoints(times, year) {
                Some(ds) => Rule::Dates(ds),
                None => {
                    errs.push(err(
                        n.pos,
                        format!("{times} checkpoints cannot be spread evenly over 12 months"),
                        "use 1, 2, 3, 4, 6 or 12, or list them with `dates:`",
                    ));
                    return None;
                }
            }
        } else {
            for k in [
                "days",
                "day",
                "month_of_quarter",
                "working_days_after",
                "from",
                "until",
            ] {
                if let Some(p) = m.key_pos(k) {
                    errs.push(err(
                        p,
                        format!("`{k}` has no effect without `after:` or `every:`"),
                        "add the missing key or remove this one",
                    ));
                }
            }
            self.phrase_rule(
                parsed?,
                phrase_node.map(|n| n.pos).unwrap_or(m.pos),
                what,
                plan,
                errs,
            )?
        };
        Some(Deadline { phrase, rule })
    }

    fn phrase_rule(
        &self,
        p: Phrase,
        pos: Pos,
        what: &str,
        plan: &PlanInfo,
        errs: &mut Vec<Diagnostic>,
    ) -> Option<Rule> {
        Some(match p {
            Phrase::Date(d) => Rule::Dates(vec![d]),
            Phrase::Checkpoints { times, year } => {
                let Some(y) = year.or(plan.year) else {
                    errs.push(err(
                        pos,
                        format!("{what}: `N lần/năm` needs a year"),
                        "write `02 lần/năm 2024`, or add `year: 2024` under `plan:`",
                    ));
                    return None;
                };
                Rule::Dates(deadline::checkpoints(times, y)?)
            }
            Phrase::Ongoing => Rule::Unscheduled(Unscheduled::Ongoing),
            Phrase::SetByOthers => Rule::Unscheduled(Unscheduled::SetByOthers),
            Phrase::ByRegulation => Rule::Unscheduled(Unscheduled::ByRegulation),
            Phrase::AfterOther => {
                errs.push(err(pos, format!("{what}: the deadline waits for another task, but which one?"), "write the deadline as a block:\n      deadline:\n        phrase: Sau khi Đề án được phê duyệt\n        after: III.3\n        days: 30"));
                return None;
            }
        })
    }
}

fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    let fields = expr.split_whitespace().count();
    if fields != 5 {
        return Err(format!("it has {fields} fields, not 5"));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(&format!("0 {}", expr.trim()))
        .map_err(|e| e.to_string())
}

/// Whether a sweep ever runs inside the window (checked over one week of minutes-by-hour).
fn sweep_hits_window(cron: &croner::Cron, start: NaiveTime, end: NaiveTime) -> bool {
    use chrono::TimeZone;
    let Some(mut t) = chrono::Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single() else {
        return true;
    };
    for _ in 0..200 {
        match cron.find_next_occurrence(&t, false) {
            Ok(next) => {
                let time = next.time();
                if time >= start && time <= end {
                    return true;
                }
                t = next;
            }
            Err(_) => return false,
        }
    }
    false
}

fn check_id(id: &str, pos: Pos, what: &str, errs: &mut Vec<Diagnostic>) {
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        errs.push(err(
            pos,
            format!("the {what} id `{id}` may only use letters a–z, digits, `-`, `_` and `.`"),
            "ids are short codes without accents or spaces, e.g. `hctc`, `kinh-te`; the full Vietnamese name goes in `name:`",
        ));
    }
}

struct Names<'a> {
    offices: &'a HashMap<String, usize>,
    groups: &'a BTreeMap<String, Vec<String>>,
    policies: &'a BTreeMap<String, Policy>,
    sections: &'a BTreeMap<String, String>,
}

impl Names<'_> {
    /// Office ids and groups, groups expanded into their members, without repeats.
    fn expand(&self, node: &Node, key: &str, errs: &mut Vec<Diagnostic>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (id, p) in node.text_list(&format!("`{key}`"), errs) {
            if self.offices.contains_key(&id) {
                if !out.contains(&id) {
                    out.push(id);
                }
            } else if let Some(members) = self.groups.get(&id) {
                for mbr in members {
                    if !out.contains(mbr) {
                        out.push(mbr.clone());
                    }
                }
            } else {
                let all = self
                    .offices
                    .keys()
                    .map(String::as_str)
                    .chain(self.groups.keys().map(String::as_str));
                errs.push(err(
                    p,
                    format!("unknown office or group `{id}` in `{key}`"),
                    suggest(&id, all),
                ));
            }
        }
        out
    }
}

/// Dependency cycles (`A` after `B` after `A`) would leave every task in them waiting forever.
fn check_dependencies(tasks: &[Task], index: &HashMap<String, usize>, errs: &mut Vec<Diagnostic>) {
    let next = |i: usize| match &tasks[i].deadline.rule {
        Rule::After { task, .. } => index.get(task).copied(),
        _ => None,
    };
    let mut reported: BTreeSet<usize> = BTreeSet::new();
    for start in 0..tasks.len() {
        let mut path = vec![start];
        let mut cur = start;
        while let Some(n) = next(cur) {
            if let Some(at) = path.iter().position(|p| *p == n) {
                let cycle: Vec<usize> = path[at..].to_vec();
                if cycle.iter().all(|c| !reported.contains(c)) {
                    let names: Vec<&str> = cycle.iter().map(|c| tasks[*c].id.as_str()).collect();
                    errs.push(err(
                        tasks[cycle[0]].pos,
                        format!(
                            "tasks wait for each other in a circle: {} → {}",
                            names.join(" → "),
                            names[0]
                        ),
                        "one of them must have a date of its own: remove one `after:`",
                    ));
                    reported.extend(cycle);
                }
                break;
            }
            path.push(n);
            cur = n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn load_str(src: &str) -> Result<Loaded, Report> {
        from_source(src, Path::new("test.yaml"), &Env::default())
    }

    const MINIMAL: &str = "\
offices:
  hctc:
    name: Phòng Hành chính – Tổ chức
    email: hctc@vpubnd.example
  kt:
    name: Phòng Kinh tế
    email: [kt@vpubnd.example, kt2@vpubnd.example]
groups:
  cac-phong: [hctc, kt]
tasks:
  - id: I.2
    title: Chương trình PCI
    deadline: Quý II/2024
    lead: hctc
    cooperating: cac-phong
";

    #[test]
    fn minimal_config_loads_with_defaults() {
        let l = load_str(MINIMAL).unwrap_or_else(|r| panic!("{}", r.render()));
        let c = l.config;
        assert_eq!(c.tasks[0].lead, vec!["hctc"]);
        assert_eq!(
            c.tasks[0].cooperating,
            vec!["kt"],
            "the lead is not also cooperating"
        );
        assert_eq!(c.tasks[0].section, "I");
        assert_eq!(
            c.tasks[0].deadline.rule,
            Rule::Dates(vec!["2024-06-30".parse().unwrap()])
        );
        assert_eq!(c.office("kt").unwrap().emails.len(), 2);
        assert_eq!(c.schedule.timezone, chrono_tz::Asia::Ho_Chi_Minh);
        assert!(matches!(c.mail.transport, Transport::Outbox(ref p) if p.ends_with("outbox")));
        assert_eq!(c.policy("default"), &Policy::builtin());
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let src = MINIMAL
            .replace("lead: hctc", "lead: hctc2\n    deadlin: x")
            .replace("kt2@vpubnd.example", "kt2-at-vpubnd");
        let r = load_str(&src).unwrap_err();
        let text = r.render();
        assert!(r.error_count() >= 3, "{text}");
        assert!(text.contains("unknown office or group `hctc2`"), "{text}");
        assert!(text.contains("did you mean `hctc`?"), "{text}");
        assert!(text.contains("unknown key `deadlin`"), "{text}");
        assert!(text.contains("not a valid email address"), "{text}");
    }

    #[test]
    fn secrets_are_refused() {
        let src = format!(
            "{MINIMAL}mail:\n  transport:\n    smtp:\n      host: mail.example.org\n      password: hunter2\n"
        );
        let r = load_str(&src).unwrap_err();
        let text = r.render();
        assert!(
            text.contains("`password` puts a secret in the config file"),
            "{text}"
        );
    }

    #[test]
    fn dependency_cycles_are_found() {
        let src = format!(
            "{MINIMAL}  - id: A
    title: a
    deadline: {{phrase: Sau khi B, after: B, days: 3}}
    lead: hctc
  - id: B
    title: b
    deadline: {{phrase: Sau khi A, after: A, days: 3}}
    lead: hctc
"
        );
        let r = load_str(&src).unwrap_err();
        assert!(
            r.render().contains("in a circle: A → B → A"),
            "{}",
            r.render()
        );
    }

    #[test]
    fn bad_cron_and_window() {
        let src =
            format!("{MINIMAL}schedule:\n  sweeps: [\"0 25 * * *\"]\n  window: \"17:00-07:00\"\n");
        let r = load_str(&src).unwrap_err();
        let text = r.render();
        assert!(
            text.contains("the sweep time `0 25 * * *` cannot be read"),
            "{text}"
        );
        assert!(
            text.contains("the sending window `17:00-07:00` cannot be read"),
            "{text}"
        );
    }

    #[test]
    fn periodic_and_dependency_forms() {
        let src = format!(
            "plan:\n  year: 2024\n{MINIMAL}  - id: VII.5
    title: Báo cáo định kỳ
    deadline: {{phrase: Theo quy định, every: quarter, day: 14, working_days_after: 2}}
    lead: hctc
  - id: IV.2
    title: b
    deadline: {{phrase: Sau khi Đề án được phê duyệt, after: I.2, days: 30}}
    lead: hctc
  - id: I.3
    title: Đối thoại
    deadline: {{phrase: Trong năm 2024, checkpoints: 2}}
    lead: kt
"
        );
        let c = load_str(&src)
            .unwrap_or_else(|r| panic!("{}", r.render()))
            .config;
        assert!(matches!(
            c.task("VII.5").unwrap().deadline.rule,
            Rule::Periodic(_)
        ));
        assert_eq!(
            c.task("IV.2").unwrap().deadline.rule,
            Rule::After {
                task: "I.2".into(),
                days: 30
            }
        );
        assert_eq!(
            c.task("I.3").unwrap().deadline.rule,
            Rule::Dates(vec![
                "2024-06-30".parse().unwrap(),
                "2024-12-31".parse().unwrap()
            ])
        );
    }

    #[test]
    fn plaintext_smtp_needs_consent() {
        let src = format!(
            "{MINIMAL}mail:\n  transport:\n    smtp:\n      host: mail.example.org\n      security: none\n"
        );
        assert!(
            load_str(&src)
                .unwrap_err()
                .render()
                .contains("allow_plaintext")
        );
        let src = format!(
            "{MINIMAL}mail:\n  transport:\n    smtp:\n      host: 127.0.0.1\n      port: 2525\n      security: none\n      allow_plaintext: true\n"
        );
        let l = load_str(&src).unwrap_or_else(|r| panic!("{}", r.render()));
        assert_eq!(l.report.warning_count(), 0, "{}", l.report.render());
    }
}
