//! Retrying SQLite work that found the database locked by another connection.
//!
//! `busy_timeout` already makes SQLite wait for a lock inside one statement, but some
//! conflicts are reported at once whatever the timeout (a WAL snapshot made stale by
//! another writer, a lock upgrade that would deadlock). The whole transaction is then
//! rolled back and retried here, a bounded number of times with a doubling backoff.

use std::thread;
use std::time::Duration;

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

/// Runs `attempt` until it succeeds, fails for another reason than a busy database, or
/// has been retried `retries` times. Sleeps between attempts, so it must only run on the
/// store's own thread, never on an async executor thread.
pub(super) fn retry_busy<T>(
    retries: u32,
    what: &str,
    attempt: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    retry_while(retries, what, is_busy, attempt)
}

/// [`retry_busy`] for any error type: `busy` tells which errors are worth a retry.
pub(super) fn retry_while<T, E: std::fmt::Display>(
    retries: u32,
    what: &str,
    busy: impl Fn(&E) -> bool,
    mut attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let mut backoff = FIRST_BACKOFF;
    let mut retried = 0;
    loop {
        match attempt() {
            Err(error) if busy(&error) && retried < retries => {
                retried += 1;
                tracing::debug!(what, retried, ?backoff, %error, "cursor database busy; retrying");
                thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            result => return result,
        }
    }
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
