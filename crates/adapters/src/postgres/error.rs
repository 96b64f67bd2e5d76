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
/// 08P01 is a protocol violation, which is the driver's fault or ours, not an outage:
/// answering it with 503 and `Retry-After` would have clients retry a bug.
fn server_going_away(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| is_going_away(&c)))
}

fn is_going_away(code: &str) -> bool {
    (code.starts_with("08") && code != "08P01") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// A concurrent login on the same device committed its session first; worth a retry.
pub(super) fn is_live_device_clash(e: &sqlx::Error) -> bool {
    unique_violation_of(e, ONE_LIVE_SESSION_PER_DEVICE)
}

fn unique_violation_of(e: &sqlx::Error, constraint: &str) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db.kind() == ErrorKind::UniqueViolation && db.constraint() == Some(constraint))
}

#[cfg(test)]
mod tests {
    use super::is_going_away;

    #[test]
    fn outages_are_going_away_and_a_protocol_violation_is_not() {
        for code in [
            "08000", "08003", "08006", "08001", "08004", "57P01", "57P02", "57P03",
        ] {
            assert!(is_going_away(code), "{code}");
        }
        for code in ["08P01", "57014", "40001", "23505", "XX000"] {
            assert!(!is_going_away(code), "{code}");
        }
    }
}
