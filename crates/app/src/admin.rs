//! Administration: MFA reset, session revocation, roles, password-reset links, disabling
//! and enabling accounts, reading a user's events. The HTTP endpoints call these after
//! the caller passed the `admin.*` policy; the CLI calls them as an operator on the
//! server host. Every action is recorded on the target user with who did it and why.

use tessera_core::Email;
use tessera_core::event::EventKind;
use tessera_core::ids::{Role, UserId};
use tessera_core::session::RevokeReason;

use crate::app::{App, NoticeContent, RequestContext};
use crate::error::AppError;
use crate::ports::{SecurityEvent, Store, UserRecord};

/// Who performed an administrative action.
#[derive(Debug, Clone)]
pub enum Actor {
    /// An admin user, through the API.
    Admin(UserId),
    /// An operator at the server's command line (the name they gave, or the OS user).
    Operator(String),
}

impl Actor {
    pub(crate) fn detail(&self) -> serde_json::Value {
        match self {
            Self::Admin(id) => serde_json::json!({"kind": "admin", "user_id": id.to_string()}),
            Self::Operator(name) => serde_json::json!({"kind": "operator", "name": name}),
        }
    }
}

/// What disabling or enabling an account did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountChange {
    /// False when the account already was as asked: nothing was recorded or notified.
    pub changed: bool,
    /// Sessions ended by the call (a disable only; normally none once it is disabled).
    pub sessions_revoked: usize,
}

/// A reason given for an action: 1 to 500 characters, recorded verbatim.
pub fn parse_reason(raw: &str) -> Result<String, AppError> {
    let reason = raw.trim();
    if reason.is_empty() || reason.chars().count() > 500 || reason.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "reason",
            "must be 1 to 500 characters without control characters",
        ));
    }
    Ok(reason.to_owned())
}

impl<S: Store> App<S> {
    pub async fn find_user(&self, id: UserId) -> Result<UserRecord, AppError> {
        self.store.get_user(id).await?.ok_or(AppError::NotFound)
    }

    pub async fn find_user_by_email(&self, email: &Email) -> Result<UserRecord, AppError> {
        self.store
            .get_user_by_email(email)
            .await?
            .ok_or(AppError::NotFound)
    }

    /// The target's security events, newest first (the same list the user sees).
    pub async fn admin_user_events(
        &self,
        actor: &Actor,
        target: UserId,
        limit: u32,
    ) -> Result<Vec<SecurityEvent>, AppError> {
        let user = self.find_user(target).await?;
        let events = self.events_of(user.id, limit).await?;
        // Reading someone's trail is itself worth a trace, though not an event of theirs.
        tracing::info!(target_user = %user.id, actor = ?actor, "security events read by an administrator");
        Ok(events)
    }

    /// Mails the user a password-reset link (ASVS 6.4.6: the administrator starts the
    /// reset and never chooses or sees the password). It replaces any earlier link, is
    /// recorded with who asked and why, and is not held to the reset budgets, which stop
    /// strangers, not an operator.
    pub async fn admin_send_password_reset(
        &self,
        actor: &Actor,
        target: UserId,
        reason: &str,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let user = self.find_user(target).await?;
        let reason = parse_reason(reason)?;
        if user.disabled_at.is_some() {
            // The link would be refused at completion anyway; saying so beats a dead email.
            return Err(AppError::invalid(
                "user",
                "is disabled: enable the account before sending it a reset link",
            ));
        }
        let detail = serde_json::json!({"actor": actor.detail(), "reason": reason});
        self.issue_reset_link(&user, ctx, detail).await
    }

    /// Removes the user's TOTP factor and recovery codes and ends all their sessions.
    pub async fn admin_mfa_reset(
        &self,
        actor: &Actor,
        target: UserId,
        reason: &str,
        ctx: &RequestContext,
    ) -> Result<usize, AppError> {
        let user = self.find_user(target).await?;
        let reason = parse_reason(reason)?;
        let had_factor = self.store.purge_mfa(user.id).await?;
        self.user_changed(user.id).await;
        self.store.purge_mfa_challenges(user.id).await?;
        // The MFA-reset notice tells of the revocations too: one message, not one each.
        let revoked = self.revoke_all(&user, RevokeReason::MfaReset, ctx).await?;
        let detail = serde_json::json!({"actor": actor.detail(), "reason": reason, "had_factor": had_factor, "sessions_revoked": revoked});
        self.record_notified(
            &user,
            EventKind::MfaResetByAdmin,
            ctx,
            None,
            detail,
            NoticeContent::plain(),
        )
        .await?;
        tracing::warn!(target_user = %user.id, actor = ?actor, sessions_revoked = revoked, "MFA reset by an administrator");
        Ok(revoked)
    }

    pub async fn admin_revoke_sessions(
        &self,
        actor: &Actor,
        target: UserId,
        ctx: &RequestContext,
    ) -> Result<usize, AppError> {
        let user = self.find_user(target).await?;
        let revoked = self
            .revoke_all(&user, RevokeReason::RevokedByAdmin, ctx)
            .await?;
        tracing::info!(target_user = %user.id, actor = ?actor, revoked, "sessions revoked by an administrator");
        Ok(revoked)
    }

    /// Disables the account (ASVS 7.4.2): from now on its password signs nobody in (the
    /// login answers as for a wrong password), no reset link is sent or honoured, a
    /// pending MFA challenge is void and every session is revoked on every node. The user
    /// is told, once, with the operator's reason. Disabling a disabled account records
    /// nothing new; it still ends any session a failed earlier attempt left behind.
    pub async fn admin_disable_user(
        &self,
        actor: &Actor,
        target: UserId,
        reason: &str,
        ctx: &RequestContext,
    ) -> Result<AccountChange, AppError> {
        let user = self.find_user(target).await?;
        let reason = parse_reason(reason)?;
        let now = self.clock.now();
        // Set before the sessions end: a sign-in that read the account before this looks
        // again once its session exists (`signin`), so either the revocation below sees
        // that session or that look sees the flag.
        let changed = self
            .store
            .swap_user_disabled(user.id, Some(now), now)
            .await?;
        self.user_changed(user.id).await;
        self.store.purge_mfa_challenges(user.id).await?;
        let revoke = RevokeReason::RevokedByAdmin;
        let ids = self
            .store
            .revoke_user_sessions(user.id, None, revoke, now)
            .await?;
        self.revoked(&ids).await;
        // The disable's notice tells of these: one message, not one more for the sessions.
        self.record_revocations(user.id, &ids, revoke, ctx).await?;
        let outcome = AccountChange {
            changed,
            sessions_revoked: ids.len(),
        };
        if !changed {
            tracing::info!(target_user = %user.id, actor = ?actor, sessions_revoked = ids.len(), "account already disabled");
            return Ok(outcome);
        }
        let detail = serde_json::json!({"actor": actor.detail(), "reason": reason, "sessions_revoked": ids.len()});
        self.record_notified(
            &user,
            EventKind::AccountDisabled,
            ctx,
            None,
            detail,
            NoticeContent::plain(),
        )
        .await?;
        tracing::warn!(target_user = %user.id, actor = ?actor, sessions_revoked = ids.len(), "account disabled by an administrator");
        Ok(outcome)
    }

    /// Enables a disabled account again: its password signs in as before (no session or
    /// link comes back; the user signs in or asks for a new link).
    pub async fn admin_enable_user(
        &self,
        actor: &Actor,
        target: UserId,
        reason: &str,
        ctx: &RequestContext,
    ) -> Result<AccountChange, AppError> {
        let user = self.find_user(target).await?;
        let reason = parse_reason(reason)?;
        let now = self.clock.now();
        let changed = self.store.swap_user_disabled(user.id, None, now).await?;
        let outcome = AccountChange {
            changed,
            sessions_revoked: 0,
        };
        if !changed {
            return Ok(outcome);
        }
        self.user_changed(user.id).await;
        self.record_notified(
            &user,
            EventKind::AccountEnabled,
            ctx,
            None,
            serde_json::json!({"actor": actor.detail(), "reason": reason}),
            NoticeContent::plain(),
        )
        .await?;
        tracing::warn!(target_user = %user.id, actor = ?actor, "account enabled by an administrator");
        Ok(outcome)
    }

    /// Replaces the user's roles.
    pub async fn admin_set_roles(
        &self,
        actor: &Actor,
        target: UserId,
        roles: Vec<Role>,
        ctx: &RequestContext,
    ) -> Result<Vec<Role>, AppError> {
        let user = self.find_user(target).await?;
        let mut roles = roles;
        roles.sort();
        roles.dedup();
        self.store.replace_roles(user.id, &roles).await?;
        self.user_changed(user.id).await;
        let names: Vec<&str> = roles.iter().map(Role::as_str).collect();
        self.record(
            user.id,
            EventKind::RolesChanged,
            ctx,
            None,
            serde_json::json!({"actor": actor.detail(), "roles": names}),
        )
        .await?;
        Ok(roles)
    }

    /// Adds one role to the user's set (the CLI's grant-role) and returns the set after it.
    /// The store adds it in one statement: two operators granting different roles at once
    /// both keep theirs.
    pub async fn admin_grant_role(
        &self,
        actor: &Actor,
        target: UserId,
        role: Role,
        ctx: &RequestContext,
    ) -> Result<Vec<Role>, AppError> {
        let user = self.find_user(target).await?;
        self.store.insert_role(user.id, &role).await?;
        self.user_changed(user.id).await;
        let roles = self.store.list_roles(user.id).await?;
        let names: Vec<&str> = roles.iter().map(Role::as_str).collect();
        self.record(
            user.id,
            EventKind::RolesChanged,
            ctx,
            None,
            serde_json::json!({"actor": actor.detail(), "roles": names, "granted": role.as_str()}),
        )
        .await?;
        Ok(roles)
    }

    async fn revoke_all(
        &self,
        user: &UserRecord,
        reason: RevokeReason,
        ctx: &RequestContext,
    ) -> Result<usize, AppError> {
        let ids = self
            .store
            .revoke_user_sessions(user.id, None, reason, self.clock.now())
            .await?;
        self.revoked(&ids).await;
        for (n, sid) in ids.iter().enumerate() {
            let detail = serde_json::json!({"reason": reason.as_str()});
            // An administrator's revocation is told once for the whole action; one that
            // comes with an MFA reset is told by the reset's own notice.
            if reason == RevokeReason::RevokedByAdmin && n + 1 == ids.len() {
                let shown = serde_json::json!({"sessions_revoked": ids.len()});
                self.record_notified(
                    user,
                    EventKind::SessionRevoked,
                    ctx,
                    Some(*sid),
                    detail,
                    NoticeContent {
                        shown,
                        secret: None,
                    },
                )
                .await?;
            } else {
                self.record(user.id, EventKind::SessionRevoked, ctx, Some(*sid), detail)
                    .await?;
            }
        }
        Ok(ids.len())
    }
}
