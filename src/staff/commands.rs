//! `yorisoi staff …`: accounts and API tokens from the operator's terminal. A generated password
//! or a token is printed once, alone on the last line, so a script can take it with `tail -n1`.

use super::manage::{self, Actor};
use super::{Role, generate_password, hash_password, new_api_token, parse_login, secret_hash};
use crate::store::staff as st;
use rusqlite::Connection;

/// What a command printed, and whether it succeeded.
pub struct Output {
    /// Lines for stdout.
    pub lines: Vec<String>,
    /// A problem for stderr (the command fails).
    pub error: Option<String>,
}

impl Output {
    fn ok(lines: Vec<String>) -> Self {
        Self { lines, error: None }
    }
    fn err(e: impl Into<String>) -> Self {
        Self {
            lines: Vec::new(),
            error: Some(e.into()),
        }
    }
}

/// Creates an account; prints its password (generated unless given) on the last line.
pub fn add(
    conn: &mut Connection,
    login: &str,
    role: Role,
    password: Option<String>,
    now: &str,
) -> anyhow::Result<Output> {
    let login = match parse_login(login) {
        Ok(l) => l,
        Err(_) => {
            return Ok(Output::err(
                "a login is 3 to 32 of a-z 0-9 . _ - (starting with a letter or digit)",
            ));
        }
    };
    let given = password.is_some();
    let password = match password {
        Some(p) => {
            let p = p.trim_end_matches(['\r', '\n']).to_string();
            if super::check_password(&p).is_err() {
                return Ok(Output::err(format!(
                    "the password must be {} to 256 characters",
                    super::MIN_PASSWORD
                )));
            }
            p
        }
        None => generate_password(),
    };
    let hash = hash_password(&password)?;
    if manage::add(conn, &Actor::terminal(), &login, role, &hash, now)?.is_none() {
        return Ok(Output::err(format!(
            "there is already a staff account {login:?}"
        )));
    }
    let mut lines = vec![format!("created staff account {login} ({})", role.as_str())];
    if !given {
        lines.push("its password follows, shown this once:".into());
        lines.push(password);
    }
    Ok(Output::ok(lines))
}

/// Lists the accounts.
pub fn list(conn: &Connection) -> anyhow::Result<Output> {
    let accounts = st::list(conn)?;
    let tokens = st::tokens(conn, None)?;
    let mut lines = vec![format!(
        "{:<32} {:<7} {:<9} {:>6}  created",
        "login", "role", "status", "tokens"
    )];
    for a in accounts {
        let status = if a.disabled {
            "disabled"
        } else if a.locked {
            "locked"
        } else {
            "active"
        };
        let live = tokens
            .iter()
            .filter(|t| t.login == a.login && t.revoked_at.is_none())
            .count();
        lines.push(format!(
            "{:<32} {:<7} {:<9} {:>6}  {}",
            a.login,
            a.role.as_str(),
            status,
            live,
            a.created_at
        ));
    }
    Ok(Output::ok(lines))
}

/// Disables, enables or unlocks an account.
pub fn change(
    conn: &mut Connection,
    login: &str,
    change: st::Change<'_>,
    now: &str,
) -> anyhow::Result<Output> {
    let done = match change {
        st::Change::Disabled(true) => "disabled (its sessions ended; its tokens no longer work)",
        st::Change::Disabled(false) => "enabled",
        st::Change::Unlock => "unlocked",
        st::Change::Role(_) => "given a new role",
        st::Change::Password(_) => "given a new password",
    };
    if !manage::change(conn, &Actor::terminal(), login, change, now)? {
        return Ok(Output::err(format!("no staff account {login:?}")));
    }
    Ok(Output::ok(vec![format!("staff account {login} {done}")]))
}

/// Makes an API token for an account; prints it on the last line.
pub fn token_create(conn: &mut Connection, login: &str, now: &str) -> anyhow::Result<Output> {
    let Some(a) = st::by_login(conn, login)? else {
        return Ok(Output::err(format!("no staff account {login:?}")));
    };
    if a.disabled {
        return Ok(Output::err(format!("staff account {login:?} is disabled")));
    }
    let token = new_api_token();
    let Some(id) =
        manage::create_token(conn, &Actor::terminal(), login, &secret_hash(&token), now)?
    else {
        return Ok(Output::err(format!("no staff account {login:?}")));
    };
    Ok(Output::ok(vec![
        format!(
            "token {id} for {} ({}); use it as `Authorization: Bearer TOKEN`; shown this once:",
            a.login,
            a.role.as_str()
        ),
        token,
    ]))
}

/// Lists tokens (never the tokens themselves).
pub fn token_list(conn: &Connection, login: Option<&str>) -> anyhow::Result<Output> {
    let staff_id = match login {
        Some(l) => match st::by_login(conn, l)? {
            Some(a) => Some(a.id),
            None => return Ok(Output::err(format!("no staff account {l:?}"))),
        },
        None => None,
    };
    let mut lines = vec![format!(
        "{:>5}  {:<32} {:<26} {:<26} revoked",
        "id", "login", "created", "last used"
    )];
    for t in st::tokens(conn, staff_id)? {
        lines.push(format!(
            "{:>5}  {:<32} {:<26} {:<26} {}",
            t.id,
            t.login,
            t.created_at,
            t.last_used_at.unwrap_or_else(|| "-".into()),
            t.revoked_at.unwrap_or_else(|| "-".into())
        ));
    }
    Ok(Output::ok(lines))
}

/// Revokes a token.
pub fn token_revoke(conn: &mut Connection, id: i64, now: &str) -> anyhow::Result<Output> {
    let Some(login) = manage::revoke_token(conn, &Actor::terminal(), id, now)? else {
        return Ok(Output::err(format!("no live token {id}")));
    };
    Ok(Output::ok(vec![format!("token {id} of {login} revoked")]))
}
