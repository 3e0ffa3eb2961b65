//! The sandbox's chat page in a real headless browser (Debian's `chromium` and
//! `chromium-driver`; `.ci/run` installs them and sets `YORISOI_BROWSER_TEST=required`).
//! Without a `chromedriver` on the machine the test says so and passes, unless required.

use crate::sandbox::start;
use fantoccini::{ClientBuilder, Locator};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

async fn wait_text(c: &fantoccini::Client, id: &str, needle: &str) -> String {
    for _ in 0..150 {
        if let Ok(e) = c.find(Locator::Id(id)).await
            && let Ok(t) = e.text().await
            && t.contains(needle)
        {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("#{id} never showed {needle:?}");
}

async fn tap(c: &fantoccini::Client, label: &str) {
    let b = c
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::XPath(&format!(
            "//div[@id='quick']/button[normalize-space(text())='{label}']"
        )))
        .await
        .unwrap_or_else(|e| panic!("no quick reply {label:?}: {e}"));
    b.click().await.unwrap();
}

#[tokio::test]
async fn a_parent_registers_and_travels_a_week_in_the_browser() {
    let Some((_driver, port)) = chromedriver() else {
        if std::env::var("YORISOI_BROWSER_TEST").as_deref() == Ok("required") {
            panic!("chromedriver is required (apt-get install chromium chromium-driver)");
        }
        eprintln!(
            "skipped: no chromedriver on this machine (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let sb = start(&[]);
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
