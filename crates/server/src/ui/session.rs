//! The browser's session: the access token and the refresh token in `__Host-` cookies.
//!
//! A page request authenticates the access token exactly like the API does (signature,
//! expiry, and the session's liveness, so a revoked device is out at once). When the
//! access token has expired the refresh token is rotated and both cookies are replaced,
//! but only on a request the browser says is not cross-site (`may_rotate`): `SameSite=Lax`
//! sends the cookies on a cross-site navigation too, and a hostile page that starts one and
//! aborts it after the server rotated would leave the browser with a retired cookie. Such
//! an arrival gets a small page that continues with a same-origin request.
//!
//! A rotation that finished still reaches the browser if the response carrying it was
//! lost: the app judges a browser's cookie with at least `BROWSER_RETRY_WINDOW`, so the
//! retired token presented again within it gets the same successor. Tabs reloading
//! together share a rotation still running on this node (`flight`), and any other node
//! gets the same successor from the store.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use tessera_app::ports::Store;
use tessera_app::{App, AppError, Principal, RequestContext, Tokens};
use tessera_core::secret::RefreshToken;

use super::cookies::{REFRESH, SESSION, expired, host_cookie};
use super::flight::Flights;
use super::views::{ContinuePage, page};
use super::{ACCOUNT_PATH, LOGIN_PATH};
use crate::extract::Context;
use crate::state::AppState;

/// Tokens a browser holds after sign-in or rotation. `Debug` shows none.
#[derive(Clone)]
pub struct BrowserTokens {
    pub access_token: String,
    pub access_expires_in: i64,
    pub refresh_token: String,
}

impl std::fmt::Debug for BrowserTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrowserTokens([redacted])")
    }
}

impl From<Tokens> for BrowserTokens {
    fn from(t: Tokens) -> Self {
        Self {
            access_token: t.access_token,
            access_expires_in: t.expires_in,
            refresh_token: t.refresh_token.expose(),
        }
    }
}

/// What a finished rotation leaves for the requests that waited on it.
#[derive(Clone)]
enum Rotated {
    Tokens(BrowserTokens),
    /// The refresh token no longer signs anyone in.
    SignedOut,
    /// Not the token's fault (the store failed): the message, for the log, and whether
    /// the store was only unreachable (a 503 to retry, not a 500).
    Failed {
        message: String,
        unavailable: bool,
    },
}

/// The refresh-token rotations running on this node, by the presented token's hash.
#[derive(Default)]
pub struct RefreshFlights {
    flights: Arc<Flights<[u8; 32], Rotated>>,
}

impl RefreshFlights {
    /// The rotated tokens, or `None` when the refresh token no longer signs anyone in.
    pub async fn rotate<S: Store>(
        &self,
        state: &AppState<S>,
        token: &RefreshToken,
        ctx: &RequestContext,
    ) -> Result<Option<BrowserTokens>, AppError> {
        let key = *token.hash().as_bytes();
        let (state, token, ctx) = (state.clone(), token.clone(), ctx.clone());
        // The rotation runs in its own task (see `flight`): a client that goes away
        // mid-rotation neither leaves it half-done nor makes the next request rotate the
        // same token again.
        let rotated = self.flights.join(key, move || async move {
            let result = state.app.refresh_browser(&token, &ctx).await;
            state.metrics.observe_refresh(&result);
            match result {
                Ok(tokens) => Rotated::Tokens(BrowserTokens::from(tokens)),
                // An outage must not sign the browser out: its cookie may be fine.
                Err(AppError::Internal(e)) => Rotated::Failed {
                    message: chain(e.as_ref()),
                    unavailable: false,
                },
                Err(AppError::Unavailable(e)) => Rotated::Failed {
                    message: chain(e.as_ref()),
                    unavailable: true,
                },
                Err(_) => Rotated::SignedOut,
            }
        });
        match rotated.await {
            Some(Rotated::Tokens(tokens)) => Ok(Some(tokens)),
            Some(Rotated::SignedOut) => Ok(None),
            Some(Rotated::Failed {
                message,
                unavailable,
            }) if unavailable => Err(AppError::Unavailable(message.into())),
            Some(Rotated::Failed { message, .. }) => Err(AppError::Internal(message.into())),
            None => Err(AppError::Internal("the refresh rotation panicked".into())),
        }
    }
}

/// An error with its causes, for the log of whichever request reports it.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Adds the session cookies for `tokens`.
pub fn with_session_cookies<S: Store>(
    jar: CookieJar,
    app: &App<S>,
    tokens: &BrowserTokens,
) -> CookieJar {
    jar.add(access_cookie(
        &tokens.access_token,
        tokens.access_expires_in,
    ))
    .add(refresh_cookie(app, tokens))
}

/// The access-token cookie, gone when the token expires.
pub fn access_cookie(access_token: &str, expires_in: i64) -> Cookie<'static> {
    host_cookie(
        SESSION,
        access_token.to_owned(),
        Some(time::Duration::seconds(expires_in)),
    )
}

/// The refresh-token cookie lasts as long as an idle session does.
fn refresh_cookie<S: Store>(app: &App<S>, tokens: &BrowserTokens) -> Cookie<'static> {
    let idle = app.settings().lifetimes.idle;
    host_cookie(REFRESH, tokens.refresh_token.clone(), Some(idle))
}

/// Removes both session cookies.
pub fn without_session_cookies(jar: CookieJar) -> CookieJar {
    jar.add(expired(SESSION)).add(expired(REFRESH))
}

/// What the cookies say about who is using this browser.
// Made once per request and matched at once: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum BrowserSession {
    /// No cookies, or their session has ended.
    SignedOut,
    /// `fresh`: the tokens a rotation on the way issued, for the response's cookies.
    SignedIn(Principal, Option<BrowserTokens>),
    /// Only a rotation can tell, and this request may not rotate: answer `continue_page`.
    MustContinue,
}

/// Whether this request may rotate the refresh cookie: the browser says it comes from
/// this origin (`same-origin`) or from the person (`none`: typed, a bookmark, a reload).
/// A request without `Sec-Fetch-Site` may too: every browser since 2023 sends it, so it
/// comes from an older browser or from a non-browser client, and neither can be led any
/// further by a page (the same-origin request a continue page makes would lack it too, so
/// refusing would sign them out for good). `cross-site`, `same-site` (a sibling subdomain
/// is another party) and anything else may not.
pub fn may_rotate(headers: &HeaderMap) -> bool {
    match headers.get("sec-fetch-site").map(HeaderValue::as_bytes) {
        None => true,
        Some(site) => site == b"same-origin" || site == b"none",
    }
}

/// Who the browser is: from a valid access token, else by rotating its refresh token
/// (when `may_rotate`).
pub async fn browser_principal<S: Store>(
    state: &AppState<S>,
    jar: &CookieJar,
    ctx: &RequestContext,
    may_rotate: bool,
) -> Result<BrowserSession, AppError> {
    if let Some(access) = jar.get(SESSION) {
        match state.app.authenticate(access.value()).await {
            Ok(who) => return Ok(BrowserSession::SignedIn(who, None)),
            // Expired (or from a key long gone): the refresh token decides.
            Err(AppError::InvalidToken) => {}
            Err(e) if e.is_server_fault() => return Err(e),
            Err(_) => return Ok(BrowserSession::SignedOut),
        }
    }
    let Some(token) = jar
        .get(REFRESH)
        .and_then(|c| RefreshToken::parse(c.value()).ok())
    else {
        return Ok(BrowserSession::SignedOut);
    };
    if !may_rotate {
        return Ok(BrowserSession::MustContinue);
    }
    let Some(fresh) = state.web.rotate(state, &token, ctx).await? else {
        return Ok(BrowserSession::SignedOut);
    };
    match state.app.authenticate(&fresh.access_token).await {
        Ok(who) => Ok(BrowserSession::SignedIn(who, Some(fresh))),
        Err(e) if e.is_server_fault() => Err(e),
        Err(_) => Ok(BrowserSession::SignedOut),
    }
}

/// Guards the account pages: the handler gets the `Principal` as an extension; a browser
/// without a live session is sent to sign in (its dead cookies removed).
pub async fn require_session<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    jar: CookieJar,
    mut req: Request,
    next: Next,
) -> Response {
    let rotate = may_rotate(req.headers());
    match browser_principal(&state, &jar, &ctx, rotate).await {
        Ok(BrowserSession::SignedIn(who, fresh)) => {
            req.extensions_mut().insert(who);
            let mut res = next.run(req).await;
            if let Some(fresh) = fresh {
                // What the handler set wins: a stepped-up access token, or a sign-out
                // that deleted both cookies.
                let mut jar = CookieJar::new();
                if !sets_cookie(&res, SESSION) {
                    jar = jar.add(access_cookie(&fresh.access_token, fresh.access_expires_in));
                }
                if !sets_cookie(&res, REFRESH) {
                    jar = jar.add(refresh_cookie(&state.app, &fresh));
                }
                res = (jar, res).into_response();
            }
            res
        }
        Ok(BrowserSession::SignedOut) => {
            (without_session_cookies(jar), Redirect::to(LOGIN_PATH)).into_response()
        }
        Ok(BrowserSession::MustContinue) => {
            // A form is not sent again; its page is where the person can.
            let target = if req.method() == Method::GET || req.method() == Method::HEAD {
                req.uri().path()
            } else {
                ACCOUNT_PATH
            };
            continue_page(target)
        }
        Err(e) => super::views::failure_page(e),
    }
}

/// The answer to an arrival from another site that needs a rotation: a page that goes on
/// to `path` (this origin's, without its query) at once, with a same-origin request that
/// may rotate. No script: a `<meta http-equiv="refresh">`, which the CSP does not govern,
/// and a link for a browser that ignores it. Never cached. It opens no other window and
/// `Cross-Origin-Opener-Policy: same-origin` severs the page that opened this one (a
/// popup), so that page can no longer navigate this window away mid-rotation.
pub fn continue_page(path: &str) -> Response {
    // Only a path of this origin: never `//host` (another origin) nor `/\host`.
    let local = path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\");
    let target = if local { path } else { ACCOUNT_PATH };
    let mut res = page(
        StatusCode::OK,
        &ContinuePage {
            target: target.to_owned(),
        },
    );
    let headers = res.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    res
}

fn sets_cookie(res: &Response, name: &str) -> bool {
    res.headers().get_all(header::SET_COOKIE).iter().any(|v| {
        v.as_bytes()
            .strip_prefix(name.as_bytes())
            .is_some_and(|rest| rest.starts_with(b"="))
    })
}

/// Where a signed-in browser goes.
pub fn to_account() -> Redirect {
    Redirect::to(ACCOUNT_PATH)
}
