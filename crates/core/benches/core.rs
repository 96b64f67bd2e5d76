//! The per-request costs in tessera-core: `cargo bench -p tessera-core`.
// A benchmark whose set-up fails has nothing to measure: failing loudly is right.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_core::ids::{SessionId, UserId};
use tessera_core::jwt::{AccessClaims, Assurance, Expectations, SigningKey, verify};
use tessera_core::mfa::totp::{TotpCode, TotpSecret, code_at_step, step_at, verify as totp_verify};
use tessera_core::password::{Password, hash, verify as password_verify};
use tessera_core::ratelimit::{Attempt, Policy, decide as limit_decide};
use tessera_core::session::rotation::{PresentedToken, decide};
use tessera_core::session::{RevokeReason, SessionState};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-11-29 12:00 UTC);

fn tokens(c: &mut Criterion) {
    let key = SigningKey::from_seed(&[7; 32]);
    let vk = key.verifying_key();
    let claims = AccessClaims {
        iss: "https://auth.example.com".into(),
        aud: "tessera".into(),
        sub: UserId::from_random([1; 16]),
        sid: SessionId::from_random([2; 16]),
        iat: NOW.unix_timestamp(),
        exp: NOW.unix_timestamp() + 900,
        auth_time: NOW.unix_timestamp(),
        amr: Assurance::Password.amr(),
        acr: "aal1".into(),
    };
    let token = key.sign(&claims);
    let expect = Expectations {
        issuer: "https://auth.example.com",
        audience: "tessera",
        now: NOW,
        leeway_secs: 30,
    };
    c.bench_function("jwt_sign_eddsa", |b| {
        b.iter(|| key.sign(black_box(&claims)))
    });
    c.bench_function("jwt_verify_eddsa", |b| {
        b.iter(|| verify(black_box(&token), |_| Some(&vk), &expect))
    });
}

fn totp(c: &mut Criterion) {
    let secret = TotpSecret::from_random([9; 20]);
    let step = step_at(NOW);
    // A code for the step after now: verify has to try the whole window.
    let code = TotpCode::parse(&format!("{:06}", code_at_step(&secret, step + 1, 6))).unwrap();
    c.bench_function("totp_verify_window", |b| {
        b.iter(|| totp_verify(&secret, black_box(code), NOW, None))
    });
}

fn decisions(c: &mut Criterion) {
    let session = SessionState {
        id: SessionId::from_random([1; 16]),
        user_id: UserId::from_random([2; 16]),
        idle_expires_at: NOW + Duration::days(7),
        absolute_expires_at: NOW + Duration::days(30),
        revoked: None::<(OffsetDateTime, RevokeReason)>,
    };
    let rotated = PresentedToken::Rotated {
        rotated_at: NOW - Duration::seconds(3),
        successor_is_current: true,
    };
    c.bench_function("rotation_decide", |b| {
        b.iter(|| decide(black_box(&rotated), &session, NOW, Duration::seconds(10)))
    });
    let counted: Vec<Attempt> = (0..10)
        .map(|i| Attempt::failed(NOW - Duration::seconds(i * 30)))
        .collect();
    c.bench_function("ratelimit_decide_full_window", |b| {
        b.iter(|| limit_decide(black_box(&counted), NOW, Policy::LOGIN_PER_ACCOUNT))
    });
}

fn passwords(c: &mut Criterion) {
    let pw = Password::presented("correct horse battery staple".into()).unwrap();
    let stored = hash(&pw, &[3; 16]).unwrap();
    let mut group = c.benchmark_group("argon2id_owasp");
    group.sample_size(10);
    group.bench_function("verify", |b| {
        b.iter(|| password_verify(black_box(&pw), &stored))
    });
    group.finish();
}

criterion_group!(benches, tokens, totp, decisions, passwords);
criterion_main!(benches);
