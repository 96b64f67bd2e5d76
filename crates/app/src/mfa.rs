//! TOTP MFA: enrolment, the login second step, step-up, disable, recovery codes.
//!
//! Every code check goes through `check_second_factor`: the user's MFA budget is spent
//! first (so guessing is bounded before anything is compared), a TOTP code is accepted
//! for a time step at most once (the store's atomic replay guard), and a recovery code
//! works once.

use subtle::ConstantTimeEq;
use tessera_core::event::EventKind;
use tessera_core::ids::UserId;
use tessera_core::jwt::Assurance;
use tessera_core::mfa::qr::qr_svg;
use tessera_core::mfa::recovery::{RECOVERY_CODES, RecoveryCode};
use tessera_core::mfa::totp::{self, TotpCode, TotpSecret};
use tessera_core::password::Password;
use tessera_core::policy;
use tessera_core::ratelimit::LimitKey;
use tessera_core::secret::MfaToken;
use time::Duration;

use crate::app::{App, NoticeContent, RequestContext, Tokens};
use crate::error::{AppError, random};
use crate::limits::Subject;
use crate::ports::{MfaRecord, Store, UserRecord};
use crate::sessions::Principal;
use crate::signin::SignInBasis;

/// Sealing purpose of TOTP secrets (the owner is the user id).
pub(crate) const TOTP_PURPOSE: &str = "totp-secret";
/// How long a login may wait for its second factor.
pub const MFA_TOKEN_TTL: Duration = Duration::seconds(300);
/// How recent an MFA must be to regenerate recovery codes (the rule and its value live
/// in `tessera_core::policy`).
pub const RECENT_MFA: Duration = policy::RECOVERY_CODES_MAX_AGE;

/// A code as typed: a TOTP code or a recovery code.
#[derive(Debug, Clone)]
pub enum SecondFactor {
    Totp(TotpCode),
    Recovery(RecoveryCode),
}

impl SecondFactor {
    /// Six digits (spaces ignored) are a TOTP code; anything else must be a recovery code.
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        if let Ok(code) = TotpCode::parse(raw) {
            return Ok(Self::Totp(code));
        }
        RecoveryCode::parse(raw).map(Self::Recovery).map_err(|_| {
            AppError::invalid(
                "code",
                "must be a 6-digit TOTP code or a recovery code as issued",
            )
        })
    }
}

/// What setup hands the user: the secret three ways. `Debug` shows none of them.
pub struct TotpSetup {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

/// A login that passed its password and waits for the second factor.
#[derive(Debug)]
pub struct MfaPending {
    pub mfa_token: MfaToken,
    pub expires_in: i64,
}

/// A fresh access token after step-up. `Debug` shows no token.
pub struct SteppedUp {
    pub access_token: String,
    pub expires_in: i64,
}

impl std::fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSetup([redacted])")
    }
}

impl std::fmt::Debug for SteppedUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SteppedUp")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

impl MfaRecord {
    pub fn enabled(&self) -> bool {
        self.sealed_secret.is_some()
    }
}

impl<S: Store> App<S> {
    pub(crate) async fn mfa_enabled(&self, user: UserId) -> Result<Option<MfaRecord>, AppError> {
        Ok(self.store.get_mfa(user).await?.filter(MfaRecord::enabled))
    }

    fn open_secret(&self, user: UserId, sealed: &[u8]) -> Result<TotpSecret, AppError> {
        let bytes = self
            .keys
            .master()
            .open(sealed, TOTP_PURPOSE, &user.to_string())
            .map_err(AppError::internal)?;
        TotpSecret::from_bytes(&bytes).map_err(|e| AppError::Internal(e.0.into()))
    }

    /// Starts (or restarts) enrolment. Binding a new authenticator needs the account's
    /// current password (NIST SP 800-63B §6.1.2.1): a stolen access token alone must not
    /// let a thief bind his own phone and so reach AAL2. A wrong password is a guess at
    /// the account's password: decided on the session's budget, it also spends a slot of
    /// the account's login budget (see `reauthenticate`).
    pub async fn totp_setup(
        &self,
        who: &Principal,
        password: Password,
        ctx: &RequestContext,
    ) -> Result<TotpSetup, AppError> {
        let user = self.user(who.user_id).await?;
        // A 409 checks no password, so it must not spend the budget: look first.
        if self.mfa_enabled(user.id).await?.is_some() {
            return Err(AppError::MfaAlreadyEnabled);
        }
        if !self
            .reauthenticate(who, &user, password, "invalid_password_mfa_setup", ctx)
            .await?
        {
            return Err(AppError::InvalidCredentials);
        }
        let secret = TotpSecret::from_random(random()?);
        let sealed = self.keys.master().seal(
            random()?,
            TOTP_PURPOSE,
            &user.id.to_string(),
            secret.as_bytes(),
        );
        self.store
            .replace_pending_totp(user.id, &sealed, self.clock.now())
            .await?;
        self.present_setup(&user, &secret)
    }

    /// The setup still waiting for its confirming code, shown again to the page that
    /// already shows it (a wrong code must not cost a new scan). `shown` is the secret
    /// that page holds: the pending one is returned only if it is the same, so no other
    /// session of the user can read a secret it was never shown. `None`: nothing pending,
    /// or not the secret shown.
    pub async fn totp_pending_setup(
        &self,
        who: &Principal,
        shown: &str,
    ) -> Result<Option<TotpSetup>, AppError> {
        let user = self.user(who.user_id).await?;
        match self.store.get_mfa(user.id).await? {
            Some(r) if r.enabled() => Err(AppError::MfaAlreadyEnabled),
            Some(MfaRecord {
                pending_sealed: Some(sealed),
                ..
            }) => {
                let secret = self.open_secret(user.id, &sealed)?;
                let same = secret.to_base32().as_bytes().ct_eq(shown.as_bytes());
                if !bool::from(same) {
                    return Ok(None);
                }
                self.present_setup(&user, &secret).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn present_setup(&self, user: &UserRecord, secret: &TotpSecret) -> Result<TotpSetup, AppError> {
        let otpauth_uri = secret.otpauth_uri(&self.settings.issuer, user.email.as_str());
        let qr_svg = qr_svg(&otpauth_uri).map_err(AppError::internal)?;
        Ok(TotpSetup {
            secret: secret.to_base32(),
            otpauth_uri,
            qr_svg,
        })
    }

    /// Confirms the pending secret with a current code: TOTP is on, the calling session
    /// counts as MFA-verified, and ten recovery codes are returned (shown once).
    pub async fn totp_confirm(
        &self,
        who: &Principal,
        code: TotpCode,
        ctx: &RequestContext,
    ) -> Result<Vec<RecoveryCode>, AppError> {
        let user = self.user(who.user_id).await?;
        // A 409 checks no code, so it must not spend the MFA budget: look first.
        let record = self.store.get_mfa(user.id).await?;
        let pending = match record {
            Some(r) if r.enabled() => return Err(AppError::MfaAlreadyEnabled),
            Some(MfaRecord {
                pending_sealed: Some(p),
                ..
            }) => p,
            _ => return Err(AppError::NoPendingSetup),
        };
        let reserved = self
            .reserve(&self.mfa_budget(user.id), Subject::User(user.id), ctx)
            .await?;
        let secret = self.open_secret(user.id, &pending)?;
        let now = self.clock.now();
        let Some(step) = totp::verify(&secret, code, now, None) else {
            reserved.keep().await;
            self.mfa_failed(&user, ctx, "confirm").await?;
            return Err(AppError::InvalidMfaCode);
        };
        let codes = fresh_recovery_codes()?;
        let hashes: Vec<_> = codes.iter().map(RecoveryCode::hash).collect();
        if !self.store.enable_totp(user.id, step, &hashes, now).await? {
            return Err(AppError::NoPendingSetup);
        }
        self.user_changed(user.id).await;
        self.refund(reserved).await;
        self.store.record_session_mfa(who.session_id(), now).await?;
        self.session_changed(&[who.session_id()]).await;
        self.record_notified(
            &user,
            EventKind::MfaEnabled,
            ctx,
            Some(who.session_id()),
            serde_json::json!({}),
            NoticeContent::plain(),
        )
        .await?;
        Ok(codes)
    }

    /// Starts the second step of a login for a user with TOTP on. No session exists yet.
    pub(crate) async fn begin_mfa_login(
        &self,
        user: &UserRecord,
        device_id: tessera_core::ids::DeviceId,
        device_name: Option<tessera_core::ids::DeviceName>,
        ctx: &RequestContext,
    ) -> Result<MfaPending, AppError> {
        let now = self.clock.now();
        let token = MfaToken::from_random(random()?);
        self.store
            .insert_mfa_challenge(&crate::ports::MfaChallenge {
                token_hash: token.hash(),
                user_id: user.id,
                device_id,
                device_name,
                user_agent: ctx.user_agent.clone(),
                ip: ctx.ip,
                created_at: now,
                expires_at: now + MFA_TOKEN_TTL,
                password_hash: user.password_hash.clone(),
            })
            .await?;
        Ok(MfaPending {
            mfa_token: token,
            expires_in: MFA_TOKEN_TTL.whole_seconds(),
        })
    }

    /// Completes a login with a TOTP or recovery code. A wrong code leaves the
    /// `mfa_token` usable for another try (within the MFA budget); success uses it up.
    pub async fn login_mfa(
        &self,
        token: &MfaToken,
        code: &SecondFactor,
        ctx: &RequestContext,
    ) -> Result<Tokens, AppError> {
        let challenge = self
            .store
            .get_mfa_challenge(&token.hash(), self.clock.now())
            .await?
            .ok_or(AppError::InvalidMfaToken)?;
        let user = self.user(challenge.user_id).await?;
        // Judged on the password the first step verified and the factor enrolled now; a
        // challenge that outlived either, or its account's disable, is void before any code
        // is looked at.
        let basis = SignInBasis {
            password_hash: challenge.password_hash.clone(),
            factor: self.mfa_enabled(user.id).await?.and_then(|m| m.enabled_at),
        };
        if basis.factor.is_none()
            || user.password_hash != basis.password_hash
            || user.disabled_at.is_some()
        {
            return Err(AppError::InvalidMfaToken);
        }
        self.check_second_factor(&user, code, ctx, "login").await?;
        if !self
            .store
            .consume_mfa_challenge(&token.hash(), self.clock.now())
            .await?
        {
            return Err(AppError::InvalidMfaToken);
        }
        let tokens = self
            .open_session(
                &user,
                challenge.device_id,
                challenge.device_name,
                Assurance::PasswordAndOtp,
                ctx,
            )
            .await?;
        // A change that committed after the reads above (and before its purge reached the
        // challenge) must not leave this session standing: the same rule as `login`.
        self.sign_in_stands(user.id, tokens, &basis, AppError::InvalidMfaToken)
            .await
    }

    /// Re-verifies the user on this session; the session's MFA time becomes now.
    pub async fn step_up(
        &self,
        who: &Principal,
        code: &SecondFactor,
        ctx: &RequestContext,
    ) -> Result<SteppedUp, AppError> {
        let user = self.user(who.user_id).await?;
        if self.mfa_enabled(user.id).await?.is_none() {
            return Err(AppError::MfaNotEnabled);
        }
        self.check_second_factor(&user, code, ctx, "step_up")
            .await?;
        let now = self.clock.now();
        let swapped = self.store.record_session_mfa(who.session_id(), now).await?;
        self.session_changed(&[who.session_id()]).await;
        if !swapped {
            return Err(AppError::SessionRevoked);
        }
        self.record(
            user.id,
            EventKind::StepUpSucceeded,
            ctx,
            Some(who.session_id()),
            serde_json::json!({}),
        )
        .await?;
        let (access_token, expires_in) = self.access_token(
            user.id,
            who.session_id(),
            Assurance::PasswordAndOtp,
            now,
            now,
        );
        Ok(SteppedUp {
            access_token,
            expires_in,
        })
    }

    pub async fn disable_totp(
        &self,
        who: &Principal,
        code: &SecondFactor,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let user = self.user(who.user_id).await?;
        if self.mfa_enabled(user.id).await?.is_none() {
            return Err(AppError::MfaNotEnabled);
        }
        self.check_second_factor(&user, code, ctx, "disable")
            .await?;
        self.store.purge_mfa(user.id).await?;
        self.user_changed(user.id).await;
        self.record_notified(
            &user,
            EventKind::MfaDisabled,
            ctx,
            Some(who.session_id()),
            serde_json::json!({}),
            NoticeContent::plain(),
        )
        .await?;
        Ok(())
    }

    /// New recovery codes; the old ones stop working. Needs an MFA within the last 300 s.
    pub async fn regenerate_recovery_codes(
        &self,
        who: &Principal,
        ctx: &RequestContext,
    ) -> Result<Vec<RecoveryCode>, AppError> {
        let user = self.user(who.user_id).await?;
        if self.mfa_enabled(user.id).await?.is_none() {
            return Err(AppError::MfaNotEnabled);
        }
        let now = self.clock.now();
        if !policy::mfa_is_fresh(who.session.mfa_verified_at, RECENT_MFA, now) {
            return Err(AppError::StepUpRequired {
                max_age_secs: RECENT_MFA.whole_seconds(),
            });
        }
        let codes = fresh_recovery_codes()?;
        let hashes: Vec<_> = codes.iter().map(RecoveryCode::hash).collect();
        // Only for the factor this session proved (enabled by its last MFA): an admin
        // reset racing this request, with or without a new enrolment after it, must not
        // be followed by codes the reset never saw. No MFA on the session: no factor fits.
        let proved_at = who
            .session
            .mfa_verified_at
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        if !self
            .store
            .swap_recovery_codes(user.id, proved_at, &hashes, now)
            .await?
        {
            return Err(AppError::MfaNotEnabled);
        }
        self.user_changed(user.id).await;
        self.record(
            user.id,
            EventKind::RecoveryCodesRegenerated,
            ctx,
            Some(who.session_id()),
            serde_json::json!({}),
        )
        .await?;
        Ok(codes)
    }

    fn mfa_budget(&self, user: UserId) -> [(LimitKey, tessera_core::ratelimit::Policy); 1] {
        [(LimitKey::mfa_user(user), self.settings.limits.mfa_per_user)]
    }

    /// Spends the user's MFA budget, then checks the code: a TOTP step at most once, a
    /// recovery code once. A failure stays counted and is recorded.
    async fn check_second_factor(
        &self,
        user: &UserRecord,
        code: &SecondFactor,
        ctx: &RequestContext,
        during: &'static str,
    ) -> Result<(), AppError> {
        let reserved = self
            .reserve(&self.mfa_budget(user.id), Subject::User(user.id), ctx)
            .await?;
        let now = self.clock.now();
        let ok = match code {
            SecondFactor::Totp(code) => match self.mfa_enabled(user.id).await? {
                Some(MfaRecord {
                    sealed_secret: Some(sealed),
                    last_step,
                    ..
                }) => {
                    let secret = self.open_secret(user.id, &sealed)?;
                    match totp::verify(&secret, *code, now, last_step) {
                        // The guard settles races: of two uses of one step, one passes.
                        Some(step) => self.store.swap_totp_step(user.id, step).await?,
                        None => false,
                    }
                }
                _ => false,
            },
            SecondFactor::Recovery(code) => {
                let used = self
                    .store
                    .use_recovery_code(user.id, &code.hash(), now)
                    .await?;
                if used {
                    self.user_changed(user.id).await;
                    let remaining = self
                        .mfa_enabled(user.id)
                        .await?
                        .map_or(0, |m| m.recovery_codes_remaining);
                    self.record_notified(
                        user,
                        EventKind::RecoveryCodeUsed,
                        ctx,
                        None,
                        serde_json::json!({"during": during, "remaining": remaining}),
                        NoticeContent {
                            shown: serde_json::json!({"remaining": remaining}),
                            secret: None,
                        },
                    )
                    .await?;
                }
                used
            }
        };
        if !ok {
            reserved.keep().await;
            self.mfa_failed(user, ctx, during).await?;
            return Err(AppError::InvalidMfaCode);
        }
        self.refund(reserved).await;
        Ok(())
    }

    async fn mfa_failed(
        &self,
        user: &UserRecord,
        ctx: &RequestContext,
        during: &'static str,
    ) -> Result<(), AppError> {
        self.record(
            user.id,
            EventKind::MfaFailed,
            ctx,
            None,
            serde_json::json!({"during": during}),
        )
        .await
    }

    pub(crate) async fn user(&self, id: UserId) -> Result<UserRecord, AppError> {
        self.store
            .get_user(id)
            .await?
            .ok_or(AppError::SessionRevoked)
    }
}

fn fresh_recovery_codes() -> Result<Vec<RecoveryCode>, AppError> {
    (0..RECOVERY_CODES)
        .map(|_| random().map(RecoveryCode::from_random))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::ids::SessionId;
    use tessera_core::secret::RefreshToken;

    #[test]
    fn debug_output_never_shows_a_token_or_a_secret() {
        let stepped = SteppedUp {
            access_token: "eyJ.secret-access.sig".into(),
            expires_in: 900,
        };
        let setup = TotpSetup {
            secret: "JBSWY3DPEHPK3PXP".into(),
            otpauth_uri: "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP".into(),
            qr_svg: "<svg/>".into(),
        };
        let refresh = RefreshToken::from_random([5; 32]);
        let tokens = Tokens {
            access_token: "eyJ.secret-access.sig".into(),
            expires_in: 900,
            refresh_token: refresh.clone(),
            session_id: SessionId::from_random([1; 16]),
            device_token: Some("dt1.secret-device.tag".into()),
        };
        for shown in [
            format!("{stepped:?}"),
            format!("{setup:?}"),
            format!("{tokens:?}"),
        ] {
            for secret in [
                "secret-access",
                "JBSWY3DPEHPK3PXP",
                "secret-device",
                &refresh.expose(),
            ] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
    }
}
