//! The audit port: each user's security events as a hash chain (see `crate::audit`).
//!
//! `EventStore::insert_event` links every event to the user's previous one under a
//! per-user lock (the chain head row), so concurrent events never fork a chain. Retention
//! deletes only whole prefixes of a chain and moves the user's checkpoint to the last
//! event it deleted, so what is left still verifies from there.

use std::future::Future;

use tessera_core::ids::UserId;

use super::{SecurityEvent, StoreResult};
use crate::audit::ChainHash;

/// A stored event with its place in its user's chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainedEvent {
    pub event: SecurityEvent,
    /// 1 for the user's first event, then one more per event.
    pub index: i64,
    /// The stored hash of the event before (all zero for index 1).
    pub prev_hash: ChainHash,
    /// The stored hash of this event.
    pub hash: ChainHash,
}

/// Where one user's chain starts and ends, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainBounds {
    pub user_id: UserId,
    /// The last event retention deleted, if any (index 0 and the zero hash if none): the
    /// first remaining event must follow it.
    pub checkpoint_index: i64,
    pub checkpoint_hash: ChainHash,
    /// How many events retention has deleted from this chain.
    pub purged: u64,
    /// The chain's last event as the head row records it: a deleted tail shows here.
    pub head_index: i64,
    pub head_hash: ChainHash,
}

pub trait AuditStore: Send + Sync {
    /// The bounds of at most `limit` chains, by user id, after `after`.
    fn audit_chains(
        &self,
        after: Option<UserId>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<ChainBounds>>> + Send;
    /// An event stored outside every chain, if any. Migration 0006 links the events
    /// written before it; any other row without a place in a chain was written around
    /// Tessera, and verification names it.
    fn unchained_event(&self) -> impl Future<Output = StoreResult<Option<SecurityEvent>>> + Send;
    /// At most `limit` of the user's events with index greater than `after_index`, in
    /// chain order.
    fn audit_events(
        &self,
        user: UserId,
        after_index: i64,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<ChainedEvent>>> + Send;
}
