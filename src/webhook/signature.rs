//! `x-line-signature` = base64(HMAC-SHA256(channel secret, raw body)).

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The signature LINE sends for `body` (also used by the LINE double and the benchmark).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks a signature in constant time.
pub fn verify(secret: &str, body: &[u8], signature: &str) -> bool {
    let Ok(expected) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let sig = sign("Jefe", b"what do ya want for nothing?");
        assert_eq!(sig, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
        assert!(verify("Jefe", b"what do ya want for nothing?", &sig));
    }

    #[test]
    fn rejects_wrong_or_malformed() {
        let body = br#"{"destination":"x","events":[]}"#;
        let sig = sign("secret", body);
        assert!(verify("secret", body, &sig));
        assert!(!verify("other", body, &sig));
        assert!(!verify("secret", b"{}", &sig));
        assert!(!verify("secret", body, "not base64!"));
        assert!(!verify("secret", body, ""));
    }
}
