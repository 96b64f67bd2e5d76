//! The scenarios: what each one sets up on the server (through the public API, as a
//! client would) and what each connection then sends.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use crate::http::{self, json_request, once, request};
use crate::load::{Driver, TotpUser, now_step, totp_code};
use crate::procs::Server;

pub const PASSWORD: &str = "correct horse battery staple";
/// Logins (each an Argon2id hash) set-up runs at once: enough to keep every core busy.
const SETUP_WIDTH: usize = 4;
/// Devices of the `sessions` scenario's user.
const DEVICES: usize = 20;
/// Browser sessions (one user each) of the `account-page` scenario.
const PAGE_USERS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Refresh,
    Me,
    Authorize,
    Login,
    LoginRefused,
    Totp,
    Sessions,
    AccountPage,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Refresh,
        Kind::Me,
        Kind::Authorize,
        Kind::Login,
        Kind::LoginRefused,
        Kind::Totp,
        Kind::Sessions,
        Kind::AccountPage,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Kind::Refresh => "refresh",
            Kind::Me => "me",
            Kind::Authorize => "authorize",
            Kind::Login => "login",
            Kind::LoginRefused => "login-refused",
            Kind::Totp => "totp",
            Kind::Sessions => "sessions",
            Kind::AccountPage => "account-page",
        }
    }
    /// Whether the measured interval ends when a prepared pool runs out (no warm-up).
    pub fn pooled(self) -> bool {
        self == Kind::Totp
    }
}

/// One documentation-range address per connection, as a proxy would forward it, so no
/// client shares another's rate-limit budget.
pub fn forwarded(i: usize) -> String {
    format!("X-Forwarded-For: 198.51.{}.{}", i / 250, i % 250 + 1)
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

/// A scenario's state on one server, kept across its concurrency levels.
pub struct Workload {
    pub kind: Kind,
    /// Per connection slot: refresh tokens (refresh), or ready requests (the others).
    refresh_tokens: Vec<String>,
    requests: Vec<Vec<u8>>,
    expect: u16,
    /// Levels prepared so far (fresh users per level where a level spends them).
    level: usize,
    totp_pool: usize,
}

async fn call(
    addr: SocketAddr,
    req: Vec<u8>,
    what: &str,
    expect: u16,
) -> anyhow::Result<http::Response> {
    let res = once(addr, &req).await.with_context(|| what.to_owned())?;
    if res.status != expect {
        bail!(
            "{what}: expected {expect}, got {}: {}",
            res.status,
            res.text()
        );
    }
    Ok(res)
}

pub async fn register(addr: SocketAddr, email: &str, from: usize) -> anyhow::Result<()> {
    call(
        addr,
        json_request(
            "/v1/users",
            &[forwarded(from)],
            &json!({"email": email, "password": PASSWORD}),
        ),
        &format!("registering {email}"),
        201,
    )
    .await?;
    Ok(())
}

pub async fn login(
    addr: SocketAddr,
    email: &str,
    device: &str,
    from: usize,
) -> anyhow::Result<Value> {
    call(
        addr,
        json_request(
            "/v1/auth/login",
            &[forwarded(from)],
            &json!({"email": email, "password": PASSWORD, "device_id": device}),
        ),
        &format!("signing in {email} on {device}"),
        200,
    )
    .await?
    .json()
}

fn field(v: &Value, name: &str) -> anyhow::Result<String> {
    v[name]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no {name} in {v}"))
}

/// Runs `f(0..n)`, `SETUP_WIDTH` at a time, results in order; the first error wins.
async fn parallel<T, F, Fut>(n: usize, f: F) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(SETUP_WIDTH));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let permit = slots.clone().acquire_owned().await?;
        let fut = f(i);
        set.spawn(async move {
            let r = fut.await;
            drop(permit);
            (i, r)
        });
    }
    let mut out: Vec<(usize, T)> = Vec::with_capacity(n);
    while let Some(joined) = set.join_next().await {
        let (i, r) = joined?;
        out.push((i, r?));
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, t)| t).collect())
}

/// Turns TOTP on for the session of `access_token`; the secret and the step spent.
async fn enroll(addr: SocketAddr, access_token: &str, from: usize) -> anyhow::Result<TotpUser> {
    let headers = [bearer(access_token), forwarded(from)];
    let setup = call(
        addr,
        json_request(
            "/v1/mfa/totp/setup",
            &headers,
            &json!({"password": PASSWORD}),
        ),
        "TOTP setup",
        200,
    )
    .await?
    .json()?;
    let base32 = field(&setup, "secret")?;
    let bytes = data_encoding::BASE32_NOPAD
        .decode(base32.as_bytes())
        .context("the TOTP secret is not base32")?;
    let secret = tessera_core::mfa::totp::TotpSecret::from_bytes(&bytes)
        .map_err(|e| anyhow::anyhow!("TOTP secret: {e}"))?;
    // The earliest step the server accepts, so later steps stay free for the load.
    let now = now_step();
    for step in [now - 1, now, now + 1] {
        let res = once(
            addr,
            &json_request(
                "/v1/mfa/totp/confirm",
                &headers,
                &json!({"code": totp_code(&secret, step)}),
            ),
        )
        .await?;
        if res.status == 200 {
            return Ok(TotpUser {
                secret,
                last_step: step,
            });
        }
    }
    bail!("TOTP confirm refused every code around now")
}

impl Workload {
    /// Prepares what every level shares, for up to `max_conc` connections.
    pub async fn setup(
        kind: Kind,
        server: &Server,
        max_conc: usize,
        totp_pool: usize,
    ) -> anyhow::Result<Self> {
        let addr = server.addr;
        let mut w = Self {
            kind,
            refresh_tokens: Vec::new(),
            requests: Vec::new(),
            expect: 200,
            level: 0,
            totp_pool,
        };
        match kind {
            Kind::Refresh | Kind::Me => {
                let email = format!("{}@bench.test", kind.name());
                register(addr, &email, 0).await?;
                let logins = parallel(max_conc, |i| {
                    let email = email.clone();
                    async move { login(addr, &email, &format!("device-{i}"), i).await }
                })
                .await?;
                for (i, l) in logins.iter().enumerate() {
                    if kind == Kind::Refresh {
                        w.refresh_tokens.push(field(l, "refresh_token")?);
                    } else {
                        w.requests.push(request(
                            "GET",
                            "/v1/me",
                            &[bearer(&field(l, "access_token")?), forwarded(i)],
                            None,
                        ));
                    }
                }
            }
            Kind::Sessions => {
                let email = "sessions@bench.test".to_owned();
                register(addr, &email, 0).await?;
                let logins = parallel(DEVICES, |i| {
                    let email = email.clone();
                    async move { login(addr, &email, &format!("device-{i}"), i).await }
                })
                .await?;
                let tokens = logins
                    .iter()
                    .map(|l| field(l, "access_token"))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                for i in 0..max_conc {
                    let token = &tokens[i % tokens.len()];
                    w.requests.push(request(
                        "GET",
                        "/v1/sessions",
                        &[bearer(token), forwarded(i)],
                        None,
                    ));
                }
                let listed = call(addr, w.requests[0].clone(), "GET /v1/sessions", 200)
                    .await?
                    .json()?;
                let n = listed["sessions"].as_array().map_or(0, Vec::len);
                ensure!(n == DEVICES, "the user has {n} sessions, not {DEVICES}");
            }
            Kind::Login => {
                parallel(max_conc, |i| async move {
                    register(addr, &format!("login-{i}@bench.test"), i).await
                })
                .await?;
                for i in 0..max_conc {
                    w.requests.push(json_request(
                        "/v1/auth/login",
                        &[forwarded(i)],
                        &json!({"email": format!("login-{i}@bench.test"), "password": PASSWORD, "device_id": "bench"}),
                    ));
                }
            }
            Kind::LoginRefused => {
                // One address, its failure budget spent with wrong passwords first: every
                // attempt then answers 429 without a hash.
                let attempt = json_request(
                    "/v1/auth/login",
                    &["X-Forwarded-For: 203.0.113.9".to_owned()],
                    &json!({"email": "nobody@bench.test", "password": "not the password", "device_id": "bench"}),
                );
                let mut spent = false;
                for _ in 0..50 {
                    if once(addr, &attempt).await?.status == 429 {
                        spent = true;
                        break;
                    }
                }
                ensure!(
                    spent,
                    "50 wrong passwords from one address never answered 429"
                );
                w.requests = vec![attempt; max_conc];
                w.expect = 429;
            }
            Kind::AccountPage => {
                let users = max_conc.min(PAGE_USERS);
                let cookies =
                    parallel(users, |i| async move { browser_sign_in(addr, i).await }).await?;
                for i in 0..max_conc {
                    w.requests.push(request(
                        "GET",
                        "/account/security",
                        &[format!("Cookie: {}", cookies[i % users]), forwarded(i)],
                        None,
                    ));
                }
                let page = call(addr, w.requests[0].clone(), "GET /account/security", 200).await?;
                ensure!(
                    page.text().contains("Account security"),
                    "/account/security did not render the account page"
                );
            }
            Kind::Authorize | Kind::Totp => {}
        }
        Ok(w)
    }

    /// The connections of one level. `authorize` and `totp` spend what they prepare (a
    /// step-up's freshness, TOTP steps and challenges), so they prepare it per level.
    pub async fn drivers(&mut self, server: &Server, conc: usize) -> anyhow::Result<Vec<Driver>> {
        let addr = server.addr;
        self.level += 1;
        match self.kind {
            Kind::Refresh => Ok((0..conc)
                .map(|i| Driver::Refresh {
                    headers: vec![forwarded(i)],
                    token: self.refresh_tokens[i].clone(),
                })
                .collect()),
            Kind::Authorize => {
                let email = format!("authorize-{}@bench.test", self.level);
                register(addr, &email, 0).await?;
                server.admin(&["admin", "grant-role", "--email", &email, "--role", "vendor"])?;
                let session = login(addr, &email, "authorize", 0).await?;
                let token = field(&session, "access_token")?;
                // Confirming TOTP counts as this session's MFA: a fresh step-up.
                enroll(addr, &token, 0).await?;
                let req = |i| {
                    json_request(
                        "/v1/authorize",
                        &[bearer(&token), forwarded(i)],
                        &json!({"action": "vendor.payout"}),
                    )
                };
                call(addr, req(0), "POST /v1/authorize after a step-up", 200).await?;
                Ok((0..conc)
                    .map(|i| Driver::Fixed {
                        request: req(i),
                        expect: 200,
                    })
                    .collect())
            }
            Kind::Totp => self.totp_drivers(addr, conc).await,
            _ => Ok((0..conc)
                .map(|i| Driver::Fixed {
                    request: self.requests[i].clone(),
                    expect: self.expect,
                })
                .collect()),
        }
    }

    /// Fresh enrolled users, two pending challenges each (a user has at least two unused
    /// steps right after enrolling), every user's challenges on one connection so its
    /// steps are sent in order.
    async fn totp_drivers(&mut self, addr: SocketAddr, conc: usize) -> anyhow::Result<Vec<Driver>> {
        let users = conc.max(self.totp_pool.div_ceil(2));
        let level = self.level;
        let enrolled = parallel(users, |i| async move {
            let email = format!("totp-{level}-{i}@bench.test");
            register(addr, &email, i).await?;
            let first = login(addr, &email, "enrol", i).await?;
            let user = enroll(addr, &field(&first, "access_token")?, i).await?;
            let mut tokens = Vec::new();
            for k in 0..2 {
                let pending = login(addr, &email, &format!("phone-{k}"), i).await?;
                ensure!(
                    pending["status"] == "mfa_required",
                    "login of an enrolled user: {pending}"
                );
                tokens.push(field(&pending, "mfa_token")?);
            }
            Ok((user, tokens))
        })
        .await?;
        let mut drivers: Vec<Driver> = (0..conc)
            .map(|c| Driver::Totp {
                headers: vec![forwarded(c)],
                challenges: VecDeque::new(),
                users: Vec::new(),
                skipped: 0,
                pending_step: None,
            })
            .collect();
        for (i, (user, tokens)) in enrolled.into_iter().enumerate() {
            if let Some(Driver::Totp {
                challenges, users, ..
            }) = drivers.get_mut(i % conc)
            {
                let local = users.len();
                users.push(user);
                challenges.extend(tokens.into_iter().map(|t| (local, t)));
            }
        }
        Ok(drivers)
    }

    /// Takes back what the connections changed (each refresh chain's current token).
    pub fn give_back(&mut self, drivers: &[Driver]) {
        for (i, d) in drivers.iter().enumerate() {
            if let (Driver::Refresh { token, .. }, Some(slot)) = (d, self.refresh_tokens.get_mut(i))
            {
                slot.clone_from(token);
            }
        }
    }
}

/// Signs a fresh user in through the `/login` form (CSRF cookie and field included) and
/// returns the browser's `Cookie` header.
async fn browser_sign_in(addr: SocketAddr, i: usize) -> anyhow::Result<String> {
    let email = format!("page-{i}@bench.test");
    register(addr, &email, i).await?;
    let page = call(
        addr,
        request("GET", "/login", &[forwarded(i)], None),
        "GET /login",
        200,
    )
    .await?;
    let mut jar: Vec<(String, String)> = Vec::new();
    keep_cookies(&mut jar, &page);
    let csrf = jar
        .iter()
        .find(|(k, _)| k == "__Host-tessera_csrf")
        .map(|(_, v)| v.clone())
        .context("GET /login set no CSRF cookie")?;
    let form = http::form(&[("csrf", &csrf), ("email", &email), ("password", PASSWORD)]);
    let res = once(
        addr,
        &request(
            "POST",
            "/login",
            &[cookie_header(&jar), forwarded(i)],
            Some(("application/x-www-form-urlencoded", &form)),
        ),
    )
    .await?;
    ensure!(
        res.status == 303 || res.status == 302,
        "POST /login answered {}: {}",
        res.status,
        res.text()
    );
    keep_cookies(&mut jar, &res);
    ensure!(
        jar.iter().any(|(k, _)| k == "__Host-tessera_session"),
        "POST /login set no session cookie"
    );
    Ok(cookie_header(&jar)
        .trim_start_matches("Cookie: ")
        .to_owned())
}

fn keep_cookies(jar: &mut Vec<(String, String)>, res: &http::Response) {
    for line in res.headers("set-cookie") {
        let Some((name, value)) = line.split(';').next().and_then(|p| p.split_once('=')) else {
            continue;
        };
        jar.retain(|(k, _)| k != name);
        if !line.contains("Max-Age=0") {
            jar.push((name.to_owned(), value.to_owned()));
        }
    }
}

fn cookie_header(jar: &[(String, String)]) -> String {
    let pairs: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("Cookie: {}", pairs.join("; "))
}
