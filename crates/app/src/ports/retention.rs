//! The retention port: deleting what nothing can use any more, a bounded batch at a time.
//!
//! What a live session needs is never eligible: its whole rotation history stays while it
//! lives, because any rotated token of it, however old, must still be recognised as reuse
//! (and so revoke the session) rather than pass as an unknown token.

use std::future::Future;

use time::OffsetDateTime;

use super::StoreResult;

/// The instants before which rows may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeCutoffs {
    /// A session that ended before this (revoked, or past its idle or absolute deadline)
    /// goes, and its rotation history with it.
    pub sessions_ended_before: OffsetDateTime,
    /// A login challenge whose expiry is before this goes.
    pub challenges_expired_before: OffsetDateTime,
    /// A security event recorded before this goes.
    pub events_before: OffsetDateTime,
}

/// What one purge run deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Rotation-history rows (refresh tokens) of ended sessions.
    pub refresh_tokens: u64,
    pub sessions: u64,
    pub mfa_challenges: u64,
    pub security_events: u64,
    /// Some table filled its batch, so more rows may be eligible: run again.
    pub more: bool,
}

impl PurgeReport {
    pub fn total(&self) -> u64 {
        self.refresh_tokens + self.sessions + self.mfa_challenges + self.security_events
    }

    /// Adds the counts of a later run; whether more remain is what that run said.
    pub fn then(self, later: PurgeReport) -> PurgeReport {
        PurgeReport {
            refresh_tokens: self.refresh_tokens + later.refresh_tokens,
            sessions: self.sessions + later.sessions,
            mfa_challenges: self.mfa_challenges + later.mfa_challenges,
            security_events: self.security_events + later.security_events,
            more: later.more,
        }
    }
}

pub trait RetentionStore: Send + Sync {
    /// Deletes at most `batch` rows from each table: rotation history of sessions ended
    /// before `cutoffs.sessions_ended_before`, then such sessions whose history is gone
    /// (deleting a session first would cascade to all its history at once, however long,
    /// and break the bound), expired login challenges, and old security events. `more`
    /// is set when any table gave its whole batch. Each step commits on its own, so a
    /// run can stop anywhere and the next one carries on.
    fn purge_expired(
        &self,
        cutoffs: &PurgeCutoffs,
        batch: u32,
    ) -> impl Future<Output = StoreResult<PurgeReport>> + Send;
}
