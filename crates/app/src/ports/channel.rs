//! The channel port: one way of reaching users (SMTP, a signed webhook, the log), as the
//! outbox worker drives it. Object-safe, so the worker holds whichever channels the
//! configuration names behind one type.

use std::net::IpAddr;

use tessera_core::Email;
use tessera_core::event::EventKind;
use tessera_core::ids::{NotificationId, SessionId, UserId};
use time::OffsetDateTime;

use super::BoxFuture;

/// One notice to one user, as every channel sends it: a claimed outbox row with its
/// secret already opened and turned into what the user needs (the reset link).
#[derive(Clone, PartialEq)]
pub struct OutgoingMessage {
    /// Stable across retries: the `Tessera-Notification-Id` header and the webhook `id`.
    pub id: NotificationId,
    pub kind: EventKind,
    pub at: OffsetDateTime,
    pub user_id: UserId,
    pub email: Email,
    pub session_id: Option<SessionId>,
    pub ip: Option<IpAddr>,
    /// The device as its client described itself; shown to the user, so never trusted.
    pub user_agent: Option<String>,
    /// Kind-specific facts (`device_name`, `remaining`); never a secret.
    pub detail: serde_json::Value,
    /// `<issuer>/reset-password?token=<token>`, only on `password_reset_requested`. A
    /// credential: channels put it where the user (or the signed receiver) reads it and
    /// nowhere else, never in a log line.
    pub reset_link: Option<String>,
}

impl std::fmt::Debug for OutgoingMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMessage")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("at", &self.at)
            .field("user_id", &self.user_id)
            .field("session_id", &self.session_id)
            .field("detail", &self.detail)
            .field(
                "reset_link",
                &self.reset_link.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

/// Why a channel did not take a message. The reason is kept on the outbox row for
/// operators, so it never holds the message's secret or its address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// Worth trying again later (the relay or receiver is down, busy or timed out).
    #[error("{0}")]
    Retry(String),
    /// This message will never be taken (an address the relay refuses, a body that cannot
    /// be built): the row is marked dead.
    #[error("{0}")]
    Reject(String),
}

pub trait NotificationChannel: Send + Sync + 'static {
    /// The name outbox rows carry (`"smtp"`, `"webhook"`, `"log"`).
    fn name(&self) -> &'static str;
    /// Sends one message; `Ok` only once the other side has taken it.
    fn deliver<'a>(
        &'a self,
        message: &'a OutgoingMessage,
    ) -> BoxFuture<'a, Result<(), ChannelError>>;
}
