use super::*;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn info() -> ServiceInfo {
    ServiceInfo {
        service_name: "サンプル市 子育て応援LINE".into(),
        municipality: "サンプル市".into(),
        contact: "サンプル市 こども家庭センター".into(),
        grief_contact: Some("サンプル市 保健師相談".into()),
        delivery_time: "朝9時ごろ".into(),
        child_daily_until: 100,
        last_pregnancy_day: 293,
        faq: Vec::new(),
        line_basic_id: None,
    }
}

fn text(s: &str) -> Input {
    Input::Text(s.into())
}

/// Runs inputs from a state; returns the last step and every reply text.
fn run(start: State, inputs: &[Input], regs: &[RegistrationSummary]) -> (Step, Vec<String>) {
    let info = info();
    let ctx = Context {
        today: d(2026, 11, 21),
        registrations: regs,
        info: &info,
        invitation: None,
        fresh_code: "ABCDEFGH",
    };
    let mut state = start;
    let mut texts = Vec::new();
    let mut last = None;
    for i in inputs {
        let s = step(&state, i, &ctx);
        for l in s.labels() {
            assert!(l.chars().count() <= 20, "label too long: {l}");
        }
        assert!(s.replies.len() <= 5);
        texts.extend(s.replies.iter().map(|m| m.preview_text().to_owned()));
        state = s.state.clone();
        last = Some(s);
    }
    (last.expect("at least one input"), texts)
}

#[test]
fn pregnancy_registration_with_typed_reiwa_date() {
    let (last, texts) = run(
        State::Idle,
        &[
            Input::Follow { unblocked: false },
            text("妊娠中"),
            text("はなこ"),
            text("令和9年3月15日"),
            text("はい"),
        ],
        &[],
    );
    assert_eq!(
        last.effect,
        Some(Effect::Register {
            subject: Subject::new(Stage::Pregnancy, d(2027, 3, 15)),
            nickname: Nickname::from_trusted("はなこ".into()),
            child_name: None,
        })
    );
    assert_eq!(last.state, State::Idle);
    // 2026-11-21 with due 2027-03-15: 280 - 114 = 166 = 23週5日.
    assert!(
        texts.last().unwrap().contains("今日は妊娠23週5日です"),
        "{texts:?}"
    );
    assert!(texts[0].contains("友だち追加ありがとうございます"));
}

#[test]
fn child_registration_with_the_date_picker() {
    let (last, texts) = run(
        State::AskStage,
        &[
            text("子育て中"),
            text("たろうパパ"),
            Input::Postback {
                data: "date".into(),
                date: Some("2026-08-01".into()),
            },
            text("はい"),
        ],
        &[],
    );
    assert_eq!(
        last.effect,
        Some(Effect::Register {
            subject: Subject::new(Stage::Child, d(2026, 8, 1)),
            nickname: Nickname::from_trusted("たろうパパ".into()),
            child_name: None,
        })
    );
    assert!(
        texts.last().unwrap().contains("生まれて112日目（3か月）"),
        "{texts:?}"
    );
}

#[test]
fn bad_input_gets_a_friendly_reask_and_keeps_the_state() {
    let nick = State::AskNickname {
        stage: Stage::Pregnancy,
        keep_date: None,
    };
    let date = State::AskDate {
        stage: Stage::Pregnancy,
        nickname: "はなこ".into(),
    };
    let cases: Vec<(&str, State, Input, &str)> = vec![
        (
            "stage: free text",
            State::AskStage,
            text("こんにちは"),
            "「妊娠中」か「子育て中」",
        ),
        (
            "stage: sticker",
            State::AskStage,
            Input::NonText,
            "文字でのお返事",
        ),
        (
            "nickname: too long",
            nick.clone(),
            text(&"あ".repeat(21)),
            "20文字まで",
        ),
        (
            "nickname: url",
            nick.clone(),
            text("https://spam.example"),
            "URL",
        ),
        (
            "nickname: empty",
            nick.clone(),
            text("   "),
            "お名前がまだ入っていない",
        ),
        ("nickname: two lines", nick.clone(), text("は\nな"), "改行"),
        (
            "nickname: sticker",
            nick.clone(),
            Input::NonText,
            "文字でのお返事",
        ),
        (
            "date: unreadable",
            date.clone(),
            text("春ごろ"),
            "読み取れません",
        ),
        (
            "date: no such day",
            date.clone(),
            text("2027/2/30"),
            "カレンダーにない",
        ),
        (
            "date: too far",
            date.clone(),
            text("2030/1/1"),
            "2026年11月8日（日）から2027年9月17日（金）まで",
        ),
        (
            "date: picker out of range",
            date.clone(),
            Input::Postback {
                data: "date".into(),
                date: Some("2020-01-01".into()),
            },
            "までの日付",
        ),
        (
            "date: sticker",
            date.clone(),
            Input::NonText,
            "文字でのお返事",
        ),
    ];
    for (what, state, input, expect) in cases {
        let (last, texts) = run(state.clone(), &[input], &[]);
        assert_eq!(last.state, state, "{what}: state kept");
        assert!(
            texts.iter().any(|t| t.contains(expect)),
            "{what}: {texts:?}"
        );
        assert!(last.effect.is_none(), "{what}");
    }
}

#[test]
fn birthday_range_is_stated() {
    let (_, texts) = run(
        State::AskDate {
            stage: Stage::Child,
            nickname: "a".into(),
        },
        &[text("2027/1/1")],
        &[],
    );
    assert!(texts[0].contains("3歳の誕生日まで"), "{texts:?}");
}

#[test]
fn cancel_works_at_every_step() {
    for state in [
        State::AskStage,
        State::AskNickname {
            stage: Stage::Child,
            keep_date: None,
        },
        State::AskDate {
            stage: Stage::Child,
            nickname: "a".into(),
        },
        State::Confirm {
            stage: Stage::Child,
            nickname: "a".into(),
            date: d(2026, 1, 1),
        },
    ] {
        let (last, texts) = run(state.clone(), &[text("やめる")], &[]);
        assert_eq!(last.state, State::Idle, "{state:?}");
        assert!(texts[0].contains("中止しました"));
    }
}

#[test]
fn fixing_only_the_nickname_keeps_the_date() {
    let start = State::Confirm {
        stage: Stage::Pregnancy,
        nickname: "はなこ".into(),
        date: d(2027, 3, 15),
    };
    let (last, _) = run(
        start,
        &[text("修正する"), text("お名前"), text("はな"), text("はい")],
        &[],
    );
    assert_eq!(
        last.effect,
        Some(Effect::Register {
            subject: Subject::new(Stage::Pregnancy, d(2027, 3, 15)),
            nickname: Nickname::from_trusted("はな".into()),
            child_name: None,
        })
    );
}

#[test]
fn fixing_only_the_date_keeps_the_nickname() {
    for word in ["日付", "予定日", "出産予定日"] {
        let start = State::Confirm {
            stage: Stage::Pregnancy,
            nickname: "はなこ".into(),
            date: d(2027, 3, 15),
        };
        let (last, texts) = run(
            start,
            &[
                text("修正する"),
                text(word),
                text("2027年4月1日"),
                text("はい"),
            ],
            &[],
        );
        assert!(
            texts
                .iter()
                .any(|t| t.contains("出産予定日を教えてください")),
            "{word}: {texts:?}"
        );
        assert_eq!(
            last.effect,
            Some(Effect::Register {
                subject: Subject::new(Stage::Pregnancy, d(2027, 4, 1)),
                nickname: Nickname::from_trusted("はなこ".into()),
                child_name: None,
            }),
            "{word}"
        );
    }
}

#[test]
fn starting_over_from_the_confirmation_asks_the_stage_again() {
    for word in ["最初から", "はじめから"] {
        let start = State::Confirm {
            stage: Stage::Pregnancy,
            nickname: "はなこ".into(),
            date: d(2027, 3, 15),
        };
        let (last, texts) = run(start, &[text("修正する"), text(word)], &[]);
        assert_eq!(last.state, State::AskStage, "{word}");
        assert!(
            texts.last().unwrap().contains("今の状況を教えてください"),
            "{word}: {texts:?}"
        );
        assert_eq!(last.effect, None);
    }
}

#[test]
fn registered_readers_never_get_silence() {
    let regs = vec![RegistrationSummary {
        id: RegistrationId::new(1),
        before_block: None,
        stage: Stage::Pregnancy,
        nickname: "はなこ".into(),
        date: d(2027, 3, 15),
        status: RegistrationStatus::Active,
        role: ReaderRole::Owner,
        closed: false,
        child_name: None,
        family: Vec::new(),
        paused: false,
    }];
    for input in [
        text("こんにちは"),
        Input::NonText,
        text("やめる"),
        Input::Postback {
            data: "x".into(),
            date: None,
        },
    ] {
        let (last, texts) = run(State::Idle, std::slice::from_ref(&input), &regs);
        assert!(!texts.is_empty(), "{input:?}");
        assert_eq!(last.state, State::Idle);
    }
    let (_, texts) = run(State::Idle, &[text("こんにちは")], &regs);
    assert!(
        texts[0].contains("サンプル市 こども家庭センター"),
        "help names the contact point"
    );
    let (_, texts) = run(State::Idle, &[text("登録内容")], &regs);
    assert!(texts[0].contains("2027年3月15日") && texts[0].contains("配信中"));
    let (last, _) = run(State::Idle, &[text("追加登録")], &regs);
    assert_eq!(last.state, State::AskStage);
}

#[test]
fn welcome_back_after_unblocking() {
    let regs = vec![RegistrationSummary {
        id: RegistrationId::new(1),
        before_block: None,
        stage: Stage::Child,
        nickname: "はなこ".into(),
        date: d(2026, 1, 1),
        status: RegistrationStatus::Active,
        role: ReaderRole::Owner,
        closed: false,
        child_name: None,
        family: Vec::new(),
        paused: false,
    }];
    let (last, texts) = run(State::Idle, &[Input::Follow { unblocked: true }], &regs);
    assert_eq!(last.state, State::Idle);
    assert!(texts[0].contains("おかえりなさい"));
}

#[test]
fn typed_labels_work_everywhere() {
    // Tapping 子育て中 while asked for the date switches the stage (and the date question).
    let (last, texts) = run(
        State::AskDate {
            stage: Stage::Pregnancy,
            nickname: "a".into(),
        },
        &[text("子育て中")],
        &[],
    );
    assert_eq!(
        last.state,
        State::AskDate {
            stage: Stage::Child,
            nickname: "a".into()
        }
    );
    assert!(texts[0].contains("お子さんの誕生日"));
    let (last, _) = run(State::AskStage, &[text(" 妊娠中。")], &[]);
    assert!(matches!(
        last.state,
        State::AskNickname {
            stage: Stage::Pregnancy,
            ..
        }
    ));
}

#[test]
fn a_stale_confirmation_rechecks_the_range() {
    // Confirmed much later: the due date is now too far in the past.
    let start = State::Confirm {
        stage: Stage::Pregnancy,
        nickname: "a".into(),
        date: d(2026, 10, 1),
    };
    let (last, texts) = run(start, &[text("はい")], &[]);
    assert!(last.effect.is_none());
    assert!(matches!(last.state, State::AskDate { .. }), "{texts:?}");
}

#[test]
fn stop_and_resume_from_the_chat() {
    let active = vec![RegistrationSummary {
        id: RegistrationId::new(1),
        before_block: None,
        stage: Stage::Child,
        nickname: "はなこ".into(),
        date: d(2026, 1, 1),
        status: RegistrationStatus::Active,
        role: ReaderRole::Owner,
        closed: false,
        child_name: None,
        family: Vec::new(),
        paused: false,
    }];
    let (last, texts) = run(State::Idle, &[text("配信停止")], &active);
    let asking = State::ConfirmPause {
        regs: vec![RegistrationId::new(1)],
        end: false,
    };
    assert_eq!(last.state, asking);
    assert!(last.effect.is_none(), "asks first");
    assert!(texts[0].contains("一時停止しますか"));
    let (last, _) = run(asking.clone(), &[text("停止する")], &active);
    assert_eq!(
        last.effect,
        Some(Effect::Stop(vec![RegistrationId::new(1)]))
    );
    for keep in ["停止しない", "やめない", "いいえ"] {
        let (last, texts) = run(asking.clone(), &[text(keep)], &active);
        assert!(last.effect.is_none());
        assert_eq!(last.state, State::Idle);
        assert!(texts[0].contains("これからも"), "{keep}: {texts:?}");
    }
    // 「やめる」 could mean "stop the messages" or "never mind": neither is guessed.
    let (last, texts) = run(asking.clone(), &[text("やめる")], &active);
    assert!(last.effect.is_none());
    assert_eq!(last.state, asking, "asks again");
    assert!(
        texts[0].contains("「停止する」か「停止しない」"),
        "{texts:?}"
    );
    assert!(!texts.iter().any(|t| t.contains("これからも")));
    // A conversation saved before the menu flows still finishes.
    let (last, _) = run(State::ConfirmStop, &[text("停止する")], &active);
    assert_eq!(
        last.effect,
        Some(Effect::Stop(vec![RegistrationId::new(1)]))
    );
    let labels = step(
        &State::Idle,
        &text("配信停止"),
        &Context {
            today: d(2026, 11, 21),
            registrations: &active,
            info: &info(),
            invitation: None,
            fresh_code: "ABCDEFGH",
        },
    )
    .labels();
    assert_eq!(labels, ["停止する", "停止しない"]);

    let stopped = vec![RegistrationSummary {
        status: RegistrationStatus::Stopped,
        ..active[0].clone()
    }];
    let (last, texts) = run(State::Idle, &[text("配信再開")], &stopped);
    assert_eq!(
        last.effect,
        Some(Effect::Resume(vec![RegistrationId::new(1)]))
    );
    assert!(texts[0].contains("再開しました"));
    let (last, _) = run(State::Idle, &[text("配信再開")], &active);
    assert!(last.effect.is_none(), "nothing to resume");
}

#[test]
fn block_and_unblock_name_the_registrations_and_restore_what_they_were() {
    let reg = |id, status, before_block| RegistrationSummary {
        id: RegistrationId::new(id),
        before_block,
        stage: Stage::Child,
        nickname: "はなこ".into(),
        date: d(2026, 1, 1),
        status,
        role: ReaderRole::Owner,
        closed: false,
        child_name: None,
        family: Vec::new(),
        paused: false,
    };
    use RegistrationStatus::*;
    let before = vec![
        reg(1, Active, None),
        reg(2, Stopped, None),
        reg(3, Completed, None),
    ];
    let (last, texts) = run(State::AskStage, &[Input::Unfollow], &before);
    assert!(texts.is_empty(), "nobody to answer");
    assert_eq!(last.state, State::Idle);
    assert_eq!(
        last.effect,
        Some(Effect::Block(vec![
            RegistrationId::new(1),
            RegistrationId::new(2)
        ])),
        "a completed registration stays completed"
    );

    let blocked = vec![
        reg(1, Blocked, Some(Active)),
        reg(2, Blocked, Some(Stopped)),
        reg(3, Completed, None),
    ];
    let (last, texts) = run(State::Idle, &[Input::Follow { unblocked: true }], &blocked);
    assert_eq!(
        last.effect,
        Some(Effect::Unblock(vec![
            (RegistrationId::new(1), Active),
            (RegistrationId::new(2), Stopped)
        ]))
    );
    assert!(texts[0].contains("おかえりなさい"));
    assert!(
        texts[0].contains("配信中") && texts[0].contains("停止"),
        "{}",
        texts[0]
    );
}

fn summary(id: i64, stage: Stage) -> RegistrationSummary {
    RegistrationSummary {
        id: RegistrationId::new(id),
        before_block: None,
        stage,
        nickname: "はなこ".into(),
        date: d(2026, 8, 1),
        status: RegistrationStatus::Active,
        role: ReaderRole::Owner,
        closed: false,
        child_name: None,
        family: Vec::new(),
        paused: false,
    }
}

#[test]
fn a_stage_word_changes_the_stage_while_registering() {
    let nick = || "はな".to_owned();
    let (s, _) = run(
        State::AskNickname {
            stage: Stage::Pregnancy,
            keep_date: None,
        },
        &[text("子育て中")],
        &[],
    );
    assert_eq!(
        s.state,
        State::AskNickname {
            stage: Stage::Child,
            keep_date: None
        }
    );
    let asking = |stage| State::AskDate {
        stage,
        nickname: nick(),
    };
    let (s, _) = run(asking(Stage::Pregnancy), &[text("子育て中")], &[]);
    assert_eq!(s.state, asking(Stage::Child));
    // The stage it already is: not a date, said so.
    let (s, texts) = run(asking(Stage::Pregnancy), &[text("妊娠中")], &[]);
    assert_eq!(s.state, asking(Stage::Pregnancy));
    assert!(
        texts[0].contains("日付として読み取れませんでした"),
        "{texts:?}"
    );

    let fix = State::Fix {
        stage: Stage::Pregnancy,
        nickname: nick(),
        date: d(2027, 3, 15),
    };
    let (s, _) = run(fix.clone(), &[text("子育て中")], &[]);
    assert_eq!(s.state, asking(Stage::Child));
    let (s, _) = run(fix, &[text("はい")], &[]);
    let confirm = |date| State::Confirm {
        stage: Stage::Pregnancy,
        nickname: nick(),
        date,
    };
    assert_eq!(s.state, confirm(d(2027, 3, 15)), "nothing to fix after all");
    let (s, _) = run(confirm(d(2027, 3, 15)), &[text("2027/4/1")], &[]);
    assert_eq!(
        s.state,
        confirm(d(2027, 4, 1)),
        "a new date at the confirmation"
    );
}

#[test]
fn only_the_date_pickers_postback_is_a_date() {
    let asking = State::AskDate {
        stage: Stage::Pregnancy,
        nickname: "はな".into(),
    };
    let picked = |data: &str| Input::Postback {
        data: data.into(),
        date: Some("2027-03-15".into()),
    };
    let (s, _) = run(asking.clone(), &[picked("date")], &[]);
    assert!(matches!(s.state, State::Confirm { .. }), "{:?}", s.state);
    let (s, _) = run(asking.clone(), &[picked("menu")], &[]);
    assert_eq!(s.state, asking);
}

#[test]
fn registered_readers_can_add_up_to_the_limit() {
    let one = [summary(1, Stage::Child)];
    let (s, _) = run(State::Idle, &[text("妊娠中")], &[]);
    assert!(matches!(
        s.state,
        State::AskNickname {
            stage: Stage::Pregnancy,
            ..
        }
    ));
    let (s, _) = run(State::Idle, &[text("妊娠中")], &one);
    assert_eq!(
        s.state,
        State::AskDate {
            stage: Stage::Pregnancy,
            nickname: "はなこ".into()
        },
        "a stage word starts another registration, keeping the reader's nickname"
    );
    let full: Vec<_> = (1..=MAX_REGISTRATIONS as i64)
        .map(|i| summary(i, Stage::Child))
        .collect();
    for word in ["妊娠中", "追加登録"] {
        let (s, texts) = run(State::Idle, &[text(word)], &full);
        assert_eq!(s.state, State::Idle, "{word}");
        let (_, more) = run(State::Idle, &[text(word)], &one);
        assert_ne!(texts, more, "{word}: the limit is said");
    }
}

#[test]
fn idle_answers_differ_by_what_was_sent() {
    let one = [summary(1, Stage::Child)];
    let reply = |input: Input| run(State::Idle, &[input], &one).1;
    let help = reply(text("こんにちは"));
    assert_ne!(reply(text("やめる")), help, "nothing to cancel, said so");
    assert_ne!(reply(Input::NonText), help, "a sticker is thanked");
}

#[test]
fn labels_are_the_quick_reply_labels() {
    let (s, _) = run(State::AskStage, &[Input::NonText], &[]);
    assert_eq!(s.labels(), ["妊娠中", "子育て中", "やめる"]);
    let (s, _) = run(
        State::Idle,
        &[text("こんにちは")],
        &[summary(1, Stage::Child)],
    );
    assert!(s.labels().iter().all(|l| !l.is_empty()));
}

#[test]
fn an_unblocked_registration_is_what_it_was_before_the_block() {
    let blocked = RegistrationSummary {
        status: RegistrationStatus::Blocked,
        before_block: Some(RegistrationStatus::Stopped),
        ..summary(1, Stage::Child)
    };
    let back = blocked.unblocked();
    assert_eq!(back.status, RegistrationStatus::Stopped);
    assert_eq!(back.before_block, None, "no block to undo any more");
    assert_eq!(
        (back.id, back.stage, back.date),
        (blocked.id, blocked.stage, blocked.date)
    );
    let never_blocked = summary(2, Stage::Pregnancy);
    assert_eq!(never_blocked.unblocked(), never_blocked);
}

#[test]
fn the_completion_promises_only_the_cadence_the_content_keeps() {
    let info = info();
    let today = d(2026, 11, 21);
    let t = texts::Texts {
        info: &info,
        today,
        active: 1,
    };
    let text_of = |m: Message| m.preview_text().to_owned();
    let pregnancy = text_of(t.completed(Stage::Pregnancy, "はなこ", d(2027, 3, 15), true));
    assert!(
        pregnancy.contains("これから毎日（妊娠41週6日まで）、朝9時ごろに"),
        "{pregnancy}"
    );
    assert!(
        !pregnancy.contains("生まれてからも"),
        "no promise of child messages that need a new registration: {pregnancy}"
    );
    assert!(!pregnancy.contains("100日"), "{pregnancy}");
    let newborn = text_of(t.completed(Stage::Child, "はなこ", today, true));
    assert!(newborn.contains("ご出産おめでとうございます"), "{newborn}");
    assert!(
        !newborn.contains("生まれて0日目") && !newborn.contains("生後0日"),
        "{newborn}"
    );
    assert!(newborn.contains("100日目までは毎日"), "{newborn}");
    let young = text_of(t.completed(Stage::Child, "はなこ", d(2026, 11, 9), true));
    assert!(young.contains("今日で生まれて12日目です"), "{young}");
    let toddler = text_of(t.completed(Stage::Child, "はなこ", d(2025, 6, 21), true));
    assert!(toddler.contains("生まれて518日目（1歳5か月）"), "{toddler}");
    assert!(
        !toddler.contains("毎日") && !toddler.contains("毎朝"),
        "{toddler}"
    );
    assert!(toddler.contains("数日〜2週間に1回ほど"), "{toddler}");
    let greeting = text_of(t.greeting());
    assert!(!greeting.contains("毎朝"), "{greeting}");
    assert!(greeting.contains("100日までは毎日"), "{greeting}");
}

#[test]
fn the_help_reply_gives_the_grief_contact_only_when_the_municipality_has_one() {
    let regs = [summary(1, Stage::Child)];
    let with = info();
    let without = ServiceInfo {
        grief_contact: None,
        ..info()
    };
    let today = d(2026, 11, 21);
    let help = |info: &ServiceInfo| {
        texts::Texts {
            info,
            today,
            active: 1,
        }
        .help(&regs)
        .preview_text()
        .to_owned()
    };
    assert!(help(&with).contains("流産・死産など"));
    assert!(help(&with).contains("サンプル市 保健師相談"));
    assert!(!help(&without).contains("流産"));
}

/// Every sentence the conversation can say, with sample values.
fn every_text() -> Vec<(&'static str, String)> {
    let info = info();
    let today = d(2026, 11, 21);
    let t = texts::Texts {
        info: &info,
        today,
        active: 1,
    };
    let regs = [summary(1, Stage::Pregnancy), summary(2, Stage::Child)];
    let m = |m: Message| m.preview_text().to_owned();
    let mut out = vec![
        ("greeting", m(t.greeting())),
        ("invite", m(t.invite())),
        ("add_intro", t.add_intro()),
        ("ask_stage", m(t.ask_stage(None))),
        ("stage_hint", t.stage_hint(false)),
        ("stage_hint sticker", t.stage_hint(true)),
        ("ask_nickname", m(t.ask_nickname(Stage::Pregnancy, None))),
        ("non_text", t.non_text()),
        ("ask_date", m(t.ask_date(Stage::Child, "はなこ", None))),
        ("date_unreadable", t.date_unreadable()),
        ("confirm", m(t.confirm(Stage::Child, "はなこ", today))),
        ("confirm_hint", t.confirm_hint()),
        ("ask_fix", m(t.ask_fix())),
        ("fix_hint", t.fix_hint()),
        ("cancelled", m(t.cancelled())),
        ("nothing_to_cancel", m(t.nothing_to_cancel())),
        ("too_many", m(t.too_many())),
        ("welcome_back", m(t.welcome_back(&regs))),
        ("show", m(t.show(&regs))),
        ("help", m(t.help(&regs))),
        ("ask_stop", m(t.ask_stop(None))),
        ("stop_hint", t.stop_hint()),
        ("stopped", m(t.stopped())),
        ("kept_going", m(t.kept_going())),
        ("resumed", m(t.resumed())),
        ("thanks_for_stamp", m(t.thanks_for_stamp())),
        ("slow_down", m(t.slow_down())),
    ];
    for (stage, date) in [
        (Stage::Pregnancy, d(2027, 3, 15)),
        (Stage::Pregnancy, d(2027, 8, 1)),
        (Stage::Child, today),
        (Stage::Child, d(2026, 11, 1)),
        (Stage::Child, d(2025, 6, 21)),
    ] {
        out.push(("completed", m(t.completed(stage, "はなこ", date, true))));
    }
    let both: Vec<&RegistrationSummary> = regs.iter().collect();
    let mut shared = summary(3, Stage::Child);
    shared.role = ReaderRole::Family;
    let family = FamilyReader {
        user: UserId::new(9),
        nickname: "パパ".into(),
    };
    let mut owned = summary(4, Stage::Child);
    owned.family = vec![family.clone()];
    owned.child_name = Some("はる".into());
    for pick in [
        Pick::Edit,
        Pick::Born,
        Pick::Pause,
        Pick::End,
        Pick::Resume,
        Pick::Loss,
        Pick::Share,
    ] {
        out.push(("ask_pick", m(t.ask_pick(pick, &both, None))));
        out.push(("nothing_for", m(t.nothing_for(pick, &regs))));
    }
    out.extend([
        ("pick_hint", t.pick_hint(true)),
        ("overdue_resume", m(t.overdue_resume())),
        ("yes_hint", t.yes_hint()),
        ("ask_edit_what", m(t.ask_edit_what(&shared, None))),
        ("edit_hint", t.edit_hint()),
        ("ask_birthday", m(t.ask_birthday(&both, None))),
        ("confirm_birth", m(t.confirm_birth(&both, today, None))),
        ("born", m(t.born(&both, today))),
        ("confirm_pause", m(t.confirm_pause(&both, true, None))),
        ("pause_hint", t.pause_hint(false)),
        ("paused", m(t.paused(&[&shared], true))),
        ("confirm_loss", m(t.confirm_loss(&both, None))),
        ("loss_hint", t.loss_hint()),
        ("loss_done", m(t.loss_done())),
        ("confirm_erase", m(t.confirm_erase(&regs, None))),
        ("erase_hint", t.erase_hint()),
        ("erased", m(t.erased())),
        (
            "share_overview",
            m(t.share_overview(std::slice::from_ref(&owned))),
        ),
        ("confirm_invite", m(t.confirm_invite(&both, None))),
        ("ask_revoke", m(t.ask_revoke(&[&family], None))),
        ("confirm_revoke", m(t.confirm_revoke("パパ", None))),
        ("revoked", m(t.revoked("パパ"))),
        ("own_code", m(t.own_code())),
        ("already_shared", m(t.already_shared())),
        ("code_problem", m(t.code_problem(&InvitationCheck::Expired))),
        ("ask_join_nickname", m(t.ask_join_nickname("はなこ", None))),
        ("confirm_join", m(t.confirm_join("はなこ", "パパ", None))),
        ("joined", m(t.joined("はなこ", "パパ"))),
        (
            "ask_child_name",
            m(t.ask_child_name(Stage::Pregnancy, None)),
        ),
        (
            "confirm_child",
            m(t.confirm_child(Stage::Child, today, Some("はる"), None)),
        ),
        ("gone", m(t.gone())),
        ("name_the_others", m(t.name_the_others())),
        ("faq", m(t.faq())),
        ("contact", m(t.contact())),
        ("settings", m(t.settings(&regs))),
        ("cancelled_in", m(t.cancelled_in(&State::ConfirmErase))),
    ]);
    for change in [
        Change::Nickname("はな".into()),
        Change::Date(today),
        Change::ChildName(None),
    ] {
        out.push(("confirm_edit", m(t.confirm_edit(&owned, &change, None))));
        out.push(("edited", m(t.edited(&owned, &change))));
    }
    for m2 in t.invitation(&both, "ABCD-EFGH") {
        out.push(("invitation", m(m2)));
    }
    for e in [
        NicknameError::Empty,
        NicknameError::TooLong(30),
        NicknameError::Url,
        NicknameError::ControlCharacters,
    ] {
        out.push(("nickname_error", t.nickname_error(&e)));
    }
    for stage in [Stage::Pregnancy, Stage::Child] {
        for e in [
            DateError::Unreadable,
            DateError::NoSuchDate,
            DateError::OutOfRange(DateKind::DueDate.range(today)),
        ] {
            out.push(("date_error", t.date_error(stage, &e)));
        }
    }
    out
}

#[test]
fn the_conversation_follows_the_editors_style_guide() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("messages");
    let style = crate::content::lint::Style::load(&dir)
        .expect("messages/style.toml reads")
        .expect("the sample pack has a style guide");
    let texts = every_text();
    assert!(texts.len() > 40);
    let mut found = Vec::new();
    let info = info();
    for (name, text) in &texts {
        // The municipality's own names are its definitions, not the conversation's words.
        let mut text = text.replace(&info.contact, "〔contact〕");
        if let Some(grief) = &info.grief_contact {
            text = text.replace(grief, "〔grief_contact〕");
        }
        for f in style.findings(&text, None, 0, i64::MAX) {
            found.push(format!("{name}: {}", f.message));
        }
        for claim in ["毎朝", "空のよう"] {
            if text.contains(claim) {
                found.push(format!("{name}: 「{claim}」"));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
    // The check can fail: a spelling the guide rejects is found in a sentence.
    assert!(!style.findings("お疲れさまです", None, 0, 0).is_empty());
}

#[test]
fn a_stop_says_it_covers_every_registration_and_a_finished_one_is_not_offered_a_resume() {
    let two = [summary(1, Stage::Child), summary(2, Stage::Child)];
    let (last, texts) = run(State::Idle, &[text("配信停止")], &two);
    let ids = vec![RegistrationId::new(1), RegistrationId::new(2)];
    assert_eq!(
        last.state,
        State::Pick {
            action: Pick::Pause,
            candidates: ids.clone()
        }
    );
    assert!(texts[0].contains("1. はなこさん"), "{texts:?}");
    assert!(texts[0].contains("2. はなこさん"), "{texts:?}");
    let (last, texts) = run(State::Idle, &[text("配信停止"), text("すべて")], &two);
    assert_eq!(
        last.state,
        State::ConfirmPause {
            regs: ids.clone(),
            end: false
        }
    );
    assert_eq!(texts[1].matches("・はなこさん").count(), 2, "{texts:?}");
    let (last, _) = run(
        State::Idle,
        &[text("配信停止"), text("2"), text("停止する")],
        &two,
    );
    assert_eq!(
        last.effect,
        Some(Effect::Stop(vec![RegistrationId::new(2)])),
        "one registration of two"
    );
    let (_, texts) = run(State::Idle, &[text("配信停止")], &two[..1]);
    assert!(!texts[0].contains("すべて"), "{texts:?}");

    let completed = [RegistrationSummary {
        status: RegistrationStatus::Completed,
        ..summary(1, Stage::Child)
    }];
    let (last, texts) = run(State::Idle, &[text("配信停止")], &completed);
    assert_eq!(last.state, State::Idle);
    assert_eq!(texts, ["いま配信中の登録はありません。"]);
    let stopped = [RegistrationSummary {
        status: RegistrationStatus::Stopped,
        ..summary(1, Stage::Child)
    }];
    let (_, texts) = run(State::Idle, &[text("配信停止")], &stopped);
    assert!(texts[0].contains("「配信再開」"), "{texts:?}");
}
