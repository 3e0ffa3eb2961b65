//! The send engine: retry keys per installation, a revoked token, replies that cannot double,
//! the per-reader reply limit.

use crate::helpers::{TestApp, spawn_app, spawn_app_on, spawn_app_on_double, today};
use chrono::{Days, NaiveDate};
use serde_json::Value;
use yorisoi::clock::Clock;
use yorisoi::line_double::{Fault, Via, user_id};

fn summary(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "push printed no JSON: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn pushes_to(app: &TestApp, user: &str) -> usize {
    app.double
        .delivered_to(user)
        .iter()
        .filter(|d| d.via == Via::Push)
        .count()
}

async fn register_readers(app: &TestApp, users: std::ops::RangeInclusive<u64>, today: NaiveDate) {
    for i in users {
        app.register(&user_id(i), "妊娠中", "はな", today + Days::new(100 + i))
            .await;
    }
    app.settle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_databases_on_one_channel_the_same_day_each_deliver_to_every_reader() {
    let today = today();
    let first = spawn_app_on(today).await;
    // A second installation (a staging copy, a reinstall) on the same channel, the same readers
    // registering again: the same LINE users, internal ids, dates and push numbers.
    let second = spawn_app_on_double(first.double.clone(), today).await;
    register_readers(&first, 1..=3, today).await;
    register_readers(&second, 1..=3, today).await;

    let a = summary(&first.push_cli(&["--json"]));
    let b = summary(&second.push_cli(&["--json"]));
    assert_eq!(
        (a["sent"].as_u64(), b["sent"].as_u64()),
        (Some(3), Some(3)),
        "{a} {b}"
    );
    assert_eq!(
        b["already_sent"], 0,
        "no key of the second is taken for the first's"
    );
    for user in (1..=3).map(user_id) {
        assert_eq!(
            pushes_to(&first, &user),
            2,
            "each installation's message arrives"
        );
    }
    assert_eq!(first.double.stats().duplicates, 0);
    first.assert_contract_held();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_stops_the_day_and_once_fixed_the_day_completes_once() {
    let today = today();
    let app = spawn_app_on(today).await;
    register_readers(&app, 1..=3, today).await;

    app.double.set_token_revoked(true);
    let out = app.push_cli(&["--json"]);
    let s = summary(&out);
    assert_eq!(out.status.code(), Some(1), "the run says it did not finish");
    assert!(
        s["halted"].as_str().unwrap_or_default().contains("401"),
        "{s}"
    );
    assert_eq!(s["failed"], 0, "nothing is marked failed: {s}");
    assert_eq!(s["finished"], false);
    assert_eq!(
        app.count("SELECT count(*) FROM sends WHERE kind = 'daily' AND status = 'pending'"),
        3,
        "every push stays planned for the rerun"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM delivery_runs WHERE finished_at IS NOT NULL"),
        0,
        "the date is not finished"
    );

    app.double.set_token_revoked(false);
    let out = app.push_cli(&["--json"]);
    let s = summary(&out);
    assert!(out.status.success(), "{s}");
    assert_eq!(
        (s["sent"].as_u64(), s["finished"].as_bool()),
        (Some(3), Some(true)),
        "{s}"
    );
    for user in (1..=3).map(user_id) {
        assert_eq!(pushes_to(&app, &user), 1, "nobody missing, nobody doubled");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_push_run_waits_or_names_who_delivers() {
    let today = today();
    let app = spawn_app_on(today).await;
    // Another process holds the delivery lease (live for another minute).
    app.db()
        .execute(
            "INSERT INTO process_leases (name, holder, pid, host, acquired_at, expires_ms)
             VALUES ('delivery', 'other', 4242, 'elsewhere', '2026-01-01T00:00:00.000Z',
                     CAST(unixepoch('subsec') * 1000 AS INTEGER) + 60000)",
            [],
        )
        .unwrap();
    let out = app.push_cli(&["--wait", "0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("4242") && err.contains("elsewhere"),
        "names the holder: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_run_takes_over_at_once_the_lease_of_a_delivery_process_that_is_gone() {
    let today = today();
    let app = spawn_app_on(today).await;
    register_readers(&app, 1..=2, today).await;
    // A `yorisoi push` killed with kill -9 on this host: its lease row stays, live for another
    // minute, but its process is gone.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let host = yorisoi::store::leases::Holder::new().host;
    app.db()
        .execute(
            "INSERT INTO process_leases (name, holder, pid, host, acquired_at, expires_ms)
             VALUES ('delivery', 'killed', ?1, ?2, '2026-01-01T00:00:00.000Z',
                     CAST(unixepoch('subsec') * 1000 AS INTEGER) + 60000)",
            rusqlite::params![gone.id(), host],
        )
        .unwrap();
    let started = std::time::Instant::now();
    let out = app.push_cli(&["--json", "--wait", "0"]);
    let s = summary(&out);
    assert!(
        out.status.success(),
        "not refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s["sent"], 2, "{s}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "taken over at once, not after the lease expired"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM process_leases WHERE name = 'delivery'"),
        0,
        "released at the end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_whose_answer_was_lost_is_retried_with_its_token_and_arrives_once() {
    let app = spawn_app().await;
    let user = user_id(1);
    // LINE takes the reply but its answer comes after the client gave up: outcome unknown.
    app.double.inject_on(
        Some(Via::Reply),
        Fault::SlowAccept(std::time::Duration::from_millis(1500)),
        1,
    );
    app.say(&[app.double.follow_event(&user, false)]).await;
    let got = app.double.delivered_to(&user);
    assert_eq!(got.len(), 1, "one answer: {got:?}");
    assert_eq!(got[0].via, Via::Reply);
    assert_eq!(
        app.count("SELECT count(*) FROM sends WHERE kind = 'reply' AND status = 'sent' AND reply_attempts = 2"),
        1,
        "the retry used the same token, which LINE refused as spent"
    );
    assert_eq!(app.double.stats().pushes, 0, "no push fallback");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_a_reply_and_its_record_never_doubles_the_answer() {
    let app = spawn_app().await;
    let user = user_id(2);
    let follow = app.double.follow_event(&user, false);
    let token = follow["replyToken"].as_str().unwrap().to_owned();
    app.say(&[follow]).await;
    let first = app.double.delivered_to(&user);
    assert_eq!(first.len(), 1);
    // As the database stood had the process died after LINE took the reply and before its
    // outcome was recorded: the batch claimed (its reply attempt counted), still pending.
    let messages = serde_json::to_string(&first[0].messages).unwrap();
    app.db()
        .execute(
            "UPDATE sends SET status = 'pending', messages = ?1, reply_attempts = 1, attempts = 1,
               lease_until = CAST(unixepoch('subsec') * 1000 AS INTEGER) + 600000,
               reply_token = ?2, via = NULL
             WHERE id = (SELECT max(id) FROM sends WHERE kind = 'reply')",
            [messages, token],
        )
        .unwrap();
    let app = app.restart().await;
    app.settle().await;
    assert_eq!(
        app.double.delivered_to(&user).len(),
        1,
        "the answer is not sent again, as a reply or a push"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM sends WHERE kind = 'reply' AND status = 'sent'"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stickers_in_a_loop_get_at_most_the_per_minute_replies_then_one_note() {
    let app = spawn_app().await;
    let user = user_id(3);
    app.say(&[app.double.follow_event(&user, false)]).await;
    let stickers: Vec<Value> = (0..60).map(|_| app.double.sticker_event(&user)).collect();
    for burst in stickers.chunks(20) {
        app.say(burst).await;
    }
    // The greeting and 19 sticker answers make the minute's 20, then one note.
    let limit = yorisoi::processor::REPLIES_PER_MINUTE as usize;
    let answers = app.double.delivered_to(&user);
    assert_eq!(answers.len(), limit + 1, "the limit, then one note");
    assert!(
        app.last_text(&user).contains("少し時間をおいて"),
        "{}",
        app.last_text(&user)
    );
    assert_eq!(
        app.count("SELECT count(*) FROM webhook_events WHERE outcome LIKE '%withheld%'"),
        60 - (limit as i64 - 1) - 1,
        "every other sticker was processed and answered with silence"
    );

    // A minute later the reader is answered again.
    app.clock
        .set(app.clock.now() + chrono::Duration::seconds(61));
    app.say(&[app.double.text_event(&user, "こんにちは")]).await;
    assert_eq!(app.double.delivered_to(&user).len(), limit + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_is_not_pushed_when_the_quota_left_is_kept_for_the_daily_delivery() {
    let app = spawn_app().await;
    let reader = user_id(4);
    app.register(
        &reader,
        "妊娠中",
        "はな",
        crate::helpers::today() + Days::new(100),
    )
    .await;
    app.settle().await;
    // One push left this month, and one active reader who needs it every morning.
    app.double.set_monthly_quota(Some(1));
    let late = user_id(5);
    let mut follow = app.double.follow_event(&late, false);
    follow["replyToken"] = serde_json::json!("expired-token");
    app.say(&[follow]).await;
    assert_eq!(app.double.stats().pushes, 0, "the answer was not pushed");
    assert_eq!(
        app.count("SELECT count(*) FROM sends WHERE kind = 'reply' AND status = 'dropped' AND error LIKE '%quota%'"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_after_another_process_closed_the_database_are_kept() {
    let today = today();
    let app = spawn_app_on(today).await;
    register_readers(&app, 1..=1, today).await;
    // Connections opened late in the service's life (retention, health), then another process
    // that opens the database and closes it cleanly: the service's WAL must survive it (a
    // stray close of the file in the service would drop its locks, and the other process
    // would take the WAL for its own and delete it).
    for _ in 0..3 {
        drop(yorisoi::store::connect(&app.db_path).unwrap());
    }
    // (the `sqlite3` shell closes cleanly, as an operator's look at the database does; `.ci/run`
    // installs it).
    let out = std::process::Command::new("sqlite3")
        .arg(&app.db_path)
        .arg("SELECT count(*) FROM registrations")
        .output()
        .expect("the sqlite3 shell is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut wal = app.db_path.as_os_str().to_owned();
    wal.push("-wal");
    assert!(
        std::path::Path::new(&wal).exists(),
        "the WAL is still there"
    );
    register_readers(&app, 2..=2, today).await;
    assert_eq!(
        app.count("SELECT count(*) FROM registrations"),
        2,
        "what the service wrote after the push is in the database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_delivered_but_never_recorded_is_resent_with_its_key_and_arrives_once() {
    let today = today();
    let app = spawn_app_on(today).await;
    register_readers(&app, 1..=3, today).await;
    assert!(app.push_cli(&["--json"]).status.success());
    let pushed: Vec<(String, String)> = app
        .double
        .delivered()
        .into_iter()
        .filter(|d| d.via == Via::Push)
        .filter_map(|d| Some((d.retry_key?, serde_json::to_string(&d.messages).unwrap())))
        .collect();
    let keys: Vec<String> = pushed.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys.len(), 3);
    // As the database stands had the process died after LINE accepted the pushes and before
    // their outcomes were committed: still pending, with the messages recorded.
    for (key, messages) in &pushed {
        let changed = app
            .db()
            .execute(
                "UPDATE sends SET status = 'pending', sent_at = NULL, line_request_id = NULL,
                   lease_until = 0, via = NULL, messages = ?2
                 WHERE kind = 'daily' AND retry_key = ?1",
                [key, messages],
            )
            .unwrap();
        assert_eq!(changed, 1, "the push is recorded under the key LINE saw");
    }
    app.db()
        .execute("UPDATE delivery_runs SET finished_at = NULL", [])
        .unwrap();
    let s = summary(&app.push_cli(&["--json"]));
    assert_eq!(
        (s["sent"].as_u64(), s["already_sent"].as_u64()),
        (Some(0), Some(3)),
        "{s}"
    );
    assert_eq!(
        app.double.stats().duplicates,
        3,
        "the same keys again: LINE answered 409"
    );
    for user in (1..=3).map(user_id) {
        assert_eq!(pushes_to(&app, &user), 1, "exactly one message each");
    }
    let resent: Vec<String> = app
        .double
        .delivered()
        .into_iter()
        .filter_map(|d| d.retry_key)
        .collect();
    assert_eq!(resent, keys, "nothing new was accepted");
    let mut answered_409: Vec<String> = app
        .double
        .attempts()
        .into_iter()
        .filter(|a| a.status == 409)
        .filter_map(|a| a.retry_key)
        .collect();
    let mut first_keys = keys.clone();
    answered_409.sort();
    first_keys.sort();
    assert_eq!(answered_409, first_keys, "the rerun sent the same keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_planned_before_sends_kept_their_messages_is_rendered_from_its_items() {
    let today = today();
    let app = spawn_app_on(today).await;
    register_readers(&app, 1..=1, today).await;
    assert!(app.push_cli(&["--json"]).status.success());
    let first: Vec<Value> = app
        .double
        .delivered()
        .into_iter()
        .filter(|d| d.via == Via::Push)
        .flat_map(|d| d.messages)
        .collect();
    assert!(!first.is_empty());
    // As migration 0007 leaves a push that was planned, not sent: no messages recorded. A new
    // key lets LINE accept it again, to compare what it carries.
    let changed = app
        .db()
        .execute(
            "UPDATE sends SET status = 'pending', messages = NULL, via = NULL, sent_at = NULL,
               retry_key = '00000000-0000-4000-8000-000000000001'
             WHERE kind = 'daily'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    app.db()
        .execute("UPDATE delivery_runs SET finished_at = NULL", [])
        .unwrap();
    let s = summary(&app.push_cli(&["--json"]));
    assert_eq!(s["sent"].as_u64(), Some(1), "{s}");
    let again: Vec<Value> = app
        .double
        .delivered()
        .into_iter()
        .filter(|d| d.retry_key.as_deref() == Some("00000000-0000-4000-8000-000000000001"))
        .flat_map(|d| d.messages)
        .collect();
    assert_eq!(
        again, first,
        "the same messages, rendered from the recorded items"
    );

    // A push whose messages are recorded goes out exactly as recorded, whatever the pack says.
    app.db()
        .execute(
            "UPDATE sends SET status = 'pending', via = NULL, sent_at = NULL,
               messages = '[{\"type\":\"text\",\"text\":\"記録どおり\"}]',
               retry_key = '00000000-0000-4000-8000-000000000002'
             WHERE kind = 'daily'",
            [],
        )
        .unwrap();
    app.db()
        .execute("UPDATE delivery_runs SET finished_at = NULL", [])
        .unwrap();
    let s = summary(&app.push_cli(&["--json"]));
    assert_eq!(s["sent"].as_u64(), Some(1), "{s}");
    let recorded: Vec<Value> = app
        .double
        .delivered()
        .into_iter()
        .filter(|d| d.retry_key.as_deref() == Some("00000000-0000-4000-8000-000000000002"))
        .flat_map(|d| d.messages)
        .collect();
    assert_eq!(
        recorded,
        vec![serde_json::json!({"type": "text", "text": "記録どおり"})]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_never_reached_line_is_not_counted_as_tried() {
    let double =
        yorisoi::line_double::LineDouble::start(Default::default(), "127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("yorisoi.db");
    // LINE unreachable: nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut settings = crate::helpers::settings_for(&double, db.clone());
    settings.line_api_base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let app = crate::lifecycle::serve(settings).await;
    let user = user_id(11);
    let status = double
        .send_webhook(
            &format!("{}/webhook", app.address),
            &[double.follow_event(&user, false)],
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    // (attempts, reply attempts, claimed): read once a second try has been settled.
    let tries = || {
        rusqlite::Connection::open(&db)
            .unwrap()
            .query_row(
                "SELECT attempts, reply_attempts, lease_until > 0 FROM sends WHERE kind = 'reply'",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, bool>(2)?,
                    ))
                },
            )
            .unwrap_or((0, 0, true))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (attempts, reply_attempts) = loop {
        let (a, r, claimed) = tries();
        if (a >= 2 && !claimed) || std::time::Instant::now() > deadline {
            break (a, r);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(attempts >= 2, "tried again after the failed connection");
    assert_eq!(
        reply_attempts, 0,
        "a request that never left spends no reply attempt: once the token expires, the answer \
         goes as a push instead of being taken for delivered"
    );
    app.stop().await;
}
