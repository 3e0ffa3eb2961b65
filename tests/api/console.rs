//! The staff console on the admin listener: accounts, sessions, CSRF, roles, tokens, lockout,
//! broadcasts (audience, counts, quiet hours, batching, exactly once across a crash), exports.

use crate::helpers::{TestApp, last_line, spawn_app_on, today};
use chrono::{DateTime, Months, NaiveDate, TimeDelta, Utc};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use std::collections::HashMap;
use yorisoi::clock::{Clock, jst};
use yorisoi::domain::ChildAge;
use yorisoi::line_double::{Fault, Via};

/// 10:00 Asia/Tokyo on the suite's day: outside the default quiet hours whatever the suite's
/// time of day.
pub(crate) fn ten_am(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(10, 0, 0)
        .unwrap()
        .and_local_timezone(jst())
        .unwrap()
        .with_timezone(&Utc)
}

async fn console_app() -> TestApp {
    let app = spawn_app_on(today()).await;
    app.clock.set(ten_am(today()));
    app
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn api(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let url = format!("{}{path}", app.admin_address);
    let c = client();
    let mut r = match method {
        "GET" => c.get(url),
        _ => c.post(url),
    };
    if !token.is_empty() {
        r = r.bearer_auth(token);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let res = r.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The value of a Set-Cookie header named `name`, and the whole header.
fn set_cookie(res: &reqwest::Response, name: &str) -> Option<(String, String)> {
    res.headers().get_all(SET_COOKIE).iter().find_map(|h| {
        let h = h.to_str().ok()?;
        let (pair, _) = h.split_once(';').unwrap_or((h, ""));
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| (v.to_string(), h.to_string()))
    })
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field"))
        + marker.len();
    html[at..].split('"').next().unwrap().to_string()
}

/// A browser session: the cookie and the CSRF token of its pages.
struct Browser {
    cookie: String,
    csrf: String,
}

async fn log_in(
    app: &TestApp,
    login: &str,
    password: &str,
) -> Result<Browser, (StatusCode, String)> {
    let c = client();
    let page = c
        .get(format!("{}/login", app.admin_address))
        .send()
        .await
        .unwrap();
    let (login_cookie, _) =
        set_cookie(&page, "yorisoi_login").expect("the login form sets its cookie");
    let html = page.text().await.unwrap();
    let res = c
        .post(format!("{}/login", app.admin_address))
        .header(COOKIE, format!("yorisoi_login={login_cookie}"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("login", login),
            ("password", password),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    if res.status() != StatusCode::SEE_OTHER {
        let status = res.status();
        return Err((status, res.text().await.unwrap()));
    }
    let (cookie, header) = set_cookie(&res, "yorisoi_session").expect("a session cookie");
    assert!(header.contains("HttpOnly"), "{header}");
    assert!(header.contains("SameSite=Strict"), "{header}");
    assert!(
        !header.contains("Secure"),
        "not Secure unless configured: {header}"
    );
    let home = c
        .get(format!("{}/broadcasts", app.admin_address))
        .header(COOKIE, format!("yorisoi_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    let csrf = hidden(&home.text().await.unwrap(), "csrf");
    Ok(Browser { cookie, csrf })
}

impl Browser {
    async fn get(&self, app: &TestApp, path: &str) -> reqwest::Response {
        client()
            .get(format!("{}{path}", app.admin_address))
            .header(COOKIE, format!("yorisoi_session={}", self.cookie))
            .send()
            .await
            .unwrap()
    }
    async fn post(&self, app: &TestApp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        client()
            .post(format!("{}{path}", app.admin_address))
            .header(COOKIE, format!("yorisoi_session={}", self.cookie))
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

pub(crate) fn password_of(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    last_line(&out.stdout)
}

#[tokio::test]
async fn nothing_on_the_admin_listener_answers_without_a_session_or_token() {
    let app = console_app().await;
    let c = client();
    for path in [
        "/",
        "/broadcasts",
        "/broadcasts/new",
        "/broadcasts/1",
        "/content",
        "/staff",
        "/audit",
        "/export/stats.csv",
        "/export/registrations.csv",
        "/nowhere",
    ] {
        let res = c
            .get(format!("{}{path}", app.admin_address))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(
            res.headers()[LOCATION]
                .to_str()
                .unwrap()
                .starts_with("/login?next="),
            "{path}"
        );
    }
    for (method, path) in [
        ("GET", "/api/stats"),
        ("GET", "/api/broadcasts"),
        ("POST", "/api/broadcasts"),
        ("POST", "/api/broadcasts/preview"),
        ("GET", "/api/broadcasts/1"),
        ("POST", "/api/broadcasts/1/cancel"),
        ("GET", "/api/export/stats.csv"),
        ("GET", "/api/export/registrations.csv"),
        ("GET", "/api/audit"),
    ] {
        let (status, body) = api(&app, method, path, "", Some(json!({}))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert!(
            body["message"].as_str().unwrap().contains("ログイン"),
            "{body}"
        );
        let (status, _) = api(&app, method, path, "yst_not-a-token", Some(json!({}))).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a made-up token"
        );
    }
    for path in [
        "/login",
        "/static/console.css",
        "/static/console.js",
        "/healthz",
    ] {
        let res = c
            .get(format!("{}{path}", app.admin_address))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    // The public listener serves none of it.
    for path in ["/login", "/api/stats", "/broadcasts"] {
        let res = c
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "public {path}");
    }
}

#[tokio::test]
async fn each_role_does_what_it_may_and_is_refused_the_rest() {
    let app = console_app().await;
    let viewer = app.staff_token("mori.viewer", "viewer");
    let sender = app.staff_token("sato.sender", "sender");
    let admin = app.staff_token("tanaka.admin", "admin");
    let audience = json!({"audience": {"stage": "all"}});
    let new = json!({"text": "お知らせです", "audience": {"stage": "all"}});
    let cases: &[(&str, &str, Option<Value>, [StatusCode; 3])] = &[
        ("GET", "/api/stats", None, [StatusCode::OK; 3]),
        ("GET", "/api/broadcasts", None, [StatusCode::OK; 3]),
        ("GET", "/api/export/stats.csv", None, [StatusCode::OK; 3]),
        (
            "POST",
            "/api/broadcasts/preview",
            Some(audience),
            [StatusCode::FORBIDDEN, StatusCode::OK, StatusCode::OK],
        ),
        (
            "POST",
            "/api/broadcasts",
            Some(new),
            [
                StatusCode::FORBIDDEN,
                StatusCode::CREATED,
                StatusCode::CREATED,
            ],
        ),
        (
            "GET",
            "/api/export/registrations.csv",
            None,
            [StatusCode::FORBIDDEN, StatusCode::FORBIDDEN, StatusCode::OK],
        ),
        (
            "GET",
            "/api/audit",
            None,
            [StatusCode::FORBIDDEN, StatusCode::FORBIDDEN, StatusCode::OK],
        ),
    ];
    for (method, path, body, want) in cases {
        for (token, want) in [&viewer, &sender, &admin].into_iter().zip(want) {
            let (status, got) = api(&app, method, path, token, body.clone()).await;
            assert_eq!(status, *want, "{method} {path}: {got}");
            if status == StatusCode::FORBIDDEN {
                assert!(got["message"].as_str().unwrap().contains("権限"), "{got}");
            }
        }
    }
    // A revoked token, and a disabled account's token, no longer work.
    let list = app.staff_cli(&["token", "list", "sato.sender"]);
    let id = String::from_utf8_lossy(&list.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(app.staff_cli(&["token", "revoke", &id]).status.success());
    assert_eq!(
        api(&app, "GET", "/api/stats", &sender, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(app.staff_cli(&["disable", "mori.viewer"]).status.success());
    assert_eq!(
        api(&app, "GET", "/api/stats", &viewer, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The audit log names what was done.
    let (_, audit) = api(&app, "GET", "/api/audit?action=token_revoked", &admin, None).await;
    assert_eq!(audit["entries"].as_array().unwrap().len(), 1, "{audit}");
}

#[tokio::test]
async fn a_browser_session_needs_its_csrf_token_and_ends_when_idle_or_logged_out() {
    let app = console_app().await;
    let password = password_of(&app.staff_cli(&["add", "sato.h", "--role", "sender"]));
    assert_eq!(password.len(), 20);
    let b = log_in(&app, "sato.h", &password).await.unwrap();
    let form = [("text", "お知らせ"), ("stage", "all"), ("when", "now")];
    // Without the token, or with another, nothing is recorded.
    for csrf in ["", "forged"] {
        let mut f = form.to_vec();
        f.push(("csrf", csrf));
        let res = b.post(&app, "/broadcasts", &f).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "csrf {csrf:?}");
    }
    assert_eq!(app.count("SELECT count(*) FROM broadcasts"), 0);
    let mut f = form.to_vec();
    f.push(("csrf", &b.csrf));
    let res = b.post(&app, "/broadcasts", &f).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.count("SELECT count(*) FROM broadcasts"), 1);
    // Idle for longer than the limit: the session is over.
    app.clock.set(app.clock.now() + TimeDelta::minutes(31));
    assert_eq!(
        b.get(&app, "/broadcasts").await.status(),
        StatusCode::SEE_OTHER
    );
    // A new one, logged out: over too.
    let b = log_in(&app, "sato.h", &password).await.unwrap();
    assert_eq!(
        b.post(&app, "/logout", &[("csrf", &b.csrf)]).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        b.get(&app, "/broadcasts").await.status(),
        StatusCode::SEE_OTHER
    );
    // One login token per browser: another page load (the browser's own /favicon.ico request
    // lands on /login too) keeps the form already shown valid.
    let first = client()
        .get(format!("{}/login", app.admin_address))
        .send()
        .await
        .unwrap();
    let (token, _) = set_cookie(&first, "yorisoi_login").unwrap();
    let again = client()
        .get(format!("{}/login", app.admin_address))
        .header(COOKIE, format!("yorisoi_login={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(hidden(&again.text().await.unwrap(), "csrf"), token);
    // The login form itself needs its own token.
    let res = client()
        .post(format!("{}/login", app.admin_address))
        .form(&[("login", "sato.h"), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn repeated_failed_logins_lock_the_account_until_an_admin_unlocks_it() {
    let app = console_app().await;
    let password = password_of(&app.staff_cli(&["add", "ito.k", "--role", "viewer"]));
    let started = std::time::Instant::now();
    for _ in 0..5 {
        let (status, page) = log_in(&app, "ito.k", "wrong password!!")
            .await
            .err()
            .unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(page.contains("ログイン名またはパスワードが違います"));
    }
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(5),
        "each failure is slowed down"
    );
    let (status, page) = log_in(&app, "ito.k", &password).await.err().unwrap();
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "locked: the right password no longer opens it"
    );
    assert!(page.contains("ロック"));
    let list = String::from_utf8_lossy(&app.staff_cli(&["list"]).stdout).to_string();
    assert!(
        list.lines()
            .any(|l| l.starts_with("ito.k") && l.contains("locked")),
        "{list}"
    );
    assert!(app.staff_cli(&["unlock", "ito.k"]).status.success());
    log_in(&app, "ito.k", &password).await.expect("unlocked");
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'login_failed'"),
        5
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'account_locked'"),
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'login'"),
        1
    );
}

/// Registers children born `months` months (and `extra_days`) before today, one LINE user each.
pub(crate) async fn register_child(app: &TestApp, user: &str, months: u32, extra_days: u64) {
    let born =
        today().checked_sub_months(Months::new(months)).unwrap() - chrono::Days::new(extra_days);
    app.register(user, "子育て中", "ママ", born).await;
}

pub(crate) fn user(n: usize) -> String {
    format!("U{n:032x}")
}

#[tokio::test]
async fn a_broadcast_to_4_to_6_month_olds_reaches_each_of_them_once_and_no_one_else() {
    let app = console_app().await;
    let sender = app.staff_token("sato.sender", "sender");
    // The boundaries as the daily messages count months (a month ends clamped: on 28 February
    // a child born on 31 July is 7 months old): the youngest and the oldest child in range,
    // and the day beyond each.
    let today = today();
    let months = |b: NaiveDate| ChildAge::on(b, today).months;
    let births: Vec<NaiveDate> = (0..400).map(|d| today - chrono::Days::new(d)).collect();
    let youngest = *births.iter().find(|b| months(**b) == 4).unwrap();
    let oldest = *births.iter().rfind(|b| months(**b) == 6).unwrap();
    let middle = *births.iter().find(|b| months(**b) == 5).unwrap();
    let inside = [(1, youngest), (2, middle), (3, oldest)];
    let outside = [
        (4, youngest + chrono::Days::new(1)),
        (5, oldest - chrono::Days::new(1)),
    ];
    assert_eq!((months(outside[0].1), months(outside[1].1)), (3, 7));
    for (n, born) in inside.iter().chain(&outside) {
        app.register(&user(*n), "子育て中", "ママ", *born).await;
    }
    app.settle().await;
    let twins = user(6);
    register_child(&app, &twins, 5, 0).await;
    app.settle().await;
    let d = &app.double;
    let born = today.checked_sub_months(Months::new(5)).unwrap();
    app.add_child(&twins, "子育て中", born, "ふたごの妹").await;
    app.settle().await;
    assert_eq!(
        app.count("SELECT count(*) FROM registrations WHERE status = 'active'"),
        7,
        "twins registered twice"
    );
    // In range but blocked, or stopped: excluded.
    register_child(&app, &user(7), 5, 0).await;
    register_child(&app, &user(8), 5, 0).await;
    app.settle().await;
    app.say(&[d.unfollow_event(&user(7))]).await;
    app.say(&[d.text_event(&user(8), "配信停止")]).await;
    app.say(&[d.text_event(&user(8), "停止する")]).await;
    app.settle().await;
    assert_eq!(
        app.count("SELECT count(*) FROM registrations WHERE status = 'stopped'"),
        1
    );

    let audience = json!({"stage": "child", "months": [4, 6]});
    let (status, preview) = api(
        &app,
        "POST",
        "/api/broadcasts/preview",
        &sender,
        Some(json!({"audience": audience})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["recipients"], 4, "{preview}");
    let before = app.double.delivered().len();
    let text = "生後4〜6か月のお子さんのご家庭へ：離乳食教室のお知らせです。";
    let (status, created) = api(
        &app,
        "POST",
        "/api/broadcasts",
        &sender,
        Some(json!({"text": text, "audience": audience})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["recipients"], 4);
    assert_eq!(created["status"], "scheduled");
    assert_eq!(
        app.double.delivered().len(),
        before,
        "nothing leaves before the engine runs"
    );
    app.steps.broadcasts().await.unwrap();
    let id = created["id"].as_i64().unwrap();
    let (_, got) = api(&app, "GET", &format!("/api/broadcasts/{id}"), &sender, None).await;
    assert_eq!(
        (
            got["status"].as_str(),
            got["recipients"].as_i64(),
            got["sent"].as_i64(),
            got["failed"].as_i64()
        ),
        (Some("done"), Some(4), Some(4), Some(0)),
        "{got}"
    );
    let received = |u: &str| {
        app.double
            .texts_to(u)
            .iter()
            .filter(|t| t.as_str() == text)
            .count()
    };
    for (n, ..) in inside {
        assert_eq!(received(&user(n)), 1, "user {n}");
    }
    assert_eq!(received(&twins), 1, "twins' parent: once");
    for n in [4, 5, 7, 8] {
        assert_eq!(received(&user(n)), 0, "user {n}");
    }
    let multicasts: Vec<_> = app
        .double
        .attempts()
        .into_iter()
        .filter(|a| a.via == Via::Multicast)
        .collect();
    assert_eq!(multicasts.len(), 1, "one batch");
    app.assert_contract_held();
    // Done: no longer cancellable.
    let (status, _) = api(
        &app,
        "POST",
        &format!("/api/broadcasts/{id}/cancel"),
        &sender,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn bad_bodies_get_a_reason() {
    let app = console_app().await;
    let sender = app.staff_token("sato.sender", "sender");
    let cases = [
        (
            json!({"audience": {"stage": "child", "months": [6, 4]}, "text": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "月齢",
        ),
        (
            json!({"audience": {"stage": "child", "months": [0, 40]}, "text": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "月齢",
        ),
        (
            json!({"audience": {"stage": "pregnancy", "weeks": [30, 20]}, "text": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "妊娠週数",
        ),
        (
            json!({"audience": {"stage": "all"}, "text": "   "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "本文",
        ),
        (
            json!({"audience": {"stage": "all"}, "text": "x", "image_url": "http://example.com/a.png"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "https",
        ),
        (
            json!({"audience": {"stage": "all"}, "text": "x", "send_at": "tomorrow"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "RFC 3339",
        ),
        (
            json!({"audience": {"stage": "all"}, "text": "x", "send_at": "2001-01-01T00:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "過去",
        ),
        (
            json!({"audience": {"stage": "everyone"}, "text": "x"}),
            StatusCode::BAD_REQUEST,
            "JSON",
        ),
        (json!({"text": "x"}), StatusCode::BAD_REQUEST, "audience"),
        (
            json!({"audience": {"stage": "all"}, "text": "x", "colour": "red"}),
            StatusCode::BAD_REQUEST,
            "colour",
        ),
    ];
    for (body, want, says) in cases {
        let (status, got) = api(&app, "POST", "/api/broadcasts", &sender, Some(body.clone())).await;
        assert_eq!(status, want, "{body}: {got}");
        assert!(
            got["message"].as_str().unwrap().contains(says),
            "{body}: {got}"
        );
    }
    let res = client()
        .post(format!("{}/api/broadcasts", app.admin_address))
        .bearer_auth(&sender)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        app.count("SELECT count(*) FROM broadcasts"),
        0,
        "nothing recorded"
    );
}

#[tokio::test]
async fn quiet_hours_hold_a_broadcast_until_morning_unless_a_sender_overrides_them() {
    let app = console_app().await;
    let sender = app.staff_token("sato.sender", "sender");
    register_child(&app, &user(1), 2, 0).await;
    app.settle().await;
    let night = ten_am(today()) + TimeDelta::hours(12); // 22:00
    app.clock.set(night);
    let (status, held) = api(
        &app,
        "POST",
        "/api/broadcasts",
        &sender,
        Some(json!({"text": "夜のお知らせ", "audience": {"stage": "all"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    let morning = ten_am(today()) + TimeDelta::hours(21); // 07:00 the next day
    assert_eq!(
        DateTime::parse_from_rfc3339(held["send_at"].as_str().unwrap()).unwrap(),
        morning
    );
    assert_eq!(held["held"], true);
    app.steps.broadcasts().await.unwrap();
    assert_eq!(
        app.double
            .texts_to(&user(1))
            .iter()
            .filter(|t| t.as_str() == "夜のお知らせ")
            .count(),
        0,
        "held overnight"
    );
    // An urgent one goes now.
    let (_, urgent) = api(&app, "POST", "/api/broadcasts", &sender, Some(json!({"text": "緊急のお知らせ", "audience": {"stage": "all"}, "override_quiet_hours": true}))).await;
    assert_eq!(urgent["held"], false);
    app.steps.broadcasts().await.unwrap();
    assert_eq!(
        app.double
            .texts_to(&user(1))
            .iter()
            .filter(|t| t.as_str() == "緊急のお知らせ")
            .count(),
        1
    );
    // A held one can still be cancelled; the other goes at 07:00.
    let (_, second) = api(
        &app,
        "POST",
        "/api/broadcasts",
        &sender,
        Some(json!({"text": "取り消すお知らせ", "audience": {"stage": "all"}})),
    )
    .await;
    let (status, cancelled) = api(
        &app,
        "POST",
        &format!("/api/broadcasts/{}/cancel", second["id"]),
        &sender,
        None,
    )
    .await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    app.clock.set(morning);
    app.steps.broadcasts().await.unwrap();
    let texts = app.double.texts_to(&user(1));
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.as_str() == "夜のお知らせ")
            .count(),
        1
    );
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.as_str() == "取り消すお知らせ")
            .count(),
        0
    );
}

#[tokio::test]
async fn a_large_audience_goes_in_batches_of_500_each_reader_once_across_a_crash() {
    let app = console_app().await;
    let sender = app.staff_token("sato.sender", "sender");
    let readers = 1001;
    let born = today().checked_sub_months(Months::new(5)).unwrap();
    let d = app.double.clone();
    for chunk in (0..readers).collect::<Vec<_>>().chunks(100) {
        let events: Vec<Value> = chunk
            .iter()
            .flat_map(|n| {
                let u = user(*n + 100);
                vec![
                    d.follow_event(&u, false),
                    d.text_event(&u, "子育て中"),
                    d.text_event(&u, "ママ"),
                    d.text_event(&u, &born.format("%Y/%m/%d").to_string()),
                    d.text_event(&u, "はい"),
                ]
            })
            .collect();
        assert_eq!(app.send(&events).await, 200);
    }
    app.settle().await;
    // The second batch is delivered, and the process dies before its answer arrives.
    app.double.inject_nth(
        Some(Via::Multicast),
        2,
        Fault::SlowAccept(std::time::Duration::from_secs(30)),
    );
    let (status, created) = api(
        &app,
        "POST",
        "/api/broadcasts",
        &sender,
        Some(json!({"text": "一斉のお知らせ", "audience": {"stage": "child", "months": [5, 5]}})),
    )
    .await;
    assert_eq!(
        (status, created["recipients"].as_i64()),
        (StatusCode::CREATED, Some(readers as i64))
    );
    let steps = app.steps.clone();
    let run = tokio::spawn(async move { steps.broadcasts().await });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app
        .double
        .delivered()
        .iter()
        .filter(|m| m.via == Via::Multicast)
        .count()
        < readers
    {
        assert!(
            std::time::Instant::now() < deadline,
            "every batch delivered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    run.abort();
    let _ = run.await;
    assert!(
        app.count("SELECT count(*) FROM sends WHERE kind = 'broadcast' AND status = 'pending'")
            >= 1,
        "the crash left the delivered second batch unconfirmed"
    );
    let app = app.restart().await;
    app.steps.broadcasts().await.unwrap();
    let id = created["id"].as_i64().unwrap();
    let (_, got) = api(&app, "GET", &format!("/api/broadcasts/{id}"), &sender, None).await;
    assert_eq!(
        (got["status"].as_str(), got["sent"].as_i64()),
        (Some("done"), Some(readers as i64)),
        "{got}"
    );
    let mut per_user: HashMap<String, usize> = HashMap::new();
    for m in app
        .double
        .delivered()
        .iter()
        .filter(|m| m.via == Via::Multicast)
    {
        *per_user.entry(m.to.clone()).or_default() += 1;
    }
    assert_eq!(per_user.len(), readers, "every reader");
    assert!(per_user.values().all(|n| *n == 1), "each once");
    let attempts: Vec<_> = app
        .double
        .attempts()
        .into_iter()
        .filter(|a| a.via == Via::Multicast)
        .collect();
    let keys: std::collections::HashSet<_> = attempts.iter().map(|a| a.retry_key.clone()).collect();
    assert_eq!(
        keys.len(),
        3,
        "three batches: 500, 500 and 1, each with its own key"
    );
    assert!(
        attempts.iter().any(|a| a.status == 409),
        "the resent batch was answered 409: {attempts:?}"
    );
}

#[tokio::test]
async fn exports_open_in_excel_personal_data_is_for_admins_and_every_export_is_audited() {
    let app = console_app().await;
    let viewer = app.staff_token("mori.viewer", "viewer");
    let admin = app.staff_token("tanaka.admin", "admin");
    app.register(
        &user(1),
        "子育て中",
        "はな,\"こ\"",
        today() - chrono::Days::new(30),
    )
    .await;
    app.settle().await;
    let get = |path: &'static str, token: String| {
        let url = format!("{}{path}", app.admin_address);
        async move { client().get(url).bearer_auth(token).send().await.unwrap() }
    };
    let stats = get("/api/export/stats.csv", viewer.clone()).await;
    assert_eq!(stats.status(), StatusCode::OK);
    assert!(
        stats.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        stats.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let bytes = stats.bytes().await.unwrap();
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "a BOM, so Excel reads UTF-8"
    );
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    assert!(
        text.lines().next().unwrap().contains("日付"),
        "{}",
        text.lines().next().unwrap()
    );
    assert_eq!(
        get("/api/export/registrations.csv", viewer).await.status(),
        StatusCode::FORBIDDEN
    );
    let regs = get("/api/export/registrations.csv", admin.clone()).await;
    assert_eq!(regs.status(), StatusCode::OK);
    let bytes = regs.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
    let mut rows = csv::Reader::from_reader(&bytes[3..]);
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 1);
    assert!(
        records[0].iter().any(|f| f == "はな,\"こ\""),
        "the nickname round-trips: {:?}",
        records[0]
    );
    assert!(
        !String::from_utf8_lossy(&bytes).contains(&user(1)),
        "no LINE user id"
    );
    let (_, audit) = api(&app, "GET", "/api/audit?action=export", &admin, None).await;
    let details: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(details.len(), 2, "{audit}");
    assert!(
        details.iter().any(|d| d.starts_with("registrations.csv"))
            && details.iter().any(|d| d.starts_with("stats.csv"))
    );
}

#[tokio::test]
async fn a_viewer_sees_the_statistics_but_no_form_that_sends() {
    let app = console_app().await;
    let password = password_of(&app.staff_cli(&["add", "mori.v", "--role", "viewer"]));
    let b = log_in(&app, "mori.v", &password).await.unwrap();
    let dash = b.get(&app, "/").await;
    assert_eq!(dash.status(), StatusCode::OK);
    let html = dash.text().await.unwrap();
    assert!(html.matches("<svg").count() >= 4, "the charts are pictures");
    assert!(
        !html.contains("registrations.csv"),
        "no personal-data export offered to a viewer"
    );
    let list = b.get(&app, "/broadcasts").await.text().await.unwrap();
    assert!(
        !list.contains("/broadcasts/new"),
        "no send button for a viewer"
    );
    for path in ["/broadcasts/new", "/staff", "/audit"] {
        assert_eq!(
            b.get(&app, path).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let res = b
        .post(
            &app,
            "/broadcasts",
            &[
                ("csrf", &b.csrf),
                ("text", "x"),
                ("stage", "all"),
                ("when", "now"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM broadcasts"), 0);
}

#[tokio::test]
async fn a_test_send_reaches_only_the_staff_members_own_line() {
    let app = console_app().await;
    let sender = app.staff_token("sato.sender", "sender");
    let staff_line = user(90);
    app.say(&[app.double.follow_event(&staff_line, false)])
        .await;
    register_child(&app, &user(1), 5, 0).await;
    app.settle().await;
    let body = json!({"text": "テスト：離乳食教室のお知らせ", "image_url": "https://example.jp/a.png", "to": [staff_line]});
    let (status, got) = api(&app, "POST", "/api/broadcasts/test", &sender, Some(body)).await;
    assert_eq!(
        (status, got["sent"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{got}"
    );
    let received = app.double.delivered_to(&staff_line);
    let last = received.last().unwrap();
    assert_eq!(last.messages.len(), 2, "the text and the image");
    assert_eq!(last.messages[1]["type"], "image");
    assert!(
        app.double
            .texts_to(&user(1))
            .iter()
            .all(|t| !t.contains("テスト：")),
        "no reader gets a test"
    );
    let stranger = user(91);
    let (status, got) = api(
        &app,
        "POST",
        "/api/broadcasts/test",
        &sender,
        Some(json!({"text": "x", "to": [stranger]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{got}");
    assert!(
        got["message"].as_str().unwrap().contains("友だち追加"),
        "{got}"
    );
    let (status, _) = api(
        &app,
        "POST",
        "/api/broadcasts/test",
        &sender,
        Some(json!({"text": "x", "to": ["not-an-id"]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'broadcast_test_sent'"),
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM broadcasts"),
        0,
        "a test is no broadcast"
    );
    app.assert_contract_held();
}

#[tokio::test]
async fn the_cli_takes_a_chosen_password_from_stdin_and_refuses_a_short_or_taken_one() {
    use std::io::Write as _;
    let app = console_app().await;
    let add = |login: &str, password: &str| {
        let mut child = crate::helpers::yorisoi(&app.clock)
            .args([
                "staff",
                "add",
                login,
                "--role",
                "viewer",
                "--password-stdin",
            ])
            .env("YORISOI_DATABASE", &app.db_path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = add("kato.m", "short\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("12"),
        "names the minimum"
    );
    let out = add("kato.m", "みんなで子育て 2026 春\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("みんなで"),
        "a chosen password is not printed"
    );
    log_in(&app, "kato.m", "みんなで子育て 2026 春")
        .await
        .expect("the chosen password opens it");
    let out = add("kato.m", "another long password\n");
    assert_eq!(out.status.code(), Some(1), "the login is taken");
    let out = add("Kato M", "another long password\n");
    assert_eq!(out.status.code(), Some(1), "not a login name");
}

#[tokio::test]
async fn an_admin_adds_a_sender_in_the_console_who_can_log_in_until_disabled() {
    let app = console_app().await;
    let password = password_of(&app.staff_cli(&["add", "tanaka.a", "--role", "admin"]));
    let admin = log_in(&app, "tanaka.a", &password).await.unwrap();
    let page = admin
        .post(
            &app,
            "/staff",
            &[
                ("csrf", &admin.csrf),
                ("login", "sato.s"),
                ("role", "sender"),
            ],
        )
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let at = html
        .find("<code id=\"secret\">")
        .expect("the new password, shown once")
        + 18;
    let new_password = html[at..].split('<').next().unwrap().to_string();
    let sender = log_in(&app, "sato.s", &new_password)
        .await
        .expect("the sender logs in");
    assert_eq!(
        sender.get(&app, "/broadcasts/new").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        sender.get(&app, "/staff").await.status(),
        StatusCode::FORBIDDEN
    );
    let res = admin
        .post(&app, "/staff/sato.s/disable", &[("csrf", &admin.csrf)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        sender.get(&app, "/broadcasts").await.status(),
        StatusCode::SEE_OTHER,
        "its session ended"
    );
    assert!(log_in(&app, "sato.s", &new_password).await.is_err());
    let audited = app.count(
        "SELECT count(*) FROM audit_log WHERE login = 'tanaka.a' AND action IN ('staff_added', 'staff_disabled')",
    );
    assert_eq!(audited, 2);
}
