//! Dates as parents type them: `2027/3/15`, `2027-03-15`, `2027年3月15日`, `3月15日`, `R9.3.15`,
//! `令和9年3月15日`, full-width digits. The calendar arithmetic is chrono's.

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};
use unicode_normalization::UnicodeNormalization;

/// What the date means, which decides its plausible range and the year of a month-day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateKind {
    /// 出産予定日: from a couple of weeks past to about ten months ahead.
    DueDate,
    /// 誕生日: not in the future and not before the programme's start (three years ago).
    Birthday,
}

/// The accepted range for a kind of date on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    /// First accepted date.
    pub min: NaiveDate,
    /// Last accepted date.
    pub max: NaiveDate,
}

/// Days past the due date that still count as a pregnancy (41週6日 is the last pregnancy day).
pub const DUE_DATE_PAST_DAYS: u64 = 13;
/// Days ahead a due date may lie (about ten months).
pub const DUE_DATE_AHEAD_DAYS: u64 = 300;
/// Months of the child programme (to the 3rd birthday).
pub const PROGRAMME_MONTHS: u32 = 36;

impl DateKind {
    /// The plausible range of this kind of date on `today`.
    pub fn range(self, today: NaiveDate) -> DateRange {
        match self {
            DateKind::DueDate => DateRange {
                min: today
                    .checked_sub_days(Days::new(DUE_DATE_PAST_DAYS))
                    .unwrap_or(NaiveDate::MIN),
                max: today
                    .checked_add_days(Days::new(DUE_DATE_AHEAD_DAYS))
                    .unwrap_or(NaiveDate::MAX),
            },
            DateKind::Birthday => DateRange {
                min: today
                    .checked_sub_months(Months::new(PROGRAMME_MONTHS))
                    .unwrap_or(NaiveDate::MIN),
                max: today,
            },
        }
    }
}

/// Why a typed date was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateError {
    /// Not recognisable as a date.
    Unreadable,
    /// Looks like a date but does not exist (2月30日).
    NoSuchDate,
    /// A real date outside the accepted range.
    OutOfRange(DateRange),
}

/// Parses a typed date and checks it against the plausible range for `kind` on `today`.
pub fn parse_date(input: &str, kind: DateKind, today: NaiveDate) -> Result<NaiveDate, DateError> {
    let range = kind.range(today);
    let date = match read_parts(input)? {
        Parts::Full(y, m, d) => NaiveDate::from_ymd_opt(y, m, d).ok_or(DateError::NoSuchDate)?,
        Parts::MonthDay(m, d) => month_day_in_range(m, d, kind, range)?,
    };
    if date < range.min || date > range.max {
        return Err(DateError::OutOfRange(range));
    }
    Ok(date)
}

/// Checks a date picked with LINE's date picker against the same range.
pub fn check_range(
    date: NaiveDate,
    kind: DateKind,
    today: NaiveDate,
) -> Result<NaiveDate, DateError> {
    let range = kind.range(today);
    if date < range.min || date > range.max {
        Err(DateError::OutOfRange(range))
    } else {
        Ok(date)
    }
}

/// `2027年3月15日（月）`.
pub fn format_date_ja(date: NaiveDate) -> String {
    let wd = match date.weekday() {
        Weekday::Mon => "月",
        Weekday::Tue => "火",
        Weekday::Wed => "水",
        Weekday::Thu => "木",
        Weekday::Fri => "金",
        Weekday::Sat => "土",
        Weekday::Sun => "日",
    };
    format!(
        "{}年{}月{}日（{}）",
        date.year(),
        date.month(),
        date.day(),
        wd
    )
}

enum Parts {
    Full(i32, u32, u32),
    MonthDay(u32, u32),
}

fn month_day_in_range(
    m: u32,
    d: u32,
    kind: DateKind,
    range: DateRange,
) -> Result<NaiveDate, DateError> {
    // The year is the one that puts the date in the plausible range: the next occurrence for a
    // due date, the last one for a birthday. Feb 29 only exists in some years.
    let candidates: Vec<NaiveDate> = (range.min.year()..=range.max.year())
        .filter_map(|y| NaiveDate::from_ymd_opt(y, m, d))
        .collect();
    if candidates.is_empty() {
        return Err(DateError::NoSuchDate);
    }
    let in_range = candidates
        .iter()
        .copied()
        .filter(|c| *c >= range.min && *c <= range.max);
    let chosen = match kind {
        DateKind::DueDate => in_range.min(),
        DateKind::Birthday => in_range.max(),
    };
    chosen.ok_or(DateError::OutOfRange(range))
}

fn read_parts(input: &str) -> Result<Parts, DateError> {
    // NFKC turns full-width digits and punctuation into ASCII.
    let mut s: String = input.nfkc().collect::<String>().to_lowercase();
    s.retain(|c| !c.is_whitespace());
    // Drop a trailing weekday such as (月) and polite endings.
    if let Some(open) = s.find('(')
        && s.ends_with(')')
    {
        s.truncate(open);
    }
    for tail in ["です。", "です", "。", "頃", "ごろ", "予定", "生まれ"] {
        if let Some(rest) = s.strip_suffix(tail) {
            s = rest.to_owned();
        }
    }
    let s = s.replace(['ー', '―', '‐', '−', '–', '—'], "-");

    let (era_offset, rest) = if let Some(r) = s.strip_prefix("令和") {
        (Some(2018), r)
    } else if let Some(r) = s.strip_prefix("平成") {
        (Some(1988), r)
    } else if let Some(r) = s.strip_prefix('r') {
        (Some(2018), r)
    } else if let Some(r) = s.strip_prefix('h') {
        (Some(1988), r)
    } else {
        (None, s.as_str())
    };
    // 令和元年 is year 1.
    let rest = match (era_offset, rest.strip_prefix('元')) {
        (Some(_), Some(r)) => format!("1{r}"),
        _ => rest.to_owned(),
    };

    let mut numbers: Vec<u32> = Vec::new();
    let mut digits_len: Vec<usize> = Vec::new();
    let mut current = String::new();
    let mut seps: Vec<char> = Vec::new();
    for c in rest.chars() {
        if c.is_ascii_digit() {
            current.push(c);
        } else if matches!(c, '年' | '月' | '日' | '/' | '-' | '.') {
            if current.is_empty() {
                return Err(DateError::Unreadable);
            }
            digits_len.push(current.len());
            numbers.push(current.parse().map_err(|_| DateError::Unreadable)?);
            current.clear();
            seps.push(c);
        } else {
            return Err(DateError::Unreadable);
        }
    }
    if !current.is_empty() {
        digits_len.push(current.len());
        numbers.push(current.parse().map_err(|_| DateError::Unreadable)?);
    }
    // 日 may only close the date.
    if let Some(pos) = seps.iter().position(|c| *c == '日') {
        if pos + 1 != numbers.len() || numbers.len() != seps.len() {
            return Err(DateError::Unreadable);
        }
    } else if seps.len() >= numbers.len() {
        return Err(DateError::Unreadable);
    }

    match (era_offset, numbers.as_slice()) {
        (Some(offset), [y, m, d]) if digits_len[0] <= 2 && *y >= 1 => {
            Ok(Parts::Full(offset + *y as i32, *m, *d))
        }
        (None, [y, m, d]) if digits_len[0] == 4 => Ok(Parts::Full(*y as i32, *m, *d)),
        (None, [m, d]) if digits_len[0] <= 2 && digits_len[1] <= 2 => Ok(Parts::MonthDay(*m, *d)),
        (None, [n]) if digits_len[0] == 8 => {
            Ok(Parts::Full((n / 10_000) as i32, (n / 100) % 100, n % 100))
        }
        _ => Err(DateError::Unreadable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn typed_due_dates() {
        let today = d(2026, 11, 21);
        let ok = d(2027, 3, 15);
        let cases: &[(&str, &str, Result<NaiveDate, DateError>)] = &[
            ("ISO", "2027-03-15", Ok(ok)),
            ("slashes", "2027/3/15", Ok(ok)),
            ("dots", "2027.3.15", Ok(ok)),
            ("kanji", "2027年3月15日", Ok(ok)),
            ("kanji without 日", "2027年3月15", Ok(ok)),
            ("month-day only", "3月15日", Ok(ok)),
            ("month-day slashes", "3/15", Ok(ok)),
            ("reiwa short", "R9.3.15", Ok(ok)),
            ("reiwa short lower-case with slashes", "r9/3/15", Ok(ok)),
            ("reiwa kanji", "令和9年3月15日", Ok(ok)),
            ("full-width digits", "２０２７年３月１５日", Ok(ok)),
            ("full-width slashes", "２０２７／３／１５", Ok(ok)),
            ("spaces and polite ending", " 2027年 3月 15日です ", Ok(ok)),
            ("with weekday", "2027年3月15日(月)", Ok(ok)),
            ("with full-width weekday", "2027年3月15日（月）", Ok(ok)),
            ("compact digits", "20270315", Ok(ok)),
            ("long dash", "2027ー3ー15", Ok(ok)),
            ("no such day", "2027年2月30日", Err(DateError::NoSuchDate)),
            ("month 13", "2027/13/1", Err(DateError::NoSuchDate)),
            ("words", "来年の春", Err(DateError::Unreadable)),
            ("empty", "", Err(DateError::Unreadable)),
            ("two-digit year", "27/3/15", Err(DateError::Unreadable)),
            (
                "日 in the middle",
                "2027日3月15",
                Err(DateError::Unreadable),
            ),
            ("trailing separator", "2027/3/", Err(DateError::Unreadable)),
            (
                "far past",
                "2020/1/1",
                Err(DateError::OutOfRange(DateKind::DueDate.range(today))),
            ),
            (
                "too far ahead",
                "2028/1/1",
                Err(DateError::OutOfRange(DateKind::DueDate.range(today))),
            ),
            (
                "13 days past is still pregnancy",
                "2026/11/8",
                Ok(d(2026, 11, 8)),
            ),
            (
                "14 days past is not",
                "2026/11/7",
                Err(DateError::OutOfRange(DateKind::DueDate.range(today))),
            ),
            (
                "month-day already past this year goes to next year",
                "1月10日",
                Ok(d(2027, 1, 10)),
            ),
            (
                "month-day a week ago stays this year",
                "11月14日",
                Ok(d(2026, 11, 14)),
            ),
            (
                "huge number",
                "99999999999999999999",
                Err(DateError::Unreadable),
            ),
        ];
        for (what, input, expected) in cases {
            assert_eq!(
                &parse_date(input, DateKind::DueDate, today),
                expected,
                "{what}: {input}"
            );
        }
    }

    #[test]
    fn typed_birthdays() {
        let today = d(2026, 11, 21);
        let cases: &[(&str, &str, Result<NaiveDate, DateError>)] = &[
            ("today", "2026/11/21", Ok(today)),
            (
                "month-day later in the year means last year",
                "12月1日",
                Ok(d(2025, 12, 1)),
            ),
            (
                "month-day earlier in the year means this year",
                "11月1日",
                Ok(d(2026, 11, 1)),
            ),
            (
                "reiwa 元年 is too old",
                "令和元年5月1日",
                Err(DateError::OutOfRange(DateKind::Birthday.range(today))),
            ),
            ("exactly three years", "2023/11/21", Ok(d(2023, 11, 21))),
            (
                "a day over three years",
                "2023/11/20",
                Err(DateError::OutOfRange(DateKind::Birthday.range(today))),
            ),
            (
                "tomorrow",
                "2026/11/22",
                Err(DateError::OutOfRange(DateKind::Birthday.range(today))),
            ),
            (
                "leap day picks the last leap year",
                "2月29日",
                Ok(d(2024, 2, 29)),
            ),
            ("reiwa 7", "R7.4.1", Ok(d(2025, 4, 1))),
        ];
        for (what, input, expected) in cases {
            assert_eq!(
                &parse_date(input, DateKind::Birthday, today),
                expected,
                "{what}: {input}"
            );
        }
    }

    #[test]
    fn a_picked_date_is_accepted_up_to_the_ends_of_its_range() {
        let today = d(2026, 11, 21);
        for kind in [DateKind::DueDate, DateKind::Birthday] {
            let r = kind.range(today);
            assert_eq!(check_range(r.min, kind, today), Ok(r.min), "{kind:?}");
            assert_eq!(check_range(r.max, kind, today), Ok(r.max), "{kind:?}");
            let before = r.min.pred_opt().unwrap();
            let after = r.max.succ_opt().unwrap();
            assert_eq!(
                check_range(before, kind, today),
                Err(DateError::OutOfRange(r))
            );
            assert_eq!(
                check_range(after, kind, today),
                Err(DateError::OutOfRange(r))
            );
        }
    }

    #[test]
    fn an_era_year_is_one_or_two_digits_from_1() {
        let today = d(2026, 11, 21);
        for typed in ["令和0年3月15日", "令和009年3月15日", "令和109年3月15日"] {
            assert_eq!(
                parse_date(typed, DateKind::DueDate, today),
                Err(DateError::Unreadable),
                "{typed}"
            );
        }
        assert_eq!(
            parse_date("令和09年3月15日", DateKind::DueDate, today),
            Ok(d(2027, 3, 15))
        );
        // A month and a day are one or two digits each.
        for typed in ["003/15", "3/015", "0003月15日", "2027315", "202703150"] {
            assert_eq!(
                parse_date(typed, DateKind::DueDate, today),
                Err(DateError::Unreadable),
                "{typed}"
            );
        }
        assert_eq!(
            parse_date("03/15", DateKind::DueDate, today),
            Ok(d(2027, 3, 15))
        );
        assert_eq!(
            parse_date("20270315", DateKind::DueDate, today),
            Ok(d(2027, 3, 15))
        );
    }

    #[test]
    fn 日_only_closes_a_date() {
        let today = d(2026, 11, 21);
        for typed in ["3日15月", "3月15日日", "15日3", "2027年3日15月"] {
            assert_eq!(
                parse_date(typed, DateKind::DueDate, today),
                Err(DateError::Unreadable),
                "{typed}"
            );
        }
        assert_eq!(
            parse_date("3月15日", DateKind::DueDate, today),
            Ok(d(2027, 3, 15))
        );
    }

    #[test]
    fn formats_in_japanese() {
        assert_eq!(format_date_ja(d(2027, 3, 15)), "2027年3月15日（月）");
    }
}
