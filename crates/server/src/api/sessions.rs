//! The device dashboard API: the caller's sessions and security events.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_app::ports::{SecurityEvent, Store};
use tessera_app::{AppError, DeviceSession};
use tessera_core::ids::SessionId;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::extract::{ApiQuery, Context, CurrentSession};
use crate::problem::{Problem, ProblemBody};
use crate::state::AppState;

pub fn router<S: Store>() -> Router<AppState<S>> {
    Router::new()
        .route("/v1/sessions", get(list::<S>))
        .route("/v1/sessions/revoke-others", post(revoke_others::<S>))
        .route("/v1/sessions/{session_id}", delete(revoke::<S>))
        .route("/v1/security-events", get(events::<S>))
}

/// RFC 3339 in UTC.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    session_id: Uuid,
    device_id: String,
    device_name: Option<String>,
    /// Readable form of `user_agent`, e.g. "Firefox on macOS".
    device_label: String,
    user_agent: Option<String>,
    ip: Option<String>,
    created_at: String,
    last_seen_at: String,
    /// When the session ends if it is not refreshed (idle or absolute, whichever is first).
    expires_at: String,
    /// The session making this request.
    current: bool,
    mfa_verified_at: Option<String>,
}

impl From<DeviceSession> for SessionView {
    fn from(d: DeviceSession) -> Self {
        let s = d.session;
        Self {
            session_id: *s.state.id.as_uuid(),
            device_id: s.device_id.as_str().to_owned(),
            device_name: s
                .device_name
                .map(|n| n.as_str().to_owned())
                .filter(|n| !n.is_empty()),
            device_label: d.label,
            user_agent: s.user_agent,
            ip: s.ip.map(|ip| ip.to_string()),
            created_at: rfc3339(s.created_at),
            last_seen_at: rfc3339(s.last_seen_at),
            expires_at: rfc3339(s.state.idle_expires_at.min(s.state.absolute_expires_at)),
            current: d.current,
            mfa_verified_at: s.mfa_verified_at.map(rfc3339),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    sessions: Vec<SessionView>,
}

/// The caller's active sessions, most recently seen first.
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions", security(("bearer" = [])),
    responses(
        (status = 200, body = SessionList),
        (status = 401, description = "`unauthorized`, `session_revoked`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn list<S: Store>(
    State(state): State<AppState<S>>,
    CurrentSession(who): CurrentSession,
) -> Result<Json<SessionList>, Problem> {
    let devices = state.app.list_devices(&who).await?;
    Ok(Json(SessionList {
        sessions: devices.into_iter().map(SessionView::from).collect(),
    }))
}

/// End one of the caller's sessions; its refresh and access tokens stop working at once.
#[utoipa::path(delete, path = "/v1/sessions/{session_id}", tag = "sessions", security(("bearer" = [])),
    params(("session_id" = String, Path, description = "One of the caller's session ids")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "`unauthorized`, `session_revoked`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: another user's, unknown, or already ended", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn revoke<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    CurrentSession(who): CurrentSession,
    Path(session_id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id: SessionId = session_id.parse().map_err(|_| AppError::NotFound)?;
    state.app.revoke_device(&who, id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct RevokedCount {
    revoked: usize,
}

/// End every session of the caller except this one.
#[utoipa::path(post, path = "/v1/sessions/revoke-others", tag = "sessions", security(("bearer" = [])),
    responses(
        (status = 200, body = RevokedCount),
        (status = 401, description = "`unauthorized`, `session_revoked`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn revoke_others<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    CurrentSession(who): CurrentSession,
) -> Result<Json<RevokedCount>, Problem> {
    let revoked = state.app.revoke_other_devices(&who, &ctx).await?;
    Ok(Json(RevokedCount { revoked }))
}

#[derive(Deserialize, IntoParams)]
pub struct EventsQuery {
    /// 1 to 200, default 50.
    limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EventView {
    id: Uuid,
    #[serde(rename = "type")]
    kind: &'static str,
    at: String,
    ip: Option<String>,
    user_agent: Option<String>,
    /// The session the event concerns (the revoked one, for a revocation).
    session_id: Option<Uuid>,
    detail: serde_json::Value,
}

impl From<SecurityEvent> for EventView {
    fn from(e: SecurityEvent) -> Self {
        Self {
            id: *e.id.as_uuid(),
            kind: e.kind.as_str(),
            at: rfc3339(e.at),
            ip: e.ip.map(|ip| ip.to_string()),
            user_agent: e.user_agent,
            session_id: e.session_id.map(|s| *s.as_uuid()),
            detail: e.detail,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EventList {
    events: Vec<EventView>,
}

/// The caller's own security events, newest first.
#[utoipa::path(get, path = "/v1/security-events", tag = "sessions", security(("bearer" = [])),
    params(EventsQuery),
    responses(
        (status = 200, body = EventList),
        (status = 400, description = "`invalid_request` (limit)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`, `session_revoked`", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn events<S: Store>(
    State(state): State<AppState<S>>,
    CurrentSession(who): CurrentSession,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<EventList>, Problem> {
    let events = state.app.my_events(&who, query.limit()?).await?;
    Ok(Json(EventList::from(events)))
}

impl EventsQuery {
    /// The `limit` asked for (50 when absent); its range is the use case's to check.
    pub(crate) fn limit(&self) -> Result<u32, AppError> {
        match self.limit.as_deref() {
            None => Ok(50),
            Some(raw) => raw
                .parse::<u32>()
                .map_err(|_| AppError::invalid("limit", "must be a whole number from 1 to 200")),
        }
    }
}

impl From<Vec<SecurityEvent>> for EventList {
    fn from(events: Vec<SecurityEvent>) -> Self {
        Self {
            events: events.into_iter().map(EventView::from).collect(),
        }
    }
}
