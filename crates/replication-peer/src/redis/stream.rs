//! Blocking `XREAD` on the peer's dedicated stream connection, as a tower `Service`, so a
//! 5 s `BLOCK` never delays a ping or a Merkle read on the query connection.

use super::errors::to_peer_error;
use super::keys::command_on;
use super::reply;
use super::status::{Link, StatusTracker};
use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::types::Value;
use futures::future::BoxFuture;
use replication_core::{PeerError, RawEntry, ReadRequest};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Executes stream reads on the stream connection.
#[derive(Clone)]
pub(crate) struct StreamService {
    pub(crate) client: Client,
    pub(crate) cdc_key: Arc<str>,
    pub(crate) peer: Arc<str>,
    pub(crate) secret: Option<Arc<str>>,
    pub(crate) status: Arc<StatusTracker>,
    /// Added to the `BLOCK` time to bound one read.
    pub(crate) command_timeout: Duration,
}

impl tower::Service<ReadRequest> for StreamService {
    type Response = Vec<RawEntry>;
    type Error = PeerError;
    type Future = BoxFuture<'static, Result<Vec<RawEntry>, PeerError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ReadRequest) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            this.status.ready_for_call(&this.client, Link::Stream)?;
            let mut args = vec!["COUNT".to_owned(), request.count.max(1).to_string()];
            let blocking = request.block.is_some();
            if let Some(block) = request.block {
                // BLOCK 0 would wait forever; a zero timeout means "at least a millisecond".
                args.extend(["BLOCK".to_owned(), block.as_millis().max(1).to_string()]);
            }
            args.extend([
                "STREAMS".to_owned(),
                this.cdc_key.to_string(),
                request.after.to_string(),
            ]);
            let command = command_on("XREAD", &this.cdc_key, blocking);
            // The time bound of a blocking read depends on the request, so it lives here
            // rather than in the fixed-duration timeout layer of the query stack.
            let bound = request.block.unwrap_or_default() + this.command_timeout;
            let result =
                tokio::time::timeout(bound, this.client.custom::<Value, _>(command, args)).await;
            let result = match result {
                Err(_) => Err(PeerError::Timeout {
                    peer: this.peer.to_string(),
                    operation: "read_stream",
                    after: bound,
                }),
                Ok(Err(e)) => Err(to_peer_error(&this.peer, &e, this.secret.as_deref())),
                Ok(Ok(value)) => reply::xread(value).map_err(|message| PeerError::Protocol {
                    peer: this.peer.to_string(),
                    message,
                }),
            };
            match &result {
                Ok(_) => this.status.record_success(),
                Err(e) => this.status.record_error(e),
            }
            result
        })
    }
}
