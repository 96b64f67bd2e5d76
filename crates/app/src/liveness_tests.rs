//! The liveness cache's rules, sessions and user views alike.

#![allow(clippy::unwrap_used)]

use tessera_core::ids::{DeviceId, UserId};
use tessera_core::jwt::Assurance;
use tessera_core::session::SessionState;
use time::macros::datetime;

use super::*;

const T0: OffsetDateTime = datetime!(2026-03-01 09:00 UTC);

fn record(n: u8) -> SessionRecord {
    let state = SessionState {
        id: SessionId::from_random([n; 16]),
        user_id: UserId::from_random([7; 16]),
        revoked: None,
        idle_expires_at: T0 + Duration::days(7),
        absolute_expires_at: T0 + Duration::days(30),
    };
    SessionRecord {
        state,
        device_id: DeviceId::parse("d1").unwrap(),
        device_name: None,
        user_agent: None,
        ip: None,
        created_at: T0,
        last_seen_at: T0,
        assurance: Assurance::Password,
        auth_time: T0,
        mfa_verified_at: None,
        refresh_generation: 0,
    }
}

/// A cache that is connected, so it serves.
fn serving(ttl: Duration) -> LivenessCache {
    let cache = LivenessCache::new(ttl, 4);
    cache.connected();
    cache
}

/// What `authenticate` does: look up, and on a miss read (`reads` counts store
/// reads) and fill.
fn read_through(cache: &LivenessCache, r: &SessionRecord, now: OffsetDateTime, reads: &mut u32) {
    match cache.lookup(r.state.id, now) {
        Lookup::Hit(_) => {}
        Lookup::Miss(ticket) => {
            *reads += 1;
            cache.fill(ticket, r.clone(), now);
        }
        Lookup::Bypass => *reads += 1,
    }
}

#[test]
fn a_second_lookup_within_the_ttl_does_not_read_the_store() {
    let cache = serving(Duration::seconds(60));
    let r = record(1);
    let mut reads = 0;
    read_through(&cache, &r, T0, &mut reads);
    read_through(&cache, &r, T0 + Duration::seconds(59), &mut reads);
    assert_eq!(reads, 1);
    assert_eq!(
        cache.stats(),
        CacheStats {
            hits: 1,
            misses: 1,
            bypasses: 0,
            flushes: 0
        }
    );
}

#[test]
fn an_entry_past_its_ttl_is_read_again() {
    let cache = serving(Duration::seconds(60));
    let r = record(1);
    let mut reads = 0;
    read_through(&cache, &r, T0, &mut reads);
    read_through(&cache, &r, T0 + Duration::seconds(60), &mut reads);
    assert_eq!(reads, 2);
}

#[test]
fn an_invalidated_session_is_read_again_and_others_stay_cached() {
    let cache = serving(Duration::seconds(60));
    let (a, b) = (record(1), record(2));
    let mut reads = 0;
    read_through(&cache, &a, T0, &mut reads);
    read_through(&cache, &b, T0, &mut reads);
    cache.revoked(&[a.state.id]);
    assert!(matches!(cache.lookup(a.state.id, T0), Lookup::Miss(_)));
    assert!(matches!(cache.lookup(b.state.id, T0), Lookup::Hit(_)));
}

#[test]
fn a_read_that_began_before_an_invalidation_is_not_cached() {
    let cache = serving(Duration::seconds(60));
    let r = record(1);
    let Lookup::Miss(ticket) = cache.lookup(r.state.id, T0) else {
        panic!("expected a miss");
    };
    // The store answered "live", then the revocation arrived before the fill.
    cache.revoked(&[r.state.id]);
    cache.fill(ticket, r.clone(), T0);
    assert!(matches!(cache.lookup(r.state.id, T0), Lookup::Miss(_)));
}

#[test]
fn a_lost_subscription_flushes_everything_and_bypasses_until_resubscribed() {
    let cache = serving(Duration::seconds(60));
    let r = record(1);
    let mut reads = 0;
    read_through(&cache, &r, T0, &mut reads);
    let Lookup::Miss(before_loss) = cache.lookup(record(2).state.id, T0) else {
        panic!("expected a miss");
    };
    cache.lost();
    assert!(cache.is_empty());
    assert!(matches!(cache.lookup(r.state.id, T0), Lookup::Bypass));
    cache.fill(before_loss, record(2), T0);
    assert!(cache.is_empty(), "nothing is stored while unsubscribed");
    cache.connected();
    assert!(
        cache.is_empty(),
        "a read from before the loss never fills after it"
    );
    assert!(matches!(cache.lookup(r.state.id, T0), Lookup::Miss(_)));
    assert_eq!(cache.stats().flushes, 1);
}

#[test]
fn a_cache_serves_nothing_before_its_subscription_is_confirmed() {
    let cache = LivenessCache::new(Duration::seconds(60), 4);
    assert!(matches!(
        cache.lookup(record(1).state.id, T0),
        Lookup::Bypass
    ));
}

#[test]
fn a_cache_that_is_off_always_bypasses_even_when_connected() {
    let cache = LivenessCache::off();
    cache.connected();
    assert!(matches!(
        cache.lookup(record(1).state.id, T0),
        Lookup::Bypass
    ));
}

#[test]
fn the_cache_never_holds_more_than_its_bound() {
    let cache = serving(Duration::seconds(60));
    for n in 0..10 {
        let r = record(n);
        if let Lookup::Miss(t) = cache.lookup(r.state.id, T0) {
            cache.fill(t, r, T0);
        }
        assert!(cache.len() <= 4);
    }
}

fn view(n: u8, roles: &[&str]) -> Arc<UserView> {
    Arc::new(UserView {
        user_id: UserId::from_random([n; 16]),
        email: tessera_core::Email::parse(&format!("u{n}@example.com")).unwrap(),
        roles: roles
            .iter()
            .map(|r| tessera_core::ids::Role::parse(r).unwrap())
            .collect(),
        mfa: crate::sessions::MfaSummary {
            enabled: true,
            recovery_codes_remaining: 10,
        },
    })
}

/// What `user_view` does: look up, and on a miss read (`reads` counts store reads) and
/// fill; returns the roles it answered with.
fn view_through(
    cache: &LivenessCache,
    stored: &Arc<UserView>,
    now: OffsetDateTime,
    reads: &mut u32,
) -> Vec<String> {
    let answered = match cache.lookup_view(stored.user_id, now) {
        Lookup::Hit(v) => v,
        Lookup::Miss(ticket) => {
            *reads += 1;
            cache.fill_view(ticket, Arc::clone(stored), now);
            Arc::clone(stored)
        }
        Lookup::Bypass => {
            *reads += 1;
            Arc::clone(stored)
        }
    };
    answered
        .roles
        .iter()
        .map(|r| r.as_str().to_owned())
        .collect()
}

#[test]
fn a_users_view_is_read_once_per_ttl_and_counted_apart_from_sessions() {
    let cache = serving(Duration::seconds(60));
    let v = view(1, &["admin"]);
    let mut reads = 0;
    for s in 0..5 {
        view_through(&cache, &v, T0 + Duration::seconds(s), &mut reads);
    }
    assert_eq!(reads, 1);
    assert_eq!(
        cache.view_stats(),
        CacheStats {
            hits: 4,
            misses: 1,
            bypasses: 0,
            flushes: 0
        }
    );
    assert_eq!(cache.stats(), CacheStats::default());
    view_through(&cache, &v, T0 + Duration::seconds(60), &mut reads);
    assert_eq!(reads, 2, "an entry lives at most the TTL");
}

#[test]
fn a_changed_user_is_read_again_and_other_users_stay_cached() {
    let cache = serving(Duration::seconds(60));
    let (a, b) = (view(1, &["admin"]), view(2, &["admin"]));
    let mut reads = 0;
    view_through(&cache, &a, T0, &mut reads);
    view_through(&cache, &b, T0, &mut reads);
    cache.users_changed(&[a.user_id]);
    // The store now says the admin role is gone: the next read must see that.
    let a_now = view(1, &[]);
    assert!(view_through(&cache, &a_now, T0, &mut reads).is_empty());
    assert_eq!(view_through(&cache, &b, T0, &mut reads), ["admin"]);
    assert_eq!(reads, 3);
}

#[test]
fn a_view_read_that_began_before_a_user_changed_is_not_cached() {
    let cache = serving(Duration::seconds(60));
    let before = view(1, &["admin"]);
    let Lookup::Miss(ticket) = cache.lookup_view(before.user_id, T0) else {
        panic!("expected a miss");
    };
    // The store answered "admin", then the role was removed and its invalidation arrived
    // before the fill: the old answer must not be kept.
    cache.users_changed(&[before.user_id]);
    cache.fill_view(ticket, before.clone(), T0);
    assert!(matches!(
        cache.lookup_view(before.user_id, T0),
        Lookup::Miss(_)
    ));
    assert_eq!(cache.views_len(), 0);
}

#[test]
fn session_invalidations_do_not_refuse_view_fills_nor_drop_views() {
    let cache = serving(Duration::seconds(60));
    let v = view(1, &[]);
    let mut reads = 0;
    view_through(&cache, &v, T0, &mut reads);
    let Lookup::Miss(ticket) = cache.lookup_view(view(2, &[]).user_id, T0) else {
        panic!("expected a miss");
    };
    cache.revoked(&[record(1).state.id]);
    cache.fill_view(ticket, view(2, &[]), T0);
    assert_eq!(cache.views_len(), 2);
}

#[test]
fn a_lost_subscription_drops_every_view_and_serves_none_until_resubscribed() {
    let cache = serving(Duration::seconds(60));
    let v = view(1, &["admin"]);
    let mut reads = 0;
    view_through(&cache, &v, T0, &mut reads);
    let Lookup::Miss(before_loss) = cache.lookup_view(view(2, &[]).user_id, T0) else {
        panic!("expected a miss");
    };
    cache.lost();
    assert_eq!(cache.views_len(), 0);
    assert!(matches!(cache.lookup_view(v.user_id, T0), Lookup::Bypass));
    cache.fill_view(before_loss, view(2, &[]), T0);
    assert_eq!(cache.views_len(), 0, "nothing is stored while unsubscribed");
    cache.connected();
    assert_eq!(
        cache.views_len(),
        0,
        "a read from before the loss never fills after it"
    );
    view_through(&cache, &v, T0, &mut reads);
    view_through(&cache, &v, T0, &mut reads);
    assert_eq!(reads, 2, "read once, then cached again once resubscribed");
    assert_eq!(cache.view_stats().bypasses, 1);
}

#[test]
fn the_cache_never_holds_more_views_than_its_bound() {
    let cache = serving(Duration::seconds(60));
    for n in 0..10 {
        let v = view(n, &[]);
        if let Lookup::Miss(t) = cache.lookup_view(v.user_id, T0) {
            cache.fill_view(t, v, T0);
        }
        assert!(cache.views_len() <= 4);
    }
}
