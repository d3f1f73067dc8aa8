//! `tasks:`: each task, its offices and policy, and the checks across tasks (duplicate ids,
//! unknown and circular `after:`). Its `deadline:` is read in `deadlines`, its `done:` in
//! `done`.

use super::warnings::DoneWritten;
use super::*;
use crate::plan::deadline::Rule;
use crate::plan::diag::{Diagnostic, Pos, sorted, suggest};
use crate::plan::yaml::{MapReader, Node, Value};
use chrono::NaiveDate;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How many years from the plan's year a date in it may be.
const YEAR_SPAN: u32 = 5;

const TASK_KEYS: &[&str] = &[
    "id",
    "section",
    "title",
    "product",
    "deadline",
    "lead",
    "cooperating",
    "report_to",
    "done",
    "reminders",
    "note",
];
impl Reader<'_> {
    /// The tasks, each id's place among them, and what they write under `done:` when
    /// `check` asks for its warnings. Each task's node is dropped once read: most of a
    /// large plan's tree is its tasks.
    pub(super) fn tasks(
        &self,
        node: Option<Node>,
        root: Pos,
        names: &Names,
        plan: &PlanInfo,
    ) -> (Vec<Task>, HashMap<String, usize>, Vec<DoneWritten>) {
        let (out, done_written) = (Vec::new(), Vec::new());
        let Some(node) = node else {
            self.report(
                Diagnostic::error(
                    Some(root),
                    crate::tr!(
                        "cấu hình thiếu mục `tasks:`",
                        "the config has no `tasks:` section"
                    ),
                )
                .with_hint(crate::tr!(
                    "thêm `tasks:`, mỗi nhiệm vụ một khối `- id: …`",
                    "add `tasks:` with one `- id: …` block per task"
                )),
            );
            return (out, HashMap::default(), done_written);
        };
        let Value::Seq(items) = node.value else {
            self.error(
                node.pos,
                crate::tr!(
                    "`tasks` phải là một danh sách: mỗi nhiệm vụ bắt đầu bằng `- id:`",
                    "`tasks` must be a list: each task starts with `- id:`"
                ),
                crate::tr!(
                    "ví dụ:\ntasks:\n  - id: II.3\n    title: …",
                    "e.g.\ntasks:\n  - id: II.3\n    title: …"
                ),
            );
            return (out, HashMap::default(), done_written);
        };
        let mut list = TaskList::with_capacity(items.len());
        for item in items.into_vec() {
            self.task_item(&mut list, item, names, plan);
        }
        self.tasks_end(list)
    }

    /// Reads one item of `tasks:` into `list` (and drops it).
    pub(super) fn task_item(
        &self,
        list: &mut TaskList,
        item: Node,
        names: &Names,
        plan: &PlanInfo,
    ) {
        let at = list.items;
        list.items += 1;
        if self.env.today.is_some() {
            list.done_written.extend(DoneWritten::of(&item));
        }
        if self.task(list, at, &item, names, plan).is_none()
            && let Some(id) = written_id(&item)
        {
            list.others.push((at, Err(id.to_string())));
        }
    }

    /// The tasks read, once every item is: `after:` references need every id.
    pub(super) fn tasks_end(
        &self,
        list: TaskList,
    ) -> (Vec<Task>, HashMap<String, usize>, Vec<DoneWritten>) {
        let TaskList {
            mut out,
            seen,
            done_written,
            read_at,
            others,
            ..
        } = list;
        let unread: HashSet<&str> = others
            .iter()
            .filter_map(|(_, id)| id.as_ref().err().map(String::as_str))
            .collect();
        for t in &out {
            if let Rule::After { task, .. } = &t.deadline.rule
                && !seen.contains_key(task)
                && !unread.contains(task.as_str())
            {
                // Every id as written, in file order, for the suggestion.
                let mut ids: Vec<(u32, &str)> = read_at
                    .iter()
                    .zip(&out)
                    .map(|(&at, t)| (at, t.id.as_str()))
                    .chain(others.iter().map(|(at, id)| {
                        let id = match id {
                            Ok(i) => out[*i].id.as_str(),
                            Err(id) => id.as_str(),
                        };
                        (*at, id)
                    }))
                    .collect();
                ids.sort_unstable_by_key(|(at, _)| *at);
                self.error(
                    t.pos,
                    crate::tr!(
                        "nhiệm vụ {} chờ một nhiệm vụ không có: `{task}`",
                        "task {} waits for unknown task `{task}`",
                        t.id
                    ),
                    suggest(task, ids.iter().map(|(_, id)| *id)),
                );
            }
        }
        // Read as parsed, the tasks came in a list grown by doubling.
        out.shrink_to_fit();
        (out, seen, done_written)
    }

    /// Reads the task at item `at` of `tasks:` into `list`: `None` when it cannot be read.
    /// A repeated id is reported here, and the task built in `list` in place: it is large,
    /// and a large plan has many.
    fn task(
        &self,
        list: &mut TaskList,
        at: u32,
        node: &Node,
        names: &Names,
        plan: &PlanInfo,
    ) -> Option<()> {
        let m = self.map(node, crate::t!("một nhiệm vụ", "a task"), TASK_KEYS)?;
        let id = self.req_text(&m, "id")?;
        let id_pos = m.get("id").map(|n| n.pos).unwrap_or(node.pos);
        if id.is_empty() || id.contains(|c: char| c.is_whitespace() || c == ',') {
            self.error(
                id_pos,
                crate::tr!(
                    "mã nhiệm vụ `{id}` có dấu cách hoặc dấu phẩy",
                    "task id `{id}` has spaces or commas"
                ),
                crate::tr!("viết mã dạng `II.3`", "write ids like `II.3`"),
            );
        }
        // "nhiệm vụ II.3", written into the text of the task before: no string made for
        // each task of a large plan, most of which have nothing to report.
        let mut what = list.what.take().unwrap_or_default();
        what.clear();
        what.push_str(crate::t!("nhiệm vụ ", "task "));
        what.push_str(&id);
        let section = self.task_section(&m, &id, id_pos, &what, names);
        let title = self.req_text(&m, "title").unwrap_or_default();
        let deadline = self.task_deadline(&m, id_pos, &what, plan);
        let lead = self.task_lead(&m, id_pos, &what, names);
        let mut cooperating = m
            .get("cooperating")
            .map(|n| self.expand(names, n, "cooperating"))
            .unwrap_or_default();
        cooperating.retain(|o| !lead.contains(o));
        let mut report_to = m
            .get("report_to")
            .map(|n| self.expand(names, n, "report_to"))
            .unwrap_or_default();
        report_to.retain(|o| !lead.contains(o) && !cooperating.contains(o));
        // `lead: [kstthc, hctc]` shares the lead; `lead: cac-trung-tam` gives each member
        // its own share.
        let shared_lead = lead.len() > 1
            && m.get("lead")
                .is_some_and(|n| matches!(&n.value, Value::Seq(items) if items.len() > 1));
        let done = match m.get("done") {
            None => Done::Open,
            Some(n) => self.done(n, &what, &lead, &cooperating, plan),
        };
        list.what = Some(what);
        let policy = self.task_policy(&m, names);
        // Read in the order the fields were always read: `product:`, then no further
        // without a deadline.
        let product = self.opt_text(&m, "product");
        let deadline = deadline?;
        let note = self.opt_text(&m, "note");
        if let Some(&i) = list.seen.get(&id) {
            self.error(
                id_pos,
                crate::tr!(
                    "mã nhiệm vụ `{}` bị dùng hai lần (lần đầu ở dòng {})",
                    "task id `{}` is used twice (first on line {})",
                    id,
                    list.out[i].pos.line
                ),
                crate::tr!(
                    "cho mỗi nhiệm vụ một mã riêng, ví dụ `II.3` và `II.4`",
                    "give each task its own id, e.g. `II.3` and `II.4`"
                ),
            );
            list.others.push((at, Ok(i)));
            return Some(());
        }
        list.seen.insert(id.clone(), list.out.len());
        list.read_at.push(at);
        list.out.push(Task {
            id,
            section,
            title,
            product,
            deadline,
            lead,
            cooperating,
            report_to,
            shared_lead,
            done,
            policy,
            note,
            pos: id_pos,
        });
        Some(())
    }

    /// A task's `section:`, by default its id's first part (`II` of `II.3`).
    fn task_section(
        &self,
        m: &MapReader,
        id: &str,
        id_pos: Pos,
        what: &str,
        names: &Names,
    ) -> Arc<str> {
        // Read in place; what is not a single value is reported (`opt_text`), and the id's
        // first part taken instead.
        let written = m.get("section").filter(|n| !matches!(n.value, Value::Null));
        let section = match written.and_then(Node::as_str) {
            Some(s) => self.shared_name(s),
            None => {
                if written.is_some() {
                    let _ = self.opt_text(m, "section");
                }
                self.shared_name(id.split('.').next().unwrap_or(id))
            }
        };
        if !names.sections.is_empty() && !names.sections.contains_key(&*section) {
            self.error(
                m.key_pos("section").unwrap_or(id_pos),
                crate::tr!(
                    "{what}: không có phần `{section}`",
                    "{what}: unknown section `{section}`"
                ),
                crate::tr!(
                    "{}; các phần được liệt kê ở `sections:`",
                    "{}; sections are listed under `sections:`",
                    suggest(&section, sorted(names.sections.keys().map(String::as_str)))
                ),
            );
        }
        section
    }

    /// A task's `deadline:`, which it must have, with its dates' years checked.
    fn task_deadline(
        &self,
        m: &MapReader,
        id_pos: Pos,
        what: &str,
        plan: &PlanInfo,
    ) -> Option<Deadline> {
        match m.get("deadline") {
            Some(n) => {
                let d = self.deadline(n, what, plan);
                if let Some(Deadline {
                    rule: Rule::Dates(ds),
                    ..
                }) = &d
                {
                    // One error per deadline is enough: the first implausible year.
                    let _ = ds
                        .iter()
                        .all(|d| self.plausible_year(*d, plan, n.pos, what));
                }
                d
            }
            None => {
                self.error(id_pos, crate::tr!("{what} thiếu `deadline`", "{what} has no `deadline`"), "add `deadline:` with the phrase from the plan's Tiến độ column, e.g. `deadline: Quý II/2024`");
                None
            }
        }
    }

    /// A task's `lead:` offices, which it must have.
    fn task_lead(&self, m: &MapReader, id_pos: Pos, what: &str, names: &Names) -> Vec<String> {
        match m.get("lead") {
            Some(n) => self.expand(names, n, "lead"),
            None => {
                self.error(
                    id_pos,
                    crate::tr!(
                        "{what} thiếu đơn vị chủ trì `lead`",
                        "{what} has no `lead` office"
                    ),
                    crate::tr!(
                        "thêm `lead:` với đơn vị chủ trì, ví dụ `lead: hctc`",
                        "add `lead:` with the office that chairs it (chủ trì), e.g. `lead: hctc`"
                    ),
                );
                vec![]
            }
        }
    }

    /// A task's `reminders:` policy, `default` when it names none.
    fn task_policy(&self, m: &MapReader, names: &Names) -> Arc<str> {
        match m.get("reminders") {
            None => self.shared_name("default"),
            Some(n) => {
                let p = match n.as_str() {
                    Some(p) => self.shared_name(p),
                    // Not a single value: reported.
                    None => self.shared_name(&self.text(n, "`reminders`").unwrap_or_default()),
                };
                if !names.policies.contains_key(&*p) {
                    self.error(
                        n.pos,
                        crate::tr!(
                            "không có chính sách nhắc `{p}`",
                            "unknown reminder policy `{p}`"
                        ),
                        suggest(&p, sorted(names.policies.keys().map(String::as_str))),
                    );
                }
                p
            }
        }
    }

    /// Office ids and groups, groups expanded into their members, without repeats.
    fn expand(&self, names: &Names, node: &Node, key: &str) -> Vec<String> {
        // Room for the ids written: a list grown from empty takes room for four (96 bytes)
        // for the single office most tasks name.
        let mut out: Vec<String> = Vec::with_capacity(match &node.value {
            Value::Scalar(_) => 1,
            Value::Seq(items) => items.len(),
            _ => 0,
        });
        let mut one = |id: &str, p: Pos| {
            if names.offices.get(id).is_some() {
                if !out.iter().any(|o| o == id) {
                    out.push(id.to_string());
                }
            } else if let Some(members) = names.groups.get(id) {
                if out.is_empty() {
                    // A group's members are already without repeats.
                    out.extend(members.iter().cloned());
                } else {
                    for mbr in members {
                        if !out.contains(mbr) {
                            out.push(mbr.clone());
                        }
                    }
                }
            } else {
                let all = names
                    .offices
                    .ids()
                    .chain(names.groups.keys().map(String::as_str));
                self.error(
                    p,
                    crate::tr!(
                        "không có đơn vị hay nhóm `{id}` (ở `{key}`)",
                        "unknown office or group `{id}` in `{key}`"
                    ),
                    suggest(id, sorted(all)),
                );
            }
        };
        // A single id or a list of ids, read in place; anything else through `texts`,
        // which reports it.
        match &node.value {
            Value::Scalar(id) => one(id, node.pos),
            Value::Seq(items) if items.iter().all(|i| i.as_str().is_some()) => {
                for i in items {
                    one(i.as_str().unwrap_or_default(), i.pos);
                }
            }
            _ => {
                for (id, p) in self.texts(node, format_args!("`{key}`")) {
                    one(&id, p);
                }
            }
        }
        out.shrink_to_fit();
        out
    }

    /// Dependency cycles (`A` after `B` after `A`) would leave every task in them waiting
    /// forever.
    pub(super) fn check_dependencies(&self, tasks: &[Task], index: &HashMap<String, usize>) {
        let next = |i: usize| match &tasks[i].deadline.rule {
            Rule::After { task, .. } => index.get(task).copied(),
            _ => None,
        };
        for cycle in dependency_cycles(tasks.len(), next) {
            let names: Vec<&str> = cycle.iter().map(|c| tasks[*c].id.as_str()).collect();
            self.error(
                tasks[cycle[0]].pos,
                crate::tr!(
                    "các nhiệm vụ chờ nhau thành vòng: {} → {}",
                    "tasks wait for each other in a circle: {} → {}",
                    names.join(" → "),
                    names[0]
                ),
                crate::tr!(
                    "một trong số đó phải có ngày riêng: bỏ một `after:`",
                    "one of them must have a date of its own: remove one `after:`"
                ),
            );
        }
    }

    /// `d`'s year is within [`YEAR_SPAN`] years of the plan's year (or there is no plan
    /// year); otherwise an error at `pos` names the year: `30/01/1024` is a typo for 2024,
    /// and no plan runs for decades.
    pub(super) fn plausible_year(
        &self,
        d: NaiveDate,
        plan: &PlanInfo,
        pos: Pos,
        what: &str,
    ) -> bool {
        let Some(py) = plan.year else { return true };
        let y = chrono::Datelike::year(&d);
        if y.abs_diff(py) <= YEAR_SPAN {
            return true;
        }
        self.error(
            pos,
            crate::tr!(
                "{what}: năm {y} cách năm của kế hoạch {py} hơn {YEAR_SPAN} năm",
                "{what}: the year {y} is more than {YEAR_SPAN} years from the plan's year {py}"
            ),
            crate::tr!(
                "có phải ý bạn là {py}? viết ví dụ `{:02}/{:02}/{py}`",
                "did you mean {py}? write e.g. `{:02}/{:02}/{py}`",
                chrono::Datelike::day(&d),
                chrono::Datelike::month(&d)
            ),
        );
        false
    }

    /// Leads nobody can email, and dated deadlines outside the plan's year.
    pub(super) fn check_leads_and_years(
        &self,
        tasks: &[Task],
        offices: &[Office],
        office_pos: &HashMap<String, Pos>,
        plan: &PlanInfo,
    ) {
        // The offices nobody can email: few, so that most leads are looked up in a small
        // table and not found, with no comparison of ids.
        let unreachable: HashMap<&str, usize> = offices
            .iter()
            .enumerate()
            .filter(|(_, o)| o.emails.is_empty())
            .map(|(i, o)| (o.id.as_str(), i))
            .collect();
        for t in tasks {
            for o in &t.lead {
                if let Some(office) = unreachable.get(o.as_str()).map(|i| &offices[*i]) {
                    self.warn(
                        t.pos,
                        crate::tr!(
                            "nhiệm vụ {} do `{}` ({}) chủ trì, mà đơn vị này không có địa chỉ email: sẽ không ai được nhắc", "task {} is led by `{}` ({}), which has no email address: it will not be reminded",
                            t.id, o, office.name
                        ),
                        crate::tr!("thêm `email:` cho đơn vị `{o}` (dòng {}), hoặc giao đơn vị khác chủ trì", "add `email:` to office `{o}` (line {}), or make another office lead", office_pos.get(o).map(|p| p.line).unwrap_or(0)),
                    );
                }
            }
            if let Rule::Dates(ds) = &t.deadline.rule
                && let Some(y) = plan.year
                && ds.iter().any(|d| {
                    let dy = chrono::Datelike::year(d);
                    dy != y && dy != y + 1 && dy.abs_diff(y) <= YEAR_SPAN
                })
            {
                self.warn(
                    t.pos,
                    crate::tr!(
                        "nhiệm vụ {} có hạn ngoài năm {y} của kế hoạch",
                        "task {} has a deadline outside the plan's year {y}",
                        t.id
                    ),
                    crate::tr!("kiểm tra năm trong hạn", "check the year in the deadline"),
                );
            }
        }
    }

    /// A plan year without the official days-off notice, and without the clerk's own days.
    pub(super) fn check_notices(
        &self,
        m: &MapReader,
        plan: &PlanInfo,
        tasks: &[Task],
        calendar: &CalendarConfig,
    ) {
        let official = crate::calendar::holidays::official_data_years();
        for y in crate::plan::config::plan_years(plan.year, tasks, false) {
            let clerk_entered = calendar
                .days_off
                .iter()
                .chain(&calendar.working_days)
                .any(|(d, _)| chrono::Datelike::year(d) == y);
            if !official.contains(&y) && !clerk_entered {
                self.report(Diagnostic::warning(
                    m.key_pos("tasks").or(Some(m.pos)),
                    crate::tr!("nhacviec chưa có thông báo nghỉ chính thức của năm {y}: dùng các ngày lễ theo luật, Tết và 2/9 là ước đoán", "nhacviec has no official days-off notice for {y}: it uses the statutory holidays, with Tết and 2/9 guessed"),
                ).with_hint(crate::tr!("khi thông báo của năm được ban hành, thêm các ngày đó vào `calendar:` → `days_off:` và `working_days:` (ví dụ `{y}-02-05: Tết Nguyên đán`)", "when the year's notice is published, add its days under `calendar:` → `days_off:` and `working_days:` (e.g. `{y}-02-05: Tết Nguyên đán`)")));
            }
        }
    }
}

/// The tasks read so far, item by item (from the tree, or as the parser reads them).
#[derive(Default)]
pub(super) struct TaskList {
    out: Vec<Task>,
    /// Each id's place in `out`: finding the repeats builds the config's task index.
    seen: HashMap<String, usize>,
    done_written: Vec<DoneWritten>,
    /// How many items were read.
    items: u32,
    /// Every id written, even of tasks that fail to read, so that one broken task does
    /// not make the tasks that wait for it report a second, misleading error: the read
    /// ones are `seen`, at these items; of the others, each item's place and the id it
    /// writes (a repeat as the place of the task it repeats). No copy of every id.
    read_at: Vec<u32>,
    others: Vec<(u32, Result<usize, String>)>,
    /// The text naming the task before in messages, written over for the next.
    what: Option<String>,
}

impl TaskList {
    pub(super) fn with_capacity(n: usize) -> Self {
        let mut list = TaskList::default();
        list.seen.reserve(n);
        list.out.reserve_exact(n);
        list.read_at.reserve_exact(n);
        list
    }
}

/// The `id:` an item of `tasks:` writes, when it is a single value.
fn written_id(item: &Node) -> Option<&str> {
    match &item.value {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.name == "id")
            .and_then(|(_, v)| v.as_str()),
        _ => None,
    }
}

pub(super) struct Names<'a> {
    pub(super) offices: &'a OfficeIds,
    pub(super) groups: &'a BTreeMap<String, Vec<String>>,
    pub(super) policies: &'a BTreeMap<String, Policy>,
    pub(super) sections: &'a BTreeMap<String, String>,
}

/// The cycles among `n` tasks that each wait for at most one other (`next`), each as
/// found walking from the first task (in plan order) that leads into it, from where that
/// walk enters it. Each task is walked over once: a chain of tasks waiting for each other
/// is not walked again from each of them (a chain of 10,000 took minutes).
pub(in crate::plan::config) fn dependency_cycles(
    n: usize,
    next: impl Fn(usize) -> Option<usize>,
) -> Vec<Vec<usize>> {
    // Per task: not walked yet, walked (its walk ended), or its place on the walk under way.
    const UNSEEN: usize = usize::MAX;
    const WALKED: usize = usize::MAX - 1;
    let mut state = vec![UNSEEN; n];
    let mut path: Vec<usize> = Vec::new();
    let mut cycles = Vec::new();
    for start in 0..n {
        if state[start] != UNSEEN {
            // Walked from an earlier task: where it leads was found then.
            continue;
        }
        path.clear();
        let mut cur = start;
        loop {
            state[cur] = path.len();
            path.push(cur);
            let Some(n) = next(cur) else { break };
            match state[n] {
                UNSEEN => cur = n,
                WALKED => break,
                at => {
                    cycles.push(path[at..].to_vec());
                    break;
                }
            }
        }
        for &p in &path {
            state[p] = WALKED;
        }
    }
    cycles
}
