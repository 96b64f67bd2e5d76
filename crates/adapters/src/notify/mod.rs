//! Notification channels: email over SMTP, a signed webhook, and the log.
//!
//! Each channel delivers one [`Message`] at a time with `deliver`, and says whether it
//! arrived; a message has a stable id so that a later retry (the outbox worker, next
//! step) can be recognised as the same message by the receiver. Until the outbox exists,
//! [`ChannelNotifier`] adapts the channels to the `Notifier` port: it delivers in a
//! spawned task, best effort, and logs what failed.

mod render;
mod settings;
mod smtp;
#[cfg(feature = "testing")]
pub mod testing;
mod webhook;

use std::net::IpAddr;
use std::sync::Arc;

use tessera_app::ports::{Clock, Notification, Notifier};
use tessera_core::email::Email;
use tessera_core::event::EventKind;
use tessera_core::ids::{SessionId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

pub use settings::{ChannelSettings, SettingsError, SmtpSecurity, SmtpSettings, WebhookSettings};
pub use smtp::SmtpChannel;
pub use webhook::WebhookChannel;

/// One notice to one user, as every channel sends it.
#[derive(Debug, Clone)]
pub struct Message {
    /// Stable across retries: the `Tessera-Notification-Id` header and the webhook `id`.
    pub id: Uuid,
    pub kind: EventKind,
    pub at: OffsetDateTime,
    pub user_id: UserId,
    pub email: Email,
    pub session_id: Option<SessionId>,
    pub ip: Option<IpAddr>,
    /// The device as its client described itself; shown to the user, so never trusted.
    pub user_agent: Option<String>,
    /// Kind-specific facts (for `recovery_code_used`: `{"remaining": n}`).
    pub detail: serde_json::Value,
}

impl Message {
    /// A new message (fresh id) for a notification raised by the application.
    pub fn from_notification(notification: &Notification) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind: notification.kind,
            at: notification.at,
            user_id: notification.user_id,
            email: notification.email.clone(),
            session_id: notification.session_id,
            ip: notification.ip,
            user_agent: notification.user_agent.clone(),
            detail: serde_json::Value::Null,
        }
    }
}

/// Why a delivery did not happen. Every variant is worth retrying later except
/// `Rejected`, which names a message the channel will never take.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("could not reach the {channel} endpoint: {reason}")]
    Unreachable {
        channel: &'static str,
        reason: String,
    },
    #[error("the {channel} endpoint answered {status}")]
    Refused {
        channel: &'static str,
        status: String,
    },
    #[error("the message could not be built for {channel}: {reason}")]
    Rejected {
        channel: &'static str,
        reason: String,
    },
}

/// Writes one `info` line per message: the kind and the ids, never the address.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogChannel;

impl LogChannel {
    pub async fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        tracing::info!(
            notification_id = %message.id,
            kind = message.kind.as_str(),
            user_id = %message.user_id,
            session_id = message.session_id.as_ref().map(tracing::field::display),
            "user notified"
        );
        Ok(())
    }
}

/// One configured way of reaching users.
#[derive(Debug, Clone)]
pub enum Channel {
    Smtp(SmtpChannel),
    Webhook(WebhookChannel),
    Log(LogChannel),
}

impl Channel {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Smtp(_) => "smtp",
            Self::Webhook(_) => "webhook",
            Self::Log(_) => "log",
        }
    }

    pub async fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        match self {
            Self::Smtp(c) => c.deliver(message).await,
            Self::Webhook(c) => c.deliver(message).await,
            Self::Log(c) => c.deliver(message).await,
        }
    }
}

/// The channels the settings ask for: SMTP and/or webhook, or the log when neither is set.
pub fn channels(
    settings: &ChannelSettings,
    clock: Arc<dyn Clock>,
) -> Result<Vec<Channel>, SettingsError> {
    let mut out = Vec::new();
    if let Some(smtp) = &settings.smtp {
        out.push(Channel::Smtp(SmtpChannel::new(smtp, &settings.issuer)?));
    }
    if let Some(webhook) = &settings.webhook {
        out.push(Channel::Webhook(WebhookChannel::new(webhook, clock)));
    }
    if out.is_empty() {
        out.push(Channel::Log(LogChannel));
    }
    Ok(out)
}

/// The `Notifier` port over the channels, best effort: each notification is delivered
/// by a spawned task to every channel once, and a failure is logged, not retried (the
/// outbox will retry). Outside a Tokio runtime it falls back to a log line.
#[derive(Debug, Clone)]
pub struct ChannelNotifier {
    channels: Arc<[Channel]>,
}

impl ChannelNotifier {
    pub fn new(channels: Vec<Channel>) -> Self {
        Self {
            channels: channels.into(),
        }
    }
}

impl Notifier for ChannelNotifier {
    fn notify(&self, notification: &Notification) {
        let message = Message::from_notification(notification);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                notification_id = %message.id,
                kind = message.kind.as_str(),
                "no async runtime to deliver a notification on; dropped"
            );
            return;
        };
        let channels = Arc::clone(&self.channels);
        runtime.spawn(async move {
            for channel in channels.iter() {
                if let Err(e) = channel.deliver(&message).await {
                    tracing::warn!(
                        notification_id = %message.id,
                        kind = message.kind.as_str(),
                        channel = channel.name(),
                        error = %e,
                        "notification not delivered"
                    );
                }
            }
        });
    }
}

#[cfg(test)]
mod tests;
