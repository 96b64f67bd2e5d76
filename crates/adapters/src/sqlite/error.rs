//! The one mapping from SQLite driver errors to the ports' `StoreError`.

use sqlx::error::ErrorKind;
use tessera_app::ports::StoreError;

pub(super) fn store_error(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        // SQLite names the clashing columns in the message: "UNIQUE constraint failed: t.c".
        if db.kind() == ErrorKind::UniqueViolation
            && db.message().contains("users.email_normalized")
        {
            return StoreError::Conflict("email");
        }
    }
    if crate::pool::is_unreachable(&e) {
        return StoreError::Unavailable(Box::new(e));
    }
    StoreError::Backend(Box::new(e))
}
