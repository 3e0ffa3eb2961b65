//! What `/healthz` reports: the background tasks report into a shared [`Health`] as they run,
//! and [`Health::check`] turns that, a quick write probe of the database and the delivery
//! schedule into a verdict an operator can alert on. Reasons are short and never carry
//! personal data.

use crate::clock::SharedClock;
use crate::config::PushTime;
use crate::store;
use chrono::NaiveDate;
use rusqlite::Connection;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a background task may go without reporting before it counts as stuck.
///
/// Idle, the processor ticks every second; one step is one database transaction, bounded by
/// the 10 s busy wait. 30 s is three of the longest legitimate steps and thirty idle ticks, so
/// a slow moment never alerts, while a task that died or hangs does within half a minute.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// How long the database write probe may wait for the write lock. The webhook's inbox writer
/// holds it for milliseconds at a time; a second means something else holds it.
pub const DB_PROBE_WAIT: Duration = Duration::from_secs(1);

/// After the daily push time, how long a run may take before a day without a recorded
/// finish counts as a problem (a full day's run takes a few minutes).
pub const DELIVERY_GRACE: chrono::Duration = chrono::Duration::minutes(30);

/// Shared health state; clone it into every task that reports.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    started: Instant,
    line: Mutex<Option<crate::line::LineClient>>,
    stale_after: Duration,
    state: Mutex<State>,
    probe: Mutex<Option<Connection>>,
}

#[derive(Default)]
struct State {
    processor_ran: Option<Instant>,
    sender_ran: Option<Instant>,
    delivery: Option<(NaiveDate, bool)>,
    line_problem: Option<String>,
    content_loaded: bool,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every check by name: `ok`, or why it fails.
    pub checks: BTreeMap<&'static str, String>,
    /// The names of the failing checks.
    pub failing: Vec<&'static str>,
}

impl Report {
    /// Whether every check passed.
    pub fn healthy(&self) -> bool {
        self.failing.is_empty()
    }

    fn put(&mut self, name: &'static str, verdict: Result<(), String>) {
        match verdict {
            Ok(()) => {
                self.checks.insert(name, "ok".into());
            }
            Err(reason) => {
                self.checks.insert(name, reason);
                self.failing.push(name);
            }
        }
    }
}

/// What the checks need to know besides the reports.
pub struct Context<'a> {
    /// The clock (for the delivery day).
    pub clock: &'a SharedClock,
    /// The daily push time.
    pub push_time: PushTime,
}

impl Health {
    /// Health with the default staleness threshold; `probe` is a dedicated connection for the
    /// write probe (never shared with a task that could hold it).
    pub fn new(probe: Option<Connection>) -> Self {
        Self::with_threshold(probe, STALE_AFTER)
    }

    /// Health that counts a task stuck after `stale_after` without a report.
    pub fn with_threshold(probe: Option<Connection>, stale_after: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                started: Instant::now(),
                line: Mutex::new(None),
                stale_after,
                state: Mutex::new(State::default()),
                probe: Mutex::new(probe),
            }),
        }
    }

    /// Opens the probe connection on `path` and returns health around it.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = store::connect(path)?;
        // A short wait of its own: the probe must answer, not queue behind a stuck writer.
        conn.busy_timeout(DB_PROBE_WAIT)?;
        Ok(Self::new(Some(conn)))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The event processor finished a step at `at` (monotonic: the injected clock may stand
    /// still in tests and the sandbox).
    pub fn processor_ran(&self, at: Instant) {
        self.state().processor_ran = Some(at);
    }

    /// The reply sender finished a step at `at`.
    pub fn sender_ran(&self, at: Instant) {
        self.state().sender_ran = Some(at);
    }

    /// A delivery run for `date` ended, finished or not.
    pub fn delivery_state(&self, date: NaiveDate, finished: bool) {
        let mut s = self.state();
        // A catch-up of an older date must not hide the state of a newer one.
        if s.delivery.is_none_or(|(d, _)| date >= d) {
            s.delivery = Some((date, finished));
        }
    }

    /// A problem with LINE that stops sending (e.g. a revoked token), or `None` once it is gone.
    pub fn line_problem(&self, reason: Option<String>) {
        self.state().line_problem = reason;
    }

    /// Watches the LINE client every sender shares: while LINE refuses everything (a revoked
    /// token, the monthly limit), the `line` check fails naming the cause.
    pub fn watch_line(&self, line: crate::line::LineClient) {
        *self.inner.line.lock().unwrap_or_else(|e| e.into_inner()) = Some(line);
    }

    /// Whether the content pack is loaded.
    pub fn content_loaded(&self, loaded: bool) {
        self.state().content_loaded = loaded;
    }

    /// Runs every check; the database probe runs off the async threads with a deadline.
    pub async fn check(&self, ctx: Context<'_>) -> Report {
        let mut report = Report {
            checks: BTreeMap::new(),
            failing: Vec::new(),
        };
        let due = match ctx.push_time {
            PushTime::At(at) => due_day(ctx.clock.now_jst().naive_local(), at),
            PushTime::Off => None,
        };
        let (database, due_run, latest) = self.probe_database(due.map(|d| d.date)).await;
        report.put("database", database);
        let now = Instant::now();
        let (processor, sender, delivery, line, content) = {
            let s = self.state();
            (
                s.processor_ran,
                s.sender_ran,
                s.delivery,
                s.line_problem.clone(),
                s.content_loaded,
            )
        };
        report.put(
            "processor",
            self.recent("the event processor", processor, now),
        );
        report.put("sender", self.recent("the reply sender", sender, now));
        report.put(
            "content",
            if content {
                Ok(())
            } else {
                Err("the content pack is not loaded".into())
            },
        );
        let halted = self
            .inner
            .line
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|l| l.halted());
        let line = line.or_else(|| halted.map(|h| h.to_string()));
        report.put("line", line.map_or(Ok(()), Err));
        if let Some(due) = due {
            report.put("delivery", delivery_verdict(due, delivery, due_run));
        } else if let Some(run) = latest {
            // Delivery by cron (`yorisoi push`): its last run must have finished, once it has
            // had the time a run takes.
            report.put("delivery", latest_run_verdict(&run, ctx.clock.now()));
        }
        report
    }

    fn recent(&self, what: &str, last: Option<Instant>, now: Instant) -> Result<(), String> {
        let since = match last {
            Some(at) => now.saturating_duration_since(at),
            // Not yet run: give a starting service the same grace as a running one.
            None => now.saturating_duration_since(self.inner.started),
        };
        if since <= self.inner.stale_after {
            Ok(())
        } else if last.is_none() {
            Err(format!(
                "{what} has not run since the start ({} s ago)",
                since.as_secs()
            ))
        } else {
            Err(format!(
                "{what} has not run for {} s (limit {} s)",
                since.as_secs(),
                self.inner.stale_after.as_secs()
            ))
        }
    }

    /// Takes and drops the write lock on the probe connection; then reads whether the due
    /// delivery day has a finished run (`None`: no run recorded, or unknown).
    async fn probe_database(
        &self,
        due: Option<NaiveDate>,
    ) -> (Result<(), String>, Option<bool>, Option<LatestRun>) {
        let inner = self.inner.clone();
        let probe = tokio::task::spawn_blocking(move || {
            // Concurrent checks take turns; a probe still waiting after a whole probe's time
            // says enough (and no thread queues behind it for long).
            let give_up = Instant::now() + DB_PROBE_WAIT;
            let mut guard = loop {
                match inner.probe.try_lock() {
                    Ok(guard) => break guard,
                    Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
                    Err(std::sync::TryLockError::WouldBlock) if Instant::now() < give_up => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(std::sync::TryLockError::WouldBlock) => {
                        let why =
                            "not writable: an earlier probe is still waiting for the write lock";
                        return (Err(why.into()), None, None);
                    }
                }
            };
            let Some(conn) = guard.as_mut() else {
                return (
                    Err("no database connection for the probe".into()),
                    None,
                    None,
                );
            };
            let writable = conn
                .execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
                .map_err(|e| db_reason(&e));
            let run = due.and_then(|d| {
                conn.query_row(
                    "SELECT finished_at IS NOT NULL FROM delivery_runs WHERE delivery_date = ?1",
                    [d.to_string()],
                    |r| r.get::<_, bool>(0),
                )
                .ok()
            });
            let latest = conn
                .query_row(
                    "SELECT delivery_date, finished_at IS NOT NULL, started_at FROM delivery_runs
                     ORDER BY delivery_date DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .ok();
            (writable, run, latest)
        });
        match tokio::time::timeout(DB_PROBE_WAIT * 3, probe).await {
            Ok(Ok(verdict)) => verdict,
            Ok(Err(_)) => (Err("the write probe failed to run".into()), None, None),
            Err(_) => (
                Err(format!(
                    "not writable: no write lock within {} s",
                    (DB_PROBE_WAIT * 3).as_secs()
                )),
                None,
                None,
            ),
        }
    }
}

/// The latest recorded delivery run: date, finished, started at (RFC 3339).
type LatestRun = (String, bool, String);

/// With delivery by cron: the latest run finished, or is still within the time a run takes.
fn latest_run_verdict(run: &LatestRun, now: chrono::DateTime<chrono::Utc>) -> Result<(), String> {
    let (date, finished, started) = run;
    if *finished {
        return Ok(());
    }
    let started = chrono::DateTime::parse_from_rfc3339(started).ok();
    if started.is_some_and(|t| now.signed_duration_since(t) < DELIVERY_GRACE) {
        return Ok(());
    }
    Err(format!(
        "the delivery of {date} is unfinished: `yorisoi push --date {date}` says why; rerun it once the cause is fixed"
    ))
}

/// SQLite's reason, by kind only (never the SQL or a value).
fn db_reason(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => format!(
            "not writable: another connection holds the write lock for over {} s",
            DB_PROBE_WAIT.as_secs()
        ),
        Some(rusqlite::ErrorCode::ReadOnly) => "not writable: the database is read-only".into(),
        Some(rusqlite::ErrorCode::DiskFull) => "not writable: the disk is full".into(),
        Some(code) => format!("not writable: {code:?}"),
        None => "not writable".into(),
    }
}

/// The last delivery day whose push time has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Due {
    date: NaiveDate,
    today: bool,
    /// Whether its run has had `DELIVERY_GRACE` to finish.
    overdue: bool,
}

fn due_day(now_jst: chrono::NaiveDateTime, at: chrono::NaiveTime) -> Option<Due> {
    let today = now_jst.date();
    let date = if now_jst.time() >= at {
        today
    } else {
        today.pred_opt()?
    };
    Some(Due {
        date,
        today: date == today,
        overdue: now_jst >= date.and_time(at) + DELIVERY_GRACE,
    })
}

/// The delivery check: the last day whose push time has passed has finished. What the worker
/// reported counts first; else what the database recorded (a restarted process has no report
/// yet). A day with no run recorded fails only when it is today and the run is overdue (the
/// worker is stuck): yesterday without a run means this service was not running then.
fn delivery_verdict(
    due: Due,
    reported: Option<(NaiveDate, bool)>,
    recorded: Option<bool>,
) -> Result<(), String> {
    let d = due.date;
    match (reported, recorded) {
        (Some((r, true)), _) if r >= d => Ok(()),
        (Some((r, false)), _) if r >= d => Err(format!(
            "the delivery of {r} is unfinished; it is being retried"
        )),
        (_, Some(true)) => Ok(()),
        (_, Some(false)) if due.overdue => Err(format!("the delivery of {d} is unfinished")),
        (_, None) if due.today && due.overdue => {
            Err(format!("no delivery run has finished for {d}"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    fn at(h: u32, m: u32) -> chrono::NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }
    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    #[test]
    fn delivery_verdicts() {
        let nine = at(9, 0);
        type Case = (
            &'static str,
            (u32, u32, u32),
            Option<(NaiveDate, bool)>,
            Option<bool>,
            bool,
        );
        let cases: &[Case] = &[
            (
                "before today's time, yesterday finished (recorded)",
                (21, 8, 0),
                None,
                Some(true),
                true,
            ),
            (
                "before today's time, yesterday unfinished (recorded)",
                (21, 8, 0),
                None,
                Some(false),
                false,
            ),
            (
                "before today's time, no run yesterday (not running then)",
                (21, 8, 0),
                None,
                None,
                true,
            ),
            (
                "before today's time, yesterday unfinished (reported)",
                (21, 8, 0),
                Some((day(20), false)),
                Some(false),
                false,
            ),
            (
                "today finished (reported)",
                (21, 9, 5),
                Some((day(21), true)),
                None,
                true,
            ),
            (
                "today under way",
                (21, 9, 5),
                Some((day(20), true)),
                Some(false),
                true,
            ),
            (
                "today not started yet within the grace",
                (21, 9, 5),
                None,
                None,
                true,
            ),
            (
                "today unfinished (reported)",
                (21, 9, 5),
                Some((day(21), false)),
                Some(false),
                false,
            ),
            (
                "today never finished after the grace",
                (21, 9, 31),
                Some((day(20), true)),
                Some(false),
                false,
            ),
            (
                "today never started after the grace",
                (21, 9, 31),
                None,
                None,
                false,
            ),
            (
                "today finished (recorded, after a restart)",
                (21, 12, 0),
                None,
                Some(true),
                true,
            ),
            (
                "an older catch-up does not count for today",
                (21, 10, 0),
                Some((day(19), true)),
                None,
                false,
            ),
        ];
        for (what, (d, h, m), reported, recorded, ok) in cases {
            let due = due_day(day(*d).and_time(at(*h, *m)), nine).unwrap();
            let verdict = delivery_verdict(due, *reported, *recorded);
            assert_eq!(verdict.is_ok(), *ok, "{what}: {verdict:?}");
        }
    }

    #[tokio::test]
    async fn fresh_health_is_ok_but_content_and_line_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("y.db");
        store::open_and_migrate(&path).unwrap();
        let health = Health::open(&path).unwrap();
        let clock: SharedClock = Arc::new(crate::clock::SystemClock);
        let ctx = || Context {
            clock: &clock,
            push_time: PushTime::Off,
        };
        let r = health.check(ctx()).await;
        assert_eq!(r.failing, vec!["content"], "{r:?}");
        health.content_loaded(true);
        health.processor_ran(Instant::now());
        health.sender_ran(Instant::now());
        assert!(health.check(ctx()).await.healthy());
        health.line_problem(Some("LINE answered 401".into()));
        let r = health.check(ctx()).await;
        assert_eq!(r.failing, vec!["line"]);
        assert_eq!(r.checks["line"], "LINE answered 401");
        health.line_problem(None);
        assert!(health.check(ctx()).await.healthy());
    }

    #[tokio::test]
    async fn a_task_that_stops_reporting_goes_stale() {
        let health = Health::with_threshold(None, Duration::from_millis(50));
        let long_ago = Instant::now();
        health.processor_ran(long_ago);
        let now = long_ago + Duration::from_millis(51);
        assert!(health.recent("p", Some(long_ago), now).is_err());
        assert!(health.recent("p", Some(now), now).is_ok());
        let clock: SharedClock = Arc::new(crate::clock::SystemClock);
        let r = health
            .check(Context {
                clock: &clock,
                push_time: PushTime::Off,
            })
            .await;
        assert!(
            r.failing.contains(&"database"),
            "no probe connection: {r:?}"
        );
    }
}
