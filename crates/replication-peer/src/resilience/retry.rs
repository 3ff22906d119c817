//! The retry policy of the query stack: idempotent reads whose callers do not retry them
//! themselves, `settings.retries` extra attempts under the workspace's one
//! [`RetryPolicy`], retrying only what the error calls retriable.

use replication_core::{Backoff, Next, PeerError, Retriable, RetryPolicy};
use std::time::Duration;
use tower::retry::Policy;
use tower::BoxError;

/// First delay between attempts of a read; doubles up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(50);
/// Longest delay between attempts of a read.
const MAX_DELAY: Duration = Duration::from_secs(1);

/// A request that says whether the stack retries it: `false` where its caller owns the
/// retries (retrying in both places would multiply them).
pub(crate) trait RetriedInStack {
    /// Whether the stack's retry layer may retry this request.
    fn retried_in_stack(&self) -> bool;
}

/// Retries transient failures of requests the stack owns (every query of a peer is a read).
#[derive(Clone, Debug)]
pub(crate) struct RetryReads {
    backoff: Backoff,
}

impl RetryReads {
    pub(crate) fn new(retries: u32) -> Self {
        Self {
            backoff: policy(retries).backoff(),
        }
    }
}

/// The query stack's policy: `retries` extra attempts, 50 ms doubling up to 1 s.
fn policy(retries: u32) -> RetryPolicy {
    RetryPolicy::new(FIRST_DELAY, MAX_DELAY).with_max_retries(retries)
}

/// An error out of the layers below, asked whether retrying may help: a peer's own
/// error answers for itself; an attempt's timeout is transient.
struct StackError<'a>(&'a BoxError);

impl Retriable for StackError<'_> {
    fn is_retriable(&self) -> bool {
        if let Some(peer) = self.0.downcast_ref::<PeerError>() {
            return peer.is_retriable();
        }
        self.0.is::<tower::timeout::error::Elapsed>()
    }
}

impl<Req: Clone + RetriedInStack, Res> Policy<Req, Res, BoxError> for RetryReads {
    type Future = tokio::time::Sleep;

    fn retry(&mut self, req: &mut Req, result: &mut Result<Res, BoxError>) -> Option<Self::Future> {
        match result {
            Err(e) if req.retried_in_stack() => match self.backoff.next(&StackError(e)) {
                Next::Retry(delay) => Some(tokio::time::sleep(delay)),
                Next::Permanent | Next::Exhausted => None,
            },
            _ => None,
        }
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        req.retried_in_stack().then(|| req.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Read(bool);

    impl RetriedInStack for Read {
        fn retried_in_stack(&self) -> bool {
            self.0
        }
    }

    fn failed(error: PeerError) -> Result<(), BoxError> {
        Err(Box::new(error))
    }

    fn connection() -> PeerError {
        PeerError::Connection {
            peer: "p".into(),
            message: "reset".into(),
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_within_the_bound_permanent_ones_never() {
        let mut policy = RetryReads::new(2);
        let mut read = Read(true);
        assert!(policy.retry(&mut read, &mut failed(connection())).is_some());
        assert!(policy.retry(&mut read, &mut failed(connection())).is_some());
        assert!(
            policy.retry(&mut read, &mut failed(connection())).is_none(),
            "two retries, then the error is returned"
        );
        let mut fresh = RetryReads::new(2);
        let permanent = PeerError::Protocol {
            peer: "p".into(),
            message: "junk".into(),
        };
        assert!(fresh.retry(&mut read, &mut failed(permanent)).is_none());
    }

    #[tokio::test]
    async fn a_read_its_caller_retries_is_not_retried_here() {
        let mut policy = RetryReads::new(2);
        let mut owned_by_caller = Read(false);
        assert!(policy
            .retry(&mut owned_by_caller, &mut failed(connection()))
            .is_none());
        assert!(
            Policy::<Read, (), BoxError>::clone_request(&mut policy, &owned_by_caller).is_none()
        );
    }
}
