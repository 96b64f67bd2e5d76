//! Access tokens (EdDSA JWS). Two modes, picked by the first byte:
//! - arbitrary text is verified (and its `kid` peeked): nothing panics, and anything that
//!   verifies is byte for byte the token our key signs for the claims it carries;
//! - claims built from the input are signed, one byte of the token is optionally changed,
//!   and the result is verified: it verifies only unchanged, to exactly those claims.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tessera_core::ids::{SessionId, UserId};
use tessera_core::jwt::{self, AccessClaims, Expectations, JwtError, SigningKey, VerifyingKey};
use time::OffsetDateTime;

const ISSUER: &str = "https://auth.example";
const AUDIENCE: &str = "tessera";
const NOW: i64 = 1_700_000_000;

fn keys() -> &'static (SigningKey, VerifyingKey) {
    static KEYS: OnceLock<(SigningKey, VerifyingKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key = SigningKey::from_seed(&[3; 32]);
        let vk = key.verifying_key();
        (key, vk)
    })
}

fn verify(token: &str) -> std::result::Result<AccessClaims, JwtError> {
    let (_, vk) = keys();
    let expect = Expectations {
        issuer: ISSUER,
        audience: AUDIENCE,
        now: OffsetDateTime::from_unix_timestamp(NOW).expect("a valid instant"),
        leeway_secs: 30,
    };
    jwt::verify(
        token,
        |kid| (kid == vk.kid().as_str()).then_some(vk),
        &expect,
    )
}

fn claims(u: &mut Unstructured<'_>) -> Result<AccessClaims> {
    let iat = NOW + i64::from(u.int_in_range(-4000i32..=100)?);
    Ok(AccessClaims {
        iss: if u.arbitrary()? {
            ISSUER.into()
        } else {
            u.arbitrary()?
        },
        aud: if u.arbitrary()? {
            AUDIENCE.into()
        } else {
            u.arbitrary()?
        },
        sub: UserId::from_random(u.arbitrary()?),
        sid: SessionId::from_random(u.arbitrary()?),
        iat,
        exp: iat + i64::from(u.int_in_range(-100i32..=4000)?),
        auth_time: u.arbitrary()?,
        amr: u.arbitrary()?,
        acr: u.arbitrary()?,
    })
}

fn signed_then_tampered(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let claims = claims(&mut u)?;
    let (key, _) = keys();
    let token = key.sign(&claims);
    let mut bytes = token.clone().into_bytes();
    if u.arbitrary()? {
        let at = u.choose_index(bytes.len())?;
        bytes[at] = u.arbitrary()?;
    }
    let Ok(presented) = String::from_utf8(bytes) else {
        return Ok(());
    };
    if let Ok(accepted) = verify(&presented) {
        assert_eq!(presented, token, "a changed token verified");
        assert_eq!(accepted, claims);
    } else if presented == token {
        // Our own untampered token fails only for its claims, never as malformed.
        let e = verify(&token).expect_err("just failed");
        assert!(
            matches!(
                e,
                JwtError::Expired | JwtError::NotYetValid | JwtError::WrongIssuerOrAudience
            ),
            "{e:?}"
        );
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        let _ = jwt::peek_kid(text);
        if let Ok(claims) = verify(text) {
            assert_eq!(keys().0.sign(&claims), text, "an accepted token re-encodes");
        }
    } else {
        let _ = signed_then_tampered(rest);
    }
});
