//! Refresh-token rotation with reuse detection. `tessera_core::session::rotation::decide`
//! judges; this use case carries the decision out against the store's compare-and-swap.
//!
//! Two callers, one rule: the API judges a presentation with the configured retry window;
//! the browser pages with at least [`BROWSER_RETRY_WINDOW`], because a browser cannot
//! retry on purpose: a navigation it abandoned after the server rotated leaves it holding
//! the previous cookie, and its next request must get the successor, not a reuse verdict.

use tessera_core::crypto::{open_successor, seal_successor};
use tessera_core::event::EventKind;
use tessera_core::secret::RefreshToken;
use tessera_core::session::RevokeReason;
use tessera_core::session::rotation::{PresentedToken, RefreshDecision, decide};
use time::Duration;

use crate::app::{App, NoticeContent, RequestContext, Tokens, device_shown};
use crate::error::{AppError, random};
use crate::ports::{
    CurrentRotation, RefreshRecord, RefreshSwap, SessionRecord, Store, SwapOutcome,
};

/// The shortest retry window of a browser's refresh cookie. The bound it sets: a rotated
/// token presented as a cookie answers with its successor only within this long of its
/// rotation, only while that successor has never been used, and always with that same
/// successor (so it is no second live token); the seal it needs is kept no longer. Long
/// enough for a person to reload or click again after a page did not load; short enough
/// that a token leaked after its rotation (a log, a backup) is almost always reuse.
pub const BROWSER_RETRY_WINDOW: Duration = Duration::seconds(60);

impl<S: Store> App<S> {
    /// An API client's refresh: the configured retry window.
    pub async fn refresh(
        &self,
        presented: &RefreshToken,
        ctx: &RequestContext,
    ) -> Result<Tokens, AppError> {
        self.refresh_within(presented, ctx, self.settings.refresh_retry_window)
            .await
    }

    /// A browser's refresh cookie: the configured retry window, or
    /// [`BROWSER_RETRY_WINDOW`] when that is longer.
    pub async fn refresh_browser(
        &self,
        presented: &RefreshToken,
        ctx: &RequestContext,
    ) -> Result<Tokens, AppError> {
        let window = self.settings.refresh_retry_window.max(BROWSER_RETRY_WINDOW);
        self.refresh_within(presented, ctx, window).await
    }

    async fn refresh_within(
        &self,
        presented: &RefreshToken,
        ctx: &RequestContext,
        retry_window: Duration,
    ) -> Result<Tokens, AppError> {
        if let Some(tokens) = self.rotate_current(presented, ctx, retry_window).await? {
            return Ok(tokens);
        }
        let hash = presented.hash();
        // A lost compare-and-swap means another request rotated this token in the
        // meantime; the second look judges the token as the replay it now is.
        for _ in 0..2 {
            let record = self
                .store
                .get_refresh(&hash)
                .await?
                .ok_or(AppError::InvalidRefreshToken)?;
            let now = self.clock.now();
            let token = match record.rotated_at {
                None => PresentedToken::Current,
                Some(rotated_at) => PresentedToken::Rotated {
                    rotated_at,
                    successor_is_current: record.successor_is_current,
                },
            };
            match decide(&token, &record.session.state, now, retry_window) {
                RefreshDecision::Rotate => {
                    if let Some(tokens) = self.rotate(presented, &record, ctx, retry_window).await?
                    {
                        return Ok(tokens);
                    }
                }
                RefreshDecision::ReplaySuccessor => {
                    let successor = record
                        .sealed_successor
                        .as_deref()
                        .and_then(|s| open_successor(presented, s));
                    return match successor {
                        Some(successor) => Ok(self.tokens_for(&record.session, successor)),
                        None => self.reuse_detected(&record, ctx).await,
                    };
                }
                RefreshDecision::Reuse => return self.reuse_detected(&record, ctx).await,
                RefreshDecision::Revoked(_) => return Err(AppError::SessionRevoked),
                RefreshDecision::Expired => return Err(AppError::SessionExpired),
            }
        }
        Err(AppError::Internal(
            "refresh did not settle after a lost rotation".into(),
        ))
    }

    /// The common case in one store round trip: the presented token is its session's
    /// current one and the session is live, which is exactly when `decide` says `Rotate`.
    /// `None` when it is anything else: nothing was written, and the caller reads the
    /// token and judges it (reuse, retry, revoked, expired, unknown).
    async fn rotate_current(
        &self,
        presented: &RefreshToken,
        ctx: &RequestContext,
        retry_window: Duration,
    ) -> Result<Option<Tokens>, AppError> {
        let now = self.clock.now();
        let successor = RefreshToken::from_random(random()?);
        let rotation = CurrentRotation {
            presented: presented.hash(),
            successor: successor.hash(),
            sealed_successor: (retry_window > Duration::ZERO)
                .then(|| seal_successor(presented, &successor)),
            seals_expire_before: now - self.longest_retry_window(),
            now,
            idle_deadline_cap: now + self.settings.lifetimes.idle,
            ip: ctx.ip,
            user_agent: ctx.user_agent.clone(),
        };
        let Some(session) = self.store.rotate_current(&rotation).await? else {
            return Ok(None);
        };
        self.rotated(&session);
        Ok(Some(self.tokens_for(&session, successor)))
    }

    /// A seal is cleared once no caller could still replay it: the longest window any
    /// presentation is judged by, whichever caller made the seal.
    fn longest_retry_window(&self) -> Duration {
        self.settings.refresh_retry_window.max(BROWSER_RETRY_WINDOW)
    }

    /// A rotation moved the session's idle deadline later and changed its last-seen
    /// fields. Only this node's copy is dropped, nothing is published: a copy elsewhere
    /// still holds the earlier deadline, and a cached copy that no longer looks live is
    /// read again before it is believed (`live_session`), so it can never keep a session
    /// alive longer, only send a node back to the store once. Publishing every rotation
    /// would cost a Redis round trip on the hottest write path for nothing.
    fn rotated(&self, session: &SessionRecord) {
        self.liveness.invalidate(&[session.state.id]);
    }

    async fn rotate(
        &self,
        presented: &RefreshToken,
        record: &RefreshRecord,
        ctx: &RequestContext,
        retry_window: Duration,
    ) -> Result<Option<Tokens>, AppError> {
        let now = self.clock.now();
        let successor = RefreshToken::from_random(random()?);
        let state = &record.session.state;
        let swap = RefreshSwap {
            session_id: state.id,
            presented: presented.hash(),
            successor: successor.hash(),
            sealed_successor: (retry_window > Duration::ZERO)
                .then(|| seal_successor(presented, &successor)),
            // Past the window a seal can never be replayed (`decide`), only abused.
            seals_expire_before: now - self.longest_retry_window(),
            now,
            idle_expires_at: self
                .settings
                .lifetimes
                .idle_deadline(now, state.absolute_expires_at),
            ip: ctx.ip,
            user_agent: ctx.user_agent.clone(),
        };
        match self.store.swap_refresh(&swap).await? {
            SwapOutcome::Won => {
                self.rotated(&record.session);
                Ok(Some(self.tokens_for(&record.session, successor)))
            }
            SwapOutcome::Lost => Ok(None),
        }
    }

    fn tokens_for(&self, s: &SessionRecord, refresh_token: RefreshToken) -> Tokens {
        let now = self.clock.now();
        // `auth_time` is the latest authentication: a step-up counts.
        let auth_time = s
            .mfa_verified_at
            .map_or(s.auth_time, |m| m.max(s.auth_time));
        let (access_token, expires_in) =
            self.access_token(s.state.user_id, s.state.id, s.assurance, auth_time, now);
        Tokens {
            access_token,
            expires_in,
            refresh_token,
            session_id: s.state.id,
            device_token: None,
        }
    }

    async fn reuse_detected(
        &self,
        record: &RefreshRecord,
        ctx: &RequestContext,
    ) -> Result<Tokens, AppError> {
        let state = &record.session.state;
        let now = self.clock.now();
        let revoked_now = self
            .store
            .revoke_session(state.id, RevokeReason::RefreshTokenReused, now)
            .await?;
        if revoked_now {
            self.revoked(&[state.id]).await;
        }
        if revoked_now {
            tracing::warn!(
                user_id = %state.user_id,
                session_id = %state.id,
                generation = record.generation,
                "refresh token reuse detected; session revoked"
            );
            let detail = serde_json::json!({
                "reason": RevokeReason::RefreshTokenReused.as_str(),
                "generation": record.generation,
                "device_id": record.session.device_id.as_str(),
            });
            match self.store.get_user(state.user_id).await? {
                Some(user) => {
                    let shown = device_shown(&record.session);
                    self.record_notified(
                        &user,
                        EventKind::RefreshTokenReused,
                        ctx,
                        Some(state.id),
                        detail,
                        NoticeContent {
                            shown,
                            secret: None,
                        },
                    )
                    .await?
                }
                None => {
                    self.record(
                        state.user_id,
                        EventKind::RefreshTokenReused,
                        ctx,
                        Some(state.id),
                        detail,
                    )
                    .await?
                }
            }
        }
        Err(AppError::RefreshTokenReused)
    }
}
