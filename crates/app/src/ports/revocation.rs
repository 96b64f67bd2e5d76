//! The revocation-bus port: how one node tells every other node that sessions were
//! revoked (or changed), or that users' roles, MFA state or password changed, so their
//! liveness caches drop them at once.
//!
//! ```text
//!   publish(sessions) ──► bus ──► every node's RevocationSink::revoked(sessions)
//!   publish_changes(sessions, users) ──► … revoked(sessions), users_changed(users)
//!
//!   subscription:  Lost ──connected()──► Connected ──lost()──► Lost ──► …
//!                  (start)
//! ```
//!
//! A bus delivers at most once and only while subscribed: messages sent while a node's
//! subscription is down are gone. So a sink must treat `lost` as "everything I cached may
//! be stale" and trust nothing it learnt before the next `connected`.

use std::sync::Arc;

use tessera_core::ids::{SessionId, UserId};

use super::BoxFuture;

/// Where a bus delivers what it hears. Called from the bus's background task: keep it quick.
pub trait RevocationSink: Send + Sync + 'static {
    /// These sessions were revoked or changed somewhere (possibly on this node).
    fn revoked(&self, sessions: &[SessionId]);
    /// What these users' views hold (roles, MFA state, password) changed somewhere. No
    /// default: a sink that caches anything of a user must drop it here.
    fn users_changed(&self, users: &[UserId]);
    /// The subscription is down (or not up yet): revocations may be missed from now on.
    fn lost(&self);
    /// The subscription is (again) confirmed: revocations published from now on arrive.
    fn connected(&self);
}

/// What one message names: sessions revoked or changed, and users whose view changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes<'a> {
    pub sessions: &'a [SessionId],
    pub users: &'a [UserId],
}

impl Changes<'_> {
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.users.is_empty()
    }
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
    fn publish<'a>(&'a self, sessions: &'a [SessionId]) -> BoxFuture<'a, ()> {
        self.publish_changes(Changes {
            sessions,
            users: &[],
        })
    }

    /// Tells every node about these sessions and users in one message, as `publish` does.
    fn publish_changes<'a>(&'a self, changes: Changes<'a>) -> BoxFuture<'a, ()>;

    /// Starts delivering to `sink` in the background (call once, inside the runtime). Until
    /// the bus calls `sink.connected()`, the sink must assume it is not subscribed.
    fn subscribe(&self, sink: Arc<dyn RevocationSink>);

    fn health(&self) -> BusHealth;

    /// Publications that failed (the message was lost), since start.
    fn publish_failures(&self) -> u64 {
        0
    }
}
