//! What master-key rotation needs from storage: listing every sealed TOTP secret and
//! every queued notification secret, and swapping sealed values (signing-key seeds, TOTP
//! secrets, outbox secrets) only from the bytes read.

use tessera_core::ids::{KeyId, UserId};
use time::Duration;

use super::audit::event_at;
use super::mfa::{STEP, codes, sealed, wins};
use super::outbox::{LEASE, claim, notice};
use super::{T0, given_user, race};
use crate::ports::{
    DeliveryOutcome, MfaRecord, Notice, OutboxBacklog, SealedOutboxSecret, SealedTotp, Store,
    StoredSigningKey,
};

fn signing_key(seed_byte: u8) -> StoredSigningKey {
    let public_key = [seed_byte; 32];
    StoredSigningKey {
        kid: KeyId::for_public_key(&public_key),
        public_key,
        sealed_seed: sealed(seed_byte),
        created_at: T0,
    }
}

/// A sealed seed is replaced only when the expected bytes are still stored: the swap
/// reads back with every other field intact, and a second swap from the old bytes (a
/// stale read) loses and changes nothing. An unknown key id swaps nothing.
pub async fn a_sealed_signing_seed_is_swapped_only_from_the_expected_bytes<S: Store>(store: S) {
    let key = signing_key(1);
    let other = signing_key(2);
    store.insert_signing_key(&key).await.unwrap();
    store.insert_signing_key(&other).await.unwrap();

    let resealed = sealed(3);
    assert!(
        store
            .swap_sealed_seed(&key.kid, &key.sealed_seed, &resealed)
            .await
            .unwrap()
    );
    let swapped = StoredSigningKey {
        sealed_seed: resealed.clone(),
        ..key.clone()
    };
    let listed = store.list_signing_keys().await.unwrap();
    assert!(listed.contains(&swapped), "{listed:?}");
    assert!(listed.contains(&other), "the other key is untouched");

    assert!(
        !store
            .swap_sealed_seed(&key.kid, &key.sealed_seed, &sealed(4))
            .await
            .unwrap(),
        "a stale expected value loses"
    );
    let unknown = signing_key(5);
    assert!(
        !store
            .swap_sealed_seed(&unknown.kid, &unknown.sealed_seed, &sealed(6))
            .await
            .unwrap()
    );
    let listed = store.list_signing_keys().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&swapped) && listed.contains(&other));
}

/// Every row with an enabled or a pending secret is listed (ordered by user id); users
/// without TOTP, or whose factor was purged, are not.
pub async fn every_sealed_totp_secret_enabled_or_pending_is_listed<S: Store>(store: S) {
    assert!(store.list_sealed_totp().await.unwrap().is_empty());
    let enabled = given_user(&store).await;
    let secret = sealed(1);
    store
        .replace_pending_totp(enabled, &secret, T0)
        .await
        .unwrap();
    assert!(
        store
            .enable_totp(enabled, STEP, &codes(), T0)
            .await
            .unwrap()
    );
    let pending = given_user(&store).await;
    let pending_secret = sealed(2);
    store
        .replace_pending_totp(pending, &pending_secret, T0)
        .await
        .unwrap();
    let both = given_user(&store).await;
    let both_secret = sealed(3);
    let both_pending = sealed(4);
    store
        .replace_pending_totp(both, &both_secret, T0)
        .await
        .unwrap();
    assert!(store.enable_totp(both, STEP, &codes(), T0).await.unwrap());
    store
        .replace_pending_totp(both, &both_pending, T0)
        .await
        .unwrap();
    let _without = given_user(&store).await;
    let purged = given_user(&store).await;
    store
        .replace_pending_totp(purged, &sealed(5), T0)
        .await
        .unwrap();
    assert!(store.enable_totp(purged, STEP, &codes(), T0).await.unwrap());
    assert!(store.purge_mfa(purged).await.unwrap());

    let mut expected = vec![
        SealedTotp {
            user_id: enabled,
            sealed_secret: Some(secret),
            pending_sealed: None,
        },
        SealedTotp {
            user_id: pending,
            sealed_secret: None,
            pending_sealed: Some(pending_secret),
        },
        SealedTotp {
            user_id: both,
            sealed_secret: Some(both_secret),
            pending_sealed: Some(both_pending),
        },
    ];
    expected.sort_by_key(|row| *row.user_id.as_uuid());
    assert_eq!(store.list_sealed_totp().await.unwrap(), expected);
}

/// Both sealed TOTP columns are replaced together, only when both still hold the expected
/// values (a missing value expected as missing); the step, the times and the recovery
/// codes are untouched. A stale expected secret or pending secret loses and changes nothing.
pub async fn sealed_totp_secrets_are_swapped_only_from_the_expected_values<S: Store>(store: S) {
    let user = given_user(&store).await;
    let (secret, pending) = (sealed(1), sealed(2));
    store.replace_pending_totp(user, &secret, T0).await.unwrap();
    let enabled_at = T0 + Duration::seconds(10);
    assert!(
        store
            .enable_totp(user, STEP, &codes(), enabled_at)
            .await
            .unwrap()
    );
    store
        .replace_pending_totp(user, &pending, T0)
        .await
        .unwrap();
    let before: MfaRecord = store.get_mfa(user).await.unwrap().unwrap();

    let (new_secret, new_pending) = (sealed(3), sealed(4));
    assert!(
        store
            .swap_sealed_totp(
                user,
                Some(&secret),
                Some(&new_secret),
                Some(&pending),
                Some(&new_pending)
            )
            .await
            .unwrap()
    );
    let after = MfaRecord {
        sealed_secret: Some(new_secret.clone()),
        pending_sealed: Some(new_pending.clone()),
        ..before
    };
    assert_eq!(store.get_mfa(user).await.unwrap(), Some(after.clone()));

    // Stale: the old secret, or the right secret with the old pending one, or "none".
    for (expected_secret, expected_pending) in [
        (Some(secret.as_slice()), Some(new_pending.as_slice())),
        (Some(new_secret.as_slice()), Some(pending.as_slice())),
        (None, Some(new_pending.as_slice())),
        (Some(new_secret.as_slice()), None),
    ] {
        assert!(
            !store
                .swap_sealed_totp(
                    user,
                    expected_secret,
                    Some(&sealed(9)),
                    expected_pending,
                    Some(&sealed(9))
                )
                .await
                .unwrap(),
            "a stale expected value loses"
        );
    }
    assert_eq!(store.get_mfa(user).await.unwrap(), Some(after));

    // A pending-only row: the missing enabled secret is expected (and kept) as missing.
    let pending_only = given_user(&store).await;
    let first = sealed(5);
    store
        .replace_pending_totp(pending_only, &first, T0)
        .await
        .unwrap();
    let resealed = sealed(6);
    assert!(
        store
            .swap_sealed_totp(pending_only, None, None, Some(&first), Some(&resealed))
            .await
            .unwrap()
    );
    let row = store.get_mfa(pending_only).await.unwrap().unwrap();
    assert_eq!(
        (row.sealed_secret, row.pending_sealed),
        (None, Some(resealed))
    );

    // No row at all: nothing to swap.
    let stranger = given_user(&store).await;
    assert!(
        !store
            .swap_sealed_totp(stranger, None, None, Some(&first), Some(&sealed(7)))
            .await
            .unwrap()
    );
    assert_eq!(store.get_mfa(stranger).await.unwrap(), None);
}

/// Of eight concurrent swaps from the same read of one TOTP row exactly one wins, and its
/// value is the one stored.
pub async fn of_eight_concurrent_swaps_of_one_sealed_totp_secret_exactly_one_wins<S: Store>(
    store: S,
) {
    let user = given_user(&store).await;
    let secret = sealed(1);
    store.replace_pending_totp(user, &secret, T0).await.unwrap();
    assert!(store.enable_totp(user, STEP, &codes(), T0).await.unwrap());
    let candidates: Vec<Vec<u8>> = (0..8u8).map(|i| sealed(10 + i)).collect();
    let outcomes = race(&store, candidates.len(), |store, i| {
        let (expected, new) = (secret.clone(), candidates[i].clone());
        async move {
            store
                .swap_sealed_totp(user, Some(&expected), Some(&new), None, None)
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(wins(&outcomes), 1, "{outcomes:?}");
    let winner = outcomes.iter().position(|won| *won).unwrap();
    let row = store.get_mfa(user).await.unwrap().unwrap();
    assert_eq!(row.sealed_secret, Some(candidates[winner].clone()));
}

/// A notice on `channels` carrying `secret`, queued with an event at T0.
async fn queued<S: Store>(
    store: &S,
    user: UserId,
    channels: &[&str],
    secret: Option<Vec<u8>>,
) -> Notice {
    let n = Notice {
        sealed_secret: secret,
        ..notice(channels)
    };
    store
        .insert_event(&event_at(user, T0), Some(&n))
        .await
        .unwrap();
    n
}

/// The listing entry of `n`'s row on `channel`, with `sealed` as its secret.
fn entry(n: &Notice, channel: &str, sealed: &[u8]) -> SealedOutboxSecret {
    SealedOutboxSecret {
        id: n.id,
        channel: channel.to_owned(),
        sealed_secret: sealed.to_vec(),
    }
}

/// Every row still to be sent that carries a secret is listed, one entry per channel,
/// ordered by id and channel: leased ones and ones waiting for a retry included. Rows
/// delivered, dead, or without a secret are not.
pub async fn every_undelivered_outbox_secret_is_listed_leased_or_not<S: Store>(store: S) {
    assert!(store.list_sealed_outbox_secrets().await.unwrap().is_empty());
    let user = given_user(&store).await;
    let delivered = queued(&store, user, &["smtp"], Some(sealed(1))).await;
    let dead = queued(&store, user, &["webhook"], Some(sealed(2))).await;
    assert_eq!(claim(&store, T0, 10).await.len(), 2);
    store
        .settle_delivery(delivered.id, "smtp", &DeliveryOutcome::Delivered)
        .await
        .unwrap();
    let bury = DeliveryOutcome::Dead {
        error: "550 no such user".into(),
    };
    store
        .settle_delivery(dead.id, "webhook", &bury)
        .await
        .unwrap();

    let (leased_secret, retried_secret) = (sealed(3), sealed(4));
    let leased = queued(&store, user, &["smtp"], Some(leased_secret.clone())).await;
    let retried = queued(&store, user, &["smtp"], Some(retried_secret.clone())).await;
    assert_eq!(claim(&store, T0, 10).await.len(), 2);
    let retry = DeliveryOutcome::Retry {
        at: T0 + Duration::hours(1),
        error: "421 try later".into(),
    };
    store
        .settle_delivery(retried.id, "smtp", &retry)
        .await
        .unwrap();
    let _plain = queued(&store, user, &["smtp"], None).await;
    let both_secret = sealed(5);
    let both = queued(
        &store,
        user,
        &["webhook", "smtp"],
        Some(both_secret.clone()),
    )
    .await;

    let mut expected = vec![
        entry(&leased, "smtp", &leased_secret),
        entry(&retried, "smtp", &retried_secret),
        entry(&both, "smtp", &both_secret),
        entry(&both, "webhook", &both_secret),
    ];
    expected.sort_by(|a, b| (a.id.as_uuid(), &a.channel).cmp(&(b.id.as_uuid(), &b.channel)));
    assert_eq!(store.list_sealed_outbox_secrets().await.unwrap(), expected);
}

/// A row's secret is replaced only while the expected bytes are still stored, and only on
/// its own channel, even while a worker holds its lease: the lease and attempt count are
/// untouched, and the row is claimed again, carrying the new bytes, only when the lease
/// ends. A stale read, an unknown row, and a row settled in between (delivered, or dead
/// with its secret cleared) swap nothing.
pub async fn an_outbox_secret_is_swapped_only_from_the_expected_bytes_even_while_leased<
    S: Store,
>(
    store: S,
) {
    let user = given_user(&store).await;
    let old = sealed(1);
    let n = queued(&store, user, &["smtp", "webhook"], Some(old.clone())).await;
    assert_eq!(claim(&store, T0, 10).await.len(), 2);

    let new = sealed(2);
    assert!(
        store
            .swap_sealed_outbox_secret(n.id, "smtp", &old, &new)
            .await
            .unwrap()
    );
    assert_eq!(
        store.list_sealed_outbox_secrets().await.unwrap(),
        {
            let mut both = vec![entry(&n, "smtp", &new), entry(&n, "webhook", &old)];
            both.sort_by(|a, b| a.channel.cmp(&b.channel));
            both
        },
        "only the named channel's row changes"
    );
    assert!(
        !store
            .swap_sealed_outbox_secret(n.id, "smtp", &old, &sealed(3))
            .await
            .unwrap(),
        "a stale expected value loses"
    );
    let stranger = notice(&["smtp"]);
    assert!(
        !store
            .swap_sealed_outbox_secret(stranger.id, "smtp", &new, &sealed(4))
            .await
            .unwrap()
    );
    assert!(
        !store
            .swap_sealed_outbox_secret(n.id, "log", &old, &sealed(4))
            .await
            .unwrap()
    );

    assert!(
        claim(&store, T0 + LEASE - Duration::seconds(1), 10)
            .await
            .is_empty(),
        "the swap left the lease alone"
    );
    let again = claim(&store, T0 + LEASE, 10).await;
    let smtp = again.iter().find(|d| d.channel == "smtp").unwrap();
    assert_eq!(
        (smtp.attempts, smtp.sealed_secret.clone()),
        (2, Some(new.clone()))
    );

    // Settled while the rotation held its read: the swap finds nothing to replace.
    store
        .settle_delivery(n.id, "smtp", &DeliveryOutcome::Delivered)
        .await
        .unwrap();
    let bury = DeliveryOutcome::Dead {
        error: "410 gone".into(),
    };
    store.settle_delivery(n.id, "webhook", &bury).await.unwrap();
    assert!(
        !store
            .swap_sealed_outbox_secret(n.id, "smtp", &new, &sealed(5))
            .await
            .unwrap()
    );
    assert!(
        !store
            .swap_sealed_outbox_secret(n.id, "webhook", &old, &sealed(6))
            .await
            .unwrap()
    );
    assert!(store.list_sealed_outbox_secrets().await.unwrap().is_empty());
    assert_eq!(
        store.outbox_backlog().await.unwrap(),
        OutboxBacklog {
            pending: 0,
            dead: 1,
            oldest: None,
        },
        "a failed swap revives nothing"
    );
}

/// Of eight concurrent swaps from the same read of one outbox row exactly one wins, and
/// its value is the one stored.
pub async fn of_eight_concurrent_swaps_of_one_outbox_secret_exactly_one_wins<S: Store>(store: S) {
    let user = given_user(&store).await;
    let old = sealed(1);
    let n = queued(&store, user, &["smtp"], Some(old.clone())).await;
    let candidates: Vec<Vec<u8>> = (0..8u8).map(|i| sealed(10 + i)).collect();
    let outcomes = race(&store, candidates.len(), |store, i| {
        let (expected, new) = (old.clone(), candidates[i].clone());
        async move {
            store
                .swap_sealed_outbox_secret(n.id, "smtp", &expected, &new)
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(wins(&outcomes), 1, "{outcomes:?}");
    let winner = outcomes.iter().position(|won| *won).unwrap();
    assert_eq!(
        store.list_sealed_outbox_secrets().await.unwrap(),
        [entry(&n, "smtp", &candidates[winner])]
    );
}
