//! The outbox port: notifications written with the event they report, delivered later by
//! a worker, at least once per channel.
//!
//! A notification is one row per configured channel, written in the same transaction as
//! its security event, so an event is never recorded without its notice and a channel
//! being down loses nothing. Workers on several nodes claim rows under a lease
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so in the normal case each row is sent once;
//! a worker that dies mid-send leaves its rows to be claimed again when the lease ends,
//! which is why receivers drop repeated ids.

use std::future::Future;
use std::net::IpAddr;

use tessera_core::Email;
use tessera_core::event::EventKind;
use tessera_core::ids::{EventId, NotificationId, SessionId, UserId};
use time::{Duration, OffsetDateTime};

use super::StoreResult;

/// What the application asks to send along with one event (the event supplies the user,
/// kind, time, session, IP and user agent).
#[derive(Debug, Clone)]
pub struct Notice {
    pub id: NotificationId,
    /// The address at the time of the event.
    pub email: Email,
    /// One outbox row is written per name (`"smtp"`, `"webhook"`, `"log"`).
    pub channels: Vec<String>,
    /// Kind-specific facts shown to the user (device name, recovery codes left); never
    /// a secret.
    pub detail: serde_json::Value,
    /// A secret the message must carry (the password-reset link's token), sealed under
    /// the master key with the notification id as owner. Deleted with the row once sent.
    pub sealed_secret: Option<Vec<u8>>,
}

/// One outbox row claimed by a worker: one notification for one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: NotificationId,
    pub channel: String,
    pub event_id: EventId,
    pub user_id: UserId,
    pub email: Email,
    pub kind: EventKind,
    pub at: OffsetDateTime,
    pub session_id: Option<SessionId>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub detail: serde_json::Value,
    pub sealed_secret: Option<Vec<u8>>,
    /// Attempts so far, this one included (1 on the first claim).
    pub attempts: u32,
}

/// How a claimed delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The channel took it: the row goes (and its sealed secret with it).
    Delivered,
    /// Try again no earlier than `at`; `error` is kept for operators (never a secret).
    Retry { at: OffsetDateTime, error: String },
    /// The channel will never take it (a malformed address, a channel no longer
    /// configured): kept, marked dead, out of the queue, counted.
    Dead { error: String },
}

/// The sealed secret of one undelivered outbox row, as master-key rotation reads and swaps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedOutboxSecret {
    pub id: NotificationId,
    pub channel: String,
    /// Sealed with the notification id as owner (see [`Notice::sealed_secret`]).
    pub sealed_secret: Vec<u8>,
}

/// The queue as operators see it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxBacklog {
    /// Rows not yet delivered and not dead, due or not.
    pub pending: u64,
    /// Rows given up on.
    pub dead: u64,
    /// When the oldest pending row was written.
    pub oldest: Option<OffsetDateTime>,
}

pub trait OutboxStore: Send + Sync {
    /// Claims at most `limit` pending rows that are due (`next attempt <= now`) and not
    /// leased, oldest first: each is leased until `now + lease` and its attempt count
    /// raised by one, in one statement, so concurrent workers (other nodes included) never
    /// claim the same row while its lease runs. Only rows addressed to one of `channels`
    /// (the worker's own) are claimed: a row for a channel this node lacks waits for a
    /// node that has it, instead of being given up on here.
    fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
        channels: &[String],
    ) -> impl Future<Output = StoreResult<Vec<Delivery>>> + Send;
    /// Settles a claimed row. Settling a row already gone (delivered by a worker whose
    /// lease had run out) is not an error.
    fn settle_delivery(
        &self,
        id: NotificationId,
        channel: &str,
        outcome: &DeliveryOutcome,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    fn outbox_backlog(&self) -> impl Future<Output = StoreResult<OutboxBacklog>> + Send;
    /// Every pending (not dead) row that carries a sealed secret, leased or not, ordered
    /// by id and channel; for re-sealing under a new master key. Delivered rows are gone
    /// and dead ones have had their secret cleared, so they are never listed.
    fn list_sealed_outbox_secrets(
        &self,
    ) -> impl Future<Output = StoreResult<Vec<SealedOutboxSecret>>> + Send;
    /// The compare-and-swap of master-key rotation: replaces the row's sealed secret only
    /// if it still is `expected`, whether or not a worker holds its lease (the worker
    /// opens the bytes it claimed, which its loaded keys still open). False (and nothing
    /// changed) when the row is gone, dead, or holds other bytes. Nothing else on the row
    /// (attempts, lease, due time) changes.
    fn swap_sealed_outbox_secret(
        &self,
        id: NotificationId,
        channel: &str,
        expected: &[u8],
        new: &[u8],
    ) -> impl Future<Output = StoreResult<bool>> + Send;
}
