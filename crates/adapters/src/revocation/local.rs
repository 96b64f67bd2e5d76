//! [`LocalBus`]: the bus of a node that is the only process on its database. The node
//! invalidates its own cache before publishing, so there is nothing to deliver.

use std::sync::Arc;

use tessera_app::ports::{BoxFuture, BusHealth, Changes, RevocationBus, RevocationSink};

/// Always "subscribed"; publishing goes nowhere. Only correct when no other process
/// (another node, the `tessera admin` CLI) revokes sessions or changes users on the same
/// database.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalBus;

impl RevocationBus for LocalBus {
    fn publish_changes<'a>(&'a self, _changes: Changes<'a>) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    fn subscribe(&self, sink: Arc<dyn RevocationSink>) {
        sink.connected();
    }

    fn health(&self) -> BusHealth {
        BusHealth::Connected
    }
}
