//! Recovery-code regeneration against an MFA reset: codes are replaced only for the
//! factor the caller proved.

use time::Duration;

use super::T0;
use super::mfa::{STEP, codes, enrolled, mfa, remaining, sealed};
use super::race;
use crate::ports::Store;
use tessera_core::mfa::recovery::RecoveryCodeHash;

/// A regeneration that proved the factor before an admin reset leaves no codes after
/// it, and none over the codes of a factor enrolled after the reset: the codes are
/// replaced only while a factor enabled by the caller's proof is still enabled.
pub async fn recovery_codes_are_replaced_only_for_the_factor_the_caller_proved<S: Store>(store: S) {
    let (user, _, _) = enrolled(&store).await;
    let proved_at = T0 + Duration::minutes(1);
    assert!(store.purge_mfa(user).await.unwrap());
    let stale = codes();
    let after_reset = T0 + Duration::minutes(2);
    assert!(
        !store
            .swap_recovery_codes(user, proved_at, &stale, after_reset)
            .await
            .unwrap()
    );
    assert_eq!(mfa(&store, user).await, None);
    assert!(
        !store
            .use_recovery_code(user, &stale[0], after_reset)
            .await
            .unwrap(),
        "no codes may exist for a user whose factor was reset"
    );

    let enrolled_again = T0 + Duration::minutes(3);
    let fresh = codes();
    store
        .replace_pending_totp(user, &sealed(2), enrolled_again)
        .await
        .unwrap();
    assert!(
        store
            .enable_totp(user, STEP + 10, &fresh, enrolled_again)
            .await
            .unwrap()
    );
    assert!(
        !store
            .swap_recovery_codes(user, proved_at, &stale, enrolled_again)
            .await
            .unwrap(),
        "a proof of the old factor does not reach the new one"
    );
    assert!(
        !store
            .use_recovery_code(user, &stale[0], enrolled_again)
            .await
            .unwrap()
    );
    assert!(
        store
            .use_recovery_code(user, &fresh[0], enrolled_again)
            .await
            .unwrap()
    );
    assert!(
        store
            .swap_recovery_codes(user, enrolled_again, &stale, enrolled_again)
            .await
            .unwrap()
    );
    assert_eq!(remaining(&store, user).await, 10);
}

/// A regeneration racing a reset, eight times over on each side: afterwards the user has
/// either no factor and no codes, or never lost the factor.
pub async fn regenerations_racing_a_reset_leave_no_codes_without_a_factor<S: Store>(store: S) {
    let (user, _, _) = enrolled(&store).await;
    let sets: Vec<Vec<RecoveryCodeHash>> = (0..8).map(|_| codes()).collect();
    race(&store, 9, |store, i| {
        let codes = sets.get(i).cloned();
        async move {
            match codes {
                Some(codes) => {
                    store
                        .swap_recovery_codes(user, T0, &codes, T0)
                        .await
                        .unwrap();
                }
                None => {
                    store.purge_mfa(user).await.unwrap();
                }
            }
        }
    })
    .await;
    assert_eq!(mfa(&store, user).await, None);
    for set in &sets {
        assert!(!store.use_recovery_code(user, &set[0], T0).await.unwrap());
    }
}
