//! EdDSA (Ed25519) access tokens: compact JWS with the claims of the API contract.
//!
//! Signing and verification are done here directly on `ed25519-dalek` rather than through
//! a general JWT library: only one algorithm is ever accepted, so there is no `alg`
//! confusion to defend against, and the test suite verifies our tokens with an
//! independent library through the JWKS.

use data_encoding::BASE64URL_NOPAD as B64;
use ed25519_dalek::Signer;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{KeyId, SessionId, UserId};

/// How the session's user authenticated (RFC 8176 `amr`) and the assurance level that
/// gives (`acr`): a password alone is AAL1, a password plus TOTP or a recovery code AAL2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assurance {
    Password,
    PasswordAndOtp,
}

impl Assurance {
    pub fn amr(self) -> Vec<String> {
        match self {
            Self::Password => vec!["pwd".into()],
            Self::PasswordAndOtp => vec!["pwd".into(), "otp".into()],
        }
    }
    pub fn acr(self) -> &'static str {
        match self {
            Self::Password => "aal1",
            Self::PasswordAndOtp => "aal2",
        }
    }
    pub fn parse_acr(raw: &str) -> Option<Self> {
        match raw {
            "aal1" => Some(Self::Password),
            "aal2" => Some(Self::PasswordAndOtp),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: UserId,
    pub sid: SessionId,
    pub iat: i64,
    pub exp: i64,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: String,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    kid: String,
}

/// A private Ed25519 signing key with its `kid`. `Debug` shows only the kid.
pub struct SigningKey {
    kid: KeyId,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(kid={})", self.kid.as_str())
    }
}

impl SigningKey {
    /// Builds a key from a 32-byte seed (fresh random bytes, or the stored seed).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        let kid = KeyId::for_public_key(key.verifying_key().as_bytes());
        Self { kid, key }
    }
    pub fn kid(&self) -> &KeyId {
        &self.kid
    }
    /// The seed, for sealing under the master key and nothing else.
    pub fn seed(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.key.to_bytes())
    }
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            kid: self.kid.clone(),
            key: self.key.verifying_key(),
        }
    }

    pub fn sign(&self, claims: &AccessClaims) -> String {
        let header = Header {
            alg: "EdDSA".into(),
            typ: Some("JWT".into()),
            kid: self.kid.as_str().to_owned(),
        };
        // Serializing these plain structs cannot fail.
        let h = B64.encode(&serde_json::to_vec(&header).unwrap_or_default());
        let c = B64.encode(&serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{h}.{c}");
        let sig = self.key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", B64.encode(&sig.to_bytes()))
    }
}

/// A public key as published in the JWKS.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    kid: KeyId,
    key: ed25519_dalek::VerifyingKey,
}

impl VerifyingKey {
    pub fn from_bytes(kid: KeyId, public: &[u8; 32]) -> Option<Self> {
        ed25519_dalek::VerifyingKey::from_bytes(public)
            .ok()
            .map(|key| Self { kid, key })
    }
    pub fn kid(&self) -> &KeyId {
        &self.kid
    }
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
    /// The RFC 8037 JWK form.
    pub fn to_jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": B64.encode(self.key.as_bytes()),
            "kid": self.kid.as_str(),
            "alg": "EdDSA",
            "use": "sig",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token is not a well-formed JWS")]
    Malformed,
    #[error("token names an algorithm other than EdDSA")]
    WrongAlgorithm,
    #[error("token is signed by an unknown key")]
    UnknownKey(String),
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is issued in the future")]
    NotYetValid,
    #[error("token has the wrong issuer or audience")]
    WrongIssuerOrAudience,
}

/// What a verifier needs besides the token.
pub struct Expectations<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub now: OffsetDateTime,
    /// Clock skew tolerated between nodes for `iat`.
    pub leeway_secs: i64,
}

/// Reads the `kid` without verifying anything, so the caller can find (or reload) the key.
pub fn peek_kid(token: &str) -> Result<String, JwtError> {
    let (h, _) = token.split_once('.').ok_or(JwtError::Malformed)?;
    Ok(decode_header(h)?.kid)
}

fn decode_header(h: &str) -> Result<Header, JwtError> {
    let bytes = B64.decode(h.as_bytes()).map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

pub fn verify<'k>(
    token: &str,
    key_for: impl Fn(&str) -> Option<&'k VerifyingKey>,
    expect: &Expectations<'_>,
) -> Result<AccessClaims, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header = decode_header(h)?;
    if header.alg != "EdDSA" {
        return Err(JwtError::WrongAlgorithm);
    }
    let key = key_for(&header.kid).ok_or_else(|| JwtError::UnknownKey(header.kid.clone()))?;
    let sig_bytes = B64.decode(s.as_bytes()).map_err(|_| JwtError::Malformed)?;
    let sig = ed25519_dalek::Signature::from_slice(&sig_bytes).map_err(|_| JwtError::Malformed)?;
    let signing_input_len = h.len() + 1 + c.len();
    let signing_input = token.get(..signing_input_len).ok_or(JwtError::Malformed)?;
    key.key
        .verify_strict(signing_input.as_bytes(), &sig)
        .map_err(|_| JwtError::BadSignature)?;
    let claims: AccessClaims = B64
        .decode(c.as_bytes())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    let now = expect.now.unix_timestamp();
    if claims.exp <= now {
        return Err(JwtError::Expired);
    }
    if claims.iat > now + expect.leeway_secs {
        return Err(JwtError::NotYetValid);
    }
    if claims.iss != expect.issuer || claims.aud != expect.audience {
        return Err(JwtError::WrongIssuerOrAudience);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn claims(iat: i64, exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://auth.example".into(),
            aud: "tessera".into(),
            sub: UserId::from_random([1; 16]),
            sid: SessionId::from_random([2; 16]),
            iat,
            exp,
            auth_time: iat,
            amr: Assurance::Password.amr(),
            acr: Assurance::Password.acr().into(),
        }
    }

    fn expect(now: i64) -> Expectations<'static> {
        Expectations {
            issuer: "https://auth.example",
            audience: "tessera",
            now: OffsetDateTime::from_unix_timestamp(now).unwrap(),
            leeway_secs: 30,
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let key = SigningKey::from_seed(&[3; 32]);
        let vk = key.verifying_key();
        let token = key.sign(&claims(1000, 1900));
        let lookup = |kid: &str| (kid == vk.kid().as_str()).then_some(&vk);
        assert_eq!(
            verify(&token, lookup, &expect(1000)).unwrap(),
            claims(1000, 1900)
        );
        assert_eq!(
            verify(&token, lookup, &expect(1900)),
            Err(JwtError::Expired)
        );
        assert_eq!(
            verify(&token, lookup, &expect(900)),
            Err(JwtError::NotYetValid)
        );
    }

    #[test]
    fn tampering_with_any_part_is_detected() {
        let key = SigningKey::from_seed(&[3; 32]);
        let vk = key.verifying_key();
        let lookup = |kid: &str| (kid == vk.kid().as_str()).then_some(&vk);
        let token = key.sign(&claims(1000, 1900));
        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims(1000, 1900);
        forged.acr = "aal2".into();
        let payload = B64.encode(&serde_json::to_vec(&forged).unwrap());
        let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
        assert_eq!(
            verify(&tampered, lookup, &expect(1000)),
            Err(JwtError::BadSignature)
        );

        let none_alg = B64.encode(br#"{"alg":"none","kid":"x"}"#);
        let downgraded = format!("{none_alg}.{}.", parts[1]);
        assert_eq!(
            verify(&downgraded, lookup, &expect(1000)),
            Err(JwtError::WrongAlgorithm)
        );

        let stranger = SigningKey::from_seed(&[4; 32]);
        let foreign = stranger.sign(&claims(1000, 1900));
        assert!(matches!(
            verify(&foreign, lookup, &expect(1000)),
            Err(JwtError::UnknownKey(_))
        ));
    }

    #[test]
    fn the_jwk_carries_the_contract_fields() {
        let vk = SigningKey::from_seed(&[3; 32]).verifying_key();
        let jwk = vk.to_jwk();
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(jwk["alg"], "EdDSA");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], vk.kid().as_str());
        assert_eq!(
            B64.decode(jwk["x"].as_str().unwrap().as_bytes()).unwrap(),
            vk.to_bytes()
        );
    }

    proptest! {
        #[test]
        fn verifying_arbitrary_text_never_panics(s in "[A-Za-z0-9_.-]{0,200}") {
            let vk = SigningKey::from_seed(&[3; 32]).verifying_key();
            let lookup = |_: &str| Some(&vk);
            prop_assert!(verify(&s, lookup, &expect(1000)).is_err());
        }

        #[test]
        fn flipping_one_character_of_a_token_invalidates_it(idx in 0usize..400, c in "[A-Za-z0-9_-]") {
            let key = SigningKey::from_seed(&[3; 32]);
            let vk = key.verifying_key();
            let lookup = |kid: &str| (kid == vk.kid().as_str()).then_some(&vk);
            let token = key.sign(&claims(1000, 1900));
            let idx = idx % token.len();
            prop_assume!(&token[idx..idx + 1] != "." && token[idx..idx + 1] != c);
            let mut t = token.clone();
            t.replace_range(idx..idx + 1, &c);
            // A changed character may decode to the same bytes only in the last char of a
            // segment (unused low bits); then the token is still the same token.
            if let Ok(v) = verify(&t, lookup, &expect(1000)) {
                prop_assert_eq!(v, claims(1000, 1900));
            }
        }
    }
}
