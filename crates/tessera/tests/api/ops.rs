//! Operations endpoints, the JWKS (checked with an independent JWT library), the
//! OpenAPI document and the edge's own problems.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, Options, PrivateRedis, TestApp, assert_problem};

both_backends!(
    a_token_verifies_with_an_independent_library_through_the_jwks,
    |app: TestApp| async move {
        let (_, login) = app.signed_in_user("d1").await;
        let raw = app.get_json("/.well-known/jwks.json").await;
        let key = &raw["keys"][0];
        assert_eq!(
            (
                key["kty"].as_str(),
                key["crv"].as_str(),
                key["alg"].as_str(),
                key["use"].as_str()
            ),
            (Some("OKP"), Some("Ed25519"), Some("EdDSA"), Some("sig"))
        );
        let jwks: JwkSet = serde_json::from_value(raw).unwrap();
        let token = login["access_token"].as_str().unwrap();
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        let jwk = jwks
            .find(header.kid.as_deref().unwrap())
            .expect("kid is published");
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&["https://auth.test"]);
        validation.set_audience(&["tessera"]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data =
            jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
                .unwrap();
        let c = data.claims;
        assert_eq!(c["sid"], login["session_id"]);
        assert_eq!(c["amr"], serde_json::json!(["pwd"]));
        assert_eq!(c["acr"], "aal1");
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);
        assert!(c["auth_time"].as_i64().is_some());
        assert!(uuid::Uuid::parse_str(c["sub"].as_str().unwrap()).is_ok());
    }
);

both_backends!(
    health_readiness_and_metrics_answer,
    |app: TestApp| async move {
        let res = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let res = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let (email, _) = app.signed_in_user("d1").await;
        app.login(&email, "wrong password", "d1").await;
        let text = app.metrics().await;
        assert!(
            text.contains("tessera_logins_total{outcome=\"success\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tessera_logins_total{outcome=\"invalid_credentials\"} 1"),
            "{text}"
        );
        assert!(text.contains("tessera_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/auth/login\",status=\"200\"} 1"), "{text}");
    }
);

both_backends!(
    unknown_routes_and_methods_answer_problems,
    |app: TestApp| async move {
        assert_problem(
            app.client.get(app.url("/v1/nope")).send().await.unwrap(),
            404,
            "not_found",
        )
        .await;
        assert_problem(
            app.client
                .get(app.url("/v1/auth/login"))
                .send()
                .await
                .unwrap(),
            405,
            "method_not_allowed",
        )
        .await;
    }
);

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint_and_every_problem_code() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let doc = app.get_json("/openapi.json").await;
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in [
        ("post", "/v1/users"),
        ("post", "/v1/auth/login"),
        ("post", "/v1/auth/refresh"),
        ("post", "/v1/auth/logout"),
        ("post", "/v1/auth/login/mfa"),
        ("post", "/v1/mfa/totp/setup"),
        ("post", "/v1/mfa/totp/confirm"),
        ("delete", "/v1/mfa/totp"),
        ("post", "/v1/mfa/step-up"),
        ("post", "/v1/mfa/recovery-codes"),
        ("post", "/v1/authorize"),
        ("get", "/v1/sessions"),
        ("delete", "/v1/sessions/{session_id}"),
        ("post", "/v1/sessions/revoke-others"),
        ("get", "/v1/security-events"),
        ("post", "/v1/admin/users/{user_id}/mfa/reset"),
        ("post", "/v1/admin/users/{user_id}/sessions/revoke"),
        ("post", "/v1/admin/users/{user_id}/roles"),
        ("get", "/v1/admin/users/{user_id}/security-events"),
        ("get", "/v1/me"),
        ("post", "/v1/me/password"),
        ("get", "/.well-known/jwks.json"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from openapi.json"
        );
        // And the route really exists on the server (not a 404 from the fallback).
        let res = app
            .client
            .request(method.to_uppercase().parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_ne!(res.status(), StatusCode::NOT_FOUND, "{method} {path}");
        assert_ne!(
            res.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
    let codes: Vec<&str> = doc["components"]["schemas"]["ProblemCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // The document lists exactly the codes the server can answer with, no more, no fewer.
    let all: Vec<&str> = tessera_server::problem::ProblemCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(codes, all);
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    let h = res.headers();
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert!(h.contains_key("x-request-id"));
}

/// Anyone may call `/readyz`: a failing backend is named by a fixed word, and what it
/// said (hosts, ports, driver errors) goes to the log only. Redis down is still ready
/// (200, `rate_limiter` `degraded`), found by the probe alone, with no request before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_shows_no_backend_error_text() {
    let Some(mut redis) = PrivateRedis::start().await else {
        return;
    };
    let options = Options {
        redis_url: Some(redis.url()),
        ..Options::default()
    };
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, options).await else {
        return;
    };
    let port = redis.port.to_string();
    redis.kill();
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["checks"]["rate_limiter"], "degraded", "{body}");
    let text = body.to_string().to_lowercase();
    for leak in ["redis", "refused", "error", "127.0.0.1", port.as_str()] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
}

#[tokio::test]
async fn pages_and_the_api_tell_browsers_to_keep_to_https() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    for path in ["/login", "/healthz", "/v1/nope"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(
            res.headers()["strict-transport-security"],
            "max-age=63072000; includeSubDomains",
            "{path}"
        );
    }
}
