//! Turning content into message objects for one reader on one day.

use super::template::{Template, Vars, index_of};
use super::{Body, ContentPack};
use crate::domain::Position;
use crate::line::Message;

fn set(vars: &mut Vars, name: &str, value: impl ToString) {
    if let Some(i) = index_of(name) {
        vars[i] = Some(value.to_string());
    }
}

/// The placeholder values for a reader at a position.
pub fn vars(pack: &ContentPack, nickname: &str, position: Position) -> Vars {
    let mut v: Vars = Default::default();
    let m = &pack.municipality;
    set(&mut v, "nickname", nickname);
    set(&mut v, "municipality", &m.name);
    set(&mut v, "municipal_office", &m.municipal_office);
    set(&mut v, "health_center", &m.health_center);
    set(&mut v, "family_center", &m.family_center);
    set(&mut v, "contact", &m.contact);
    set(&mut v, "service_name", &m.service_name);
    match position {
        Position::Pregnancy(p) => {
            set(&mut v, "disclaimer", &m.disclaimer.pregnancy);
            set(&mut v, "week", p.week());
            set(&mut v, "weekday", p.day());
            set(&mut v, "gestational_day", p.gestational_day);
            set(&mut v, "days_to_due", p.days_to_due().max(0));
        }
        Position::Child(a) => {
            set(&mut v, "disclaimer", &m.disclaimer.child);
            set(&mut v, "days_since_birth", a.days);
            set(&mut v, "age", a.label());
            set(&mut v, "age_today", a.label_today());
            set(&mut v, "months", a.months);
            set(&mut v, "years", a.years());
        }
    }
    v
}

fn render_json(value: &serde_json::Value, vars: &Vars) -> serde_json::Value {
    match value {
        serde_json::Value::String(s) => match Template::parse(s) {
            Ok(t) => serde_json::Value::String(t.render(vars)),
            Err(_) => value.clone(),
        },
        serde_json::Value::Array(a) => a.iter().map(|x| render_json(x, vars)).collect(),
        serde_json::Value::Object(o) => o
            .iter()
            .map(|(k, x)| (k.clone(), render_json(x, vars)))
            .collect(),
        other => other.clone(),
    }
}

/// Renders a body with the reader's values.
pub fn render(body: &Body, vars: &Vars) -> Message {
    match body {
        Body::Text(t) => Message::text(t.render(vars)),
        Body::Flex { alt_text, contents } => Message::Flex {
            alt_text: alt_text.render(vars),
            contents: render_json(contents, vars),
            quick_reply: None,
        },
    }
}

/// The municipality's footer, rendered.
pub fn footer(pack: &ContentPack, vars: &Vars) -> String {
    pack.municipality.footer.render(vars)
}

fn small_text(text: &str) -> serde_json::Value {
    serde_json::json!({ "type": "text", "text": text, "size": "xxs", "color": "#888888", "wrap": true })
}

/// Puts a line at the top of a message: which registration it is for.
pub fn prepend_label(msg: &mut Message, label: &str) {
    match msg {
        Message::Text { text, .. } => *text = format!("{label}\n{text}"),
        Message::Flex {
            alt_text, contents, ..
        } => {
            *alt_text = format!("{label} {alt_text}");
            let bubble = match contents.get_mut("contents").and_then(|c| c.as_array_mut()) {
                Some(bubbles) => bubbles.first_mut(),
                None => Some(contents),
            };
            if let Some(items) = bubble
                .and_then(|b| b.get_mut("body"))
                .and_then(|b| b.get_mut("contents"))
                .and_then(|c| c.as_array_mut())
            {
                items.insert(0, small_text(label));
            }
        }
        // Content packs hold text and Flex only.
        Message::Image { .. } => {}
    }
}

/// Adds a paragraph at the end of a message's body: after the text, or as the last line of the
/// (last) bubble's body (before any footer).
pub fn append_paragraph(msg: &mut Message, paragraph: &str) {
    if paragraph.is_empty() {
        return;
    }
    match msg {
        // Content packs hold text and Flex only.
        Message::Image { .. } => {}
        Message::Text { text, .. } => {
            text.push_str("\n\n");
            text.push_str(paragraph);
        }
        Message::Flex { contents, .. } => {
            let bubble = match contents.get_mut("contents").and_then(|c| c.as_array_mut()) {
                Some(bubbles) => bubbles.last_mut(),
                None => Some(contents),
            };
            if let Some(items) = bubble
                .and_then(|b| b.get_mut("body"))
                .and_then(|b| b.get_mut("contents"))
                .and_then(|c| c.as_array_mut())
            {
                items.push(serde_json::json!({ "type": "text", "text": paragraph, "size": "sm", "wrap": true, "margin": "lg" }));
            }
        }
    }
}

/// Adds the footer: after the text, or as the (last) bubble's footer.
pub fn append_footer(msg: &mut Message, footer: &str) {
    if footer.is_empty() {
        return;
    }
    match msg {
        // Content packs hold text and Flex only.
        Message::Image { .. } => {}
        Message::Text { text, .. } => {
            text.push_str("\n\n");
            text.push_str(footer);
        }
        Message::Flex { contents, .. } => {
            let bubble = match contents.get_mut("contents").and_then(|c| c.as_array_mut()) {
                Some(bubbles) => bubbles.last_mut(),
                None => Some(contents),
            };
            let Some(bubble) = bubble.and_then(|b| b.as_object_mut()) else {
                return;
            };
            match bubble
                .get_mut("footer")
                .and_then(|f| f.get_mut("contents"))
                .and_then(|c| c.as_array_mut())
            {
                Some(items) => items.push(small_text(footer)),
                None => {
                    bubble.insert(
                        "footer".into(),
                        serde_json::json!({ "type": "box", "layout": "vertical", "contents": [small_text(footer)] }),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flex(contents: serde_json::Value) -> Message {
        Message::Flex {
            alt_text: "お知らせ".into(),
            contents,
            quick_reply: None,
        }
    }

    fn bubble(text: &str) -> serde_json::Value {
        json!({ "type": "bubble", "body": { "type": "box", "layout": "vertical",
            "contents": [ { "type": "text", "text": text } ] } })
    }

    #[test]
    fn a_paragraph_goes_at_the_end_of_the_body_before_the_footer() {
        let mut text = Message::text("本文");
        append_paragraph(&mut text, "お知らせ");
        append_footer(&mut text, "フッター");
        assert_eq!(text, Message::text("本文\n\nお知らせ\n\nフッター"));
        let mut carousel = flex(json!({ "type": "carousel",
            "contents": [ bubble("1枚目"), bubble("2枚目") ] }));
        append_paragraph(&mut carousel, "お知らせ");
        let Message::Flex { contents, .. } = &carousel else {
            panic!("still Flex");
        };
        assert_eq!(
            contents["contents"][0]["body"]["contents"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let last = &contents["contents"][1]["body"]["contents"];
        assert_eq!(
            last[1]["text"], "お知らせ",
            "on the last bubble, after its text"
        );
    }

    #[test]
    fn a_label_and_the_footer_go_where_a_reader_sees_them() {
        let mut text = Message::text("本文");
        prepend_label(&mut text, "【1人目：はなこさん】");
        append_footer(&mut text, "――\nお問い合わせ");
        assert_eq!(
            text,
            Message::text("【1人目：はなこさん】\n本文\n\n――\nお問い合わせ")
        );
        let mut unchanged = Message::text("本文");
        append_footer(&mut unchanged, "");
        assert_eq!(unchanged, Message::text("本文"));

        let small = |t: &str| json!({ "type": "text", "text": t, "size": "xxs", "color": "#888888", "wrap": true });
        let mut one = flex(bubble("本文"));
        prepend_label(&mut one, "【2人目】");
        append_footer(&mut one, "お問い合わせ");
        let Message::Flex {
            alt_text, contents, ..
        } = &one
        else {
            panic!("still Flex");
        };
        assert_eq!(alt_text, "【2人目】 お知らせ");
        assert_eq!(contents["body"]["contents"][0], small("【2人目】"));
        assert_eq!(contents["body"]["contents"][1]["text"], "本文");
        assert_eq!(
            contents["footer"],
            json!({ "type": "box", "layout": "vertical", "contents": [small("お問い合わせ")] })
        );

        let mut with_footer = bubble("本文");
        with_footer["footer"] = json!({ "type": "box", "layout": "vertical",
            "contents": [ { "type": "text", "text": "既存" } ] });
        let mut carousel = flex(json!({ "type": "carousel",
            "contents": [ bubble("1枚目"), with_footer ] }));
        prepend_label(&mut carousel, "【ラベル】");
        append_footer(&mut carousel, "フッター");
        let Message::Flex { contents, .. } = &carousel else {
            panic!("still Flex");
        };
        let bubbles = contents["contents"].as_array().unwrap();
        assert_eq!(bubbles[0]["body"]["contents"][0], small("【ラベル】"));
        assert_eq!(bubbles[1]["body"]["contents"][0]["text"], "本文");
        assert!(bubbles[0].get("footer").is_none(), "the footer goes last");
        assert_eq!(
            bubbles[1]["footer"]["contents"],
            json!([ { "type": "text", "text": "既存" }, small("フッター") ])
        );
    }
}
