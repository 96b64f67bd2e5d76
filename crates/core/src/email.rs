//! Email addresses: parsed once, compared case-insensitively.

use crate::ids::{InvalidField, hidden};

/// A syntactically valid address of at most 254 bytes. Equality and lookup use the
/// lower-cased form; the address as the user typed it is kept for display.
#[derive(Clone, Debug)]
pub struct Email {
    display: String,
    normalized: String,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        const BAD: InvalidField =
            InvalidField("must be a valid email address of at most 254 bytes");
        let raw = raw.trim();
        // Invisible and bidi characters would let two accounts, or an account and the
        // address its mail goes to, look identical wherever the address is shown.
        if raw.len() > 254 || raw.chars().any(|c| c.is_whitespace() || hidden(c)) {
            return Err(BAD);
        }
        let (local, domain) = raw.rsplit_once('@').ok_or(BAD)?;
        let local_ok = !local.is_empty() && local.len() <= 64 && !local.contains('@');
        let labels_ok = domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        if !local_ok || !domain.contains('.') || !labels_ok {
            return Err(BAD);
        }
        Ok(Self {
            display: raw.to_owned(),
            normalized: normalize(raw),
        })
    }

    /// Rebuilds an address read back from storage (already validated when stored).
    pub fn from_stored(display: String) -> Self {
        let normalized = display.to_lowercase();
        Self {
            display,
            normalized,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.display
    }

    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

/// The form addresses are compared in, for input that may not parse as an address (a
/// limiter key must treat `Ana@x` and `ana@x ` alike whether or not they are valid).
pub fn normalize(raw: &str) -> String {
    raw.trim().to_lowercase()
}

impl PartialEq for Email {
    fn eq(&self, other: &Self) -> bool {
        self.normalized == other.normalized
    }
}
impl Eq for Email {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_case_insensitively_but_keep_their_spelling() {
        let a = Email::parse("Ana@Example.COM").unwrap();
        let b = Email::parse("ana@example.com").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "Ana@Example.COM");
        assert_eq!(a.normalized(), "ana@example.com");
    }

    #[test]
    fn malformed_or_oversized_addresses_are_refused() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a b@example.com",
            "a@exa mple.com",
            "a@-x.com",
            "a@x..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(63));
        assert!(Email::parse(&long).is_ok());
        let too_long = format!("a@{}.com", vec!["b".repeat(63); 4].join("."));
        assert!(too_long.len() > 254);
        assert!(Email::parse(&too_long).is_err());
    }

    #[test]
    fn invisible_and_bidi_characters_are_refused() {
        for lookalike in [
            "ana\u{200B}@example.com",
            "\u{202E}ana@example.com",
            "ana\u{2066}@example.com",
            "\u{FEFF}ana@example.com",
            "ana\u{00AD}@example.com",
            "ana\u{0000}@example.com",
        ] {
            assert!(
                Email::parse(lookalike).is_err(),
                "{lookalike:?} should be refused"
            );
        }
    }
}
