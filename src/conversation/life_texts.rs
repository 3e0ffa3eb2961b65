//! The words of the life events and settings (`life.rs`): warm, polite, short enough for a
//! phone. Nothing here asks a family to explain a loss.

use super::life::{Pick, long_label, short_label};
use super::texts::Texts;
use super::{Change, FamilyReader, RegistrationSummary};
use crate::domain::InvitationCheck;
use crate::domain::{ChildAge, RegistrationStatus, Stage, format_date_ja};
use crate::line::{Action, Message};
use chrono::{Days, NaiveDate};

fn cancel() -> Action {
    Action::say("やめる")
}

fn with_problem(problem: Option<String>, text: String) -> String {
    match problem {
        Some(p) => format!("{p}\n\n{text}"),
        None => text,
    }
}

fn lines(regs: &[&RegistrationSummary]) -> String {
    regs.iter()
        .map(|r| format!("・{}", long_label(r)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A quick-reply button that sends `text` under a longer `label` (cut to LINE's 20).
fn button(label: &str, text: &str) -> Action {
    Action::Message {
        label: label.chars().take(20).collect(),
        text: text.into(),
    }
}

/// A numbered list (`1. …` a line, with each item's long text) and a button per item (its short
/// text) that sends the number, so typing the number is the same as tapping.
fn numbered(items: impl Iterator<Item = (String, String)>) -> (String, Vec<Action>) {
    let mut list = Vec::new();
    let mut actions = Vec::new();
    for (i, (long, short)) in items.enumerate() {
        let n = (i + 1).to_string();
        list.push(format!("{n}. {long}"));
        actions.push(button(&format!("{n}. {short}"), &n));
    }
    (list.join("\n"), actions)
}

/// The menu's actions, as quick replies for a reader who types.
pub(super) const SETTINGS: [&str; 8] = [
    "登録内容",
    "一時停止・再開",
    "家族と共有",
    "配信をやめる",
    "流産・死産・お子さんを亡くされた方へ",
    "データを削除",
    "よくある質問",
    "お問い合わせ",
];

impl Texts<'_> {
    pub fn nothing_for(&self, pick: Pick, regs: &[RegistrationSummary]) -> Message {
        let text = match pick {
            Pick::Born
                if regs
                    .iter()
                    .any(|r| r.stage == Stage::Pregnancy && !r.owned()) =>
            {
                "ご出産のお知らせは、登録したご本人からお願いします。".to_owned()
            }
            Pick::Born => {
                "妊娠中のご登録はありません。お子さんの登録は「子どもを追加」からできます。"
                    .to_owned()
            }
            Pick::Pause | Pick::End if Pick::Resume.candidates(regs, self.today).is_empty() => {
                "いま配信中の登録はありません。".to_owned()
            }
            Pick::Pause | Pick::End => {
                "いま配信中の登録はありません。再開するときは「配信再開」と送ってください。"
                    .to_owned()
            }
            Pick::Resume
                if regs
                    .iter()
                    .any(|r| !r.owned() && !r.closed && r.status == RegistrationStatus::Stopped) =>
            {
                "共有しているご登録は、登録したご家族が配信を止めています。再開は、そのご家族からお願いします。".to_owned()
            }
            Pick::Resume => "いま再開できるご登録はありません。".to_owned(),
            Pick::Share => {
                "共有できるご登録はありません。招待コードは、登録したご本人が作れます。".to_owned()
            }
            Pick::Edit | Pick::Loss => "変更できるご登録はありません。".to_owned(),
        };
        Message::text(text)
    }

    pub fn ask_pick(
        &self,
        pick: Pick,
        offered: &[&RegistrationSummary],
        problem: Option<String>,
    ) -> Message {
        let question = match pick {
            Pick::Edit => "どのご登録を変更しますか？",
            Pick::Born => {
                "どのご登録のお子さんが生まれましたか？ふたごのときは「すべて」を選んでください。"
            }
            Pick::Pause => "どのご登録の配信を一時停止しますか？",
            Pick::End => "どのご登録の配信をやめますか？",
            Pick::Resume => "どのご登録の配信を再開しますか？",
            Pick::Loss => "どのご登録のメッセージを止めますか？",
            Pick::Share => "どのご登録をご家族と共有しますか？",
        };
        let (list, mut actions) = numbered(offered.iter().map(|r| (long_label(r), short_label(r))));
        if pick != Pick::Edit {
            actions.push(Action::say("すべて"));
        }
        actions.push(cancel());
        Message::text_with_quick_reply(
            with_problem(
                problem,
                format!("{question}\n\n{list}\n\n番号で選んでください。"),
            ),
            actions,
        )
    }

    /// A resume asked for a pregnancy well past its due date: its messages are over; the
    /// birth's report starts the child's.
    pub fn overdue_resume(&self) -> Message {
        Message::text_with_quick_reply(
            "出産予定日から4週間以上たったため、妊娠中のメッセージは終わっています。\n赤ちゃんが生まれていたら「出産しました」からお知らせください。この登録のまま、赤ちゃんの成長に合わせたメッセージをお届けします。",
            vec![Action::say("出産しました"), cancel()],
        )
    }

    pub fn pick_hint(&self, all: bool) -> String {
        if all {
            "下のボタンから番号か「すべて」を選んでください。".into()
        } else {
            "下のボタンから番号を選んでください。".into()
        }
    }

    pub fn yes_hint(&self) -> String {
        "「はい」か「やめる」を選んでください。".into()
    }

    pub fn ask_edit_what(&self, r: &RegistrationSummary, problem: Option<String>) -> Message {
        let mut actions = vec![Action::say("お名前")];
        if r.owned() {
            actions.push(Action::say(r.stage.date_label()));
            actions.push(Action::say("お子さんの呼び名"));
        }
        actions.push(cancel());
        let own = if r.owned() {
            String::new()
        } else {
            "\n（ご家族として共有しているご登録では、お名前だけ変えられます）".into()
        };
        Message::text_with_quick_reply(
            with_problem(
                problem,
                format!("{}\n\nどれを変更しますか？{own}", long_label(r)),
            ),
            actions,
        )
    }

    pub fn edit_hint(&self) -> String {
        "下のボタンから、変更するところを選んでください。".into()
    }

    pub fn ask_edit_value(
        &self,
        r: &RegistrationSummary,
        field: &Change,
        problem: Option<String>,
    ) -> Message {
        match field {
            Change::Date(_) => self.ask_date(r.stage, &r.nickname, problem),
            Change::Nickname(_) => Message::text_with_quick_reply(
                with_problem(problem, "新しいお名前（ニックネーム）を教えてください（20文字まで）。".into()),
                vec![cancel()],
            ),
            Change::ChildName(_) => Message::text_with_quick_reply(
                with_problem(
                    problem,
                    "お子さんの呼び名を教えてください（例：はる、上の子）。ふたごやごきょうだいのメッセージを見分けるのに使います。つけないときは「なし」と送ってください。".into(),
                ),
                vec![Action::say("なし"), cancel()],
            ),
        }
    }

    fn change_line(&self, r: &RegistrationSummary, change: &Change) -> String {
        match change {
            Change::Nickname(n) => format!("お名前：{}さん → {n}さん", r.nickname),
            Change::Date(d) => format!(
                "{}：{} → {}",
                r.stage.date_label(),
                format_date_ja(r.date),
                format_date_ja(*d)
            ),
            Change::ChildName(c) => format!(
                "お子さんの呼び名：{} → {}",
                r.child_name.as_deref().unwrap_or("なし"),
                c.as_deref().unwrap_or("なし")
            ),
        }
    }

    pub fn confirm_edit(
        &self,
        r: &RegistrationSummary,
        change: &Change,
        problem: Option<String>,
    ) -> Message {
        Message::text_with_quick_reply(
            with_problem(
                problem,
                format!(
                    "次のように変更します。よろしいですか？\n\n{}",
                    self.change_line(r, change)
                ),
            ),
            vec![Action::say("はい"), cancel()],
        )
    }

    pub fn edited(&self, r: &RegistrationSummary, change: &Change) -> Message {
        Message::text(format!("変更しました。\n{}", self.change_line(r, change)))
    }

    pub fn ask_birthday(&self, regs: &[&RegistrationSummary], problem: Option<String>) -> Message {
        let range = crate::domain::DateKind::Birthday.range(self.today);
        let min = regs
            .iter()
            .map(|r| r.date.checked_sub_days(Days::new(154)).unwrap_or(r.date))
            .min()
            .unwrap_or(range.min)
            .max(range.min);
        Message::text_with_quick_reply(
            with_problem(
                problem,
                "おめでとうございます。\nお生まれになった日を教えてください。「日付を選ぶ」から選ぶか、「今日」「2027年3月15日」のように送ってください。".into(),
            ),
            vec![
                Action::say("今日"),
                Action::say("昨日"),
                Action::Datetimepicker {
                    label: "日付を選ぶ".into(),
                    data: super::POSTBACK_DATE.into(),
                    mode: "date".into(),
                    initial: Some(self.today.to_string()),
                    max: Some(self.today.to_string()),
                    min: Some(min.to_string()),
                },
                cancel(),
            ],
        )
    }

    pub fn confirm_birth(
        &self,
        regs: &[&RegistrationSummary],
        date: NaiveDate,
        problem: Option<String>,
    ) -> Message {
        Message::text_with_quick_reply(
            with_problem(
                problem,
                format!(
                    "{}にお生まれになったのですね。\n\n{}\n\nこのご登録を、妊娠中のメッセージから、お子さんの成長に合わせたメッセージに切り替えます。よろしいですか？",
                    format_date_ja(date),
                    lines(regs)
                ),
            ),
            vec![Action::say("はい"), cancel()],
        )
    }

    pub fn born(&self, regs: &[&RegistrationSummary], date: NaiveDate) -> Message {
        let name = regs
            .first()
            .map(|r| r.nickname.as_str())
            .unwrap_or_default();
        let age = ChildAge::on(date, self.today);
        let today = if age.days == 0 {
            "今日がお生まれになった日ですね。".to_owned()
        } else {
            format!("お子さんは今日で{}です。", age.day_label())
        };
        Message::text(format!(
            "{name}さん、ご出産おめでとうございます。\n{today}\n\nこれからは、お子さんの成長に合わせたメッセージをお届けします。妊娠中のメッセージはもう届きません。\n\n出生届は生まれた日を含めて14日以内に、児童手当は15日以内の申請をお願いします。わからないことは{}へどうぞ。",
            self.info.contact
        ))
    }

    pub fn confirm_pause(
        &self,
        regs: &[&RegistrationSummary],
        end: bool,
        problem: Option<String>,
    ) -> Message {
        let (what, yes) = if end {
            ("配信をやめますか？", "配信をやめる")
        } else {
            ("配信を一時停止しますか？", "停止する")
        };
        Message::text_with_quick_reply(
            with_problem(
                problem,
                format!(
                    "{}\n\n{}\n\n登録内容は残るので、「配信再開」と送ればいつでも再開できます。",
                    what,
                    lines(regs)
                ),
            ),
            vec![button(yes, "はい"), Action::say("停止しない")],
        )
    }

    /// 「やめる」 could mean either answer here: ask which.
    pub fn pause_hint(&self, end: bool) -> String {
        if end {
            "「配信をやめる」か「停止しない」のどちらかを選んでください。".into()
        } else {
            "「停止する」か「停止しない」のどちらかを選んでください。".into()
        }
    }

    pub fn paused(&self, regs: &[&RegistrationSummary], end: bool) -> Message {
        let shared = regs.iter().any(|r| !r.owned());
        let family = if shared {
            "\n（ご家族として共有しているご登録は、あなたへの配信だけが止まります）"
        } else {
            ""
        };
        let thanks = if end {
            "これまで読んでくださって、ありがとうございました。"
        } else {
            ""
        };
        Message::text(format!(
            "配信を停止しました。{thanks}{family}\n\n{}\n\n再開するときは「配信再開」と送ってください。",
            lines(regs)
        ))
    }

    pub fn confirm_loss(&self, regs: &[&RegistrationSummary], problem: Option<String>) -> Message {
        Message::text_with_quick_reply(
            with_problem(
                problem,
                format!(
                    "お知らせくださり、ありがとうございます。\n次のご登録へのメッセージを、ご家族も含めて、今後いっさいお送りしないようにします。\n\n{}",
                    lines(regs)
                ),
            ),
            vec![button("メッセージを止める", "はい"), cancel()],
        )
    }

    pub fn loss_hint(&self) -> String {
        "止めるときは「メッセージを止める」を選んでください。".into()
    }

    pub fn loss_done(&self) -> Message {
        let contact = self
            .info
            .grief_contact
            .as_deref()
            .unwrap_or(&self.info.contact);
        Message::text(format!(
            "このご登録へのメッセージは、今後お送りしません。\nどうかご自身のお体とお気持ちを大切になさってください。\n\nお話を聞いてほしいとき、ご相談したいときは、いつでもこちらへご連絡ください。\n{contact}"
        ))
    }

    pub fn confirm_erase(&self, regs: &[RegistrationSummary], problem: Option<String>) -> Message {
        let what = if regs.is_empty() {
            "このアカウントにお預かりしている情報".to_owned()
        } else {
            format!("登録内容（{}件）とこれまでのやりとり", regs.len())
        };
        Message::text_with_quick_reply(
            with_problem(
                problem,
                format!(
                    "{what}を、すべて削除します。削除すると元に戻せず、メッセージも届かなくなります。\n（個人を特定しない件数だけは、統計として残ります）\n\n削除しますか？"
                ),
            ),
            vec![Action::say("削除する"), cancel()],
        )
    }

    pub fn erase_hint(&self) -> String {
        "「削除する」か「やめる」を選んでください。".into()
    }

    pub fn erased(&self) -> Message {
        Message::text(
            "お預かりしていた情報をすべて削除しました。これまで読んでくださって、ありがとうございました。\nまた登録するときは、いつでも「登録」と送ってください。",
        )
    }

    pub fn share_overview(&self, regs: &[RegistrationSummary]) -> Message {
        let owned: Vec<&RegistrationSummary> = regs.iter().filter(|r| r.owned()).collect();
        if owned.is_empty() {
            return Message::text(
                "ご家族との共有は、登録したご本人が「家族と共有」から招待コードを作ってできます。",
            );
        }
        let shares = owned
            .iter()
            .map(|r| {
                let names = if r.family.is_empty() {
                    "共有しているご家族はいません".to_owned()
                } else {
                    r.family
                        .iter()
                        .map(|f| format!("{}さん", f.nickname))
                        .collect::<Vec<_>>()
                        .join("、")
                };
                format!("・{}：{names}", short_label(r))
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mut actions = vec![Action::say("招待コードを作る")];
        if owned.iter().any(|r| !r.family.is_empty()) {
            actions.push(Action::say("共有をやめてもらう"));
        }
        actions.push(cancel());
        Message::text_with_quick_reply(
            format!(
                "パートナーやおじいちゃん・おばあちゃんにも、同じメッセージをお届けできます。招待コードを作って、ご家族に送ってください（7日間有効・1回限り）。\n\n{shares}"
            ),
            actions,
        )
    }

    pub fn confirm_invite(
        &self,
        regs: &[&RegistrationSummary],
        problem: Option<String>,
    ) -> Message {
        Message::text_with_quick_reply(
            with_problem(
                problem,
                format!(
                    "次のご登録をご家族と共有する招待コードを作ります。よろしいですか？\n\n{}",
                    lines(regs)
                ),
            ),
            vec![Action::say("はい"), cancel()],
        )
    }

    pub fn invitation(&self, regs: &[&RegistrationSummary], code: &str) -> Vec<Message> {
        let link = self
            .info
            .line_basic_id
            .as_deref()
            .map(|id| {
                let text: String = percent_encoding::utf8_percent_encode(
                    &format!("招待コード {code}"),
                    percent_encoding::NON_ALPHANUMERIC,
                )
                .to_string();
                format!("\nまたは、このリンクから：https://line.me/R/oaMessage/{id}/?{text}")
            })
            .unwrap_or_default();
        vec![
            Message::text(format!(
                "招待コードを作りました（7日間有効・1回限り）。\n\n{}\n\n次のメッセージを、共有したいご家族に送ってください。",
                lines(regs)
            )),
            Message::text(format!(
                "{}の子育て応援メッセージへのご招待です。\n「{}」を友だち追加して、トークでこのコードを送ってください。\n\n招待コード {code}{link}",
                self.info.municipality, self.info.service_name
            )),
        ]
    }

    pub fn ask_revoke(&self, family: &[&FamilyReader], problem: Option<String>) -> Message {
        let (list, mut actions) = numbered(family.iter().map(|f| {
            let name = format!("{}さん", f.nickname);
            (name.clone(), name)
        }));
        actions.push(cancel());
        Message::text_with_quick_reply(
            with_problem(problem, format!("どなたとの共有をやめますか？\n\n{list}")),
            actions,
        )
    }

    pub fn confirm_revoke(&self, name: &str, problem: Option<String>) -> Message {
        Message::text_with_quick_reply(
            with_problem(
                problem,
                format!(
                    "{name}さんとの共有をやめますか？{name}さんには、あなたのご登録のメッセージが届かなくなります。"
                ),
            ),
            vec![button("共有をやめる", "はい"), cancel()],
        )
    }

    pub fn revoked(&self, name: &str) -> Message {
        Message::text(format!("{name}さんとの共有をやめました。"))
    }

    pub fn own_code(&self) -> Message {
        Message::text("ご自身が作った招待コードです。共有したいご家族に送ってくださいね。")
    }

    pub fn already_shared(&self) -> Message {
        Message::text("このご登録のメッセージは、すでにお届けしています。")
    }

    pub fn code_problem(&self, check: &InvitationCheck) -> Message {
        Message::text(match check {
            InvitationCheck::Expired => {
                "この招待コードは有効期限（7日）が過ぎています。招待してくれたご家族に、新しいコードを作ってもらってください。"
            }
            InvitationCheck::Used => {
                "この招待コードは、すでに使われています。招待してくれたご家族に、新しいコードを作ってもらってください。"
            }
            _ => "招待コードが見つかりませんでした。コードをもう一度ご確認ください。",
        })
    }

    pub fn ask_join_nickname(&self, owner: &str, problem: Option<String>) -> Message {
        Message::text_with_quick_reply(
            with_problem(
                problem,
                format!(
                    "招待コードを確認しました。{owner}さんのご登録と同じメッセージを、あなたにもお届けします。\n\nメッセージでお呼びするあなたのお名前（ニックネーム）を教えてください。\n例：たろうパパ、ばあば（20文字まで）"
                ),
            ),
            vec![cancel()],
        )
    }

    pub fn confirm_join(&self, owner: &str, nickname: &str, problem: Option<String>) -> Message {
        Message::text_with_quick_reply(
            with_problem(
                problem,
                format!(
                    "{owner}さんのご登録を、{nickname}さんとして受け取ります。よろしいですか？"
                ),
            ),
            vec![Action::say("はい"), Action::say("修正する"), cancel()],
        )
    }

    pub fn joined(&self, owner: &str, nickname: &str) -> Message {
        Message::text(format!(
            "{nickname}さん、ようこそ。{owner}さんのご登録と同じメッセージを、{}にお届けします。\n配信を止めたいときは「配信停止」と送ってください（止まるのは{nickname}さんへの配信だけです）。",
            self.info.delivery_time
        ))
    }

    pub fn ask_child_name(&self, stage: Stage, problem: Option<String>) -> Message {
        let who = match stage {
            Stage::Pregnancy => "おなかの赤ちゃん",
            Stage::Child => "お子さん",
        };
        Message::text_with_quick_reply(
            with_problem(
                problem,
                format!(
                    "ご登録が2人分以上になるので、メッセージで見分けられるように、{who}の呼び名を教えてください。\n例：はる、上の子、ふたごの兄（20文字まで）\nつけないときは「なし」と送ってください。"
                ),
            ),
            vec![Action::say("なし"), cancel()],
        )
    }

    pub fn confirm_child(
        &self,
        stage: Stage,
        date: NaiveDate,
        child_name: Option<&str>,
        problem: Option<String>,
    ) -> Message {
        Message::text_with_quick_reply(
            with_problem(
                problem,
                format!(
                    "この内容で追加します。よろしいですか？\n\n・状況：{}\n・{}：{}\n・呼び名：{}",
                    stage.label(),
                    stage.date_label(),
                    format_date_ja(date),
                    child_name.unwrap_or("なし")
                ),
            ),
            vec![Action::say("はい"), Action::say("修正する"), cancel()],
        )
    }

    pub fn name_the_others(&self) -> Message {
        Message::text_with_quick_reply(
            "呼び名のない登録は、まとめて届くメッセージで「1人目」「2人目」と表示されます。ほかの登録にも呼び名をつけるときは、「登録内容」→「変更する」→「お子さんの呼び名」からどうぞ。",
            vec![Action::say("変更する")],
        )
    }

    pub fn gone(&self) -> Message {
        Message::text(
            "このご登録は、すでに変わっているようです。「登録内容」で、いまの内容をご確認ください。",
        )
    }

    pub fn faq(&self) -> Message {
        if self.info.faq.is_empty() {
            return self.contact();
        }
        let text = self
            .info
            .faq
            .iter()
            .map(|f| format!("Q. {}\nA. {}", f.question, f.answer))
            .collect::<Vec<_>>()
            .join("\n\n");
        Message::text_with_quick_reply(
            format!("よくある質問です。\n\n{text}"),
            vec![Action::say("お問い合わせ"), Action::say("設定")],
        )
    }

    pub fn contact(&self) -> Message {
        Message::text(format!(
            "ご相談・お問い合わせは、こちらへどうぞ。\n{}\n\nこのトークでは、個別のご相談にはお答えできません。",
            self.info.contact
        ))
    }

    pub fn settings(&self, regs: &[RegistrationSummary]) -> Message {
        let actions: Vec<Action> = if regs.is_empty() {
            vec![
                Action::say("登録する"),
                Action::say("よくある質問"),
                Action::say("お問い合わせ"),
                Action::say("データを削除"),
            ]
        } else {
            SETTINGS.iter().map(|s| Action::say(s)).collect()
        };
        Message::text_with_quick_reply(
            "設定・その他です。下のボタンから選んでください。\n（文字で「配信停止」「配信再開」などと送っても同じです）",
            actions,
        )
    }

    pub fn show(&self, regs: &[RegistrationSummary]) -> Message {
        let list = regs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let status = if r.closed {
                    "配信終了".to_owned()
                } else {
                    r.status.label().to_owned()
                };
                let role = if r.owned() {
                    match r.family.len() {
                        0 => String::new(),
                        n => format!("／ご家族{n}人と共有"),
                    }
                } else {
                    "／ご家族として共有".to_owned()
                };
                format!("{}. {}／{status}{role}", i + 1, long_label(r))
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mut actions = vec![Action::say("変更する")];
        if regs
            .iter()
            .any(|r| r.owned() && r.stage == Stage::Pregnancy && !r.closed)
        {
            actions.push(Action::say("出産しました"));
        }
        actions.push(Action::say("子どもを追加"));
        actions.push(Action::say("一時停止・再開"));
        actions.push(Action::say("設定"));
        Message::text_with_quick_reply(format!("登録内容です。\n{list}"), actions)
    }
}
