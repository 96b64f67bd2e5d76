//! Recovery codes: ten single-use codes shown once at enrolment, stored only as hashes.
//!
//! A code is 80 random bits written as four groups of four base32 characters
//! (`abcd-efgh-ijkl-mnop`). 80 bits make an offline search of the stored SHA-256 hopeless,
//! so a fast hash is enough. Case, dashes and spaces are ignored when one is typed.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ids::InvalidField;
use crate::secret::{HashKind, Sha256Hash};

/// How many codes a user holds after enrolment or regeneration.
pub const RECOVERY_CODES: usize = 10;
const CODE_BYTES: usize = 10;
const CODE_CHARS: usize = 16;

/// A recovery code in its canonical form (16 lower-case base32 characters).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct RecoveryCode(String);

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode([redacted])")
    }
}

impl RecoveryCode {
    pub fn from_random(bytes: [u8; CODE_BYTES]) -> Self {
        Self(
            data_encoding::BASE32_NOPAD
                .encode(&bytes)
                .to_ascii_lowercase(),
        )
    }

    /// Accepts a code as a person might type it: any case, with or without dashes/spaces.
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let canonical: String = raw
            .chars()
            .filter(|c| !matches!(c, '-' | ' '))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let ok = canonical.len() == CODE_CHARS
            && canonical
                .chars()
                .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c));
        if !ok {
            return Err(InvalidField(
                "must be a recovery code as issued (xxxx-xxxx-xxxx-xxxx)",
            ));
        }
        Ok(Self(canonical))
    }

    /// The form shown to the user once: `xxxx-xxxx-xxxx-xxxx`.
    pub fn display(&self) -> String {
        let c = &self.0;
        format!("{}-{}-{}-{}", &c[0..4], &c[4..8], &c[8..12], &c[12..16])
    }

    pub fn hash(&self) -> RecoveryCodeHash {
        let mut data = b"tessera:recovery-code:".to_vec();
        data.extend_from_slice(self.0.as_bytes());
        RecoveryCodeHash::digest(&data)
    }
}

/// Hashes of recovery codes.
pub enum RecoveryCodeKind {}
impl HashKind for RecoveryCodeKind {
    const NAME: &'static str = "RecoveryCodeHash";
}

/// What storage keeps of a recovery code.
pub type RecoveryCodeHash = Sha256Hash<RecoveryCodeKind>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_recognised_however_it_is_typed() {
        let code = RecoveryCode::from_random([0xA5; 10]);
        let shown = code.display();
        assert_eq!(shown.len(), 19);
        assert_eq!(shown.matches('-').count(), 3);
        for typed in [
            shown.clone(),
            shown.to_uppercase(),
            shown.replace('-', ""),
            shown.replace('-', " "),
        ] {
            assert_eq!(
                RecoveryCode::parse(&typed).unwrap().hash(),
                code.hash(),
                "{typed}"
            );
        }
    }

    #[test]
    fn malformed_codes_are_refused() {
        for bad in [
            "",
            "abcd-efgh",
            "abcd-efgh-ijkl-mnop-qrst",
            "abcd-efgh-ijkl-mno1",
            "abcd-efgh-ijkl-mnø",
        ] {
            assert!(RecoveryCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn distinct_codes_hash_apart_and_debug_hides_them() {
        let a = RecoveryCode::from_random([1; 10]);
        let b = RecoveryCode::from_random([2; 10]);
        assert_ne!(a.hash(), b.hash());
        assert!(!format!("{a:?}").contains(&a.display()[..4]));
    }
}
