//! The tower layer and service that guard calls with a [`CircuitBreaker`].

use super::future::ResponseFuture;
use super::{CallPermit, CircuitBreaker, CircuitOpenError};
use std::fmt;
use std::task::{Context, Poll};
use tower::{BoxError, Layer, Service};

/// Decides which errors count as failures of the dependency (others, such as a peer's bad
/// data, say nothing about its health).
pub(crate) type FailurePredicate = fn(&BoxError) -> bool;

fn every_error_is_a_failure(_: &BoxError) -> bool {
    true
}

/// Wraps services in a [`CircuitBreakerService`] sharing one breaker.
#[derive(Clone)]
pub(crate) struct CircuitBreakerLayer {
    breaker: CircuitBreaker,
    is_failure: FailurePredicate,
}

impl fmt::Debug for CircuitBreakerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("breaker", &self.breaker)
            .finish()
    }
}

impl CircuitBreakerLayer {
    /// A layer where every error counts as a failure.
    pub(crate) fn new(breaker: CircuitBreaker) -> Self {
        Self {
            breaker,
            is_failure: every_error_is_a_failure,
        }
    }

    /// Counts only errors for which `is_failure` holds.
    pub(crate) fn with_failure_predicate(mut self, is_failure: FailurePredicate) -> Self {
        self.is_failure = is_failure;
        self
    }
}

impl<S> Layer<S> for CircuitBreakerLayer {
    type Service = CircuitBreakerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService {
            inner,
            breaker: self.breaker.clone(),
            is_failure: self.is_failure,
            decision: None,
        }
    }
}

/// A service that fails fast with [`CircuitOpenError`](super::CircuitOpenError) while its breaker is open.
///
/// Like tower's `LoadShed`, it reports ready while open and rejects in `call`, so a caller
/// is never parked on `poll_ready` and an open circuit never becomes a permanent error.
/// The breaker is asked once, in `poll_ready`, and the answer (a [`CallPermit`] or the
/// rejection) is carried into `call`, like tower's concurrency-limit permit: an open
/// period that ends in between cannot let a call through to an inner service that was
/// never polled ready.
pub(crate) struct CircuitBreakerService<S> {
    inner: S,
    breaker: CircuitBreaker,
    is_failure: FailurePredicate,
    decision: Option<Decision>,
}

/// What `poll_ready` decided for the next call.
#[derive(Debug)]
enum Decision {
    /// Call the inner service (polled ready) under this permit.
    Call(CallPermit),
    /// Reject without calling.
    Reject(CircuitOpenError),
}

impl<S: Clone> Clone for CircuitBreakerService<S> {
    /// A clone shares the breaker but not a decision: it polls ready for itself.
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            breaker: self.breaker.clone(),
            is_failure: self.is_failure,
            decision: None,
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for CircuitBreakerService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerService")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker)
            .finish()
    }
}

impl<S, Req> Service<Req> for CircuitBreakerService<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let decision = self
            .decision
            .get_or_insert_with(|| match self.breaker.try_acquire() {
                Ok(permit) => Decision::Call(permit),
                Err(open) => Decision::Reject(open),
            });
        match decision {
            // Rejected without touching the inner service: its readiness does not matter.
            Decision::Reject(_) => Poll::Ready(Ok(())),
            Decision::Call(_) => match self.inner.poll_ready(cx) {
                Poll::Ready(Err(e)) => {
                    // Dropping the permit unresolved frees a half-open probe slot.
                    self.decision = None;
                    Poll::Ready(Err(e.into()))
                }
                other => other.map_err(Into::into),
            },
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self
            .decision
            .take()
            .expect("poll_ready must report ready before call (tower::Service contract)")
        {
            Decision::Call(permit) => {
                ResponseFuture::called(self.inner.call(req), permit, self.is_failure)
            }
            Decision::Reject(open) => ResponseFuture::rejected(open),
        }
    }
}
