//! The sandbox's chat page and the staff console in a real headless browser (Debian's
//! `chromium` and `chromium-driver`; `.ci/run` installs them and sets
//! `YORISOI_BROWSER_TEST=required`). Without a `chromedriver` on the machine the tests say so
//! and pass, unless required.

use crate::console::{password_of, register_child, ten_am, user};
use crate::helpers::{due_in_114_days, spawn_app_on, today};
use crate::sandbox::start;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a page may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(15);
/// How often a test looks again while it waits.
const POLL: Duration = Duration::from_millis(100);

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> Option<(Driver, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let driver = Driver(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((driver, port));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// A headless Chromium session (the client first: it is dropped before its driver), or `None`
/// when there is no chromedriver and the browser tests are not required.
async fn browser() -> Option<(Client, Driver)> {
    let Some((driver, port)) = chromedriver() else {
        if std::env::var("YORISOI_BROWSER_TEST").as_deref() == Ok("required") {
            panic!("chromedriver is required (apt-get install chromium chromium-driver)");
        }
        eprintln!(
            "skipped: no chromedriver on this machine (apt-get install chromium chromium-driver)"
        );
        return None;
    };
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1100,900"] }),
    );
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a browser session");
    Some((c, driver))
}

/// The text of the first element `css` selects, if there is one.
async fn text_at(c: &Client, css: &str) -> Option<String> {
    c.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

/// Waits until the first element `css` selects has a text `ok` accepts, and returns it; fails
/// with the last text seen.
async fn wait_for_text(c: &Client, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    let mut last = None;
    loop {
        if let Some(t) = text_at(c, css).await {
            if ok(&t) {
                return t;
            }
            last = Some(t);
        }
        assert!(
            Instant::now() < deadline,
            "{css} never showed {what} within {PATIENCE:?}; last seen: {last:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

async fn wait_text(c: &Client, id: &str, needle: &str) -> String {
    wait_for_text(c, &format!("#{id}"), &format!("{needle:?}"), |t| {
        t.contains(needle)
    })
    .await
}

/// The element `locator` finds, once it is there.
async fn element(c: &Client, locator: Locator<'_>) -> fantoccini::elements::Element {
    c.wait()
        .at_most(PATIENCE)
        .every(POLL)
        .for_element(locator)
        .await
        .unwrap_or_else(|e| panic!("no {locator:?} within {PATIENCE:?}: {e}"))
}

/// Clicks what `locator` finds, once it is there.
async fn click(c: &Client, locator: Locator<'_>) {
    element(c, locator)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {locator:?}: {e}"));
}

/// The button whose visible text is `label`.
fn button(label: &str) -> String {
    format!("//button[normalize-space(.)='{label}']")
}

/// Waits until the browser is on a path `ok` accepts, and returns it.
async fn wait_for_path(c: &Client, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let path = c.current_url().await.ok().map(|u| u.path().to_string());
        if let Some(p) = &path
            && ok(p)
        {
            return p.clone();
        }
        if Instant::now() >= deadline {
            let main = text_at(c, "main").await.unwrap_or_default();
            panic!("never on {what} within {PATIENCE:?}; on {path:?}, showing:\n{main}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits for a `window.confirm` dialog, accepts it and returns its question.
async fn accept_confirm(c: &Client) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(question) = c.get_alert_text().await {
            c.accept_alert().await.expect("the dialog accepted");
            return question;
        }
        assert!(
            Instant::now() < deadline,
            "no confirmation dialog within {PATIENCE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

async fn tap(c: &Client, label: &str) {
    click(
        c,
        Locator::XPath(&format!(
            "//div[@id='quick']/button[normalize-space(text())='{label}']"
        )),
    )
    .await;
}

#[tokio::test]
async fn a_parent_registers_and_travels_a_week_in_the_browser() {
    let Some((c, _driver)) = browser().await else {
        return;
    };
    let sb = start(&[]);
    c.goto(&format!("{}/sandbox", sb.base)).await.unwrap();
    wait_text(&c, "talk", "ユーザーを作る").await;

    c.find(Locator::Id("newUser"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "who", "ユーザー1").await;
    c.find(Locator::Id("follow"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "talk", "友だち追加ありがとうございます").await;
    tap(&c, "妊娠中").await;
    wait_text(&c, "talk", "ニックネーム").await;
    let input = c.find(Locator::Id("text")).await.unwrap();
    input.send_keys("はなこ").await.unwrap();
    c.find(Locator::Css("#compose button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "talk", "出産予定日を教えてください").await;
    tap(&c, "日付を選ぶ").await;
    let clock = sb.get("/clock").await;
    let today =
        chrono::NaiveDate::parse_from_str(clock["date"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    let due = today + chrono::Days::new(140);
    let picker = c
        .wait()
        .for_element(Locator::Css("#quick input[type=date]"))
        .await
        .unwrap();
    assert_eq!(
        picker.attr("max").await.unwrap().as_deref().map(str::len),
        Some(10),
        "the picker honours the date picker's max"
    );
    c.execute(
        "document.querySelector('#quick input[type=date]').value = arguments[0];",
        vec![json!(due.to_string())],
    )
    .await
    .unwrap();
    tap(&c, "決定").await;
    wait_text(&c, "talk", "この内容で登録します").await;
    tap(&c, "はい").await;
    wait_text(&c, "talk", "登録が完了しました").await;

    c.find(Locator::Css("button[data-days='7']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "travelInfo", "日分の配信").await;
    let end = today + chrono::Days::new(7);
    let talk = wait_text(&c, "talk", &end.to_string()).await;
    let mut seen = 0;
    for back in 0..7 {
        let date = end - chrono::Days::new(back);
        let g = 280 - (due - date).num_days();
        let label = format!("妊娠{}週{}日", g / 7, g % 7);
        assert!(talk.contains(&label), "{label} on the page:\n{talk}");
        seen += 1;
    }
    assert_eq!(seen, 7);
    assert!(talk.matches("はなこさん").count() >= 7, "{talk}");
    // The delivery log: each push with its sandbox date and the position it was for.
    c.find(Locator::Id("logBtn"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let log = wait_text(&c, "log", "そのときの週数・日数").await;
    let g = 280 - (due - end).num_days();
    let last = format!("{end} 09:01 プッシュ 妊娠{}週{}日", g / 7, g % 7);
    assert!(log.contains(&last), "{last:?} in the log:\n{log}");
    c.find(Locator::Id("logBtn"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let violations = c.find(Locator::Id("violations")).await.unwrap();
    assert_eq!(
        violations.text().await.unwrap(),
        "",
        "no contract violation"
    );

    let png = c.screenshot().await.unwrap();
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandbox-chat.png");
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_sender_logs_in_previews_the_count_sends_to_4_to_6_month_olds_and_sees_the_result() {
    let Some((c, _driver)) = browser().await else {
        return;
    };
    let started = Instant::now();
    let app = spawn_app_on(today()).await;
    app.clock.set(ten_am(today()));
    // One reader each with a child of 3, 4, 5, 6 and 7 months, and one expecting.
    for months in 3..=7 {
        register_child(&app, &user(months), months as u32, 0).await;
    }
    let expecting = user(100);
    app.register(&expecting, "妊娠中", "はなこ", due_in_114_days())
        .await;
    app.settle().await;
    assert_eq!(
        app.count("SELECT count(*) FROM registrations WHERE status = 'active'"),
        6
    );
    password_of(&app.staff_cli(&["add", "tanaka.admin", "--role", "admin"]));
    let password = password_of(&app.staff_cli(&["add", "sato.sender", "--role", "sender"]));

    // The console's address leads to the login page.
    c.goto(&format!("{}/", app.admin_address)).await.unwrap();
    wait_for_path(&c, "the login page", |p| p == "/login").await;
    element(&c, Locator::Id("login"))
        .await
        .send_keys("sato.sender")
        .await
        .unwrap();
    element(&c, Locator::Id("password"))
        .await
        .send_keys(&password)
        .await
        .unwrap();
    click(&c, Locator::XPath(&button("ログイン"))).await;

    // The dashboard, with its charts drawn.
    wait_for_path(&c, "the dashboard", |p| p == "/").await;
    wait_for_text(&c, "main h1", "統計", |t| t.starts_with("統計")).await;
    let charts = c.find_all(Locator::Css("figure.chart")).await.unwrap();
    let drawn = c.find_all(Locator::Css("figure.chart svg")).await.unwrap();
    assert!(
        !charts.is_empty() && !drawn.is_empty(),
        "{} charts, {} drawn",
        charts.len(),
        drawn.len()
    );

    // 一斉配信 → 新しい配信を作成: the text, to children of 4 to 6 months.
    click(
        &c,
        Locator::XPath("//nav//a[normalize-space(.)='一斉配信']"),
    )
    .await;
    click(&c, Locator::LinkText("新しい配信を作成")).await;
    wait_for_path(&c, "the new broadcast's form", |p| p == "/broadcasts/new").await;
    let text =
        "生後4〜6か月のお子さんのご家庭へ\n離乳食教室を12月5日（土）に保健センターで開きます。";
    let body = element(&c, Locator::Id("text")).await;
    body.send_keys(text).await.unwrap();
    assert_eq!(body.prop("value").await.unwrap().as_deref(), Some(text));
    let child = element(
        &c,
        Locator::XPath("//label[contains(., 'お子さんの月齢')]/input[@type='radio']"),
    )
    .await;
    child.click().await.unwrap();
    assert!(child.is_selected().await.unwrap(), "お子さんの月齢 chosen");
    for (field, months) in [("月齢（から）", "4"), ("月齢（まで）", "6")] {
        let input = element(&c, Locator::Css(&format!("input[aria-label='{field}']"))).await;
        input.clear().await.unwrap();
        input.send_keys(months).await.unwrap();
        assert_eq!(input.prop("value").await.unwrap().as_deref(), Some(months));
    }
    click(&c, Locator::XPath(&button("確認へ進む"))).await;

    // The preview: the text as parents will read it, and who gets it.
    wait_for_path(&c, "the preview", |p| p == "/broadcasts/preview").await;
    let recipients = wait_for_text(&c, "#recipients", "a count", |t| !t.is_empty()).await;
    assert_eq!(recipients.trim(), "3", "the 4-, 5- and 6-month readers");
    assert_eq!(
        text_at(&c, ".phone .bubble").await.as_deref(),
        Some(text),
        "the text as parents will read it"
    );
    let facts = text_at(&c, "dl.facts").await.unwrap();
    assert!(facts.contains("生後4〜6か月"), "{facts}");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(dir).unwrap();
    let shot = dir.join("console-preview.png");
    std::fs::write(&shot, c.screenshot().await.unwrap()).unwrap();
    eprintln!("screenshot: {}", shot.display());

    // Send, after the browser's confirmation.
    let send = element(&c, Locator::Id("send")).await;
    assert_eq!(send.text().await.unwrap(), "この内容で送信する（3人）");
    send.click().await.unwrap();
    let question = accept_confirm(&c).await;
    assert!(question.starts_with("3人に送信します。"), "{question}");
    let page = wait_for_path(&c, "the broadcast's page", |p| {
        p.strip_prefix("/broadcasts/")
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
    })
    .await;
    let status = wait_for_text(&c, "main h1 .status", "a status", |t| !t.is_empty()).await;
    assert_eq!(status, "予約中", "nothing sent before the engine runs");
    assert_eq!(app.count("SELECT count(*) FROM broadcasts"), 1);

    // The engine sends it; the page, reloaded, says so.
    app.steps.broadcasts().await.unwrap();
    c.refresh().await.unwrap();
    wait_for_path(&c, "the broadcast's page", |p| p == page).await;
    wait_for_text(&c, "main h1 .status", "送信済み", |t| t == "送信済み").await;
    assert_eq!(text_at(&c, "#recipients").await.as_deref(), Some("3 人"));
    assert_eq!(text_at(&c, "#sent").await.as_deref(), Some("3 人"));
    assert_eq!(text_at(&c, "#failed").await.as_deref(), Some("0 人"));
    c.close().await.unwrap();

    let received = |u: &str| app.texts(u).iter().filter(|t| t.as_str() == text).count();
    for months in 3..=7 {
        let expected = usize::from((4..=6).contains(&months));
        assert_eq!(received(&user(months)), expected, "{months} months");
    }
    assert_eq!(received(&expecting), 0, "expecting");
    app.assert_contract_held();
    eprintln!("console flow in {:?}", started.elapsed());
}

/// The rich menu area whose label is `label`.
fn area(label: &str) -> String {
    format!("#richmenu button.area[aria-label='{label}']")
}

#[tokio::test]
async fn the_chat_page_shows_the_readers_rich_menu_and_a_tap_sends_its_postback() {
    let Some((c, _driver)) = browser().await else {
        return;
    };
    let sb = start(&[]);
    let (_, u) = sb.post("/users", json!({})).await;
    let id = u["user_id"].as_str().unwrap().to_owned();
    c.goto(&format!("{}/sandbox", sb.base)).await.unwrap();
    wait_text(&c, "who", "ユーザー1").await;
    click(&c, Locator::Id("follow")).await;
    wait_text(&c, "talk", "友だち追加ありがとうございます").await;

    // A new follower sees the default menu: 登録する, よくある質問, お問い合わせ.
    element(&c, Locator::Css(&area("登録する"))).await;
    let image = element(&c, Locator::Css("#richmenu img")).await;
    let src = image.attr("src").await.unwrap().unwrap();
    assert!(src.starts_with("/sandbox/api/richmenus/"), "{src}");
    let width: f64 = c
        .execute(
            "return document.querySelector('#richmenu img').naturalWidth;",
            vec![],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    assert_eq!(width, 2500.0, "the image loaded");

    // Registering by chat: the pregnancy menu, its areas over the image at scale.
    for t in [
        "妊娠中",
        "はなこ",
        &(today_of(&sb).await + chrono::Days::new(140)).to_string(),
        "はい",
    ] {
        sb.say_as(&id, t).await;
    }
    c.execute("refreshMenu();", vec![]).await.unwrap();
    element(&c, Locator::Css(&area("出産しました"))).await;
    let (img_w, area_w): (f64, f64) = {
        let v = c
            .execute(
                "const i = document.querySelector('#richmenu img').getBoundingClientRect();
                 const a = document.querySelector(\"#richmenu button.area[aria-label='登録内容']\").getBoundingClientRect();
                 return [i.width, a.width];",
                vec![],
            )
            .await
            .unwrap();
        (v[0].as_f64().unwrap(), v[1].as_f64().unwrap())
    };
    assert!(
        (area_w / img_w - 833.0 / 2500.0).abs() < 0.01,
        "{area_w} of {img_w}"
    );

    // A tap shows the displayText as the reader's message and sends the postback.
    click(&c, Locator::Css(&area("よくある質問"))).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mine = c
            .execute(
                "return [...document.querySelectorAll('#talk .msg.me .bubble')].map(b => b.textContent);",
                vec![],
            )
            .await
            .unwrap();
        if mine.as_array().and_then(|a| a.last()) == Some(&json!("よくある質問")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tap never showed as the reader's message: {mine}"
        );
        tokio::time::sleep(POLL).await;
    }
    let violations = c.find(Locator::Id("violations")).await.unwrap();
    assert_eq!(
        violations.text().await.unwrap(),
        "",
        "no contract violation"
    );

    let png = c.screenshot().await.unwrap();
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandbox-richmenu.png");
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
    c.close().await.unwrap();
}

async fn today_of(sb: &crate::sandbox::Sandbox) -> chrono::NaiveDate {
    let clock = sb.get("/clock").await;
    chrono::NaiveDate::parse_from_str(clock["date"].as_str().unwrap(), "%Y-%m-%d").unwrap()
}
