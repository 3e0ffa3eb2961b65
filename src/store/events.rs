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

/// Up to `limit` unprocessed events, each user's in timestamp order; users are taken in the
/// order their oldest pending event arrived, so in a backlog nobody waits behind readers whose
/// ids happen to sort first.
pub fn pending(conn: &Connection, limit: usize) -> Result<Vec<PendingEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "WITH oldest AS (
             SELECT id, line_user_id FROM webhook_events
             WHERE processed_at IS NULL ORDER BY id LIMIT ?1
         ),
         readers AS (
             SELECT line_user_id, min(id) AS first FROM oldest
             WHERE line_user_id IS NOT NULL GROUP BY line_user_id
         )
         SELECT e.id, e.line_user_id, e.body, r.first, e.event_timestamp
         FROM readers r JOIN webhook_events e INDEXED BY webhook_events_pending
              ON e.line_user_id = r.line_user_id
         WHERE e.processed_at IS NULL
         UNION ALL
         SELECT e.id, NULL, e.body, o.id, e.event_timestamp FROM oldest o
         JOIN webhook_events e ON e.id = o.id
         WHERE o.line_user_id IS NULL
         ORDER BY 4, 5, 1 LIMIT ?1",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn store(conn: &Connection, id: &str, user: Option<&str>, ts: i64) {
        conn.execute(
            "INSERT INTO webhook_events (webhook_event_id, event_type, line_user_id, event_timestamp, body, received_at)
             VALUES (?1, 'message', ?2, ?3, '{}', 'now')",
            params![id, user, ts],
        )
        .unwrap();
    }

    #[test]
    fn readers_are_taken_in_arrival_order_each_in_timestamp_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrate(&mut conn).unwrap();
        // A reader whose id sorts last arrives first; then a chatty one whose id sorts first.
        store(&conn, "z1", Some("Uzzz"), 50);
        for i in 0..40 {
            store(&conn, &format!("a{i}"), Some("Uaaa"), 100 - i);
        }
        store(&conn, "n1", None, 10);
        let batch = pending(&conn, 8).unwrap();
        assert_eq!(batch.len(), 8);
        assert!(
            batch
                .iter()
                .any(|e| e.line_user_id.as_deref() == Some("Uzzz")),
            "the first to arrive is not kept waiting"
        );
        let chatty: Vec<i64> = batch
            .iter()
            .filter(|e| e.line_user_id.as_deref() == Some("Uaaa"))
            .map(|e| e.id)
            .collect();
        // Uaaa's events came with falling timestamps: the latest row (the earliest event) first.
        assert!(chatty.windows(2).all(|w| w[0] > w[1]), "{chatty:?}");
        // Nothing is lost: a whole backlog is handed out, batch by batch.
        let all = pending(&conn, 100).unwrap();
        assert_eq!(all.len(), 42);
    }
}
