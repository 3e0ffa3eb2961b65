//! Scales, ticks and labels for the charts (pure): counts to pixels, days to pixels, "nice" tick
//! steps, numbers and dates written as staff read them.

use chrono::{Datelike, NaiveDate};

/// Ticks of a count axis from 0: a step of 1, 2 or 5 × 10^k giving at most `max_ticks`
/// intervals, and the top (a multiple of the step, at least `max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticks {
    /// Distance between ticks.
    pub step: u64,
    /// The last tick: the top of the axis.
    pub top: u64,
}

impl Ticks {
    /// Ticks for counts up to `max`. An axis with nothing on it still has one step (0 to 1), so
    /// a chart of zeros draws a baseline instead of dividing by zero.
    pub fn for_max(max: u64, max_ticks: u64) -> Self {
        let intervals = max_ticks.max(1);
        if max == 0 {
            return Ticks { step: 1, top: 1 };
        }
        let mut magnitude: u64 = 1;
        loop {
            for m in [1u64, 2, 5] {
                let step = m.saturating_mul(magnitude);
                if max.div_ceil(step) <= intervals {
                    let top = max.div_ceil(step).saturating_mul(step);
                    return Ticks { step, top };
                }
            }
            match magnitude.checked_mul(10) {
                Some(next) => magnitude = next,
                // Only near u64::MAX: one interval covering everything.
                None => {
                    return Ticks {
                        step: max,
                        top: max,
                    };
                }
            }
        }
    }

    /// The tick values, 0 to `top`.
    pub fn values(&self) -> Vec<u64> {
        let mut v = Vec::new();
        let mut t = 0u64;
        loop {
            v.push(t);
            if t >= self.top {
                return v;
            }
            t = t.saturating_add(self.step);
        }
    }
}

/// A linear map from a domain of values to a range of pixels (either may run backwards, as a
/// y axis does).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Linear {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
}

impl Linear {
    /// Maps `d0..d1` onto `r0..r1`.
    pub fn new(d0: f64, d1: f64, r0: f64, r1: f64) -> Self {
        Self { d0, d1, r0, r1 }
    }

    /// Where `v` goes. An empty domain maps everything to the middle of the range.
    pub fn at(&self, v: f64) -> f64 {
        let span = self.d1 - self.d0;
        if span == 0.0 || !span.is_finite() {
            return (self.r0 + self.r1) / 2.0;
        }
        self.r0 + (v - self.d0) / span * (self.r1 - self.r0)
    }
}

/// Which of `n` consecutive days get a label on a time axis: at most `max_labels`, every
/// 1, 2, 7, 14 or 28 days; from 7 on they fall on Mondays so the labels read as weeks. The
/// last day is always labelled when it is not too close to the one before.
pub fn day_ticks(days: &[NaiveDate], max_labels: usize) -> Vec<usize> {
    let n = days.len();
    if n == 0 {
        return Vec::new();
    }
    let max_labels = max_labels.max(2);
    let step = [1usize, 2, 7, 14, 28, 56, 91, 182, 364]
        .into_iter()
        .find(|s| n.div_ceil(*s) <= max_labels)
        .unwrap_or_else(|| n.div_ceil(max_labels));
    let first = if step >= 7 {
        days.iter()
            .position(|d| d.weekday() == chrono::Weekday::Mon)
            .unwrap_or(0)
    } else {
        0
    };
    let mut ticks: Vec<usize> = (first..n).step_by(step).collect();
    let last = n - 1;
    match ticks.last() {
        Some(&t) if t == last => {}
        Some(&t) if last - t >= step.div_ceil(2) => ticks.push(last),
        Some(_) => {}
        None => ticks.push(last),
    }
    ticks
}

/// A count with thousands separators: `1234567` → `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share as a percentage with one decimal: `0.0734` → `7.3%`; `—` when there is none.
pub fn percent(share: Option<f64>) -> String {
    match share {
        Some(s) if s.is_finite() => format!("{:.1}%", s * 100.0),
        _ => "—".to_owned(),
    }
}

const WEEKDAYS: [&str; 7] = ["月", "火", "水", "木", "金", "土", "日"];

/// `11/23`: a date on a time axis.
pub fn month_day(d: NaiveDate) -> String {
    format!("{}/{}", d.month(), d.day())
}

/// `11/23(月)`: a day with its weekday.
pub fn month_day_weekday(d: NaiveDate) -> String {
    format!(
        "{}/{}({})",
        d.month(),
        d.day(),
        WEEKDAYS[d.weekday().num_days_from_monday() as usize]
    )
}

/// `2026年11月23日`: a date in a sentence.
pub fn long_date(d: NaiveDate) -> String {
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

/// A pixel coordinate as written in the SVG: one decimal, so the output is short and the same
/// on every machine.
pub fn px(v: f64) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    let s = format!("{v:.1}");
    // "-0.0" and "0.0" are the same place.
    if s == "-0.0" { "0.0".to_owned() } else { s }
}

/// About how wide `s` is at `size` px in a sans-serif font: full-width characters take the
/// whole em, others a little over half (enough to place legends without font metrics).
pub fn text_width(s: &str, size: f64) -> f64 {
    s.chars()
        .map(|c| if c.is_ascii() { 0.6 } else { 1.0 })
        .sum::<f64>()
        * size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_1_2_5_steps_covering_the_maximum() {
        let cases = [
            (0, 5, 1, 1),
            (1, 5, 1, 1),
            (5, 5, 1, 5),
            (6, 5, 2, 6),
            (7, 5, 2, 8),
            (10, 5, 2, 10),
            (11, 5, 5, 15),
            (99, 5, 20, 100),
            (101, 5, 50, 150),
            (1_234_567, 5, 500_000, 1_500_000),
            (700_000, 5, 200_000, 800_000),
            (48, 4, 20, 60),
            (3, 0, 5, 5),
        ];
        for (max, n, step, top) in cases {
            assert_eq!(
                Ticks::for_max(max, n),
                Ticks { step, top },
                "max {max}, {n} ticks"
            );
        }
        assert_eq!(Ticks::for_max(7, 5).values(), vec![0, 2, 4, 6, 8]);
        assert_eq!(Ticks::for_max(0, 5).values(), vec![0, 1]);
        let huge = Ticks::for_max(u64::MAX, 5);
        assert!(huge.top >= u64::MAX / 2 && !huge.values().is_empty());
    }

    #[test]
    fn every_maximum_gets_few_ticks_and_a_top_at_least_the_maximum() {
        for max in (0..2000).chain([9_999, 10_001, 123_456, 999_999, 1_000_001]) {
            let t = Ticks::for_max(max, 5);
            assert!(t.top >= max, "{max}");
            assert!(t.top - max < t.step || max == 0, "{max}: tight top");
            assert!(t.values().len() <= 6, "{max}: {:?}", t.values());
            let lead = t.step / 10u64.pow(t.step.ilog10());
            assert!([1, 2, 5].contains(&lead), "{max}: step {}", t.step);
        }
    }

    #[test]
    fn linear_maps_both_ways_and_survives_an_empty_domain() {
        let y = Linear::new(0.0, 100.0, 300.0, 50.0);
        assert_eq!(y.at(0.0), 300.0);
        assert_eq!(y.at(100.0), 50.0);
        assert_eq!(y.at(50.0), 175.0);
        let x = Linear::new(0.0, 0.0, 60.0, 700.0);
        assert_eq!(x.at(0.0), 380.0);
    }

    fn days(from: NaiveDate, n: usize) -> Vec<NaiveDate> {
        (0..n).map(|i| from + chrono::Days::new(i as u64)).collect()
    }

    #[test]
    fn day_ticks_are_few_fall_on_mondays_and_end_on_the_last_day() {
        // 2026-08-25 is a Tuesday; 90 days end on 2026-11-22 (a Sunday).
        let d = days(NaiveDate::from_ymd_opt(2026, 8, 25).unwrap(), 90);
        let t = day_ticks(&d, 8);
        assert!(t.len() <= 9, "{t:?}");
        assert_eq!(t[0], 6, "first Monday: 8/31");
        assert!(
            t[..t.len() - 1]
                .iter()
                .all(|&i| d[i].weekday() == chrono::Weekday::Mon)
        );
        assert_eq!(*t.last().unwrap(), 89);
        assert_eq!(t[1] - t[0], 14);
        // A week: every day.
        let w = days(NaiveDate::from_ymd_opt(2026, 11, 16).unwrap(), 7);
        assert_eq!(day_ticks(&w, 8), (0..7).collect::<Vec<_>>());
        assert_eq!(day_ticks(&[], 8), Vec::<usize>::new());
        assert_eq!(day_ticks(&w[..1], 8), vec![0]);
    }

    #[test]
    fn labels_read_as_staff_write_them() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(percent(Some(0.0734)), "7.3%");
        assert_eq!(percent(None), "—");
        assert_eq!(percent(Some(f64::NAN)), "—");
        let d = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert_eq!(month_day(d), "11/23");
        assert_eq!(month_day_weekday(d), "11/23(月)");
        assert_eq!(long_date(d), "2026年11月23日");
        assert_eq!(px(12.345), "12.3");
        assert_eq!(px(-0.01), "0.0");
        assert_eq!(px(f64::NAN), "0.0");
    }
}
