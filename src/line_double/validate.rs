//! Request checks from messaging-api.yml: what LINE would refuse with 400, the double refuses.

use serde_json::Value;

/// A refused property and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON path, e.g. `messages[0].quickReply.items[2].action.label`.
    pub property: String,
    /// Why.
    pub message: String,
}

fn problem(property: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        property: property.into(),
        message: message.into(),
    }
}

const MESSAGE_TYPES: &[&str] = &[
    "text", "textV2", "sticker", "image", "video", "audio", "location", "imagemap", "template",
    "flex", "coupon",
];
const ACTION_TYPES: &[&str] = &[
    "camera",
    "cameraRoll",
    "clipboard",
    "datetimepicker",
    "location",
    "message",
    "postback",
    "richmenuswitch",
    "uri",
];

fn utf16(s: &str) -> usize {
    s.encode_utf16().count()
}

fn str_field<'a>(v: &'a Value, key: &str, path: &str, out: &mut Vec<Problem>) -> Option<&'a str> {
    match v.get(key) {
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            out.push(problem(format!("{path}.{key}"), "must be a string"));
            None
        }
        None => {
            out.push(problem(format!("{path}.{key}"), "is required"));
            None
        }
    }
}

fn max_len(v: Option<&str>, max: usize, property: String, out: &mut Vec<Problem>) {
    if let Some(s) = v {
        let n = s.chars().count();
        if n > max {
            out.push(problem(property, format!("length {n} exceeds {max}")));
        }
    }
}

fn date_like(mode: &str, s: &str) -> bool {
    match mode {
        "date" => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
        "time" => chrono::NaiveTime::parse_from_str(s, "%H:%M").is_ok(),
        _ => chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").is_ok(),
    }
}

fn action(a: &Value, path: &str, in_quick_reply: bool, out: &mut Vec<Problem>) {
    let Some(kind) = str_field(a, "type", path, out) else {
        return;
    };
    if !ACTION_TYPES.contains(&kind) {
        out.push(problem(
            format!("{path}.type"),
            format!("unknown action type {kind:?}"),
        ));
        return;
    }
    let label = a.get("label").and_then(Value::as_str);
    if in_quick_reply {
        match label {
            None => out.push(problem(
                format!("{path}.label"),
                "is required in a quick reply",
            )),
            Some("") => out.push(problem(format!("{path}.label"), "must not be empty")),
            Some(_) => {}
        }
    }
    max_len(label, 20, format!("{path}.label"), out);
    match kind {
        "message" => {
            let t = str_field(a, "text", path, out);
            max_len(t, 300, format!("{path}.text"), out);
            if t == Some("") {
                out.push(problem(format!("{path}.text"), "must not be empty"));
            }
        }
        "postback" => {
            max_len(
                str_field(a, "data", path, out),
                300,
                format!("{path}.data"),
                out,
            );
            max_len(
                a.get("displayText").and_then(Value::as_str),
                300,
                format!("{path}.displayText"),
                out,
            );
        }
        "datetimepicker" => {
            max_len(
                str_field(a, "data", path, out),
                300,
                format!("{path}.data"),
                out,
            );
            let mode = str_field(a, "mode", path, out).unwrap_or("date");
            if !["date", "time", "datetime"].contains(&mode) {
                out.push(problem(
                    format!("{path}.mode"),
                    "must be date, time or datetime",
                ));
                return;
            }
            let get = |k: &str| a.get(k).and_then(Value::as_str);
            for k in ["initial", "min", "max"] {
                if let Some(v) = get(k)
                    && !date_like(mode, v)
                {
                    out.push(problem(
                        format!("{path}.{k}"),
                        format!("{v:?} is not a valid {mode}"),
                    ));
                }
            }
            if let (Some(min), Some(max)) = (get("min"), get("max")) {
                if min > max {
                    out.push(problem(format!("{path}.min"), "min is after max"));
                }
                if let Some(i) = get("initial")
                    && (i < min || i > max)
                {
                    out.push(problem(
                        format!("{path}.initial"),
                        "initial is outside min..max",
                    ));
                }
            }
        }
        "uri" => {
            let u = str_field(a, "uri", path, out);
            max_len(u, 1000, format!("{path}.uri"), out);
        }
        "richmenuswitch" => {
            str_field(a, "richMenuAliasId", path, out);
            str_field(a, "data", path, out);
        }
        _ => {}
    }
}

fn quick_reply(q: &Value, path: &str, out: &mut Vec<Problem>) {
    let Some(items) = q.get("items").and_then(Value::as_array) else {
        out.push(problem(
            format!("{path}.items"),
            "is required and must be an array",
        ));
        return;
    };
    if items.is_empty() || items.len() > 13 {
        out.push(problem(
            format!("{path}.items"),
            format!("must have 1 to 13 items, has {}", items.len()),
        ));
    }
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}.items[{i}]");
        if item.get("type").and_then(Value::as_str) != Some("action") {
            out.push(problem(format!("{p}.type"), "must be \"action\""));
        }
        match item.get("action") {
            Some(a) => action(a, &format!("{p}.action"), true, out),
            None => out.push(problem(format!("{p}.action"), "is required")),
        }
    }
}

/// Checks a `messages` array.
pub fn messages(v: Option<&Value>, out: &mut Vec<Problem>) {
    let Some(list) = v.and_then(Value::as_array) else {
        out.push(problem("messages", "is required and must be an array"));
        return;
    };
    if list.is_empty() || list.len() > 5 {
        out.push(problem(
            "messages",
            format!("must have 1 to 5 items, has {}", list.len()),
        ));
    }
    for (i, m) in list.iter().enumerate() {
        let path = format!("messages[{i}]");
        if !m.is_object() {
            out.push(problem(path, "must be an object"));
            continue;
        }
        let Some(kind) = str_field(m, "type", &path, out) else {
            continue;
        };
        if !MESSAGE_TYPES.contains(&kind) {
            out.push(problem(
                format!("{path}.type"),
                format!("unknown message type {kind:?}"),
            ));
            continue;
        }
        match kind {
            "text" => {
                if let Some(t) = str_field(m, "text", &path, out) {
                    if t.is_empty() {
                        out.push(problem(format!("{path}.text"), "must not be empty"));
                    }
                    if utf16(t) > 5000 {
                        out.push(problem(
                            format!("{path}.text"),
                            format!("length {} UTF-16 units exceeds 5000", utf16(t)),
                        ));
                    }
                }
            }
            "flex" => {
                let alt = str_field(m, "altText", &path, out);
                if alt == Some("") {
                    out.push(problem(format!("{path}.altText"), "must not be empty"));
                }
                max_len(alt, 1500, format!("{path}.altText"), out);
                match m.get("contents") {
                    Some(c) => {
                        let kind = c.get("type").and_then(Value::as_str);
                        if !matches!(kind, Some("bubble") | Some("carousel")) {
                            out.push(problem(
                                format!("{path}.contents.type"),
                                "must be bubble or carousel",
                            ));
                        }
                        let size = serde_json::to_vec(c).map(|v| v.len()).unwrap_or(0);
                        let limit = if kind == Some("carousel") {
                            50 * 1024
                        } else {
                            30 * 1024
                        };
                        if size > limit {
                            out.push(problem(
                                format!("{path}.contents"),
                                format!("size {size} bytes exceeds {limit}"),
                            ));
                        }
                    }
                    None => out.push(problem(format!("{path}.contents"), "is required")),
                }
            }
            _ => {}
        }
        if let Some(q) = m.get("quickReply") {
            quick_reply(q, &format!("{path}.quickReply"), out);
        }
    }
}

/// Most recipients of one multicast (`MulticastRequest.to`).
pub const MULTICAST_MAX_TO: usize = 500;

/// Checks a multicast's `to`: 1 to 500 user ids as webhook events carry them. The ids are not
/// quoted back: they are personal data.
pub fn multicast_to(v: Option<&Value>, out: &mut Vec<Problem>) {
    let Some(list) = v.and_then(Value::as_array) else {
        out.push(problem("to", "is required and must be an array"));
        return;
    };
    if list.is_empty() || list.len() > MULTICAST_MAX_TO {
        out.push(problem(
            "to",
            format!(
                "must have 1 to {MULTICAST_MAX_TO} items, has {}",
                list.len()
            ),
        ));
    }
    for (i, id) in list.iter().enumerate() {
        match id.as_str() {
            Some(s) if crate::domain::LineUserId::parse(s).is_some() => {}
            Some(_) => out.push(problem(format!("to[{i}]"), "is not a user id")),
            None => out.push(problem(format!("to[{i}]"), "must be a string")),
        }
    }
}

/// Checks an `X-Line-Retry-Key`: a UUID in hexadecimal form.
pub fn retry_key(key: &str) -> bool {
    key.len() == 36 && uuid::Uuid::parse_str(key).is_ok()
}

fn int_field(v: &Value, key: &str, path: &str, out: &mut Vec<Problem>) -> Option<u64> {
    match v.get(key) {
        Some(n) if n.as_u64().is_some() => n.as_u64(),
        Some(_) => {
            out.push(problem(
                format!("{path}.{key}"),
                "must be a non-negative integer",
            ));
            None
        }
        None => {
            out.push(problem(format!("{path}.{key}"), "is required"));
            None
        }
    }
}

/// Checks a rich menu object (`RichMenuRequest`): size, selected, name, chatBarText, areas.
pub fn rich_menu(v: &Value, out: &mut Vec<Problem>) {
    let size = match v.get("size") {
        Some(s) => (
            int_field(s, "width", "size", out),
            int_field(s, "height", "size", out),
        ),
        None => {
            out.push(problem("size", "is required"));
            (None, None)
        }
    };
    if let (Some(w), Some(h)) = size
        && (!(800..=2500).contains(&w) || h < 250 || (w as f64) / (h.max(1) as f64) < 1.45)
    {
        {
            out.push(problem(
                "size",
                "width must be 800 to 2500, height at least 250, width / height at least 1.45",
            ));
        }
    }
    if !v.get("selected").is_some_and(Value::is_boolean) {
        out.push(problem("selected", "is required and must be a boolean"));
    }
    let name = str_field(v, "name", "", out);
    if name == Some("") {
        out.push(problem("name", "must not be empty"));
    }
    max_len(name, 300, "name".into(), out);
    let bar = str_field(v, "chatBarText", "", out);
    if bar == Some("") {
        out.push(problem("chatBarText", "must not be empty"));
    }
    max_len(bar, 14, "chatBarText".into(), out);
    let Some(areas) = v.get("areas").and_then(Value::as_array) else {
        out.push(problem("areas", "is required and must be an array"));
        return;
    };
    if areas.len() > 20 {
        out.push(problem(
            "areas",
            format!("at most 20 areas, has {}", areas.len()),
        ));
    }
    for (i, area) in areas.iter().enumerate() {
        let path = format!("areas[{i}]");
        match area.get("bounds") {
            Some(b) => {
                let bp = format!("{path}.bounds");
                let [x, y, w, h] = ["x", "y", "width", "height"].map(|k| int_field(b, k, &bp, out));
                if let (Some(x), Some(y), Some(w), Some(h), (Some(sw), Some(sh))) =
                    (x, y, w, h, size)
                    && (w == 0 || h == 0 || x.saturating_add(w) > sw || y.saturating_add(h) > sh)
                {
                    out.push(problem(bp, "must be inside the menu and not empty"));
                }
            }
            None => out.push(problem(format!("{path}.bounds"), "is required")),
        }
        match area.get("action") {
            Some(a) => action(a, &format!("{path}.action"), false, out),
            None => out.push(problem(format!("{path}.action"), "is required")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value) -> Vec<Problem> {
        let mut out = Vec::new();
        messages(Some(&v), &mut out);
        out
    }

    #[test]
    fn enforces_the_contract() {
        let cases: Vec<(&str, Value, bool)> = vec![
            ("plain text", json!([{"type":"text","text":"a"}]), true),
            ("no messages", json!([]), false),
            (
                "six messages",
                Value::Array(vec![json!({"type":"text","text":"a"}); 6]),
                false,
            ),
            ("text missing", json!([{"type":"text"}]), false),
            ("unknown type", json!([{"type":"hologram"}]), false),
            (
                "text too long",
                json!([{"type":"text","text":"あ".repeat(5001)}]),
                false,
            ),
            (
                "emoji counted in UTF-16",
                json!([{"type":"text","text":"😀".repeat(2501)}]),
                false,
            ),
            (
                "flex without altText",
                json!([{"type":"flex","contents":{"type":"bubble"}}]),
                false,
            ),
            (
                "14 quick replies",
                json!([{"type":"text","text":"a","quickReply":{"items":
                (0..14).map(|i| json!({"type":"action","action":{"type":"message","label":format!("{i}"),"text":"x"}})).collect::<Vec<_>>()}}]),
                false,
            ),
            (
                "label over 20",
                json!([{"type":"text","text":"a","quickReply":{"items":[
                {"type":"action","action":{"type":"message","label":"あ".repeat(21),"text":"x"}}]}}]),
                false,
            ),
            (
                "label missing",
                json!([{"type":"text","text":"a","quickReply":{"items":[
                {"type":"action","action":{"type":"message","text":"x"}}]}}]),
                false,
            ),
            (
                "date picker initial outside range",
                json!([{"type":"text","text":"a","quickReply":{"items":[
                {"type":"action","action":{"type":"datetimepicker","label":"日付","data":"d","mode":"date","initial":"2030-01-01","min":"2026-01-01","max":"2027-01-01"}}]}}]),
                false,
            ),
            (
                "date picker ok",
                json!([{"type":"text","text":"a","quickReply":{"items":[
                {"type":"action","action":{"type":"datetimepicker","label":"日付","data":"d","mode":"date","initial":"2026-06-01","min":"2026-01-01","max":"2027-01-01"}}]}}]),
                true,
            ),
        ];
        for (what, v, ok) in cases {
            let problems = check(v);
            assert_eq!(problems.is_empty(), ok, "{what}: {problems:?}");
        }
        assert!(retry_key("123e4567-e89b-12d3-a456-426614174000"));
        assert!(!retry_key("123e4567e89b12d3a456426614174000"));
        assert!(!retry_key("not-a-uuid"));
    }
}
