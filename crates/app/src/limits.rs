//! Spending rate-limit budgets: reserve before checking anything, refund on success,
//! and log a flood once.

use tessera_core::Email;
use tessera_core::event::EventKind;
use tessera_core::ids::UserId;
use tessera_core::ratelimit::{Decision, LimitKey, Policy};

use crate::app::{App, RequestContext};
use crate::error::{AppError, random};
use crate::ports::{Store, Ticket};

/// Attempts counted for one request; refunded when the request succeeds.
#[must_use = "a reservation is either refunded on success or kept as a failure"]
pub(crate) struct Reservations(Vec<(LimitKey, Ticket)>);

impl Reservations {
    /// The attempt failed: its slots stay counted.
    pub(crate) fn keep(self) {}
}

/// Whose account a denial concerns, for the security event.
pub(crate) enum Subject<'a> {
    Account(&'a Email),
    User(UserId),
}

impl<S: Store> App<S> {
    /// Counts one attempt against each budget, in order. The first full budget refunds
    /// what this call counted (a refused attempt is not a failure), is recorded, and
    /// answers `RateLimited` — before any password or code is looked at.
    pub(crate) async fn reserve(
        &self,
        budgets: &[(LimitKey, Policy)],
        subject: Subject<'_>,
        ctx: &RequestContext,
    ) -> Result<Reservations, AppError> {
        let now = self.clock.now();
        let mut held = Vec::with_capacity(budgets.len());
        for (key, policy) in budgets {
            let ticket = Ticket(random()?);
            match self.limiter.reserve(key, *policy, now, ticket).await {
                Decision::Allow => held.push((key.clone(), ticket)),
                Decision::Deny { retry_after } => {
                    self.refund(Reservations(held)).await;
                    let retry_after_secs = Decision::retry_after_secs(retry_after);
                    self.denied(key, *policy, retry_after_secs, subject, ctx)
                        .await?;
                    return Err(AppError::RateLimited {
                        kind: key.kind(),
                        retry_after_secs,
                        limit: policy.limit,
                        window_secs: policy.window.whole_seconds(),
                    });
                }
            }
        }
        Ok(Reservations(held))
    }

    /// The attempt succeeded: only its own slots are given back; earlier failures stay.
    pub(crate) async fn refund(&self, reservations: Reservations) {
        for (key, ticket) in &reservations.0 {
            self.limiter.release(key, *ticket).await;
        }
    }

    async fn denied(
        &self,
        key: &LimitKey,
        policy: Policy,
        retry_after_secs: u64,
        subject: Subject<'_>,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let now = self.clock.now();
        let ip = ctx.ip.map(tessera_core::ratelimit::network_of);
        let (account, user) = match subject {
            Subject::Account(email) => (
                Some(tessera_core::ratelimit::account_hash(email.normalized())),
                None,
            ),
            Subject::User(id) => (None, Some(id)),
        };
        if !self.limiter.first_denial(key, policy.window, now).await {
            // Already reported in this window: a flood must not flood the log.
            tracing::debug!(
                kind = key.kind(),
                retry_after_secs,
                "rate limited (already reported in this window)"
            );
            return Ok(());
        }
        tracing::warn!(
            kind = key.kind(),
            account = account.as_deref().unwrap_or("-"),
            user_id = %user.map(|u| u.to_string()).unwrap_or_default(),
            ip = ip.as_deref().unwrap_or("-"),
            provider = "password",
            limit = policy.limit,
            window_secs = policy.window.whole_seconds(),
            retry_after_secs,
            "rate limit reached; further attempts are refused unchecked"
        );
        let owner = match subject {
            Subject::User(id) => Some(id),
            Subject::Account(email) => self.store.get_user_by_email(email).await?.map(|u| u.id),
        };
        if let Some(owner) = owner {
            let detail = serde_json::json!({
                "limit": key.kind(),
                "retry_after": retry_after_secs,
                "rate_limited": true,
            });
            self.record(owner, EventKind::LoginRateLimited, ctx, None, detail)
                .await?;
        }
        Ok(())
    }
}
