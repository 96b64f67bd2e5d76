//! Revocation buses (`tessera_app::ports::RevocationBus`): how one node's revocations reach
//! every node's liveness cache.
//!
//! - `redis_bus`: [`RedisBus`], Redis pub/sub on `{prefix}revocations` (session ids and
//!   `user:`-prefixed user ids, space-separated: see `wire`), with a background
//!   subscriber that reconnects with backoff and reports each loss.
//! - `local`: [`LocalBus`], one process only: always subscribed, delivers nothing.
//! - `sqlite_watch`: [`SqliteWatch`], one server on a SQLite file: drops the cache when
//!   another process (the admin CLI) wrote to the file.

mod local;
mod redis_bus;
mod sqlite_watch;
mod wire;

pub use local::LocalBus;
pub use redis_bus::{RedisBus, RedisBusError};
pub use sqlite_watch::{SqliteWatch, WATCH_PERIOD};
