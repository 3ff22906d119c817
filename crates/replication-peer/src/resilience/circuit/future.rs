//! The response future of [`super::CircuitBreakerService`]: reports the outcome to the breaker.

use super::layer::FailurePredicate;
use super::{CallPermit, CircuitOpenError};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tower::BoxError;

pin_project! {
    /// Resolves to the inner response, or to [`CircuitOpenError`] when the call was rejected.
    #[derive(Debug)]
    pub(crate) struct ResponseFuture<F> {
        #[pin]
        inner: Option<F>,
        permit: Option<CallPermit>,
        rejected: Option<CircuitOpenError>,
        is_failure: Option<FailurePredicate>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn called(inner: F, permit: CallPermit, is_failure: FailurePredicate) -> Self {
        Self {
            inner: Some(inner),
            permit: Some(permit),
            rejected: None,
            is_failure: Some(is_failure),
        }
    }

    pub(super) fn rejected(error: CircuitOpenError) -> Self {
        Self {
            inner: None,
            permit: None,
            rejected: Some(error),
            is_failure: None,
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else {
            let error = this.rejected.take().unwrap_or(CircuitOpenError {
                retry_after: std::time::Duration::ZERO,
            });
            return Poll::Ready(Err(Box::new(error)));
        };
        let result = ready!(inner.poll(cx)).map_err(Into::into);
        if let Some(permit) = this.permit.take() {
            match &result {
                Ok(_) => permit.success(),
                Err(e) if this.is_failure.is_some_and(|is_failure| is_failure(e)) => {
                    permit.failure()
                }
                // Not the dependency's fault: the call still proved it reachable.
                Err(_) => permit.success(),
            }
        }
        Poll::Ready(result)
    }
}
