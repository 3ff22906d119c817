//! Key names of a peer (PROTOCOL.md "Keys"): everything starts with the peer's prefix; and
//! commands routed by the key they name, so each reaches the right node of a Redis Cluster
//! (a peer written by sync-engine has no hash tag: its keys spread over every slot).

use fred::types::{ClusterHash, CustomCommand};

/// `name`, sent to the Cluster node that owns `key` (ignored by a single server). fred
/// would otherwise hash the first argument, which for `XINFO STREAM key` or
/// `XREAD COUNT n … STREAMS key` is not the key.
pub(crate) fn command_on(name: &'static str, key: &str, blocking: bool) -> CustomCommand {
    CustomCommand::new_static(name, ClusterHash::from(key), blocking)
}

/// Builds the keys of one peer from its `redis_prefix`.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn cdc(&self) -> String {
        format!("{}cdc", self.prefix)
    }

    pub(crate) fn merkle_hash(&self, path: &str) -> String {
        format!("{}merkle:hash:{path}", self.prefix)
    }

    pub(crate) fn merkle_children(&self, path: &str) -> String {
        format!("{}merkle:children:{path}", self.prefix)
    }

    pub(crate) fn item(&self, object_id: &str) -> String {
        format!("{}{object_id}", self.prefix)
    }

    pub(crate) fn tombstones(&self) -> String {
        format!("{}tombstones", self.prefix)
    }
}
