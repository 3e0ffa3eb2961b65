//! Broadcasts: what the staff asked to send, to whom and when; their batches are `sends` of
//! kind `broadcast` (`sends.broadcast_id`), each a multicast to at most 500 readers.

use super::StoreError;
use crate::broadcast::Selection;
use crate::domain::UserId;
use rusqlite::{Connection, OptionalExtension, params};

/// A broadcast to record.
#[derive(Debug, Clone)]
pub struct NewBroadcast<'a> {
    /// The staff member who made it.
    pub created_by: i64,
    /// The text.
    pub text: &'a str,
    /// An image URL, if any.
    pub image_url: Option<&'a str>,
    /// The audience, as JSON.
    pub audience: &'a str,
    /// The time asked for (`None`: now).
    pub requested_at: Option<&'a str>,
    /// When it goes.
    pub send_at: &'a str,
    /// Sent even inside quiet hours.
    pub override_quiet_hours: bool,
    /// The count shown at creation (recounted when it starts).
    pub recipients: i64,
    /// A random UUID its batches' keys derive from.
    pub key: &'a str,
}

/// Records a scheduled broadcast; returns its id.
pub fn create(conn: &Connection, b: &NewBroadcast<'_>, now: &str) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO broadcasts (created_by, created_at, text, image_url, audience, requested_at,
                                 send_at, override_quiet_hours, recipients, key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        b.created_by,
        now,
        b.text,
        b.image_url,
        b.audience,
        b.requested_at,
        b.send_at,
        b.override_quiet_hours,
        b.recipients,
        b.key
    ])?;
    Ok(conn.last_insert_rowid())
}

/// A broadcast with its progress.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Broadcast {
    /// Its id.
    pub id: i64,
    /// `scheduled`, `sending`, `done` or `cancelled`.
    pub status: String,
    /// Readers it goes to (counted again when it starts).
    pub recipients: i64,
    /// Readers in batches LINE accepted.
    pub sent: i64,
    /// Readers in batches that failed for good.
    pub failed: i64,
    /// The text.
    pub text: String,
    /// The image URL.
    pub image_url: Option<String>,
    /// The audience (JSON).
    pub audience: serde_json::Value,
    /// Who made it.
    pub created_by: String,
    /// When it was made.
    pub created_at: String,
    /// The time asked for.
    pub requested_at: Option<String>,
    /// When it goes (or went).
    pub send_at: String,
    /// Sent inside quiet hours on purpose.
    pub override_quiet_hours: bool,
    /// When its batches were recorded.
    pub started_at: Option<String>,
    /// When its last batch settled.
    pub finished_at: Option<String>,
    /// When it was cancelled.
    pub cancelled_at: Option<String>,
}

const BROADCAST: &str =
    "b.id, b.status, COALESCE(b.recipients, 0), b.text, b.image_url, b.audience,
    (SELECT login FROM staff WHERE staff.id = b.created_by), b.created_at, b.requested_at,
    b.send_at, b.override_quiet_hours, b.started_at, b.finished_at, b.cancelled_at,
    (SELECT count(*) FROM sends s JOIN send_recipients r ON r.send_id = s.id
     WHERE s.broadcast_id = b.id AND s.status = 'sent'),
    (SELECT count(*) FROM sends s JOIN send_recipients r ON r.send_id = s.id
     WHERE s.broadcast_id = b.id AND s.status IN ('failed', 'dropped'))";

fn broadcast(r: &rusqlite::Row<'_>) -> rusqlite::Result<Broadcast> {
    let audience: String = r.get(5)?;
    Ok(Broadcast {
        id: r.get(0)?,
        status: r.get(1)?,
        recipients: r.get(2)?,
        text: r.get(3)?,
        image_url: r.get(4)?,
        audience: serde_json::from_str(&audience).unwrap_or(serde_json::Value::Null),
        created_by: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
        created_at: r.get(7)?,
        requested_at: r.get(8)?,
        send_at: r.get(9)?,
        override_quiet_hours: r.get(10)?,
        started_at: r.get(11)?,
        finished_at: r.get(12)?,
        cancelled_at: r.get(13)?,
        sent: 0,
        failed: 0,
    })
}

fn with_progress(r: &rusqlite::Row<'_>) -> rusqlite::Result<Broadcast> {
    let mut b = broadcast(r)?;
    b.sent = r.get(14)?;
    b.failed = r.get(15)?;
    Ok(b)
}

fn query(tail: &str) -> String {
    format!("SELECT {BROADCAST} FROM broadcasts b {tail}")
}

/// One broadcast with its progress.
pub fn get(conn: &Connection, id: i64) -> Result<Option<Broadcast>, StoreError> {
    Ok(conn
        .prepare_cached(&query("WHERE b.id = ?1"))?
        .query_row([id], with_progress)
        .optional()?)
}

/// The latest broadcasts, newest first.
pub fn list(conn: &Connection, limit: i64) -> Result<Vec<Broadcast>, StoreError> {
    Ok(conn
        .prepare_cached(&query("ORDER BY b.id DESC LIMIT ?1"))?
        .query_map([limit], with_progress)?
        .collect::<Result<_, _>>()?)
}

/// Why a broadcast's batches failed: (reason, readers), most first.
pub fn failures(conn: &Connection, id: i64) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(s.error, ''), count(*) FROM sends s JOIN send_recipients r ON r.send_id = s.id
             WHERE s.broadcast_id = ?1 AND s.status IN ('failed', 'dropped')
             GROUP BY 1 ORDER BY 2 DESC",
        )?
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?)
}

/// Cancels a broadcast that has not started; false if it has (or does not exist).
pub fn cancel(conn: &Connection, id: i64, by: i64, now: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE broadcasts SET status = 'cancelled', cancelled_by = ?2, cancelled_at = ?3
             WHERE id = ?1 AND status = 'scheduled'",
        )?
        .execute(params![id, by, now])?
        == 1)
}

/// Scheduled broadcasts due at `now`, oldest first.
pub fn due(conn: &Connection, now: &str) -> Result<Vec<(i64, String)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, audience FROM broadcasts WHERE status = 'scheduled' AND send_at <= ?1
             ORDER BY send_at, id",
        )?
        .query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?)
}

/// What a broadcast sends once it starts: its text, image URL and key.
pub fn content(conn: &Connection, id: i64) -> Result<(String, Option<String>, String), StoreError> {
    conn.prepare_cached("SELECT text, image_url, key FROM broadcasts WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// Marks a broadcast started with its final count of recipients (its batches recorded in the
/// same transaction); false if it was no longer scheduled (cancelled meanwhile).
pub fn mark_started(
    conn: &Connection,
    id: i64,
    recipients: i64,
    now: &str,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE broadcasts SET status = CASE WHEN ?2 = 0 THEN 'done' ELSE 'sending' END,
               recipients = ?2, started_at = ?3, finished_at = CASE WHEN ?2 = 0 THEN ?3 END
             WHERE id = ?1 AND status = 'scheduled'",
        )?
        .execute(params![id, recipients, now])?
        == 1)
}

/// The pending batches of broadcasts being sent, due by `now_ms`, in order.
pub fn pending_batches(
    conn: &Connection,
    now_ms: i64,
    limit: i64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT s.id, s.broadcast_id FROM broadcasts b JOIN sends s ON s.broadcast_id = b.id
             WHERE b.status = 'sending' AND s.status = 'pending'
               AND s.next_attempt_ms <= ?1 AND s.lease_until < ?1
             ORDER BY b.id, s.id LIMIT ?2",
        )?
        .query_map(params![now_ms, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?)
}

/// When a batch was first tried (wall-clock ms).
pub fn first_attempt_ms(conn: &Connection, send_id: i64) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT first_attempt_ms FROM sends WHERE id = ?1")?
        .query_row([send_id], |r| r.get(0))?)
}

/// Marks `done` the broadcasts being sent whose batches are all settled; returns their ids.
pub fn finish_settled(conn: &Connection, now: &str) -> Result<Vec<i64>, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE broadcasts SET status = 'done', finished_at = ?1
             WHERE status = 'sending'
               AND NOT EXISTS (SELECT 1 FROM sends s WHERE s.broadcast_id = broadcasts.id AND s.status = 'pending')
             RETURNING id",
        )?
        .query_map([now], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// The LINE users an audience selects now: following the account, reading at least one active
/// registration in the selection; each once (twins, siblings, family readers), in id order.
pub fn recipients(conn: &Connection, sel: Selection) -> Result<Vec<UserId>, StoreError> {
    let (sql, from, to) = recipients_sql(sel, false);
    let Some(sql) = sql else {
        return Ok(Vec::new());
    };
    Ok(conn
        .prepare_cached(&sql)?
        .query_map(params![from, to], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// How many LINE users [`recipients`] would give.
pub fn count_recipients(conn: &Connection, sel: Selection) -> Result<i64, StoreError> {
    let (sql, from, to) = recipients_sql(sel, true);
    let Some(sql) = sql else { return Ok(0) };
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![from, to], |r| r.get(0))?)
}

fn recipients_sql(sel: Selection, count: bool) -> (Option<String>, Option<String>, Option<String>) {
    // The stage and status are written out so the partial indexes of migration 0009 apply.
    let (filter, from, to) = match sel {
        Selection::Nobody => return (None, None, None),
        Selection::All => (
            "r.status = 'active' AND ?1 IS NULL AND ?2 IS NULL",
            None,
            None,
        ),
        Selection::DueBetween(f, t) => (
            "r.status = 'active' AND r.stage = 'pregnancy' AND r.due_date BETWEEN ?1 AND ?2",
            Some(f.to_string()),
            Some(t.to_string()),
        ),
        Selection::BornBetween(f, t) => (
            "r.status = 'active' AND r.stage = 'child' AND r.birthday BETWEEN ?1 AND ?2",
            Some(f.to_string()),
            Some(t.to_string()),
        ),
    };
    let users = format!(
        "SELECT DISTINCT rr.user_id FROM registrations r
         JOIN registration_readers rr ON rr.registration_id = r.id
         JOIN line_users u ON u.id = rr.user_id
         WHERE {filter} AND u.following = 1 AND rr.paused = 0 AND r.closed IS NULL"
    );
    let sql = if count {
        format!("SELECT count(*) FROM ({users})")
    } else {
        format!("{users} ORDER BY rr.user_id")
    };
    (Some(sql), from, to)
}
