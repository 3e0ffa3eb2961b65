//! Delivery records: every planned push, recorded before it is sent.

use super::StoreError;
use rusqlite::{Connection, OptionalExtension, params};

/// The state of a recorded push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This run holds it and must send it.
    Mine {
        /// Row id.
        id: i64,
    },
    /// Delivered before.
    AlreadySent,
    /// Failed for good before (LINE refused it).
    AlreadyFailed,
    /// Another run is sending it right now.
    Busy {
        /// Until when (unix ms).
        lease_until: i64,
    },
    /// Skipped before (the registration left).
    Skipped,
}

/// Records a planned push (if not yet recorded) with its items.
pub fn record(
    conn: &Connection,
    user_id: i64,
    date: &str,
    seq: u32,
    retry_key: &str,
    items: &[(i64, String)],
    now: &str,
) -> Result<(), StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO deliveries (user_id, delivery_date, seq, retry_key, planned_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![user_id, date, seq, retry_key, now])?;
    if inserted == 1 {
        let id = conn.last_insert_rowid();
        let mut stmt = conn.prepare_cached(
            "INSERT INTO delivery_items (delivery_id, position, registration_id, content_id) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (pos, (reg, content)) in items.iter().enumerate() {
            stmt.execute(params![id, pos as i64, reg, content])?;
        }
    }
    Ok(())
}

/// Takes the lease on a recorded push if it is still to be sent and nobody else holds it.
pub fn claim(
    conn: &Connection,
    user_id: i64,
    date: &str,
    seq: u32,
    now_ms: i64,
    lease_until: i64,
) -> Result<Claim, StoreError> {
    let mine: Option<i64> = conn
        .prepare_cached(
            "UPDATE deliveries SET lease_until = ?5, attempts = attempts + 1
             WHERE user_id = ?1 AND delivery_date = ?2 AND seq = ?3 AND status = 'planned' AND lease_until < ?4
             RETURNING id",
        )?
        .query_row(params![user_id, date, seq, now_ms, lease_until], |r| r.get(0))
        .optional()?;
    if let Some(id) = mine {
        return Ok(Claim::Mine { id });
    }
    let (status, lease): (String, i64) = conn
        .prepare_cached("SELECT status, lease_until FROM deliveries WHERE user_id = ?1 AND delivery_date = ?2 AND seq = ?3")?
        .query_row(params![user_id, date, seq], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(StoreError::NotFound)?;
    Ok(match status.as_str() {
        "sent" => Claim::AlreadySent,
        "failed" => Claim::AlreadyFailed,
        "skipped" => Claim::Skipped,
        _ => Claim::Busy { lease_until: lease },
    })
}

/// How a send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by LINE (or a 409 for a key accepted before).
    Sent {
        /// `x-line-request-id`.
        request_id: Option<String>,
    },
    /// Refused by LINE: never resent.
    Failed(String),
    /// Not delivered this time (LINE unavailable, monthly limit): a rerun sends it.
    Retry(String),
}

/// Records the outcome of a claimed push.
pub fn finish(conn: &Connection, id: i64, outcome: &Outcome, now: &str) -> Result<(), StoreError> {
    match outcome {
        Outcome::Sent { request_id } => conn
            .prepare_cached(
                "UPDATE deliveries SET status = 'sent', line_request_id = ?2, sent_at = ?3, lease_until = 0, error = NULL WHERE id = ?1",
            )?
            .execute(params![id, request_id, now])?,
        Outcome::Failed(e) => conn
            .prepare_cached("UPDATE deliveries SET status = 'failed', error = ?2, lease_until = 0 WHERE id = ?1")?
            .execute(params![id, e])?,
        Outcome::Retry(e) => conn
            .prepare_cached("UPDATE deliveries SET error = ?2, lease_until = 0 WHERE id = ?1")?
            .execute(params![id, e])?,
    };
    Ok(())
}

/// Marks as skipped the still-planned pushes of a date that are not in `keep` (their
/// registration stopped or left since they were planned).
pub fn skip_unplanned(
    conn: &Connection,
    date: &str,
    keep: &std::collections::HashSet<(i64, u32)>,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let rows: Vec<(i64, i64, u32)> = conn
        .prepare_cached(
            "SELECT id, user_id, seq FROM deliveries WHERE delivery_date = ?1 AND status = 'planned' AND lease_until < ?2",
        )?
        .query_map(params![date, now_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut n = 0;
    for (id, user, seq) in rows {
        if !keep.contains(&(user, seq)) {
            conn.prepare_cached("UPDATE deliveries SET status = 'skipped', error = 'no longer planned' WHERE id = ?1")?
                .execute([id])?;
            n += 1;
        }
    }
    Ok(n)
}

/// Whether a run for `date` went through to the end.
pub fn run_finished(conn: &Connection, date: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT finished_at IS NOT NULL FROM delivery_runs WHERE delivery_date = ?1",
        )?
        .query_row([date], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}

/// Records that a run for `date` started.
pub fn run_started(conn: &Connection, date: &str, now: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO delivery_runs (delivery_date, started_at) VALUES (?1, ?2) ON CONFLICT(delivery_date) DO NOTHING",
    )?
    .execute(params![date, now])?;
    Ok(())
}

/// Records that a run for `date` finished with these counts.
pub fn run_done(
    conn: &Connection,
    date: &str,
    planned: usize,
    sent: usize,
    failed: usize,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE delivery_runs SET finished_at = ?2, planned = ?3, sent = sent + ?4, failed = ?5 WHERE delivery_date = ?1",
    )?
    .execute(params![date, now, planned as i64, sent as i64, failed as i64])?;
    Ok(())
}
