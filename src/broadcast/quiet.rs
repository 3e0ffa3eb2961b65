//! Quiet hours: a broadcast due inside them waits for their end, unless a sender overrides.

use chrono::{DateTime, NaiveTime, Utc};

/// A daily window of Asia/Tokyo time when broadcasts are held (it may wrap past midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// When it begins.
    pub start: NaiveTime,
    /// When it ends.
    pub end: NaiveTime,
}

impl Default for QuietHours {
    /// 21:00–07:00: no message wakes a family at night.
    fn default() -> Self {
        Self {
            start: NaiveTime::from_hms_opt(21, 0, 0).unwrap_or_default(),
            end: NaiveTime::from_hms_opt(7, 0, 0).unwrap_or_default(),
        }
    }
}

impl QuietHours {
    /// Parses `HH:MM-HH:MM`; `None` for `off`.
    pub fn parse(s: &str) -> Result<Option<Self>, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let bad = || "expected HH:MM-HH:MM (Asia/Tokyo) or `off`".to_string();
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let t = |x: &str| NaiveTime::parse_from_str(x.trim(), "%H:%M").map_err(|_| bad());
        let (start, end) = (t(a)?, t(b)?);
        if start == end {
            return Err("quiet hours must not start and end at the same time".into());
        }
        Ok(Some(Self { start, end }))
    }

    /// Whether an Asia/Tokyo time of day is inside the window.
    pub fn contains(self, t: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// When a broadcast asked for `at` goes: `at`, or the end of the window it falls in.
    pub fn hold(self, at: DateTime<Utc>) -> DateTime<Utc> {
        let local = at.with_timezone(&crate::clock::jst());
        if !self.contains(local.time()) {
            return at;
        }
        let mut day = local.date_naive();
        if local.time() >= self.end {
            // Inside a window that wraps: it ends tomorrow morning.
            day = day.succ_opt().unwrap_or(day);
        }
        day.and_time(self.end)
            .and_local_timezone(crate::clock::jst())
            .single()
            .map_or(at, |d| d.with_timezone(&Utc))
    }

    /// 「21:00〜7:00」.
    pub fn label(self) -> String {
        format!(
            "{}〜{}",
            self.start.format("%-H:%M"),
            self.end.format("%-H:%M")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn jst(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        crate::clock::jst()
            .with_ymd_and_hms(y, m, d, h, mi, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_send_inside_the_window_waits_for_its_end() {
        let q = QuietHours::default();
        assert_eq!(q.hold(jst(2026, 11, 21, 20, 59)), jst(2026, 11, 21, 20, 59));
        assert_eq!(q.hold(jst(2026, 11, 21, 21, 0)), jst(2026, 11, 22, 7, 0));
        assert_eq!(q.hold(jst(2026, 12, 31, 23, 30)), jst(2027, 1, 1, 7, 0));
        assert_eq!(q.hold(jst(2026, 11, 22, 3, 0)), jst(2026, 11, 22, 7, 0));
        assert_eq!(q.hold(jst(2026, 11, 22, 7, 0)), jst(2026, 11, 22, 7, 0));
        let day = QuietHours::parse("12:00-13:00").unwrap().unwrap();
        assert_eq!(
            day.hold(jst(2026, 11, 22, 12, 30)),
            jst(2026, 11, 22, 13, 0)
        );
        assert_eq!(day.hold(jst(2026, 11, 22, 13, 0)), jst(2026, 11, 22, 13, 0));
        assert_eq!(day.label(), "12:00〜13:00");
        assert_eq!(q.label(), "21:00〜7:00");
    }

    #[test]
    fn parsing() {
        assert_eq!(
            QuietHours::parse("21:00-07:00").unwrap(),
            Some(QuietHours::default())
        );
        assert_eq!(QuietHours::parse("off").unwrap(), None);
        assert!(QuietHours::parse("21:00").is_err());
        assert!(QuietHours::parse("25:00-07:00").is_err());
        assert!(QuietHours::parse("07:00-07:00").is_err());
    }
}
