//! What master-key rotation needs from storage: listing every sealed TOTP secret and
//! swapping sealed values (signing-key seeds, TOTP secrets) only from the bytes read.

use tessera_core::ids::KeyId;
use time::Duration;

use super::mfa::{STEP, codes, sealed, wins};
use super::{T0, given_user, race};
use crate::ports::{MfaRecord, SealedTotp, Store, StoredSigningKey};

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
