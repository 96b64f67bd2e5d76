//! A signed JSON `POST` per message, for receivers that fan notifications out themselves
//! (push, chat, a SIEM, a product that sends its own mail), over `http://` or `https://`
//! (rustls with ring, the webpki roots).
//!
//! One connection per delivery: webhooks are rare, and a fresh connection never meets a
//! pooled one the receiver has half-closed.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use sha2::Sha256;
use tessera_app::ports::{BoxFuture, ChannelError, Clock, NotificationChannel, OutgoingMessage};
use time::format_description::well_known::Rfc3339;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::settings::{SettingsError, WebhookSettings};

/// Connect, send and hear the status line within this, or try again later.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct WebhookChannel {
    uri: hyper::Uri,
    secret: Vec<u8>,
    /// Present for `https://`.
    tls: Option<TlsConnector>,
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
    detail: serde_json::Value,
}

impl WebhookChannel {
    /// Trusts the public web's roots (webpki-roots) for `https://`.
    pub fn new(settings: &WebhookSettings, clock: Arc<dyn Clock>) -> Result<Self, SettingsError> {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        Self::with_roots(settings, roots, clock)
    }

    /// Trusts exactly `roots` for `https://` (a private CA).
    pub fn with_roots(
        settings: &WebhookSettings,
        roots: RootCertStore,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SettingsError> {
        let uri: hyper::Uri = settings
            .url
            .as_str()
            .parse()
            .map_err(|e| SettingsError(format!("TESSERA_WEBHOOK_URL: {e}")))?;
        let tls = if uri.scheme_str() == Some("https") {
            // The provider is named here, not taken from the process default, so this
            // works whatever else linked rustls in.
            let config = ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| SettingsError(format!("TESSERA_WEBHOOK_URL: TLS set-up failed: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            Some(TlsConnector::from(Arc::new(config)))
        } else {
            None
        };
        Ok(Self {
            uri,
            secret: settings.secret.as_bytes().to_vec(),
            tls,
            clock,
        })
    }

    /// Posts the message; only a 2xx answer counts as delivered. Any other answer is
    /// retried: a receiver that refuses is more often misconfigured (a wrong secret, a
    /// deploy in progress) than right to drop a security notice for good.
    async fn post(&self, message: &OutgoingMessage) -> Result<(), ChannelError> {
        let body = serde_json::to_vec(&body(message))
            .map_err(|e| ChannelError::Reject(format!("webhook body: {e}")))?;
        let t = self.clock.now().unix_timestamp();
        let signature = format!("t={t},v1={}", sign(&self.secret, t, &body));
        let authority = self
            .uri
            .authority()
            .ok_or_else(|| ChannelError::Reject("the webhook URL has no host".into()))?
            .clone();
        // Origin form (`/path?query`): the request goes straight to the receiver.
        let target = self
            .uri
            .path_and_query()
            .map_or("/", hyper::http::uri::PathAndQuery::as_str);
        let request = hyper::Request::post(target)
            .header(hyper::header::HOST, authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, "tessera-webhook/1")
            .header("Tessera-Signature", signature)
            .header("Tessera-Notification-Id", message.id.to_string())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ChannelError::Reject(format!("webhook request: {e}")))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority
            .port_u16()
            .unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        let status = tokio::time::timeout(TIMEOUT, async {
            let tcp = TcpStream::connect((host, port)).await.map_err(retry)?;
            match &self.tls {
                None => send(tcp, request).await,
                Some(tls) => {
                    let name = ServerName::try_from(host.to_owned())
                        .map_err(|e| ChannelError::Reject(format!("webhook host: {e}")))?;
                    let stream = tls.connect(name, tcp).await.map_err(retry)?;
                    send(stream, request).await
                }
            }
        })
        .await
        .map_err(|_| {
            ChannelError::Retry(format!("webhook: no answer within {} s", TIMEOUT.as_secs()))
        })??;
        if status.is_success() {
            Ok(())
        } else {
            Err(ChannelError::Retry(format!("webhook answered {status}")))
        }
    }
}

impl NotificationChannel for WebhookChannel {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn deliver<'a>(
        &'a self,
        message: &'a OutgoingMessage,
    ) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(self.post(message))
    }
}

fn retry(e: impl std::fmt::Display) -> ChannelError {
    ChannelError::Retry(format!("webhook: {e}"))
}

/// One HTTP/1.1 exchange on `stream`; the answer's status (its body is read and dropped).
async fn send<T>(
    stream: T,
    request: hyper::Request<Full<Bytes>>,
) -> Result<hyper::StatusCode, ChannelError>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(retry)?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(retry)?;
    let status = response.status();
    // Drained so the receiver sees a clean exchange; what it says is not ours to keep.
    let _ = response.into_body().collect().await;
    driver.abort();
    Ok(status)
}

fn body(message: &OutgoingMessage) -> Body<'_> {
    // A product that mails its own users needs the reset link, so it travels inside
    // `detail` (the request is signed; API.md lists no other place for it).
    let mut detail = message.detail.clone();
    if let Some(link) = &message.reset_link {
        if !detail.is_object() {
            detail = serde_json::json!({});
        }
        if let Some(map) = detail.as_object_mut() {
            map.insert("reset_link".into(), link.clone().into());
        }
    }
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
        detail,
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
