//! Reading the located YAML tree into a [`Config`], one file per top-level section; the
//! core here: the reader, the root, `plan`, `sections`, `offices`, `groups`, `calendar`
//! and `ledger`.

mod deadlines;
mod done;
mod ledger;
mod mail;
mod reminders;
mod schedule;
mod tasks;
#[cfg(test)]
pub(super) use tasks::dependency_cycles;
pub(super) mod values;
mod warnings;
mod web;

use super::*;
use crate::i18n::Lang;
use crate::plan::deadline;
use crate::plan::diag::{Diagnostic, Pos, sorted, suggest};
use crate::plan::yaml::{Key, MapReader, Node, Value};
use chrono::NaiveDate;
pub use done::occurrence_span;
use std::borrow::Cow;
use std::cell::RefCell;
// The reader's maps hash ids the admin wrote: FxHash, several times faster than SipHash on
// short keys, and HashDoS is no concern for a file the admin writes.
use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tasks::{Names, TaskList};
use values::*;

/// What an absent section reads as, for the sections that have defaults.
const EMPTY: Node = Node {
    value: Value::Null,
    pos: Pos {
        line: 0,
        column: 0,
        len: 0,
    },
};

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
    "web",
    "language",
];
const PLAN_KEYS: &[&str] = &["title", "reference", "year"];
const OFFICE_KEYS: &[&str] = &["name", "email", "head", "note", "placeholder"];
const LEDGER_KEYS: &[&str] = &[
    "path",
    "url",
    "password_file",
    "sslmode",
    "ca_file",
    "lease",
];
const CALENDAR_KEYS: &[&str] = &["days_off", "working_days"];
const SECRET_KEYS: &[&str] = &[
    "password", "pass", "passwd", "secret", "token", "api_key", "apikey", "mat_khau",
];

/// Reads the tree into a [`Config`], collecting every problem on the way: each section's
/// reader (in this folder's files) asks for keys through the methods below, which report
/// what is wrong into `diags` and hand back `None`, so nothing else threads a list of
/// diagnostics through its signature.
pub(super) struct Reader<'a> {
    pub(super) path: &'a Path,
    pub(super) env: &'a Env,
    pub(super) base: PathBuf,
    /// Every problem found so far, in the order found (the report sorts them).
    pub(super) diags: RefCell<Vec<Diagnostic>>,
    /// The deadline phrases read so far without a problem, and what they mean: a large
    /// plan writes the same few hundred phrases thousands of times.
    pub(super) phrases:
        RefCell<rustc_hash::FxHashMap<Box<str>, (crate::plan::deadline::Rule, bool)>>,
    /// The section and policy names given to tasks so far, one text each, shared.
    pub(super) names_given: RefCell<rustc_hash::FxHashSet<std::sync::Arc<str>>>,
}

/// At most this many section and policy names are shared between tasks.
const NAMES_SHARED: usize = 4096;

/// Reading keys and values: each reports its problem and returns `None`.
impl<'a> Reader<'a> {
    pub(super) fn new(path: &'a Path, env: &'a Env) -> Self {
        Self {
            path,
            env,
            base: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            diags: RefCell::new(Vec::new()),
            phrases: RefCell::default(),
            names_given: RefCell::default(),
        }
    }

    /// `name` as a text shared with every task given the same, for the first
    /// [`NAMES_SHARED`] names (a section per task id would be a name per task).
    fn shared_name(&self, name: &str) -> std::sync::Arc<str> {
        let mut given = self.names_given.borrow_mut();
        if let Some(n) = given.get(name) {
            return n.clone();
        }
        let n: std::sync::Arc<str> = name.into();
        if given.len() < NAMES_SHARED {
            given.insert(n.clone());
        }
        n
    }

    /// The diagnostics collected, for the report.
    pub(super) fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diags.into_inner()
    }

    fn report(&self, d: Diagnostic) {
        self.diags.borrow_mut().push(d);
    }

    fn error(&self, pos: Pos, msg: impl Into<String>, hint: impl Into<Cow<'static, str>>) {
        self.report(Diagnostic::error(Some(pos), msg).with_hint(hint));
    }

    fn warn(&self, pos: Pos, msg: impl Into<String>, hint: impl Into<Cow<'static, str>>) {
        self.report(Diagnostic::warning(Some(pos), msg).with_hint(hint));
    }

    fn has_errors(&self) -> bool {
        self.diags.borrow().iter().any(Diagnostic::is_error)
    }

    /// A block of `key: value` lines, its unknown keys reported.
    fn map<'n>(
        &self,
        node: &'n Node,
        what: &'n str,
        known: &'static [&'static str],
    ) -> Option<MapReader<'n>> {
        let m = node.map(what, known, &mut self.diags.borrow_mut())?;
        m.check_unknown(&mut self.diags.borrow_mut());
        Some(m)
    }

    /// A single value's text.
    fn text(&self, node: &Node, what: impl std::fmt::Display) -> Option<String> {
        node.text(what, &mut self.diags.borrow_mut())
    }

    /// One value or a list of values, each with its place.
    fn texts(&self, node: &Node, what: impl std::fmt::Display) -> Vec<(String, Pos)> {
        node.text_list(what, &mut self.diags.borrow_mut())
    }

    /// The text of `key`, reported when it is missing.
    fn req_text(&self, m: &MapReader, key: &str) -> Option<String> {
        m.req_text(key, &mut self.diags.borrow_mut())
    }

    /// The text of `key`; an empty `key:` counts as absent.
    fn opt_text(&self, m: &MapReader, key: &str) -> Option<String> {
        m.opt_text(key, &mut self.diags.borrow_mut())
    }

    /// Text already read, parsed as a `T`, its problem placed at `pos`.
    fn parse<T: FromNode>(&self, s: &str, pos: Pos, what: &str) -> Option<T> {
        T::from_text(s, what)
            .map_err(|p| self.error(pos, p.message, p.hint))
            .ok()
    }

    /// A single value, parsed as a `T`.
    fn value<T: FromNode>(&self, node: &Node, what: &str) -> Option<T> {
        let s = self.text(node, what)?;
        self.parse(&s, node.pos, what)
    }

    /// A single value parsed as a `T`, then `check`ed (a range, a limit): a check's problem
    /// is placed at the value too.
    fn checked<T: FromNode, U>(
        &self,
        node: &Node,
        what: &str,
        check: impl FnOnce(T) -> Result<U, Problem>,
    ) -> Option<U> {
        check(self.value(node, what)?)
            .map_err(|p| self.error(node.pos, p.message, p.hint))
            .ok()
    }

    /// The value of `key` as a `T`, if written (`None` when absent or wrong).
    fn opt<T: FromNode>(&self, m: &MapReader, key: &str) -> Option<T> {
        self.value(m.get(key)?, &format!("`{key}`"))
    }

    /// The value of `key` as a `T`, then `check`ed (see [`Self::checked`]).
    fn opt_checked<T: FromNode, U>(
        &self,
        m: &MapReader,
        key: &str,
        check: impl FnOnce(T) -> Result<U, Problem>,
    ) -> Option<U> {
        self.checked(m.get(key)?, &format!("`{key}`"), check)
    }

    /// One of a few named choices under `key`: an empty `key:` counts as absent, and a wrong
    /// choice is reported at the key.
    fn opt_choice<T: FromNode>(&self, m: &MapReader, key: &str) -> Option<T> {
        let s = self.opt_text(m, key)?;
        self.parse(&s, m.key_pos(key).unwrap_or(m.pos), &format!("`{key}`"))
    }
}

/// `fold(name)` is one of [`SECRET_KEYS`]. A plain ASCII name with no spaces folds to its
/// lowercase, so it is compared as it is: folding every key of a large plan allocated
/// several strings per key.
pub(crate) fn is_secret_key(name: &str) -> bool {
    // `char::is_whitespace` of an ASCII byte: tab to carriage return, and space.
    if name.is_ascii() && !name.bytes().any(|b| matches!(b, b'\t'..=b'\r' | b' ')) {
        return SECRET_KEYS.iter().any(|s| s.eq_ignore_ascii_case(name));
    }
    SECRET_KEYS.contains(&deadline::fold(name).as_str())
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

    /// The config of `root`, which is dropped as it is read (its tasks one by one).
    pub(super) fn config(&self, mut root: Node) -> Option<Config> {
        self.find_secrets(&root);
        let tasks_node = take_entry(&mut root, "tasks");
        let m = self.map(
            &root,
            crate::t!("tệp cấu hình", "the config file"),
            ROOT_KEYS,
        )?;
        let before = self.before(|key| m.get(key), m.pos);
        let leadership = m
            .get("leadership")
            .and_then(|n| self.leadership(n, &before.offices));
        let rest = self.rest(&m);
        let names = Names {
            offices: &before.office_index,
            groups: &before.groups,
            policies: &before.policies,
            sections: &before.sections,
        };
        let (tasks, task_index, done_written) = self.tasks(tasks_node, m.pos, &names, &before.plan);
        self.assemble(
            &m,
            before,
            leadership,
            rest,
            tasks,
            task_index,
            &done_written,
        )
    }

    /// The sections the tasks are read with, from the root's entries (`get`), whether the
    /// root is whole ([`Reader::config`]) or only its part before `tasks:` ([`Reader::stream_task`]).
    fn before<'n>(&self, get: impl Fn(&str) -> Option<&'n Node>, root: Pos) -> Before {
        let plan = get("plan").map(|n| self.plan(n)).unwrap_or_default();
        let sections = self.sections(get("sections"));
        let (offices, office_pos) = self.offices(get("offices"), root);
        let office_index = OfficeIds::new(&offices);
        let groups = self.groups(get("groups"), &office_index);
        let policies = self.policies(get("reminders"));
        Before {
            plan,
            sections,
            offices,
            office_pos,
            office_index,
            groups,
            policies,
        }
    }

    /// Takes an item of `tasks:` from the parser (see [`crate::plan::yaml::parse_streaming`])
    /// and reads it, the sections it is read with having been read at the first one. Hands
    /// it back, and every later one, when the root's `language:` comes before the tasks: it
    /// settles the messages' language, which is settled once the whole root is known.
    pub(super) fn stream_task(
        &self,
        s: &mut Streamed,
        root: Pos,
        written_before: &[(Key, Node)],
        item: Node,
    ) -> Option<Node> {
        if s.declined {
            return Some(item);
        }
        let (before, list) = match &mut s.read {
            Some((before, list)) => (&*before, list),
            None => {
                if written_before.iter().any(|(k, _)| k.name == "language") {
                    s.declined = true;
                    return Some(item);
                }
                self.find_secrets_in(written_before);
                let get = |key: &str| {
                    written_before
                        .iter()
                        .find(|(k, _)| k.name == key)
                        .map(|(_, v)| v)
                };
                let before = self.before(get, root);
                let list = TaskList::with_capacity(s.expected);
                let (before, list) = s.read.insert((before, list));
                (&*before, list)
            }
        };
        self.find_secrets(&item);
        let names = Names {
            offices: &before.office_index,
            groups: &before.groups,
            policies: &before.policies,
            sections: &before.sections,
        };
        self.task_item(list, item, &names, &before.plan);
        None
    }

    /// The config once the parser has read the whole file, its tasks through
    /// [`Self::stream_task`]: [`Finished::Tree`] when it took none (the tree is whole),
    /// [`Finished::Again`] when a section the tasks are read with comes after them.
    pub(super) fn config_streamed(&self, s: Streamed, root: Node) -> Finished {
        let Some((before, list)) = s.read else {
            return Finished::Tree(root);
        };
        let Value::Map(entries) = &root.value else {
            return Finished::Again;
        };
        let Some(at) = entries.iter().position(|(k, _)| k.name == "tasks") else {
            return Finished::Again;
        };
        let after = &entries[at + 1..];
        if after.iter().any(|(k, _)| BEFORE_TASKS.contains(&&*k.name)) {
            return Finished::Again;
        }
        // No `language:` before the tasks (see `stream_task`) nor after them.
        crate::i18n::settle(None);
        self.find_secrets_in(&entries[at..]);
        let Some(m) = self.map(
            &root,
            crate::t!("tệp cấu hình", "the config file"),
            ROOT_KEYS,
        ) else {
            return Finished::Read(None);
        };
        let leadership = m
            .get("leadership")
            .and_then(|n| self.leadership(n, &before.offices));
        let rest = self.rest(&m);
        let (tasks, task_index, done_written) = self.tasks_end(list);
        let config = self.assemble(
            &m,
            before,
            leadership,
            rest,
            tasks,
            task_index,
            &done_written,
        );
        Finished::Read(config.map(Box::new))
    }

    /// The sections read after `leadership` and before the tasks, in this order.
    fn rest(&self, m: &MapReader) -> Rest {
        Rest {
            calendar: self.calendar(m.get("calendar")),
            schedule: self.schedule(m.get("schedule")),
            mail: self.mail(m.get("mail")),
            ledger: self.ledger(m.get("ledger")),
            web: self.web(m.get("web")),
            language: m.get("language").and_then(|n| self.language(n)),
        }
    }

    /// The checks across sections, then the config.
    #[allow(clippy::too_many_arguments)]
    fn assemble(
        &self,
        m: &MapReader,
        before: Before,
        leadership: Option<String>,
        rest: Rest,
        tasks: Vec<Task>,
        task_index: HashMap<String, usize>,
        done_written: &[warnings::DoneWritten],
    ) -> Option<Config> {
        let Before {
            plan,
            sections,
            offices,
            office_pos,
            office_index,
            groups,
            policies,
        } = before;
        let Rest {
            calendar,
            schedule,
            mail,
            ledger,
            web,
            language,
        } = rest;
        self.check_dependencies(&tasks, &task_index);
        self.check_leads_and_years(&tasks, &offices, &office_pos, &plan);
        self.check_notices(m, &plan, &tasks, &calendar);
        self.check_roles_and_done(
            done_written,
            &offices,
            &office_index,
            &office_pos,
            &policies,
            &tasks,
            &plan,
        );
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
            web,
            language,
        })
    }

    /// `leadership:`, an office that exists (warned about when nobody can email it).
    fn leadership(&self, n: &Node, offices: &[Office]) -> Option<String> {
        let id = self.text(n, "`leadership`")?;
        match offices.iter().find(|o| o.id == id) {
            Some(o) if o.emails.is_empty() => {
                self.warn(
                    n.pos,
                    crate::tr!(
                        "đơn vị lãnh đạo `{id}` không có địa chỉ email",
                        "the leadership office `{id}` has no email address"
                    ),
                    crate::tr!(
                        "thêm `email:` cho nó để việc báo lên lãnh đạo đến được nơi",
                        "give it an `email:` so that escalations reach the leadership"
                    ),
                );
                Some(id)
            }
            Some(_) => Some(id),
            None => {
                self.error(
                    n.pos,
                    crate::tr!(
                        "không có đơn vị `{id}` (ở `leadership`)",
                        "unknown office `{id}` as `leadership`"
                    ),
                    suggest(&id, offices.iter().map(|o| o.id.as_str())),
                );
                None
            }
        }
    }

    /// `language: vi|en`: the language of messages and the journal when neither `--lang` nor
    /// the environment chooses one.
    fn language(&self, node: &Node) -> Option<Lang> {
        let s = self.text(node, "`language`")?;
        let lang = match s.trim() {
            "vi" => Some(Lang::Vi),
            "en" => Some(Lang::En),
            _ => None,
        };
        if lang.is_none() {
            self.error(
                node.pos,
                crate::tr!("ngôn ngữ `{s}` không có", "there is no language `{s}`"),
                crate::tr!(
                    "viết `vi` (tiếng Việt) hoặc `en` (tiếng Anh)",
                    "write `vi` (Vietnamese) or `en` (English)"
                ),
            );
        }
        lang
    }

    fn plan(&self, node: &Node) -> PlanInfo {
        let Some(m) = self.map(node, "`plan`", PLAN_KEYS) else {
            return PlanInfo::default();
        };
        let year = self.opt_checked(&m, "year", |y: u32| match y {
            1900..=2100 => Ok(y as i32),
            _ => Err(Problem::new(
                crate::tr!(
                    "năm {y} nằm ngoài khoảng cho phép",
                    "year {y} is out of range"
                ),
                crate::tr!(
                    "viết một năm từ 1900 đến 2100",
                    "write a year between 1900 and 2100"
                ),
            )),
        });
        PlanInfo {
            title: self.opt_text(&m, "title").unwrap_or_default(),
            reference: self.opt_text(&m, "reference").unwrap_or_default(),
            year,
        }
    }

    fn sections(&self, node: Option<&Node>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(node) = node else { return out };
        let Value::Map(entries) = &node.value else {
            self.error(
                node.pos,
                crate::tr!(
                    "`sections` phải là một khối các dòng `MÃ: tên`",
                    "`sections` must be a block of `ID: name` lines"
                ),
                crate::tr!(
                    "ví dụ `II: Cải cách thủ tục hành chính`",
                    "e.g. `II: Cải cách thủ tục hành chính`"
                ),
            );
            return out;
        };
        for (k, v) in entries {
            if let Some(name) = self.text(v, &crate::tr!("phần `{}`", "section `{}`", k.name)) {
                out.insert(k.name.to_string(), name);
            }
        }
        out
    }

    fn offices(&self, node: Option<&Node>, root: Pos) -> (Vec<Office>, HashMap<String, Pos>) {
        let mut out = Vec::new();
        let mut pos = HashMap::default();
        let Some(node) = node else {
            self.report(
                Diagnostic::error(
                    Some(root),
                    crate::tr!(
                        "cấu hình thiếu mục `offices:`",
                        "the config has no `offices:` section"
                    ),
                )
                .with_hint(crate::tr!(
                    "thêm `offices:`, mỗi đơn vị một khối: mã, rồi `name:` và `email:`",
                    "add `offices:` with one block per office: id, then `name:` and `email:`"
                )),
            );
            return (out, pos);
        };
        let Value::Map(entries) = &node.value else {
            self.error(node.pos, crate::tr!("`offices` phải là một khối các đơn vị, mỗi dòng một mã", "`offices` must be a block of offices, one id per line"), crate::tr!("ví dụ:\noffices:\n  hctc:\n    name: Phòng Hành chính – Tổ chức\n    email: hctc@vpubnd.example", "e.g.\noffices:\n  hctc:\n    name: Phòng Hành chính – Tổ chức\n    email: hctc@vpubnd.example"));
            return (out, pos);
        };
        for (k, v) in entries {
            self.check_id(&k.name, k.pos, crate::t!("đơn vị", "office"));
            let what = crate::tr!("đơn vị `{}`", "office `{}`", k.name);
            let Some(m) = self.map(v, &what, OFFICE_KEYS) else {
                continue;
            };
            let name = self.req_text(&m, "name").unwrap_or_default();
            let emails = m
                .get("email")
                .map(|n| self.texts(n, "`email`"))
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(s, p)| self.parse::<Address>(&s, p, "email").map(|a| a.0))
                .collect();
            let head = m.get("head").and_then(|n| {
                let s = self.text(n, "`head`")?;
                self.parse::<Address>(&s, n.pos, "head").map(|a| a.0)
            });
            pos.insert(k.name.to_string(), k.pos);
            out.push(Office {
                id: k.name.to_string(),
                name,
                emails,
                head,
                note: self.opt_text(&m, "note"),
                placeholder: self.opt::<bool>(&m, "placeholder").unwrap_or(false),
            });
        }
        (out, pos)
    }

    fn groups(&self, node: Option<&Node>, offices: &OfficeIds) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        let Some(node) = node else { return out };
        let Value::Map(entries) = &node.value else {
            self.error(
                node.pos,
                crate::tr!(
                    "`groups` phải là một khối các dòng `mã-nhóm: [đơn-vị, đơn-vị]`",
                    "`groups` must be a block of `group-id: [office, office]` lines"
                ),
                crate::tr!(
                    "ví dụ `cac-phong: [hctc, kstthc, kinh-te]`",
                    "e.g. `cac-phong: [hctc, kstthc, kinh-te]`"
                ),
            );
            return out;
        };
        for (k, v) in entries {
            self.check_id(&k.name, k.pos, crate::t!("nhóm", "group"));
            if offices.get(k.name.as_ref()).is_some() {
                self.error(
                    k.pos,
                    crate::tr!(
                        "`{}` vừa là đơn vị vừa là nhóm",
                        "`{}` is both an office and a group",
                        k.name
                    ),
                    crate::tr!(
                        "đổi tên nhóm, ví dụ `cac-…`",
                        "rename the group, e.g. `cac-…`"
                    ),
                );
            }
            let mut members = Vec::new();
            for (id, p) in self.texts(v, &crate::tr!("nhóm `{}`", "group `{}`", k.name)) {
                if offices.get(&id).is_some() {
                    if !members.contains(&id) {
                        members.push(id);
                    }
                } else {
                    self.error(
                        p,
                        crate::tr!(
                            "không có đơn vị `{id}` (trong nhóm `{}`)",
                            "unknown office `{id}` in group `{}`",
                            k.name
                        ),
                        suggest(&id, sorted(offices.ids())),
                    );
                }
            }
            if members.is_empty() {
                self.warn(
                    k.pos,
                    crate::tr!(
                        "nhóm `{}` không có đơn vị nào",
                        "group `{}` has no offices",
                        k.name
                    ),
                    crate::tr!(
                        "liệt kê các đơn vị của nhóm, ví dụ `[hctc, kinh-te]`",
                        "list its offices, e.g. `[hctc, kinh-te]`"
                    ),
                );
            }
            out.insert(k.name.to_string(), members);
        }
        out
    }

    fn calendar(&self, node: Option<&Node>) -> CalendarConfig {
        let mut out = CalendarConfig::default();
        let Some(node) = node else { return out };
        let Some(m) = self.map(node, "`calendar`", CALENDAR_KEYS) else {
            return out;
        };
        let read = |key: &str, target: &mut Vec<(NaiveDate, String)>| {
            let Some(n) = m.get(key) else { return };
            let Value::Map(entries) = &n.value else {
                self.error(
                    n.pos,
                    crate::tr!(
                        "`{key}` phải là một khối các dòng `ngày: lý do`",
                        "`{key}` must be a block of `date: reason` lines"
                    ),
                    crate::tr!(
                        "ví dụ `2027-02-05: Tết Nguyên đán (theo Thông báo số …)`",
                        "e.g. `2027-02-05: Tết Nguyên đán (theo Thông báo số …)`"
                    ),
                );
                return;
            };
            for (k, v) in entries {
                let key_node = Node {
                    value: Value::Scalar(k.name.as_ref().into()),
                    pos: k.pos,
                };
                if let Some(d) =
                    self.value::<NaiveDate>(&key_node, crate::t!("một ngày lịch", "a calendar day"))
                {
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

    fn ledger(&self, node: Option<&Node>) -> LedgerConfig {
        let default = LedgerConfig {
            path: self.state_path("nhacviec.db"),
            postgres: None,
        };
        let Some(node) = node else { return default };
        let Some(m) = self.map(node, "`ledger`", LEDGER_KEYS) else {
            return default;
        };
        let postgres = self.postgres_ledger(&m);
        match self.opt_text(&m, "path") {
            Some(p) => LedgerConfig {
                path: self.resolve(&p),
                postgres,
            },
            None => LedgerConfig {
                postgres,
                ..default
            },
        }
    }
}

/// The sections the tasks are read with. When one of them (or `language:`) is written
/// after `tasks:`, a plan whose tasks were read as parsed is read again from its whole tree.
const BEFORE_TASKS: &[&str] = &[
    "plan",
    "sections",
    "offices",
    "groups",
    "reminders",
    "language",
];

/// What the tasks are read with: the sections read before them.
pub(super) struct Before {
    plan: PlanInfo,
    sections: BTreeMap<String, String>,
    offices: Vec<Office>,
    office_pos: HashMap<String, Pos>,
    office_index: OfficeIds,
    groups: BTreeMap<String, Vec<String>>,
    policies: BTreeMap<String, Policy>,
}

/// The sections read after them.
struct Rest {
    calendar: CalendarConfig,
    schedule: Option<Schedule>,
    mail: Option<Mail>,
    ledger: LedgerConfig,
    web: WebConfig,
    language: Option<Lang>,
}

/// A plan being read as it is parsed (see [`Reader::stream_task`]).
#[derive(Default)]
pub(in crate::plan::config) struct Streamed {
    /// Set at the first task.
    read: Option<(Before, TaskList)>,
    /// The tasks are left in the tree.
    declined: bool,
    /// About how many tasks the file holds, by its size: the task list and the index of
    /// ids are made that large at once instead of grown by doubling (rehashing every id).
    expected: usize,
}

impl Streamed {
    /// For a file of `bytes` bytes: a task takes at least a few lines, and a large plan's
    /// about 230 bytes a task; at most a million expected.
    pub(in crate::plan::config) fn for_size(bytes: usize) -> Self {
        Self {
            read: None,
            declined: false,
            expected: (bytes / 256).min(1 << 20),
        }
    }
}

/// How a plan read as it is parsed ends (see [`Reader::config_streamed`]).
pub(in crate::plan::config) enum Finished {
    Read(Option<Box<Config>>),
    /// No task was taken: read the tree as usual.
    Tree(Node),
    /// Read the file again, whole.
    Again,
}

/// The value of the root's `key`, taken out of the tree (an empty value left in its place).
fn take_entry(root: &mut Node, key: &str) -> Option<Node> {
    let Value::Map(entries) = &mut root.value else {
        return None;
    };
    let (_, v) = entries.iter_mut().find(|(k, _)| k.name == key)?;
    let pos = v.pos;
    Some(std::mem::replace(
        v,
        Node {
            value: Value::Null,
            pos,
        },
    ))
}

impl Reader<'_> {
    /// Secrets must never be written in the YAML: every key that looks like one, wherever it
    /// is, is reported before anything else reads the tree.
    fn find_secrets(&self, node: &Node) {
        match &node.value {
            Value::Map(entries) => self.find_secrets_in(entries),
            Value::Seq(items) => items.iter().for_each(|i| self.find_secrets(i)),
            _ => {}
        }
    }

    /// [`Self::find_secrets`] of a mapping's entries.
    fn find_secrets_in(&self, entries: &[(Key, Node)]) {
        for (k, v) in entries {
            if is_secret_key(&k.name) {
                self.error(
                            k.pos,
                            crate::tr!("`{}` đưa một bí mật vào tệp cấu hình", "`{}` puts a secret in the config file", k.name),
                            crate::tr!("đừng bao giờ viết mật khẩu ở đây: xóa dòng này và dùng `password_file:`, `password_credential:` (systemd LoadCredential) hoặc `password_env:`", "never write a password here: delete this line and use `password_file:`, `password_credential:` (systemd LoadCredential) or `password_env:`"),
                        );
            }
            self.find_secrets(v);
        }
    }

    fn check_id(&self, id: &str, pos: Pos, what: &str) {
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            self.error(
                pos,
                crate::tr!("mã {what} `{id}` chỉ được dùng chữ a–z, chữ số, `-`, `_` và `.`", "the {what} id `{id}` may only use letters a–z, digits, `-`, `_` and `.`"),
                crate::tr!("mã là chuỗi ngắn không dấu, không dấu cách, ví dụ `hctc`, `kinh-te`; tên tiếng Việt đầy đủ viết ở `name:`", "ids are short codes without accents or spaces, e.g. `hctc`, `kinh-te`; the full Vietnamese name goes in `name:`"),
            );
        }
    }
}

#[cfg(test)]
mod secret_key_tests {
    use super::*;

    /// The ASCII shortcut says what folding says, for names around every ASCII character
    /// (the whitespace ones fold away, the others do not).
    #[test]
    fn the_ascii_shortcut_says_what_folding_says() {
        let mut names: Vec<String> = [
            "Password",
            "API_KEY",
            "mat_khau",
            "Mật khẩu",
            "pass",
            "tokens",
        ]
        .map(String::from)
        .to_vec();
        for c in (0u8..128).map(char::from) {
            for s in SECRET_KEYS {
                names.push(format!("{c}{s}"));
                names.push(format!("{s}{c}"));
                names.push(format!("{}{c}{}", &s[..2], &s[2..]));
            }
        }
        for n in &names {
            assert_eq!(
                is_secret_key(n),
                SECRET_KEYS.contains(&deadline::fold(n).as_str()),
                "{n:?}"
            );
        }
    }
}
