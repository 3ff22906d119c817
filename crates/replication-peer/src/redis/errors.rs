//! Conversion of fred errors into core's `PeerError`, with secrets scrubbed. What an error
//! means (retriable or not) is decided once, by `replication_redis::Failure`.
//!
//! This is the crate edge: no fred type leaves it.

use fred::error::{Error as FredError, ErrorKind};
use replication_core::PeerError;
use replication_redis::{scrub, Failure};

/// Maps a fred error to the core error of peer `peer`.
pub(crate) fn to_peer_error(peer: &str, error: &FredError, secret: Option<&str>) -> PeerError {
    let message = scrub(error.details(), secret);
    let peer = peer.to_owned();
    match Failure::of(error) {
        Failure::Auth => PeerError::Auth { peer, message },
        Failure::Config => PeerError::InvalidConfig { peer, message },
        Failure::Connection if *error.kind() == ErrorKind::Timeout => PeerError::Connection {
            peer,
            message: format!("timed out: {message}"),
        },
        // A server refusing service for now (LOADING after a restart, BUSY, TRYAGAIN, ...)
        // is as transient as a dropped connection.
        Failure::Connection | Failure::Refused => PeerError::Connection { peer, message },
        // The peer's data does not follow the protocol: bad input, not a peer failure.
        Failure::WrongType | Failure::BadArgument => PeerError::Protocol { peer, message },
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
        let bad = FredError::new(
            ErrorKind::InvalidArgument,
            "WRONGTYPE Operation against a key",
        );
        assert!(matches!(
            to_peer_error("b", &bad, None),
            PeerError::Protocol { .. }
        ));
        for transient in [
            "LOADING Redis is loading the dataset in memory",
            "TRYAGAIN Multiple keys request during rehashing of slot",
            "BUSY Redis is busy running a script",
        ] {
            let error = FredError::new(ErrorKind::Unknown, transient);
            assert!(
                to_peer_error("b", &error, None).is_retriable(),
                "{transient}"
            );
        }
        let tls = FredError::new(ErrorKind::Tls, "handshake failed");
        assert!(to_peer_error("b", &tls, None).is_retriable());
        let timeout = FredError::new(ErrorKind::Timeout, "slow");
        assert!(to_peer_error("b", &timeout, None)
            .to_string()
            .contains("timed out"));
    }
}
