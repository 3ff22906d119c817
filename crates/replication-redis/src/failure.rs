//! Classifying fred errors: which failures may go away by themselves and which are
//! permanent.
//!
//! A write the server refuses *for now* must never be mistaken for bad input: the caller
//! would drop the change. So the permanent causes are listed (an allow-list) and every other
//! error, including error replies nobody anticipated, counts as retriable.

use fred::error::{Error, ErrorKind};

/// Why a Redis call failed, as far as the caller's retry decision goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The connection is down, broke, timed out or failed its TLS handshake, or the
    /// command could not be sent. Retriable.
    Connection,
    /// The server refused our credentials (`WRONGPASS`, `NOAUTH`). Retriable in the sense
    /// of [`Failure::is_permanent`]: an operator may fix the ACL; callers that report auth
    /// separately (peers) do.
    Auth,
    /// The server is up but refuses the command for now: out of memory (`OOM`), disk
    /// trouble (`MISCONF`), a replica (`READONLY`), too few replicas (`NOREPLICAS`), a
    /// discarded transaction (`EXECABORT`), loading (`LOADING`), a busy script (`BUSY`),
    /// `TRYAGAIN`, `MASTERDOWN`, `CLUSTERDOWN`, and any error not listed as permanent.
    /// Retriable.
    Refused,
    /// Permanent: our own client configuration cannot work (bad URL, unusable settings).
    Config,
    /// Permanent: the key holds a value of another type (`WRONGTYPE`); the data, not the
    /// server, is at fault.
    WrongType,
    /// Permanent: the command's arguments were refused for their content (a value over
    /// the server's `proto-max-bulk-len`, arguments the client cannot send).
    BadArgument,
}

impl Failure {
    /// Classifies a fred error.
    pub fn of(error: &Error) -> Self {
        let details = error.details();
        // Permanent causes first: the allow-list.
        if matches!(error.kind(), ErrorKind::Config | ErrorKind::Url) {
            return Failure::Config;
        }
        if details.starts_with("WRONGTYPE") {
            return Failure::WrongType;
        }
        if details.contains("exceeds maximum allowed size")
            || details.contains("invalid bulk length")
            || *error.kind() == ErrorKind::InvalidArgument
        {
            return Failure::BadArgument;
        }
        if is_auth(error) {
            return Failure::Auth;
        }
        // fred reports a command it could not send (connection gone) as a routing failure.
        if details.contains("Failed to route") {
            return Failure::Connection;
        }
        match error.kind() {
            ErrorKind::IO
            | ErrorKind::Timeout
            | ErrorKind::Canceled
            | ErrorKind::Routing
            | ErrorKind::Backpressure
            | ErrorKind::Protocol
            | ErrorKind::Tls => Failure::Connection,
            _ => Failure::Refused,
        }
    }

    /// Whether retrying the same call cannot help: only the causes listed as permanent.
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            Failure::Config | Failure::WrongType | Failure::BadArgument
        )
    }
}

/// Whether a fred error means the server refused our credentials.
fn is_auth(error: &Error) -> bool {
    let details = error.details();
    *error.kind() == ErrorKind::Auth
        || details.contains("WRONGPASS")
        || details.contains("NOAUTH")
        || details.contains("invalid password")
        || details.contains("invalid username-password")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(details: &str) -> Failure {
        // fred parses error replies into `Unknown` (or the kinds it recognises, below).
        Failure::of(&Error::new(ErrorKind::Unknown, details.to_owned()))
    }

    #[test]
    fn every_server_side_refusal_is_retriable() {
        for refusal in [
            "OOM command not allowed when used memory > 'maxmemory'.",
            "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.",
            "READONLY You can't write against a read only replica.",
            "NOREPLICAS Not enough good replicas to write.",
            "EXECABORT Transaction discarded because of previous errors.",
            "LOADING Redis is loading the dataset in memory",
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.",
            "TRYAGAIN Multiple keys request during rehashing of slot",
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
            "NOSCRIPT No matching script. Please use EVAL.",
            "NOPERM this user has no permissions to run the 'set' command",
            "ERR something nobody anticipated",
            "",
        ] {
            assert_eq!(reply(refusal), Failure::Refused, "{refusal}");
            assert!(!reply(refusal).is_permanent(), "{refusal}");
        }
        // fred's own kind for cluster errors.
        let down = Error::new(ErrorKind::Cluster, "CLUSTERDOWN The cluster is down");
        assert!(!Failure::of(&down).is_permanent());
    }

    #[test]
    fn connection_trouble_of_every_kind_is_retriable() {
        for kind in [
            ErrorKind::IO,
            ErrorKind::Timeout,
            ErrorKind::Canceled,
            ErrorKind::Routing,
            ErrorKind::Backpressure,
            ErrorKind::Protocol,
            ErrorKind::Tls,
        ] {
            let failure = Failure::of(&Error::new(kind.clone(), "broken"));
            assert_eq!(failure, Failure::Connection, "{kind:?}");
            assert!(!failure.is_permanent());
        }
        assert_eq!(
            reply("Failed to route command."),
            Failure::Connection,
            "a command that could not be sent"
        );
    }

    #[test]
    fn refused_credentials_are_auth_and_not_permanent() {
        for details in [
            "WRONGPASS invalid username-password pair or user is disabled.",
            "NOAUTH Authentication required.",
            "ERR invalid password",
        ] {
            assert_eq!(reply(details), Failure::Auth, "{details}");
        }
        let kind = Failure::of(&Error::new(ErrorKind::Auth, "denied"));
        assert_eq!(kind, Failure::Auth);
        assert!(!kind.is_permanent());
    }

    #[test]
    fn only_the_listed_causes_are_permanent() {
        assert_eq!(
            Failure::of(&Error::new(ErrorKind::Config, "Invalid or missing host.")),
            Failure::Config
        );
        assert_eq!(
            Failure::of(&Error::new(ErrorKind::Url, "bad scheme")),
            Failure::Config
        );
        // fred gives WRONGTYPE the `InvalidArgument` kind; it is the wrong-type cause.
        let wrong = Error::new(
            ErrorKind::InvalidArgument,
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        );
        assert_eq!(Failure::of(&wrong), Failure::WrongType);
        assert_eq!(
            reply("ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
            Failure::BadArgument
        );
        assert_eq!(
            reply("ERR Protocol error: invalid bulk length"),
            Failure::BadArgument
        );
        assert_eq!(
            Failure::of(&Error::new(
                ErrorKind::InvalidArgument,
                "Invalid argument(s)"
            )),
            Failure::BadArgument
        );
        for permanent in [Failure::Config, Failure::WrongType, Failure::BadArgument] {
            assert!(permanent.is_permanent());
        }
        for retriable in [Failure::Connection, Failure::Auth, Failure::Refused] {
            assert!(!retriable.is_permanent());
        }
    }
}
