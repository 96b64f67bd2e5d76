//! Master-key rotation: re-seals every stored signing-key seed, every TOTP secret
//! (enabled and pending) and every secret a queued notification carries (a password-reset
//! link's token, waiting for its channel) that is not yet under the current master key.
//!
//! Values are opened with whichever loaded key they name (current or previous) and sealed
//! again under the current one. Each write is a compare-and-swap on the sealed bytes that
//! were read, so a concurrent change (a new TOTP setup, an enable, a reset, another
//! rotation) is never overwritten: the value is read again and retried a few times, then
//! left for the next run and counted as skipped. Running it again is harmless: values
//! already under the current key are not touched.

use tessera_core::ids::{KeyId, UserId};

use crate::app::{App, NOTICE_SECRET_PURPOSE};
use crate::error::{AppError, random};
use crate::keys::SEAL_PURPOSE as SIGNING_KEY_PURPOSE;
use crate::mfa::TOTP_PURPOSE;
use crate::ports::{SealedOutboxSecret, SealedTotp, Store};

/// How often one value is read again after losing its compare-and-swap.
const ATTEMPTS: usize = 3;

/// What one rotation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RekeyReport {
    /// Signing-key seeds re-sealed under the current master key.
    pub signing_keys: usize,
    /// TOTP secrets re-sealed (a user's enabled and pending secret count as two).
    pub totp_secrets: usize,
    /// Secrets of notifications still waiting in the outbox (one per channel's row): without
    /// this, removing the previous key would turn every reset email not yet sent into a
    /// dead row.
    pub outbox_secrets: usize,
    /// Values (a signing key, or one user's TOTP row) left as they were because concurrent
    /// writes kept winning the compare-and-swap; run the rotation again.
    pub skipped: usize,
    /// Values no loaded master key opens (sealed under a key that is not configured);
    /// they are left as they were.
    pub unreadable: usize,
}

impl RekeyReport {
    /// True when every stored secret is now under the current master key, so the
    /// previous keys may be removed.
    pub fn is_complete(&self) -> bool {
        self.skipped == 0 && self.unreadable == 0
    }
}

impl<S: Store> App<S> {
    /// Re-seals every signing-key seed, TOTP secret and queued notification secret not
    /// already under the current master key, and logs one line with the counts.
    pub async fn rotate_master_key(&self) -> Result<RekeyReport, AppError> {
        let mut report = RekeyReport::default();
        for key in self.store.list_signing_keys().await? {
            self.reseal_seed(&key.kid, key.sealed_seed, &mut report)
                .await?;
        }
        for row in self.store.list_sealed_totp().await? {
            self.reseal_totp(row, &mut report).await?;
        }
        for row in self.store.list_sealed_outbox_secrets().await? {
            self.reseal_outbox_secret(row, &mut report).await?;
        }
        tracing::info!(
            current_master_key = %self.keys.master().current().id_hex(),
            signing_keys = report.signing_keys,
            totp_secrets = report.totp_secrets,
            outbox_secrets = report.outbox_secrets,
            skipped = report.skipped,
            unreadable = report.unreadable,
            "master key rotation finished"
        );
        Ok(report)
    }

    async fn reseal_seed(
        &self,
        kid: &KeyId,
        mut sealed: Vec<u8>,
        report: &mut RekeyReport,
    ) -> Result<(), AppError> {
        for _ in 0..ATTEMPTS {
            let mut unreadable = 0;
            let Some(new) = self.resealed(
                Some(&sealed),
                SIGNING_KEY_PURPOSE,
                kid.as_str(),
                &mut unreadable,
            )?
            else {
                report.unreadable += unreadable;
                return Ok(());
            };
            if self.store.swap_sealed_seed(kid, &sealed, &new).await? {
                report.signing_keys += 1;
                return Ok(());
            }
            // Another writer changed it in between: start again from what is stored now.
            let stored = self.store.list_signing_keys().await?;
            match stored.into_iter().find(|k| &k.kid == kid) {
                Some(k) => sealed = k.sealed_seed,
                None => return Ok(()),
            }
        }
        tracing::warn!(
            kid = kid.as_str(),
            "signing key not re-sealed: concurrent changes kept winning"
        );
        report.skipped += 1;
        Ok(())
    }

    async fn reseal_totp(&self, row: SealedTotp, report: &mut RekeyReport) -> Result<(), AppError> {
        let user: UserId = row.user_id;
        let owner = user.to_string();
        let (mut secret, mut pending) = (row.sealed_secret, row.pending_sealed);
        for _ in 0..ATTEMPTS {
            let mut unreadable = 0;
            let new_secret =
                self.resealed(secret.as_deref(), TOTP_PURPOSE, &owner, &mut unreadable)?;
            let new_pending =
                self.resealed(pending.as_deref(), TOTP_PURPOSE, &owner, &mut unreadable)?;
            let changed = usize::from(new_secret.is_some()) + usize::from(new_pending.is_some());
            if changed == 0 {
                report.unreadable += unreadable;
                return Ok(());
            }
            let swapped = self
                .store
                .swap_sealed_totp(
                    user,
                    secret.as_deref(),
                    new_secret.as_deref().or(secret.as_deref()),
                    pending.as_deref(),
                    new_pending.as_deref().or(pending.as_deref()),
                )
                .await?;
            if swapped {
                report.totp_secrets += changed;
                report.unreadable += unreadable;
                return Ok(());
            }
            // A setup, enable or reset happened in between: start again from the row now.
            match self.store.get_mfa(user).await? {
                Some(r) => (secret, pending) = (r.sealed_secret, r.pending_sealed),
                None => return Ok(()),
            }
        }
        tracing::warn!(
            user_id = %user,
            "TOTP secret not re-sealed: concurrent changes kept winning"
        );
        report.skipped += 1;
        Ok(())
    }

    /// A lost swap needs no retry, unlike the others: once queued, a row's secret is only
    /// ever cleared or deleted by its settle, so the row no longer needs it re-sealed
    /// (unless another rotation re-sealed it first, which is as good). A worker holding the
    /// row's lease sends from the bytes it claimed, which its loaded keys still open.
    async fn reseal_outbox_secret(
        &self,
        row: SealedOutboxSecret,
        report: &mut RekeyReport,
    ) -> Result<(), AppError> {
        let mut unreadable = 0;
        let new = self.resealed(
            Some(&row.sealed_secret),
            NOTICE_SECRET_PURPOSE,
            &row.id.to_string(),
            &mut unreadable,
        )?;
        report.unreadable += unreadable;
        let Some(new) = new else {
            return Ok(());
        };
        let swapped = self
            .store
            .swap_sealed_outbox_secret(row.id, &row.channel, &row.sealed_secret, &new)
            .await?;
        report.outbox_secrets += usize::from(swapped);
        Ok(())
    }

    /// `sealed` re-sealed under the current master key; None when there is nothing to
    /// store (no value, already current, or no loaded key opens it: then `unreadable` is
    /// incremented and a warning names the key it was sealed under).
    fn resealed(
        &self,
        sealed: Option<&[u8]>,
        purpose: &str,
        owner: &str,
        unreadable: &mut usize,
    ) -> Result<Option<Vec<u8>>, AppError> {
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        match self.keys.master().reseal(random()?, sealed, purpose, owner) {
            Ok(new) => Ok(new),
            Err(error) => {
                tracing::warn!(purpose, owner, %error, "a sealed value cannot be re-sealed");
                *unreadable += 1;
                Ok(None)
            }
        }
    }
}
