//! The types a read config is made of: what the rest of the program uses. Building them from
//! the YAML, with every check, is [`super::read`]'s job; nothing here reads YAML.

use crate::calendar::workdays::WorkCalendar;
use crate::plan::deadline::{self, Rule};
use crate::plan::diag::Pos;
use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from (for messages and for resolving relative paths).
    pub path: PathBuf,
    pub plan: PlanInfo,
    /// In file order.
    pub offices: Vec<Office>,
    pub(super) office_index: super::office_ids::OfficeIds,
    /// Group id → member office ids.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Section id (`II`) → section name (`Cải cách thủ tục hành chính`).
    pub sections: BTreeMap<String, String>,
    /// The office whose addresses receive the last escalation step (Lãnh đạo Văn phòng).
    pub leadership: Option<String>,
    pub policies: BTreeMap<String, Policy>,
    /// In file order.
    pub tasks: Vec<Task>,
    pub(super) task_index: FxHashMap<String, usize>,
    pub schedule: Schedule,
    pub mail: Mail,
    pub ledger: LedgerConfig,
    /// Days off and working days the clerk added (next year's notice, a local holiday).
    pub calendar: CalendarConfig,
    /// The status pages and the confirmation links.
    pub web: WebConfig,
    /// `language:`: the messages' language when `--lang` and the environment are silent.
    pub language: Option<crate::i18n::Lang>,
}

#[derive(Debug, Clone, Default)]
pub struct PlanInfo {
    pub title: String,
    /// The plan's document reference shown in every email ("Quyết định số 20/QĐ-VPUBND ngày 18/01/2024").
    pub reference: String,
    /// The plan's year: for phrases without a year ("02 lần/năm") and periodic rules.
    pub year: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Office {
    pub id: String,
    pub name: String,
    /// Empty for outside bodies that cooperate but are not nudged.
    pub emails: Vec<String>,
    /// The head's address, added when a nudge escalates.
    pub head: Option<String>,
    pub note: Option<String>,
    /// `placeholder: true`: a stand-in until the real office is filled in (`check` warns
    /// while a task still leads to it).
    pub placeholder: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    Days,
    WorkingDays,
}

/// A span of days: `14d` (calendar days) or `3wd` (working days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Offset {
    pub n: u32,
    pub unit: Unit,
}

impl Offset {
    pub fn days(n: u32) -> Self {
        Self {
            n,
            unit: Unit::Days,
        }
    }
    pub fn working(n: u32) -> Self {
        Self {
            n,
            unit: Unit::WorkingDays,
        }
    }

    /// Roughly in calendar days, for ordering offsets of different units.
    pub fn approx_days(self) -> f64 {
        match self.unit {
            Unit::Days => self.n as f64,
            Unit::WorkingDays => self.n as f64 * 7.0 / 5.0,
        }
    }
}

impl std::fmt::Display for Offset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.unit {
            Unit::Days => write!(f, "{}d", self.n),
            Unit::WorkingDays => write!(f, "{}wd", self.n),
        }
    }
}

impl FromStr for Offset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let f = deadline::fold(s);
        let digits: String = f.chars().take_while(|c| c.is_ascii_digit()).collect();
        let unit = f[digits.len()..].trim();
        let n: u32 = digits
            .parse()
            .map_err(|_| format!("`{s}` does not start with a number"))?;
        match unit {
            "d" | "ngay" => Ok(Offset::days(n)),
            "wd" | "ngay lam viec" => Ok(Offset::working(n)),
            _ => Err(format!("`{s}` has an unknown unit `{unit}`")),
        }
    }
}

/// Which of the nudges before the deadline a cooperating office receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CoopRule {
    pub first: bool,
    pub last: bool,
    pub all_before: bool,
    pub on_day: bool,
    pub overdue: bool,
}

/// A named reminder policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    /// Nudges before the deadline, furthest first.
    pub before: Vec<Offset>,
    pub on_day: bool,
    /// Repeat while overdue; `None`: no overdue nudges.
    pub overdue_every: Option<Offset>,
    /// Overdue this long: the overdue reminders become weekly (every 5 working days, or 7
    /// days for an offset in days, counted from here). `None`: never weekly.
    pub overdue_weekly_after: Option<Offset>,
    /// At most this many overdue nudges per deadline (`None`: until it is done).
    pub overdue_limit: Option<u32>,
    /// Overdue this long: the office's head is added.
    pub head_after: Option<Offset>,
    /// Overdue this long: the item is listed in the leadership's daily digest (then weekly
    /// while the office is still reminded).
    pub leadership_after: Option<Offset>,
    pub cooperating: CoopRule,
}

impl Policy {
    pub fn builtin() -> Self {
        Policy {
            name: "default".into(),
            before: vec![
                Offset::days(14),
                Offset::days(7),
                Offset::working(3),
                Offset::working(1),
            ],
            on_day: true,
            overdue_every: Some(Offset::working(3)),
            overdue_weekly_after: Some(Offset::working(10)),
            overdue_limit: Some(8),
            head_after: Some(Offset::working(5)),
            leadership_after: Some(Offset::working(10)),
            cooperating: CoopRule {
                first: true,
                last: true,
                ..CoopRule::default()
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    /// As the plan writes it.
    pub phrase: String,
    pub rule: Rule,
    /// "trước ngày X": X itself is too late; the last working day before it is the due day.
    pub exclusive: bool,
}

/// When the task (or each office's share of it) was done.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Done {
    #[default]
    Open,
    All(NaiveDate),
    PerOffice(BTreeMap<String, NaiveDate>),
    /// `done: [{ occurrence: 2024-03-18, office: hctc, date: 2024-03-15 }, …]`: entries for
    /// one occurrence and/or one office each.
    List(Vec<DoneEntry>),
}

/// One entry of a `done:` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoneEntry {
    /// The occurrence it finishes, as the days it may fall on (a date, or a named period:
    /// `Quý I/2024`); `None`: every occurrence up to `on`.
    pub occurrence: Option<(NaiveDate, NaiveDate)>,
    /// The office whose share it finishes (`None`: every office).
    pub office: Option<String>,
    pub on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: String,
    /// Section id (`II`): one text shared by the tasks of a section.
    pub section: Arc<str>,
    pub title: String,
    pub product: Option<String>,
    pub deadline: Deadline,
    /// Lead office ids, groups expanded, in order, without repeats.
    pub lead: Vec<String>,
    /// Cooperating office ids, groups expanded, leads removed.
    pub cooperating: Vec<String>,
    /// Where the result goes or who appraises it (`report_to:`, "gửi Sở Nội vụ thẩm
    /// định"): named in the emails, never reminded, never asked to cooperate.
    pub report_to: Vec<String>,
    /// `lead:` lists several offices that share the lead (đồng chủ trì), rather than one
    /// office or one group whose members each owe their own share.
    pub shared_lead: bool,
    pub done: Done,
    /// Reminder policy name (resolved: always present in `Config::policies` or builtin):
    /// one text shared by the tasks of a policy.
    pub policy: Arc<str>,
    pub note: Option<String>,
    /// Where the task starts in the file.
    pub pos: Pos,
}

impl Task {
    /// The day `office` finished its share, if it has.
    pub fn done_for(&self, office: &str) -> Option<NaiveDate> {
        match &self.done {
            Done::Open => None,
            Done::All(d) => Some(*d),
            Done::PerOffice(m) => m.get(office).copied(),
            Done::List(entries) => entries
                .iter()
                .filter(|e| {
                    e.occurrence.is_none() && e.office.as_deref().is_none_or(|o| o == office)
                })
                .map(|e| e.on)
                .max(),
        }
    }

    /// Whether `office`'s nudge of `date` about occurrence `occ` is silenced, seen on
    /// `today`: a whole task done, or a share done, covers a single deadline and, for
    /// repeated deadlines, the occurrences up to that day; a `done:` entry naming the
    /// occurrence covers it. A done date already reached silences every nudge; one still
    /// ahead (a plan written in advance, a replay) only those from that day.
    pub fn silences(
        &self,
        office: &str,
        occ: NaiveDate,
        single_occurrence: bool,
        date: NaiveDate,
        today: NaiveDate,
    ) -> bool {
        let from = |on: NaiveDate| on <= today || date >= on;
        let covers = |on: NaiveDate| (single_occurrence || occ <= on) && from(on);
        match &self.done {
            Done::List(entries) => entries.iter().any(|e| {
                e.office.as_deref().is_none_or(|o| o == office)
                    && match e.occurrence {
                        Some((a, b)) => a <= occ && occ <= b && from(e.on),
                        None => covers(e.on),
                    }
            }),
            _ => self.done_for(office).is_some_and(covers),
        }
    }

    /// The day every lead office had finished, if all have.
    pub fn fully_done(&self) -> Option<NaiveDate> {
        match &self.done {
            Done::Open => None,
            Done::All(d) => Some(*d),
            Done::List(entries) => self
                .lead
                .iter()
                .map(|o| {
                    entries
                        .iter()
                        .filter(|e| {
                            e.occurrence.is_none() && e.office.as_deref().is_none_or(|x| x == o)
                        })
                        .map(|e| e.on)
                        .max()
                })
                .collect::<Option<Vec<_>>>()
                .and_then(|v| v.into_iter().max()),
            Done::PerOffice(m) => self
                .lead
                .iter()
                .map(|o| m.get(o).copied())
                .collect::<Option<Vec<_>>>()
                .and_then(|v| v.into_iter().max()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Sweep {
    /// As written (five fields: minute hour day-of-month month day-of-week).
    pub expr: String,
    pub cron: croner::Cron,
}

impl Sweep {
    /// The six-field form (seconds first) that tokio-cron-scheduler expects.
    pub fn six_fields(&self) -> String {
        format!("0 {}", self.expr)
    }
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub timezone: Tz,
    pub sweeps: Vec<Sweep>,
    /// Emails go out only between these local times on working days.
    pub window_start: NaiveTime,
    pub window_end: NaiveTime,
    /// After downtime, a missed nudge older than this is recorded as skipped, not sent.
    pub catch_up: Offset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// One email per office per sweep, listing all its nudges.
    Digest,
    /// One email per nudge.
    PerNudge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoopDelivery {
    /// Cooperating offices get their own email.
    Separate,
    /// Cooperating offices are copied (Cc) on the lead office's email.
    Cc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    StartTls,
    Tls,
    /// Plaintext: only when the config says so explicitly.
    None,
}

/// Where a secret comes from. The secret itself is never in the YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    /// A file named so in systemd's `$CREDENTIALS_DIRECTORY` (`LoadCredential=`).
    Credential(String),
    Env(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub timeout: Duration,
    pub pool_size: u32,
    /// Extra trusted root certificates (PEM), for a mail server with the province's own CA.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Each email is written as an `.eml` file into this folder.
    Outbox(PathBuf),
    Smtp(Smtp),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub from: String,
    pub reply_to: Option<String>,
    /// Permanent failures are reported to this address.
    pub admin: Option<String>,
    pub message_id_domain: String,
    pub grouping: Grouping,
    pub cooperating: CoopDelivery,
    /// A folder whose templates override the built-in ones.
    pub templates: Option<PathBuf>,
    pub transport: Transport,
    pub retry: Retry,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerConfig {
    pub path: PathBuf,
    /// `url:`: a PostgreSQL ledger that several nodes share, instead of the SQLite file.
    pub postgres: Option<PgLedger>,
}

/// `ledger: { url: postgresql://… }`: where the shared ledger is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgLedger {
    /// `postgresql://user@host[:port]/database`, never with a password in it.
    pub url: String,
    /// The password's file; else the systemd credential `ledger-password`, if present.
    pub password_file: Option<PathBuf>,
    pub sslmode: SslMode,
    /// The database server's CA (PEM), for `verify-full`, next to the public roots.
    pub ca_file: Option<PathBuf>,
    /// How long a node's reservation holds before another node may send it again.
    pub lease: std::time::Duration,
}

/// `sslmode:`, as libpq means it: `prefer` and `require` encrypt without checking the
/// certificate; `verify-full` checks it and the host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

/// `web:`: the embedded HTTP server (off unless `listen` is set) and the links in emails
/// (none unless `base_url` is set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    pub listen: Option<std::net::SocketAddr>,
    /// The address offices open, without a trailing `/`.
    pub base_url: Option<String>,
    /// The link key's file (else the systemd credential `link-key`, else `generated_key`).
    pub link_key_file: Option<PathBuf>,
    /// Where a random key is created once when no other is given (the state directory).
    pub generated_key: PathBuf,
    /// How long a confirmation link stays valid, in days after its email.
    pub link_days: u32,
    /// Client networks beyond loopback that may read the pages.
    pub allow: Vec<Network>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: None,
            base_url: None,
            link_key_file: None,
            generated_key: PathBuf::from("link-key"),
            link_days: 90,
            allow: Vec::new(),
        }
    }
}

/// An IP network, `10.0.0.0/8` (a bare address is a network of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub addr: std::net::IpAddr,
    pub prefix: u8,
}

impl Network {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: std::net::IpAddr = a
            .parse()
            .map_err(|_| format!("`{a}` is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("`/{p}` is not a prefix length (0 to {max})"))?
        };
        Ok(Network { addr, prefix })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalendarConfig {
    pub days_off: Vec<(NaiveDate, String)>,
    pub working_days: Vec<(NaiveDate, String)>,
}

impl Config {
    pub fn office(&self, id: &str) -> Option<&Office> {
        self.office_index.get(id).map(|i| &self.offices[i])
    }

    pub fn task(&self, id: &str) -> Option<&Task> {
        self.task_index.get(id).map(|i| &self.tasks[*i])
    }

    /// Where office `id` stands in `offices`.
    pub fn office_pos(&self, id: &str) -> Option<usize> {
        self.office_index.get(id)
    }

    /// Where task `id` stands in `tasks`.
    pub fn task_pos(&self, id: &str) -> Option<usize> {
        self.task_index.get(id).copied()
    }

    /// The task, to change its `done:` (the ledger's completions are merged in before planning).
    pub fn task_mut(&mut self, id: &str) -> Option<&mut Task> {
        self.task_index.get(id).map(|i| &mut self.tasks[*i])
    }

    pub fn policy(&self, name: &str) -> &Policy {
        self.policies
            .get(name)
            .or_else(|| self.policies.get("default"))
            .expect("the default policy always exists")
    }

    pub fn section_name(&self, id: &str) -> Option<&str> {
        self.sections.get(id).map(String::as_str)
    }

    /// The working-day calendar: weekends, the Vietnamese statutory holidays and each
    /// year's official notice, then the clerk's additions. It covers the plan's years and
    /// `now_year` (the year the program runs in), with a year of margin on each side.
    pub fn work_calendar(&self, now_year: i32) -> WorkCalendar {
        let mut years = self.years();
        years.insert(now_year);
        let lo = years.first().copied().unwrap_or(now_year) - 1;
        let hi = years.last().copied().unwrap_or(now_year) + 1;
        let mut cal = crate::calendar::holidays::vietnam_calendar(lo..=hi);
        for (d, why) in &self.calendar.days_off {
            cal.add_day_off(*d, why.clone());
        }
        for (d, why) in &self.calendar.working_days {
            cal.add_working_day(*d, why.clone());
        }
        cal
    }

    /// The years the plan's dated deadlines fall in.
    pub fn years(&self) -> BTreeSet<i32> {
        plan_years(self.plan.year, &self.tasks, true)
    }
}

/// The plan's year and every year its tasks' dates (and, `with_periods`, their periods)
/// fall in.
pub(crate) fn plan_years(year: Option<i32>, tasks: &[Task], with_periods: bool) -> BTreeSet<i32> {
    use chrono::Datelike;
    let mut years: BTreeSet<i32> = year.into_iter().collect();
    // Most tasks' dates are in the year of the task before: not looked up again.
    let mut last = None;
    for t in tasks {
        match &t.deadline.rule {
            Rule::Dates(ds) => {
                for y in ds.iter().map(|d| d.year()) {
                    if last != Some(y) {
                        years.insert(y);
                        last = Some(y);
                    }
                }
            }
            Rule::Periodic(p) if with_periods => years.extend(p.from.year()..=p.until.year()),
            _ => {}
        }
    }
    years
}
