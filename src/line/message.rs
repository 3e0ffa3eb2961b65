//! Message objects as the Messaging API defines them (messaging-api.yml: `Message`, `QuickReply`,
//! `Action`). Only the kinds yorisoi sends are modelled.

use serde::{Deserialize, Serialize};

/// A message object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Message {
    /// A text message (at most 5,000 UTF-16 units).
    Text {
        /// The text.
        text: String,
        /// Quick reply buttons.
        #[serde(skip_serializing_if = "Option::is_none")]
        quick_reply: Option<QuickReply>,
    },
    /// A Flex message.
    Flex {
        /// What notifications and old clients show.
        alt_text: String,
        /// A bubble or carousel container.
        contents: serde_json::Value,
        /// Quick reply buttons.
        #[serde(skip_serializing_if = "Option::is_none")]
        quick_reply: Option<QuickReply>,
    },
    /// An image (a broadcast's picture): HTTPS URLs of at most 2,000 characters.
    Image {
        /// The image.
        original_content_url: String,
        /// The thumbnail shown in the chat.
        preview_image_url: String,
    },
}

impl Message {
    /// A plain text message.
    pub fn text(text: impl Into<String>) -> Self {
        Message::Text {
            text: text.into(),
            quick_reply: None,
        }
    }

    /// A text message with quick reply buttons.
    pub fn text_with_quick_reply(text: impl Into<String>, actions: Vec<Action>) -> Self {
        Message::Text {
            text: text.into(),
            quick_reply: Some(QuickReply::of(actions)),
        }
    }

    /// The text a person reads first (text, or a Flex message's alt text).
    pub fn preview_text(&self) -> &str {
        match self {
            Message::Text { text, .. } => text,
            Message::Flex { alt_text, .. } => alt_text,
            Message::Image { .. } => "画像",
        }
    }
}

/// Quick reply buttons (at most 13).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuickReply {
    /// The buttons.
    pub items: Vec<QuickReplyItem>,
}

impl QuickReply {
    /// Quick reply buttons for these actions.
    pub fn of(actions: Vec<Action>) -> Self {
        Self {
            items: actions.into_iter().map(QuickReplyItem::new).collect(),
        }
    }
}

/// One quick reply button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuickReplyItem {
    /// Always `action`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What the button does.
    pub action: Action,
}

impl QuickReplyItem {
    /// A button for an action.
    pub fn new(action: Action) -> Self {
        Self {
            kind: "action".into(),
            action,
        }
    }
}

/// An action (label at most 20 characters in a quick reply).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Action {
    /// Sends `text` as if the user typed it.
    Message {
        /// Button label.
        label: String,
        /// Text sent.
        text: String,
    },
    /// Sends a postback event with `data`; shows `display_text` in the chat.
    Postback {
        /// Button label.
        label: String,
        /// Data returned in the postback (at most 300 characters).
        data: String,
        /// Text shown in the chat as the user's message.
        #[serde(skip_serializing_if = "Option::is_none")]
        display_text: Option<String>,
    },
    /// Opens LINE's date picker.
    Datetimepicker {
        /// Button label.
        label: String,
        /// Data returned in the postback.
        data: String,
        /// `date`, `time` or `datetime`.
        mode: String,
        /// Initial value (`YYYY-MM-DD`).
        #[serde(skip_serializing_if = "Option::is_none")]
        initial: Option<String>,
        /// Latest selectable value.
        #[serde(skip_serializing_if = "Option::is_none")]
        max: Option<String>,
        /// Earliest selectable value.
        #[serde(skip_serializing_if = "Option::is_none")]
        min: Option<String>,
    },
}

impl Action {
    /// A button that sends its own label as text: typing the label works the same.
    pub fn say(label: &str) -> Self {
        Action::Message {
            label: label.into(),
            text: label.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_as_the_api_expects() {
        let m = Message::text_with_quick_reply(
            "はい",
            vec![
                Action::say("妊娠中"),
                Action::Datetimepicker {
                    label: "日付を選ぶ".into(),
                    data: "date".into(),
                    mode: "date".into(),
                    initial: Some("2027-03-15".into()),
                    max: None,
                    min: None,
                },
            ],
        );
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"type":"text","text":"はい","quickReply":{"items":[
                {"type":"action","action":{"type":"message","label":"妊娠中","text":"妊娠中"}},
                {"type":"action","action":{"type":"datetimepicker","label":"日付を選ぶ","data":"date","mode":"date","initial":"2027-03-15"}}
            ]}})
        );
        let f = Message::Flex {
            alt_text: "a".into(),
            contents: json!({"type":"bubble"}),
            quick_reply: None,
        };
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            json!({"type":"flex","altText":"a","contents":{"type":"bubble"}})
        );
    }
}
