//! What the console's 職員アカウント page and `yorisoi staff` both do to accounts and tokens:
//! each change in one transaction with its audit entry, whoever makes it.

use super::Role;
use crate::store::staff::{self as st, Change};
use crate::store::{self, StoreError};
use rusqlite::Connection;

/// Who makes a change: a signed-in staff member, or the operator at the terminal.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The staff member's id (`None`: the terminal).
    pub id: Option<i64>,
    /// Their login, as the audit log names them.
    pub login: String,
}

impl Actor {
    /// The operator at the terminal (`yorisoi staff …`).
    pub fn terminal() -> Self {
        Self {
            id: None,
            login: "(cli)".into(),
        }
    }

    /// A signed-in staff member.
    pub fn staff(account: &st::Account) -> Self {
        Self {
            id: Some(account.id),
            login: account.login.clone(),
        }
    }

    fn audit(
        &self,
        conn: &Connection,
        action: &str,
        detail: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        st::audit(conn, self.id, &self.login, action, detail, now)
    }
}

/// Creates an account with a password hash; `None` if the login is taken.
pub fn add(
    conn: &mut Connection,
    by: &Actor,
    login: &str,
    role: Role,
    password_hash: &str,
    now: &str,
) -> Result<Option<i64>, StoreError> {
    let tx = store::write_tx(conn)?;
    let id = st::create(&tx, login, role, password_hash, now)?;
    if id.is_some() {
        by.audit(
            &tx,
            "staff_added",
            &format!("{login} role={}", role.as_str()),
            now,
        )?;
        tx.commit()?;
    }
    Ok(id)
}

/// Changes an account by login; false if there is no such account.
pub fn change(
    conn: &mut Connection,
    by: &Actor,
    login: &str,
    change: Change<'_>,
    now: &str,
) -> Result<bool, StoreError> {
    let Some(a) = st::by_login(conn, login)? else {
        return Ok(false);
    };
    let action = match change {
        Change::Disabled(true) => "staff_disabled",
        Change::Disabled(false) => "staff_enabled",
        Change::Unlock => "staff_unlocked",
        Change::Role(_) => "staff_role",
        Change::Password(_) => "staff_password",
    };
    let tx = store::write_tx(conn)?;
    st::change(&tx, a.id, change, now)?;
    by.audit(&tx, action, &a.login, now)?;
    tx.commit()?;
    Ok(true)
}

/// Records an API token (its hash) for an account by login; its id, or `None` if there is no
/// such account.
pub fn create_token(
    conn: &mut Connection,
    by: &Actor,
    login: &str,
    token_hash: &str,
    now: &str,
) -> Result<Option<i64>, StoreError> {
    let Some(a) = st::by_login(conn, login)? else {
        return Ok(None);
    };
    let tx = store::write_tx(conn)?;
    let id = st::create_token(&tx, a.id, token_hash, now)?;
    by.audit(
        &tx,
        "token_created",
        &format!("token={id} for {}", a.login),
        now,
    )?;
    tx.commit()?;
    Ok(Some(id))
}

/// Revokes a token; its account's login, or `None` if no live token has this id.
pub fn revoke_token(
    conn: &mut Connection,
    by: &Actor,
    id: i64,
    now: &str,
) -> Result<Option<String>, StoreError> {
    let tx = store::write_tx(conn)?;
    let login = st::revoke_token(&tx, id, now)?;
    if let Some(l) = &login {
        by.audit(&tx, "token_revoked", &format!("token={id} of {l}"), now)?;
        tx.commit()?;
    }
    Ok(login)
}
