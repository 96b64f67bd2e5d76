//! The store ports, implemented once for every backend.
//!
//! Each backend has query modules `users`, `sessions`, `events`, `keys`, `mfa`, `purge`,
//! `outbox`, `resets` and `audit` whose
//! functions share names and signatures across dialects and return `sqlx` errors; the
//! trait methods only choose the pool (reads may go to a reader pool) and map the error
//! through the backend's one `store_error`. Writing that layer once keeps the two
//! backends from drifting apart in anything but their SQL.

macro_rules! impl_store_ports {
    ($store:ty, read = $read:ident, write = $write:ident) => {
        use ::tessera_app::ports as __p;

        impl __p::UserStore for $store {
            async fn insert_user(&self, user: &__p::NewUser) -> __p::StoreResult<()> {
                users::insert(&self.$write, user).await.map_err(store_error)
            }

            async fn get_user(
                &self,
                id: ::tessera_core::ids::UserId,
            ) -> __p::StoreResult<Option<__p::UserRecord>> {
                users::get(&self.$read, id).await.map_err(store_error)
            }

            async fn get_user_by_email(
                &self,
                email: &::tessera_core::Email,
            ) -> __p::StoreResult<Option<__p::UserRecord>> {
                users::get_by_email(&self.$read, email)
                    .await
                    .map_err(store_error)
            }

            async fn swap_password_hash(
                &self,
                id: ::tessera_core::ids::UserId,
                expected: &::tessera_core::password::PasswordHash,
                new: &::tessera_core::password::PasswordHash,
                now: ::time::OffsetDateTime,
            ) -> __p::StoreResult<bool> {
                users::swap_password_hash(&self.$write, id, expected, new, now)
                    .await
                    .map_err(store_error)
            }

            async fn swap_user_disabled(
                &self,
                id: ::tessera_core::ids::UserId,
                disabled_at: Option<::time::OffsetDateTime>,
                now: ::time::OffsetDateTime,
            ) -> __p::StoreResult<bool> {
                users::swap_disabled(&self.$write, id, disabled_at, now)
                    .await
                    .map_err(store_error)
            }

            async fn list_roles(
                &self,
                id: ::tessera_core::ids::UserId,
            ) -> __p::StoreResult<Vec<::tessera_core::ids::Role>> {
                users::list_roles(&self.$read, id)
                    .await
                    .map_err(store_error)
            }

            async fn replace_roles(
                &self,
                id: ::tessera_core::ids::UserId,
                roles: &[::tessera_core::ids::Role],
            ) -> __p::StoreResult<()> {
                users::replace_roles(&self.$write, id, roles)
                    .await
                    .map_err(store_error)
            }

            async fn insert_role(
                &self,
                id: ::tessera_core::ids::UserId,
                role: &::tessera_core::ids::Role,
            ) -> __p::StoreResult<()> {
                users::insert_role(&self.$write, id, role)
                    .await
                    .map_err(store_error)
            }
        }

        impl __p::SessionStore for $store {
            async fn insert_session(
                &self,
                session: &__p::NewSession,
            ) -> __p::StoreResult<__p::InsertedSession> {
                sessions::insert(&self.$write, session)
                    .await
                    .map_err(store_error)
            }

            async fn get_session(
                &self,
                id: ::tessera_core::ids::SessionId,
            ) -> __p::StoreResult<Option<__p::SessionRecord>> {
                sessions::get(&self.$read, id).await.map_err(store_error)
            }

            async fn get_refresh(
                &self,
                hash: &::tessera_core::secret::TokenHash,
            ) -> __p::StoreResult<Option<__p::RefreshRecord>> {
                sessions::get_refresh(&self.$read, hash)
                    .await
                    .map_err(store_error)
            }

            async fn swap_refresh(
                &self,
                swap: &__p::RefreshSwap,
            ) -> __p::StoreResult<__p::SwapOutcome> {
                sessions::swap_refresh(&self.$write, swap)
                    .await
                    .map_err(store_error)
            }

            async fn rotate_current(
                &self,
                rotation: &__p::CurrentRotation,
            ) -> __p::StoreResult<Option<__p::SessionRecord>> {
                sessions::rotate_current(&self.$write, rotation)
                    .await
                    .map_err(store_error)
            }

            async fn revoke_session(
                &self,
                id: ::tessera_core::ids::SessionId,
                reason: ::tessera_core::session::RevokeReason,
                now: ::time::OffsetDateTime,
            ) -> __p::StoreResult<bool> {
                sessions::revoke(&self.$write, id, reason, now)
                    .await
                    .map_err(store_error)
            }

            async fn revoke_user_sessions(
                &self,
                user: ::tessera_core::ids::UserId,
                keep: Option<::tessera_core::ids::SessionId>,
                reason: ::tessera_core::session::RevokeReason,
                now: ::time::OffsetDateTime,
            ) -> __p::StoreResult<Vec<::tessera_core::ids::SessionId>> {
                sessions::revoke_for_user(&self.$write, user, keep, reason, now)
                    .await
                    .map_err(store_error)
            }

            async fn list_sessions(
                &self,
                user: ::tessera_core::ids::UserId,
                now: ::time::OffsetDateTime,
            ) -> __p::StoreResult<Vec<__p::SessionRecord>> {
                sessions::list_live(&self.$read, user, now)
                    .await
                    .map_err(store_error)
            }
        }

        impl __p::EventStore for $store {
            async fn insert_event(
                &self,
                event: &__p::SecurityEvent,
                notice: Option<&__p::Notice>,
            ) -> __p::StoreResult<()> {
                events::insert(&self.$write, event, notice)
                    .await
                    .map_err(store_error)
            }

            async fn list_events(
                &self,
                user: ::tessera_core::ids::UserId,
                limit: u32,
            ) -> __p::StoreResult<Vec<__p::SecurityEvent>> {
                events::list(&self.$read, user, limit)
                    .await
                    .map_err(store_error)
            }
        }

        impl __p::KeyStore for $store {
            async fn insert_signing_key(
                &self,
                key: &__p::StoredSigningKey,
            ) -> __p::StoreResult<()> {
                keys::insert(&self.$write, key).await.map_err(store_error)
            }

            async fn list_signing_keys(&self) -> __p::StoreResult<Vec<__p::StoredSigningKey>> {
                keys::list(&self.$read).await.map_err(store_error)
            }

            async fn swap_sealed_seed(
                &self,
                kid: &::tessera_core::ids::KeyId,
                expected: &[u8],
                new: &[u8],
            ) -> __p::StoreResult<bool> {
                keys::swap_sealed_seed(&self.$write, kid, expected, new)
                    .await
                    .map_err(store_error)
            }
        }

        impl __p::MfaStore for $store {
            async fn get_mfa(
                &self,
                user: ::tessera_core::ids::UserId,
            ) -> __p::StoreResult<Option<__p::MfaRecord>> {
                mfa::get(&self.$read, user).await.map_err(store_error)
            }

            async fn replace_pending_totp(
                &self,
                user: ::tessera_core::ids::UserId,
                sealed: &[u8],
                now: ::time::OffsetDateTime,
            ) -> __p::StoreResult<()> {
                mfa::replace_pending(&self.$write, user, sealed, now)
                    .await
                    .map_err(store_error)
            }

            async fn enable_totp(
                &self,
                user: ::tessera_core::ids::UserId,
                accepted_step: i64,
                codes: &[::tessera_core::mfa::recovery::RecoveryCodeHash],
                now: ::time::OffsetDateTime,
            ) -> __p::StoreResult<bool> {
                mfa::enable(&self.$write, user, accepted_step, codes, now)
                    .await
                    .map_err(store_error)
            }

            async fn swap_totp_step(
                &self,
                user: ::tessera_core::ids::UserId,
                step: i64,
            ) -> __p::StoreResult<bool> {
                mfa::swap_step(&self.$write, user, step)
                    .await
                    .map_err(store_error)
            }

            async fn use_recovery_code(
                &self,
                user: ::tessera_core::ids::UserId,
                code: &::tessera_core::mfa::recovery::RecoveryCodeHash,
                now: ::time::OffsetDateTime,
            ) -> __p::StoreResult<bool> {
                mfa::use_recovery_code(&self.$write, user, code, now)
                    .await
                    .map_err(store_error)
            }

            async fn swap_recovery_codes(
                &self,
                user: ::tessera_core::ids::UserId,
                enabled_by: ::time::OffsetDateTime,
                codes: &[::tessera_core::mfa::recovery::RecoveryCodeHash],
                now: ::time::OffsetDateTime,
            ) -> __p::StoreResult<bool> {
                mfa::swap_recovery_codes(&self.$write, user, enabled_by, codes, now)
                    .await
                    .map_err(store_error)
            }

            async fn purge_mfa(&self, user: ::tessera_core::ids::UserId) -> __p::StoreResult<bool> {
                mfa::purge(&self.$write, user).await.map_err(store_error)
            }

            async fn list_sealed_totp(&self) -> __p::StoreResult<Vec<__p::SealedTotp>> {
                mfa::list_sealed(&self.$read).await.map_err(store_error)
            }

            async fn swap_sealed_totp(
                &self,
                user: ::tessera_core::ids::UserId,
                expected_secret: Option<&[u8]>,
                new_secret: Option<&[u8]>,
                expected_pending: Option<&[u8]>,
                new_pending: Option<&[u8]>,
            ) -> __p::StoreResult<bool> {
                mfa::swap_sealed(
                    &self.$write,
                    user,
                    expected_secret,
                    new_secret,
                    expected_pending,
                    new_pending,
                )
                .await
                .map_err(store_error)
            }

            async fn insert_mfa_challenge(
                &self,
                challenge: &__p::MfaChallenge,
            ) -> __p::StoreResult<()> {
                mfa::insert_challenge(&self.$write, challenge)
                    .await
                    .map_err(store_error)
            }

            async fn get_mfa_challenge(
                &self,
                hash: &::tessera_core::secret::TokenHash,
                now: ::time::OffsetDateTime,
            ) -> __p::StoreResult<Option<__p::MfaChallenge>> {
                mfa::get_challenge(&self.$read, hash, now)
                    .await
                    .map_err(store_error)
            }

            async fn purge_mfa_challenges(
                &self,
                user: ::tessera_core::ids::UserId,
            ) -> __p::StoreResult<u64> {
                mfa::purge_challenges(&self.$write, user)
                    .await
                    .map_err(store_error)
            }

            async fn consume_mfa_challenge(
                &self,
                hash: &::tessera_core::secret::TokenHash,
                now: ::time::OffsetDateTime,
            ) -> __p::StoreResult<bool> {
                mfa::consume_challenge(&self.$write, hash, now)
                    .await
                    .map_err(store_error)
            }

            async fn record_session_mfa(
                &self,
                session: ::tessera_core::ids::SessionId,
                now: ::time::OffsetDateTime,
            ) -> __p::StoreResult<bool> {
                sessions::record_mfa(&self.$write, session, now)
                    .await
                    .map_err(store_error)
            }
        }

        impl __p::RetentionStore for $store {
            async fn purge_expired(
                &self,
                cutoffs: &__p::PurgeCutoffs,
                batch: u32,
            ) -> __p::StoreResult<__p::PurgeReport> {
                purge::expired(&self.$write, cutoffs, batch)
                    .await
                    .map_err(store_error)
            }
        }

        impl __p::OutboxStore for $store {
            async fn claim_deliveries(
                &self,
                now: ::time::OffsetDateTime,
                lease: ::time::Duration,
                limit: u32,
                channels: &[String],
            ) -> __p::StoreResult<Vec<__p::Delivery>> {
                outbox::claim(&self.$write, now, lease, limit, channels)
                    .await
                    .map_err(store_error)
            }

            async fn settle_delivery(
                &self,
                id: ::tessera_core::ids::NotificationId,
                channel: &str,
                outcome: &__p::DeliveryOutcome,
            ) -> __p::StoreResult<()> {
                outbox::settle(&self.$write, id, channel, outcome)
                    .await
                    .map_err(store_error)
            }

            async fn outbox_backlog(&self) -> __p::StoreResult<__p::OutboxBacklog> {
                outbox::backlog(&self.$read).await.map_err(store_error)
            }

            async fn list_sealed_outbox_secrets(
                &self,
            ) -> __p::StoreResult<Vec<__p::SealedOutboxSecret>> {
                outbox::list_sealed(&self.$read).await.map_err(store_error)
            }

            async fn swap_sealed_outbox_secret(
                &self,
                id: ::tessera_core::ids::NotificationId,
                channel: &str,
                expected: &[u8],
                new: &[u8],
            ) -> __p::StoreResult<bool> {
                outbox::swap_sealed(&self.$write, id, channel, expected, new)
                    .await
                    .map_err(store_error)
            }
        }

        impl __p::ResetStore for $store {
            async fn replace_reset_token(
                &self,
                user: ::tessera_core::ids::UserId,
                hash: &::tessera_core::secret::TokenHash,
                created_at: ::time::OffsetDateTime,
                expires_at: ::time::OffsetDateTime,
            ) -> __p::StoreResult<()> {
                resets::replace(&self.$write, user, hash, created_at, expires_at)
                    .await
                    .map_err(store_error)
            }

            async fn take_reset_token(
                &self,
                hash: &::tessera_core::secret::TokenHash,
                now: ::time::OffsetDateTime,
            ) -> __p::StoreResult<Option<__p::PendingReset>> {
                resets::take(&self.$write, hash, now)
                    .await
                    .map_err(store_error)
            }
        }

        impl __p::AuditStore for $store {
            async fn audit_chains(
                &self,
                after: Option<::tessera_core::ids::UserId>,
                limit: u32,
            ) -> __p::StoreResult<Vec<__p::ChainBounds>> {
                audit::chains(&self.$read, after, limit)
                    .await
                    .map_err(store_error)
            }

            async fn unchained_event(&self) -> __p::StoreResult<Option<__p::SecurityEvent>> {
                audit::unchained(&self.$read).await.map_err(store_error)
            }

            async fn audit_events(
                &self,
                user: ::tessera_core::ids::UserId,
                after_index: i64,
                limit: u32,
            ) -> __p::StoreResult<Vec<__p::ChainedEvent>> {
                audit::events(&self.$read, user, after_index, limit)
                    .await
                    .map_err(store_error)
            }
        }

        impl __p::Store for $store {
            async fn ping(&self) -> __p::StoreResult<()> {
                ::sqlx::query("SELECT 1")
                    .execute(&self.$read)
                    .await
                    .map(drop)
                    .map_err(store_error)
            }
        }
    };
}
