//! Reading the webhook inbox for processing.

use super::StoreError;
use rusqlite::{Connection, params};

/// A stored, not yet processed webhook event.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    /// Row id.
    pub id: i64,
    /// `source.userId`, when the source is a user.
    pub line_user_id: Option<String>,
    /// The event's raw JSON.
    pub body: String,
}

/// Up to `limit` unprocessed events, each user's in timestamp order.
pub fn pending(conn: &Connection, limit: usize) -> Result<Vec<PendingEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, line_user_id, body FROM webhook_events
         WHERE processed_at IS NULL
         ORDER BY line_user_id, event_timestamp, id LIMIT ?1",
    )?;
    let rows = stmt
        .query_map([limit as i64], |r| {
            Ok(PendingEvent {
                id: r.get(0)?,
                line_user_id: r.get(1)?,
                body: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Marks an event processed with a short outcome (no personal data).
pub fn mark_processed(
    conn: &Connection,
    id: i64,
    outcome: &str,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE webhook_events SET processed_at = ?2, outcome = ?3, body = '' WHERE id = ?1",
    )?
    .execute(params![id, now, outcome])?;
    Ok(())
}
