//! `{placeholder}` templates, checked when the pack loads. `{{` and `}}` are literal braces.

use std::fmt::Write;

/// The placeholders a content editor may use.
pub const PLACEHOLDERS: &[&str] = &[
    "nickname",
    "week",
    "weekday",
    "gestational_day",
    "days_to_due",
    "days_since_birth",
    "age",
    "age_today",
    "months",
    "years",
    "municipality",
    "municipal_office",
    "health_center",
    "family_center",
    "contact",
    "service_name",
    "disclaimer",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(usize),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// Values for the placeholders, indexed like [`PLACEHOLDERS`]; `None` renders as empty.
pub type Vars = [Option<String>; PLACEHOLDERS.len()];

/// The index of a placeholder by name.
pub fn index_of(name: &str) -> Option<usize> {
    PLACEHOLDERS.iter().position(|p| *p == name)
}

impl Template {
    /// Parses a template; the error names the problem.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) if name.len() < 40 => name.push(c),
                            _ => return Err(format!("unclosed placeholder `{{{name}`")),
                        }
                    }
                    let Some(i) = index_of(name.trim()) else {
                        return Err(format!(
                            "unknown placeholder `{{{name}}}` (known: {})",
                            PLACEHOLDERS.join(", ")
                        ));
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(i));
                }
                '}' => return Err("a lone `}` (write `}}` for a literal brace)".into()),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Self { parts })
    }

    /// Whether the template uses the placeholder `name`.
    pub fn uses(&self, name: &str) -> bool {
        index_of(name).is_some_and(|i| self.parts.contains(&Part::Var(i)))
    }

    /// The template as an editor wrote it (placeholders as `{name}`, literal braces doubled).
    pub fn source(&self) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(&s.replace('{', "{{").replace('}', "}}")),
                Part::Var(i) => {
                    let _ = write!(out, "{{{}}}", PLACEHOLDERS[*i]);
                }
            }
        }
        out
    }

    /// Renders with the given values.
    pub fn render(&self, vars: &Vars) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var(i) => {
                    if let Some(v) = &vars[*i] {
                        let _ = write!(out, "{v}");
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders() {
        let t = Template::parse("{nickname}さん、妊娠{week}週{weekday}日です {{literal}}").unwrap();
        let mut vars: Vars = Default::default();
        vars[index_of("nickname").unwrap()] = Some("はなこ".into());
        vars[index_of("week").unwrap()] = Some("25".into());
        vars[index_of("weekday").unwrap()] = Some("5".into());
        assert_eq!(t.render(&vars), "はなこさん、妊娠25週5日です {literal}");
        assert!(t.uses("nickname") && t.uses("weekday"));
        assert!(!t.uses("age"), "a literal is not a placeholder");
        assert!(!Template::parse("{{age}}").unwrap().uses("age"));
        assert!(!t.uses("no-such-placeholder"));
        assert_eq!(
            t.source(),
            "{nickname}さん、妊娠{week}週{weekday}日です {{literal}}"
        );
    }

    #[test]
    fn reports_problems() {
        assert!(
            Template::parse("{name}")
                .unwrap_err()
                .contains("unknown placeholder `{name}`")
        );
        assert!(
            Template::parse("{nickname")
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(Template::parse("a } b").unwrap_err().contains("lone"));
    }
}
