//! Every JSON request body of the API, through the server's own `ApiJson` extractor.
//!
//! The first byte picks the body type, the second the `Content-Type`. Contract: a refusal
//! is a 400, 413 or 415 problem; an acceptance needs the JSON content type, a body that
//! is one JSON object (what any other JSON reader in front of us sees too), and no field
//! of the type named twice (first-wins and last-wins readers would disagree).
#![no_main]

use std::collections::BTreeMap;

use axum::extract::FromRequest;
use axum::response::IntoResponse;
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserialize, DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use tessera_fuzz::{JSON_TYPES, block_on, post};
use tessera_server::api::{admin, auth, authorize, me, mfa, reset};
use tessera_server::extract::ApiJson;

/// How often each top-level key occurs, when the body is a JSON object.
struct KeyCounts(BTreeMap<String, usize>);

impl<'de> Deserialize<'de> for KeyCounts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyCounts;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyCounts, A::Error> {
                let mut counts = BTreeMap::new();
                while let Some((k, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                    *counts.entry(k).or_insert(0) += 1;
                }
                Ok(KeyCounts(counts))
            }
        }
        d.deserialize_map(V)
    }
}

fn check<T: DeserializeOwned>(fields: &[&str], content_type: Option<&[u8]>, body: &[u8]) {
    let req = post(content_type, None, body.to_vec());
    match block_on(ApiJson::<T>::from_request(req, &())) {
        Ok(_) => {
            let ct = content_type.map(|c| String::from_utf8_lossy(c).to_ascii_lowercase());
            assert!(
                ct.is_some_and(|c| c.starts_with("application/json")),
                "accepted without the JSON content type"
            );
            let counts = serde_json::from_slice::<KeyCounts>(body)
                .expect("an accepted body is one JSON object");
            for f in fields {
                assert!(
                    counts.0.get(*f).copied().unwrap_or(0) <= 1,
                    "field {f} twice"
                );
            }
        }
        Err(problem) => {
            let res = problem.into_response();
            let status = res.status().as_u16();
            assert!(matches!(status, 400 | 413 | 415), "status {status}");
            assert_eq!(
                res.headers()["content-type"].to_str().unwrap(),
                "application/problem+json"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [kind, ct, body @ ..] = data else {
        return;
    };
    let ct = JSON_TYPES[usize::from(*ct) % JSON_TYPES.len()];
    match kind % 12 {
        0 => check::<auth::RegisterRequest>(&["email", "password"], ct, body),
        1 => check::<auth::LoginRequest>(
            &[
                "email",
                "password",
                "device_id",
                "device_name",
                "provider",
                "device_token",
            ],
            ct,
            body,
        ),
        2 => check::<auth::LoginMfaRequest>(&["mfa_token", "code"], ct, body),
        3 => check::<auth::RefreshRequest>(&["refresh_token"], ct, body),
        4 => check::<authorize::AuthorizeRequest>(&["action"], ct, body),
        5 => check::<me::ChangePasswordRequest>(&["current_password", "new_password"], ct, body),
        6 => check::<mfa::SetupRequest>(&["password"], ct, body),
        7 => check::<mfa::CodeRequest>(&["code"], ct, body),
        8 => check::<reset::ResetRequest>(&["email"], ct, body),
        9 => check::<reset::CompleteResetRequest>(&["token", "new_password"], ct, body),
        10 => check::<admin::ResetRequest>(&["reason"], ct, body),
        _ => check::<admin::RolesBody>(&["roles"], ct, body),
    }
});
