//! Registrations, their readers and their status history.

use super::StoreError;
use crate::domain::{RegistrationStatus, Stage};
use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Row, params};

/// A registration as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// Internal id.
    pub id: i64,
    /// Owner's internal user id.
    pub user_id: i64,
    /// Pregnancy or child.
    pub stage: Stage,
    /// How messages address the reader.
    pub nickname: String,
    /// Due date (pregnancy) or birthday (child).
    pub date: NaiveDate,
    /// Delivery status.
    pub status: RegistrationStatus,
    /// Asia/Tokyo date the current delivery run began.
    pub started_on: NaiveDate,
}

fn parse_date(s: &str) -> rusqlite::Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Registration> {
    let stage: String = r.get("stage")?;
    let status: String = r.get("status")?;
    let stage = Stage::from_db(&stage).unwrap_or(Stage::Child);
    let date: String = match stage {
        Stage::Pregnancy => r.get("due_date")?,
        Stage::Child => r.get("birthday")?,
    };
    Ok(Registration {
        id: r.get("id")?,
        user_id: r.get("user_id")?,
        stage,
        nickname: r.get("nickname")?,
        date: parse_date(&date)?,
        status: RegistrationStatus::from_db(&status).unwrap_or(RegistrationStatus::Stopped),
        started_on: parse_date(&r.get::<_, String>("started_on")?)?,
    })
}

const COLUMNS: &str =
    "r.id, r.user_id, r.stage, r.nickname, r.due_date, r.birthday, r.status, r.started_on";

/// Creates an active registration owned by `user_id`, with its first history entry.
pub fn create(
    conn: &Connection,
    user_id: i64,
    stage: Stage,
    nickname: &str,
    date: NaiveDate,
    today: NaiveDate,
    now: &str,
) -> Result<i64, StoreError> {
    let (due, birthday) = match stage {
        Stage::Pregnancy => (Some(date.to_string()), None),
        Stage::Child => (None, Some(date.to_string())),
    };
    conn.prepare_cached(
        "INSERT INTO registrations (user_id, stage, nickname, due_date, birthday, status, started_on, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6, ?7, ?7)",
    )?
    .execute(params![user_id, stage.as_str(), nickname, due, birthday, today.to_string(), now])?;
    let id = conn.last_insert_rowid();
    conn.prepare_cached(
        "INSERT INTO registration_readers (registration_id, user_id, role, added_at) VALUES (?1, ?2, 'owner', ?3)",
    )?
    .execute(params![id, user_id, now])?;
    record_history(
        conn,
        id,
        None,
        RegistrationStatus::Active,
        "registered",
        now,
    )?;
    Ok(id)
}

fn record_history(
    conn: &Connection,
    id: i64,
    from: Option<RegistrationStatus>,
    to: RegistrationStatus,
    reason: &str,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO registration_status_history (registration_id, from_status, to_status, reason, changed_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, from.map(|s| s.as_str()), to.as_str(), reason, now])?;
    Ok(())
}

/// Changes a registration's status and records the change; a no-op if it already has it.
pub fn set_status(
    conn: &Connection,
    id: i64,
    to: RegistrationStatus,
    reason: &str,
    now: &str,
) -> Result<(), StoreError> {
    let from = get(conn, id)?.ok_or(StoreError::NotFound)?.status;
    if from == to {
        return Ok(());
    }
    conn.prepare_cached("UPDATE registrations SET status = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, to.as_str(), now])?;
    record_history(conn, id, Some(from), to, reason, now)
}

/// One registration.
pub fn get(conn: &Connection, id: i64) -> Result<Option<Registration>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM registrations r WHERE r.id = ?1"
        ))?
        .query_row([id], from_row)
        .optional()?)
}

/// The registrations a user reads, oldest first.
pub fn for_reader(conn: &Connection, user_id: i64) -> Result<Vec<Registration>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM registrations r
         JOIN registration_readers rr ON rr.registration_id = r.id
         WHERE rr.user_id = ?1 ORDER BY r.id"
    ))?;
    let rows = stmt
        .query_map([user_id], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Moves every registration the user owns from one of `from` to `to`; returns their ids.
fn move_owned(
    conn: &Connection,
    user_id: i64,
    from: &[RegistrationStatus],
    to: RegistrationStatus,
    reason: &str,
    now: &str,
) -> Result<Vec<i64>, StoreError> {
    let mut moved = Vec::new();
    for r in owned(conn, user_id)? {
        if from.contains(&r.status) {
            set_status(conn, r.id, to, reason, now)?;
            moved.push(r.id);
        }
    }
    Ok(moved)
}

/// The reader blocked the account: every active or stopped registration they own becomes 解除.
pub fn block_all(conn: &Connection, user_id: i64, now: &str) -> Result<usize, StoreError> {
    use RegistrationStatus::*;
    Ok(move_owned(conn, user_id, &[Active, Stopped], Blocked, "unfollow", now)?.len())
}

/// The reader unblocked: each 解除 registration goes back to the status it had before.
pub fn unblock_all(conn: &Connection, user_id: i64, now: &str) -> Result<usize, StoreError> {
    let mut n = 0;
    for r in owned(conn, user_id)? {
        if r.status != RegistrationStatus::Blocked {
            continue;
        }
        let before: Option<String> = conn
            .prepare_cached(
                "SELECT from_status FROM registration_status_history
                 WHERE registration_id = ?1 AND to_status = 'blocked' ORDER BY id DESC LIMIT 1",
            )?
            .query_row([r.id], |row| row.get(0))
            .optional()?
            .flatten();
        let restored = before
            .as_deref()
            .and_then(RegistrationStatus::from_db)
            .unwrap_or(RegistrationStatus::Active);
        set_status(conn, r.id, restored, "follow (unblocked)", now)?;
        n += 1;
    }
    Ok(n)
}

/// Stops (停止) every active registration the user owns.
pub fn stop_all(conn: &Connection, user_id: i64, now: &str) -> Result<usize, StoreError> {
    use RegistrationStatus::*;
    Ok(move_owned(
        conn,
        user_id,
        &[Active],
        Stopped,
        "stopped from the chat",
        now,
    )?
    .len())
}

/// Resumes every stopped registration the user owns; delivery restarts from `today`.
pub fn resume_all(
    conn: &Connection,
    user_id: i64,
    today: NaiveDate,
    now: &str,
) -> Result<usize, StoreError> {
    use RegistrationStatus::*;
    let moved = move_owned(
        conn,
        user_id,
        &[Stopped],
        Active,
        "resumed from the chat",
        now,
    )?;
    for id in &moved {
        conn.prepare_cached("UPDATE registrations SET started_on = ?2 WHERE id = ?1")?
            .execute(params![id, today.to_string()])?;
    }
    Ok(moved.len())
}

fn owned(conn: &Connection, user_id: i64) -> Result<Vec<Registration>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM registrations r WHERE r.user_id = ?1 ORDER BY r.id"
    ))?;
    let rows = stmt
        .query_map([user_id], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
