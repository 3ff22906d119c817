//! The node store's errors, and how they map onto the engine's `SyncError`.

use replication_core::merkle::ObjectIdError;
use replication_core::SyncError;
use replication_redis::Failure;

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
    /// A Redis command failed (connection lost, timeout, the server refusing writes, an
    /// error reply).
    #[error("node Redis {operation} failed")]
    Redis {
        /// What the store was doing.
        operation: &'static str,
        /// Whether retrying may help: everything but the permanent causes of
        /// `replication_redis::Failure` (a server refusing writes for now is retriable).
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
    /// The store was closed. Retriable: the change is fine, the store is not there to take
    /// it (a caller that keeps retrying is stopped by its own shutdown).
    #[error("the node store is closed")]
    Closed,
}

impl replication_core::Retriable for NodeError {
    fn is_retriable(&self) -> bool {
        NodeError::is_retriable(self)
    }
}

impl NodeError {
    /// Whether retrying the same call may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            NodeError::Connect { .. } | NodeError::Contended { .. } | NodeError::Closed => true,
            NodeError::Redis { retriable, .. } => *retriable,
            // A change's own content, or data in the store it cannot be applied over.
            NodeError::InvalidKey(_)
            | NodeError::ReservedKey { .. }
            | NodeError::PayloadTooLarge { .. }
            | NodeError::InvalidItem { .. }
            | NodeError::Corrupt { .. }
            | NodeError::Config { .. } => false,
        }
    }

    /// Wraps a client error from `operation`; retriable unless its cause is one of the
    /// permanent ones (`replication_redis::Failure::is_permanent`).
    pub(crate) fn redis(operation: &'static str, error: fred::error::Error) -> Self {
        let retriable = !Failure::of(&error).is_permanent();
        NodeError::Redis {
            operation,
            retriable,
            source: Box::new(error),
        }
    }

    /// Whether this failure says the store cannot take writes right now (unreachable, or
    /// the server refusing them): the store then asks for backpressure until a probe write
    /// goes through.
    pub(crate) fn refuses_writes(&self) -> bool {
        matches!(
            self,
            NodeError::Redis {
                retriable: true,
                ..
            }
        )
    }
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
    fn contention_io_refusals_and_a_closed_store_are_retriable() {
        use fred::error::{Error, ErrorKind};
        assert!(SyncError::from(NodeError::Contended { attempts: 3 }).is_retriable());
        assert!(SyncError::from(NodeError::Closed).is_retriable());
        let io = NodeError::redis("write", Error::new(ErrorKind::IO, "reset"));
        assert!(io.is_retriable());
        assert!(io.refuses_writes());
        for refusal in [
            "OOM command not allowed when used memory > 'maxmemory'.",
            "MISCONF Redis is configured to save RDB snapshots",
            "READONLY You can't write against a read only replica.",
            "NOREPLICAS Not enough good replicas to write.",
            "EXECABORT Transaction discarded because of previous errors.",
            "TRYAGAIN Multiple keys request during rehashing of slot",
        ] {
            let error = NodeError::redis("write", Error::new(ErrorKind::Unknown, refusal));
            assert!(error.is_retriable(), "{refusal}");
            assert!(error.refuses_writes(), "{refusal}");
            assert!(SyncError::from(error).is_retriable(), "{refusal}");
        }
        let wrong = NodeError::redis(
            "write",
            Error::new(
                ErrorKind::InvalidArgument,
                "WRONGTYPE Operation against a key",
            ),
        );
        assert!(!wrong.is_retriable());
        assert!(SyncError::from(wrong).message().contains("WRONGTYPE"));
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
        let config = NodeError::Config {
            field: "redis_prefix",
            message: "no hash tag".into(),
        };
        assert!(!config.is_retriable());
    }
}
