use super::*;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn info() -> ServiceInfo {
    ServiceInfo {
        service_name: "サンプル市 子育て応援LINE".into(),
        municipality: "サンプル市".into(),
        contact: "サンプル市 こども家庭センター".into(),
        delivery_time: "毎朝9時ごろ".into(),
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
        ("nickname: empty", nick.clone(), text("   "), "空のよう"),
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
    }];
    let (last, texts) = run(State::Idle, &[text("配信停止")], &active);
    assert_eq!(last.state, State::ConfirmStop);
    assert!(last.effect.is_none(), "asks first");
    assert!(texts[0].contains("停止しますか"));
    let (last, _) = run(State::ConfirmStop, &[text("停止する")], &active);
    assert_eq!(
        last.effect,
        Some(Effect::Stop(vec![RegistrationId::new(1)]))
    );
    let (last, texts) = run(State::ConfirmStop, &[text("やめない")], &active);
    assert!(last.effect.is_none());
    assert!(texts[0].contains("これからも"));

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
    assert!(
        matches!(
            s.state,
            State::AskNickname {
                stage: Stage::Pregnancy,
                ..
            }
        ),
        "a stage word starts another registration"
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
