//! `App`: the use cases' shared context (store, clock, notifier, keys, settings) and the
//! small steps several use cases share (issuing tokens, recording events).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tessera_core::defaults;
use tessera_core::event::EventKind;
use tessera_core::ids::{EventId, NotificationId, SessionId, UserId};
use tessera_core::jwt::{AccessClaims, Assurance};
use tessera_core::known_device::DeviceTokenKeys;
use tessera_core::password::{self, Password, PasswordHash};
use tessera_core::policy::StepUpPolicy;
use tessera_core::ratelimit::Policy;
use tessera_core::secret::RefreshToken;
use tessera_core::session::Lifetimes;
use time::{Duration, OffsetDateTime};

use crate::error::{AppError, random};
use crate::hashing::{HashPool, HashingSettings};
use crate::keys::KeyRing;
use crate::liveness::{CacheStats, DEFAULT_MAX_ENTRIES, LivenessCache};
use crate::ports::{
    BusHealth, Changes, Clock, LimiterHealth, Notice, RateLimiter, RevocationBus, RevocationSink,
    SecurityEvent, Store, UserRecord,
};

/// Tunables of the use cases (the binary builds these from configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `iss` claim (and, later, the otpauth issuer).
    pub issuer: String,
    /// The `aud` claim.
    pub audience: String,
    pub access_token_ttl: Duration,
    pub lifetimes: Lifetimes,
    /// Zero is strict rotation.
    pub refresh_retry_window: Duration,
    pub limits: Limits,
    /// Which actions need which role and how recent an MFA (`/v1/authorize`, admin API).
    pub step_up: StepUpPolicy,
    /// How long a node may answer `authenticate` from its liveness cache without reading
    /// the session again; zero turns the cache off. The cache runs only with a revocation
    /// bus (see `App::build`).
    pub session_cache_ttl: Duration,
    /// The password-hashing pool, whose wait also bounds how long an attempt waits for
    /// the attempts in flight on its rate-limit budget.
    pub hashing: HashingSettings,
    /// How long ended sessions and events are kept, and the purge batch size.
    pub retention: crate::retention::Retention,
    /// The channels every notification is queued for, one outbox row each (`"smtp"`,
    /// `"webhook"`, `"log"`); the outbox worker holds the channels by these names.
    pub notification_channels: Vec<String>,
}

/// Rate-limit policies (API.md "Rate limiting").
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub login_per_ip: Policy,
    pub login_per_account: Policy,
    /// A login presenting a valid known-device token, per token (instead of the two above).
    pub login_per_device: Policy,
    /// Password checks from a live session (password change, factor binding), per session.
    pub password_per_session: Policy,
    pub mfa_per_user: Policy,
    pub register_per_ip: Policy,
    /// Password-reset requests per client network, and per address asked for.
    pub reset_per_ip: Policy,
    pub reset_per_account: Policy,
    /// Notices of one kind sent to one user (see `record_notified`).
    pub notices_per_user_kind: Policy,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            login_per_ip: Policy::LOGIN_PER_IP,
            login_per_account: Policy::LOGIN_PER_ACCOUNT,
            login_per_device: Policy::LOGIN_PER_DEVICE,
            password_per_session: Policy::PASSWORD_PER_SESSION,
            mfa_per_user: Policy::MFA_PER_USER,
            register_per_ip: Policy::REGISTER_PER_IP,
            reset_per_ip: Policy::RESET_PER_IP,
            reset_per_account: Policy::RESET_PER_ACCOUNT,
            notices_per_user_kind: Policy::NOTICES_PER_USER_KIND,
        }
    }
}

/// The built-in defaults (`tessera_core::defaults` and the types' own), which the binary's
/// configuration starts from.
impl Default for Settings {
    fn default() -> Self {
        Self {
            issuer: format!("http://{}", defaults::LISTEN),
            audience: defaults::AUDIENCE.to_owned(),
            access_token_ttl: defaults::ACCESS_TOKEN_TTL,
            lifetimes: Lifetimes::default(),
            refresh_retry_window: defaults::REFRESH_RETRY_WINDOW,
            limits: Limits::default(),
            step_up: StepUpPolicy::defaults(),
            session_cache_ttl: defaults::SESSION_CACHE_TTL,
            hashing: HashingSettings::defaults(),
            retention: crate::retention::Retention::default(),
            notification_channels: vec!["log".to_owned()],
        }
    }
}

/// Where a request came from, as recorded on sessions and events.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl RequestContext {
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        // A user agent is display data; cap it so a hostile client cannot bloat rows.
        let user_agent = user_agent.map(|ua| ua.chars().take(512).collect());
        Self { ip, user_agent }
    }
}

/// What a successful login or refresh hands back. `Debug` shows no token.
pub struct Tokens {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: RefreshToken,
    pub session_id: SessionId,
    /// A fresh known-device token, on a login (not on a refresh).
    pub device_token: Option<String>,
}

pub struct App<S> {
    pub(crate) store: S,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) limiter: Arc<dyn RateLimiter>,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) settings: Arc<Settings>,
    /// Verified against when the email is unknown, so both answers cost one hash.
    pub(crate) dummy_hash: Arc<PasswordHash>,
    /// Every Argon2 call runs here, never on a thread of its own.
    pub(crate) hasher: Arc<HashPool>,
    /// Signs and verifies known-device tokens.
    pub(crate) device_keys: Arc<DeviceTokenKeys>,
    /// Argon2 verifications run: what the rate limits are there to bound.
    pub(crate) password_checks: Arc<AtomicU64>,
    /// How long an unknown email's failed login is held (see `pacing`).
    pub(crate) failure_pace: Arc<crate::pacing::FailurePace>,
    /// Session records read recently (see `liveness`); off without a bus.
    pub(crate) liveness: Arc<LivenessCache>,
    /// How revocations reach the other nodes; `None`: this node is alone with its cache off.
    pub(crate) bus: Option<Arc<dyn RevocationBus>>,
    /// The outbox worker's counters and wake-up bell (see `outbox`).
    pub(crate) outbox: Arc<crate::outbox::OutboxShared>,
    /// What requests left running after their answer; a stopping server waits for it.
    pub(crate) background: crate::background::Background,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token)
            .field("session_id", &self.session_id)
            .field(
                "device_token",
                &self.device_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl<S: Clone> Clone for App<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            clock: Arc::clone(&self.clock),
            limiter: Arc::clone(&self.limiter),
            keys: Arc::clone(&self.keys),
            settings: Arc::clone(&self.settings),
            dummy_hash: Arc::clone(&self.dummy_hash),
            hasher: Arc::clone(&self.hasher),
            device_keys: Arc::clone(&self.device_keys),
            password_checks: Arc::clone(&self.password_checks),
            failure_pace: Arc::clone(&self.failure_pace),
            liveness: Arc::clone(&self.liveness),
            bus: self.bus.clone(),
            outbox: Arc::clone(&self.outbox),
            background: self.background.clone(),
        }
    }
}

impl<S: Store> App<S> {
    /// With a revocation `bus` (and a non-zero `settings.session_cache_ttl`) the session
    /// liveness cache is on: it subscribes to the bus here (so call this inside the
    /// runtime) and serves only while the bus says the subscription is up. Without a bus
    /// the cache is off and every `authenticate` reads the session: nothing would tell
    /// this node about a revocation made by another process on the same database.
    pub async fn build(
        store: S,
        clock: Arc<dyn Clock>,
        limiter: Arc<dyn RateLimiter>,
        bus: Option<Arc<dyn RevocationBus>>,
        master_keys: tessera_core::crypto::MasterKeyRing,
        settings: Settings,
    ) -> Result<Self, AppError> {
        let device_keys = DeviceTokenKeys::derive(&master_keys);
        let keys = KeyRing::load(&store, master_keys, clock.now()).await?;
        let hasher = Arc::new(HashPool::start(settings.hashing)?);
        let dummy = Password::presented(hex(&random::<16>()?))
            .map_err(|e| AppError::Internal(e.to_string().into()))?;
        let dummy_hash = hash_with(&hasher, dummy).await?;
        let liveness = Arc::new(match &bus {
            Some(_) if settings.session_cache_ttl > Duration::ZERO => {
                LivenessCache::new(settings.session_cache_ttl, DEFAULT_MAX_ENTRIES)
            }
            _ => LivenessCache::off(),
        });
        if let Some(bus) = &bus {
            bus.subscribe(Arc::clone(&liveness) as Arc<dyn RevocationSink>);
        }
        let outbox = Arc::new(crate::outbox::OutboxShared::new(
            &settings.notification_channels,
        ));
        Ok(Self {
            outbox,
            background: crate::background::Background::default(),
            store,
            clock,
            limiter,
            keys: Arc::new(keys),
            settings: Arc::new(settings),
            dummy_hash: Arc::new(dummy_hash),
            hasher,
            device_keys: Arc::new(device_keys),
            password_checks: Arc::new(AtomicU64::new(0)),
            failure_pace: Arc::default(),
            liveness,
            bus,
        })
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The work requests left running (see `background`).
    pub fn background(&self) -> &crate::background::Background {
        &self.background
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The public keys, as served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        self.keys.jwks()
    }

    pub async fn ready(&self) -> Result<(), AppError> {
        Ok(self.store.ping().await?)
    }

    /// Whether rate limits are shared across nodes right now (see `RateLimiter::health`).
    pub fn limiter_health(&self) -> LimiterHealth {
        self.limiter.health()
    }

    /// Asks the limiter's shared backend now (for readiness; see `RateLimiter::probe`).
    pub async fn probe_limiter(&self) -> LimiterHealth {
        self.limiter.probe().await
    }

    /// Password verifications (Argon2) run since start.
    pub fn password_checks(&self) -> u64 {
        self.password_checks.load(Ordering::Relaxed)
    }

    /// Verifies a password on the hashing pool, counting the check.
    pub(crate) async fn check_password(
        &self,
        password: Password,
        hash: PasswordHash,
    ) -> Result<bool, AppError> {
        self.password_checks.fetch_add(1, Ordering::Relaxed);
        self.hasher
            .run(move || password::verify(&password, &hash))
            .await
    }

    /// Hashes a new password on the hashing pool.
    pub(crate) async fn hash_password(&self, password: Password) -> Result<PasswordHash, AppError> {
        hash_with(&self.hasher, password).await
    }

    /// Requests waiting for a hashing worker now.
    pub fn hashing_queue(&self) -> usize {
        self.hasher.waiting()
    }

    /// Decisions the limiter had to make per node because its shared backend was down.
    pub fn limiter_fallback_decisions(&self) -> u64 {
        self.limiter.fallback_decisions()
    }

    /// Runs after every revocation the store committed, whatever its reason: the one place
    /// where other copies of session liveness (caches, other nodes) learn of it.
    pub(crate) async fn revoked(&self, sessions: &[SessionId]) {
        self.session_changed(sessions).await;
    }

    /// Drops these sessions from this node's cache and tells the other nodes to do the
    /// same: after a revocation, and after any write that changes what `authenticate`
    /// hands out (the MFA time). A rotation, which only moves the idle deadline later,
    /// drops this node's copy alone (`refresh::rotated`).
    pub(crate) async fn session_changed(&self, sessions: &[SessionId]) {
        if sessions.is_empty() {
            return;
        }
        self.liveness.invalidate(sessions);
        if let Some(bus) = &self.bus {
            bus.publish(sessions).await;
        }
    }

    /// Drops the user's view (roles, MFA state; see `UserView`) from this node's cache and
    /// tells the other nodes to do the same. The one call every write that changes what
    /// the view holds makes after it commits: a role granted or removed, TOTP enabled or
    /// removed, a recovery code used or the codes replaced, the password changed or reset.
    pub(crate) async fn user_changed(&self, user: UserId) {
        let users = [user];
        self.liveness.invalidate_users(&users);
        if let Some(bus) = &self.bus {
            bus.publish_changes(Changes {
                sessions: &[],
                users: &users,
            })
            .await;
        }
    }

    /// The liveness cache's counters for sessions (hits, misses, bypasses, flushes).
    pub fn session_cache_stats(&self) -> CacheStats {
        self.liveness.stats()
    }

    /// The liveness cache's counters for user views.
    pub fn user_view_cache_stats(&self) -> CacheStats {
        self.liveness.view_stats()
    }

    /// Whether revocations from other nodes reach this one right now; `None` without a bus.
    pub fn revocation_bus_health(&self) -> Option<BusHealth> {
        self.bus.as_ref().map(|b| b.health())
    }

    /// Revocation messages that could not be published, since start.
    pub fn revocation_publish_failures(&self) -> u64 {
        self.bus.as_ref().map_or(0, |b| b.publish_failures())
    }

    pub(crate) fn access_token(
        &self,
        user: UserId,
        session: SessionId,
        assurance: Assurance,
        auth_time: OffsetDateTime,
        now: OffsetDateTime,
    ) -> (String, i64) {
        let ttl = self.settings.access_token_ttl;
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub: user,
            sid: session,
            iat: now.unix_timestamp(),
            exp: (now + ttl).unix_timestamp(),
            auth_time: auth_time.unix_timestamp(),
            amr: assurance.amr(),
            acr: assurance.acr().to_owned(),
        };
        (self.keys.sign(&claims), ttl.whole_seconds())
    }

    pub(crate) async fn record(
        &self,
        user_id: UserId,
        kind: EventKind,
        ctx: &RequestContext,
        session_id: Option<SessionId>,
        detail: serde_json::Value,
    ) -> Result<(), AppError> {
        let event = self.event(user_id, kind, ctx, session_id, detail)?;
        self.store.insert_event(&event, None).await?;
        Ok(())
    }

    /// Records a `session_revoked` event for each of `sessions`, without a notice of its
    /// own: for revocations that follow from an event whose notice already tells the user.
    pub(crate) async fn record_revocations(
        &self,
        user_id: UserId,
        sessions: &[SessionId],
        reason: tessera_core::session::RevokeReason,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        for sid in sessions {
            self.record(
                user_id,
                EventKind::SessionRevoked,
                ctx,
                Some(*sid),
                serde_json::json!({"reason": reason.as_str()}),
            )
            .await?;
        }
        Ok(())
    }

    /// Records the event and, in the same transaction, queues its notification to `user`
    /// on every channel. `shown` is what the message says beyond the event (device name,
    /// codes left); `secret` (the reset link's token) travels sealed and leaves the store
    /// with the delivered row.
    pub(crate) async fn record_notified(
        &self,
        user: &UserRecord,
        kind: EventKind,
        ctx: &RequestContext,
        session_id: Option<SessionId>,
        detail: serde_json::Value,
        notice: NoticeContent<'_>,
    ) -> Result<(), AppError> {
        // A notice carrying a secret (the reset link) is one the user asked for, limited by
        // its own budget; were it withheld, the link it replaced would be dead and the new
        // one never sent.
        if notice.secret.is_none() && !self.notice_allowed(user.id, kind).await {
            // Still recorded (dashboard, audit trail), marked so a reader knows no message
            // went out for it.
            let mut detail = detail;
            if let Some(fields) = detail.as_object_mut() {
                fields.insert("notice".into(), "withheld".into());
            }
            let event = self.event(user.id, kind, ctx, session_id, detail)?;
            self.store.insert_event(&event, None).await?;
            return Ok(());
        }
        let event = self.event(user.id, kind, ctx, session_id, detail)?;
        let id = NotificationId::from_random(random()?);
        let sealed_secret = match notice.secret {
            Some(secret) => Some(self.keys.master().seal(
                random()?,
                NOTICE_SECRET_PURPOSE,
                &id.to_string(),
                secret.as_bytes(),
            )),
            None => None,
        };
        let notice = Notice {
            id,
            email: user.email.clone(),
            channels: self.settings.notification_channels.clone(),
            detail: notice.shown,
            sealed_secret,
        };
        self.store.insert_event(&event, Some(&notice)).await?;
        // A worker on this node sends it now rather than at its next poll.
        self.outbox.queued();
        Ok(())
    }

    fn event(
        &self,
        user_id: UserId,
        kind: EventKind,
        ctx: &RequestContext,
        session_id: Option<SessionId>,
        detail: serde_json::Value,
    ) -> Result<SecurityEvent, AppError> {
        Ok(SecurityEvent {
            id: EventId::from_random(random()?),
            user_id,
            kind,
            at: self.clock.now(),
            ip: ctx.ip,
            user_agent: ctx.user_agent.clone(),
            session_id,
            detail,
        })
    }
}

/// The device a notice is about, as the user named it (or as its client described it).
pub(crate) fn device_shown(session: &crate::ports::SessionRecord) -> serde_json::Value {
    serde_json::json!({
        "device_name": session.device_name.as_ref().map(|n| n.as_str()),
        "device_id": session.device_id.as_str(),
    })
}

/// The purpose a notification's secret is sealed under (its owner is the notification id).
pub const NOTICE_SECRET_PURPOSE: &str = "notification-secret";

/// What a notification carries beyond its event.
#[derive(Debug, Default)]
pub(crate) struct NoticeContent<'a> {
    pub(crate) shown: serde_json::Value,
    pub(crate) secret: Option<&'a str>,
}

impl NoticeContent<'_> {
    pub(crate) fn plain() -> Self {
        Self {
            shown: serde_json::json!({}),
            secret: None,
        }
    }
}

async fn hash_with(pool: &HashPool, password: Password) -> Result<PasswordHash, AppError> {
    let salt: [u8; 16] = random()?;
    pool.run(move || password::hash(&password, &salt))
        .await?
        .map_err(AppError::internal)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
