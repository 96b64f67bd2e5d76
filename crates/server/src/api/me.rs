//! The caller's own account.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_app::ports::Store;
use tessera_core::password::Password;
use utoipa::ToSchema;
use uuid::Uuid;

use super::field;
use crate::extract::{ApiJson, Context, CurrentSession};
use crate::problem::{Problem, ProblemBody};
use crate::state::AppState;

pub fn router<S: Store>() -> Router<AppState<S>> {
    Router::new()
        .route("/v1/me", get(me::<S>))
        .route("/v1/me/password", post(change_password::<S>))
}

#[derive(Serialize, ToSchema)]
pub struct MfaStatus {
    totp_enabled: bool,
    recovery_codes_remaining: u32,
}

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    user_id: Uuid,
    email: String,
    roles: Vec<String>,
    mfa: MfaStatus,
}

/// The signed-in user.
#[utoipa::path(get, path = "/v1/me", tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, body = MeResponse),
        (status = 401, description = "`unauthorized`, `session_revoked`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn me<S: Store>(
    State(state): State<AppState<S>>,
    CurrentSession(who): CurrentSession,
) -> Result<Json<MeResponse>, Problem> {
    let me = state.app.me(&who).await?;
    Ok(Json(MeResponse {
        user_id: *me.user_id.as_uuid(),
        email: me.email.as_str().to_owned(),
        roles: me.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        mfa: MfaStatus {
            totp_enabled: me.mfa.enabled,
            recovery_codes_remaining: me.mfa.recovery_codes_remaining,
        },
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    current_password: String,
    /// 8 to 256 characters.
    new_password: String,
}

/// Change the password; every other session of the user is revoked.
#[utoipa::path(post, path = "/v1/me/password", tag = "account",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; other sessions revoked"),
        (status = 400, description = "`invalid_request`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`invalid_credentials`, `unauthorized`, `session_revoked`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many wrong current passwords for this account", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn change_password<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    CurrentSession(who): CurrentSession,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, Problem> {
    let current = Password::presented(body.current_password).map_err(field("current_password"))?;
    let new = Password::new_choice(body.new_password).map_err(field("new_password"))?;
    let result = state.app.change_password(&who, current, new, &ctx).await;
    state.metrics.count_rate_limited(&result);
    result?;
    Ok(StatusCode::NO_CONTENT)
}
