//! The retry policy of the query stack: idempotent reads only, `settings.retries` extra
//! attempts, capped exponential backoff with jitter between them.

use super::is_peer_failure;
use replication_core::Backoff;
use std::time::Duration;
use tower::retry::Policy;
use tower::BoxError;

/// Retries transient failures of idempotent requests (every query of a peer is a read).
#[derive(Clone, Debug)]
pub(crate) struct RetryReads {
    remaining: u32,
    backoff: Backoff,
}

impl RetryReads {
    pub(crate) fn new(retries: u32) -> Self {
        Self {
            remaining: retries,
            backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(1)),
        }
    }
}

impl<Req: Clone, Res> Policy<Req, Res, BoxError> for RetryReads {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _req: &mut Req,
        result: &mut Result<Res, BoxError>,
    ) -> Option<Self::Future> {
        match result {
            Err(e) if self.remaining > 0 && is_peer_failure(e) => {
                self.remaining -= 1;
                Some(tokio::time::sleep(
                    self.backoff.next_delay(replication_core::jitter()),
                ))
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}
