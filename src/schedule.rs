//! The schedule, as a pure function of (registration, date): which content a registration
//! receives that day. No I/O, no clock.

use crate::content::{ContentPack, DayMessage, Notice, NoticeWhen, Track};
use crate::domain::{ChildAge, Position, PregnancyPosition, Stage};
use chrono::{Datelike, Months, NaiveDate};

/// What the schedule needs of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationView {
    /// Internal id.
    pub id: i64,
    /// Stage.
    pub stage: Stage,
    /// Due date or birthday.
    pub date: NaiveDate,
    /// The date its current delivery run began.
    pub started_on: NaiveDate,
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
    pub fn content_id(&self) -> String {
        match self {
            Item::Day(m) => m.id.clone(),
            Item::Notice(n) => format!("notice/{}", n.id),
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
        };
    }
    let (track, day) = track_day(pos);
    match reg.stage {
        Stage::Pregnancy => {
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
        };
    }
    let start_day = track_day(position(reg, reg.started_on)).1;
    for n in &pack.notices {
        if n.track.is_some_and(|t| t != track) {
            continue;
        }
        let in_range = n.range.is_none_or(|(from, to)| from <= day && day <= to);
        let due = match n.when {
            NoticeWhen::Window => {
                let (from, _) = n.range.expect("window notices have a range");
                in_range && day == from.max(start_day)
            }
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

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn pregnancy_every_day_from_4w0d_to_41w6d() {
        let pack = pack();
        let due = d(2027, 6, 1);
        let reg = RegistrationView {
            id: 1,
            stage: Stage::Pregnancy,
            date: due,
            started_on: d(2026, 1, 1),
        };
        let mut days = 0;
        for offset in -400i64..=60 {
            let date = due + chrono::Duration::days(offset);
            let plan = plan_day(&pack, &reg, date, 3);
            let has_day = plan.items.iter().any(|i| matches!(i, Item::Day(_)));
            let gd = 280 + offset;
            assert_eq!(has_day, (28..=293).contains(&gd), "gestational day {gd}");
            days += has_day as i32;
        }
        assert_eq!(days, 266);
    }

    #[test]
    fn child_track_follows_the_cadence_and_ends_on_the_third_birthday() {
        let pack = pack();
        let birthday = d(2024, 2, 29);
        let reg = RegistrationView {
            id: 1,
            stage: Stage::Child,
            date: birthday,
            started_on: birthday,
        };
        let mut sent_days = Vec::new();
        let mut completed_on = None;
        for offset in 0..1200i64 {
            let date = birthday + chrono::Duration::days(offset);
            let plan = plan_day(&pack, &reg, date, 3);
            if plan.items.iter().any(|i| matches!(i, Item::Day(_))) {
                sent_days.push(offset);
            }
            if plan.completes && completed_on.is_none() {
                completed_on = Some(date);
            }
        }
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
        // Birthdays: 2025-02-28 and 2026-02-28 carry the birthday messages.
        let first = plan_day(&pack, &reg, d(2025, 2, 28), 3);
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
    fn window_notice_once_on_first_day_inside_the_window() {
        let pack = pack();
        let birthday = d(2026, 1, 1);
        let window = pack
            .notices
            .iter()
            .find(|n| n.id == "checkup-4m")
            .expect("sample has checkup-4m");
        let (from, to) = window.range.unwrap();
        let count = |started: NaiveDate| -> Vec<i64> {
            let reg = RegistrationView {
                id: 1,
                stage: Stage::Child,
                date: birthday,
                started_on: started,
            };
            (0..400)
                .filter(|off| {
                    let date = birthday + chrono::Duration::days(*off);
                    plan_day(&pack, &reg, date, 3)
                        .items
                        .iter()
                        .any(|i| i.notice_id() == Some("checkup-4m"))
                })
                .collect()
        };
        assert_eq!(count(birthday), vec![from]);
        let late = birthday + chrono::Duration::days(from + 5);
        assert_eq!(
            count(late),
            vec![from + 5],
            "registered inside the window: on the first day"
        );
        let too_late = birthday + chrono::Duration::days(to + 1);
        assert!(count(too_late).is_empty());
    }

    #[test]
    fn nothing_before_registration_start() {
        let pack = pack();
        let reg = RegistrationView {
            id: 1,
            stage: Stage::Child,
            date: d(2026, 1, 1),
            started_on: d(2026, 3, 1),
        };
        assert!(plan_day(&pack, &reg, d(2026, 2, 28), 3).items.is_empty());
    }
}
