//! `spawn_app()`: a fresh database, a LINE double and the service on free ports.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use yorisoi::clock::{Clock, ManualClock, SharedClock, jst};
use yorisoi::config::{PushTime, Secret, Settings};
use yorisoi::line_double::{DoubleConfig, LineDouble};
use yorisoi::startup::{Application, Drive, Steps};

pub struct TestApp {
    pub address: String,
    /// The staff console (the admin listener).
    pub admin_address: String,
    pub double: LineDouble,
    pub settings: Settings,
    pub clock: ManualClock,
    pub db_path: PathBuf,
    /// The event processor and the reply sender: the test drives them.
    pub steps: Steps,
    /// Looks finished by the in-process daily schedule (when a push time is set).
    delivery_passes: Option<tokio::sync::watch::Receiver<u64>>,
    dir: Arc<tempfile::TempDir>,
    stop: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// The variable that sets the suite's clock: an RFC 3339 instant (for example
/// `YORISOI_TEST_NOW=2028-02-29T08:00:00+09:00 cargo test`). The suite passes at any instant;
/// `.ci/run` runs it at the dates that matter (leap days, the turn of the year at 23:59:58).
const TEST_NOW: &str = "YORISOI_TEST_NOW";

/// Now in the tests: 08:00 Asia/Tokyo on 2026-11-21 unless `YORISOI_TEST_NOW` says otherwise.
/// Every clock of a test derives from it, the binary's too (`YORISOI_TEST_CLOCK`).
pub fn now() -> DateTime<Utc> {
    match std::env::var(TEST_NOW)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        Some(v) => DateTime::parse_from_rfc3339(v.trim())
            .unwrap_or_else(|e| panic!("{TEST_NOW}={v}: not an RFC 3339 instant: {e}"))
            .with_timezone(&Utc),
        None => ManualClock::at_jst_morning(NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()).now(),
    }
}

/// Today in the tests (Asia/Tokyo).
pub fn today() -> NaiveDate {
    now().with_timezone(&jst()).date_naive()
}

/// A clock standing on `date` at the suite's time of day (08:00 Asia/Tokyo by default).
pub fn clock_on(date: NaiveDate) -> ManualClock {
    let time = now().with_timezone(&jst()).time();
    let at = date
        .and_time(time)
        .and_local_timezone(jst())
        .unwrap()
        .with_timezone(&Utc);
    ManualClock::new(at)
}

/// A push time the suite's clock has reached today (07:00, or the clock's time if earlier).
pub fn passed_push_time() -> yorisoi::config::PushTime {
    let now = now().with_timezone(&yorisoi::clock::jst()).time();
    yorisoi::config::PushTime::At(now.min(chrono::NaiveTime::from_hms_opt(7, 0, 0).unwrap()))
}

/// A push time later today than the suite's clock (an hour later, or 23:59:59).
pub fn later_push_time() -> yorisoi::config::PushTime {
    let now = now().with_timezone(&yorisoi::clock::jst()).time();
    let last = chrono::NaiveTime::from_hms_opt(23, 59, 59).unwrap();
    assert!(now < last, "no later time today");
    let (later, wrapped) = now.overflowing_add_signed(chrono::Duration::hours(1));
    yorisoi::config::PushTime::At(if wrapped == 0 { later } else { last })
}

/// A due date 114 days ahead: 妊娠23週5日 today, whatever the date.
pub fn due_in_114_days() -> NaiveDate {
    today() + chrono::Days::new(114)
}

/// A date as a parent reads it in the chat: 2027年3月15日（月）.
pub fn ja_date(d: NaiveDate) -> String {
    use chrono::Datelike;
    let weekday =
        ["月", "火", "水", "木", "金", "土", "日"][d.weekday().num_days_from_monday() as usize];
    format!("{}年{}月{}日（{weekday}）", d.year(), d.month(), d.day())
}

/// A date as a parent may type it in the Reiwa era: 令和9年3月15日 (令和1年 is 2019).
pub fn reiwa(d: NaiveDate) -> String {
    use chrono::Datelike;
    format!("令和{}年{}月{}日", d.year() - 2018, d.month(), d.day())
}

/// A date typed with full-width digits: ２０２６年８月１日.
pub fn full_width(d: NaiveDate) -> String {
    d.format("%Y年%-m月%-d日")
        .to_string()
        .chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap(),
            c => c,
        })
        .collect()
}

/// `yorisoi SUBCOMMAND …` as a process, on a test's clock.
pub fn yorisoi(clock: &ManualClock) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_yorisoi"));
    c.env_clear()
        .env("YORISOI_TEST_CLOCK", clock.now().to_rfc3339());
    c
}

/// The last line of a command's output.
pub fn last_line(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

pub fn settings_for(double: &LineDouble, db_path: PathBuf) -> Settings {
    Settings {
        channel_secret: Secret::new(double.channel_secret()),
        channel_access_token: Secret::new(double.access_token()),
        line_api_base: double.base_url(),
        line_data_api_base: double.data_base_url(),
        line_timeout: Duration::from_millis(700),
        database: db_path,
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        push_time: PushTime::Off,
        content_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("messages"),
        richmenu_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("richmenus"),
        line_basic_id: Some("@yorisoitest".into()),
        push_rate: 1_950,
        multicast_rate: 200,
        push_concurrency: 16,
        catch_up_days: 0,
        quota_reserve: None,
        retention_days: 180,
        limits: Default::default(),
        console: yorisoi::config::ConsoleSettings {
            secure_cookies: false,
            session_idle: Duration::from_secs(30 * 60),
            quiet_hours: Some(yorisoi::broadcast::QuietHours::default()),
        },
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_on(today()).await
}

/// An app whose clock stands on `date` at the suite's time of day (08:00 Asia/Tokyo unless
/// `YORISOI_TEST_NOW` says otherwise).
pub async fn spawn_app_on(date: NaiveDate) -> TestApp {
    let double = LineDouble::start(DoubleConfig::default(), "127.0.0.1:0").expect("double starts");
    spawn_app_on_double(double, date).await
}

/// An app with its own fresh database on a given double: two of them are two installations on
/// one LINE channel.
pub async fn spawn_app_on_double(double: LineDouble, date: NaiveDate) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let db_path = dir.path().join("nested").join("yorisoi.db");
    start(double, db_path, clock_on(date), dir, PushTime::Off).await
}

async fn start(
    double: LineDouble,
    db_path: PathBuf,
    clock: ManualClock,
    dir: Arc<tempfile::TempDir>,
    push_time: PushTime,
) -> TestApp {
    let mut settings = settings_for(&double, db_path.clone());
    settings.push_time = push_time;
    let shared: SharedClock = Arc::new(clock.clone());
    let app = Application::build_driven(settings.clone(), shared, Drive::Caller)
        .await
        .expect("app builds");
    let steps = app.steps().expect("driven by the test");
    let delivery_passes = app.delivery_passes();
    let address = format!("http://127.0.0.1:{}", app.port());
    let admin_address = format!("http://127.0.0.1:{}", app.admin_port());
    let stop = app.stop_handle();
    let task = tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        admin_address,
        double,
        settings,
        clock,
        db_path,
        steps,
        delivery_passes,
        dir,
        stop,
        task,
    }
}

impl TestApp {
    pub fn webhook_url(&self) -> String {
        format!("{}/webhook", self.address)
    }

    /// Sends signed events as LINE would.
    pub async fn send(&self, events: &[Value]) -> u16 {
        self.double
            .send_webhook(&self.webhook_url(), events)
            .await
            .expect("webhook request")
    }

    /// Sends a raw body with the given signature header.
    pub async fn post_raw(
        &self,
        body: impl Into<reqwest::Body>,
        signature: Option<(&str, String)>,
    ) -> reqwest::Response {
        let mut req = reqwest::Client::new()
            .post(self.webhook_url())
            .header("content-type", "application/json")
            .body(body);
        if let Some((name, value)) = signature {
            req = req.header(name, value);
        }
        req.send().await.unwrap()
    }

    pub fn db(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(&self.db_path).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Processes every stored event and sends every reply: the steps are driven here, not
    /// waited for. A reply due later (its backoff after a LINE failure runs on the wall clock)
    /// is driven again once due.
    pub async fn settle(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let settled = self.steps.settle().await.expect("the steps run");
            if settled.waiting == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "replies still waiting after 10 s: {settled:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the in-process daily schedule has finished its first look since this app
    /// started: every day due on the clock has been delivered by then, and a day not yet due
    /// has been passed over.
    pub async fn schedule_looked(&self) {
        let mut passes = self
            .delivery_passes
            .clone()
            .expect("the app has a push time");
        tokio::time::timeout(Duration::from_secs(20), passes.wait_for(|n| *n >= 1))
            .await
            .expect("the daily schedule looks within 20 s")
            .expect("the schedule is running");
    }

    /// Sends events and waits for them to be handled.
    pub async fn say(&self, events: &[Value]) {
        assert_eq!(self.send(events).await, 200);
        self.settle().await;
    }

    /// The texts a user received, in order.
    pub fn texts(&self, user: &str) -> Vec<String> {
        self.double.texts_to(user)
    }

    pub fn last_text(&self, user: &str) -> String {
        self.texts(user).last().cloned().unwrap_or_default()
    }

    /// No request was refused by the double (the contract held).
    pub fn assert_contract_held(&self) {
        let refused = self.double.refused();
        assert!(
            refused.is_empty(),
            "the double refused requests: {refused:?}"
        );
    }

    /// Stops the service (as SIGTERM would) and starts a new one on the same database.
    pub async fn restart(self) -> TestApp {
        self.restart_with(PushTime::Off).await
    }

    /// Restarts with the in-process daily delivery at `push_time`.
    pub async fn restart_with(self, push_time: PushTime) -> TestApp {
        self.stop.stop(true).await;
        self.task.await.unwrap().unwrap();
        start(self.double, self.db_path, self.clock, self.dir, push_time).await
    }

    /// `yorisoi push ARGS` against this app's database, double and clock, not yet started.
    pub fn push_command(&self, args: &[&str]) -> std::process::Command {
        let mut c = yorisoi(&self.clock);
        c.arg("push")
            .args(args)
            .env("LINE_CHANNEL_SECRET", self.settings.channel_secret.expose())
            .env(
                "LINE_CHANNEL_ACCESS_TOKEN",
                self.settings.channel_access_token.expose(),
            )
            .env("LINE_API_BASE", &self.settings.line_api_base)
            .env("LINE_TIMEOUT_MS", "2000")
            .env("YORISOI_DATABASE", &self.db_path)
            .env("YORISOI_CONTENT_DIR", &self.settings.content_dir)
            .env("YORISOI_PUSH_TIME", "off")
            .env("RUST_LOG", "warn");
        c
    }

    /// `yorisoi staff ARGS` against this app's database.
    pub fn staff_cli(&self, args: &[&str]) -> std::process::Output {
        yorisoi(&self.clock)
            .arg("staff")
            .args(args)
            .env("YORISOI_DATABASE", &self.db_path)
            .env("RUST_LOG", "warn")
            .output()
            .expect("yorisoi staff runs")
    }

    /// A staff account made with the CLI, and its API token (the CLI's last line).
    pub fn staff_token(&self, login: &str, role: &str) -> String {
        let add = self.staff_cli(&["add", login, "--role", role]);
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
        let out = self.staff_cli(&["token", "create", login]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        last_line(&out.stdout)
    }

    /// Runs `yorisoi push` as a separate process against this app's database and double.
    pub fn push_cli(&self, args: &[&str]) -> std::process::Output {
        self.push_command(args).output().expect("yorisoi push runs")
    }

    /// Registers a reader through the conversation, all in one webhook request.
    pub async fn register(&self, user: &str, stage: &str, nickname: &str, date: NaiveDate) {
        let d = &self.double;
        let events = [
            d.follow_event(user, false),
            d.text_event(user, stage),
            d.text_event(user, nickname),
            d.text_event(user, &date.format("%Y/%m/%d").to_string()),
            d.text_event(user, "はい"),
        ];
        assert_eq!(self.send(&events).await, 200);
    }

    /// Adds a pregnancy or child beside a reader's registration (「子どもを追加」): the stage,
    /// the date and the child's name (「なし」 for none); the reader's nickname is kept.
    pub async fn add_child(&self, user: &str, stage: &str, date: NaiveDate, child_name: &str) {
        let d = &self.double;
        let events = [
            d.text_event(user, "子どもを追加"),
            d.text_event(user, stage),
            d.text_event(user, &date.format("%Y/%m/%d").to_string()),
            d.text_event(user, child_name),
            d.text_event(user, "はい"),
        ];
        assert_eq!(self.send(&events).await, 200);
    }
}
