//! Property tests of the state machines at the level of the use cases, on a real store
//! (SQLite always, Postgres when configured) and a manual clock; proptest draws the
//! interleavings and shrinks a failing one.
//!
//! - Refresh rotation: any interleaving of rotate / reuse (an old token replayed) /
//!   revoke / expire (the clock moves) / supersede (a new login on the same device)
//!   leaves at most one valid refresh token per session, one live session per device,
//!   and never revives a revoked session. Checked after every step from the store's rows,
//!   and at the end by presenting every token ever issued.
//! - TOTP through the app: whatever codes arrive whenever, no step is accepted twice.

use std::collections::HashSet;

use proptest::collection::vec;
use proptest::prelude::*;
use tessera_adapters::testing::TestDatabase;
use tessera_adapters::{PgStore, SqliteStore};
use tessera_app::ports::{Clock, Store};
use tessera_app::testkit::runtime::block_on;
use tessera_app::{AppError, RequestContext, SecondFactor};
use tessera_core::ids::SessionId;
use tessera_core::mfa::totp::{TotpCode, code_at_step, step_at};
use tessera_core::secret::RefreshToken;
use tessera_core::session::{Liveness, RevokeReason};
use time::Duration;

use crate::helpers::use_cases::{app_with_user, enrolled, login};

const EMAIL: &str = "prop@example.com";
const DEVICES: [&str; 2] = ["phone", "laptop"];

/// Two proptest cases per property, one per backend; each case gets a fresh migrated
/// store (a new SQLite file, or a new Postgres database, skipped loudly when unset).
macro_rules! on_both_stores {
    ($name:ident, $cases:expr, $strategy:expr, $property:ident) => {
        mod $name {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig { cases: $cases, ..ProptestConfig::default() })]

                #[test]
                fn sqlite(ops in $strategy) {
                    block_on(async {
                        let db = TestDatabase::sqlite();
                        let store = SqliteStore::connect(db.url()).await.unwrap();
                        store.migrate().await.unwrap();
                        $property(store, &ops).await;
                    });
                }

                #[test]
                fn postgres(ops in $strategy) {
                    block_on(async {
                        let Some(db) = TestDatabase::postgres().await else {
                            return;
                        };
                        let store = PgStore::connect(db.url()).await.unwrap();
                        store.migrate().await.unwrap();
                        $property(store, &ops).await;
                    });
                }
            }
        }
    };
}

#[derive(Debug, Clone, Copy)]
enum Op {
    /// A password login on device 0 or 1: a new session, superseding the device's last.
    Login(usize),
    /// The current refresh token of session `n` (modulo the sessions so far) is presented.
    Rotate(usize),
    /// An already rotated token of session `n` (the `m`-th issued) is presented again.
    Reuse(usize, usize),
    /// Session `n` is revoked (as by the user, from another device).
    Revoke(usize),
    /// The clock moves: within the idle expiry, past it, or past the absolute lifetime.
    Expire(Duration),
}

fn rotation_op() -> impl Strategy<Value = Op> {
    let advance = prop_oneof![
        Just(Duration::seconds(1)),
        Just(Duration::hours(1)),
        Just(Duration::days(3)),
        Just(Duration::days(7)),
        Just(Duration::days(8)),
        Just(Duration::days(31)),
    ];
    prop_oneof![
        2 => (0usize..2).prop_map(Op::Login),
        5 => any::<usize>().prop_map(Op::Rotate),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(n, m)| Op::Reuse(n, m)),
        1 => any::<usize>().prop_map(Op::Revoke),
        1 => advance.prop_map(Op::Expire),
    ]
}

/// What the test knows of one session: its device and every refresh token it was given.
struct Known {
    id: SessionId,
    device: usize,
    tokens: Vec<RefreshToken>,
    /// Ended by something this test did (reuse, revoke, supersede): it must stay dead.
    ended: bool,
}

/// The store's view after a step: at most one valid token per session, none for an
/// ended or revoked session, one live session per device, and no revocation undone.
async fn check_rows<S: Store>(
    store: &S,
    sessions: &[Known],
    seen_revoked: &mut HashSet<SessionId>,
    now: time::OffsetDateTime,
    after: &str,
) {
    let mut live_per_device = [0; 2];
    for known in sessions {
        let row = store.get_session(known.id).await.unwrap().unwrap();
        let liveness = row.state.liveness(now);
        if seen_revoked.contains(&known.id) || known.ended {
            assert!(
                matches!(liveness, Liveness::Revoked(_)),
                "after {after}: session {:?} came back as {liveness:?}",
                known.id
            );
        }
        if matches!(liveness, Liveness::Revoked(_)) {
            seen_revoked.insert(known.id);
        }
        if liveness == Liveness::Live {
            live_per_device[known.device] += 1;
        }
        let mut valid = 0;
        for token in &known.tokens {
            let record = store.get_refresh(&token.hash()).await.unwrap().unwrap();
            assert_eq!(record.session.state.id, known.id);
            if record.rotated_at.is_none() && record.session.state.liveness(now) == Liveness::Live {
                valid += 1;
            }
        }
        assert!(
            valid <= 1,
            "after {after}: {valid} valid tokens in one session"
        );
        if liveness != Liveness::Live {
            assert_eq!(
                valid, 0,
                "after {after}: a valid token in a {liveness:?} session"
            );
        }
    }
    assert!(
        live_per_device.iter().all(|n| *n <= 1),
        "after {after}: live sessions per device {live_per_device:?}"
    );
}

async fn rotation_never_leaves_two_valid_tokens_or_revives_a_session<S: Store + Clone>(
    store: S,
    ops: &[Op],
) {
    let (app, clock) = app_with_user(store.clone(), EMAIL).await;
    let ctx = RequestContext::default();
    let mut sessions: Vec<Known> = Vec::new();
    let mut seen_revoked = HashSet::new();
    for (step, op) in ops.iter().enumerate() {
        let n = sessions.len().max(1);
        match *op {
            Op::Login(device) => {
                let tokens = login(&app, EMAIL, DEVICES[device]).await;
                for known in sessions.iter_mut().filter(|k| k.device == device) {
                    known.ended = true;
                }
                sessions.push(Known {
                    id: tokens.session_id,
                    device,
                    tokens: vec![tokens.refresh_token],
                    ended: false,
                });
            }
            Op::Rotate(i) => {
                let Some(known) = sessions.get_mut(i % n) else {
                    continue;
                };
                let current = known.tokens.last().unwrap().clone();
                match app.refresh(&current, &ctx).await {
                    Ok(next) => {
                        assert!(!known.ended, "step {step}: an ended session rotated");
                        assert_eq!(next.session_id, known.id);
                        known.tokens.push(next.refresh_token);
                    }
                    Err(AppError::SessionRevoked | AppError::SessionExpired) => {}
                    Err(e) => panic!("step {step}: the current token gave {e:?}"),
                }
            }
            Op::Reuse(i, j) => {
                let Some(known) = sessions.get_mut(i % n) else {
                    continue;
                };
                if known.tokens.len() < 2 {
                    continue;
                }
                let old = known.tokens[j % (known.tokens.len() - 1)].clone();
                match app.refresh(&old, &ctx).await {
                    Ok(_) => panic!("step {step}: a rotated token was accepted again"),
                    Err(AppError::RefreshTokenReused) => known.ended = true,
                    Err(AppError::SessionRevoked | AppError::SessionExpired) => {}
                    Err(e) => panic!("step {step}: a replay gave {e:?}"),
                }
            }
            Op::Revoke(i) => {
                let Some(known) = sessions.get_mut(i % n) else {
                    continue;
                };
                store
                    .revoke_session(known.id, RevokeReason::RevokedByUser, clock.now())
                    .await
                    .unwrap();
                known.ended = true;
            }
            Op::Expire(by) => clock.advance(by),
        }
        let after = format!("step {step} ({op:?})");
        check_rows(&store, &sessions, &mut seen_revoked, clock.now(), &after).await;
    }

    // Every token ever issued, presented: the current one first (the only one that may
    // still work), then the rotated ones. At most one success per session, none for a
    // session that had ended, and what that success handed out dies with the replays.
    for known in &sessions {
        let mut accepted = 0;
        let mut last_given = None;
        for token in known.tokens.iter().rev() {
            if let Ok(next) = app.refresh(token, &ctx).await {
                accepted += 1;
                last_given = Some(next.refresh_token);
            }
        }
        assert!(
            accepted <= 1,
            "{accepted} tokens of one session were accepted"
        );
        if known.ended || seen_revoked.contains(&known.id) {
            assert_eq!(accepted, 0, "a token of an ended session was accepted");
        }
        if let Some(given) = last_given
            && known.tokens.len() > 1
        {
            assert!(app.refresh(&given, &ctx).await.is_err());
        }
    }
}

on_both_stores!(
    rotation_interleavings,
    24,
    vec(rotation_op(), 1..30),
    rotation_never_leaves_two_valid_tokens_or_revives_a_session
);

/// A TOTP code presented after the clock moved `advance` seconds: the code of the step
/// `offset` away from now (inside the skew window or just outside), or a code of nothing.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    advance: i64,
    offset: i64,
    garbage: Option<u32>,
}

fn totp_attempt() -> impl Strategy<Value = Attempt> {
    (
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(15),
            Just(29),
            Just(30),
            Just(31),
            Just(61),
            Just(300)
        ],
        -2i64..=2,
        proptest::option::weighted(0.1, 0u32..1_000_000),
    )
        .prop_map(|(advance, offset, garbage)| Attempt {
            advance,
            offset,
            garbage,
        })
}

async fn totp_never_accepts_one_step_twice<S: Store + Clone>(store: S, attempts: &[Attempt]) {
    let (app, clock) = app_with_user(store, EMAIL).await;
    let (tokens, secret) = enrolled(&app, &clock, EMAIL, DEVICES[0]).await;
    let who = app.authenticate(&tokens.access_token).await.unwrap();
    let ctx = RequestContext::default();
    // The confirmation used the step it was made in.
    let mut used = vec![step_at(clock.now())];
    for (i, a) in attempts.iter().enumerate() {
        clock.advance(Duration::seconds(a.advance));
        let step = step_at(clock.now()) + a.offset;
        let value = a.garbage.unwrap_or_else(|| code_at_step(&secret, step, 6));
        let code = SecondFactor::Totp(TotpCode::parse(&format!("{value:06}")).unwrap());
        if app.step_up(&who, &code, &ctx).await.is_ok() {
            // Which step matched: the code is a code of some step in the skew window.
            let now = step_at(clock.now());
            let matched: Vec<i64> = (now - 1..=now + 1)
                .filter(|s| code_at_step(&secret, *s, 6) == value)
                .collect();
            assert!(
                !matched.is_empty(),
                "attempt {i}: {a:?} accepted outside the window"
            );
            let latest = *used.iter().max().unwrap();
            assert!(
                matched.iter().any(|s| *s > latest),
                "attempt {i}: {a:?} accepted although steps up to {latest} were used"
            );
            used.push(*matched.iter().filter(|s| **s > latest).min().unwrap());
        }
    }
    let distinct: HashSet<i64> = used.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        used.len(),
        "a step was accepted twice: {used:?}"
    );
}

on_both_stores!(
    totp_attempts,
    16,
    vec(totp_attempt(), 1..25),
    totp_never_accepts_one_step_twice
);
