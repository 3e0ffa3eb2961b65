//! Staff accounts: roles, password hashing (argon2id), and the random secrets behind sessions
//! and API tokens. The SQL lives in `store/staff.rs`; the console's HTTP side in `console/`.

pub mod commands;
pub mod manage;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// What a staff account may do. Each role includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads statistics and the content.
    Viewer,
    /// Also composes, sends and cancels broadcasts.
    Sender,
    /// Also manages staff, reads the audit log and exports personal data.
    Admin,
}

impl Role {
    /// Parses the stored or typed name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Self::Viewer),
            "sender" => Some(Self::Sender),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Sender => "sender",
            Self::Admin => "admin",
        }
    }
    /// The name staff read.
    pub fn label(self) -> &'static str {
        match self {
            Self::Viewer => "閲覧者",
            Self::Sender => "配信者",
            Self::Admin => "管理者",
        }
    }
    /// Whether this role includes `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

/// A login name that is not acceptable, and why (in Japanese, shown to the admin).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadLogin(pub &'static str);

/// Checks a new login name: 3–32 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn parse_login(s: &str) -> Result<String, BadLogin> {
    let s = s.trim();
    if s.len() < 3 || s.len() > 32 {
        return Err(BadLogin("ログイン名は3〜32文字にしてください。"));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        || !s.starts_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Err(BadLogin(
            "ログイン名に使えるのは半角の英小文字・数字・「.」「_」「-」です（先頭は英数字）。",
        ));
    }
    Ok(s.to_string())
}

/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 12;

/// Checks a chosen password's length (characters, not bytes).
pub fn check_password(p: &str) -> Result<(), BadLogin> {
    let n = p.chars().count();
    if n < MIN_PASSWORD {
        return Err(BadLogin("パスワードは12文字以上にしてください。"));
    }
    if n > 256 {
        return Err(BadLogin("パスワードは256文字までにしてください。"));
    }
    Ok(())
}

/// `n` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS generator does not fail on the platforms this runs on; if it ever did, no secret
    // may be made from zeros.
    getrandom::fill(&mut b).expect("the operating system's random generator failed");
    b
}

/// A random secret: 32 bytes, URL-safe base64 (43 characters).
pub fn new_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// A generated password: 20 characters from an alphabet without look-alikes.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    // 256 is not a multiple of the alphabet's size: reject the bytes that would bias it.
    let limit = 256 - 256 % ALPHABET.len();
    let mut out = String::with_capacity(20);
    while out.len() < 20 {
        for b in random_bytes::<32>() {
            if (b as usize) < limit && out.len() < 20 {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    out
}

/// An API token as shown once: `yst_` and a random secret.
pub fn new_api_token() -> String {
    format!("yst_{}", new_secret())
}

/// How a session or API token is stored: its SHA-256, hex. The secret has 256 bits of
/// randomness, so a fast hash is enough (a password needs argon2).
pub fn secret_hash(secret: &str) -> String {
    let d = Sha256::digest(secret.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashes a password with argon2id (the crate's default parameters) and a random salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt =
        SaltString::encode_b64(&random_bytes::<16>()).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
}

/// A hash of no password, verified against when the login is unknown so that an unknown login
/// takes as long as a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password(&new_secret()).unwrap_or_default());

/// Whether `password` matches `hash`; `None` checks against a dummy (an unknown login) and is
/// always false.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let stored = hash.unwrap_or(DUMMY_HASH.as_str());
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
        && hash.is_some()
}

/// Compares two secrets in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_include_the_ones_below() {
        assert!(Role::Admin.allows(Role::Sender));
        assert!(Role::Sender.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Sender));
        assert!(!Role::Sender.allows(Role::Admin));
        for r in [Role::Viewer, Role::Sender, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", Some(&h)));
        assert!(!verify_password("correct horse batterx", Some(&h)));
        assert!(!verify_password("correct horse battery", None));
        assert!(!verify_password("x", Some("not a hash")));
    }

    #[test]
    fn generated_passwords_draw_on_the_whole_alphabet() {
        let seen: std::collections::HashSet<char> = (0..100)
            .flat_map(|_| generate_password().chars().collect::<Vec<_>>())
            .collect();
        // 2,000 draws from 56 characters: each shows up unless the draw is broken.
        assert_eq!(seen.len(), 56, "{seen:?}");
        assert!(!seen.iter().any(|c| "0O1lI".contains(*c)), "no look-alikes");
    }

    #[test]
    fn logins_and_generated_secrets() {
        assert_eq!(parse_login(" sato.h ").unwrap(), "sato.h");
        assert!(parse_login("ab").is_err());
        assert!(parse_login("Sato").is_err());
        assert!(parse_login("-sato").is_err());
        assert!(parse_login("さとう").is_err());
        let p = generate_password();
        assert_eq!(p.len(), 20);
        assert_ne!(p, generate_password());
        assert!(check_password(&p).is_ok());
        assert!(check_password("short").is_err());
        assert!(parse_login("abc").is_ok() && parse_login(&"a".repeat(32)).is_ok());
        assert!(parse_login(&"a".repeat(33)).is_err());
        assert!(
            check_password(&"あ".repeat(12)).is_ok(),
            "characters, not bytes"
        );
        assert!(check_password(&"x".repeat(11)).is_err());
        assert!(
            check_password(&"x".repeat(256)).is_ok() && check_password(&"x".repeat(257)).is_err()
        );
        assert_eq!(
            [Role::Viewer, Role::Sender, Role::Admin].map(Role::label),
            ["閲覧者", "配信者", "管理者"]
        );
        let t = new_api_token();
        assert!(t.starts_with("yst_") && t.len() == 47);
        assert_eq!(secret_hash("a").len(), 64);
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("a", "ab"));
    }
}
