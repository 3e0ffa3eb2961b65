//! Life events and settings, reached from the rich menu or by typing: see and change a
//! registration, the birth, pause / resume / end, a loss, erasing one's data, sharing with the
//! family, and the answers to common questions. Each is a short conversation with a
//! confirmation and 「やめる」; like the rest of the conversation, pure.

use super::texts::Texts;
use super::{
    Context, Effect, Input, MAX_REGISTRATIONS, RegistrationSummary, State, Step, Word, kind,
    read_date, step_to,
};
use crate::domain::{
    InvitationCheck, Nickname, RegistrationId, RegistrationStatus, Stage, check_range,
    format_date_ja,
};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

/// A change to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "field", content = "value", rename_all = "snake_case")]
pub enum Change {
    /// The reader's nickname (a family reader's own).
    Nickname(String),
    /// The due date or birthday (owner only).
    Date(NaiveDate),
    /// The child's name (owner only; `None` removes it).
    ChildName(Option<String>),
}

/// What a registration is being picked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pick {
    /// 登録内容の変更.
    Edit,
    /// 出産しました.
    Born,
    /// 一時停止.
    Pause,
    /// 配信をやめる.
    End,
    /// 再開.
    Resume,
    /// The loss path.
    Loss,
    /// 家族と共有 (an invitation).
    Share,
}

impl Pick {
    /// Whether 「すべて」 is offered.
    fn all_allowed(self) -> bool {
        !matches!(self, Pick::Edit)
    }

    /// The registrations this action can act on, for this reader.
    pub(super) fn candidates(
        self,
        regs: &[RegistrationSummary],
        today: NaiveDate,
    ) -> Vec<RegistrationId> {
        use RegistrationStatus::{Active, Stopped};
        regs.iter()
            .filter(|r| !r.closed)
            .filter(|r| match self {
                Pick::Edit | Pick::Loss => true,
                Pick::Born => {
                    r.owned()
                        && r.stage == Stage::Pregnancy
                        && r.status != RegistrationStatus::Completed
                }
                Pick::Pause | Pick::End => r.status == Active,
                // Past the birth reminders a resume would stop again: the birth is asked instead.
                // A family reader resumes only their own pause; the owner's stop is the owner's.
                Pick::Resume if !r.owned() => r.paused,
                Pick::Resume => r.status == Stopped && !overdue(r, today),
                Pick::Share => r.owned() && matches!(r.status, Active | Stopped),
            })
            .map(|r| r.id)
            .collect()
    }
}

/// The last reminder of an unreported birth goes on 44週0日, four weeks after the due date; the
/// delivery stops a pregnancy registration the day after.
const LAST_REMINDER_AFTER_DUE: u64 = 28;

/// A pregnancy past its last birth reminder: nothing is sent to it but the birth's report.
fn overdue(r: &RegistrationSummary, today: NaiveDate) -> bool {
    r.stage == Stage::Pregnancy
        && r.date
            .checked_add_days(chrono::Days::new(LAST_REMINDER_AFTER_DUE))
            .is_some_and(|last| today > last)
}

/// Invitation codes use 32 characters nobody confuses (no 0/O, 1/I): 8 of them, 40 bits.
const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const CODE_LEN: usize = 8;

/// A fresh random invitation code (8 characters; shown as `ABCD-EFGH`).
pub fn new_invitation_code() -> String {
    crate::staff::random_bytes::<CODE_LEN>()
        .iter()
        // 256 is a multiple of 32: no bias.
        .map(|b| CODE_ALPHABET[usize::from(b % 32)] as char)
        .collect()
}

/// The code as it is shown and typed: `ABCD-EFGH`.
pub fn display_code(code: &str) -> String {
    let (a, b) = code.split_at(code.len().min(4));
    format!("{a}-{b}")
}

/// The invitation code in a message, if it is one: `ABCD-EFGH` (any width, any case, spaces
/// around), or any 8 code characters after 「招待」. Returns the canonical 8 characters.
pub fn invitation_code(text: &str) -> Option<String> {
    let s: String = text.nfkc().collect::<String>().to_uppercase();
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let rest = match compact
        .strip_prefix("招待コード")
        .or_else(|| compact.strip_prefix("招待"))
    {
        Some(r) => r.trim_start_matches([':', '：']).to_owned(),
        // Without the word, only the shown form: `ABCD-EFGH`.
        None if compact.len() == CODE_LEN + 1 && compact.as_bytes()[4] == b'-' => compact.clone(),
        None => return None,
    };
    let code: String = rest.chars().filter(|c| *c != '-').collect();
    (code.len() == CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b))).then_some(code)
}

/// What is stored of a code: its SHA-256, hex. Codes are random, so a fast hash is enough.
pub fn invitation_hash(code: &str) -> String {
    format!("{:x}", Sha256::digest(code.as_bytes()))
}

/// The word a rich-menu postback stands for (the menu's actions are the typed words too).
pub(super) fn menu_word(data: &str) -> Option<Word> {
    Some(match data.strip_prefix("menu:")? {
        "register" => Word::Register,
        "show" => Word::Show,
        "born" => Word::Born,
        "add" => Word::Register,
        "pause" => Word::Pause,
        "resume" => Word::Resume,
        "share" => Word::Share,
        "settings" => Word::Settings,
        "faq" => Word::Faq,
        "contact" => Word::Contact,
        _ => return None,
    })
}

/// The registration a 「赤ちゃんが生まれたら」 button of a daily message names.
pub(super) fn born_postback(data: &str) -> Option<RegistrationId> {
    data.strip_prefix("born:")?
        .parse::<i64>()
        .ok()
        .map(RegistrationId::new)
}

fn find<'a>(ctx: &Context<'a>, id: RegistrationId) -> Option<&'a RegistrationSummary> {
    ctx.registrations.iter().find(|r| r.id == id)
}

/// Starts an action: says there is nothing to act on, goes straight on with the one
/// registration, or asks which.
pub(super) fn begin(pick: Pick, ctx: &Context<'_>, t: &Texts<'_>) -> Step {
    let candidates = pick.candidates(ctx.registrations, ctx.today);
    match candidates.as_slice() {
        [] => step_to(State::Idle, vec![t.nothing_for(pick, ctx.registrations)]),
        [one] => picked(pick, vec![*one], ctx, t),
        _ => {
            let offered: Vec<&RegistrationSummary> =
                candidates.iter().filter_map(|id| find(ctx, *id)).collect();
            let msg = t.ask_pick(pick, &offered, None);
            step_to(
                State::Pick {
                    action: pick,
                    candidates,
                },
                vec![msg],
            )
        }
    }
}

/// Goes on with the registrations picked.
fn picked(pick: Pick, regs: Vec<RegistrationId>, ctx: &Context<'_>, t: &Texts<'_>) -> Step {
    let chosen: Vec<&RegistrationSummary> = regs.iter().filter_map(|id| find(ctx, *id)).collect();
    if chosen.is_empty() {
        return step_to(State::Idle, vec![t.nothing_for(pick, ctx.registrations)]);
    }
    match pick {
        Pick::Edit => step_to(
            State::EditWhat { reg: regs[0] },
            vec![t.ask_edit_what(chosen[0], None)],
        ),
        Pick::Born => step_to(
            State::AskBirthday { regs },
            vec![t.ask_birthday(&chosen, None)],
        ),
        Pick::Pause | Pick::End => {
            let end = pick == Pick::End;
            step_to(
                State::ConfirmPause { regs, end },
                vec![t.confirm_pause(&chosen, end, None)],
            )
        }
        // Resuming is harmless and undone in a tap: no confirmation.
        Pick::Resume => Step {
            state: State::Idle,
            replies: vec![t.resumed()],
            effect: Some(Effect::Resume(regs)),
        },
        Pick::Loss => step_to(
            State::ConfirmLoss { regs },
            vec![t.confirm_loss(&chosen, None)],
        ),
        Pick::Share => step_to(
            State::ConfirmInvite { regs },
            vec![t.confirm_invite(&chosen, None)],
        ),
    }
}

/// The words of the idle state this module answers (registered or not).
pub(super) fn idle(word: Word, ctx: &Context<'_>, t: &Texts<'_>) -> Option<Step> {
    let regs = ctx.registrations;
    Some(match word {
        Word::Faq => step_to(State::Idle, vec![t.faq()]),
        Word::Contact => step_to(State::Idle, vec![t.contact()]),
        Word::Settings => step_to(State::Idle, vec![t.settings(regs)]),
        Word::Erase => step_to(State::ConfirmErase, vec![t.confirm_erase(regs, None)]),
        _ if regs.is_empty() => return None,
        Word::Show => step_to(State::Idle, vec![t.show(regs)]),
        Word::Edit => begin(Pick::Edit, ctx, t),
        Word::Born => begin(Pick::Born, ctx, t),
        Word::Stop => begin(Pick::Pause, ctx, t),
        Word::End => begin(Pick::End, ctx, t),
        Word::Pause => {
            if Pick::Pause.candidates(regs, ctx.today).is_empty()
                && !Pick::Resume.candidates(regs, ctx.today).is_empty()
            {
                begin(Pick::Resume, ctx, t)
            } else {
                begin(Pick::Pause, ctx, t)
            }
        }
        Word::Resume
            if Pick::Resume.candidates(regs, ctx.today).is_empty()
                && regs.iter().any(|r| {
                    r.owned()
                        && !r.closed
                        && r.status == RegistrationStatus::Stopped
                        && overdue(r, ctx.today)
                }) =>
        {
            step_to(State::Idle, vec![t.overdue_resume()])
        }
        Word::Resume => begin(Pick::Resume, ctx, t),
        Word::Loss => begin(Pick::Loss, ctx, t),
        Word::Share => step_to(State::Idle, vec![t.share_overview(regs)]),
        Word::Invite => begin(Pick::Share, ctx, t),
        Word::Revoke => revoke(ctx, t),
        _ => return None,
    })
}

/// The family members of the reader's own registrations, each once.
fn family_of(regs: &[RegistrationSummary]) -> Vec<&super::FamilyReader> {
    let mut seen: Vec<&super::FamilyReader> = Vec::new();
    for f in regs.iter().filter(|r| r.owned()).flat_map(|r| &r.family) {
        if !seen.iter().any(|s| s.user == f.user) {
            seen.push(f);
        }
    }
    seen
}

fn revoke(ctx: &Context<'_>, t: &Texts<'_>) -> Step {
    let family = family_of(ctx.registrations);
    match family.as_slice() {
        [] => step_to(State::Idle, vec![t.share_overview(ctx.registrations)]),
        [one] => step_to(
            State::ConfirmRevoke { reader: one.user },
            vec![t.confirm_revoke(&one.nickname, None)],
        ),
        _ => step_to(
            State::PickRevoke {
                readers: family.iter().map(|f| f.user).collect(),
            },
            vec![t.ask_revoke(&family, None)],
        ),
    }
}

/// A code typed (or sent from a LINE link) by someone invited.
pub(super) fn on_code(check: &InvitationCheck, ctx: &Context<'_>, t: &Texts<'_>) -> Step {
    match check {
        InvitationCheck::Valid { own: true, .. } => step_to(State::Idle, vec![t.own_code()]),
        InvitationCheck::Valid { already: true, .. } => {
            step_to(State::Idle, vec![t.already_shared()])
        }
        InvitationCheck::Valid {
            code_hash, owner, ..
        } => {
            if ctx.registrations.len() >= MAX_REGISTRATIONS {
                return step_to(State::Idle, vec![t.too_many()]);
            }
            step_to(
                State::JoinNickname {
                    code_hash: code_hash.clone(),
                },
                vec![t.ask_join_nickname(owner, None)],
            )
        }
        other => step_to(State::Idle, vec![t.code_problem(other)]),
    }
}

/// A 「赤ちゃんが生まれたら」 date picked in a daily message: straight to the confirmation.
pub(super) fn born_button(
    id: RegistrationId,
    date: Option<&str>,
    ctx: &Context<'_>,
    t: &Texts<'_>,
) -> Step {
    if !Pick::Born
        .candidates(ctx.registrations, ctx.today)
        .contains(&id)
    {
        // Already reported, closed, someone else's, or a stale button: say where things stand.
        return step_to(
            State::Idle,
            vec![t.nothing_for(Pick::Born, ctx.registrations)],
        );
    }
    let regs = vec![id];
    let chosen: Vec<&RegistrationSummary> = find(ctx, id).into_iter().collect();
    let input = Input::Postback {
        data: super::POSTBACK_DATE.into(),
        date: date.map(str::to_owned),
    };
    match read_date(&input, Stage::Child, ctx.today) {
        Some(Ok(date)) => step_to(
            State::ConfirmBirth { regs, date },
            vec![t.confirm_birth(&chosen, date, None)],
        ),
        Some(Err(e)) => {
            let p = t.date_error(Stage::Child, &e);
            step_to(
                State::AskBirthday { regs },
                vec![t.ask_birthday(&chosen, Some(p))],
            )
        }
        None => step_to(
            State::AskBirthday { regs },
            vec![t.ask_birthday(&chosen, None)],
        ),
    }
}

/// The states of this module. `None` for a state that is not one of them.
pub(super) fn step_state(
    state: &State,
    input: &Input,
    typed: Option<Word>,
    ctx: &Context<'_>,
    t: &Texts<'_>,
) -> Option<Step> {
    let chosen = |ids: &[RegistrationId]| -> Vec<&RegistrationSummary> {
        ids.iter().filter_map(|id| find(ctx, *id)).collect()
    };
    let yes = matches!(typed, Some(Word::Yes));
    Some(match state {
        State::Pick { action, candidates } => match typed {
            Some(Word::Number(n)) if n <= candidates.len() => {
                picked(*action, vec![candidates[n - 1]], ctx, t)
            }
            Some(Word::All) if action.all_allowed() => picked(*action, candidates.clone(), ctx, t),
            _ => {
                let offered = chosen(candidates);
                step_to(
                    state.clone(),
                    vec![t.ask_pick(*action, &offered, Some(t.pick_hint(action.all_allowed())))],
                )
            }
        },
        State::EditWhat { reg } => {
            let Some(r) = find(ctx, *reg) else {
                return Some(gone(t));
            };
            let field = match typed {
                Some(Word::FixNickname) => Some(Change::Nickname(String::new())),
                Some(Word::FixDate) if r.owned() => Some(Change::Date(ctx.today)),
                _ if r.owned() && is_child_name_word(input) => Some(Change::ChildName(None)),
                _ => None,
            };
            match field {
                Some(field) => {
                    let msg = t.ask_edit_value(r, &field, None);
                    step_to(State::EditValue { reg: *reg, field }, vec![msg])
                }
                None => step_to(state.clone(), vec![t.ask_edit_what(r, Some(t.edit_hint()))]),
            }
        }
        State::EditValue { reg, field } => {
            let Some(r) = find(ctx, *reg) else {
                return Some(gone(t));
            };
            let retry =
                |p: String| step_to(state.clone(), vec![t.ask_edit_value(r, field, Some(p))]);
            let change = match (field, input) {
                (Change::Nickname(_), Input::Text(s)) => match Nickname::parse(s) {
                    Ok(n) => Change::Nickname(n.as_str().to_owned()),
                    Err(e) => return Some(retry(t.nickname_error(&e))),
                },
                (Change::ChildName(_), Input::Text(_)) if typed == Some(Word::Skip) => {
                    Change::ChildName(None)
                }
                (Change::ChildName(_), Input::Text(s)) => match Nickname::parse(s) {
                    Ok(n) => Change::ChildName(Some(n.as_str().to_owned())),
                    Err(e) => return Some(retry(t.nickname_error(&e))),
                },
                (Change::Date(_), _) => match read_date(input, r.stage, ctx.today) {
                    Some(Ok(d)) => Change::Date(d),
                    Some(Err(e)) => return Some(retry(t.date_error(r.stage, &e))),
                    None => return Some(retry(t.date_unreadable())),
                },
                _ => return Some(retry(t.non_text())),
            };
            let msg = t.confirm_edit(r, &change, None);
            step_to(State::ConfirmEdit { reg: *reg, change }, vec![msg])
        }
        State::ConfirmEdit { reg, change } => {
            let Some(r) = find(ctx, *reg) else {
                return Some(gone(t));
            };
            if !yes {
                return Some(step_to(
                    state.clone(),
                    vec![t.confirm_edit(r, change, Some(t.yes_hint()))],
                ));
            }
            if let Change::Date(d) = change {
                // The range moves with the days: checked again when confirmed.
                if let Err(e) = check_range(*d, kind(r.stage), ctx.today) {
                    let field = change.clone();
                    return Some(step_to(
                        State::EditValue { reg: *reg, field },
                        vec![t.ask_edit_value(r, change, Some(t.date_error(r.stage, &e)))],
                    ));
                }
            }
            Step {
                state: State::Idle,
                replies: vec![t.edited(r, change)],
                effect: Some(Effect::Edit {
                    reg: *reg,
                    change: change.clone(),
                }),
            }
        }
        State::AskBirthday { regs } => {
            let c = chosen(regs);
            match relative_day(input, ctx.today)
                .map(Ok)
                .or_else(|| read_date(input, Stage::Child, ctx.today))
            {
                Some(Ok(date)) => step_to(
                    State::ConfirmBirth {
                        regs: regs.clone(),
                        date,
                    },
                    vec![t.confirm_birth(&c, date, None)],
                ),
                Some(Err(e)) => step_to(
                    state.clone(),
                    vec![t.ask_birthday(&c, Some(t.date_error(Stage::Child, &e)))],
                ),
                None => step_to(
                    state.clone(),
                    vec![t.ask_birthday(&c, Some(t.date_unreadable()))],
                ),
            }
        }
        State::ConfirmBirth { regs, date } => {
            let c = chosen(regs);
            if !yes {
                return Some(step_to(
                    state.clone(),
                    vec![t.confirm_birth(&c, *date, Some(t.yes_hint()))],
                ));
            }
            // Only what is still a pregnancy of this reader's.
            let still: Vec<RegistrationId> = Pick::Born
                .candidates(ctx.registrations, ctx.today)
                .into_iter()
                .filter(|id| regs.contains(id))
                .collect();
            match check_range(*date, kind(Stage::Child), ctx.today) {
                _ if still.is_empty() => gone(t),
                Ok(date) => Step {
                    state: State::Idle,
                    replies: vec![t.born(&c, date)],
                    effect: Some(Effect::Born {
                        regs: still,
                        birthday: date,
                    }),
                },
                Err(e) => step_to(
                    State::AskBirthday { regs: regs.clone() },
                    vec![t.ask_birthday(&c, Some(t.date_error(Stage::Child, &e)))],
                ),
            }
        }
        State::ConfirmPause { regs, end } => {
            let c = chosen(regs);
            match typed {
                Some(Word::Yes | Word::Stop | Word::End | Word::Pause) => Step {
                    state: State::Idle,
                    replies: vec![t.paused(&c, *end)],
                    effect: Some(Effect::Stop(regs.clone())),
                },
                Some(Word::KeepGoing | Word::Fix) => step_to(State::Idle, vec![t.kept_going()]),
                _ => step_to(
                    state.clone(),
                    vec![t.confirm_pause(&c, *end, Some(t.pause_hint(*end)))],
                ),
            }
        }
        State::ConfirmLoss { regs } => {
            let c = chosen(regs);
            if yes || typed == Some(Word::Stop) {
                Step {
                    state: State::Idle,
                    replies: vec![t.loss_done()],
                    effect: Some(Effect::Loss(regs.clone())),
                }
            } else {
                step_to(state.clone(), vec![t.confirm_loss(&c, Some(t.loss_hint()))])
            }
        }
        State::ConfirmErase => {
            if yes || typed == Some(Word::Erase) {
                Step {
                    state: State::Idle,
                    replies: vec![t.erased()],
                    effect: Some(Effect::Erase),
                }
            } else {
                step_to(
                    state.clone(),
                    vec![t.confirm_erase(ctx.registrations, Some(t.erase_hint()))],
                )
            }
        }
        State::ConfirmInvite { regs } => {
            let c = chosen(regs);
            if !(yes || typed == Some(Word::Invite)) {
                return Some(step_to(
                    state.clone(),
                    vec![t.confirm_invite(&c, Some(t.yes_hint()))],
                ));
            }
            let code = ctx.fresh_code.to_owned();
            Step {
                state: State::Idle,
                replies: t.invitation(&c, &display_code(&code)),
                effect: Some(Effect::Invite {
                    regs: regs.clone(),
                    code,
                }),
            }
        }
        State::PickRevoke { readers } => {
            let family = family_of(ctx.registrations);
            let offered: Vec<&super::FamilyReader> = readers
                .iter()
                .filter_map(|u| family.iter().find(|f| f.user == *u).copied())
                .collect();
            match typed {
                Some(Word::Number(n)) if n <= offered.len() => {
                    let f = offered[n - 1];
                    step_to(
                        State::ConfirmRevoke { reader: f.user },
                        vec![t.confirm_revoke(&f.nickname, None)],
                    )
                }
                _ => step_to(
                    state.clone(),
                    vec![t.ask_revoke(&offered, Some(t.pick_hint(false)))],
                ),
            }
        }
        State::ConfirmRevoke { reader } => {
            let regs: Vec<RegistrationId> = ctx
                .registrations
                .iter()
                .filter(|r| r.owned() && r.family.iter().any(|f| f.user == *reader))
                .map(|r| r.id)
                .collect();
            let name = ctx
                .registrations
                .iter()
                .flat_map(|r| &r.family)
                .find(|f| f.user == *reader)
                .map(|f| f.nickname.clone());
            match (name, yes || typed == Some(Word::Revoke)) {
                (None, _) => gone(t),
                (Some(name), true) => Step {
                    state: State::Idle,
                    replies: vec![t.revoked(&name)],
                    effect: Some(Effect::Revoke {
                        reader: *reader,
                        regs,
                    }),
                },
                (Some(name), false) => step_to(
                    state.clone(),
                    vec![t.confirm_revoke(&name, Some(t.yes_hint()))],
                ),
            }
        }
        State::JoinNickname { code_hash } => {
            let owner = match invited_by(ctx, code_hash) {
                Ok(owner) => owner,
                Err(problem) => return Some(step_to(State::Idle, vec![t.code_problem(&problem)])),
            };
            match input {
                Input::Text(s) => match Nickname::parse(s) {
                    Ok(n) => step_to(
                        State::ConfirmJoin {
                            code_hash: code_hash.clone(),
                            nickname: n.as_str().to_owned(),
                        },
                        vec![t.confirm_join(&owner, n.as_str(), None)],
                    ),
                    Err(e) => step_to(
                        state.clone(),
                        vec![t.ask_join_nickname(&owner, Some(t.nickname_error(&e)))],
                    ),
                },
                _ => step_to(
                    state.clone(),
                    vec![t.ask_join_nickname(&owner, Some(t.non_text()))],
                ),
            }
        }
        State::ConfirmJoin {
            code_hash,
            nickname,
        } => {
            let owner = match invited_by(ctx, code_hash) {
                Ok(owner) => owner,
                Err(problem) => return Some(step_to(State::Idle, vec![t.code_problem(&problem)])),
            };
            if typed == Some(Word::Fix) {
                return Some(step_to(
                    State::JoinNickname {
                        code_hash: code_hash.clone(),
                    },
                    vec![t.ask_join_nickname(&owner, None)],
                ));
            }
            if !yes {
                return Some(step_to(
                    state.clone(),
                    vec![t.confirm_join(&owner, nickname, Some(t.confirm_hint()))],
                ));
            }
            Step {
                state: State::Idle,
                replies: vec![t.joined(&owner, nickname)],
                // Parsed when it was given.
                effect: Some(Effect::Join {
                    code_hash: code_hash.clone(),
                    nickname: Nickname::from_trusted(nickname.clone()),
                }),
            }
        }
        State::AskChildName {
            stage,
            nickname,
            date,
        } => {
            let child_name = match (input, typed) {
                (_, Some(Word::Skip)) => None,
                (Input::Text(s), _) => match Nickname::parse(s) {
                    Ok(n) => Some(n.as_str().to_owned()),
                    Err(e) => {
                        return Some(step_to(
                            state.clone(),
                            vec![t.ask_child_name(*stage, Some(t.nickname_error(&e)))],
                        ));
                    }
                },
                _ => {
                    return Some(step_to(
                        state.clone(),
                        vec![t.ask_child_name(*stage, Some(t.non_text()))],
                    ));
                }
            };
            let msg = t.confirm_child(*stage, *date, child_name.as_deref(), None);
            step_to(
                State::ConfirmChild {
                    stage: *stage,
                    nickname: nickname.clone(),
                    date: *date,
                    child_name,
                },
                vec![msg],
            )
        }
        State::ConfirmChild {
            stage,
            nickname,
            date,
            child_name,
        } => match typed {
            Some(Word::Yes) => match check_range(*date, kind(*stage), ctx.today) {
                Ok(date) => Step {
                    state: State::Idle,
                    replies: {
                        let mut r = vec![t.completed(*stage, nickname, date, false)];
                        // The others without a name would stay 「1人目」 in grouped pushes.
                        if ctx
                            .registrations
                            .iter()
                            .any(|r| r.owned() && !r.closed && r.child_name.is_none())
                        {
                            r.push(t.name_the_others());
                        }
                        r
                    },
                    effect: Some(Effect::Register {
                        subject: crate::domain::Subject::new(*stage, date),
                        nickname: Nickname::from_trusted(nickname.clone()),
                        child_name: child_name.clone().map(Nickname::from_trusted),
                    }),
                },
                Err(e) => {
                    super::ask_date(*stage, nickname.clone(), t, Some(t.date_error(*stage, &e)))
                }
            },
            Some(Word::Fix) => step_to(State::AskStage, vec![t.ask_stage(Some(t.add_intro()))]),
            _ => step_to(
                state.clone(),
                vec![t.confirm_child(*stage, *date, child_name.as_deref(), Some(t.confirm_hint()))],
            ),
        },
        _ => return None,
    })
}

/// 「今日」 and 「昨日」, the answers the birthday question offers as buttons.
fn relative_day(input: &Input, today: NaiveDate) -> Option<NaiveDate> {
    match input {
        Input::Text(s) => match super::normalize(s).as_str() {
            "今日" | "きょう" | "本日" => Some(today),
            "昨日" | "きのう" => today.pred_opt(),
            _ => None,
        },
        _ => None,
    }
}

fn is_child_name_word(input: &Input) -> bool {
    matches!(input, Input::Text(s) if matches!(super::normalize(s).as_str(), "呼び名" | "お子さんの呼び名" | "子どもの呼び名"))
}

/// The owner of the invitation a joining reader is answering, if it is still valid for them
/// (the processor looked it up again for this step); else what is wrong with it.
fn invited_by(ctx: &Context<'_>, code_hash: &str) -> Result<String, InvitationCheck> {
    match &ctx.invitation {
        Some(InvitationCheck::Valid {
            owner,
            code_hash: h,
            ..
        }) if h == code_hash => Ok(owner.clone()),
        Some(other) => Err(other.clone()),
        None => Err(InvitationCheck::Unknown),
    }
}

/// The registration went away meanwhile (erased, revoked, already changed).
fn gone(t: &Texts<'_>) -> Step {
    step_to(State::Idle, vec![t.gone()])
}

/// The label of a registration in a list or a button: the child's name if the family gave one,
/// else the reader's nickname, with its date.
pub(super) fn short_label(r: &RegistrationSummary) -> String {
    let who = match &r.child_name {
        Some(c) => c.clone(),
        None => format!("{}さん", r.nickname),
    };
    let date = match r.stage {
        Stage::Pregnancy => format!("予定日{}", r.date.format("%-m/%-d")),
        Stage::Child => format!("{}生まれ", r.date.format("%-m/%-d")),
    };
    format!("{who}（{date}）")
}

/// The longer description of a registration.
pub(super) fn long_label(r: &RegistrationSummary) -> String {
    let who = match &r.child_name {
        Some(c) => format!("{c}（{}さん）", r.nickname),
        None => format!("{}さん", r.nickname),
    };
    format!(
        "{who}／{}：{}",
        r.stage.date_label(),
        format_date_ja(r.date)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_in_their_shown_form_or_after_the_word() {
        assert_eq!(invitation_code("ABCD-EFGH").as_deref(), Some("ABCDEFGH"));
        assert_eq!(invitation_code(" abcd-efgh ").as_deref(), Some("ABCDEFGH"));
        assert_eq!(
            invitation_code("ＡＢＣＤ－ＥＦＧＨ").as_deref(),
            Some("ABCDEFGH")
        );
        assert_eq!(
            invitation_code("招待コード ABCD-EFGH").as_deref(),
            Some("ABCDEFGH")
        );
        assert_eq!(
            invitation_code("招待 abcdefgh").as_deref(),
            Some("ABCDEFGH")
        );
        // A nickname of 8 letters is not a code; nor are confusable characters.
        assert_eq!(invitation_code("hanakoab"), None);
        assert_eq!(invitation_code("ABCD-EFG0"), None);
        assert_eq!(invitation_code("ABCD-EFGHJ"), None);
        assert_eq!(invitation_code("招待 ABC"), None);
    }

    #[test]
    fn fresh_codes_are_codes_and_differ() {
        let a = new_invitation_code();
        let b = new_invitation_code();
        assert_eq!(invitation_code(&display_code(&a)), Some(a.clone()));
        assert_ne!(a, b);
        assert_eq!(invitation_hash(&a).len(), 64);
    }

    #[test]
    fn fresh_codes_use_the_whole_alphabet() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.extend(new_invitation_code().chars());
        }
        // 1,600 draws from 32 characters: all of them, short of a one-in-10^9 chance.
        assert!(seen.len() >= 30, "{}", seen.len());
    }

    #[test]
    fn every_menu_postback_is_a_word() {
        for (data, w) in [
            ("menu:register", Word::Register),
            ("menu:show", Word::Show),
            ("menu:born", Word::Born),
            ("menu:add", Word::Register),
            ("menu:pause", Word::Pause),
            ("menu:resume", Word::Resume),
            ("menu:share", Word::Share),
            ("menu:settings", Word::Settings),
            ("menu:faq", Word::Faq),
            ("menu:contact", Word::Contact),
        ] {
            assert_eq!(menu_word(data), Some(w), "{data}");
        }
        // The rich menu check accepts exactly the postbacks answered here.
        for data in crate::richmenu::definition::MENU_ACTIONS {
            assert!(menu_word(data).is_some(), "{data} has no answer");
        }
        assert_eq!(crate::richmenu::definition::MENU_ACTIONS.len(), 10);
    }

    #[test]
    fn menu_postbacks_are_words() {
        assert_eq!(menu_word("menu:born"), Some(Word::Born));
        assert_eq!(menu_word("menu:nope"), None);
        assert_eq!(menu_word("born:3"), None);
        assert_eq!(born_postback("born:42"), Some(RegistrationId::new(42)));
        assert_eq!(born_postback("born:x"), None);
    }
}
