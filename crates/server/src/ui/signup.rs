//! `/signup`: a new account from the registration use case the API calls (same bounds,
//! same per-network budget), then signed in here as `/login` would.
//!
//! Signed in at once rather than sent to `/login`: the person has just typed the password,
//! so asking for it again proves nothing and loses some of them on the way. Should the
//! sign-in itself be refused (the server busy, say), the account still exists and the
//! login page says so.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tessera_app::ports::Store;

use super::LOGIN_PATH;
use super::cookies::{CheckedForm, csrf_token};
use super::login::password_sign_in;
use super::session::{BrowserSession, browser_principal, to_account};
use super::views::{Failure, SignupPage, page_after};
use crate::extract::Context;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

pub async fn signup_get<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    jar: CookieJar,
) -> Response {
    // Already signed in: there is an account. The account page renews the session if it
    // needs to (no rotation here, so nothing is decided twice).
    if let Ok(BrowserSession::SignedIn(..) | BrowserSession::MustContinue) =
        browser_principal(&state, &jar, &ctx, false).await
    {
        return to_account().into_response();
    }
    signup_page(jar, String::new(), None)
}

pub async fn signup_post<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    headers: HeaderMap,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<SignupForm>,
) -> Response {
    if form.password != form.confirm {
        return signup_page(jar, form.email, Some(Failure::passwords_differ("confirm")));
    }
    let result = state
        .app
        .register(&form.email, form.password.clone(), &ctx)
        .await;
    state.metrics.observe_registration(&result);
    if let Err(e) = result {
        // Registration's budget counts every attempt, not only failed ones.
        let failure = Failure::from_error_counting(e, "Too many sign-ups from your network");
        return signup_page(jar, form.email, Some(failure));
    }
    match password_sign_in(&state, &ctx, &headers, jar, &form.email, form.password).await {
        Ok(signed_in) => signed_in,
        Err((jar, _)) => (
            jar,
            Redirect::to(&format!("{LOGIN_PATH}?notice=account-created")),
        )
            .into_response(),
    }
}

fn signup_page(jar: CookieJar, email: String, failure: Option<Failure>) -> Response {
    let (jar, csrf) = csrf_token(jar);
    let view = SignupPage {
        csrf,
        email,
        taken: failure
            .as_ref()
            .is_some_and(|f| f.status == StatusCode::CONFLICT),
        error: failure.as_ref().map(|f| f.message.clone()),
    };
    let res = page_after(failure.as_ref(), &view);
    (jar, res).into_response()
}
