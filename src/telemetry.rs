//! Logging set-up. Logs carry internal ids only: never LINE user ids, nicknames, dates or
//! message text. Errors that quote their input (serde's, a TOML parser's) are reduced to their
//! kind and position before they reach a log, and a panic logs its location, not its message.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (colour only when stderr is a terminal).
    Text,
    /// One JSON object a line, for log collectors.
    Json,
}

impl LogFormat {
    /// Reads `YORISOI_LOG_FORMAT` (`text` or `json`); `None` when the value is neither.
    pub fn parse(value: Option<&str>) -> Option<Self> {
        match value.map(str::trim) {
            None | Some("") => Some(Self::Text),
            Some(v) if v.eq_ignore_ascii_case("text") => Some(Self::Text),
            Some(v) if v.eq_ignore_ascii_case("json") => Some(Self::Json),
            Some(_) => None,
        }
    }
}

/// Installs the global subscriber (`RUST_LOG` overrides the default `info`;
/// `YORISOI_LOG_FORMAT=json` writes JSON lines) and the panic hook.
pub fn init() {
    init_with_default("info");
}

/// [`init`], with `default` as the filter when `RUST_LOG` is not set.
pub fn init_with_default(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let raw = std::env::var("YORISOI_LOG_FORMAT").ok();
    let format = LogFormat::parse(raw.as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format.unwrap_or(LogFormat::Text) {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    if format.is_none() {
        tracing::warn!("YORISOI_LOG_FORMAT must be `text` or `json`; writing text");
    }
    install_panic_hook();
}

/// Replaces the default panic message (which prints the payload, and a payload can quote
/// personal data) with a log line naming where the panic happened.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        match info.location() {
            Some(at) => tracing::error!(
                file = at.file(),
                line = at.line(),
                column = at.column(),
                thread,
                "panic (its message is not logged: it may quote personal data)"
            ),
            None => tracing::error!(
                thread,
                "panic (its message is not logged: it may quote personal data)"
            ),
        }
    }));
}

/// A JSON error's kind and position, never its text (serde quotes the offending value).
pub fn json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let kind = match e.classify() {
        Category::Io => "read error",
        Category::Syntax => "syntax error",
        Category::Data => "unexpected type or value",
        Category::Eof => "unexpected end of input",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_keep_kind_and_position_only() {
        let cases = [
            (
                r#"{"events":[{"source":{"userId":12}},"Uabc123secret"]}"#,
                "unexpected type or value",
            ),
            (r#"{"events":"Uabc123secret"}"#, "unexpected type or value"),
            (r#"{"events":["Uabc123secret"#, "unexpected end of input"),
            (r#"{"events":[Uabc123secret]}"#, "syntax error"),
        ];
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Cb {
            events: Vec<std::collections::HashMap<String, serde_json::Value>>,
        }
        for (input, kind) in cases {
            let e = serde_json::from_str::<Cb>(input).unwrap_err();
            assert!(
                e.to_string().contains("Uabc123secret") || kind != "unexpected type or value",
                "the case shows why this is needed: {e}"
            );
            let s = json_error(&e);
            assert!(s.starts_with(kind), "{input}: {s}");
            assert!(s.contains("line 1 column"), "{s}");
            assert!(!s.contains("Uabc123secret"), "{s}");
        }
    }

    #[test]
    fn log_format_values() {
        assert_eq!(LogFormat::parse(None), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("JSON")), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse(Some(" text ")), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("xml")), None);
    }
}
