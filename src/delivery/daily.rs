//! The in-process schedule: every day at the configured time (Asia/Tokyo), catching up a run
//! missed within the window and retrying an unfinished date with a growing pause.

use super::{RunError, Worker};
use crate::store::deliveries;
use chrono::{NaiveDate, NaiveTime};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;

impl Worker {
    /// Runs every day at `at` (Asia/Tokyo) until `stop`. On start it catches up a run missed
    /// today (or within the catch-up window); a date left unfinished (LINE unavailable) is
    /// retried with a growing pause until it is finished or leaves the window. `passes` counts
    /// the looks it has finished (each one ran every day that was due), for whoever wants to
    /// know the schedule has caught up with the clock.
    pub async fn run_daily(
        self,
        at: NaiveTime,
        mut stop: watch::Receiver<bool>,
        passes: watch::Sender<u64>,
    ) {
        let mut backoff: HashMap<NaiveDate, (u32, std::time::Instant)> = HashMap::new();
        loop {
            let now = self.clock.now_jst();
            let today = now.date_naive();
            let first = today
                .checked_sub_days(chrono::Days::new(self.catch_up_days as u64))
                .unwrap_or(today);
            backoff.retain(|d, _| *d >= first);
            let mut date = first;
            while date <= today {
                let due = date < today || now.time() >= at;
                let d = date.to_string();
                let done = self
                    .db
                    .run(move |conn| Ok(deliveries::run_finished(conn, &d)?))
                    .await
                    .unwrap_or(true);
                let waiting = backoff
                    .get(&date)
                    .is_some_and(|(_, next)| std::time::Instant::now() < *next);
                if due && !done && !waiting {
                    match self.run_day(date).await {
                        Ok(s) if s.finished => {
                            backoff.remove(&date);
                        }
                        Ok(s) => {
                            let tries = backoff.get(&date).map_or(0, |(n, _)| *n) + 1;
                            let pause = Duration::from_secs(30 * (1u64 << tries.min(5)));
                            tracing::warn!(date = %date, failed = s.failed, retry_in_s = pause.as_secs(), "delivery unfinished; will retry");
                            backoff.insert(date, (tries, std::time::Instant::now() + pause));
                        }
                        Err(RunError::Busy(holder)) => {
                            tracing::info!(date = %date, %holder, "another process is delivering; looking again shortly");
                        }
                        Err(e) => tracing::error!(date = %date, error = %e, "delivery failed"),
                    }
                }
                let Some(next) = date.succ_opt() else { break };
                date = next;
            }
            passes.send_modify(|n| *n += 1);
            // Look again within a minute: the clock may move (sandbox) and runs are idempotent.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}
