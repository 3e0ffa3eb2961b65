//! `yorisoi serve --sandbox` through its JSON API: the real service against the in-process LINE
//! double, on its own database and clock.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct Sandbox {
    child: Child,
    pub api: String,
    pub base: String,
    dir: std::path::PathBuf,
    _owned: Option<tempfile::TempDir>,
    http: reqwest::Client,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a sandbox in a fresh folder (the shipped pack, no LINE variable) and reads its URL.
pub fn start(extra_env: &[(&str, &str)]) -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    let mut sb = start_in(dir.path(), &[], extra_env);
    sb._owned = Some(dir);
    sb
}

/// Starts a sandbox in `dir` with more arguments (`--reset`) and variables.
pub fn start_in(dir: &std::path::Path, args: &[&str], extra_env: &[(&str, &str)]) -> Sandbox {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_yorisoi"));
    cmd.args(["serve", "--sandbox"])
        .args(args)
        .current_dir(dir)
        .env_remove("LINE_CHANNEL_SECRET")
        .env_remove("LINE_CHANNEL_ACCESS_TOKEN")
        .env_remove("YORISOI_DATABASE")
        .env(
            "YORISOI_CONTENT_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/messages"),
        )
        .env(
            "YORISOI_RICHMENU_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/richmenus"),
        )
        .env("YORISOI_LISTEN", "127.0.0.1:0")
        .env("YORISOI_ADMIN_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("the sandbox prints its URL: {line:?}"))
        .to_owned();
    let base = url.trim_end_matches("/sandbox").to_owned();
    Sandbox {
        child,
        api: format!("{base}/sandbox/api"),
        base,
        dir: dir.to_owned(),
        _owned: None,
        http: reqwest::Client::new(),
    }
}

impl Sandbox {
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.api))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.api))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A user types `text` (and the service answers).
    pub async fn say_as(&self, user: &str, text: &str) {
        self.say(user, text).await;
    }

    async fn say(&self, user: &str, text: &str) {
        let (status, v) = self
            .post(&format!("/users/{user}/say"), json!({ "text": text }))
            .await;
        assert_eq!(status, 204, "{v}");
    }
}

fn texts(messages: &Value) -> Vec<(String, String, String)> {
    messages["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| {
            d["messages"].as_array().unwrap().iter().map(move |m| {
                (
                    d["via"].as_str().unwrap().to_owned(),
                    d["date"].as_str().unwrap().to_owned(),
                    m["text"]
                        .as_str()
                        .or(m["altText"].as_str())
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
        })
        .collect()
}

#[tokio::test]
async fn a_parent_registers_in_the_sandbox_and_a_week_of_messages_arrives() {
    let sb = start(&[]);
    let page = reqwest::get(format!("{}/sandbox", sb.base)).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("サンドボックス"));

    let (status, user) = sb.post("/users", json!({ "name": "はなこ" })).await;
    assert_eq!(status, 201);
    let id = user["user_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with('U') && id.len() == 33, "{id}");
    let (status, _) = sb.post(&format!("/users/{id}/follow"), json!({})).await;
    assert_eq!(status, 204);
    sb.say(&id, "妊娠中").await;
    sb.say(&id, "はなこ").await;
    let clock = sb.get("/clock").await;
    let today =
        chrono::NaiveDate::parse_from_str(clock["date"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    let due = today + chrono::Days::new(140);
    let (status, v) = sb
        .post(
            &format!("/users/{id}/postback"),
            json!({ "data": "date", "params": { "date": due.to_string() } }),
        )
        .await;
    assert_eq!(status, 204, "{v}");
    sb.say(&id, "はい").await;

    let before = texts(&sb.get(&format!("/users/{id}/messages")).await);
    assert!(
        before.iter().all(|(via, _, _)| via == "reply"),
        "every answer is a reply: {before:?}"
    );
    assert!(
        before
            .iter()
            .any(|(_, _, t)| t.contains("登録が完了しました"))
    );

    let (status, travelled) = sb.post("/clock", json!({ "days": 7 })).await;
    assert_eq!(status, 200, "{travelled}");
    assert_eq!(
        travelled["date"],
        (today + chrono::Days::new(7)).to_string()
    );
    let all = sb.get(&format!("/users/{id}/messages")).await;
    // The day messages of the week (and of today, if its delivery time had not passed).
    let days: Vec<(String, String)> = all["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["via"] == "push")
        .filter_map(|d| {
            let text = d["messages"][0]["text"].as_str()?.to_owned();
            Some((d["date"].as_str()?.to_owned(), text))
        })
        .collect();
    assert!(days.len() >= 7, "{days:?}");
    for (date, text) in days.iter().rev().take(7) {
        let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
        let g = 280 - (due - date).num_days();
        let label = format!("妊娠{}週{}日", g / 7, g % 7);
        assert!(text.contains("はなこさん"), "{text}");
        assert!(text.contains(&label), "{date}: {label} in {text}");
    }
    let with_positions = all["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["via"] == "push")
        .all(|d| {
            d["positions"][0]
                .as_str()
                .is_some_and(|p| p.starts_with("妊娠"))
        });
    assert!(with_positions, "each push names the position it was for");
    // The talk holds both sides, in order; the travel counted the pushes it sent.
    let said: Vec<String> = all["talk"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["from"] == "user")
        .map(|t| t["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        said,
        [
            "（友だち追加）",
            "妊娠中",
            "はなこ",
            &format!("（日付を選択：{due}）"),
            "はい"
        ]
    );
    let first_reply = all["talk"]
        .as_array()
        .unwrap()
        .iter()
        .position(|t| t["from"] == "account")
        .unwrap();
    assert_eq!(first_reply, 1, "the greeting answers the follow");
    let pushes_sent = all["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["via"] == "push")
        .count();
    assert_eq!(travelled["pushes"], pushes_sent, "{travelled}");
    let listed = sb.get("/users").await;
    assert_eq!(listed["users"][0]["following"], true, "{listed}");
    let last = listed["users"][0]["last"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        !last.is_empty(),
        "the talk list shows the last message: {listed}"
    );
    let violations = sb.get("/violations").await;
    assert_eq!(violations["violations"], json!([]));

    // Time never goes backwards; unknown users and bad bodies get a reason.
    let (status, v) = sb
        .post("/clock", json!({ "date": today.to_string() }))
        .await;
    assert_eq!(status, 400);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("never goes backwards"),
        "{v}"
    );
    let (status, v) = sb.post("/clock", json!({ "days": 0 })).await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = sb
        .post("/users/Unobody/say", json!({ "text": "こんにちは" }))
        .await;
    assert_eq!(status, 404);
    assert!(v["message"].as_str().unwrap().contains("no simulated user"));
    let (status, _) = sb
        .post(&format!("/users/{id}/say"), json!({ "text": " " }))
        .await;
    assert_eq!(status, 400);
    let (status, v) = sb.post("/clock", json!({ "days": "x" })).await;
    assert_eq!(status, 400);
    assert!(
        v["message"].as_str().unwrap().contains("not the JSON"),
        "{v}"
    );

    let (status, _) = sb.post(&format!("/users/{id}/block"), json!({})).await;
    assert_eq!(status, 204);
    assert_eq!(sb.get("/users").await["users"][0]["following"], false);

    // Its own database: the production one is never created.
    assert!(sb.dir.join("data/sandbox.db").exists());
    assert!(!sb.dir.join("data/yorisoi.db").exists());
}

#[tokio::test]
async fn the_sandbox_is_not_served_outside_sandbox_mode() {
    let app = crate::helpers::spawn_app().await;
    for path in ["/sandbox", "/sandbox/api/clock", "/sandbox/api/users"] {
        let r = reqwest::get(format!("{}{path}", app.address))
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn the_sandbox_ignores_line_settings_keeps_its_clock_and_starts_afresh_on_reset() {
    let dir = tempfile::tempdir().unwrap();
    // A production configuration in the environment: none of it reaches the sandbox.
    let production = [
        ("LINE_CHANNEL_SECRET", "production-secret"),
        ("LINE_CHANNEL_ACCESS_TOKEN", "production-token"),
        ("LINE_API_BASE", "http://127.0.0.1:9"),
        ("LINE_DATA_API_BASE", "http://127.0.0.1:9"),
        ("YORISOI_DATABASE", "production.db"),
        ("YORISOI_PUSH_TIME", "off"),
    ];
    let sb = start_in(dir.path(), &[], &production);
    let (_, user) = sb.post("/users", json!({ "name": "そら" })).await;
    let id = user["user_id"].as_str().unwrap().to_owned();
    let (status, _) = sb.post(&format!("/users/{id}/follow"), json!({})).await;
    assert_eq!(status, 204);
    let got = texts(&sb.get(&format!("/users/{id}/messages")).await);
    assert!(
        got.iter()
            .any(|(via, _, t)| via == "reply" && t.contains("友だち追加ありがとうございます")),
        "the greeting reached the sandbox's LINE: {got:?}"
    );
    let clock = sb.get("/clock").await;
    assert_eq!(
        clock["delivery_time"], "09:00",
        "a delivery time even when production has none"
    );
    let today = clock["date"].as_str().unwrap().to_owned();
    let (status, v) = sb.post("/clock", json!({ "days": 1159 })).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("1158"), "{v}");
    let (status, v) = sb.post("/clock", json!({ "days": 40 })).await;
    assert_eq!(status, 200, "{v}");
    let travelled = v["date"].as_str().unwrap().to_owned();
    drop(sb);
    assert!(!dir.path().join("production.db").exists());
    assert!(!dir.path().join("data/yorisoi.db").exists());

    // A restart continues where the clock stood, with the same users.
    let sb = start_in(dir.path(), &[], &[]);
    assert_eq!(sb.get("/clock").await["date"], travelled.as_str());
    let users = sb.get("/users").await;
    assert_eq!(users["users"][0]["name"], "そら");
    drop(sb);

    // --reset: a new database, the clock back to now, no users.
    let sb = start_in(dir.path(), &["--reset"], &[]);
    let reset = sb.get("/clock").await["date"].as_str().unwrap().to_owned();
    assert!(
        reset >= today && reset < travelled,
        "back to now ({today}), not {travelled}: {reset}"
    );
    assert_eq!(sb.get("/users").await["users"], json!([]));
}
