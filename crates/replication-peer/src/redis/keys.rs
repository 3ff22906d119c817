//! Commands routed by the key they name, so each reaches the right node of a Redis Cluster
//! (a peer written by sync-engine has no hash tag: its keys spread over every slot). The key
//! names themselves are core's (`replication_core::wire_keys`).

use fred::types::{ClusterHash, CustomCommand};

/// `name`, sent to the Cluster node that owns `key` (ignored by a single server). fred
/// would otherwise hash the first argument, which for `XINFO STREAM key` or
/// `XREAD COUNT n … STREAMS key` is not the key.
pub(crate) fn command_on(name: &'static str, key: &str) -> CustomCommand {
    CustomCommand::new_static(name, ClusterHash::from(key), false)
}

/// [`command_on`] for a command that blocks its connection until it answers
/// (`XREAD BLOCK`): fred then sends nothing else on that connection meanwhile.
pub(crate) fn blocking_command_on(name: &'static str, key: &str) -> CustomCommand {
    CustomCommand::new_static(name, ClusterHash::from(key), true)
}
