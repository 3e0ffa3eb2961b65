//! The clock is passed in, never read deep inside logic. Japan has no daylight saving time, so
//! a fixed +09:00 offset is exact for Asia/Tokyo.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use std::sync::{Arc, Mutex};

/// Asia/Tokyo as a fixed offset.
pub fn jst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("+09:00 is a valid offset")
}

/// A source of "now".
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// The current instant in Asia/Tokyo.
    fn now_jst(&self) -> DateTime<FixedOffset> {
        self.now().with_timezone(&jst())
    }

    /// Today's date in Asia/Tokyo.
    fn today(&self) -> NaiveDate {
        self.now_jst().date_naive()
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that can be set and moved by tests and the sandbox.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    /// A clock standing at `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(at)))
    }

    /// A clock standing at 08:00 Asia/Tokyo on `date`.
    pub fn at_jst_morning(date: NaiveDate) -> Self {
        let local = date.and_hms_opt(8, 0, 0).expect("valid time");
        let at = local.and_local_timezone(jst()).unwrap().with_timezone(&Utc);
        Self::new(at)
    }

    /// Moves the clock to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A clock that runs like the system clock from an instant that can be moved forward: the
/// sandbox's, where time passes as on a phone and jumps when one travels.
#[derive(Debug, Clone)]
pub struct TravelClock(Arc<Mutex<(DateTime<Utc>, std::time::Instant)>>);

impl TravelClock {
    /// A clock that reads `at` now and runs from there.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new((at, std::time::Instant::now()))))
    }

    /// Moves the clock forward to `at`; an earlier instant leaves it where it is. Returns
    /// whether it moved.
    pub fn advance_to(&self, at: DateTime<Utc>) -> bool {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = g.0 + g.1.elapsed();
        if at > now {
            *g = (at, std::time::Instant::now());
            true
        } else {
            false
        }
    }
}

impl Clock for TravelClock {
    fn now(&self) -> DateTime<Utc> {
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.0 + g.1.elapsed()
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_travel_clock_runs_and_only_moves_forward() {
        let start = DateTime::parse_from_rfc3339("2026-11-29T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = TravelClock::new(start);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(c.now() > start, "it runs");
        assert!(!c.advance_to(start), "never backwards");
        assert!(c.now() > start);
        let later = start + chrono::Duration::days(30);
        assert!(c.advance_to(later));
        assert!(c.now() >= later && c.now() < later + chrono::Duration::seconds(5));
    }
}
