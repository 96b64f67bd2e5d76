//! Secrets at rest: AEAD sealing under the master key.
//!
//! Sealed layout: `b"T1" | key id (8 bytes) | nonce (24) | XChaCha20-Poly1305 ciphertext`.
//! The associated data binds a sealed value to its purpose and its owner (a user id or a
//! key id), so a ciphertext copied to another row or another purpose fails to open. The
//! key id lets a later master key coexist with the old one while values are re-sealed:
//! a [`MasterKeyRing`] seals with its current key and opens with whichever loaded key the
//! sealed value names.

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

    /// A key for another purpose (e.g. signing device tokens), derived so that it reveals
    /// nothing about the master key or about keys derived for other purposes.
    pub fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        let mut material = Zeroizing::new(Vec::with_capacity(64 + purpose.len()));
        material.extend_from_slice(b"tessera:derive:v1:");
        material.extend_from_slice(purpose.as_bytes());
        material.push(0);
        material.extend_from_slice(&*self.key);
        Zeroizing::new(sha256(&material))
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

/// The id of the key a sealed value names, or None when the value is malformed.
fn sealed_key_id(sealed: &[u8]) -> Option<&[u8]> {
    sealed
        .strip_prefix(MAGIC.as_slice())
        .and_then(|rest| rest.get(..KEY_ID_LEN))
}

/// The master keys a node holds: the current one, which seals every new value, and the
/// previous ones, which only open values sealed before a rotation. `Debug` shows ids only.
pub struct MasterKeyRing {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl std::fmt::Debug for MasterKeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeyRing")
            .field("current", &self.current)
            .field("previous", &self.previous)
            .finish()
    }
}

impl From<MasterKey> for MasterKeyRing {
    fn from(current: MasterKey) -> Self {
        Self::new(current, Vec::new())
    }
}

impl MasterKeyRing {
    /// A previous key with the current key's id (the same key given twice) is dropped,
    /// and so is a repeated previous key.
    pub fn new(current: MasterKey, previous: Vec<MasterKey>) -> Self {
        let mut kept: Vec<MasterKey> = Vec::with_capacity(previous.len());
        for key in previous {
            if key.id != current.id && kept.iter().all(|k| k.id != key.id) {
                kept.push(key);
            }
        }
        Self {
            current,
            previous: kept,
        }
    }

    /// The key every new value is sealed with.
    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// The keys kept only to open values sealed before a rotation.
    pub fn previous(&self) -> &[MasterKey] {
        &self.previous
    }

    /// Seals with the current key (see [`MasterKey::seal`]).
    pub fn seal(
        &self,
        nonce: [u8; NONCE_LEN],
        purpose: &str,
        owner: &str,
        plaintext: &[u8],
    ) -> Vec<u8> {
        self.current.seal(nonce, purpose, owner, plaintext)
    }

    /// Opens with the loaded key the sealed value names; `UnknownKey` when none is loaded.
    pub fn open(
        &self,
        sealed: &[u8],
        purpose: &str,
        owner: &str,
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let id = sealed_key_id(sealed).ok_or(SealError::Malformed)?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey(data_encoding::HEXLOWER.encode(id)))?;
        key.open(sealed, purpose, owner)
    }

    /// True when `sealed` names the current key (it needs no re-sealing). Says nothing
    /// about whether it opens.
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        sealed_key_id(sealed) == Some(self.current.id.as_slice())
    }

    /// Opens `sealed` with whichever loaded key it names and seals the plaintext again
    /// under the current key with a fresh `nonce`; None when it already is under the
    /// current key (nothing to do).
    pub fn reseal(
        &self,
        nonce: [u8; NONCE_LEN],
        sealed: &[u8],
        purpose: &str,
        owner: &str,
    ) -> Result<Option<Vec<u8>>, SealError> {
        if self.is_current(sealed) {
            return Ok(None);
        }
        let plaintext = self.open(sealed, purpose, owner)?;
        Ok(Some(self.seal(nonce, purpose, owner, &plaintext)))
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

    fn ring(current: u8, previous: &[u8]) -> MasterKeyRing {
        MasterKeyRing::new(
            MasterKey::from_bytes([current; 32]),
            previous
                .iter()
                .map(|b| MasterKey::from_bytes([*b; 32]))
                .collect(),
        )
    }

    fn key_id_hex(sealed: &[u8]) -> String {
        data_encoding::HEXLOWER.encode(&sealed[2..2 + KEY_ID_LEN])
    }

    #[test]
    fn a_value_sealed_under_a_previous_key_opens_and_reseals_under_the_current_one() {
        let old = MasterKey::from_bytes([1; 32]);
        let sealed = old.seal([3; 24], "totp", "user-1", b"JBSWY3DPEHPK3PXP");
        let keys = ring(2, &[1]);
        assert!(!keys.is_current(&sealed));
        assert_eq!(
            &*keys.open(&sealed, "totp", "user-1").unwrap(),
            b"JBSWY3DPEHPK3PXP"
        );
        assert_eq!(keys.open(&sealed, "totp", "user-2"), Err(SealError::Forged));

        let resealed = keys
            .reseal([4; 24], &sealed, "totp", "user-1")
            .unwrap()
            .unwrap();
        assert!(keys.is_current(&resealed));
        assert_eq!(key_id_hex(&resealed), keys.current().id_hex());
        assert_eq!(
            &*keys.open(&resealed, "totp", "user-1").unwrap(),
            b"JBSWY3DPEHPK3PXP"
        );
        // Already current: nothing to do.
        assert_eq!(keys.reseal([5; 24], &resealed, "totp", "user-1"), Ok(None));
        // The current key alone opens it; the old key alone no longer does.
        let only_new = ring(2, &[]);
        assert!(only_new.open(&resealed, "totp", "user-1").is_ok());
        assert!(matches!(
            MasterKeyRing::from(MasterKey::from_bytes([1; 32])).open(&resealed, "totp", "user-1"),
            Err(SealError::UnknownKey(id)) if id == only_new.current().id_hex()
        ));
    }

    #[test]
    fn the_ring_seals_with_the_current_key_only() {
        let keys = ring(2, &[1, 3]);
        let sealed = keys.seal([6; 24], "signing-key", "kid-1", b"seed");
        assert!(keys.is_current(&sealed));
        assert_eq!(key_id_hex(&sealed), MasterKey::from_bytes([2; 32]).id_hex());
    }

    #[test]
    fn a_value_under_a_key_not_in_the_ring_fails_as_unknown() {
        let stranger = MasterKey::from_bytes([9; 32]);
        let sealed = stranger.seal([0; 24], "totp", "user-1", b"secret");
        let keys = ring(2, &[1]);
        assert_eq!(
            keys.open(&sealed, "totp", "user-1"),
            Err(SealError::UnknownKey(stranger.id_hex()))
        );
        assert_eq!(
            keys.reseal([0; 24], &sealed, "totp", "user-1"),
            Err(SealError::UnknownKey(stranger.id_hex()))
        );
        assert_eq!(
            keys.open(b"T1", "totp", "user-1"),
            Err(SealError::Malformed)
        );
        assert!(!keys.is_current(b"XX"));
    }

    #[test]
    fn the_ring_drops_repeated_keys_and_never_prints_key_material() {
        let keys = ring(2, &[2, 1, 1]);
        assert_eq!(keys.previous().len(), 1);
        let shown = format!("{keys:?}");
        assert!(shown.contains(&keys.current().id_hex()), "{shown}");
        assert!(!shown.contains("[2, 2"), "{shown}");
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
