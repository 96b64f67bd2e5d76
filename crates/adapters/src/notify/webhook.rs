//! A signed JSON `POST` per message, for receivers that fan notifications out themselves
//! (push, chat, a SIEM). Plain `http://` only for now (see `WebhookSettings::parse`).

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use sha2::Sha256;
use tessera_app::ports::Clock;
use time::format_description::well_known::Rfc3339;

use super::settings::WebhookSettings;
use super::{DeliveryError, Message};

const CHANNEL: &str = "webhook";

/// Connect, send and hear the status line within this, or try again later.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct WebhookChannel {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: hyper::Uri,
    secret: Vec<u8>,
    /// The signature's `t`, which receivers check for freshness.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookChannel")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// The JSON body, field for field as the API contract lists it.
#[derive(Serialize)]
struct Body<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    at: String,
    user_id: String,
    email: &'a str,
    session_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<&'a str>,
    detail: &'a serde_json::Value,
}

impl WebhookChannel {
    pub fn new(settings: &WebhookSettings, clock: Arc<dyn Clock>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(TIMEOUT));
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            // `Url` already checked it; a `Uri` that fails to parse is caught per delivery.
            uri: settings
                .url
                .as_str()
                .parse()
                .unwrap_or_else(|_| hyper::Uri::from_static("http://invalid.invalid/")),
            secret: settings.secret.as_bytes().to_vec(),
            clock,
        }
    }

    /// Posts the message; only a 2xx answer counts as delivered.
    pub async fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(&body(message)).map_err(|e| DeliveryError::Rejected {
            channel: CHANNEL,
            reason: e.to_string(),
        })?;
        let t = self.clock.now().unix_timestamp();
        let signature = format!("t={t},v1={}", sign(&self.secret, t, &body));
        let request = hyper::Request::post(self.uri.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, "tessera-webhook/1")
            .header("Tessera-Signature", signature)
            .header("Tessera-Notification-Id", message.id.to_string())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| DeliveryError::Rejected {
                channel: CHANNEL,
                reason: e.to_string(),
            })?;
        let response = tokio::time::timeout(TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| DeliveryError::Unreachable {
                channel: CHANNEL,
                reason: format!("no answer within {} s", TIMEOUT.as_secs()),
            })?
            .map_err(|e| DeliveryError::Unreachable {
                channel: CHANNEL,
                reason: e.to_string(),
            })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Refused {
                channel: CHANNEL,
                status: response.status().to_string(),
            })
        }
    }
}

fn body(message: &Message) -> Body<'_> {
    Body {
        id: message.id.to_string(),
        kind: message.kind.as_str(),
        at: message
            .at
            .to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .unwrap_or_default(),
        user_id: message.user_id.to_string(),
        email: message.email.as_str(),
        session_id: message.session_id.map(|s| s.to_string()),
        ip: message.ip.map(|ip| ip.to_string()),
        user_agent: message.user_agent.as_deref(),
        detail: &message.detail,
    }
}

/// Hex HMAC-SHA256 of `"<t>.<body>"`: the `v1` of `Tessera-Signature`.
fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length (RFC 2104), so this constructor cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
