//! `POST /v1/authorize`: may this session perform a sensitive action now?

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_app::ports::Store;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::extract::{ApiJson, CurrentSession};
use crate::problem::{Problem, ProblemBody};
use crate::state::AppState;

pub fn router<S: Store>() -> Router<AppState<S>> {
    Router::new().route("/v1/authorize", post(authorize::<S>))
}

#[derive(Deserialize, ToSchema)]
pub struct AuthorizeRequest {
    /// e.g. `vendor.payout`, `admin.refund`.
    action: String,
}

#[derive(Serialize, ToSchema)]
pub struct AuthorizeResponse {
    allowed: bool,
    action: String,
    user_id: Uuid,
    session_id: Uuid,
}

/// Check the step-up policy for an action (RFC 9470).
#[utoipa::path(post, path = "/v1/authorize", tag = "step-up", security(("bearer" = [])),
    request_body = AuthorizeRequest,
    responses(
        (status = 200, body = AuthorizeResponse),
        (status = 400, description = "`unknown_action`, `invalid_request`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`step_up_required` with `WWW-Authenticate: Bearer error=\"insufficient_user_authentication\", …, max_age=<s>`; `unauthorized`; `session_revoked`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden` (role missing), `mfa_enrollment_required`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn authorize<S: Store>(
    State(state): State<AppState<S>>,
    CurrentSession(who): CurrentSession,
    ApiJson(body): ApiJson<AuthorizeRequest>,
) -> Result<Json<AuthorizeResponse>, Problem> {
    state.app.authorize(&who, &body.action).await?;
    Ok(Json(AuthorizeResponse {
        allowed: true,
        action: body.action,
        user_id: *who.user_id.as_uuid(),
        session_id: *who.session_id().as_uuid(),
    }))
}
