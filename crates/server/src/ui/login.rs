//! `/login` (password), `/login/mfa` (the TOTP step) and `/logout`.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tessera_app::ports::Store;
use tessera_app::{
    AppError, DeviceTokenInput, LoginInput, LoginOutcome, Principal, RequestContext, SecondFactor,
};
use tessera_core::Email;
use tessera_core::ids::DeviceId;
use tessera_core::password::Password;
use tessera_core::secret::MfaToken;

use super::LOGIN_PATH;
use super::cookies::{
    CheckedForm, KNOWN_DEVICE, MFA, NoFields, csrf_token, device_id, expired, host_cookie,
    with_known_device,
};
use super::session::{
    BrowserSession, BrowserTokens, browser_principal, continue_page, may_rotate, to_account,
    with_session_cookies, without_session_cookies,
};
use super::views::{Failure, LoginMfaPage, LoginPage, NoticeQuery, notice, page};
use crate::api::field;
use crate::extract::{ApiQuery, Context};
use crate::state::AppState;

const MFA_STEP_PATH: &str = "/login/mfa";

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    pub code: String,
}

pub async fn login_get<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    headers: HeaderMap,
    jar: CookieJar,
    ApiQuery(query): ApiQuery<NoticeQuery>,
) -> Response {
    // Already signed in: nothing to do here.
    match browser_principal(&state, &jar, &ctx, may_rotate(&headers)).await {
        Ok(BrowserSession::SignedIn(_, None)) => return to_account().into_response(),
        Ok(BrowserSession::SignedIn(_, Some(fresh))) => {
            let jar = with_session_cookies(jar, &state.app, &fresh);
            return (jar, to_account()).into_response();
        }
        Ok(BrowserSession::MustContinue) => return continue_page(LOGIN_PATH),
        Ok(BrowserSession::SignedOut) | Err(_) => {}
    }
    let (jar, csrf) = csrf_token(jar);
    let form = LoginPage {
        csrf,
        email: String::new(),
        error: None,
        notice: notice(query.notice.as_deref()),
    };
    (jar, page(StatusCode::OK, &form)).into_response()
}

pub async fn login_post<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    headers: HeaderMap,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<LoginForm>,
) -> Response {
    match password_sign_in(&state, &ctx, &headers, jar, &form.email, form.password).await {
        Ok(signed_in) => signed_in,
        Err((jar, e)) => {
            let (jar, csrf) = csrf_token(jar);
            let failure = Failure::from_error(e);
            let form = LoginPage {
                csrf,
                email: form.email,
                error: Some(failure.message.clone()),
                notice: None,
            };
            (jar, failure.respond(&form)).into_response()
        }
    }
}

/// Signs this browser in with an email and password (`/login`, and `/signup` right after
/// the account is created): on to the account page, or to the code step. The refusal
/// comes back with the jar, for the caller's page to say why.
pub(super) async fn password_sign_in<S: Store>(
    state: &AppState<S>,
    ctx: &RequestContext,
    headers: &HeaderMap,
    jar: CookieJar,
    email: &str,
    password: String,
) -> Result<Response, (CookieJar, AppError)> {
    // Someone else signing in on this browser ends the session it still holds, rather than
    // leaving it live and listed on the other account.
    // (A cross-site post never gets here: the CSRF layer refuses it before.)
    if let Ok(BrowserSession::SignedIn(previous, _)) =
        browser_principal(state, &jar, ctx, may_rotate(headers)).await
    {
        state.app.logout(&previous, ctx).await.ok();
    }
    let (jar, device) = device_id(jar);
    let result = async {
        let input = LoginInput {
            email: Email::parse(email).map_err(field("email"))?,
            password: Password::presented(password).map_err(field("password"))?,
            device_id: DeviceId::parse(&device).map_err(field("device_id"))?,
            device_name: None,
            device_token: jar
                .get(KNOWN_DEVICE)
                .map(|c| DeviceTokenInput(c.value().to_owned())),
        };
        state.app.login(input, ctx).await
    }
    .await;
    state.metrics.observe_login(&result);
    match result {
        Ok(LoginOutcome::Authenticated(mut tokens)) => {
            let jar = with_known_device(jar, tokens.device_token.take());
            let jar = with_session_cookies(jar, &state.app, &BrowserTokens::from(tokens))
                .add(expired(MFA));
            Ok((jar, to_account()).into_response())
        }
        Ok(LoginOutcome::MfaRequired(pending)) => {
            let cookie = host_cookie(
                MFA,
                pending.mfa_token.expose(),
                Some(time::Duration::seconds(pending.expires_in)),
            );
            Ok((jar.add(cookie), Redirect::to(MFA_STEP_PATH)).into_response())
        }
        Err(e) => Err((jar, e)),
    }
}

pub async fn login_mfa_get(jar: CookieJar) -> Response {
    if jar.get(MFA).is_none() {
        return Redirect::to(LOGIN_PATH).into_response();
    }
    let (jar, csrf) = csrf_token(jar);
    (
        jar,
        page(StatusCode::OK, &LoginMfaPage { csrf, error: None }),
    )
        .into_response()
}

pub async fn login_mfa_post<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<CodeForm>,
) -> Response {
    let Some(token) = jar.get(MFA).and_then(|c| MfaToken::parse(c.value()).ok()) else {
        return Redirect::to(LOGIN_PATH).into_response();
    };
    let result = async {
        let code = SecondFactor::parse(&form.code)?;
        state.app.login_mfa(&token, &code, &ctx).await
    }
    .await;
    state.metrics.observe_mfa("login", &result);
    match result {
        Ok(mut tokens) => {
            let jar = with_known_device(jar, tokens.device_token.take());
            let jar = with_session_cookies(jar, &state.app, &BrowserTokens::from(tokens))
                .add(expired(MFA));
            (jar, to_account()).into_response()
        }
        Err(e @ AppError::InvalidMfaToken) => {
            // The pending login is gone (expired, used, or undone by a password change):
            // back to the password step.
            let (jar, csrf) = csrf_token(jar.add(expired(MFA)));
            let failure = Failure::from_error(e);
            let form = LoginPage {
                csrf,
                email: String::new(),
                error: Some(failure.message.clone()),
                notice: None,
            };
            (jar, failure.respond(&form)).into_response()
        }
        Err(e) => {
            let (jar, csrf) = csrf_token(jar);
            let failure = Failure::from_error(e);
            let form = LoginMfaPage {
                csrf,
                error: Some(failure.message.clone()),
            };
            (jar, failure.respond(&form)).into_response()
        }
    }
}

/// Signs out: the session is revoked on the server, not just forgotten by the browser.
pub async fn logout_post<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    Extension(who): Extension<Principal>,
    jar: CookieJar,
    CheckedForm(NoFields {}): CheckedForm<NoFields>,
) -> Response {
    if let Err(e) = state.app.logout(&who, &ctx).await
        && !matches!(e, AppError::SessionRevoked | AppError::SessionExpired)
    {
        return super::views::failure_page(e);
    }
    (without_session_cookies(jar), Redirect::to(LOGIN_PATH)).into_response()
}
