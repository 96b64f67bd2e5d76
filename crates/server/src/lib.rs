//! Tessera's HTTP edge.
//!
//! - `api/`: the JSON API, one module per resource, each with its `router()`.
//! - `problem`: RFC 9457 problem details; the one table from error to status.
//! - `extract`: `ApiJson` (400/413/415 rules), `ClientIp` (trusted-proxy rule),
//!   `Context`, `CurrentSession` (bearer token + live session).
//! - `middleware`: request ids, tracing, security headers, latency metrics, panics.
//! - `metrics`: the Prometheus text exposition.
//! - `state`: what handlers share.
//! - `ui`: the account web pages (`/login`, `/account/security`).

pub mod api;
pub mod extract;
pub mod metrics;
pub mod middleware;
pub mod problem;
pub mod state;
pub mod ui;

use axum::Router;
use axum::http::Request;
use tessera_app::ports::Store;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

pub use state::AppState;

/// The OpenAPI document, generated from the handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(title = "Tessera", description = "Sessions, refresh-token rotation and MFA. Errors are RFC 9457 problem details; clients branch on `code`."),
    paths(
        api::auth::register, api::auth::login, api::auth::refresh, api::auth::logout,
        api::auth::login_mfa,
        api::me::me, api::me::change_password,
        api::reset::request, api::reset::complete,
        api::mfa::setup, api::mfa::confirm, api::mfa::step_up, api::mfa::disable, api::mfa::regenerate,
        api::authorize::authorize,
        api::sessions::list, api::sessions::revoke, api::sessions::revoke_others, api::sessions::events,
        api::admin::mfa_reset, api::admin::revoke_sessions, api::admin::set_roles,
        api::admin::security_events,
        api::ops::healthz, api::ops::readyz, api::ops::metrics, api::ops::jwks, api::ops::openapi_json,
    ),
    components(schemas(problem::ProblemBody, problem::ProblemCode)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT (EdDSA)".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The whole application, ready to serve.
///
/// The cross-cutting layers wrap the router once, as one service, rather than through
/// `Router::layer`, which wraps every route on its own: there each request cloned its
/// route's boxed stack layer by layer, about half of the ~110 allocations a `GET /v1/me`
/// made (docs/performance.md, "Allocations per request"). The route template, which only
/// the router knows, reaches them through `middleware::matched_route`.
pub fn router<S: Store>(state: AppState<S>) -> Router {
    let routes = Router::new()
        .merge(api::auth::router())
        .merge(api::me::router())
        .merge(api::reset::router())
        .merge(api::mfa::router())
        .merge(api::authorize::router())
        .merge(api::admin::router())
        .merge(api::sessions::router())
        .merge(api::ops::router())
        .merge(ui::router(state.clone()))
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(axum::middleware::from_fn(middleware::matched_route))
        .with_state(state.clone());
    let layered = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(
            middleware::REQUEST_ID,
            MakeRequestUuid,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                // Method and route template only: no query string, no headers (tokens).
                // The route is recorded once the router has matched it.
                let id = req
                    .headers()
                    .get(middleware::REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!(
                    "request",
                    method = %req.method(),
                    route = tracing::field::Empty,
                    request_id = id
                )
            }),
        )
        .layer(PropagateRequestIdLayer::new(middleware::REQUEST_ID))
        .layer(CatchPanicLayer::custom(middleware::panic_to_problem))
        .layer(axum::middleware::from_fn(middleware::log_faults))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .layer(axum::middleware::from_fn_with_state(
            state,
            middleware::track_metrics::<S>,
        ))
        .service(routes);
    Router::new().fallback_service(layered)
}
