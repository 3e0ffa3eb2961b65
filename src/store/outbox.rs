//! The reply outbox: conversation answers written with the state change that causes them, then
//! claimed one by one by the reply sender, their outcomes committed as they come.

use super::StoreError;
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
        let json = serde_json::to_string(chunk)
            .map_err(|e| StoreError::Corrupt(crate::telemetry::json_error(&e)))?;
        conn.prepare_cached(
            "INSERT INTO outbox (user_id, reply_token, messages, retry_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![user_id, reply_token, json, uuid::Uuid::new_v4().to_string(), now])?;
    }
    Ok(())
}

/// Batches queued for a user since `since` (RFC 3339): the per-reader limit counts them.
pub fn queued_since(conn: &Connection, user_id: UserId, since: &str) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM outbox WHERE user_id = ?1 AND created_at >= ?2")?
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
         FROM outbox o JOIN line_users u ON u.id = o.user_id
         WHERE o.status = 'pending' AND o.lease_until < ?1 AND o.next_attempt_ms <= ?1
           AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.user_id = o.user_id
                           AND p.status = 'pending' AND p.id < o.id)
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
            r.get::<_, String>(6)?,
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
            messages: serde_json::from_str(&messages)
                .map_err(|e| StoreError::Corrupt(crate::telemetry::json_error(&e)))?,
            retry_key: key
                .parse()
                .map_err(|_| StoreError::Corrupt("retry key".into()))?,
            created_at,
        });
    }
    let mut claim = conn.prepare_cached(
        "UPDATE outbox SET lease_until = ?2, attempts = attempts + 1
         WHERE id = ?1 AND status = 'pending' AND lease_until < ?3",
    )?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let as_reply = reply(&item);
        if claim.execute(params![item.id, lease_until, now_ms])? == 1 {
            out.push((item, as_reply));
        }
    }
    Ok(out)
}

/// Counts a reply attempt for each batch, committed just before the requests leave.
pub fn count_reply_attempts(conn: &Connection, ids: &[i64]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE outbox SET reply_attempts = reply_attempts + 1 WHERE id = ?1 AND status = 'pending'",
    )?;
    for id in ids {
        stmt.execute([id])?;
    }
    Ok(())
}

/// How a claimed batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// LINE has it (`via`: reply or push).
    Sent {
        /// `reply` or `push`.
        via: &'static str,
        /// `x-line-request-id`.
        request_id: Option<String>,
    },
    /// Never sent: refused for good, or given up.
    Failed(String),
    /// Deliberately not sent (the per-reader limit, the reserved quota).
    Dropped(String),
    /// Claimed but not tried (LINE refuses everything now): released as if never claimed.
    Released {
        /// The claim counted a reply attempt, to be taken back.
        as_reply: bool,
        /// When to look again.
        next_attempt_ms: i64,
    },
    /// Tried, not delivered: released, due again at `next_attempt_ms` (wall clock).
    Later {
        /// Why.
        error: String,
        /// When to try again.
        next_attempt_ms: i64,
        /// LINE never took the reply (no connection, 429): its token is not spent, so the
        /// counted reply attempt is taken back.
        token_unspent: bool,
    },
}

/// Records the outcome of a claimed batch. A batch already `sent` is never overwritten (a late
/// outcome of a lease that expired meanwhile).
pub fn finish(conn: &Connection, id: i64, finish: &Finish, now: &str) -> Result<(), StoreError> {
    match finish {
        Finish::Sent { via, request_id } => {
            // The messages are not kept once LINE has them.
            conn.prepare_cached(
                "UPDATE outbox SET status = 'sent', via = ?2, request_id = ?3, error = NULL,
                   sent_at = ?4, lease_until = 0, messages = '[]', reply_token = NULL
                 WHERE id = ?1",
            )?
            .execute(params![id, via, request_id, now])?;
        }
        Finish::Failed(e) | Finish::Dropped(e) => {
            let status = if matches!(finish, Finish::Failed(_)) {
                "failed"
            } else {
                "dropped"
            };
            conn.prepare_cached(
                "UPDATE outbox SET status = ?2, error = ?3, lease_until = 0, messages = '[]',
                   reply_token = NULL
                 WHERE id = ?1 AND status = 'pending'",
            )?
            .execute(params![id, status, e])?;
        }
        Finish::Later {
            error,
            next_attempt_ms,
            token_unspent,
        } => {
            conn.prepare_cached(
                "UPDATE outbox SET error = ?2, lease_until = 0, next_attempt_ms = ?3,
                   reply_attempts = max(reply_attempts - ?4, 0)
                 WHERE id = ?1 AND status = 'pending'",
            )?
            .execute(params![
                id,
                error,
                next_attempt_ms,
                i64::from(*token_unspent)
            ])?;
        }
        Finish::Released {
            as_reply,
            next_attempt_ms,
        } => {
            conn.prepare_cached(
                "UPDATE outbox SET lease_until = 0, next_attempt_ms = ?3, attempts = max(attempts - 1, 0),
                   reply_attempts = max(reply_attempts - ?2, 0)
                 WHERE id = ?1 AND status = 'pending'",
            )?
            .execute(params![id, i64::from(*as_reply), next_attempt_ms])?;
        }
    }
    Ok(())
}

/// A batch's reply token was refused on its first try (expired): it goes as a push from now on.
pub fn forget_reply_token(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE outbox SET reply_token = NULL, reply_attempts = 0 WHERE id = ?1 AND status = 'pending'",
    )?
    .execute([id])?;
    Ok(())
}

/// Releases every claim (a process that alone sends replies starts clean after a crash).
pub fn release_all(conn: &Connection) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE outbox SET lease_until = 0 WHERE status = 'pending' AND lease_until > 0",
        )?
        .execute([])?)
}

/// Pending batches (health and tests).
pub fn pending_count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM outbox WHERE status = 'pending'")?
        .query_row([], |r| r.get(0))?)
}
