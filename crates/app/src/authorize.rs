//! `POST /v1/authorize`: the step-up policy (RFC 9470) applied to one session.

use tessera_core::policy::{self, Denial, StepUpPolicy};

use crate::app::App;
use crate::error::AppError;
use crate::ports::Store;
use crate::sessions::Principal;

impl<S: Store> App<S> {
    /// Allows `action` for the caller, or says what is missing, checking in the contract's
    /// order: action known, role, enrolment, MFA age.
    pub async fn authorize(&self, who: &Principal, action: &str) -> Result<(), AppError> {
        self.check_policies(who, action, &[&self.settings.step_up])
            .await
    }

    /// The admin API's check: the configured policy for `action` and, in any case, the
    /// contract's floor — so a permissive `[[step_up]]` file cannot open the admin
    /// endpoints wider. `action` must be an `admin.*` name.
    pub async fn authorize_admin(&self, who: &Principal, action: &str) -> Result<(), AppError> {
        let floor = StepUpPolicy::admin_floor();
        self.check_policies(who, action, &[&self.settings.step_up, &floor])
            .await
    }

    /// Applies each policy in turn to one read of the caller's roles and enrolment (from
    /// this node's cache when it holds them: see `App::user_view`).
    async fn check_policies(
        &self,
        who: &Principal,
        action: &str,
        policies: &[&StepUpPolicy],
    ) -> Result<(), AppError> {
        let view = self.user_view(who.user_id).await?;
        let now = self.clock.now();
        for policy in policies {
            policy::authorize(
                policy,
                action,
                &view.roles,
                view.mfa.enabled,
                who.session.mfa_verified_at,
                now,
            )
            .map_err(|denial| match denial {
                Denial::UnknownAction => AppError::UnknownAction,
                Denial::Forbidden => AppError::Forbidden,
                Denial::EnrollmentRequired => AppError::MfaEnrollmentRequired,
                Denial::StepUpRequired { max_age } => AppError::StepUpRequired {
                    max_age_secs: max_age.whole_seconds(),
                },
            })?;
        }
        Ok(())
    }
}
