//! Retention and erasure of personal data.
//!
//! A reader all of whose registrations ended (解除 `blocked` or 完了 `completed`), or who blocked
//! the account without ever registering, is anonymised once the retention period has passed
//! since the end: their rows go (LINE user id, nickname, due date or birthday, conversation,
//! replies, delivery records, webhook events) and only anonymous counts stay in
//! `anonymised_counts`. `erase` does the same for one reader at once, on request. Processed
//! webhook events and finished replies are kept only as long as deduplication and support need.

use super::{StoreError, ts, write_tx};
use crate::clock::{SharedClock, jst};
use crate::domain::{LineUserId, RegistrationStatus};
use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::PathBuf;

/// How long a processed webhook event is kept: its id only has to dedupe LINE's redeliveries.
pub const EVENT_KEEP_DAYS: i64 = 30;
/// How long a reply that was sent or failed is kept (a failed one still holds its text).
pub const OUTBOX_KEEP_DAYS: i64 = 30;
/// Readers anonymised per transaction, so the webhook never waits long for the write lock.
const CHUNK: usize = 20;

/// What the retention rule looks at for one reader.
#[derive(Debug, Clone, PartialEq)]
pub struct ReaderFacts {
    /// Whether the reader still follows the account.
    pub following: bool,
    /// The latest sign of the reader: the user row or the conversation changing.
    pub last_seen: DateTime<Utc>,
    /// Each registration the reader owns: its status and when that status began.
    pub registrations: Vec<(RegistrationStatus, DateTime<Utc>)>,
    /// Events not yet processed or replies not yet sent: the reader is in the middle of
    /// something, never anonymised under them.
    pub busy: bool,
}

/// Whether a reader's personal data is due to be anonymised at `now` (pure).
pub fn is_due(reader: &ReaderFacts, now: DateTime<Utc>, retention_days: u32) -> bool {
    let cutoff = now - TimeDelta::days(i64::from(retention_days));
    let ended = if reader.registrations.is_empty() {
        // Followed and never registered is someone still deciding; blocked is an end.
        !reader.following
    } else {
        reader.registrations.iter().all(|(status, _)| {
            matches!(
                status,
                RegistrationStatus::Blocked | RegistrationStatus::Completed
            )
        })
    };
    ended
        && !reader.busy
        && reader.last_seen <= cutoff
        && reader
            .registrations
            .iter()
            .all(|(_, since)| *since <= cutoff)
}

/// What a retention run did (counts only).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetentionReport {
    /// Readers whose personal data went.
    pub readers: usize,
    /// Their registrations, now anonymous counts.
    pub registrations: usize,
    /// Processed webhook events past their keeping time.
    pub events: usize,
    /// Finished replies past their keeping time.
    pub replies: usize,
}

/// What erasing one reader did (counts only).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct EraseReport {
    /// Registrations erased (kept as anonymous counts).
    pub registrations: usize,
    /// Webhook events that named the reader.
    pub events: usize,
}

/// Why a reader could not be erased.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// Nothing in the database names this LINE user id.
    #[error("no reader with this LINE user id is in the database")]
    Unknown,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn month(at: DateTime<Utc>) -> String {
    at.with_timezone(&jst()).format("%Y-%m").to_string()
}

/// Anonymises every reader due at `now`, then drops processed webhook events and finished
/// replies past their keeping time.
pub fn run(
    conn: &mut Connection,
    now: DateTime<Utc>,
    retention_days: u32,
) -> Result<RetentionReport, StoreError> {
    let mut report = RetentionReport::default();
    // Old events and replies first: what is left to search per reader is then small.
    let event_cutoff = ts(now - TimeDelta::days(EVENT_KEEP_DAYS));
    report.events = delete_in_batches(
        conn,
        "DELETE FROM webhook_events WHERE id IN (
           SELECT id FROM webhook_events
           WHERE processed_at IS NOT NULL AND received_at < ?1 LIMIT 5000)",
        &event_cutoff,
    )?;
    let outbox_cutoff = ts(now - TimeDelta::days(OUTBOX_KEEP_DAYS));
    report.replies = delete_in_batches(
        conn,
        "DELETE FROM sends WHERE id IN (
           SELECT id FROM sends
           WHERE kind = 'reply' AND status != 'pending' AND created_at < ?1 LIMIT 5000)",
        &outbox_cutoff,
    )?;
    let candidates: Vec<i64> = conn
        .prepare(
            "SELECT u.id FROM line_users u
             WHERE NOT EXISTS (SELECT 1 FROM registrations r
                               WHERE r.user_id = u.id AND r.status IN ('active', 'stopped'))
               AND (u.following = 0 OR EXISTS (SELECT 1 FROM registrations r WHERE r.user_id = u.id))
             ORDER BY u.id",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for chunk in candidates.chunks(CHUNK) {
        let tx = write_tx(conn)?;
        for &user_id in chunk {
            // Read again under the write lock: the reader may have come back meanwhile.
            let Some(facts) = reader_facts(&tx, user_id, now)? else {
                continue;
            };
            if is_due(&facts, now, retention_days) {
                report.registrations += anonymise(&tx, user_id, Cause::Retention, now)?.0;
                report.readers += 1;
            }
        }
        tx.commit()?;
    }
    if report != RetentionReport::default() {
        checkpoint(conn);
    }
    tracing::info!(
        readers = report.readers,
        registrations = report.registrations,
        events = report.events,
        replies = report.replies,
        retention_days,
        "retention run finished"
    );
    Ok(report)
}

/// Erases one reader now (a request made to the municipality): every row holding their LINE
/// user id, nickname, dates, conversation, replies, delivery records and webhook events.
/// Anonymous counts of their registrations stay.
pub fn erase(
    conn: &mut Connection,
    line_user_id: &LineUserId,
    now: DateTime<Utc>,
) -> Result<EraseReport, EraseError> {
    let tx = write_tx(conn).map_err(StoreError::from)?;
    let user_id: Option<i64> = tx
        .query_row(
            "SELECT id FROM line_users WHERE line_user_id = ?1",
            [line_user_id.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::from)?;
    let mut report = EraseReport::default();
    if let Some(user_id) = user_id {
        let (registrations, events) = anonymise(&tx, user_id, Cause::Erasure, now)?;
        report.registrations = registrations;
        report.events = events;
    } else {
        // Events received but not yet processed can be the only trace.
        report.events = delete_events_of(&tx, line_user_id.as_str())?;
        if report.events == 0 {
            return Err(EraseError::Unknown);
        }
    }
    tx.commit().map_err(StoreError::from)?;
    checkpoint(conn);
    tracing::info!(
        registrations = report.registrations,
        events = report.events,
        "reader erased on request"
    );
    Ok(report)
}

/// Erases one reader inside the caller's transaction (a request made from the chat): as
/// [`erase`], without the WAL checkpoint. Returns (registrations, events) removed.
pub fn erase_in(
    conn: &Connection,
    user_id: crate::domain::UserId,
    now: DateTime<Utc>,
) -> Result<(usize, usize), StoreError> {
    anonymise(conn, user_id.get(), Cause::Erasure, now)
}

/// Runs retention once a day until `stop` turns true (the first run a minute after start).
pub async fn run_daily(
    database: PathBuf,
    retention_days: u32,
    clock: SharedClock,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut pause = std::time::Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        pause = std::time::Duration::from_secs(24 * 3600);
        let (db, now) = (database.clone(), clock.now());
        let outcome = tokio::task::spawn_blocking(move || -> anyhow::Result<RetentionReport> {
            let mut conn = super::connect(&db)?;
            Ok(run(&mut conn, now, retention_days)?)
        })
        .await;
        match outcome {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "retention run failed; retrying in an hour");
                pause = std::time::Duration::from_secs(3600);
            }
            Err(e) => tracing::error!(error = %e, "retention run did not finish"),
        }
    }
}

#[derive(Clone, Copy)]
enum Cause {
    Retention,
    Erasure,
}

impl Cause {
    fn as_str(self) -> &'static str {
        match self {
            Cause::Retention => "retention",
            Cause::Erasure => "erasure",
        }
    }
}

fn reader_facts(
    conn: &Connection,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<ReaderFacts>, StoreError> {
    let row: Option<(bool, String, Option<String>, bool)> = conn
        .prepare_cached(
            "SELECT u.following, u.updated_at,
                    (SELECT c.updated_at FROM conversations c WHERE c.user_id = u.id),
                    EXISTS (SELECT 1 FROM webhook_events e
                            WHERE e.line_user_id = u.line_user_id AND e.processed_at IS NULL)
                    OR EXISTS (SELECT 1 FROM sends o WHERE o.user_id = u.id AND o.kind = 'reply' AND o.status = 'pending')
             FROM line_users u WHERE u.id = ?1",
        )?
        .query_row([user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((following, updated_at, conversation_at, busy)) = row else {
        return Ok(None);
    };
    // A time that cannot be read counts as now: never anonymise on a misreading.
    let read = |s: &str| parse_ts(s).unwrap_or(now);
    let last_seen = conversation_at
        .as_deref()
        .map(read)
        .map_or(read(&updated_at), |c| c.max(read(&updated_at)));
    let registrations = conn
        .prepare_cached(&format!(
            "SELECT r.status, {ENDED} FROM registrations r WHERE r.user_id = ?1"
        ))?
        .query_map([user_id], |r| {
            let status: String = r.get(0)?;
            let since: String = r.get(1)?;
            Ok((
                RegistrationStatus::from_db(&status).unwrap_or(RegistrationStatus::Active),
                read(&since),
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(ReaderFacts {
        following,
        last_seen,
        registrations,
        busy,
    }))
}

/// When a registration's current status began: its last recorded change.
const ENDED: &str = "COALESCE((SELECT max(h.changed_at) FROM registration_status_history h
                              WHERE h.registration_id = r.id), r.updated_at)";

/// Copies the anonymous facts of a reader into `anonymised_counts`, then deletes every row that
/// holds their personal data. Returns (registrations, webhook events) removed.
fn anonymise(
    conn: &Connection,
    user_id: i64,
    cause: Cause,
    now: DateTime<Utc>,
) -> Result<(usize, usize), StoreError> {
    let (line_user_id, following, created_at, updated_at): (String, bool, String, String) = conn
        .prepare_cached(
            "SELECT line_user_id, following, created_at, updated_at FROM line_users WHERE id = ?1",
        )?
        .query_row([user_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    let read = |s: &str| parse_ts(s).unwrap_or(now);
    let regs: Vec<(String, String, String, String, bool)> = conn
        .prepare_cached(&format!(
            "SELECT r.stage, r.status, r.created_at, {ENDED},
                    EXISTS (SELECT 1 FROM registration_status_history h
                            WHERE h.registration_id = r.id AND h.to_status = 'stopped'
                              AND h.reason NOT IN ('loss', 'birth_unreported'))
             FROM registrations r WHERE r.user_id = ?1"
        ))?
        .query_map([user_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut count = conn.prepare_cached(
        "INSERT INTO anonymised_counts
           (stage, registered_month, ended_month, final_status, ever_stopped, cause, count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)
         ON CONFLICT (stage, registered_month, ended_month, final_status, ever_stopped, cause)
         DO UPDATE SET count = count + 1",
    )?;
    for (stage, status, created, since, ever_stopped) in &regs {
        let ended = match status.as_str() {
            "blocked" | "completed" => read(since),
            _ => now,
        };
        count.execute(params![
            stage,
            month(read(created)),
            month(ended),
            status,
            ever_stopped,
            cause.as_str()
        ])?;
    }
    if regs.is_empty() {
        let (status, ended) = if following {
            ("registering", now)
        } else {
            ("blocked", read(&updated_at))
        };
        count.execute(params![
            "none",
            month(read(&created_at)),
            month(ended),
            status,
            false,
            cause.as_str()
        ])?;
    }
    let events = delete_events_of(conn, &line_user_id)?;
    // The day the statistics count these registrations gone (`daily_counts`, migration 0009).
    conn.prepare_cached("UPDATE registrations SET updated_at = ?2 WHERE user_id = ?1")?
        .execute(params![user_id, super::ts(now)])?;
    // Cascades to the conversation, registrations (with their readers, history and delivery
    // items), replies and delivery records.
    conn.prepare_cached("DELETE FROM line_users WHERE id = ?1")?
        .execute([user_id])?;
    Ok((regs.len(), events))
}

/// Deletes the webhook events of a LINE user, and any unprocessed body that names them
/// (processed bodies are cleared already; the unprocessed ones are few, under a partial index).
fn delete_events_of(conn: &Connection, line_user_id: &str) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM webhook_events
             WHERE line_user_id = ?1
                OR (processed_at IS NULL AND body <> '' AND instr(body, ?1) > 0)",
        )?
        .execute([line_user_id])?)
}

fn delete_in_batches(conn: &mut Connection, sql: &str, cutoff: &str) -> Result<usize, StoreError> {
    let mut total = 0;
    loop {
        let tx = write_tx(conn)?;
        let n = tx.execute(sql, [cutoff])?;
        tx.commit()?;
        total += n;
        if n == 0 {
            return Ok(total);
        }
    }
}

/// Copies the WAL into the database and truncates it, so deleted text does not linger in the
/// log. Best effort: a reader holding an old snapshot makes it a partial checkpoint, and the
/// next writes overwrite the log from its start.
pub(crate) fn checkpoint(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "WAL checkpoint after deleting personal data did not run");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RegistrationStatus::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    fn reader(following: bool, regs: &[(RegistrationStatus, DateTime<Utc>)]) -> ReaderFacts {
        ReaderFacts {
            following,
            last_seen: at(2026, 1, 1),
            registrations: regs.to_vec(),
            busy: false,
        }
    }

    #[test]
    fn who_is_due() {
        let now = at(2026, 12, 1);
        let ended = at(2026, 6, 1); // 183 days before `now`
        let recent = at(2026, 6, 10); // 174 days before `now`
        let cases: Vec<(&str, ReaderFacts, bool)> = vec![
            ("blocked long ago", reader(false, &[(Blocked, ended)]), true),
            (
                "completed long ago, still a friend",
                reader(true, &[(Completed, ended)]),
                true,
            ),
            (
                "blocked and completed",
                reader(false, &[(Blocked, ended), (Completed, ended)]),
                true,
            ),
            (
                "blocked recently",
                reader(false, &[(Blocked, recent)]),
                false,
            ),
            (
                "one ended recently",
                reader(false, &[(Blocked, ended), (Completed, recent)]),
                false,
            ),
            (
                "one still active",
                reader(true, &[(Completed, ended), (Active, ended)]),
                false,
            ),
            (
                "stopped (may resume)",
                reader(true, &[(Stopped, ended)]),
                false,
            ),
            ("blocked without registering", reader(false, &[]), true),
            ("a friend still deciding", reader(true, &[]), false),
            (
                "chatted recently",
                ReaderFacts {
                    last_seen: recent,
                    ..reader(true, &[(Completed, ended)])
                },
                false,
            ),
            (
                "an event not yet processed",
                ReaderFacts {
                    busy: true,
                    ..reader(false, &[(Blocked, ended)])
                },
                false,
            ),
        ];
        for (what, facts, due) in cases {
            assert_eq!(is_due(&facts, now, 180), due, "{what}");
        }
        // Exactly at the end of the period.
        let edge = now - TimeDelta::days(180);
        let facts = ReaderFacts {
            last_seen: edge,
            ..reader(false, &[(Blocked, edge)])
        };
        assert!(is_due(&facts, now, 180));
        assert!(!is_due(&facts, now - TimeDelta::seconds(1), 180));
    }

    #[test]
    fn months_are_asia_tokyo() {
        assert_eq!(
            month(Utc.with_ymd_and_hms(2026, 11, 30, 15, 0, 0).unwrap()),
            "2026-12"
        );
        assert_eq!(
            month(Utc.with_ymd_and_hms(2026, 11, 30, 14, 59, 59).unwrap()),
            "2026-11"
        );
    }
}
