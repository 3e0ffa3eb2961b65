//! `GET /healthz`: 200 only when everything an operator relies on works, else 503 naming what.

use crate::helpers::{settings_for, today};
use crate::lifecycle::serve;
use chrono::NaiveTime;
use std::time::{Duration, Instant};
use yorisoi::config::PushTime;
use yorisoi::line_double::{DoubleConfig, LineDouble};

async fn start(push_time: PushTime) -> (LineDouble, tempfile::TempDir, crate::lifecycle::Served) {
    let double = LineDouble::start(DoubleConfig::default(), "127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings_for(&double, dir.path().join("yorisoi.db"));
    s.push_time = push_time;
    let app = serve(s).await;
    (double, dir, app)
}

#[tokio::test]
async fn a_healthy_service_answers_200_naming_every_check() {
    let (_double, _dir, app) = start(PushTime::Off).await;
    let (status, body) = app.healthz().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    for check in ["database", "processor", "sender", "content", "line"] {
        assert_eq!(body["checks"][check], "ok", "{check}: {body}");
    }
    assert!(
        body["checks"].get("delivery").is_none(),
        "no daily push time, no delivery check: {body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_unwritable_database_answers_503_naming_the_database() {
    let (_double, dir, app) = start(PushTime::Off).await;
    // Another connection holds the write lock (a stuck maintenance job, say).
    let mut blocker = rusqlite::Connection::open(dir.path().join("yorisoi.db")).unwrap();
    let tx = blocker
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .unwrap();
    let asked = Instant::now();
    let (status, body) = app.healthz().await;
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "answers quickly: {:?}",
        asked.elapsed()
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["failing"], serde_json::json!(["database"]), "{body}");
    let reason = body["checks"]["database"].as_str().unwrap();
    assert!(reason.contains("not writable"), "{reason}");
    assert!(
        body["message"].as_str().unwrap().contains("database"),
        "{body}"
    );

    tx.rollback().unwrap();
    let (status, body) = app.healthz().await;
    assert_eq!(status, 200, "healthy again once the lock is gone: {body}");
    app.stop().await;
}

#[tokio::test]
async fn a_line_problem_answers_503_until_it_is_cleared() {
    let (_double, _dir, app) = start(PushTime::Off).await;
    app.health.line_problem(Some(
        "LINE answered 401: the channel access token is invalid or revoked".into(),
    ));
    let (status, body) = app.healthz().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failing"], serde_json::json!(["line"]), "{body}");
    assert_eq!(
        body["checks"]["line"],
        "LINE answered 401: the channel access token is invalid or revoked"
    );
    app.health.line_problem(None);
    assert_eq!(app.healthz().await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn an_unfinished_delivery_day_answers_503() {
    // The clock stands at 08:00 Asia/Tokyo: with a 09:00 push time, yesterday is the last due
    // day, and no run of it was recorded (the service was not running then): that is fine.
    let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
    let (_double, _dir, app) = start(PushTime::At(nine)).await;
    let (status, body) = app.healthz().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["delivery"], "ok");

    let yesterday = today().pred_opt().unwrap();
    app.health.delivery_state(yesterday, false);
    let (status, body) = app.healthz().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failing"], serde_json::json!(["delivery"]), "{body}");
    assert!(
        body["checks"]["delivery"]
            .as_str()
            .unwrap()
            .contains("unfinished"),
        "{body}"
    );

    app.health.delivery_state(yesterday, true);
    assert_eq!(app.healthz().await.0, 200);
    app.stop().await;
}
