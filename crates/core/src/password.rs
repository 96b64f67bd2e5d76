//! Passwords: the registration policy and Argon2id hashing.
//!
//! Hashing is CPU-bound and deliberately slow; callers run it on a blocking thread. The
//! salt is an argument so this module never draws randomness itself.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use secrecy::{ExposeSecret, SecretString};

use crate::ids::InvalidField;

/// A password as presented. `Debug` never shows it.
#[derive(Clone)]
pub struct Password(SecretString);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl Password {
    /// A password offered at login: anything from 1 to 256 characters. Shorter or longer
    /// input cannot be a password we accepted at registration.
    pub fn presented(raw: String) -> Result<Self, InvalidField> {
        let n = raw.chars().count();
        if n == 0 || n > 256 {
            return Err(InvalidField("must be 1 to 256 characters"));
        }
        Ok(Self(SecretString::from(raw)))
    }

    /// A password chosen at registration or on change: 8 to 256 characters.
    pub fn new_choice(raw: String) -> Result<Self, InvalidField> {
        let n = raw.chars().count();
        if !(8..=256).contains(&n) {
            return Err(InvalidField("must be 8 to 256 characters"));
        }
        Ok(Self(SecretString::from(raw)))
    }

    fn bytes(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }
}

/// A PHC-format Argon2id hash string, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash([redacted])")
    }
}

impl PasswordHash {
    pub fn from_stored(phc: String) -> Self {
        Self(phc)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Argon2id with the OWASP parameters (m = 19 MiB, t = 2, p = 1), the crate's default.
fn hasher() -> Argon2<'static> {
    Argon2::default()
}

pub fn hash(password: &Password, salt: &[u8; 16]) -> Result<PasswordHash, HashError> {
    hasher()
        .hash_password_with_salt(password.bytes(), salt)
        .map(|h| PasswordHash(h.to_string()))
        .map_err(|e| HashError(e.to_string()))
}

/// True only when `password` matches. A malformed stored hash is a mismatch, never a panic.
pub fn verify(password: &Password, stored: &PasswordHash) -> bool {
    hasher()
        .verify_password(password.bytes(), stored.as_str())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_own_password_only() {
        let pw = Password::new_choice("correct horse battery".into()).unwrap();
        let h = hash(&pw, &[7; 16]).unwrap();
        assert!(h.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(&pw, &h));
        let other = Password::presented("correct horse battery!".into()).unwrap();
        assert!(!verify(&other, &h));
        assert!(!verify(&pw, &PasswordHash::from_stored("garbage".into())));
    }

    #[test]
    fn the_registration_policy_counts_characters() {
        assert!(Password::new_choice("short".into()).is_err());
        assert!(Password::new_choice("ééééééé".into()).is_err());
        assert!(Password::new_choice("éééééééé".into()).is_ok());
        assert!(Password::new_choice("x".repeat(257)).is_err());
        assert!(Password::presented(String::new()).is_err());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let pw = Password::presented("hunter2hunter2".into()).unwrap();
        assert!(!format!("{pw:?}").contains("hunter2"));
    }
}
