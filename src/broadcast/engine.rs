//! A broadcast's life: checked and recorded (`create`), held past quiet hours, started when due
//! (its recipients chosen and recorded as multicast batches of at most 500, each with its retry
//! key, in one transaction), then delivered batch by batch through the channel's one
//! `LineClient`, each outcome committed as it comes. A crash at any point leaves either no
//! batches (the start is redone) or recorded batches that go out with the same keys: LINE
//! answers 409 for what it had already taken, so every reader gets a broadcast once.

use super::{Audience, QuietHours};
use crate::clock::SharedClock;
use crate::line::{LineClient, Message, SendOutcome};
use crate::send::Installation;
use crate::store::sends::{self, Finish, Kind, MULTICAST_MAX, NewMulticast, Via};
use crate::store::{self, Db, broadcasts, staff};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

/// Batches in flight at once: enough to reach multicast's 200 requests/s at LINE's latency.
const IN_FLIGHT: usize = 16;
/// Batches claimed in one transaction: one sync for the group's claims. Small beside
/// `IN_FLIGHT`: at most `IN_FLIGHT + 2 * CLAIM_GROUP` batches are claimed and not yet answered.
const CLAIM_GROUP: usize = 8;
/// A batch whose outcome LINE never confirmed is retried with its key this long after its first
/// attempt at most: LINE remembers a key for 24 hours, so a later retry could deliver twice.
const RETRY_WINDOW: Duration = Duration::from_secs(23 * 3600);
/// The furthest ahead a broadcast may be scheduled.
const MAX_AHEAD_DAYS: i64 = 180;
/// LINE's limit on a text message, in UTF-16 units.
const TEXT_MAX: usize = 5000;

/// What a sender asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The message.
    pub text: String,
    /// An HTTPS image URL.
    pub image_url: Option<String>,
    /// Who receives it.
    pub audience: Audience,
    /// When (`None`: now).
    pub send_at: Option<DateTime<Utc>>,
    /// Send inside quiet hours all the same.
    pub override_quiet_hours: bool,
}

/// Why a request cannot be sent (Japanese: staff read it in the form and in the API's reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Request {
    /// Checks everything that can be checked before recording it.
    pub fn validate(mut self, now: DateTime<Utc>) -> Result<Self, Invalid> {
        let text = self.text.trim().replace("\r\n", "\n");
        if text.is_empty() {
            return Err(Invalid("本文を入力してください。".into()));
        }
        let units = text.encode_utf16().count();
        if units > TEXT_MAX {
            return Err(Invalid(format!(
                "本文が長すぎます（{units}文字相当／上限{TEXT_MAX}）。"
            )));
        }
        self.text = text;
        self.image_url = self
            .image_url
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty());
        if let Some(u) = &self.image_url {
            check_image_url(u)?;
        }
        self.audience = self.audience.validate().map_err(|e| Invalid(e.0))?;
        if let Some(at) = self.send_at {
            if at < now - chrono::TimeDelta::minutes(1) {
                return Err(Invalid("送信日時が過去になっています。".into()));
            }
            if at > now + chrono::TimeDelta::days(MAX_AHEAD_DAYS) {
                return Err(Invalid(format!(
                    "送信日時は{MAX_AHEAD_DAYS}日先までで指定してください。"
                )));
            }
        }
        Ok(self)
    }

    /// When it goes: the time asked for (or now), held to the end of quiet hours unless
    /// overridden.
    pub fn goes_at(&self, now: DateTime<Utc>, quiet: Option<QuietHours>) -> DateTime<Utc> {
        let at = self.send_at.unwrap_or(now).max(now);
        match quiet {
            Some(q) if !self.override_quiet_hours => q.hold(at),
            _ => at,
        }
    }
}

fn check_image_url(u: &str) -> Result<(), Invalid> {
    let ok = u.len() <= 2000
        && u.starts_with("https://")
        && u.len() > "https://".len()
        && !u.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(Invalid(
            "画像のURLは https:// で始まる2000文字以内のURLにしてください。".into(),
        ))
    }
}

/// The message objects a broadcast sends: its text, then its image.
pub fn messages(text: &str, image_url: Option<&str>) -> Vec<Message> {
    let mut m = vec![Message::text(text)];
    if let Some(u) = image_url {
        m.push(Message::Image {
            original_content_url: u.to_string(),
            preview_image_url: u.to_string(),
        });
    }
    m
}

/// How many LINE users an audience reaches on the Asia/Tokyo date of `at`.
pub fn count(
    conn: &rusqlite::Connection,
    audience: Audience,
    at: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let day = at.with_timezone(&crate::clock::jst()).date_naive();
    Ok(broadcasts::count_recipients(conn, audience.selection(day))?)
}

/// A recorded broadcast.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Created {
    /// Its id.
    pub id: i64,
    /// Readers counted now (recounted when it starts).
    pub recipients: i64,
    /// `scheduled` (it starts within a second when due now).
    pub status: &'static str,
    /// When it goes (RFC 3339).
    pub send_at: String,
    /// Held to the end of quiet hours.
    pub held: bool,
}

/// Records a checked request as a scheduled broadcast, with its audit entry.
pub fn create(
    conn: &mut rusqlite::Connection,
    by: &staff::Account,
    req: &Request,
    now: DateTime<Utc>,
    quiet: Option<QuietHours>,
) -> anyhow::Result<Created> {
    let at = req.goes_at(now, quiet);
    let asked = req.send_at.unwrap_or(now).max(now);
    let recipients = count(conn, req.audience, at)?;
    let tx = store::write_tx(conn)?;
    let send_at = store::ts(at);
    let id = broadcasts::create(
        &tx,
        &broadcasts::NewBroadcast {
            created_by: by.id,
            text: &req.text,
            image_url: req.image_url.as_deref(),
            audience: &serde_json::to_string(&req.audience)?,
            requested_at: req.send_at.map(store::ts).as_deref(),
            send_at: &send_at,
            override_quiet_hours: req.override_quiet_hours,
            recipients,
            key: &Uuid::new_v4().to_string(),
        },
        &store::ts(now),
    )?;
    staff::audit(
        &tx,
        Some(by.id),
        &by.login,
        "broadcast_created",
        &format!(
            "id={id} audience={} recipients={recipients} send_at={send_at}{}",
            req.audience.label(),
            if req.override_quiet_hours {
                " override_quiet_hours"
            } else {
                ""
            }
        ),
        &store::ts(now),
    )?;
    tx.commit()?;
    Ok(Created {
        id,
        recipients,
        status: "scheduled",
        send_at,
        held: at > asked,
    })
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Broadcasts started.
    pub started: usize,
    /// Batches LINE accepted.
    pub sent: usize,
    /// Batches that failed for good.
    pub failed: usize,
    /// Batches to try again later.
    pub later: usize,
    /// Broadcasts finished.
    pub finished: usize,
    /// LINE refuses everything now (revoked token, monthly limit): the pass stopped.
    pub halted: bool,
}

/// Starts due broadcasts and delivers their batches. One per `serve` process (the serve lease
/// keeps a second process off the database).
#[derive(Clone)]
pub struct Engine {
    db: Db,
    line: LineClient,
    clock: SharedClock,
    installation: Arc<Installation>,
}

impl Engine {
    /// An engine on a durable connection (a batch's claim is on disk before its request leaves).
    pub fn new(
        conn: rusqlite::Connection,
        line: LineClient,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        let installation = Arc::new(Installation::load(&conn)?);
        Ok(Self {
            db: Db::new(conn),
            line,
            clock,
            installation,
        })
    }

    /// Voids the claims a process that stopped mid-send left on broadcast batches.
    pub async fn recover(&self) -> anyhow::Result<usize> {
        self.db
            .run(|c| Ok(sends::release_claims(c, Kind::Broadcast)?))
            .await
    }

    /// Runs passes until stopped: woken by a new broadcast, and every second.
    pub async fn run(self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                r = self.run_once() => if let Err(e) = r {
                    tracing::error!(error = %e, "broadcast pass failed; will retry");
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

    /// One pass: starts what is due, sends every batch due now, marks finished broadcasts done.
    ///
    /// The batches due go through a pipeline, as the daily delivery's do: a producer claims
    /// them `CLAIM_GROUP` at a time (one transaction, so one sync, for the group's claims), a
    /// sender keeps `IN_FLIGHT` of them with LINE, and a finisher commits the outcomes that have
    /// come in together, in one transaction. Each claim is still on disk before its request
    /// leaves and each outcome is still recorded; what changes is that a sync (milliseconds on
    /// a real disk, paid with the write lock held, one connection) is no longer paid twice per
    /// batch: at two syncs of 5 ms a batch the engine could not send more than 100 batches a
    /// second, half of multicast's rate.
    pub async fn run_once(&self) -> anyhow::Result<Pass> {
        let mut pass = Pass {
            started: self.start_due().await?,
            ..Pass::default()
        };
        loop {
            let now_ms = store::wall_ms();
            let batches = self
                .db
                .run(move |c| Ok(broadcasts::pending_batches(c, now_ms, 1000)?))
                .await?;
            if batches.is_empty() {
                break;
            }
            let lease = self.line.worst_case() + Duration::from_secs(30);
            let ids: Vec<i64> = batches.into_iter().map(|(id, _)| id).collect();
            let round = self.send_round(ids, lease).await?;
            pass.sent += round.sent;
            pass.failed += round.failed;
            pass.later += round.later;
            pass.halted |= round.halted;
            if pass.halted || round.sent + round.failed == 0 {
                break;
            }
        }
        pass.finished = self.finish_settled().await?;
        Ok(pass)
    }

    /// Claims, sends and settles `ids` (a pass's batches), pipelined.
    async fn send_round(&self, ids: Vec<i64>, lease: Duration) -> anyhow::Result<Pass> {
        let (ready_tx, ready_rx) = tokio::sync::mpsc::channel::<Claimed>(CLAIM_GROUP);
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<(i64, Finish)>();

        let producer = async {
            for group in ids.chunks(CLAIM_GROUP) {
                let group = group.to_vec();
                let claimed = self.db.run(move |c| claim_group(c, &group, lease)).await?;
                for batch in claimed {
                    if ready_tx.send(batch).await.is_err() {
                        return anyhow::Ok(());
                    }
                }
            }
            // The sender ends once it has what was claimed.
            drop(ready_tx);
            anyhow::Ok(())
        };

        let sender = async {
            let ready = futures_util::stream::unfold(ready_rx, |mut rx| async move {
                rx.recv().await.map(|b| (b, rx))
            });
            let mut results = std::pin::pin!(
                ready
                    .map(|b| self.send_batch(b))
                    .buffer_unordered(IN_FLIGHT)
            );
            while let Some(done) = results.next().await {
                // No finisher (its commit failed): send no more than is in flight.
                if done_tx.send(done).is_err() {
                    break;
                }
            }
            drop(done_tx);
        };

        let finisher = async {
            let mut round = Pass::default();
            while let Some(first) = done_rx.recv().await {
                let mut group = vec![first];
                while let Ok(done) = done_rx.try_recv() {
                    group.push(done);
                }
                for (id, finish) in &group {
                    match finish {
                        Finish::Sent { .. } => round.sent += 1,
                        Finish::Failed(e) => {
                            round.failed += 1;
                            tracing::warn!(send = id, error = %e, "broadcast batch failed");
                        }
                        Finish::Dropped(_) => round.failed += 1,
                        Finish::Later { .. } => round.later += 1,
                        Finish::Released { .. } => round.halted = true,
                    }
                }
                let now = store::ts(self.clock.now());
                self.db
                    .run(move |c| {
                        let tx = store::write_tx(c)?;
                        for (id, finish) in &group {
                            sends::finish(&tx, *id, finish, &now)?;
                        }
                        tx.commit()?;
                        Ok(())
                    })
                    .await?;
            }
            anyhow::Ok(round)
        };

        let (produced, (), round) = tokio::join!(producer, sender, finisher);
        produced?;
        round
    }

    /// Records the batches of every due broadcast, each broadcast in one transaction.
    async fn start_due(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let installation = self.installation.clone();
        self.db
            .run(move |c| {
                let due = broadcasts::due(c, &store::ts(now))?;
                let mut started = 0;
                for (id, audience) in due {
                    let audience: Audience = serde_json::from_str(&audience)?;
                    let day = now.with_timezone(&crate::clock::jst()).date_naive();
                    let tx = store::write_tx(c)?;
                    let users = broadcasts::recipients(&tx, audience.selection(day))?;
                    let (text, image, key) = broadcasts::content(&tx, id)?;
                    let key = Uuid::try_parse(&key)
                        .map_err(|_| anyhow::anyhow!("broadcast {id} has a malformed key"))?;
                    let messages = messages(&text, image.as_deref());
                    let at = store::ts(now);
                    for (n, batch) in users.chunks(MULTICAST_MAX).enumerate() {
                        sends::record_multicast(
                            &tx,
                            NewMulticast {
                                kind: Kind::Broadcast,
                                recipients: batch,
                                messages: &messages,
                                retry_key: &installation.broadcast_key(key, n).to_string(),
                                broadcast: Some(id),
                            },
                            &at,
                        )?;
                    }
                    if broadcasts::mark_started(&tx, id, users.len() as i64, &at)? {
                        tx.commit()?;
                        started += 1;
                        tracing::info!(
                            broadcast = id,
                            recipients = users.len(),
                            "broadcast started"
                        );
                    }
                }
                Ok(started)
            })
            .await
    }

    /// Sends one claimed batch; returns its outcome, to be recorded.
    async fn send_batch(&self, batch: Claimed) -> (i64, Finish) {
        let Claimed {
            id,
            batch,
            key,
            first,
        } = batch;
        let finish = if batch.to.is_empty() {
            Finish::Dropped("every recipient of the batch was erased".into())
        } else {
            let outcome = self.line.multicast(&batch.to, &batch.messages, key).await;
            self.classify(outcome, first)
        };
        (id, finish)
    }

    fn classify(&self, outcome: SendOutcome, first_attempt_ms: Option<i64>) -> Finish {
        let now = store::wall_ms();
        match outcome {
            o @ (SendOutcome::Sent { .. } | SendOutcome::AlreadyAccepted { .. }) => Finish::Sent {
                via: Via::Multicast,
                request_id: o.request_id().map(str::to_owned),
            },
            SendOutcome::Halt(h) => Finish::Released {
                error: Some(h.to_string()),
                as_reply: false,
                next_attempt_ms: now + 5_000,
            },
            SendOutcome::RateLimited => Finish::Later {
                error: "LINE rate limit".into(),
                next_attempt_ms: now + 1_000,
                token_unspent: false,
            },
            o @ (SendOutcome::Unknown(_) | SendOutcome::NotSent(_)) => {
                let age = now - first_attempt_ms.unwrap_or(now);
                if age >= RETRY_WINDOW.as_millis() as i64 {
                    Finish::Failed(format!("LINE never confirmed it within 23 hours: {o}"))
                } else {
                    Finish::Later {
                        error: o.to_string(),
                        next_attempt_ms: now + 10_000,
                        token_unspent: false,
                    }
                }
            }
            o @ (SendOutcome::Rejected { .. } | SendOutcome::InvalidReplyToken) => {
                Finish::Failed(o.to_string())
            }
        }
    }

    async fn finish_settled(&self) -> anyhow::Result<usize> {
        let now = store::ts(self.clock.now());
        self.db
            .run(move |c| {
                let tx = store::write_tx(c)?;
                let done = broadcasts::finish_settled(&tx, &now)?;
                for id in &done {
                    if let Some(b) = broadcasts::get(&tx, *id)? {
                        let by = staff::by_login(&tx, &b.created_by)?.map(|a| a.id);
                        staff::audit(
                            &tx,
                            by,
                            &b.created_by,
                            "broadcast_sent",
                            &format!(
                                "id={id} recipients={} sent={} failed={}",
                                b.recipients, b.sent, b.failed
                            ),
                            &now,
                        )?;
                    }
                }
                tx.commit()?;
                Ok(done.len())
            })
            .await
    }
}

/// A batch claimed for sending, with what it sends and when it was first tried.
struct Claimed {
    id: i64,
    batch: sends::Multicast,
    key: Uuid,
    first: Option<i64>,
}

/// Claims `ids` in one transaction (those another pass holds are skipped), then reads back
/// what each sends.
fn claim_group(
    c: &mut rusqlite::Connection,
    ids: &[i64],
    lease: Duration,
) -> anyhow::Result<Vec<Claimed>> {
    let now = store::wall_ms();
    let tx = store::write_tx(c)?;
    let mut claimed = Vec::with_capacity(ids.len());
    for &id in ids {
        if sends::claim(&tx, id, now, now + lease.as_millis() as i64)? {
            claimed.push(id);
        }
    }
    tx.commit()?;
    claimed
        .into_iter()
        .map(|id| {
            let batch = sends::multicast(c, id)?;
            let key = Uuid::try_parse(&batch.retry_key)
                .map_err(|_| anyhow::anyhow!("batch {id} has a malformed retry key"))?;
            Ok(Claimed {
                id,
                batch,
                key,
                first: broadcasts::first_attempt_ms(c, id)?,
            })
        })
        .collect()
}

/// Sends a broadcast's message at once to a few staff members' own LINE accounts (they must
/// follow the account), to see it as parents will; recorded as a batch of no broadcast.
pub async fn test_send(
    db: &Db,
    line: &LineClient,
    by: staff::Account,
    text: String,
    image_url: Option<String>,
    to: Vec<crate::domain::LineUserId>,
    now: DateTime<Utc>,
) -> anyhow::Result<Result<usize, Invalid>> {
    let messages = messages(&text, image_url.as_deref());
    let key = Uuid::new_v4();
    let recorded = db
        .run({
            let messages = messages.clone();
            move |c| {
                let tx = store::write_tx(c)?;
                let mut users = Vec::new();
                for id in &to {
                    match crate::store::users::find(&tx, id.as_str())? {
                        Some((user, true)) => users.push(user),
                        _ => return Ok(Err(Invalid(
                            "テスト送信先に、この公式アカウントを友だち追加していないLINEユーザーIDがあります。".into(),
                        ))),
                    }
                }
                users.sort();
                users.dedup();
                let id = sends::record_multicast(
                    &tx,
                    NewMulticast {
                        kind: Kind::Broadcast,
                        recipients: &users,
                        messages: &messages,
                        retry_key: &key.to_string(),
                        broadcast: None,
                    },
                    &store::ts(now),
                )?;
                staff::audit(
                    &tx,
                    Some(by.id),
                    &by.login,
                    "broadcast_test_sent",
                    &format!("recipients={}", users.len()),
                    &store::ts(now),
                )?;
                let now_ms = store::wall_ms();
                sends::claim(&tx, id, now_ms, now_ms + 120_000)?;
                tx.commit()?;
                Ok(Ok((id, users.len())))
            }
        })
        .await?;
    let (id, n) = match recorded {
        Ok(x) => x,
        Err(e) => return Ok(Err(e)),
    };
    let to: Vec<String> = db.run(move |c| Ok(sends::multicast(c, id)?.to)).await?;
    let outcome = line.multicast(&to, &messages, key).await;
    let finish = match outcome {
        o @ (SendOutcome::Sent { .. } | SendOutcome::AlreadyAccepted { .. }) => Finish::Sent {
            via: Via::Multicast,
            request_id: o.request_id().map(str::to_owned),
        },
        o => Finish::Failed(o.to_string()),
    };
    let failed = match &finish {
        Finish::Failed(e) => Some(e.clone()),
        _ => None,
    };
    let at = store::ts(now);
    db.run(move |c| Ok(sends::finish(c, id, &finish, &at)?))
        .await?;
    match failed {
        None => Ok(Ok(n)),
        Some(e) => Ok(Err(Invalid(format!(
            "テスト送信できませんでした（LINEの応答: {e}）。"
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        crate::clock::jst()
            .with_ymd_and_hms(2026, 11, 21, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn req(text: &str) -> Request {
        Request {
            text: text.into(),
            image_url: None,
            audience: Audience::All {},
            send_at: None,
            override_quiet_hours: false,
        }
    }

    #[test]
    fn a_request_is_checked_before_it_is_recorded() {
        let now = at(10, 0);
        assert!(req("  ").validate(now).is_err());
        assert!(req(&"あ".repeat(5001)).validate(now).is_err());
        assert_eq!(
            req(" お知らせ\r\nです ").validate(now).unwrap().text,
            "お知らせ\nです"
        );
        let mut r = req("x");
        r.image_url = Some("http://example.com/a.png".into());
        assert!(r.clone().validate(now).is_err());
        r.image_url = Some("https://example.com/a.png".into());
        assert!(r.clone().validate(now).is_ok());
        r.image_url = Some("  ".into());
        assert_eq!(r.clone().validate(now).unwrap().image_url, None);
        r.send_at = Some(at(9, 0));
        assert!(r.clone().validate(now).is_err(), "in the past");
        r.send_at = Some(now + chrono::TimeDelta::days(181));
        assert!(r.clone().validate(now).is_err(), "too far ahead");
        r.audience = Audience::Child { months: [6, 4] };
        r.send_at = None;
        assert!(r.validate(now).is_err());
    }

    #[test]
    fn quiet_hours_hold_a_send_unless_overridden() {
        let q = Some(QuietHours::default());
        let mut r = req("x");
        assert_eq!(
            r.goes_at(at(22, 0), q),
            at(7, 0) + chrono::TimeDelta::days(1)
        );
        assert_eq!(r.goes_at(at(10, 0), q), at(10, 0));
        assert_eq!(r.goes_at(at(22, 0), None), at(22, 0));
        r.override_quiet_hours = true;
        assert_eq!(r.goes_at(at(22, 0), q), at(22, 0));
        r.override_quiet_hours = false;
        r.send_at = Some(at(23, 0));
        assert_eq!(
            r.goes_at(at(10, 0), q),
            at(7, 0) + chrono::TimeDelta::days(1)
        );
    }

    #[test]
    fn an_image_follows_the_text() {
        let m = messages("お知らせ", Some("https://example.com/a.png"));
        assert_eq!(m.len(), 2);
        assert!(matches!(m[1], Message::Image { .. }));
        assert_eq!(messages("x", None).len(), 1);
    }
}
