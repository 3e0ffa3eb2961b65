//! The schedule, as a pure function of (registration, date): which content a registration
//! receives that day. No I/O, no clock.

use crate::content::{
    BIRTH_PROMPT_FROM, BIRTH_REMINDER_DAYS, ContentPack, DUE_DAY, DayMessage, Notice, NoticeWhen,
    Track,
};
use crate::domain::{ChildAge, Position, PregnancyPosition, Stage};
use chrono::{Datelike, Months, NaiveDate};
use std::sync::Arc;

/// The notices a registration has taken (recorded in a planned or sent push), as a bitset over
/// `pack.notices` indices: any number of notices, and registrations with the same set can share
/// one allocation (planning interns them; the empty set allocates nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TakenNotices(Option<Arc<[u64]>>);

impl TakenNotices {
    /// The set of these words (bit `i % 64` of word `i / 64`: `pack.notices[i]`).
    pub fn from_words(words: &[u64]) -> Self {
        let used = words.iter().rposition(|w| *w != 0).map_or(0, |i| i + 1);
        Self((used > 0).then(|| Arc::from(&words[..used])))
    }

    /// The set of these notice indices.
    pub fn from_indices(indices: impl IntoIterator<Item = usize>) -> Self {
        let mut words = Vec::new();
        for i in indices {
            set_bit(&mut words, i);
        }
        Self::from_words(&words)
    }

    /// Whether `pack.notices[i]` is taken.
    pub fn contains(&self, i: usize) -> bool {
        self.0
            .as_deref()
            .and_then(|w| w.get(i / 64))
            .is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    /// This set with `pack.notices[i]` added.
    pub fn with(&self, i: usize) -> Self {
        let mut words = self.0.as_deref().unwrap_or_default().to_vec();
        set_bit(&mut words, i);
        Self::from_words(&words)
    }
}

/// Sets bit `i` of a growable bitset.
pub fn set_bit(words: &mut Vec<u64>, i: usize) {
    let word = i / 64;
    if words.len() <= word {
        words.resize(word + 1, 0);
    }
    words[word] |= 1 << (i % 64);
}

/// What the schedule needs of a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationView {
    /// Internal id.
    pub id: i64,
    /// Stage.
    pub stage: Stage,
    /// Due date or birthday.
    pub date: NaiveDate,
    /// The date its current delivery run began: nothing is delivered for earlier days.
    pub started_on: NaiveDate,
    /// Notices taken by a planned or sent push (planning loads those whose window is still
    /// open on the date): an age-window notice among them is not offered again.
    pub notices_taken: TakenNotices,
}

/// One piece of content for the day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Item<'p> {
    /// The day's message.
    Day(&'p DayMessage),
    /// A municipal notice.
    Notice(&'p Notice),
}

impl<'p> Item<'p> {
    /// The content id recorded in delivery records.
    pub fn content_id(&self) -> &'p str {
        match self {
            Item::Day(m) => &m.id,
            Item::Notice(n) => &n.content_id,
        }
    }
    /// The notice id, for notices.
    pub fn notice_id(&self) -> Option<&'p str> {
        match self {
            Item::Notice(n) => Some(&n.id),
            Item::Day(_) => None,
        }
    }
}

/// A registration's day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayPlan<'p> {
    /// Where the registration stands.
    pub position: Position,
    /// Day message first, then notices.
    pub items: Vec<Item<'p>>,
    /// The programme ends with this day (the last birthday, or already past it).
    pub completes: bool,
    /// The pregnancy is past its last birth reminder (44週1日 on) and no birth was reported:
    /// the registration stops.
    pub birth_unreported: bool,
}

/// Whether a pregnancy day message on gestational day `gd` ends with the birth prompt (how to
/// report the birth): from 37週0日.
pub fn carries_birth_prompt(gd: i64) -> bool {
    gd >= BIRTH_PROMPT_FROM
}

/// Whether a pregnancy push on gestational day `gd` (a day message, or a reminder after the
/// track) offers the 「赤ちゃんが生まれたら」 date picker: from the due date (40週0日).
pub fn offers_birth_button(gd: i64) -> bool {
    gd >= DUE_DAY
}

/// After the pregnancy track (41週6日) and until a birth is reported: a reminder on each of
/// [`BIRTH_REMINDER_DAYS`] and nothing else (not even dated notices), then the stop.
fn after_pregnancy_track(pack: &ContentPack, pos: Position, gd: i64) -> DayPlan<'_> {
    let reminder = BIRTH_REMINDER_DAYS
        .iter()
        .position(|d| *d == gd)
        .and_then(|i| pack.birth_reminders.get(i));
    DayPlan {
        position: pos,
        items: reminder.map(Item::Day).into_iter().collect(),
        completes: false,
        birth_unreported: BIRTH_REMINDER_DAYS.last().is_some_and(|last| gd > *last),
    }
}

/// The registration's position on `date`.
pub fn position(reg: &RegistrationView, date: NaiveDate) -> Position {
    match reg.stage {
        Stage::Pregnancy => Position::Pregnancy(PregnancyPosition::on(reg.date, date)),
        Stage::Child => Position::Child(ChildAge::on(reg.date, date)),
    }
}

fn track_day(p: Position) -> (Track, i64) {
    match p {
        Position::Pregnancy(p) => (Track::Pregnancy, p.gestational_day),
        Position::Child(a) => (Track::Child, a.days),
    }
}

/// The birthday number `age` falls on `date` for a child born on `birthday`.
fn birthday_on(birthday: NaiveDate, age: u32) -> Option<NaiveDate> {
    birthday.checked_add_months(Months::new(12 * age))
}

/// What `reg` receives on `date`; `end_age` is the birthday that ends the child track.
pub fn plan_day<'p>(
    pack: &'p ContentPack,
    reg: &RegistrationView,
    date: NaiveDate,
    end_age: u32,
) -> DayPlan<'p> {
    let pos = position(reg, date);
    let mut items = Vec::new();
    let mut completes = false;
    if date < reg.started_on {
        return DayPlan {
            position: pos,
            items,
            completes,
            birth_unreported: false,
        };
    }
    let (track, day) = track_day(pos);
    match reg.stage {
        Stage::Pregnancy => {
            if day > pack.last_pregnancy_day() {
                return after_pregnancy_track(pack, pos, day);
            }
            if let Some(m) = pack.pregnancy.get(&day) {
                items.push(Item::Day(m));
            }
        }
        Stage::Child => {
            let end = birthday_on(reg.date, end_age);
            if end.is_some_and(|end| date > end) {
                return DayPlan {
                    position: pos,
                    items,
                    completes: true,
                    birth_unreported: false,
                };
            }
            let years = match pos {
                Position::Child(a) => a.years(),
                Position::Pregnancy(_) => 0,
            };
            let birthday_today =
                (years >= 1 && birthday_on(reg.date, years) == Some(date)).then_some(years);
            match birthday_today {
                Some(age) => {
                    if let Some(m) = pack.birthdays.get(&age) {
                        items.push(Item::Day(m));
                    }
                    completes = age >= end_age;
                }
                None => {
                    if let Some(m) = pack.child_days.get(&day) {
                        items.push(Item::Day(m));
                    }
                }
            }
        }
    }
    if day < 0 {
        return DayPlan {
            position: pos,
            items,
            completes,
            birth_unreported: false,
        };
    }
    for (i, n) in pack.notices.iter().enumerate() {
        if n.track.is_some_and(|t| t != track) {
            continue;
        }
        let in_range = n.range.is_none_or(|(from, to)| from <= day && day <= to);
        let due = match n.when {
            // Once: on the first delivered day inside the window it has not been received.
            NoticeWhen::Window => in_range && !reg.notices_taken.contains(i),
            NoticeWhen::Yearly { month, day: d } => {
                in_range && date.month() == month && date.day() == d
            }
            NoticeWhen::Once(on) => in_range && date == on,
        };
        if due {
            items.push(Item::Notice(n));
        }
    }
    DayPlan {
        position: pos,
        items,
        completes,
        birth_unreported: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn pack() -> ContentPack {
        ContentPack::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("messages"))
            .expect("the shipped pack loads")
    }

    #[test]
    fn dated_notices_come_on_their_day_inside_their_range() {
        let mut pack = pack();
        let mut yearly = pack.notices[0].clone();
        yearly.id = "yearly".into();
        yearly.track = Some(Track::Child);
        yearly.range = Some((0, 400));
        yearly.when = NoticeWhen::Yearly { month: 12, day: 1 };
        let mut once = yearly.clone();
        once.id = "once".into();
        once.when = NoticeWhen::Once(d(2027, 1, 10));
        pack.notices = vec![yearly, once];
        let child = reg(Stage::Child, d(2026, 10, 1), d(2026, 10, 1));
        let ids = |date: NaiveDate| -> Vec<String> {
            plan_day(&pack, &child, date, 3)
                .items
                .iter()
                .filter_map(|i| match i {
                    Item::Notice(n) => Some(n.id.clone()),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(ids(d(2026, 12, 1)), ["yearly"]);
        assert!(ids(d(2026, 12, 2)).is_empty(), "the day after");
        assert!(ids(d(2026, 11, 1)).is_empty(), "the day, another month");
        assert!(ids(d(2027, 11, 30)).is_empty());
        assert_eq!(ids(d(2027, 1, 10)), ["once"]);
        assert!(ids(d(2028, 1, 10)).is_empty(), "once: not a year later");
        assert!(
            ids(d(2027, 12, 1)).is_empty(),
            "day 426: outside the range, whatever the date"
        );
        let pregnancy = reg(Stage::Pregnancy, d(2027, 3, 1), d(2026, 10, 1));
        assert!(
            plan_day(&pack, &pregnancy, d(2026, 12, 1), 3)
                .items
                .iter()
                .all(|i| !matches!(i, Item::Notice(_))),
            "another track"
        );
    }

    #[test]
    fn taken_notices_are_a_set_and_the_empty_set_allocates_nothing() {
        let empty = TakenNotices::default();
        assert_eq!(TakenNotices::from_words(&[0, 0]), empty);
        assert_eq!(TakenNotices::from_indices([]), empty);
        assert!(TakenNotices::from_words(&[0, 0]).0.is_none());
        let some = TakenNotices::from_indices([3, 130]);
        assert!(some.contains(3) && some.contains(130) && !some.contains(4));
        assert_eq!(some, TakenNotices::from_indices([130]).with(3));
        assert_eq!(
            TakenNotices::from_words(&[8, 0, 4, 0]),
            TakenNotices::from_indices([3, 130]),
            "trailing empty words are not part of the set"
        );
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn reg(stage: Stage, date: NaiveDate, started_on: NaiveDate) -> RegistrationView {
        RegistrationView {
            id: 1,
            stage,
            date,
            started_on,
            notices_taken: TakenNotices::default(),
        }
    }

    /// Days from `start` for `days` days, recording received notices as the worker does.
    fn run(
        pack: &ContentPack,
        mut r: RegistrationView,
        start: NaiveDate,
        days: i64,
    ) -> Vec<(i64, DayPlan<'_>)> {
        let mut out = Vec::new();
        for off in 0..days {
            let date = start + chrono::Duration::days(off);
            let plan = plan_day(pack, &r, date, 3);
            for item in &plan.items {
                if let Item::Notice(n) = item {
                    let i = pack.notices.iter().position(|x| x.id == n.id).unwrap();
                    r.notices_taken = r.notices_taken.with(i);
                }
            }
            out.push((off, plan));
        }
        out
    }

    #[test]
    fn pregnancy_every_day_from_4w0d_to_41w6d_then_three_weekly_reminders() {
        let pack = pack();
        let due = d(2027, 6, 1);
        let start = due - chrono::Duration::days(400);
        let days = run(&pack, reg(Stage::Pregnancy, due, start), start, 520);
        let mut count = 0;
        for (off, plan) in &days {
            let gd = 280 - (due - (start + chrono::Duration::days(*off))).num_days();
            let ids: Vec<&str> = plan.items.iter().map(|i| i.content_id()).collect();
            let has_day = ids.iter().any(|id| id.starts_with("pregnancy/"));
            assert_eq!(has_day, (28..=293).contains(&gd), "gestational day {gd}");
            if gd > 293 {
                let expect: &[&str] = match gd {
                    294 => &["birth/reminder-1"],
                    301 => &["birth/reminder-2"],
                    308 => &["birth/reminder-3"],
                    _ => &[],
                };
                assert_eq!(ids, expect, "after 41週6日 only the reminders (gd {gd})");
            }
            assert_eq!(
                plan.birth_unreported,
                gd >= 309,
                "the stop from 44週1日 (gd {gd})"
            );
            assert!(!plan.completes, "a pregnancy never completes (gd {gd})");
            count += has_day as i32;
        }
        assert_eq!(count, 266);
    }

    #[test]
    fn the_birth_prompt_from_37w0d_and_the_button_from_the_due_date() {
        let prompt: Vec<i64> = (0..400).filter(|gd| carries_birth_prompt(*gd)).collect();
        assert_eq!(prompt.first(), Some(&(37 * 7)), "from 37週0日");
        assert!(!carries_birth_prompt(37 * 7 - 1), "not on 36週6日");
        assert!(!offers_birth_button(279), "not on 39週6日");
        assert!(offers_birth_button(280), "on the due date, 40週0日");
        assert!(offers_birth_button(293), "on 41週6日");
        assert!(
            [294, 301, 308].iter().all(|gd| offers_birth_button(*gd)),
            "with each reminder"
        );
    }

    #[test]
    fn child_track_follows_the_cadence_and_ends_on_the_third_birthday() {
        let pack = pack();
        let birthday = d(2024, 2, 29);
        let days = run(&pack, reg(Stage::Child, birthday, birthday), birthday, 1200);
        let sent_days: Vec<i64> = days
            .iter()
            .filter(|(_, p)| p.items.iter().any(|i| matches!(i, Item::Day(_))))
            .map(|(o, _)| *o)
            .collect();
        let completed_on = days
            .iter()
            .find(|(_, p)| p.completes)
            .map(|(o, _)| birthday + chrono::Duration::days(*o));
        assert!(
            (0..=100).all(|n| sent_days.contains(&n)),
            "daily to day 100"
        );
        assert_eq!(
            completed_on,
            Some(d(2027, 2, 28)),
            "3rd birthday of a leap-day child"
        );
        assert_eq!(
            *sent_days.last().unwrap(),
            (d(2027, 2, 28) - birthday).num_days()
        );
        let first = plan_day(
            &pack,
            &reg(Stage::Child, birthday, birthday),
            d(2025, 2, 28),
            3,
        );
        assert_eq!(first.items[0].content_id(), "child/birthday-1");
        let gaps: Vec<i64> = sent_days.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().all(|g| *g <= 15),
            "no gap over two weeks: {gaps:?}"
        );
        assert!(
            (250..=300).contains(&sent_days.len()),
            "about 277 child messages, got {}",
            sent_days.len()
        );
    }

    #[test]
    fn window_notice_once_on_the_first_delivered_day_inside_the_window() {
        let pack = pack();
        let birthday = d(2026, 1, 1);
        let (from, to) = pack
            .notices
            .iter()
            .find(|n| n.id == "checkup-4m")
            .unwrap()
            .range
            .unwrap();
        let days_with = |started: NaiveDate| -> Vec<i64> {
            run(&pack, reg(Stage::Child, birthday, started), started, 400)
                .into_iter()
                .filter(|(_, p)| p.items.iter().any(|i| i.notice_id() == Some("checkup-4m")))
                .map(|(off, _)| (started - birthday).num_days() + off)
                .collect()
        };
        assert_eq!(days_with(birthday), vec![from], "on the window's first day");
        let late = birthday + chrono::Duration::days(from + 5);
        assert_eq!(
            days_with(late),
            vec![from + 5],
            "registered inside the window: on the first day"
        );
        assert!(days_with(birthday + chrono::Duration::days(to + 1)).is_empty());
    }

    #[test]
    fn a_received_notice_is_not_sent_again() {
        let pack = pack();
        let birthday = d(2026, 1, 1);
        let i = pack
            .notices
            .iter()
            .position(|n| n.id == "checkup-4m")
            .unwrap();
        let (from, _) = pack.notices[i].range.unwrap();
        let mut r = reg(Stage::Child, birthday, birthday);
        r.notices_taken = TakenNotices::from_indices([i]);
        let date = birthday + chrono::Duration::days(from + 3);
        assert!(
            !plan_day(&pack, &r, date, 3)
                .items
                .iter()
                .any(|x| x.notice_id() == Some("checkup-4m"))
        );
    }

    #[test]
    fn notices_past_the_128th_are_offered_once_too() {
        let mut pack = pack();
        let template = pack
            .notices
            .iter()
            .find(|n| n.when == NoticeWhen::Window && n.track == Some(Track::Child))
            .unwrap()
            .clone();
        // 200 more window notices, all open from birth for 400 days: most sit past bit 127.
        for k in 0..200 {
            let mut n = template.clone();
            n.id = format!("extra-{k}");
            n.content_id = format!("notice/extra-{k}");
            n.range = Some((0, 400));
            pack.notices.push(n);
        }
        assert!(pack.notices.len() > 200);
        let birthday = d(2026, 1, 1);
        let days = run(&pack, reg(Stage::Child, birthday, birthday), birthday, 60);
        let mut times: std::collections::HashMap<&str, Vec<i64>> = Default::default();
        for (off, plan) in &days {
            for id in plan.items.iter().filter_map(|i| i.notice_id()) {
                times.entry(id).or_default().push(*off);
            }
        }
        for k in 0..200 {
            assert_eq!(
                times.get(format!("extra-{k}").as_str()),
                Some(&vec![0]),
                "extra-{k}: on the first day only"
            );
        }
        assert!(times.values().all(|t| t.len() == 1), "{times:?}");
    }

    #[test]
    fn nothing_before_registration_start() {
        let pack = pack();
        let r = reg(Stage::Child, d(2026, 1, 1), d(2026, 3, 1));
        assert!(plan_day(&pack, &r, d(2026, 2, 28), 3).items.is_empty());
    }
}
