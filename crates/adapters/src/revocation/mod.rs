//! Revocation buses (`tessera_app::ports::RevocationBus`): how one node's revocations reach
//! every node's liveness cache.
//!
//! - `redis_bus`: [`RedisBus`], Redis pub/sub on `{prefix}revocations` (session ids and
//!   `user:`-prefixed user ids, space-separated: see `wire`), with a background
//!   subscriber that reconnects with backoff and reports each loss.
//! - `local`: [`LocalBus`], one process only: always subscribed, delivers nothing.

mod local;
mod redis_bus;
mod wire;

pub use local::LocalBus;
pub use redis_bus::{RedisBus, RedisBusError};
