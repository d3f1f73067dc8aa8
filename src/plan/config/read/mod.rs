//! Reading the located YAML tree into a [`Config`], one file per top-level section; the
//! core here: the reader, the root, `plan`, `sections`, `offices`, `groups`, `calendar`
//! and `ledger`.

mod mail;
mod reminders;
mod schedule;
mod tasks;
pub(super) mod values;

use super::*;
use crate::plan::deadline::{self, Rule};
use crate::plan::diag::{Diagnostic, Pos, suggest};
use crate::plan::yaml::{Node, Value};
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use tasks::{Names, check_dependencies};
use values::*;

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
const LEDGER_KEYS: &[&str] = &["path"];
const CALENDAR_KEYS: &[&str] = &["days_off", "working_days"];
const SECRET_KEYS: &[&str] = &[
    "password", "pass", "passwd", "secret", "token", "api_key", "apikey", "mat_khau",
];

pub(super) struct Reader<'a> {
    pub(super) path: &'a Path,
    pub(super) env: &'a Env,
    pub(super) base: PathBuf,
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

impl Reader<'_> {
    fn resolve(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }

    pub(super) fn config(&self, root: &Node, errs: &mut Vec<Diagnostic>) -> Option<Config> {
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
