//! The device dashboard: the caller's live sessions, revoking one or all the others, and
//! the caller's recent security events.

use tessera_core::event::EventKind;
use tessera_core::ids::{SessionId, UserId};
use tessera_core::session::{Liveness, RevokeReason};

use crate::app::{App, NoticeContent, RequestContext, device_shown};
use crate::error::AppError;
use crate::ports::{SecurityEvent, SessionRecord, Store};
use crate::sessions::Principal;

/// Most events a caller can ask for at once.
pub const MAX_EVENTS: u32 = 200;

/// One row of the dashboard.
#[derive(Debug, Clone)]
pub struct DeviceSession {
    pub session: SessionRecord,
    /// "Firefox on macOS", from the user agent recorded at sign-in or last refresh.
    pub label: String,
    /// The caller's own session.
    pub current: bool,
}

impl<S: Store> App<S> {
    /// The caller's live sessions, most recently seen first.
    pub async fn list_devices(&self, who: &Principal) -> Result<Vec<DeviceSession>, AppError> {
        let now = self.clock.now();
        let sessions = self.store.list_sessions(who.user_id, now).await?;
        Ok(sessions
            .into_iter()
            .map(|session| DeviceSession {
                label: tessera_core::device::label(session.user_agent.as_deref()),
                current: session.state.id == who.session_id(),
                session,
            })
            .collect())
    }

    /// Ends one of the caller's sessions (their own included). Another user's session, an
    /// unknown id, or one that has already ended is `NotFound`, so ids cannot be probed.
    pub async fn revoke_device(
        &self,
        who: &Principal,
        id: SessionId,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let now = self.clock.now();
        let session = self
            .store
            .get_session(id)
            .await?
            .filter(|s| s.state.user_id == who.user_id && s.state.liveness(now) == Liveness::Live)
            .ok_or(AppError::NotFound)?;
        if !self
            .store
            .revoke_session(id, RevokeReason::RevokedByUser, now)
            .await?
        {
            return Err(AppError::NotFound);
        }
        self.revoked(&[id]).await;
        let detail = serde_json::json!({
            "reason": RevokeReason::RevokedByUser.as_str(),
            "device_id": session.device_id.as_str(),
            "by_session": who.session_id().to_string(),
        });
        let user = self
            .store
            .get_user(who.user_id)
            .await?
            .ok_or(AppError::NotFound)?;
        self.record_notified(
            &user,
            EventKind::SessionRevoked,
            ctx,
            Some(id),
            detail,
            NoticeContent {
                shown: device_shown(&session),
                secret: None,
            },
        )
        .await?;
        Ok(())
    }

    /// Ends every session of the caller but the current one; returns how many.
    pub async fn revoke_other_devices(
        &self,
        who: &Principal,
        ctx: &RequestContext,
    ) -> Result<usize, AppError> {
        let ids = self
            .store
            .revoke_user_sessions(
                who.user_id,
                Some(who.session_id()),
                RevokeReason::RevokedByUser,
                self.clock.now(),
            )
            .await?;
        self.revoked(&ids).await;
        let user = self.store.get_user(who.user_id).await?;
        for (n, id) in ids.iter().enumerate() {
            let detail = serde_json::json!({"reason": RevokeReason::RevokedByUser.as_str(), "by_session": who.session_id().to_string()});
            match &user {
                // One message for the whole action, however many devices it ended.
                Some(user) if n + 1 == ids.len() => {
                    let shown = serde_json::json!({"sessions_revoked": ids.len()});
                    self.record_notified(
                        user,
                        EventKind::SessionRevoked,
                        ctx,
                        Some(*id),
                        detail,
                        NoticeContent {
                            shown,
                            secret: None,
                        },
                    )
                    .await?
                }
                _ => {
                    self.record(
                        who.user_id,
                        EventKind::SessionRevoked,
                        ctx,
                        Some(*id),
                        detail,
                    )
                    .await?
                }
            }
        }
        Ok(ids.len())
    }

    /// The caller's own security events, newest first.
    pub async fn my_events(
        &self,
        who: &Principal,
        limit: u32,
    ) -> Result<Vec<SecurityEvent>, AppError> {
        self.events_of(who.user_id, limit).await
    }

    /// A user's security events, newest first, `limit` of them (1 to `MAX_EVENTS`).
    pub(crate) async fn events_of(
        &self,
        user: UserId,
        limit: u32,
    ) -> Result<Vec<SecurityEvent>, AppError> {
        if !(1..=MAX_EVENTS).contains(&limit) {
            return Err(AppError::invalid(
                "limit",
                format!("must be 1 to {MAX_EVENTS}"),
            ));
        }
        Ok(self.store.list_events(user, limit).await?)
    }
}
