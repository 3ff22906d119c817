//! The node store's errors, and how they map onto the engine's `SyncError`.

use replication_core::merkle::ObjectIdError;
use replication_core::SyncError;

/// The underlying cause of a failure, boxed so that no client library type leaks out.
pub type BoxedSource = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong in the node store.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store's configuration cannot work (names the setting and why).
    #[error("node store {field}: {message}")]
    Config {
        /// The setting, as `[node]` names it (`redis_url`, `redis_prefix`).
        field: &'static str,
        /// What is wrong, secrets redacted.
        message: String,
    },
    /// The node's Redis could not be reached when connecting.
    #[error("cannot connect to the node's Redis at {url}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// Why.
        #[source]
        source: BoxedSource,
    },
    /// A Redis command failed (connection lost, timeout, server error).
    #[error("node Redis {operation} failed")]
    Redis {
        /// What the store was doing.
        operation: &'static str,
        /// Whether retrying may help (connection trouble, timeouts).
        retriable: bool,
        /// The client's error.
        #[source]
        source: BoxedSource,
    },
    /// The object id cannot live in the path tree.
    #[error(transparent)]
    InvalidKey(#[from] ObjectIdError),
    /// The object id would collide with one of the store's own keys.
    #[error("object id {key:?} is reserved: it would collide with the store's key {reserved:?}")]
    ReservedKey {
        /// The id.
        key: String,
        /// The store key it collides with (without prefix).
        reserved: &'static str,
    },
    /// The content is larger than `max_payload_bytes`.
    #[error("payload of {key:?} is {size} bytes, over the node store's limit of {limit} bytes")]
    PayloadTooLarge {
        /// The object id.
        key: String,
        /// Content size in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A replicated item is malformed.
    #[error("item {key:?} is invalid: {reason}")]
    InvalidItem {
        /// The object id.
        key: String,
        /// What was wrong.
        reason: &'static str,
    },
    /// Other writers kept changing the store while this write was being prepared.
    #[error("write gave up after {attempts} attempts: concurrent writers kept changing the store")]
    Contended {
        /// Attempts made.
        attempts: u32,
    },
    /// Data in the store is not in the expected layout.
    #[error("node Redis key {key:?} is unreadable: {reason}")]
    Corrupt {
        /// The Redis key (with prefix).
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// The store was closed.
    #[error("the node store is closed")]
    Closed,
}

impl NodeError {
    /// Whether retrying the same call may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            NodeError::Connect { .. } | NodeError::Contended { .. } => true,
            NodeError::Redis { retriable, .. } => *retriable,
            NodeError::InvalidKey(_)
            | NodeError::ReservedKey { .. }
            | NodeError::PayloadTooLarge { .. }
            | NodeError::InvalidItem { .. }
            | NodeError::Corrupt { .. }
            | NodeError::Config { .. }
            | NodeError::Closed => false,
        }
    }

    /// Wraps a client error from `operation`.
    pub(crate) fn redis(operation: &'static str, error: fred::error::Error) -> Self {
        let retriable = is_connection_error(&error);
        NodeError::Redis {
            operation,
            retriable,
            source: Box::new(error),
        }
    }

    /// Whether this is the kind of failure that says the store is unreachable.
    pub(crate) fn is_connection_failure(&self) -> bool {
        matches!(
            self,
            NodeError::Redis {
                retriable: true,
                ..
            }
        )
    }
}

/// Connection-level trouble (as opposed to a command the server refused).
fn is_connection_error(error: &fred::error::Error) -> bool {
    use fred::error::ErrorKind;
    // fred's Cluster kind also covers keys of one command on different nodes: a layout
    // fault that retrying cannot fix (the prefix's hash tag keeps this store's keys in one
    // slot, so it would be a bug).
    if error.kind() == &ErrorKind::Cluster && error.details().contains("same cluster node") {
        return false;
    }
    matches!(
        error.kind(),
        ErrorKind::IO
            | ErrorKind::Timeout
            | ErrorKind::Canceled
            | ErrorKind::Routing
            | ErrorKind::Backpressure
            // Finding the primary (Sentinel) or the slot's owner (Cluster) failed for now.
            | ErrorKind::Sentinel
            | ErrorKind::Cluster
    ) || [
        "LOADING",
        "BUSY",
        "TRYAGAIN",
        // A failover in progress: the old primary was demoted, the Cluster has no owner
        // for the slot yet, or a replica lost its primary.
        "READONLY",
        "CLUSTERDOWN",
        "MASTERDOWN",
        // min-replicas-to-write unmet: no replica keeps up with the primary for now.
        "NOREPLICAS",
    ]
    .iter()
    .any(|prefix| error.details().starts_with(prefix))
}

impl From<NodeError> for SyncError {
    fn from(error: NodeError) -> Self {
        // The message carries the whole chain, since callers often log only `Display`.
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        let base = if error.is_retriable() {
            SyncError::new(message)
        } else {
            SyncError::permanent(message)
        };
        base.with_source(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_error_names_key_size_and_limit_and_is_permanent() {
        let e = NodeError::PayloadTooLarge {
            key: "a.b".into(),
            size: 20,
            limit: 10,
        };
        let sync: SyncError = e.into();
        assert!(!sync.is_retriable());
        for part in ["a.b", "20", "10"] {
            assert!(sync.message().contains(part), "{}", sync.message());
        }
    }

    #[test]
    fn contention_and_io_are_retriable() {
        assert!(SyncError::from(NodeError::Contended { attempts: 3 }).is_retriable());
        let io = NodeError::redis(
            "write",
            fred::error::Error::new(fred::error::ErrorKind::IO, "reset"),
        );
        assert!(io.is_retriable());
        assert!(io.is_connection_failure());
        let refused = NodeError::redis(
            "write",
            fred::error::Error::new(fred::error::ErrorKind::Unknown, "WRONGTYPE"),
        );
        assert!(!refused.is_retriable());
        assert!(SyncError::from(refused).message().contains("WRONGTYPE"));
    }

    #[test]
    fn a_failover_in_progress_is_retriable() {
        use fred::error::{Error, ErrorKind};
        for (kind, details) in [
            (
                ErrorKind::Unknown,
                "READONLY You can't write against a read only replica.",
            ),
            (ErrorKind::Unknown, "CLUSTERDOWN The cluster is down"),
            (ErrorKind::Unknown, "MASTERDOWN Link with MASTER is down"),
            (
                ErrorKind::Unknown,
                "NOREPLICAS Not enough good replicas to write.",
            ),
            (ErrorKind::Sentinel, "Failed to read cached sentinel nodes."),
            (ErrorKind::Cluster, "Failed to find a cluster node for slot"),
        ] {
            let error = NodeError::redis("write", Error::new(kind, details));
            assert!(error.is_retriable(), "{details}");
        }
        let layout = NodeError::redis(
            "write",
            Error::new(
                ErrorKind::Cluster,
                "All transaction commands must use the same cluster node.",
            ),
        );
        assert!(!layout.is_retriable());
        let config = NodeError::Config {
            field: "redis_prefix",
            message: "no hash tag".into(),
        };
        assert!(!config.is_retriable());
    }
}
