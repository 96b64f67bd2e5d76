//! `tessera-bench bare-verify`: the limit of an authenticated read. An axum handler that
//! verifies the access token exactly as the server does (`tessera_core::jwt::verify`,
//! the keys from the server's JWKS) and does nothing else, on as many tokio workers as
//! `tessera serve` has. `GET /v1/me` can at best approach its rate.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_core::ids::KeyId;
use tessera_core::jwt::{Expectations, VerifyingKey, verify};

struct Keys {
    keys: Vec<VerifyingKey>,
    issuer: String,
}

/// Reads the JWKS of the server at `from` (host:port).
async fn fetch_keys(from: SocketAddr) -> anyhow::Result<Vec<VerifyingKey>> {
    let res = crate::http::once(
        from,
        &crate::http::request("GET", "/.well-known/jwks.json", &[], None),
    )
    .await?;
    anyhow::ensure!(res.status == 200, "JWKS answered {}", res.status);
    let jwks = res.json()?;
    let mut keys = Vec::new();
    for jwk in jwks["keys"].as_array().context("JWKS without keys")? {
        let x = jwk["x"].as_str().context("JWK without x")?;
        let bytes = data_encoding::BASE64URL_NOPAD
            .decode(x.as_bytes())
            .context("JWK x is not base64url")?;
        let public: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .context("JWK x is not 32 bytes")?;
        let key = VerifyingKey::from_bytes(KeyId::for_public_key(&public), &public)
            .context("JWK x is not an Ed25519 point")?;
        anyhow::ensure!(
            jwk["kid"].as_str() == Some(key.kid().as_str()),
            "the JWKS names its key otherwise than tessera_core derives it"
        );
        keys.push(key);
    }
    Ok(keys)
}

async fn me(State(keys): State<Arc<Keys>>, headers: HeaderMap) -> Response {
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    // The wall clock, as the server's SystemClock reads it: this is a live handler.
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::now_utc();
    let expect = Expectations {
        issuer: &keys.issuer,
        audience: "tessera",
        now,
        leeway_secs: 30,
    };
    let lookup = |kid: &str| keys.keys.iter().find(|k| k.kid().as_str() == kid);
    match verify(token, lookup, &expect) {
        Ok(claims) => axum::Json(serde_json::json!({"user_id": claims.sub})).into_response(),
        Err(_) => StatusCode::UNAUTHORIZED.into_response(),
    }
}

pub fn run(
    listen: SocketAddr,
    jwks_from: SocketAddr,
    issuer: String,
    workers: usize,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let keys = Arc::new(Keys {
            keys: fetch_keys(jwks_from).await?,
            issuer,
        });
        let app = axum::Router::new()
            .route("/v1/me", axum::routing::get(me))
            .with_state(keys);
        let listener = tokio::net::TcpListener::bind(listen).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}
