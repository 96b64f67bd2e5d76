//! Email through an SMTP relay (lettre, pooled connections, rustls with ring).

use std::time::Duration;

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use tessera_app::ports::{BoxFuture, ChannelError, NotificationChannel, OutgoingMessage};

use super::render::render;
use super::settings::{SettingsError, SmtpSecurity, SmtpSettings};

/// Long enough for a slow relay, short enough that a dead one does not pile up tasks.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct SmtpChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    issuer: String,
}

impl std::fmt::Debug for SmtpChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpChannel")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpChannel {
    pub fn new(settings: &SmtpSettings, issuer: &str) -> Result<Self, SettingsError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| SettingsError(format!("TESSERA_SMTP_FROM: {e}")))?;
        let tls = |host: &str| {
            TlsParameters::new(host.to_owned())
                .map_err(|e| SettingsError(format!("TESSERA_SMTP_URL: TLS set-up failed: {e}")))
        };
        let tls = match settings.security {
            SmtpSecurity::Plain => Tls::None,
            SmtpSecurity::StartTls => Tls::Required(tls(&settings.host)?),
            SmtpSecurity::Implicit => Tls::Wrapper(tls(&settings.host)?),
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.clone())
                .port(settings.port)
                .tls(tls)
                .timeout(Some(COMMAND_TIMEOUT));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            issuer: issuer.to_owned(),
        })
    }

    /// Sends one email (multipart/alternative: text and HTML) to the user's address.
    async fn send(&self, message: &OutgoingMessage) -> Result<(), ChannelError> {
        // Reasons name what failed, never the address (they are kept on the outbox row).
        let to: Mailbox = message
            .email
            .as_str()
            .parse()
            .map_err(|_| ChannelError::Reject("the recipient is not a valid mailbox".into()))?;
        let bodies =
            render(message, &self.issuer).map_err(|e| ChannelError::Reject(e.to_string()))?;
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(bodies.subject)
            .header(NotificationId(message.id.to_string()))
            .multipart(MultiPart::alternative_plain_html(bodies.text, bodies.html))
            .map_err(|e| ChannelError::Reject(format!("building the email: {e}")))?;
        self.transport
            .send(email)
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

impl NotificationChannel for SmtpChannel {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn deliver<'a>(
        &'a self,
        message: &'a OutgoingMessage,
    ) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(self.send(message))
    }
}

/// Only the relay saying this recipient will never be reached (RFC 5321 mailbox codes)
/// gives up on a message; every other failure, permanent ones included (a refused login
/// is permanent until the operator fixes it), is retried, so a misconfiguration delays
/// notices instead of losing them.
fn classify(e: lettre::transport::smtp::Error) -> ChannelError {
    let code = e.status().map(|c| c.to_string());
    match code.as_deref() {
        Some(c @ ("501" | "550" | "551" | "552" | "553")) if e.is_permanent() => {
            ChannelError::Reject(format!("smtp relay refused the recipient ({c})"))
        }
        Some(c) => ChannelError::Retry(format!("smtp relay answered {c}")),
        None => ChannelError::Retry(format!("smtp: {e}")),
    }
}

/// `Tessera-Notification-Id`: lets a mail filter or a person spot a resent message.
#[derive(Debug, Clone)]
struct NotificationId(String);

impl Header for NotificationId {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Tessera-Notification-Id")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}
