//! Operations: liveness, readiness, metrics, the JWKS and the OpenAPI document.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tessera_app::ports::{BusHealth, LimiterHealth, Store};
use utoipa::OpenApi;

use crate::problem::{Problem, ProblemBody, ProblemCode};
use crate::state::AppState;

pub fn router<S: Store>() -> Router<AppState<S>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<S>))
        .route("/metrics", get(metrics::<S>))
        .route("/.well-known/jwks.json", get(jwks::<S>))
        .route("/openapi.json", get(openapi_json))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Up", body = serde_json::Value)))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// How long each readiness check may take. A load balancer's probe must be answered
/// quickly whatever the database pool's acquire timeout (`TESSERA_DATABASE_ACQUIRE_TIMEOUT`,
/// up to 60 s) or a hung Redis would allow.
const CHECK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

/// This node can serve: 200 with each check's state (`ok`, `degraded`, `off`); 503 only
/// when the database does not answer. Redis unreachable is 200 with `rate_limiter`
/// `degraded`: the node still serves safely on per-node budgets, and a 503 would take
/// every node out of the load balancer at once. Each call probes the database and Redis
/// (each within [`CHECK_DEADLINE`]), so a node recovers without traffic.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready (`status` is `ready`, or `degraded` when a check is)", body = serde_json::Value),
        (status = 503, description = "`service_unavailable`: the database is unreachable", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn readyz<S: Store>(
    State(state): State<AppState<S>>,
) -> Result<Json<serde_json::Value>, Problem> {
    // Anyone may ask, so the body names each check's state from a fixed set; what the
    // backend said (hosts, ports, driver messages) goes to the log only.
    let (database, limiter, outbox) = tokio::join!(
        tokio::time::timeout(CHECK_DEADLINE, state.app.ready()),
        tokio::time::timeout(CHECK_DEADLINE, state.app.probe_limiter()),
        outbox_backlog(&state),
    );
    let database = match database {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {} s", CHECK_DEADLINE.as_secs())),
    };
    if let Some(error) = database {
        tracing::warn!(%error, "readiness check failed: database unreachable");
        return Err(Problem::new(
            ProblemCode::ServiceUnavailable,
            "the database is unreachable",
        ));
    }
    // The limiter logs its own outage (rate-limited); a probe every few seconds must not.
    let rate_limiter = match limiter {
        Ok(LimiterHealth::Ok) => "ok",
        Ok(LimiterHealth::Degraded(reason)) => {
            tracing::debug!(%reason, "readiness: rate limiting degraded to per-node budgets");
            "degraded"
        }
        Err(_) => "degraded",
    };
    // With the subscription down this node reads every session from the database (still
    // correct), so it stays ready.
    let revocation_bus = match state.app.revocation_bus_health() {
        None => "off",
        Some(BusHealth::Connected) => "ok",
        Some(BusHealth::Disconnected(reason)) => {
            tracing::debug!(%reason, "readiness: revocation subscription down");
            "degraded"
        }
    };
    let status = if rate_limiter == "ok" && revocation_bus != "degraded" {
        "ready"
    } else {
        "degraded"
    };
    // The outbox is shared by every node and a channel being down loses nothing, so its
    // backlog is reported and never makes this node unready (nor `degraded`).
    let (outbox_check, backlog) = match outbox {
        None => ("unknown", serde_json::Value::Null),
        Some((backlog, age)) => (
            if age > OUTBOX_LATE { "backlog" } else { "ok" },
            serde_json::json!({
                "pending": backlog.pending,
                "dead": backlog.dead,
                "oldest_age_seconds": age.whole_seconds().max(0),
            }),
        ),
    };
    Ok(Json(serde_json::json!({
        "status": status,
        "checks": {
            "database": "ok",
            "rate_limiter": rate_limiter,
            "revocation_bus": revocation_bus,
            "outbox": outbox_check,
        },
        "outbox": backlog,
    })))
}

/// A notification waiting longer than this makes the `outbox` check say `backlog`.
const OUTBOX_LATE: time::Duration = time::Duration::minutes(5);

/// The shared queue and its oldest row's age, or None when the store did not answer in
/// time (logged at debug: the database check reports the outage).
async fn outbox_backlog<S: Store>(
    state: &AppState<S>,
) -> Option<(tessera_app::ports::OutboxBacklog, time::Duration)> {
    match tokio::time::timeout(CHECK_DEADLINE, state.app.outbox_backlog()).await {
        Ok(Ok(backlog)) => {
            let age = state.app.outbox_oldest_age(&backlog, state.app.now());
            Some((backlog, age))
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "outbox backlog unavailable");
            None
        }
        Err(_) => None,
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain")))]
pub async fn metrics<S: Store>(State(state): State<AppState<S>>) -> Response {
    let outbox = crate::metrics::render_outbox(
        &state.app.outbox_stats().snapshot(),
        outbox_backlog(&state).await,
    );
    let degraded = u8::from(state.app.limiter_health() != LimiterHealth::Ok);
    let cache = state.app.session_cache_stats();
    let views = crate::metrics::render_user_view_cache(&state.app.user_view_cache_stats());
    let subscribed = u8::from(state.app.revocation_bus_health() == Some(BusHealth::Connected));
    let text = format!(
        "{}# HELP tessera_rate_limiter_fallback_total Limit decisions made per node because Redis was unreachable.\n\
         # TYPE tessera_rate_limiter_fallback_total counter\n\
         tessera_rate_limiter_fallback_total {}\n\
         # HELP tessera_rate_limiter_degraded 1 while limits are per node instead of shared.\n\
         # TYPE tessera_rate_limiter_degraded gauge\n\
         tessera_rate_limiter_degraded {degraded}\n\
         # HELP tessera_password_checks_total Argon2 password verifications run.\n\
         # TYPE tessera_password_checks_total counter\n\
         tessera_password_checks_total {}\n\
         # HELP tessera_session_cache_total Bearer authentications by how the session was found: hit (cache), miss (read, then cached), bypass (read; cache off or not trusted).\n\
         # TYPE tessera_session_cache_total counter\n\
         tessera_session_cache_total{{result=\"hit\"}} {}\n\
         tessera_session_cache_total{{result=\"miss\"}} {}\n\
         tessera_session_cache_total{{result=\"bypass\"}} {}\n\
         # HELP tessera_session_cache_flushes_total Whole-cache flushes after a lost revocation subscription.\n\
         # TYPE tessera_session_cache_flushes_total counter\n\
         tessera_session_cache_flushes_total {}\n{views}\
         # HELP tessera_revocation_subscribed 1 while this node receives other nodes' revocations.\n\
         # TYPE tessera_revocation_subscribed gauge\n\
         tessera_revocation_subscribed {subscribed}\n\
         # HELP tessera_revocation_publish_failures_total Revocation messages that could not be published.\n\
         # TYPE tessera_revocation_publish_failures_total counter\n\
         tessera_revocation_publish_failures_total {}\n{outbox}",
        state.metrics.render(),
        state.app.limiter_fallback_decisions(),
        state.app.password_checks(),
        cache.hits,
        cache.misses,
        cache.bypasses,
        cache.flushes,
        state.app.revocation_publish_failures(),
    );
    let mut res = text.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

/// The public keys that verify access tokens (RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "operations",
    responses((status = 200, description = "JWK set of OKP/Ed25519 keys", body = serde_json::Value)))]
pub async fn jwks<S: Store>(State(state): State<AppState<S>>) -> Response {
    let mut res = Json(state.app.jwks()).into_response();
    // Short, so a newly added key reaches verifiers quickly.
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1", body = serde_json::Value)))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::ApiDoc::openapi())
}
