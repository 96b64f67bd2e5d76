//! Extractors: the JSON body (with the contract's 400/413/415 rules), the client IP
//! (socket peer, or the forwarded client behind a trusted proxy), the user agent and
//! the authenticated session.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use ipnet::IpNet;
use serde::de::DeserializeOwned;
use tessera_app::ports::Store;
use tessera_app::{AppError, Principal, RequestContext};

use crate::problem::{Problem, ProblemCode};
use crate::state::AppState;

/// Largest request body accepted anywhere.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON body. Wrong content type ⇒ 415; over 64 KiB ⇒ 413; malformed or ill-typed ⇒
/// 400 `invalid_request` naming the field.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let content_type = media_type(req.headers());
        let bytes = read_body(req).await?;
        match content_type.as_deref() {
            Some("application/json") => {}
            None if bytes.is_empty() => {
                return Err(Problem::new(
                    ProblemCode::InvalidRequest,
                    "a JSON object body is required",
                ));
            }
            _ => {
                return Err(Problem::new(
                    ProblemCode::UnsupportedMediaType,
                    "the body must be JSON with Content-Type: application/json",
                ));
            }
        }
        // serde reads a struct from a JSON array too (fields by position); a proxy or
        // audit layer that reads the body as an object would see no fields at all, so
        // only an object is a request.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(Problem::new(
                ProblemCode::InvalidRequest,
                "the body must be a JSON object",
            ));
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize::<_, T>(&mut *de)
            .map_err(|e| Problem::new(ProblemCode::InvalidRequest, describe_json_error(&e)))?;
        // Without this, `{...}garbage` or two objects back to back would be read as the
        // first alone, while a reader in front of us may take the second.
        de.end().map_err(|_| {
            Problem::new(
                ProblemCode::InvalidRequest,
                "the body is not valid JSON: trailing characters after the object",
            )
        })?;
        Ok(Self(value))
    }
}

/// A query string, refused as 400 `invalid_request` problem details (axum's own
/// rejection is plain text).
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Self(q.0))
            .map_err(|e| {
                Problem::new(
                    ProblemCode::InvalidRequest,
                    format!("the query string is invalid: {}", e.body_text()),
                )
            })
    }
}

/// The body, at most `BODY_LIMIT` bytes (413 otherwise, refused on the declared length
/// before anything is read when it says so).
pub(crate) async fn read_body(req: Request) -> Result<axum::body::Bytes, Problem> {
    let too_large = || {
        Problem::new(
            ProblemCode::PayloadTooLarge,
            format!("the body must be at most {BODY_LIMIT} bytes"),
        )
    };
    let declared_len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared_len.is_some_and(|n| n > BODY_LIMIT) {
        return Err(too_large());
    }
    axum::body::to_bytes(req.into_body(), BODY_LIMIT)
        .await
        .map_err(|_| too_large())
}

/// The `Content-Type` without its parameters, lower-cased (`application/json`).
pub(crate) fn media_type(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next()?.trim().to_ascii_lowercase())
}

/// Names the field in every case: a missing field is reported by serde itself, a bad
/// value by the path it sits at.
fn describe_json_error(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let inner = e.inner();
    let path = e.path().to_string();
    let msg = inner.to_string();
    // serde_json appends " at line L column C"; the field name is more useful.
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    if inner.is_syntax() || inner.is_eof() {
        return format!("the body is not valid JSON: {msg}");
    }
    if let Some(missing) = msg.strip_prefix("missing field ") {
        return format!("field {missing} is required");
    }
    if path == "." || path.is_empty() {
        return format!("the body must be a JSON object: {msg}");
    }
    format!("field `{path}` is invalid: {msg}")
}

/// The client address, by the trusted-proxy rule of the API contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

/// The right-most `X-Forwarded-For` address that is not a trusted proxy, when the peer
/// itself is trusted; otherwise the peer. An unparsable hop ends the walk: everything to
/// its left is unverifiable, so the last trusted hop stands in for the client.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for.iter().rev().flat_map(|h| h.rsplit(',')) {
        let Ok(ip) = hop.trim().parse::<IpAddr>().map(canonical) else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

impl<S: Store> FromRequestParts<AppState<S>> for ClientIp {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState<S>,
    ) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>().copied()
        else {
            return Ok(Self(None));
        };
        let hops: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Ok(Self(Some(client_ip(
            peer.ip(),
            &hops,
            &state.trusted_proxies,
        ))))
    }
}

/// Where the request came from (client IP and user agent), for sessions and events.
pub struct Context(pub RequestContext);

impl<S: Store> FromRequestParts<AppState<S>> for Context {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState<S>,
    ) -> Result<Self, Self::Rejection> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        let ua = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        Ok(Self(RequestContext::new(ip, ua)))
    }
}

/// The caller's verified, live session.
pub struct CurrentSession(pub Principal);

impl<S: Store> FromRequestParts<AppState<S>> for CurrentSession {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState<S>,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(AppError::MissingToken.into());
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(AppError::InvalidToken)?;
        Ok(Self(state.app.authenticate(token).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[derive(serde::Deserialize)]
    struct Pair {
        #[allow(dead_code)]
        email: String,
        #[allow(dead_code)]
        password: String,
    }

    async fn json_status(body: &'static str) -> u16 {
        let req = Request::post("/")
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body))
            .unwrap();
        match ApiJson::<Pair>::from_request(req, &()).await {
            Ok(_) => 200,
            Err(p) => axum::response::IntoResponse::into_response(p)
                .status()
                .as_u16(),
        }
    }

    // Found by the api_json fuzz target: serde fills a struct from an array by position.
    #[tokio::test]
    async fn a_json_body_is_one_object_never_an_array_of_positional_fields() {
        assert_eq!(json_status(r#"["a@example.com", "pw"]"#).await, 400);
        assert_eq!(json_status(r#""a@example.com""#).await, 400);
    }

    // Found by the api_json fuzz target: serde_json stops after the first value unless
    // told to check for the end of the input.
    #[tokio::test]
    async fn a_json_body_is_exactly_one_object_with_nothing_after_it() {
        let one = r#"{"email": "a@example.com", "password": "pw"}"#;
        assert_eq!(
            json_status(r#"{"email": "a@example.com", "password": "pw"}garbage"#).await,
            400
        );
        assert_eq!(
            json_status(r#"{"email": "a@example.com", "password": "pw"} {"email": "b@example.com", "password": "pw"}"#).await,
            400
        );
        assert_eq!(json_status(one).await, 200);
        assert_eq!(
            json_status("{\"email\": \"a@example.com\", \"password\": \"pw\"}\n").await,
            200
        );
        assert_eq!(
            json_status(" \n{\"email\": \"a@example.com\", \"password\": \"pw\"}").await,
            200
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let ip = client_ip("203.0.113.9".parse().unwrap(), &["1.2.3.4"], &[]);
        assert_eq!(ip, "203.0.113.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        let ip = client_ip(
            "10.0.0.1".parse().unwrap(),
            &["6.6.6.6, 198.51.100.7, 10.0.0.2"],
            &trusted,
        );
        assert_eq!(ip, "198.51.100.7".parse::<IpAddr>().unwrap());
        let ip = client_ip(
            "10.0.0.1".parse().unwrap(),
            &["6.6.6.6", "198.51.100.7"],
            &trusted,
        );
        assert_eq!(ip, "198.51.100.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn garbage_in_the_header_never_lets_a_spoofed_hop_through() {
        let trusted = nets(&["10.0.0.0/8"]);
        let ip = client_ip(
            "10.0.0.1".parse().unwrap(),
            &["6.6.6.6, not-an-ip, 10.0.0.3"],
            &trusted,
        );
        assert_eq!(ip, "10.0.0.3".parse::<IpAddr>().unwrap());
        let ip = client_ip("10.0.0.1".parse().unwrap(), &[], &trusted);
        assert_eq!(ip, "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn ipv4_mapped_peers_are_recorded_as_ipv4() {
        let ip = client_ip("::ffff:192.0.2.1".parse().unwrap(), &[], &[]);
        assert_eq!(ip, "192.0.2.1".parse::<IpAddr>().unwrap());
    }
}
