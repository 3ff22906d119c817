//! `Retriable`: the one question every retry loop asks of an error.
//!
//! The error decides, never the caller: each error type says whether trying again may
//! succeed, and a retry loop generic over `Retriable` retries exactly those.

use crate::{CursorError, PeerError, SyncError};

/// An error that knows whether retrying the call may succeed.
pub trait Retriable {
    /// Whether retrying (later) may succeed.
    fn is_retriable(&self) -> bool;

    /// The shortest wait before a retry can succeed, when the error knows one (an open
    /// circuit knows when it half-opens); the retry policy waits at least this long.
    fn retry_after(&self) -> Option<std::time::Duration> {
        None
    }
}

impl Retriable for PeerError {
    fn is_retriable(&self) -> bool {
        PeerError::is_retriable(self)
    }
}

impl Retriable for SyncError {
    fn is_retriable(&self) -> bool {
        SyncError::is_retriable(self)
    }
}

impl Retriable for CursorError {
    fn is_retriable(&self) -> bool {
        CursorError::is_retriable(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asks<E: Retriable>(error: &E) -> bool {
        error.is_retriable()
    }

    #[test]
    fn each_error_answers_for_itself() {
        assert!(asks(&SyncError::new("busy")));
        assert!(!asks(&SyncError::permanent("too big")));
        let peer = |message: &str| PeerError::Protocol {
            peer: "p".into(),
            message: message.into(),
        };
        assert!(!asks(&peer("junk")));
        assert!(asks(&PeerError::Timeout {
            peer: "p".into(),
            operation: "read",
            after: std::time::Duration::from_secs(1),
        }));
    }
}
