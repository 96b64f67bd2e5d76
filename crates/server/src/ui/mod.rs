//! The account web pages: server-rendered with askama (every value escaped), plain HTML
//! forms, one small same-origin script (copying recovery codes), no front-end build.
//!
//! - `cookies`: the `__Host-` cookies and the CSRF-checked form extractor.
//! - `session`: the browser session (access + refresh token cookies), when it may rotate,
//!   and the guard of the account pages.
//! - `flight`: work (a rotation) that requests for the same key share, owned by a task.
//! - `login`: `/login`, `/login/mfa`, `/logout`.
//! - `account`: `/account/security` and its forms.
//! - `signup`: `/signup`.
//! - `password`: `/account/password` (change, signed in).
//! - `reset`: `/forgot-password` and `/reset-password` (the emailed link).
//! - `views`: the page templates (`crates/server/templates`) and what they list.

pub mod account;
pub mod cookies;
pub mod flight;
pub mod login;
pub mod password;
pub mod reset;
pub mod session;
pub mod signup;
pub mod views;

#[cfg(test)]
mod view_tests;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Response, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tessera_app::ports::Store;
use tower_http::csrf::CsrfLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::problem::{Problem, ProblemCode};
use crate::state::AppState;

pub const LOGIN_PATH: &str = "/login";
pub const ACCOUNT_PATH: &str = "/account/security";

/// Pages load only this origin's stylesheet and script; no inline script or style can
/// run; forms post only here; nobody may frame them.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("../../static/tessera.css");
const JS: &str = include_str!("../../static/tessera.js");

pub fn router<S: Store>(state: AppState<S>) -> Router<AppState<S>> {
    let account = Router::new()
        .route(ACCOUNT_PATH, get(account::account_security_get::<S>))
        .route(
            "/account/security/mfa/setup",
            post(account::mfa_setup_post::<S>),
        )
        .route(
            "/account/security/mfa/confirm",
            post(account::mfa_confirm_post::<S>),
        )
        .route(
            "/account/security/mfa/recovery-codes",
            post(account::recovery_codes_post::<S>),
        )
        .route(
            "/account/security/mfa/disable",
            post(account::mfa_disable_post::<S>),
        )
        .route(
            "/account/security/sessions/revoke-others",
            post(account::revoke_others_post::<S>),
        )
        .route(
            "/account/security/sessions/{session_id}/revoke",
            post(account::revoke_post::<S>),
        )
        .route(
            "/account/password",
            get(password::account_password_get).post(password::account_password_post::<S>),
        )
        .route("/logout", post(login::logout_post::<S>))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            session::require_session::<S>,
        ));
    Router::new()
        .route(
            LOGIN_PATH,
            get(login::login_get::<S>).post(login::login_post::<S>),
        )
        .route(
            "/login/mfa",
            get(login::login_mfa_get).post(login::login_mfa_post::<S>),
        )
        .route(
            "/signup",
            get(signup::signup_get::<S>).post(signup::signup_post::<S>),
        )
        .route(
            "/forgot-password",
            get(reset::forgot_password_get).post(reset::forgot_password_post::<S>),
        )
        .route(
            "/reset-password",
            get(reset::reset_password_get).post(reset::reset_password_post::<S>),
        )
        .merge(account)
        .layer(CsrfLayer::new().with_rejection_response(cross_site_refused))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        ))
        .route("/static/tessera.css", get(stylesheet))
        .route("/static/tessera.js", get(script))
}

/// A form posted from another site (Sec-Fetch-Site / Origin say so): refused before any
/// handler runs.
fn cross_site_refused(_: tower_http::csrf::ProtectionError) -> Response<Body> {
    Problem::new(
        ProblemCode::Forbidden,
        "cross-site form submissions are refused",
    )
    .into_response()
}

async fn stylesheet() -> impl IntoResponse {
    asset("text/css; charset=utf-8", CSS)
}

async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Not secret, but deployments replace them: an hour is plenty.
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
}
