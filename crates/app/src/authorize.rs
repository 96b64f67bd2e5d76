//! `POST /v1/authorize`: the step-up policy (RFC 9470) applied to one session.

use tessera_core::policy::{self, Denial};

use time::Duration;

use crate::app::App;

/// The longest an admin's MFA may be old, whatever the configured policy says.
const ADMIN_MAX_AGE: Duration = Duration::seconds(300);
use crate::error::AppError;
use crate::ports::Store;
use crate::sessions::Principal;

impl<S: Store> App<S> {
    /// Allows `action` for the caller, or says what is missing, checking in the contract's
    /// order: action known, role, enrolment, MFA age.
    pub async fn authorize(&self, who: &Principal, action: &str) -> Result<(), AppError> {
        let roles = self.store.list_roles(who.user_id).await?;
        let enrolled = self.mfa_enabled(who.user_id).await?.is_some();
        let now = self.clock.now();
        policy::authorize(
            &self.settings.step_up,
            action,
            &roles,
            enrolled,
            who.session.mfa_verified_at,
            now,
        )
        .map(|_| ())
        .map_err(|denial| match denial {
            Denial::UnknownAction => AppError::UnknownAction,
            Denial::Forbidden => AppError::Forbidden,
            Denial::EnrollmentRequired => AppError::MfaEnrollmentRequired,
            Denial::StepUpRequired { max_age } => AppError::StepUpRequired {
                max_age_secs: max_age.whole_seconds(),
            },
        })
    }

    /// The admin API's check: the configured policy for `action`, and in any case the
    /// contract's floor — role `admin`, TOTP enrolled, an MFA within 300 s — so a
    /// permissive `[[step_up]]` file cannot open the admin endpoints wider.
    pub async fn authorize_admin(&self, who: &Principal, action: &str) -> Result<(), AppError> {
        self.authorize(who, action).await?;
        let roles = self.store.list_roles(who.user_id).await?;
        if !roles.iter().any(|r| r.as_str() == "admin") {
            return Err(AppError::Forbidden);
        }
        if self.mfa_enabled(who.user_id).await?.is_none() {
            return Err(AppError::MfaEnrollmentRequired);
        }
        let now = self.clock.now();
        let fresh = who
            .session
            .mfa_verified_at
            .is_some_and(|t| now - t <= ADMIN_MAX_AGE);
        if !fresh {
            return Err(AppError::StepUpRequired {
                max_age_secs: ADMIN_MAX_AGE.whole_seconds(),
            });
        }
        Ok(())
    }
}
