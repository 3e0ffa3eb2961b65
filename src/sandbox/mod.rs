//! `yorisoi serve --sandbox`: the whole service on a laptop. The real service (webhook,
//! conversation, store, processor, reply sender, daily delivery) runs against the crate's LINE
//! double served in-process, with a generated channel secret and token, on its own database
//! and one clock that only moves forward when asked. `/sandbox` is a chat page for simulated
//! users; `/sandbox/api/` the same actions as JSON. Every action is a signed webhook request to
//! the real `/webhook`; every request the service sends passes the double's contract checks.

use crate::clock::{Clock, SharedClock, TravelClock, jst};
use crate::config::{PushTime, Settings};
use crate::content::ContentPack;
use crate::domain::{ChildAge, PregnancyPosition, Subject};
use crate::line_double::{DoubleConfig, LineDouble, Via};
use crate::startup::{Application, Drive, ExtraRoutes};
use crate::store::{self, deliveries};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The sandbox's database unless `--db` says otherwise (never the production one).
pub const DEFAULT_DB: &str = "data/sandbox.db";
/// The longest journey one request may ask for.
const MAX_DAYS: u64 = 3 * 366 + 60;

/// `serve --sandbox` options.
#[derive(Debug, Clone)]
pub struct Options {
    /// The sandbox database.
    pub db: PathBuf,
    /// Start afresh: delete the sandbox database (and its clock) first.
    pub reset: bool,
}

/// A simulated LINE user.
#[derive(Debug, Clone, serde::Serialize)]
struct SimUser {
    user_id: String,
    name: String,
    following: bool,
}

/// Something a simulated user did, at a sandbox time.
type Said = (DateTime<Utc>, String);

/// The sandbox's state, shared by its routes.
pub struct Sandbox {
    double: LineDouble,
    clock: TravelClock,
    clock_file: PathBuf,
    db: PathBuf,
    /// One connection for the sandbox's own reads (is the service idle, is a date delivered,
    /// where do registrations stand), opened once.
    reads: Arc<Mutex<rusqlite::Connection>>,
    push_at: NaiveTime,
    worker: crate::delivery::Worker,
    webhook: OnceLock<String>,
    users: Mutex<Vec<SimUser>>,
    /// What each user did (typed, tapped), with the sandbox time: the user's side of the talk.
    said: Mutex<HashMap<String, Vec<Said>>>,
    travel: tokio::sync::Mutex<()>,
    /// Links each reader's rich menu right after their step (the service's own relinker looks
    /// every two seconds), so the page shows the menu that follows the step.
    relinker: crate::richmenu::Relinker,
}

fn clock_file(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".clock");
    PathBuf::from(p)
}

fn users_file(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".users.json");
    PathBuf::from(p)
}

/// Settings for the sandbox: the operator's file and environment for everything but LINE and
/// the database (no `LINE_*` variable is read), a generated secret and token, the double.
fn settings(config: Option<&Path>, db: &Path, double: &LineDouble) -> anyhow::Result<Settings> {
    let mut env: HashMap<String, String> = std::env::vars()
        .filter(|(k, _)| !k.starts_with("LINE_") && k != "YORISOI_DATABASE")
        .collect();
    env.insert("LINE_CHANNEL_SECRET".into(), double.channel_secret().into());
    env.insert(
        "LINE_CHANNEL_ACCESS_TOKEN".into(),
        double.access_token().into(),
    );
    env.insert("LINE_API_BASE".into(), double.base_url());
    env.insert("LINE_DATA_API_BASE".into(), double.data_base_url());
    let mut s = Settings::from_sources(config, &env)?;
    s.database = db.to_owned();
    if s.push_time == PushTime::Off {
        s.push_time = PushTime::At(NaiveTime::from_hms_opt(9, 0, 0).expect("a valid time"));
    }
    Ok(s)
}

fn reset(db: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm", ".clock", ".users.json"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(PathBuf::from(&p)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("cannot remove {}: {e}", PathBuf::from(p).display()),
        }
    }
    Ok(())
}

/// Where the clock stood when the sandbox last stopped (it never goes back), or now.
fn start_clock(file: &Path) -> TravelClock {
    let now = Utc::now();
    let saved = std::fs::read_to_string(file)
        .ok()
        .and_then(|s| DateTime::parse_from_rfc3339(s.trim()).ok())
        .map(|t| t.with_timezone(&Utc));
    TravelClock::new(saved.map_or(now, |s| s.max(now)))
}

/// Runs the sandbox until interrupted.
pub async fn run(config: Option<&Path>, options: Options) -> anyhow::Result<()> {
    if options.reset {
        reset(&options.db)?;
    }
    let clock_file = clock_file(&options.db);
    let clock = start_clock(&clock_file);
    let shared: SharedClock = Arc::new(clock.clone());
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let double = LineDouble::start(
        DoubleConfig {
            access_token: token,
            channel_secret: secret,
            rate_limit: None,
            record: true,
            clock: shared.clone(),
            ..DoubleConfig::default()
        },
        "127.0.0.1:0",
    )?;
    let settings = settings(config, &options.db, &double)?;
    let PushTime::At(push_at) = settings.push_time else {
        unreachable!("set above")
    };
    let listen = settings.listen;
    let pack = Arc::new(ContentPack::load(&settings.content_dir)?);

    // The database first (the application migrates it); then the sandbox's worker on it.
    let sandbox: Arc<OnceLock<Arc<Sandbox>>> = Arc::new(OnceLock::new());
    let routes_for = sandbox.clone();
    let extra: ExtraRoutes = Arc::new(move |cfg| {
        if let Some(s) = routes_for.get() {
            routes(cfg, web::Data::from(s.clone()));
        }
    });
    let app = Application::build_with(
        settings.clone(),
        shared.clone(),
        Drive::Background,
        Some(extra),
    )
    .await?;
    let line = crate::startup::line_client(&settings)?;
    let relinker = crate::richmenu::Relinker::new(
        store::Db::new(store::connect(&options.db)?),
        line.clone(),
        shared.clone(),
    );
    sync_richmenus(&settings, &options.db, &line, &shared).await;
    let worker = crate::delivery::Worker::new(&settings, pack, line, shared.clone())?;
    let users: Vec<SimUser> = std::fs::read(users_file(&options.db))
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<Value>>(&b).ok())
        .map(|v| {
            v.into_iter()
                .filter_map(|u| {
                    Some(SimUser {
                        user_id: u["user_id"].as_str()?.to_owned(),
                        name: u["name"].as_str()?.to_owned(),
                        following: u["following"].as_bool().unwrap_or(false),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let port = app.port();
    let state = Arc::new(Sandbox {
        double,
        clock,
        clock_file,
        db: options.db.clone(),
        reads: Arc::new(Mutex::new(store::connect(&options.db)?)),
        push_at,
        worker,
        webhook: OnceLock::new(),
        users: Mutex::new(users),
        said: Mutex::new(HashMap::new()),
        travel: tokio::sync::Mutex::new(()),
        relinker,
    });
    let _ = state
        .webhook
        .set(format!("http://127.0.0.1:{port}/webhook"));
    let _ = sandbox.set(state.clone());
    state.save_clock();

    let host = if listen.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        listen.ip().to_string()
    };
    let password = staff_login(&options.db, shared.now())?;
    // One write, whose failure (a reader that closed the pipe after the first line) is no
    // reason to stop the sandbox.
    let _ = writeln!(
        std::io::stdout().lock(),
        "yorisoi sandbox: open http://{host}:{port}/sandbox in a browser (JSON API: /sandbox/api/). \
         Database: {}. Stop with Ctrl+C.\n\
         staff console: http://{host}:{}/ (login {SANDBOX_STAFF}, password {password}); \
         a broadcast sent there arrives in the chat page",
        options.db.display(),
        app.admin_port()
    );
    app.run_until_stopped().await
}

/// Creates the rich menus of `richmenus/` on the double (as `yorisoi richmenu sync` does on
/// LINE) and links the readers of this database to them. A problem is told, not fatal: the
/// sandbox works without menus.
async fn sync_richmenus(
    settings: &Settings,
    db: &Path,
    line: &crate::line::LineClient,
    clock: &SharedClock,
) {
    let outcome = match crate::richmenu::load_dir(&settings.richmenu_dir) {
        Ok(menus) => match store::connect(db) {
            Ok(conn) => {
                crate::richmenu::sync::sync(&store::Db::new(conn), line, clock, &menus, false)
                    .await
                    .map(drop)
                    .map_err(|e| format!("{e:#}"))
            }
            Err(e) => Err(e.to_string()),
        },
        Err(problems) => Err(problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")),
    };
    if let Err(why) = outcome {
        let _ = writeln!(
            std::io::stderr().lock(),
            "yorisoi sandbox: no rich menus ({}): {why}",
            settings.richmenu_dir.display()
        );
    }
}

/// The sandbox's staff account (an administrator).
pub const SANDBOX_STAFF: &str = "sandbox";

/// Makes the sandbox's staff account, or gives it a new password: printed at each start (the
/// database keeps only its hash).
fn staff_login(db: &Path, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<String> {
    use crate::staff::{Role, generate_password, hash_password};
    use crate::store::staff as st;
    let password = generate_password();
    let hash = hash_password(&password)?;
    let conn = store::connect(db)?;
    let at = store::ts(now);
    match st::by_login(&conn, SANDBOX_STAFF)? {
        Some(a) => {
            st::change(&conn, a.id, st::Change::Password(&hash), &at)?;
            st::change(&conn, a.id, st::Change::Unlock, &at)?;
            st::change(&conn, a.id, st::Change::Disabled(false), &at)?;
        }
        None => {
            st::create(&conn, SANDBOX_STAFF, Role::Admin, &hash, &at)?;
        }
    }
    Ok(password)
}

#[derive(Deserialize)]
struct NewUser {
    name: Option<String>,
}

#[derive(Deserialize)]
struct Say {
    text: String,
}

#[derive(Deserialize)]
struct Postback {
    data: String,
    params: Option<Value>,
    /// A rich menu area's `displayText`: shown as the user's message, as LINE shows it.
    display_text: Option<String>,
}

#[derive(Deserialize)]
struct Travel {
    days: Option<u64>,
    date: Option<String>,
}

/// What a sandbox request could not do: a status and `{"message": reason}`. (The sandbox is a
/// local tool: its reasons may name dates and ids; no personal data exists in it.)
#[derive(Debug)]
pub struct ApiError {
    status: actix_web::http::StatusCode,
    message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(json!({ "message": self.message }))
    }
}

fn err(status: u16, msg: impl Into<String>) -> ApiError {
    ApiError {
        status: actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
        message: msg.into(),
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    err(400, msg)
}

/// The sandbox's routes on the public listener.
pub fn routes(cfg: &mut web::ServiceConfig, state: web::Data<Sandbox>) {
    cfg.app_data(state)
        .app_data(
            web::JsonConfig::default()
                .limit(16 * 1024)
                .error_handler(|e, _| {
                    err(
                        400,
                        format!("the body is not the JSON this request takes: {e}"),
                    )
                    .into()
                }),
        )
        .route("/sandbox", web::get().to(page))
        .route("/sandbox/api/users", web::get().to(list_users))
        .route("/sandbox/api/users", web::post().to(create_user))
        .route("/sandbox/api/users/{id}/follow", web::post().to(follow))
        .route("/sandbox/api/users/{id}/block", web::post().to(block))
        .route("/sandbox/api/users/{id}/unblock", web::post().to(unblock))
        .route("/sandbox/api/users/{id}/say", web::post().to(say))
        .route("/sandbox/api/users/{id}/postback", web::post().to(postback))
        .route("/sandbox/api/users/{id}/messages", web::get().to(messages))
        .route("/sandbox/api/users/{id}/richmenu", web::get().to(richmenu))
        .route(
            "/sandbox/api/richmenus/{id}/image",
            web::get().to(richmenu_image),
        )
        .route("/sandbox/api/clock", web::get().to(get_clock))
        .route("/sandbox/api/clock", web::post().to(travel))
        .route("/sandbox/api/violations", web::get().to(violations));
}

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .body(include_str!("page.html"))
}

impl Sandbox {
    fn users(&self) -> std::sync::MutexGuard<'_, Vec<SimUser>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save_users(&self) {
        let users = self.users().clone();
        if let Ok(bytes) = serde_json::to_vec(&users) {
            let _ = std::fs::write(users_file(&self.db), bytes);
        }
    }

    fn save_clock(&self) {
        let _ = std::fs::write(&self.clock_file, self.clock.now().to_rfc3339());
    }

    fn known(&self, id: &str) -> Result<(), ApiError> {
        if self.users().iter().any(|u| u.user_id == id) {
            Ok(())
        } else {
            Err(err(
                404,
                format!("no simulated user {id:?}: create one with POST /sandbox/api/users"),
            ))
        }
    }

    fn note(&self, id: &str, what: String) {
        self.said
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.to_owned())
            .or_default()
            .push((self.clock.now(), what));
    }

    fn set_following(&self, id: &str, following: bool) {
        if let Some(u) = self.users().iter_mut().find(|u| u.user_id == id) {
            u.following = following;
        }
        self.save_users();
    }

    /// Sends events to the real webhook, signed, then waits until the service has handled them
    /// and sent its answers (at most a few seconds).
    async fn send(&self, events: Vec<Value>) -> Result<(), ApiError> {
        let url = self.webhook.get().cloned().unwrap_or_default();
        let status = self
            .double
            .send_webhook(&url, &events)
            .await
            .map_err(|e| err(500, format!("webhook request failed: {e}")))?;
        if status != 200 {
            return Err(err(503, format!("the webhook answered {status}")));
        }
        self.settle().await;
        if let Err(e) = self.relinker.drain().await {
            tracing::warn!(error = %e, "relinking rich menus failed");
        }
        Ok(())
    }

    /// Runs `f` on the read connection, off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let reads = self.reads.clone();
        tokio::task::spawn_blocking(move || f(&reads.lock().unwrap_or_else(|e| e.into_inner())))
            .await
            .map_err(|e| err(500, e.to_string()))?
            .map_err(|e| err(500, e.to_string()))
    }

    async fn settle(&self) {
        for _ in 0..200 {
            let idle = self
                .read(|conn| {
                    Ok(store::events::pending(conn, 1)?.is_empty()
                        && store::outbox::pending_count(conn)? == 0)
                })
                .await
                .unwrap_or(false);
            if idle {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs one day's delivery (the daily worker may be running it too: wait for it).
    async fn deliver(&self, date: NaiveDate) -> Result<usize, ApiError> {
        let mut sent = 0;
        for _ in 0..500 {
            let d = date.to_string();
            let finished = self
                .read(move |conn| Ok(deliveries::run_finished(conn, &d)?))
                .await?;
            if finished {
                return Ok(sent);
            }
            match self.worker.run_day(date).await {
                Ok(s) => {
                    sent += s.sent;
                    if s.finished {
                        return Ok(sent);
                    }
                }
                Err(crate::delivery::RunError::Busy(_)) => {}
                Err(e) => {
                    return Err(err(500, format!("the delivery of {date} failed: {e}")));
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(err(503, format!("the delivery of {date} did not finish")))
    }

    fn clock_json(&self) -> Value {
        let now = self.clock.now_jst();
        json!({
            "now": now.to_rfc3339(),
            "date": now.date_naive().to_string(),
            "label": crate::domain::format_date_ja(now.date_naive()),
            "delivery_time": self.push_at.format("%H:%M").to_string(),
        })
    }

    /// Where each registration of `line_user` stood on `date`, as the messages word it.
    fn positions(&self, line_user: &str, dates: &[NaiveDate]) -> HashMap<NaiveDate, Vec<String>> {
        let conn = self.reads.lock().unwrap_or_else(|e| e.into_inner());
        let Ok(regs) = store::registrations::for_line_user(&conn, line_user) else {
            return HashMap::new();
        };
        dates
            .iter()
            .map(|d| {
                let labels = regs
                    .iter()
                    .filter(|r| r.started_on <= *d)
                    .map(|r| match r.subject {
                        Subject::Pregnancy { due_date } => {
                            PregnancyPosition::on(due_date, *d).label()
                        }
                        Subject::Child { birthday } => ChildAge::on(birthday, *d).day_label(),
                    })
                    .collect();
                (*d, labels)
            })
            .collect()
    }
}

async fn list_users(s: web::Data<Sandbox>) -> HttpResponse {
    let users: Vec<Value> = s
        .users()
        .clone()
        .into_iter()
        .map(|u| {
            // What the talk list shows: the last message's text, or a Flex message's altText.
            let last = s
                .double
                .delivered_to(&u.user_id)
                .last()
                .and_then(|d| d.messages.last().cloned())
                .and_then(|m| {
                    m.get("text")
                        .or_else(|| m.get("altText"))
                        .and_then(Value::as_str)
                        .map(|t| t.chars().take(40).collect::<String>())
                });
            json!({ "user_id": u.user_id, "name": u.name, "following": u.following, "last": last })
        })
        .collect();
    HttpResponse::Ok().json(json!({ "users": users }))
}

async fn create_user(
    s: web::Data<Sandbox>,
    body: Option<web::Json<NewUser>>,
) -> Result<HttpResponse, ApiError> {
    let n = s.users().len() + 1;
    let name = body
        .and_then(|b| b.into_inner().name)
        .map(|n| n.trim().chars().take(20).collect::<String>())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("ユーザー{n}"));
    let user = SimUser {
        user_id: format!("U{}", uuid::Uuid::new_v4().simple()),
        name,
        following: false,
    };
    s.users().push(user.clone());
    s.save_users();
    Ok(HttpResponse::Created().json(json!({ "user_id": user.user_id, "name": user.name })))
}

/// Adds the account, blocks it or unblocks it: the event LINE sends, and the user's state.
async fn friendship(
    s: &Sandbox,
    id: &str,
    following: bool,
    unblock: bool,
) -> Result<HttpResponse, ApiError> {
    s.known(id)?;
    let (event, shown) = match (following, unblock) {
        (true, false) => (s.double.follow_event(id, false), "（友だち追加）"),
        (true, true) => (s.double.follow_event(id, true), "（ブロック解除）"),
        (false, _) => (s.double.unfollow_event(id), "（ブロック）"),
    };
    s.note(id, shown.into());
    s.send(vec![event]).await?;
    s.set_following(id, following);
    Ok(HttpResponse::NoContent().finish())
}

async fn follow(s: web::Data<Sandbox>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    friendship(&s, &id, true, false).await
}

async fn block(s: web::Data<Sandbox>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    friendship(&s, &id, false, false).await
}

async fn unblock(s: web::Data<Sandbox>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    friendship(&s, &id, true, true).await
}

async fn say(
    s: web::Data<Sandbox>,
    id: web::Path<String>,
    body: web::Json<Say>,
) -> Result<HttpResponse, ApiError> {
    s.known(&id)?;
    let text = body.into_inner().text;
    if text.trim().is_empty() || text.chars().count() > 5000 {
        return Err(bad("`text` must be 1 to 5000 characters"));
    }
    let e = s.double.text_event(&id, &text);
    s.note(&id, text);
    s.send(vec![e]).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn postback(
    s: web::Data<Sandbox>,
    id: web::Path<String>,
    body: web::Json<Postback>,
) -> Result<HttpResponse, ApiError> {
    s.known(&id)?;
    let Postback {
        data,
        params,
        display_text,
    } = body.into_inner();
    if data.is_empty() || data.len() > 300 {
        return Err(bad("`data` must be 1 to 300 characters"));
    }
    if let Some(p) = &params {
        let date_ok = p
            .get("date")
            .and_then(Value::as_str)
            .is_none_or(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok());
        if !p.is_object() || !date_ok {
            return Err(bad(
                "`params` must be an object like {\"date\": \"YYYY-MM-DD\"}",
            ));
        }
    }
    if display_text
        .as_ref()
        .is_some_and(|t| t.is_empty() || t.chars().count() > 300)
    {
        return Err(bad("`display_text` must be 1 to 300 characters"));
    }
    let shown = match (
        params
            .as_ref()
            .and_then(|p| p.get("date"))
            .and_then(Value::as_str),
        display_text,
    ) {
        (Some(d), _) => format!("（日付を選択：{d}）"),
        (None, Some(t)) => t,
        (None, None) => format!("（ボタン：{data}）"),
    };
    let e = s.double.postback_event(&id, &data, params);
    s.note(&id, shown);
    s.send(vec![e]).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn messages(s: web::Data<Sandbox>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    s.known(&id)?;
    let delivered = s.double.delivered_to(&id);
    let dates: Vec<NaiveDate> = delivered
        .iter()
        .map(|d| d.at.with_timezone(&jst()).date_naive())
        .collect();
    let s2 = s.clone();
    let user = id.clone();
    let positions = web::block(move || s2.positions(&user, &dates))
        .await
        .unwrap_or_default();
    let received: Vec<(DateTime<Utc>, Value)> = delivered
        .iter()
        .map(|d| {
            let at = d.at.with_timezone(&jst());
            let date = at.date_naive();
            (d.at, json!({
                "date": date.to_string(),
                "at": at.to_rfc3339(),
                "via": match d.via { Via::Reply => "reply", Via::Push => "push", Via::Multicast => "multicast" },
                "positions": if d.via == Via::Push { positions.get(&date).cloned().unwrap_or_default() } else { Vec::new() },
                "messages": d.messages,
            }))
        })
        .collect();
    let said: Vec<(DateTime<Utc>, Value)> = s
        .said
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(id.as_str())
        .map(|v| {
            v.iter()
                .map(|(at, text)| {
                    let local = at.with_timezone(&jst());
                    (*at, json!({ "date": local.date_naive().to_string(), "at": local.to_rfc3339(), "text": text }))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut talk: Vec<(DateTime<Utc>, u8, Value)> = said
        .iter()
        .map(|(at, v)| (*at, 0, v.clone()))
        .chain(received.iter().map(|(at, v)| (*at, 1, v.clone())))
        .collect();
    talk.sort_by_key(|a| (a.0, a.1));
    let talk: Vec<Value> = talk
        .into_iter()
        .map(|(_, side, mut v)| {
            v["from"] = if side == 0 { "user" } else { "account" }.into();
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "user_id": *id,
        "messages": received.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        "talk": talk,
    })))
}

/// The rich menu the user sees now (their own link, else the default), with every menu that
/// has an alias (for `richmenuswitch`, switched on the page as the LINE app does).
async fn richmenu(s: web::Data<Sandbox>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    s.known(&id)?;
    let describe = |menu_id: &str, object: &Value| {
        json!({
            "rich_menu_id": menu_id,
            "image": format!("/sandbox/api/richmenus/{menu_id}/image"),
            "size": object["size"],
            "chat_bar_text": object["chatBarText"],
            "areas": object["areas"],
        })
    };
    let current = s
        .double
        .rich_menu_shown(&id)
        .map(|(menu_id, m)| describe(&menu_id, &m.object));
    let menus = s.double.rich_menus();
    let aliases: serde_json::Map<String, Value> = s
        .double
        .rich_menu_aliases()
        .into_iter()
        .filter_map(|(alias, menu_id)| {
            let m = menus.get(&menu_id)?;
            Some((alias, describe(&menu_id, &m.object)))
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "current": current, "aliases": aliases })))
}

/// A rich menu's image, as uploaded.
async fn richmenu_image(
    s: web::Data<Sandbox>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let menus = s.double.rich_menus();
    let (bytes, content_type) = menus
        .get(id.as_str())
        .and_then(|m| m.image.clone())
        .ok_or_else(|| err(404, "no such rich menu image"))?;
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("cache-control", "max-age=3600"))
        .body(bytes.to_vec()))
}

async fn get_clock(s: web::Data<Sandbox>) -> HttpResponse {
    HttpResponse::Ok().json(s.clock_json())
}

async fn violations(s: web::Data<Sandbox>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "violations": s.double.refused() }))
}

async fn travel(s: web::Data<Sandbox>, body: web::Json<Travel>) -> Result<HttpResponse, ApiError> {
    let _one = s.travel.lock().await;
    let today = s.clock.today();
    let target = match (body.days, body.date.as_deref()) {
        (Some(n), None) if (1..=MAX_DAYS).contains(&n) => today
            .checked_add_days(Days::new(n))
            .ok_or_else(|| bad("that date is out of range"))?,
        (Some(_), None) => return Err(bad(format!("`days` must be 1 to {MAX_DAYS}"))),
        (None, Some(d)) => {
            let d = NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| bad("`date` must be YYYY-MM-DD"))?;
            if d < today {
                return Err(bad(format!(
                    "time never goes backwards: the sandbox is on {today}; pick {today} or later (or start afresh with --reset)"
                )));
            }
            if (d - today).num_days() as u64 > MAX_DAYS {
                return Err(bad(format!("at most {MAX_DAYS} days at a time")));
            }
            d
        }
        _ => return Err(bad("send {\"days\": N} or {\"date\": \"YYYY-MM-DD\"}")),
    };
    let started = std::time::Instant::now();
    let mut sent = 0;
    let mut days = 0;
    let mut date = today;
    while date <= target {
        let at = date
            .and_time(s.push_at)
            .and_local_timezone(jst())
            .single()
            .map(|t| t.with_timezone(&Utc) + chrono::Duration::minutes(1));
        if let Some(at) = at {
            s.clock.advance_to(at);
        }
        if s.clock.now_jst().time() >= s.push_at || date < s.clock.today() {
            sent += s.deliver(date).await?;
            days += 1;
        }
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    s.save_clock();
    s.settle().await;
    let mut out = s.clock_json();
    out["days_delivered"] = days.into();
    out["pushes"] = sent.into();
    out["took_ms"] = (started.elapsed().as_millis() as u64).into();
    Ok(HttpResponse::Ok().json(out))
}
