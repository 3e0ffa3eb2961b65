//! Life events through the webhook, as families live them: twins, sharing with the family, the
//! birth reported from the menu, a stop, a loss, erasing one's data; each flow surviving a
//! restart. The daily delivery after them is the real one (`yorisoi push`).

use crate::helpers::{TestApp, spawn_app, today};
use chrono::{Days, NaiveDate};
use serde_json::Value;
use yorisoi::line_double::{Via, user_id};

fn menu(app: &TestApp, user: &str, action: &str) -> Value {
    app.double
        .postback_event(user, &format!("menu:{action}"), None)
}

async fn says(app: &TestApp, user: &str, words: &[&str]) {
    let events: Vec<Value> = words
        .iter()
        .map(|w| app.double.text_event(user, w))
        .collect();
    app.say(&events).await;
}

/// Today's pushes to `user`, each as the texts of its messages.
fn pushes_to(app: &TestApp, user: &str) -> Vec<Vec<String>> {
    app.double
        .delivered()
        .into_iter()
        .filter(|d| d.via == Via::Push && d.to == user)
        .map(|d| {
            d.messages
                .iter()
                .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .collect()
}

async fn register(app: &TestApp, user: &str, stage: &str, nickname: &str, date: NaiveDate) {
    app.register(user, stage, nickname, date).await;
    app.settle().await;
}

fn push_today(app: &TestApp) {
    let out = app.push_cli(&["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The invitation code in the owner's chat (`招待コード ABCD-EFGH`).
fn code_in(texts: &[String]) -> String {
    let t = texts
        .iter()
        .rev()
        .find(|t| t.contains("招待コード "))
        .expect("an invitation was sent");
    let at = t.find("招待コード ").unwrap() + "招待コード ".len();
    t[at..].chars().take(9).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twins_shared_with_the_partner_become_children_at_the_birth_and_each_reader_is_named() {
    let app = spawn_app().await;
    let (mother, partner, stranger) = (user_id(301), user_id(302), user_id(303));
    let due = today() + Days::new(3);
    register(&app, &mother, "妊娠中", "はなこ", due).await;
    app.add_child(&mother, "妊娠中", due, "ふたごの妹").await;
    app.settle().await;
    assert_eq!(
        app.count(
            "SELECT count(*) FROM registrations WHERE stage = 'pregnancy' AND status = 'active'"
        ),
        2
    );

    // She shares both with her partner from the menu.
    app.say(&[menu(&app, &mother, "share")]).await;
    says(&app, &mother, &["招待コードを作る", "すべて", "はい"]).await;
    let code = code_in(&app.texts(&mother));
    assert_eq!(code.len(), 9, "{code}");
    assert_eq!(
        app.count("SELECT count(*) FROM invitations"),
        2,
        "one code, both twins"
    );

    // He adds the account and sends the code, then his own nickname.
    app.say(&[app.double.follow_event(&partner, false)]).await;
    says(
        &app,
        &partner,
        &[&format!("招待コード {code}"), "たろう", "はい"],
    )
    .await;
    assert!(
        app.last_text(&partner).contains("たろうさん、ようこそ"),
        "{}",
        app.last_text(&partner)
    );
    assert_eq!(
        app.count("SELECT count(*) FROM registration_readers WHERE role = 'family' AND nickname = 'たろう'"),
        2
    );
    // The code is spent.
    app.say(&[app.double.follow_event(&stranger, false)]).await;
    says(&app, &stranger, &[&code]).await;
    assert!(
        app.last_text(&stranger).contains("すでに使われて"),
        "{}",
        app.last_text(&stranger)
    );

    // She reports the birth of both from the menu: the same two registrations become theirs.
    let ids_before = app.count("SELECT sum(id) FROM registrations");
    app.say(&[menu(&app, &mother, "born")]).await;
    says(&app, &mother, &["すべて", "昨日", "はい"]).await;
    assert!(
        app.last_text(&mother)
            .contains("ご出産おめでとうございます"),
        "{}",
        app.last_text(&mother)
    );
    assert_eq!(
        app.count("SELECT sum(id) FROM registrations"),
        ids_before,
        "no new registration"
    );
    let yesterday = (today() - Days::new(1)).to_string();
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM registrations WHERE stage = 'child' AND birthday = '{yesterday}' AND status = 'active'"
        )),
        2
    );
    assert_eq!(
        app.count("SELECT count(*) FROM daily_counts WHERE metric = 'born' AND count = 2"),
        1
    );

    // The morning after: child messages only, each reader by their own name.
    push_today(&app);
    for (reader, name, other) in [
        (&mother, "はなこさん", "たろうさん"),
        (&partner, "たろうさん", "はなこさん"),
    ] {
        let pushes = pushes_to(&app, reader);
        assert_eq!(pushes.len(), 1, "one push for the twins");
        let all = pushes[0].join("\n");
        assert!(all.contains(name), "{all}");
        assert!(!all.contains(other), "{all}");
        assert!(all.contains("生まれて1日目"), "{all}");
        assert!(
            !all.contains("妊娠"),
            "no pregnancy message after the birth: {all}"
        );
    }
    app.assert_contract_held();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_who_stops_from_the_menu_receives_nothing_and_a_family_stop_is_their_own() {
    let app = spawn_app().await;
    let (reader, mother, partner) = (user_id(311), user_id(312), user_id(313));
    let born = today() - Days::new(20);
    register(&app, &reader, "子育て中", "ゆう", born).await;
    register(&app, &mother, "子育て中", "みき", born).await;
    app.say(&[menu(&app, &mother, "share")]).await;
    says(&app, &mother, &["招待コードを作る", "はい"]).await;
    let code = code_in(&app.texts(&mother));
    app.say(&[app.double.follow_event(&partner, false)]).await;
    says(&app, &partner, &[&code, "けん", "はい"]).await;

    app.say(&[menu(&app, &reader, "pause")]).await;
    says(&app, &reader, &["停止する"]).await;
    assert!(app.last_text(&reader).contains("配信を停止しました"));
    // The partner stops his own delivery; the mother's goes on.
    says(&app, &partner, &["配信停止", "停止する"]).await;
    assert!(
        app.last_text(&partner).contains("あなたへの配信だけ"),
        "{}",
        app.last_text(&partner)
    );
    assert_eq!(
        app.count("SELECT count(*) FROM registrations WHERE status = 'active'"),
        1,
        "the mother's registration is still active"
    );

    push_today(&app);
    assert!(pushes_to(&app, &reader).is_empty(), "stopped: nothing");
    assert!(pushes_to(&app, &partner).is_empty(), "his own stop");
    assert_eq!(pushes_to(&app, &mother).len(), 1, "hers goes on");

    // The mother stops too: the partner's 「配信再開」 is told it is hers to resume, and his own
    // pause stays when she does.
    says(&app, &mother, &["配信停止", "停止する"]).await;
    says(&app, &partner, &["配信再開"]).await;
    assert!(
        app.last_text(&partner)
            .contains("登録したご家族が配信を止めています"),
        "{}",
        app.last_text(&partner)
    );
    says(&app, &mother, &["配信再開"]).await;
    assert_eq!(
        app.count("SELECT count(*) FROM registration_readers WHERE role = 'family' AND paused = 1"),
        1
    );
    says(&app, &partner, &["配信再開"]).await;
    assert_eq!(
        app.count("SELECT count(*) FROM registration_readers WHERE paused = 1"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_loss_no_message_reaches_the_family_again_whatever_they_tap() {
    let app = spawn_app().await;
    let (mother, partner) = (user_id(321), user_id(322));
    register(&app, &mother, "妊娠中", "さき", today() + Days::new(120)).await;
    app.say(&[menu(&app, &mother, "share")]).await;
    says(&app, &mother, &["招待コードを作る", "はい"]).await;
    let code = code_in(&app.texts(&mother));
    app.say(&[app.double.follow_event(&partner, false)]).await;
    says(&app, &partner, &[&code, "まさ", "はい"]).await;

    // Two taps from the settings, no question asked.
    app.say(&[menu(&app, &mother, "settings")]).await;
    says(
        &app,
        &mother,
        &["流産・死産・お子さんを亡くされた方へ", "はい"],
    )
    .await;
    let reply = app.last_text(&mother);
    assert!(
        reply.contains("保健師相談"),
        "the grief contact of municipality.toml: {reply}"
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM registrations WHERE closed = 'loss' AND status = 'stopped'"
        ),
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM daily_counts WHERE metric = 'loss:pregnancy'"),
        1
    );
    let stops = app.count("SELECT count(*) FROM registration_status_history WHERE reason = 'loss'");
    assert_eq!(stops, 1, "recorded apart from ordinary stops");

    // Nothing brings it back: a resume by either, the menu, a block and an unblock.
    says(&app, &mother, &["配信再開"]).await;
    says(&app, &partner, &["配信再開"]).await;
    app.say(&[menu(&app, &mother, "resume")]).await;
    app.say(&[app.double.unfollow_event(&mother)]).await;
    app.say(&[app.double.follow_event(&mother, true)]).await;
    assert_eq!(
        app.count("SELECT count(*) FROM registrations WHERE status = 'active'"),
        0
    );
    push_today(&app);
    assert!(pushes_to(&app, &mother).is_empty());
    assert!(pushes_to(&app, &partner).is_empty());
}

#[tokio::test]
async fn erasing_from_the_chat_leaves_only_anonymous_counts() {
    let app = spawn_app().await;
    let u = user_id(331);
    register(&app, &u, "子育て中", "あおい", today() - Days::new(40)).await;
    says(&app, &u, &["データを削除", "削除する"]).await;
    app.settle().await;
    assert!(
        app.last_text(&u).contains("すべて削除しました"),
        "{}",
        app.last_text(&u)
    );
    assert_eq!(app.count("SELECT count(*) FROM registrations"), 0);
    assert_eq!(
        app.count("SELECT count(*) FROM conversations WHERE state LIKE '%あおい%'"),
        0
    );
    assert_eq!(
        app.count("SELECT count(*) FROM anonymised_counts WHERE cause = 'erasure'"),
        1
    );
    // They still follow: a word starts a new registration.
    says(&app, &u, &["こんにちは"]).await;
    assert!(
        app.last_text(&u).contains("今の状況"),
        "{}",
        app.last_text(&u)
    );
}

#[tokio::test]
async fn a_birth_report_survives_a_restart_and_cancels_cleanly() {
    let app = spawn_app().await;
    let u = user_id(341);
    register(&app, &u, "妊娠中", "ひな", today() + Days::new(5)).await;
    app.say(&[menu(&app, &u, "born")]).await;
    let app = app.restart().await;
    says(&app, &u, &["今日"]).await;
    let app = app.restart().await;
    says(&app, &u, &["はい"]).await;
    assert_eq!(
        app.count("SELECT count(*) FROM registrations WHERE stage = 'child'"),
        1
    );

    let v = user_id(342);
    register(&app, &v, "妊娠中", "みお", today() + Days::new(5)).await;
    app.say(&[menu(&app, &v, "born")]).await;
    says(&app, &v, &["今日", "やめる"]).await;
    assert!(
        app.last_text(&v).contains("そのままにしておきます"),
        "{}",
        app.last_text(&v)
    );
    assert_eq!(
        app.count("SELECT count(*) FROM registrations WHERE stage = 'pregnancy'"),
        1
    );
}

#[tokio::test]
async fn the_birth_button_of_a_daily_message_and_a_forged_one() {
    let app = spawn_app().await;
    let (u, other) = (user_id(351), user_id(352));
    register(&app, &u, "妊娠中", "ゆき", today() + Days::new(2)).await;
    register(&app, &other, "妊娠中", "なつ", today() + Days::new(2)).await;
    let id = app.count("SELECT min(id) FROM registrations");
    let born = (today() - Days::new(1)).to_string();
    // Someone else's registration id in a postback changes nothing.
    app.say(&[app.double.date_event(&other, &format!("born:{id}"), &born)])
        .await;
    says(&app, &other, &["はい"]).await;
    assert_eq!(
        app.count("SELECT count(*) FROM registrations WHERE stage = 'child'"),
        0
    );
    app.say(&[app.double.date_event(&u, &format!("born:{id}"), &born)])
        .await;
    says(&app, &u, &["はい"]).await;
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM registrations WHERE stage = 'child' AND id = {id} AND birthday = '{born}'")),
        1
    );
}

#[tokio::test]
async fn an_expired_invitation_is_refused() {
    let app = spawn_app().await;
    let (mother, partner) = (user_id(361), user_id(362));
    register(&app, &mother, "子育て中", "えみ", today() - Days::new(10)).await;
    says(&app, &mother, &["家族と共有", "招待コードを作る", "はい"]).await;
    let code = code_in(&app.texts(&mother));
    use yorisoi::clock::Clock;
    app.clock.set(app.clock.now() + chrono::Duration::days(8));
    app.say(&[app.double.follow_event(&partner, false)]).await;
    says(&app, &partner, &[&code]).await;
    assert!(
        app.last_text(&partner).contains("有効期限"),
        "{}",
        app.last_text(&partner)
    );
    assert_eq!(
        app.count("SELECT count(*) FROM registration_readers WHERE role = 'family'"),
        0
    );
}
