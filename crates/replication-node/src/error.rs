//! The node store's errors, and how they map onto the engine's `SyncError`.

use replication_core::merkle::ObjectIdError;
use replication_core::SyncError;

/// The underlying cause of a failure, boxed so that no client library type leaks out.
pub type BoxedSource = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong in the node store.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
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
    matches!(
        error.kind(),
        ErrorKind::IO
            | ErrorKind::Timeout
            | ErrorKind::Canceled
            | ErrorKind::Routing
            | ErrorKind::Backpressure
    ) || error.details().starts_with("LOADING")
        || error.details().starts_with("BUSY")
        || error.details().starts_with("TRYAGAIN")
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
}
