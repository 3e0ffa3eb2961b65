//! Rich menus: `yorisoi richmenu sync` against the LINE double (the contract, the data host,
//! aliases, the default, idempotence, replacement, deletion, dry run, LINE's hourly limit) and
//! each reader's menu following their stage.

use crate::helpers::{TestApp, due_in_114_days, spawn_app, yorisoi};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use yorisoi::clock::Clock;
use yorisoi::line_double::user_id;

fn repo_menus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("richmenus")
}

/// A copy of the committed definitions a test may change.
fn menus_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(repo_menus()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    dir
}

/// `yorisoi richmenu sync ARGS` with the app's settings, database, double and clock.
fn sync(app: &TestApp, dir: &Path, args: &[&str]) -> std::process::Output {
    let s = &app.settings;
    yorisoi(&app.clock)
        .args(["richmenu", "sync"])
        .args(args)
        .env("LINE_CHANNEL_SECRET", s.channel_secret.expose())
        .env("LINE_CHANNEL_ACCESS_TOKEN", s.channel_access_token.expose())
        .env("LINE_API_BASE", &s.line_api_base)
        .env("LINE_DATA_API_BASE", &s.line_data_api_base)
        .env("YORISOI_DATABASE", &app.db_path)
        .env("YORISOI_CONTENT_DIR", &s.content_dir)
        .env("YORISOI_RICHMENU_DIR", dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("yorisoi richmenu sync runs")
}

fn synced(app: &TestApp, dir: &Path) -> String {
    let out = sync(app, dir, &[]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The current menus as recorded: name → LINE's id.
fn recorded(app: &TestApp) -> BTreeMap<String, String> {
    let db = app.db();
    let mut stmt = db
        .prepare(
            "SELECT name, rich_menu_id FROM richmenus WHERE current = 1 AND deleted_at IS NULL",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn changing_calls(app: &TestApp) -> usize {
    app.double
        .rich_menu_calls()
        .iter()
        .filter(|c| c.changing())
        .count()
}

#[tokio::test]
async fn sync_creates_each_menu_with_its_image_on_the_data_host_its_alias_and_the_default() {
    let app = spawn_app().await;
    let out = synced(&app, &repo_menus());
    assert!(out.contains("create pregnancy"), "{out}");

    let ids = recorded(&app);
    assert_eq!(
        ids.keys().collect::<Vec<_>>(),
        ["child", "pregnancy", "registering", "stopped"]
    );
    let on_line = app.double.rich_menus();
    assert_eq!(on_line.len(), 4);
    for (name, id) in &ids {
        let menu = &on_line[id];
        assert_eq!(menu.object["name"], name.as_str());
        assert_eq!(menu.object["chatBarText"], "メニュー");
        let (image, content_type) = menu.image.as_ref().expect("image uploaded");
        assert_eq!(content_type, "image/png");
        let committed = std::fs::read(repo_menus().join(format!("{name}.png"))).unwrap();
        assert_eq!(&image[..], &committed[..], "{name}: the committed image");
        assert_eq!(
            app.double.rich_menu_aliases()[&format!("yorisoi-{name}")],
            *id
        );
    }
    assert_eq!(
        app.double.default_rich_menu(),
        Some(ids["registering"].clone())
    );

    let calls = app.double.rich_menu_calls();
    let uploads: Vec<_> = calls
        .iter()
        .filter(|c| c.path.ends_with("/content"))
        .collect();
    assert_eq!(uploads.len(), 4);
    assert!(
        uploads.iter().all(|c| c.host == "data" && c.status == 200),
        "{uploads:?}"
    );
    assert!(
        calls
            .iter()
            .filter(|c| c.host == "api")
            .all(|c| !c.path.ends_with("/content"))
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.path == "/v2/bot/richmenu/validate")
            .count(),
        4
    );
    let refused: Vec<_> = calls
        .iter()
        .filter(|c| c.changing() && c.status != 200)
        .collect();
    assert!(refused.is_empty(), "the double refused: {refused:?}");

    // A second run reads LINE and changes nothing.
    let before = changing_calls(&app);
    let out = synced(&app, &repo_menus());
    assert!(out.contains("nothing to do"), "{out}");
    assert_eq!(
        changing_calls(&app),
        before,
        "no changing request the second time"
    );
    assert_eq!(recorded(&app), ids);
}

#[tokio::test]
async fn a_changed_definition_replaces_that_menu_only_and_a_removed_one_is_deleted() {
    let app = spawn_app().await;
    let dir = menus_copy();
    synced(&app, dir.path());
    let first = recorded(&app);

    let path = dir.path().join("child.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"メニュー\"", "\"メニューを開く\"")).unwrap();
    let out = synced(&app, dir.path());
    let second = recorded(&app);
    assert_ne!(second["child"], first["child"]);
    for name in ["pregnancy", "registering", "stopped"] {
        assert_eq!(second[name], first[name], "{name} kept");
    }
    let on_line = app.double.rich_menus();
    assert!(
        !on_line.contains_key(&first["child"]),
        "the old child menu deleted: {out}"
    );
    assert_eq!(
        on_line[&second["child"]].object["chatBarText"],
        "メニューを開く"
    );
    assert_eq!(
        app.double.rich_menu_aliases()["yorisoi-child"],
        second["child"]
    );
    assert_eq!(on_line.len(), 4);

    std::fs::remove_file(dir.path().join("stopped.json")).unwrap();
    synced(&app, dir.path());
    let on_line = app.double.rich_menus();
    assert_eq!(on_line.len(), 3);
    assert!(!on_line.contains_key(&first["stopped"]));
    assert!(
        !app.double
            .rich_menu_aliases()
            .contains_key("yorisoi-stopped")
    );
    assert!(!recorded(&app).contains_key("stopped"));
    assert_eq!(
        app.count("SELECT count(*) FROM richmenus WHERE deleted_at IS NOT NULL"),
        2,
        "the replaced child menu and the stopped menu"
    );
}

#[tokio::test]
async fn a_dry_run_prints_the_plan_and_changes_nothing() {
    let app = spawn_app().await;
    let out = sync(&app, &repo_menus(), &["--dry-run"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "would create registering",
        "would alias: create yorisoi-child",
        "would default: the new registering menu",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    assert_eq!(changing_calls(&app), 0);
    assert_eq!(app.count("SELECT count(*) FROM richmenus"), 0);
}

#[tokio::test]
async fn a_sync_that_would_pass_lines_hourly_limit_stops_before_any_request() {
    let app = spawn_app().await;
    let recent = yorisoi::store::ts(app.clock.now() - chrono::TimeDelta::minutes(10));
    let db = app.db();
    for i in 0..97 {
        db.execute(
            "INSERT INTO richmenus (rich_menu_id, name, hash, created_at, deleted_at, deleted_by)
             VALUES (?1, 'child', 'x', ?2, ?2, 'sync')",
            rusqlite::params![format!("richmenu-old{i}"), recent],
        )
        .unwrap();
    }
    // 97 creations and 97 deletions: 194 in the last hour, and four more are needed.
    let out = sync(&app, &repo_menus(), &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("LINE allows 100 rich menu creations and deletions an hour"),
        "{err}"
    );
    assert_eq!(changing_calls(&app), 0);
}

fn linked(app: &TestApp, user: &str) -> Option<String> {
    app.double.rich_menu_linked(user)
}

#[tokio::test]
async fn each_readers_menu_follows_their_stage() {
    let app = spawn_app().await;
    let d = &app.double;
    let early = user_id(1);
    app.register(&early, "妊娠中", "はなこ", due_in_114_days())
        .await;
    app.settle().await;
    // No menu synced yet: the relinker does nothing.
    app.steps.relink().await.unwrap();
    assert!(d.rich_menu_calls().is_empty());

    // The sync links the readers already registered.
    synced(&app, &repo_menus());
    let ids = recorded(&app);
    assert_eq!(linked(&app, &early), Some(ids["pregnancy"].clone()));

    // Registering by chat: the pregnancy menu.
    let u = user_id(2);
    app.say(&[d.follow_event(&u, false)]).await;
    app.steps.relink().await.unwrap();
    assert_eq!(
        linked(&app, &u),
        None,
        "a new follower has the default menu"
    );
    for t in ["妊娠中", "はなこ", &due_in_114_days().to_string(), "はい"] {
        app.say(&[d.text_event(&u, t)]).await;
    }
    app.steps.relink().await.unwrap();
    assert_eq!(linked(&app, &u), Some(ids["pregnancy"].clone()));
    let (shown, _) = d.rich_menu_shown(&u).unwrap();
    assert_eq!(shown, ids["pregnancy"]);

    // Stopping from the chat: the stopped menu; resuming: the pregnancy menu again.
    for t in ["配信停止", "停止する"] {
        app.say(&[d.text_event(&u, t)]).await;
    }
    app.steps.relink().await.unwrap();
    assert_eq!(linked(&app, &u), Some(ids["stopped"].clone()));
    app.say(&[d.text_event(&u, "配信再開")]).await;
    app.steps.relink().await.unwrap();
    assert_eq!(linked(&app, &u), Some(ids["pregnancy"].clone()));

    // Nothing changed: nothing to send.
    let before = changing_calls(&app);
    app.steps.relink().await.unwrap();
    assert_eq!(changing_calls(&app), before);
    assert_eq!(
        d.rich_menu_shown(&user_id(3)).map(|(id, _)| id),
        Some(ids["registering"].clone()),
        "anyone else sees the default"
    );
    // Erasing one's data from the chat: back to the default menu (the reader still follows).
    for t in ["データを削除", "削除する"] {
        app.say(&[d.text_event(&u, t)]).await;
    }
    app.steps.relink().await.unwrap();
    assert_eq!(linked(&app, &u), None);
    assert_eq!(
        d.rich_menu_shown(&u).map(|(id, _)| id),
        Some(ids["registering"].clone()),
        "the erased reader sees the default menu"
    );
    let calls = d.rich_menu_calls();
    assert!(
        calls.iter().all(|c| c.status == 200 || c.method == "GET"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_reader_of_a_child_gets_the_child_menu() {
    let app = spawn_app().await;
    synced(&app, &repo_menus());
    let ids = recorded(&app);
    let u = user_id(4);
    let born = crate::helpers::today() - chrono::Days::new(30);
    app.register(&u, "子育て中", "ママ", born).await;
    app.settle().await;
    app.steps.relink().await.unwrap();
    assert_eq!(linked(&app, &u), Some(ids["child"].clone()));
}

#[tokio::test]
async fn the_sandbox_syncs_the_menus_and_shows_each_user_theirs() {
    let sb = crate::sandbox::start(&[]);
    let (_, u) = sb.post("/users", serde_json::json!({})).await;
    let id = u["user_id"].as_str().unwrap().to_owned();
    let (status, _) = sb
        .post(&format!("/users/{id}/follow"), serde_json::json!({}))
        .await;
    assert_eq!(status, 204);
    let menu = sb.get(&format!("/users/{id}/richmenu")).await;
    let current = &menu["current"];
    assert_eq!(current["size"]["height"], 843, "{menu}");
    assert_eq!(current["areas"][0]["action"]["data"], "menu:register");
    assert_eq!(menu["aliases"].as_object().unwrap().len(), 4);
    let image = reqwest::get(format!("{}{}", sb.base, current["image"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(image.headers()["content-type"], "image/png");
    let committed = std::fs::read(repo_menus().join("registering.png")).unwrap();
    assert_eq!(image.bytes().await.unwrap().to_vec(), committed);

    // A tap: the displayText is the reader's message; the postback reaches the service.
    let (status, v) = sb
        .post(
            &format!("/users/{id}/postback"),
            serde_json::json!({ "data": "menu:faq", "display_text": "よくある質問" }),
        )
        .await;
    assert_eq!(status, 204, "{v}");
    let talk = sb.get(&format!("/users/{id}/messages")).await;
    let mine: Vec<&str> = talk["talk"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["from"] == "user")
        .filter_map(|t| t["text"].as_str())
        .collect();
    assert_eq!(mine.last(), Some(&"よくある質問"), "{talk}");
    assert_eq!(
        sb.get("/violations").await["violations"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn a_link_line_failed_is_tried_again_later() {
    let app = spawn_app().await;
    synced(&app, &repo_menus());
    let ids = recorded(&app);
    let u = user_id(5);
    app.register(&u, "妊娠中", "はなこ", due_in_114_days())
        .await;
    app.settle().await;
    app.double.inject_rich_menu_failure(500, 1);
    let pass = app.steps.relink().await.unwrap();
    assert_eq!((pass.later, pass.linked), (1, 0));
    assert_eq!(linked(&app, &u), None);
    // Not before its time.
    assert_eq!(app.steps.relink().await.unwrap().looked, 0);
    app.clock
        .set(app.clock.now() + chrono::TimeDelta::seconds(61));
    assert_eq!(app.steps.relink().await.unwrap().linked, 1);
    assert_eq!(linked(&app, &u), Some(ids["pregnancy"].clone()));
}

#[tokio::test]
async fn the_menu_follows_the_birth_a_pause_a_closing_and_a_block() {
    let app = spawn_app().await;
    synced(&app, &repo_menus());
    let ids = recorded(&app);
    let u = user_id(6);
    app.register(&u, "妊娠中", "はなこ", due_in_114_days())
        .await;
    app.settle().await;
    app.steps.relink().await.unwrap();
    assert_eq!(linked(&app, &u), Some(ids["pregnancy"].clone()));
    let db = app.db();
    let today = crate::helpers::today().to_string();
    let step = async |sql: &str, expected: &str| {
        db.execute(sql, rusqlite::params![]).unwrap();
        app.steps.relink().await.unwrap();
        assert_eq!(linked(&app, &u), Some(ids[expected].clone()), "{sql}");
    };
    step(
        &format!("UPDATE registrations SET stage = 'child', birthday = '{today}'"),
        "child",
    )
    .await;
    step("UPDATE registration_readers SET paused = 1", "stopped").await;
    step("UPDATE registration_readers SET paused = 0", "child").await;
    step("UPDATE registrations SET closed = 'loss'", "stopped").await;

    // A reader who blocked the account: nothing is sent for them.
    let before = changing_calls(&app);
    app.say(&[app.double.unfollow_event(&u)]).await;
    app.steps.relink().await.unwrap();
    assert_eq!(changing_calls(&app), before);
    assert_eq!(
        app.count("SELECT count(*) FROM richmenu_links WHERE dirty = 1"),
        0
    );
}

#[tokio::test]
async fn a_revoked_token_leaves_readers_marked_and_they_are_linked_once_it_is_right() {
    use yorisoi::clock::Clock;
    let app = spawn_app().await;
    let d = &app.double;
    synced(&app, &repo_menus());
    let ids = recorded(&app);
    let (a, b) = (user_id(41), user_id(42));
    app.register(&a, "妊娠中", "はなこ", due_in_114_days())
        .await;
    app.register(&b, "妊娠中", "さくら", due_in_114_days())
        .await;
    app.settle().await;
    d.set_token_revoked(true);
    app.steps.relink().await.unwrap();
    assert_eq!(linked(&app, &a), None);
    let refused = d
        .rich_menu_calls()
        .iter()
        .filter(|c| c.status == 401)
        .count();
    assert_eq!(refused, 1, "the pass stops at the first refusal");
    // The token is put right: a minute later both are linked.
    d.set_token_revoked(false);
    app.clock
        .set(app.clock.now() + chrono::Duration::seconds(61));
    app.steps.relink().await.unwrap();
    assert_eq!(linked(&app, &a), Some(ids["pregnancy"].clone()));
    assert_eq!(linked(&app, &b), Some(ids["pregnancy"].clone()));
}
