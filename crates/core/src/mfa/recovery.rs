//! Recovery codes: ten single-use codes shown once at enrolment, stored only as hashes.
//!
//! A code is 120 random bits written as six groups of four base32 characters
//! (`abcd-efgh-ijkl-mnop-qrst-uvwx`). ASVS 6.5.2 accepts a fast unsalted hash only for
//! lookup secrets of at least 112 bits, where an offline search of a stolen table is out
//! of reach; hence SHA-256 here rather than a password hash. Codes issued before were 80
//! bits (`abcd-efgh-ijkl-mnop`): users still hold them, so they keep parsing and hash as
//! they always did until the user regenerates. Case, dashes and spaces are ignored when
//! one is typed.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ids::InvalidField;
use crate::secret::{HashKind, Sha256Hash};

/// How many codes a user holds after enrolment or regeneration.
pub const RECOVERY_CODES: usize = 10;
/// Random bytes in a code issued now (120 bits, 24 base32 characters).
const CODE_BYTES: usize = 15;
const CODE_CHARS: usize = 24;
/// The length of the 80-bit codes issued before; parsed so that they keep working.
const LEGACY_CODE_CHARS: usize = 16;
const GROUP: usize = 4;

/// A recovery code in its canonical form (24 lower-case base32 characters, or 16 for a
/// code issued before codes grew to 120 bits).
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
        let ok = matches!(canonical.len(), CODE_CHARS | LEGACY_CODE_CHARS)
            && canonical
                .chars()
                .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c));
        if !ok {
            return Err(InvalidField(
                "must be a recovery code as issued (xxxx-xxxx-xxxx-xxxx-xxxx-xxxx)",
            ));
        }
        Ok(Self(canonical))
    }

    /// The form shown to the user: groups of four, `xxxx-xxxx-xxxx-xxxx-xxxx-xxxx`.
    pub fn display(&self) -> String {
        let mut shown = String::with_capacity(self.0.len() + self.0.len() / GROUP);
        for (i, c) in self.0.chars().enumerate() {
            if i > 0 && i % GROUP == 0 {
                shown.push('-');
            }
            shown.push(c);
        }
        shown
    }

    /// SHA-256 of the canonical form whatever its length, so the hash stored for a legacy
    /// 16-character code still matches when the user types it.
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
    fn an_issued_code_is_120_bits_shown_as_six_groups_of_four() {
        let code = RecoveryCode::from_random([0xA5; 15]);
        let shown = code.display();
        assert_eq!(shown.len(), 29, "{shown}");
        let groups: Vec<&str> = shown.split('-').collect();
        assert_eq!(groups.len(), 6, "{shown}");
        assert!(groups.iter().all(|g| g.len() == 4), "{shown}");
        // 24 base32 characters of 5 bits each carry the 120 random bits, no padding.
        let decoded = data_encoding::BASE32_NOPAD
            .decode(shown.replace('-', "").to_ascii_uppercase().as_bytes())
            .unwrap();
        assert_eq!(decoded, [0xA5; 15]);
    }

    #[test]
    fn a_code_is_recognised_however_it_is_typed() {
        for code in [
            RecoveryCode::from_random([0xA5; 15]),
            RecoveryCode::parse("abcd-efgh-2345-mnop").unwrap(),
        ] {
            let shown = code.display();
            for typed in [
                shown.clone(),
                shown.to_uppercase(),
                shown.replace('-', ""),
                shown.replace('-', " "),
            ] {
                let again = RecoveryCode::parse(&typed).unwrap();
                assert_eq!(again, code, "{typed}");
                assert_eq!(again.hash(), code.hash(), "{typed}");
            }
        }
    }

    /// The hashes stored for codes handed out before, and for codes issued now, are
    /// pinned to their bytes (computed outside the code: `printf
    /// 'tessera:recovery-code:abcdefgh2345mnop' | sha256sum`): a change to the
    /// normalisation or the hash input would lock users out of the codes they hold.
    #[test]
    fn a_legacy_16_character_code_still_parses_and_hashes_as_before() {
        let cases = [
            (
                "ABCD-EFGH-2345-MNOP",
                "abcd-efgh-2345-mnop",
                "970975a6c10bdb047dec3f12648ee9437908b9c564324fc76ff97433ee29ecfe",
            ),
            (
                "abcd efgh 2345 mnop qrst uvwx",
                "abcd-efgh-2345-mnop-qrst-uvwx",
                "6838b5b7e720d4b3232b618dee14ad23a76124f7bb2fb735f10bdd03e5f8777d",
            ),
        ];
        for (typed, shown, stored) in cases {
            let code = RecoveryCode::parse(typed).unwrap();
            assert_eq!(code.display(), shown);
            let hex = data_encoding::HEXLOWER.encode(code.hash().as_bytes());
            assert_eq!(hex, stored, "{typed}");
        }
    }

    #[test]
    fn malformed_codes_are_refused() {
        for bad in [
            "",
            "abcd-efgh",
            "abcd-efgh-ijkl-mno",
            "abcd-efgh-ijkl-mnop-q",
            "abcd-efgh-ijkl-mnop-qrst",
            "abcd-efgh-ijkl-mnop-qrst-uvw",
            "abcd-efgh-ijkl-mnop-qrst-uvwxy",
            "abcd-efgh-ijkl-mnop-qrst-uvwx-abcd",
            "abcd-efgh-ijkl-mno1",
            "abcd-efgh-ijkl-mnop-qrst-uvw8",
            "abcd-efgh-ijkl-mnø",
            "abcd_efgh_ijkl_mnop",
        ] {
            assert!(RecoveryCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn distinct_codes_hash_apart_and_debug_hides_them() {
        let a = RecoveryCode::from_random([1; 15]);
        let b = RecoveryCode::from_random([2; 15]);
        assert_ne!(a.hash(), b.hash());
        assert!(!format!("{a:?}").contains(&a.display()[..4]));
    }
}
