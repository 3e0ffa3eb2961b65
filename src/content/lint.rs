//! The wording rules of `content check`.
//!
//! Built in, because a message must be true on every day it is sent: an age is news only on
//! its monthly anniversary, the birthday never reads 「生まれて0日目」, a placeholder belongs to
//! the track it is used in, and the municipality is named by placeholder (a 町, 村 or 区 uses
//! the pack too). From `messages/style.toml`, written by the content editors: preferred
//! spellings, phrases to avoid (with the reason), words some tracks or ages must not carry,
//! topics a window of days must cover, and the milestone days that must have their message.

use super::load::{Diagnostic, line_of, toml_error, track_day, track_of};
use super::{BIRTH_PROMPT_FROM, BIRTH_REMINDER_DAYS, Body, ContentPack, DayKey, Template, Track};
use regex::Regex;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use toml::Spanned;

/// The style guide's file name, at the top of the pack.
pub const STYLE_FILE: &str = "style.toml";

/// The last track day anything can be sent on.
const END: i64 = i64::MAX;

/// One text the pack can send, with where and when it goes.
struct Piece {
    /// `None`: readers of every track (the footer, a notice for everyone).
    track: Option<Track>,
    /// The track days it can be sent on (inclusive).
    from: i64,
    to: i64,
    /// A birthday message: sent on the anniversary itself.
    birthday: bool,
    /// The municipality's own words (`municipality.toml`): they define the names.
    municipal: bool,
    file: PathBuf,
    line: usize,
    /// The text as written, placeholders included; Flex strings joined by new lines.
    text: String,
}

impl Piece {
    fn in_scope(&self, track: Option<Track>, from: i64, to: i64) -> bool {
        let track_ok = match (track, self.track) {
            (None, _) | (_, None) => true,
            (Some(a), Some(b)) => a == b,
        };
        track_ok && self.from <= to && from <= self.to
    }
}

fn source_text(body: &Body) -> String {
    fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }
    match body {
        Body::Text(t) => t.source(),
        Body::Flex { alt_text, contents } => {
            let mut out = vec![alt_text.source()];
            strings(contents, &mut out);
            out.join("\n")
        }
    }
}

fn pieces(pack: &ContentPack) -> Vec<Piece> {
    let mut out = Vec::new();
    let day_piece = |track, from, to, birthday, m: &super::DayMessage| Piece {
        track: Some(track),
        from,
        to,
        birthday,
        municipal: false,
        file: m.source.file.clone(),
        line: m.source.line,
        text: source_text(&m.body),
    };
    for (day, m) in &pack.pregnancy {
        out.push(day_piece(Track::Pregnancy, *day, *day, false, m));
    }
    for (day, m) in &pack.child_days {
        out.push(day_piece(Track::Child, *day, *day, false, m));
    }
    for (age, m) in &pack.birthdays {
        let day = 365 * i64::from(*age);
        out.push(day_piece(Track::Child, day, day + 1, true, m));
    }
    for n in &pack.notices {
        let (from, to) = n.range.unwrap_or((0, END));
        out.push(Piece {
            track: n.track,
            from,
            to,
            birthday: false,
            municipal: false,
            file: n.source.file.clone(),
            line: n.source.line,
            text: source_text(&n.body),
        });
    }
    let m = &pack.municipality;
    let reminders = (
        BIRTH_REMINDER_DAYS[0],
        BIRTH_REMINDER_DAYS[BIRTH_REMINDER_DAYS.len() - 1],
    );
    for (track, (from, to), text) in [
        (None, (0, END), m.footer.source()),
        (
            Some(Track::Pregnancy),
            (0, END),
            m.disclaimer.pregnancy.clone(),
        ),
        (Some(Track::Child), (0, END), m.disclaimer.child.clone()),
        // The birth's words go out on the days the code adds them.
        (
            Some(Track::Pregnancy),
            (BIRTH_PROMPT_FROM, reminders.0 - 1),
            m.birth.prompt.source(),
        ),
        (Some(Track::Pregnancy), reminders, m.birth.reminder.source()),
    ] {
        out.push(Piece {
            track,
            from,
            to,
            birthday: false,
            municipal: true,
            file: "municipality.toml".into(),
            line: 1,
            text,
        });
    }
    out
}

/// The lines of the pack's files, read once, to point at the line a phrase is on.
struct Lines {
    dir: PathBuf,
    files: HashMap<PathBuf, Vec<String>>,
}

impl Lines {
    /// The first line at or after `from` that holds `phrase` (else `from`).
    fn of(&mut self, file: &Path, from: usize, phrase: &str) -> usize {
        let dir = &self.dir;
        let lines = self.files.entry(file.to_owned()).or_insert_with(|| {
            std::fs::read_to_string(dir.join(file))
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect()
        });
        let first = phrase.lines().next().unwrap_or(phrase);
        lines
            .iter()
            .enumerate()
            .skip(from.saturating_sub(1))
            .find(|(_, l)| l.contains(first))
            .map(|(i, _)| i + 1)
            .unwrap_or(from)
    }
}

/// Where `phrase` occurs in `text` outside every exception (「自分から」 is not 「分から」).
fn find_outside(text: &str, phrase: &str, except: &[String]) -> bool {
    text.match_indices(phrase).any(|(at, _)| {
        !except.iter().any(|e| {
            e.match_indices(phrase).any(|(k, _)| {
                at >= k
                    && text
                        .get(at - k..)
                        .is_some_and(|rest| rest.starts_with(e.as_str()))
            })
        })
    })
}

const UNIT: &str = "(?:歳|か月|ヶ月|カ月|ヵ月)";
const AGE_VARS: &str = r"\{(?:age|age_today)\}";

/// Wording that says the age changes today (「になったら」, a condition, does not).
static ANNIVERSARY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"今日で(?:生後)?(?:{AGE_VARS}|(?:\{{(?:months|years)\}}|[0-9０-９]+){UNIT})|(?:{AGE_VARS}|(?:\{{(?:months|years)\}}|[0-9０-９]+){UNIT})(?:になりました|になったばかり|になったね|になった[。！!、]|を迎えました|を迎えたばかり|を迎えます)"
    ))
    .expect("a valid pattern")
});

const PREGNANCY_ONLY: &[&str] = &["week", "weekday", "gestational_day", "days_to_due"];
const CHILD_ONLY: &[&str] = &["days_since_birth", "age", "age_today", "months", "years"];

fn built_in(pack: &ContentPack, p: &Piece, lines: &mut Lines, diags: &mut Vec<Diagnostic>) {
    let at = |lines: &mut Lines, phrase: &str| Some(lines.of(&p.file, p.line, phrase));
    let child = p.track != Some(Track::Pregnancy);

    if child && !p.birthday {
        for m in ANNIVERSARY.find_iter(&p.text) {
            let line = at(lines, m.as_str());
            diags.push(Diagnostic::error(
                Some(p.file.clone()),
                line,
                format!(
                    "「{}」 says the age changes today, but this is sent on a day that is a monthly anniversary only for some children; write the age as a state (「{{age}}のこの頃は」) or use {{age_today}} (「今日で1歳5か月」 only on the day, otherwise 「1歳5か月」)",
                    m.as_str()
                ),
            ));
        }
    }
    if child && p.from == 0 && p.text.contains("{days_since_birth}日目") {
        diags.push(Diagnostic::error(
            Some(p.file.clone()),
            at(lines, "{days_since_birth}日目"),
            "on the day of birth this reads 「生まれて0日目」; word the birthday itself (「お誕生の日」) and start counting from day 1",
        ));
    }

    if let Ok(t) = Template::parse(&p.text) {
        let wrong: &[&str] = match p.track {
            Some(Track::Pregnancy) => CHILD_ONLY,
            Some(Track::Child) => PREGNANCY_ONLY,
            None => &[],
        };
        let mut misplaced: Vec<&str> = wrong.iter().copied().filter(|v| t.uses(v)).collect();
        if p.track.is_none() {
            misplaced.extend(
                PREGNANCY_ONLY
                    .iter()
                    .chain(CHILD_ONLY)
                    .copied()
                    .filter(|v| t.uses(v)),
            );
        }
        for v in misplaced {
            let phrase = format!("{{{v}}}");
            diags.push(Diagnostic::error(
                Some(p.file.clone()),
                at(lines, &phrase),
                format!(
                    "{phrase} is empty for {} readers: it belongs to the other track",
                    match p.track {
                        Some(t) => t.as_str(),
                        None => "some",
                    }
                ),
            ));
        }
    }

    let m = &pack.municipality;
    let by_hand: [(&str, &str); 5] = [
        ("市の", "{municipality}の"),
        ("市役所", "{municipal_office}"),
        ("市内", "{municipality}内"),
        ("市から", "{municipality}から"),
        ("市では", "{municipality}では"),
    ];
    let not_a_city = [
        "都市の".to_owned(),
        "都市では".to_owned(),
        "都市から".to_owned(),
    ];
    let mut found = false;
    for (phrase, instead) in by_hand {
        if find_outside(&p.text, phrase, &not_a_city) {
            found = true;
            diags.push(Diagnostic::warning(
                Some(p.file.clone()),
                at(lines, phrase),
                format!(
                    "「{phrase}」 names the municipality by hand (a 町, 村 or 区 uses this pack too) → 「{instead}」"
                ),
            ));
        }
    }
    for (value, instead) in [
        (&m.name, "{municipality}"),
        (&m.municipal_office, "{municipal_office}"),
        (&m.health_center, "{health_center}"),
        (&m.family_center, "{family_center}"),
    ] {
        if !found && !p.municipal && !value.trim().is_empty() && p.text.contains(value.as_str()) {
            diags.push(Diagnostic::warning(
                Some(p.file.clone()),
                at(lines, value),
                format!("「{value}」 is written by hand → 「{instead}」 (from municipality.toml)"),
            ));
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStyle {
    #[serde(default)]
    prefer: Vec<Spanned<RawPrefer>>,
    #[serde(default)]
    avoid: Vec<Spanned<RawAvoid>>,
    #[serde(default)]
    require: Vec<Spanned<RawRequire>>,
    #[serde(default)]
    milestones: Option<Spanned<Vec<i64>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrefer {
    write: String,
    not: Vec<String>,
    #[serde(default)]
    except: Vec<String>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAvoid {
    #[serde(default)]
    phrases: Vec<String>,
    reason: String,
    instead: Option<String>,
    #[serde(default)]
    except: Vec<String>,
    track: Option<String>,
    from: Option<toml::Value>,
    to: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequire {
    track: String,
    from: toml::Value,
    to: toml::Value,
    any_of: Vec<String>,
    reason: String,
}

/// A preferred spelling.
#[derive(Debug, Clone)]
pub struct Prefer {
    /// Write this…
    pub write: String,
    /// …not these.
    pub not: Vec<String>,
    /// Longer words that contain a variant and are fine (「自分から」).
    pub except: Vec<String>,
    /// Why, if the editors said.
    pub reason: Option<String>,
}

/// Phrases to avoid, anywhere or in part of a track.
#[derive(Debug, Clone)]
pub struct Avoid {
    /// The phrases.
    pub phrases: Vec<String>,
    /// Why: shown with every finding.
    pub reason: String,
    /// What to write instead, if there is one wording.
    pub instead: Option<String>,
    /// Longer words that contain a phrase and are fine.
    pub except: Vec<String>,
    /// Only in this track (and days), if set.
    pub track: Option<Track>,
    /// Track days (inclusive).
    pub from: i64,
    /// Track days (inclusive).
    pub to: i64,
}

/// A topic some message or notice in a window of days must name.
#[derive(Debug, Clone)]
struct Require {
    track: Track,
    from: i64,
    to: i64,
    any_of: Vec<String>,
    reason: String,
    line: usize,
}

/// The editors' style guide.
#[derive(Debug, Clone, Default)]
pub struct Style {
    /// Preferred spellings.
    pub prefer: Vec<Prefer>,
    /// Phrases to avoid.
    pub avoid: Vec<Avoid>,
    require: Vec<Require>,
    milestones: Vec<i64>,
    milestones_line: usize,
}

/// A style finding in one text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The phrase found.
    pub phrase: String,
    /// What the guide says.
    pub message: String,
}

impl Style {
    /// Reads `style.toml` from the pack folder: `Ok(None)` when there is none.
    pub fn load(dir: &Path) -> Result<Option<Self>, Vec<Diagnostic>> {
        let path = dir.join(STYLE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(vec![Diagnostic::error(
                    Some(STYLE_FILE.into()),
                    None,
                    format!("cannot read: {e}"),
                )]);
            }
        };
        let raw: RawStyle = toml::from_str(&text)
            .map_err(|e| vec![toml_error(Path::new(STYLE_FILE), &text, &e)])?;
        let mut errors = Vec::new();
        let line = |span: std::ops::Range<usize>| line_of(&text, span.start);
        let mut err = |line: usize, msg: String| {
            errors.push(Diagnostic::error(Some(STYLE_FILE.into()), Some(line), msg))
        };
        let mut style = Style::default();
        for p in raw.prefer {
            let l = line(p.span());
            let p = p.into_inner();
            if p.write.is_empty() || p.not.is_empty() || p.not.iter().any(String::is_empty) {
                err(
                    l,
                    "a [[prefer]] needs `write` and a non-empty `not` list".into(),
                );
                continue;
            }
            style.prefer.push(Prefer {
                write: p.write,
                not: p.not,
                except: p.except,
                reason: p.reason,
            });
        }
        for a in raw.avoid {
            let l = line(a.span());
            let a = a.into_inner();
            if a.phrases.is_empty() || a.phrases.iter().any(String::is_empty) {
                err(l, "an [[avoid]] needs a non-empty `phrases` list".into());
                continue;
            }
            let (track, from, to) = match scope(a.track.as_deref(), a.from.as_ref(), a.to.as_ref())
            {
                Ok(s) => s,
                Err(e) => {
                    err(l, e);
                    continue;
                }
            };
            style.avoid.push(Avoid {
                phrases: a.phrases,
                reason: a.reason,
                instead: a.instead,
                except: a.except,
                track,
                from,
                to,
            });
        }
        for r in raw.require {
            let l = line(r.span());
            let r = r.into_inner();
            match scope(Some(&r.track), Some(&r.from), Some(&r.to)) {
                Ok((Some(track), from, to)) if !r.any_of.is_empty() => {
                    style.require.push(Require {
                        track,
                        from,
                        to,
                        any_of: r.any_of,
                        reason: r.reason,
                        line: l,
                    })
                }
                Ok(_) => err(l, "a [[require]] needs a non-empty `any_of` list".into()),
                Err(e) => err(l, e),
            }
        }
        if let Some(m) = raw.milestones {
            style.milestones_line = line(m.span());
            style.milestones = m.into_inner();
        }
        if errors.is_empty() {
            Ok(Some(style))
        } else {
            Err(errors)
        }
    }

    /// What the guide's spellings and phrases say about one text sent to `track` readers on
    /// track days `from..=to` (`None`: the conversation's own words, outside any track).
    pub fn findings(&self, text: &str, track: Option<Track>, from: i64, to: i64) -> Vec<Finding> {
        let mut out = Vec::new();
        for p in &self.prefer {
            for not in &p.not {
                if find_outside(text, not, &p.except) {
                    out.push(Finding {
                        phrase: not.clone(),
                        message: format!(
                            "「{not}」 → 「{}」{}",
                            p.write,
                            p.reason
                                .as_deref()
                                .map(|r| format!(" ({r})"))
                                .unwrap_or_default()
                        ),
                    });
                }
            }
        }
        for a in &self.avoid {
            let applies = match (a.track, track) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(rule), Some(t)) => rule == t && from <= a.to && a.from <= to,
            };
            if !applies {
                continue;
            }
            for phrase in &a.phrases {
                if find_outside(text, phrase, &a.except) {
                    out.push(Finding {
                        phrase: phrase.clone(),
                        message: format!(
                            "「{phrase}」: {}{}",
                            a.reason,
                            a.instead
                                .as_deref()
                                .map(|i| format!(" → 「{i}」"))
                                .unwrap_or_default()
                        ),
                    });
                }
            }
        }
        out
    }
}

/// A rule's track and day range.
fn scope(
    track: Option<&str>,
    from: Option<&toml::Value>,
    to: Option<&toml::Value>,
) -> Result<(Option<Track>, i64, i64), String> {
    let Some(name) = track else {
        return match (from, to) {
            (None, None) => Ok((None, 0, END)),
            _ => Err("`from` and `to` need a `track`".into()),
        };
    };
    let track = track_of(name)
        .ok_or_else(|| format!("unknown track `{name}` (use \"pregnancy\" or \"child\")"))?;
    let from = from.map(|v| track_day(track, v)).transpose()?.unwrap_or(0);
    let to = to.map(|v| track_day(track, v)).transpose()?.unwrap_or(END);
    if from > to {
        return Err(format!("`from` ({from}) is after `to` ({to})"));
    }
    Ok((Some(track), from, to))
}

fn day_name(track: Track, day: i64) -> String {
    match track {
        Track::Pregnancy => format!("{}週{}日", day / 7, day % 7),
        Track::Child => format!("day {day}"),
    }
}

/// Runs every wording rule over the pack in `dir`.
pub fn lint(dir: &Path, pack: &ContentPack, diags: &mut Vec<Diagnostic>) {
    let mut lines = Lines {
        dir: dir.to_owned(),
        files: HashMap::new(),
    };
    let mut pieces = pieces(pack);
    for p in pieces.iter_mut().filter(|p| p.municipal) {
        // Where this entry of municipality.toml starts, so findings point into it.
        let start: String = p
            .text
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(20)
            .collect();
        p.line = lines.of(&p.file, 1, &start);
    }
    for p in &pieces {
        built_in(pack, p, &mut lines, diags);
    }
    let style = match Style::load(dir) {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(e) => {
            diags.extend(e);
            return;
        }
    };
    for p in &pieces {
        for f in style.findings(&p.text, p.track, p.from, p.to) {
            let line = lines.of(&p.file, p.line, &f.phrase);
            diags.push(Diagnostic::warning(
                Some(p.file.clone()),
                Some(line),
                f.message,
            ));
        }
    }
    for r in &style.require {
        let covered = pieces.iter().any(|p| {
            p.in_scope(Some(r.track), r.from, r.to)
                && !p.municipal
                && r.any_of.iter().any(|w| p.text.contains(w.as_str()))
        });
        if !covered {
            diags.push(Diagnostic::warning(
                Some(STYLE_FILE.into()),
                Some(r.line),
                format!(
                    "no {} message or notice from {} to {} names any of 「{}」: {}",
                    r.track.as_str(),
                    day_name(r.track, r.from),
                    day_name(r.track, r.to),
                    r.any_of.join("」「"),
                    r.reason
                ),
            ));
        }
    }
    for day in &style.milestones {
        let message = pack.child_days.get(day).or_else(|| {
            pack.birthdays
                .iter()
                .find(|(age, _)| {
                    let d = 365 * i64::from(**age);
                    *day == d || *day == d + 1
                })
                .map(|(_, m)| m)
        });
        let named = format!("{day}日");
        match message {
            None => diags.push(Diagnostic::warning(
                Some(STYLE_FILE.into()),
                Some(style.milestones_line),
                format!("milestone day {day} (生まれて{day}日目) has no message on the day"),
            )),
            Some(m)
                if !matches!(m.key, DayKey::Birthday(_))
                    && !source_text(&m.body).contains(&named) =>
            {
                diags.push(Diagnostic::warning(
                    Some(m.source.file.clone()),
                    Some(m.source.line),
                    format!("the milestone message on day {day} does not name 「{named}」"),
                ))
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_age_is_news_only_in_words_that_say_today() {
        for claim in [
            "今日で{age}です",
            "今日で{age_today}です",
            "今日で生後{months}か月",
            "{age}になりましたね",
            "{age_today}になりました",
            "{age}を迎えました",
            "{years}歳になりました",
            "今日で1歳5か月",
            "今日で３か月",
            "1歳5か月になったばかり",
            "2か月になった。",
            "4ヶ月を迎えます",
        ] {
            assert!(ANNIVERSARY.is_match(claim), "{claim}");
        }
        for state in [
            "お子さんは{age_today}ですね",
            "{age}のこの頃は",
            "2か月になったら予防接種",
            "今日で生まれて{days_since_birth}日目",
            "1歳になる日に",
            "3か月ごろ",
        ] {
            assert!(!ANNIVERSARY.is_match(state), "{state}");
        }
    }

    #[test]
    fn exceptions_cover_only_the_words_they_name() {
        let except = ["自分から".to_owned(), "翌月分から".to_owned()];
        assert!(!find_outside("自分から話す", "分から", &except));
        assert!(!find_outside("翌月分から受け取れます", "分から", &except));
        assert!(find_outside("よく分からない", "分から", &except));
        assert!(find_outside("自分から。よく分からない", "分から", &except));
        assert!(!find_outside("わからない", "分から", &except));
        assert!(find_outside("分から", "分から", &[]));
        // An exception whose text does not start where the phrase's does is no cover.
        assert!(find_outside("分からない自分から", "分から", &except));
    }

    fn style(toml: &str) -> Style {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STYLE_FILE), toml).unwrap();
        Style::load(dir.path()).unwrap().unwrap()
    }

    #[test]
    fn findings_name_the_wording_to_use_and_respect_the_scope() {
        let s = style(
            r#"
[[prefer]]
write = "おつかれさま"
not = ["お疲れさま"]
reason = "ひらがなで"

[[avoid]]
phrases = ["がんばってください"]
reason = "追いつめない"
instead = "無理をしないで"

[[avoid]]
track = "child"
from = 365
to = 730
phrases = ["赤ちゃん"]
reason = "1歳からは「お子さん」"
"#,
        );
        let f = s.findings("お疲れさまです。がんばってください。", None, 0, 0);
        assert_eq!(
            f.iter().map(|f| f.message.as_str()).collect::<Vec<_>>(),
            [
                "「お疲れさま」 → 「おつかれさま」 (ひらがなで)",
                "「がんばってください」: 追いつめない → 「無理をしないで」"
            ]
        );
        assert_eq!(f[0].phrase, "お疲れさま");
        let baby = |track, from, to| s.findings("赤ちゃん", track, from, to).len();
        assert_eq!(baby(Some(Track::Child), 365, 365), 1, "the first day");
        assert_eq!(baby(Some(Track::Child), 730, 800), 1, "the last day");
        assert_eq!(baby(Some(Track::Child), 0, 364), 0, "before");
        assert_eq!(baby(Some(Track::Child), 731, 900), 0, "after");
        assert_eq!(baby(Some(Track::Pregnancy), 365, 365), 0, "other track");
        assert_eq!(baby(None, 0, i64::MAX), 0, "the conversation is no track");
        assert!(s.findings("おつかれさまです", None, 0, 0).is_empty());
    }

    #[test]
    fn a_rule_that_cannot_work_is_an_error_on_its_line() {
        let load = |toml: &str| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(STYLE_FILE), toml).unwrap();
            Style::load(dir.path())
                .err()
                .map(|e| {
                    e.iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default()
        };
        for (toml, expect) in [
            (
                "[[prefer]]\nwrite = \"a\"\nnot = []\n",
                "style.toml:1: a [[prefer]] needs",
            ),
            ("[[prefer]]\nwrite = \"\"\nnot = [\"b\"]\n", "needs `write`"),
            ("[[prefer]]\nwrite = \"a\"\nnot = [\"\"]\n", "needs `write`"),
            (
                "\n[[avoid]]\nphrases = []\nreason = \"r\"\n",
                "style.toml:2: an [[avoid]] needs",
            ),
            (
                "[[avoid]]\nphrases = [\"\"]\nreason = \"r\"\n",
                "needs a non-empty",
            ),
            (
                "[[avoid]]\nphrases = [\"x\"]\nreason = \"r\"\nto = 3\n",
                "need a `track`",
            ),
            (
                "[[avoid]]\nphrases = [\"x\"]\nreason = \"r\"\ntrack = \"baby\"\n",
                "unknown track `baby`",
            ),
            (
                "[[avoid]]\nphrases = [\"x\"]\nreason = \"r\"\ntrack = \"child\"\nfrom = 9\nto = 3\n",
                "`from` (9) is after `to` (3)",
            ),
            (
                "[[avoid]]\nphrases = [\"x\"]\nreason = \"r\"\ntrack = \"pregnancy\"\nfrom = \"4週9日\"\n",
                "not a pregnancy day",
            ),
            (
                "[[require]]\ntrack = \"child\"\nfrom = 1\nto = 2\nany_of = []\nreason = \"r\"\n",
                "needs a non-empty `any_of`",
            ),
            ("[[prefer]]\nwrite = \"a\"\n", "style.toml:1"),
            ("[[prefr]]\n", "unknown field"),
        ] {
            let got = load(toml);
            assert!(got.contains(expect), "{toml:?}: {got}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(
            Style::load(dir.path()).unwrap().is_none(),
            "no guide, no rules"
        );
        std::fs::create_dir(dir.path().join(STYLE_FILE)).unwrap();
        let unreadable = Style::load(dir.path()).expect_err("a guide that cannot be read");
        assert!(
            unreadable[0]
                .to_string()
                .starts_with("error: style.toml: cannot read")
        );
        let s = style(
            "[[avoid]]\nphrases = [\"x\"]\nreason = \"r\"\ntrack = \"pregnancy\"\nfrom = \"4週0日\"\nto = 50\n",
        );
        assert_eq!((s.avoid[0].from, s.avoid[0].to), (28, 50));
        assert_eq!(s.avoid[0].track, Some(Track::Pregnancy));
        let s = style("[[avoid]]\nphrases = [\"x\"]\nreason = \"r\"\ntrack = \"child\"\n");
        assert_eq!((s.avoid[0].from, s.avoid[0].to), (0, END));
    }

    /// A small pack: the shipped municipality, the given files, and what `lint` says of it.
    fn lint_pack(files: &[(&str, &str)]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("messages/municipality.toml");
        std::fs::copy(shipped, dir.path().join("municipality.toml")).unwrap();
        for (name, body) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        let pack = ContentPack::load(dir.path()).expect("the pack loads");
        let mut diags = Vec::new();
        lint(dir.path(), &pack, &mut diags);
        diags.iter().map(|d| d.to_string()).collect()
    }

    fn child(days: &[(&str, &str)]) -> String {
        let mut out = "track = \"child\"\n".to_owned();
        for (key, text) in days {
            out.push_str(&format!(
                "\n[[message]]\n{key}\ntext = \"\"\"\nこんにちは。\n{text}\"\"\"\n"
            ));
        }
        out
    }

    #[test]
    fn built_in_rules_point_at_the_line_and_spare_what_is_true() {
        let found = lint_pack(&[(
            "child/a.toml",
            &child(&[
                ("day = 0", "生まれて{days_since_birth}日目です。"),
                ("day = 1", "生まれて{days_since_birth}日目。"),
                ("day = 40", "今日で{age}です。"),
                ("birthday = 1", "今日で{age}です。"),
                ("day = 41", "妊娠{week}週のころ。"),
                ("day = 42", "市の窓口と都市の公園。"),
                ("day = 43", "サンプル市役所の窓口。"),
                ("day = 44", "保健センターへ。{health_center}へ。"),
            ]),
        )]);
        let expect = [
            "error: child/a.toml:7: on the day of birth this reads 「生まれて0日目」",
            "error: child/a.toml:19: 「今日で{age}」 says the age changes today",
            "error: child/a.toml:31: {week} is empty for child readers",
            "warning: child/a.toml:37: 「市の」 names the municipality by hand",
            "warning: child/a.toml:43: 「市役所」 names the municipality by hand",
            "warning: child/a.toml:49: 「保健センター」 is written by hand → 「{health_center}」",
        ];
        for e in expect {
            assert!(found.iter().any(|f| f.starts_with(e)), "{e}\n{found:#?}");
        }
        assert_eq!(found.len(), expect.len(), "nothing else: {found:#?}");
    }

    #[test]
    fn notices_and_the_municipality_are_held_to_the_same_rules() {
        let found = lint_pack(&[
            (
                "notices/a.toml",
                "[[notice]]\nid = \"a\"\ntrack = \"child\"\nfrom = 0\nto = 10\ntext = \"\"\"\n生まれて{days_since_birth}日目。\"\"\"\n\n[[notice]]\nid = \"b\"\ntrack = \"child\"\nfrom = 1\nto = 10\ntext = \"生まれて{days_since_birth}日目。\"\n\n[[notice]]\nid = \"c\"\ndate = \"04-01\"\ntext = \"{age}になりました。\"\n\n[[notice]]\nid = \"d\"\ntrack = \"pregnancy\"\nfrom = 30\nto = 40\ntext = \"今日で3か月。\"\n",
            ),
            (
                "style.toml",
                "[[avoid]]\nphrases = [\"一般的\"]\nreason = \"r\"\n\n[[require]]\ntrack = \"child\"\nfrom = 5\nto = 9\nany_of = [\"児童手当\"]\nreason = \"手当\"\n\n[[require]]\ntrack = \"child\"\nfrom = 0\nto = 0\nany_of = [\"日目\"]\nreason = \"r\"\n\n[[require]]\ntrack = \"pregnancy\"\nfrom = 0\nto = 400\nany_of = [\"お問い合わせ\"]\nreason = \"the footer is no message\"\n",
            ),
        ]);
        let expect = [
            "error: notices/a.toml:7: on the day of birth this reads",
            "error: notices/a.toml:19: 「{age}になりました」 says the age changes today",
            "error: notices/a.toml:19: {age} is empty for some readers",
            "warning: municipality.toml:24: 「一般的」: r",
            "warning: municipality.toml:25: 「一般的」: r",
            "warning: style.toml:5: no child message or notice from day 5 to day 9 names any of 「児童手当」: 手当",
            "warning: style.toml:19: no pregnancy message or notice from 0週0日 to 57週1日 names any of 「お問い合わせ」",
        ];
        for e in expect {
            assert!(found.iter().any(|f| f.starts_with(e)), "{e}\n{found:#?}");
        }
        assert!(
            !found.iter().any(|f| f.contains("「今日で3か月」")),
            "a pregnancy notice is no child's age: {found:#?}"
        );
        assert!(
            !found.iter().any(|f| f.contains("notices/a.toml:13")),
            "notice b starts on day 1: {found:#?}"
        );
        assert_eq!(found.len(), expect.len(), "{found:#?}");
    }

    #[test]
    fn milestones_need_their_own_message_naming_the_day() {
        let found = lint_pack(&[
            (
                "child/a.toml",
                &child(&[
                    ("day = 100", "100日です。"),
                    ("day = 200", "生まれて{days_since_birth}日目。"),
                    ("birthday = 1", "1歳です。"),
                    ("birthday = 2", "2歳です。"),
                ]),
            ),
            (
                "style.toml",
                "\nmilestones = [100, 200, 300, 365, 366, 730, 731, 732]\n",
            ),
        ]);
        assert_eq!(
            found,
            [
                "warning: child/a.toml:9: the milestone message on day 200 does not name 「200日」",
                "warning: style.toml:2: milestone day 300 (生まれて300日目) has no message on the day",
                "warning: style.toml:2: milestone day 732 (生まれて732日目) has no message on the day",
            ],
            "day 100 names itself; the birthday covers 365 and 366"
        );
    }

    #[test]
    fn a_required_topic_counts_only_inside_its_track_and_window() {
        let pack = child(&[
            ("day = 10", "児童手当の申請を。"),
            ("birthday = 2", "2歳児の歯科健診。"),
        ]);
        let rule = |track: &str, from: i64, to: i64, word: &str| {
            format!(
                "[[require]]\ntrack = \"{track}\"\nfrom = {from}\nto = {to}\nany_of = [\"{word}\"]\nreason = \"r\"\n"
            )
        };
        let missing = |style: String| {
            lint_pack(&[("child/a.toml", &pack), ("style.toml", &style)])
                .iter()
                .filter(|f| f.contains("names any of"))
                .count()
        };
        assert_eq!(missing(rule("child", 10, 10, "児童手当")), 0, "on the day");
        assert_eq!(
            missing(rule("child", 0, 10, "児童手当")),
            0,
            "the window's end"
        );
        assert_eq!(
            missing(rule("child", 10, 99, "児童手当")),
            0,
            "the window's start"
        );
        assert_eq!(missing(rule("child", 5, 9, "児童手当")), 1, "before");
        assert_eq!(missing(rule("child", 11, 20, "児童手当")), 1, "after");
        assert_eq!(
            missing(rule("pregnancy", 0, 300, "児童手当")),
            1,
            "other track"
        );
        assert_eq!(missing(rule("child", 0, 300, "出生届")), 1, "another word");
        assert_eq!(
            missing(rule("child", 730, 730, "歯科健診")),
            0,
            "2nd birthday"
        );
        assert_eq!(
            missing(rule("child", 731, 731, "歯科健診")),
            0,
            "or the day after"
        );
        assert_eq!(
            missing(rule("child", 729, 729, "歯科健診")),
            1,
            "not the day before"
        );
        assert_eq!(missing(rule("child", 732, 900, "歯科健診")), 1, "nor later");
    }

    #[test]
    fn flex_bubbles_are_read_to_their_last_string() {
        let flex = r#"track = "child"

[[message]]
day = 50
alt_text = "こんにちは"
flex = '''
{ "type": "bubble", "body": { "type": "box", "layout": "vertical", "contents": [
  { "type": "text", "text": "はい" },
  { "type": "text", "text": "お疲れさまです" } ] } }
'''
"#;
        let found = lint_pack(&[
            ("child/a.toml", flex),
            (
                "style.toml",
                "[[prefer]]\nwrite = \"おつかれさま\"\nnot = [\"お疲れさま\"]\n",
            ),
        ]);
        assert_eq!(
            found,
            ["warning: child/a.toml:9: 「お疲れさま」 → 「おつかれさま」"]
        );
    }
}
