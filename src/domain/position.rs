//! Where a registration stands on a day: 妊娠W週D日 or days since birth.

use chrono::{Datelike, Months, NaiveDate};

/// Gestational position: gestational day = 280 − (due date − today).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PregnancyPosition {
    /// Days of pregnancy (280 on the due date).
    pub gestational_day: i64,
}

impl PregnancyPosition {
    /// The position on `today` for a pregnancy due on `due`.
    pub fn on(due: NaiveDate, today: NaiveDate) -> Self {
        Self {
            gestational_day: 280 - (due - today).num_days(),
        }
    }
    /// Completed weeks.
    pub fn week(self) -> i64 {
        self.gestational_day.div_euclid(7)
    }
    /// Days into the week.
    pub fn day(self) -> i64 {
        self.gestational_day.rem_euclid(7)
    }
    /// Days until the due date (negative once past).
    pub fn days_to_due(self) -> i64 {
        280 - self.gestational_day
    }
    /// 「妊娠25週5日」.
    pub fn label(self) -> String {
        format!("妊娠{}週{}日", self.week(), self.day())
    }
}

/// A child's age on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildAge {
    /// Days since birth; the birthday is day 0.
    pub days: i64,
    /// Completed months since birth.
    pub months: u32,
    /// Whether today completes a month (a monthly anniversary; the birthday itself is not one).
    pub anniversary: bool,
}

impl ChildAge {
    /// The age on `today` of a child born on `birthday`.
    pub fn on(birthday: NaiveDate, today: NaiveDate) -> Self {
        let days = (today - birthday).num_days();
        let calendar = ((today.year() - birthday.year()) * 12 + today.month() as i32
            - birthday.month() as i32)
            .max(0) as u32;
        // The calendar difference counts this month once its first day comes; it is completed
        // on the day birthday + that many months (chrono clamps: 31 Jan + 1 month is 28 Feb).
        let completes = birthday.checked_add_months(Months::new(calendar));
        let months = if calendar > 0 && completes.is_none_or(|d| d > today) {
            calendar - 1
        } else {
            calendar
        };
        Self {
            days,
            months,
            anniversary: calendar > 0 && completes == Some(today),
        }
    }
    /// Completed years.
    pub fn years(self) -> u32 {
        self.months / 12
    }
    /// 「生後20日」, 「3か月」, 「1歳」, 「1歳2か月」.
    pub fn label(self) -> String {
        match (self.years(), self.months % 12) {
            (0, 0) => format!("生後{}日", self.days),
            (0, m) => format!("{m}か月"),
            (y, 0) => format!("{y}歳"),
            (y, m) => format!("{y}歳{m}か月"),
        }
    }

    /// The age as news only on the day it is true: 「今日で1歳5か月」 on the monthly
    /// anniversary, 「1歳5か月」 (a state) on any other day.
    pub fn label_today(self) -> String {
        if self.anniversary {
            format!("今日で{}", self.label())
        } else {
            self.label()
        }
    }

    /// Where the child is in days: 「生まれた日」 on the birthday, then 「生まれて3日目」.
    pub fn day_label(self) -> String {
        if self.days == 0 {
            "生まれた日".into()
        } else {
            format!("生まれて{}日目", self.days)
        }
    }
}

/// The position of a registration on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Before birth.
    Pregnancy(PregnancyPosition),
    /// After birth.
    Child(ChildAge),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn pregnancy_weeks_and_days() {
        let due = d(2027, 3, 15);
        assert_eq!(PregnancyPosition::on(due, due).label(), "妊娠40週0日");
        assert_eq!(
            PregnancyPosition::on(due, d(2027, 3, 14)).label(),
            "妊娠39週6日"
        );
        // 280 - 107 = 173 = 24*7 + 5
        assert_eq!(
            PregnancyPosition::on(due, d(2026, 11, 28)).label(),
            "妊娠24週5日"
        );
        assert_eq!(
            PregnancyPosition::on(due, d(2027, 3, 28)).label(),
            "妊娠41週6日"
        );
        assert_eq!(PregnancyPosition::on(due, d(2027, 3, 5)).days_to_due(), 10);
        assert_eq!(PregnancyPosition::on(due, due).days_to_due(), 0);
        assert_eq!(PregnancyPosition::on(due, d(2027, 3, 17)).days_to_due(), -2);
    }

    #[test]
    fn child_ages() {
        let b = d(2026, 1, 31);
        assert_eq!(ChildAge::on(b, b).label(), "生後0日");
        assert_eq!(ChildAge::on(b, d(2026, 2, 27)).label(), "生後27日");
        assert_eq!(ChildAge::on(b, d(2026, 2, 28)).months, 1);
        assert_eq!(ChildAge::on(b, d(2027, 1, 30)).label(), "11か月");
        assert_eq!(ChildAge::on(b, d(2027, 1, 31)).label(), "1歳");
        assert_eq!(ChildAge::on(b, d(2027, 4, 1)).label(), "1歳2か月");
        assert_eq!(
            ChildAge::on(b, d(2026, 3, 30)).months,
            1,
            "31 Jan + 2 months is 31 Mar"
        );
        assert_eq!(ChildAge::on(b, d(2026, 3, 31)).months, 2);
        assert_eq!(ChildAge::on(b, d(2028, 1, 30)).label(), "1歳11か月");
        assert_eq!(ChildAge::on(b, d(2029, 1, 31)).label(), "3歳");
        assert_eq!(
            ChildAge::on(d(2026, 12, 1), d(2026, 11, 21)).months,
            0,
            "a birthday ahead (never stored) is no age, not a panic"
        );
        let leap = d(2024, 2, 29);
        assert_eq!(ChildAge::on(leap, d(2025, 2, 28)).label(), "1歳");
        assert_eq!(ChildAge::on(leap, d(2025, 2, 28)).days, 365);
    }

    #[test]
    fn the_age_is_news_only_on_its_monthly_anniversary() {
        let b = d(2026, 1, 31);
        let on = |y, m, day| ChildAge::on(b, d(y, m, day));
        assert!(
            !on(2026, 1, 31).anniversary,
            "the day of birth is no anniversary"
        );
        assert_eq!(on(2026, 1, 31).label_today(), "生後0日");
        assert_eq!(
            on(2026, 2, 28).label_today(),
            "今日で1か月",
            "clamped to the month's end"
        );
        assert_eq!(on(2026, 3, 1).label_today(), "1か月");
        assert_eq!(on(2026, 3, 30).label_today(), "1か月");
        assert_eq!(on(2026, 3, 31).label_today(), "今日で2か月");
        assert_eq!(on(2027, 1, 31).label_today(), "今日で1歳");
        assert_eq!(on(2027, 2, 1).label_today(), "1歳");
        assert_eq!(on(2027, 6, 30).label_today(), "今日で1歳5か月");
        assert_eq!(on(2027, 7, 14).label_today(), "1歳5か月");
        let leap = d(2024, 2, 29);
        assert!(ChildAge::on(leap, d(2025, 2, 28)).anniversary);
        assert!(!ChildAge::on(leap, d(2025, 3, 1)).anniversary);
        assert!(ChildAge::on(leap, d(2024, 3, 29)).anniversary);
        assert!(!ChildAge::on(d(2026, 12, 1), d(2026, 11, 21)).anniversary);
    }

    #[test]
    fn the_day_of_birth_reads_naturally() {
        let b = d(2026, 1, 31);
        assert_eq!(ChildAge::on(b, b).day_label(), "生まれた日");
        assert_eq!(ChildAge::on(b, d(2026, 2, 1)).day_label(), "生まれて1日目");
        assert_eq!(
            ChildAge::on(b, d(2026, 5, 11)).day_label(),
            "生まれて100日目"
        );
    }
}
