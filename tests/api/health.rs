//! `GET /healthz`: 200 only when everything an operator relies on works, else 503 naming what.

use crate::helpers::{settings_for, today};
use crate::lifecycle::serve;
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
    // The push time is later today (09:00 when the clock stands at 08:00): yesterday is the
    // last due day, and no run of it was recorded (the service was not running then): fine.
    let (_double, _dir, app) = start(crate::helpers::later_push_time()).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_answers_503_and_once_restored_the_answer_arrives_once() {
    let (double, _dir, app) = start(PushTime::Off).await;
    let user = yorisoi::line_double::user_id(9);
    double.set_token_revoked(true);
    let code = double
        .send_webhook(
            &format!("{}/webhook", app.address),
            &[double.follow_event(&user, false)],
        )
        .await
        .unwrap();
    assert_eq!(code, 200);
    // The answer is tried, refused with 401: the service says so and keeps the answer.
    let mut body = serde_json::Value::Null;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let (status, b) = app.healthz().await;
        body = b;
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(body["failing"], serde_json::json!(["line"]), "{body}");
    assert!(
        body["checks"]["line"].as_str().unwrap().contains("401"),
        "{body}"
    );
    assert!(double.delivered_to(&user).is_empty());
    // The refusal's outcome is committed just after LINE's answer is noted: wait for it.
    let row = || {
        rusqlite::Connection::open(_dir.path().join("yorisoi.db"))
            .unwrap()
            .query_row(
                "SELECT reply_attempts, attempts, lease_until FROM sends WHERE kind = 'reply'",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while row().2 != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        (row().0, row().1),
        (0, 0),
        "a refusal before LINE looked at it spends no try and leaves the token unspent"
    );

    // The token is fixed: the next probe gets through, the answer arrives once, health is ok.
    double.set_token_revoked(false);
    let deadline = Instant::now() + Duration::from_secs(20);
    while double.delivered_to(&user).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Once the answer's record is settled nothing can send it again: then count.
    let db = _dir.path().join("yorisoi.db");
    let settled = || {
        rusqlite::Connection::open(&db)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM sends WHERE kind = 'reply' AND status = 'pending'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
            == 0
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !settled() {
        assert!(
            Instant::now() < deadline,
            "the answer's record never settled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = double.delivered_to(&user);
    assert_eq!(got.len(), 1, "the kept answer, once");
    assert_eq!(got[0].via, yorisoi::line_double::Via::Reply);
    let (status, body) = app.healthz().await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn with_delivery_by_cron_an_unfinished_last_run_answers_503() {
    let (_double, dir, app) = start(PushTime::Off).await;
    assert_eq!(app.healthz().await.0, 200, "no run yet: nothing to say");
    let db = rusqlite::Connection::open(dir.path().join("yorisoi.db")).unwrap();
    // A `yorisoi push` that stopped (a revoked token) long ago.
    db.execute(
        "INSERT INTO delivery_runs (delivery_date, started_at) VALUES ('2026-11-20', '2026-11-20T00:00:00.000Z')",
        [],
    )
    .unwrap();
    let (status, body) = app.healthz().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failing"], serde_json::json!(["delivery"]), "{body}");
    assert!(
        body["checks"]["delivery"]
            .as_str()
            .unwrap()
            .contains("2026-11-20")
    );
    db.execute(
        "UPDATE delivery_runs SET finished_at = '2026-11-20T01:00:00.000Z'",
        [],
    )
    .unwrap();
    assert_eq!(app.healthz().await.0, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_limit_stops_pushes_only_and_a_free_reply_does_not_hide_it() {
    let (double, _dir, app) = start(PushTime::Off).await;
    let webhook = format!("{}/webhook", app.address);
    double.set_monthly_limit(true);
    // An answer whose token expired must go as a push: LINE refuses it for the month.
    let late = yorisoi::line_double::user_id(21);
    let mut follow = double.follow_event(&late, false);
    follow["replyToken"] = serde_json::json!("expired-token");
    assert_eq!(double.send_webhook(&webhook, &[follow]).await.unwrap(), 200);
    let line_check = || async {
        let (_, body) = app.healthz().await;
        body["checks"]["line"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !line_check().await.contains("monthly") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        line_check().await.contains("monthly"),
        "{}",
        line_check().await
    );

    // Replies are free: another reader is still answered, and that does not lift the limit.
    let reader = yorisoi::line_double::user_id(22);
    assert_eq!(
        double
            .send_webhook(&webhook, &[double.follow_event(&reader, false)])
            .await
            .unwrap(),
        200
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while double.delivered_to(&reader).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(double.delivered_to(&reader).len(), 1, "answered as a reply");
    assert!(line_check().await.contains("monthly"), "still reported");
    assert!(double.delivered_to(&late).is_empty());
    app.stop().await;
}
