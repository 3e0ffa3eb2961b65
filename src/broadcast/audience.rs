//! Who a broadcast goes to: everyone, a range of pregnancy weeks, or a range of children's ages
//! in completed months, turned into a range of due dates or birthdays on the day it is sent.

use crate::domain::ChildAge;
#[cfg(test)]
use crate::domain::PregnancyPosition;
use chrono::{Months, NaiveDate, TimeDelta};
use serde::{Deserialize, Serialize};

/// The widest week range a pregnancy registration can be in (registrations run to 41週6日;
/// a due date a few weeks past is still accepted at registration).
pub const MAX_WEEK: u32 = 45;
/// The widest month range a child registration can be in (to the 3rd birthday).
pub const MAX_MONTH: u32 = 36;

/// A broadcast's audience, as the API and the form give it (bounds inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "lowercase", deny_unknown_fields)]
pub enum Audience {
    /// Every reader with an active registration (`{}` so that a stray field is refused).
    All {},
    /// Readers of a pregnancy in weeks `[from, to]` (妊娠W週, completed weeks).
    Pregnancy {
        /// `[from, to]`.
        weeks: [u32; 2],
    },
    /// Readers of a child aged `[from, to]` completed months.
    Child {
        /// `[from, to]`.
        months: [u32; 2],
    },
}

/// Why an audience cannot be used (Japanese: staff read it; the API returns it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadAudience(pub String);

/// What the store selects: active registrations of a stage whose date lies in an inclusive range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Every active registration.
    All,
    /// Pregnancies due in `[from, to]`.
    DueBetween(NaiveDate, NaiveDate),
    /// Children born in `[from, to]`.
    BornBetween(NaiveDate, NaiveDate),
    /// Nobody can match (a range beyond the calendar).
    Nobody,
}

impl Audience {
    /// Checks the bounds.
    pub fn validate(self) -> Result<Self, BadAudience> {
        match self {
            Audience::All {} => {}
            Audience::Pregnancy { weeks: [a, b] } => {
                if a > b || b > MAX_WEEK {
                    return Err(BadAudience(format!(
                        "妊娠週数の範囲は 0〜{MAX_WEEK} 週で、始まりが終わり以下になるように指定してください。"
                    )));
                }
            }
            Audience::Child { months: [a, b] } => {
                if a > b || b > MAX_MONTH {
                    return Err(BadAudience(format!(
                        "月齢の範囲は 0〜{MAX_MONTH} か月で、始まりが終わり以下になるように指定してください。"
                    )));
                }
            }
        }
        Ok(self)
    }

    /// The audience in words: 「全員」「妊娠20〜27週」「生後4〜6か月」.
    pub fn label(self) -> String {
        match self {
            Audience::All {} => "配信中の全員".into(),
            Audience::Pregnancy { weeks: [a, b] } if a == b => format!("妊娠{a}週"),
            Audience::Pregnancy { weeks: [a, b] } => format!("妊娠{a}〜{b}週"),
            Audience::Child { months: [a, b] } if a == b => format!("生後{a}か月"),
            Audience::Child { months: [a, b] } => format!("生後{a}〜{b}か月"),
        }
    }

    /// The registrations it selects on `day` (Asia/Tokyo), with the same week and month
    /// counting as the daily messages (`PregnancyPosition`, `ChildAge`).
    pub fn selection(self, day: NaiveDate) -> Selection {
        match self {
            Audience::All {} => Selection::All,
            Audience::Pregnancy { weeks: [a, b] } => {
                // Gestational day 280 − (due − day) within [7a, 7b + 6]: due − day within
                // [274 − 7b, 280 − 7a] (negative once past the due date).
                let at = |n: i64| day.checked_add_signed(TimeDelta::days(n));
                match (at(274 - 7 * i64::from(b)), at(280 - 7 * i64::from(a))) {
                    (Some(f), Some(t)) => Selection::DueBetween(f, t),
                    _ => Selection::Nobody,
                }
            }
            Audience::Child { .. } => self.selection_by_scan(day),
        }
    }

    /// The birthdays found by walking the calendar back from `day`: months are uneven (and
    /// clamp at month ends), so the age type itself decides each day.
    fn selection_by_scan(self, day: NaiveDate) -> Selection {
        let Audience::Child { months: [a, b] } = self else {
            return Selection::All;
        };
        let Some(earliest) = day.checked_sub_months(Months::new(b + 2)) else {
            return Selection::Nobody;
        };
        let mut found: Option<(NaiveDate, NaiveDate)> = None;
        for d in earliest.iter_days().take_while(|d| *d <= day) {
            if (a..=b).contains(&ChildAge::on(d, day).months) {
                found = Some(found.map_or((d, d), |(f, _)| (f, d)));
            }
        }
        found.map_or(Selection::Nobody, |(f, t)| Selection::BornBetween(f, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    /// Every date of a wide window, checked one by one against the position types.
    fn agrees(a: Audience, day: NaiveDate) {
        let sel = a.selection(day);
        let mut d0 = day - TimeDelta::days(1400);
        while d0 <= day + TimeDelta::days(400) {
            let want = match a {
                Audience::Child { months: [x, y] } => {
                    d0 <= day && (x..=y).contains(&ChildAge::on(d0, day).months)
                }
                Audience::Pregnancy { weeks: [x, y] } => {
                    (i64::from(x)..=i64::from(y)).contains(&PregnancyPosition::on(d0, day).week())
                }
                Audience::All {} => true,
            };
            let got = match sel {
                Selection::BornBetween(f, t) => {
                    matches!(a, Audience::Child { .. }) && d0 >= f && d0 <= t
                }
                Selection::DueBetween(f, t) => {
                    matches!(a, Audience::Pregnancy { .. }) && d0 >= f && d0 <= t
                }
                Selection::All => true,
                Selection::Nobody => false,
            };
            assert_eq!(got, want, "{a:?} on {day}: {d0}");
            d0 = d0.succ_opt().unwrap();
        }
    }

    #[test]
    fn ranges_select_exactly_the_dates_the_daily_messages_count_as_in_range() {
        for day in [
            d(2026, 11, 21),
            d(2027, 2, 28),
            d(2028, 2, 29),
            d(2028, 3, 31),
            d(2026, 12, 31),
        ] {
            for months in [[4, 6], [0, 0], [0, 36], [11, 12], [35, 36], [1, 1]] {
                agrees(Audience::Child { months }, day);
            }
            for weeks in [[20, 27], [0, 45], [39, 41], [41, 45], [4, 4], [0, 0]] {
                agrees(Audience::Pregnancy { weeks }, day);
            }
        }
    }

    #[test]
    fn the_api_shape_and_its_bounds() {
        let a: Audience = serde_json::from_str(r#"{"stage":"child","months":[4,6]}"#).unwrap();
        assert_eq!(a, Audience::Child { months: [4, 6] });
        assert_eq!(a.label(), "生後4〜6か月");
        let a: Audience = serde_json::from_str(r#"{"stage":"all"}"#).unwrap();
        assert_eq!(a, Audience::All {});
        assert!(serde_json::from_str::<Audience>(r#"{"stage":"child"}"#).is_err());
        assert!(serde_json::from_str::<Audience>(r#"{"stage":"all","weeks":[1,2]}"#).is_err());
        assert!(Audience::Child { months: [6, 4] }.validate().is_err());
        assert!(Audience::Child { months: [0, 37] }.validate().is_err());
        assert!(Audience::Pregnancy { weeks: [0, 46] }.validate().is_err());
        assert!(Audience::Pregnancy { weeks: [45, 45] }.validate().is_ok());
        assert!(Audience::Pregnancy { weeks: [30, 20] }.validate().is_err());
        assert!(Audience::Pregnancy { weeks: [20, 27] }.validate().is_ok());
        assert!(Audience::Child { months: [0, 36] }.validate().is_ok());
        assert!(Audience::Child { months: [36, 36] }.validate().is_ok());
    }
}
