//! Everything the conversation says, in one place: warm, polite, short enough for a phone.

use super::{RegistrationSummary, nickname_problem};
use crate::domain::{
    ChildAge, DateError, DateKind, NicknameError, PregnancyPosition, RegistrationStatus, Stage,
    format_date_ja,
};
use crate::line::{Action, Message};
use chrono::{Days, NaiveDate};

/// The municipality's words the conversation uses.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// 「サンプル市 子育て応援LINE」.
    pub service_name: String,
    /// 「サンプル市」.
    pub municipality: String,
    /// Where to ask.
    pub contact: String,
    /// Where families who lost a pregnancy or a child can turn, if the municipality says.
    pub grief_contact: Option<String>,
    /// 「朝9時ごろ」.
    pub delivery_time: String,
    /// The last day of the child track's first daily run (100 in the standard cadence): after
    /// it, messages come every few days, then weekly, then every two weeks.
    pub child_daily_until: i64,
    /// The last gestational day with a message (293: 妊娠41週6日).
    pub last_pregnancy_day: i64,
    /// よくある質問, from the content pack.
    pub faq: Vec<Faq>,
    /// The account's basic ID (`@…`), for invitation links; none: the code alone.
    pub line_basic_id: Option<String>,
}

pub use crate::content::Faq;

impl Default for ServiceInfo {
    fn default() -> Self {
        Self {
            service_name: "子育て応援LINE".into(),
            municipality: "お住まいの市区町村".into(),
            contact: "お住まいの市区町村の子育て窓口".into(),
            grief_contact: None,
            delivery_time: "朝".into(),
            child_daily_until: 100,
            last_pregnancy_day: 293,
            faq: Vec::new(),
            line_basic_id: None,
        }
    }
}

pub(crate) struct Texts<'a> {
    pub info: &'a ServiceInfo,
    pub today: NaiveDate,
    /// The reader's registrations receiving messages now: a stop covers them all.
    pub active: usize,
}

fn cancel() -> Action {
    Action::say("やめる")
}

impl Texts<'_> {
    pub fn greeting(&self) -> Message {
        Message::text(format!(
            "友だち追加ありがとうございます。{}です。\n\n妊娠中からお子さんの3歳の誕生日まで、そのときに合わせたメッセージと{}の子育て情報を、{}にお届けします（妊娠中と生まれてから{}日までは毎日、そのあとは成長に合わせて数日〜2週間に1回ほど）。\n登録は1分ほどで終わります。",
            self.info.service_name,
            self.info.municipality,
            self.info.delivery_time,
            self.info.child_daily_until
        ))
    }

    pub fn invite(&self) -> Message {
        Message::text(format!(
            "メッセージありがとうございます。{}です。\nまずはかんたんな登録をお願いします。登録すると、妊娠週数やお子さんの成長に合わせたメッセージが届くようになります。",
            self.info.service_name
        ))
    }

    pub fn add_intro(&self) -> String {
        "ふたごやごきょうだい、新しい妊娠など、もう1人分の登録ですね。".into()
    }

    pub fn ask_stage(&self, problem: Option<String>) -> Message {
        let mut text = problem.map(|p| format!("{p}\n\n")).unwrap_or_default();
        text.push_str("今の状況を教えてください。\n下のボタンから選んでください。");
        Message::text_with_quick_reply(
            text,
            vec![
                Action::say(Stage::Pregnancy.label()),
                Action::say(Stage::Child.label()),
                cancel(),
            ],
        )
    }

    pub fn stage_hint(&self, non_text: bool) -> String {
        if non_text {
            "ありがとうございます。ここでは文字でのお返事をお願いします。".into()
        } else {
            "「妊娠中」か「子育て中」のどちらかを選んでください。".into()
        }
    }

    pub fn ask_nickname(&self, stage: Stage, problem: Option<String>) -> Message {
        let mut text = problem.map(|p| format!("{p}\n\n")).unwrap_or_default();
        if text.is_empty() {
            text.push_str(match stage {
                Stage::Pregnancy => "「妊娠中」ですね。\n",
                Stage::Child => "「子育て中」ですね。\n",
            });
        }
        text.push_str("メッセージでお呼びするお名前（ニックネーム）を教えてください。\n例：はなこ、たろうパパ（20文字まで）");
        Message::text_with_quick_reply(text, vec![cancel()])
    }

    pub fn nickname_error(&self, e: &NicknameError) -> String {
        nickname_problem(e)
    }

    pub fn non_text(&self) -> String {
        "ありがとうございます。ここでは文字でのお返事をお願いします。".into()
    }

    pub fn ask_date(&self, stage: Stage, nickname: &str, problem: Option<String>) -> Message {
        let kind = match stage {
            Stage::Pregnancy => DateKind::DueDate,
            Stage::Child => DateKind::Birthday,
        };
        let range = kind.range(self.today);
        let mut text = match &problem {
            Some(p) => format!("{p}\n\n"),
            None => format!("{nickname}さん、ありがとうございます。\n"),
        };
        text.push_str(&format!(
            "{}を教えてください。\n「日付を選ぶ」から選ぶか、「2027年3月15日」のように入力してください。",
            stage.date_label()
        ));
        let initial = match stage {
            Stage::Pregnancy => self
                .today
                .checked_add_days(Days::new(140))
                .unwrap_or(range.max)
                .min(range.max),
            Stage::Child => self.today,
        };
        Message::text_with_quick_reply(
            text,
            vec![
                Action::Datetimepicker {
                    label: "日付を選ぶ".into(),
                    data: super::POSTBACK_DATE.into(),
                    mode: "date".into(),
                    initial: Some(initial.to_string()),
                    max: Some(range.max.to_string()),
                    min: Some(range.min.to_string()),
                },
                cancel(),
            ],
        )
    }

    pub fn date_unreadable(&self) -> String {
        "日付として読み取れませんでした。".into()
    }

    pub fn date_error(&self, stage: Stage, e: &DateError) -> String {
        match e {
            DateError::Unreadable => self.date_unreadable(),
            DateError::NoSuchDate => {
                "その日付はカレンダーにないようです。もう一度ご確認ください。".into()
            }
            DateError::OutOfRange(r) => match stage {
                Stage::Pregnancy => format!(
                    "出産予定日は、{}から{}までの日付でお願いします。",
                    format_date_ja(r.min),
                    format_date_ja(r.max)
                ),
                Stage::Child => format!(
                    "このサービスは3歳の誕生日までのお子さんが対象です。誕生日は、{}から今日（{}）までの日付でお願いします。",
                    format_date_ja(r.min),
                    format_date_ja(r.max)
                ),
            },
        }
    }

    pub fn confirm(&self, stage: Stage, nickname: &str, date: NaiveDate) -> Message {
        Message::text_with_quick_reply(
            format!(
                "この内容で登録します。よろしいですか？\n\n・状況：{}\n・お名前：{}さん\n・{}：{}",
                stage.label(),
                nickname,
                stage.date_label(),
                format_date_ja(date)
            ),
            vec![Action::say("はい"), Action::say("修正する"), cancel()],
        )
    }

    pub fn confirm_hint(&self) -> String {
        "「はい」か「修正する」を選んでください。".into()
    }

    pub fn ask_fix(&self) -> Message {
        self.ask_fix_with(None)
    }

    pub fn ask_fix_with(&self, problem: Option<String>) -> Message {
        let mut text = problem.map(|p| format!("{p}\n\n")).unwrap_or_default();
        text.push_str("どこを修正しますか？");
        Message::text_with_quick_reply(
            text,
            vec![
                Action::say("お名前"),
                Action::say("日付"),
                Action::say("最初から"),
                cancel(),
            ],
        )
    }

    pub fn fix_hint(&self) -> String {
        "下のボタンから、修正したいところを選んでください。".into()
    }

    pub fn completed(&self, stage: Stage, nickname: &str, date: NaiveDate, first: bool) -> Message {
        let position = match stage {
            Stage::Pregnancy => {
                let p = PregnancyPosition::on(date, self.today);
                if p.gestational_day >= 28 {
                    format!("{nickname}さん、今日は{}です。", p.label())
                } else {
                    let start = date.checked_sub_days(Days::new(280 - 28)).unwrap_or(date);
                    format!(
                        "{nickname}さん、妊娠4週0日になる{}からメッセージをお届けします。",
                        format_date_ja(start)
                    )
                }
            }
            Stage::Child => {
                let age = ChildAge::on(date, self.today);
                match (age.days, age.months) {
                    (0, _) => format!(
                        "{nickname}さん、ご出産おめでとうございます。今日がお子さんの生まれた日ですね。"
                    ),
                    (_, 0) => format!("{nickname}さん、お子さんは今日で{}です。", age.day_label()),
                    _ => format!(
                        "{nickname}さん、お子さんは今日で{}（{}）です。",
                        age.day_label(),
                        age.label()
                    ),
                }
            }
        };
        let mut text = format!(
            "登録が完了しました。\n{position}\n\n{}",
            self.cadence(stage, date)
        );
        if first {
            text.push_str("\n\n登録内容を見るときは「登録内容」、ごきょうだいやふたごの登録は「子どもを追加」と送ってください。画面下のメニューからもできます。");
        }
        Message::text(text)
    }

    /// How often messages will come from now on, as the content's cadence has it: daily in
    /// pregnancy and the first days after birth, then thinning out.
    fn cadence(&self, stage: Stage, date: NaiveDate) -> String {
        let time = &self.info.delivery_time;
        let until = self.info.child_daily_until;
        match stage {
            Stage::Pregnancy => format!(
                "これから毎日（{}まで）、{time}にメッセージをお届けします。",
                PregnancyPosition {
                    gestational_day: self.info.last_pregnancy_day
                }
                .label()
            ),
            Stage::Child if ChildAge::on(date, self.today).days < until => format!(
                "生まれてから{until}日目までは毎日、そのあとは成長に合わせて数日〜2週間に1回ほど、{time}にメッセージをお届けします。"
            ),
            Stage::Child => format!(
                "これから、お子さんの成長に合わせて数日〜2週間に1回ほど、{time}にメッセージをお届けします。"
            ),
        }
    }

    pub fn cancelled(&self) -> Message {
        Message::text(
            "登録を中止しました。\nまた登録するときは、いつでも「登録」と送ってくださいね。",
        )
    }

    /// 「やめる」 in the middle of something: the registration's words, or a plain "stopped".
    pub fn cancelled_in(&self, state: &super::State) -> Message {
        use super::State::*;
        match state {
            AskStage
            | AskNickname { .. }
            | AskDate { .. }
            | Confirm { .. }
            | Fix { .. }
            | AskChildName { .. }
            | ConfirmChild { .. }
            | JoinNickname { .. }
            | ConfirmJoin { .. } => self.cancelled(),
            _ => Message::text("わかりました。何も変えずに、そのままにしておきますね。"),
        }
    }

    pub fn nothing_to_cancel(&self) -> Message {
        Message::text("いま進めている手続きはありません。")
    }

    pub fn too_many(&self) -> Message {
        Message::text(format!(
            "登録できるのは{}件までです。ご不明な点は{}へお問い合わせください。",
            super::MAX_REGISTRATIONS,
            self.info.contact
        ))
    }

    pub fn welcome_back(&self, regs: &[RegistrationSummary]) -> Message {
        let name = regs
            .first()
            .map(|r| r.nickname.as_str())
            .unwrap_or_default();
        let status = if regs.iter().any(|r| r.status == RegistrationStatus::Active) {
            "登録はそのまま残っています。また、メッセージをお届けしますね。"
        } else {
            "登録はそのまま残っています。"
        };
        Message::text(format!(
            "{name}さん、おかえりなさい。\n{status}\n\n{}",
            self.list_lines(regs)
        ))
    }

    fn list_lines(&self, regs: &[RegistrationSummary]) -> String {
        regs.iter()
            .enumerate()
            .map(|(i, r)| {
                format!(
                    "{}. {}さん／{}：{}／{}",
                    i + 1,
                    r.nickname,
                    r.stage.date_label(),
                    format_date_ja(r.date),
                    r.status.label()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn help(&self, regs: &[RegistrationSummary]) -> Message {
        let name = regs
            .first()
            .map(|r| r.nickname.as_str())
            .unwrap_or_default();
        let grief = self
            .info
            .grief_contact
            .as_deref()
            .map(|c| {
                format!("\n流産・死産など、つらい経験をされた方のご相談は、{c}でお受けしています。")
            })
            .unwrap_or_default();
        Message::text_with_quick_reply(
            format!(
                "{name}さん、メッセージありがとうございます。\nこのアカウントでは、妊娠週数やお子さんの成長に合わせたメッセージと{}の子育て情報を、{}にお届けしています。\n\n・登録内容を見る・変更する：「登録内容」\n・赤ちゃんが生まれたら：「出産しました」\n・ふたごやごきょうだいを追加：「子どもを追加」\n・配信を止める／再開する：「配信停止」／「配信再開」\n・ご家族にも届ける：「家族と共有」\n・そのほか：「設定」\n\nこのトークでは個別のご相談にお答えできません。ご相談やお問い合わせは、{}へどうぞ。{grief}",
                self.info.municipality, self.info.delivery_time, self.info.contact
            ),
            vec![
                Action::say("登録内容"),
                Action::say("子どもを追加"),
                Action::say("設定"),
            ],
        )
    }

    pub fn ask_stop(&self, problem: Option<String>) -> Message {
        let mut text = problem.map(|p| format!("{p}\n\n")).unwrap_or_default();
        if self.active > 1 {
            text.push_str(&format!(
                "登録している{}人分すべての、メッセージの配信を停止しますか？\n登録内容は残るので、「配信再開」と送ればいつでも再開できます。",
                self.active
            ));
        } else {
            text.push_str("メッセージの配信を停止しますか？\n登録内容は残るので、「配信再開」と送ればいつでも再開できます。");
        }
        Message::text_with_quick_reply(
            text,
            vec![Action::say("停止する"), Action::say("停止しない")],
        )
    }

    /// 「やめる」 could mean either answer here: ask which.
    pub fn stop_hint(&self) -> String {
        "「停止する」か「停止しない」のどちらかを選んでください。".into()
    }

    pub fn stopped(&self) -> Message {
        Message::text(format!(
            "配信を停止しました。これまで読んでくださって、ありがとうございました。\n再開するときは「配信再開」と送ってください。\n\nご相談やお問い合わせは、{}へどうぞ。",
            self.info.contact
        ))
    }

    pub fn kept_going(&self) -> Message {
        Message::text("わかりました。これからもメッセージをお届けしますね。")
    }

    pub fn resumed(&self) -> Message {
        Message::text(format!(
            "配信を再開しました。また{}に、メッセージをお届けします。",
            self.info.delivery_time
        ))
    }

    pub fn thanks_for_stamp(&self) -> Message {
        Message::text_with_quick_reply(
            "スタンプありがとうございます。\n登録内容を見るときは「登録内容」と送ってください。",
            vec![Action::say("登録内容"), Action::say("子どもを追加")],
        )
    }

    pub fn slow_down(&self) -> Message {
        Message::text(
            "たくさんのメッセージをありがとうございます。\n少し時間をおいて、1分ほどしてからもう一度送ってください。",
        )
    }
}
