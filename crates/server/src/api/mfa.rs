//! TOTP enrolment, step-up, disable and recovery codes for the signed-in user.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_app::ports::Store;
use tessera_app::{AppError, SecondFactor};
use tessera_core::mfa::recovery::RecoveryCode;
use tessera_core::mfa::totp::TotpCode;
use tessera_core::password::Password;
use utoipa::ToSchema;

use super::field;
use crate::extract::{ApiJson, Context, CurrentSession};
use crate::problem::{Problem, ProblemBody};
use crate::state::AppState;

pub fn router<S: Store>() -> Router<AppState<S>> {
    Router::new()
        .route("/v1/mfa/totp/setup", post(setup::<S>))
        .route("/v1/mfa/totp/confirm", post(confirm::<S>))
        .route("/v1/mfa/totp", delete(disable::<S>))
        .route("/v1/mfa/step-up", post(step_up::<S>))
        .route("/v1/mfa/recovery-codes", post(regenerate::<S>))
}

#[derive(Serialize, ToSchema)]
pub struct SetupResponse {
    /// Base32, for typing into an authenticator app by hand.
    secret: String,
    otpauth_uri: String,
    /// An SVG image of a QR code holding `otpauth_uri`.
    qr_svg: String,
}

#[derive(Deserialize, ToSchema)]
pub struct SetupRequest {
    /// The account's current password: binding a new authenticator needs it.
    password: String,
}

/// Start (or restart) TOTP enrolment: a new pending secret. Needs the current password.
#[utoipa::path(post, path = "/v1/mfa/totp/setup", tag = "mfa", security(("bearer" = [])),
    request_body = SetupRequest,
    responses(
        (status = 200, body = SetupResponse),
        (status = 400, description = "`invalid_request`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`invalid_credentials` (a wrong password; counts toward the account's login limit), `unauthorized`, `session_revoked`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`mfa_already_enabled`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many wrong passwords for this account", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn setup<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    CurrentSession(who): CurrentSession,
    ApiJson(body): ApiJson<SetupRequest>,
) -> Result<Json<SetupResponse>, Problem> {
    let password = Password::presented(body.password).map_err(field("password"))?;
    let result = state.app.totp_setup(&who, password, &ctx).await;
    state.metrics.count_rate_limited(&result);
    let setup = result?;
    Ok(Json(SetupResponse {
        secret: setup.secret,
        otpauth_uri: setup.otpauth_uri,
        qr_svg: setup.qr_svg,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    /// A 6-digit TOTP code (spaces ignored) or, where accepted, a recovery code.
    code: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesResponse {
    /// Ten single-use codes, shown this once: 120 bits each, as
    /// `xxxx-xxxx-xxxx-xxxx-xxxx-xxxx` (case and dashes ignored when typed back).
    recovery_codes: Vec<String>,
}

fn shown(codes: Vec<RecoveryCode>) -> Json<RecoveryCodesResponse> {
    Json(RecoveryCodesResponse {
        recovery_codes: codes.iter().map(RecoveryCode::display).collect(),
    })
}

/// Confirm enrolment with a current code; returns the recovery codes.
#[utoipa::path(post, path = "/v1/mfa/totp/confirm", tag = "mfa", security(("bearer" = [])),
    request_body = CodeRequest,
    responses(
        (status = 200, body = RecoveryCodesResponse),
        (status = 400, description = "`invalid_request`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`invalid_mfa_code`, `unauthorized`, `session_revoked`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`no_pending_setup`, `mfa_already_enabled`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn confirm<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    CurrentSession(who): CurrentSession,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<Json<RecoveryCodesResponse>, Problem> {
    let result = async {
        let code = TotpCode::parse(&body.code).map_err(|e| AppError::invalid("code", e.0))?;
        state.app.totp_confirm(&who, code, &ctx).await
    }
    .await;
    state.metrics.observe_mfa("confirm", &result);
    Ok(shown(result?))
}

#[derive(Serialize, ToSchema)]
pub struct StepUpResponse {
    /// Carries `acr` `aal2` and `amr` `["pwd","otp"]`.
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
}

/// Re-verify with a second factor; the session's MFA time becomes now.
#[utoipa::path(post, path = "/v1/mfa/step-up", tag = "mfa", security(("bearer" = [])),
    request_body = CodeRequest,
    responses(
        (status = 200, body = StepUpResponse),
        (status = 400, description = "`invalid_request`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`invalid_mfa_code`, `unauthorized`, `session_revoked`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`mfa_not_enabled`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn step_up<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    CurrentSession(who): CurrentSession,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<Json<StepUpResponse>, Problem> {
    let result = async {
        let code = SecondFactor::parse(&body.code)?;
        state.app.step_up(&who, &code, &ctx).await
    }
    .await;
    state.metrics.observe_mfa("step_up", &result);
    let stepped = result?;
    Ok(Json(StepUpResponse {
        access_token: stepped.access_token,
        token_type: "Bearer",
        expires_in: stepped.expires_in,
    }))
}

/// Turn TOTP off (needs a current code); recovery codes are removed too.
#[utoipa::path(delete, path = "/v1/mfa/totp", tag = "mfa", security(("bearer" = [])),
    request_body = CodeRequest,
    responses(
        (status = 204, description = "TOTP and recovery codes removed"),
        (status = 400, description = "`invalid_request`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`invalid_mfa_code`, `unauthorized`, `session_revoked`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`mfa_not_enabled`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn disable<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    CurrentSession(who): CurrentSession,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<StatusCode, Problem> {
    let result = async {
        let code = SecondFactor::parse(&body.code)?;
        state.app.disable_totp(&who, &code, &ctx).await
    }
    .await;
    state.metrics.observe_mfa("disable", &result);
    result?;
    Ok(StatusCode::NO_CONTENT)
}

/// New recovery codes (the old ones stop working); needs MFA within the last 300 s.
#[utoipa::path(post, path = "/v1/mfa/recovery-codes", tag = "mfa", security(("bearer" = [])),
    responses(
        (status = 200, body = RecoveryCodesResponse),
        (status = 401, description = "`step_up_required` (with the RFC 9470 `WWW-Authenticate` challenge), `unauthorized`, `session_revoked`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`mfa_not_enabled`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn regenerate<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    CurrentSession(who): CurrentSession,
) -> Result<Json<RecoveryCodesResponse>, Problem> {
    Ok(shown(
        state.app.regenerate_recovery_codes(&who, &ctx).await?,
    ))
}
