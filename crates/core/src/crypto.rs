//! Secrets at rest: AEAD sealing under the master key.
//!
//! Sealed layout: `b"T1" | key id (8 bytes) | nonce (24) | XChaCha20-Poly1305 ciphertext`.
//! The associated data binds a sealed value to its purpose and its owner (a user id or a
//! key id), so a ciphertext copied to another row or another purpose fails to open. The
//! key id lets a later master key coexist with the old one while values are re-sealed.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::secret::{RefreshToken, sha256};

const MAGIC: &[u8; 2] = b"T1";
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;

/// The 32-byte master key. `Debug` shows only its id.
pub struct MasterKey {
    key: Zeroizing<[u8; 32]>,
    id: [u8; KEY_ID_LEN],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(id={})", self.id_hex())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed under master key {0}, which is not loaded")]
    UnknownKey(String),
    #[error("sealed value failed authentication (wrong key, purpose or owner)")]
    Forged,
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut tagged = Zeroizing::new(Vec::with_capacity(48));
        tagged.extend_from_slice(b"tessera-master-key-id:");
        tagged.extend_from_slice(&bytes);
        let digest = sha256(&tagged);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self {
            key: Zeroizing::new(bytes),
            id,
        }
    }

    /// A non-secret name for this key, safe to log.
    pub fn id_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.id)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&(*self.key).into())
    }

    /// Seals `plaintext` for `purpose` and `owner`. `nonce` must be fresh random bytes.
    pub fn seal(
        &self,
        nonce: [u8; NONCE_LEN],
        purpose: &str,
        owner: &str,
        plaintext: &[u8],
    ) -> Vec<u8> {
        let aad = aad(purpose, owner, &self.id);
        let ct = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .unwrap_or_default(); // encryption only fails for inputs over 256 GiB
        let mut out = Vec::with_capacity(2 + KEY_ID_LEN + NONCE_LEN + ct.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(
        &self,
        sealed: &[u8],
        purpose: &str,
        owner: &str,
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let rest = sealed
            .strip_prefix(MAGIC.as_slice())
            .ok_or(SealError::Malformed)?;
        if rest.len() < KEY_ID_LEN + NONCE_LEN + 16 {
            return Err(SealError::Malformed);
        }
        let (id, rest) = rest.split_at(KEY_ID_LEN);
        if id != self.id {
            return Err(SealError::UnknownKey(data_encoding::HEXLOWER.encode(id)));
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Malformed)?;
        let aad = aad(purpose, owner, &self.id);
        self.cipher()
            .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| SealError::Forged)
    }
}

fn aad(purpose: &str, owner: &str, key_id: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + purpose.len() + owner.len());
    aad.extend_from_slice(b"tessera:v1:");
    aad.extend_from_slice(purpose.as_bytes());
    aad.push(0);
    aad.extend_from_slice(owner.as_bytes());
    aad.push(0);
    aad.extend_from_slice(key_id);
    aad
}

/// Seals a rotated-in successor so that only the holder of the presented token can read
/// it back (for the refresh retry window). The key is derived from the presented token,
/// so the database alone never yields a usable token. Each presented token is rotated at
/// most once, so each derived key seals exactly one message and a fixed nonce is safe.
pub fn seal_successor(presented: &RefreshToken, successor: &RefreshToken) -> Vec<u8> {
    successor_cipher(presented)
        .encrypt(&XNonce::default(), successor.bytes().as_slice())
        .unwrap_or_default()
}

pub fn open_successor(presented: &RefreshToken, sealed: &[u8]) -> Option<RefreshToken> {
    let pt = Zeroizing::new(
        successor_cipher(presented)
            .decrypt(&XNonce::default(), sealed)
            .ok()?,
    );
    let bytes: [u8; 32] = pt.as_slice().try_into().ok()?;
    Some(RefreshToken::from_random(bytes))
}

fn successor_cipher(presented: &RefreshToken) -> XChaCha20Poly1305 {
    let mut material = Zeroizing::new(Vec::with_capacity(64));
    material.extend_from_slice(b"tessera:refresh-successor:v1:");
    material.extend_from_slice(presented.bytes());
    let key = Zeroizing::new(sha256(&material));
    XChaCha20Poly1305::new(&(*key).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_for_its_purpose_owner_and_key() {
        let k = MasterKey::from_bytes([1; 32]);
        let sealed = k.seal([9; 24], "totp", "user-1", b"JBSWY3DPEHPK3PXP");
        assert_eq!(
            &*k.open(&sealed, "totp", "user-1").unwrap(),
            b"JBSWY3DPEHPK3PXP"
        );
        assert_eq!(k.open(&sealed, "totp", "user-2"), Err(SealError::Forged));
        assert_eq!(
            k.open(&sealed, "signing-key", "user-1"),
            Err(SealError::Forged)
        );
        let other = MasterKey::from_bytes([2; 32]);
        assert!(matches!(
            other.open(&sealed, "totp", "user-1"),
            Err(SealError::UnknownKey(_))
        ));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(k.open(&flipped, "totp", "user-1"), Err(SealError::Forged));
        assert_eq!(
            k.open(b"T1short", "totp", "user-1"),
            Err(SealError::Malformed)
        );
    }

    #[test]
    fn the_plaintext_does_not_appear_in_the_sealed_bytes() {
        let k = MasterKey::from_bytes([1; 32]);
        let sealed = k.seal([0; 24], "p", "o", b"very secret value");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn a_successor_opens_only_with_the_token_it_was_sealed_for() {
        let presented = RefreshToken::from_random([1; 32]);
        let successor = RefreshToken::from_random([2; 32]);
        let sealed = seal_successor(&presented, &successor);
        assert_eq!(open_successor(&presented, &sealed), Some(successor.clone()));
        assert_eq!(open_successor(&successor, &sealed), None);
    }
}
