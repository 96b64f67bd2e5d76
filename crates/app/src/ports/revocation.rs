//! The revocation-bus port: how one node tells every other node that sessions were
//! revoked (or changed), so their liveness caches drop them at once.
//!
//! ```text
//!   publish(ids) ──► bus ──► every node's RevocationSink::revoked(ids)
//!
//!   subscription:  Lost ──connected()──► Connected ──lost()──► Lost ──► …
//!                  (start)
//! ```
//!
//! A bus delivers at most once and only while subscribed: messages sent while a node's
//! subscription is down are gone. So a sink must treat `lost` as "everything I cached may
//! be stale" and trust nothing it learnt before the next `connected`.

use std::sync::Arc;

use tessera_core::ids::SessionId;

use super::BoxFuture;

/// Where a bus delivers what it hears. Called from the bus's background task: keep it quick.
pub trait RevocationSink: Send + Sync + 'static {
    /// These sessions were revoked or changed somewhere (possibly on this node).
    fn revoked(&self, sessions: &[SessionId]);
    /// The subscription is down (or not up yet): revocations may be missed from now on.
    fn lost(&self);
    /// The subscription is (again) confirmed: revocations published from now on arrive.
    fn connected(&self);
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusHealth {
    Connected,
    /// Not subscribed right now; the reason (never a URL or a secret).
    Disconnected(String),
}

/// Dyn-compatible (boxed futures): the bus is chosen at start-up from configuration.
pub trait RevocationBus: Send + Sync + 'static {
    /// Tells every node (this one included) about `sessions`. Never fails and never takes
    /// long (a bounded wait); a failure is logged and counted by the bus.
    fn publish<'a>(&'a self, sessions: &'a [SessionId]) -> BoxFuture<'a, ()>;

    /// Starts delivering to `sink` in the background (call once, inside the runtime). Until
    /// the bus calls `sink.connected()`, the sink must assume it is not subscribed.
    fn subscribe(&self, sink: Arc<dyn RevocationSink>);

    fn health(&self) -> BusHealth;

    /// Publications that failed (the message was lost), since start.
    fn publish_failures(&self) -> u64 {
        0
    }
}
