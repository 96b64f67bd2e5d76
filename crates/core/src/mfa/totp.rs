//! TOTP (RFC 6238 over RFC 4226 HOTP): HMAC-SHA-1, 6 digits, 30 s steps.
//!
//! ```text
//!   time ──step_at──► step s
//!   code ──verify──► [matches a step in s-1 ..= s+1, and step > last_used_step] ──► Some(step)
//!                └─► [anything else]                                           ──► None
//!   caller stores the returned step as the user's new last_used_step (compare-and-swap)
//! ```
//!
//! The window absorbs clock drift between server and phone; remembering the last accepted
//! step makes every code single-use, even inside its 90-second window.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq, CtOption};
use time::OffsetDateTime;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ids::InvalidField;

pub const PERIOD_SECS: i64 = 30;
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one.
pub const SKEW_STEPS: i64 = 1;

/// Bytes in a freshly generated secret (RFC 4226 §4 recommends 160 bits).
pub const SECRET_BYTES: usize = 20;
const MIN_SECRET_BYTES: usize = 16;
/// One SHA-1 block: a key this short is used by HMAC as is (zero-padded), so no secret we
/// accept is ever hashed down first, and longer keys would add no strength.
const MAX_SECRET_BYTES: usize = 64;

type HmacSha1 = Hmac<Sha1>;

/// 160-bit secret; Debug redacted; zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl PartialEq for TotpSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for TotpSecret {}

impl TotpSecret {
    /// Wraps fresh random bytes drawn by the caller.
    pub fn from_random(bytes: [u8; SECRET_BYTES]) -> Self {
        Self(bytes.to_vec())
    }

    /// From stored/decrypted bytes: 16 to 64 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InvalidField> {
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            return Err(InvalidField("a TOTP secret must be 16 to 64 bytes"));
        }
        Ok(Self(bytes.to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// RFC 4648 base32, upper case, no padding (what authenticator apps take).
    pub fn to_base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.0)
    }

    /// `otpauth://totp/<issuer>:<account>?secret=<base32>&issuer=<issuer>&algorithm=SHA1&digits=6&period=30`
    /// (Google Authenticator's Key Uri Format). Issuer and account are percent-encoded
    /// byte by byte, keeping only RFC 3986 unreserved characters and `@`, so the text is
    /// a deterministic function of its inputs and an e-mail address reads as itself.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let issuer = percent_encode(issuer);
        format!(
            "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}\
             &algorithm=SHA1&digits={DIGITS}&period={PERIOD_SECS}",
            account = percent_encode(account),
            secret = self.to_base32(),
        )
    }
}

/// `@` is legal unencoded in both a path segment and a query (RFC 3986 `pchar`), and every
/// app reads `ana@example.com` literally; `:` must be encoded because it splits the label.
fn percent_encode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for &b in raw.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A typed code: exactly 6 ASCII digits once spaces are removed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TotpCode(u32);

impl std::fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpCode([redacted])")
    }
}

impl TotpCode {
    /// Apps show codes as `123 456`; people type them that way.
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let mut value = 0u32;
        let mut digits = 0u32;
        for c in raw.chars().filter(|&c| c != ' ') {
            // `to_digit` takes ASCII digits only, not other scripts' digits.
            let Some(d) = c.to_digit(10) else {
                return Err(InvalidField("must be 6 digits"));
            };
            digits += 1;
            if digits > DIGITS {
                return Err(InvalidField("must be 6 digits"));
            }
            value = value * 10 + d;
        }
        if digits != DIGITS {
            return Err(InvalidField("must be 6 digits"));
        }
        Ok(Self(value))
    }
}

/// The time step containing `now` (floor(unix / 30)).
pub fn step_at(now: OffsetDateTime) -> i64 {
    now.unix_timestamp().div_euclid(PERIOD_SECS)
}

/// HOTP (RFC 4226 dynamic truncation) of `step`, reduced to `digits` digits.
pub fn code_at_step(secret: &TotpSecret, step: i64, digits: u32) -> u32 {
    // HMAC zero-pads a key of at most one block (RFC 2104 step 1), which `from_bytes`
    // guarantees; padding it here lets us use the infallible constructor.
    let mut key = hmac::digest::Key::<HmacSha1>::default();
    key[..secret.0.len()].copy_from_slice(&secret.0);
    let mut mac = HmacSha1::new(&key);
    key.as_mut_slice().zeroize();
    mac.update(&step.to_be_bytes());
    let hash = mac.finalize().into_bytes();

    let offset = usize::from(hash[19] & 0x0f);
    let binary = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    // `binary` < 2^31, so any modulus past 10^10 leaves it unchanged; checked_pow keeps
    // absurd digit counts from overflowing.
    match 10u64.checked_pow(digits) {
        Some(modulus) => (u64::from(binary) % modulus) as u32,
        None => binary,
    }
}

/// The step a code is accepted for: a step within ±SKEW_STEPS of now whose code equals
/// `code` and which is strictly greater than `last_used_step` (a step is accepted at most
/// once). None otherwise.
///
/// Every candidate step is computed and compared in constant time, so timing tells nothing
/// about which step (if any) matched.
pub fn verify(
    secret: &TotpSecret,
    code: TotpCode,
    now: OffsetDateTime,
    last_used_step: Option<i64>,
) -> Option<i64> {
    let current = step_at(now);
    let mut found = Choice::from(0);
    let mut accepted = 0i64;
    // Ascending, so the latest matching step wins: recording it also burns the earlier
    // ones, whereas recording an earlier step would let the same digits be replayed at a
    // later step whose code happens to coincide.
    for step in current - SKEW_STEPS..=current + SKEW_STEPS {
        let fresh = Choice::from(u8::from(last_used_step.is_none_or(|last| step > last)));
        let hit = code_at_step(secret, step, DIGITS).ct_eq(&code.0) & fresh;
        accepted.conditional_assign(&step, hit);
        found |= hit;
    }
    CtOption::new(accepted, found).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890").unwrap()
    }

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    fn code(n: u32) -> TotpCode {
        TotpCode::parse(&format!("{n:06}")).unwrap()
    }

    #[test]
    fn codes_match_the_rfc_6238_sha1_test_vectors() {
        let secret = rfc_secret();
        for (unix, expected) in [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(
                code_at_step(&secret, step_at(at(unix)), 8),
                expected,
                "t = {unix}"
            );
            assert_eq!(
                code_at_step(&secret, step_at(at(unix)), DIGITS),
                expected % 1_000_000
            );
        }
    }

    #[test]
    fn steps_are_floored_thirty_second_windows() {
        assert_eq!(step_at(at(0)), 0);
        assert_eq!(step_at(at(29)), 0);
        assert_eq!(step_at(at(30)), 1);
        assert_eq!(step_at(at(-1)), -1);
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_refused_two_steps_away() {
        let secret = rfc_secret();
        let now = at(1_700_000_000);
        let s = step_at(now);
        for offset in -1..=1 {
            let c = code(code_at_step(&secret, s + offset, DIGITS));
            assert_eq!(
                verify(&secret, c, now, None),
                Some(s + offset),
                "offset {offset}"
            );
        }
        for offset in [-2, 2] {
            let c = code(code_at_step(&secret, s + offset, DIGITS));
            assert_eq!(verify(&secret, c, now, None), None, "offset {offset}");
        }
    }

    #[test]
    fn a_wrong_code_or_another_secret_is_refused() {
        let secret = rfc_secret();
        let now = at(1_700_000_000);
        let right = code_at_step(&secret, step_at(now), DIGITS);
        assert_eq!(
            verify(&secret, code((right + 1) % 1_000_000), now, None),
            None
        );
        let other = TotpSecret::from_random([9; 20]);
        assert_eq!(verify(&other, code(right), now, None), None);
    }

    #[test]
    fn a_step_is_accepted_at_most_once() {
        let secret = rfc_secret();
        let now = at(1_700_000_000);
        let s = step_at(now);
        let current = code(code_at_step(&secret, s, DIGITS));
        let previous = code(code_at_step(&secret, s - 1, DIGITS));

        assert_eq!(verify(&secret, current, now, Some(s - 1)), Some(s));
        assert_eq!(
            verify(&secret, current, now, Some(s)),
            None,
            "replay of the same step"
        );
        assert_eq!(
            verify(&secret, previous, now, Some(s)),
            None,
            "an older step"
        );
        assert_eq!(verify(&secret, previous, now, Some(s - 1)), None);
        // Still refused half a minute later, when the step is inside the window as s - 1.
        assert_eq!(verify(&secret, current, at(1_700_000_030), Some(s)), None);
    }

    #[test]
    fn codes_are_six_ascii_digits_with_spaces_ignored() {
        assert_eq!(TotpCode::parse("123456").unwrap(), code(123456));
        assert_eq!(TotpCode::parse("123 456").unwrap(), code(123456));
        assert_eq!(TotpCode::parse(" 1 2 3 4 5 6 ").unwrap(), code(123456));
        assert_eq!(TotpCode::parse("000042").unwrap(), code(42));
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            "abcdef",
            "123-456",
            "12\t3456",
            "١٢٣٤٥٦",
            "+12345",
        ] {
            assert!(TotpCode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secrets_shorter_than_128_bits_or_longer_than_a_block_are_refused() {
        assert!(TotpSecret::from_bytes(&[1; 15]).is_err());
        assert!(TotpSecret::from_bytes(&[1; 16]).is_ok());
        assert!(TotpSecret::from_bytes(&[1; 64]).is_ok());
        assert!(TotpSecret::from_bytes(&[1; 65]).is_err());
        assert_eq!(
            TotpSecret::from_bytes(&[7; 20]).unwrap(),
            TotpSecret::from_random([7; 20])
        );
    }

    #[test]
    fn a_secret_is_written_as_unpadded_upper_case_base32() {
        assert_eq!(rfc_secret().to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(TotpSecret::from_random([0; 20]).to_base32(), "A".repeat(32));
    }

    #[test]
    fn the_otpauth_uri_follows_the_key_uri_format() {
        assert_eq!(
            rfc_secret().otpauth_uri("Tessera", "ana@example.com"),
            "otpauth://totp/Tessera:ana@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Tessera&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn issuer_and_account_are_percent_encoded() {
        let uri = rfc_secret().otpauth_uri("Acme Co: EU", "zoë+1@x.io");
        assert_eq!(
            uri,
            "otpauth://totp/Acme%20Co%3A%20EU:zo%C3%AB%2B1@x.io?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Acme%20Co%3A%20EU&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn debug_output_hides_secrets_and_codes() {
        let secret = rfc_secret();
        assert_eq!(format!("{secret:?}"), "TotpSecret([redacted])");
        assert_eq!(format!("{:?}", code(123456)), "TotpCode([redacted])");
    }

    proptest! {
        #[test]
        fn verify_never_panics_and_only_accepts_a_fresh_matching_step_in_the_window(
            key in proptest::collection::vec(any::<u8>(), 16..=64),
            // The whole range `OffsetDateTime` can hold (years -9999 to 9999).
            unix in -377_705_116_800i64..=253_402_300_799,
            typed in 0u32..1_000_000,
            last in proptest::option::of(any::<i64>()),
        ) {
            let secret = TotpSecret::from_bytes(&key).unwrap();
            let now = at(unix);
            if let Some(step) = verify(&secret, code(typed), now, last) {
                prop_assert!((step - step_at(now)).abs() <= SKEW_STEPS);
                prop_assert!(last.is_none_or(|l| step > l));
                prop_assert_eq!(code_at_step(&secret, step, DIGITS), typed);
            }
        }

        #[test]
        fn the_current_code_is_accepted_unless_its_step_was_used(
            key in proptest::collection::vec(any::<u8>(), 16..=64),
            unix in 0i64..=4_000_000_000,
        ) {
            let secret = TotpSecret::from_bytes(&key).unwrap();
            let now = at(unix);
            let s = step_at(now);
            let c = code(code_at_step(&secret, s, DIGITS));
            prop_assert!(verify(&secret, c, now, None).is_some_and(|step| step >= s));
            prop_assert_eq!(verify(&secret, c, now, Some(s + 1)), None);
        }

        #[test]
        fn code_at_step_never_panics_for_any_step_or_digit_count(
            step in any::<i64>(), digits in any::<u32>(),
        ) {
            let code = code_at_step(&rfc_secret(), step, digits);
            prop_assert!(code < 1 << 31);
            if digits <= 9 {
                prop_assert!(u64::from(code) < 10u64.pow(digits));
            }
        }

        /// The caller keeps the last accepted step and hands it back, as the app stores
        /// it: over any run of attempts (the clock moving on, codes of steps around now,
        /// wrong codes), every accepted step is newer than all before it.
        #[test]
        fn a_run_of_attempts_never_accepts_one_step_twice(
            key in proptest::collection::vec(any::<u8>(), 16..=64),
            start in 0i64..=4_000_000_000,
            attempts in proptest::collection::vec(
                (0i64..=90, -2i64..=2, proptest::option::weighted(0.1, 0u32..1_000_000)),
                1..40,
            ),
        ) {
            let secret = TotpSecret::from_bytes(&key).unwrap();
            let mut now = start;
            let mut last = None;
            let mut accepted = Vec::new();
            for (advance, offset, wrong) in attempts {
                now += advance;
                let typed = wrong
                    .unwrap_or_else(|| code_at_step(&secret, step_at(at(now)) + offset, DIGITS));
                if let Some(step) = verify(&secret, code(typed), at(now), last) {
                    prop_assert!(!accepted.contains(&step), "step {} accepted twice", step);
                    prop_assert!(last.is_none_or(|l| step > l));
                    accepted.push(step);
                    last = Some(step);
                }
            }
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(s in ".{0,16}") {
            if TotpCode::parse(&s).is_ok() {
                prop_assert_eq!(s.chars().filter(char::is_ascii_digit).count(), 6);
            }
        }
    }
}
