//! `/account/security`: two-step verification, devices, recent activity, and the forms
//! that change them. Every handler runs behind `session::require_session`.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tessera_app::ports::Store;
use tessera_app::{AppError, Principal, SecondFactor};
use tessera_core::ids::SessionId;
use tessera_core::mfa::totp::TotpCode;
use tessera_core::password::Password;

use super::ACCOUNT_PATH;
use super::cookies::{CheckedForm, NoFields, csrf_token};
use super::login::CodeForm;
use super::session::{access_cookie, to_account};
use super::views::{
    AccountSecurityPage, DeviceRow, EventRow, Failure, MfaSetupPage, NoticeQuery,
    RecoveryCodesPage, notice, page, page_after,
};
use crate::api::field;
use crate::extract::{ApiQuery, Context};
use crate::state::AppState;

/// Events listed under "Recent security activity".
const RECENT_EVENTS: u32 = 20;

pub(super) fn with_notice(key: &str) -> Redirect {
    Redirect::to(&format!("{ACCOUNT_PATH}?notice={key}"))
}

pub async fn account_security_get<S: Store>(
    State(state): State<AppState<S>>,
    Extension(who): Extension<Principal>,
    jar: CookieJar,
    ApiQuery(query): ApiQuery<NoticeQuery>,
) -> Response {
    let shown = notice(query.notice.as_deref());
    account_page(&state, &who, jar, shown, None).await
}

/// The account page, with a confirmation or with the failure of the form just sent.
async fn account_page<S: Store>(
    state: &AppState<S>,
    who: &Principal,
    jar: CookieJar,
    notice: Option<&'static str>,
    failure: Option<Failure>,
) -> Response {
    let loaded = async {
        let me = state.app.me(who).await?;
        let devices = state.app.list_devices(who).await?;
        let events = state.app.my_events(who, RECENT_EVENTS).await?;
        Ok::<_, AppError>((me, devices, events))
    }
    .await;
    let (me, devices, events) = match loaded {
        Ok(v) => v,
        Err(e) => {
            let mut res = super::views::failure_page(e);
            if let Some(failure) = &failure {
                failure.carry_fault(&mut res);
            }
            return res;
        }
    };
    let mut devices: Vec<DeviceRow> = devices.into_iter().map(DeviceRow::from).collect();
    // This device first, then the others, most recently active first (the store's order).
    devices.sort_by_key(|d| !d.current);
    let (jar, csrf) = csrf_token(jar);
    let view = AccountSecurityPage {
        csrf,
        email: me.email.as_str().to_owned(),
        mfa_on: me.mfa.enabled,
        recovery_codes_left: me.mfa.recovery_codes_remaining,
        devices,
        events: events.into_iter().map(EventRow::from).collect(),
        notice,
        error: failure.as_ref().map(|f| f.message.clone()),
    };
    let res = page_after(failure.as_ref(), &view);
    (jar, res).into_response()
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    password: String,
}

/// Starts (or restarts) TOTP set-up: a new secret, shown as a QR code and as text. Like
/// the API, it needs the account's password, so a borrowed browser session alone cannot
/// bind someone else's phone.
pub async fn mfa_setup_post<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    Extension(who): Extension<Principal>,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<SetupForm>,
) -> Response {
    let result = async {
        let password = Password::presented(form.password).map_err(field("password"))?;
        state.app.totp_setup(&who, password, &ctx).await
    }
    .await;
    state.metrics.count_rate_limited(&result);
    match result {
        Ok(setup) => {
            let (jar, csrf) = csrf_token(jar);
            let view = MfaSetupPage::new(csrf, setup, None);
            (jar, page(StatusCode::OK, &view)).into_response()
        }
        Err(AppError::MfaAlreadyEnabled) => to_account().into_response(),
        Err(e) => {
            let wrong_password = matches!(e, AppError::InvalidCredentials);
            let mut failure = Failure::from_error(e);
            if wrong_password {
                // The account page asks for the password alone: no email to blame.
                failure.message = "That password is wrong.".into();
            }
            account_page(&state, &who, jar, None, Some(failure)).await
        }
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    code: String,
    /// The secret the set-up page showed, so a failed attempt can show it again.
    #[serde(default)]
    secret: String,
}

/// Confirms set-up with a code from the app; the recovery codes are shown this once.
pub async fn mfa_confirm_post<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    Extension(who): Extension<Principal>,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<ConfirmForm>,
) -> Response {
    let result = async {
        let code = TotpCode::parse(&form.code).map_err(field("code"))?;
        state.app.totp_confirm(&who, code, &ctx).await
    }
    .await;
    state.metrics.observe_mfa("confirm", &result);
    match result {
        Ok(codes) => recovery_codes(false, &codes),
        Err(e) => {
            let failure = Failure::from_error(e);
            // Show the same secret again: a typo must not cost a new scan.
            match state.app.totp_pending_setup(&who, &form.secret).await {
                Ok(Some(setup)) => {
                    let (jar, csrf) = csrf_token(jar);
                    let view = MfaSetupPage::new(csrf, setup, Some(failure.message.clone()));
                    (jar, failure.respond(&view)).into_response()
                }
                Ok(None) | Err(AppError::MfaAlreadyEnabled) => {
                    account_page(&state, &who, jar, None, Some(failure)).await
                }
                Err(e) => {
                    let mut res = super::views::failure_page(e);
                    failure.carry_fault(&mut res);
                    res
                }
            }
        }
    }
}

fn recovery_codes(
    regenerated: bool,
    codes: &[tessera_core::mfa::recovery::RecoveryCode],
) -> Response {
    let view = RecoveryCodesPage {
        regenerated,
        codes: codes.iter().map(|c| c.display()).collect(),
    };
    page(StatusCode::OK, &view)
}

/// New recovery codes, after confirming with a current code (a step-up: the session's
/// MFA time becomes now, and the browser gets the stepped-up access token).
pub async fn recovery_codes_post<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    Extension(who): Extension<Principal>,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<CodeForm>,
) -> Response {
    let result = async {
        let code = SecondFactor::parse(&form.code)?;
        let stepped = state.app.step_up(&who, &code, &ctx).await?;
        let fresh = state.app.authenticate(&stepped.access_token).await?;
        let codes = state.app.regenerate_recovery_codes(&fresh, &ctx).await?;
        Ok::<_, AppError>((stepped, codes))
    }
    .await;
    state.metrics.observe_mfa("step_up", &result);
    match result {
        Ok((stepped, codes)) => {
            let jar =
                CookieJar::new().add(access_cookie(&stepped.access_token, stepped.expires_in));
            (jar, recovery_codes(true, &codes)).into_response()
        }
        Err(e) => account_page(&state, &who, jar, None, Some(Failure::from_error(e))).await,
    }
}

/// Turns TOTP off; needs a current code (or a recovery code).
pub async fn mfa_disable_post<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    Extension(who): Extension<Principal>,
    jar: CookieJar,
    CheckedForm(form): CheckedForm<CodeForm>,
) -> Response {
    let result = async {
        let code = SecondFactor::parse(&form.code)?;
        state.app.disable_totp(&who, &code, &ctx).await
    }
    .await;
    state.metrics.observe_mfa("disable", &result);
    match result {
        Ok(()) => with_notice("mfa-disabled").into_response(),
        Err(e) => account_page(&state, &who, jar, None, Some(Failure::from_error(e))).await,
    }
}

/// Signs one device out, at once and on every node.
pub async fn revoke_post<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    Extension(who): Extension<Principal>,
    Path(session_id): Path<String>,
    CheckedForm(NoFields {}): CheckedForm<NoFields>,
) -> Response {
    let Ok(id) = session_id.parse::<SessionId>() else {
        return with_notice("device-gone").into_response();
    };
    match state.app.revoke_device(&who, id, &ctx).await {
        Ok(()) => with_notice("device-revoked").into_response(),
        Err(AppError::NotFound) => with_notice("device-gone").into_response(),
        Err(e) => super::views::failure_page(e),
    }
}

/// Signs out every device but this one.
pub async fn revoke_others_post<S: Store>(
    State(state): State<AppState<S>>,
    Context(ctx): Context,
    Extension(who): Extension<Principal>,
    CheckedForm(NoFields {}): CheckedForm<NoFields>,
) -> Response {
    match state.app.revoke_other_devices(&who, &ctx).await {
        Ok(_) => with_notice("others-revoked").into_response(),
        Err(e) => super::views::failure_page(e),
    }
}
