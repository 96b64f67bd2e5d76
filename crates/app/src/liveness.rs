//! The per-node session-liveness cache: session id → the `SessionRecord` last read from the
//! store, so `authenticate` need not read the database on every request.
//!
//! ```text
//!   Bypass (off, or subscription not confirmed) ──connected()──► Serving
//!   Serving ──lost()──► Bypass (everything dropped)
//! ```
//!
//! Only the record is cached, never a verdict: revocation and expiry are still evaluated
//! against `now` on every call. Entries live at most `ttl` (by the application clock) and
//! there are at most `max_entries` of them. Every invalidation (a revocation, an MFA or
//! refresh write, here or on another node via the bus) drops the entries named, and a lost
//! bus subscription drops them all: while the subscription is down, nothing is served or
//! stored, because revocations published meanwhile are missed.
//!
//! A store read that began before an invalidation never fills the cache after it: every
//! miss carries the cache's generation, and a fill is refused once that has moved.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tessera_core::ids::SessionId;
use time::{Duration, OffsetDateTime};

use crate::ports::{RevocationSink, SessionRecord};

/// How many sessions one node keeps at most (a few hundred bytes each).
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// What a lookup found.
#[derive(Debug)]
// A hit is returned at once and moved into the caller: boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Lookup {
    /// A record no older than the TTL, and no invalidation since it was read.
    Hit(SessionRecord),
    /// Not cached: read the store, then [`LivenessCache::fill`] with this ticket.
    Miss(FillTicket),
    /// The cache is off or not trusted right now (subscription down): read the store.
    Bypass,
}

/// The cache's generation when a miss was seen; a fill after any invalidation is refused.
#[derive(Debug, Clone, Copy)]
pub struct FillTicket(u64);

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub bypasses: u64,
    /// Whole-cache flushes after a lost subscription.
    pub flushes: u64,
}

pub struct LivenessCache {
    ttl: Duration,
    max_entries: usize,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
    bypasses: AtomicU64,
    flushes: AtomicU64,
}

struct Inner {
    /// False when the cache is off, and while the subscription is not confirmed.
    serving: bool,
    generation: u64,
    entries: HashMap<SessionId, Entry>,
}

struct Entry {
    record: SessionRecord,
    stale_at: OffsetDateTime,
}

impl LivenessCache {
    /// A cache that never serves: every lookup is a bypass (the store is read every time).
    pub fn off() -> Self {
        Self::with(Duration::ZERO, 0)
    }

    /// A cache keeping records for `ttl`, at most `max_entries`. It serves nothing until
    /// [`RevocationSink::connected`] says the invalidations are being delivered.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self::with(ttl, max_entries)
    }

    fn with(ttl: Duration, max_entries: usize) -> Self {
        Self {
            ttl,
            max_entries,
            inner: Mutex::new(Inner {
                serving: false,
                generation: 0,
                entries: HashMap::new(),
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            bypasses: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        }
    }

    fn enabled(&self) -> bool {
        self.ttl > Duration::ZERO && self.max_entries > 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether lookups may be answered from the cache right now.
    pub fn serving(&self) -> bool {
        self.lock().serving
    }

    pub fn lookup(&self, id: SessionId, now: OffsetDateTime) -> Lookup {
        let mut inner = self.lock();
        if !inner.serving {
            drop(inner);
            self.bypasses.fetch_add(1, Ordering::Relaxed);
            return Lookup::Bypass;
        }
        match inner.entries.get(&id) {
            Some(entry) if now < entry.stale_at => {
                let record = entry.record.clone();
                drop(inner);
                self.hits.fetch_add(1, Ordering::Relaxed);
                Lookup::Hit(record)
            }
            found => {
                if found.is_some() {
                    inner.entries.remove(&id);
                }
                let ticket = FillTicket(inner.generation);
                drop(inner);
                self.misses.fetch_add(1, Ordering::Relaxed);
                Lookup::Miss(ticket)
            }
        }
    }

    /// Keeps `record`, read from the store after the miss that gave `ticket`, unless the
    /// cache was invalidated (or lost its subscription) since.
    pub fn fill(&self, ticket: FillTicket, record: SessionRecord, now: OffsetDateTime) {
        let mut inner = self.lock();
        if !inner.serving || inner.generation != ticket.0 {
            return;
        }
        if inner.entries.len() >= self.max_entries {
            inner.entries.retain(|_, e| now < e.stale_at);
            if inner.entries.len() >= self.max_entries {
                inner.entries.clear();
            }
        }
        let stale_at = now + self.ttl;
        inner
            .entries
            .insert(record.state.id, Entry { record, stale_at });
    }

    /// Drops one record, e.g. one the caller found no longer live, without touching others.
    pub fn forget(&self, id: SessionId) {
        self.invalidate(&[id]);
    }

    /// Drops these sessions (revoked, or changed in the store).
    pub fn invalidate(&self, sessions: &[SessionId]) {
        let mut inner = self.lock();
        inner.generation += 1;
        for id in sessions {
            inner.entries.remove(id);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bypasses: self.bypasses.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
        }
    }
}

impl RevocationSink for LivenessCache {
    fn revoked(&self, sessions: &[SessionId]) {
        self.invalidate(sessions);
    }

    fn lost(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        let had = inner.serving || !inner.entries.is_empty();
        inner.serving = false;
        inner.entries.clear();
        drop(inner);
        if had {
            self.flushes.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn connected(&self) {
        let mut inner = self.lock();
        // Reads that began before the subscription was confirmed may have missed a
        // revocation published in between: the new generation refuses their fills.
        inner.generation += 1;
        inner.entries.clear();
        inner.serving = self.enabled();
    }
}

#[cfg(test)]
mod tests {
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
    fn read_through(
        cache: &LivenessCache,
        r: &SessionRecord,
        now: OffsetDateTime,
        reads: &mut u32,
    ) {
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
}
