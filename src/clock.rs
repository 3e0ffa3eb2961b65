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

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;
