//! Daily delivery records: every planned push, recorded as a send of kind `daily` (with its
//! rendered messages and the items it carries) before it is sent.

use super::sends::{self, Finish, Via, messages_json, read_messages};
use super::{StoreError, wall_ms};
use crate::line::Message;
use rusqlite::{Connection, OptionalExtension, params};

/// LINE forgets a retry key after 24 hours: a push first tried longer ago than this is not
/// resent, since nobody can tell whether it was delivered.
pub const RETRY_KEY_LIFETIME_MS: i64 = 23 * 3600 * 1000;

/// One recorded item of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedItem {
    /// Message object number within the push.
    pub position: u32,
    /// A registration it is for.
    pub registration_id: i64,
    /// The content id.
    pub content_id: String,
    /// For an age-window notice (delivered once per registration), the last track day of its
    /// window (gestational day, or days since birth): recording the push takes the notice for
    /// that registration. Known when planned; `None` when read back from the record.
    pub window_end: Option<i64>,
}

/// Whether a reader already has pushes recorded for a date (then those are the truth).
pub fn user_has_rows(conn: &Connection, user_id: i64, date: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM sends WHERE kind = 'daily' AND user_id = ?1 AND day = ?2)",
        )?
        .query_row(params![user_id, date], |r| r.get(0))?)
}

/// A push to record.
#[derive(Debug, Clone, Copy)]
pub struct NewPush<'a> {
    /// Recipient.
    pub user_id: i64,
    /// Delivery date.
    pub date: &'a str,
    /// Push number of the day.
    pub seq: u32,
    /// Its retry key.
    pub retry_key: &'a str,
    /// What it carries.
    pub items: &'a [RecordedItem],
    /// Its messages, rendered.
    pub messages: &'a [Message],
}

/// Records a planned push with its items and takes its lease; returns the row id. Its
/// age-window notices are taken in the same transaction: no later plan (a catch-up day, a
/// rerun) offers them again unless this push ends failed or skipped.
pub fn record_and_claim(
    conn: &Connection,
    push: NewPush<'_>,
    now: &str,
    lease_until: i64,
) -> Result<i64, StoreError> {
    let NewPush {
        user_id,
        date,
        seq,
        retry_key,
        items,
        messages,
    } = push;
    conn.prepare_cached(
        "INSERT INTO sends (kind, user_id, day, seq, messages, retry_key, created_at, lease_until, attempts, first_attempt_ms)
         VALUES ('daily', ?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8)",
    )?
    .execute(params![
        user_id,
        date,
        seq,
        messages_json(messages)?,
        retry_key,
        now,
        lease_until,
        wall_ms()
    ])?;
    let id = conn.last_insert_rowid();
    let mut stmt = conn.prepare_cached(
        "INSERT INTO send_items (send_id, position, registration_id, content_id) VALUES (?1, ?2, ?3, ?4)",
    )?;
    // The window's last date: gestational day g falls on due date + (g - 280) days; day n after
    // birth on birthday + n days (`domain::position`).
    let mut take = conn.prepare_cached(
        "INSERT INTO registration_notices (registration_id, notice_id, send_id, taken_at, open_until)
         SELECT id, ?2, ?3, ?4, COALESCE(CASE stage
             WHEN 'pregnancy' THEN date(due_date, printf('%+d days', ?5 - 280))
             ELSE date(birthday, printf('%+d days', ?5)) END, '9999-12-31')
         FROM registrations WHERE id = ?1
         ON CONFLICT DO NOTHING",
    )?;
    for it in items {
        stmt.execute(params![id, it.position, it.registration_id, it.content_id])?;
        if let (Some(end), Some(notice)) = (it.window_end, it.content_id.strip_prefix("notice/")) {
            take.execute(params![it.registration_id, notice, id, now, end])?;
        }
    }
    Ok(id)
}

/// A recorded push still to be sent.
#[derive(Debug, Clone)]
pub struct OpenRow {
    /// Row id.
    pub id: i64,
    /// Recipient.
    pub user_id: i64,
    /// Push number.
    pub seq: u32,
    /// Its retry key.
    pub retry_key: String,
    /// When it was first tried (wall clock), if ever.
    pub first_attempt_ms: Option<i64>,
    /// Its recorded messages; `None` for a push planned before sends kept them (rendered from
    /// its items).
    pub messages: Option<Vec<Message>>,
}

/// Planned rows of a date after `after_id`, oldest first.
pub fn open_rows(
    conn: &Connection,
    date: &str,
    after_id: i64,
    limit: usize,
) -> Result<Vec<OpenRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, seq, retry_key, first_attempt_ms, messages FROM sends
         WHERE kind = 'daily' AND day = ?1 AND status = 'pending' AND id > ?2 ORDER BY id LIMIT ?3",
    )?;
    let rows: Vec<(OpenRow, Option<String>)> = stmt
        .query_map(params![date, after_id, limit as i64], |r| {
            Ok((
                OpenRow {
                    id: r.get(0)?,
                    user_id: r.get(1)?,
                    seq: r.get(2)?,
                    retry_key: r.get(3)?,
                    first_attempt_ms: r.get(4)?,
                    messages: None,
                },
                r.get(5)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(mut row, json)| {
            row.messages = json.as_deref().map(read_messages).transpose()?;
            Ok(row)
        })
        .collect()
}

/// The items recorded for a push, in order.
pub fn items(conn: &Connection, delivery_id: i64) -> Result<Vec<RecordedItem>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT position, registration_id, content_id FROM send_items WHERE send_id = ?1 ORDER BY position, registration_id",
    )?;
    let rows = stmt
        .query_map([delivery_id], |r| {
            Ok(RecordedItem {
                position: r.get(0)?,
                registration_id: r.get(1)?,
                content_id: r.get(2)?,
                window_end: None,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// How many rows of a date are still planned, and the latest lease among them.
pub fn remaining(conn: &Connection, date: &str) -> Result<(i64, i64), StoreError> {
    Ok(conn
        .prepare_cached("SELECT count(*), COALESCE(max(lease_until), 0) FROM sends WHERE kind = 'daily' AND day = ?1 AND status = 'pending'")?
        .query_row([date], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// How a send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by LINE (or a 409 for a key accepted before).
    Sent {
        /// `x-line-request-id`.
        request_id: Option<String>,
        /// LINE had accepted this key before (409): delivered by an earlier attempt.
        duplicate: bool,
    },
    /// Refused by LINE, or not to be sent any more: never resent.
    Failed(String),
    /// Not sent now: the reader left since it was planned.
    Skipped(String),
    /// Not delivered this time (LINE unavailable): a rerun sends it.
    Retry(String),
    /// Never given to LINE, or refused outright (the run stopped; a revoked token, the monthly
    /// limit): a rerun sends it, and this did not count as a try.
    NotSent(String),
}

/// Records the outcome of a claimed push (`sends::finish`: a late outcome never overwrites
/// `sent`). A sent push keeps the notices it took; a failed or skipped one gives them back, so
/// the reader gets them on a later day inside their window.
pub fn finish(conn: &Connection, id: i64, outcome: &Outcome, now: &str) -> Result<(), StoreError> {
    let finish = match outcome {
        Outcome::Sent { request_id, .. } => Finish::Sent {
            via: Via::Push,
            request_id: request_id.clone(),
        },
        Outcome::Failed(e) => Finish::Failed(e.clone()),
        Outcome::Skipped(e) => Finish::Dropped(e.clone()),
        Outcome::Retry(e) => Finish::Later {
            error: e.clone(),
            next_attempt_ms: 0,
            token_unspent: false,
        },
        // Not a try: it does not start the 23-hour clock after which a push is not resent.
        Outcome::NotSent(e) => Finish::Released {
            error: Some(e.clone()),
            as_reply: false,
            next_attempt_ms: 0,
        },
    };
    sends::finish(conn, id, &finish, now)
}

/// Whether a registration's content was delivered on a date (for the programme's end).
pub fn delivered(
    conn: &Connection,
    registration_id: i64,
    date: &str,
    content_id: &str,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM send_items i JOIN sends d ON d.id = i.send_id
             WHERE i.registration_id = ?1 AND d.day = ?2 AND i.content_id = ?3 AND d.status = 'sent')",
        )?
        .query_row(params![registration_id, date, content_id], |r| r.get(0))?)
}

/// Pushes of a date delivered so far.
pub fn sent_count(conn: &Connection, date: &str) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM sends WHERE kind = 'daily' AND day = ?1 AND status = 'sent'",
        )?
        .query_row([date], |r| r.get::<_, i64>(0))? as usize)
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

/// Records a run's counts; the date is finished only when nothing is left to send.
pub fn run_done(
    conn: &Connection,
    date: &str,
    planned: usize,
    sent: usize,
    failed: usize,
    now: &str,
) -> Result<bool, StoreError> {
    let (left, _) = remaining(conn, date)?;
    conn.prepare_cached(
        "UPDATE delivery_runs SET finished_at = CASE WHEN ?6 = 0 THEN ?2 ELSE NULL END,
           planned = ?3, sent = sent + ?4, failed = ?5 WHERE delivery_date = ?1",
    )?
    .execute(params![
        date,
        now,
        planned as i64,
        sent as i64,
        failed as i64,
        left
    ])?;
    Ok(left == 0)
}
