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
// The HTTP suite's form client (the web pages as a browser without script drives them).
#[allow(dead_code)]
#[path = "../api/forms.rs"]
mod forms;
// The HTTP suite's helpers (problem assertions, a private redis-server), shared rather
// than copied; this binary uses only some of them.
#[allow(dead_code, unused_imports)]
#[path = "../api/helpers.rs"]
mod helpers;
mod node;
mod postgres;
mod redis_outage;
mod shutdown;
