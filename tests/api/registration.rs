//! The registration conversation, tried as a new parent would, against the LINE double.

use crate::helpers::{due_in_114_days, full_width, ja_date, reiwa, spawn_app, today};
use chrono::Days;
use yorisoi::line_double::user_id;

#[tokio::test]
async fn pregnancy_with_the_date_picker() {
    let app = spawn_app().await;
    let u = user_id(10);
    let d = &app.double;
    app.say(&[d.follow_event(&u, false)]).await;
    let texts = app.texts(&u);
    assert!(texts[0].contains("友だち追加ありがとうございます"));
    assert!(texts[1].contains("今の状況を教えてください"));
    // The stage question offers the two stages as quick replies.
    let first = d.delivered_to(&u);
    let labels: Vec<&str> = first[0].messages[1]["quickReply"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"]["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["妊娠中", "子育て中", "やめる"]);

    app.say(&[d.text_event(&u, "妊娠中")]).await;
    assert!(app.last_text(&u).contains("ニックネーム"));
    app.say(&[d.text_event(&u, "はなこ")]).await;
    assert!(app.last_text(&u).contains("出産予定日を教えてください"));
    let picker =
        d.delivered_to(&u).last().unwrap().messages[0]["quickReply"]["items"][0]["action"].clone();
    assert_eq!(picker["type"], "datetimepicker");
    // From two weeks ago (a birth a little past the due date) to 300 days ahead (a pregnancy
    // just confirmed).
    let (min, max) = (today() - Days::new(13), today() + Days::new(300));
    assert_eq!(picker["min"], min.to_string());
    assert_eq!(picker["max"], max.to_string());

    let due = due_in_114_days();
    app.say(&[d.date_event(&u, "date", &due.to_string())]).await;
    let confirm = app.last_text(&u);
    assert!(
        confirm.contains(&format!("出産予定日：{}", ja_date(due))),
        "{confirm}"
    );
    app.say(&[d.text_event(&u, "はい")]).await;
    let done = app.last_text(&u);
    assert!(done.contains("登録が完了しました"), "{done}");
    assert!(done.contains("はなこさん、今日は妊娠23週5日です"), "{done}");
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM registrations WHERE stage = 'pregnancy' AND due_date = '{due}' AND status = 'active' AND nickname = 'はなこ'")),
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM registration_status_history WHERE to_status = 'active'"),
        1
    );
    app.assert_contract_held();
}

#[tokio::test]
async fn pregnancy_with_a_typed_reiwa_date() {
    let app = spawn_app().await;
    let u = user_id(11);
    let d = &app.double;
    for t in ["妊娠中", "はなこ", &reiwa(due_in_114_days()), "はい"] {
        if t == "妊娠中" {
            app.say(&[d.follow_event(&u, false)]).await;
        }
        app.say(&[d.text_event(&u, t)]).await;
    }
    assert!(
        app.last_text(&u).contains("妊娠23週5日"),
        "{:?}",
        app.texts(&u)
    );
    app.assert_contract_held();
}

#[tokio::test]
async fn child_with_a_birthday() {
    let app = spawn_app().await;
    let u = user_id(12);
    let d = &app.double;
    app.say(&[d.follow_event(&u, false)]).await;
    // 112 days ago (the birthday is day 0): 3 completed months whatever the months' lengths
    // (3 months are at most 92 days, 4 at least 120).
    let birthday = today() - Days::new(112);
    for t in ["子育て中", "たろうパパ", &full_width(birthday), "はい"] {
        app.say(&[d.text_event(&u, t)]).await;
    }
    let done = app.last_text(&u);
    assert!(
        done.contains("たろうパパさん、お子さんは今日で生まれて112日目（3か月）です"),
        "{done}"
    );
    app.assert_contract_held();
}

#[tokio::test]
async fn a_restart_halfway_continues_where_it_was() {
    let app = spawn_app().await;
    let u = user_id(13);
    app.say(&[app.double.follow_event(&u, false)]).await;
    app.say(&[app.double.text_event(&u, "妊娠中")]).await;
    app.say(&[app.double.text_event(&u, "はなこ")]).await;
    let app = app.restart().await;
    let due = due_in_114_days().format("%Y/%-m/%-d").to_string();
    app.say(&[app.double.text_event(&u, &due)]).await;
    assert!(
        app.last_text(&u).contains("この内容で登録します"),
        "{:?}",
        app.texts(&u)
    );
    app.say(&[app.double.text_event(&u, "はい")]).await;
    assert!(app.last_text(&u).contains("妊娠23週5日"));
}

#[tokio::test]
async fn stickers_and_nonsense_get_a_friendly_reask() {
    let app = spawn_app().await;
    let u = user_id(14);
    let d = &app.double;
    app.say(&[d.follow_event(&u, false)]).await;
    app.say(&[d.sticker_event(&u)]).await;
    assert!(
        app.last_text(&u).contains("文字でのお返事"),
        "{:?}",
        app.texts(&u)
    );
    app.say(&[d.text_event(&u, "子育て中")]).await;
    app.say(&[d.text_event(&u, "https://spam.example.com")])
        .await;
    assert!(app.last_text(&u).contains("URL"));
    app.say(&[d.text_event(&u, "ゆい")]).await;
    app.say(&[d.text_event(&u, "2030年1月1日")]).await;
    assert!(
        app.last_text(&u).contains("3歳の誕生日まで"),
        "{:?}",
        app.texts(&u)
    );
    app.say(&[d.text_event(&u, "やめる")]).await;
    assert!(app.last_text(&u).contains("中止しました"));
    assert_eq!(app.count("SELECT count(*) FROM registrations"), 0);
    app.assert_contract_held();
}

#[tokio::test]
async fn block_and_unblock_keep_the_registration() {
    let app = spawn_app().await;
    let u = user_id(15);
    let d = &app.double;
    app.say(&[d.follow_event(&u, false)]).await;
    for t in ["妊娠中", "はなこ", &due_in_114_days().to_string(), "はい"] {
        app.say(&[d.text_event(&u, t)]).await;
    }
    app.say(&[d.unfollow_event(&u)]).await;
    assert_eq!(
        app.count("SELECT count(*) FROM registrations WHERE status = 'blocked'"),
        1
    );
    assert_eq!(app.count("SELECT following FROM line_users"), 0);
    let before = d.delivered_to(&u).len();
    app.say(&[d.follow_event(&u, true)]).await;
    assert_eq!(d.delivered_to(&u).len(), before + 1);
    assert!(app.last_text(&u).contains("おかえりなさい"));
    assert_eq!(
        app.count("SELECT count(*) FROM registrations WHERE status = 'active'"),
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM registration_status_history"),
        3,
        "registered, blocked, unblocked: each change recorded with its time"
    );
}

#[tokio::test]
async fn followers_who_never_finish_are_kept() {
    let app = spawn_app().await;
    let u = user_id(16);
    app.say(&[app.double.follow_event(&u, false)]).await;
    app.say(&[app.double.text_event(&u, "妊娠中")]).await;
    assert_eq!(app.count("SELECT count(*) FROM line_users"), 1);
    assert_eq!(
        app.count("SELECT count(*) FROM reader_status WHERE status = 'registering'"),
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM conversations WHERE state LIKE '%ask_nickname%'"),
        1
    );
}

#[tokio::test]
async fn twins_are_two_registrations_of_one_reader() {
    let app = spawn_app().await;
    let u = user_id(17);
    let d = &app.double;
    app.say(&[d.follow_event(&u, false)]).await;
    for t in [
        "子育て中",
        "はなこ",
        "2026/8/1",
        "はい",
        "追加登録",
        "子育て中",
        "2026/8/1",
        "なし",
        "はい",
        "登録内容",
    ] {
        app.say(&[d.text_event(&u, t)]).await;
    }
    assert_eq!(
        app.count("SELECT count(*) FROM registrations WHERE status = 'active'"),
        2
    );
    let list = app.last_text(&u);
    assert!(
        list.contains("1. はなこさん") && list.contains("2. はなこさん"),
        "{list}"
    );
}

#[tokio::test]
async fn stop_and_resume_from_the_chat() {
    let app = spawn_app().await;
    let u = user_id(18);
    let d = &app.double;
    app.say(&[d.follow_event(&u, false)]).await;
    for t in [
        "妊娠中",
        "はなこ",
        &due_in_114_days().to_string(),
        "はい",
        "配信停止",
        "停止する",
    ] {
        app.say(&[d.text_event(&u, t)]).await;
    }
    assert!(app.last_text(&u).contains("配信を停止しました"));
    assert_eq!(
        app.count("SELECT count(*) FROM registrations WHERE status = 'stopped'"),
        1
    );
    app.say(&[d.text_event(&u, "配信再開")]).await;
    assert_eq!(
        app.count("SELECT count(*) FROM registrations WHERE status = 'active'"),
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM registration_status_history WHERE to_status = 'stopped'"),
        1,
        "the stop is recorded for the stop rate"
    );
}
