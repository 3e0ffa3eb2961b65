//! The reply outbox: conversation answers written with the state change that causes them.

use super::StoreError;
use crate::line::Message;
use rusqlite::{Connection, params};

/// A message batch waiting to be sent.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    /// Row id.
    pub id: i64,
    /// Internal user id.
    pub user_id: i64,
    /// Recipient.
    pub line_user_id: String,
    /// Reply token, when the batch answers an event that had one.
    pub reply_token: Option<String>,
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
    user_id: i64,
    reply_token: Option<&str>,
    messages: &[Message],
    now: &str,
) -> Result<(), StoreError> {
    for chunk in messages.chunks(5) {
        let json = serde_json::to_string(chunk)
            .map_err(|e| StoreError::Corrupt(crate::telemetry::json_error(&e)))?;
        conn.prepare_cached(
            "INSERT INTO outbox (user_id, reply_token, messages, retry_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![user_id, reply_token, json, uuid::Uuid::new_v4().to_string(), now])?;
    }
    Ok(())
}

/// Pending batches, oldest first (so each user's answers go out in order).
pub fn pending(conn: &Connection, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.id, o.user_id, u.line_user_id, o.reply_token, o.messages, o.retry_key, o.created_at
         FROM outbox o JOIN line_users u ON u.id = o.user_id
         WHERE o.status = 'pending' ORDER BY o.id LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, user_id, line_user_id, reply_token, messages, key, created_at) = row?;
        out.push(OutboxItem {
            id,
            user_id,
            line_user_id,
            reply_token,
            messages: serde_json::from_str(&messages)
                .map_err(|e| StoreError::Corrupt(crate::telemetry::json_error(&e)))?,
            retry_key: key
                .parse()
                .map_err(|_| StoreError::Corrupt("retry key".into()))?,
            created_at,
        });
    }
    Ok(out)
}

/// Records the outcome of sending a batch.
pub fn finish(
    conn: &Connection,
    id: i64,
    status: &str,
    request_id: Option<&str>,
    error: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE outbox SET status = ?2, request_id = ?3, error = ?4, sent_at = ?5, attempts = attempts + 1,
           messages = CASE WHEN ?2 = 'sent' THEN '[]' ELSE messages END WHERE id = ?1",
    )?
    .execute(params![id, status, request_id, error, now])?;
    Ok(())
}
