//! Bearer authentication, logout and the account itself (`/v1/me`, password change).

use std::sync::Arc;

use tessera_core::Email;
use tessera_core::event::EventKind;
use tessera_core::ids::{Role, SessionId, UserId};
use tessera_core::jwt::{AccessClaims, Expectations, JwtError, peek_kid};
use tessera_core::password::Password;
use tessera_core::ratelimit::LimitKey;
use tessera_core::session::{Liveness, RevokeReason};

use crate::app::{App, NoticeContent, RequestContext};
use crate::error::AppError;
use crate::limits::Subject;
use crate::liveness::Lookup;
use crate::login::PROVIDER;
use crate::ports::{MfaRecord, SessionRecord, Store, UserRecord};

/// Clock skew tolerated on `iat` between nodes.
const LEEWAY_SECS: i64 = 30;

/// The caller behind a verified bearer token whose session is live.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: UserId,
    pub session: SessionRecord,
    pub claims: AccessClaims,
}

impl Principal {
    pub fn session_id(&self) -> SessionId {
        self.session.state.id
    }
}

/// What an authenticated request may need to know of its user beyond the session:
/// `/v1/me` shows it and the step-up policy decides on it. Each node keeps it in its
/// liveness cache (see `liveness`), dropped by `App::user_changed` on every write that
/// changes it; so it holds no password hash and no secret, nothing a write path decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    pub user_id: UserId,
    pub email: Email,
    /// Sorted by name.
    pub roles: Vec<Role>,
    pub mfa: MfaSummary,
}

/// The user's TOTP state as shown and as the step-up policy needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfaSummary {
    pub enabled: bool,
    /// Unused recovery codes (0 while TOTP is off).
    pub recovery_codes_remaining: u32,
}

impl MfaSummary {
    fn of(record: Option<MfaRecord>) -> Self {
        match record.filter(MfaRecord::enabled) {
            Some(m) => Self {
                enabled: true,
                recovery_codes_remaining: m.recovery_codes_remaining,
            },
            None => Self {
                enabled: false,
                recovery_codes_remaining: 0,
            },
        }
    }
}

impl<S: Store> App<S> {
    /// Verifies an access token and checks, on every call, that its session is still live.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, AppError> {
        let now = self.clock.now();
        let expect = Expectations {
            issuer: &self.settings.issuer,
            audience: &self.settings.audience,
            now,
            leeway_secs: LEEWAY_SECS,
        };
        let claims = match self.keys.verify(bearer, &expect) {
            Err(JwtError::UnknownKey(_)) => {
                // Another node may have created a key since we loaded ours.
                peek_kid(bearer).map_err(|_| AppError::InvalidToken)?;
                if !self.keys.reload_if_stale(&self.store, now).await? {
                    return Err(AppError::InvalidToken);
                }
                self.keys
                    .verify(bearer, &expect)
                    .map_err(|_| AppError::InvalidToken)?
            }
            other => other.map_err(|_| AppError::InvalidToken)?,
        };
        let session = self.live_session(claims.sid, now).await?;
        let session = Some(session)
            .filter(|s| s.state.user_id == claims.sub)
            .ok_or(AppError::SessionRevoked)?;
        match session.state.liveness(now) {
            Liveness::Live => Ok(Principal {
                user_id: claims.sub,
                session,
                claims,
            }),
            Liveness::Revoked(_) | Liveness::Expired => Err(AppError::SessionRevoked),
        }
    }

    /// The session as the store has it, from this node's liveness cache when that holds a
    /// fresh copy. A cached copy that is no longer live is read again before it is believed
    /// (another node may have extended its idle deadline); the verdict is the caller's.
    async fn live_session(
        &self,
        id: SessionId,
        now: time::OffsetDateTime,
    ) -> Result<SessionRecord, AppError> {
        let ticket = match self.liveness.lookup(id, now) {
            Lookup::Hit(record) if record.state.liveness(now) == Liveness::Live => {
                return Ok(record);
            }
            Lookup::Hit(_) => {
                self.liveness.forget(id);
                None
            }
            Lookup::Miss(ticket) => Some(ticket),
            Lookup::Bypass => None,
        };
        let record = self
            .store
            .get_session(id)
            .await?
            .ok_or(AppError::SessionRevoked)?;
        if let Some(ticket) = ticket
            && record.state.liveness(now) == Liveness::Live
        {
            self.liveness.fill(ticket, record.clone(), now);
        }
        Ok(record)
    }

    pub async fn logout(&self, who: &Principal, ctx: &RequestContext) -> Result<(), AppError> {
        let sid = who.session_id();
        if self
            .store
            .revoke_session(sid, RevokeReason::Logout, self.clock.now())
            .await?
        {
            self.revoked(&[sid]).await;
            self.record(
                who.user_id,
                EventKind::SessionRevoked,
                ctx,
                Some(sid),
                serde_json::json!({"reason": "logout"}),
            )
            .await?;
        }
        Ok(())
    }

    /// The caller's account as `/v1/me` shows it.
    pub async fn me(&self, who: &Principal) -> Result<Arc<UserView>, AppError> {
        self.user_view(who.user_id).await
    }

    /// The user's view, from this node's cache when it holds a fresh copy. The three reads
    /// of a miss are not one snapshot, but the fill is refused if any user changed since
    /// the miss, and every write invalidates after it commits: a copy that outlives a
    /// write is never kept.
    pub(crate) async fn user_view(&self, id: UserId) -> Result<Arc<UserView>, AppError> {
        let now = self.clock.now();
        let ticket = match self.liveness.lookup_view(id, now) {
            Lookup::Hit(view) => return Ok(view),
            Lookup::Miss(ticket) => Some(ticket),
            Lookup::Bypass => None,
        };
        let user = self
            .store
            .get_user(id)
            .await?
            .ok_or(AppError::SessionRevoked)?;
        let roles = self.store.list_roles(id).await?;
        let mfa = MfaSummary::of(self.store.get_mfa(id).await?);
        let view = Arc::new(UserView {
            user_id: user.id,
            email: user.email,
            roles,
            mfa,
        });
        if let Some(ticket) = ticket {
            self.liveness.fill_view(ticket, Arc::clone(&view), now);
        }
        Ok(view)
    }

    /// Checks the account's password for a live session that asks to do something only
    /// the owner may (change the password, bind a new factor). The attempt is decided on
    /// the session's own budget, so strangers flooding the account cannot lock its owner
    /// out of their own settings; a failure is a guess at the password all the same, and
    /// also spends a slot of the account's login budget (and is recorded).
    pub(crate) async fn reauthenticate(
        &self,
        who: &Principal,
        user: &UserRecord,
        password: Password,
        reason: &'static str,
        ctx: &RequestContext,
    ) -> Result<bool, AppError> {
        let limits = self.settings.limits;
        let budget = [(
            LimitKey::session(who.session_id()),
            limits.password_per_session,
        )];
        let reserved = self.reserve(&budget, Subject::User(user.id), ctx).await?;
        let (ok, reserved) = self
            .check_password_reserved(password, user.password_hash.clone(), reserved)
            .await?;
        if ok {
            self.refund(reserved).await;
            return Ok(true);
        }
        reserved.keep().await;
        let account = LimitKey::login_account(user.email.normalized(), PROVIDER);
        // A full account budget refuses the next login anyway: nothing more to do here.
        let _ = self.charge(&account, limits.login_per_account).await;
        self.record(
            user.id,
            EventKind::LoginFailed,
            ctx,
            Some(who.session_id()),
            serde_json::json!({"reason": reason}),
        )
        .await?;
        Ok(false)
    }

    /// Changes the password and revokes every other session of the user.
    pub async fn change_password(
        &self,
        who: &Principal,
        current: Password,
        new: Password,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let user = self
            .store
            .get_user(who.user_id)
            .await?
            .ok_or(AppError::SessionRevoked)?;
        if !self
            .reauthenticate(who, &user, current, "invalid_current_password", ctx)
            .await?
        {
            return Err(AppError::InvalidCredentials);
        }
        let new_hash = self.hash_password(new).await?;
        let now = self.clock.now();
        if !self
            .store
            .swap_password_hash(user.id, &user.password_hash, &new_hash, now)
            .await?
        {
            // A concurrent change won; this request's "current" password is stale now.
            return Err(AppError::InvalidCredentials);
        }
        self.user_changed(user.id).await;
        self.record_notified(
            &user,
            EventKind::PasswordChanged,
            ctx,
            Some(who.session_id()),
            serde_json::json!({}),
            NoticeContent::plain(),
        )
        .await?;
        let revoked = self
            .store
            .revoke_user_sessions(
                user.id,
                Some(who.session_id()),
                RevokeReason::PasswordChanged,
                now,
            )
            .await?;
        self.revoked(&revoked).await;
        // A login that passed the old password and waits for its second factor must not
        // complete either.
        self.store.purge_mfa_challenges(user.id).await?;
        self.record_revocations(user.id, &revoked, RevokeReason::PasswordChanged, ctx)
            .await
    }
}
