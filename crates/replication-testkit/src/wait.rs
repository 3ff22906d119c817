//! Waiting for a condition on real processes (a replica in sync, a failover done): polls
//! the condition, never a fixed sleep standing in for it.

use crate::redis_server::TestkitError;
use std::time::{Duration, Instant};

/// Polls `check` every 50 ms until it returns `Ok(true)`; `Timeout` naming `what` when
/// `deadline` passes first (an `Err` from `check` counts as "not yet": the server may be
/// restarting).
pub(crate) fn wait_until(
    deadline: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<bool, TestkitError>,
) -> Result<(), TestkitError> {
    let end = Instant::now() + deadline;
    loop {
        let last = match check() {
            Ok(true) => return Ok(()),
            Ok(false) => None,
            Err(e) => Some(e),
        };
        if Instant::now() >= end {
            let why = last.map_or(String::new(), |e| format!(" (last error: {e})"));
            return Err(TestkitError::Timeout(format!(
                "gave up after {deadline:?} waiting for {what}{why}"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
