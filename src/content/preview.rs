//! What a reader with a due date or a birthday receives on given days: the messages exactly as
//! the daily delivery renders them. Shared by `yorisoi content preview` and the console.

use super::{Body, ContentPack, Notice, NoticeWhen, Track};
use crate::delivery::{RegInfo, plan::plan_rows, render_items};
use crate::domain::{Position, Stage};
use crate::line::{Action, Message};
use crate::schedule::RegistrationView;
use chrono::NaiveDate;

/// One day of a preview.
#[derive(Debug, Clone)]
pub struct PreviewDay {
    /// The day.
    pub date: NaiveDate,
    /// 「妊娠25週5日」, 「生まれて45日目（1か月）」.
    pub position: String,
    /// What arrives, in order (empty: nothing that day).
    pub messages: Vec<Message>,
}

/// The messages of `days` days from `start` for a registration of `stage` on `date` (due date or
/// birthday) made on `start`, with the notices a registration takes once taken once.
pub fn days(
    pack: &ContentPack,
    stage: Stage,
    date: NaiveDate,
    start: NaiveDate,
    days: u32,
    nickname: &str,
) -> Vec<PreviewDay> {
    let mut reg = RegistrationView {
        id: 1,
        stage,
        date,
        started_on: start,
        notices_taken: Default::default(),
    };
    let regs = std::collections::HashMap::from([(
        1,
        RegInfo {
            nickname: nickname.to_owned(),
            stage,
            date,
            child_name: None,
            owner: true,
        },
    )]);
    let mut out = Vec::new();
    for offset in 0..days.max(1) {
        let Some(day) = start.checked_add_days(chrono::Days::new(u64::from(offset))) else {
            break;
        };
        let plan = plan_rows(pack, &[(1, reg.clone())], day);
        let position = match crate::schedule::position(&reg, day) {
            Position::Pregnancy(p) => p.label(),
            Position::Child(a) if a.months == 0 => a.day_label(),
            Position::Child(a) => format!("{}（{}）", a.day_label(), a.label()),
        };
        let mut messages = Vec::new();
        for push in &plan.pushes {
            let items = plan.items(push);
            messages.extend(render_items(pack, day, &items, &regs));
            // As the worker does: an age-window notice, once taken, is not offered again.
            for it in items.iter().filter(|i| i.window_end.is_some()) {
                if let Some(i) = pack.notice_index(&it.content_id["notice/".len()..]) {
                    reg.notices_taken = reg.notices_taken.with(i);
                }
            }
        }
        out.push(PreviewDay {
            date: day,
            position,
            messages,
        });
    }
    out
}

/// A message as plain text: a text's text, a Flex message's texts one per line, an image's URL;
/// then its quick reply buttons, one per line (「［ボタン：赤ちゃんが生まれたら］」).
pub fn message_text(m: &Message) -> String {
    let (mut out, quick) = match m {
        Message::Text { text, quick_reply } => (text.clone(), quick_reply.as_ref()),
        Message::Flex {
            contents,
            quick_reply,
            ..
        } => {
            let mut texts = Vec::new();
            flex_texts(contents, &mut texts);
            (texts.join("\n"), quick_reply.as_ref())
        }
        Message::Image {
            original_content_url,
            ..
        } => (format!("画像: {original_content_url}"), None),
    };
    for item in quick.iter().flat_map(|q| &q.items) {
        let label = match &item.action {
            Action::Message { label, .. }
            | Action::Postback { label, .. }
            | Action::Datetimepicker { label, .. } => label,
        };
        out.push_str(&format!("\n［ボタン：{label}］"));
    }
    out
}

/// The texts of a Flex container, in reading order.
pub fn flex_texts(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(o) => {
            if o.get("type").and_then(|t| t.as_str()) == Some("text")
                && let Some(t) = o.get("text").and_then(|t| t.as_str())
            {
                out.push(t.to_owned());
            }
            for key in ["header", "hero", "body", "footer", "contents"] {
                if let Some(x) = o.get(key) {
                    flex_texts(x, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| flex_texts(x, out)),
        _ => {}
    }
}

impl Notice {
    /// When it is sent, in words: 「妊娠8週0日〜12週6日」, 「毎年4月1日」, 「2027年1月4日」.
    pub fn when_label(&self) -> String {
        match (&self.when, self.range, self.track) {
            (NoticeWhen::Yearly { month, day }, ..) => format!("毎年{month}月{day}日"),
            (NoticeWhen::Once(d), ..) => crate::domain::format_date_ja(*d),
            (NoticeWhen::Window, Some((a, b)), Some(Track::Pregnancy)) => format!(
                "妊娠{}週{}日〜{}週{}日",
                a.div_euclid(7),
                a.rem_euclid(7),
                b.div_euclid(7),
                b.rem_euclid(7)
            ),
            (NoticeWhen::Window, Some((a, b)), _) => format!("生後{a}日〜{b}日"),
            (NoticeWhen::Window, None, _) => "登録の期間中".into(),
        }
    }

    /// Its first words, placeholders as written.
    pub fn preview_text(&self) -> String {
        match &self.body {
            Body::Text(t) => t.source(),
            Body::Flex { alt_text, .. } => alt_text.source(),
        }
    }
}
