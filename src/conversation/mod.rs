//! The registration conversation, as a pure function: (state, input, context) → (next state,
//! replies, effect). No I/O and no clock inside; the processor applies the effect and sends the
//! replies.

mod life;
mod life_texts;
mod texts;

use crate::domain::{
    DateError, DateKind, Nickname, NicknameError, RegistrationId, RegistrationStatus, Stage,
    Subject, UserId, check_range, parse_date,
};
use crate::line::{Action, Message};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

pub use crate::domain::{FamilyReader, InvitationCheck, ReaderRole};
pub use life::{Change, Pick, display_code, invitation_code, invitation_hash, new_invitation_code};
pub use texts::{Faq, ServiceInfo};

/// Where a user is in the conversation. Stored as JSON, so a restart continues where it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum State {
    /// Nothing in progress.
    #[default]
    Idle,
    /// Asked: pregnant or raising a child?
    AskStage,
    /// Asked for the nickname; `keep_date` when fixing only the nickname.
    AskNickname {
        /// Chosen stage.
        stage: Stage,
        /// A date already given, kept while the nickname is corrected.
        #[serde(default)]
        keep_date: Option<NaiveDate>,
    },
    /// Asked for the due date or birthday.
    AskDate {
        /// Chosen stage.
        stage: Stage,
        /// Given nickname.
        nickname: String,
    },
    /// Asked to confirm.
    Confirm {
        /// Chosen stage.
        stage: Stage,
        /// Given nickname.
        nickname: String,
        /// Given date.
        date: NaiveDate,
    },
    /// Asked to confirm stopping the delivery.
    ConfirmStop,
    /// Asked what to correct.
    Fix {
        /// Chosen stage.
        stage: Stage,
        /// Given nickname.
        nickname: String,
        /// Given date.
        date: NaiveDate,
    },
    /// Adding a child: asked how the family tells this child apart (optional).
    AskChildName {
        /// Chosen stage.
        stage: Stage,
        /// The reader's nickname (kept from their registration).
        nickname: String,
        /// Given date.
        date: NaiveDate,
    },
    /// Adding a child: asked to confirm, with the child's name.
    ConfirmChild {
        /// Chosen stage.
        stage: Stage,
        /// The reader's nickname.
        nickname: String,
        /// Given date.
        date: NaiveDate,
        /// How the family tells this child apart.
        child_name: Option<String>,
    },
    /// Asked which registration an action is for (numbered as listed; 「すべて」 when allowed).
    Pick {
        /// The action.
        action: Pick,
        /// The registrations offered, in the listed order.
        candidates: Vec<RegistrationId>,
    },
    /// Asked what to change in a registration.
    EditWhat {
        /// The registration.
        reg: RegistrationId,
    },
    /// Asked for the new value.
    EditValue {
        /// The registration.
        reg: RegistrationId,
        /// What is being changed (its value unused).
        field: Change,
    },
    /// Asked to confirm a change.
    ConfirmEdit {
        /// The registration.
        reg: RegistrationId,
        /// The change.
        change: Change,
    },
    /// Asked for the birthday of the children of these pregnancy registrations.
    AskBirthday {
        /// The pregnancy registrations.
        regs: Vec<RegistrationId>,
    },
    /// Asked to confirm the birth.
    ConfirmBirth {
        /// The pregnancy registrations.
        regs: Vec<RegistrationId>,
        /// The birthday.
        date: NaiveDate,
    },
    /// Asked to confirm pausing (or ending) the delivery of these registrations.
    ConfirmPause {
        /// The registrations.
        regs: Vec<RegistrationId>,
        /// 「配信をやめる」 rather than a pause (the wording differs; both can be resumed).
        #[serde(default)]
        end: bool,
    },
    /// Asked to confirm closing these registrations after a loss.
    ConfirmLoss {
        /// The registrations.
        regs: Vec<RegistrationId>,
    },
    /// Asked to confirm erasing all of the reader's data.
    ConfirmErase,
    /// Asked to confirm creating an invitation for these registrations.
    ConfirmInvite {
        /// The registrations.
        regs: Vec<RegistrationId>,
    },
    /// Asked which family member to stop sharing with.
    PickRevoke {
        /// The family readers offered, in the listed order.
        readers: Vec<UserId>,
    },
    /// Asked to confirm ending one family member's sharing.
    ConfirmRevoke {
        /// The family member.
        reader: UserId,
    },
    /// A family member with a valid invitation: asked their nickname.
    JoinNickname {
        /// The invitation (its hash, never the code).
        code_hash: String,
    },
    /// A family member: asked to confirm.
    ConfirmJoin {
        /// The invitation.
        code_hash: String,
        /// Their nickname.
        nickname: String,
    },
}

/// What the user did.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Added the account; `unblocked` when coming back after blocking.
    Follow {
        /// `follow.isUnblocked`.
        unblocked: bool,
    },
    /// Typed (or tapped a button that sends) text.
    Text(String),
    /// A postback: `date` from the date picker.
    Postback {
        /// Postback data.
        data: String,
        /// Picked date (`YYYY-MM-DD`).
        date: Option<String>,
    },
    /// A sticker, image or other non-text message.
    NonText,
    /// Blocked the account.
    Unfollow,
}

/// A registration as the conversation sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrationSummary {
    /// Which registration: effects name the registrations they act on.
    pub id: RegistrationId,
    /// For a 解除 registration, the status an unblock restores.
    pub before_block: Option<RegistrationStatus>,
    /// Stage.
    pub stage: Stage,
    /// Nickname.
    pub nickname: String,
    /// Due date or birthday.
    pub date: NaiveDate,
    /// Status for this reader: a family reader who paused reads it as 停止.
    pub status: RegistrationStatus,
    /// Owner, or a family member it is shared with.
    pub role: ReaderRole,
    /// Closed after a loss: never resumed, never offered anything again.
    pub closed: bool,
    /// How the family tells this child apart.
    pub child_name: Option<String>,
    /// For its owner: the family members it is shared with.
    pub family: Vec<FamilyReader>,
    /// A family reader who stopped their own delivery (their 「配信再開」 undoes only that).
    pub paused: bool,
}

impl RegistrationSummary {
    /// Whether this reader owns it.
    pub fn owned(&self) -> bool {
        self.role == ReaderRole::Owner
    }

    /// As it stands once its reader unblocks: back to the status it had before the block.
    pub fn unblocked(&self) -> Self {
        Self {
            status: self.before_block.unwrap_or(self.status),
            before_block: None,
            ..self.clone()
        }
    }
}

/// What the conversation knows besides its state.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// Today in Asia/Tokyo.
    pub today: NaiveDate,
    /// The user's registrations.
    pub registrations: &'a [RegistrationSummary],
    /// The municipality's words.
    pub info: &'a ServiceInfo,
    /// The invitation the input (or the state) names, looked up by the processor.
    pub invitation: Option<InvitationCheck>,
    /// A fresh random invitation code, used only if this step creates an invitation.
    pub fresh_code: &'a str,
}

/// A change the processor must make, naming the registrations it acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Create an active registration.
    Register {
        /// The pregnancy or child.
        subject: Subject,
        /// How messages address the reader.
        nickname: Nickname,
        /// How the family tells this child apart.
        child_name: Option<Nickname>,
    },
    /// Stop these registrations for this reader (停止; a family reader's own delivery only).
    Stop(Vec<RegistrationId>),
    /// Resume these stopped registrations for this reader; delivery restarts from today.
    Resume(Vec<RegistrationId>),
    /// The children of these pregnancy registrations were born on `birthday`: each becomes
    /// the child's registration (the same row).
    Born {
        /// The pregnancy registrations.
        regs: Vec<RegistrationId>,
        /// The birthday.
        birthday: NaiveDate,
    },
    /// A loss: close these registrations for every reader, for good.
    Loss(Vec<RegistrationId>),
    /// Change a registration (a family reader changes only their own nickname).
    Edit {
        /// The registration.
        reg: RegistrationId,
        /// The change.
        change: Change,
    },
    /// Erase everything about this reader (anonymous counts stay).
    Erase,
    /// Create an invitation (expires in 7 days) to read these registrations.
    Invite {
        /// The registrations.
        regs: Vec<RegistrationId>,
        /// The code shown to the owner; only its hash is stored.
        code: String,
    },
    /// Stop sharing the owner's registrations with this family member.
    Revoke {
        /// The family member.
        reader: UserId,
        /// The owner's registrations they read.
        regs: Vec<RegistrationId>,
    },
    /// Join the registrations of this invitation as a family reader.
    Join {
        /// The invitation.
        code_hash: String,
        /// How messages address the new reader.
        nickname: Nickname,
    },
    /// The reader blocked the account: these registrations become 解除.
    Block(Vec<RegistrationId>),
    /// The reader came back: each registration returns to the status it had before the block.
    Unblock(Vec<(RegistrationId, RegistrationStatus)>),
}

fn ids_with(regs: &[RegistrationSummary], status: &[RegistrationStatus]) -> Vec<RegistrationId> {
    regs.iter()
        .filter(|r| status.contains(&r.status))
        .map(|r| r.id)
        .collect()
}

/// The result of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Next state.
    pub state: State,
    /// Messages to send (at most 5).
    pub replies: Vec<Message>,
    /// A change to make, if any.
    pub effect: Option<Effect>,
}

/// The most registrations one user may hold.
pub const MAX_REGISTRATIONS: usize = 10;

const POSTBACK_DATE: &str = "date";

/// A typed word the conversation understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Word {
    Stage(Stage),
    Yes,
    Fix,
    Cancel,
    FixNickname,
    FixDate,
    Restart,
    Register,
    Show,
    Stop,
    Resume,
    KeepGoing,
    Born,
    Edit,
    Pause,
    End,
    Loss,
    Erase,
    Share,
    Invite,
    Revoke,
    Settings,
    Faq,
    Contact,
    All,
    Skip,
    Number(usize),
}

pub(super) fn normalize(text: &str) -> String {
    let s: String = text.nfkc().collect();
    s.trim()
        .trim_end_matches(['。', '！', '!', '.', '？', '?', '、'])
        .trim()
        .to_owned()
}

fn word(text: &str) -> Option<Word> {
    let w = match normalize(text).as_str() {
        "妊娠中" | "妊娠" | "妊娠しています" | "にんしんちゅう" => {
            Word::Stage(Stage::Pregnancy)
        }
        "子育て中" | "子育て" | "こそだてちゅう" => Word::Stage(Stage::Child),
        "出産しました" | "生まれました" | "産まれました" | "出産" | "赤ちゃんが生まれたら" => {
            Word::Born
        }
        "はい" | "はい、お願いします" | "お願いします" | "ok" | "OK" | "登録する" => {
            Word::Yes
        }
        "修正する" | "修正" | "いいえ" | "直す" => Word::Fix,
        "やめる" | "キャンセル" | "中止" | "やめます" => Word::Cancel,
        "お名前" | "ニックネーム" | "名前" => Word::FixNickname,
        "日付" | "予定日" | "誕生日" | "出産予定日" => Word::FixDate,
        "最初から" | "はじめから" => Word::Restart,
        "追加登録"
        | "登録"
        | "新しく登録"
        | "登録する子を追加"
        | "子どもを追加"
        | "こどもを追加"
        | "子どもの追加" => Word::Register,
        "登録内容" | "確認" | "登録確認" | "登録内容の確認" => Word::Show,
        "変更" | "変更する" | "登録内容の変更" | "登録内容を変更" => Word::Edit,
        "配信停止" | "停止" | "停止する" | "配信を停止" | "止める" => Word::Stop,
        "配信をやめる" | "配信を終える" | "終了" => Word::End,
        "一時停止" | "一時停止・再開" | "配信の一時停止" | "一時停止する" => {
            Word::Pause
        }
        "配信再開" | "再開" | "再開する" | "配信を再開" => Word::Resume,
        "停止しない" | "やめない" | "続ける" | "このまま" => Word::KeepGoing,
        "流産・死産・お子さんを亡くされた方へ"
        | "流産"
        | "死産"
        | "流産しました"
        | "死産しました"
        | "赤ちゃんが亡くなりました"
        | "子どもが亡くなりました"
        | "お子さんを亡くされた方へ" => Word::Loss,
        "データを削除" | "データ削除" | "データを削除する" | "削除する" | "退会" => {
            Word::Erase
        }
        "家族と共有" | "共有" | "家族を招待" | "共有する" => Word::Share,
        "招待コードを作る" | "招待コード" | "招待する" => Word::Invite,
        "共有をやめてもらう" | "共有を解除" | "共有解除" => Word::Revoke,
        "設定" | "設定・その他" | "その他" | "メニュー" => Word::Settings,
        "よくある質問" | "質問" | "faq" | "FAQ" => Word::Faq,
        "お問い合わせ" | "問い合わせ" | "問合せ" | "連絡先" => Word::Contact,
        "すべて" | "全部" | "ぜんぶ" | "全員" => Word::All,
        "なし" | "スキップ" | "つけない" => Word::Skip,
        n => match n.parse::<usize>() {
            Ok(n) if (1..=MAX_REGISTRATIONS).contains(&n) => Word::Number(n),
            _ => return None,
        },
    };
    Some(w)
}

pub(super) fn step_to(state: State, replies: Vec<Message>) -> Step {
    Step {
        state,
        replies,
        effect: None,
    }
}

/// The one note a reader gets on reaching the per-minute reply limit (then silence until the
/// minute passes).
pub fn slow_down(info: &ServiceInfo, today: chrono::NaiveDate) -> Message {
    texts::Texts {
        info,
        today,
        active: 0,
    }
    .slow_down()
}

/// Advances the conversation by one input.
pub fn step(state: &State, input: &Input, ctx: &Context<'_>) -> Step {
    let t = texts::Texts {
        info: ctx.info,
        today: ctx.today,
        active: ctx
            .registrations
            .iter()
            .filter(|r| r.status == RegistrationStatus::Active)
            .count(),
    };
    if let Input::Follow { unblocked } = input {
        return on_follow(*unblocked, ctx, &t);
    }
    if *input == Input::Unfollow {
        // Nobody to answer; whatever was in progress is forgotten. A family reader's block
        // ends only their own delivery (they no longer follow): the owner's registrations stay.
        use RegistrationStatus::{Active, Stopped};
        let owned: Vec<RegistrationSummary> = ctx
            .registrations
            .iter()
            .filter(|r| r.owned())
            .cloned()
            .collect();
        return Step {
            state: State::Idle,
            replies: Vec::new(),
            effect: Some(Effect::Block(ids_with(&owned, &[Active, Stopped]))),
        };
    }
    if let (Input::Text(s), Some(check)) = (input, &ctx.invitation)
        && life::invitation_code(s).is_some()
    {
        return life::on_code(check, ctx, &t);
    }
    if let Input::Postback { data, date } = input {
        if let Some(id) = life::born_postback(data) {
            return life::born_button(id, date.as_deref(), ctx, &t);
        }
        // A tap on the rich menu starts its action, whatever was in progress.
        if let Some(w) = life::menu_word(data) {
            return idle(input, Some(w), ctx, &t);
        }
    }
    let typed = match input {
        Input::Text(s) => word(s),
        _ => None,
    };
    if typed == Some(Word::Cancel) && *state == State::ConfirmStop {
        // 「やめる」 reads as "stop the messages" as much as "never mind": ask which.
        return reask(state, &t, t.stop_hint());
    }
    // In a stop's confirmation 「やめる」 is as ambiguous: `life.rs` asks which.
    if typed == Some(Word::Cancel)
        && *state != State::Idle
        && !matches!(state, State::ConfirmPause { .. })
    {
        return step_to(State::Idle, vec![t.cancelled_in(state)]);
    }
    if let Some(step) = life::step_state(state, input, typed, ctx, &t) {
        return step;
    }
    // Outside the registration questions, 「出産しました」 is the answer 「子育て中」.
    let typed = match (state, typed) {
        (
            State::AskStage | State::AskNickname { .. } | State::AskDate { .. } | State::Fix { .. },
            Some(Word::Born),
        ) => Some(Word::Stage(Stage::Child)),
        (_, other) => other,
    };
    match state {
        State::Idle => idle(input, typed, ctx, &t),
        State::AskStage => match typed {
            Some(Word::Stage(stage)) => start_stage(stage, ctx, &t),
            _ => reask(state, &t, t.stage_hint(matches!(input, Input::NonText))),
        },
        State::AskNickname { stage, keep_date } => match (input, typed) {
            (_, Some(Word::Stage(new))) => ask_nickname(new, None, &t),
            (Input::Text(s), _) => match Nickname::parse(s) {
                Ok(n) => match keep_date {
                    Some(date) => confirm(*stage, n.as_str().to_owned(), *date, &t),
                    None => ask_date(*stage, n.as_str().to_owned(), &t, None),
                },
                Err(e) => reask(state, &t, t.nickname_error(&e)),
            },
            (Input::NonText, _) => reask(state, &t, t.non_text()),
            _ => reask(state, &t, String::new()),
        },
        State::AskDate { stage, nickname } => match (input, typed) {
            (_, Some(Word::Stage(new))) if new != *stage => {
                ask_date(new, nickname.clone(), &t, None)
            }
            _ => match read_date(input, *stage, ctx.today) {
                Some(Ok(date)) if adding(ctx) => step_to(
                    State::AskChildName {
                        stage: *stage,
                        nickname: nickname.clone(),
                        date,
                    },
                    vec![t.ask_child_name(*stage, None)],
                ),
                Some(Ok(date)) => confirm(*stage, nickname.clone(), date, &t),
                Some(Err(e)) => {
                    ask_date(*stage, nickname.clone(), &t, Some(t.date_error(*stage, &e)))
                }
                None if matches!(input, Input::NonText) => {
                    ask_date(*stage, nickname.clone(), &t, Some(t.non_text()))
                }
                None => ask_date(*stage, nickname.clone(), &t, Some(t.date_unreadable())),
            },
        },
        State::Confirm {
            stage,
            nickname,
            date,
        } => match typed {
            Some(Word::Yes) => match check_range(*date, kind(*stage), ctx.today) {
                Ok(date) => complete(*stage, nickname.clone(), date, ctx, &t),
                Err(e) => ask_date(*stage, nickname.clone(), &t, Some(t.date_error(*stage, &e))),
            },
            Some(Word::Fix) => step_to(
                State::Fix {
                    stage: *stage,
                    nickname: nickname.clone(),
                    date: *date,
                },
                vec![t.ask_fix()],
            ),
            _ => match read_date(input, *stage, ctx.today) {
                Some(Ok(new)) => confirm(*stage, nickname.clone(), new, &t),
                _ => reask(state, &t, t.confirm_hint()),
            },
        },
        State::ConfirmStop => match typed {
            Some(Word::Stop) | Some(Word::Yes) => Step {
                state: State::Idle,
                replies: vec![t.stopped()],
                effect: Some(Effect::Stop(ids_with(
                    ctx.registrations,
                    &[RegistrationStatus::Active],
                ))),
            },
            // 「いいえ」 (a fix anywhere else) answers the question: keep the messages.
            Some(Word::KeepGoing) | Some(Word::Fix) => step_to(State::Idle, vec![t.kept_going()]),
            _ => idle(input, typed, ctx, &t),
        },
        State::Fix {
            stage,
            nickname,
            date,
        } => match typed {
            Some(Word::FixNickname) => ask_nickname(*stage, Some(*date), &t),
            Some(Word::FixDate) => ask_date(*stage, nickname.clone(), &t, None),
            Some(Word::Restart) => step_to(State::AskStage, vec![t.ask_stage(None)]),
            Some(Word::Stage(new)) => ask_date(new, nickname.clone(), &t, None),
            Some(Word::Yes) => confirm(*stage, nickname.clone(), *date, &t),
            _ => reask(state, &t, t.fix_hint()),
        },
        // Answered by `life::step_state` before this match.
        _ => idle(input, typed, ctx, &t),
    }
}

pub(super) fn kind(stage: Stage) -> DateKind {
    match stage {
        Stage::Pregnancy => DateKind::DueDate,
        Stage::Child => DateKind::Birthday,
    }
}

pub(super) fn read_date(
    input: &Input,
    stage: Stage,
    today: NaiveDate,
) -> Option<Result<NaiveDate, DateError>> {
    match input {
        Input::Postback {
            data,
            date: Some(d),
        } if data == POSTBACK_DATE => Some(
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| DateError::Unreadable)
                .and_then(|d| check_range(d, kind(stage), today)),
        ),
        Input::Text(s) => match parse_date(s, kind(stage), today) {
            Err(DateError::Unreadable) => None,
            other => Some(other),
        },
        _ => None,
    }
}

fn on_follow(unblocked: bool, ctx: &Context<'_>, t: &texts::Texts<'_>) -> Step {
    if ctx.registrations.is_empty() {
        return step_to(State::AskStage, vec![t.greeting(), t.ask_stage(None)]);
    }
    if !unblocked {
        return step_to(State::Idle, vec![t.welcome_back(ctx.registrations)]);
    }
    // Back after blocking: each registration returns to what it was, and the welcome says so.
    let restored: Vec<RegistrationSummary> = ctx
        .registrations
        .iter()
        .map(RegistrationSummary::unblocked)
        .collect();
    // Only the reader's own: a family reader's registrations are their owner's to restore.
    let unblock = ctx
        .registrations
        .iter()
        .filter(|r| r.owned())
        .filter_map(|r| r.before_block.map(|to| (r.id, to)))
        .collect();
    Step {
        state: State::Idle,
        replies: vec![t.welcome_back(&restored)],
        effect: Some(Effect::Unblock(unblock)),
    }
}

fn idle(input: &Input, typed: Option<Word>, ctx: &Context<'_>, t: &texts::Texts<'_>) -> Step {
    if let Some(step) = typed.and_then(|w| life::idle(w, ctx, t)) {
        return step;
    }
    if ctx.registrations.is_empty() {
        // Never silence: anyone not yet registered is invited to register.
        return match typed {
            Some(Word::Stage(stage)) => ask_nickname(stage, None, t),
            Some(Word::Born) => ask_nickname(Stage::Child, None, t),
            Some(Word::Register) => step_to(State::AskStage, vec![t.ask_stage(None)]),
            _ => step_to(State::AskStage, vec![t.invite(), t.ask_stage(None)]),
        };
    }
    match typed {
        Some(Word::Register) | Some(Word::Stage(_))
            if ctx.registrations.len() >= MAX_REGISTRATIONS =>
        {
            step_to(State::Idle, vec![t.too_many()])
        }
        Some(Word::Register) => step_to(State::AskStage, vec![t.ask_stage(Some(t.add_intro()))]),
        Some(Word::Stage(stage)) => start_stage(stage, ctx, t),
        Some(Word::Cancel) => step_to(State::Idle, vec![t.nothing_to_cancel()]),
        _ => match input {
            Input::NonText => step_to(State::Idle, vec![t.thanks_for_stamp()]),
            _ => step_to(State::Idle, vec![t.help(ctx.registrations)]),
        },
    }
}

/// Whether the reader is adding a registration beside their own.
fn adding(ctx: &Context<'_>) -> bool {
    ctx.registrations.iter().any(RegistrationSummary::owned)
}

/// The stage is chosen: ask the nickname, or, when adding a child, keep the one the reader has.
fn start_stage(stage: Stage, ctx: &Context<'_>, t: &texts::Texts<'_>) -> Step {
    match ctx.registrations.iter().find(|r| r.owned()) {
        Some(own) => ask_date(stage, own.nickname.clone(), t, None),
        None => ask_nickname(stage, None, t),
    }
}

fn ask_nickname(stage: Stage, keep_date: Option<NaiveDate>, t: &texts::Texts<'_>) -> Step {
    step_to(
        State::AskNickname { stage, keep_date },
        vec![t.ask_nickname(stage, None)],
    )
}

pub(super) fn ask_date(
    stage: Stage,
    nickname: String,
    t: &texts::Texts<'_>,
    problem: Option<String>,
) -> Step {
    let msg = t.ask_date(stage, &nickname, problem);
    step_to(State::AskDate { stage, nickname }, vec![msg])
}

fn confirm(stage: Stage, nickname: String, date: NaiveDate, t: &texts::Texts<'_>) -> Step {
    let msg = t.confirm(stage, &nickname, date);
    step_to(
        State::Confirm {
            stage,
            nickname,
            date,
        },
        vec![msg],
    )
}

fn complete(
    stage: Stage,
    nickname: String,
    date: NaiveDate,
    ctx: &Context<'_>,
    t: &texts::Texts<'_>,
) -> Step {
    let first = ctx.registrations.is_empty();
    Step {
        state: State::Idle,
        replies: vec![t.completed(stage, &nickname, date, first)],
        // The nickname was parsed when it was given.
        effect: Some(Effect::Register {
            subject: Subject::new(stage, date),
            nickname: Nickname::from_trusted(nickname),
            child_name: None,
        }),
    }
}

/// Re-asks the current question, with `problem` explaining why when non-empty.
fn reask(state: &State, t: &texts::Texts<'_>, problem: String) -> Step {
    let problem = (!problem.is_empty()).then_some(problem);
    let msg = match state {
        State::Idle => return step_to(State::Idle, vec![]),
        State::AskStage => t.ask_stage(problem),
        State::AskNickname { stage, .. } => t.ask_nickname(*stage, problem),
        State::AskDate { stage, nickname } => t.ask_date(*stage, nickname, problem),
        State::Confirm {
            stage,
            nickname,
            date,
        } => {
            return step_to(
                state.clone(),
                vec![
                    Message::text(problem.unwrap_or_default()),
                    t.confirm(*stage, nickname, *date),
                ],
            );
        }
        State::Fix { .. } => t.ask_fix_with(problem),
        State::ConfirmStop => t.ask_stop(problem),
        // The other questions re-ask themselves (`life.rs`).
        _ => return step_to(state.clone(), Vec::new()),
    };
    step_to(state.clone(), vec![msg])
}

impl Step {
    /// Every quick reply label in the replies.
    pub fn labels(&self) -> Vec<String> {
        self.replies
            .iter()
            .filter_map(|m| match m {
                Message::Text {
                    quick_reply: Some(q),
                    ..
                } => Some(q),
                _ => None,
            })
            .flat_map(|q| q.items.iter())
            .map(|i| match &i.action {
                Action::Message { label, .. }
                | Action::Postback { label, .. }
                | Action::Datetimepicker { label, .. } => label.clone(),
            })
            .collect()
    }
}

/// Why a nickname was refused, for texts.
pub(crate) fn nickname_problem(e: &NicknameError) -> String {
    match e {
        NicknameError::Empty => "お名前がまだ入っていないようです。".into(),
        NicknameError::TooLong(n) => {
            format!(
                "お名前は{}文字まででお願いします（いまは{n}文字です）。",
                crate::domain::NICKNAME_MAX
            )
        }
        NicknameError::Url => "URLやアドレスのような文字はお名前に使えません。".into(),
        NicknameError::ControlCharacters => {
            "改行などの特別な文字はお名前に使えません。1行で入力してください。".into()
        }
    }
}

#[cfg(test)]
mod life_tests;
#[cfg(test)]
mod tests;
