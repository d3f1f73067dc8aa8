//! The embedded HTTP server (axum, on the daemon's runtime): the status pages, `/metrics`,
//! the one-click confirmation links of the emails (`links`), rendered by `pages`, and each
//! office's calendar feed (`/ics/office/ID.ics?token=…`, signed by `links`).

mod ledger;
pub mod links;
pub mod pages;

use crate::delivery::completions;
use crate::delivery::ledger::{LogFilter, NewCompletion, Source, Status};
use crate::delivery::sweep::Context;
use crate::plan::config::Config;
use anyhow::{Context as _, Result};
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use ledger::{PageLedger, PgSlot};
use links::{LinkKey, Links, Refused};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

/// Request bodies larger than this are refused (the confirmation form is one short note).
const MAX_BODY: usize = 4 * 1024;
/// Request headers together (names and values) and the request target larger than these
/// are refused (431, 414); hyper's own limits come first.
const MAX_HEADERS: usize = 8 * 1024;
const MAX_URI: usize = 2 * 1024;
/// A note longer than this is cut.
const MAX_NOTE: usize = 500;
/// `/log` shows at most this many deliveries.
const LOG_ROWS: usize = 500;

/// The daemon's clock, as the server reads it.
pub type Now = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// `ctx` with the confirmation links of its config set on its composer (none without
/// `web.base_url`).
pub fn with_links(ctx: Context) -> Result<Context> {
    links_on(ctx, true)
}

/// [`with_links`] for a dry run: creates no key file (a throwaway key when none exists).
pub fn with_preview_links(ctx: Context) -> Result<Context> {
    links_on(ctx, false)
}

fn links_on(mut ctx: Context, create: bool) -> Result<Context> {
    let links = Links::for_config(&ctx.config.web, create)?;
    ctx.composer
        .set_links(links.map(|l| Arc::new(l) as Arc<dyn crate::delivery::email::ConfirmLinks>));
    Ok(ctx)
}

struct Shared {
    config: RwLock<Arc<Config>>,
    key: RwLock<Option<LinkKey>>,
    now: Now,
    env: minijinja::Environment<'static>,
    /// The PostgreSQL ledger, when the config's is there.
    pg: PgSlot,
    /// Told of every request answered: see [`Server::when_quiet`].
    activity: Arc<tokio::sync::Notify>,
}

impl Shared {
    fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn key(&self) -> Option<LinkKey> {
        self.key.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The web server of the daemon: listening where `web.listen` says, or not at all. A
/// reload hands it the new config; a changed `listen` rebinds, and a new address that
/// cannot be bound keeps the old listener.
pub struct Server {
    shared: Arc<Shared>,
    running: Option<Running>,
}

struct Running {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Server {
    /// Where it listens, if it does.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.running.as_ref().map(|r| r.addr)
    }

    /// The pages show `config` from now on; a changed `web.listen` rebinds (an address in
    /// use is logged and the old listener kept), a removed one stops the server.
    pub async fn update(&mut self, config: &Arc<Config>) {
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::clone(config);
        self.reload_key(config);
        let want = config.web.listen;
        if want == self.addr() {
            return;
        }
        let Some(addr) = want else {
            if let Some(r) = self.running.take() {
                let _ = r.stop.send(());
                tracing::info!(listen = %r.addr, "máy chủ web đã dừng vì `web.listen` bị bỏ (web server stopped: `web.listen` was removed)");
            }
            return;
        };
        match bind(&self.shared, config, addr).await {
            Ok(new) => {
                if let Some(old) = self.running.replace(new) {
                    let _ = old.stop.send(());
                }
            }
            Err(e) => tracing::error!(
                error = %format!("{e:#}"),
                "web server not moved: {}",
                match self.addr() {
                    Some(a) => format!("still listening on {a}"),
                    None => "not listening".to_string(),
                }
            ),
        }
    }
}

impl Server {
    /// Runs `f` once the pages have been asked nothing for `quiet`, after each spell of
    /// requests: the daemon gives back then what serving them read, as it does after a
    /// sweep (a visit reads the pages' code back in; it is not needed until the next one).
    pub fn when_quiet(&self, quiet: std::time::Duration, f: impl Fn() + Send + 'static) {
        let activity = Arc::clone(&self.shared.activity);
        tokio::spawn(async move {
            loop {
                activity.notified().await;
                // Each request starts the wait again.
                while tokio::time::timeout(quiet, activity.notified())
                    .await
                    .is_ok()
                {}
                f();
            }
        });
    }

    /// The link key read again, as the reload's emails sign with it: a key the clerk
    /// rotated (a new `link-key` file or credential) takes over the pages' checks with the
    /// reload, so the new emails' links work and the old ones are refused. A key that
    /// cannot be read keeps the old one (the reload's emails could not be signed either:
    /// the reload is refused before this).
    fn reload_key(&self, config: &Config) {
        if self.shared.key().is_none() {
            return;
        }
        let creds = std::env::var_os("CREDENTIALS_DIRECTORY").map(std::path::PathBuf::from);
        match LinkKey::existing(&config.web, creds.as_deref()) {
            Ok(Some(key)) => {
                let mut held = self.shared.key.write().unwrap_or_else(|e| e.into_inner());
                if held.as_ref() != Some(&key) {
                    tracing::info!(
                        "khóa liên kết đã đổi: các liên kết và địa chỉ lịch đã gửi trước đây hết hiệu lực (the link key changed: links and feed addresses sent before are revoked)"
                    );
                    *held = Some(key);
                }
            }
            Ok(None) => {}
            Err(e) => tracing::error!(
                error = %format!("{e:#}"),
                "không đọc lại được khóa liên kết; vẫn dùng khóa cũ (cannot read the link key again; the old one is kept)"
            ),
        }
    }
}

/// The server for `config`, listening on `web.listen` if it is set. An address in use is
/// an error here, at start.
pub async fn start(config: &Arc<Config>, now: Now) -> Result<Server> {
    let shared = Arc::new(Shared {
        config: RwLock::new(Arc::clone(config)),
        key: RwLock::new(None),
        now,
        env: pages::environment(),
        pg: PgSlot::default(),
        activity: Arc::new(tokio::sync::Notify::new()),
    });
    let running = match config.web.listen {
        Some(addr) => Some(bind(&shared, config, addr).await?),
        None => None,
    };
    Ok(Server { shared, running })
}

/// Loads the link key (once), binds `addr` and serves there until told to stop.
async fn bind(shared: &Arc<Shared>, config: &Config, addr: SocketAddr) -> Result<Running> {
    if shared.key().is_none() {
        let creds = std::env::var_os("CREDENTIALS_DIRECTORY").map(std::path::PathBuf::from);
        let key = LinkKey::load(&config.web, creds.as_deref())?;
        *shared.key.write().unwrap_or_else(|e| e.into_inner()) = Some(key);
    }
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        crate::tr!(
            "không nghe được trên {addr} (web.listen): có chương trình khác đang dùng địa chỉ này không?",
            "cannot listen on {addr} (web.listen): is another program using it?"
        )
    })?;
    let addr = listener.local_addr().unwrap_or(addr);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = router(Arc::clone(shared)).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "máy chủ web đã dừng (the web server stopped)");
        }
    });
    tracing::info!(listen = %addr, "máy chủ web đang nghe (web server listening)");
    Ok(Running { addr, stop })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/office/{id}", get(office))
        .route("/log", get(log))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/style.css", get(style))
        .route("/confirm/{token}", get(confirm_page).post(confirm))
        .route("/ics/office/{file}", get(feed))
        .fallback(|State(s): State<Arc<Shared>>| async move {
            error_page(
                &s,
                StatusCode::NOT_FOUND,
                "Không tìm thấy",
                "Không có trang này.",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            guard,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

/// Every response gets the security headers; the pages beyond `/confirm`, the calendar
/// feeds (their token is their lock) and `/style.css` answer only loopback and the
/// `web.allow` networks.
async fn guard(
    State(s): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path();
    let open = path.starts_with("/confirm/")
        || path.starts_with("/ics/")
        || path == "/style.css"
        || path == "/healthz";
    let ip = peer.ip();
    let allowed = ip.is_loopback()
        || ip_v4_loopback(ip)
        || s.config().web.allow.iter().any(|n| n.contains(ip));
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    let mut resp = if header_bytes > MAX_HEADERS {
        error_page(
            &s,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Yêu cầu quá lớn",
            "Phần đầu của yêu cầu quá lớn.",
        )
    } else if req.uri().to_string().len() > MAX_URI {
        error_page(
            &s,
            StatusCode::URI_TOO_LONG,
            "Yêu cầu quá lớn",
            "Địa chỉ quá dài.",
        )
    } else if open || allowed {
        next.run(req).await
    } else {
        error_page(
            &s,
            StatusCode::FORBIDDEN,
            "Không được phép",
            "Máy của bạn không được phép xem trang này.",
        )
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    s.activity.notify_one();
    resp
}

fn ip_v4_loopback(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        _ => false,
    }
}

fn error_page(s: &Shared, code: StatusCode, heading: &str, message: &str) -> Response {
    let body = pages::render(
        &s.env,
        "error.html",
        minijinja::context! { heading, message, plan_title => "", today => "" },
    );
    (code, Html(body)).into_response()
}

/// Runs `f` (ledger reads, planning, rendering) off the async threads.
async fn blocking<F>(s: &Arc<Shared>, f: F) -> Response
where
    F: FnOnce(&Shared) -> Result<Response> + Send + 'static,
{
    let s2 = Arc::clone(s);
    match tokio::task::spawn_blocking(move || f(&s2)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!(error = %format!("{e:#}"), "a web page failed");
            error_page(
                s,
                StatusCode::SERVICE_UNAVAILABLE,
                "Tạm thời không xem được",
                "Không đọc được sổ gửi của hệ thống; xin thử lại sau.",
            )
        }
        Err(_) => error_page(
            s,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Lỗi",
            "Trang gặp lỗi.",
        ),
    }
}

/// What a page is made from: the config with the ledger's completions, the ledger, today.
struct View {
    cfg: Arc<Config>,
    ledger: PageLedger,
    cal: crate::calendar::workdays::WorkCalendar,
    today: NaiveDate,
    now: DateTime<Utc>,
}

fn view(s: &Shared) -> Result<View> {
    let cfg = s.config();
    let ledger = PageLedger::open(&cfg, &s.pg, false)?;
    let cfg = completions::applied_from(&cfg, &ledger.completions()?);
    let now = (s.now)();
    let tz = cfg.schedule.timezone;
    let today = now.with_timezone(&tz).date_naive();
    let cal = cfg.work_calendar(today.year());
    Ok(View {
        cfg,
        ledger,
        cal,
        today,
        now,
    })
}

fn page<S: serde::Serialize>(s: &Shared, v: &View, name: &str, ctx: S) -> Response {
    let base = minijinja::context! {
        plan_title => v.cfg.plan.title.clone(),
        today => v.today.format("%d/%m/%Y").to_string(),
    };
    let ctx = minijinja::context! { ..minijinja::Value::from_serialize(&ctx), ..base };
    Html(pages::render(&s.env, name, ctx)).into_response()
}

fn nonempty(m: &HashMap<String, String>, k: &str) -> Option<String> {
    m.get(k)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// `Server-Timing: render;dur=<ms>`: how long the server took over a page (ledger reads,
/// planning, rendering), for browsers' developer tools and `scripts/bench`.
fn server_timing(mut resp: Response, started: std::time::Instant) -> Response {
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("render;dur={ms:.1}")) {
        resp.headers_mut().insert("server-timing", v);
    }
    resp
}

async fn index(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let started = std::time::Instant::now();
    let resp = blocking(&s, move |s| {
        let v = view(s)?;
        let (office, section) = (nonempty(&q, "office"), nonempty(&q, "section"));
        let page_no = nonempty(&q, "page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let p = pages::progress(
            &v.cfg,
            &v.cal,
            v.today,
            office.as_deref(),
            section.as_deref(),
            page_no,
        );
        Ok(page(s, &v, "index.html", p))
    })
    .await;
    server_timing(resp, started)
}

async fn office(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    blocking(&s, move |s| {
        let v = view(s)?;
        let Some(o) = v.cfg.office(&id) else {
            return Ok(error_page(
                s,
                StatusCode::NOT_FOUND,
                "Không tìm thấy",
                "Kế hoạch không có đơn vị này.",
            ));
        };
        let rows = pages::office_rows(&v.cfg, &v.cal, v.today, &id);
        let named = pages::Named {
            id: o.id.clone(),
            name: o.name.clone(),
        };
        Ok(page(
            s,
            &v,
            "office.html",
            minijinja::context! { office => named, rows },
        ))
    })
    .await
}

async fn log(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    blocking(&s, move |s| {
        let v = view(s)?;
        let tz = v.cfg.schedule.timezone;
        let day = |k: &str| {
            nonempty(&q, k).and_then(|d| {
                NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                    .or_else(|_| NaiveDate::parse_from_str(&d, "%d/%m/%Y"))
                    .ok()
            })
        };
        let at = |d: NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .and_then(|t| t.and_local_timezone(tz).earliest())
                .map(|t| t.to_utc())
        };
        let filter = LogFilter {
            office: nonempty(&q, "office"),
            task: nonempty(&q, "task"),
            status: nonempty(&q, "status").and_then(|st| st.parse::<Status>().ok()),
            since: day("since").and_then(at),
            until: day("until").and_then(|d| d.succ_opt()).and_then(at),
            limit: Some(LOG_ROWS),
        };
        let rows = pages::log_rows(&v.ledger.query(&filter)?, tz);
        let completions = pages::completion_rows(&v.ledger.completion_history()?, tz);
        let shown = minijinja::context! {
            office => nonempty(&q, "office").unwrap_or_default(),
            task => nonempty(&q, "task").unwrap_or_default(),
            status => nonempty(&q, "status").unwrap_or_default(),
            since => nonempty(&q, "since").unwrap_or_default(),
            until => nonempty(&q, "until").unwrap_or_default(),
        };
        let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        Ok(page(
            s,
            &v,
            "log.html",
            minijinja::context! { rows, completions, filter => shown, statuses },
        ))
    })
    .await
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    blocking(&s, |s| {
        let v = view(s)?;
        let m = pages::Metrics {
            emails: v.ledger.count_by_status_office()?,
            overdue: pages::overdue_by_office(&v.cfg, &v.cal, v.today),
            last_sweep: v.ledger.last_complete_sweep()?.map(|t| t.timestamp()),
            rows: v.ledger.row_counts()?,
        };
        let _ = v.now;
        Ok((
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            m.text(),
        )
            .into_response())
    })
    .await
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        pages::STYLE,
    )
        .into_response()
}

/// An office's calendar feed, the text of `nhacviec plan --format ics --office ID` (the
/// ledger's completions applied), for a calendar client that subscribes to it. A token
/// that is not this office's → 403 and nothing of the plan; an office no longer in the
/// plan → 404.
async fn feed(
    State(s): State<Arc<Shared>>,
    Path(file): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    blocking(&s, move |s| {
        let not_found = |s: &Shared| {
            error_page(
                s,
                StatusCode::NOT_FOUND,
                "Không tìm thấy",
                "Kế hoạch không có đơn vị này.",
            )
        };
        let Some(id) = file.strip_suffix(".ics") else {
            return Ok(not_found(s));
        };
        let Some(key) = s.key() else {
            return Ok(error_page(
                s,
                StatusCode::SERVICE_UNAVAILABLE,
                "Lỗi",
                "Hệ thống chưa có khóa ký đường dẫn.",
            ));
        };
        let token = q.get("token").map_or("", String::as_str);
        if links::verify_feed(&key, id, token).is_err() {
            return Ok(error_page(
                s,
                StatusCode::FORBIDDEN,
                "Không được phép",
                "Đường dẫn lịch không hợp lệ hoặc đã bị thu hồi. Xin hỏi văn thư đường dẫn mới.",
            ));
        }
        let v = view(s)?;
        if v.cfg.office(id).is_none() {
            return Ok(not_found(s));
        }
        let body = crate::plan::ics::render(&v.cfg, Some(id), None, v.now);
        Ok((
            [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
            body,
        )
            .into_response())
    })
    .await
}

/// A verified token's claim, the task and office still in the plan, or the page that says
/// why not (4xx).
fn claim(
    s: &Shared,
    cfg: &Config,
    token: &str,
    now: DateTime<Utc>,
) -> Result<links::Claim, Box<Response>> {
    let key = s.key().ok_or_else(|| {
        Box::new(error_page(
            s,
            StatusCode::SERVICE_UNAVAILABLE,
            "Lỗi",
            "Hệ thống chưa có khóa xác nhận.",
        ))
    })?;
    let c = links::verify(&key, token, now).map_err(|r| {
        let (code, msg) = match r {
            Refused::Expired => (
                StatusCode::GONE,
                "Đường dẫn xác nhận này đã hết hạn. Xin trả lời thư nhắc việc để báo hoàn thành.",
            ),
            Refused::Forged | Refused::Malformed => (
                StatusCode::FORBIDDEN,
                "Đường dẫn xác nhận không hợp lệ (bị sửa hoặc không do hệ thống tạo ra). Không có gì được ghi nhận.",
            ),
        };
        Box::new(error_page(s, code, "Không xác nhận được", msg))
    })?;
    if cfg.task(&c.task).is_none() || cfg.office(&c.office).is_none() {
        return Err(Box::new(error_page(
            s,
            StatusCode::NOT_FOUND,
            "Không tìm thấy",
            "Nhiệm vụ hoặc đơn vị này không còn trong kế hoạch.",
        )));
    }
    Ok(c)
}

/// The standing completion of exactly this office and occurrence, if any: its day.
fn already(ledger: &PageLedger, c: &links::Claim) -> Result<Option<NaiveDate>> {
    Ok(ledger
        .completions()?
        .into_iter()
        .find(|x| {
            x.entry.task == c.task
                && x.entry.office.as_deref() == Some(c.office.as_str())
                && x.entry.occurrence == Some((c.occurrence, c.occurrence))
        })
        .map(|x| x.entry.done_on))
}

fn claim_ctx(cfg: &Config, c: &links::Claim) -> minijinja::Value {
    let task = cfg.task(&c.task).expect("checked");
    let cal = cfg.work_calendar(c.occurrence.year());
    let occurrence = crate::plan::planner::occurrence_name(cfg, &cal, task, c.occurrence)
        .unwrap_or_else(|| c.occurrence.format("%d/%m/%Y").to_string());
    minijinja::context! {
        office => cfg.office(&c.office).map_or(c.office.clone(), |o| o.name.clone()),
        task_id => task.id.clone(),
        title => task.title.clone(),
        phrase => task.deadline.phrase.clone(),
        occurrence,
    }
}

/// GET: shows what would be confirmed and the form; changes nothing (mail scanners open
/// links).
async fn confirm_page(State(s): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    blocking(&s, move |s| {
        let cfg = s.config();
        let now = (s.now)();
        let c = match claim(s, &cfg, &token, now) {
            Ok(c) => c,
            Err(page) => return Ok(*page),
        };
        let ledger = PageLedger::open(&cfg, &s.pg, false)?;
        let done = already(&ledger, &c)?.map(|d| d.format("%d/%m/%Y").to_string());
        let v = View {
            cal: cfg.work_calendar(c.occurrence.year()),
            today: now.with_timezone(&cfg.schedule.timezone).date_naive(),
            cfg: Arc::clone(&cfg),
            ledger,
            now,
        };
        let ctx = minijinja::context! { token, already => done, ..claim_ctx(&cfg, &c) };
        Ok(page(s, &v, "confirm.html", ctx))
    })
    .await
}

#[derive(Debug, Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    note: String,
}

/// POST: records the completion (source `link`, with the client's address) and shows it.
async fn confirm(
    State(s): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    // Behind a proxy on this machine, the proxy names the client.
    let forwarded = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .filter(|_| peer.ip().is_loopback())
        .map(|v| v.chars().take(100).collect::<String>());
    let client = match forwarded {
        Some(f) => format!("{} (X-Forwarded-For: {f})", peer.ip()),
        None => peer.ip().to_string(),
    };
    blocking(&s, move |s| {
        let cfg = s.config();
        let now = (s.now)();
        let c = match claim(s, &cfg, &token, now) {
            Ok(c) => c,
            Err(page) => return Ok(*page),
        };
        let today = now.with_timezone(&cfg.schedule.timezone).date_naive();
        let mut ledger = PageLedger::open(&cfg, &s.pg, true)?;
        let before = already(&ledger, &c)?;
        let done_on = match before {
            Some(d) => d,
            None => {
                let note: String = form.note.trim().chars().take(MAX_NOTE).collect();
                ledger.record_completion(
                    &NewCompletion {
                        task: c.task.clone(),
                        occurrence: Some((c.occurrence, c.occurrence)),
                        office: Some(c.office.clone()),
                        done_on: today,
                        source: Source::Link,
                        note: (!note.is_empty()).then_some(note),
                        client: Some(client.clone()),
                        undone: false,
                    },
                    now,
                )?;
                tracing::info!(
                    task = %c.task, office = %c.office, occurrence = %c.occurrence, client = %client,
                    "completion confirmed through an email link"
                );
                today
            }
        };
        let v = View {
            cal: cfg.work_calendar(today.year()),
            today,
            cfg: Arc::clone(&cfg),
            ledger,
            now,
        };
        let ctx = minijinja::context! {
            done_on => done_on.format("%d/%m/%Y").to_string(),
            again => before.is_some(),
            ..claim_ctx(&cfg, &c)
        };
        Ok(page(s, &v, "done.html", ctx))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// `when_quiet` runs once per spell of requests, `quiet` after the last of them.
    #[tokio::test(start_paused = true)]
    async fn what_serving_read_is_given_back_once_the_pages_are_quiet() {
        let src = "offices:\n  o:\n    name: O\n    email: o@vpubnd.example\ntasks: []\n";
        let cfg = crate::plan::config::from_source(
            src,
            std::path::Path::new("t.yaml"),
            &crate::plan::config::Env::default(),
        )
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config;
        let fixed = chrono::TimeZone::with_ymd_and_hms(&Utc, 2024, 1, 22, 8, 0, 0).unwrap();
        let now: Now = Arc::new(move || fixed);
        let server = start(&Arc::new(cfg), now).await.unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        server.when_quiet(Duration::from_secs(5), move || {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        let request = || server.shared.activity.notify_one();
        let wait = |s: u64| tokio::time::sleep(Duration::from_secs(s));
        wait(60).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            0,
            "nothing served, nothing to give back"
        );
        request();
        wait(4).await;
        request();
        wait(4).await;
        assert_eq!(runs.load(Ordering::SeqCst), 0, "requests keep coming");
        wait(2).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "quiet for 5 s after the last"
        );
        wait(60).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "once per spell");
        request();
        wait(6).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}
