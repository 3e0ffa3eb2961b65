//! Reading the pack from disk, collecting every problem with its file and line.

use super::{
    BIRTH_REMINDER_DAYS, Birth, Body, ContentPack, DayKey, DayMessage, Disclaimer, Municipality,
    Notice, NoticeWhen, Source, Template, Track, pregnancy_key,
};
use chrono::NaiveDate;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;
use unicode_normalization::UnicodeNormalization;

/// A problem found in the pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Whether it stops the pack from being used.
    pub error: bool,
    /// File (relative to the pack) and line, when known.
    pub file: Option<PathBuf>,
    /// 1-based line.
    pub line: Option<usize>,
    /// What is wrong, in words an editor can act on.
    pub message: String,
}

impl Diagnostic {
    /// An error at a place.
    pub fn error(file: Option<PathBuf>, line: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            error: true,
            file,
            line,
            message: message.into(),
        }
    }
    /// A warning at a place.
    pub fn warning(file: Option<PathBuf>, line: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            error: false,
            file,
            line,
            message: message.into(),
        }
    }
    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.error
    }
    fn at(source: &Source, message: impl Into<String>) -> Self {
        Self::error(Some(source.file.clone()), Some(source.line), message)
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = if self.error { "error" } else { "warning" };
        match (&self.file, self.line) {
            (Some(file), Some(line)) => {
                write!(f, "{level}: {}:{line}: {}", file.display(), self.message)
            }
            (Some(file), None) => write!(f, "{level}: {}: {}", file.display(), self.message),
            _ => write!(f, "{level}: {}", self.message),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    track: Option<Spanned<String>>,
    #[serde(default)]
    message: Vec<Spanned<RawMessage>>,
    #[serde(default)]
    notice: Vec<Spanned<RawNotice>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    day: Option<toml::Value>,
    birthday: Option<i64>,
    text: Option<String>,
    flex: Option<String>,
    alt_text: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotice {
    id: String,
    track: Option<String>,
    from: Option<toml::Value>,
    to: Option<toml::Value>,
    date: Option<String>,
    text: Option<String>,
    flex: Option<String>,
    alt_text: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMunicipality {
    name: String,
    municipal_office: String,
    health_center: String,
    family_center: String,
    service_name: String,
    contact: String,
    grief_contact: Option<String>,
    #[serde(default)]
    annual_births: Option<u32>,
    disclaimer: toml::Value,
    footer: String,
    #[serde(default)]
    faq: Vec<super::Faq>,
    birth: Option<RawBirth>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBirth {
    prompt: Option<String>,
    reminder: Option<String>,
}

/// One `[birth]` entry: present, and saying every word in `must` (so the reader always learns
/// how to report the birth and, in a reminder, how to stop and where to ask).
fn birth_text(key: &str, text: Option<String>, must: &[&str]) -> Result<Template, String> {
    let text = text
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("[birth] needs `{key}`"))?;
    if let Some(word) = must.iter().find(|w| !text.contains(*w)) {
        return Err(format!("[birth] `{key}` must say 「{word}」"));
    }
    Template::parse(&text).map_err(|e| format!("[birth] `{key}`: {e}"))
}

/// The `[birth]` table: required, since the code adds its words to late pregnancy messages and
/// sends its reminder after the track.
fn birth(raw: Option<RawBirth>, source: Source) -> Result<Birth, String> {
    let raw = raw.ok_or(
        "municipality.toml needs a [birth] table with `prompt` (added to every pregnancy message from 37週0日: how to report the birth with 「出産しました」) and `reminder` (sent on 42週0日, 43週0日 and 44週0日)",
    )?;
    Ok(Birth {
        prompt: birth_text("prompt", raw.prompt, &["出産しました"])?,
        reminder: birth_text(
            "reminder",
            raw.reminder,
            &["出産しました", "配信停止", "{contact}"],
        )?,
        source,
    })
}

/// The reminders after the pregnancy track: one message per reminder day, all with the same body.
fn birth_reminders(birth: &Birth) -> Vec<DayMessage> {
    BIRTH_REMINDER_DAYS
        .iter()
        .enumerate()
        .map(|(i, gd)| DayMessage {
            key: DayKey::Pregnancy(*gd),
            id: format!("birth/reminder-{}", i + 1),
            body: Body::Text(birth.reminder.clone()),
            source: birth.source.clone(),
        })
        .collect()
}

/// The questions and answers fit in one message, and none is empty.
fn faq_fits(faq: &[super::Faq]) -> Result<(), String> {
    if let Some(i) = faq
        .iter()
        .position(|f| f.question.trim().is_empty() || f.answer.trim().is_empty())
    {
        return Err(format!(
            "faq {}: a question and its answer must both have words",
            i + 1
        ));
    }
    let total: usize = faq
        .iter()
        .map(|f| f.question.encode_utf16().count() + f.answer.encode_utf16().count() + 8)
        .sum();
    if total > super::FAQ_MAX_UTF16 {
        return Err(format!(
            "faq: the questions and answers hold {total} UTF-16 units; they go out as one message, so at most {}",
            super::FAQ_MAX_UTF16
        ));
    }
    Ok(())
}

/// One disclaimer for everyone (a string), or one per track (`[disclaimer]` with `pregnancy`
/// and `child`).
fn disclaimer(v: toml::Value) -> Result<Disclaimer, String> {
    match v {
        toml::Value::String(d) => Ok(Disclaimer {
            pregnancy: d.clone(),
            child: d,
        }),
        toml::Value::Table(mut t) => {
            let mut take = |k: &str| match t.remove(k) {
                Some(toml::Value::String(s)) => Ok(s),
                Some(_) => Err(format!("disclaimer.{k} must be text")),
                None => Err(format!(
                    "[disclaimer] needs `{k}` (a disclaimer for each track: pregnancy and child)"
                )),
            };
            let d = Disclaimer {
                pregnancy: take("pregnancy")?,
                child: take("child")?,
            };
            match t.keys().next() {
                Some(k) => Err(format!(
                    "[disclaimer] has an unknown key `{k}` (use pregnancy and child)"
                )),
                None => Ok(d),
            }
        }
        _ => {
            Err("disclaimer must be text, or a [disclaimer] table with pregnancy and child".into())
        }
    }
}

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

pub(super) fn toml_error(file: &Path, text: &str, e: &toml::de::Error) -> Diagnostic {
    let line = e.span().map(|s| line_of(text, s.start));
    let msg = e.message().trim().to_owned();
    Diagnostic::error(Some(file.to_owned()), line, msg)
}

pub(super) fn track_of(name: &str) -> Option<Track> {
    match name {
        "pregnancy" => Some(Track::Pregnancy),
        "child" => Some(Track::Child),
        _ => None,
    }
}

/// Reads a track day: pregnancy `"W週D日"` or a gestational day; child a day count.
pub(super) fn track_day(track: Track, v: &toml::Value) -> Result<i64, String> {
    match (track, v) {
        (_, toml::Value::Integer(n)) if *n >= 0 && *n <= 20_000 => Ok(*n),
        (Track::Pregnancy, toml::Value::String(s)) => {
            let s: String = s.nfkc().collect::<String>().replace(' ', "");
            let parsed = s
                .strip_suffix('日')
                .and_then(|rest| rest.split_once('週'))
                .and_then(|(w, d)| Some((w.parse::<i64>().ok()?, d.parse::<i64>().ok()?)));
            match parsed {
                Some((w, d)) if (0..=6).contains(&d) && (0..=45).contains(&w) => Ok(w * 7 + d),
                _ => Err(format!("`{s}` is not a pregnancy day like \"25週5日\"")),
            }
        }
        (Track::Child, toml::Value::String(s)) => Err(format!(
            "child days are numbers of days since birth, not `{s}`"
        )),
        (_, other) => Err(format!("`{other}` is not a day")),
    }
}

fn templates_in_json(v: &serde_json::Value, problems: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => {
            if let Err(e) = Template::parse(s) {
                problems.push(e);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| templates_in_json(x, problems)),
        serde_json::Value::Object(o) => o.values().for_each(|x| templates_in_json(x, problems)),
        _ => {}
    }
}

fn body(
    text: Option<String>,
    flex: Option<String>,
    alt_text: Option<String>,
) -> Result<Body, String> {
    match (text, flex) {
        (Some(t), None) => {
            if alt_text.is_some() {
                return Err("`alt_text` goes with `flex`, not `text`".into());
            }
            let t = t.trim();
            if t.is_empty() {
                return Err("`text` is empty".into());
            }
            Template::parse(t).map(Body::Text)
        }
        (None, Some(f)) => {
            let contents: serde_json::Value =
                serde_json::from_str(&f).map_err(|e| format!("`flex` is not valid JSON: {e}"))?;
            match contents.get("type").and_then(|t| t.as_str()) {
                Some("bubble") | Some("carousel") => {}
                _ => {
                    return Err("`flex` must be a bubble or carousel (\"type\": \"bubble\")".into());
                }
            }
            let mut problems = Vec::new();
            templates_in_json(&contents, &mut problems);
            if let Some(p) = problems.into_iter().next() {
                return Err(format!("in `flex`: {p}"));
            }
            let alt = alt_text
                .filter(|a| !a.trim().is_empty())
                .ok_or("a `flex` body needs `alt_text`")?;
            Ok(Body::Flex {
                alt_text: Template::parse(alt.trim())?,
                contents,
            })
        }
        (Some(_), Some(_)) => Err("a body is either `text` or `flex`, not both".into()),
        (None, None) => Err("no body: add `text` or `flex`".into()),
    }
}

fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            toml_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads every file in the pack; returns the pack when it has no errors, and every diagnostic.
pub fn load_with_diagnostics(dir: &Path) -> (Option<ContentPack>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let rel = |p: &Path| p.strip_prefix(dir).unwrap_or(p).to_owned();

    let muni_path = dir.join("municipality.toml");
    let municipality = match std::fs::read_to_string(&muni_path) {
        Err(e) => {
            diags.push(Diagnostic::error(
                Some("municipality.toml".into()),
                None,
                format!("cannot read: {e}"),
            ));
            None
        }
        Ok(text) => match toml::from_str::<RawMunicipality>(&text) {
            Err(e) => {
                diags.push(toml_error(&rel(&muni_path), &text, &e));
                None
            }
            Ok(m) => match Template::parse(m.footer.trim_matches('\n'))
                .map_err(|e| format!("footer: {e}"))
                .and_then(|f| faq_fits(&m.faq).map(|()| f))
                .and_then(|footer| disclaimer(m.disclaimer.clone()).map(|d| (footer, d)))
                .and_then(|(footer, d)| {
                    let source = Source {
                        file: rel(&muni_path),
                        line: text.find("[birth]").map_or(1, |at| line_of(&text, at)),
                    };
                    Ok((footer, d, birth(m.birth, source)?))
                }) {
                Err(e) => {
                    diags.push(Diagnostic::error(Some(rel(&muni_path)), None, e));
                    None
                }
                Ok((footer, disclaimer, birth)) => Some(Municipality {
                    name: m.name,
                    municipal_office: m.municipal_office,
                    health_center: m.health_center,
                    family_center: m.family_center,
                    service_name: m.service_name,
                    contact: m.contact,
                    grief_contact: m.grief_contact.filter(|c| !c.trim().is_empty()),
                    annual_births: m.annual_births.filter(|n| *n > 0),
                    disclaimer,
                    footer,
                    faq: m.faq,
                    birth,
                }),
            },
        },
    };

    let mut files = Vec::new();
    if let Err(e) = toml_files(dir, &mut files) {
        diags.push(Diagnostic::error(
            Some(dir.to_owned()),
            None,
            format!("cannot read the folder: {e}"),
        ));
    }
    files.sort();

    let mut pregnancy: BTreeMap<i64, DayMessage> = BTreeMap::new();
    let mut child_days: BTreeMap<i64, DayMessage> = BTreeMap::new();
    let mut birthdays: BTreeMap<u32, DayMessage> = BTreeMap::new();
    let mut notices: Vec<Notice> = Vec::new();

    let style_path = dir.join(super::lint::STYLE_FILE);
    for path in files
        .iter()
        .filter(|p| **p != muni_path && **p != style_path)
    {
        let file = rel(path);
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                diags.push(Diagnostic::error(
                    Some(file),
                    None,
                    format!("cannot read: {e}"),
                ));
                continue;
            }
        };
        let raw: RawFile = match toml::from_str(&text) {
            Ok(r) => r,
            Err(e) => {
                diags.push(toml_error(&file, &text, &e));
                continue;
            }
        };
        let src = |span: std::ops::Range<usize>| Source {
            file: file.clone(),
            line: line_of(&text, span.start),
        };

        let track = match &raw.track {
            Some(t) => match track_of(t.get_ref()) {
                Some(track) => Some(track),
                None => {
                    diags.push(Diagnostic::at(
                        &src(t.span()),
                        format!(
                            "unknown track `{}` (use \"pregnancy\" or \"child\")",
                            t.get_ref()
                        ),
                    ));
                    continue;
                }
            },
            None => None,
        };
        if !raw.message.is_empty() && track.is_none() {
            diags.push(Diagnostic::error(Some(file.clone()), Some(1), "messages need `track = \"pregnancy\"` or `track = \"child\"` at the top of the file"));
            continue;
        }

        for m in raw.message {
            let source = src(m.span());
            let m = m.into_inner();
            let track = track.expect("checked above");
            let b = match body(m.text, m.flex, m.alt_text) {
                Ok(b) => b,
                Err(e) => {
                    diags.push(Diagnostic::at(&source, e));
                    continue;
                }
            };
            match (track, m.day, m.birthday) {
                (Track::Pregnancy, Some(day), None) => match track_day(track, &day) {
                    Ok(gd) => {
                        let msg = DayMessage {
                            key: DayKey::Pregnancy(gd),
                            id: format!("pregnancy/{}", pregnancy_key(gd)),
                            body: b,
                            source: source.clone(),
                        };
                        if let Some(prev) = pregnancy.insert(gd, msg) {
                            diags.push(Diagnostic::at(
                                &source,
                                format!(
                                    "two messages on 妊娠{}週{}日 (the other is at {})",
                                    gd / 7,
                                    gd % 7,
                                    prev.source
                                ),
                            ));
                        }
                    }
                    Err(e) => diags.push(Diagnostic::at(&source, e)),
                },
                (Track::Child, Some(day), None) => match track_day(track, &day) {
                    Ok(n) => {
                        let msg = DayMessage {
                            key: DayKey::Child(n),
                            id: format!("child/day-{n}"),
                            body: b,
                            source: source.clone(),
                        };
                        if let Some(prev) = child_days.insert(n, msg) {
                            diags.push(Diagnostic::at(
                                &source,
                                format!(
                                    "two messages on day {n} (the other is at {})",
                                    prev.source
                                ),
                            ));
                        }
                    }
                    Err(e) => diags.push(Diagnostic::at(&source, e)),
                },
                (Track::Child, None, Some(age)) if (1..=30).contains(&age) => {
                    let age = age as u32;
                    let msg = DayMessage {
                        key: DayKey::Birthday(age),
                        id: format!("child/birthday-{age}"),
                        body: b,
                        source: source.clone(),
                    };
                    if let Some(prev) = birthdays.insert(age, msg) {
                        diags.push(Diagnostic::at(
                            &source,
                            format!(
                                "two messages for birthday {age} (the other is at {})",
                                prev.source
                            ),
                        ));
                    }
                }
                (Track::Child, None, Some(age)) => diags.push(Diagnostic::at(
                    &source,
                    format!("birthday {age} is not an age from 1 to 30"),
                )),
                (Track::Pregnancy, _, Some(_)) => diags.push(Diagnostic::at(
                    &source,
                    "`birthday` belongs to the child track",
                )),
                (_, Some(_), Some(_)) => diags.push(Diagnostic::at(
                    &source,
                    "a message has either `day` or `birthday`, not both",
                )),
                (_, None, None) => diags.push(Diagnostic::at(
                    &source,
                    "a message needs `day` (or `birthday` on the child track)",
                )),
            }
        }

        for n in raw.notice {
            let source = src(n.span());
            let n = n.into_inner();
            match notice(n, &source) {
                Ok(notice) => {
                    if let Some(prev) = notices.iter().find(|p| p.id == notice.id) {
                        diags.push(Diagnostic::at(
                            &source,
                            format!(
                                "notice id `{}` is already used at {}",
                                notice.id, prev.source
                            ),
                        ));
                    } else {
                        notices.push(notice);
                    }
                }
                Err(e) => diags.push(Diagnostic::at(&source, e)),
            }
        }
    }

    // A day message may not share its day with a birthday (day 365 or 366 for the 1st, ...).
    for (&age, bmsg) in &birthdays {
        let lo = 365 * age as i64;
        let hi = lo + (age as i64 + 3) / 4;
        for (&day, m) in child_days.range(lo..=hi) {
            diags.push(Diagnostic::at(&m.source, format!(
                "day {day} can fall on the {age} birthday (days {lo}–{hi}), which has its own message at {}",
                bmsg.source
            )));
        }
    }

    // After 41週6日 the [birth] reminders take over.
    for (&gd, m) in pregnancy.range(BIRTH_REMINDER_DAYS[0]..) {
        diags.push(Diagnostic::at(&m.source, format!(
            "妊娠{}週{}日 is after 41週6日, where the pregnancy track ends (after it, the [birth] reminder of municipality.toml goes out on 42週0日, 43週0日 and 44週0日)",
            gd / 7,
            gd % 7
        )));
    }

    let has_errors = diags.iter().any(Diagnostic::is_error);
    let pack = match municipality {
        Some(municipality) if !has_errors => Some(ContentPack {
            birth_reminders: birth_reminders(&municipality.birth),
            municipality,
            pregnancy,
            child_days,
            birthdays,
            notices,
        }),
        _ => None,
    };
    (pack, diags)
}

fn notice(n: RawNotice, _source: &Source) -> Result<Notice, String> {
    if n.id.is_empty()
        || !n
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "notice id `{}` must be ASCII letters, digits, - or _",
            n.id
        ));
    }
    let track = match n.track.as_deref() {
        None => None,
        Some(t) => Some(track_of(t).ok_or_else(|| format!("unknown track `{t}`"))?),
    };
    let range = match (n.from, n.to) {
        (None, None) => None,
        (Some(from), Some(to)) => {
            let t = track.ok_or("an age range (`from`/`to`) needs a `track`")?;
            let (from, to) = (track_day(t, &from)?, track_day(t, &to)?);
            if from > to {
                return Err(format!("`from` ({from}) is after `to` ({to})"));
            }
            Some((from, to))
        }
        _ => return Err("give both `from` and `to`".into()),
    };
    let when = match n.date.as_deref() {
        None => {
            if range.is_none() {
                return Err(
                    "a notice needs an age window (`track`, `from`, `to`) or a `date`".into(),
                );
            }
            NoticeWhen::Window
        }
        Some(d) => {
            if let Ok(date) = NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                NoticeWhen::Once(date)
            } else {
                let (m, day) = d
                    .split_once('-')
                    .and_then(|(m, day)| Some((m.parse::<u32>().ok()?, day.parse::<u32>().ok()?)))
                    .filter(|(m, day)| NaiveDate::from_ymd_opt(2024, *m, *day).is_some())
                    .ok_or_else(|| {
                        format!(
                            "`date = \"{d}\"`: use \"MM-DD\" (every year) or \"YYYY-MM-DD\" (once)"
                        )
                    })?;
                NoticeWhen::Yearly { month: m, day }
            }
        }
    };
    Ok(Notice {
        content_id: format!("notice/{}", n.id),
        id: n.id,
        track,
        range,
        when,
        body: body(n.text, n.flex, n.alt_text)?,
        source: _source.clone(),
    })
}
