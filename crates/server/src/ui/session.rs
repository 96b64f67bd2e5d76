//! The browser's session: the access token and the refresh token in `__Host-` cookies.
//!
//! A page request authenticates the access token exactly like the API does (signature,
//! expiry, and the session's liveness, so a revoked device is out at once). When the
//! access token has expired the refresh token is rotated and both cookies are replaced.
//! Two tabs reloading together present the same refresh token; if each ran its own
//! rotation the second would look like theft. So while a rotation is running on this
//! node, a request presenting the same token waits for it and shares its result (in
//! memory only, keyed by the old token's hash). Once the rotation has finished nothing is
//! shared any more: a later presentation of the old token goes to the store and the
//! rotation rules, retry window and reuse detection included, exactly as on the API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

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
use crate::api::auth::observe_refresh;
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

type Flight = Arc<OnceCell<Option<BrowserTokens>>>;

/// The refresh-token rotations running on this node, by the presented token's hash.
#[derive(Default)]
pub struct RefreshFlights {
    flights: Mutex<HashMap<[u8; 32], Flight>>,
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
        let cell = Arc::clone(self.lock().entry(key).or_default());
        let outcome = cell
            .get_or_try_init(|| {
                // Spawned, so a client that goes away mid-rotation cannot leave the token
                // rotated with nobody holding its successor (the next tab would then be
                // judged a replay).
                let (state, token, ctx) = (state.clone(), token.clone(), ctx.clone());
                let rotation = tokio::spawn(async move {
                    let result = state.app.refresh(&token, &ctx).await;
                    observe_refresh(&state, &result);
                    match result {
                        Ok(tokens) => Ok(Some(BrowserTokens::from(tokens))),
                        // Not shared: a request waiting on this flight tries again.
                        Err(e @ AppError::Internal(_)) => Err(e),
                        Err(_) => Ok(None),
                    }
                });
                async move { rotation.await.map_err(AppError::internal)? }
            })
            .await
            .cloned();
        let mut flights = self.lock();
        if flights.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            flights.remove(&key);
        }
        outcome
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Flight>> {
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
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
    let Some(fresh) = state.web.rotate(state, &token, ctx).await? else {
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
        Ok(None) => (without_session_cookies(jar), Redirect::to(LOGIN_PATH)).into_response(),
        Err(e) => super::views::failure_page(e),
    }
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
