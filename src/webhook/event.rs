//! Webhook events (webhook.yml). Stored raw; read into `Event` when processed. Unknown event
//! types and sources are data, never errors.

use crate::store::InboundEvent;
use crate::telemetry::json_error;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

#[derive(Deserialize)]
struct Callback<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    #[serde(rename = "type")]
    kind: Option<String>,
    webhook_event_id: Option<String>,
    timestamp: Option<i64>,
    source: Option<Source>,
    delivery_context: Option<DeliveryContext>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Source {
    #[serde(rename = "type")]
    kind: Option<String>,
    user_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryContext {
    #[serde(default)]
    is_redelivery: bool,
}

/// Reads a callback body into events to store. Err only for bodies that are not a callback; the
/// error names the kind and position of the problem, never the text (it would quote the body).
pub fn parse_callback(body: &[u8]) -> Result<Vec<InboundEvent>, String> {
    let cb: Callback<'_> = serde_json::from_slice(body).map_err(|e| json_error(&e))?;
    cb.events
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let event_error = |e: serde_json::Error| format!("event {i}: {}", json_error(&e));
            let h: Header = serde_json::from_str(raw.get()).map_err(event_error)?;
            let id = match h
                .webhook_event_id
                .filter(|s| !s.is_empty() && s.len() <= 128)
            {
                Some(id) => id,
                // Every real event has an id; a digest keeps dedupe working if one ever lacks it.
                None => {
                    // Without the delivery context, so a redelivered copy has the same digest.
                    let mut v: serde_json::Value =
                        serde_json::from_str(raw.get()).map_err(event_error)?;
                    if let Some(o) = v.as_object_mut() {
                        o.remove("deliveryContext");
                    }
                    format!("sha256:{:x}", Sha256::digest(v.to_string().as_bytes()))
                }
            };
            let user = h
                .source
                .filter(|s| s.kind.as_deref() == Some("user"))
                .and_then(|s| s.user_id);
            Ok(InboundEvent {
                webhook_event_id: id,
                event_type: h.kind.unwrap_or_else(|| "unknown".into()),
                line_user_id: user,
                timestamp_ms: h.timestamp.unwrap_or(0),
                redelivery: h.delivery_context.is_some_and(|d| d.is_redelivery),
                body: raw.get().to_owned(),
            })
        })
        .collect()
}

/// An event read for processing.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `active` unless the channel is on standby.
    pub standby: bool,
    /// Reply token, when the event has one.
    pub reply_token: Option<String>,
    /// What happened.
    pub kind: EventKind,
}

/// The kinds of event yorisoi acts on; everything else is `Other`.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// The account was added (or unblocked).
    Follow {
        /// `follow.isUnblocked`.
        unblocked: bool,
    },
    /// The account was blocked.
    Unfollow,
    /// A message from the user.
    Message(Incoming),
    /// A postback (quick reply or date picker).
    Postback {
        /// `postback.data`.
        data: String,
        /// `postback.params.date` from the date picker.
        date: Option<String>,
    },
    /// Anything else (unknown types included).
    Other(String),
}

/// A user's message.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// Text.
    Text(String),
    /// A sticker, image, video, audio, file, location or anything else.
    NonText(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    reply_token: Option<String>,
    #[serde(default)]
    follow: Option<FollowDetail>,
    #[serde(default)]
    message: Option<MessageBody>,
    #[serde(default)]
    postback: Option<PostbackBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FollowDetail {
    #[serde(default)]
    is_unblocked: bool,
}

#[derive(Deserialize)]
struct MessageBody {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct PostbackBody {
    #[serde(default)]
    data: String,
    #[serde(default)]
    params: Option<PostbackParams>,
}

#[derive(Deserialize)]
struct PostbackParams {
    #[serde(default)]
    date: Option<String>,
}

impl Event {
    /// Reads a stored event. A body that cannot be read becomes `Other`.
    pub fn from_json(json: &str) -> Event {
        let Ok(b) = serde_json::from_str::<Body>(json) else {
            return Event {
                standby: false,
                reply_token: None,
                kind: EventKind::Other("unreadable".into()),
            };
        };
        let kind = match b.kind.as_str() {
            "follow" => EventKind::Follow {
                unblocked: b.follow.is_some_and(|f| f.is_unblocked),
            },
            "unfollow" => EventKind::Unfollow,
            "message" => match b.message {
                Some(MessageBody {
                    kind,
                    text: Some(text),
                }) if kind == "text" => EventKind::Message(Incoming::Text(text)),
                Some(m) => EventKind::Message(Incoming::NonText(m.kind)),
                None => EventKind::Message(Incoming::NonText("unknown".into())),
            },
            "postback" => match b.postback {
                Some(p) => EventKind::Postback {
                    data: p.data,
                    date: p.params.and_then(|p| p.date),
                },
                None => EventKind::Other("postback".into()),
            },
            other => EventKind::Other(other.to_owned()),
        };
        Event {
            standby: b.mode.as_deref() == Some("standby"),
            reply_token: b.reply_token.filter(|t| !t.is_empty()),
            kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_callbacks_and_keeps_unknown_events() {
        let body = br#"{"destination":"Ux","events":[
          {"type":"messageEdited","webhookEventId":"01A","timestamp":5,"mode":"active",
           "source":{"type":"user","userId":"U1"},"deliveryContext":{"isRedelivery":true}},
          {"type":"message","webhookEventId":"01B","timestamp":6,"source":{"type":"group","groupId":"C1","userId":"U2"},
           "message":{"type":"text","id":"1","text":"hi"}}]}"#;
        let events = parse_callback(body).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].event_type, "messageEdited");
        assert!(events[0].redelivery);
        assert_eq!(events[0].line_user_id.as_deref(), Some("U1"));
        assert_eq!(
            events[1].line_user_id, None,
            "group sources are not a user conversation"
        );
        assert_eq!(
            Event::from_json(&events[0].body).kind,
            EventKind::Other("messageEdited".into())
        );
    }

    #[test]
    fn rejects_non_callbacks() {
        for bad in [
            &b"not json"[..],
            b"[]",
            b"{}",
            b"{\"events\":{}}",
            b"{\"events\":[1]}",
        ] {
            assert!(
                parse_callback(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(
            parse_callback(b"{\"destination\":\"x\",\"events\":[]}")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn errors_never_quote_the_body() {
        let user = "U4af4980629aaaaaaaaaaaaaaaaaaaaaa";
        for bad in [
            format!(
                r#"{{"events":[{{"type":"message","source":{{"type":"user","userId":["{user}"]}}}}]}}"#
            ),
            format!(r#"{{"events":[{{"type":"message","timestamp":"{user}"}}]}}"#),
            format!(r#"{{"events":"{user}"}}"#),
            format!(r#"{{"events":[{{"type":"message","source":{{"userId":"{user}"#),
            format!(r#"{{"events":[{{"webhookEventId":{user}}}]}}"#),
        ] {
            let err = parse_callback(bad.as_bytes()).unwrap_err();
            assert!(!err.contains(user), "{err}");
            assert!(err.contains("line 1 column"), "{err}");
        }
    }

    #[test]
    fn reads_event_kinds() {
        let e =
            Event::from_json(r#"{"type":"follow","replyToken":"t","follow":{"isUnblocked":true}}"#);
        assert_eq!(e.kind, EventKind::Follow { unblocked: true });
        assert_eq!(e.reply_token.as_deref(), Some("t"));
        let e = Event::from_json(
            r#"{"type":"message","mode":"standby","message":{"type":"sticker","id":"1"}}"#,
        );
        assert!(e.standby);
        assert_eq!(
            e.kind,
            EventKind::Message(Incoming::NonText("sticker".into()))
        );
        let e = Event::from_json(
            r#"{"type":"postback","postback":{"data":"date","params":{"date":"2027-03-15"}}}"#,
        );
        assert_eq!(
            e.kind,
            EventKind::Postback {
                data: "date".into(),
                date: Some("2027-03-15".into())
            }
        );
    }
}
