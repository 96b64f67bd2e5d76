//! Cross-cutting layers: request ids, tracing without secrets, the log line of a failure
//! on our side, security headers, latency metrics, and problem+json for panics, unknown
//! routes and wrong methods.

use std::any::Any;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Response, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use tessera_app::ports::Store;

use crate::problem::{Fault, Faults, Problem, ProblemCode};
use crate::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Records the latency of every request. Every label comes from a closed set, so no client
/// can grow the series: the route template the router matched (never the raw path, which
/// could carry ids) or `unmatched`, the method when it is a known one (`metrics::method_label`),
/// and the status code.
pub async fn track_metrics<S: Store>(
    State(state): State<AppState<S>>,
    req: Request,
    next: Next,
) -> axum::response::Response {
    let method = req.method().clone();
    let started = Instant::now();
    let res = next.run(req).await;
    state.metrics.observe_request(
        &method,
        res.extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str),
        res.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    res
}

/// Runs inside the router, where the route template is known: names it in the request's
/// span (so everything logged while handling it carries the route) and hands it to the
/// layers outside on the response. A clone of the matched path shares its string.
pub async fn matched_route(req: Request, next: Next) -> axum::response::Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    tracing::Span::current().record(
        "route",
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
    );
    let mut res = next.run(req).await;
    if let Some(route) = route {
        res.extensions_mut().insert(route);
    }
    res
}

/// Logs the failure a response carries (see `Fault`) once, with the request's id. A fault
/// holds only what `problem.rs` put there, the source chain of an internal or storage
/// error: never a request's body or headers, where the secrets are.
pub async fn log_faults(req: Request, next: Next) -> axum::response::Response {
    // A shared copy of the header (no allocation); read as text only if there is a fault.
    let id = req.headers().get(REQUEST_ID).cloned();
    let mut res = next.run(req).await;
    // Taken off, so a second pass (a nested router) cannot log it again.
    let Some(faults) = res.extensions_mut().remove::<Faults>() else {
        return res;
    };
    let request_id = id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-");
    for fault in faults.0 {
        match fault {
            Fault::Internal(chain) => {
                tracing::error!(request_id, error = %chain, "internal error");
            }
            Fault::Unavailable(chain) => {
                tracing::warn!(request_id, error = %chain, "database unreachable: answered 503");
            }
        }
    }
    res
}

/// Headers every response carries: nothing is cached (bodies hold tokens), nothing is
/// sniffed or framed, and browsers keep to HTTPS for two years (RFC 6797; ignored over
/// plain HTTP, so development on localhost is unaffected).
pub async fn security_headers(req: Request, next: Next) -> axum::response::Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=63072000; includeSubDomains"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    res
}

pub async fn not_found() -> Problem {
    Problem::new(ProblemCode::NotFound, "no such endpoint")
}

pub async fn method_not_allowed() -> Problem {
    Problem::new(
        ProblemCode::MethodNotAllowed,
        "this endpoint does not accept that method",
    )
}

/// A panic becomes a 500 problem; the payload is logged, never sent.
pub fn panic_to_problem(payload: Box<dyn Any + Send + 'static>) -> Response<axum::body::Body> {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    tracing::error!(panic = %msg, "handler panicked");
    Problem::new(
        ProblemCode::InternalError,
        "an unexpected error occurred; it has been logged",
    )
    .into_response()
}
