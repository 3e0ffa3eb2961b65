//! Registrations, their readers and their status history.

use super::StoreError;
use crate::domain::{Nickname, RegistrationId, RegistrationStatus, Stage, Subject, UserId};
use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Row, params};

/// A registration as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// Internal id.
    pub id: RegistrationId,
    /// Owner's internal user id.
    pub user_id: UserId,
    /// The pregnancy or child it follows.
    pub subject: Subject,
    /// How messages address the reader.
    pub nickname: Nickname,
    /// Delivery status.
    pub status: RegistrationStatus,
    /// For a 解除 registration: the status it had before the block (restored on unblock).
    pub before_block: Option<RegistrationStatus>,
    /// Asia/Tokyo date the current delivery run began.
    pub started_on: NaiveDate,
    /// How the family tells this child apart.
    pub child_name: Option<String>,
    /// Closed after a loss: never active again.
    pub closed: bool,
}

fn parse_date(s: &str) -> rusqlite::Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(super) fn from_row(r: &Row<'_>) -> rusqlite::Result<Registration> {
    let stage: String = r.get("stage")?;
    let status: String = r.get("status")?;
    let stage = Stage::from_db(&stage).unwrap_or(Stage::Child);
    let date: String = match stage {
        Stage::Pregnancy => r.get("due_date")?,
        Stage::Child => r.get("birthday")?,
    };
    let status = RegistrationStatus::from_db(&status).unwrap_or(RegistrationStatus::Stopped);
    let before_block = match status {
        RegistrationStatus::Blocked => Some(
            r.get::<_, Option<String>>("before_block")?
                .as_deref()
                .and_then(RegistrationStatus::from_db)
                .unwrap_or(RegistrationStatus::Active),
        ),
        _ => None,
    };
    Ok(Registration {
        id: r.get("id")?,
        user_id: r.get("user_id")?,
        subject: Subject::new(stage, parse_date(&date)?),
        // Parsed when it was registered.
        nickname: Nickname::from_trusted(r.get("nickname")?),
        status,
        before_block,
        started_on: parse_date(&r.get::<_, String>("started_on")?)?,
        child_name: r.get("child_name")?,
        closed: r.get::<_, Option<String>>("closed")?.is_some(),
    })
}

pub(super) const COLUMNS: &str = "r.id, r.user_id, r.stage, r.nickname, r.due_date, r.birthday, r.status, r.started_on,
     r.child_name, r.closed,
     (SELECT h.from_status FROM registration_status_history h
      WHERE h.registration_id = r.id AND h.to_status = 'blocked' ORDER BY h.id DESC LIMIT 1) AS before_block";

/// Creates an active registration owned by `user_id`, with its first history entry.
pub fn create(
    conn: &Connection,
    user_id: UserId,
    subject: Subject,
    nickname: &Nickname,
    child_name: Option<&Nickname>,
    today: NaiveDate,
    now: &str,
) -> Result<RegistrationId, StoreError> {
    let (due, birthday) = match subject {
        Subject::Pregnancy { due_date } => (Some(due_date.to_string()), None),
        Subject::Child { birthday } => (None, Some(birthday.to_string())),
    };
    conn.prepare_cached(
        "INSERT INTO registrations (user_id, stage, nickname, due_date, birthday, status, started_on, created_at, updated_at, child_name)
         VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6, ?7, ?7, ?8)",
    )?
    .execute(params![user_id, subject.stage().as_str(), nickname.as_str(), due, birthday, today.to_string(), now, child_name.map(Nickname::as_str)])?;
    let id = RegistrationId::new(conn.last_insert_rowid());
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
    id: RegistrationId,
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
    id: RegistrationId,
    to: RegistrationStatus,
    reason: &str,
    now: &str,
) -> Result<(), StoreError> {
    let from = get(conn, id)?.ok_or(StoreError::NotFound)?.status;
    if from == to {
        return Ok(());
    }
    // A registration closed after a loss is never active again, whoever asks.
    let moved = conn
        .prepare_cached(
            "UPDATE registrations SET status = ?2, updated_at = ?3
             WHERE id = ?1 AND NOT (?2 = 'active' AND closed IS NOT NULL)",
        )?
        .execute(params![id, to.as_str(), now])?;
    if moved == 0 {
        return Ok(());
    }
    record_history(conn, id, Some(from), to, reason, now)
}

/// One registration.
pub fn get(conn: &Connection, id: RegistrationId) -> Result<Option<Registration>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM registrations r WHERE r.id = ?1"
        ))?
        .query_row([id], from_row)
        .optional()?)
}

/// The registrations a user reads, oldest first.
pub fn for_reader(conn: &Connection, user_id: UserId) -> Result<Vec<Registration>, StoreError> {
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

/// The registrations a LINE user reads, oldest first (none for an unknown user).
pub fn for_line_user(
    conn: &Connection,
    line_user_id: &str,
) -> Result<Vec<Registration>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM registrations r
         JOIN registration_readers rr ON rr.registration_id = r.id
         JOIN line_users u ON u.id = rr.user_id
         WHERE u.line_user_id = ?1 ORDER BY r.id"
    ))?;
    let rows = stmt
        .query_map([line_user_id], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Moves a registration to a status (a no-op if it has it), recording why. Returns whether it
/// moved.
pub fn move_to(
    conn: &Connection,
    id: RegistrationId,
    to: RegistrationStatus,
    reason: &str,
    now: &str,
) -> Result<bool, StoreError> {
    let from = get(conn, id)?.ok_or(StoreError::NotFound)?.status;
    if from == to {
        return Ok(false);
    }
    set_status(conn, id, to, reason, now)?;
    Ok(get(conn, id)?.is_some_and(|r| r.status == to))
}

/// The child of a pregnancy registration was born: the same registration becomes the child's,
/// its delivery starting from `today` (the notices it took stay taken); the due date is no longer
/// needed and goes. A registration stopped
/// while waiting for the news becomes active. Returns whether it changed (not if it is no
/// longer a pregnancy, or closed).
pub fn born(
    conn: &Connection,
    id: RegistrationId,
    birthday: NaiveDate,
    today: NaiveDate,
    now: &str,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE registrations SET stage = 'child', birthday = ?2, due_date = NULL, started_on = ?3, updated_at = ?4
             WHERE id = ?1 AND stage = 'pregnancy' AND closed IS NULL",
        )?
        .execute(params![id, birthday.to_string(), today.to_string(), now])?;
    if changed == 0 {
        return Ok(false);
    }
    move_to(conn, id, RegistrationStatus::Active, "born", now)?;
    Ok(true)
}

/// A loss: the registration is closed for good and stopped (unless already ended), its
/// unused invitations dropped. Returns whether it was open.
pub fn close_for_loss(
    conn: &Connection,
    id: RegistrationId,
    now: &str,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE registrations SET closed = 'loss', updated_at = ?2 WHERE id = ?1 AND closed IS NULL",
        )?
        .execute(params![id, now])?;
    if changed == 0 {
        return Ok(false);
    }
    if get(conn, id)?.is_some_and(|r| r.status == RegistrationStatus::Active) {
        set_status(conn, id, RegistrationStatus::Stopped, "loss", now)?;
    }
    conn.prepare_cached("DELETE FROM invitations WHERE registration_id = ?1 AND used_at IS NULL")?
        .execute([id])?;
    Ok(true)
}

/// Changes the owner's nickname.
pub fn set_nickname(
    conn: &Connection,
    id: RegistrationId,
    nickname: &Nickname,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE registrations SET nickname = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, nickname.as_str(), now])?;
    Ok(())
}

/// Changes the child's name (`None` removes it).
pub fn set_child_name(
    conn: &Connection,
    id: RegistrationId,
    name: Option<&Nickname>,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE registrations SET child_name = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, name.map(Nickname::as_str), now])?;
    Ok(())
}

/// Changes the due date or birthday, as the registration's stage has it.
pub fn set_date(
    conn: &Connection,
    id: RegistrationId,
    date: NaiveDate,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE registrations SET
            due_date = CASE stage WHEN 'pregnancy' THEN ?2 ELSE due_date END,
            birthday = CASE stage WHEN 'child' THEN ?2 ELSE birthday END,
            updated_at = ?3
         WHERE id = ?1",
    )?
    .execute(params![id, date.to_string(), now])?;
    Ok(())
}

/// Delivery of a resumed registration restarts from `today` (no burst of missed days).
pub fn restart_on(
    conn: &Connection,
    id: RegistrationId,
    today: NaiveDate,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE registrations SET started_on = ?2 WHERE id = ?1")?
        .execute(params![id, today.to_string()])?;
    Ok(())
}
