//! Errors: opening the adapter ([`AdapterError`]), and the mapping of sync-engine's and
//! Redis's errors onto the engine's [`SyncError`] (retriable unless retrying cannot help).

use replication_core::SyncError;
use sync_engine::StorageError;

/// Why the adapter could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The sync-engine configuration names no Redis: the adapter keeps its tombstones there.
    #[error("sync-engine has no redis_url: the adapter needs sync-engine's Redis")]
    NoRedis,
    /// sync-engine's Redis could not be reached.
    #[error("cannot connect to sync-engine's Redis at {url}: {reason}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// What the client said (password redacted).
        reason: String,
    },
}

/// A sync-engine error as the engine sees it: corruption cannot be retried away, everything
/// else (a backend down, backpressure) can.
pub(crate) fn storage(what: &str, error: StorageError) -> SyncError {
    let message = format!("sync-engine {what}: {error}");
    match error {
        StorageError::Corruption { .. } => SyncError::permanent(message).with_source(error),
        _ => SyncError::new(message).with_source(error),
    }
}

/// A Redis error on the adapter's own connection: retriable when the connection or the
/// server's state is at fault, permanent when the reply itself is not what was asked for.
pub(crate) fn redis(what: &str, error: redis::RedisError) -> SyncError {
    let message = format!("sync-engine's Redis, {what}: {error}");
    let transient = error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || !error.is_unrecoverable_error();
    if transient && error.kind() != redis::ErrorKind::UnexpectedReturnType {
        SyncError::new(message).with_source(error)
    } else {
        SyncError::permanent(message).with_source(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corruption_is_permanent_and_backend_errors_are_retriable() {
        let corrupt = StorageError::Corruption {
            id: "k".into(),
            expected: "a".into(),
            actual: "b".into(),
        };
        assert!(!storage("get", corrupt).is_retriable());
        let down = storage("submit", StorageError::Backend("refused".into()));
        assert!(down.is_retriable());
        assert!(down.message().contains("submit"), "{}", down.message());
    }

    #[test]
    fn io_errors_are_retriable_and_type_errors_are_not() {
        let io = redis::RedisError::from(std::io::Error::other("reset"));
        assert!(redis("HMGET", io).is_retriable());
        let wrong = redis::RedisError::from((redis::ErrorKind::UnexpectedReturnType, "not a hash"));
        assert!(!redis("HMGET", wrong).is_retriable());
    }
}
