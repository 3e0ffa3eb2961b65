//! Daily delivery: plan every active registration's day, record each push before sending it
//! with a deterministic `X-Line-Retry-Key`, send under a rate limit, record the outcome.
//! `yorisoi push` and the in-process schedule share this one implementation; two runs on the
//! same database at once never send twice (a lease per push, and LINE's 409 on a reused key).

pub mod plan;

pub use plan::{MAX_OBJECTS, Plan, PlannedPush, plan_day_for_all};

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::content::ContentPack;
use crate::domain::Stage;
use crate::line::{LineClient, LineError, Message};
use crate::store::{self, deliveries, deliveries::Claim, deliveries::Outcome};
use chrono::{NaiveDate, NaiveTime};
use futures_util::StreamExt;
use governor::{Quota, RateLimiter};
use rusqlite::Connection;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Pushes recorded and claimed per database transaction.
const CHUNK: usize = 1_000;
/// How long a run holds a push it is sending before another run may take it over.
const LEASE: Duration = Duration::from_secs(15);

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
    /// Failed for good (LINE refused) or not delivered (LINE unavailable; a rerun retries).
    pub failed: usize,
    /// Registrations that reached the end of the programme.
    pub completed: usize,
    /// Stopped early: LINE's monthly limit.
    pub monthly_limit: bool,
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
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The delivery worker.
#[derive(Clone)]
pub struct Worker {
    db: Arc<Mutex<Connection>>,
    pack: Arc<ContentPack>,
    line: LineClient,
    clock: SharedClock,
    rate: u32,
    concurrency: usize,
    catch_up_days: u32,
}

type Limiter = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    governor::clock::DefaultClock,
>;

struct Ready {
    user_id: i64,
    seq: u32,
    id: i64,
    to: String,
    key: uuid::Uuid,
    messages: Vec<Message>,
}

/// The deterministic retry key of a push: the same push always has the same key.
pub fn retry_key(user_id: i64, date: NaiveDate, seq: u32) -> uuid::Uuid {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("yorisoi/delivery/{user_id}/{date}/{seq}").as_bytes(),
    )
}

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
        Ok(Self {
            db: Arc::new(Mutex::new(conn)),
            pack,
            line,
            clock,
            rate: settings.push_rate,
            concurrency: settings.push_concurrency,
            catch_up_days: settings.catch_up_days,
        })
    }

    async fn with_db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&mut db.lock().unwrap_or_else(|e| e.into_inner())))
            .await?
    }

    /// Checks that `date` may be delivered today: not in the future, not before the catch-up window.
    pub fn check_date(&self, date: NaiveDate) -> Result<(), RunError> {
        let today = self.clock.today();
        if date > today {
            return Err(RunError::DateOutOfWindow(format!(
                "{date} is in the future (today is {today} in Asia/Tokyo)"
            )));
        }
        let oldest = today - chrono::Days::new(self.catch_up_days as u64);
        if date < oldest {
            return Err(RunError::DateOutOfWindow(format!(
                "{date} is outside the catch-up window (YORISOI_CATCH_UP_DAYS={}, so the oldest date is {oldest}): a missed day is never delivered late beyond it",
                self.catch_up_days
            )));
        }
        Ok(())
    }

    /// Runs one day's delivery to completion.
    pub async fn run_day(&self, date: NaiveDate) -> Result<RunSummary, RunError> {
        self.check_date(date)?;
        let date_s = date.to_string();
        let pack = self.pack.clone();
        let now = store::ts(self.clock.now());
        let d = date_s.clone();
        let started = std::time::Instant::now();
        let plan = self
            .with_db(move |conn| {
                deliveries::run_started(conn, &d, &now)?;
                plan_day_for_all(conn, &pack, date)
            })
            .await?;
        let plan_ms = started.elapsed().as_millis() as u64;
        let sending = std::time::Instant::now();
        let plan = Arc::new(plan);
        let mut summary = RunSummary {
            date: date_s.clone(),
            planned: plan.pushes.len(),
            plan_ms,
            ..Default::default()
        };
        tracing::info!(date = %date_s, pushes = plan.pushes.len(), "delivery planned");

        let limiter: Arc<Limiter> = Arc::new(RateLimiter::direct(
            Quota::per_second(NonZeroU32::new(self.rate).unwrap_or(NonZeroU32::MIN)).allow_burst(
                NonZeroU32::new((self.rate / 200).clamp(1, 10)).unwrap_or(NonZeroU32::MIN),
            ),
        ));
        let mut pending: Vec<usize> = (0..plan.pushes.len()).collect();
        let mut sent_keys: HashSet<(i64, u32)> = HashSet::new();
        loop {
            let busy = self
                .deliver_pass(
                    plan.clone(),
                    pending,
                    date,
                    limiter.clone(),
                    &mut summary,
                    &mut sent_keys,
                )
                .await?;
            if summary.monthly_limit {
                tracing::error!(
                    "LINE's monthly message limit is reached: delivery stopped; rerun once it is lifted"
                );
                summary.send_ms = sending.elapsed().as_millis() as u64;
                return Ok(summary);
            }
            if busy.is_empty() {
                break;
            }
            // Another run holds some pushes: wait for it to finish them or for its lease to lapse.
            tokio::time::sleep(Duration::from_millis(500)).await;
            pending = busy;
        }

        // Registrations that reached the end, and pushes planned before but no longer wanted.
        let plan2 = plan.clone();
        let now = store::ts(self.clock.now());
        let now_ms = self.clock.now().timestamp_millis();
        let d = date_s.clone();
        let planned_keys: HashSet<(i64, u32)> =
            plan.pushes.iter().map(|p| (p.user_id, p.seq)).collect();
        let (failed, planned, sent_total) = (summary.failed, summary.planned, summary.sent);
        summary.completed = self
            .with_db(move |conn| {
                let tx = store::write_tx(conn)?;
                let mut n = 0;
                for c in &plan2.completions {
                    let delivered = c.push.is_none_or(|key| sent_keys.contains(&key));
                    if delivered {
                        store::registrations::set_status(
                            &tx,
                            c.registration_id,
                            crate::domain::RegistrationStatus::Completed,
                            "programme end",
                            &now,
                        )?;
                        n += 1;
                    }
                }
                deliveries::skip_unplanned(&tx, &d, &planned_keys, now_ms)?;
                deliveries::run_done(&tx, &d, planned, sent_total, failed, &now)?;
                tx.commit()?;
                Ok(n)
            })
            .await?;
        summary.send_ms = sending.elapsed().as_millis() as u64;
        tracing::info!(date = %date_s, sent = summary.sent, already_sent = summary.already_sent, failed = summary.failed, completed = summary.completed, "delivery finished");
        Ok(summary)
    }

    /// Plans `date` without recording or sending anything (`yorisoi push --dry-run`).
    pub async fn dry_run(&self, date: NaiveDate) -> Result<RunSummary, RunError> {
        let pack = self.pack.clone();
        let started = std::time::Instant::now();
        let plan = self
            .with_db(move |conn| plan_day_for_all(conn, &pack, date))
            .await?;
        Ok(RunSummary {
            date: date.to_string(),
            planned: plan.pushes.len(),
            completed: plan.completions.len(),
            plan_ms: started.elapsed().as_millis() as u64,
            ..Default::default()
        })
    }

    /// One pass over `pending`: a producer records and claims pushes chunk by chunk, a sender
    /// streams them to LINE under the rate limit, a finisher records outcomes in batches; the
    /// three overlap so the sender never waits for the database. Returns the pushes another run
    /// was holding.
    async fn deliver_pass(
        &self,
        plan: Arc<Plan>,
        pending: Vec<usize>,
        date: NaiveDate,
        limiter: Arc<Limiter>,
        summary: &mut RunSummary,
        sent_keys: &mut HashSet<(i64, u32)>,
    ) -> anyhow::Result<Vec<usize>> {
        let (ready_tx, ready_rx) = tokio::sync::mpsc::channel::<Ready>(CHUNK * 2);
        let (done_tx, mut done_rx) =
            tokio::sync::mpsc::unbounded_channel::<((i64, u32, i64), Outcome)>();
        let stop = Arc::new(AtomicBool::new(false));

        let producer = async {
            let mut claims = Vec::with_capacity(pending.len());
            for chunk in pending.chunks(CHUNK) {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (ready, c) = self.claim_chunk(plan.clone(), chunk.to_vec(), date).await?;
                claims.extend(c);
                for r in ready {
                    if ready_tx.send(r).await.is_err() {
                        break;
                    }
                }
            }
            drop(ready_tx);
            anyhow::Ok(claims)
        };

        let sender = async {
            let ready = futures_util::stream::unfold(ready_rx, |mut rx| async move {
                rx.recv().await.map(|r| (r, rx))
            });
            let results = ready
                .map(|r| {
                    let (limiter, stop) = (limiter.clone(), stop.clone());
                    async move {
                        let outcome = if stop.load(Ordering::Relaxed) {
                            Outcome::Retry(
                                "not sent: the run stopped at LINE's monthly limit".into(),
                            )
                        } else {
                            self.send_one(&r, &limiter).await
                        };
                        if matches!(&outcome, Outcome::Retry(e) if e.starts_with("monthly limit")) {
                            stop.store(true, Ordering::Relaxed);
                        }
                        ((r.user_id, r.seq, r.id), outcome)
                    }
                })
                .buffer_unordered(self.concurrency);
            let mut results = std::pin::pin!(results);
            while let Some(done) = results.next().await {
                let _ = done_tx.send(done);
            }
            drop(done_tx);
        };

        let finisher = async {
            let mut tally = (0usize, 0usize, Vec::new());
            while let Some(first) = done_rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < CHUNK {
                    match done_rx.try_recv() {
                        Ok(d) => batch.push(d),
                        Err(_) => break,
                    }
                }
                for ((user, seq, _), o) in &batch {
                    match o {
                        Outcome::Sent { .. } => {
                            tally.0 += 1;
                            tally.2.push((*user, *seq));
                        }
                        Outcome::Failed(_) | Outcome::Retry(_) => tally.1 += 1,
                    }
                }
                let now = store::ts(self.clock.now());
                let rows: Vec<(i64, Outcome)> =
                    batch.into_iter().map(|((_, _, id), o)| (id, o)).collect();
                self.with_db(move |conn| {
                    let tx = store::write_tx(conn)?;
                    for (id, o) in &rows {
                        deliveries::finish(&tx, *id, o, &now)?;
                    }
                    tx.commit()?;
                    Ok(())
                })
                .await?;
            }
            anyhow::Ok(tally)
        };

        let (claims, (), tally) = tokio::join!(producer, sender, finisher);
        let (claims, (sent, failed, keys)) = (claims?, tally?);
        summary.sent += sent;
        summary.failed += failed;
        summary.monthly_limit |= stop.load(Ordering::Relaxed);
        sent_keys.extend(keys);
        let mut busy = Vec::new();
        for (i, c) in claims {
            match c {
                Claim::AlreadySent => {
                    summary.already_sent += 1;
                    let p = &plan.pushes[i];
                    sent_keys.insert((p.user_id, p.seq));
                }
                Claim::AlreadyFailed => summary.failed += 1,
                Claim::Busy { .. } => busy.push(i),
                Claim::Skipped | Claim::Mine { .. } => {}
            }
        }
        Ok(busy)
    }

    async fn claim_chunk(
        &self,
        plan: Arc<Plan>,
        chunk: Vec<usize>,
        date: NaiveDate,
    ) -> anyhow::Result<(Vec<Ready>, Vec<(usize, Claim)>)> {
        let now = self.clock.now();
        let pack = self.pack.clone();
        self.with_db(move |conn| {
            let tx = store::write_tx(conn)?;
            let date_s = date.to_string();
            let now_s = store::ts(now);
            let now_ms = now.timestamp_millis();
            let lease_until = now_ms + LEASE.as_millis() as i64;
            let mut claims = Vec::with_capacity(chunk.len());
            let mut mine = Vec::new();
            for &i in &chunk {
                let p = &plan.pushes[i];
                let items: Vec<(i64, String)> = plan
                    .entries(p)
                    .iter()
                    .map(|e| (e.registration_id, e.item.content_id(&pack)))
                    .collect();
                let key = retry_key(p.user_id, date, p.seq);
                deliveries::record(
                    &tx,
                    p.user_id,
                    &date_s,
                    p.seq,
                    &key.to_string(),
                    &items,
                    &now_s,
                )?;
                let c = deliveries::claim(&tx, p.user_id, &date_s, p.seq, now_ms, lease_until)?;
                if let Claim::Mine { id } = c {
                    mine.push((i, id, key));
                }
                claims.push((i, c));
            }
            // What rendering needs: recipients and nicknames, read in the same transaction.
            let mut ready = Vec::with_capacity(mine.len());
            let mut users: HashMap<i64, String> = HashMap::new();
            let mut regs: HashMap<i64, (String, Stage, NaiveDate)> = HashMap::new();
            for &(i, id, key) in &mine {
                let p = &plan.pushes[i];
                if let std::collections::hash_map::Entry::Vacant(e) = users.entry(p.user_id) {
                    e.insert(store::users::line_user_id(&tx, p.user_id)?);
                }
                for e in plan.entries(p) {
                    if let std::collections::hash_map::Entry::Vacant(v) =
                        regs.entry(e.registration_id)
                        && let Some(r) = store::registrations::get(&tx, e.registration_id)?
                    {
                        v.insert((r.nickname, r.stage, r.date));
                    }
                }
                let messages = plan.render(&pack, p, |reg| {
                    regs.get(&reg).map(|(n, _, _)| n.as_str()).unwrap_or("")
                });
                ready.push(Ready {
                    user_id: p.user_id,
                    seq: p.seq,
                    id,
                    to: users[&p.user_id].clone(),
                    key,
                    messages,
                });
            }
            tx.commit()?;
            Ok((ready, claims))
        })
        .await
    }

    async fn send_one(&self, r: &Ready, limiter: &Limiter) -> Outcome {
        let mut waited = Duration::ZERO;
        loop {
            limiter.until_ready().await;
            match self.line.push(&r.to, &r.messages, r.key).await {
                Ok(ok) => {
                    return Outcome::Sent {
                        request_id: ok.request_id,
                    };
                }
                Err(LineError::RateLimited { monthly: false, .. })
                    if waited < Duration::from_secs(120) =>
                {
                    // LINE's rate limit despite ours: back off and try again with the same key.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    waited += Duration::from_secs(1);
                }
                Err(LineError::RateLimited {
                    monthly: true,
                    message,
                }) => {
                    return Outcome::Retry(format!("monthly limit: {message}"));
                }
                Err(e @ (LineError::Unavailable(_) | LineError::RateLimited { .. })) => {
                    return Outcome::Retry(e.to_string());
                }
                Err(e @ LineError::Rejected { .. }) => return Outcome::Failed(e.to_string()),
            }
        }
    }

    /// Runs every day at `at` (Asia/Tokyo) until `stop`; on start, catches up a run missed
    /// today (or within the catch-up window).
    pub async fn run_daily(self, at: NaiveTime, mut stop: watch::Receiver<bool>) {
        loop {
            let now = self.clock.now_jst();
            let today = now.date_naive();
            let first = today - chrono::Days::new(self.catch_up_days as u64);
            let mut date = first;
            while date <= today {
                let due = date < today || now.time() >= at;
                let d = date.to_string();
                let done = self
                    .with_db(move |conn| Ok(deliveries::run_finished(conn, &d)?))
                    .await
                    .unwrap_or(true);
                if due && !done {
                    match self.run_day(date).await {
                        Ok(s) if s.failed > 0 => {
                            tracing::warn!(date = %date, failed = s.failed, "delivery finished with failures")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::error!(date = %date, error = %e, "delivery failed"),
                    }
                }
                date = date.succ_opt().unwrap_or(date);
                if date == NaiveDate::MAX {
                    break;
                }
            }
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
