//! Known-device tokens (OWASP "Slow Down Online Guessing Attacks with Device Cookies").
//!
//! ```text
//!   login authenticated ──issue──► token (account, device_id, id, expiry; MAC'd)
//!   later login presenting it ──verify──► Known { id }   : counted on the token's own budget
//!                                     └──► Unknown         : ignored, counted as usual
//! ```
//!
//! A token is `dt1.<payload>.<tag>` (base64url, no padding): the payload is the token id
//! (16 random bytes), its expiry (unix seconds, big-endian i64), a hash of the account's
//! normalised email, and the `device_id`; the tag is HMAC-SHA256 over `dt1.` and the
//! payload under a key derived from the master key. No row is stored per device: the
//! limiter key for an attempt that presents a valid token is the token's id, so flooding
//! an account or an address cannot lock its owner out of a device that signed in before.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::crypto::MasterKeyRing;
use crate::secret::sha256;

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "dt1.";
const ID_LEN: usize = 16;
const ACCOUNT_LEN: usize = 32;
const FIXED_LEN: usize = ID_LEN + 8 + ACCOUNT_LEN;
/// Longer input is not one of ours; checked before any decoding work.
const MAX_TOKEN_LEN: usize = 512;

/// How long a known-device token is honoured.
pub const LIFETIME: Duration = Duration::days(90);

/// The keys that sign (the first) and verify (any) device tokens, derived from the master
/// key ring, so a master-key rotation keeps honouring tokens signed before it.
pub struct DeviceTokenKeys(Vec<Zeroizing<[u8; 32]>>);

impl std::fmt::Debug for DeviceTokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceTokenKeys([redacted; {}])", self.0.len())
    }
}

/// A token that verified: its id names its own rate-limit budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDevice {
    id_hex: String,
}

impl KnownDevice {
    pub fn id_hex(&self) -> &str {
        &self.id_hex
    }
}

impl DeviceTokenKeys {
    pub fn derive(ring: &MasterKeyRing) -> Self {
        let keys = std::iter::once(ring.current())
            .chain(ring.previous())
            .map(|k| k.derive("tessera:device-token:v1"))
            .collect();
        Self(keys)
    }

    /// A token for `device_id` of the account with this normalised email, valid from `now`
    /// for [`LIFETIME`]. `id` must be fresh random bytes.
    pub fn issue(
        &self,
        normalized_email: &str,
        device_id: &str,
        now: OffsetDateTime,
        id: [u8; ID_LEN],
    ) -> String {
        let mut payload = Vec::with_capacity(FIXED_LEN + device_id.len());
        payload.extend_from_slice(&id);
        payload.extend_from_slice(&(now + LIFETIME).unix_timestamp().to_be_bytes());
        payload.extend_from_slice(&account(normalized_email));
        payload.extend_from_slice(device_id.as_bytes());
        let b64 = data_encoding::BASE64URL_NOPAD;
        let body = b64.encode(&payload);
        let tag = self
            .0
            .first()
            .map(|key| tag(key, &body))
            .unwrap_or_default();
        format!("{PREFIX}{body}.{}", b64.encode(&tag))
    }

    /// The token's identity when it is ours, unexpired at `now`, and bound to this account
    /// and `device_id`; `None` for anything else (malformed, forged, expired, foreign).
    pub fn verify(
        &self,
        token: &str,
        normalized_email: &str,
        device_id: &str,
        now: OffsetDateTime,
    ) -> Option<KnownDevice> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let (body, presented_tag) = token.strip_prefix(PREFIX)?.split_once('.')?;
        let b64 = data_encoding::BASE64URL_NOPAD;
        let presented_tag = b64.decode(presented_tag.as_bytes()).ok()?;
        let authentic = self
            .0
            .iter()
            .any(|key| bool::from(tag(key, body).as_slice().ct_eq(&presented_tag)));
        if !authentic {
            return None;
        }
        let payload = b64.decode(body.as_bytes()).ok()?;
        let (fixed, bound_device) = payload.split_at_checked(FIXED_LEN)?;
        let (id, rest) = fixed.split_at(ID_LEN);
        let (expiry, bound_account) = rest.split_at(8);
        let expires = i64::from_be_bytes(expiry.try_into().ok()?);
        let fresh = now.unix_timestamp() < expires;
        let same_account = bool::from(bound_account.ct_eq(&account(normalized_email)));
        let same_device = bound_device == device_id.as_bytes();
        (fresh && same_account && same_device).then(|| KnownDevice {
            id_hex: data_encoding::HEXLOWER.encode(id),
        })
    }
}

fn account(normalized_email: &str) -> [u8; ACCOUNT_LEN] {
    let mut data = b"tessera:device-account:".to_vec();
    data.extend_from_slice(normalized_email.as_bytes());
    sha256(&data)
}

fn tag(key: &[u8; 32], body: &str) -> Vec<u8> {
    // HMAC zero-pads a key shorter than its block (RFC 2104), so this is the infallible
    // constructor applied to the 32-byte key.
    let mut padded = hmac::digest::Key::<HmacSha256>::default();
    padded[..key.len()].copy_from_slice(key);
    let mut mac = HmacSha256::new(&padded);
    zeroize::Zeroize::zeroize(padded.as_mut_slice());
    mac.update(PREFIX.as_bytes());
    mac.update(body.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn keys(seed: u8) -> DeviceTokenKeys {
        DeviceTokenKeys::derive(&MasterKeyRing::from(MasterKey::from_bytes([seed; 32])))
    }

    #[test]
    fn a_token_verifies_for_its_account_and_device_until_it_expires() {
        let keys = keys(1);
        let token = keys.issue("ana@example.com", "phone-1", NOW, [7; 16]);
        let known = keys
            .verify(&token, "ana@example.com", "phone-1", NOW)
            .unwrap();
        assert_eq!(known.id_hex(), "07".repeat(16));
        let last = NOW + LIFETIME - Duration::seconds(1);
        assert!(
            keys.verify(&token, "ana@example.com", "phone-1", last)
                .is_some()
        );
        assert!(
            keys.verify(&token, "ana@example.com", "phone-1", NOW + LIFETIME)
                .is_none()
        );
    }

    #[test]
    fn a_token_is_ignored_for_another_account_device_or_key() {
        let token = keys(1).issue("ana@example.com", "phone-1", NOW, [7; 16]);
        assert!(
            keys(1)
                .verify(&token, "bob@example.com", "phone-1", NOW)
                .is_none()
        );
        assert!(
            keys(1)
                .verify(&token, "ana@example.com", "phone-2", NOW)
                .is_none()
        );
        assert!(
            keys(2)
                .verify(&token, "ana@example.com", "phone-1", NOW)
                .is_none()
        );
    }

    #[test]
    fn a_tampered_or_malformed_token_is_ignored() {
        let keys = keys(1);
        let token = keys.issue("ana@example.com", "phone-1", NOW, [7; 16]);
        let (body, tag) = token.rsplit_once('.').unwrap();
        // Extend the lifetime by rewriting the payload: the tag no longer matches.
        let mut payload = data_encoding::BASE64URL_NOPAD
            .decode(body.trim_start_matches(PREFIX).as_bytes())
            .unwrap();
        payload[ID_LEN] ^= 0x40;
        let forged = format!(
            "{PREFIX}{}.{tag}",
            data_encoding::BASE64URL_NOPAD.encode(&payload)
        );
        for bad in [
            forged.as_str(),
            "",
            "dt1.",
            "dt1..",
            "dt1.AAAA.AAAA",
            "dt2.x.y",
            &token[..token.len() - 2],
            &"a".repeat(10_000),
        ] {
            assert!(
                keys.verify(bad, "ana@example.com", "phone-1", NOW)
                    .is_none(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_token_signed_under_a_previous_master_key_still_verifies() {
        let old = MasterKey::from_bytes([1; 32]);
        let token = DeviceTokenKeys::derive(&MasterKeyRing::from(old)).issue(
            "ana@example.com",
            "phone-1",
            NOW,
            [7; 16],
        );
        let rotated = MasterKeyRing::new(
            MasterKey::from_bytes([2; 32]),
            vec![MasterKey::from_bytes([1; 32])],
        );
        assert!(
            DeviceTokenKeys::derive(&rotated)
                .verify(&token, "ana@example.com", "phone-1", NOW)
                .is_some()
        );
    }
}
