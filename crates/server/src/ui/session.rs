//! The browser's session: the access token and the refresh token in `__Host-` cookies.
//!
//! A page request authenticates the access token exactly like the API does (signature,
//! expiry, and the session's liveness, so a revoked device is out at once). When the
//! access token has expired the refresh token is rotated and both cookies are replaced.
//! Two tabs reloading together would present the same refresh token twice, which the
//! rotation rules treat as theft; so a node runs one rotation per presented token and
//! hands its result to every request that presented the same token within a few
//! seconds. The new tokens live in memory only, keyed by the old token's hash.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use tessera_app::ports::Store;
use tessera_app::{App, AppError, Principal, RequestContext, Tokens};
use tessera_core::secret::RefreshToken;
use tokio::sync::OnceCell;

use super::cookies::{REFRESH, SESSION, expired, host_cookie};
use super::{ACCOUNT_PATH, LOGIN_PATH};
use crate::extract::Context;
use crate::state::AppState;

/// How long a rotation's result answers the same old token on this node.
const SHARED_FOR: Duration = Duration::from_secs(10);

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

type Flight = (Instant, Arc<OnceCell<Option<BrowserTokens>>>);

/// One refresh-token rotation per presented token at a time, on this node.
#[derive(Default)]
pub struct RefreshFlights {
    flights: Mutex<HashMap<[u8; 32], Flight>>,
}

impl RefreshFlights {
    /// The rotated tokens, or `None` when the refresh token no longer signs anyone in.
    pub async fn rotate<S: Store>(
        &self,
        app: &App<S>,
        token: &RefreshToken,
        ctx: &RequestContext,
    ) -> Result<Option<BrowserTokens>, AppError> {
        let cell = {
            let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
            flights.retain(|_, (started, _)| started.elapsed() < SHARED_FOR);
            let (_, cell) = flights
                .entry(*token.hash().as_bytes())
                .or_insert_with(|| (Instant::now(), Arc::new(OnceCell::new())));
            Arc::clone(cell)
        };
        // An internal error is not remembered: the next request tries again.
        let outcome = cell
            .get_or_try_init(|| async {
                match app.refresh(token, ctx).await {
                    Ok(tokens) => Ok(Some(BrowserTokens::from(tokens))),
                    Err(e @ AppError::Internal(_)) => Err(e),
                    Err(_) => Ok(None),
                }
            })
            .await?;
        Ok(outcome.clone())
    }
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

/// Who the browser is: from a valid access token, else by rotating its refresh token.
/// `Ok(None)`: nobody (no cookies, or the session has ended).
pub async fn browser_principal<S: Store>(
    state: &AppState<S>,
    jar: &CookieJar,
    ctx: &RequestContext,
) -> Result<Option<(Principal, Option<BrowserTokens>)>, AppError> {
    if let Some(access) = jar.get(SESSION) {
        match state.app.authenticate(access.value()).await {
            Ok(who) => return Ok(Some((who, None))),
            // Expired (or from a key long gone): the refresh token decides.
            Err(AppError::InvalidToken) => {}
            Err(e @ AppError::Internal(_)) => return Err(e),
            Err(_) => return Ok(None),
        }
    }
    let Some(token) = jar
        .get(REFRESH)
        .and_then(|c| RefreshToken::parse(c.value()).ok())
    else {
        return Ok(None);
    };
    let Some(fresh) = state.web.rotate(&state.app, &token, ctx).await? else {
        return Ok(None);
    };
    match state.app.authenticate(&fresh.access_token).await {
        Ok(who) => Ok(Some((who, Some(fresh)))),
        Err(e @ AppError::Internal(_)) => Err(e),
        Err(_) => Ok(None),
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
    match browser_principal(&state, &jar, &ctx).await {
        Ok(Some((who, fresh))) => {
            req.extensions_mut().insert(who);
            let mut res = next.run(req).await;
            if let Some(fresh) = fresh {
                // A handler that stepped up has set a newer access token: keep it.
                let handler_set_session = res
                    .headers()
                    .get_all(header::SET_COOKIE)
                    .iter()
                    .any(|v| v.as_bytes().starts_with(SESSION.as_bytes()));
                let mut jar = CookieJar::new().add(refresh_cookie(&state.app, &fresh));
                if !handler_set_session {
                    jar = jar.add(access_cookie(&fresh.access_token, fresh.access_expires_in));
                }
                res = (jar, res).into_response();
            }
            res
        }
        Ok(None) => (without_session_cookies(jar), Redirect::to(LOGIN_PATH)).into_response(),
        Err(e) => super::views::failure_page(e),
    }
}

/// Where a signed-in browser goes.
pub fn to_account() -> Redirect {
    Redirect::to(ACCOUNT_PATH)
}
