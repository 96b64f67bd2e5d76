//! Retention's rules both stores share: the order of a purge run, when its report says
//! there is more, and how one batch of events is spent across audit chains. The dialects
//! only run the bounded deletes.

use std::future::Future;

use tessera_app::ports::PurgeReport;
use tessera_core::ids::UserId;
use uuid::Uuid;

/// One purge run: the deletes in this order (a future does nothing until awaited), each
/// bounded by `batch`, then whether another run may find more.
pub(crate) async fn run<E>(
    batch: u32,
    ended_sessions: impl Future<Output = Result<(u64, u64), E>>,
    mfa_challenges: impl Future<Output = Result<u64, E>>,
    security_events: impl Future<Output = Result<u64, E>>,
) -> Result<PurgeReport, E> {
    let (refresh_tokens, sessions) = ended_sessions.await?;
    let mfa_challenges = mfa_challenges.await?;
    let security_events = security_events.await?;
    Ok(PurgeReport {
        refresh_tokens,
        sessions,
        mfa_challenges,
        security_events,
        // A window that kept some history filled the history batch; otherwise every
        // session of it went, and a full window may have left others behind.
        more: [refresh_tokens, sessions, mfa_challenges, security_events]
            .iter()
            .any(|&n| n >= u64::from(batch)),
    })
}

/// Deletes at most `batch` events in all, from the chains of `users` in turn;
/// `prefix(user, room)` deletes at most `room` from the front of one user's chain.
pub(crate) async fn chain_prefixes<E, F, Fut>(
    users: Vec<Uuid>,
    batch: u32,
    mut prefix: F,
) -> Result<u64, E>
where
    F: FnMut(UserId, u32) -> Fut,
    Fut: Future<Output = Result<u64, E>>,
{
    let mut deleted = 0;
    for user in users {
        let room = batch.saturating_sub(u32::try_from(deleted).unwrap_or(u32::MAX));
        if room == 0 {
            break;
        }
        deleted += prefix(UserId::from_uuid(user), room).await?;
    }
    Ok(deleted)
}
