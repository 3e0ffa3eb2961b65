//! `yorisoi content check`: everything an editor needs to know before a pack goes live.

use super::load::{Diagnostic, load_with_diagnostics};
use super::render::{self, append_footer, prepend_label};
use super::{Body, ContentPack, NoticeWhen, Track};
use crate::domain::{ChildAge, Position, PregnancyPosition};
use crate::line::Message;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// LINE: text message length in UTF-16 code units.
pub const MAX_TEXT_UTF16: usize = 5_000;
/// LINE: Flex container JSON size.
pub const MAX_FLEX_BYTES: usize = 30 * 1024;
/// LINE: alt text length.
pub const MAX_ALT_TEXT: usize = 1_500;

/// Coverage of one track.
#[derive(Debug, Clone, Serialize)]
pub struct TrackCoverage {
    /// `pregnancy` or `child`.
    pub track: String,
    /// Day messages (birthdays included).
    pub count: usize,
    /// First day, as an editor writes it.
    pub first: Option<String>,
    /// Last day.
    pub last: Option<String>,
    /// Days without a message between first and last, as ranges (daily tracks only).
    pub gaps: Vec<String>,
    /// Messages and largest gap per cadence band.
    pub bands: Vec<Band>,
}

/// A cadence band.
#[derive(Debug, Clone, Serialize)]
pub struct Band {
    /// e.g. `days 0–100 (daily)`.
    pub name: String,
    /// Messages in the band.
    pub count: usize,
    /// Largest distance between consecutive messages.
    pub max_gap: i64,
    /// The largest gap the cadence allows.
    pub expected_max_gap: i64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Errors and warnings.
    pub diagnostics: Vec<DiagnosticOut>,
    /// Coverage per track.
    pub coverage: Vec<TrackCoverage>,
    /// Notices by kind.
    pub notices: NoticeCounts,
    /// Most message objects one registration can receive on one day, and where.
    pub busiest_day: Option<Busiest>,
    /// `--strict`: every warning was counted as an error.
    pub strict: bool,
}

/// Notice counts.
#[derive(Debug, Clone, Serialize, Default)]
pub struct NoticeCounts {
    /// Age-window notices.
    pub age_window: usize,
    /// Date-specified notices.
    pub dated: usize,
}

/// The busiest day.
#[derive(Debug, Clone, Serialize)]
pub struct Busiest {
    /// Message objects.
    pub objects: usize,
    /// Where.
    pub day: String,
}

/// A diagnostic as printed.
#[derive(Debug, Clone, Serialize)]
pub struct DiagnosticOut {
    /// `error` or `warning`.
    pub level: &'static str,
    /// File.
    pub file: Option<String>,
    /// Line.
    pub line: Option<usize>,
    /// Message.
    pub message: String,
}

impl From<&Diagnostic> for DiagnosticOut {
    fn from(d: &Diagnostic) -> Self {
        Self {
            level: if d.error { "error" } else { "warning" },
            file: d.file.as_ref().map(|f| f.display().to_string()),
            line: d.line,
            message: d.message.clone(),
        }
    }
}

impl Report {
    /// Whether any error was found.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.level == "error")
    }
}

fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Worst-case values: the longest nickname and positions.
fn worst_position(track: Track) -> Position {
    match track {
        Track::Pregnancy => Position::Pregnancy(PregnancyPosition {
            gestational_day: 293,
        }),
        Track::Child => Position::Child(ChildAge {
            days: 10_000,
            months: 400,
            anniversary: true,
        }),
    }
}

fn check_limits(
    pack: &ContentPack,
    body: &Body,
    track: Track,
    source: &super::Source,
    diags: &mut Vec<Diagnostic>,
) {
    // The longest nickname (the UTF-16 cap, in emoji) and a twin label.
    let nickname = "😀".repeat(crate::domain::NICKNAME_MAX_UTF16 / 2);
    let vars = render::vars(pack, &nickname, worst_position(track));
    let mut m = render::render(body, &vars);
    if track == Track::Pregnancy {
        // From 37週0日 the code adds the birth prompt.
        render::append_paragraph(&mut m, &pack.municipality.birth.prompt.render(&vars));
    }
    prepend_label(&mut m, &format!("【10人目：{nickname}さん・妊娠41週6日】"));
    append_footer(&mut m, &render::footer(pack, &vars));
    let at = |msg: String| Diagnostic::error(Some(source.file.clone()), Some(source.line), msg);
    match &m {
        Message::Text { text, .. } => {
            let n = utf16_len(text);
            if n > MAX_TEXT_UTF16 {
                diags.push(at(format!(
                    "text can reach {n} UTF-16 units with the footer; LINE allows {MAX_TEXT_UTF16}"
                )));
            }
        }
        // Content packs hold text and Flex only.
        Message::Image { .. } => {}
        Message::Flex {
            alt_text, contents, ..
        } => {
            let n = alt_text.chars().count();
            if n > MAX_ALT_TEXT {
                diags.push(at(format!(
                    "alt_text can reach {n} characters; LINE allows {MAX_ALT_TEXT}"
                )));
            }
            let size = serde_json::to_vec(contents).map(|v| v.len()).unwrap_or(0);
            if size > MAX_FLEX_BYTES {
                diags.push(at(format!(
                    "the Flex JSON can reach {size} bytes; LINE allows {MAX_FLEX_BYTES}"
                )));
            }
        }
    }
}

fn day_label(track: Track, day: i64) -> String {
    match track {
        Track::Pregnancy => format!("{}週{}日", day / 7, day % 7),
        Track::Child => format!("day {day}"),
    }
}

fn busiest(pack: &ContentPack) -> Option<(usize, String)> {
    // The worst case is a reader who registers that very day: every window containing the day
    // starts for them, plus the most dated notices that can share one date.
    let mut best: Option<(usize, String)> = None;
    for (track, days) in [
        (
            Track::Pregnancy,
            pack.pregnancy.keys().copied().collect::<Vec<_>>(),
        ),
        (
            Track::Child,
            pack.child_days
                .keys()
                .copied()
                .chain(pack.birthdays.keys().map(|a| 365 * *a as i64))
                .collect(),
        ),
    ] {
        let last = days.iter().copied().max().unwrap_or(0);
        for day in 0..=last {
            let has_message = days.contains(&day) as usize;
            let applies = |n: &&super::Notice| {
                n.track.is_none_or(|t| t == track)
                    && n.range.is_none_or(|(f, t)| f <= day && day <= t)
            };
            let windows = pack
                .notices
                .iter()
                .filter(applies)
                .filter(|n| n.when == NoticeWhen::Window)
                .count();
            let mut per_date: BTreeMap<String, usize> = BTreeMap::new();
            for n in pack.notices.iter().filter(applies) {
                match n.when {
                    NoticeWhen::Yearly { month, day } => {
                        *per_date.entry(format!("{month:02}-{day:02}")).or_default() += 1
                    }
                    NoticeWhen::Once(d) => {
                        *per_date.entry(d.format("%m-%d").to_string()).or_default() += 1
                    }
                    NoticeWhen::Window => {}
                }
            }
            let dated = per_date.values().copied().max().unwrap_or(0);
            let total = has_message + windows + dated;
            if best.as_ref().is_none_or(|(b, _)| total > *b) {
                best = Some((
                    total,
                    format!("{} {}", track.as_str(), day_label(track, day)),
                ));
            }
        }
    }
    best
}

fn gaps(days: &[i64]) -> Vec<String> {
    days.windows(2)
        .filter(|w| w[1] - w[0] > 1)
        .map(|w| {
            if w[1] - w[0] == 2 {
                format!("{}", w[0] + 1)
            } else {
                format!("{}–{}", w[0] + 1, w[1] - 1)
            }
        })
        .collect()
}

fn band(name: &str, days: &[i64], lo: i64, hi: i64, expected: i64) -> Band {
    let in_band: Vec<i64> = days
        .iter()
        .copied()
        .filter(|d| *d >= lo && *d <= hi)
        .collect();
    let max_gap = in_band.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    Band {
        name: name.into(),
        count: in_band.len(),
        max_gap,
        expected_max_gap: expected,
    }
}

/// Checks the pack in `dir`; `strict` makes every warning an error (`content check --strict`).
pub fn check(dir: &Path, strict: bool) -> Report {
    let (pack, mut diags) = load_with_diagnostics(dir);
    let mut coverage = Vec::new();
    let mut notices = NoticeCounts::default();
    let mut busiest_day = None;
    if let Some(pack) = &pack {
        super::lint::lint(dir, pack, &mut diags);
        for m in pack.pregnancy.values() {
            check_limits(pack, &m.body, Track::Pregnancy, &m.source, &mut diags);
        }
        for m in &pack.birth_reminders {
            check_limits(pack, &m.body, Track::Pregnancy, &m.source, &mut diags);
        }
        for m in pack.child_days.values().chain(pack.birthdays.values()) {
            check_limits(pack, &m.body, Track::Child, &m.source, &mut diags);
        }
        for n in &pack.notices {
            check_limits(
                pack,
                &n.body,
                n.track.unwrap_or(Track::Child),
                &n.source,
                &mut diags,
            );
            match n.when {
                NoticeWhen::Window => notices.age_window += 1,
                _ => notices.dated += 1,
            }
        }
        if let Some((objects, day)) = busiest(pack) {
            if objects > crate::delivery::MAX_OBJECTS {
                diags.push(Diagnostic::error(None, None, format!(
                    "on {day} one reader can get {objects} message objects (day message, age-window notices and dated notices together); LINE allows {} per push",
                    crate::delivery::MAX_OBJECTS
                )));
            }
            busiest_day = Some(Busiest { objects, day });
        }

        let p: Vec<i64> = pack.pregnancy.keys().copied().collect();
        coverage.push(TrackCoverage {
            track: "pregnancy".into(),
            count: p.len(),
            first: p.first().map(|d| day_label(Track::Pregnancy, *d)),
            last: p.last().map(|d| day_label(Track::Pregnancy, *d)),
            gaps: gaps(&p)
                .into_iter()
                .map(|g| format!("gestational days {g}"))
                .collect(),
            bands: vec![band("4週0日–41週6日 (daily)", &p, 28, 293, 1)],
        });
        let mut c: Vec<i64> = pack.child_days.keys().copied().collect();
        c.extend(pack.birthdays.keys().map(|a| 365 * *a as i64));
        c.sort_unstable();
        let birthdays: Vec<String> = pack
            .birthdays
            .keys()
            .map(|a| format!("birthday {a}"))
            .collect();
        coverage.push(TrackCoverage {
            track: "child".into(),
            count: c.len(),
            first: c.first().map(|d| format!("day {d}")),
            last: pack
                .birthdays
                .keys()
                .next_back()
                .map(|a| format!("birthday {a}"))
                .or(c.last().map(|d| format!("day {d}"))),
            gaps: Vec::new(),
            bands: vec![
                band("days 0–100 (daily)", &c, 0, 100, 1),
                band(
                    "day 100 to the 1st birthday (about every 3 days)",
                    &c,
                    100,
                    365,
                    4,
                ),
                band("age 1 (about weekly)", &c, 365, 730, 8),
                band("age 2 (about every 2 weeks)", &c, 730, 1095, 15),
                Band {
                    name: format!("birthdays ({})", birthdays.join(", ")),
                    count: birthdays.len(),
                    max_gap: 0,
                    expected_max_gap: 0,
                },
            ],
        });
        for t in &coverage {
            for b in &t.bands {
                if b.max_gap > b.expected_max_gap && b.expected_max_gap > 0 {
                    diags.push(Diagnostic::warning(
                        None,
                        None,
                        format!(
                            "{} track, {}: a gap of {} days (the cadence expects at most {})",
                            t.track, b.name, b.max_gap, b.expected_max_gap
                        ),
                    ));
                }
            }
        }
    }
    if strict {
        for d in &mut diags {
            d.error = true;
        }
    }
    Report {
        diagnostics: diags.iter().map(DiagnosticOut::from).collect(),
        coverage,
        notices,
        busiest_day,
        strict,
    }
}

/// The report as text.
pub fn to_text(r: &Report) -> String {
    let mut out = String::new();
    for d in &r.diagnostics {
        let place = match (&d.file, d.line) {
            (Some(f), Some(l)) => format!("{f}:{l}: "),
            (Some(f), None) => format!("{f}: "),
            _ => String::new(),
        };
        out.push_str(&format!("{}: {place}{}\n", d.level, d.message));
    }
    for t in &r.coverage {
        out.push_str(&format!(
            "{}: {} messages, {} → {}{}\n",
            t.track,
            t.count,
            t.first.as_deref().unwrap_or("-"),
            t.last.as_deref().unwrap_or("-"),
            if t.gaps.is_empty() {
                String::new()
            } else {
                format!(", gaps: {}", t.gaps.join(", "))
            }
        ));
        for b in &t.bands {
            if b.expected_max_gap > 0 {
                out.push_str(&format!(
                    "  {}: {} messages, largest gap {} day(s)\n",
                    b.name, b.count, b.max_gap
                ));
            } else {
                out.push_str(&format!("  {}\n", b.name));
            }
        }
    }
    out.push_str(&format!(
        "notices: {} by age window, {} by date\n",
        r.notices.age_window, r.notices.dated
    ));
    if let Some(b) = &r.busiest_day {
        out.push_str(&format!(
            "busiest day: {} message object(s) ({})\n",
            b.objects, b.day
        ));
    }
    let errors = r.diagnostics.iter().filter(|d| d.level == "error").count();
    let warnings = r.diagnostics.len() - errors;
    let strict = if r.strict {
        " (--strict: warnings count as errors)"
    } else {
        ""
    };
    out.push_str(&if errors == 0 {
        format!("ok: no errors, {warnings} warning(s){strict}\n")
    } else {
        format!("{errors} error(s), {warnings} warning(s){strict}\n")
    });
    out
}
