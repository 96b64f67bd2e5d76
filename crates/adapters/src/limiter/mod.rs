//! The rate limiters: [`MemoryLimiter`] (in process, one node) and [`RedisLimiter`]
//! (shared by every node, falling back to a `MemoryLimiter` while Redis is unreachable).
//! Both keep the counted attempts and leave the decision to
//! `tessera_core::ratelimit::decide`'s rules; one conformance suite checks they agree.
//!
//! - `memory`: the in-process sliding-window log.
//! - `redis_limiter`: the Redis sorted sets and their Lua scripts (`*.lua`).
//! - `outage`: the Redis limiter's health, fallback counter and rate-limited warnings.
//! - `backlog`: the Redis limiter's settlements waiting for Redis to answer again.

mod backlog;
mod memory;
mod outage;
mod redis_limiter;

pub use memory::MemoryLimiter;
pub use redis_limiter::{RedisLimiter, RedisLimiterError};
