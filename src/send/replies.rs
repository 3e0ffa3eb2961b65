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
use crate::store::outbox::{self, OutboxItem};
use crate::store::sends::{self, Finish, Via};
use crate::store::{self, wall_ms};
use chrono::{DateTime, Datelike, Utc};
use rusqlite::Connection;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// A reply token is good for about a minute; an answer still unsent after this goes as a push.
const REPLY_TOKEN_TTL: Duration = Duration::from_secs(50);
/// Answers in flight at once (one per reader).
const IN_FLIGHT: usize = 32;
/// Free slots worth a claim while others are in flight: claims (durable commits) come in small
/// groups rather than one per finished send.
const CLAIM_AT_LEAST: usize = 8;
/// Tries before a batch is given up (LINE has kept failing for about an hour by then).
const MAX_ATTEMPTS: i64 = 20;

/// What a run of the sender did.
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
    db: store::Db,
    line: LineClient,
    clock: SharedClock,
    reserve: Option<u64>,
    quota: Arc<tokio::sync::Mutex<Option<(std::time::Instant, bool)>>>,
    last_probe: Arc<Mutex<Option<std::time::Instant>>>,
    last_quota: Arc<Mutex<Option<crate::line::Quota>>>,
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
         WHERE r.status = 'active' AND u.following = 1 AND rr.paused = 0",
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
            db: store::Db::new(conn),
            line,
            clock,
            reserve,
            quota: Arc::default(),
            last_probe: Arc::default(),
            last_quota: Arc::default(),
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
        let fetched = self.line.quota().await;
        let quota = match fetched {
            Some(q) => {
                *self.last_quota.lock().unwrap_or_else(|e| e.into_inner()) = Some(q);
                Some(q)
            }
            // LINE did not say (it is degraded, which is when tokens expire): the last figure
            // known, and with none, no push into what may be the reserve.
            None => *self.last_quota.lock().unwrap_or_else(|e| e.into_inner()),
        };
        let allowed = match quota.map(|q| q.left()) {
            None => false,
            // No limit set: nothing to keep.
            Some(None) => true,
            Some(Some(left)) => {
                let need = match self.reserve {
                    Some(n) => n,
                    None => {
                        let today = self.clock.now_jst().date_naive();
                        self.db
                            .run(move |conn| daily_need(conn, today))
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
        // An answer from LINE is trusted for a while; without one, ask again next time.
        if fetched.is_some() {
            *cached = Some((std::time::Instant::now(), allowed));
        }
        allowed
    }

    /// Releases claims left by a process that stopped mid-send (call once at start, while this
    /// process alone serves the database).
    pub async fn recover(&self) -> anyhow::Result<usize> {
        self.db
            .run(|conn| Ok(sends::release_claims(conn, sends::Kind::Reply)?))
            .await
    }

    /// Replies still queued (due now or later).
    pub async fn pending(&self) -> anyhow::Result<i64> {
        self.db.run(|conn| Ok(outbox::pending_count(conn)?)).await
    }

    /// Sends every batch due now; returns when the queue has nothing due.
    pub async fn run_once(&self) -> anyhow::Result<ReplyPass> {
        self.drain(None).await
    }

    /// Runs until `stop`, woken by `wake` (the processor queued answers) or every second;
    /// reports every step to `health`.
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
                r = self.drain(Some(&health)) => match r {
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

    /// Claims what is due as slots free up, keeps at most `IN_FLIGHT` sends going (a slow one
    /// holds its own slot, never the others), and commits each outcome as it comes. Returns
    /// when nothing is due and nothing is in flight.
    async fn drain(&self, health: Option<&crate::health::Health>) -> anyhow::Result<ReplyPass> {
        use futures_util::StreamExt;
        let mut pass = ReplyPass::default();
        let mut in_flight = futures_util::stream::FuturesUnordered::new();
        let mut queue_empty = false;
        loop {
            let free = IN_FLIGHT - in_flight.len();
            if !queue_empty && (in_flight.is_empty() || free >= CLAIM_AT_LEAST) {
                let claimed = self.claim(free).await?;
                queue_empty = claimed.is_empty();
                pass.claimed += claimed.len();
                for (item, as_reply) in claimed {
                    in_flight.push(async move {
                        let finish = self.send(&item, as_reply).await;
                        (item.id, finish)
                    });
                }
            }
            let Some(first) = in_flight.next().await else {
                return Ok(pass);
            };
            // Whatever else has finished meanwhile goes in the same commit.
            let mut done = vec![first];
            while let Some(Some(more)) = futures_util::FutureExt::now_or_never(in_flight.next()) {
                done.push(more);
            }
            for (_, f) in &done {
                match f {
                    Finish::Sent { .. } => pass.sent += 1,
                    Finish::Later { .. } | Finish::Released { .. } => pass.later += 1,
                    Finish::Failed(_) | Finish::Dropped(_) => pass.failed += 1,
                }
            }
            let at = store::ts(self.clock.now());
            self.db
                .run(move |conn| {
                    let tx = store::write_tx(conn)?;
                    for (id, f) in &done {
                        sends::finish(&tx, *id, f, &at)?;
                    }
                    tx.commit()?;
                    Ok(())
                })
                .await?;
            if let Some(h) = health {
                h.sender_ran(std::time::Instant::now());
            }
            if free == 0 {
                // A full house: a freed slot may claim again.
                queue_empty = false;
            }
        }
    }

    /// Claims up to `n` due batches (one per reader) and, in the same durable commit, counts a
    /// reply attempt for each that goes as a reply: after a crash a batch marked as tried may
    /// have reached LINE, and only batches about to leave are ever marked. While LINE refuses
    /// the token, one batch in a while is let through to find out whether it still does.
    async fn claim(&self, n: usize) -> anyhow::Result<Vec<(OutboxItem, bool)>> {
        let n = match self.line.halted() {
            Some(crate::line::Halt::Unauthorized { .. }) if !self.probe_due() => {
                return Ok(Vec::new());
            }
            Some(crate::line::Halt::Unauthorized { .. }) => 1,
            _ => n,
        };
        let now = self.clock.now();
        let lease = self.line.worst_case() * 2 + Duration::from_secs(10);
        self.db
            .run(move |conn| {
                let tx = store::write_tx(conn)?;
                let now_ms = wall_ms();
                let items =
                    outbox::claim_due(&tx, now_ms, now_ms + lease.as_millis() as i64, n, |item| {
                        try_reply(item, now)
                    })?;
                let replies: Vec<i64> = items
                    .iter()
                    .filter(|(_, as_reply)| *as_reply)
                    .map(|(item, _)| item.id)
                    .collect();
                outbox::count_reply_attempts(&tx, &replies)?;
                tx.commit()?;
                Ok(items)
            })
            .await
    }

    async fn send(&self, item: &OutboxItem, as_reply: bool) -> Finish {
        let attempts = item.attempts + 1;
        let later = |error: String, token_unspent: bool| {
            if attempts >= MAX_ATTEMPTS {
                Finish::Failed(format!("given up after {attempts} tries: {error}"))
            } else {
                Finish::Later {
                    error,
                    next_attempt_ms: wall_ms() + backoff(attempts).as_millis() as i64,
                    token_unspent,
                }
            }
        };
        if as_reply {
            let token = item.reply_token.as_deref().unwrap_or_default();
            match self.line.reply(token, &item.messages).await {
                o if o.delivered() => {
                    return Finish::Sent {
                        via: Via::Reply,
                        request_id: o.request_id().map(str::to_owned),
                    };
                }
                // Spent by an earlier attempt of ours whose answer we never saw: delivered.
                SendOutcome::InvalidReplyToken if item.reply_attempts > 0 => {
                    return Finish::Sent {
                        via: Via::Reply,
                        request_id: None,
                    };
                }
                // Expired before anything was sent: a push says it instead.
                SendOutcome::InvalidReplyToken => {
                    tracing::info!(send_id = item.id, "reply token expired; sending as a push");
                    // Recorded before the push: a crash now must not leave "a reply was tried"
                    // behind, which the next try would take for delivered.
                    let id = item.id;
                    if let Err(e) = self
                        .db
                        .run(move |conn| Ok(outbox::forget_reply_token(conn, id)?))
                        .await
                    {
                        tracing::warn!(error = %e, "could not record the expired token; will retry");
                        // Refused, so not spent: the next try starts from a first attempt.
                        return Finish::Released {
                            error: None,
                            as_reply: true,
                            next_attempt_ms: wall_ms() + 1_000,
                        };
                    }
                }
                // Refused before LINE looked at it: the token is not spent.
                SendOutcome::Halt(_) => {
                    return Finish::Released {
                        error: None,
                        as_reply: true,
                        next_attempt_ms: wall_ms() + HALT_PROBE.as_millis() as i64,
                    };
                }
                // LINE may have taken it: the token may be spent.
                o @ SendOutcome::Unknown(_) => return later(o.to_string(), false),
                // LINE never took it: the token is not spent.
                o @ (SendOutcome::NotSent(_) | SendOutcome::RateLimited) => {
                    return later(o.to_string(), true);
                }
                o => return Finish::Failed(o.to_string()),
            }
        }
        // A push counts against the month's quota; a reply does not.
        if self.line.halted() == Some(crate::line::Halt::MonthlyLimit) {
            return Finish::Dropped("not pushed: LINE's monthly message limit is reached".into());
        }
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
                via: Via::Push,
                request_id: o.request_id().map(str::to_owned),
            },
            SendOutcome::Halt(_) => Finish::Released {
                error: None,
                as_reply,
                next_attempt_ms: wall_ms() + HALT_PROBE.as_millis() as i64,
            },
            o @ (SendOutcome::Unknown(_) | SendOutcome::NotSent(_) | SendOutcome::RateLimited) => {
                later(o.to_string(), false)
            }
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
