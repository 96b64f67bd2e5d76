//! The password-reset port: one pending emailed link per user, stored as a hash.

use std::future::Future;

use tessera_core::ids::UserId;
use tessera_core::secret::TokenHash;
use time::OffsetDateTime;

use super::StoreResult;

pub trait ResetStore: Send + Sync {
    /// Stores the user's pending reset, replacing any earlier one (a new request voids
    /// the old link).
    fn replace_reset_token(
        &self,
        user: UserId,
        hash: &TokenHash,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Deletes the reset with this hash and returns its user if it had not expired at
    /// `now`, in one statement: of concurrent uses of one link exactly one gets the user.
    /// An expired one is deleted too and answers `None`.
    fn take_reset_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<Option<UserId>>> + Send;
}
