//! Staff accounts, their browser sessions and API tokens, and the audit log.

use super::StoreError;
use crate::staff::Role;
use rusqlite::{Connection, OptionalExtension, params};

/// A staff account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Internal id.
    pub id: i64,
    /// Login name.
    pub login: String,
    /// What it may do.
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Disabled by an admin: no login, no session, no token.
    pub disabled: bool,
    /// Consecutive failed logins.
    pub failed_logins: i64,
    /// Locked after repeated failures, until an admin unlocks it.
    pub locked: bool,
    /// When it was created.
    pub created_at: String,
}

const ACCOUNT: &str = "id, login, role, password_hash, disabled, failed_logins, locked, created_at";

fn account(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    let role: String = r.get(2)?;
    Ok(Account {
        id: r.get(0)?,
        login: r.get(1)?,
        // The CHECK constraint keeps the column to the three names.
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        password_hash: r.get(3)?,
        disabled: r.get(4)?,
        failed_logins: r.get(5)?,
        locked: r.get(6)?,
        created_at: r.get(7)?,
    })
}

/// Creates an account; `None` if the login is taken.
pub fn create(
    conn: &Connection,
    login: &str,
    role: Role,
    password_hash: &str,
    now: &str,
) -> Result<Option<i64>, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO staff (login, role, password_hash, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (login) DO NOTHING",
        )?
        .execute(params![login, role.as_str(), password_hash, now])?;
    Ok((n == 1).then(|| conn.last_insert_rowid()))
}

/// One account by login.
pub fn by_login(conn: &Connection, login: &str) -> Result<Option<Account>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {ACCOUNT} FROM staff WHERE login = ?1"))?
        .query_row([login], account)
        .optional()?)
}

/// One account by id.
pub fn by_id(conn: &Connection, id: i64) -> Result<Option<Account>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {ACCOUNT} FROM staff WHERE id = ?1"))?
        .query_row([id], account)
        .optional()?)
}

/// Every account, by login.
pub fn list(conn: &Connection) -> Result<Vec<Account>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {ACCOUNT} FROM staff ORDER BY login"))?
        .query_map([], account)?
        .collect::<Result<_, _>>()?)
}

/// Counts a failed login; locks the account once `lock_after` consecutive failures are reached.
/// Returns whether the account is now locked.
pub fn login_failed(
    conn: &Connection,
    id: i64,
    lock_after: i64,
    now: &str,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE staff SET failed_logins = failed_logins + 1,
               locked = locked OR failed_logins + 1 >= ?2, updated_at = ?3
             WHERE id = ?1 RETURNING locked",
        )?
        .query_row(params![id, lock_after, now], |r| r.get(0))?)
}

/// A successful login clears the failure count.
pub fn login_succeeded(conn: &Connection, id: i64, now: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE staff SET failed_logins = 0, updated_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

/// Sets `disabled`, `locked` (clearing the failures when unlocking), the role or the password.
pub enum Change<'a> {
    /// Disable (true) or enable.
    Disabled(bool),
    /// Unlock after repeated failures.
    Unlock,
    /// A new role.
    Role(Role),
    /// A new password hash.
    Password(&'a str),
}

/// Applies a change to an account; false if there is no such account. Disabling an account or
/// changing its role or password ends its sessions.
pub fn change(
    conn: &Connection,
    id: i64,
    change: Change<'_>,
    now: &str,
) -> Result<bool, StoreError> {
    let n = match change {
        Change::Disabled(d) => conn
            .prepare_cached("UPDATE staff SET disabled = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![id, d, now])?,
        Change::Unlock => conn
            .prepare_cached(
                "UPDATE staff SET locked = 0, failed_logins = 0, updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![id, now])?,
        Change::Role(r) => conn
            .prepare_cached("UPDATE staff SET role = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![id, r.as_str(), now])?,
        Change::Password(h) => conn
            .prepare_cached("UPDATE staff SET password_hash = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![id, h, now])?,
    };
    if n == 1 && !matches!(change, Change::Unlock) {
        end_sessions(conn, id)?;
    }
    Ok(n == 1)
}

/// A live session and its account.
#[derive(Debug, Clone)]
pub struct Session {
    /// The account.
    pub account: Account,
    /// The session's form token.
    pub csrf: String,
}

/// Starts a session.
pub fn start_session(
    conn: &Connection,
    token_hash: &str,
    staff_id: i64,
    csrf: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO staff_sessions (token_hash, staff_id, csrf, created_ms, last_seen_ms)
         VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute(params![token_hash, staff_id, csrf, now_ms])?;
    Ok(())
}

/// The session with this token hash if it is live (seen within `idle_ms`, younger than
/// `max_ms`, its account enabled), touching it; an expired one is deleted.
pub fn session(
    conn: &Connection,
    token_hash: &str,
    now_ms: i64,
    idle_ms: i64,
    max_ms: i64,
) -> Result<Option<Session>, StoreError> {
    let found = conn
        .prepare_cached(
            "SELECT staff_id, csrf, created_ms, last_seen_ms FROM staff_sessions WHERE token_hash = ?1",
        )?
        .query_row([token_hash], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .optional()?;
    let Some((staff_id, csrf, created, seen)) = found else {
        return Ok(None);
    };
    if now_ms - seen > idle_ms || now_ms - created > max_ms {
        end_session(conn, token_hash)?;
        return Ok(None);
    }
    let Some(account) = by_id(conn, staff_id)?.filter(|a| !a.disabled) else {
        return Ok(None);
    };
    conn.prepare_cached("UPDATE staff_sessions SET last_seen_ms = ?2 WHERE token_hash = ?1")?
        .execute(params![token_hash, now_ms])?;
    Ok(Some(Session { account, csrf }))
}

/// Ends one session (logout).
pub fn end_session(conn: &Connection, token_hash: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM staff_sessions WHERE token_hash = ?1")?
        .execute([token_hash])?;
    Ok(())
}

/// Ends every session of an account.
pub fn end_sessions(conn: &Connection, staff_id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM staff_sessions WHERE staff_id = ?1")?
        .execute([staff_id])?;
    Ok(())
}

/// Deletes sessions idle for longer than `idle_ms`.
pub fn purge_sessions(conn: &Connection, now_ms: i64, idle_ms: i64) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM staff_sessions WHERE last_seen_ms < ?1")?
        .execute([now_ms - idle_ms])?)
}

/// An API token's record (never the token).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Token {
    /// Its id (to revoke it).
    pub id: i64,
    /// Its account's login.
    pub login: String,
    /// When it was made.
    pub created_at: String,
    /// When it was last used.
    pub last_used_at: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<String>,
}

/// Records a new token for an account; returns its id.
pub fn create_token(
    conn: &Connection,
    staff_id: i64,
    token_hash: &str,
    now: &str,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO staff_tokens (staff_id, token_hash, created_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![staff_id, token_hash, now])?;
    Ok(conn.last_insert_rowid())
}

/// The account of an unrevoked token on an enabled account, noting its use.
pub fn token_account(
    conn: &Connection,
    token_hash: &str,
    now: &str,
) -> Result<Option<Account>, StoreError> {
    let found: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT id, staff_id FROM staff_tokens WHERE token_hash = ?1 AND revoked_at IS NULL",
        )?
        .query_row([token_hash], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((token, staff_id)) = found else {
        return Ok(None);
    };
    let account = by_id(conn, staff_id)?.filter(|a| !a.disabled);
    if account.is_some() {
        conn.prepare_cached("UPDATE staff_tokens SET last_used_at = ?2 WHERE id = ?1")?
            .execute(params![token, now])?;
    }
    Ok(account)
}

/// Tokens, optionally of one account.
pub fn tokens(conn: &Connection, staff_id: Option<i64>) -> Result<Vec<Token>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT t.id, s.login, t.created_at, t.last_used_at, t.revoked_at
             FROM staff_tokens t JOIN staff s ON s.id = t.staff_id
             WHERE ?1 IS NULL OR t.staff_id = ?1 ORDER BY t.id",
        )?
        .query_map([staff_id], |r| {
            Ok(Token {
                id: r.get(0)?,
                login: r.get(1)?,
                created_at: r.get(2)?,
                last_used_at: r.get(3)?,
                revoked_at: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?)
}

/// Revokes a token; returns its account's login if it was live.
pub fn revoke_token(conn: &Connection, id: i64, now: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE staff_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL
             RETURNING (SELECT login FROM staff WHERE staff.id = staff_tokens.staff_id)",
        )?
        .query_row(params![id, now], |r| r.get(0))
        .optional()?)
}

/// An entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    /// Its id.
    pub id: i64,
    /// When (UTC, RFC 3339).
    pub at: String,
    /// Who (the login; as typed for a failed login of an unknown account).
    pub login: String,
    /// What (`login`, `login_failed`, `broadcast_created`…).
    pub action: String,
    /// Details: ids and counts, never personal data of parents.
    pub detail: String,
}

/// Records a staff action.
pub fn audit(
    conn: &Connection,
    staff_id: Option<i64>,
    login: &str,
    action: &str,
    detail: &str,
    now: &str,
) -> Result<(), StoreError> {
    // A login typed at the form is untrusted: keep it short.
    let login: String = login.chars().take(64).collect();
    conn.prepare_cached(
        "INSERT INTO audit_log (at, staff_id, login, action, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![now, staff_id, login, action, detail])?;
    Ok(())
}

/// Audit entries, newest first, filtered by action and by login (exact), before id `before`.
pub fn audit_entries(
    conn: &Connection,
    action: Option<&str>,
    login: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEntry>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, at, login, action, detail FROM audit_log
             WHERE (?1 IS NULL OR action = ?1) AND (?2 IS NULL OR login = ?2)
               AND (?3 IS NULL OR id < ?3)
             ORDER BY id DESC LIMIT ?4",
        )?
        .query_map(params![action, login, before, limit], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at: r.get(1)?,
                login: r.get(2)?,
                action: r.get(3)?,
                detail: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?)
}
