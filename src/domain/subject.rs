//! Who a registration follows: a pregnancy with its due date, or a child with its birthday.

use super::Stage;
use chrono::NaiveDate;

/// The subject of a registration: the stage and its date, which never go apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A pregnancy, followed by its due date.
    Pregnancy {
        /// 出産予定日.
        due_date: NaiveDate,
    },
    /// A child, followed from their birthday.
    Child {
        /// お子さんの誕生日.
        birthday: NaiveDate,
    },
}

impl Subject {
    /// The subject of a stage and its date.
    pub fn new(stage: Stage, date: NaiveDate) -> Self {
        match stage {
            Stage::Pregnancy => Subject::Pregnancy { due_date: date },
            Stage::Child => Subject::Child { birthday: date },
        }
    }

    /// Pregnancy or child.
    pub fn stage(&self) -> Stage {
        match self {
            Subject::Pregnancy { .. } => Stage::Pregnancy,
            Subject::Child { .. } => Stage::Child,
        }
    }

    /// The due date or the birthday.
    pub fn date(&self) -> NaiveDate {
        match *self {
            Subject::Pregnancy { due_date } => due_date,
            Subject::Child { birthday } => birthday,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_and_date_round_trip() {
        let d = NaiveDate::from_ymd_opt(2027, 3, 15).unwrap();
        for stage in [Stage::Pregnancy, Stage::Child] {
            let s = Subject::new(stage, d);
            assert_eq!((s.stage(), s.date()), (stage, d));
        }
    }
}
