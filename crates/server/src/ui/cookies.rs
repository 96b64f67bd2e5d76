//! The browser's cookies and the CSRF check of every form.
//!
//! Every cookie is `__Host-` (so only this exact origin can set it: no sibling subdomain
//! can plant one), `Secure`, `HttpOnly` (no script ever reads a token) and
//! `SameSite=Lax` (a cross-site POST carries none of them; a link from an email still
//! opens the account page signed in, and GET pages change nothing).
//!
//! CSRF: every form carries the value of the `__Host-tessera_csrf` cookie in a hidden
//! field and the server compares the two (a double-submit token; the `__Host-` prefix
//! is what makes it sound, since an attacker cannot write that cookie). The router adds
//! tower-http's `CsrfLayer` (Sec-Fetch-Site / Origin) in front as a second, independent
//! check. docs/security.md says why both.

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use data_encoding::BASE64URL_NOPAD;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;
use time::Duration;

use crate::extract::{media_type, read_body};
use crate::problem::{Problem, ProblemCode};

/// The access token (a short-lived JWT).
pub const SESSION: &str = "__Host-tessera_session";
/// The device's refresh token.
pub const REFRESH: &str = "__Host-tessera_refresh";
/// This browser's device id, kept across sign-ins so it stays one device.
pub const DEVICE: &str = "__Host-tessera_device";
/// A login waiting for its second factor (the single-use `mfa_token`).
pub const MFA: &str = "__Host-tessera_mfa";
/// The CSRF token every form repeats.
pub const CSRF: &str = "__Host-tessera_csrf";
/// The known-device token of the last sign-in from this browser (its own login budget).
pub const KNOWN_DEVICE: &str = "__Host-tessera_known_device";

/// How long this browser keeps its device id (Chromium caps cookies at 400 days).
const DEVICE_LIFETIME: Duration = Duration::days(400);

/// A `__Host-` cookie; `max_age: None` lasts until the browser closes.
pub fn host_cookie(
    name: &'static str,
    value: String,
    max_age: Option<Duration>,
) -> Cookie<'static> {
    let mut cookie = Cookie::build((name, value))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax);
    if let Some(age) = max_age {
        cookie = cookie.max_age(age);
    }
    cookie.build()
}

/// Keeps the known-device token a sign-in answered, for as long as it is honoured.
pub fn with_known_device(jar: CookieJar, token: Option<String>) -> CookieJar {
    match token {
        Some(token) => jar.add(host_cookie(
            KNOWN_DEVICE,
            token,
            Some(tessera_core::known_device::LIFETIME),
        )),
        None => jar,
    }
}

/// Deletes a cookie. Built by hand: the browser ignores a `__Host-` cookie without
/// `Secure` and `Path=/`, deletions included.
pub fn expired(name: &'static str) -> Cookie<'static> {
    host_cookie(name, String::new(), Some(Duration::ZERO))
}

fn random_value(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // Without randomness no safe value exists; an empty value fails every comparison.
    if getrandom::fill(&mut buf).is_err() {
        tracing::error!("no randomness for a cookie value");
        return String::new();
    }
    BASE64URL_NOPAD.encode(&buf)
}

fn well_formed(value: &str, bytes: usize) -> bool {
    BASE64URL_NOPAD
        .decode(value.as_bytes())
        .is_ok_and(|v| v.len() == bytes)
}

const CSRF_BYTES: usize = 32;

/// The CSRF token for the forms of the page being rendered: the browser's, or a new one
/// (added to the jar) when it has none.
pub fn csrf_token(jar: CookieJar) -> (CookieJar, String) {
    if let Some(c) = jar.get(CSRF)
        && well_formed(c.value(), CSRF_BYTES)
    {
        let value = c.value().to_owned();
        return (jar, value);
    }
    let value = random_value(CSRF_BYTES);
    (jar.add(host_cookie(CSRF, value.clone(), None)), value)
}

/// This browser's device id (`web-` + 128 random bits), created on its first sign-in.
pub fn device_id(jar: CookieJar) -> (CookieJar, String) {
    if let Some(c) = jar.get(DEVICE)
        && let Some(raw) = c.value().strip_prefix("web-")
        && well_formed(raw, 16)
    {
        let value = c.value().to_owned();
        return (jar, value);
    }
    let value = format!("web-{}", random_value(16));
    let jar = jar.add(host_cookie(DEVICE, value.clone(), Some(DEVICE_LIFETIME)));
    (jar, value)
}

/// A form body whose `csrf` field matches the browser's CSRF cookie. Refused before the
/// fields are even read: 403 (an HTML page saying the form expired) on a mismatch,
/// problem details for a body that is not a form.
pub struct CheckedForm<T>(pub T);

/// A form with nothing but its CSRF token.
#[derive(Deserialize)]
pub struct NoFields {}

#[derive(Deserialize)]
struct TokenField {
    #[serde(default)]
    csrf: String,
}

impl<S, T> FromRequest<S> for CheckedForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(req.headers());
        if media_type(req.headers()).as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(Problem::new(
                ProblemCode::UnsupportedMediaType,
                "the body must be an HTML form (application/x-www-form-urlencoded)",
            )
            .into_response());
        }
        let bytes = read_body(req).await.map_err(IntoResponse::into_response)?;
        let presented = serde_urlencoded::from_bytes::<TokenField>(&bytes)
            .map(|t| t.csrf)
            .unwrap_or_default();
        let matches = jar.get(CSRF).is_some_and(|c| {
            !presented.is_empty() && bool::from(c.value().as_bytes().ct_eq(presented.as_bytes()))
        });
        if !matches {
            return Err(super::views::expired_form());
        }
        serde_urlencoded::from_bytes::<T>(&bytes)
            .map(Self)
            .map_err(|e| {
                Problem::new(
                    ProblemCode::InvalidRequest,
                    format!("the form is invalid: {e}"),
                )
                .into_response()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cookie_is_host_prefixed_secure_httponly_and_lax() {
        let c = host_cookie(SESSION, "v".into(), Some(Duration::seconds(900))).to_string();
        for part in [
            "__Host-",
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
            "Max-Age=900",
        ] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
        assert!(
            !c.contains("Domain"),
            "a __Host- cookie must not name a domain: {c}"
        );
        let gone = expired(REFRESH).to_string();
        assert!(gone.contains("Max-Age=0") && gone.contains("Secure") && gone.contains("Path=/"));
    }

    #[test]
    fn a_csrf_token_is_kept_while_well_formed_and_replaced_otherwise() {
        let (jar, first) = csrf_token(CookieJar::new());
        assert!(well_formed(&first, CSRF_BYTES));
        let (_, again) = csrf_token(jar);
        assert_eq!(again, first);
        let forged = CookieJar::new().add(host_cookie(CSRF, "short".into(), None));
        let (_, replaced) = csrf_token(forged);
        assert_ne!(replaced, "short");
        assert!(well_formed(&replaced, CSRF_BYTES));
    }

    #[test]
    fn a_device_id_is_a_valid_device_id_and_stays() {
        let (jar, id) = device_id(CookieJar::new());
        assert!(tessera_core::ids::DeviceId::parse(&id).is_ok(), "{id}");
        assert_eq!(device_id(jar).1, id);
    }
}
