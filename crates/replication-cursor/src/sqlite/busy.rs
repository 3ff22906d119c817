//! Retrying SQLite work that found the database locked by another connection.
//!
//! `busy_timeout` already makes SQLite wait for a lock inside one statement, but some
//! conflicts are reported at once whatever the timeout (a WAL snapshot made stale by
//! another writer, a lock upgrade that would deadlock). The whole transaction is then
//! rolled back and retried here, a bounded number of times with a doubling backoff.

use std::fmt;
use std::thread;
use std::time::Duration;

use replication_core::{NoJitter, Retriable, RetryError, RetryPolicy};
use rusqlite::ErrorCode;

/// First pause between attempts.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause between attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Whether `error` means another connection holds a lock we need.
pub(super) fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// A SQLite error, retriable exactly when the database was busy.
struct Sqlite(rusqlite::Error);

impl Retriable for Sqlite {
    fn is_retriable(&self) -> bool {
        is_busy(&self.0)
    }
}

impl fmt::Display for Sqlite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The policy of the busy loop: `retries` retries, doubling from 10 ms up to 500 ms. No
/// jitter: the contenders are this process's own connections, not a crowd.
fn policy(retries: u32) -> RetryPolicy {
    RetryPolicy::new(FIRST_BACKOFF, MAX_BACKOFF)
        .with_max_retries(retries)
        .with_jitter(std::sync::Arc::new(NoJitter))
}

/// Runs `attempt` until it succeeds, fails for another reason than a busy database, or
/// has been retried `retries` times. Sleeps between attempts, so it must only run on the
/// store's own thread, never on an async executor thread.
pub(super) fn retry_busy<T>(
    retries: u32,
    what: &str,
    mut attempt: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    retry_retriable(retries, what, || attempt().map_err(Sqlite)).map_err(|Sqlite(e)| e)
}

/// [`retry_busy`] for any error that says whether it is worth a retry.
pub(super) fn retry_retriable<T, E: Retriable + fmt::Display>(
    retries: u32,
    what: &str,
    attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    policy(retries)
        .retry_blocking(
            attempt,
            |error, backoff| {
                tracing::debug!(what, ?backoff, %error, "cursor database busy; retrying");
            },
            thread::sleep,
        )
        .map_err(RetryError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn busy() -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_BUSY), None)
    }

    #[test]
    fn busy_is_retried_until_success() {
        let mut calls = 0;
        let result = retry_busy(5, "test", || {
            calls += 1;
            if calls < 3 {
                Err(busy())
            } else {
                Ok(calls)
            }
        });
        assert_eq!(result.unwrap(), 3);
    }

    #[test]
    fn retries_are_bounded() {
        let mut calls = 0;
        let result: rusqlite::Result<()> = retry_busy(2, "test", || {
            calls += 1;
            Err(busy())
        });
        assert!(is_busy(&result.unwrap_err()));
        assert_eq!(calls, 3, "one attempt plus two retries");
    }

    #[test]
    fn other_errors_are_not_retried() {
        let mut calls = 0;
        let result: rusqlite::Result<()> = retry_busy(5, "test", || {
            calls += 1;
            Err(rusqlite::Error::SqliteFailure(
                ffi::Error::new(ffi::SQLITE_CORRUPT),
                None,
            ))
        });
        assert!(!is_busy(&result.unwrap_err()));
        assert_eq!(calls, 1);
    }

    #[test]
    fn locked_counts_as_busy() {
        let locked = rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_LOCKED), None);
        assert!(is_busy(&locked));
        assert!(!is_busy(&rusqlite::Error::QueryReturnedNoRows));
    }
}
