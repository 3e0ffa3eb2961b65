//! The webhook edge: signature, body checks, dedupe, ordering, unknown events.

use crate::helpers::spawn_app;
use serde_json::json;
use yorisoi::line_double::{LineDouble, user_id};
use yorisoi::webhook::sign;

#[tokio::test]
async fn health_answers() {
    let app = spawn_app().await;
    let r = reqwest::get(format!("{}/healthz", app.address))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = reqwest::get(format!("{}/admin", app.address))
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "the public listener serves only webhook and health"
    );
}

#[tokio::test]
async fn signatures_are_checked_before_anything_is_stored() {
    let app = spawn_app().await;
    let user = user_id(1);
    let body = LineDouble::callback_body(&[app.double.follow_event(&user, false)]);
    type Case<'a> = (&'a str, Option<(&'a str, String)>, u16);
    let cases: Vec<Case> = vec![
        ("missing signature", None, 401),
        (
            "wrong secret",
            Some(("x-line-signature", sign("not-the-secret", body.as_bytes()))),
            401,
        ),
        (
            "garbage signature",
            Some(("x-line-signature", "???".into())),
            401,
        ),
        (
            "signature of another body",
            Some(("x-line-signature", sign(app.double.channel_secret(), b"{}"))),
            401,
        ),
    ];
    for (what, sig, status) in cases {
        let r = app.post_raw(body.clone(), sig).await;
        assert_eq!(r.status().as_u16(), status, "{what}");
        let reason: serde_json::Value = r.json().await.unwrap();
        assert!(
            reason["message"].as_str().unwrap().contains("signature"),
            "{what}: a reason is given"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) FROM webhook_events"),
        0,
        "nothing stored"
    );
    // The header name is case-insensitive.
    let r = app
        .post_raw(
            body.clone(),
            Some((
                "X-Line-Signature",
                sign(app.double.channel_secret(), body.as_bytes()),
            )),
        )
        .await;
    assert_eq!(r.status(), 200);
    app.settle().await;
    assert_eq!(app.count("SELECT count(*) FROM webhook_events"), 1);
}

#[tokio::test]
async fn malformed_bodies_are_refused_with_a_reason() {
    let app = spawn_app().await;
    let secret = app.double.channel_secret().to_owned();
    for (what, body) in [
        ("not json", "hello".to_owned()),
        ("json array", "[]".to_owned()),
        ("no events", "{\"destination\":\"x\"}".to_owned()),
        ("events not a list", "{\"events\":{}}".to_owned()),
        ("event not an object", "{\"events\":[42]}".to_owned()),
    ] {
        let r = app
            .post_raw(
                body.clone(),
                Some(("x-line-signature", sign(&secret, body.as_bytes()))),
            )
            .await;
        assert_eq!(r.status(), 400, "{what}");
    }
    assert_eq!(app.count("SELECT count(*) FROM webhook_events"), 0);

    let huge = format!(
        "{{\"events\":[],\"pad\":\"{}\"}}",
        "a".repeat(1024 * 1024 + 10)
    );
    let r = app
        .post_raw(
            huge.clone(),
            Some(("x-line-signature", sign(&secret, huge.as_bytes()))),
        )
        .await;
    assert_eq!(r.status(), 413);

    let empty = "{\"destination\":\"x\",\"events\":[]}";
    let r = app
        .post_raw(
            empty,
            Some(("x-line-signature", sign(&secret, empty.as_bytes()))),
        )
        .await;
    assert_eq!(r.status(), 200, "LINE's connectivity check");
}

#[tokio::test]
async fn a_redelivered_event_is_processed_once() {
    let app = spawn_app().await;
    let user = user_id(2);
    let follow = app.double.follow_event(&user, false);
    app.say(std::slice::from_ref(&follow)).await;
    let mut again = follow.clone();
    again["deliveryContext"]["isRedelivery"] = json!(true);
    app.say(&[again.clone()]).await;
    app.say(&[again]).await;
    assert_eq!(app.count("SELECT count(*) FROM webhook_events"), 1);
    assert_eq!(
        app.double.delivered_to(&user).len(),
        1,
        "one greeting, not three"
    );
    app.assert_contract_held();
}

#[tokio::test]
async fn each_users_events_are_processed_in_timestamp_order() {
    let app = spawn_app().await;
    let user = user_id(3);
    app.say(&[app.double.follow_event(&user, false)]).await;
    let mut stage = app.double.text_event(&user, "妊娠中");
    let mut nickname = app.double.text_event(&user, "はなこ");
    stage["timestamp"] = json!(1_000);
    nickname["timestamp"] = json!(2_000);
    // Delivered out of order in one request.
    app.say(&[nickname, stage]).await;
    assert!(
        app.last_text(&user).contains("出産予定日を教えてください"),
        "{:?}",
        app.texts(&user)
    );
    app.assert_contract_held();
}

#[tokio::test]
async fn unknown_events_sources_and_modes_are_accepted_quietly() {
    let app = spawn_app().await;
    let user = user_id(4);
    let mut edited = app.double.text_event(&user, "x");
    edited["type"] = json!("messageEdited");
    let mut group = app.double.text_event(&user, "みなさんこんにちは");
    group["source"] =
        json!({"type": "group", "groupId": "C0000000000000000000000000000000f", "userId": user});
    let mut standby = app.double.text_event(&user, "妊娠中");
    standby["mode"] = json!("standby");
    let mut weird_user = app.double.text_event("not-a-user-id", "hi");
    weird_user["source"]["userId"] = json!("not-a-user-id");
    let no_id =
        json!({"type": "unfollow", "timestamp": 5, "source": {"type": "user", "userId": user}});
    app.say(&[edited, group, standby, weird_user, no_id]).await;
    assert!(
        app.double.delivered().is_empty(),
        "nothing is said in reply to any of these"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM webhook_events WHERE processed_at IS NOT NULL"),
        5
    );
    let r = reqwest::get(format!("{}/healthz", app.address))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "still healthy");
}

#[tokio::test]
async fn an_expired_reply_token_falls_back_to_a_push() {
    let app = spawn_app().await;
    let user = user_id(5);
    let mut follow = app.double.follow_event(&user, false);
    follow["replyToken"] = json!("expired-or-unknown-token");
    app.say(&[follow]).await;
    let got = app.double.delivered_to(&user);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].via, yorisoi::line_double::Via::Push);
    assert!(got[0].retry_key.is_some(), "pushes carry a retry key");
    assert!(
        got[0].messages[0]["text"]
            .as_str()
            .unwrap()
            .contains("友だち追加ありがとうございます")
    );
}

#[tokio::test]
async fn line_server_errors_are_retried_with_the_same_key_and_delivered_once() {
    let app = spawn_app().await;
    let user = user_id(6);
    // The reply fails with 500 three times: its outcome is unknown, so it is retried with the
    // same reply token (which LINE would refuse had an attempt got through), and delivered once.
    app.double
        .inject(yorisoi::line_double::Fault::Status(500), 3);
    app.say(&[app.double.follow_event(&user, false)]).await;
    let got = app.double.delivered_to(&user);
    assert_eq!(got.len(), 1, "delivered exactly once");
    assert_eq!(
        got[0].via,
        yorisoi::line_double::Via::Reply,
        "still as a reply"
    );
    assert_eq!(app.double.stats().faults, 3);
    // Four tries, all with the one token of the follow event: three answered 500, one 200.
    let tries = app.double.attempts();
    let statuses: Vec<u16> = tries.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [500, 500, 500, 200]);
    let token = tries[0].reply_token.clone();
    assert!(token.is_some());
    assert!(
        tries
            .iter()
            .all(|a| a.reply_token == token && a.retry_key.is_none()),
        "{tries:?}"
    );
    app.assert_contract_held();
}

#[tokio::test]
async fn a_timeout_after_acceptance_does_not_send_twice() {
    let app = spawn_app().await;
    let user = user_id(7);
    let mut follow = app.double.follow_event(&user, false);
    follow["replyToken"] = json!("unknown-token");
    // The reply is refused (unknown token); the push is accepted but answers too late, so the
    // client retries with the same key and gets 409.
    app.double.inject_on(
        Some(yorisoi::line_double::Via::Push),
        yorisoi::line_double::Fault::SlowAccept(std::time::Duration::from_millis(1500)),
        1,
    );
    app.say(&[follow]).await;
    // The sender is done (the retry was answered 409); the slow first request lands at 1.5 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.double.delivered_to(&user).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow push never landed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(app.double.delivered_to(&user).len(), 1);
    assert!(
        app.double.stats().duplicates >= 1,
        "{:?}",
        app.double.stats()
    );
}

#[tokio::test]
async fn a_blocked_database_gets_a_503_in_time_and_the_redelivery_is_processed() {
    let app = spawn_app().await;
    let user = user_id(8);
    let follow = app.double.follow_event(&user, false);
    // Someone holds the write lock (a long maintenance query, say).
    let mut blocker = app.db();
    let tx = blocker
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let asked = std::time::Instant::now();
    assert_eq!(app.send(std::slice::from_ref(&follow)).await, 503);
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(2),
        "answered before LINE's 2 s limit: {:?}",
        asked.elapsed()
    );
    tx.commit().unwrap();
    let mut again = follow.clone();
    again["deliveryContext"]["isRedelivery"] = json!(true);
    app.say(&[again]).await;
    assert_eq!(app.double.delivered_to(&user).len(), 1, "greeted once");
}
