//! The double's contract for multicast, through HTTP as a sender meets it.

use super::*;
use crate::clock::{Clock, ManualClock};

const MULTICAST: &str = "/v2/bot/message/multicast";
const PUSH: &str = "/v2/bot/message/push";

fn start(config: DoubleConfig) -> LineDouble {
    LineDouble::start(config, "127.0.0.1:0").expect("double starts")
}

fn text(t: &str) -> Value {
    json!({ "type": "text", "text": t })
}

fn users(n: u64) -> Vec<String> {
    (1..=n).map(user_id).collect()
}

struct Answer {
    status: u16,
    request_id: Option<String>,
    accepted_id: Option<String>,
    body: Value,
}

async fn post(d: &LineDouble, path: &str, body: Value, key: Option<&str>) -> Answer {
    let mut req = d
        .http
        .post(format!("{}{path}", d.base_url()))
        .bearer_auth(d.access_token())
        .json(&body);
    if let Some(k) = key {
        req = req.header("X-Line-Retry-Key", k);
    }
    let resp = req.send().await.expect("the double answers");
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (request_id, accepted_id) = (
        header("x-line-request-id"),
        header("x-line-accepted-request-id"),
    );
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        request_id,
        accepted_id,
        body,
    }
}

async fn multicast(d: &LineDouble, to: &[String], key: Option<&str>) -> Answer {
    post(
        d,
        MULTICAST,
        json!({ "to": to, "messages": [text("お知らせ")] }),
        key,
    )
    .await
}

/// A push of two messages: it counts one against the month all the same.
async fn push(d: &LineDouble, to: &str, key: Option<&str>) -> Answer {
    post(
        d,
        PUSH,
        json!({ "to": to, "messages": [text("a"), text("b")] }),
        key,
    )
    .await
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn a_multicast_reaches_each_recipient_as_a_push_would_and_says_how() {
    let d = start(DoubleConfig::default());
    let to = users(500);
    let k = key();
    let a = multicast(&d, &to, Some(&k)).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body, json!({}), "MulticastResponse is an empty object");
    let delivered = d.delivered();
    assert_eq!(delivered.len(), 500);
    for (d, user) in delivered.iter().zip(&to) {
        assert_eq!(&d.to, user);
        assert_eq!(d.via, Via::Multicast);
        assert_eq!(d.retry_key.as_deref(), Some(k.as_str()));
        assert_eq!(Some(&d.request_id), a.request_id.as_ref());
    }
    assert_eq!(d.texts_to(&to[499]), vec!["お知らせ"]);
    assert_eq!(
        d.attempts(),
        vec![Attempt {
            via: Via::Multicast,
            reply_token: None,
            retry_key: Some(k),
            status: 200
        }]
    );
    let stats = d.stats();
    assert_eq!(
        (stats.multicasts, stats.multicast_recipients, stats.pushes),
        (1, 500, 0)
    );
    // The control views a test or the sandbox reads.
    let http = reqwest::Client::new();
    let seen: Vec<Value> = http
        .get(format!("{}/__double/messages?to={}", d.base_url(), to[7]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["via"], "multicast");
    let per_user: HashMap<String, u64> = http
        .get(format!("{}/__double/per-user", d.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(per_user.len(), 500);
    assert!(per_user.values().all(|n| *n == 1));
    assert!(d.refused().is_empty());
}

#[tokio::test]
async fn a_multicast_outside_the_contract_is_refused_and_delivers_nothing() {
    let d = start(DoubleConfig::default());
    // Hex letters in it, so its capitals differ.
    let one = vec![user_id(0xabcdef)];
    let cases: Vec<(&str, Value, Option<String>, &str)> = vec![
        (
            "501 recipients",
            json!({ "to": users(501), "messages": [text("a")] }),
            None,
            "to",
        ),
        (
            "no recipients",
            json!({ "to": [], "messages": [text("a")] }),
            None,
            "to",
        ),
        (
            "to as one string",
            json!({ "to": one[0], "messages": [text("a")] }),
            None,
            "to",
        ),
        ("no to", json!({ "messages": [text("a")] }), None, "to"),
        (
            "an id in capitals",
            json!({ "to": [one[0].to_uppercase()], "messages": [text("a")] }),
            None,
            "to[0]",
        ),
        (
            "a group id",
            json!({ "to": [one[0], format!("C{}", &one[0][1..])], "messages": [text("a")] }),
            None,
            "to[1]",
        ),
        (
            "a number for an id",
            json!({ "to": [1], "messages": [text("a")] }),
            None,
            "to[0]",
        ),
        (
            "six messages",
            json!({ "to": one, "messages": vec![text("a"); 6] }),
            None,
            "messages",
        ),
        (
            "no messages",
            json!({ "to": one, "messages": [] }),
            None,
            "messages",
        ),
        (
            "a message over the text limit",
            json!({ "to": one, "messages": [text(&"あ".repeat(5001))] }),
            None,
            "messages[0].text",
        ),
        (
            "a retry key that is not a UUID",
            json!({ "to": one, "messages": [text("a")] }),
            Some("not-a-uuid".into()),
            "X-Line-Retry-Key",
        ),
        (
            "a retry key without hyphens",
            json!({ "to": one, "messages": [text("a")] }),
            Some(uuid::Uuid::new_v4().simple().to_string()),
            "X-Line-Retry-Key",
        ),
    ];
    for (what, body, k, property) in &cases {
        let a = post(&d, MULTICAST, body.clone(), k.as_deref()).await;
        assert_eq!(a.status, 400, "{what}: {:?}", a.body);
        let details = a.body["details"].as_array().cloned().unwrap_or_default();
        assert!(
            details.iter().any(|p| p["property"] == *property),
            "{what}: {details:?}"
        );
        // User ids are personal data: never quoted back.
        assert!(
            !a.body.to_string().contains(&one[0][1..]),
            "{what}: {:?}",
            a.body
        );
    }
    let refused = d.refused();
    assert_eq!(refused.len(), cases.len());
    assert!(
        refused
            .iter()
            .all(|r| r.path == MULTICAST && r.status == 400)
    );
    assert!(d.delivered().is_empty());
    assert!(d.attempts().is_empty());
    assert_eq!(d.stats().multicasts, 0);
    // Unknown fields are let through, as for push.
    let a = post(
        &d,
        MULTICAST,
        json!({ "to": one, "messages": [text("a")], "notificationDisabled": true, "somethingNew": 1 }),
        None,
    )
    .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn a_multicast_needs_the_channel_token() {
    let d = start(DoubleConfig::default());
    let resp = d
        .http
        .post(format!("{}{MULTICAST}", d.base_url()))
        .bearer_auth("someone-else")
        .json(&json!({ "to": users(1), "messages": [text("a")] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    d.set_token_revoked(true);
    assert_eq!(multicast(&d, &users(1), Some(&key())).await.status, 401);
    d.set_token_revoked(false);
    assert_eq!(multicast(&d, &users(1), Some(&key())).await.status, 200);
    assert_eq!(d.refused().len(), 2);
    assert_eq!(d.delivered().len(), 1);
}

#[tokio::test]
async fn a_retry_key_seen_within_24_hours_answers_409_and_delivers_nothing() {
    let clock = ManualClock::at_jst_morning(chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap());
    let d = start(DoubleConfig {
        clock: Arc::new(clock.clone()),
        ..DoubleConfig::default()
    });
    let to = users(3);
    let k = key();
    let first = multicast(&d, &to, Some(&k)).await;
    assert_eq!(first.status, 200);
    // The same key, even to other users (LINE remembers the key, not the body).
    for again in [to.clone(), users(5)] {
        let a = multicast(&d, &again, Some(&k)).await;
        assert_eq!(a.status, 409);
        assert_eq!(a.accepted_id, first.request_id);
    }
    // A push with a key a multicast used is a duplicate too: keys are per channel.
    let a = push(&d, &to[0], Some(&k)).await;
    assert_eq!(a.status, 409);
    assert_eq!(d.delivered().len(), 3);
    assert_eq!(d.stats().duplicates, 3);
    assert_eq!(d.stats().multicast_recipients, 3);
    let statuses: Vec<(Via, u16)> = d.attempts().iter().map(|a| (a.via, a.status)).collect();
    assert_eq!(
        statuses,
        vec![
            (Via::Multicast, 200),
            (Via::Multicast, 409),
            (Via::Multicast, 409),
            (Via::Push, 409)
        ]
    );
    assert!(
        d.attempts()
            .iter()
            .all(|a| a.retry_key.as_deref() == Some(k.as_str()))
    );
    // On the double's clock, a day later the key is forgotten.
    clock.set(clock.now() + chrono::Duration::hours(24));
    assert_eq!(multicast(&d, &to, Some(&k)).await.status, 200);
    assert_eq!(d.delivered().len(), 6);
}

#[tokio::test]
async fn multicasts_over_their_rate_answer_429_and_pushes_keep_theirs() {
    assert_eq!(DoubleConfig::default().multicast_rate_limit, Some(200));
    let d = start(DoubleConfig {
        multicast_rate_limit: Some(3),
        ..DoubleConfig::default()
    });
    let to = users(2);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(multicast(&d, &to, Some(&key())).await.status);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    // The multicast limit is multicast's own: a push still goes.
    let a = push(&d, &to[0], Some(&key())).await;
    assert_eq!(a.status, 200);
    assert_eq!(d.stats().rate_limited, 1);
    assert_eq!(d.stats().multicasts, 3);
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(multicast(&d, &to, Some(&key())).await.status, 200);

    // The channel's rate counts multicasts as well.
    let d = start(DoubleConfig {
        rate_limit: Some(2),
        multicast_rate_limit: None,
        ..DoubleConfig::default()
    });
    assert_eq!(multicast(&d, &to, Some(&key())).await.status, 200);
    let a = push(&d, &to[0], Some(&key())).await;
    assert_eq!(a.status, 200);
    let a = multicast(&d, &to, Some(&key())).await;
    assert_eq!(a.status, 429);
    assert!(a.body["message"].as_str().unwrap().contains("rate limit"));
}

async fn consumption(d: &LineDouble) -> u64 {
    reqwest::Client::new()
        .get(format!("{}/v2/bot/message/quota/consumption", d.base_url()))
        .bearer_auth(d.access_token())
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["totalUsage"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn a_multicast_counts_one_message_per_recipient_against_the_month() {
    let d = start(DoubleConfig::default());
    d.set_monthly_quota(Some(5));
    assert_eq!(multicast(&d, &users(3), Some(&key())).await.status, 200);
    assert_eq!(consumption(&d).await, 3);
    // Three more would pass the limit: refused whole, nothing delivered.
    let a = multicast(&d, &users(3), Some(&key())).await;
    assert_eq!(a.status, 429);
    assert!(
        a.body["message"]
            .as_str()
            .unwrap()
            .contains("monthly limit")
    );
    assert_eq!(d.delivered().len(), 3);
    assert_eq!(push(&d, &user_id(9), Some(&key())).await.status, 200);
    assert_eq!(consumption(&d).await, 4);
    assert_eq!(multicast(&d, &users(1), Some(&key())).await.status, 200);
    assert_eq!(consumption(&d).await, 5);
    assert_eq!(push(&d, &user_id(9), Some(&key())).await.status, 429);
    assert_eq!(multicast(&d, &users(1), Some(&key())).await.status, 429);

    // The monthly-limit switch stops multicasts as it stops pushes.
    let d = start(DoubleConfig::default());
    d.set_monthly_limit(true);
    let a = multicast(&d, &users(1), Some(&key())).await;
    assert_eq!(a.status, 429);
    assert!(
        a.body["message"]
            .as_str()
            .unwrap()
            .contains("monthly limit")
    );
    d.set_monthly_limit(false);
    assert_eq!(multicast(&d, &users(1), Some(&key())).await.status, 200);
}

#[tokio::test]
async fn faults_aimed_at_multicasts_hit_multicasts_only() {
    let d = start(DoubleConfig::default());
    let to = users(2);
    d.inject_on(Some(Via::Multicast), Fault::Status(500), 2);
    let k = key();
    // A push meanwhile is not the target.
    let p = push(&d, &to[0], Some(&key())).await;
    assert_eq!(p.status, 200);
    let got: Vec<u16> = [
        multicast(&d, &to, Some(&k)).await.status,
        multicast(&d, &to, Some(&k)).await.status,
        multicast(&d, &to, Some(&k)).await.status,
    ]
    .into();
    assert_eq!(
        got,
        vec![500, 500, 200],
        "a 5xx accepts nothing: the same key goes through after"
    );
    assert_eq!(d.delivered_to(&to[1]).len(), 1);
    assert_eq!(d.stats().faults, 2);
}

#[tokio::test]
async fn the_nth_multicast_can_be_delivered_with_its_answer_lost() {
    let d = start(DoubleConfig::default());
    d.inject_nth(
        Some(Via::Multicast),
        2,
        Fault::SlowAccept(Duration::from_millis(800)),
    );
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let send = |to: Vec<String>, k: String| {
        let (d, http) = (d.clone(), impatient.clone());
        async move {
            http.post(format!("{}{MULTICAST}", d.base_url()))
                .bearer_auth(d.access_token())
                .header("X-Line-Retry-Key", k)
                .json(&json!({ "to": to, "messages": [text("a")] }))
                .send()
                .await
        }
    };
    let first = send(users(2), key())
        .await
        .expect("the first answers at once");
    assert_eq!(first.status().as_u16(), 200);
    let k = key();
    let second = send(vec![user_id(3)], k.clone()).await;
    assert!(second.is_err_and(|e| e.is_timeout()), "the answer is lost");
    assert_eq!(d.delivered_to(&user_id(3)).len(), 1, "but it was delivered");
    // The sender retries with the same key: LINE has it already.
    assert_eq!(multicast(&d, &[user_id(3)], Some(&k)).await.status, 409);
    assert_eq!(d.delivered_to(&user_id(3)).len(), 1);
    // The fault was used up by the second.
    assert_eq!(multicast(&d, &users(1), Some(&key())).await.status, 200);
    assert_eq!(d.stats().faults, 1);
}
