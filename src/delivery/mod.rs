//! Daily delivery: plan every active registration's day, record each push before sending it
//! with a deterministic `X-Line-Retry-Key`, send under a rate limit, record the outcome.
//! `yorisoi push` and the in-process schedule share this one implementation; two runs on the
//! same database at once never send twice (a lease per push, and LINE's 409 on a reused key).

pub mod plan;

pub use plan::{MAX_OBJECTS, Plan, PlannedPush, RegInfo, plan_day_for_all, render_items};

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::content::ContentPack;
use crate::domain::RegistrationStatus;
use crate::line::{Halt, LineClient, Message, SendOutcome};
use crate::send::Installation;
use crate::store::leases::{self, AcquireError, Holder};
use crate::store::{self, deliveries, deliveries::Outcome, deliveries::RecordedItem};
use chrono::{NaiveDate, NaiveTime};
use futures_util::StreamExt;
use rusqlite::Connection;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

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
    db: Arc<Mutex<Connection>>,
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

struct Ready {
    id: i64,
    registrations: Vec<i64>,
    to: String,
    key: uuid::Uuid,
    messages: Vec<Message>,
}

/// Renders a recorded push for sending, loading what it needs (cached per chunk).
#[allow(clippy::too_many_arguments)]
fn prepare(
    conn: &Connection,
    pack: &ContentPack,
    date: NaiveDate,
    id: i64,
    user_id: i64,
    key: uuid::Uuid,
    items: &[RecordedItem],
    regs: &mut HashMap<i64, RegInfo>,
    users: &mut HashMap<i64, String>,
) -> anyhow::Result<Ready> {
    if let std::collections::hash_map::Entry::Vacant(v) = users.entry(user_id) {
        v.insert(store::users::line_user_id(conn, user_id)?);
    }
    for it in items {
        if let std::collections::hash_map::Entry::Vacant(v) = regs.entry(it.registration_id)
            && let Some(r) = store::registrations::get(conn, it.registration_id)?
        {
            v.insert(RegInfo {
                nickname: r.nickname,
                stage: r.stage,
                date: r.date,
            });
        }
    }
    let mut registrations: Vec<i64> = items.iter().map(|i| i.registration_id).collect();
    registrations.dedup();
    Ok(Ready {
        id,
        registrations,
        to: users[&user_id].clone(),
        key,
        messages: render_items(pack, date, items, regs),
    })
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
        let installation = Installation::load(&conn)?;
        Ok(Self {
            db: Arc::new(Mutex::new(conn)),
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

    /// Takes the delivery lease, waiting for another holder up to `lease_wait`.
    async fn take_lease(&self) -> Result<(), RunError> {
        let deadline = std::time::Instant::now() + self.lease_wait;
        let mut told = false;
        loop {
            let holder = self.holder.clone();
            let taken = self
                .with_db(move |conn| {
                    match leases::acquire(conn, DELIVERY_LEASE, &holder, DELIVERY_LEASE_TTL) {
                        Ok(a) => {
                            // This process alone delivers now: claims left on pushes by a
                            // process that stopped mid-send are void.
                            let freed = deliveries::release_claims(conn)?;
                            if let Some(prev) = a.took_over {
                                tracing::warn!(previous = %prev, freed, "took over the delivery lease of a process that stopped");
                            }
                            Ok(Ok(()))
                        }
                        Err(AcquireError::Held(h)) => Ok(Err(h)),
                        Err(AcquireError::Store(e)) => Err(e.into()),
                    }
                })
                .await?;
            match taken {
                Ok(()) => return Ok(()),
                Err(held) if std::time::Instant::now() < deadline => {
                    if !told {
                        tracing::info!(holder = %held, "another delivery run is in progress; waiting for it");
                        told = true;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(held) => return Err(RunError::Busy(held)),
            }
        }
    }

    async fn release_lease(&self) {
        let holder = self.holder.clone();
        let released = self
            .with_db(move |conn| Ok(leases::release(conn, DELIVERY_LEASE, &holder)?))
            .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "could not release the delivery lease; it expires by itself");
        }
    }

    /// Runs one day's delivery to completion, holding the delivery lease (renewed while it
    /// runs, released at the end).
    pub async fn run_day(&self, date: NaiveDate) -> Result<RunSummary, RunError> {
        self.check_date(date)?;
        self.take_lease().await?;
        let renewing = {
            let (db, holder) = (self.db.clone(), self.holder.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(DELIVERY_LEASE_TTL / 3).await;
                    let (db, holder) = (db.clone(), holder.clone());
                    let kept = tokio::task::spawn_blocking(move || {
                        let conn = db.lock().unwrap_or_else(|e| e.into_inner());
                        leases::renew(&conn, DELIVERY_LEASE, &holder, DELIVERY_LEASE_TTL)
                    })
                    .await;
                    if !matches!(kept, Ok(Ok(true))) {
                        tracing::error!(
                            "the delivery lease could not be renewed; push claims still keep each push to one run"
                        );
                    }
                }
            })
        };
        let result = self.run_day_leased(date).await;
        renewing.abort();
        self.release_lease().await;
        result
    }

    async fn run_day_leased(&self, date: NaiveDate) -> Result<RunSummary, RunError> {
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

        self.deliver(plan.clone(), date, &mut summary).await?;
        summary.send_ms = sending.elapsed().as_millis() as u64;

        // Registrations that reached the end: once their last message is delivered.
        let now = store::ts(self.clock.now());
        let d = date_s.clone();
        let (failed, planned, sent) = (summary.failed, summary.planned, summary.sent);
        let (completed, finished, sent_total) = self
            .with_db(move |conn| {
                let tx = store::write_tx(conn)?;
                let mut n = 0;
                for c in &plan.completions {
                    let done = match &c.last_content {
                        None => true,
                        Some(content) => {
                            deliveries::delivered(&tx, c.registration_id, &d, content)?
                        }
                    };
                    let active = store::registrations::get(&tx, c.registration_id)?
                        .is_some_and(|r| r.status == RegistrationStatus::Active);
                    if done && active {
                        store::registrations::set_status(
                            &tx,
                            c.registration_id,
                            RegistrationStatus::Completed,
                            "programme end",
                            &now,
                        )?;
                        n += 1;
                    }
                }
                let finished = deliveries::run_done(&tx, &d, planned, sent, failed, &now)?;
                let sent_total = deliveries::sent_count(&tx, &d)?;
                tx.commit()?;
                Ok((n, finished, sent_total))
            })
            .await?;
        summary.completed = completed;
        summary.finished = finished;
        summary.already_sent = sent_total.saturating_sub(summary.sent);
        tracing::info!(date = %date_s, sent = summary.sent, already_sent = summary.already_sent, failed = summary.failed, skipped = summary.skipped, completed = summary.completed, finished, "delivery run ended");
        Ok(summary)
    }

    /// Sends the day: a producer records and claims fresh pushes (phase 1), then sweeps every
    /// push of the date still planned (phase 2: earlier runs, readers already recorded); a
    /// sender streams them to LINE under the rate limit; a finisher records outcomes in
    /// batches. The three overlap so the sender never waits for the database.
    async fn deliver(
        &self,
        plan: Arc<Plan>,
        date: NaiveDate,
        summary: &mut RunSummary,
    ) -> anyhow::Result<()> {
        let (ready_tx, ready_rx) = tokio::sync::mpsc::channel::<Ready>(CHUNK * 2);
        let (done_tx, mut done_rx) =
            tokio::sync::mpsc::unbounded_channel::<(i64, Vec<i64>, Outcome)>();
        let stop = Arc::new(AtomicBool::new(false));
        let halt: Arc<Mutex<Option<Halt>>> = Arc::default();
        let retry_later: Arc<Mutex<HashSet<i64>>> = Arc::default();
        let stale = Arc::new(Mutex::new(0usize)); // too old to resend

        let producer = async {
            // Phase 1: the fresh plan, for readers with nothing recorded for the date yet.
            let mut frozen: HashMap<i64, bool> = HashMap::new();
            let mut start = 0;
            while start < plan.pushes.len() && !stop.load(Ordering::Relaxed) {
                let mut end = (start + CHUNK).min(plan.pushes.len());
                // Keep a reader's pushes in one chunk.
                while end < plan.pushes.len()
                    && plan.pushes[end].user_id == plan.pushes[end - 1].user_id
                {
                    end += 1;
                }
                let known: HashMap<i64, bool> = plan.pushes[start..end]
                    .iter()
                    .filter_map(|p| frozen.get(&p.user_id).map(|f| (p.user_id, *f)))
                    .collect();
                let (ready, seen) = self
                    .record_chunk(plan.clone(), start..end, date, known)
                    .await?;
                frozen.extend(seen);
                for r in ready {
                    if ready_tx.send(r).await.is_err() {
                        break;
                    }
                }
                start = end;
            }
            // Phase 2: everything still planned for the date.
            let mut waited = Duration::ZERO;
            loop {
                let mut after = 0;
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let skip: HashSet<i64> = retry_later
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    let (ready, last, too_old) = self.sweep_chunk(date, after, skip).await?;
                    *stale.lock().unwrap_or_else(|e| e.into_inner()) += too_old;
                    let Some(last) = last else { break };
                    after = last;
                    for r in ready {
                        if ready_tx.send(r).await.is_err() {
                            break;
                        }
                    }
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let d = date.to_string();
                let (left, _) = self
                    .with_db(move |conn| Ok(deliveries::remaining(conn, &d)?))
                    .await?;
                let given_up = retry_later.lock().unwrap_or_else(|e| e.into_inner()).len() as i64;
                if left <= given_up || waited > self.lease() * 2 {
                    break;
                }
                // In flight here or held by another run: look again shortly.
                tokio::time::sleep(Duration::from_millis(200)).await;
                waited += Duration::from_millis(200);
            }
            drop(ready_tx);
            anyhow::Ok(())
        };

        let sender = async {
            let ready = futures_util::stream::unfold(ready_rx, |mut rx| async move {
                rx.recv().await.map(|r| (r, rx))
            });
            let results = ready
                .map(|r| {
                    let (stop, halt) = (stop.clone(), halt.clone());
                    async move {
                        let outcome = if stop.load(Ordering::Relaxed) {
                            Outcome::Retry("not sent: the run stopped".into())
                        } else {
                            match self.send_one(&r).await {
                                Ok(o) => o,
                                Err(h) => {
                                    // Nothing is marked failed: the push stays planned and the
                                    // date unfinished, retried once the cause is gone.
                                    let why = format!("not sent: {h}");
                                    *halt.lock().unwrap_or_else(|e| e.into_inner()) = Some(h);
                                    stop.store(true, Ordering::Relaxed);
                                    Outcome::Retry(why)
                                }
                            }
                        };
                        (r.id, r.registrations, outcome)
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
            let mut tally = (0usize, 0usize, 0usize, 0usize);
            while let Some(first) = done_rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < CHUNK {
                    match done_rx.try_recv() {
                        Ok(d) => batch.push(d),
                        Err(_) => break,
                    }
                }
                for (id, _, o) in &batch {
                    match o {
                        Outcome::Sent {
                            duplicate: false, ..
                        } => tally.0 += 1,
                        Outcome::Sent {
                            duplicate: true, ..
                        } => {}
                        Outcome::Failed(_) => tally.1 += 1,
                        Outcome::Retry(_) => {
                            tally.3 += 1;
                            retry_later
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(*id);
                        }
                        Outcome::Skipped(_) => tally.2 += 1,
                    }
                }
                let now = store::ts(self.clock.now());
                let rows: Vec<(i64, Outcome)> =
                    batch.into_iter().map(|(id, _, o)| (id, o)).collect();
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

        let (produced, (), tally) = tokio::join!(producer, sender, finisher);
        produced?;
        let (sent, failed, skipped, not_sent) = tally?;
        let failed_before = *stale.lock().unwrap_or_else(|e| e.into_inner());
        summary.sent += sent;
        summary.failed += failed + failed_before;
        summary.skipped += skipped;
        summary.not_sent += not_sent;
        if let Some(h) = halt.lock().unwrap_or_else(|e| e.into_inner()).take() {
            summary.monthly_limit |= h == Halt::MonthlyLimit;
            tracing::error!(cause = %h, left_planned = not_sent, "delivery stopped: nothing is marked failed; the date is retried once the cause is gone");
            summary.halted = Some(h.to_string());
        }
        Ok(())
    }

    /// Phase 1 for pushes `range` of the plan: records and claims the pushes of readers with
    /// nothing recorded for the date (`known`: readers already looked at). Returns what to send
    /// and, per reader, whether it had rows already.
    async fn record_chunk(
        &self,
        plan: Arc<Plan>,
        range: std::ops::Range<usize>,
        date: NaiveDate,
        known: HashMap<i64, bool>,
    ) -> anyhow::Result<(Vec<Ready>, HashMap<i64, bool>)> {
        let now = self.clock.now();
        let pack = self.pack.clone();
        let lease = self.lease();
        let installation = self.installation.clone();
        self.with_db(move |conn| {
            let tx = store::write_tx(conn)?;
            let date_s = date.to_string();
            let now_s = store::ts(now);
            let lease_until = deliveries::wall_ms() + lease.as_millis() as i64;
            let mut seen = known;
            let mut ready = Vec::new();
            let mut regs: HashMap<i64, RegInfo> = HashMap::new();
            let mut users: HashMap<i64, String> = HashMap::new();
            for p in &plan.pushes[range] {
                let frozen = match seen.get(&p.user_id) {
                    Some(f) => *f,
                    None => {
                        let f = deliveries::user_has_rows(&tx, p.user_id, &date_s)?;
                        seen.insert(p.user_id, f);
                        f
                    }
                };
                if frozen {
                    continue; // Recorded before: phase 2 sends exactly what was recorded.
                }
                let items = plan.items(p);
                let key = installation.delivery_key(p.user_id, date, p.seq);
                let key_s = key.to_string();
                let push = deliveries::NewPush {
                    user_id: p.user_id,
                    date: &date_s,
                    seq: p.seq,
                    retry_key: &key_s,
                    items: &items,
                };
                let id = deliveries::record_and_claim(&tx, push, &now_s, lease_until)?;
                ready.push(prepare(
                    &tx, &pack, date, id, p.user_id, key, &items, &mut regs, &mut users,
                )?);
            }
            tx.commit()?;
            Ok((ready, seen))
        })
        .await
    }

    /// Phase 2: claims up to a chunk of planned rows of the date after `after`, rendered from
    /// what was recorded. Returns what to send, the last row id looked at, and how many rows
    /// were too old to resend.
    async fn sweep_chunk(
        &self,
        date: NaiveDate,
        after: i64,
        skip: HashSet<i64>,
    ) -> anyhow::Result<(Vec<Ready>, Option<i64>, usize)> {
        let pack = self.pack.clone();
        let now = self.clock.now();
        let lease = self.lease();
        let installation = self.installation.clone();
        self.with_db(move |conn| {
            let tx = store::write_tx(conn)?;
            let date_s = date.to_string();
            let now_ms = deliveries::wall_ms();
            let lease_until = now_ms + lease.as_millis() as i64;
            let rows = deliveries::open_rows(&tx, &date_s, after, CHUNK)?;
            let last = rows.last().map(|r| r.id);
            let mut ready = Vec::new();
            let mut regs: HashMap<i64, RegInfo> = HashMap::new();
            let mut users: HashMap<i64, String> = HashMap::new();
            let mut stale = 0;
            for row in rows {
                if skip.contains(&row.id) || !deliveries::claim(&tx, row.id, now_ms, lease_until)? {
                    continue;
                }
                if row.first_attempt_ms.is_some_and(|t| now_ms - t > deliveries::RETRY_KEY_LIFETIME_MS) {
                    // LINE no longer remembers the key: resending could deliver it twice.
                    let why = "first tried over 23 hours ago: not resent, since LINE forgets retry keys after 24 hours";
                    deliveries::finish(&tx, row.id, &Outcome::Failed(why.into()), &store::ts(now))?;
                    stale += 1;
                    continue;
                }
                let items = deliveries::items(&tx, row.id)?;
                let key = uuid::Uuid::parse_str(&row.retry_key).unwrap_or_else(|_| installation.delivery_key(row.user_id, date, row.seq));
                let r = prepare(&tx, &pack, date, row.id, row.user_id, key, &items, &mut regs, &mut users)?;
                // The reader left since it was planned: not sent.
                let still_wanted = store::users::following(&tx, row.user_id)?
                    && items.iter().any(|it| {
                        store::registrations::get(&tx, it.registration_id)
                            .ok()
                            .flatten()
                            .is_some_and(|reg| reg.status == RegistrationStatus::Active)
                    });
                if !still_wanted || r.messages.is_empty() {
                    let why = if still_wanted { "its content is no longer in the pack" } else { "the reader stopped, blocked or completed since it was planned" };
                    deliveries::finish(&tx, row.id, &Outcome::Skipped(why.into()), &store::ts(now))?;
                    continue;
                }
                ready.push(r);
            }
            tx.commit()?;
            Ok((ready, last, stale))
        })
        .await
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

    /// How long a run holds a push it is sending: longer than the worst retry schedule of one
    /// send (LINE's retries and waiting out its 429s), so no other run takes it over mid-send.
    fn lease(&self) -> Duration {
        self.line.worst_case() + RATE_LIMIT_PATIENCE + Duration::from_secs(30)
    }

    /// Sends one push; `Err` when LINE refuses everything (the run stops).
    async fn send_one(&self, r: &Ready) -> Result<Outcome, Halt> {
        let mut waited = Duration::ZERO;
        loop {
            match self.line.push(&r.to, &r.messages, r.key).await {
                o @ (SendOutcome::Sent { .. } | SendOutcome::AlreadyAccepted { .. }) => {
                    return Ok(Outcome::Sent {
                        duplicate: matches!(o, SendOutcome::AlreadyAccepted { .. }),
                        request_id: o.request_id().map(str::to_owned),
                    });
                }
                // LINE's rate limit despite ours: back off and try again with the same key.
                SendOutcome::RateLimited if waited < RATE_LIMIT_PATIENCE => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    waited += Duration::from_secs(1);
                }
                SendOutcome::Halt(h) => return Err(h),
                o @ (SendOutcome::Unknown(_) | SendOutcome::RateLimited) => {
                    return Ok(Outcome::Retry(o.to_string()));
                }
                o @ (SendOutcome::Rejected { .. } | SendOutcome::InvalidReplyToken) => {
                    return Ok(Outcome::Failed(o.to_string()));
                }
            }
        }
    }

    /// Runs every day at `at` (Asia/Tokyo) until `stop`. On start it catches up a run missed
    /// today (or within the catch-up window); a date left unfinished (LINE unavailable) is
    /// retried with a growing pause until it is finished or leaves the window.
    pub async fn run_daily(self, at: NaiveTime, mut stop: watch::Receiver<bool>) {
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
                    .with_db(move |conn| Ok(deliveries::run_finished(conn, &d)?))
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
