//! The console's templates (minijinja, HTML auto-escaped), embedded in the binary.

use minijinja::Environment;
use serde::Serialize;
use std::sync::LazyLock;

/// The templates, parsed on first use (a unit test parses them all, so a syntax error never
/// reaches a running console).
pub static TEMPLATES: LazyLock<Templates> =
    LazyLock::new(|| Templates::load().expect("the embedded templates parse"));

/// The parsed templates.
pub struct Templates(Environment<'static>);

const FILES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("error.html", include_str!("templates/error.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("broadcasts.html", include_str!("templates/broadcasts.html")),
    (
        "broadcast_new.html",
        include_str!("templates/broadcast_new.html"),
    ),
    (
        "broadcast_preview.html",
        include_str!("templates/broadcast_preview.html"),
    ),
    ("broadcast.html", include_str!("templates/broadcast.html")),
    ("content.html", include_str!("templates/content.html")),
    ("staff.html", include_str!("templates/staff.html")),
    ("audit.html", include_str!("templates/audit.html")),
];

impl Templates {
    /// Parses every template (a syntax error fails the start, not a request).
    pub fn load() -> anyhow::Result<Self> {
        let mut env = Environment::new();
        for (name, src) in FILES {
            env.add_template(name, src)
                .map_err(|e| anyhow::anyhow!("template {name}: {e}"))?;
        }
        env.add_filter("status_label", |s: String| status_label(&s).to_string());
        env.add_filter("jst", |s: String| jst(&s));
        env.add_filter("num", |n: i64| number(n));
        Ok(Self(env))
    }

    /// Renders a page.
    pub fn render(&self, name: &str, ctx: impl Serialize) -> anyhow::Result<String> {
        self.0
            .get_template(name)?
            .render(ctx)
            .map_err(|e| anyhow::anyhow!("rendering {name}: {e}"))
    }
}

/// A broadcast status as staff read it.
pub fn status_label(s: &str) -> &'static str {
    match s {
        "scheduled" => "予約中",
        "sending" => "送信中",
        "done" => "送信済み",
        "cancelled" => "取り消し済み",
        _ => "不明",
    }
}

/// A stored UTC timestamp as Asia/Tokyo: 「2026/11/21 09:00」.
pub fn jst(s: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| {
            d.with_timezone(&crate::clock::jst())
                .format("%Y/%m/%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// 12345 → 「12,345」.
pub fn number(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_numbers_read_well() {
        Templates::load().unwrap();
        assert_eq!(number(0), "0");
        assert_eq!(number(1234567), "1,234,567");
        assert_eq!(number(-1000), "-1,000");
        assert_eq!(jst("2026-11-21T00:00:00.000Z"), "2026/11/21 09:00");
    }
}
