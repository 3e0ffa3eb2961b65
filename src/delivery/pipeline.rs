//! The sending pipeline of a run: a producer records and claims pushes, a sender streams them to
//! LINE, a finisher commits outcomes as they come. The three overlap so the sender never waits
//! for the database.

use super::plan::{Plan, RegInfo, render_items};
use super::{CHUNK, RunSummary, Worker};
use crate::content::ContentPack;
use crate::domain::UserId;
use crate::line::{Halt, Message};
use crate::store::{self, deliveries, deliveries::Outcome, deliveries::RecordedItem};
use chrono::NaiveDate;
use futures_util::StreamExt;
use rusqlite::Connection;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(super) struct Ready {
    pub(super) id: i64,
    pub(super) registrations: Vec<i64>,
    pub(super) to: String,
    pub(super) key: uuid::Uuid,
    pub(super) messages: Vec<Message>,
}

/// Gets a push ready for sending: its recorded messages, or for a push planned before sends
/// kept their messages (`recorded` is `None`), rendered from its items, loading what that
/// needs (cached per chunk).
#[allow(clippy::too_many_arguments)]
fn prepare(
    conn: &Connection,
    pack: &ContentPack,
    date: NaiveDate,
    id: i64,
    user_id: i64,
    key: uuid::Uuid,
    items: &[RecordedItem],
    recorded: Option<Vec<Message>>,
    regs: &mut HashMap<(i64, i64), RegInfo>,
    users: &mut HashMap<i64, String>,
) -> anyhow::Result<Ready> {
    if let std::collections::hash_map::Entry::Vacant(v) = users.entry(user_id) {
        v.insert(store::users::line_user_id(conn, UserId::new(user_id))?);
    }
    let mut registrations: Vec<i64> = items.iter().map(|i| i.registration_id).collect();
    registrations.dedup();
    if let Some(messages) = recorded {
        return Ok(Ready {
            id,
            registrations,
            to: users[&user_id].clone(),
            key,
            messages,
        });
    }
    // As this reader reads each registration: their own name, whether they own it.
    let mut mine: HashMap<i64, RegInfo> = HashMap::new();
    for it in items {
        let key = (user_id, it.registration_id);
        if let std::collections::hash_map::Entry::Vacant(v) = regs.entry(key)
            && let Some(r) = store::planning::reader_view(conn, it.registration_id, user_id)?
        {
            v.insert(RegInfo {
                nickname: r.nickname,
                stage: r.stage,
                date: r.date,
                child_name: r.child_name,
                owner: r.owner,
            });
        }
        if let Some(info) = regs.get(&key) {
            mine.insert(it.registration_id, info.clone());
        }
    }
    Ok(Ready {
        id,
        registrations,
        to: users[&user_id].clone(),
        key,
        messages: render_items(pack, date, items, &mine),
    })
}

/// What the finisher counted.
#[derive(Default)]
struct Tally {
    sent: usize,
    failed: usize,
    skipped: usize,
    not_sent: usize,
    answered_409: usize,
}

impl Worker {
    /// Sends the day: a producer records and claims fresh pushes (phase 1), then sweeps every
    /// push of the date still planned (phase 2: earlier runs, readers already recorded); a
    /// sender streams them to LINE under the rate limit; a finisher records outcomes in
    /// batches. The three overlap so the sender never waits for the database.
    pub(super) async fn deliver(
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
        // The finisher committed outcomes: the sweep may find the date done.
        let progress = tokio::sync::Notify::new();

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
                    .db
                    .run(move |conn| Ok(deliveries::remaining(conn, &d)?))
                    .await?;
                let given_up = retry_later.lock().unwrap_or_else(|e| e.into_inner()).len() as i64;
                if left <= given_up || waited > self.lease() * 2 {
                    break;
                }
                // In flight here or held by another run: look again once outcomes are
                // committed here, or shortly (another run's).
                let looked = std::time::Instant::now();
                tokio::select! {
                    _ = progress.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
                waited += looked.elapsed();
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
                            Outcome::NotSent("not sent: the run stopped".into())
                        } else {
                            match self.send_one(&r).await {
                                Ok(o) => o,
                                Err(h) => {
                                    // Nothing is marked failed: the push stays planned and the
                                    // date unfinished, retried once the cause is gone.
                                    let why = format!("not sent: {h}");
                                    *halt.lock().unwrap_or_else(|e| e.into_inner()) = Some(h);
                                    stop.store(true, Ordering::Relaxed);
                                    Outcome::NotSent(why)
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
            let mut tally = Tally::default();
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
                        } => tally.sent += 1,
                        Outcome::Sent {
                            duplicate: true, ..
                        } => tally.answered_409 += 1,
                        Outcome::Failed(_) => tally.failed += 1,
                        Outcome::Retry(_) | Outcome::NotSent(_) => {
                            tally.not_sent += 1;
                            retry_later
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(*id);
                        }
                        Outcome::Skipped(_) => tally.skipped += 1,
                    }
                }
                let now = store::ts(self.clock.now());
                let rows: Vec<(i64, Outcome)> =
                    batch.into_iter().map(|(id, _, o)| (id, o)).collect();
                self.db
                    .run(move |conn| {
                        let tx = store::write_tx(conn)?;
                        for (id, o) in &rows {
                            deliveries::finish(&tx, *id, o, &now)?;
                        }
                        tx.commit()?;
                        Ok(())
                    })
                    .await?;
                progress.notify_one();
            }
            anyhow::Ok(tally)
        };

        let (produced, (), tally) = tokio::join!(producer, sender, finisher);
        produced?;
        let Tally {
            sent,
            failed,
            skipped,
            not_sent,
            answered_409,
        } = tally?;
        let failed_before = *stale.lock().unwrap_or_else(|e| e.into_inner());
        summary.sent += sent;
        summary.failed += failed + failed_before;
        summary.skipped += skipped;
        summary.not_sent += not_sent;
        summary.answered_409 += answered_409;
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
        self.db
            .run(move |conn| {
                let tx = store::write_tx(conn)?;
                let date_s = date.to_string();
                let now_s = store::ts(now);
                let lease_until = store::wall_ms() + lease.as_millis() as i64;
                let mut seen = known;
                let mut ready = Vec::new();
                let mut regs: HashMap<(i64, i64), RegInfo> = HashMap::new();
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
                    let line_user = match users.entry(p.user_id) {
                        std::collections::hash_map::Entry::Occupied(o) => o.get().clone(),
                        std::collections::hash_map::Entry::Vacant(v) => v
                            .insert(store::users::line_user_id(&tx, UserId::new(p.user_id))?)
                            .clone(),
                    };
                    let key = installation.delivery_key(&line_user, date, p.seq);
                    let key_s = key.to_string();
                    // Rendered before it is recorded: the record holds exactly what leaves.
                    let mut r = prepare(
                        &tx, &pack, date, 0, p.user_id, key, &items, None, &mut regs, &mut users,
                    )?;
                    let push = deliveries::NewPush {
                        user_id: p.user_id,
                        date: &date_s,
                        seq: p.seq,
                        retry_key: &key_s,
                        items: &items,
                        messages: &r.messages,
                    };
                    r.id = deliveries::record_and_claim(&tx, push, &now_s, lease_until)?;
                    if r.messages.is_empty() {
                        // Nothing left to say (a birth reported since the plan): recorded, not sent.
                        let why =
                            Outcome::Skipped("nothing left to send since it was planned".into());
                        deliveries::finish(&tx, r.id, &why, &now_s)?;
                        continue;
                    }
                    ready.push(r);
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
        self.db.run(move |conn| {
            let tx = store::write_tx(conn)?;
            let date_s = date.to_string();
            let now_ms = store::wall_ms();
            let lease_until = now_ms + lease.as_millis() as i64;
            let rows = deliveries::open_rows(&tx, &date_s, after, CHUNK)?;
            let last = rows.last().map(|r| r.id);
            let mut ready = Vec::new();
            let mut regs: HashMap<(i64, i64), RegInfo> = HashMap::new();
            let mut users: HashMap<i64, String> = HashMap::new();
            let mut stale = 0;
            for row in rows {
                if skip.contains(&row.id) || !store::sends::claim(&tx, row.id, now_ms, lease_until)? {
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
                // Stored with the push; a key that cannot be read is made again from what it names.
                let key = match uuid::Uuid::parse_str(&row.retry_key) {
                    Ok(k) => k,
                    Err(_) => installation.delivery_key(
                        &store::users::line_user_id(&tx, UserId::new(row.user_id))?,
                        date,
                        row.seq,
                    ),
                };
                let r = prepare(&tx, &pack, date, row.id, row.user_id, key, &items, row.messages, &mut regs, &mut users)?;
                // The reader left since it was planned: not sent.
                // (stopped, completed, closed, or paused by this reader)
                let still_wanted = store::users::following(&tx, UserId::new(row.user_id))?
                    && items.iter().any(|it| {
                        store::planning::still_reads(&tx, it.registration_id, row.user_id)
                            .unwrap_or(false)
                    });
                if !still_wanted || r.messages.is_empty() {
                    let why = if still_wanted { "its content is no longer in the pack" } else { "the reader stopped, paused, blocked or completed since it was planned" };
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
}
