//! Retention (`purge_expired`): what goes, what a live session keeps, and the batch bound.
//! Time moves on a [`ManualClock`]; cut-offs are computed from it as the use case does.

use serde_json::json;
use tessera_core::event::EventKind;
use tessera_core::ids::{DeviceName, EventId, UserId};
use tessera_core::secret::TokenHash;
use tessera_core::session::RevokeReason;
use tessera_core::session::rotation::{PresentedToken, RefreshDecision, decide};
use time::{Duration, OffsetDateTime};

use super::{T0, device, given_user, random, rotation, session_on, token_hash};
use crate::ports::{
    Clock, MfaChallenge, NewSession, PurgeCutoffs, PurgeReport, SecurityEvent, Store, SwapOutcome,
};
use crate::testkit::ManualClock;

const KEEP_ENDED: Duration = Duration::days(30);
const KEEP_EVENTS: Duration = Duration::days(400);
const BATCH: u32 = 100;

fn cutoffs(now: OffsetDateTime) -> PurgeCutoffs {
    PurgeCutoffs {
        sessions_ended_before: now - KEEP_ENDED,
        challenges_expired_before: now,
        events_before: now - KEEP_EVENTS,
    }
}

fn event_at(user: UserId, at: OffsetDateTime) -> SecurityEvent {
    SecurityEvent {
        id: EventId::from_random(random()),
        user_id: user,
        kind: EventKind::LoginSucceeded,
        at,
        ip: None,
        user_agent: None,
        session_id: None,
        detail: json!({}),
    }
}

fn challenge_at(user: UserId, at: OffsetDateTime, ttl: Duration) -> MfaChallenge {
    MfaChallenge {
        token_hash: token_hash(),
        user_id: user,
        device_id: device("phone"),
        device_name: Some(DeviceName::parse("Ana's phone").unwrap()),
        user_agent: None,
        ip: None,
        created_at: at,
        expires_at: at + ttl,
        password_hash: tessera_core::password::PasswordHash::from_stored(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        ),
    }
}

/// Rotates the session's current token `times` times at `at`, returning every token it
/// had, oldest first (the last one is current).
async fn rotate<S: Store>(
    store: &S,
    session: &NewSession,
    at: OffsetDateTime,
    times: usize,
) -> Vec<TokenHash> {
    let mut tokens = vec![session.refresh_hash];
    for i in 0..times {
        let presented = *tokens.last().unwrap();
        let mut swap = rotation(session.id, presented, at + Duration::seconds(i as i64));
        swap.idle_expires_at = swap.idle_expires_at.min(session.absolute_expires_at);
        assert_eq!(store.swap_refresh(&swap).await.unwrap(), SwapOutcome::Won);
        tokens.push(swap.successor);
    }
    tokens
}

/// What the refresh use case would decide for `token` at `now` (strict rotation).
async fn decision<S: Store>(store: &S, token: &TokenHash, now: OffsetDateTime) -> RefreshDecision {
    let record = store
        .get_refresh(token)
        .await
        .unwrap()
        .expect("the token is still in the rotation history");
    let presented = match record.rotated_at {
        None => PresentedToken::Current,
        Some(rotated_at) => PresentedToken::Rotated {
            rotated_at,
            successor_is_current: record.successor_is_current,
        },
    };
    decide(&presented, &record.session.state, now, Duration::ZERO)
}

async fn purge<S: Store>(store: &S, cutoffs: &PurgeCutoffs, batch: u32) -> PurgeReport {
    store.purge_expired(cutoffs, batch).await.unwrap()
}

/// Sessions that ended (logged out, idle-expired, past their absolute deadline) more than
/// the retention period ago go with their whole rotation history; sessions that ended
/// more recently, and live ones, stay with every token they had. A second run finds
/// nothing more.
pub async fn purging_removes_sessions_ended_long_ago_with_their_history_and_nothing_else<
    S: Store,
>(
    store: S,
) {
    let clock = ManualClock::new(T0);
    let user = given_user(&store).await;

    let logged_out = session_on(user, "old-laptop", clock.now());
    store.insert_session(&logged_out).await.unwrap();
    let logged_out_tokens = rotate(&store, &logged_out, clock.now(), 2).await;
    store
        .revoke_session(logged_out.id, RevokeReason::Logout, clock.now())
        .await
        .unwrap();
    let idle_expired = session_on(user, "old-tablet", clock.now());
    store.insert_session(&idle_expired).await.unwrap();
    let mut past_absolute = session_on(user, "old-phone", clock.now());
    past_absolute.absolute_expires_at = clock.now() + Duration::minutes(1);
    past_absolute.idle_expires_at = clock.now() + Duration::days(2);
    store.insert_session(&past_absolute).await.unwrap();

    clock.advance(KEEP_ENDED + Duration::days(1));
    let recently_revoked = session_on(user, "new-laptop", clock.now() - Duration::days(2));
    store.insert_session(&recently_revoked).await.unwrap();
    store
        .revoke_session(
            recently_revoked.id,
            RevokeReason::RevokedByUser,
            clock.now() - Duration::days(1),
        )
        .await
        .unwrap();
    let recently_expired = session_on(user, "new-tablet", clock.now() - Duration::hours(3));
    store.insert_session(&recently_expired).await.unwrap();
    let live = session_on(user, "new-phone", clock.now() - Duration::minutes(10));
    store.insert_session(&live).await.unwrap();
    let live_tokens = rotate(&store, &live, clock.now() - Duration::minutes(5), 3).await;

    let report = purge(&store, &cutoffs(clock.now()), BATCH).await;
    assert_eq!(
        report,
        PurgeReport {
            refresh_tokens: 5,
            sessions: 3,
            mfa_challenges: 0,
            security_events: 0,
            more: false,
        }
    );
    for gone in [&logged_out, &idle_expired, &past_absolute] {
        assert!(store.get_session(gone.id).await.unwrap().is_none());
    }
    for token in logged_out_tokens
        .iter()
        .chain([&idle_expired.refresh_hash, &past_absolute.refresh_hash])
    {
        assert!(store.get_refresh(token).await.unwrap().is_none());
    }
    for kept in [&recently_revoked, &recently_expired, &live] {
        assert!(store.get_session(kept.id).await.unwrap().is_some());
    }
    for token in live_tokens.iter().chain([
        &recently_revoked.refresh_hash,
        &recently_expired.refresh_hash,
    ]) {
        assert!(store.get_refresh(token).await.unwrap().is_some());
    }

    assert_eq!(
        purge(&store, &cutoffs(clock.now()), BATCH).await,
        PurgeReport::default()
    );
}

/// Even a purge that keeps nothing ended (cut-off = now) leaves a live session whole: a
/// month-old rotated token of it is still recognised as reuse, not taken for an unknown
/// token, and its current token still rotates.
pub async fn after_a_purge_a_live_session_still_refreshes_and_an_old_token_is_still_reuse<
    S: Store,
>(
    store: S,
) {
    let clock = ManualClock::new(T0);
    let user = given_user(&store).await;
    let mut login = session_on(user, "phone", clock.now());
    login.absolute_expires_at = T0 + Duration::days(90);
    login.idle_expires_at = T0 + Duration::days(40);
    store.insert_session(&login).await.unwrap();
    let mut tokens = vec![login.refresh_hash];
    for days in [1, 20, 35] {
        clock.set(T0 + Duration::days(days));
        let mut swap = rotation(login.id, *tokens.last().unwrap(), clock.now());
        swap.idle_expires_at = clock.now() + Duration::days(40);
        assert_eq!(store.swap_refresh(&swap).await.unwrap(), SwapOutcome::Won);
        tokens.push(swap.successor);
    }
    clock.advance(Duration::days(1));

    let keep_nothing = PurgeCutoffs {
        sessions_ended_before: clock.now(),
        challenges_expired_before: clock.now(),
        events_before: clock.now(),
    };
    let report = purge(&store, &keep_nothing, BATCH).await;
    assert_eq!((report.refresh_tokens, report.sessions), (0, 0));

    for old in &tokens[..3] {
        assert_eq!(
            decision(&store, old, clock.now()).await,
            RefreshDecision::Reuse
        );
    }
    let current = *tokens.last().unwrap();
    assert_eq!(
        decision(&store, &current, clock.now()).await,
        RefreshDecision::Rotate
    );
    let mut swap = rotation(login.id, current, clock.now());
    swap.idle_expires_at = clock.now() + Duration::days(40);
    assert_eq!(store.swap_refresh(&swap).await.unwrap(), SwapOutcome::Won);
}

/// Challenges that expired go (even when read with a clock before their expiry, they are
/// not found), unexpired ones stay; events older than the retention period go, newer ones
/// stay.
pub async fn purging_removes_expired_challenges_and_old_events_only<S: Store>(store: S) {
    let clock = ManualClock::new(T0);
    let user = given_user(&store).await;
    let old_event = event_at(user, clock.now());
    store.insert_event(&old_event, None).await.unwrap();
    clock.advance(KEEP_EVENTS + Duration::days(1));
    let recent_event = event_at(user, clock.now() - KEEP_EVENTS + Duration::days(1));
    store.insert_event(&recent_event, None).await.unwrap();
    let expired = challenge_at(
        user,
        clock.now() - Duration::minutes(10),
        Duration::minutes(5),
    );
    let pending = challenge_at(
        user,
        clock.now() - Duration::minutes(1),
        Duration::minutes(5),
    );
    store.insert_mfa_challenge(&expired).await.unwrap();
    store.insert_mfa_challenge(&pending).await.unwrap();

    let report = purge(&store, &cutoffs(clock.now()), BATCH).await;
    assert_eq!((report.mfa_challenges, report.security_events), (1, 1));
    assert!(!report.more);

    let before_expiry = expired.created_at + Duration::minutes(1);
    assert_eq!(
        store
            .get_mfa_challenge(&expired.token_hash, before_expiry)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .get_mfa_challenge(&pending.token_hash, clock.now())
            .await
            .unwrap(),
        Some(pending)
    );
    assert_eq!(
        store.list_events(user, 10).await.unwrap(),
        vec![recent_event]
    );
}

/// With a batch of 2 and 5 eligible rows in every table, a run deletes 2 of each and says
/// more remain; runs until it says otherwise delete exactly the 5, and then nothing.
pub async fn a_purge_run_deletes_at_most_a_batch_per_table_and_says_when_more_remain<S: Store>(
    store: S,
) {
    let clock = ManualClock::new(T0);
    let user = given_user(&store).await;
    for i in 0..5 {
        let s = session_on(user, &format!("device-{i}"), clock.now());
        store.insert_session(&s).await.unwrap();
        store
            .revoke_session(s.id, RevokeReason::Logout, clock.now())
            .await
            .unwrap();
        store
            .insert_event(&event_at(user, clock.now()), None)
            .await
            .unwrap();
        let c = challenge_at(user, clock.now(), Duration::minutes(5));
        store.insert_mfa_challenge(&c).await.unwrap();
    }
    clock.advance(KEEP_EVENTS + Duration::days(1));
    let cutoffs = cutoffs(clock.now());

    let first = purge(&store, &cutoffs, 2).await;
    assert_eq!(
        first,
        PurgeReport {
            refresh_tokens: 2,
            sessions: 2,
            mfa_challenges: 2,
            security_events: 2,
            more: true,
        }
    );
    let mut total = first;
    let mut runs = 1;
    while total.more {
        let run = purge(&store, &cutoffs, 2).await;
        runs += 1;
        assert!(runs <= 5, "the purge never said it was done");
        total = total.then(run);
    }
    assert_eq!(runs, 3, "2 + 2 + 1: the third run finds less than a batch");
    assert_eq!(
        total,
        PurgeReport {
            refresh_tokens: 5,
            sessions: 5,
            mfa_challenges: 5,
            security_events: 5,
            more: false,
        }
    );
    assert_eq!(purge(&store, &cutoffs, 2).await, PurgeReport::default());
    assert!(store.list_events(user, 10).await.unwrap().is_empty());
}

/// An ended session with more history than a batch loses its history over several runs,
/// the session itself going with its last history row, and every run but the last says
/// more remain.
pub async fn an_ended_session_with_more_history_than_a_batch_goes_over_several_runs<S: Store>(
    store: S,
) {
    let clock = ManualClock::new(T0);
    let user = given_user(&store).await;
    let login = session_on(user, "phone", clock.now());
    store.insert_session(&login).await.unwrap();
    let tokens = rotate(&store, &login, clock.now(), 4).await;
    store
        .revoke_session(login.id, RevokeReason::Logout, clock.now())
        .await
        .unwrap();
    clock.advance(KEEP_ENDED + Duration::days(1));
    let cutoffs = cutoffs(clock.now());

    let runs = [
        purge(&store, &cutoffs, 2).await,
        purge(&store, &cutoffs, 2).await,
    ];
    assert_eq!(
        runs.map(|r| (r.refresh_tokens, r.sessions, r.more)),
        [(2, 0, true), (2, 0, true)]
    );
    assert!(store.get_session(login.id).await.unwrap().is_some());
    let last = purge(&store, &cutoffs, 2).await;
    assert_eq!(
        (last.refresh_tokens, last.sessions, last.more),
        (1, 1, false)
    );
    assert!(store.get_session(login.id).await.unwrap().is_none());
    for token in &tokens {
        assert!(store.get_refresh(token).await.unwrap().is_none());
    }
}
