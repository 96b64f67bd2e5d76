//! The signing key ring: the Ed25519 key that signs access tokens and every public key
//! that may still verify one. Seeds are stored sealed under the master key; a node that
//! meets an unknown `kid` (another node created a key) reloads, at most every few seconds.
//! Seeds open under any loaded master key (current or previous), so a node deployed with
//! a new master key keeps signing with the stored key until `rotate_master_key` re-seals it.

use std::sync::{Arc, Mutex, RwLock};

use tessera_core::crypto::MasterKeyRing;
use tessera_core::ids::KeyId;
use tessera_core::jwt::{self, AccessClaims, Expectations, JwtError, SigningKey, VerifyingKey};
use time::{Duration, OffsetDateTime};

use crate::error::{AppError, random};
use crate::ports::{KeyStore, StoredSigningKey};

pub(crate) const SEAL_PURPOSE: &str = "signing-key";
const RELOAD_EVERY: Duration = Duration::seconds(5);

pub struct KeyRing {
    master: MasterKeyRing,
    keys: RwLock<Keys>,
    last_reload: Mutex<OffsetDateTime>,
}

struct Keys {
    signing: Arc<SigningKey>,
    verifying: Vec<VerifyingKey>,
}

#[derive(Debug, thiserror::Error)]
#[error("signing key {kid} cannot be opened with the configured master keys: {source}")]
pub struct KeyOpenError {
    kid: String,
    #[source]
    source: tessera_core::crypto::SealError,
}

impl KeyRing {
    /// Loads the stored keys, creating the first signing key when there is none.
    pub async fn load<S: KeyStore>(
        store: &S,
        master: MasterKeyRing,
        now: OffsetDateTime,
    ) -> Result<Self, AppError> {
        let mut stored = store.list_signing_keys().await?;
        if stored.is_empty() {
            let key = SigningKey::from_seed(&random::<32>()?);
            let sealed_seed =
                master.seal(random()?, SEAL_PURPOSE, key.kid().as_str(), &*key.seed());
            store
                .insert_signing_key(&StoredSigningKey {
                    kid: key.kid().clone(),
                    public_key: key.verifying_key().to_bytes(),
                    sealed_seed,
                    created_at: now,
                })
                .await?;
            tracing::info!(kid = key.kid().as_str(), "created a new signing key");
            stored = store.list_signing_keys().await?;
        }
        let keys = Self::open(&master, &stored)?;
        if let Some(newest) = stored.first()
            && !master.is_current(&newest.sealed_seed)
        {
            tracing::warn!(
                kid = newest.kid.as_str(),
                current_master_key = %master.current().id_hex(),
                "the signing key is sealed under a previous master key; run \
                 `tessera admin rotate-master-key` to re-seal it"
            );
        }
        Ok(Self {
            master,
            keys: RwLock::new(keys),
            last_reload: Mutex::new(now),
        })
    }

    fn open(master: &MasterKeyRing, stored: &[StoredSigningKey]) -> Result<Keys, AppError> {
        let newest = stored
            .first()
            .ok_or_else(|| AppError::Internal("no signing key stored".into()))?;
        let seed = master
            .open(&newest.sealed_seed, SEAL_PURPOSE, newest.kid.as_str())
            .map_err(|source| {
                AppError::internal(KeyOpenError {
                    kid: newest.kid.as_str().to_owned(),
                    source,
                })
            })?;
        let seed: [u8; 32] = seed
            .as_slice()
            .try_into()
            .map_err(|_| AppError::Internal("stored signing seed has the wrong length".into()))?;
        let signing = SigningKey::from_seed(&seed);
        if signing.kid() != &newest.kid {
            return Err(AppError::Internal(
                "stored signing key does not match its kid".into(),
            ));
        }
        let verifying = stored
            .iter()
            .filter_map(|k| {
                VerifyingKey::from_bytes(
                    KeyId::from_stored(k.kid.as_str().to_owned()),
                    &k.public_key,
                )
            })
            .collect();
        Ok(Keys {
            signing: Arc::new(signing),
            verifying,
        })
    }

    /// The master keys, for sealing other secrets at rest (seal with the current key,
    /// open with any).
    pub fn master(&self) -> &MasterKeyRing {
        &self.master
    }

    pub fn sign(&self, claims: &AccessClaims) -> String {
        let signing = match self.keys.read() {
            Ok(k) => Arc::clone(&k.signing),
            Err(poisoned) => Arc::clone(&poisoned.into_inner().signing),
        };
        signing.sign(claims)
    }

    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = match self.keys.read() {
            Ok(k) => k.verifying.iter().map(VerifyingKey::to_jwk).collect(),
            Err(poisoned) => poisoned
                .into_inner()
                .verifying
                .iter()
                .map(VerifyingKey::to_jwk)
                .collect(),
        };
        serde_json::json!({ "keys": keys })
    }

    pub fn verify(&self, token: &str, expect: &Expectations<'_>) -> Result<AccessClaims, JwtError> {
        let keys = match self.keys.read() {
            Ok(k) => k,
            Err(poisoned) => poisoned.into_inner(),
        };
        jwt::verify(
            token,
            |kid| keys.verifying.iter().find(|k| k.kid().as_str() == kid),
            expect,
        )
    }

    /// Re-reads the stored keys unless that was done within the last few seconds; true
    /// when it did reload.
    pub async fn reload_if_stale<S: KeyStore>(
        &self,
        store: &S,
        now: OffsetDateTime,
    ) -> Result<bool, AppError> {
        {
            let mut last = match self.last_reload.lock() {
                Ok(l) => l,
                Err(poisoned) => poisoned.into_inner(),
            };
            if now - *last < RELOAD_EVERY {
                return Ok(false);
            }
            *last = now;
        }
        let stored = store.list_signing_keys().await?;
        let fresh = Self::open(&self.master, &stored)?;
        match self.keys.write() {
            Ok(mut k) => *k = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(true)
    }
}
