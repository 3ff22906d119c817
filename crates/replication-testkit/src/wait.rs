//! Waiting for a condition instead of sleeping for a while: every helper polls its
//! condition and fails the test (or returns `false`) only when a generous limit passes.
//!
//! The async helpers run on tokio time, so under `#[tokio::test(start_paused = true)]`
//! their polling advances the paused clock and costs no wall time; on a real-time
//! runtime they poll real time. The blocking ones serve real processes (a daemon, a
//! replica syncing), which need wall time, and poll that.

use crate::redis_server::TestkitError;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long a condition may take before the test fails. Far beyond what any checked
/// behaviour needs, even on a loaded machine: the limit only stops a broken build from
/// hanging, it is never what a test measures.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// How often the async helpers look again (tokio time).
const ASYNC_POLL: Duration = Duration::from_millis(20);

/// How often the blocking helpers look again (wall time).
const BLOCKING_POLL: Duration = Duration::from_millis(50);

/// Polls `check` until it holds.
///
/// # Panics
/// When it still does not hold after [`WAIT_LIMIT`] (of tokio time), naming `what`.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    eventually_some(what, || check().then_some(())).await;
}

/// Polls `probe` until it yields a value, and returns it.
///
/// # Panics
/// When it yields none within [`WAIT_LIMIT`] (of tokio time), naming `what`.
pub async fn eventually_some<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let limit = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < limit,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(ASYNC_POLL).await;
    }
}

/// Polls the async `check` until it holds.
///
/// # Panics
/// When it still does not hold after [`WAIT_LIMIT`] (of tokio time), naming `what`.
pub async fn eventually_async<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_some_async(what, || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await;
}

/// Polls the async `probe` until it yields a value, and returns it.
///
/// # Panics
/// When it yields none within [`WAIT_LIMIT`] (of tokio time), naming `what`.
pub async fn eventually_some_async<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let limit = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < limit,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(ASYNC_POLL).await;
    }
}

/// Polls the async `check` until it holds (`true`) or `deadline` of tokio time passes
/// (`false`), for callers that report the failure themselves.
pub async fn within<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let limit = tokio::time::Instant::now() + deadline;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= limit {
            return false;
        }
        tokio::time::sleep(ASYNC_POLL).await;
    }
}

/// Polls `check` on wall time, blocking the thread, until it holds (`true`) or
/// `deadline` passes (`false`): for conditions on real processes.
pub fn wait_blocking(deadline: Duration, mut check: impl FnMut() -> bool) -> bool {
    wait_until(deadline, "", || Ok(check())).is_ok()
}

/// Polls `check` on wall time every 50 ms until it returns `Ok(true)`; `Timeout` naming
/// `what` when `deadline` passes first (an `Err` from `check` counts as "not yet": the
/// server may be restarting).
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
        std::thread::sleep(BLOCKING_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn eventually_returns_once_the_condition_holds() {
        let mut calls = 0;
        eventually("the third look", || {
            calls += 1;
            calls == 3
        })
        .await;
        assert_eq!(calls, 3);
        assert_eq!(eventually_some("a value", || Some(7)).await, 7);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "timed out waiting until never")]
    async fn eventually_fails_the_test_when_the_limit_passes() {
        eventually("never", || false).await;
    }

    #[tokio::test(start_paused = true)]
    async fn within_reports_whether_the_condition_held() {
        let calls = AtomicU32::new(0);
        let calls = &calls;
        assert!(
            within(Duration::from_secs(1), || async move {
                calls.fetch_add(1, Ordering::Relaxed) == 2
            })
            .await
        );
        assert!(!within(Duration::from_secs(1), || async { false }).await);
    }

    #[test]
    fn wait_blocking_reports_whether_the_condition_held() {
        let mut calls = 0;
        assert!(wait_blocking(Duration::from_secs(5), || {
            calls += 1;
            calls == 2
        }));
        assert!(!wait_blocking(Duration::from_millis(60), || false));
    }
}
