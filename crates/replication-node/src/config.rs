//! Configuration of the node store: where the node's Redis is and the limits it enforces.

use crate::keys::hash_tag;
use crate::NodeError;
use replication_core::{ObjectIdLimits, RedisUrl};
use std::time::Duration;

/// Where and how the node store keeps its data.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeStoreConfig {
    /// URL of the node's own Redis (may carry `user:pass@`): `redis://` or `rediss://` for
    /// one server, `redis[s]-sentinel://…?sentinelServiceName=…` for a primary found through
    /// Sentinel, `redis[s]-cluster://` for a Redis Cluster (see `replication_core::RedisUrl`).
    pub redis_url: String,
    /// Prefix of every key the store writes, with its own trailing separator (`"node-b:"`);
    /// empty for bare keys. On a Cluster it must hold a hash tag (`"{node-b}:"`).
    pub redis_prefix: String,
    /// Largest item content accepted, in bytes; larger writes fail permanently.
    pub max_payload_bytes: usize,
    /// Approximate length the CDC stream is trimmed to (`XADD ... MAXLEN ~ n`).
    pub cdc_maxlen: u64,
    /// Bound on every Redis command, so that a hung server surfaces as an error.
    pub command_timeout: Duration,
    /// Object ids longer or deeper than this are refused (permanently) before any work:
    /// the Merkle bookkeeping of an id grows with its length times its depth.
    pub object_id_limits: ObjectIdLimits,
}

impl NodeStoreConfig {
    /// 16 MiB, the same cap the CDC decoder enforces by default.
    pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;
    /// sync-engine's stream length.
    pub const DEFAULT_CDC_MAXLEN: u64 = 100_000;
    /// Generous enough for a large batch, short enough to notice a dead server.
    pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

    /// A config for `redis_url` with no prefix and default limits.
    pub fn new(redis_url: impl Into<String>) -> Self {
        Self {
            redis_url: redis_url.into(),
            redis_prefix: String::new(),
            max_payload_bytes: Self::DEFAULT_MAX_PAYLOAD_BYTES,
            cdc_maxlen: Self::DEFAULT_CDC_MAXLEN,
            command_timeout: Self::DEFAULT_COMMAND_TIMEOUT,
            object_id_limits: ObjectIdLimits::default(),
        }
    }

    /// Sets the key prefix (builder style).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.redis_prefix = prefix.into();
        self
    }

    /// Checks what can be known before connecting: the URL's form, and on a Redis Cluster
    /// that the prefix puts every key of the store in one slot. Returns the parsed URL.
    pub fn validate(&self) -> Result<RedisUrl, NodeError> {
        let url = RedisUrl::parse(&self.redis_url).map_err(|message| NodeError::Config {
            field: "redis_url",
            message: format!("{}: {message}", self.redacted_url()),
        })?;
        if url.is_cluster() && hash_tag(&self.redis_prefix).is_none() {
            return Err(NodeError::Config {
                field: "redis_prefix",
                message: format!(
                    "{:?} has no hash tag, but the node's Redis is a Cluster: every key of a \
                     node must share one hash slot, since a write is one MULTI/EXEC block \
                     running a script over all of them; put the node's name in braces, \
                     for example \"{{node-b}}:\"",
                    self.redis_prefix
                ),
            });
        }
        Ok(url)
    }

    /// The URL with any password replaced by `***`, for logs and errors.
    pub fn redacted_url(&self) -> String {
        replication_core::config::redact_url(&self.redis_url)
    }
}

impl std::fmt::Debug for NodeStoreConfig {
    // The URL may hold a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeStoreConfig")
            .field("redis_url", &self.redacted_url())
            .field("redis_prefix", &self.redis_prefix)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("cdc_maxlen", &self.cdc_maxlen)
            .field("command_timeout", &self.command_timeout)
            .field("object_id_limits", &self.object_id_limits)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let config = NodeStoreConfig::new("redis://user:secret@host:6379/0").with_prefix("n:");
        let shown = format!("{config:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("***"));
        assert_eq!(config.max_payload_bytes, 16 * 1024 * 1024);
        assert_eq!(config.cdc_maxlen, 100_000);
    }

    #[test]
    fn a_cluster_store_needs_a_hash_tagged_prefix() {
        let cluster = NodeStoreConfig::new("redis-cluster://u:hunter2@h:7000").with_prefix("n:");
        let error = cluster.validate().unwrap_err();
        let shown = error.to_string();
        assert!(
            shown.contains("redis_prefix") && shown.contains("hash tag"),
            "{shown}"
        );
        assert!(shown.contains("{node-b}:"), "{shown}");
        assert!(!error.is_retriable());
        let tagged = NodeStoreConfig::new("redis-cluster://h:7000").with_prefix("{n}:");
        assert!(tagged.validate().unwrap().is_cluster());
        // One server or a Sentinel-watched primary takes any prefix.
        for url in ["redis://h:1", "redis-sentinel://h?sentinelServiceName=m"] {
            assert!(NodeStoreConfig::new(url)
                .with_prefix("n:")
                .validate()
                .is_ok());
        }
        let bad = NodeStoreConfig::new("redis-sentinel://u:hunter2@h")
            .validate()
            .unwrap_err();
        let shown = bad.to_string();
        assert!(
            shown.contains("sentinelServiceName") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
