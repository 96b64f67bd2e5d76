//! Registration and password login.

use tessera_core::Email;
use tessera_core::event::EventKind;
use tessera_core::ids::{DeviceId, DeviceName, SessionId, UserId};
use tessera_core::jwt::Assurance;
use tessera_core::password::Password;
use tessera_core::ratelimit::LimitKey;
use tessera_core::secret::RefreshToken;

use crate::app::{App, RequestContext, Tokens, hash_password};
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
}

/// How a password login ended.
#[derive(Debug)]
pub enum LoginOutcome {
    Authenticated(Tokens),
    /// The password was right and TOTP is on: the second step needs this token.
    MfaRequired(MfaPending),
}

impl<S: Store> App<S> {
    pub async fn register(
        &self,
        email: Email,
        password: Password,
        ctx: &RequestContext,
    ) -> Result<UserRecord, AppError> {
        let password_hash = hash_password(password).await?;
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
        })
    }

    pub async fn login(
        &self,
        input: LoginInput,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, AppError> {
        let limits = self.settings.limits;
        let mut budgets = Vec::with_capacity(2);
        if let Some(ip) = ctx.ip {
            budgets.push((LimitKey::login_ip(ip, PROVIDER), limits.login_per_ip));
        }
        budgets.push((
            LimitKey::login_account(input.email.normalized(), PROVIDER),
            limits.login_per_account,
        ));
        let reserved = self
            .reserve(&budgets, Subject::Account(&input.email), ctx)
            .await?;

        let user = self.store.get_user_by_email(&input.email).await?;
        // An unknown address pays one verification too, so timing does not tell.
        let hash = user
            .as_ref()
            .map_or_else(|| (*self.dummy_hash).clone(), |u| u.password_hash.clone());
        let password_ok = self.check_password(input.password, hash).await?;
        let user = match user {
            Some(u) if password_ok => u,
            Some(u) => {
                reserved.keep();
                self.record(
                    u.id,
                    EventKind::LoginFailed,
                    ctx,
                    None,
                    serde_json::json!({"reason": "invalid_password"}),
                )
                .await?;
                return Err(AppError::InvalidCredentials);
            }
            None => {
                reserved.keep();
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
            self.record(user.id, EventKind::NewDevice, ctx, Some(session.id), device)
                .await?;
            self.notify(user, EventKind::NewDevice, ctx, Some(session.id));
        }
        let (access_token, expires_in) =
            self.access_token(user.id, session.id, assurance, now, now);
        Ok(Tokens {
            access_token,
            expires_in,
            refresh_token: refresh,
            session_id: session.id,
        })
    }
}
