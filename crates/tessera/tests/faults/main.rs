//! Fault injection with the real services: each test starts its own PostgreSQL and/or
//! redis-server and a real `tessera serve` child process, then stops, kills or signals
//! one of them and checks what a client sees and what the database holds.
//!
//! Needs the PostgreSQL server binaries (`initdb`, `pg_ctl`) and `redis-server`; without
//! them each test skips, naming what is missing (a failure under TESSERA_TEST_REQUIRE=all).
//! The SMTP outage (the outbox holds) is covered by `tests/api/notify_outage.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod crash;
mod database_outage;
// The HTTP suite's helpers (problem assertions, a private redis-server, the form client),
// shared rather than copied; this binary uses only some of them.
#[allow(dead_code, unused_imports, unused_macros)]
#[path = "../api/helpers/mod.rs"]
mod helpers;
mod node;
mod postgres;
mod redis_outage;
mod shutdown;
