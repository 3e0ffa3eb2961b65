//! The reply queue: conversation answers, recorded as sends of kind `reply` with the state
//! change that causes them, then claimed one by one by the reply sender, their outcomes
//! committed as they come (`sends::finish`).

use super::StoreError;
use super::sends::{messages_json, read_messages};
use crate::domain::UserId;
use crate::line::Message;
use rusqlite::{Connection, params};

/// A message batch waiting to be sent.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    /// Row id.
    pub id: i64,
    /// Internal user id.
    pub user_id: UserId,
    /// Recipient.
    pub line_user_id: String,
    /// Reply token, when the batch answers an event that had one.
    pub reply_token: Option<String>,
    /// Reply attempts made with the token before this claim.
    pub reply_attempts: i64,
    /// Send attempts before this claim.
    pub attempts: i64,
    /// The messages (1–5).
    pub messages: Vec<Message>,
    /// Retry key for sending as a push.
    pub retry_key: uuid::Uuid,
    /// When it was queued (RFC 3339).
    pub created_at: String,
}

/// Queues messages for a user; they are sent after the transaction commits.
pub fn enqueue(
    conn: &Connection,
    user_id: UserId,
    reply_token: Option<&str>,
    messages: &[Message],
    now: &str,
) -> Result<(), StoreError> {
    for chunk in messages.chunks(5) {
        let json = messages_json(chunk)?;
        conn.prepare_cached(
            "INSERT INTO sends (kind, user_id, reply_token, messages, retry_key, created_at)
             VALUES ('reply', ?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            user_id,
            reply_token,
            json,
            uuid::Uuid::new_v4().to_string(),
            now
        ])?;
    }
    Ok(())
}

/// Batches queued for a user since `since` (RFC 3339): the per-reader limit counts them.
pub fn queued_since(conn: &Connection, user_id: UserId, since: &str) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM sends WHERE user_id = ?1 AND created_at >= ?2 AND kind = 'reply'",
        )?
        .query_row(params![user_id, since], |r| r.get(0))?)
}

/// Claims up to `limit` pending batches that are due and held by nobody, oldest first, one per
/// reader: a reader's next answer waits until the one before it is settled, so answers never
/// overtake each other. `reply` says, per claimed row, whether it will be tried as a reply.
pub fn claim_due(
    conn: &Connection,
    now_ms: i64,
    lease_until: i64,
    limit: usize,
    reply: impl Fn(&OutboxItem) -> bool,
) -> Result<Vec<(OutboxItem, bool)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.id, o.user_id, u.line_user_id, o.reply_token, o.reply_attempts, o.attempts,
                o.messages, o.retry_key, o.created_at
         FROM sends o JOIN line_users u ON u.id = o.user_id
         WHERE o.kind = 'reply' AND o.status = 'pending' AND o.lease_until < ?1 AND o.next_attempt_ms <= ?1
           AND NOT EXISTS (SELECT 1 FROM sends p WHERE p.user_id = o.user_id
                           AND p.kind = 'reply' AND p.status = 'pending' AND p.id < o.id)
         ORDER BY o.id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now_ms, limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, UserId>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, String>(7)?,
            r.get::<_, String>(8)?,
        ))
    })?;
    let mut items = Vec::new();
    for row in rows {
        let (
            id,
            user_id,
            line_user_id,
            reply_token,
            reply_attempts,
            attempts,
            messages,
            key,
            created_at,
        ) = row?;
        items.push(OutboxItem {
            id,
            user_id,
            line_user_id,
            reply_token,
            reply_attempts,
            attempts,
            messages: read_messages(messages.as_deref().unwrap_or("[]"))?,
            retry_key: key
                .parse()
                .map_err(|_| StoreError::Corrupt("retry key".into()))?,
            created_at,
        });
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let as_reply = reply(&item);
        if super::sends::claim(conn, item.id, now_ms, lease_until)? {
            out.push((item, as_reply));
        }
    }
    Ok(out)
}

/// Counts a reply attempt for each batch, committed just before the requests leave.
pub fn count_reply_attempts(conn: &Connection, ids: &[i64]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE sends SET reply_attempts = reply_attempts + 1 WHERE id = ?1 AND status = 'pending'",
    )?;
    for id in ids {
        stmt.execute([id])?;
    }
    Ok(())
}

/// A batch's reply token was refused on its first try (expired): it goes as a push from now on.
pub fn forget_reply_token(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE sends SET reply_token = NULL, reply_attempts = 0 WHERE id = ?1 AND status = 'pending'",
    )?
    .execute([id])?;
    Ok(())
}

/// Pending batches (health and tests).
pub fn pending_count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM sends WHERE kind = 'reply' AND status = 'pending'")?
        .query_row([], |r| r.get(0))?)
}
