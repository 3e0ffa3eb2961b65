//! What yorisoi created on LINE (`richmenus`) and what each reader has (`richmenu_links`).

use super::stage::Reading;
use crate::store::ts;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;

/// A menu yorisoi created and has not deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// LINE's id.
    pub rich_menu_id: String,
    /// The definition's name.
    pub name: String,
    /// The definition's hash when created.
    pub hash: String,
    /// Its image was uploaded.
    pub image_uploaded: bool,
    /// The menu its name stands for now.
    pub current: bool,
}

/// Menus created and not deleted.
pub fn recorded(conn: &Connection) -> rusqlite::Result<Vec<Recorded>> {
    let mut stmt = conn.prepare(
        "SELECT rich_menu_id, name, hash, image_uploaded, current FROM richmenus
         WHERE deleted_at IS NULL ORDER BY created_at, rich_menu_id",
    )?;
    stmt.query_map([], |r| {
        Ok(Recorded {
            rich_menu_id: r.get(0)?,
            name: r.get(1)?,
            hash: r.get(2)?,
            image_uploaded: r.get(3)?,
            current: r.get(4)?,
        })
    })?
    .collect()
}

/// The menus readers can be linked to: name → LINE's id (current, with their image).
pub fn current_menus(conn: &Connection) -> rusqlite::Result<BTreeMap<String, String>> {
    let mut stmt = conn.prepare(
        "SELECT name, rich_menu_id FROM richmenus
         WHERE current = 1 AND image_uploaded = 1 AND deleted_at IS NULL",
    )?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Records a menu just created on LINE (not current until its image and alias are there).
pub fn record_created(
    conn: &Connection,
    id: &str,
    name: &str,
    hash: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO richmenus (rich_menu_id, name, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, name, hash, ts(now)],
    )
    .map(drop)
}

/// Records that the menu's image is on LINE.
pub fn record_uploaded(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE richmenus SET image_uploaded = 1 WHERE rich_menu_id = ?1",
        [id],
    )
    .map(drop)
}

/// Makes `id` the menu its name stands for; the one it replaces is left for deletion.
pub fn make_current(conn: &mut Connection, name: &str, id: &str) -> rusqlite::Result<()> {
    let tx = crate::store::write_tx(conn)?;
    tx.execute("UPDATE richmenus SET current = 0 WHERE name = ?1", [name])?;
    tx.execute(
        "UPDATE richmenus SET current = 1 WHERE rich_menu_id = ?1",
        [id],
    )?;
    tx.commit()
}

/// Records a menu deleted on LINE (`on_line`), or found gone from LINE.
pub fn record_deleted(
    conn: &Connection,
    id: &str,
    on_line: bool,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE richmenus SET deleted_at = ?2, deleted_by = ?3, current = 0 WHERE rich_menu_id = ?1",
        params![id, ts(now), if on_line { "sync" } else { "line" }],
    )
    .map(drop)
}

/// Creations and deletions made on LINE since `since`.
pub fn changes_since(conn: &Connection, since: DateTime<Utc>) -> rusqlite::Result<u32> {
    conn.query_row(
        "SELECT (SELECT count(*) FROM richmenus WHERE created_at > ?1)
              + (SELECT count(*) FROM richmenus WHERE deleted_at > ?1 AND deleted_by = 'sync')",
        [ts(since)],
        |r| r.get(0),
    )
}

/// Marks every reader of a registration, and every reader linked to a menu, for a look by the
/// relinker (after menus changed).
pub fn mark_everyone(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO richmenu_links (user_id)
             SELECT DISTINCT user_id FROM registration_readers WHERE true
             ON CONFLICT (user_id) DO UPDATE SET dirty = 1, retry_after = NULL",
        [],
    )?;
    conn.execute(
        "UPDATE richmenu_links SET dirty = 1, retry_after = NULL WHERE linked_menu IS NOT NULL",
        [],
    )
}

/// A reader to look at.
#[derive(Debug, Clone)]
pub struct Marked {
    /// Internal id (the one logs may carry).
    pub user_id: i64,
    /// LINE's id (never logged).
    pub line_user_id: String,
    /// The menu linked now (`None`: the default).
    pub linked_menu: Option<String>,
    /// What decides their menu.
    pub reading: Reading,
}

/// Up to `limit` marked readers due now.
pub fn marked(
    conn: &Connection,
    now: DateTime<Utc>,
    limit: usize,
) -> rusqlite::Result<Vec<Marked>> {
    let mut stmt = conn.prepare_cached(
        "SELECT l.user_id, u.line_user_id, l.linked_menu, u.following,
            EXISTS (SELECT 1 FROM registration_readers rr JOIN registrations r ON r.id = rr.registration_id
                    WHERE rr.user_id = l.user_id AND rr.paused = 0 AND r.status = 'active'
                      AND r.closed IS NULL AND r.stage = 'pregnancy'),
            EXISTS (SELECT 1 FROM registration_readers rr JOIN registrations r ON r.id = rr.registration_id
                    WHERE rr.user_id = l.user_id AND rr.paused = 0 AND r.status = 'active'
                      AND r.closed IS NULL AND r.stage = 'child'),
            EXISTS (SELECT 1 FROM registration_readers rr WHERE rr.user_id = l.user_id)
         FROM richmenu_links l JOIN line_users u ON u.id = l.user_id
         WHERE l.dirty = 1 AND (l.retry_after IS NULL OR l.retry_after <= ?1)
         ORDER BY l.user_id LIMIT ?2",
    )?;
    stmt.query_map(params![ts(now), limit as i64], |r| {
        Ok(Marked {
            user_id: r.get(0)?,
            line_user_id: r.get(1)?,
            linked_menu: r.get(2)?,
            reading: Reading {
                following: r.get(3)?,
                active_pregnancy: r.get(4)?,
                active_child: r.get(5)?,
                any: r.get(6)?,
            },
        })
    })?
    .collect()
}

/// Records what the reader has now and clears the mark.
pub fn record_linked(
    conn: &Connection,
    user_id: i64,
    linked_menu: Option<&str>,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE richmenu_links SET linked_menu = ?2, dirty = 0, retry_after = NULL, linked_at = ?3
         WHERE user_id = ?1",
        params![user_id, linked_menu, ts(now)],
    )
    .map(drop)
}

/// Clears the mark without a change (nothing to do, or LINE refused for good).
pub fn clear_mark(conn: &Connection, user_id: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE richmenu_links SET dirty = 0, retry_after = NULL WHERE user_id = ?1",
        [user_id],
    )
    .map(drop)
}

/// Keeps the mark, to try again after `at`.
pub fn retry_after(conn: &Connection, user_id: i64, at: DateTime<Utc>) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE richmenu_links SET retry_after = ?2 WHERE user_id = ?1",
        params![user_id, ts(at)],
    )
    .map(drop)
}

/// Readers still marked (due now or later).
pub fn marked_count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT count(*) FROM richmenu_links WHERE dirty = 1",
        [],
        |r| r.get(0),
    )
}

/// The menu linked to a reader, as recorded.
pub fn linked_menu(conn: &Connection, user_id: i64) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT linked_menu FROM richmenu_links WHERE user_id = ?1",
        [user_id],
        |r| r.get(0),
    )
    .optional()
    .map(Option::flatten)
}

/// A reader erased from the chat still follows: their new row starts marked, holding the menu
/// LINE still shows them, so the relinker takes it back to the default.
pub fn carry_link(
    conn: &Connection,
    user_id: i64,
    linked_menu: Option<&str>,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO richmenu_links (user_id, linked_menu, dirty) VALUES (?1, ?2, 1)
         ON CONFLICT (user_id) DO UPDATE SET linked_menu = excluded.linked_menu, dirty = 1",
        params![user_id, linked_menu],
    )
    .map(drop)
}
