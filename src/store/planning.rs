//! What planning a day reads: every active registration of a reader who follows the account, and
//! the notices registrations have taken whose window is still open. Streamed through callbacks:
//! planning reads a million rows and keeps only what it needs.

use super::StoreError;
use crate::domain::Stage;
use chrono::NaiveDate;
use rusqlite::Connection;

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

/// Calls `f` for every active registration of every following reader, in registration order.
/// A stored date that cannot be read is an error naming the registration, never the date
/// (personal data).
pub fn active_registrations(
    conn: &Connection,
    mut f: impl FnMut(ActiveRow),
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT rr.user_id, r.id, r.stage, COALESCE(r.due_date, r.birthday), r.started_on
         FROM registrations r
         JOIN registration_readers rr ON rr.registration_id = r.id
         JOIN line_users u ON u.id = rr.user_id
         WHERE r.status = 'active' AND u.following = 1
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
