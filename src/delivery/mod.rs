//! Daily delivery: plan every active registration's day, record each push before sending it
//! with a deterministic `X-Line-Retry-Key`, send under the client's rate limit, record the
//! outcome. `yorisoi push` and the in-process schedule share this one implementation.
//!
//! - `run.rs`: one day: plan, deliver, complete the registrations that reached the end;
//! - `pipeline.rs`: record and claim pushes, stream them to LINE, commit outcomes as they come;
//! - `push.rs`: one push and what LINE's answer means for it;
//! - `lease.rs`: only one process delivers at a time (a lease row in SQLite);
//! - `daily.rs`: the in-process schedule (the configured time, catch-up, retries);
//! - `plan.rs`: the day's plan for every reader, and rendering a recorded push.

mod daily;
mod lease;
mod pipeline;
pub mod plan;
mod push;
mod run;

pub use plan::{MAX_OBJECTS, Plan, PlannedPush, RegInfo, plan_day_for_all, render_items};

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::content::ContentPack;
use crate::line::LineClient;
use crate::send::Installation;
use crate::store::{self, leases::Holder};
use chrono::NaiveDate;
use rusqlite::Connection;
use std::sync::Arc;
use std::time::Duration;

/// Pushes recorded and claimed per database transaction.
const CHUNK: usize = 1_000;
/// How long a run may wait out LINE's 429s for one push.
const RATE_LIMIT_PATIENCE: Duration = Duration::from_secs(120);

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunSummary {
    /// The date delivered.
    pub date: String,
    /// Pushes in the day's plan.
    pub planned: usize,
    /// Sent by this run.
    pub sent: usize,
    /// Delivered before (an earlier or parallel run, or LINE's 409 for the key).
    pub already_sent: usize,
    /// Failed for good: LINE refused it, or it is too old to resend safely.
    pub failed: usize,
    /// Planned earlier but not sent: the reader stopped, blocked or completed since.
    pub skipped: usize,
    /// Nothing is left to send for the date (false: a rerun has work to do).
    pub finished: bool,
    /// Registrations that reached the end of the programme.
    pub completed: usize,
    /// Pregnancy registrations stopped after their last birth reminder (no birth reported).
    pub birth_unreported: usize,
    /// Delivered by an earlier, interrupted run (LINE answered 409 for the key) during this run.
    pub answered_409: usize,
    /// Not sent this time and left planned for a rerun (LINE unavailable, or the run stopped).
    pub not_sent: usize,
    /// Stopped early: LINE's monthly limit.
    pub monthly_limit: bool,
    /// Stopped early: why LINE refused everything (monthly limit, revoked token).
    pub halted: Option<String>,
    /// Time spent planning (reading registrations and computing the day), in milliseconds.
    pub plan_ms: u64,
    /// Time spent recording and sending, in milliseconds.
    pub send_ms: u64,
}

/// Peak resident memory of this process in KiB (Linux), for benchmark reports.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Why a date cannot be delivered.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Outside the catch-up window or in the future.
    #[error("{0}")]
    DateOutOfWindow(String),
    /// Another process is delivering (only one delivers at a time).
    #[error("another delivery run holds the database: {0}")]
    Busy(store::leases::Held),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The delivery worker.
#[derive(Clone)]
pub struct Worker {
    db: store::Db,
    pack: Arc<ContentPack>,
    line: LineClient,
    clock: SharedClock,
    installation: Installation,
    concurrency: usize,
    catch_up_days: u32,
    holder: Arc<Holder>,
    lease_wait: Duration,
}

/// The process lease a delivery run holds: only one process delivers at a time, so the rate
/// limiter in this process's `LineClient` is the channel's.
const DELIVERY_LEASE: &str = "delivery";
/// How long the delivery lease lasts unless renewed (renewed every third of it).
const DELIVERY_LEASE_TTL: Duration = Duration::from_secs(60);

impl Worker {
    /// A worker on its own database connection.
    pub fn new(
        settings: &Settings,
        pack: Arc<ContentPack>,
        line: LineClient,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        Self::with_connection(
            store::connect(&settings.database)?,
            settings,
            pack,
            line,
            clock,
        )
    }

    /// A worker on the given connection.
    pub fn with_connection(
        conn: Connection,
        settings: &Settings,
        pack: Arc<ContentPack>,
        line: LineClient,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        let installation = Installation::load(&conn)?;
        Ok(Self {
            db: store::Db::new(conn),
            pack,
            line,
            clock,
            installation,
            holder: Arc::new(Holder::new()),
            lease_wait: Duration::ZERO,
            concurrency: settings.push_concurrency,
            catch_up_days: settings.catch_up_days,
        })
    }

    /// Checks that `date` may be delivered today: not in the future, not before the catch-up window.
    pub fn check_date(&self, date: NaiveDate) -> Result<(), RunError> {
        let today = self.clock.today();
        if date > today {
            return Err(RunError::DateOutOfWindow(format!(
                "{date} is in the future (today is {today} in Asia/Tokyo)"
            )));
        }
        let oldest = today
            .checked_sub_days(chrono::Days::new(self.catch_up_days as u64))
            .unwrap_or(NaiveDate::MIN);
        if date < oldest {
            return Err(RunError::DateOutOfWindow(format!(
                "{date} is outside the catch-up window (YORISOI_CATCH_UP_DAYS={}, so the oldest date is {oldest}): a missed day is never delivered late beyond it",
                self.catch_up_days
            )));
        }
        Ok(())
    }

    /// Waits up to `wait` for another process's delivery run to end instead of giving up at
    /// once (`yorisoi push --wait`).
    pub fn with_lease_wait(mut self, wait: Duration) -> Self {
        self.lease_wait = wait;
        self
    }
}
