//! The content pack: day messages per track, municipal notices and the municipality's words,
//! read from plain TOML files in `messages/` (see `messages/README.md`).

pub mod check;
pub mod lint;
mod load;
pub mod preview;
pub mod render;
pub mod template;

pub use load::{Diagnostic, load_with_diagnostics};
pub use template::{Template, Vars};

use chrono::NaiveDate;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A content track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Track {
    /// Before birth, by gestational day.
    Pregnancy,
    /// After birth, by days since birth and birthdays.
    Child,
}

impl Track {
    /// The name used in files and content ids.
    pub fn as_str(self) -> &'static str {
        match self {
            Track::Pregnancy => "pregnancy",
            Track::Child => "child",
        }
    }
}

/// Where a message or notice was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// File, relative to the pack folder.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A message body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Plain text.
    Text(Template),
    /// A Flex bubble; placeholders are substituted inside its string values.
    Flex {
        /// Notification text.
        alt_text: Template,
        /// The bubble (or carousel) JSON.
        contents: serde_json::Value,
    },
}

/// The day a day message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DayKey {
    /// Gestational day.
    Pregnancy(i64),
    /// Days since birth.
    Child(i64),
    /// A birthday, by age.
    Birthday(u32),
}

/// A day message.
#[derive(Debug, Clone, PartialEq)]
pub struct DayMessage {
    /// Its day.
    pub key: DayKey,
    /// Stable id, e.g. `pregnancy/25w5d`, `child/day-120`, `child/birthday-1`.
    pub id: String,
    /// The body.
    pub body: Body,
    /// Where it was written.
    pub source: Source,
}

/// When a notice goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeWhen {
    /// Once per registration, on its first delivery day inside the track-day window.
    Window,
    /// Every year on this month and day.
    Yearly {
        /// Month.
        month: u32,
        /// Day.
        day: u32,
    },
    /// On one date.
    Once(NaiveDate),
}

/// A municipal notice.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// Stable id from the file.
    pub id: String,
    /// `notice/ID`, as delivery records name it.
    pub content_id: String,
    /// Only this track, if set.
    pub track: Option<Track>,
    /// Track-day range (inclusive): gestational days or days since birth.
    pub range: Option<(i64, i64)>,
    /// When.
    pub when: NoticeWhen,
    /// The body.
    pub body: Body,
    /// Where it was written.
    pub source: Source,
}

/// The municipality's own words, in one place.
#[derive(Debug, Clone, PartialEq)]
pub struct Municipality {
    /// 「サンプル市」.
    pub name: String,
    /// The town hall, as messages name it: 「サンプル市役所」, 「○○町役場」.
    pub municipal_office: String,
    /// The health centre, as messages name it.
    pub health_center: String,
    /// The こども家庭センター (or what the municipality calls it), as messages name it.
    pub family_center: String,
    /// The account's name.
    pub service_name: String,
    /// Where to ask.
    pub contact: String,
    /// Where families who lost a pregnancy or a child can turn; never pushed to everyone.
    pub grief_contact: Option<String>,
    /// Births a year in the municipality: the staff dashboard's reach (pregnancy registrations
    /// against births; the target is 20 %).
    pub annual_births: Option<u32>,
    /// The general-information disclaimer, worded for each track's readers.
    pub disclaimer: Disclaimer,
    /// よくある質問, answered from the menu (`[[faq]]`).
    pub faq: Vec<Faq>,
    /// Appended to every push.
    pub footer: Template,
    /// What late pregnancy messages and the reminders after the track say about the birth.
    pub birth: Birth,
}

/// The words about reporting the birth (`[birth]` in `municipality.toml`): added by the code on
/// the days they apply, so an editor cannot forget them.
#[derive(Debug, Clone, PartialEq)]
pub struct Birth {
    /// Appended to every pregnancy day message from 37週0日 ([`BIRTH_PROMPT_FROM`]).
    pub prompt: Template,
    /// Sent on 42週0日, 43週0日 and 44週0日 instead of silence ([`BIRTH_REMINDER_DAYS`]).
    pub reminder: Template,
    /// Where `[birth]` starts in `municipality.toml`.
    pub source: Source,
}

/// The gestational day (37週0日) from which pregnancy day messages carry the birth prompt.
pub const BIRTH_PROMPT_FROM: i64 = 37 * 7;
/// The due date (40週0日): from it, the day's pregnancy push carries the 「赤ちゃんが生まれたら」
/// date picker.
pub const DUE_DAY: i64 = 280;
/// The gestational days of the reminders after the pregnancy track (42週0日, 43週0日, 44週0日);
/// the registration stops the day after the last one.
pub const BIRTH_REMINDER_DAYS: [i64; 3] = [42 * 7, 43 * 7, 44 * 7];

/// The disclaimer, worded for who reads each track (parents, partners, grandparents; a baby or a
/// 2-year-old).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disclaimer {
    /// For pregnancy messages.
    pub pregnancy: String,
    /// For child messages.
    pub child: String,
}

/// A common question and its answer (`[[faq]]` in `municipality.toml`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faq {
    /// The question.
    pub question: String,
    /// The answer.
    pub answer: String,
}

/// The most the questions and answers may hold together, in UTF-16 units: they go out as one
/// text message (LINE's limit is 5,000) with a short heading.
pub const FAQ_MAX_UTF16: usize = 4_800;

/// A loaded, valid content pack.
#[derive(Debug, Clone)]
pub struct ContentPack {
    /// The municipality.
    pub municipality: Municipality,
    /// Pregnancy messages by gestational day.
    pub pregnancy: BTreeMap<i64, DayMessage>,
    /// Child messages by days since birth.
    pub child_days: BTreeMap<i64, DayMessage>,
    /// Birthday messages by age.
    pub birthdays: BTreeMap<u32, DayMessage>,
    /// Notices in file order.
    pub notices: Vec<Notice>,
    /// The reminders after the pregnancy track, one per [`BIRTH_REMINDER_DAYS`] (ids
    /// `birth/reminder-1` … `-3`), all with the `[birth]` reminder's body.
    pub birth_reminders: Vec<DayMessage>,
}

impl ContentPack {
    /// Loads a pack, failing with every problem listed when it has errors.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let (pack, diags) = load_with_diagnostics(dir);
        let errors: Vec<String> = diags
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.to_string())
            .collect();
        match pack {
            Some(p) if errors.is_empty() => Ok(p),
            _ => anyhow::bail!(
                "the content pack in {} has errors:\n{}",
                dir.display(),
                errors.join("\n")
            ),
        }
    }

    /// Finds content by id (`pregnancy/25w5d`, `child/day-3`, `child/birthday-1`,
    /// `birth/reminder-1`, `notice/ID`): its body, and whether it is a day message (a reminder
    /// counts as one: it is the day's message for its registration).
    pub fn lookup(&self, content_id: &str) -> Option<(&Body, bool)> {
        if let Some(id) = content_id.strip_prefix("notice/") {
            return self
                .notices
                .iter()
                .find(|n| n.id == id)
                .map(|n| (&n.body, false));
        }
        let day = if let Some(k) = content_id.strip_prefix("pregnancy/") {
            let (w, d) = k.strip_suffix('d')?.split_once('w')?;
            self.pregnancy
                .get(&(w.parse::<i64>().ok()? * 7 + d.parse::<i64>().ok()?))
        } else if let Some(n) = content_id.strip_prefix("child/day-") {
            self.child_days.get(&n.parse().ok()?)
        } else if let Some(a) = content_id.strip_prefix("child/birthday-") {
            self.birthdays.get(&a.parse().ok()?)
        } else if content_id.starts_with("birth/") {
            self.birth_reminders.iter().find(|m| m.id == content_id)
        } else {
            None
        };
        day.map(|m| (&m.body, true))
    }

    /// The index in `notices` of the notice with this id.
    pub fn notice_index(&self, id: &str) -> Option<usize> {
        self.notices.iter().position(|n| n.id == id)
    }

    /// The last gestational day with a message: the pregnancy track ends after it.
    pub fn last_pregnancy_day(&self) -> i64 {
        self.pregnancy.keys().next_back().copied().unwrap_or(293)
    }

    /// The last day of the child track's first run of daily messages from day 0 (100 in the
    /// standard cadence); 0 when day 0 has no message.
    pub fn first_child_daily_run_end(&self) -> i64 {
        let mut day = -1;
        while self.child_days.contains_key(&(day + 1)) {
            day += 1;
        }
        day.max(0)
    }

    /// The age whose birthday message ends the child track (3 for the standard programme).
    pub fn last_birthday(&self) -> u32 {
        self.birthdays.keys().next_back().copied().unwrap_or(3)
    }
}

/// `25w5d`-style key for a gestational day.
pub fn pregnancy_key(gestational_day: i64) -> String {
    format!(
        "{}w{}d",
        gestational_day.div_euclid(7),
        gestational_day.rem_euclid(7)
    )
}
