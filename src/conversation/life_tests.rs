//! The life events and settings, step by step (`life.rs`).

use super::*;

const TODAY: (i32, u32, u32) = (2026, 11, 21);

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn today() -> NaiveDate {
    d(TODAY.0, TODAY.1, TODAY.2)
}

fn info() -> ServiceInfo {
    ServiceInfo {
        service_name: "サンプル市 子育て応援LINE".into(),
        municipality: "サンプル市".into(),
        contact: "サンプル市 こども家庭センター".into(),
        grief_contact: Some("サンプル市 保健師相談（電話 000）".into()),
        delivery_time: "朝9時ごろ".into(),
        child_daily_until: 100,
        last_pregnancy_day: 293,
        faq: vec![Faq {
            question: "料金はかかりますか？".into(),
            answer: "無料です。".into(),
        }],
        line_basic_id: Some("@yorisoi".into()),
    }
}

fn text(s: &str) -> Input {
    Input::Text(s.into())
}

fn menu(data: &str) -> Input {
    Input::Postback {
        data: format!("menu:{data}"),
        date: None,
    }
}

fn reg(id: i64, stage: Stage) -> RegistrationSummary {
    RegistrationSummary {
        id: RegistrationId::new(id),
        before_block: None,
        stage,
        nickname: "はなこ".into(),
        date: match stage {
            Stage::Pregnancy => d(2026, 12, 20),
            Stage::Child => d(2026, 8, 1),
        },
        status: RegistrationStatus::Active,
        role: ReaderRole::Owner,
        closed: false,
        child_name: None,
        family: Vec::new(),
        paused: false,
    }
}

fn id(n: i64) -> RegistrationId {
    RegistrationId::new(n)
}

/// Runs inputs; returns the last step and every reply text.
fn run_with(
    start: State,
    inputs: &[Input],
    regs: &[RegistrationSummary],
    invitation: Option<InvitationCheck>,
) -> (Step, Vec<String>) {
    let info = info();
    let ctx = Context {
        today: today(),
        registrations: regs,
        info: &info,
        invitation,
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

fn run(start: State, inputs: &[Input], regs: &[RegistrationSummary]) -> (Step, Vec<String>) {
    run_with(start, inputs, regs, None)
}

#[test]
fn the_birth_from_the_menu_turns_the_pregnancy_into_the_child() {
    let regs = [reg(1, Stage::Pregnancy)];
    let (last, texts) = run(
        State::Idle,
        &[menu("born"), text("今日"), text("はい")],
        &regs,
    );
    assert_eq!(
        last.effect,
        Some(Effect::Born {
            regs: vec![id(1)],
            birthday: today()
        })
    );
    assert!(texts[1].contains("切り替えます"), "{texts:?}");
    assert!(texts[2].contains("おめでとう"), "{texts:?}");
    // Typed, with the date written out; 「昨日」 too.
    let (last, _) = run(
        State::Idle,
        &[text("出産しました"), text("昨日"), text("はい")],
        &regs,
    );
    assert_eq!(
        last.effect,
        Some(Effect::Born {
            regs: vec![id(1)],
            birthday: d(2026, 11, 20)
        })
    );
    // A future birthday is refused with its range, and nothing changes.
    let (last, texts) = run(
        State::Idle,
        &[text("出産しました"), text("2026年12月1日")],
        &regs,
    );
    assert!(last.effect.is_none());
    assert!(matches!(last.state, State::AskBirthday { .. }));
    assert!(texts[1].contains("今日"), "{texts:?}");
}

#[test]
fn twins_are_born_together_or_one_at_a_time() {
    let regs = [reg(1, Stage::Pregnancy), reg(2, Stage::Pregnancy)];
    let (last, texts) = run(State::Idle, &[menu("born")], &regs);
    assert!(matches!(
        last.state,
        State::Pick {
            action: Pick::Born,
            ..
        }
    ));
    assert!(texts[0].contains("すべて"), "{texts:?}");
    assert_eq!(
        last.labels(),
        [
            "1. はなこさん（予定日12/20）",
            "2. はなこさん（予定日12/20）",
            "すべて",
            "やめる"
        ]
    );
    let (last, _) = run(
        State::Idle,
        &[menu("born"), text("すべて"), text("今日"), text("はい")],
        &regs,
    );
    assert_eq!(
        last.effect,
        Some(Effect::Born {
            regs: vec![id(1), id(2)],
            birthday: today()
        })
    );
    let (last, _) = run(
        State::Idle,
        &[menu("born"), text("2"), text("今日"), text("はい")],
        &regs,
    );
    assert_eq!(
        last.effect,
        Some(Effect::Born {
            regs: vec![id(2)],
            birthday: today()
        })
    );
    // A number not offered is asked again.
    let (last, _) = run(State::Idle, &[menu("born"), text("3")], &regs);
    assert!(matches!(last.state, State::Pick { .. }));
}

#[test]
fn the_birth_button_of_a_daily_message_goes_straight_to_the_confirmation() {
    let regs = [reg(1, Stage::Pregnancy), reg(2, Stage::Child)];
    let picked = |data: &str| Input::Postback {
        data: data.into(),
        date: Some("2026-11-19".into()),
    };
    let (last, _) = run(State::Idle, &[picked("born:1"), text("はい")], &regs);
    assert_eq!(
        last.effect,
        Some(Effect::Born {
            regs: vec![id(1)],
            birthday: d(2026, 11, 19)
        })
    );
    // Not a pregnancy any more, not theirs, or shared with them: nothing changes.
    for data in ["born:2", "born:99"] {
        let (last, texts) = run(State::Idle, &[picked(data)], &regs);
        assert!(last.effect.is_none(), "{data}");
        assert_eq!(last.state, State::Idle, "{data}: {texts:?}");
    }
    let shared = [RegistrationSummary {
        role: ReaderRole::Family,
        ..reg(1, Stage::Pregnancy)
    }];
    let (last, texts) = run(State::Idle, &[picked("born:1")], &shared);
    assert!(last.effect.is_none());
    assert!(texts[0].contains("ご本人から"), "{texts:?}");
}

#[test]
fn while_registering_the_birth_word_means_raising_a_child() {
    let (last, _) = run(State::AskStage, &[text("出産しました")], &[]);
    assert!(matches!(
        last.state,
        State::AskNickname {
            stage: Stage::Child,
            ..
        }
    ));
}

#[test]
fn the_loss_path_asks_nothing_closes_for_good_and_gives_the_grief_contact() {
    let regs = [reg(1, Stage::Pregnancy)];
    let (last, texts) = run(
        State::Idle,
        &[
            menu("settings"),
            text("流産・死産・お子さんを亡くされた方へ"),
            text("はい"),
        ],
        &regs,
    );
    assert_eq!(last.effect, Some(Effect::Loss(vec![id(1)])));
    assert!(texts[2].contains("保健師相談（電話 000）"), "{texts:?}");
    assert!(
        !texts
            .iter()
            .any(|t| t.contains("理由") || t.contains("教えて")),
        "{texts:?}"
    );
    // The confirmation's button says what it does.
    let (last, _) = run(State::Idle, &[text("流産")], &regs);
    assert_eq!(last.labels(), ["メッセージを止める", "やめる"]);
    // 「やめる」 changes nothing.
    let (last, _) = run(State::Idle, &[text("流産"), text("やめる")], &regs);
    assert!(last.effect.is_none());
    // A closed registration is never offered a resume, a birth or a pause again.
    let closed = [RegistrationSummary {
        closed: true,
        status: RegistrationStatus::Stopped,
        ..reg(1, Stage::Pregnancy)
    }];
    for input in [
        text("配信再開"),
        menu("born"),
        text("一時停止"),
        text("流産"),
    ] {
        let (last, _) = run(State::Idle, std::slice::from_ref(&input), &closed);
        assert!(last.effect.is_none(), "{input:?}");
        assert_eq!(last.state, State::Idle, "{input:?}");
    }
}

#[test]
fn erasing_asks_once_and_cancels_cleanly() {
    let regs = [reg(1, Stage::Child)];
    let (last, texts) = run(
        State::Idle,
        &[text("データを削除"), text("削除する")],
        &regs,
    );
    assert_eq!(last.effect, Some(Effect::Erase));
    assert!(texts[0].contains("元に戻せず"), "{texts:?}");
    let (last, _) = run(State::Idle, &[text("データを削除"), text("やめる")], &regs);
    assert!(last.effect.is_none());
    assert_eq!(last.state, State::Idle);
    // Someone not registered can ask too.
    let (last, _) = run(State::Idle, &[text("データを削除"), text("はい")], &[]);
    assert_eq!(last.effect, Some(Effect::Erase));
}

#[test]
fn a_registration_is_seen_and_changed() {
    let regs = [reg(1, Stage::Child)];
    let (last, texts) = run(State::Idle, &[menu("show")], &regs);
    assert!(texts[0].contains("はなこさん"), "{texts:?}");
    assert!(last.labels().contains(&"変更する".to_owned()));
    let (last, _) = run(
        State::Idle,
        &[text("変更する"), text("お名前"), text("はな"), text("はい")],
        &regs,
    );
    assert_eq!(
        last.effect,
        Some(Effect::Edit {
            reg: id(1),
            change: Change::Nickname("はな".into())
        })
    );
    let (last, _) = run(
        State::Idle,
        &[
            text("変更する"),
            text("誕生日"),
            text("2026年8月2日"),
            text("はい"),
        ],
        &regs,
    );
    assert_eq!(
        last.effect,
        Some(Effect::Edit {
            reg: id(1),
            change: Change::Date(d(2026, 8, 2))
        })
    );
    let (last, _) = run(
        State::Idle,
        &[
            text("変更する"),
            text("お子さんの呼び名"),
            text("はる"),
            text("はい"),
        ],
        &regs,
    );
    assert_eq!(
        last.effect,
        Some(Effect::Edit {
            reg: id(1),
            change: Change::ChildName(Some("はる".into()))
        })
    );
    // A family reader changes only their own name: the date is not offered.
    let shared = [RegistrationSummary {
        role: ReaderRole::Family,
        ..reg(1, Stage::Child)
    }];
    let (last, _) = run(State::Idle, &[text("変更する")], &shared);
    assert_eq!(last.labels(), ["お名前", "やめる"]);
    let (last, _) = run(State::Idle, &[text("変更する"), text("誕生日")], &shared);
    assert!(matches!(last.state, State::EditWhat { .. }));
    // A bad name is asked again with the reason.
    let (last, texts) = run(
        State::Idle,
        &[text("変更する"), text("お名前"), text("https://x.example")],
        &regs,
    );
    assert!(matches!(last.state, State::EditValue { .. }));
    assert!(texts[2].contains("URL"), "{texts:?}");
}

#[test]
fn sharing_creates_a_code_and_a_family_member_joins_with_it() {
    let regs = [reg(1, Stage::Pregnancy)];
    let (last, texts) = run(
        State::Idle,
        &[menu("share"), text("招待コードを作る"), text("はい")],
        &regs,
    );
    assert_eq!(
        last.effect,
        Some(Effect::Invite {
            regs: vec![id(1)],
            code: "ABCDEFGH".into()
        })
    );
    let invite = texts.last().unwrap();
    assert!(invite.contains("招待コード ABCD-EFGH"), "{texts:?}");
    assert!(
        invite.contains("https://line.me/R/oaMessage/@yorisoi/?"),
        "{invite}"
    );

    let valid = InvitationCheck::Valid {
        code_hash: invitation_hash("ABCDEFGH"),
        registrations: vec![id(1)],
        owner: "はなこ".into(),
        own: false,
        already: false,
    };
    // A new follower, asked for their stage, sends the code instead.
    let (last, texts) = run_with(
        State::AskStage,
        &[text("招待コード ABCD-EFGH")],
        &[],
        Some(valid.clone()),
    );
    assert!(
        matches!(last.state, State::JoinNickname { .. }),
        "{texts:?}"
    );
    let (last, _) = run_with(
        last.state,
        &[text("パパ"), text("はい")],
        &[],
        Some(valid.clone()),
    );
    assert_eq!(
        last.effect,
        Some(Effect::Join {
            code_hash: invitation_hash("ABCDEFGH"),
            nickname: Nickname::from_trusted("パパ".into())
        })
    );
    // Used meanwhile: the confirmation says so and nothing is joined.
    let asking = State::ConfirmJoin {
        code_hash: invitation_hash("ABCDEFGH"),
        nickname: "パパ".into(),
    };
    let (last, texts) = run_with(asking, &[text("はい")], &[], Some(InvitationCheck::Used));
    assert!(last.effect.is_none());
    assert!(texts[0].contains("すでに使われて"), "{texts:?}");
    for (check, words) in [
        (InvitationCheck::Expired, "有効期限"),
        (InvitationCheck::Unknown, "見つかりません"),
    ] {
        let (last, texts) = run_with(State::Idle, &[text("ABCD-EFGH")], &[], Some(check));
        assert!(last.effect.is_none());
        assert!(texts[0].contains(words), "{texts:?}");
    }
}

#[test]
fn the_owner_sees_who_shares_and_can_end_it() {
    let mut owned = reg(1, Stage::Child);
    owned.family = vec![FamilyReader {
        user: UserId::new(7),
        nickname: "パパ".into(),
    }];
    let regs = [owned];
    let (_, texts) = run(State::Idle, &[text("家族と共有")], &regs);
    assert!(texts[0].contains("パパさん"), "{texts:?}");
    let (last, _) = run(
        State::Idle,
        &[text("共有をやめてもらう"), text("はい")],
        &regs,
    );
    assert_eq!(
        last.effect,
        Some(Effect::Revoke {
            reader: UserId::new(7),
            regs: vec![id(1)]
        })
    );
}

#[test]
fn a_family_readers_block_leaves_the_owners_registration_alone() {
    let shared = [RegistrationSummary {
        role: ReaderRole::Family,
        ..reg(1, Stage::Child)
    }];
    let (last, _) = run(State::Idle, &[Input::Unfollow], &shared);
    assert_eq!(last.effect, Some(Effect::Block(vec![])));
    let blocked = [RegistrationSummary {
        role: ReaderRole::Family,
        status: RegistrationStatus::Blocked,
        before_block: Some(RegistrationStatus::Active),
        ..reg(1, Stage::Child)
    }];
    let (last, _) = run(State::Idle, &[Input::Follow { unblocked: true }], &blocked);
    assert_eq!(last.effect, Some(Effect::Unblock(vec![])));
}

#[test]
fn adding_a_child_keeps_the_readers_name_and_asks_the_childs() {
    let regs = [reg(1, Stage::Child)];
    let (last, texts) = run(
        State::Idle,
        &[
            menu("add"),
            text("妊娠中"),
            text("2027年5月1日"),
            text("はる"),
            text("はい"),
        ],
        &regs,
    );
    assert_eq!(
        last.effect,
        Some(Effect::Register {
            subject: Subject::new(Stage::Pregnancy, d(2027, 5, 1)),
            nickname: Nickname::from_trusted("はなこ".into()),
            child_name: Some(Nickname::from_trusted("はる".into())),
        })
    );
    assert!(texts[3].contains("呼び名：はる"), "{texts:?}");
    assert!(
        texts[5].contains("ほかの登録にも呼び名を"),
        "the first registration has no name yet: {texts:?}"
    );
    let named = [RegistrationSummary {
        child_name: Some("あお".into()),
        ..reg(1, Stage::Child)
    }];
    let (_, texts) = run(
        State::Idle,
        &[
            menu("add"),
            text("妊娠中"),
            text("2027年5月1日"),
            text("はる"),
            text("はい"),
        ],
        &named,
    );
    assert_eq!(
        texts.len(),
        5,
        "every registration named: no hint {texts:?}"
    );
    let (last, _) = run(
        State::Idle,
        &[
            menu("add"),
            text("子育て中"),
            text("2026年11月1日"),
            text("なし"),
            text("はい"),
        ],
        &regs,
    );
    assert!(matches!(
        last.effect,
        Some(Effect::Register {
            child_name: None,
            ..
        })
    ));
}

#[test]
fn a_menu_tap_mid_registration_starts_its_action() {
    let asking = State::AskDate {
        stage: Stage::Pregnancy,
        nickname: "はな".into(),
    };
    let (last, texts) = run(asking, &[menu("faq")], &[]);
    assert_eq!(last.state, State::Idle);
    assert!(texts[0].contains("料金はかかりますか"), "{texts:?}");
    let (_, texts) = run(State::Idle, &[menu("contact")], &[]);
    assert!(texts[0].contains("こども家庭センター"), "{texts:?}");
    // Unknown menu data is not an action.
    let (last, _) = run(State::Idle, &[menu("nope")], &[reg(1, Stage::Child)]);
    assert!(last.effect.is_none());
}

#[test]
fn pause_and_resume_each_registration() {
    let mut stopped = reg(2, Stage::Child);
    stopped.status = RegistrationStatus::Stopped;
    let regs = [reg(1, Stage::Child), stopped];
    // The menu's 「一時停止・再開」 pauses what is active.
    let (last, _) = run(State::Idle, &[menu("pause"), text("停止する")], &regs);
    assert_eq!(last.effect, Some(Effect::Stop(vec![id(1)])));
    // 「配信再開」 resumes what is stopped, without a confirmation.
    let (last, texts) = run(State::Idle, &[text("配信再開")], &regs);
    assert_eq!(last.effect, Some(Effect::Resume(vec![id(2)])));
    assert!(texts[0].contains("再開しました"), "{texts:?}");
    // 「配信をやめる」 says it ends, and can be resumed.
    let (last, texts) = run(State::Idle, &[text("配信をやめる"), text("はい")], &regs);
    assert_eq!(last.effect, Some(Effect::Stop(vec![id(1)])));
    assert!(texts[1].contains("ありがとうございました"), "{texts:?}");
}

#[test]
fn a_pregnancy_past_its_reminders_is_asked_about_the_birth_not_resumed() {
    let overdue = [RegistrationSummary {
        status: RegistrationStatus::Stopped,
        date: d(2026, 10, 23),
        ..reg(1, Stage::Pregnancy)
    }];
    let (last, texts) = run(State::Idle, &[text("配信再開")], &overdue);
    assert!(last.effect.is_none());
    assert!(texts[0].contains("「出産しました」"), "{texts:?}");
    // Its report still works, straight from that answer.
    let (last, _) = run(
        State::Idle,
        &[
            text("配信再開"),
            text("出産しました"),
            text("今日"),
            text("はい"),
        ],
        &overdue,
    );
    assert!(matches!(last.effect, Some(Effect::Born { .. })));
    // Four weeks after the due date, the last reminder's day, it can still be resumed.
    let on_time = [RegistrationSummary {
        status: RegistrationStatus::Stopped,
        date: d(2026, 10, 24),
        ..reg(1, Stage::Pregnancy)
    }];
    let (last, _) = run(State::Idle, &[text("配信再開")], &on_time);
    assert_eq!(last.effect, Some(Effect::Resume(vec![id(1)])));
}

#[test]
fn only_what_can_be_acted_on_is_offered() {
    let two = [reg(1, Stage::Child), reg(2, Stage::Child)];
    // A change is for one registration: 「すべて」 is not an answer.
    let (last, _) = run(State::Idle, &[text("変更する"), text("すべて")], &two);
    assert!(matches!(
        last.state,
        State::Pick {
            action: Pick::Edit,
            ..
        }
    ));
    // Only the owner shares; a finished registration is not shared.
    let shared = [RegistrationSummary {
        role: ReaderRole::Family,
        ..reg(1, Stage::Child)
    }];
    let (last, texts) = run(State::Idle, &[text("招待コードを作る")], &shared);
    assert_eq!(last.state, State::Idle);
    assert!(texts[0].contains("ご本人が作れます"), "{texts:?}");
    let done = [RegistrationSummary {
        status: RegistrationStatus::Completed,
        ..reg(1, Stage::Child)
    }];
    let (last, _) = run(State::Idle, &[text("招待コードを作る")], &done);
    assert_eq!(last.state, State::Idle);
}

#[test]
fn the_settings_offer_every_action_and_the_loss_path_in_one_tap() {
    let regs = [reg(1, Stage::Child)];
    let (last, texts) = run(State::Idle, &[menu("settings")], &regs);
    assert!(texts[0].starts_with("設定・その他"), "{texts:?}");
    let labels = last.labels();
    for l in [
        "登録内容",
        "一時停止・再開",
        "家族と共有",
        "配信をやめる",
        "流産・死産・お子さんを亡くされた方へ",
        "データを削除",
        "よくある質問",
        "お問い合わせ",
    ] {
        assert!(labels.iter().any(|x| x == l), "{l}: {labels:?}");
    }
    // Someone not registered is offered registering, not a stop.
    let (last, _) = run(State::Idle, &[text("設定")], &[]);
    assert!(last.labels().contains(&"登録する".to_owned()));
    assert!(!last.labels().contains(&"配信をやめる".to_owned()));
}

#[test]
fn a_family_reader_resumes_only_their_own_pause() {
    let held = [RegistrationSummary {
        role: ReaderRole::Family,
        status: RegistrationStatus::Stopped,
        ..reg(1, Stage::Child)
    }];
    let (last, texts) = run(State::Idle, &[text("配信再開")], &held);
    assert!(last.effect.is_none());
    assert!(
        texts[0].contains("登録したご家族が配信を止めています"),
        "{texts:?}"
    );
    let paused = [RegistrationSummary {
        role: ReaderRole::Family,
        status: RegistrationStatus::Stopped,
        paused: true,
        ..reg(1, Stage::Child)
    }];
    let (last, _) = run(State::Idle, &[text("配信再開")], &paused);
    assert_eq!(last.effect, Some(Effect::Resume(vec![id(1)])));
}

#[test]
fn edge_answers_of_the_idle_words() {
    // Not registered: 「登録内容」 invites to register.
    let (last, _) = run(State::Idle, &[text("登録内容")], &[]);
    assert_eq!(last.state, State::AskStage);
    // 「一時停止・再開」 with nothing active resumes what is stopped.
    let stopped = RegistrationSummary {
        status: RegistrationStatus::Stopped,
        ..reg(2, Stage::Child)
    };
    let (last, _) = run(
        State::Idle,
        &[menu("pause")],
        std::slice::from_ref(&stopped),
    );
    assert_eq!(last.effect, Some(Effect::Resume(vec![id(2)])));
    // An overdue pregnancy beside a resumable registration: that one resumes.
    let overdue = RegistrationSummary {
        status: RegistrationStatus::Stopped,
        date: d(2026, 9, 1),
        ..reg(1, Stage::Pregnancy)
    };
    let (last, _) = run(
        State::Idle,
        &[text("配信再開")],
        &[overdue.clone(), stopped],
    );
    assert_eq!(last.effect, Some(Effect::Resume(vec![id(2)])));
    // Closed, still active, or someone else's: no birth question for an overdue pregnancy.
    for r in [
        RegistrationSummary {
            closed: true,
            ..overdue.clone()
        },
        RegistrationSummary {
            status: RegistrationStatus::Active,
            ..overdue.clone()
        },
        RegistrationSummary {
            role: ReaderRole::Family,
            ..overdue.clone()
        },
    ] {
        let (_, texts) = run(State::Idle, &[text("配信再開")], std::slice::from_ref(&r));
        assert!(!texts[0].contains("4週間以上"), "{r:?}: {texts:?}");
    }
}

#[test]
fn ending_a_share_names_each_family_member_once() {
    let papa = FamilyReader {
        user: UserId::new(7),
        nickname: "パパ".into(),
    };
    let twins = [
        RegistrationSummary {
            family: vec![papa.clone()],
            ..reg(1, Stage::Child)
        },
        RegistrationSummary {
            family: vec![papa],
            ..reg(2, Stage::Child)
        },
    ];
    let (last, _) = run(
        State::Idle,
        &[text("共有をやめてもらう"), text("はい")],
        &twins,
    );
    assert_eq!(
        last.effect,
        Some(Effect::Revoke {
            reader: UserId::new(7),
            regs: vec![id(1), id(2)]
        }),
        "one person reading the twins"
    );
    // Nobody to end it with: the overview.
    let (last, texts) = run(
        State::Idle,
        &[text("共有をやめてもらう")],
        &[reg(1, Stage::Child)],
    );
    assert_eq!(last.state, State::Idle);
    assert!(
        texts[0].contains("共有しているご家族はいません"),
        "{texts:?}"
    );
}

#[test]
fn with_two_family_members_the_owner_picks_whose_share_ends() {
    let shared = [RegistrationSummary {
        family: vec![
            FamilyReader {
                user: UserId::new(7),
                nickname: "パパ".into(),
            },
            FamilyReader {
                user: UserId::new(8),
                nickname: "ばあば".into(),
            },
        ],
        ..reg(1, Stage::Child)
    }];
    let (last, texts) = run(
        State::Idle,
        &[
            text("共有をやめてもらう"),
            text("3"),
            text("2"),
            text("はい"),
        ],
        &shared,
    );
    assert!(texts[0].contains("2. ばあばさん"), "{texts:?}");
    assert!(
        texts[1].contains("番号を選んで"),
        "a number not offered: {texts:?}"
    );
    assert!(
        texts[2].contains("ばあばさんとの共有をやめますか"),
        "{texts:?}"
    );
    assert_eq!(
        last.effect,
        Some(Effect::Revoke {
            reader: UserId::new(8),
            regs: vec![id(1)]
        })
    );
}

#[test]
fn a_childs_name_is_removed_with_nashi_and_only_by_the_owner() {
    let named = [RegistrationSummary {
        child_name: Some("はる".into()),
        ..reg(1, Stage::Child)
    }];
    let (last, texts) = run(
        State::Idle,
        &[
            text("変更する"),
            text("お子さんの呼び名"),
            text("なし"),
            text("はい"),
        ],
        &named,
    );
    assert_eq!(
        last.effect,
        Some(Effect::Edit {
            reg: id(1),
            change: Change::ChildName(None)
        })
    );
    assert!(texts[2].contains("はる → なし"), "{texts:?}");
    let shared = [RegistrationSummary {
        role: ReaderRole::Family,
        ..named[0].clone()
    }];
    let (last, _) = run(
        State::Idle,
        &[text("変更する"), text("お子さんの呼び名")],
        &shared,
    );
    assert!(matches!(last.state, State::EditWhat { .. }), "asked again");
}

#[test]
fn a_birth_confirmed_after_it_was_already_reported_changes_nothing() {
    let asking = State::ConfirmBirth {
        regs: vec![id(1)],
        date: today(),
    };
    // Meanwhile reported from another device: the registration is the child's already.
    let (last, texts) = run(asking, &[text("はい")], &[reg(1, Stage::Child)]);
    assert!(last.effect.is_none());
    assert_eq!(last.state, State::Idle);
    assert!(texts[0].contains("すでに変わって"), "{texts:?}");
}

#[test]
fn only_the_confirming_words_confirm() {
    let regs = [RegistrationSummary {
        family: vec![FamilyReader {
            user: UserId::new(7),
            nickname: "パパ".into(),
        }],
        ..reg(1, Stage::Child)
    }];
    for start in [
        State::ConfirmLoss { regs: vec![id(1)] },
        State::ConfirmInvite { regs: vec![id(1)] },
        State::ConfirmRevoke {
            reader: UserId::new(7),
        },
        State::ConfirmErase,
    ] {
        let (last, _) = run(start.clone(), &[text("こんにちは")], &regs);
        assert!(last.effect.is_none(), "{start:?}");
        assert_eq!(last.state, start, "asked again");
    }
    // The button's own words confirm too.
    let (last, _) = run(
        State::ConfirmLoss { regs: vec![id(1)] },
        &[text("止める")],
        &regs,
    );
    assert_eq!(last.effect, Some(Effect::Loss(vec![id(1)])));
    let (last, _) = run(
        State::ConfirmInvite { regs: vec![id(1)] },
        &[text("招待コードを作る")],
        &regs,
    );
    assert!(matches!(last.effect, Some(Effect::Invite { .. })));
    // Ending a share names only the registrations that person reads.
    let two = [regs[0].clone(), reg(2, Stage::Child)];
    let (last, _) = run(
        State::ConfirmRevoke {
            reader: UserId::new(7),
        },
        &[text("共有をやめてもらう")],
        &two,
    );
    assert_eq!(
        last.effect,
        Some(Effect::Revoke {
            reader: UserId::new(7),
            regs: vec![id(1)]
        })
    );
}

#[test]
fn adding_a_child_can_be_corrected_and_only_named_fields_are_edited() {
    let regs = [reg(1, Stage::Child)];
    let confirming = State::ConfirmChild {
        stage: Stage::Pregnancy,
        nickname: "はなこ".into(),
        date: d(2027, 5, 1),
        child_name: None,
    };
    let (last, _) = run(confirming, &[text("修正する")], &regs);
    assert_eq!(last.state, State::AskStage);
    let (last, _) = run(State::EditWhat { reg: id(1) }, &[text("あいう")], &regs);
    assert_eq!(last.state, State::EditWhat { reg: id(1) }, "asked again");
}

#[test]
fn a_join_is_confirmed_only_for_the_invitation_it_started_with() {
    let other = InvitationCheck::Valid {
        code_hash: invitation_hash("ZZZZZZZZ"),
        registrations: vec![id(9)],
        owner: "だれか".into(),
        own: false,
        already: false,
    };
    let asking = State::ConfirmJoin {
        code_hash: invitation_hash("ABCDEFGH"),
        nickname: "パパ".into(),
    };
    let (last, texts) = run_with(asking, &[text("はい")], &[], Some(other));
    assert!(last.effect.is_none());
    assert!(texts[0].contains("見つかりません"), "{texts:?}");
}
