//! The per-node cache of what an authenticated request reads: session id → the
//! `SessionRecord` last read from the store (so `authenticate` need not read the database
//! on every request), and user id → the user's [`UserView`] (email, roles, MFA summary: so
//! `/v1/me` and the step-up policy need not read it either).
//!
//! ```text
//!   Bypass (off, or subscription not confirmed) ──connected()──► Serving
//!   Serving ──lost()──► Bypass (everything dropped)
//! ```
//!
//! Only records are cached, never a verdict: revocation, expiry and policy are still
//! evaluated against `now` on every call. Entries live at most `ttl` (by the application
//! clock) and each kind holds at most `max_entries`. Every invalidation (a revocation, an
//! MFA, role or password write, here or on another node via the bus) drops the entries
//! named, and a lost bus subscription drops them all: while the subscription is down,
//! nothing is served or stored, because invalidations published meanwhile are missed.
//!
//! A store read that began before an invalidation never fills the cache after it: every
//! miss carries its kind's generation, and a fill is refused once that has moved.

use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tessera_core::ids::{SessionId, UserId};
use time::{Duration, OffsetDateTime};

use crate::ports::{RevocationSink, SessionRecord};
use crate::sessions::UserView;

/// How many sessions (and, apart, how many user views) one node keeps at most (a few
/// hundred bytes each).
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// What a lookup found.
#[derive(Debug)]
// A hit is returned at once and moved into the caller: boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Lookup<T = SessionRecord> {
    /// A copy no older than the TTL, and no invalidation since it was read.
    Hit(T),
    /// Not cached: read the store, then fill (`fill`, `fill_view`) with this ticket.
    Miss(FillTicket<T>),
    /// The cache is off or not trusted right now (subscription down): read the store.
    Bypass,
}

/// The generation of one kind of entry when a miss was seen; a fill after any
/// invalidation of that kind (or a lost subscription) is refused. Typed by what it fills,
/// so a session's ticket cannot fill a view.
pub struct FillTicket<T = SessionRecord>(u64, PhantomData<fn() -> T>);

impl<T> Clone for FillTicket<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for FillTicket<T> {}

impl<T> std::fmt::Debug for FillTicket<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FillTicket").field(&self.0).finish()
    }
}

/// Counters for `/metrics`, per kind of entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub bypasses: u64,
    /// Whole-cache flushes after a lost subscription (the same for both kinds).
    pub flushes: u64,
}

pub struct LivenessCache {
    ttl: Duration,
    max_entries: usize,
    inner: Mutex<Inner>,
    sessions: Counters,
    views: Counters,
    flushes: AtomicU64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    bypasses: AtomicU64,
}

struct Inner {
    /// False when the cache is off, and while the subscription is not confirmed.
    serving: bool,
    sessions: Shelf<SessionId, SessionRecord>,
    views: Shelf<UserId, Arc<UserView>>,
}

/// One kind of entry. Each kind has its own generation, so the frequent session
/// invalidations (every step-up, every logout) do not refuse the fills of user views.
struct Shelf<K, V> {
    generation: u64,
    entries: HashMap<K, Entry<V>>,
}

struct Entry<V> {
    value: V,
    stale_at: OffsetDateTime,
}

impl<K: Eq + Hash, V: Clone> Shelf<K, V> {
    fn new() -> Self {
        Self {
            generation: 0,
            entries: HashMap::new(),
        }
    }

    /// The value if fresh, else the generation to fill against (a stale entry is dropped).
    fn lookup(&mut self, key: &K, now: OffsetDateTime) -> Result<V, u64> {
        match self.entries.get(key) {
            Some(entry) if now < entry.stale_at => Ok(entry.value.clone()),
            found => {
                if found.is_some() {
                    self.entries.remove(key);
                }
                Err(self.generation)
            }
        }
    }

    fn fill(&mut self, generation: u64, key: K, value: V, now: OffsetDateTime, cache: &Bounds) {
        if self.generation != generation {
            return;
        }
        if self.entries.len() >= cache.max_entries {
            self.entries.retain(|_, e| now < e.stale_at);
            if self.entries.len() >= cache.max_entries {
                self.entries.clear();
            }
        }
        let stale_at = now + cache.ttl;
        self.entries.insert(key, Entry { value, stale_at });
    }

    fn invalidate(&mut self, keys: &[K]) {
        self.generation += 1;
        for key in keys {
            self.entries.remove(key);
        }
    }

    /// Drops everything, and refuses every fill that began before.
    fn flush(&mut self) {
        self.generation += 1;
        self.entries.clear();
    }
}

struct Bounds {
    ttl: Duration,
    max_entries: usize,
}

impl Counters {
    fn count(&self, found: Found) {
        let counter = match found {
            Found::Hit => &self.hits,
            Found::Miss => &self.misses,
            Found::Bypass => &self.bypasses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn stats(&self, flushes: u64) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bypasses: self.bypasses.load(Ordering::Relaxed),
            flushes,
        }
    }
}

#[derive(Clone, Copy)]
enum Found {
    Hit,
    Miss,
    Bypass,
}

impl<T> Lookup<T> {
    fn found(&self) -> Found {
        match self {
            Self::Hit(_) => Found::Hit,
            Self::Miss(_) => Found::Miss,
            Self::Bypass => Found::Bypass,
        }
    }
}

/// One lookup on one shelf: a hit, a miss with its ticket, or a bypass while not serving.
fn look<K: Eq + Hash, V: Clone>(
    serving: bool,
    shelf: &mut Shelf<K, V>,
    key: &K,
    now: OffsetDateTime,
) -> Lookup<V> {
    if !serving {
        return Lookup::Bypass;
    }
    match shelf.lookup(key, now) {
        Ok(value) => Lookup::Hit(value),
        Err(generation) => Lookup::Miss(FillTicket(generation, PhantomData)),
    }
}

impl LivenessCache {
    /// A cache that never serves: every lookup is a bypass (the store is read every time).
    pub fn off() -> Self {
        Self::with(Duration::ZERO, 0)
    }

    /// A cache keeping records for `ttl`, at most `max_entries` of each kind. It serves
    /// nothing until [`RevocationSink::connected`] says the invalidations are being
    /// delivered.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self::with(ttl, max_entries)
    }

    fn with(ttl: Duration, max_entries: usize) -> Self {
        Self {
            ttl,
            max_entries,
            inner: Mutex::new(Inner {
                serving: false,
                sessions: Shelf::new(),
                views: Shelf::new(),
            }),
            sessions: Counters::default(),
            views: Counters::default(),
            flushes: AtomicU64::new(0),
        }
    }

    fn enabled(&self) -> bool {
        self.ttl > Duration::ZERO && self.max_entries > 0
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            ttl: self.ttl,
            max_entries: self.max_entries,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether lookups may be answered from the cache right now.
    pub fn serving(&self) -> bool {
        self.lock().serving
    }

    pub fn lookup(&self, id: SessionId, now: OffsetDateTime) -> Lookup {
        let found = {
            let mut inner = self.lock();
            let serving = inner.serving;
            look(serving, &mut inner.sessions, &id, now)
        };
        self.sessions.count(found.found());
        found
    }

    /// Keeps `record`, read from the store after the miss that gave `ticket`, unless the
    /// cache was invalidated (or lost its subscription) since.
    pub fn fill(&self, ticket: FillTicket, record: SessionRecord, now: OffsetDateTime) {
        let bounds = self.bounds();
        let mut inner = self.lock();
        if inner.serving {
            let key = record.state.id;
            inner.sessions.fill(ticket.0, key, record, now, &bounds);
        }
    }

    /// Drops one record, e.g. one the caller found no longer live, without touching others.
    pub fn forget(&self, id: SessionId) {
        self.invalidate(&[id]);
    }

    /// Drops these sessions (revoked, or changed in the store).
    pub fn invalidate(&self, sessions: &[SessionId]) {
        self.lock().sessions.invalidate(sessions);
    }

    /// The user's view, as [`LivenessCache::lookup`] does for a session.
    pub fn lookup_view(&self, user: UserId, now: OffsetDateTime) -> Lookup<Arc<UserView>> {
        let found = {
            let mut inner = self.lock();
            let serving = inner.serving;
            look(serving, &mut inner.views, &user, now)
        };
        self.views.count(found.found());
        found
    }

    /// Keeps `view`, read from the store after the miss that gave `ticket`, unless any
    /// user's view was invalidated (or the subscription lost) since.
    pub fn fill_view(
        &self,
        ticket: FillTicket<Arc<UserView>>,
        view: Arc<UserView>,
        now: OffsetDateTime,
    ) {
        let bounds = self.bounds();
        let mut inner = self.lock();
        if inner.serving {
            let key = view.user_id;
            inner.views.fill(ticket.0, key, view, now, &bounds);
        }
    }

    /// Drops these users' views (their roles, MFA state or password changed).
    pub fn invalidate_users(&self, users: &[UserId]) {
        self.lock().views.invalidate(users);
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.lock().sessions.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        let inner = self.lock();
        inner.sessions.entries.is_empty() && inner.views.entries.is_empty()
    }

    /// User views held.
    pub fn views_len(&self) -> usize {
        self.lock().views.entries.len()
    }

    /// The session lookups' counters.
    pub fn stats(&self) -> CacheStats {
        self.sessions.stats(self.flushes.load(Ordering::Relaxed))
    }

    /// The user-view lookups' counters.
    pub fn view_stats(&self) -> CacheStats {
        self.views.stats(self.flushes.load(Ordering::Relaxed))
    }
}

impl RevocationSink for LivenessCache {
    fn revoked(&self, sessions: &[SessionId]) {
        self.invalidate(sessions);
    }

    fn users_changed(&self, users: &[UserId]) {
        self.invalidate_users(users);
    }

    fn lost(&self) {
        let mut inner = self.lock();
        let had =
            inner.serving || !inner.sessions.entries.is_empty() || !inner.views.entries.is_empty();
        inner.serving = false;
        inner.sessions.flush();
        inner.views.flush();
        drop(inner);
        if had {
            self.flushes.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn connected(&self) {
        let mut inner = self.lock();
        // Reads that began before the subscription was confirmed may have missed an
        // invalidation published in between: the new generations refuse their fills.
        inner.sessions.flush();
        inner.views.flush();
        inner.serving = self.enabled();
    }
}

#[cfg(test)]
#[path = "liveness_tests.rs"]
mod tests;
