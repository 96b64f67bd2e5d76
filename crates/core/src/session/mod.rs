//! A session is one device of one user.
//!
//! ```text
//!            login                 refresh (rotate)
//!   ───────────────► [Live] ◄───────────────────────┐
//!                     │  │ └────────────────────────┘
//!  logout, superseded,│  │ idle or absolute expiry passes
//!  reuse, password,   │  ▼
//!  admin, user        │ [Expired]
//!                     ▼
//!                 [Revoked{reason}]
//! ```

pub mod rotation;

use time::{Duration, OffsetDateTime};

use crate::ids::{SessionId, UserId};

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// A session ends after this long without a refresh.
    pub idle: Duration,
    /// A session ends this long after login, whatever its activity.
    pub absolute: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            idle: Duration::days(7),
            absolute: Duration::days(30),
        }
    }
}

impl Lifetimes {
    /// The idle deadline after activity at `now`, never past the absolute deadline.
    pub fn idle_deadline(
        &self,
        now: OffsetDateTime,
        absolute_expires_at: OffsetDateTime,
    ) -> OffsetDateTime {
        (now + self.idle).min(absolute_expires_at)
    }
}

macro_rules! reasons {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// Why a session was revoked (stored, and shown in events).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum RevokeReason { $($variant),+ }

        impl RevokeReason {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }
            pub fn parse(raw: &str) -> Option<Self> {
                match raw { $($name => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

reasons! {
    Logout => "logout",
    Superseded => "superseded",
    RefreshTokenReused => "refresh_token_reused",
    PasswordChanged => "password_changed",
    RevokedByUser => "revoked_by_user",
    RevokedByAdmin => "revoked_by_admin",
    MfaReset => "mfa_reset",
    PasswordReset => "password_reset",
}

/// The part of a stored session that decides whether it may still be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    pub id: SessionId,
    pub user_id: UserId,
    pub idle_expires_at: OffsetDateTime,
    pub absolute_expires_at: OffsetDateTime,
    pub revoked: Option<(OffsetDateTime, RevokeReason)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Live,
    Revoked(RevokeReason),
    Expired,
}

impl SessionState {
    pub fn liveness(&self, now: OffsetDateTime) -> Liveness {
        if let Some((_, reason)) = self.revoked {
            return Liveness::Revoked(reason);
        }
        if now >= self.idle_expires_at || now >= self.absolute_expires_at {
            return Liveness::Expired;
        }
        Liveness::Live
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn state() -> SessionState {
        SessionState {
            id: SessionId::from_random([1; 16]),
            user_id: UserId::from_random([2; 16]),
            idle_expires_at: datetime!(2026-01-08 00:00 UTC),
            absolute_expires_at: datetime!(2026-01-31 00:00 UTC),
            revoked: None,
        }
    }

    #[test]
    fn a_session_is_live_until_either_deadline() {
        let s = state();
        assert_eq!(s.liveness(datetime!(2026-01-07 23:59 UTC)), Liveness::Live);
        assert_eq!(
            s.liveness(datetime!(2026-01-08 00:00 UTC)),
            Liveness::Expired
        );
        let mut s2 = s.clone();
        s2.idle_expires_at = datetime!(2026-02-10 00:00 UTC);
        assert_eq!(
            s2.liveness(datetime!(2026-01-31 00:00 UTC)),
            Liveness::Expired
        );
    }

    #[test]
    fn revocation_wins_over_expiry() {
        let mut s = state();
        s.revoked = Some((datetime!(2026-01-02 00:00 UTC), RevokeReason::Logout));
        assert_eq!(
            s.liveness(datetime!(2026-03-01 00:00 UTC)),
            Liveness::Revoked(RevokeReason::Logout)
        );
    }

    #[test]
    fn the_idle_deadline_never_passes_the_absolute_one() {
        let l = Lifetimes::default();
        let abs = datetime!(2026-01-31 00:00 UTC);
        assert_eq!(
            l.idle_deadline(datetime!(2026-01-01 00:00 UTC), abs),
            datetime!(2026-01-08 00:00 UTC)
        );
        assert_eq!(l.idle_deadline(datetime!(2026-01-29 00:00 UTC), abs), abs);
    }

    #[test]
    fn reasons_round_trip() {
        for r in [
            RevokeReason::Logout,
            RevokeReason::Superseded,
            RevokeReason::RefreshTokenReused,
            RevokeReason::PasswordChanged,
            RevokeReason::RevokedByUser,
            RevokeReason::RevokedByAdmin,
            RevokeReason::MfaReset,
            RevokeReason::PasswordReset,
        ] {
            assert_eq!(RevokeReason::parse(r.as_str()), Some(r));
        }
    }
}
