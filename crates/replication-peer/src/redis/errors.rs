//! Conversion of fred errors into core's `PeerError`, with secrets scrubbed.
//!
//! This is the crate edge: no fred type leaves it.

use fred::error::{Error as FredError, ErrorKind};
use replication_core::PeerError;

/// Removes `secret` from `text` (fred and Redis should never echo it, but a message
/// built from a URL or a config dump could).
pub(crate) fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(secret) if !secret.is_empty() => text.replace(secret, "***"),
        _ => text.to_owned(),
    }
}

/// Whether a fred error means the server refused our credentials.
pub(crate) fn is_auth(error: &FredError) -> bool {
    let details = error.details();
    matches!(error.kind(), ErrorKind::Auth)
        || details.contains("WRONGPASS")
        || details.contains("NOAUTH")
        || details.contains("invalid password")
        || details.contains("invalid username-password")
}

/// Maps a fred error to the core error of peer `peer`.
pub(crate) fn to_peer_error(peer: &str, error: &FredError, secret: Option<&str>) -> PeerError {
    let message = scrub(error.details(), secret);
    let peer = peer.to_owned();
    if is_auth(error) {
        return PeerError::Auth { peer, message };
    }
    // A restarted Redis answers LOADING while it replays its AOF: a transient condition.
    // fred reports a command it could not send (connection gone) as a routing failure.
    if message.starts_with("LOADING")
        || message.starts_with("BUSY")
        || message.contains("Failed to route")
    {
        return PeerError::Connection { peer, message };
    }
    match error.kind() {
        ErrorKind::IO
        | ErrorKind::Canceled
        | ErrorKind::Routing
        | ErrorKind::Backpressure
        | ErrorKind::Tls => PeerError::Connection { peer, message },
        ErrorKind::Timeout => PeerError::Connection {
            peer,
            message: format!("timed out: {message}"),
        },
        ErrorKind::Config | ErrorKind::Url => PeerError::InvalidConfig { peer, message },
        _ => PeerError::Protocol { peer, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_and_scrubs() {
        let wrong = FredError::new(
            ErrorKind::Unknown,
            "WRONGPASS invalid username-password pair or user is disabled.",
        );
        assert!(matches!(
            to_peer_error("b", &wrong, Some("pw")),
            PeerError::Auth { .. }
        ));
        let io = FredError::new(ErrorKind::IO, "Connection refused, pw=hunter2");
        let mapped = to_peer_error("b", &io, Some("hunter2"));
        assert!(mapped.is_retriable());
        assert!(!mapped.to_string().contains("hunter2"));
        let bad = FredError::new(ErrorKind::Unknown, "WRONGTYPE Operation against a key");
        assert!(matches!(
            to_peer_error("b", &bad, None),
            PeerError::Protocol { .. }
        ));
        let loading = FredError::new(
            ErrorKind::Unknown,
            "LOADING Redis is loading the dataset in memory",
        );
        assert!(to_peer_error("b", &loading, None).is_retriable());
    }
}
