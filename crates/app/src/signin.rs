//! The rule every sign-in ends with, password login and its MFA second step alike.
//!
//! A sign-in is judged on credentials read before its session exists. A password change,
//! an admin MFA reset or an account disable that commits in between revokes the user's
//! sessions before this one exists, and may purge the challenge only after it was
//! consumed. So once the session is open the sign-in looks again: either the change's
//! revocation saw the session, or this read sees the change — never neither — and the
//! session is revoked at once.

use tessera_core::ids::UserId;
use tessera_core::password::PasswordHash;
use tessera_core::session::RevokeReason;
use time::OffsetDateTime;

use crate::app::{App, Tokens};
use crate::error::AppError;
use crate::ports::Store;

/// What a sign-in was judged on.
#[derive(Debug, Clone)]
pub(crate) struct SignInBasis {
    /// The password hash the first step verified.
    pub(crate) password_hash: PasswordHash,
    /// For a second step: when the factor its code was checked against was enabled, which
    /// tells that factor from one enrolled again after a reset.
    pub(crate) factor: Option<OffsetDateTime>,
}

impl SignInBasis {
    pub(crate) fn password(password_hash: PasswordHash) -> Self {
        Self {
            password_hash,
            factor: None,
        }
    }
}

impl<S: Store> App<S> {
    /// Why `basis` is no longer the user's (`None`: it still is).
    pub(crate) async fn basis_changed(
        &self,
        user: UserId,
        basis: &SignInBasis,
    ) -> Result<Option<RevokeReason>, AppError> {
        let current = self.store.get_user(user).await?;
        if current.as_ref().map(|u| &u.password_hash) != Some(&basis.password_hash) {
            return Ok(Some(RevokeReason::PasswordChanged));
        }
        if current.is_some_and(|u| u.disabled_at.is_some()) {
            return Ok(Some(RevokeReason::RevokedByAdmin));
        }
        if let Some(enabled_at) = basis.factor {
            let same = self
                .mfa_enabled(user)
                .await?
                .is_some_and(|m| m.enabled_at == Some(enabled_at));
            if !same {
                return Ok(Some(RevokeReason::MfaReset));
            }
        }
        Ok(None)
    }

    /// The last step of a sign-in whose session was just opened: the tokens stand if the
    /// basis still holds; otherwise the session is revoked and `refused` returned.
    pub(crate) async fn sign_in_stands(
        &self,
        user: UserId,
        tokens: Tokens,
        basis: &SignInBasis,
        refused: AppError,
    ) -> Result<Tokens, AppError> {
        let Some(reason) = self.basis_changed(user, basis).await? else {
            return Ok(tokens);
        };
        let now = self.clock.now();
        if self
            .store
            .revoke_session(tokens.session_id, reason, now)
            .await?
        {
            self.revoked(&[tokens.session_id]).await;
        }
        Err(refused)
    }
}
