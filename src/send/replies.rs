//! The reply sender: its own task, so a slow LINE never holds up a conversation. Each queued
//! answer is claimed before it leaves and its outcome committed as it comes.
//!
//! A reply token is single-use, which makes a retry with the same token safe: if an earlier
//! attempt (timed out, 5xx, or cut by a crash) did reach LINE, the token is spent and LINE
//! refuses it, so that refusal after an attempt counts as delivered. Only a token refused on
//! its very first attempt (it expired before anything was sent) falls back to a push, under
//! the batch's retry key.

use crate::clock::SharedClock;
use crate::line::{LineClient, SendOutcome};
use crate::store::outbox::{self, Finish, OutboxItem};
use crate::store::{self, deliveries::wall_ms};
use chrono::{DateTime, Datelike, Utc};
use rusqlite::Connection;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// A reply token is good for about a minute; an answer still unsent after this goes as a push.
const REPLY_TOKEN_TTL: Duration = Duration::from_secs(50);
/// Batches claimed per pass.
const CLAIM: usize = 500;
/// Readers answered side by side.
const READERS_AT_ONCE: usize = 32;
/// Tries before a batch is given up (LINE has kept failing for about an hour by then).
const MAX_ATTEMPTS: i64 = 20;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplyPass {
    /// Batches claimed.
    pub claimed: usize,
    /// Delivered (as a reply, a push, or by an earlier attempt).
    pub sent: usize,
    /// Due again later (LINE unavailable, rate limit, halted).
    pub later: usize,
    /// Failed or dropped for good.
    pub failed: usize,
}

/// How long LINE's quota figures are trusted before they are asked again.
const QUOTA_TTL: Duration = Duration::from_secs(60);

/// Sends the outbox.
#[derive(Clone)]
pub struct ReplySender {
    db: Arc<Mutex<Connection>>,
    line: LineClient,
    clock: SharedClock,
    reserve: Option<u64>,
    quota: Arc<tokio::sync::Mutex<Option<(std::time::Instant, bool)>>>,
    last_probe: Arc<Mutex<Option<std::time::Instant>>>,
}

/// While LINE refuses everything, how often one answer is tried to see whether it still does.
const HALT_PROBE: Duration = Duration::from_secs(10);

/// Pushes the daily delivery may still need this month: each reader with an active
/// registration, once a day, for the days left in the month (today included).
fn daily_need(conn: &Connection, today: chrono::NaiveDate) -> anyhow::Result<u64> {
    let readers: i64 = conn.query_row(
        "SELECT count(DISTINCT rr.user_id) FROM registrations r
         JOIN registration_readers rr ON rr.registration_id = r.id
         JOIN line_users u ON u.id = rr.user_id
         WHERE r.status = 'active' AND u.following = 1",
        [],
        |r| r.get(0),
    )?;
    let first_of_next = today
        .with_day(1)
        .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
        .unwrap_or(today);
    let days_left = (first_of_next - today).num_days().max(1) as u64;
    Ok(readers as u64 * days_left)
}

/// The pause after the `attempts`-th try: a quarter second, doubling, at most five minutes (a
/// parent is waiting for the answer; LINE is rarely down for long).
fn backoff(attempts: i64) -> Duration {
    (Duration::from_millis(250) * (1u32 << (attempts - 1).clamp(0, 12)))
        .min(Duration::from_secs(300))
}

impl ReplySender {
    /// A sender on its own database connection. `reserve`: pushes of the month's quota kept
    /// for the daily delivery (`None`: worked out from the readers).
    pub fn new(
        conn: Connection,
        line: LineClient,
        clock: SharedClock,
        reserve: Option<u64>,
    ) -> Self {
        Self {
            db: Arc::new(Mutex::new(conn)),
            line,
            clock,
            reserve,
            quota: Arc::default(),
            last_probe: Arc::default(),
        }
    }

    /// Whether it is time for one send while LINE is halted.
    fn probe_due(&self) -> bool {
        let mut last = self.last_probe.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < HALT_PROBE) {
            return false;
        }
        *last = Some(std::time::Instant::now());
        true
    }

    /// Whether an answer may still go as a push: not when LINE's remaining quota for the month
    /// is down to what the daily delivery needs (a chat must never stop the mornings).
    async fn push_allowed(&self) -> bool {
        let mut cached = self.quota.lock().await;
        if let Some((at, allowed)) = *cached
            && at.elapsed() < QUOTA_TTL
        {
            return allowed;
        }
        let allowed = match self.line.quota().await.and_then(|q| q.left()) {
            // No limit set, or LINE did not say: nothing to keep.
            None => true,
            Some(left) => {
                let need = match self.reserve {
                    Some(n) => n,
                    None => {
                        let today = self.clock.now_jst().date_naive();
                        self.with_db(move |conn| daily_need(conn, today))
                            .await
                            .unwrap_or(u64::MAX)
                    }
                };
                left > need
            }
        };
        if !allowed {
            tracing::warn!(
                "the month's remaining LINE quota is kept for the daily delivery: chat answers whose reply token expired are not pushed"
            );
        }
        *cached = Some((std::time::Instant::now(), allowed));
        allowed
    }

    async fn with_db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&mut db.lock().unwrap_or_else(|e| e.into_inner())))
            .await?
    }

    /// Releases claims left by a process that stopped mid-send (call once at start, while this
    /// process alone serves the database).
    pub async fn recover(&self) -> anyhow::Result<usize> {
        self.with_db(|conn| Ok(outbox::release_all(conn)?)).await
    }

    /// Sends every batch due now; returns when the queue has nothing due.
    pub async fn run_once(&self) -> anyhow::Result<ReplyPass> {
        let mut total = ReplyPass::default();
        loop {
            let pass = self.pass().await?;
            total.claimed += pass.claimed;
            total.sent += pass.sent;
            total.later += pass.later;
            total.failed += pass.failed;
            if pass.claimed == 0 || self.line.halted().is_some() {
                return Ok(total);
            }
        }
    }

    /// Runs until `stop`, woken by `wake` (the processor queued answers) or every second;
    /// reports each pass to `health`.
    pub async fn run(
        self,
        wake: Arc<Notify>,
        mut stop: watch::Receiver<bool>,
        health: crate::health::Health,
    ) {
        loop {
            if *stop.borrow() {
                return;
            }
            // Stopping cuts a send short: its batch stays claimed and pending, and the next
            // start releases the claim and sends it (a spent reply token then counts as
            // delivered, so it cannot double).
            tokio::select! {
                r = self.run_once() => match r {
                    Ok(_) => health.sender_ran(std::time::Instant::now()),
                    Err(e) => tracing::error!(error = %e, "sending replies failed; will retry"),
                },
                _ = stop.changed() => return,
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => {}
            }
        }
    }

    async fn pass(&self) -> anyhow::Result<ReplyPass> {
        let now = self.clock.now();
        let lease = self.line.worst_case() * 2 + Duration::from_secs(10);
        let claimed = self
            .with_db(move |conn| {
                let tx = store::write_tx(conn)?;
                let now_ms = wall_ms();
                let items = outbox::claim_due(
                    &tx,
                    now_ms,
                    now_ms + lease.as_millis() as i64,
                    CLAIM,
                    |item| try_reply(item, now),
                )?;
                tx.commit()?;
                Ok(items)
            })
            .await?;
        let mut pass = ReplyPass {
            claimed: claimed.len(),
            ..Default::default()
        };
        if claimed.is_empty() {
            return Ok(pass);
        }
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<(i64, Finish)>();
        let sending = async {
            // One batch per reader was claimed, so readers go side by side, a group at a time.
            for group in claimed.chunks(READERS_AT_ONCE) {
                // LINE refuses everything now (revoked token, monthly limit): not tried, so not
                // counted as a try; one group in a while finds out whether the cause is gone.
                if self.line.halted().is_some() && !self.probe_due() {
                    for (item, _) in group {
                        let later = Finish::Released {
                            as_reply: false,
                            next_attempt_ms: wall_ms() + 5_000,
                        };
                        let _ = done_tx.send((item.id, later));
                    }
                    continue;
                }
                // The reply attempts of this group are committed just before the requests
                // leave: after a crash, a batch marked as tried may have reached LINE, and one
                // not marked was never sent.
                let ids: Vec<i64> = group
                    .iter()
                    .filter(|(_, as_reply)| *as_reply)
                    .map(|(item, _)| item.id)
                    .collect();
                if !ids.is_empty()
                    && let Err(e) = self
                        .with_db(move |conn| {
                            let tx = store::write_tx(conn)?;
                            outbox::count_reply_attempts(&tx, &ids)?;
                            tx.commit()?;
                            Ok(())
                        })
                        .await
                {
                    tracing::warn!(error = %e, "could not record reply attempts; will retry");
                    for (item, _) in group {
                        let later = Finish::Released {
                            as_reply: false,
                            next_attempt_ms: wall_ms() + 1_000,
                        };
                        let _ = done_tx.send((item.id, later));
                    }
                    continue;
                }
                futures_util::future::join_all(group.iter().map(|(item, as_reply)| {
                    let done_tx = done_tx.clone();
                    async move {
                        let finish = self.send(item, *as_reply).await;
                        let _ = done_tx.send((item.id, finish));
                    }
                }))
                .await;
            }
            drop(done_tx);
        };
        // Outcomes are committed as they arrive: whatever is waiting goes in one transaction.
        let recording = async {
            while let Some(first) = done_rx.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = done_rx.try_recv() {
                    batch.push(more);
                }
                for (_, f) in &batch {
                    match f {
                        Finish::Sent { .. } => pass.sent += 1,
                        Finish::Later { .. } | Finish::Released { .. } => pass.later += 1,
                        Finish::Failed(_) | Finish::Dropped(_) => pass.failed += 1,
                    }
                }
                let at = store::ts(self.clock.now());
                self.with_db(move |conn| {
                    let tx = store::write_tx(conn)?;
                    for (id, f) in &batch {
                        outbox::finish(&tx, *id, f, &at)?;
                    }
                    tx.commit()?;
                    Ok(())
                })
                .await?;
            }
            anyhow::Ok(())
        };
        let ((), recorded) = tokio::join!(sending, recording);
        recorded?;
        Ok(pass)
    }

    async fn send(&self, item: &OutboxItem, as_reply: bool) -> Finish {
        let attempts = item.attempts + 1;
        let later = |error: String| {
            if attempts >= MAX_ATTEMPTS {
                Finish::Failed(format!("given up after {attempts} tries: {error}"))
            } else {
                Finish::Later {
                    error,
                    next_attempt_ms: wall_ms() + backoff(attempts).as_millis() as i64,
                }
            }
        };
        if as_reply {
            let token = item.reply_token.as_deref().unwrap_or_default();
            match self.line.reply(token, &item.messages).await {
                o if o.delivered() => {
                    return Finish::Sent {
                        via: "reply",
                        request_id: o.request_id().map(str::to_owned),
                    };
                }
                // Spent by an earlier attempt of ours whose answer we never saw: delivered.
                SendOutcome::InvalidReplyToken if item.reply_attempts > 0 => {
                    return Finish::Sent {
                        via: "reply",
                        request_id: None,
                    };
                }
                // Expired before anything was sent: a push says it instead.
                SendOutcome::InvalidReplyToken => {
                    tracing::info!(
                        outbox_id = item.id,
                        "reply token expired; sending as a push"
                    );
                    // Recorded before the push: a crash now must not leave "a reply was tried"
                    // behind, which the next try would take for delivered.
                    let id = item.id;
                    if let Err(e) = self
                        .with_db(move |conn| Ok(outbox::forget_reply_token(conn, id)?))
                        .await
                    {
                        tracing::warn!(error = %e, "could not record the expired token; will retry");
                        // Refused, so not spent: the next try starts from a first attempt.
                        return Finish::Released {
                            as_reply: true,
                            next_attempt_ms: wall_ms() + 1_000,
                        };
                    }
                }
                // Refused before LINE looked at it: the token is not spent.
                SendOutcome::Halt(_) => {
                    return Finish::Released {
                        as_reply: true,
                        next_attempt_ms: wall_ms() + HALT_PROBE.as_millis() as i64,
                    };
                }
                o @ (SendOutcome::Unknown(_) | SendOutcome::RateLimited) => {
                    return later(o.to_string());
                }
                o => return Finish::Failed(o.to_string()),
            }
        }
        // A push counts against the month's quota; a reply does not.
        if !self.push_allowed().await {
            return Finish::Dropped(
                "not pushed: the month's remaining quota is kept for the daily delivery".into(),
            );
        }
        match self
            .line
            .push(&item.line_user_id, &item.messages, item.retry_key)
            .await
        {
            o if o.delivered() => Finish::Sent {
                via: "push",
                request_id: o.request_id().map(str::to_owned),
            },
            SendOutcome::Halt(_) => Finish::Released {
                as_reply,
                next_attempt_ms: wall_ms() + HALT_PROBE.as_millis() as i64,
            },
            o @ (SendOutcome::Unknown(_) | SendOutcome::RateLimited) => later(o.to_string()),
            o => Finish::Failed(o.to_string()),
        }
    }
}

/// Whether a batch goes as a reply: it has a token, and the token is fresh or was already
/// tried (a retry with the same token cannot deliver twice).
fn try_reply(item: &OutboxItem, now: DateTime<Utc>) -> bool {
    let Some(_) = item.reply_token.as_deref() else {
        return false;
    };
    if item.reply_attempts > 0 {
        return true;
    }
    DateTime::parse_from_rfc3339(&item.created_at)
        .map(|at| now.signed_duration_since(at).to_std().unwrap_or_default() < REPLY_TOKEN_TTL)
        .unwrap_or(false)
}
