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
    if crate::pool::is_unreachable(&e) || server_going_away(&e) {
        return StoreError::Unavailable(Box::new(e));
    }
    StoreError::Backend(Box::new(e))
}

/// The server refused or dropped the connection: class 08 (connection exception), or
/// 57P01-57P03 (shut down by an administrator or a crash, or not accepting connections
/// yet), which is what a connection in the pool reads when PostgreSQL is stopped.
fn server_going_away(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
    if db.code().is_some_and(|code| {
        code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
    }))
}

/// A concurrent login on the same device committed its session first; worth a retry.
pub(super) fn is_live_device_clash(e: &sqlx::Error) -> bool {
    unique_violation_of(e, ONE_LIVE_SESSION_PER_DEVICE)
}

fn unique_violation_of(e: &sqlx::Error, constraint: &str) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db.kind() == ErrorKind::UniqueViolation && db.constraint() == Some(constraint))
}
