use std::fmt;
use unicode_segmentation::UnicodeSegmentation;

/// How the messages address the reader: 1–20 grapheme clusters, no URLs, no control characters.
#[derive(Clone, PartialEq, Eq)]
pub struct Nickname(String);

/// Why a nickname was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NicknameError {
    /// Nothing left after trimming.
    Empty,
    /// Longer than the limit; carries the length in characters.
    TooLong(usize),
    /// Looks like a web address.
    Url,
    /// Contains line breaks or other control characters.
    ControlCharacters,
}

/// The longest nickname, in grapheme clusters.
pub const NICKNAME_MAX: usize = 20;
/// The longest nickname in UTF-16 units: 20 emoji with modifiers fit, a flood of combining
/// marks on one letter does not.
pub const NICKNAME_MAX_UTF16: usize = 100;

/// Invisible characters that reorder or hide text (bidi controls, byte-order mark).
fn is_hidden_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

impl Nickname {
    /// Parses what the reader typed.
    pub fn parse(input: &str) -> Result<Self, NicknameError> {
        let mut s = input.trim();
        // The messages add さん themselves.
        for suffix in ["さん", "様", "さま"] {
            if let Some(rest) = s.strip_suffix(suffix) {
                if !rest.trim().is_empty() {
                    s = rest.trim_end();
                }
                break;
            }
        }
        if s.is_empty() {
            return Err(NicknameError::Empty);
        }
        if s.chars()
            .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}' || is_hidden_control(c))
        {
            return Err(NicknameError::ControlCharacters);
        }
        let lower = s.to_lowercase();
        let url_like = lower.contains("://")
            || lower.contains("www.")
            || lower.contains("line.me")
            || [".com", ".jp", ".net", ".org", ".io", ".info", ".ly"]
                .iter()
                .any(|tld| lower.contains(tld));
        if url_like {
            return Err(NicknameError::Url);
        }
        let len = s.graphemes(true).count();
        if len > NICKNAME_MAX || s.encode_utf16().count() > NICKNAME_MAX_UTF16 {
            return Err(NicknameError::TooLong(len.max(NICKNAME_MAX + 1)));
        }
        Ok(Self(s.to_owned()))
    }

    /// Rebuilds a nickname read back from the store.
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }

    /// The nickname text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Nickname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Nickname([personal])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nickname_rules() {
        let cases: &[(&str, &str, Result<&str, NicknameError>)] = &[
            ("plain hiragana", "はなこ", Ok("はなこ")),
            (
                "trimmed, including full-width spaces",
                "\u{3000} たろうパパ  ",
                Ok("たろうパパ"),
            ),
            (
                "trailing さん is dropped (messages add it)",
                "はなこさん",
                Ok("はなこ"),
            ),
            ("just さん is kept", "さん", Ok("さん")),
            ("emoji allowed", "ママ🌸", Ok("ママ🌸")),
            ("family emoji counts as one", "👨‍👩‍👧", Ok("👨‍👩‍👧")),
            (
                "exactly 20 characters",
                "あいうえおかきくけこさしすせそたちつてと",
                Ok("あいうえおかきくけこさしすせそたちつてと"),
            ),
            (
                "21 characters",
                "あいうえおかきくけこさしすせそたちつてとな",
                Err(NicknameError::TooLong(21)),
            ),
            (
                "20 emoji with skin tones",
                &"👍🏽".repeat(20),
                Ok(&"👍🏽".repeat(20)),
            ),
            ("empty", "", Err(NicknameError::Empty)),
            ("only spaces", "   　", Err(NicknameError::Empty)),
            (
                "newline inside",
                "はな\nこ",
                Err(NicknameError::ControlCharacters),
            ),
            (
                "tab inside",
                "はな\tこ",
                Err(NicknameError::ControlCharacters),
            ),
            ("url", "https://example.com", Err(NicknameError::Url)),
            ("bare domain", "spam.jp", Err(NicknameError::Url)),
            ("www", "www.example", Err(NicknameError::Url)),
            (
                "one letter with 4000 combining marks",
                &format!("a{}", "\u{301}".repeat(4000)),
                Err(NicknameError::TooLong(21)),
            ),
            (
                "a right-to-left override",
                "はな\u{202E}こ",
                Err(NicknameError::ControlCharacters),
            ),
        ];
        for (what, input, expected) in cases {
            let got = Nickname::parse(input).map(|n| n.as_str().to_owned());
            let expected = expected.clone().map(str::to_owned);
            assert_eq!(got, expected, "{what}");
        }
    }
}
