//! Administration over the API: each call passes the `admin.*` step-up policy first
//! (role `admin`, TOTP enrolled, MFA within the policy's max age).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_app::ports::Store;
use tessera_app::{Actor, AppError, Principal};
use tessera_core::ids::{Role, UserId};
use utoipa::ToSchema;

use crate::api::sessions::{EventList, EventsQuery};
use crate::extract::{ApiJson, ApiQuery, Context, CurrentSession};
use crate::problem::{Problem, ProblemBody};
use crate::state::AppState;

pub fn router<S: Store>() -> Router<AppState<S>> {
    Router::new()
        .route("/v1/admin/users/{user_id}/mfa/reset", post(mfa_reset::<S>))
        .route(
            "/v1/admin/users/{user_id}/sessions/revoke",
            post(revoke_sessions::<S>),
        )
        .route("/v1/admin/users/{user_id}/roles", post(set_roles::<S>))
        .route(
            "/v1/admin/users/{user_id}/security-events",
            get(security_events::<S>),
        )
}

/// The admin may act, and names an existing user.
async fn admit<S: Store>(
    state: &AppState<S>,
    who: &Principal,
    action: &str,
    user_id: &str,
) -> Result<UserId, Problem> {
    state.app.authorize_admin(who, action).await?;
    let id: UserId = user_id.parse().map_err(|_| AppError::NotFound)?;
    state.app.find_user(id).await?;
    Ok(id)
}

#[derive(Deserialize, ToSchema)]
pub struct ResetRequest {
    /// Why (recorded verbatim): the ticket number and how identity was verified.
    reason: String,
}

/// Remove a user's TOTP and recovery codes and end all their sessions.
#[utoipa::path(post, path = "/v1/admin/users/{user_id}/mfa/reset", tag = "admin", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user's id")),
    request_body = ResetRequest,
    responses(
        (status = 204, description = "Reset; sessions revoked; recorded and the user notified"),
        (status = 400, description = "`invalid_request`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`step_up_required`, `unauthorized`, `session_revoked`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`, `mfa_enrollment_required`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn mfa_reset<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    CurrentSession(who): CurrentSession,
    Path(user_id): Path<String>,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<StatusCode, Problem> {
    let target = admit(&state, &who, "admin.mfa_reset", &user_id).await?;
    state
        .app
        .admin_mfa_reset(&Actor::Admin(who.user_id), target, &body.reason, &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct RevokedResponse {
    revoked: usize,
}

/// End every session of a user.
#[utoipa::path(post, path = "/v1/admin/users/{user_id}/sessions/revoke", tag = "admin", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, body = RevokedResponse),
        (status = 401, description = "`step_up_required`, `unauthorized`, `session_revoked`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`, `mfa_enrollment_required`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn revoke_sessions<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    CurrentSession(who): CurrentSession,
    Path(user_id): Path<String>,
) -> Result<Json<RevokedResponse>, Problem> {
    let target = admit(&state, &who, "admin.sessions_revoke", &user_id).await?;
    let revoked = state
        .app
        .admin_revoke_sessions(&Actor::Admin(who.user_id), target, &ctx)
        .await?;
    Ok(Json(RevokedResponse { revoked }))
}

#[derive(Deserialize, Serialize, ToSchema)]
pub struct RolesBody {
    roles: Vec<String>,
}

/// Replace a user's set of roles.
#[utoipa::path(post, path = "/v1/admin/users/{user_id}/roles", tag = "admin", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user's id")),
    request_body = RolesBody,
    responses(
        (status = 200, body = RolesBody),
        (status = 400, description = "`invalid_request`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`step_up_required`, `unauthorized`, `session_revoked`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`, `mfa_enrollment_required`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn set_roles<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    CurrentSession(who): CurrentSession,
    Path(user_id): Path<String>,
    ApiJson(body): ApiJson<RolesBody>,
) -> Result<Json<RolesBody>, Problem> {
    // The admin check comes first: a non-admin learns nothing about the body's rules.
    let target = admit(&state, &who, "admin.roles", &user_id).await?;
    let roles = body
        .roles
        .iter()
        .map(|r| Role::parse(r).map_err(|e| AppError::invalid("roles", e.0)))
        .collect::<Result<Vec<_>, _>>()?;
    let roles = state
        .app
        .admin_set_roles(&Actor::Admin(who.user_id), target, roles, &ctx)
        .await?;
    Ok(Json(RolesBody {
        roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
    }))
}

/// A user's security events, newest first: the same list the user reads for themself.
#[utoipa::path(get, path = "/v1/admin/users/{user_id}/security-events", tag = "admin", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user's id"), EventsQuery),
    responses(
        (status = 200, body = EventList),
        (status = 400, description = "`invalid_request` (limit)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`step_up_required`, `unauthorized`, `session_revoked`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`, `mfa_enrollment_required`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn security_events<S: Store>(
    State(state): State<AppState<S>>,
    CurrentSession(who): CurrentSession,
    Path(user_id): Path<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<EventList>, Problem> {
    // The admin check comes first: a non-admin learns nothing, not even a bad limit.
    let target = admit(&state, &who, "admin.security_events", &user_id).await?;
    let events = state
        .app
        .admin_user_events(&Actor::Admin(who.user_id), target, query.limit()?)
        .await?;
    Ok(Json(EventList::from(events)))
}
