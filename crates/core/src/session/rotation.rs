//! The refresh-rotation state machine (RFC 9700 §4.14).
//!
//! ```text
//!   issued ──► [Current] ──rotate (CAS wins)──► [Rotated{at, successor}]
//!                                                   │
//!        presented again, within the retry window,  │  any other presentation
//!        while the successor is still current:      │  of a rotated token:
//!                 ReplaySuccessor                   ▼
//!                                            Reuse ⇒ revoke the session
//! ```
//!
//! `decide` only looks; the store commits a rotation with a compare-and-swap on the
//! session's current token hash, so of N concurrent rotations exactly one wins. A loser
//! comes back here and, seeing its token rotated, is judged like any other replay.

use time::{Duration, OffsetDateTime};

use super::{Liveness, RevokeReason, SessionState};

/// How many sealed successors past their retry window one rotation clears, whatever
/// their session: a bound on the rotation's cost, while a backlog still drains within a
/// few rotations (each rotation seals at most one).
pub const EXPIRED_SEALS_PER_ROTATION: i64 = 100;

/// What the rotation history knows about the presented token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresentedToken {
    /// The session's one valid token.
    Current,
    /// Already exchanged for a successor at `rotated_at`.
    Rotated {
        rotated_at: OffsetDateTime,
        /// The successor is the session's current token, i.e. has never been used.
        successor_is_current: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshDecision {
    /// Issue a successor and retire the presented token.
    Rotate,
    /// Answer with the very successor issued before (a retried or concurrent refresh).
    ReplaySuccessor,
    /// A rotated token came back: revoke the session.
    Reuse,
    Revoked(RevokeReason),
    Expired,
}

/// Retry window 0 is strict mode: every second presentation is reuse.
pub fn decide(
    token: &PresentedToken,
    session: &SessionState,
    now: OffsetDateTime,
    retry_window: Duration,
) -> RefreshDecision {
    match session.liveness(now) {
        Liveness::Revoked(reason) => return RefreshDecision::Revoked(reason),
        Liveness::Expired => return RefreshDecision::Expired,
        Liveness::Live => {}
    }
    match *token {
        PresentedToken::Current => RefreshDecision::Rotate,
        PresentedToken::Rotated {
            rotated_at,
            successor_is_current,
        } => {
            let within_window = retry_window > Duration::ZERO && now - rotated_at <= retry_window;
            if successor_is_current && within_window {
                RefreshDecision::ReplaySuccessor
            } else {
                RefreshDecision::Reuse
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{SessionId, UserId};
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-01 12:00 UTC);

    fn session(revoked: Option<RevokeReason>) -> SessionState {
        SessionState {
            id: SessionId::from_random([1; 16]),
            user_id: UserId::from_random([2; 16]),
            idle_expires_at: datetime!(2026-01-08 12:00 UTC),
            absolute_expires_at: datetime!(2026-01-31 12:00 UTC),
            revoked: revoked.map(|r| (T0, r)),
        }
    }

    fn rotated(secs_ago: i64, successor_is_current: bool) -> PresentedToken {
        PresentedToken::Rotated {
            rotated_at: T0 - Duration::seconds(secs_ago),
            successor_is_current,
        }
    }

    #[test]
    fn rotation_rules() {
        use RefreshDecision::*;
        let live = session(None);
        let reused = session(Some(RevokeReason::RefreshTokenReused));
        let w0 = Duration::ZERO;
        let w10 = Duration::seconds(10);
        let cases: &[(
            &str,
            PresentedToken,
            &SessionState,
            OffsetDateTime,
            Duration,
            RefreshDecision,
        )] = &[
            (
                "current token rotates",
                PresentedToken::Current,
                &live,
                T0,
                w0,
                Rotate,
            ),
            (
                "strict: any replay is reuse",
                rotated(0, true),
                &live,
                T0,
                w0,
                Reuse,
            ),
            (
                "window: replay while successor unused",
                rotated(10, true),
                &live,
                T0,
                w10,
                ReplaySuccessor,
            ),
            (
                "window: replay after the window",
                rotated(11, true),
                &live,
                T0,
                w10,
                Reuse,
            ),
            (
                "window: successor already used",
                rotated(1, false),
                &live,
                T0,
                w10,
                Reuse,
            ),
            (
                "revoked session wins over everything",
                PresentedToken::Current,
                &reused,
                T0,
                w10,
                Revoked(RevokeReason::RefreshTokenReused),
            ),
            (
                "replay on a revoked session is not reuse again",
                rotated(0, true),
                &reused,
                T0,
                w0,
                Revoked(RevokeReason::RefreshTokenReused),
            ),
            (
                "idle expiry",
                PresentedToken::Current,
                &live,
                datetime!(2026-01-08 12:00 UTC),
                w0,
                Expired,
            ),
            (
                "just before idle expiry",
                PresentedToken::Current,
                &live,
                datetime!(2026-01-08 11:59:59 UTC),
                w0,
                Rotate,
            ),
        ];
        for (name, token, s, now, window, want) in cases {
            assert_eq!(&decide(token, s, *now, *window), want, "{name}");
        }
    }
}
