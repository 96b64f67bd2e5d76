//! `/forgot-password` (ask for a link by email) and `/reset-password` (the emailed link).
//!
//! The link's token is a bearer secret for the account. It reaches the server once, in
//! the link's query string (the request log names the route only, never the query); from
//! there it travels only in the form's hidden field, a POST body, and is shown back only
//! when it has the one spelling a real token has, so no input is ever echoed. Both pages
//! answer `Cache-Control: no-store` and `Referrer-Policy: no-referrer`, set here as well as
//! by the edge: a cached copy or a `Referer` would hand the account over.
//!
//! The answer to a request for a link is the same page whether or not the address has an
//! account (the use case makes both take the same time).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tessera_app::AppError;
use tessera_app::ports::Store;
use tessera_core::secret::ResetToken;

use super::cookies::{CheckedForm, csrf_token};
use super::session::without_session_cookies;
use super::views::{
    Failure, ForgotPasswordPage, ForgotPasswordSentPage, ResetPasswordPage,
    ResetPasswordResultPage, page, page_after,
};
use crate::extract::Context;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

pub async fn forgot_password_get(jar: CookieJar) -> Response {
    forgot_page(jar, String::new(), None)
}

pub async fn forgot_password_post<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<ForgotForm>,
) -> Response {
    let result = state.app.request_password_reset(&form.email, &ctx).await;
    state.metrics.observe_password_reset("request", &result);
    match result {
        Ok(()) => page(
            StatusCode::OK,
            &ForgotPasswordSentPage { email: form.email },
        ),
        Err(e) => {
            let failure = Failure::from_error_counting(e, "Too many reset requests");
            forgot_page(jar, form.email, Some(failure))
        }
    }
}

fn forgot_page(jar: CookieJar, email: String, failure: Option<Failure>) -> Response {
    let (jar, csrf) = csrf_token(jar);
    let view = ForgotPasswordPage {
        csrf,
        email,
        error: failure.as_ref().map(|f| f.message.clone()),
    };
    (jar, page_after(failure.as_ref(), &view)).into_response()
}

#[derive(Deserialize)]
struct LinkQuery {
    #[serde(default)]
    token: Option<String>,
}

/// The emailed link: the form for a new password, or the page for a link that cannot work.
/// Whether the token is live is checked when the form is sent (checking here would spend
/// or reveal nothing more; the form says so if it has expired meanwhile).
pub async fn reset_password_get(jar: CookieJar, uri: Uri) -> Response {
    // Read by hand: a malformed query is a broken link to a person, not an API error.
    let token = axum::extract::Query::<LinkQuery>::try_from_uri(&uri)
        .ok()
        .and_then(|q| q.0.token)
        .filter(|t| ResetToken::parse(t).is_ok());
    match token {
        Some(token) => reset_page(jar, token, None),
        None => unusable_link(),
    }
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

pub async fn reset_password_post<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<ResetForm>,
) -> Response {
    if ResetToken::parse(&form.token).is_err() {
        return unusable_link();
    }
    if form.new_password != form.confirm_password {
        return reset_page(
            jar,
            form.token,
            Some(Failure::passwords_differ("confirm_password")),
        );
    }
    let result = state
        .app
        .complete_password_reset(&form.token, form.new_password, &ctx)
        .await;
    state.metrics.observe_password_reset("complete", &result);
    match result {
        Ok(()) => {
            // Every session of the account has ended, this browser's too if it had one.
            let jar = without_session_cookies(jar);
            let done = page(StatusCode::OK, &ResetPasswordResultPage { done: true });
            sensitive((jar, done).into_response())
        }
        Err(AppError::InvalidResetToken) => unusable_link(),
        Err(e) => reset_page(jar, form.token, Some(Failure::from_error(e))),
    }
}

fn reset_page(jar: CookieJar, token: String, failure: Option<Failure>) -> Response {
    let (jar, csrf) = csrf_token(jar);
    let view = ResetPasswordPage {
        csrf,
        token,
        error: failure.as_ref().map(|f| f.message.clone()),
    };
    sensitive((jar, page_after(failure.as_ref(), &view)).into_response())
}

/// An unknown, used, expired or mangled link: a page that offers a new one.
fn unusable_link() -> Response {
    let res = page(
        StatusCode::BAD_REQUEST,
        &ResetPasswordResultPage { done: false },
    );
    sensitive(res)
}

fn sensitive(mut res: Response) -> Response {
    let headers = res.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}
