//! Registration and password login.

use tessera_core::Email;
use tessera_core::event::EventKind;
use tessera_core::ids::{DeviceId, DeviceName, SessionId, UserId};
use tessera_core::jwt::Assurance;
use tessera_core::password::Password;
use tessera_core::ratelimit::{LimitKey, Policy};
use tessera_core::secret::RefreshToken;

use crate::app::{App, NoticeContent, RequestContext, Tokens};
use crate::error::{AppError, random};
use crate::limits::Subject;
use crate::mfa::MfaPending;
use crate::ports::{NewSession, NewUser, Store, StoreError, UserRecord};
use crate::signin::SignInBasis;

/// The only login provider of API version 1.
pub const PROVIDER: &str = "password";

#[derive(Debug)]
pub struct LoginInput {
    pub email: Email,
    pub password: Password,
    pub device_id: DeviceId,
    pub device_name: Option<DeviceName>,
    /// A known-device token from an earlier login on this device, if the client kept one.
    /// Never logged (`Debug` shows only whether one was given).
    pub device_token: Option<DeviceTokenInput>,
}

/// A presented known-device token; `Debug` hides it.
pub struct DeviceTokenInput(pub String);

impl std::fmt::Debug for DeviceTokenInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceTokenInput([redacted])")
    }
}

/// How a password login ended.
#[derive(Debug)]
pub enum LoginOutcome {
    Authenticated(Tokens),
    /// The password was right and TOTP is on: the second step needs this token.
    MfaRequired(MfaPending),
}

impl<S: Store> App<S> {
    /// Registers a user. The per-network budget is spent first, whatever the outcome (a
    /// 400, a 409 and a 201 all count), so neither taken addresses nor password hashes can
    /// be had at speed; a taken address is answered before any hash is computed.
    pub async fn register(
        &self,
        email: &str,
        password: String,
        ctx: &RequestContext,
    ) -> Result<UserRecord, AppError> {
        if let Some(ip) = ctx.ip {
            let budget = [(
                LimitKey::register_ip(ip),
                self.settings.limits.register_per_ip,
            )];
            self.reserve(&budget, Subject::Anonymous, ctx)
                .await?
                .keep()
                .await;
        }
        let email = Email::parse(email).map_err(|e| AppError::invalid("email", e.0))?;
        let password =
            Password::new_choice(password).map_err(|e| AppError::invalid("password", e.0))?;
        if self.store.get_user_by_email(&email).await?.is_some() {
            return Err(AppError::EmailTaken);
        }
        let password_hash = self.hash_password(password).await?;
        let now = self.clock.now();
        let user = NewUser {
            id: UserId::from_random(random()?),
            email,
            password_hash,
            created_at: now,
        };
        match self.store.insert_user(&user).await {
            Ok(()) => {}
            Err(StoreError::Conflict("email")) => return Err(AppError::EmailTaken),
            Err(e) => return Err(e.into()),
        }
        self.record(
            user.id,
            EventKind::UserRegistered,
            ctx,
            None,
            serde_json::json!({}),
        )
        .await?;
        Ok(UserRecord {
            id: user.id,
            email: user.email,
            password_hash: user.password_hash,
            created_at: now,
            disabled_at: None,
        })
    }

    /// The budgets a password login spends: a valid known-device token's own, or else the
    /// client network's and the account's.
    fn login_budgets(&self, input: &LoginInput, ctx: &RequestContext) -> Vec<(LimitKey, Policy)> {
        let limits = self.settings.limits;
        let known = input.device_token.as_ref().and_then(|token| {
            self.device_keys.verify(
                &token.0,
                input.email.normalized(),
                input.device_id.as_str(),
                self.clock.now(),
            )
        });
        if let Some(known) = known {
            return vec![(
                LimitKey::login_device(known.id_hex()),
                limits.login_per_device,
            )];
        }
        let mut budgets = Vec::with_capacity(2);
        if let Some(ip) = ctx.ip {
            budgets.push((LimitKey::login_ip(ip, PROVIDER), limits.login_per_ip));
        }
        budgets.push((
            LimitKey::login_account(input.email.normalized(), PROVIDER),
            limits.login_per_account,
        ));
        budgets
    }

    pub async fn login(
        &self,
        input: LoginInput,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, AppError> {
        let budgets = self.login_budgets(&input, ctx);
        let reserved = self
            .reserve(&budgets, Subject::Account(&input.email), ctx)
            .await?;

        let user = match self.store.get_user_by_email(&input.email).await {
            Ok(user) => user,
            Err(e) => {
                // Nothing was checked, so nothing is spent: a database outage must not
                // lock out everyone who kept trying through it, any more than overload.
                reserved.refund().await;
                return Err(e.into());
            }
        };
        // An unknown address pays one verification too, so timing does not tell.
        let hash = user
            .as_ref()
            .map_or_else(|| (*self.dummy_hash).clone(), |u| u.password_hash.clone());
        let (password_ok, reserved) = self
            .check_password_reserved(input.password, hash, reserved)
            .await?;
        let user = match user {
            Some(u) if password_ok && u.disabled_at.is_none() => u,
            Some(u) => {
                // A disabled account is answered as a wrong password, after the same
                // work, and its budget is kept too: a refund would tell the caller the
                // password was right. Only the event (for the operator) says which.
                reserved.keep().await;
                let started = std::time::Instant::now();
                let why = if password_ok {
                    "account_disabled"
                } else {
                    "invalid_password"
                };
                self.record(
                    u.id,
                    EventKind::LoginFailed,
                    ctx,
                    None,
                    serde_json::json!({"reason": why}),
                )
                .await?;
                self.failure_pace.observe(started.elapsed());
                return Err(AppError::InvalidCredentials);
            }
            None => {
                reserved.keep().await;
                // No user to record the failure against: wait as long as that write
                // takes on a known email, so latency does not tell the two apart.
                self.failure_pace.hold().await;
                return Err(AppError::InvalidCredentials);
            }
        };
        self.refund(reserved).await;
        // A password change racing this login must not leave a session or a challenge made
        // with the old password (the rule and why it holds: `signin`).
        let basis = SignInBasis::password(user.password_hash.clone());
        if self.mfa_enabled(user.id).await?.is_some() {
            let pending = self
                .begin_mfa_login(&user, input.device_id, input.device_name, ctx)
                .await?;
            if self.basis_changed(user.id, &basis).await?.is_some() {
                self.store.purge_mfa_challenges(user.id).await?;
                return Err(AppError::InvalidCredentials);
            }
            return Ok(LoginOutcome::MfaRequired(pending));
        }
        let tokens = self
            .open_session(
                &user,
                input.device_id,
                input.device_name,
                Assurance::Password,
                ctx,
            )
            .await?;
        self.sign_in_stands(user.id, tokens, &basis, AppError::InvalidCredentials)
            .await
            .map(LoginOutcome::Authenticated)
    }

    /// Creates the device's session (superseding an older one on that device) and its tokens.
    pub(crate) async fn open_session(
        &self,
        user: &UserRecord,
        device_id: DeviceId,
        device_name: Option<DeviceName>,
        assurance: Assurance,
        ctx: &RequestContext,
    ) -> Result<Tokens, AppError> {
        let now = self.clock.now();
        let lifetimes = self.settings.lifetimes;
        let absolute_expires_at = now + lifetimes.absolute;
        let refresh = RefreshToken::from_random(random()?);
        let session = NewSession {
            id: SessionId::from_random(random()?),
            user_id: user.id,
            device_id: device_id.clone(),
            device_name,
            user_agent: ctx.user_agent.clone(),
            ip: ctx.ip,
            created_at: now,
            idle_expires_at: lifetimes.idle_deadline(now, absolute_expires_at),
            absolute_expires_at,
            assurance,
            auth_time: now,
            mfa_verified_at: (assurance == Assurance::PasswordAndOtp).then_some(now),
            refresh_hash: refresh.hash(),
        };
        let inserted = self.store.insert_session(&session).await?;
        if let Some(old) = inserted.superseded {
            self.revoked(&[old]).await;
            self.record(
                user.id,
                EventKind::SessionRevoked,
                ctx,
                Some(old),
                serde_json::json!({"reason": "superseded"}),
            )
            .await?;
        }
        let device = serde_json::json!({"device_id": device_id.as_str()});
        self.record(
            user.id,
            EventKind::LoginSucceeded,
            ctx,
            Some(session.id),
            device.clone(),
        )
        .await?;
        if !inserted.known_device {
            let shown = serde_json::json!({
                "device_name": session.device_name.as_ref().map(DeviceName::as_str),
            });
            self.record_notified(
                user,
                EventKind::NewDevice,
                ctx,
                Some(session.id),
                device,
                NoticeContent {
                    shown,
                    secret: None,
                },
            )
            .await?;
        }
        let (access_token, expires_in) =
            self.access_token(user.id, session.id, assurance, now, now);
        let device_token =
            self.device_keys
                .issue(user.email.normalized(), device_id.as_str(), now, random()?);
        Ok(Tokens {
            access_token,
            expires_in,
            refresh_token: refresh,
            session_id: session.id,
            device_token: Some(device_token),
        })
    }
}
