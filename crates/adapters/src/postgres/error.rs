//! The one mapping from Postgres driver errors to the ports' `StoreError`.

use sqlx::error::ErrorKind;
use tessera_app::ports::StoreError;

/// Constraint names from `migrations/postgres`.
const EMAIL_UNIQUE: &str = "users_email_normalized_key";
const ONE_LIVE_SESSION_PER_DEVICE: &str = "sessions_one_live_per_device";

pub(super) fn store_error(e: sqlx::Error) -> StoreError {
    if unique_violation_of(&e, EMAIL_UNIQUE) {
        return StoreError::Conflict("email");
    }
    StoreError::Backend(Box::new(e))
}

/// A concurrent login on the same device committed its session first; worth a retry.
pub(super) fn is_live_device_clash(e: &sqlx::Error) -> bool {
    unique_violation_of(e, ONE_LIVE_SESSION_PER_DEVICE)
}

fn unique_violation_of(e: &sqlx::Error, constraint: &str) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db.kind() == ErrorKind::UniqueViolation && db.constraint() == Some(constraint))
}
