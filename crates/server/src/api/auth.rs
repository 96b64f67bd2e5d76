//! Registration, login, refresh and logout.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_app::ports::Store;
use tessera_app::{AppError, DeviceTokenInput, LoginInput, LoginOutcome, SecondFactor, Tokens};
use tessera_core::Email;
use tessera_core::ids::{DeviceId, DeviceName};
use tessera_core::password::Password;
use tessera_core::secret::{MfaToken, RefreshToken};
use utoipa::ToSchema;
use uuid::Uuid;

use super::field;
use crate::extract::{ApiJson, Context, CurrentSession};
use crate::problem::{Problem, ProblemBody};
use crate::state::AppState;

pub fn router<S: Store>() -> Router<AppState<S>> {
    Router::new()
        .route("/v1/users", post(register::<S>))
        .route("/v1/auth/login", post(login::<S>))
        .route("/v1/auth/login/mfa", post(login_mfa::<S>))
        .route("/v1/auth/refresh", post(refresh::<S>))
        .route("/v1/auth/logout", post(logout::<S>))
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// A valid address of at most 254 bytes; compared case-insensitively.
    email: String,
    /// 8 to 256 characters.
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct RegisterResponse {
    user_id: Uuid,
    email: String,
}

/// Register a user.
#[utoipa::path(post, path = "/v1/users", tag = "authentication",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = RegisterResponse),
        (status = 400, description = "`invalid_request`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`email_taken`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: at most 10 registration attempts per client network an hour, whatever their outcome", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "`service_unavailable`: no password-hashing slot in time; see `Retry-After`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn register<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<RegisterResponse>), Problem> {
    let result = state.app.register(&body.email, body.password, &ctx).await;
    state.metrics.observe_registration(&result);
    let user = result?;
    Ok((
        StatusCode::CREATED,
        Json(RegisterResponse {
            user_id: *user.id.as_uuid(),
            email: user.email.as_str().to_owned(),
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    email: String,
    password: String,
    /// 1 to 128 characters of `[A-Za-z0-9._:-]`, chosen by the client and kept per install.
    device_id: String,
    /// At most 100 characters.
    #[serde(default)]
    device_name: Option<String>,
    /// Defaults to `password`, the only provider of version 1.
    #[serde(default)]
    provider: Option<String>,
    /// The `device_token` an earlier login on this device answered: the attempt is then
    /// counted on that token's own budget, so floods against the account or the network
    /// cannot lock this device out. Unknown, expired or foreign tokens are ignored.
    #[serde(default)]
    device_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// Always `authenticated` here.
    status: &'static str,
    access_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    expires_in: i64,
    refresh_token: String,
    session_id: Uuid,
    /// On a login: keep it with `device_id` and send it with the next login from this
    /// device (valid 90 days).
    #[serde(skip_serializing_if = "Option::is_none")]
    device_token: Option<String>,
}

impl From<Tokens> for TokenResponse {
    fn from(t: Tokens) -> Self {
        Self {
            status: "authenticated",
            access_token: t.access_token,
            token_type: "Bearer",
            expires_in: t.expires_in,
            refresh_token: t.refresh_token.expose(),
            session_id: *t.session_id.as_uuid(),
            device_token: t.device_token,
        }
    }
}

/// Sign in with a password on one device.
#[utoipa::path(post, path = "/v1/auth/login", tag = "authentication",
    request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse, description = "`authenticated`, or `mfa_required` when TOTP is on (no session exists until the second step)"),
        (status = 400, description = "`invalid_request`, `unsupported_provider`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`invalid_credentials` (same body for an unknown email)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: the password was not checked; see `Retry-After`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "`service_unavailable`: no password-hashing slot in time; see `Retry-After`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn login<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, Problem> {
    let result = async {
        if body.provider.as_deref().is_some_and(|p| p != "password") {
            return Err(AppError::UnsupportedProvider);
        }
        let input = LoginInput {
            email: Email::parse(&body.email).map_err(field("email"))?,
            password: Password::presented(body.password).map_err(field("password"))?,
            device_id: DeviceId::parse(&body.device_id).map_err(field("device_id"))?,
            device_name: body
                .device_name
                .as_deref()
                .map(DeviceName::parse)
                .transpose()
                .map_err(field("device_name"))?,
            device_token: body.device_token.map(DeviceTokenInput),
        };
        state.app.login(input, &ctx).await
    }
    .await;
    state.metrics.observe_login(&result);
    Ok(Json(match result? {
        LoginOutcome::Authenticated(tokens) => LoginResponse::Authenticated(tokens.into()),
        LoginOutcome::MfaRequired(pending) => LoginResponse::MfaRequired(MfaRequiredResponse {
            status: "mfa_required",
            mfa_token: pending.mfa_token.expose(),
            expires_in: pending.expires_in,
            methods: vec!["totp", "recovery_code"],
        }),
    }))
}

/// Either a signed-in session, or the second step to take.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Authenticated(TokenResponse),
    MfaRequired(MfaRequiredResponse),
}

#[derive(Serialize, ToSchema)]
pub struct MfaRequiredResponse {
    /// Always `mfa_required`.
    status: &'static str,
    /// Single use, valid for `expires_in` seconds: send it to `/v1/auth/login/mfa`.
    mfa_token: String,
    expires_in: i64,
    methods: Vec<&'static str>,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginMfaRequest {
    mfa_token: String,
    /// A 6-digit TOTP code or a recovery code.
    code: String,
}

/// Complete a login with the second factor.
#[utoipa::path(post, path = "/v1/auth/login/mfa", tag = "authentication",
    request_body = LoginMfaRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, description = "`invalid_request`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`invalid_mfa_code` (the mfa_token stays usable), `invalid_mfa_token`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many wrong codes for this user", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn login_mfa<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    ApiJson(body): ApiJson<LoginMfaRequest>,
) -> Result<Json<TokenResponse>, Problem> {
    let result = async {
        let token = MfaToken::parse(&body.mfa_token).map_err(|_| AppError::InvalidMfaToken)?;
        let code = SecondFactor::parse(&body.code)?;
        state.app.login_mfa(&token, &code, &ctx).await
    }
    .await;
    state.metrics.observe_mfa("login", &result);
    Ok(Json(result?.into()))
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// Exchange a refresh token for a new one (rotation) and a fresh access token.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "authentication",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, description = "`invalid_request`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`refresh_token_reused` (the session is revoked), `invalid_refresh_token`, `session_revoked`, `session_expired`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn refresh<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, Problem> {
    let result = async {
        let token =
            RefreshToken::parse(&body.refresh_token).map_err(|_| AppError::InvalidRefreshToken)?;
        state.app.refresh(&token, &ctx).await
    }
    .await;
    state.metrics.observe_refresh(&result);
    Ok(Json(result?.into()))
}

/// Sign out: revokes the caller's session.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "authentication",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The session is revoked"),
        (status = 401, description = "`unauthorized`, `session_revoked`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn logout<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    CurrentSession(who): CurrentSession,
) -> Result<StatusCode, Problem> {
    state.app.logout(&who, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}
