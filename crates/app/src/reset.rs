//! Password reset by an emailed single-use link.
//!
//! ```text
//!   request(email) ──► [budgets spent] ──► 429
//!                 └──► 202 at once ─┬─ unknown address: nothing more
//!                                   └─ known: new link stored (hashed, 30 min; any
//!                                      earlier link void) + event and email, in the
//!                                      background
//!   link ──complete(token, password)──► taken (single use) ──► password set,
//!                                       every session revoked, user notified
//!        └─[malformed, unknown, used, expired, account disabled]──► invalid_reset_token
//! ```
//!
//! The request answers before it looks the address up, so neither its body nor its
//! time can tell a known address from an unknown one; the budgets are keyed by the
//! address asked for, so both are refused alike too.

use tessera_core::email::{self, Email};
use tessera_core::event::EventKind;
use tessera_core::ids::UserId;
use tessera_core::password::{Password, PasswordHash};
use tessera_core::ratelimit::LimitKey;
use tessera_core::secret::ResetToken;
use tessera_core::session::RevokeReason;
use time::Duration;

use crate::app::{App, NoticeContent, RequestContext};
use crate::error::{AppError, random};
use crate::limits::Subject;
use crate::ports::{PendingReset, Store, UserRecord};

/// How long an emailed link stays valid.
pub const RESET_TOKEN_TTL: Duration = Duration::minutes(30);

/// The longest address `Email::parse` could accept; anything longer is refused as
/// malformed input rather than answered as an ordinary request.
const MAX_EMAIL_BYTES: usize = 254;

/// Password swaps tried before giving up: only a change made in the few milliseconds
/// between reading the hash and swapping it makes one fail.
const SWAP_ATTEMPTS: usize = 3;

impl<S: Store> App<S> {
    /// Asks for a reset link for `email`. Answers `Ok` for every address, known, unknown
    /// or malformed, once the budgets (per client network and per address, whatever the
    /// outcome) are spent; the link is made and mailed in the background.
    pub async fn request_password_reset(
        &self,
        email: &str,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let limits = self.settings.limits;
        let normalized = email::normalize(email);
        let mut budgets = Vec::with_capacity(2);
        if let Some(ip) = ctx.ip {
            budgets.push((LimitKey::reset_ip(ip), limits.reset_per_ip));
        }
        let absurd = normalized.len() > MAX_EMAIL_BYTES;
        if !absurd {
            budgets.push((
                LimitKey::reset_account(&normalized),
                limits.reset_per_account,
            ));
        }
        // A denial is recorded on no account: looking the address up here would make a
        // 429 for a known address slower than one for an unknown address.
        self.reserve(&budgets, Subject::Anonymous, ctx)
            .await?
            .keep()
            .await;
        if absurd {
            return Err(AppError::invalid(
                "email",
                "must be a valid email address of at most 254 bytes",
            ));
        }
        // A malformed address cannot belong to an account; it is answered like any other.
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        let app = self.clone();
        let ctx = ctx.clone();
        self.background.spawn(async move {
            if let Err(e) = app.send_reset_link(&email, &ctx).await {
                tracing::error!(
                    error = %e,
                    cause = std::error::Error::source(&e).map(ToString::to_string),
                    "a password-reset request could not be completed"
                );
            }
        });
        Ok(())
    }

    /// The background half of a request: for a known address, a new link replaces any
    /// earlier one and its email is queued with the event.
    async fn send_reset_link(&self, email: &Email, ctx: &RequestContext) -> Result<(), AppError> {
        let Some(user) = self.store.get_user_by_email(email).await? else {
            return Ok(());
        };
        if user.disabled_at.is_some() {
            // Answered like any address; a reset must not be a way back in.
            return Ok(());
        }
        self.issue_reset_link(&user, ctx, serde_json::json!({}))
            .await
    }

    /// A new link for `user` replaces any earlier one; the event (with `detail`) and the
    /// email carrying the link are queued together.
    pub(crate) async fn issue_reset_link(
        &self,
        user: &UserRecord,
        ctx: &RequestContext,
        detail: serde_json::Value,
    ) -> Result<(), AppError> {
        let token = ResetToken::from_random(random()?);
        let now = self.clock.now();
        self.store
            .replace_reset_token(user.id, &token.hash(), now, now + RESET_TOKEN_TTL)
            .await?;
        let link_token = token.expose();
        self.record_notified(
            user,
            EventKind::PasswordResetRequested,
            ctx,
            None,
            detail,
            NoticeContent {
                shown: serde_json::json!({}),
                secret: Some(&link_token),
            },
        )
        .await
    }

    /// Sets a new password with an emailed link's token: the link is used up, every
    /// session of the user is revoked and the user notified. MFA stays as it was.
    pub async fn complete_password_reset(
        &self,
        token: &str,
        new_password: String,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        // Checked before the token is touched, so a bad password does not use up the link.
        let password = Password::new_choice(new_password)
            .map_err(|e| AppError::invalid("new_password", e.0))?;
        let token = ResetToken::parse(token).map_err(|_| AppError::InvalidResetToken)?;
        let hash = token.hash();
        let pending = self
            .store
            .take_reset_token(&hash, self.clock.now())
            .await?
            .ok_or(AppError::InvalidResetToken)?;
        // The hash is computed only for the holder of a live link, and links are limited
        // at issue: this is the rate-limit check the hashing pool asks for.
        let new_hash = match self.hash_password(password).await {
            Ok(h) => h,
            Err(e) => {
                // Nothing was changed: the link must still work when the user retries.
                self.put_back(&hash, &pending).await;
                return Err(e);
            }
        };
        let user = self.set_password(pending.user_id, &new_hash).await?;
        self.user_changed(user.id).await;
        let now = self.clock.now();
        let reason = RevokeReason::PasswordReset;
        // A login that passed the old password and waits for its second factor must not
        // complete either.
        self.store.purge_mfa_challenges(user.id).await?;
        let revoked = self
            .store
            .revoke_user_sessions(user.id, None, reason, now)
            .await?;
        self.revoked(&revoked).await;
        self.record_notified(
            &user,
            EventKind::PasswordReset,
            ctx,
            None,
            serde_json::json!({}),
            NoticeContent::plain(),
        )
        .await?;
        // The reset's notice covers these: one email, not one per device.
        self.record_revocations(user.id, &revoked, reason, ctx)
            .await
    }

    /// Swaps in `new_hash` from whatever the current hash is. A concurrent change that
    /// wins the swap is simply read again: the link's holder decides the final password.
    async fn set_password(
        &self,
        user: UserId,
        new_hash: &PasswordHash,
    ) -> Result<crate::ports::UserRecord, AppError> {
        for _ in 0..SWAP_ATTEMPTS {
            // A link sent before the account was disabled opens nothing: it is used up
            // here like any dead link, and the password stays as it was.
            let Some(record) = self
                .store
                .get_user(user)
                .await?
                .filter(|r| r.disabled_at.is_none())
            else {
                return Err(AppError::InvalidResetToken);
            };
            let now = self.clock.now();
            if self
                .store
                .swap_password_hash(user, &record.password_hash, new_hash, now)
                .await?
            {
                return Ok(record);
            }
        }
        Err(AppError::Internal(
            "the password kept changing during a reset".into(),
        ))
    }

    async fn put_back(&self, hash: &tessera_core::secret::TokenHash, pending: &PendingReset) {
        if let Err(e) = self
            .store
            .replace_reset_token(
                pending.user_id,
                hash,
                pending.created_at,
                pending.expires_at,
            )
            .await
        {
            tracing::error!(error = %e, "a reset link could not be put back after a failed reset");
        }
    }
}
