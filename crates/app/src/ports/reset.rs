//! The password-reset port: one pending emailed link per user, stored as a hash.

use std::future::Future;

use tessera_core::ids::UserId;
use tessera_core::secret::TokenHash;
use time::OffsetDateTime;

use super::StoreResult;

pub trait ResetStore: Send + Sync {
    /// Stores the user's pending reset, replacing any one created no later (a new request
    /// voids the old link; a link put back after a failed completion never voids a newer
    /// one requested meanwhile).
    fn replace_reset_token(
        &self,
        user: UserId,
        hash: &TokenHash,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes the reset with this hash and returns it if it had not expired at `now`, in
    /// one statement: of concurrent uses of one link exactly one gets it. An expired one
    /// is deleted too and answers `None`. (A caller that cannot finish puts it back with
    /// `replace_reset_token`, unless a newer request replaced it meanwhile.)
    fn take_reset_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<Option<PendingReset>>> + Send;
}

/// A reset link taken for use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingReset {
    pub user_id: UserId,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}
