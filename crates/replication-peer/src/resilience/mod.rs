//! Resilience of peer calls as tower layers, composed in this one module.
//!
//! Query stack (every non-blocking read of a peer), outermost first:
//!
//! 1. [`CircuitBreakerLayer`]: fails fast with `PeerError::CircuitOpen` while the peer's
//!    circuit is open; one *logical* call (after retries) counts as one success or failure;
//! 2. rate limit (`settings.peer.max_requests_per_second`, optional): bounds what the cold
//!    path can ask of one peer; retries are not counted against it;
//! 3. retry (`RetryReads`): `settings.peer.retries` extra attempts of the reads no caller
//!    retries itself (repair's tree, item and size reads, pings), under the one
//!    `RetryPolicy`, only for errors that say they are retriable. Reads whose caller owns a
//!    retry loop pass through once: the tailer's checked reads and stream facts, the hot
//!    path's delete evidence (existence, tombstones; see `Query::retried_in_stack`);
//! 4. timeout (`settings.peer.command_timeout`): innermost, so each attempt is bounded.
//!
//! The stack is wrapped in a `Buffer` so all callers of one peer share it (rate-limit
//! window, breaker) while their calls still run concurrently.
//!
//! The stream stack (blocking `XREAD` on its own connection) is the same breaker around the
//! stream service, which bounds each read by `BLOCK` + `command_timeout` itself (the bound
//! varies per request). It has no retry layer: the tailer owns retrying stream reads, with
//! its own capped backoff.
//!
//! fred is configured not to retry: `max_command_attempts = 1` (a command in flight when a
//! connection drops fails instead of being replayed) and calls made while disconnected fail
//! at once instead of queueing, before either stack (`RedisPeer::query`, `stream_read`): they
//! never reach the peer, so they count neither for the breaker nor as retries, and the
//! first call after a reconnect goes through at once. fred only owns *reconnecting* (exponential backoff with
//! jitter, forever). So retries never multiply. The one exception is fred's: it sends a
//! `MULTI`/`EXEC` block (the tailer's checked read) once more after reconnecting whatever
//! its attempt count, inside the same call; a read, so harmless.

pub(crate) mod circuit;
mod retry;

pub(crate) use retry::{RetriedInStack, RetryReads};

use circuit::{CircuitBreaker, CircuitBreakerLayer, CircuitOpenError};
use futures::future::BoxFuture;
use replication_core::{PeerError, PeerSettings};
use std::time::Duration;
use tower::buffer::Buffer;
use tower::limit::RateLimitLayer;
use tower::util::BoxService;
use tower::{BoxError, Service, ServiceBuilder};

/// Whether an error says the peer is unhealthy (counts for the breaker, worth a retry):
/// connection trouble, timeouts and refused credentials, but not a peer's bad data.
pub(crate) fn is_peer_failure(error: &BoxError) -> bool {
    if let Some(peer) = error.downcast_ref::<PeerError>() {
        return matches!(
            peer,
            PeerError::Connection { .. } | PeerError::Timeout { .. } | PeerError::Auth { .. }
        );
    }
    error.is::<tower::timeout::error::Elapsed>()
}

/// A shared, cloneable handle to a peer's query stack.
pub(crate) type SharedStack<Req, Res> = Buffer<Req, BoxFuture<'static, Result<Res, BoxError>>>;

/// Builds the query stack around `inner` (see the module docs for the order).
pub(crate) fn query_stack<S, Req>(
    inner: S,
    settings: &PeerSettings,
    breaker: CircuitBreaker,
) -> SharedStack<Req, S::Response>
where
    S: Service<Req, Error = PeerError> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    Req: Clone + RetriedInStack + Send + 'static,
{
    let rate_limit = settings
        .max_requests_per_second
        .map(|n| RateLimitLayer::new(u64::from(n.max(1)), Duration::from_secs(1)));
    let retry_not_retriable_breaker_errors = is_peer_failure;
    let stack = ServiceBuilder::new()
        .layer(
            CircuitBreakerLayer::new(breaker)
                .with_failure_predicate(retry_not_retriable_breaker_errors),
        )
        .option_layer(rate_limit)
        .retry(RetryReads::new(settings.retries))
        .timeout(settings.command_timeout)
        .map_err(|e: PeerError| -> BoxError { Box::new(e) })
        .service(inner);
    // Enough slots for every concurrent caller of one peer; more just wait their turn.
    Buffer::new(BoxService::new(stack), 64)
}

/// Converts an error out of a stack back into the core error.
pub(crate) fn to_peer_error(
    peer: &str,
    operation: &'static str,
    timeout: Duration,
    error: BoxError,
) -> PeerError {
    let error = match error.downcast::<PeerError>() {
        Ok(peer_error) => return *peer_error,
        Err(other) => other,
    };
    if error.is::<CircuitOpenError>() {
        return PeerError::CircuitOpen {
            peer: peer.to_owned(),
        };
    }
    if error.is::<tower::timeout::error::Elapsed>() {
        return PeerError::Timeout {
            peer: peer.to_owned(),
            operation,
            after: timeout,
        };
    }
    if error.is::<tower::buffer::error::Closed>() {
        return PeerError::Closed {
            peer: peer.to_owned(),
        };
    }
    PeerError::Connection {
        peer: peer.to_owned(),
        message: error.to_string(),
    }
}
