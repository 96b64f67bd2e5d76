//! `/account/password`: a signed-in person changes the password with the current one.
//! Every other session of the account ends; this browser's session is the one
//! `change_password` keeps, so its cookies stay as they are.

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tessera_app::ports::Store;
use tessera_app::{AppError, Principal};
use tessera_core::password::Password;

use super::account::with_notice;
use super::cookies::{CheckedForm, csrf_token};
use super::views::{AccountPasswordPage, Failure, page_after};
use crate::api::field;
use crate::extract::Context;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

pub async fn account_password_get(jar: CookieJar) -> Response {
    password_page(jar, None)
}

pub async fn account_password_post<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    Extension(who): Extension<Principal>,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<ChangeForm>,
) -> Response {
    if form.new_password != form.confirm_password {
        return password_page(jar, Some(Failure::passwords_differ("confirm_password")));
    }
    let result = async {
        let current =
            Password::presented(form.current_password).map_err(field("current_password"))?;
        let new = Password::new_choice(form.new_password).map_err(field("new_password"))?;
        state.app.change_password(&who, current, new, &ctx).await
    }
    .await;
    state.metrics.count_rate_limited(&result);
    match result {
        Ok(()) => with_notice("password-changed").into_response(),
        Err(e) => {
            let wrong = matches!(e, AppError::InvalidCredentials);
            let mut failure = Failure::from_error(e);
            if wrong {
                // Only the password was asked for: the email is not in doubt.
                failure.message = "Your current password is wrong.".into();
            }
            password_page(jar, Some(failure))
        }
    }
}

fn password_page(jar: CookieJar, failure: Option<Failure>) -> Response {
    let (jar, csrf) = csrf_token(jar);
    let view = AccountPasswordPage {
        csrf,
        error: failure.as_ref().map(|f| f.message.clone()),
    };
    let res = page_after(failure.as_ref(), &view);
    (jar, res).into_response()
}
