//! Identifiers. Each id is its own type so a `SessionId` can never be passed where a
//! `UserId` is expected.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps fresh random bytes (drawn by the caller) as a version-4 UUID.
            pub fn from_random(bytes: [u8; 16]) -> Self {
                Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
            }
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A user account.
    UserId
);
uuid_id!(
    /// One device's session of one user.
    SessionId
);
uuid_id!(
    /// One recorded security event.
    EventId
);
uuid_id!(
    /// One notification, the same on every channel and every retry
    /// (`Tessera-Notification-Id`, the webhook body's `id`).
    NotificationId
);

/// Why an input field was refused; the edge names the field in a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidField(pub &'static str);

/// The client's own identifier for one install: 1 to 128 characters of `[A-Za-z0-9._:-]`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct DeviceId(String);

impl DeviceId {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
        if raw.is_empty() || raw.len() > 128 || !raw.chars().all(ok_char) {
            return Err(InvalidField(
                "must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A human label for a device ("Ana's phone"), at most 100 characters, with no control
/// character and no invisible formatting character: bidi overrides and isolates
/// (U+202E turns "Ana's phone" into text that reads otherwise), zero-width characters and
/// the like would let a name impersonate another entry of the device list.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceName(String);

impl DeviceName {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > 100 || trimmed.chars().any(hidden) {
            return Err(InvalidField(
                "must be at most 100 characters without control or invisible formatting \
                 characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// A name read back from storage: written before the rule above, it may hold such
    /// characters; they are dropped (never shown) rather than failing the whole read.
    pub fn from_stored(raw: &str) -> Self {
        Self(raw.trim().chars().filter(|c| !hidden(*c)).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A control character (Cc), a Unicode format character (Cf: bidi controls, zero-width
/// characters, tags, the BOM, …) or a line/paragraph separator: nothing a label needs.
pub(crate) fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
        )
}

/// A role name such as `admin` or `vendor`: 1 to 64 characters of `[a-z0-9_.-]`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Role(String);

impl Role {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let ok_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-');
        if raw.is_empty() || raw.len() > 64 || !raw.chars().all(ok_char) {
            return Err(InvalidField(
                "must be 1 to 64 characters of a-z, 0-9, '_', '.' or '-'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key id (`kid`) of a signing key.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct KeyId(String);

impl KeyId {
    /// Key ids are derived from the public key, so every node names a key the same way.
    pub fn for_public_key(public: &[u8; 32]) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(public);
        Self(data_encoding::BASE64URL_NOPAD.encode(&digest[..12]))
    }
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_name_with_bidi_zero_width_or_control_characters_is_refused() {
        for spoof in [
            "Ana's \u{202E}enohp",
            "Ana\u{200B}'s phone",
            "\u{2066}Ana's phone\u{2069}",
            "\u{2067}x\u{2068}",
            "Ana's\u{200D}phone",
            "\u{FEFF}phone",
            "phone\u{E0041}",
            "two\u{2028}lines",
            "bell\u{7}",
            "del\u{7F}",
            "c1\u{85}next",
        ] {
            assert!(DeviceName::parse(spoof).is_err(), "{spoof:?}");
        }
        for fine in [
            "Ana's phone",
            "Zoë's “iPhone”",
            "Pixel 8 – work",
            "عمل",
            "電話",
        ] {
            assert_eq!(DeviceName::parse(fine).unwrap().as_str(), fine);
        }
        assert_eq!(
            DeviceName::from_stored("Ana's \u{202E}enohp").as_str(),
            "Ana's enohp"
        );
    }

    #[test]
    fn device_id_accepts_the_documented_alphabet_and_refuses_the_rest() {
        assert!(DeviceId::parse("ios-1.2:ABC_z").is_ok());
        assert!(DeviceId::parse(&"a".repeat(128)).is_ok());
        assert!(DeviceId::parse("").is_err());
        assert!(DeviceId::parse(&"a".repeat(129)).is_err());
        assert!(DeviceId::parse("has space").is_err());
        assert!(DeviceId::parse("é").is_err());
    }

    #[test]
    fn device_name_is_bounded_in_characters_not_bytes() {
        assert!(DeviceName::parse(&"é".repeat(100)).is_ok());
        assert!(DeviceName::parse(&"é".repeat(101)).is_err());
        assert!(DeviceName::parse("tab\there").is_err());
    }
}
