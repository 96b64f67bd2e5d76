//! Notifications as log lines: the embedded default, for when no mail or webhook is set up.

use tessera_app::ports::{Notification, Notifier};

/// Writes one `info` line per notification: the kind and the ids, never the address or
/// anything secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn notify(&self, notification: &Notification) {
        tracing::info!(
            kind = notification.kind.as_str(),
            user_id = %notification.user_id,
            session_id = notification.session_id.as_ref().map(tracing::field::display),
            "user notified"
        );
    }
}
