//! Accounts: lookups, the email uniqueness rule, password and role swaps, disabling.

use tessera_core::Email;
use tessera_core::ids::{Role, UserId};
use tessera_core::password::PasswordHash;
use time::Duration;

use super::{T0, given_user, random};
use crate::ports::{NewUser, Store, StoreError};

fn hash(raw: &str) -> PasswordHash {
    PasswordHash::from_stored(raw.into())
}

fn user(email: &str) -> NewUser {
    NewUser {
        id: UserId::from_random(random()),
        email: Email::parse(email).unwrap(),
        password_hash: hash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdDE$first"),
        created_at: T0,
    }
}

/// A user reads back by id, and by email in any letter case; the address keeps the
/// spelling it was registered with.
pub async fn a_user_is_found_by_id_and_by_email_in_any_case<S: Store>(store: S) {
    let ana = user("Ana.Lima@Example.COM");
    store.insert_user(&ana).await.unwrap();

    let by_id = store.get_user(ana.id).await.unwrap().unwrap();
    assert_eq!(by_id.id, ana.id);
    assert_eq!(by_id.email.as_str(), "Ana.Lima@Example.COM");
    assert_eq!(by_id.password_hash, ana.password_hash);
    assert_eq!(by_id.created_at, ana.created_at);

    for spelling in [
        "ana.lima@example.com",
        "ANA.LIMA@EXAMPLE.COM",
        "Ana.Lima@Example.COM",
    ] {
        let found = store
            .get_user_by_email(&Email::parse(spelling).unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{spelling} should find the user"));
        assert_eq!(found.id, ana.id);
        assert_eq!(found.email.as_str(), "Ana.Lima@Example.COM");
    }

    let nobody = Email::parse("nobody@example.com").unwrap();
    assert!(store.get_user_by_email(&nobody).await.unwrap().is_none());
    assert!(
        store
            .get_user(UserId::from_random(random()))
            .await
            .unwrap()
            .is_none()
    );
}

/// Registering an address that differs only in case is a conflict on `email`, and the
/// first account is unharmed.
pub async fn a_second_user_with_the_same_email_in_another_case_is_a_conflict<S: Store>(store: S) {
    let first = user("bo@example.com");
    store.insert_user(&first).await.unwrap();
    let clash = user("BO@Example.com");
    match store.insert_user(&clash).await {
        Err(StoreError::Conflict("email")) => {}
        other => panic!("expected Conflict(\"email\"), got {other:?}"),
    }
    assert!(store.get_user(clash.id).await.unwrap().is_none());
    let found = store
        .get_user_by_email(&first.email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, first.id);
}

/// The password hash changes only from the hash the caller read: a stale expectation
/// (another change got there first) reports false and changes nothing.
pub async fn a_password_hash_is_swapped_only_from_the_expected_one<S: Store>(store: S) {
    let ana = user("ana@example.com");
    store.insert_user(&ana).await.unwrap();
    let second = hash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdDI$second");
    let third = hash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdDM$third");
    let now = T0 + Duration::days(1);

    assert!(
        store
            .swap_password_hash(ana.id, &ana.password_hash, &second, now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .swap_password_hash(ana.id, &ana.password_hash, &third, now)
            .await
            .unwrap()
    );
    let stored = store.get_user(ana.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, second);

    let nobody = UserId::from_random(random());
    assert!(
        !store
            .swap_password_hash(nobody, &second, &third, now)
            .await
            .unwrap()
    );
}

fn roles(names: &[&str]) -> Vec<Role> {
    names.iter().map(|n| Role::parse(n).unwrap()).collect()
}

/// Swapping roles replaces the whole set; they list sorted by name (byte order, so
/// `a-b` < `a.b` < `a_b` < `ab`, as `Role`'s own ordering has it).
pub async fn roles_are_replaced_as_a_set_and_listed_sorted<S: Store>(store: S) {
    let user = given_user(&store).await;
    assert!(store.list_roles(user).await.unwrap().is_empty());

    let mixed = roles(&["vendor", "ab", "a_b", "admin", "a.b", "a-b"]);
    store.replace_roles(user, &mixed).await.unwrap();
    let mut sorted = mixed.clone();
    sorted.sort();
    assert_eq!(store.list_roles(user).await.unwrap(), sorted);
    assert_eq!(
        sorted,
        roles(&["a-b", "a.b", "a_b", "ab", "admin", "vendor"])
    );

    store
        .replace_roles(user, &roles(&["support", "admin"]))
        .await
        .unwrap();
    assert_eq!(
        store.list_roles(user).await.unwrap(),
        roles(&["admin", "support"])
    );

    let other = given_user(&store).await;
    store
        .replace_roles(other, &roles(&["auditor"]))
        .await
        .unwrap();
    store.replace_roles(user, &[]).await.unwrap();
    assert!(store.list_roles(user).await.unwrap().is_empty());
    assert_eq!(store.list_roles(other).await.unwrap(), roles(&["auditor"]));
}

/// Inserting a role adds it to the set and is idempotent; sixteen concurrent grants of
/// different roles to one user all survive (none overwrites another's).
pub async fn concurrent_grants_of_different_roles_all_survive<S: Store>(store: S) {
    let user = given_user(&store).await;
    store
        .replace_roles(user, &roles(&["auditor"]))
        .await
        .unwrap();
    let admin = roles(&["admin"]).remove(0);
    store.insert_role(user, &admin).await.unwrap();
    store.insert_role(user, &admin).await.unwrap();
    assert_eq!(
        store.list_roles(user).await.unwrap(),
        roles(&["admin", "auditor"])
    );

    let names: Vec<String> = (0..16).map(|i| format!("role-{i:02}")).collect();
    super::race(&store, names.len(), |store, i| {
        let role = Role::parse(&names[i]).unwrap();
        async move { store.insert_role(user, &role).await.unwrap() }
    })
    .await;
    let mut expected: Vec<Role> = names.iter().map(|n| Role::parse(n).unwrap()).collect();
    expected.extend(roles(&["admin", "auditor"]));
    expected.sort();
    assert_eq!(store.list_roles(user).await.unwrap(), expected);
}

/// A new account is enabled. Disabling it keeps the time given (read back by id and by
/// email, to the microsecond); a second disable reports false and keeps the first time;
/// enabling clears it once; neither direction touches another account or an unknown id.
pub async fn an_account_is_disabled_and_enabled_once_each<S: Store>(store: S) {
    let ana = user("ana@example.com");
    store.insert_user(&ana).await.unwrap();
    let other = given_user(&store).await;
    assert_eq!(
        store.get_user(ana.id).await.unwrap().unwrap().disabled_at,
        None
    );

    let first = T0 + Duration::hours(1);
    let later = T0 + Duration::hours(2);
    assert!(
        store
            .swap_user_disabled(ana.id, Some(first), first)
            .await
            .unwrap()
    );
    assert!(
        !store
            .swap_user_disabled(ana.id, Some(later), later)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_user(ana.id).await.unwrap().unwrap().disabled_at,
        Some(first)
    );
    let by_email = store.get_user_by_email(&ana.email).await.unwrap().unwrap();
    assert_eq!(by_email.disabled_at, Some(first));
    assert_eq!(
        store.get_user(other).await.unwrap().unwrap().disabled_at,
        None
    );

    assert!(store.swap_user_disabled(ana.id, None, later).await.unwrap());
    assert!(!store.swap_user_disabled(ana.id, None, later).await.unwrap());
    assert_eq!(
        store.get_user(ana.id).await.unwrap().unwrap().disabled_at,
        None
    );
    // The password is not the switch's business.
    assert_eq!(
        store.get_user(ana.id).await.unwrap().unwrap().password_hash,
        ana.password_hash
    );

    let nobody = UserId::from_random(random());
    assert!(
        !store
            .swap_user_disabled(nobody, Some(later), later)
            .await
            .unwrap()
    );
    assert!(!store.swap_user_disabled(nobody, None, later).await.unwrap());
}

/// Of sixteen concurrent disables of one account exactly one reports the change, and
/// its time is the one stored.
pub async fn of_concurrent_disables_exactly_one_wins<S: Store>(store: S) {
    let user = given_user(&store).await;
    let at = |i: usize| T0 + Duration::seconds(i64::try_from(i).unwrap() + 1);
    let won = super::race(&store, super::RACERS, |store, i| async move {
        store
            .swap_user_disabled(user, Some(at(i)), at(i))
            .await
            .unwrap()
    })
    .await;
    let winners: Vec<usize> = (0..won.len()).filter(|&i| won[i]).collect();
    assert_eq!(winners.len(), 1, "{won:?}");
    assert_eq!(
        store.get_user(user).await.unwrap().unwrap().disabled_at,
        Some(at(winners[0]))
    );
}
