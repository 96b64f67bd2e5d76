//! Retention: deleting what nothing can use any more (ended sessions and their rotation
//! history, expired login challenges, old security events), a bounded batch per run. The
//! binary runs it in the background and on `tessera admin purge`.

use time::{Duration, OffsetDateTime};

use crate::app::App;
use crate::error::AppError;
use crate::ports::{PurgeCutoffs, PurgeReport, Store};

/// How long ended things are kept, and how much one run may delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// A session (with its rotation history) is kept this long after it ended, so the
    /// device list's history and a late replay ("session revoked", not "unknown token")
    /// still make sense for a while.
    pub ended_sessions: Duration,
    /// Security events are kept this long (the account's audit trail).
    pub events: Duration,
    /// At most this many rows per table per run, so a run never holds the database for
    /// long, however much has piled up.
    pub batch: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            ended_sessions: Duration::days(30),
            events: Duration::days(400),
            batch: 1000,
        }
    }
}

impl Retention {
    /// What may go at `now`. Expired challenges are useless at once, so they have no
    /// period of their own.
    pub fn cutoffs(&self, now: OffsetDateTime) -> PurgeCutoffs {
        PurgeCutoffs {
            sessions_ended_before: now - self.ended_sessions,
            challenges_expired_before: now,
            events_before: now - self.events,
        }
    }
}

impl<S: Store> App<S> {
    /// One bounded purge run at `now`; when the report says `more`, run again.
    pub async fn purge(&self, now: OffsetDateTime) -> Result<PurgeReport, AppError> {
        let retention = &self.settings.retention;
        Ok(self
            .store
            .purge_expired(&retention.cutoffs(now), retention.batch)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn by_default_ended_sessions_stay_30_days_events_400_and_expired_challenges_not_at_all() {
        let now = datetime!(2027-02-04 12:00 UTC);
        let cutoffs = Retention::default().cutoffs(now);
        assert_eq!(
            cutoffs.sessions_ended_before,
            datetime!(2027-01-05 12:00 UTC)
        );
        assert_eq!(cutoffs.events_before, datetime!(2025-12-31 12:00 UTC));
        assert_eq!(cutoffs.challenges_expired_before, now);
        assert_eq!(Retention::default().batch, 1000);
    }
}
