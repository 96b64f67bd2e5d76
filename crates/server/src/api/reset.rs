//! Password reset by email: asking for a link, and setting a password with one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_app::ports::Store;
use utoipa::ToSchema;

use crate::extract::{ApiJson, Context};
use crate::problem::{Problem, ProblemBody};
use crate::state::AppState;

pub fn router<S: Store>() -> Router<AppState<S>> {
    Router::new()
        .route("/v1/password-reset", post(request::<S>))
        .route("/v1/password-reset/complete", post(complete::<S>))
}

#[derive(Deserialize, ToSchema)]
pub struct ResetRequest {
    /// The account's address. Any address gets the same answer.
    email: String,
}

/// The one body every accepted request gets, whatever the address.
#[derive(Serialize, ToSchema)]
pub struct ResetAccepted {
    /// Always `accepted`.
    status: &'static str,
}

/// Ask for a reset link by email.
///
/// Answers 202 with the same body, and without looking the address up first, for
/// every address: whether an account has it cannot be told from here. For a known
/// account a link valid for 30 minutes is emailed; it voids any earlier one.
#[utoipa::path(post, path = "/v1/password-reset", tag = "password reset",
    request_body = ResetRequest,
    responses(
        (status = 202, body = ResetAccepted, description = "Always `{\"status\":\"accepted\"}`"),
        (status = 400, description = "`invalid_request`: no `email` string, or one over 254 bytes", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: at most 3 requests per address and 10 per client network an hour, whatever their outcome", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn request<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<(StatusCode, Json<ResetAccepted>), Problem> {
    let result = state.app.request_password_reset(&body.email, &ctx).await;
    state.metrics.observe_password_reset("request", &result);
    result?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ResetAccepted { status: "accepted" }),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct CompleteResetRequest {
    /// The `token` parameter of the emailed link.
    token: String,
    /// 8 to 256 characters.
    new_password: String,
}

/// Set a new password with an emailed link's token.
///
/// The link is used up; every session of the user is revoked (reason `password_reset`)
/// and the user notified. MFA is untouched: the next login still asks for the code.
#[utoipa::path(post, path = "/v1/password-reset/complete", tag = "password reset",
    request_body = CompleteResetRequest,
    responses(
        (status = 204, description = "Password set; every session revoked"),
        (status = 400, description = "`invalid_reset_token` (malformed, unknown, used or expired); `invalid_request` (password out of bounds: the link stays usable)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "`service_unavailable`: no password-hashing slot in time; the link stays usable; see `Retry-After`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn complete<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    ApiJson(body): ApiJson<CompleteResetRequest>,
) -> Result<StatusCode, Problem> {
    let result = state
        .app
        .complete_password_reset(&body.token, body.new_password, &ctx)
        .await;
    state.metrics.observe_password_reset("complete", &result);
    result?;
    Ok(StatusCode::NO_CONTENT)
}
