//! The tower layer and service that guard calls with a [`CircuitBreaker`].

use super::future::ResponseFuture;
use super::CircuitBreaker;
use std::fmt;
use std::task::{Context, Poll};
use tower::{BoxError, Layer, Service};

/// Decides which errors count as failures of the dependency (others, such as a peer's bad
/// data, say nothing about its health).
pub type FailurePredicate = fn(&BoxError) -> bool;

fn every_error_is_a_failure(_: &BoxError) -> bool {
    true
}

/// Wraps services in a [`CircuitBreakerService`] sharing one breaker.
#[derive(Clone)]
pub struct CircuitBreakerLayer {
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
    pub fn new(breaker: CircuitBreaker) -> Self {
        Self {
            breaker,
            is_failure: every_error_is_a_failure,
        }
    }

    /// Counts only errors for which `is_failure` holds.
    pub fn with_failure_predicate(mut self, is_failure: FailurePredicate) -> Self {
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
        }
    }
}

/// A service that fails fast with [`CircuitOpenError`](super::CircuitOpenError) while its breaker is open.
///
/// Like tower's `LoadShed`, it always reports ready and rejects in `call`, so a caller
/// is never parked on `poll_ready` and an open circuit never becomes a permanent error.
#[derive(Clone)]
pub struct CircuitBreakerService<S> {
    inner: S,
    breaker: CircuitBreaker,
    is_failure: FailurePredicate,
}

impl<S: fmt::Debug> fmt::Debug for CircuitBreakerService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerService")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker)
            .finish()
    }
}

impl<S> CircuitBreakerService<S> {
    /// The shared breaker.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
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
        // While open the call is rejected without touching the inner service, so readiness
        // of the inner service only matters when the call will go through. Checking the
        // inner service here keeps tower's contract (ready before call) in the closed case.
        if self.breaker.is_open() {
            return Poll::Ready(Ok(()));
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.breaker.try_acquire() {
            Ok(permit) => ResponseFuture::called(self.inner.call(req), permit, self.is_failure),
            Err(open) => ResponseFuture::rejected(open),
        }
    }
}
