//! Who is asking: a browser session (cookie, with a CSRF token for every form) or an API token
//! (`Authorization: Bearer`), and whether their role allows it. Failed logins are slowed down
//! and lock the account after `LOCK_AFTER` in a row.

use super::{ConsoleError, ConsoleState};
use crate::staff::{self, Role};
use crate::store::{self, staff as st};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The session cookie.
pub const SESSION_COOKIE: &str = "yorisoi_session";
/// The login form's CSRF cookie (there is no session yet).
pub const LOGIN_COOKIE: &str = "yorisoi_login";
/// Consecutive failed logins that lock an account.
pub const LOCK_AFTER: i64 = 5;
/// How long a failed login waits before it answers.
pub const FAILED_LOGIN_DELAY: Duration = Duration::from_secs(1);
/// A session ends this long after login, however active.
pub const SESSION_MAX: Duration = Duration::from_secs(12 * 3600);

/// How the request was authenticated.
#[derive(Debug, Clone)]
pub enum Via {
    /// A browser session.
    Session {
        /// Its cookie's hash.
        token_hash: String,
        /// Its CSRF token.
        csrf: String,
    },
    /// An API token.
    Token,
}

/// A signed-in staff member.
#[derive(Debug, Clone)]
pub struct Staff {
    /// The account.
    pub account: st::Account,
    /// How.
    pub via: Via,
}

impl Staff {
    /// Refuses unless the role includes `needed`.
    pub fn require(&self, needed: Role) -> Result<(), ConsoleError> {
        if self.account.role.allows(needed) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(needed.label()))
        }
    }

    /// Refuses a state change from a browser session without its CSRF token (an API token is
    /// not sent by browsers on their own, so it needs none).
    pub fn check_csrf(&self, given: Option<&str>) -> Result<(), ConsoleError> {
        match &self.via {
            Via::Token => Ok(()),
            Via::Session { csrf, .. } if given.is_some_and(|g| staff::same_secret(g, csrf)) => {
                Ok(())
            }
            Via::Session { .. } => Err(ConsoleError::Csrf),
        }
    }

    /// The session's CSRF token, for forms.
    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } => csrf,
            Via::Token => "",
        }
    }
}

/// No valid credentials: a 401 for the API, the login page for a browser.
#[derive(Debug)]
pub struct NotSignedIn {
    api: bool,
    next: String,
}

impl std::fmt::Display for NotSignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", ConsoleError::Unauthorized)
    }
}

impl ResponseError for NotSignedIn {
    fn error_response(&self) -> HttpResponse {
        if self.api {
            return ConsoleError::Unauthorized.error_response();
        }
        let next: String = url_encode(&self.next);
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("/login?next={next}")))
            .finish()
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The bearer token of a request, if it has one.
fn bearer(req: &HttpRequest) -> Option<String> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

impl FromRequest for Staff {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<ConsoleState>>().cloned();
        let bearer = bearer(req);
        let cookie = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string());
        let api = req.path().starts_with("/api/") || bearer.is_some();
        let next = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        Box::pin(async move {
            let refuse = || -> actix_web::Error {
                NotSignedIn {
                    api,
                    next: next.clone(),
                }
                .into()
            };
            let Some(state) = state else {
                return Err(refuse());
            };
            let now = state.clock.now();
            let idle = state.settings.session_idle.as_millis() as i64;
            let found = match (bearer, cookie) {
                (Some(token), _) => {
                    let hash = staff::secret_hash(&token);
                    state
                        .db
                        .run(move |c| {
                            Ok(
                                st::token_account(c, &hash, &store::ts(now))?.map(|account| {
                                    Staff {
                                        account,
                                        via: Via::Token,
                                    }
                                }),
                            )
                        })
                        .await
                }
                (None, Some(cookie)) => {
                    let hash = staff::secret_hash(&cookie);
                    state
                        .db
                        .run(move |c| {
                            Ok(st::session(
                                c,
                                &hash,
                                now.timestamp_millis(),
                                idle,
                                SESSION_MAX.as_millis() as i64,
                            )?
                            .map(|s| Staff {
                                account: s.account,
                                via: Via::Session {
                                    token_hash: hash,
                                    csrf: s.csrf,
                                },
                            }))
                        })
                        .await
                }
                (None, None) => Ok(None),
            };
            match found {
                Ok(Some(staff)) => Ok(staff),
                Ok(None) => Err(refuse()),
                Err(e) => Err(ConsoleError::Internal(e).into()),
            }
        })
    }
}

/// A cookie with the console's attributes: HttpOnly, SameSite=Strict, Secure when configured.
pub fn cookie(state: &ConsoleState, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.settings.secure_cookies)
        .finish()
}

/// The same cookie, expired.
pub fn removal(state: &ConsoleState, name: &'static str) -> Cookie<'static> {
    let mut c = cookie(state, name, String::new());
    c.make_removal();
    c
}

/// What a login attempt came to.
#[derive(Debug)]
pub enum LoginResult {
    /// Signed in: the cookie value to set.
    Session(String),
    /// Wrong login or password (the same answer for both).
    Refused,
    /// The account is locked or disabled.
    Locked,
}

/// Checks a login, records it in the audit log, and starts a session. A failure waits
/// [`FAILED_LOGIN_DELAY`] before it answers, and the `LOCK_AFTER`th in a row locks the account.
pub async fn login(
    state: &ConsoleState,
    login: String,
    password: String,
) -> Result<LoginResult, ConsoleError> {
    let now = state.clock.now();
    let account = {
        let l = login.clone();
        state.db.run(move |c| Ok(st::by_login(c, &l)?)).await?
    };
    // argon2 is slow on purpose: off the async threads.
    let hash = account.as_ref().map(|a| a.password_hash.clone());
    let ok =
        tokio::task::spawn_blocking(move || staff::verify_password(&password, hash.as_deref()))
            .await
            .map_err(|e| ConsoleError::Internal(e.into()))?;
    let at = store::ts(now);
    let result = state
        .db
        .run(move |c| {
            let tx = store::write_tx(c)?;
            let result = match account {
                Some(a) if a.locked || a.disabled => {
                    let action = if a.locked {
                        "login_locked"
                    } else {
                        "login_disabled"
                    };
                    st::audit(&tx, Some(a.id), &a.login, action, "", &at)?;
                    LoginResult::Locked
                }
                Some(a) if ok => {
                    st::login_succeeded(&tx, a.id, &at)?;
                    let secret = staff::new_secret();
                    st::start_session(
                        &tx,
                        &staff::secret_hash(&secret),
                        a.id,
                        &staff::new_secret(),
                        now.timestamp_millis(),
                    )?;
                    st::audit(&tx, Some(a.id), &a.login, "login", "", &at)?;
                    LoginResult::Session(secret)
                }
                Some(a) => {
                    let locked = st::login_failed(&tx, a.id, LOCK_AFTER, &at)?;
                    st::audit(&tx, Some(a.id), &a.login, "login_failed", "", &at)?;
                    if locked {
                        st::audit(
                            &tx,
                            Some(a.id),
                            &a.login,
                            "account_locked",
                            &format!("after {LOCK_AFTER} failed logins"),
                            &at,
                        )?;
                    }
                    LoginResult::Refused
                }
                None => {
                    st::audit(&tx, None, &login, "login_failed", "unknown login", &at)?;
                    LoginResult::Refused
                }
            };
            tx.commit()?;
            Ok(result)
        })
        .await?;
    if !matches!(result, LoginResult::Session(_)) {
        tokio::time::sleep(FAILED_LOGIN_DELAY).await;
    }
    Ok(result)
}
