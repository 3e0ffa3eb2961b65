//! The registration conversation, as a pure function: (state, input, context) → (next state,
//! replies, effect). No I/O and no clock inside; the processor applies the effect and sends the
//! replies.

mod texts;

use crate::domain::{
    DateError, DateKind, Nickname, NicknameError, RegistrationId, RegistrationStatus, Stage,
    Subject, check_range, parse_date,
};
use crate::line::{Action, Message};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

pub use texts::ServiceInfo;

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
    /// Status.
    pub status: RegistrationStatus,
}

impl RegistrationSummary {
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
    },
    /// Stop these registrations (停止).
    Stop(Vec<RegistrationId>),
    /// Resume these stopped registrations; delivery restarts from today.
    Resume(Vec<RegistrationId>),
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
enum Word {
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
}

fn normalize(text: &str) -> String {
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
        "子育て中" | "子育て" | "出産しました" | "生まれました" | "こそだてちゅう" => {
            Word::Stage(Stage::Child)
        }
        "はい" | "はい、お願いします" | "お願いします" | "ok" | "OK" | "登録する" => {
            Word::Yes
        }
        "修正する" | "修正" | "いいえ" | "直す" => Word::Fix,
        "やめる" | "キャンセル" | "中止" | "やめます" => Word::Cancel,
        "お名前" | "ニックネーム" | "名前" => Word::FixNickname,
        "日付" | "予定日" | "誕生日" | "出産予定日" => Word::FixDate,
        "最初から" | "はじめから" => Word::Restart,
        "追加登録" | "登録" | "新しく登録" | "登録する子を追加" => {
            Word::Register
        }
        "登録内容" | "確認" | "登録確認" => Word::Show,
        "配信停止" | "停止" | "停止する" | "配信を停止" | "配信をやめる" => {
            Word::Stop
        }
        "配信再開" | "再開" | "再開する" | "配信を再開" => Word::Resume,
        "停止しない" | "やめない" | "続ける" | "このまま" => Word::KeepGoing,
        _ => return None,
    };
    Some(w)
}

fn step_to(state: State, replies: Vec<Message>) -> Step {
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
        // Nobody to answer; whatever was in progress is forgotten.
        use RegistrationStatus::{Active, Stopped};
        return Step {
            state: State::Idle,
            replies: Vec::new(),
            effect: Some(Effect::Block(ids_with(
                ctx.registrations,
                &[Active, Stopped],
            ))),
        };
    }
    let typed = match input {
        Input::Text(s) => word(s),
        _ => None,
    };
    if typed == Some(Word::Cancel) && *state == State::ConfirmStop {
        // 「やめる」 reads as "stop the messages" as much as "never mind": ask which.
        return reask(state, &t, t.stop_hint());
    }
    if typed == Some(Word::Cancel) && *state != State::Idle {
        return step_to(State::Idle, vec![t.cancelled()]);
    }
    match state {
        State::Idle => idle(input, typed, ctx, &t),
        State::AskStage => match typed {
            Some(Word::Stage(stage)) => ask_nickname(stage, None, &t),
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
    }
}

fn kind(stage: Stage) -> DateKind {
    match stage {
        Stage::Pregnancy => DateKind::DueDate,
        Stage::Child => DateKind::Birthday,
    }
}

fn read_date(
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
    let unblock = ctx
        .registrations
        .iter()
        .filter_map(|r| r.before_block.map(|to| (r.id, to)))
        .collect();
    Step {
        state: State::Idle,
        replies: vec![t.welcome_back(&restored)],
        effect: Some(Effect::Unblock(unblock)),
    }
}

fn idle(input: &Input, typed: Option<Word>, ctx: &Context<'_>, t: &texts::Texts<'_>) -> Step {
    if ctx.registrations.is_empty() {
        // Never silence: anyone not yet registered is invited to register.
        return match typed {
            Some(Word::Stage(stage)) => ask_nickname(stage, None, t),
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
        Some(Word::Stage(stage)) => ask_nickname(stage, None, t),
        Some(Word::Show) => step_to(State::Idle, vec![t.list(ctx.registrations)]),
        Some(Word::Stop) => {
            if ctx
                .registrations
                .iter()
                .any(|r| r.status == RegistrationStatus::Active)
            {
                step_to(State::ConfirmStop, vec![t.ask_stop(None)])
            } else {
                step_to(State::Idle, vec![t.nothing_to_stop(ctx.registrations)])
            }
        }
        Some(Word::Resume) => {
            if ctx
                .registrations
                .iter()
                .any(|r| r.status == RegistrationStatus::Stopped)
            {
                Step {
                    state: State::Idle,
                    replies: vec![t.resumed()],
                    effect: Some(Effect::Resume(ids_with(
                        ctx.registrations,
                        &[RegistrationStatus::Stopped],
                    ))),
                }
            } else {
                step_to(State::Idle, vec![t.nothing_to_resume()])
            }
        }
        Some(Word::Cancel) => step_to(State::Idle, vec![t.nothing_to_cancel()]),
        _ => match input {
            Input::NonText => step_to(State::Idle, vec![t.thanks_for_stamp()]),
            _ => step_to(State::Idle, vec![t.help(ctx.registrations)]),
        },
    }
}

fn ask_nickname(stage: Stage, keep_date: Option<NaiveDate>, t: &texts::Texts<'_>) -> Step {
    step_to(
        State::AskNickname { stage, keep_date },
        vec![t.ask_nickname(stage, None)],
    )
}

fn ask_date(stage: Stage, nickname: String, t: &texts::Texts<'_>, problem: Option<String>) -> Step {
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
mod tests;
