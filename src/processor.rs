//! Works through the webhook inbox after the 200: each user's events in timestamp order, the
//! conversation step and its effect in one transaction with the replies it queues, then sends
//! the queued replies.

use crate::clock::SharedClock;
use crate::conversation::{self, Context, Effect, Input, RegistrationSummary, ServiceInfo, State};
use crate::domain::LineUserId;
use crate::line::{LineClient, LineError};
use crate::store::{self, events, outbox, registrations, users};
use crate::webhook::{Event, EventKind, Incoming};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Events per transaction: small enough that the webhook's inbox writer never waits long for
/// the write lock.
const BATCH: usize = 32;
/// A reply token is good for about a minute; after this a push is used instead.
const REPLY_TOKEN_TTL: Duration = Duration::from_secs(50);
/// How long the processor waits after a wake-up so that a burst is handled in one batch.
const COALESCE: Duration = Duration::from_millis(5);
/// Tries before an outbox entry is given up.
const MAX_OUTBOX_ATTEMPTS: i64 = 5;

/// The event processor.
#[derive(Clone)]
pub struct Processor {
    db: Arc<Mutex<Connection>>,
    line: LineClient,
    clock: SharedClock,
    info: Arc<ServiceInfo>,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassSummary {
    /// Events processed.
    pub events: usize,
    /// Outbox entries sent.
    pub sent: usize,
    /// Outbox entries that failed for good.
    pub failed: usize,
}

impl Processor {
    /// A processor on its own connection.
    pub fn new(
        conn: Connection,
        line: LineClient,
        clock: SharedClock,
        info: Arc<ServiceInfo>,
    ) -> Self {
        Self {
            db: Arc::new(Mutex::new(conn)),
            line,
            clock,
            info,
        }
    }

    async fn with_db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn)
        })
        .await?
    }

    /// Processes every pending event and sends every queued reply.
    pub async fn run_once(&self) -> anyhow::Result<PassSummary> {
        let mut summary = PassSummary::default();
        loop {
            let clock = self.clock.clone();
            let info = self.info.clone();
            let n = self
                .with_db(move |conn| process_batch(conn, clock.now(), &info))
                .await?;
            summary.events += n;
            let (sent, failed) = self.flush_outbox().await?;
            summary.sent += sent;
            summary.failed += failed;
            if n < BATCH {
                return Ok(summary);
            }
        }
    }

    /// Runs until `stop` turns true, waking on `wake` or every second; reports each pass to
    /// `health`.
    pub async fn run(
        self,
        wake: Arc<Notify>,
        mut stop: watch::Receiver<bool>,
        health: crate::health::Health,
    ) {
        loop {
            match self.run_once().await {
                Ok(_) => {
                    // Until the outbox has its own sender, a pass sends the replies too.
                    let at = std::time::Instant::now();
                    health.processor_ran(at);
                    health.sender_ran(at);
                }
                Err(e) => tracing::error!(error = %e, "event processing failed; will retry"),
            }
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                _ = wake.notified() => {
                    // Let a burst gather into one batch: a few milliseconds are nothing to a
                    // parent, and one transaction for many events is far cheaper than many.
                    tokio::time::sleep(COALESCE).await;
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => {}
            }
        }
    }

    async fn flush_outbox(&self) -> anyhow::Result<(usize, usize)> {
        let items = self
            .with_db(|conn| Ok(outbox::pending(conn, 1000)?))
            .await?;
        if items.is_empty() {
            return Ok((0, 0));
        }
        // Each user's answers in order; users side by side.
        let mut by_user: BTreeMap<i64, Vec<outbox::OutboxItem>> = BTreeMap::new();
        for item in items {
            by_user.entry(item.user_id).or_default().push(item);
        }
        let now = self.clock.now();
        let results: Vec<Vec<(i64, SendResult)>> =
            futures_util::stream::iter(by_user.into_values())
                .map(|items| async move {
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        let r = self.send(&item, now).await;
                        out.push((item.id, r));
                    }
                    out
                })
                .buffer_unordered(32)
                .collect()
                .await;
        let results: Vec<(i64, SendResult)> = results.into_iter().flatten().collect();
        let sent = results
            .iter()
            .filter(|(_, r)| matches!(r, SendResult::Sent(_)))
            .count();
        let failed = results
            .iter()
            .filter(|(_, r)| matches!(r, SendResult::Failed(_)))
            .count();
        let at = store::ts(self.clock.now());
        self.with_db(move |conn| {
            let tx = store::write_tx(conn)?;
            for (id, r) in &results {
                match r {
                    SendResult::Sent(req) => {
                        outbox::finish(&tx, *id, "sent", req.as_deref(), None, &at)?
                    }
                    SendResult::Failed(err) => {
                        outbox::finish(&tx, *id, "failed", None, Some(err), &at)?
                    }
                    SendResult::Later(err) => {
                        tx.execute(
                            "UPDATE outbox SET attempts = attempts + 1, error = ?2,
                               status = CASE WHEN attempts + 1 >= ?3 THEN 'failed' ELSE status END
                             WHERE id = ?1",
                            rusqlite::params![id, err, MAX_OUTBOX_ATTEMPTS],
                        )?;
                    }
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await?;
        Ok((sent, failed))
    }

    async fn send(&self, item: &outbox::OutboxItem, now: DateTime<Utc>) -> SendResult {
        let fresh = DateTime::parse_from_rfc3339(&item.created_at)
            .map(|at| now.signed_duration_since(at).to_std().unwrap_or_default() < REPLY_TOKEN_TTL)
            .unwrap_or(false);
        if let Some(token) = item.reply_token.as_deref().filter(|_| fresh) {
            match self.line.reply(token, &item.messages).await {
                Ok(ok) => return SendResult::Sent(ok.request_id),
                // LINE may have delivered it: a push could say it twice.
                Err(LineError::Timeout) => return SendResult::Sent(None),
                Err(LineError::RateLimited {
                    monthly: false,
                    message,
                }) => {
                    return SendResult::Later(message);
                }
                // Not delivered: the token expired or was used, or LINE failed.
                Err(e) if e.is_invalid_reply_token() || matches!(e, LineError::Unavailable(_)) => {
                    tracing::info!(
                        outbox_id = item.id,
                        "reply not possible, falling back to push"
                    );
                }
                Err(e) => return SendResult::Failed(e.to_string()),
            }
        }
        match self
            .line
            .push(&item.line_user_id, &item.messages, item.retry_key)
            .await
        {
            Ok(ok) => SendResult::Sent(ok.request_id),
            Err(
                e @ (LineError::Unavailable(_)
                | LineError::Timeout
                | LineError::RateLimited { monthly: false, .. }),
            ) => SendResult::Later(e.to_string()),
            Err(e) => SendResult::Failed(e.to_string()),
        }
    }
}

enum SendResult {
    Sent(Option<String>),
    Failed(String),
    Later(String),
}

fn process_batch(
    conn: &mut Connection,
    now: DateTime<Utc>,
    info: &ServiceInfo,
) -> anyhow::Result<usize> {
    let mut tx = store::write_tx(conn)?;
    let pending = events::pending(&tx, BATCH)?;
    let now_s = store::ts(now);
    let today = now.with_timezone(&crate::clock::jst()).date_naive();
    for e in &pending {
        // A savepoint per event: a failing event is undone alone.
        let sp = tx.savepoint()?;
        let outcome = match handle(&sp, e, today, &now_s, info) {
            Ok(outcome) => {
                sp.commit()?;
                outcome
            }
            Err(err) if store::is_busy(&err) => {
                // Not the event's fault: undo the whole batch; it is retried.
                return Err(err.into());
            }
            Err(err) => {
                // One bad event must not block the others: record and move on.
                drop(sp);
                tracing::error!(event_row = e.id, error = ?err, "event could not be processed");
                "error".to_owned()
            }
        };
        events::mark_processed(&tx, e.id, &outcome, &now_s)?;
    }
    tx.commit()?;
    Ok(pending.len())
}

fn handle(
    conn: &Connection,
    e: &events::PendingEvent,
    today: chrono::NaiveDate,
    now: &str,
    info: &ServiceInfo,
) -> Result<String, store::StoreError> {
    let Some(line_user) = e.line_user_id.as_deref() else {
        return Ok("ignored: not a user source".into());
    };
    let Some(line_user) = LineUserId::parse(line_user) else {
        return Ok("ignored: malformed user id".into());
    };
    let event = Event::from_json(&e.body);
    let user_id = users::upsert(conn, line_user.as_str(), now)?;
    if event.kind == EventKind::Unfollow {
        users::set_following(conn, user_id, false, now)?;
        let n = registrations::block_all(conn, user_id, now)?;
        users::save_conversation(conn, user_id, &state_json(&State::Idle), now)?;
        return Ok(format!("unfollow: {n} registration(s) blocked"));
    }
    if event.standby {
        return Ok("ignored: standby".into());
    }
    let input = match &event.kind {
        EventKind::Follow { unblocked } => {
            users::set_following(conn, user_id, true, now)?;
            if *unblocked {
                registrations::unblock_all(conn, user_id, now)?;
            }
            Input::Follow {
                unblocked: *unblocked,
            }
        }
        EventKind::Message(Incoming::Text(t)) => Input::Text(t.clone()),
        EventKind::Message(Incoming::NonText(_)) => Input::NonText,
        EventKind::Postback { data, date } => Input::Postback {
            data: data.clone(),
            date: date.clone(),
        },
        EventKind::Other(kind) => return Ok(format!("ignored: {kind}")),
        EventKind::Unfollow => unreachable!("handled above"),
    };
    let state: State = users::conversation(conn, user_id)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let regs = registrations::for_reader(conn, user_id)?;
    let summaries: Vec<RegistrationSummary> = regs
        .iter()
        .map(|r| RegistrationSummary {
            stage: r.stage,
            nickname: r.nickname.clone(),
            date: r.date,
            status: r.status,
        })
        .collect();
    let ctx = Context {
        today,
        registrations: &summaries,
        info,
    };
    let step = conversation::step(&state, &input, &ctx);
    let mut outcome = String::from("conversation");
    match &step.effect {
        Some(Effect::Register {
            stage,
            nickname,
            date,
        }) => {
            let id = registrations::create(conn, user_id, *stage, nickname, *date, today, now)?;
            tracing::info!(
                registration = id,
                stage = stage.as_str(),
                "registration completed"
            );
            outcome = format!("registered #{id}");
        }
        Some(Effect::StopAll) => {
            let n = registrations::stop_all(conn, user_id, now)?;
            outcome = format!("stopped {n} registration(s)");
        }
        Some(Effect::ResumeAll) => {
            let n = registrations::resume_all(conn, user_id, today, now)?;
            outcome = format!("resumed {n} registration(s)");
        }
        None => {}
    }
    users::save_conversation(conn, user_id, &state_json(&step.state), now)?;
    if !step.replies.is_empty() {
        outbox::enqueue(
            conn,
            user_id,
            event.reply_token.as_deref(),
            &step.replies,
            now,
        )?;
    }
    Ok(outcome)
}

fn state_json(state: &State) -> String {
    serde_json::to_string(state).expect("conversation state serializes")
}
