//! Works through the webhook inbox after the 200: each user's events in timestamp order, the
//! conversation step and its effect in one transaction with the replies it queues. The replies
//! are sent by their own task (`send::ReplySender`), so conversations never wait on LINE.

use crate::clock::SharedClock;
use crate::conversation::{self, Context, Effect, Input, RegistrationSummary, ServiceInfo, State};
use crate::domain::{LineUserId, RegistrationId, UserId};
use crate::line::Message;
use crate::store::{self, events, outbox, registrations, users};
use crate::webhook::{Event, EventKind, Incoming};
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Events per transaction: small enough that the webhook's inbox writer never waits long for
/// the write lock.
const BATCH: usize = 32;
/// The longest pause between two batches of a backlog.
const BACKLOG_PAUSE_MAX: Duration = Duration::from_millis(50);
/// How long the processor waits after a wake-up so that a burst is handled in one batch.
const COALESCE: Duration = Duration::from_millis(5);
/// Answers a reader can be sent in a minute; at the limit one polite note, then silence until
/// the minute passes (a friend sending stickers in a loop cannot drain the month's quota).
pub const REPLIES_PER_MINUTE: i64 = 20;

/// The outcome of an event that erased its reader (the batch then checkpoints the WAL).
const ERASED: &str = "erased on request";

/// The event processor.
#[derive(Clone)]
pub struct Processor {
    db: store::Db,
    clock: SharedClock,
    info: Arc<ServiceInfo>,
    replies_queued: Arc<Notify>,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassSummary {
    /// Events processed.
    pub events: usize,
}

impl Processor {
    /// A processor on its own connection; `replies_queued` wakes the reply sender.
    pub fn new(
        conn: Connection,
        clock: SharedClock,
        info: Arc<ServiceInfo>,
        replies_queued: Arc<Notify>,
    ) -> Self {
        Self {
            db: store::Db::new(conn),
            clock,
            info,
            replies_queued,
        }
    }

    /// Processes every pending event (the replies are queued, not sent).
    pub async fn run_once(&self) -> anyhow::Result<PassSummary> {
        self.drain(None).await
    }

    /// Processes batches until the inbox is empty, reporting each batch to `health`: a long
    /// backlog (paused between batches) is work in progress, not a stuck processor.
    async fn drain(&self, health: Option<&crate::health::Health>) -> anyhow::Result<PassSummary> {
        let mut summary = PassSummary::default();
        loop {
            let clock = self.clock.clone();
            let info = self.info.clone();
            let started = std::time::Instant::now();
            let n = self
                .db
                .run(move |conn| process_batch(conn, clock.now(), &info))
                .await?;
            if let Some(h) = health {
                h.processor_ran(std::time::Instant::now());
            }
            summary.events += n;
            if n > 0 {
                self.replies_queued.notify_one();
            }
            if n < BATCH {
                return Ok(summary);
            }
            // A backlog: pause as long as the batch took, so that in a flood the webhook (which
            // LINE times at 2 s) keeps at least half the machine; answers come a little later.
            tokio::time::sleep(started.elapsed().min(BACKLOG_PAUSE_MAX)).await;
        }
    }

    /// Runs until `stop` turns true, waking on `wake` or every second; reports every batch to
    /// `health`.
    pub async fn run(
        self,
        wake: Arc<Notify>,
        mut stop: watch::Receiver<bool>,
        health: crate::health::Health,
    ) {
        loop {
            match self.drain(Some(&health)).await {
                Ok(_) => health.processor_ran(std::time::Instant::now()),
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
    let mut erased = false;
    for e in &pending {
        // A savepoint per event: a failing event is undone alone.
        let sp = tx.savepoint()?;
        let outcome = match handle(&sp, e, today, now, info) {
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
        erased |= outcome.starts_with(ERASED);
        events::mark_processed(&tx, e.id, &outcome, &now_s)?;
    }
    tx.commit()?;
    if erased {
        // As `yorisoi data erase`: the deleted text must not linger in the log.
        store::retention::checkpoint(conn);
    }
    Ok(pending.len())
}

fn handle(
    conn: &Connection,
    e: &events::PendingEvent,
    today: chrono::NaiveDate,
    now_at: DateTime<Utc>,
    info: &ServiceInfo,
) -> Result<String, store::StoreError> {
    let now_s = store::ts(now_at);
    let now = now_s.as_str();
    let Some(line_user) = e.line_user_id.as_deref() else {
        return Ok("ignored: not a user source".into());
    };
    let Some(line_user) = LineUserId::parse(line_user) else {
        return Ok("ignored: malformed user id".into());
    };
    let event = Event::from_json(&e.body);
    let user_id = users::upsert(conn, &line_user, now)?;
    // Blocking counts even in standby: the reader is gone whoever answers them.
    if event.standby && event.kind != EventKind::Unfollow {
        return Ok("ignored: standby".into());
    }
    let input = match &event.kind {
        EventKind::Unfollow => {
            users::set_following(conn, user_id, false, now)?;
            Input::Unfollow
        }
        EventKind::Follow { unblocked } => {
            users::set_following(conn, user_id, true, now)?;
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
    };
    let state: State = users::conversation(conn, user_id)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let summaries = summaries(conn, user_id)?;
    let invitation = invitation_named(conn, &input, &state, user_id, now_at)?;
    let fresh_code = conversation::new_invitation_code();
    let ctx = Context {
        today,
        registrations: &summaries,
        info,
        invitation,
        fresh_code: &fresh_code,
    };
    let step = conversation::step(&state, &input, &ctx);
    let (outcome, user_id) = match &step.effect {
        Some(Effect::Erase) => {
            // Everything about the reader goes; they still follow, so the goodbye is sent to a
            // fresh row holding only their LINE user id.
            let linked = crate::richmenu::store::linked_menu(conn, user_id.get())?;
            let (regs, _) = store::retention::erase_in(conn, user_id, now_at)?;
            let user_id = users::recreate_after_erase(conn, &line_user, now)?;
            crate::richmenu::store::carry_link(conn, user_id.get(), linked.as_deref())?;
            (
                format!("erased on request: {regs} registration(s)"),
                user_id,
            )
        }
        Some(effect) => (apply(conn, user_id, effect, today, now_at)?, user_id),
        None => (String::from("conversation"), user_id),
    };
    let mut outcome = outcome;
    users::save_conversation(conn, user_id, &state_json(&step.state), now)?;
    if !step.replies.is_empty() {
        let since = store::ts(now_at - chrono::Duration::minutes(1));
        let replies = match outbox::queued_since(conn, user_id, &since)? {
            n if n < REPLIES_PER_MINUTE => step.replies,
            n if n == REPLIES_PER_MINUTE => vec![conversation::slow_down(info, today)],
            _ => {
                outcome.push_str("; reply withheld (per-reader limit)");
                Vec::new()
            }
        };
        let replies: Vec<Message> = replies;
        if !replies.is_empty() {
            outbox::enqueue(conn, user_id, event.reply_token.as_deref(), &replies, now)?;
        }
    }
    Ok(outcome)
}

/// The reader's registrations as the conversation sees them: their own status (a family
/// reader's pause reads as 停止), role, child's name and, for the owner, who shares them.
fn summaries(
    conn: &Connection,
    user_id: UserId,
) -> Result<Vec<RegistrationSummary>, store::StoreError> {
    use crate::domain::RegistrationStatus::{Active, Stopped};
    Ok(store::family::readings(conn, user_id)?
        .into_iter()
        .map(|rd| {
            let r = rd.registration;
            let status = if rd.paused && r.status == Active {
                Stopped
            } else {
                r.status
            };
            RegistrationSummary {
                id: r.id,
                before_block: r.before_block,
                stage: r.subject.stage(),
                nickname: rd
                    .nickname
                    .unwrap_or_else(|| r.nickname.as_str().to_owned()),
                date: r.subject.date(),
                status,
                role: rd.role,
                closed: r.closed,
                child_name: r.child_name,
                family: rd.family,
                // Their own pause counts only while the owner delivers: else the owner's stop
                // is what they would need lifted, and they are told so.
                paused: rd.paused && r.status == Active,
            }
        })
        .collect())
}

/// The invitation the input names (a code) or the state carries (its hash), looked up now.
fn invitation_named(
    conn: &Connection,
    input: &Input,
    state: &State,
    user_id: UserId,
    now: DateTime<Utc>,
) -> Result<Option<conversation::InvitationCheck>, store::StoreError> {
    let typed = match input {
        Input::Text(t) => conversation::invitation_code(t),
        _ => None,
    };
    let hash = match (typed, state) {
        (Some(code), _) => Some(conversation::invitation_hash(&code)),
        (None, State::JoinNickname { code_hash } | State::ConfirmJoin { code_hash, .. }) => {
            Some(code_hash.clone())
        }
        (None, _) => None,
    };
    hash.map(|h| store::family::check(conn, &h, user_id, now))
        .transpose()
}

/// Applies a conversation's effect; returns what it did, for the event's outcome (ids only).
fn apply(
    conn: &Connection,
    user_id: UserId,
    effect: &Effect,
    today: chrono::NaiveDate,
    now_at: DateTime<Utc>,
) -> Result<String, store::StoreError> {
    use crate::conversation::{Change, ReaderRole};
    use crate::domain::RegistrationStatus::{Active, Blocked, Stopped};
    use store::family;
    let now_s = store::ts(now_at);
    let now = now_s.as_str();
    let move_all = |ids: &[RegistrationId], to, reason| -> Result<usize, store::StoreError> {
        let mut n = 0;
        for id in ids {
            n += usize::from(registrations::move_to(conn, *id, to, reason, now)?);
        }
        Ok(n)
    };
    // What the reader may do to a registration depends on how they read it.
    let role = |id: RegistrationId| family::role(conn, id, user_id);
    Ok(match effect {
        Effect::Register {
            subject,
            nickname,
            child_name,
        } => {
            let id = registrations::create(
                conn,
                user_id,
                *subject,
                nickname,
                child_name.as_ref(),
                today,
                now,
            )?;
            tracing::info!(
                registration = %id,
                stage = subject.stage().as_str(),
                "registration completed"
            );
            format!("registered #{id}")
        }
        Effect::Stop(ids) | Effect::Resume(ids) => {
            let resume = matches!(effect, Effect::Resume(_));
            let mut n = 0;
            for id in ids {
                n += usize::from(match role(*id)? {
                    Some(ReaderRole::Owner) if resume => {
                        let moved = registrations::move_to(
                            conn,
                            *id,
                            Active,
                            "resumed from the chat",
                            now,
                        )?;
                        if moved {
                            registrations::restart_on(conn, *id, today)?;
                        }
                        moved
                    }
                    Some(ReaderRole::Owner) => {
                        registrations::move_to(conn, *id, Stopped, "stopped from the chat", now)?
                    }
                    Some(ReaderRole::Family) => family::set_paused(conn, *id, user_id, !resume)?,
                    None => false,
                });
            }
            let verb = if resume { "resumed" } else { "stopped" };
            format!("{verb} {n} registration(s)")
        }
        Effect::Born { regs, birthday } => {
            let mut n = 0;
            for id in regs {
                if role(*id)? == Some(ReaderRole::Owner) {
                    n += usize::from(registrations::born(conn, *id, *birthday, today, now)?);
                }
            }
            format!("born: {n} registration(s) now a child's")
        }
        Effect::Loss(regs) => {
            // Whoever of the family tells us, no message reaches anyone for it again.
            let mut n = 0;
            for id in regs {
                if role(*id)?.is_some() {
                    n += usize::from(registrations::close_for_loss(conn, *id, now)?);
                }
            }
            format!("closed {n} registration(s)")
        }
        Effect::Edit { reg, change } => {
            let r = role(*reg)?;
            match (r, change) {
                (Some(ReaderRole::Owner), Change::Nickname(n)) => registrations::set_nickname(
                    conn,
                    *reg,
                    &crate::domain::Nickname::from_trusted(n.clone()),
                    now,
                )?,
                (Some(ReaderRole::Family), Change::Nickname(n)) => family::set_reader_nickname(
                    conn,
                    *reg,
                    user_id,
                    &crate::domain::Nickname::from_trusted(n.clone()),
                )?,
                (Some(ReaderRole::Owner), Change::Date(d)) => {
                    registrations::set_date(conn, *reg, *d, now)?
                }
                (Some(ReaderRole::Owner), Change::ChildName(c)) => registrations::set_child_name(
                    conn,
                    *reg,
                    c.clone()
                        .map(crate::domain::Nickname::from_trusted)
                        .as_ref(),
                    now,
                )?,
                _ => return Ok("edit refused: not theirs to change".into()),
            }
            format!("edited #{reg}")
        }
        Effect::Invite { regs, code } => {
            let owned: Vec<RegistrationId> = regs
                .iter()
                .copied()
                .filter(|id| matches!(role(*id), Ok(Some(ReaderRole::Owner))))
                .collect();
            family::invite(conn, &owned, &conversation::invitation_hash(code), now_at)?;
            format!("invitation for {} registration(s)", owned.len())
        }
        Effect::Revoke { reader, regs } => {
            let n = family::revoke(conn, user_id, *reader, regs)?;
            format!("sharing ended on {n} registration(s)")
        }
        Effect::Join {
            code_hash,
            nickname,
        } => {
            let n = family::join(conn, code_hash, user_id, nickname, now_at)?;
            format!("joined {n} registration(s) as family")
        }
        Effect::Block(ids) => {
            let n = move_all(ids, Blocked, "unfollow")?;
            format!("unfollow: {n} registration(s) blocked")
        }
        Effect::Unblock(restore) => {
            let mut n = 0;
            for (id, to) in restore {
                n += usize::from(registrations::move_to(
                    conn,
                    *id,
                    *to,
                    "follow (unblocked)",
                    now,
                )?);
            }
            format!("follow: {n} registration(s) restored")
        }
        Effect::Erase => "erase is applied by the caller".into(),
    })
}

fn state_json(state: &State) -> String {
    serde_json::to_string(state).expect("conversation state serializes")
}
