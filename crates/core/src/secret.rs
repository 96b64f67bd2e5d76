//! Secret values: opaque tokens (refresh tokens, MFA challenge tokens) and the SHA-256
//! hash type every stored secret (those tokens, recovery codes) shares.
//!
//! A token is 32 random bytes shown to the client once as base64url; only its SHA-256 is
//! stored. `Debug` prints a short prefix of the hash at most.

use std::marker::PhantomData;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

const TOKEN_BYTES: usize = 32;
/// Base64url without padding of 32 bytes.
const TOKEN_CHARS: usize = 43;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed token")]
pub struct MalformedToken;

/// An opaque bearer secret: 32 random bytes written `<prefix><43 base64url chars>`,
/// stored only as its SHA-256.
macro_rules! opaque_token {
    ($(#[$m:meta])* $name:ident, $prefix:literal) => {
        $(#[$m])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
        pub struct $name([u8; TOKEN_BYTES]);

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl $name {
            /// Wraps fresh random bytes drawn by the caller.
            pub fn from_random(bytes: [u8; TOKEN_BYTES]) -> Self {
                Self(bytes)
            }

            /// Parses the string form; anything but the one canonical spelling is malformed.
            pub fn parse(raw: &str) -> Result<Self, MalformedToken> {
                let body = raw.strip_prefix($prefix).ok_or(MalformedToken)?;
                if body.len() != TOKEN_CHARS {
                    return Err(MalformedToken);
                }
                let mut out = [0u8; TOKEN_BYTES];
                let n = data_encoding::BASE64URL_NOPAD
                    .decode_mut(body.as_bytes(), &mut out)
                    .map_err(|_| MalformedToken)?;
                if n != TOKEN_BYTES {
                    return Err(MalformedToken);
                }
                // Non-canonical encodings (stray low bits in the last char) would make two
                // strings name one token; refuse them so a token has exactly one spelling.
                let token = Self(out);
                if token.expose() != raw {
                    return Err(MalformedToken);
                }
                Ok(token)
            }

            /// The string handed to the client. Call only to put it in a response.
            pub fn expose(&self) -> String {
                format!("{}{}", $prefix, data_encoding::BASE64URL_NOPAD.encode(&self.0))
            }

            pub fn hash(&self) -> TokenHash {
                TokenHash::digest(&self.0)
            }

            #[allow(dead_code)]
            pub(crate) fn bytes(&self) -> &[u8; TOKEN_BYTES] {
                &self.0
            }
        }
    };
}

opaque_token!(
    /// A refresh token (256 bits of entropy); one per session is valid at a time.
    RefreshToken,
    "rt_"
);
opaque_token!(
    /// The single-use token of a login waiting for its second factor.
    MfaToken,
    "mt_"
);
opaque_token!(
    /// The single-use token of an emailed password-reset link (valid 30 minutes).
    ResetToken,
    "pr_"
);

/// SHA-256 of a secret: what storage keeps and looks up by. `K` names what was hashed,
/// so a recovery-code hash cannot stand where a token hash is expected; equality is
/// constant-time and `Debug` prints a short prefix at most.
///
/// ```compile_fail,E0308
/// use tessera_core::mfa::recovery::{RecoveryCode, RecoveryCodeHash};
/// use tessera_core::secret::TokenHash;
/// let code: RecoveryCodeHash = RecoveryCode::from_random([0; 15]).hash();
/// let token: TokenHash = code;
/// ```
pub struct Sha256Hash<K>([u8; 32], PhantomData<K>);

/// What a [`Sha256Hash`] is the hash of; `NAME` is what its `Debug` prints.
pub trait HashKind {
    const NAME: &'static str;
}

/// Hashes of opaque tokens (refresh, MFA challenge, password reset).
pub enum OpaqueToken {}
impl HashKind for OpaqueToken {
    const NAME: &'static str = "TokenHash";
}

/// SHA-256 of an opaque token: what storage keeps and looks up by.
pub type TokenHash = Sha256Hash<OpaqueToken>;

impl<K> Sha256Hash<K> {
    /// Hashes `data`; a domain-separation prefix, if any, is the caller's to prepend.
    pub(crate) fn digest(data: &[u8]) -> Self {
        Self(sha256(data), PhantomData)
    }
    pub fn from_stored(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes)
            .ok()
            .map(|b| Self(b, PhantomData))
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

// By hand, not derived: a derive would ask the uninhabited kind to be `Clone` too.
impl<K> Clone for Sha256Hash<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K> Copy for Sha256Hash<K> {}

impl<K> PartialEq for Sha256Hash<K> {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl<K> Eq for Sha256Hash<K> {}

impl<K: HashKind> std::fmt::Debug for Sha256Hash<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}({}…)",
            K::NAME,
            data_encoding::HEXLOWER.encode(&self.0[..4])
        )
    }
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = Sha256::digest(data);
    let mut out = [0u8; 32];
    out.copy_from_slice(&digest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_token_round_trips_through_its_string_form() {
        let t = RefreshToken::from_random([42; 32]);
        let s = t.expose();
        assert!(s.starts_with("rt_"));
        assert_eq!(RefreshToken::parse(&s).unwrap(), t);
        assert_eq!(RefreshToken::parse(&s).unwrap().hash(), t.hash());
    }

    #[test]
    fn token_kinds_do_not_parse_as_each_other() {
        let rt = RefreshToken::from_random([7; 32]).expose();
        let mt = MfaToken::from_random([7; 32]).expose();
        assert!(mt.starts_with("mt_"));
        assert!(MfaToken::parse(&rt).is_err());
        assert!(RefreshToken::parse(&mt).is_err());
        assert_eq!(
            MfaToken::parse(&mt).unwrap().hash(),
            RefreshToken::parse(&rt).unwrap().hash()
        );
    }

    #[test]
    fn debug_output_hides_the_token() {
        let t = RefreshToken::from_random([42; 32]);
        assert_eq!(format!("{t:?}"), "RefreshToken([redacted])");
        assert!(!format!("{:?}", t.hash()).contains(&data_encoding::HEXLOWER.encode(&t.hash().0)));
    }

    #[test]
    fn each_hash_kind_debugs_under_its_own_name() {
        let token = RefreshToken::from_random([42; 32]).hash();
        let code = crate::mfa::recovery::RecoveryCode::from_random([42; 15]).hash();
        assert!(format!("{token:?}").starts_with("TokenHash("));
        assert!(format!("{code:?}").starts_with("RecoveryCodeHash("));
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics_and_only_accepts_canonical_tokens(s in ".{0,80}") {
            if let Ok(t) = RefreshToken::parse(&s) {
                prop_assert_eq!(t.expose(), s);
            }
        }

        #[test]
        fn every_token_round_trips(bytes in proptest::array::uniform32(any::<u8>())) {
            let t = RefreshToken::from_random(bytes);
            prop_assert_eq!(RefreshToken::parse(&t.expose()).unwrap(), t);
        }

        #[test]
        fn a_changed_character_is_another_token_or_malformed(
            bytes in proptest::array::uniform32(any::<u8>()), idx in 3usize..46, c in "[A-Za-z0-9_-]"
        ) {
            let t = RefreshToken::from_random(bytes);
            let mut s = t.expose();
            prop_assume!(s[idx..idx + 1] != c);
            s.replace_range(idx..idx + 1, &c);
            // One spelling per token: a different string never names the same token.
            if let Ok(other) = RefreshToken::parse(&s) {
                prop_assert_ne!(other.hash(), t.hash());
            }
        }
    }
}
