//! Start and stop: one `serve` per database, refusals at start in one line, bounded shutdown
//! whatever LINE does, and the public listener's limits on slow clients.

use crate::helpers::{clock_on, settings_for, today, yorisoi};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use yorisoi::clock::SharedClock;
use yorisoi::config::Settings;
use yorisoi::health::Health;
use yorisoi::line_double::{DoubleConfig, Fault, LineDouble, user_id};
use yorisoi::startup::Application;

/// A service built from exact settings, running in this test.
pub struct Served {
    pub address: String,
    pub port: u16,
    pub health: Health,
    stop: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn serve(settings: Settings) -> Served {
    let clock: SharedClock = Arc::new(clock_on(today()));
    let app = Application::build(settings, clock)
        .await
        .expect("app builds");
    let port = app.port();
    Served {
        address: format!("http://127.0.0.1:{port}"),
        port,
        health: app.health(),
        stop: app.stop_handle(),
        task: tokio::spawn(app.run_until_stopped()),
    }
}

impl Served {
    /// Stops as SIGTERM does; fails only if the shutdown is unbounded. Returns how long it took.
    pub async fn stop(self) -> Duration {
        let started = Instant::now();
        let stopped = tokio::time::timeout(Duration::from_secs(12), async {
            self.stop.stop(true).await;
            self.task.await
        })
        .await
        .expect("the service stops within 12 s");
        stopped.expect("task joins").expect("stops cleanly");
        started.elapsed()
    }

    pub async fn healthz(&self) -> (u16, serde_json::Value) {
        let r = reqwest::get(format!("{}/healthz", self.address))
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
}

fn settings(double: &LineDouble, dir: &Path) -> Settings {
    settings_for(double, dir.join("yorisoi.db"))
}

/// A port nothing listens on: LINE unreachable.
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
}

fn count(db: &Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// `yorisoi serve` as a process, on these settings' database, double and content.
fn serve_command(s: &Settings) -> Command {
    let mut c = yorisoi(&clock_on(today()));
    c.arg("serve")
        .env("LINE_CHANNEL_SECRET", s.channel_secret.expose())
        .env("LINE_CHANNEL_ACCESS_TOKEN", s.channel_access_token.expose())
        .env("LINE_API_BASE", &s.line_api_base)
        .env("LINE_TIMEOUT_MS", "700")
        .env("YORISOI_DATABASE", &s.database)
        .env("YORISOI_CONTENT_DIR", &s.content_dir)
        .env("YORISOI_LISTEN", "127.0.0.1:0")
        .env("YORISOI_PUSH_TIME", "off")
        .env("RUST_LOG", "off");
    c
}

/// Runs `serve` expecting it to refuse; returns its stderr, checked to be one line.
fn serve_refuses(s: &Settings) -> String {
    let mut child = serve_command(s)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("serve did not refuse to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[tokio::test]
async fn a_second_serve_on_the_same_database_refuses_to_start() {
    let double = LineDouble::start(DoubleConfig::default(), "127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = settings(&double, dir.path());
    let first = serve(s.clone()).await;

    let clock: SharedClock = Arc::new(clock_on(today()));
    let err = match Application::build(s.clone(), clock.clone()).await {
        Ok(_) => panic!("a second serve started on the same database"),
        Err(e) => format!("{e:#}"),
    };
    let db = s.database.display().to_string();
    assert!(err.contains("another yorisoi serve is running"), "{err}");
    // It stops before touching the database: a pending migration stays pending (a newer binary
    // started beside a running one must not change the schema under it). Here the last
    // migration is marked pending again; had the second serve tried it, it would have failed
    // on the tables it creates, which exist, and said so instead of naming the holder.
    let db_conn = || rusqlite::Connection::open(&s.database).unwrap();
    let version = || {
        db_conn()
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .unwrap()
    };
    let current = version();
    db_conn()
        .pragma_update(None, "user_version", current - 1)
        .unwrap();
    match Application::build(s.clone(), clock.clone()).await {
        Ok(_) => panic!("a second serve started on the same database"),
        Err(e) => {
            let e = format!("{e:#}");
            assert!(e.contains("another yorisoi serve is running"), "{e}");
            assert!(!e.contains("migration"), "{e}");
        }
    }
    assert_eq!(version(), current - 1, "no migration ran");
    db_conn()
        .pragma_update(None, "user_version", current)
        .unwrap();
    assert!(err.contains(&db), "names the database: {err}");
    assert!(
        err.contains(&format!("process {}", std::process::id())),
        "names the pid: {err}"
    );
    assert!(err.contains(" since "), "says since when: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // Through the binary: the same line, exit code 2.
    let stderr = tokio::task::spawn_blocking({
        let s = s.clone();
        move || serve_refuses(&s)
    })
    .await
    .unwrap();
    assert!(
        stderr.contains("another yorisoi serve is running") && stderr.contains(&db),
        "{stderr}"
    );

    // The first still serves; once it stops cleanly, the lease is released at once.
    assert_eq!(first.healthz().await.0, 200);
    first.stop().await;
    let again = serve(s).await;
    assert_eq!(again.healthz().await.0, 200);
    again.stop().await;
}

fn broken_pack() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("messages/municipality.toml");
    std::fs::copy(shipped, dir.path().join("municipality.toml")).unwrap();
    std::fs::create_dir_all(dir.path().join("pregnancy")).unwrap();
    std::fs::write(
        dir.path().join("pregnancy/a.toml"),
        "track = \"pregnancy\"\n[[message]]\nday = \"5週0日\"\ntext = \"{name}さん\"\n",
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn serve_refuses_an_invalid_content_pack_naming_the_folder() {
    let double = LineDouble::start(DoubleConfig::default(), "127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pack = broken_pack();
    let mut s = settings(&double, dir.path());
    s.content_dir = pack.path().to_owned();
    let folder = pack.path().display().to_string();

    let clock: SharedClock = Arc::new(clock_on(today()));
    let err = match Application::build(s.clone(), clock).await {
        Ok(_) => panic!("served with an invalid content pack"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains(&folder), "names the folder: {err}");
    assert!(err.contains("error(s)"), "{err}");
    assert!(
        err.contains("a.toml") && err.contains("unknown placeholder"),
        "names the first problem: {err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let stderr = tokio::task::spawn_blocking({
        let s = s.clone();
        move || serve_refuses(&s)
    })
    .await
    .unwrap();
    assert!(
        stderr.contains(&folder) && stderr.contains("unknown placeholder"),
        "{stderr}"
    );

    // The refusal released the serve lease: a correct pack starts on the same database.
    s.content_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("messages");
    serve(s).await.stop().await;
}

#[tokio::test]
async fn serve_refuses_a_database_that_is_not_yorisoi_s_in_one_line() {
    let double = LineDouble::start(DoubleConfig::default(), "127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    type Prepare = fn(&Path);
    let cases: [(&str, Prepare, &str); 3] = [
        (
            "a random file",
            |p| std::fs::write(p, "not a database at all\n".repeat(200)).unwrap(),
            "not an SQLite database",
        ),
        (
            "another application's SQLite database",
            |p| {
                rusqlite::Connection::open(p)
                    .unwrap()
                    .execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL);")
                    .unwrap()
            },
            "not a yorisoi database",
        ),
        (
            "a database of a newer yorisoi",
            |p| {
                let c = yorisoi::store::open_and_migrate(p).unwrap();
                c.pragma_update(None, "user_version", 999).unwrap();
            },
            "newer yorisoi",
        ),
    ];
    for (i, (what, prepare, says)) in cases.into_iter().enumerate() {
        let mut s = settings(&double, dir.path());
        s.database = dir.path().join(format!("case-{i}.db"));
        prepare(&s.database);
        let file = s.database.display().to_string();

        let clock: SharedClock = Arc::new(clock_on(today()));
        let err = match Application::build(s.clone(), clock).await {
            Ok(_) => panic!("{what}: served"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(&file), "{what}: names the file: {err}");
        assert!(err.contains(says), "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(!err.contains("CREATE"), "{what}: no SQL: {err}");

        let stderr = tokio::task::spawn_blocking(move || serve_refuses(&s))
            .await
            .unwrap();
        assert!(
            stderr.contains(&file) && stderr.contains(says),
            "{what}: {stderr}"
        );
    }
}

/// Registration answers queued while LINE cannot be reached.
async fn queue_replies(double: &LineDouble, app: &Served, users: &[String], db: &Path) {
    let url = format!("{}/webhook", app.address);
    for user in users {
        let status = double
            .send_webhook(&url, &[double.follow_event(user, false)])
            .await
            .unwrap();
        assert_eq!(status, 200);
    }
    // Wait until the events are processed and their replies are waiting on LINE.
    let started = Instant::now();
    while count(
        db,
        "SELECT count(*) FROM sends WHERE kind = 'reply' AND status = 'pending'",
    ) < users.len() as i64
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "replies never queued"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn shutdown_is_bounded_with_line_unreachable_and_the_answers_go_out_once_after_restart() {
    let double = LineDouble::start(DoubleConfig::default(), "127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&double, dir.path());
    s.line_api_base = closed_port();
    let users: Vec<String> = (1..=3).map(user_id).collect();

    let app = serve(s.clone()).await;
    queue_replies(&double, &app, &users, &s.database).await;
    let took = app.stop().await;
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
    assert_eq!(
        count(
            &s.database,
            "SELECT count(*) FROM sends WHERE kind = 'reply' AND status = 'pending'"
        ),
        users.len() as i64,
        "what was not sent stays recorded"
    );
    for user in &users {
        assert!(double.texts_to(user).is_empty());
    }

    // LINE is back: the answers go out after the restart, each once.
    s.line_api_base = double.base_url();
    let app = serve(s.clone()).await;
    let started = Instant::now();
    while users.iter().any(|u| double.texts_to(u).is_empty()) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "answers never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let settled = Instant::now();
    while count(
        &s.database,
        "SELECT count(*) FROM sends WHERE kind = 'reply' AND status = 'pending'",
    ) > 0
    {
        assert!(
            settled.elapsed() < Duration::from_secs(10),
            "the reply queue never settled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for user in &users {
        let texts = double.texts_to(user);
        assert_eq!(
            double.delivered_to(user).len(),
            1,
            "answered exactly once: {texts:?}"
        );
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(
            texts[0].contains("友だち追加ありがとうございます"),
            "{texts:?}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn shutdown_is_bounded_while_line_hangs_on_a_request() {
    let double = LineDouble::start(DoubleConfig::default(), "127.0.0.1:0").unwrap();
    // Every message request hangs for a minute, longer than the client waits.
    double.inject(Fault::SlowAccept(Duration::from_secs(60)), 100);
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&double, dir.path());
    s.line_timeout = Duration::from_secs(30);
    let users: Vec<String> = (1..=2).map(user_id).collect();

    let app = serve(s.clone()).await;
    queue_replies(&double, &app, &users, &s.database).await;
    let took = app.stop().await;
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
}

#[tokio::test]
async fn the_serve_process_stops_within_10_s_of_sigterm_with_line_unreachable() {
    let double = LineDouble::start(DoubleConfig::default(), "127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&double, dir.path());
    s.line_api_base = closed_port();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = serve_command(&s)
        .env("YORISOI_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/webhook");
    let started = Instant::now();
    loop {
        if double
            .send_webhook(&url, &[double.follow_event(&user_id(1), false)])
            .await
            .is_ok_and(|s| s == 200)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "serve never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let queued = Instant::now();
    while count(
        &s.database,
        "SELECT count(*) FROM sends WHERE kind = 'reply' AND status = 'pending'",
    ) < 1
    {
        assert!(
            queued.elapsed() < Duration::from_secs(10),
            "reply never queued"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stopping = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if stopping.elapsed() > Duration::from_secs(12) {
            child.kill().unwrap();
            panic!("serve still running 12 s after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = stopping.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after SIGTERM"
    );
    assert!(exit.success(), "{exit:?}");
    assert_eq!(
        count(
            &s.database,
            "SELECT count(*) FROM sends WHERE kind = 'reply' AND status = 'pending'"
        ),
        1,
        "the unsent answer stays recorded"
    );
    assert_eq!(
        count(&s.database, "SELECT count(*) FROM process_leases"),
        0,
        "the serve lease is released"
    );
}

/// Reads what the server answers (or until it closes), at most `within`.
fn answer_within(stream: &mut std::net::TcpStream, within: Duration) -> String {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(e) => panic!("no answer and not closed within {within:?}: {e}"),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_webhooks_still_work_meanwhile() {
    let double = LineDouble::start(DoubleConfig::default(), "127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&double, dir.path());
    s.limits.request_timeout = Duration::from_secs(1);
    let app = serve(s.clone()).await;
    let addr = format!("127.0.0.1:{}", app.port);
    let head = "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nx-line-signature: AAAA\r\nContent-Length: 100\r\n\r\n";

    // Headers, then no body at all.
    let withheld = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(head.as_bytes()).unwrap();
            let started = Instant::now();
            let answer = answer_within(&mut c, Duration::from_secs(5));
            (answer, started.elapsed())
        })
    };
    // A body dribbled a byte at a time: the timeout is for the whole body, not per byte.
    let dribbled = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(head.as_bytes()).unwrap();
            let started = Instant::now();
            for _ in 0..30 {
                if c.write_all(b" ").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
                if started.elapsed() > Duration::from_millis(1500) {
                    break;
                }
            }
            let answer = answer_within(&mut c, Duration::from_secs(5));
            (answer, started.elapsed())
        })
    };
    // Not even the headers complete.
    let no_head = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            let started = Instant::now();
            let answer = answer_within(&mut c, Duration::from_secs(5));
            (answer, started.elapsed())
        })
    };

    // Meanwhile LINE's requests are served as usual.
    let user = user_id(1);
    let url = format!("{}/webhook", app.address);
    for _ in 0..3 {
        let status = double
            .send_webhook(&url, &[double.text_event(&user, "こんにちは")])
            .await
            .unwrap();
        assert_eq!(status, 200);
    }

    for (what, client) in [
        ("withheld", withheld),
        ("dribbled", dribbled),
        ("no head", no_head),
    ] {
        let (answer, took) = tokio::task::spawn_blocking(move || client.join().unwrap())
            .await
            .unwrap();
        assert!(took < Duration::from_secs(4), "{what}: took {took:?}");
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{what}: answered {answer:?}"
        );
        if what != "no head" {
            assert!(answer.starts_with("HTTP/1.1 408"), "{what}: {answer:?}");
        }
    }
    app.stop().await;
}

/// Waits until `serve` on `port` answers its health check.
async fn wait_healthy(port: u16, child: &mut std::process::Child) {
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await
            && r.status() == 200
        {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "serve exited instead of starting"
        );
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "serve never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_serve_killed_with_sigkill_is_replaced_at_once_on_the_same_host() {
    let double = LineDouble::start(DoubleConfig::default(), "127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = settings(&double, dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut first = serve_command(&s)
        .env("YORISOI_LISTEN", &listen)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_healthy(port, &mut first).await;
    first.kill().unwrap(); // SIGKILL: no release
    first.wait().unwrap();
    assert_eq!(count(&s.database, "SELECT count(*) FROM process_leases"), 1);

    // Its lease has not expired, but its process is gone: the next one starts without waiting.
    let mut second = serve_command(&s)
        .env("YORISOI_LISTEN", &listen)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let restarted = Instant::now();
    wait_healthy(port, &mut second).await;
    assert!(
        restarted.elapsed() < Duration::from_secs(10),
        "{:?}",
        restarted.elapsed()
    );
    let holder_pid = count(&s.database, "SELECT pid FROM process_leases");
    assert_eq!(holder_pid, i64::from(second.id()));
    second.kill().unwrap();
    second.wait().unwrap();
}
