//! LINE users and their conversation state.

use super::StoreError;
use crate::domain::{LineUserId, UserId};
use rusqlite::{Connection, OptionalExtension, params};

/// Finds or creates the user row for a LINE user id; returns the internal id.
pub fn upsert(
    conn: &Connection,
    line_user_id: &LineUserId,
    now: &str,
) -> Result<UserId, StoreError> {
    let line_user_id = line_user_id.as_str();
    conn.prepare_cached(
        "INSERT INTO line_users (line_user_id, following, created_at, updated_at)
         VALUES (?1, 1, ?2, ?2) ON CONFLICT(line_user_id) DO NOTHING",
    )?
    .execute(params![line_user_id, now])?;
    Ok(conn
        .prepare_cached("SELECT id FROM line_users WHERE line_user_id = ?1")?
        .query_row([line_user_id], |r| r.get(0))?)
}

/// Records whether the reader follows the account (unfollow = blocked).
pub fn set_following(
    conn: &Connection,
    user_id: UserId,
    following: bool,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE line_users SET following = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![user_id, following, now])?;
    Ok(())
}

/// The LINE user id of an internal user id.
pub fn line_user_id(conn: &Connection, user_id: UserId) -> Result<String, StoreError> {
    conn.prepare_cached("SELECT line_user_id FROM line_users WHERE id = ?1")?
        .query_row([user_id], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// Whether the user follows the account (has not blocked it).
pub fn following(conn: &Connection, user_id: UserId) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT following FROM line_users WHERE id = ?1")?
        .query_row([user_id], |r| r.get(0))
        .optional()?
        .unwrap_or(false))
}

/// The stored conversation state (JSON), if any.
pub fn conversation(conn: &Connection, user_id: UserId) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT state FROM conversations WHERE user_id = ?1")?
        .query_row([user_id], |r| r.get(0))
        .optional()?)
}

/// Saves the conversation state (JSON).
pub fn save_conversation(
    conn: &Connection,
    user_id: UserId,
    state: &str,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO conversations (user_id, state, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(user_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
    )?
    .execute(params![user_id, state, now])?;
    Ok(())
}

/// A LINE user by their LINE id: their internal id and whether they follow the account.
pub fn find(conn: &Connection, line_user_id: &str) -> Result<Option<(UserId, bool)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id, following FROM line_users WHERE line_user_id = ?1")?
        .query_row([line_user_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// The row of a reader who erased their data from the chat and still follows: only their LINE
/// user id, so the goodbye can be sent. Not a new follow: the follow the insert counted in
/// `daily_counts` is taken back.
pub fn recreate_after_erase(
    conn: &Connection,
    line_user_id: &LineUserId,
    now: &str,
) -> Result<UserId, StoreError> {
    let id = upsert(conn, line_user_id, now)?;
    conn.prepare_cached(
        "UPDATE daily_counts SET count = count - 1
         WHERE day = date(?1, '+9 hours') AND metric = 'follow' AND count > 0",
    )?
    .execute([now])?;
    Ok(id)
}
