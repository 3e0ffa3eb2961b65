//! Who reads a registration: its owner and the family members it is shared with (each with
//! their own nickname and their own pause), and the invitations that share it.

use super::StoreError;
use super::registrations::{self, Registration};
use crate::domain::{FamilyReader, InvitationCheck, Nickname, ReaderRole, RegistrationId, UserId};
use rusqlite::{Connection, OptionalExtension, params};

/// How long an invitation can be used.
pub const INVITATION_DAYS: i64 = 7;

/// A registration as one of its readers reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The registration.
    pub registration: Registration,
    /// Owner or family.
    pub role: ReaderRole,
    /// A family reader's own nickname.
    pub nickname: Option<String>,
    /// This reader stopped their own delivery.
    pub paused: bool,
    /// For its owner: the family members reading it.
    pub family: Vec<FamilyReader>,
}

fn role_of(s: &str) -> ReaderRole {
    match s {
        "owner" => ReaderRole::Owner,
        _ => ReaderRole::Family,
    }
}

/// The registrations a user reads, oldest first, with how they read them.
pub fn readings(conn: &Connection, user_id: UserId) -> Result<Vec<Reading>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {}, rr.role AS reader_role, rr.nickname AS reader_nickname,
                rr.paused AS reader_paused
         FROM registrations r
         JOIN registration_readers rr ON rr.registration_id = r.id
         WHERE rr.user_id = ?1 ORDER BY r.id",
        registrations::COLUMNS
    ))?;
    let rows = stmt
        .query_map([user_id], |r| {
            Ok((
                registrations::from_row(r)?,
                role_of(&r.get::<_, String>("reader_role")?),
                r.get::<_, Option<String>>("reader_nickname")?,
                r.get::<_, bool>("reader_paused")?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (registration, role, nickname, paused) in rows {
        let family = if role == ReaderRole::Owner {
            family_of(conn, registration.id)?
        } else {
            Vec::new()
        };
        out.push(Reading {
            registration,
            role,
            nickname,
            paused,
            family,
        });
    }
    Ok(out)
}

/// The family members reading a registration, in the order they joined.
pub fn family_of(conn: &Connection, id: RegistrationId) -> Result<Vec<FamilyReader>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, COALESCE(nickname, '') FROM registration_readers
         WHERE registration_id = ?1 AND role = 'family' ORDER BY added_at, user_id",
    )?;
    let rows = stmt
        .query_map([id], |r| {
            Ok(FamilyReader {
                user: r.get(0)?,
                nickname: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// How `user_id` reads a registration, if they do.
pub fn role(
    conn: &Connection,
    id: RegistrationId,
    user_id: UserId,
) -> Result<Option<ReaderRole>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT role FROM registration_readers WHERE registration_id = ?1 AND user_id = ?2",
        )?
        .query_row(params![id, user_id], |r| r.get::<_, String>(0))
        .optional()?
        .map(|s| role_of(&s)))
}

/// Pauses or resumes one reader's own delivery. Returns whether it changed.
pub fn set_paused(
    conn: &Connection,
    id: RegistrationId,
    user_id: UserId,
    paused: bool,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE registration_readers SET paused = ?3
             WHERE registration_id = ?1 AND user_id = ?2 AND paused != ?3",
        )?
        .execute(params![id, user_id, paused])?
        == 1)
}

/// Changes a family reader's own nickname.
pub fn set_reader_nickname(
    conn: &Connection,
    id: RegistrationId,
    user_id: UserId,
    nickname: &Nickname,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE registration_readers SET nickname = ?3 WHERE registration_id = ?1 AND user_id = ?2",
    )?
    .execute(params![id, user_id, nickname.as_str()])?;
    Ok(())
}

/// Records an invitation to read `regs` (one row each, one code), valid for 7 days.
pub fn invite(
    conn: &Connection,
    regs: &[RegistrationId],
    code_hash: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    let expires = super::ts(now + chrono::Duration::days(INVITATION_DAYS));
    let now = super::ts(now);
    let mut stmt = conn.prepare_cached(
        "INSERT INTO invitations (registration_id, code_hash, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for id in regs {
        stmt.execute(params![id, code_hash, now, expires])?;
    }
    Ok(())
}

/// What an invitation is to `user_id` now.
pub fn check(
    conn: &Connection,
    code_hash: &str,
    user_id: UserId,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<InvitationCheck, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.registration_id, i.expires_at, i.used_at IS NOT NULL, r.user_id, r.nickname,
                r.closed IS NOT NULL,
                EXISTS (SELECT 1 FROM registration_readers rr
                        WHERE rr.registration_id = i.registration_id AND rr.user_id = ?2)
         FROM invitations i JOIN registrations r ON r.id = i.registration_id
         WHERE i.code_hash = ?1 ORDER BY i.registration_id",
    )?;
    type Row = (RegistrationId, String, bool, UserId, String, bool, bool);
    let rows: Vec<Row> = stmt
        .query_map(params![code_hash, user_id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let open: Vec<&Row> = rows.iter().filter(|r| !r.5).collect();
    let Some(first) = open.first() else {
        return Ok(InvitationCheck::Unknown);
    };
    if open.iter().any(|r| r.2) {
        return Ok(InvitationCheck::Used);
    }
    if first.1 <= super::ts(now) {
        return Ok(InvitationCheck::Expired);
    }
    Ok(InvitationCheck::Valid {
        code_hash: code_hash.to_owned(),
        registrations: open.iter().map(|r| r.0).collect(),
        owner: first.4.clone(),
        own: first.3 == user_id,
        already: open.iter().all(|r| r.6),
    })
}

/// Uses a valid invitation: `user_id` reads its registrations as family, by `nickname`.
/// Returns how many registrations they joined (0 if it is no longer valid for them).
pub fn join(
    conn: &Connection,
    code_hash: &str,
    user_id: UserId,
    nickname: &Nickname,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, StoreError> {
    let InvitationCheck::Valid {
        registrations,
        own: false,
        ..
    } = check(conn, code_hash, user_id, now)?
    else {
        return Ok(0);
    };
    let now = super::ts(now);
    let mut n = 0;
    for id in &registrations {
        n += conn
            .prepare_cached(
                "INSERT INTO registration_readers (registration_id, user_id, role, added_at, nickname)
                 VALUES (?1, ?2, 'family', ?3, ?4) ON CONFLICT DO NOTHING",
            )?
            .execute(params![id, user_id, now, nickname.as_str()])?;
    }
    conn.prepare_cached("UPDATE invitations SET used_by = ?2, used_at = ?3 WHERE code_hash = ?1")?
        .execute(params![code_hash, user_id, now])?;
    Ok(n)
}

/// Ends a family member's reading of the owner's registrations `regs`. Returns how many.
pub fn revoke(
    conn: &Connection,
    owner: UserId,
    reader: UserId,
    regs: &[RegistrationId],
) -> Result<usize, StoreError> {
    let mut n = 0;
    for id in regs {
        n += conn
            .prepare_cached(
                "DELETE FROM registration_readers
                 WHERE registration_id = ?1 AND user_id = ?2 AND role = 'family'
                   AND EXISTS (SELECT 1 FROM registrations r WHERE r.id = ?1 AND r.user_id = ?3)",
            )?
            .execute(params![id, reader, owner])?;
    }
    Ok(n)
}
