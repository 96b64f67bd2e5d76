//! Spending rate-limit budgets: reserve before checking anything, wait while the budget
//! is full only of attempts still being checked, settle each attempt (refund on success,
//! fail otherwise), and log a flood once.

use std::sync::Arc;

use tessera_core::Email;
use tessera_core::event::EventKind;
use tessera_core::ids::UserId;
use tessera_core::ratelimit::{Decision, LimitKey, Policy};

use crate::app::{App, RequestContext};
use crate::error::{AppError, random};
use crate::ports::{RateLimiter, Store, Ticket};

/// Attempts counted (pending) for one request. Settle it: `refund` on success, `keep`
/// on failure. Dropped unsettled (an error, a cancelled request), its attempts are
/// settled as failures in the background: a lost outcome is never a free attempt.
#[must_use = "a reservation is either refunded on success or kept as a failure"]
pub(crate) struct Reservations {
    limiter: Arc<dyn RateLimiter>,
    held: Vec<(LimitKey, Ticket)>,
}

impl Reservations {
    /// The attempt failed: its slots stay counted, as failures.
    pub(crate) async fn keep(mut self) {
        for (key, ticket) in std::mem::take(&mut self.held) {
            self.limiter.fail(&key, ticket).await;
        }
    }

    /// The attempt succeeded: only its own slots are given back; earlier failures stay.
    pub(crate) async fn refund(mut self) {
        for (key, ticket) in std::mem::take(&mut self.held) {
            self.limiter.release(&key, ticket).await;
        }
    }
}

impl Drop for Reservations {
    fn drop(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        let limiter = Arc::clone(&self.limiter);
        // Without a runtime the attempts still count as failures once their lease passes.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for (key, ticket) in held {
                    limiter.fail(&key, ticket).await;
                }
            });
        }
    }
}

/// Whose account a denial concerns, for the security event.
#[derive(Clone, Copy)]
pub(crate) enum Subject<'a> {
    Account(&'a Email),
    User(UserId),
    /// No account yet (registration): logged, recorded on no one.
    Anonymous,
}

/// How one pass over the budgets ended.
enum Pass {
    Held(Reservations),
    /// A budget is full only because attempts are in flight: try again shortly.
    Busy,
    Denied {
        key: LimitKey,
        policy: Policy,
        retry_after_secs: u64,
    },
}

/// The first pause between passes while a budget is busy, and the longest.
const FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);
const MAX_PAUSE: std::time::Duration = std::time::Duration::from_millis(25);

impl<S: Store> App<S> {
    /// Counts one attempt against each budget, in order, before any password or code is
    /// looked at. A budget full of failures refunds what this call counted (a refused
    /// attempt is not a failure), is recorded, and answers `RateLimited`. A budget full
    /// only because other attempts are still being checked waits for their outcome (all
    /// of this call's slots given back meanwhile, so waiters never hold each other up),
    /// bounded by the hashing pool's wait; past it the answer is `Overloaded`.
    pub(crate) async fn reserve(
        &self,
        budgets: &[(LimitKey, Policy)],
        subject: Subject<'_>,
        ctx: &RequestContext,
    ) -> Result<Reservations, AppError> {
        let deadline = tokio::time::Instant::now() + self.settings.hashing.wait;
        let mut pause = FIRST_PAUSE;
        loop {
            match self.reserve_pass(budgets).await? {
                Pass::Held(reservations) => return Ok(reservations),
                Pass::Denied {
                    key,
                    policy,
                    retry_after_secs,
                } => {
                    self.denied(&key, policy, retry_after_secs, subject, ctx)
                        .await?;
                    return Err(AppError::RateLimited {
                        kind: key.kind(),
                        retry_after_secs,
                        limit: policy.limit,
                        window_secs: policy.window.whole_seconds(),
                    });
                }
                Pass::Busy => {
                    if tokio::time::Instant::now() + pause > deadline {
                        return Err(AppError::overloaded());
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            }
        }
    }

    async fn reserve_pass(&self, budgets: &[(LimitKey, Policy)]) -> Result<Pass, AppError> {
        let now = self.clock.now();
        let mut held = Reservations {
            limiter: Arc::clone(&self.limiter),
            held: Vec::with_capacity(budgets.len()),
        };
        for (key, policy) in budgets {
            let ticket = Ticket(random()?);
            match self.limiter.reserve(key, *policy, now, ticket).await {
                Decision::Allow => held.held.push((key.clone(), ticket)),
                Decision::Busy => {
                    held.refund().await;
                    return Ok(Pass::Busy);
                }
                Decision::Deny { retry_after } => {
                    held.refund().await;
                    return Ok(Pass::Denied {
                        key: key.clone(),
                        policy: *policy,
                        retry_after_secs: Decision::retry_after_secs(retry_after),
                    });
                }
            }
        }
        Ok(Pass::Held(held))
    }

    /// The attempt succeeded: only its own slots are given back; earlier failures stay.
    pub(crate) async fn refund(&self, reservations: Reservations) {
        reservations.refund().await;
    }

    /// `check_password` for an attempt holding `reserved`. An overloaded hashing pool
    /// checked nothing, so the slots are given back before the error goes up: overload
    /// must never spend the caller's budget.
    pub(crate) async fn check_password_reserved(
        &self,
        password: tessera_core::password::Password,
        hash: tessera_core::password::PasswordHash,
        reserved: Reservations,
    ) -> Result<(bool, Reservations), AppError> {
        match self.check_password(password, hash).await {
            Ok(ok) => Ok((ok, reserved)),
            Err(e @ AppError::Overloaded { .. }) => {
                reserved.refund().await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Counts one failure on `key` if there is room for it, without waiting or refusing
    /// anything: for a failure decided on another budget that this one must also see.
    /// Whether there was room (also when no ticket could be drawn: nothing was counted).
    pub(crate) async fn charge(&self, key: &LimitKey, policy: Policy) -> bool {
        let Ok(bytes) = random() else {
            return true;
        };
        let ticket = Ticket(bytes);
        let room = self
            .limiter
            .reserve(key, policy, self.clock.now(), ticket)
            .await
            == Decision::Allow;
        if room {
            self.limiter.fail(key, ticket).await;
        }
        room
    }

    /// Spends one notice of `kind` to `user` if the hour's budget has one left. Anyone who
    /// can sign in to an account, including someone who registered another person's
    /// address, can trigger notices at will; without this every sign-in from a fresh
    /// device id would be one more email to that address. The first refusal in a window is
    /// logged (ids and kind only).
    pub(crate) async fn notice_allowed(&self, user: UserId, kind: EventKind) -> bool {
        let key = LimitKey::notices(user, kind);
        let policy = self.settings.limits.notices_per_user_kind;
        // Spent for the window whatever happens to the message.
        if self.charge(&key, policy).await {
            return true;
        }
        if self
            .limiter
            .first_denial(&key, policy.window, self.clock.now())
            .await
        {
            tracing::warn!(
                user_id = %user,
                kind = kind.as_str(),
                limit = policy.limit,
                window_secs = policy.window.whole_seconds(),
                "notice budget spent: further notices of this kind are recorded, not sent"
            );
        }
        false
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
            Subject::Anonymous => (None, None),
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
            Subject::Anonymous => None,
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
