//! HTTP tests: a real server on port 0 over SQLite and Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod abuse;
mod account;
mod audit;
mod auth;
mod binding;
mod browser;
mod browser_rotation;
mod devices;
mod edge;
mod forms;
mod freshness;
mod helpers;
mod login_timing;
mod mfa;
mod notify;
mod notify_dead;
mod notify_events;
mod notify_outage;
mod notify_webhook;
mod ops;
mod pages;
mod pages_account;
mod pages_reset;
mod process;
mod ratelimit;
mod refresh;
mod reset;
mod reset_mail;
mod reset_races;
mod retention;
mod revocation;
mod rotation;
mod signin_races;
mod web;
mod web_account;
