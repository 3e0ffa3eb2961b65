//! Personal data: private files, logs without it, retention and erasure, tried from outside.

use crate::helpers::{TestApp, due_in_114_days, spawn_app, spawn_app_on, today};
use chrono::{NaiveDate, TimeDelta};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use yorisoi::clock::Clock;
use yorisoi::line_double::{DoubleConfig, Fault, LineDouble, user_id};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_database_and_its_folder_are_private() {
    let app = spawn_app().await;
    let u = user_id(600);
    app.register(&u, "妊娠中", "ゆずきち", due_in_114_days())
        .await;
    app.settle().await;
    let db = &app.db_path;
    assert_eq!(
        mode(db.parent().unwrap()),
        0o700,
        "the folder yorisoi created"
    );
    assert_eq!(mode(db), 0o600, "the database");
    for suffix in ["-wal", "-shm"] {
        let side = db.with_file_name(format!("yorisoi.db{suffix}"));
        assert_eq!(mode(&side), 0o600, "{}", side.display());
    }
}

/// `yorisoi data …` against the app's database.
fn data_cli(app: &TestApp, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = crate::helpers::yorisoi(&app.clock);
    cmd.arg("data")
        .args(args)
        .env("LINE_CHANNEL_SECRET", app.settings.channel_secret.expose())
        .env(
            "LINE_CHANNEL_ACCESS_TOKEN",
            app.settings.channel_access_token.expose(),
        )
        .env("YORISOI_DATABASE", &app.db_path)
        .env("RUST_LOG", "info");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().expect("yorisoi data runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every text value of every column of every table that contains one of `needles`.
fn traces(app: &TestApp, needles: &[&str]) -> Vec<String> {
    let db = app.db();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.len() >= 10, "{tables:?}");
    let mut found = Vec::new();
    for table in &tables {
        let columns: Vec<String> = db
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for column in &columns {
            for needle in needles {
                let n: i64 = db
                    .query_row(
                        &format!(
                            "SELECT count(*) FROM \"{table}\" WHERE instr(CAST(\"{column}\" AS TEXT), ?1) > 0"
                        ),
                        [needle],
                        |r| r.get(0),
                    )
                    .unwrap();
                if n > 0 {
                    found.push(format!("{table}.{column} holds {needle:?} ({n} row(s))"));
                }
            }
        }
    }
    found
}

/// Byte offsets of `needle` in the files of the database (main, WAL).
fn raw_traces(app: &TestApp, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for suffix in ["", "-wal"] {
        let path = app.db_path.with_file_name(format!("yorisoi.db{suffix}"));
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        for needle in needles {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(format!("{} holds {needle:?}", path.display()));
            }
        }
    }
    found
}

#[tokio::test]
async fn data_erase_leaves_no_trace_of_the_reader_but_the_counts() {
    let app = spawn_app().await;
    let d = &app.double;
    let gone = user_id(0x61a5e);
    let stays = user_id(0x57a75);
    // The reader to erase registers typing her due date in three ways along the way, chats,
    // sends a sticker; another reader registers too and must be untouched.
    let due = due_in_114_days();
    let (iso, slash, ja, ja_month) = (
        due.to_string(),
        due.format("%Y/%-m/%-d").to_string(),
        due.format("%Y年%-m月%-d日").to_string(),
        due.format("%Y年%-m月").to_string(),
    );
    let child_birthday = today() - chrono::Days::new(112);
    app.say(&[d.follow_event(&gone, false)]).await;
    for t in [
        "妊娠中",
        "ゆずきち",
        &ja,
        "いいえ",
        "妊娠中",
        "ゆずきち",
        &slash,
        "はい",
    ] {
        app.say(&[d.text_event(&gone, t)]).await;
    }
    app.say(&[d.sticker_event(&gone), d.text_event(&gone, "ヘルプ")])
        .await;
    assert!(
        app.texts(&gone)
            .iter()
            .any(|t| t.contains("登録が完了しました")),
        "{:?}",
        app.texts(&gone)
    );
    app.register(&stays, "子育て中", "もちまる", child_birthday)
        .await;
    app.settle().await;
    let needles = [gone.as_str(), "ゆずきち", &iso, &slash, &ja, &ja_month];
    assert!(
        !traces(&app, &needles).is_empty(),
        "the scan finds the reader before"
    );

    let out = data_cli(&app, &["erase", "--user", &gone], &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("erased the reader: 1 registration(s)"),
        "{stdout}"
    );
    assert!(!stderr.contains(&gone), "{stderr}");

    let left = traces(&app, &needles);
    assert!(left.is_empty(), "{left:#?}");
    let raw = raw_traces(&app, &[gone.as_str(), "ゆずきち", &iso]);
    assert!(raw.is_empty(), "{raw:#?}");
    let month = today().format("%Y-%m");
    assert_eq!(
        app.count(&format!(
            "SELECT count FROM anonymised_counts WHERE stage = 'pregnancy' AND final_status = 'active'
             AND cause = 'erasure' AND registered_month = '{month}' AND ended_month = '{month}'"
        )),
        1
    );
    // The other reader is untouched.
    assert_eq!(app.count("SELECT count(*) FROM line_users"), 1);
    assert!(
        !traces(
            &app,
            &[stays.as_str(), "もちまる", &child_birthday.to_string()]
        )
        .is_empty()
    );

    // Erasing again: nothing is known of this id any more.
    let again = data_cli(&app, &["erase", "--user", &gone], &[]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again.stderr));
    assert!(text(&again.stderr).contains("no reader with this LINE user id"));
    assert!(!text(&again.stderr).contains(&gone));
}

#[tokio::test]
async fn data_erase_refuses_a_malformed_id_without_repeating_it() {
    let app = spawn_app().await;
    for (what, id) in [
        ("too short", "U1234"),
        ("upper-case hex", "U4AF4980629A0C2D3E5B1E9C2F0A1B2C3"),
        ("a nickname", "ゆずきち"),
        ("empty", ""),
    ] {
        let out = data_cli(&app, &["erase", "--user", id], &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.contains("not a LINE user id"), "{what}: {stderr}");
        assert!(id.is_empty() || !stderr.contains(id), "{what}: {stderr}");
    }
}

#[tokio::test]
async fn readers_who_left_are_anonymised_once_the_period_has_passed() {
    let app = spawn_app().await;
    let d = &app.double;
    let (blocked, active, never) = (user_id(701), user_id(702), user_id(703));
    let (birthday, due_date) = (today() - chrono::Days::new(112), due_in_114_days());
    app.register(&blocked, "子育て中", "ぽんた", birthday).await;
    app.register(&active, "妊娠中", "るる", due_date).await;
    app.say(&[d.follow_event(&never, false)]).await;
    app.say(&[d.unfollow_event(&blocked), d.unfollow_event(&never)])
        .await;

    let mut conn = yorisoi::store::connect(&app.db_path).unwrap();
    let now = app.clock.now();
    let early = yorisoi::store::retention::run(&mut conn, now + TimeDelta::days(179), 180).unwrap();
    assert_eq!((early.readers, early.registrations), (0, 0), "{early:?}");
    // Processed events and finished replies are past their 30 days already.
    assert!(early.events > 0 && early.replies > 0, "{early:?}");
    assert_eq!(app.count("SELECT count(*) FROM webhook_events"), 0);
    assert_eq!(app.count("SELECT count(*) FROM sends"), 0);
    assert_eq!(app.count("SELECT count(*) FROM line_users"), 3);

    let due = yorisoi::store::retention::run(&mut conn, now + TimeDelta::days(181), 180).unwrap();
    assert_eq!((due.readers, due.registrations), (2, 1), "{due:?}");
    let left = traces(
        &app,
        &[
            blocked.as_str(),
            never.as_str(),
            "ぽんた",
            &birthday.to_string(),
        ],
    );
    assert!(left.is_empty(), "{left:#?}");
    assert!(!traces(&app, &[active.as_str(), "るる", &due_date.to_string()]).is_empty());
    let month = today().format("%Y-%m");
    assert_eq!(
        app.count(&format!(
            "SELECT count FROM anonymised_counts WHERE stage = 'child' AND final_status = 'blocked'
             AND ever_stopped = 0 AND cause = 'retention' AND registered_month = '{month}' AND ended_month = '{month}'"
        )),
        1
    );
    assert_eq!(
        app.count(
            "SELECT count FROM anonymised_counts WHERE stage = 'none' AND final_status = 'blocked' AND cause = 'retention'"
        ),
        1
    );
    // The active reader still receives their replies.
    app.say(&[d.text_event(&active, "ヘルプ")]).await;
    assert!(!app.last_text(&active).is_empty());
}

#[tokio::test]
async fn data_anonymise_prints_counts_and_logs_json_lines() {
    // Registered in January 2024; the anonymisation runs on the test's clock, days later.
    let app = spawn_app_on(NaiveDate::from_ymd_opt(2024, 1, 10).unwrap()).await;
    let d = &app.double;
    let (blocked, active) = (user_id(801), user_id(802));
    app.register(
        &blocked,
        "子育て中",
        "ぽんた",
        NaiveDate::from_ymd_opt(2023, 12, 1).unwrap(),
    )
    .await;
    app.register(
        &active,
        "子育て中",
        "るる",
        NaiveDate::from_ymd_opt(2023, 12, 2).unwrap(),
    )
    .await;
    app.say(&[d.unfollow_event(&blocked)]).await;
    // 180 days after the block: not yet; one more day: due.
    app.clock
        .set(app.clock.now() + chrono::Duration::days(180) - chrono::Duration::minutes(1));
    let out = data_cli(&app, &["anonymise", "--json"], &[]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["readers"],
        0,
        "{}",
        text(&out.stdout)
    );
    app.clock.set(app.clock.now() + chrono::Duration::days(1));

    let out = data_cli(&app, &["anonymise"], &[("YORISOI_LOG_FORMAT", "json")]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("anonymised 1 reader(s) (1 registration(s)) whose last registration ended more than 180 days ago"),
        "{stdout}"
    );
    assert!(!stdout.contains(&blocked) && !stderr.contains(&blocked));
    assert!(!stderr.is_empty(), "the run logs");
    for line in stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
    assert_eq!(app.count("SELECT count(*) FROM line_users"), 1);

    let out = data_cli(&app, &["anonymise", "--json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["readers"], 0);
    assert_eq!(v["retention_days"], 180);
    assert!(
        !text(&out.stderr).contains('\u{1b}'),
        "no colour off a terminal"
    );
}

/// Runs the real `yorisoi serve` with debug logs into a file; returns its address and the log
/// path.
struct Served {
    child: std::process::Child,
    address: String,
    log: std::path::PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn serve(double: &LineDouble, dir: &Path) -> Served {
    let port = free_port();
    let log = dir.join("serve.log");
    let child = crate::helpers::yorisoi(&crate::helpers::clock_on(crate::helpers::today()))
        .arg("serve")
        .env("LINE_CHANNEL_SECRET", double.channel_secret())
        .env("LINE_CHANNEL_ACCESS_TOKEN", double.access_token())
        .env("LINE_API_BASE", double.base_url())
        .env("LINE_TIMEOUT_MS", "300")
        .env("YORISOI_DATABASE", dir.join("db").join("yorisoi.db"))
        .env("YORISOI_LISTEN", format!("127.0.0.1:{port}"))
        .env("YORISOI_ADMIN_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("YORISOI_PUSH_TIME", "off")
        .env(
            "YORISOI_CONTENT_DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("messages"),
        )
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("yorisoi serve starts");
    let address = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{address}/healthz")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not come up: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Served {
        child,
        address,
        log,
    }
}

impl Served {
    /// SIGTERM, then the log.
    async fn stop(mut self) -> String {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "serve did not stop");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        std::fs::read_to_string(&self.log).unwrap()
    }
}

/// Polls until `done` holds (the service works in the background).
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_log_of_a_day_with_malformed_bodies_and_failures_holds_no_personal_data() {
    let double = LineDouble::start(DoubleConfig::default(), "127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let served = serve(&double, dir.path()).await;
    let url = format!("{}/webhook", served.address);
    let http = reqwest::Client::new();
    let user = user_id(0x5ec2e7);
    let other = user_id(0x0dd);
    let nickname = "ゆずきち";
    let chat = "夜泣きがつらいです";

    // Well signed, so they pass the signature, and malformed in ways serde's messages quote.
    let malformed = [
        format!(r#"{{"destination":"{user}","events":"{user}"}}"#),
        format!(
            r#"{{"destination":"x","events":[{{"type":"message","timestamp":"{user}","source":{{"type":"user","userId":"{user}"}}}}]}}"#
        ),
        format!(r#"{{"destination":"x","events":[{{"type":"follow","source":"{user}"}}]}}"#),
        format!(
            r#"{{"destination":"x","events":[{{"type":"message","webhookEventId":["{nickname}"],"source":{{"type":"user","userId":"{other}"}}}}]}}"#
        ),
        format!(
            r#"{{"destination":"x","events":[{{"type":"message","deliveryContext":{{"isRedelivery":"{nickname}"}}}}]}}"#
        ),
        format!(
            r#"{{"destination":"x","events":[{{"type":"message","source":{{"type":"user","userId":{user}}}}}]}}"#
        ),
        format!(
            r#"{{"destination":"x","events":[{{"type":"message","source":{{"type":"user","userId":"{user}"}},"message":{{"type":"text","text":"{chat}"#
        ),
    ];
    for body in &malformed {
        let resp = http
            .post(&url)
            .header("content-type", "application/json")
            .header(
                "x-line-signature",
                yorisoi::webhook::sign(double.channel_secret(), body.as_bytes()),
            )
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{body}");
    }

    // A registration typed in the chat, as a parent would.
    let say = |events: Vec<serde_json::Value>| {
        let (double, url) = (&double, &url);
        async move {
            assert_eq!(double.send_webhook(url, &events).await.unwrap(), 200);
        }
    };
    let due = due_in_114_days();
    let (iso, ja, padded) = (
        due.to_string(),
        due.format("%Y年%-m月%-d日").to_string(),
        due.format("%Y/%m/%d").to_string(),
    );
    say(vec![double.follow_event(&user, false)]).await;
    for (t, expect) in [
        ("妊娠中", "ニックネーム"),
        (nickname, "出産予定日"),
        (ja.as_str(), "この内容で登録します"),
        ("はい", "登録が完了しました"),
    ] {
        let before = double.texts_to(&user).len();
        say(vec![double.text_event(&user, t)]).await;
        until(expect, || {
            double.texts_to(&user).len() > before
                && double.texts_to(&user).last().unwrap().contains(expect)
        })
        .await;
    }

    // Failures at LINE: server errors, a rate limit, timeouts, while the parent writes.
    let sent_before = double.delivered().len();
    double.inject(Fault::Status(500), 2);
    double.inject(Fault::Status(429), 1);
    double.inject(Fault::SlowAccept(Duration::from_millis(600)), 1);
    say(vec![double.text_event(&user, chat)]).await;
    say(vec![
        double.text_event(&user, &format!("{nickname}です。{padded}")),
    ])
    .await;
    say(vec![double.sticker_event(&user)]).await;
    until("answers despite the faults", || {
        double.delivered().len() > sent_before + 1
    })
    .await;
    say(vec![double.unfollow_event(&user)]).await;
    // The event processor has seen everything: a last request's answer has been sent.
    say(vec![double.follow_event(&other, false)]).await;
    until("the last answer", || !double.texts_to(&other).is_empty()).await;

    let log = served.stop().await;
    assert!(log.contains("malformed webhook body"), "{log}");
    assert!(log.contains("LINE request failed"), "{log}");
    assert!(log.contains("registration completed"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "no colour codes when stderr is a file"
    );
    for secret in [
        user.as_str(),
        other.as_str(),
        nickname,
        chat,
        &iso,
        &ja,
        &padded,
        double.channel_secret(),
        double.access_token(),
    ] {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(secret)).collect();
        assert!(lines.is_empty(), "{secret:?} is in the log: {lines:#?}");
    }
    // The reader's registration was stored while the log stayed clean.
    let db = rusqlite::Connection::open(dir.path().join("db").join("yorisoi.db")).unwrap();
    let n: i64 = db
        .query_row(
            "SELECT count(*) FROM registrations WHERE nickname = ?1 AND status = 'blocked'",
            [nickname],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// Run by `a_panic_logs_its_location_not_its_message` in a child process only.
#[test]
fn panic_probe() {
    if std::env::var_os("YORISOI_PANIC_PROBE").is_none() {
        return;
    }
    yorisoi::telemetry::init();
    let id = user_id(0xbad);
    let worker = std::thread::Builder::new()
        .name("probe".into())
        .spawn(move || panic!("cannot handle {id} (ゆずきち, 2027-03-15)"))
        .unwrap();
    assert!(worker.join().is_err());
}

#[test]
fn a_panic_logs_its_location_not_its_message() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "privacy::panic_probe",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("YORISOI_PANIC_PROBE", "1")
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    let all = format!("{}{stderr}", text(&out.stdout));
    assert!(out.status.success(), "{all}");
    assert!(stderr.contains("panic (its message is not logged"), "{all}");
    assert!(
        stderr.contains("privacy.rs"),
        "the location is logged: {all}"
    );
    assert!(stderr.contains("probe"), "the thread is named: {all}");
    for secret in [
        user_id(0xbad).as_str(),
        "ゆずきち",
        "2027-03-15",
        "cannot handle",
    ] {
        assert!(!all.contains(secret), "{secret:?}: {all}");
    }
}

#[test]
fn an_existing_database_readable_by_others_is_made_private() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("yorisoi.db");
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_yorisoi"))
        .args(["data", "anonymise"])
        .env_clear()
        .env("LINE_CHANNEL_SECRET", "s")
        .env("LINE_CHANNEL_ACCESS_TOKEN", "t")
        .env("YORISOI_DATABASE", &db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&db), 0o600);
    assert!(
        text(&out.stderr).contains("it is now 0600"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn data_commands_do_not_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("typo").join("yorisoi.db");
    for args in [
        &["data", "anonymise"][..],
        &["data", "erase", "--user", &user_id(1)],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_yorisoi"))
            .args(args)
            .env_clear()
            .env("LINE_CHANNEL_SECRET", "s")
            .env("LINE_CHANNEL_ACCESS_TOKEN", "t")
            .env("YORISOI_DATABASE", &db)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains("there is no database at"),
            "{}",
            text(&out.stderr)
        );
        assert!(!db.exists() && !db.parent().unwrap().exists());
    }
}

#[tokio::test]
async fn erasing_from_the_chat_leaves_no_trace_but_the_counts_and_the_follow() {
    let app = spawn_app().await;
    let d = &app.double;
    let u = user_id(0xe2a5e);
    let due = due_in_114_days();
    let (iso, slash) = (due.to_string(), due.format("%Y/%-m/%-d").to_string());
    app.register(&u, "妊娠中", "ゆずもち", due).await;
    app.settle().await;
    let follows =
        app.count("SELECT COALESCE(sum(count), 0) FROM daily_counts WHERE metric = 'follow'");
    for t in ["登録内容", "データを削除", "削除する"] {
        app.say(&[d.text_event(&u, t)]).await;
    }
    app.settle().await;
    assert!(app.last_text(&u).contains("すべて削除しました"));
    let left = traces(&app, &["ゆずもち", &iso, &slash]);
    assert!(left.is_empty(), "{left:#?}");
    let raw = raw_traces(&app, &["ゆずもち", &iso]);
    assert!(raw.is_empty(), "the WAL is checkpointed too: {raw:#?}");
    assert_eq!(
        app.count("SELECT count(*) FROM anonymised_counts WHERE cause = 'erasure'"),
        1
    );
    // They still follow the account, as a new reader with nothing but their LINE id.
    assert_eq!(
        app.count("SELECT count(*) FROM line_users WHERE following = 1"),
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM registrations"), 0);
    assert_eq!(
        app.count("SELECT COALESCE(sum(count), 0) FROM daily_counts WHERE metric = 'follow'"),
        follows,
        "an erase is not a new follow"
    );
    assert_eq!(
        app.count("SELECT count FROM stats_totals WHERE metric = 'followers'"),
        1
    );
}
