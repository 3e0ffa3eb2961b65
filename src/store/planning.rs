//! What planning a day reads: every active registration of a reader who follows the account, and
//! the notices registrations have taken whose window is still open. Streamed through callbacks:
//! planning reads a million rows and keeps only what it needs.

use super::StoreError;
use crate::domain::Stage;
use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, params};

/// One registration to plan, read by one of its readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveRow {
    /// The reader.
    pub user_id: i64,
    /// The registration.
    pub registration_id: i64,
    /// Pregnancy or child.
    pub stage: Stage,
    /// Due date or birthday.
    pub date: NaiveDate,
    /// The date its current delivery run began.
    pub started_on: NaiveDate,
}

/// Calls `f` for every active registration of every following reader, in registration order:
/// not a registration closed for good (a loss), not a reader who paused their own delivery.
/// A stored date that cannot be read is an error naming the registration, never the date
/// (personal data).
pub fn active_registrations(
    conn: &Connection,
    mut f: impl FnMut(ActiveRow),
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT rr.user_id, r.id, r.stage, CASE r.stage WHEN 'pregnancy' THEN r.due_date ELSE r.birthday END, r.started_on
         FROM registrations r
         JOIN registration_readers rr ON rr.registration_id = r.id
         JOIN line_users u ON u.id = rr.user_id
         WHERE r.status = 'active' AND r.closed IS NULL AND rr.paused = 0 AND u.following = 1
         ORDER BY r.id",
    )?;
    let mut q = stmt.query([])?;
    while let Some(r) = q.next()? {
        let registration_id: i64 = r.get(1)?;
        let stage = match r.get_ref(2)?.as_str()? {
            "pregnancy" => Stage::Pregnancy,
            _ => Stage::Child,
        };
        let date = |i: usize| -> Result<NaiveDate, StoreError> {
            super::read_date(r.get_ref(i)?.as_str()?).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "registration {registration_id}: a stored date is not a date"
                ))
            })
        };
        f(ActiveRow {
            user_id: r.get(0)?,
            registration_id,
            stage,
            date: date(3)?,
            started_on: date(4)?,
        });
    }
    Ok(())
}

/// Calls `f` with (registration, notice id) for every notice taken whose window is still open
/// on `date`.
pub fn open_taken_notices(
    conn: &Connection,
    date: NaiveDate,
    mut f: impl FnMut(i64, &str),
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT registration_id, notice_id FROM registration_notices WHERE open_until >= ?1",
    )?;
    let mut q = stmt.query([date.to_string()])?;
    while let Some(r) = q.next()? {
        f(r.get_ref(0)?.as_i64()?, r.get_ref(1)?.as_str()?);
    }
    Ok(())
}

/// A registration as one of its readers reads it: what rendering a push needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderView {
    /// How the messages address this reader: a family reader's own name, else the owner's.
    pub nickname: String,
    /// Pregnancy or child.
    pub stage: Stage,
    /// Due date or birthday.
    pub date: NaiveDate,
    /// The family's name for the child, when given.
    pub child_name: Option<String>,
    /// Whether this reader owns the registration.
    pub owner: bool,
}

/// How `user_id` reads registration `registration_id`; `None` if they are not one of its
/// readers (any more).
pub fn reader_view(
    conn: &Connection,
    registration_id: i64,
    user_id: i64,
) -> Result<Option<ReaderView>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT COALESCE(rr.nickname, r.nickname), r.stage, CASE r.stage WHEN 'pregnancy' THEN r.due_date ELSE r.birthday END,
                    r.child_name, rr.role = 'owner'
             FROM registrations r
             JOIN registration_readers rr ON rr.registration_id = r.id AND rr.user_id = ?2
             WHERE r.id = ?1",
        )?
        .query_row(params![registration_id, user_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })
        .optional()?;
    let Some((nickname, stage, date, child_name, owner)) = row else {
        return Ok(None);
    };
    let date = super::read_date(&date).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "registration {registration_id}: a stored date is not a date"
        ))
    })?;
    Ok(Some(ReaderView {
        nickname,
        stage: if stage == "pregnancy" {
            Stage::Pregnancy
        } else {
            Stage::Child
        },
        date,
        child_name: child_name.filter(|n| !n.trim().is_empty()),
        owner,
    }))
}

/// Whether `user_id` still receives registration `registration_id`: active, not closed, and
/// not paused by this reader.
pub fn still_reads(
    conn: &Connection,
    registration_id: i64,
    user_id: i64,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM registrations r
             JOIN registration_readers rr ON rr.registration_id = r.id AND rr.user_id = ?2
             WHERE r.id = ?1 AND r.status = 'active' AND r.closed IS NULL AND rr.paused = 0)",
        )?
        .query_row(params![registration_id, user_id], |r| r.get(0))?)
}
