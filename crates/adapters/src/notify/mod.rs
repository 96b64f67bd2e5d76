//! Notification channels: email over SMTP, a signed webhook, and the log, each a
//! `NotificationChannel` (`tessera_app::ports`) that the outbox worker drives.
//!
//! - `settings`: the channel settings, checked at start.
//! - `smtp`, `render`: email (lettre), its plain-text and HTML bodies.
//! - `webhook`: the signed JSON `POST`.
//! - `testing` (feature `testing`): an in-process SMTP sink for tests.

mod render;
mod settings;
mod smtp;
#[cfg(feature = "testing")]
pub mod testing;
mod webhook;

use std::sync::Arc;

use tessera_app::ports::{BoxFuture, ChannelError, Clock, NotificationChannel, OutgoingMessage};

pub use settings::{ChannelSettings, SettingsError, SmtpSecurity, SmtpSettings, WebhookSettings};
pub use smtp::SmtpChannel;
pub use webhook::WebhookChannel;

/// Writes one `info` line per message: the kind and the ids, never the address, the
/// device details or a reset link (the log is read by more people than the mailbox).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogChannel;

impl NotificationChannel for LogChannel {
    fn name(&self) -> &'static str {
        "log"
    }

    fn deliver<'a>(
        &'a self,
        message: &'a OutgoingMessage,
    ) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(async move {
            tracing::info!(
                notification_id = %message.id,
                kind = message.kind.as_str(),
                user_id = %message.user_id,
                session_id = message.session_id.as_ref().map(tracing::field::display),
                "user notified"
            );
            Ok(())
        })
    }
}

/// The channels the settings ask for: SMTP and/or webhook, or the log when neither is
/// set; their names are `ChannelSettings::names`, which the outbox rows carry.
pub fn channels(
    settings: &ChannelSettings,
    clock: Arc<dyn Clock>,
) -> Result<Vec<Arc<dyn NotificationChannel>>, SettingsError> {
    let mut out: Vec<Arc<dyn NotificationChannel>> = Vec::new();
    if let Some(smtp) = &settings.smtp {
        out.push(Arc::new(SmtpChannel::new(smtp, &settings.issuer)?));
    }
    if let Some(webhook) = &settings.webhook {
        out.push(Arc::new(WebhookChannel::new(webhook, clock)?));
    }
    if out.is_empty() {
        out.push(Arc::new(LogChannel));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod webhook_tests;
