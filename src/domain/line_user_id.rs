use std::fmt;

/// A LINE user id: `U` followed by 32 lower-case hex digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LineUserId(String);

impl LineUserId {
    /// Parses a user id as LINE sends it.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == 33
            && s.starts_with('U')
            && s[1..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| Self(s.to_owned()))
    }

    /// The id as sent to LINE.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Personal data: never printed in full by accident.
impl fmt::Debug for LineUserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LineUserId(U…{})", &self.0[self.0.len() - 4..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_real_shapes() {
        assert!(LineUserId::parse("U4af4980629a0c2d3e5b1e9c2f0a1b2c3").is_some());
        for bad in [
            "",
            "U123",
            "u4af4980629a0c2d3e5b1e9c2f0a1b2c3",
            "U4AF4980629A0C2D3E5B1E9C2F0A1B2C3",
            "C4af4980629a0c2d3e5b1e9c2f0a1b2c3",
        ] {
            assert!(LineUserId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_id() {
        let id = LineUserId::parse("U4af4980629a0c2d3e5b1e9c2f0a1b2c3").unwrap();
        assert!(!format!("{id:?}").contains("4af4980629"));
    }
}
