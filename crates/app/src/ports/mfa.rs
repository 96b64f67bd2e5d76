//! The MFA store port: TOTP factors, recovery codes, and login second-step challenges.

use std::future::Future;
use std::net::IpAddr;

use tessera_core::ids::{DeviceId, DeviceName, SessionId, UserId};
use tessera_core::mfa::recovery::RecoveryCodeHash;
use tessera_core::password::PasswordHash;
use tessera_core::secret::TokenHash;
use time::OffsetDateTime;

use super::StoreResult;

/// A user's TOTP state. A secret is pending from setup until confirmed, then enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaRecord {
    pub user_id: UserId,
    /// The enabled secret, sealed under the master key (owner: the user id).
    pub sealed_secret: Option<Vec<u8>>,
    pub enabled_at: Option<OffsetDateTime>,
    /// A secret from setup not yet confirmed, sealed likewise.
    pub pending_sealed: Option<Vec<u8>>,
    pub pending_created_at: Option<OffsetDateTime>,
    /// The last TOTP time step accepted (replay guard).
    pub last_step: Option<i64>,
    /// Unused recovery codes.
    pub recovery_codes_remaining: u32,
}

/// The sealed TOTP secrets of one user, as master-key rotation reads and swaps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedTotp {
    pub user_id: UserId,
    /// The enabled secret, if any.
    pub sealed_secret: Option<Vec<u8>>,
    /// The secret from an unconfirmed setup, if any.
    pub pending_sealed: Option<Vec<u8>>,
}

/// A password-verified login waiting for its second factor (the `mfa_token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaChallenge {
    pub token_hash: TokenHash,
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub device_name: Option<DeviceName>,
    pub user_agent: Option<String>,
    pub ip: Option<IpAddr>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// The password hash the first step verified: the challenge stands only while it is
    /// still the user's, so a password change between the two steps voids it however the
    /// two interleave (see `App::sign_in_stands`).
    pub password_hash: PasswordHash,
}

pub trait MfaStore: Send + Sync {
    /// None when the user never set up TOTP (or it was removed).
    fn get_mfa(&self, user: UserId) -> impl Future<Output = StoreResult<Option<MfaRecord>>> + Send;

    /// Stores (or replaces) the pending secret; the enabled secret, if any, is untouched.
    fn replace_pending_totp(
        &self,
        user: UserId,
        sealed: &[u8],
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Atomically: the pending secret becomes the enabled one (if there is a pending secret
    /// and none enabled yet), `last_step` becomes `accepted_step`, and the recovery codes
    /// are replaced by `codes`. False (and nothing changed) otherwise.
    fn enable_totp(
        &self,
        user: UserId,
        accepted_step: i64,
        codes: &[RecoveryCodeHash],
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// The replay guard: records `step` as used only if TOTP is enabled and `step` is
    /// greater than the last accepted step, in one atomic statement. False otherwise, so
    /// of two concurrent uses of one code exactly one passes.
    fn swap_totp_step(
        &self,
        user: UserId,
        step: i64,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Marks an unused recovery code of the user used; false when unknown or already used.
    fn use_recovery_code(
        &self,
        user: UserId,
        code: &RecoveryCodeHash,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Replaces every recovery code of the user (old ones stop working), but only while
    /// the user has an enabled TOTP factor enabled at or before `enabled_by` (the factor
    /// the caller proved, e.g. at the session's last MFA), checked and replaced in one
    /// transaction. False, and nothing changed, otherwise: a reset racing a regeneration
    /// leaves no codes behind for a user without a factor, nor replaces the codes of a
    /// factor enrolled after the caller's proof.
    fn swap_recovery_codes(
        &self,
        user: UserId,
        enabled_by: OffsetDateTime,
        codes: &[RecoveryCodeHash],
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Removes the TOTP factor (enabled and pending) and every recovery code; false when
    /// there was nothing enabled.
    fn purge_mfa(&self, user: UserId) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Every stored TOTP row that holds a sealed secret (enabled, pending or both),
    /// ordered by user id; for re-sealing under a new master key.
    fn list_sealed_totp(&self) -> impl Future<Output = StoreResult<Vec<SealedTotp>>> + Send;

    /// The compare-and-swap of master-key rotation: sets the user's enabled and pending
    /// sealed secrets to `new_secret` and `new_pending` only if they still are
    /// `expected_secret` and `expected_pending` (`None` meaning "no value", compared as
    /// such), in one atomic statement. False (and nothing changed) when either differs,
    /// e.g. because a setup, enable or reset happened in between. Nothing else on the row
    /// (times, the replay guard) changes.
    fn swap_sealed_totp(
        &self,
        user: UserId,
        expected_secret: Option<&[u8]>,
        new_secret: Option<&[u8]>,
        expected_pending: Option<&[u8]>,
        new_pending: Option<&[u8]>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    fn insert_mfa_challenge(
        &self,
        challenge: &MfaChallenge,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The challenge if it exists, is unused, and `now` is before its expiry.
    fn get_mfa_challenge(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<Option<MfaChallenge>>> + Send;

    /// Marks the challenge used if it still is unused and unexpired; false otherwise
    /// (single use, even under concurrency).
    fn consume_mfa_challenge(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Removes every pending login challenge of the user (a password change or an MFA
    /// reset makes them stale); returns how many.
    fn purge_mfa_challenges(&self, user: UserId) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Records a successful MFA on a session (step-up): `mfa_verified_at = now` and the
    /// session's assurance becomes AAL2. False when the session is revoked or unknown.
    fn record_session_mfa(
        &self,
        session: SessionId,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
}
