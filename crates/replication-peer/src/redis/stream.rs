//! Blocking `XREAD` on one of the peer's dedicated stream connections, as a tower
//! `Service`, so a 5 s `BLOCK` never delays a ping or a Merkle read on the query
//! connection.
//!
//! A read may be followed by `XINFO STREAM` in the same pipeline ([`StreamRead::with_info`]):
//! Redis runs a blocked client's next command only once the block ends, so the facts are
//! observed after the read, as the gap check needs, and arrive with the entries instead of
//! one round trip later. The `XREAD` is therefore not flagged as blocking to fred (which
//! would hold the `XINFO` back until the reply); the time bound is ours anyway.

use super::errors::to_peer_error;
use super::keys::{blocking_command_on, command_on};
use super::reply;
use super::status::{Link, StatusTracker};
use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::types::Value;
use futures::future::BoxFuture;
use replication_core::{PeerError, RawEntry, ReadRequest, StreamInfo};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// One read of the stream connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamRead {
    pub(crate) request: ReadRequest,
    /// Also read the stream facts, right after the entries.
    pub(crate) with_info: bool,
}

/// Entries read and, when asked for, the facts after them (`None`: no such stream).
pub(crate) type StreamReply = (Vec<RawEntry>, Option<StreamInfo>);

/// Executes stream reads on the stream connection.
#[derive(Clone)]
pub(crate) struct StreamService {
    pub(crate) client: Client,
    pub(crate) cdc_key: Arc<str>,
    pub(crate) peer: Arc<str>,
    pub(crate) secret: Option<Arc<str>>,
    pub(crate) status: Arc<StatusTracker>,
    /// Which connection `client` is, for the status.
    pub(crate) link: Link,
    /// Added to the `BLOCK` time to bound one read.
    pub(crate) command_timeout: Duration,
}

impl tower::Service<StreamRead> for StreamService {
    type Response = StreamReply;
    type Error = PeerError;
    type Future = BoxFuture<'static, Result<StreamReply, PeerError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, read: StreamRead) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            this.status.ready_for_call(&this.client, this.link)?;
            let request = read.request;
            // The time bound of a blocking read depends on the request, so it lives here
            // rather than in the fixed-duration timeout layer of the query stack.
            let bound = request.block.unwrap_or_default() + this.command_timeout;
            let result = tokio::time::timeout(bound, this.execute(read)).await;
            let result = match result {
                Err(_) => Err(PeerError::Timeout {
                    peer: this.peer.to_string(),
                    operation: "read_stream",
                    after: bound,
                }),
                Ok(result) => result,
            };
            match &result {
                Ok(_) => this.status.record_success(),
                Err(e) => this.status.record_error(e),
            }
            result
        })
    }
}

impl StreamService {
    async fn execute(&self, read: StreamRead) -> Result<StreamReply, PeerError> {
        let request = read.request;
        let mut args = vec!["COUNT".to_owned(), request.count.max(1).to_string()];
        let blocking = request.block.is_some();
        if let Some(block) = request.block {
            // BLOCK 0 would wait forever; a zero timeout means "at least a millisecond".
            args.extend(["BLOCK".to_owned(), block.as_millis().max(1).to_string()]);
        }
        args.extend([
            "STREAMS".to_owned(),
            self.cdc_key.to_string(),
            request.after.to_string(),
        ]);
        let fred_error =
            |e: fred::error::Error| to_peer_error(&self.peer, &e, self.secret.as_deref());
        let protocol = |message: String| PeerError::Protocol {
            peer: self.peer.to_string(),
            message,
        };
        if !read.with_info {
            let command = if blocking {
                blocking_command_on("XREAD", &self.cdc_key)
            } else {
                command_on("XREAD", &self.cdc_key)
            };
            let value = self
                .client
                .custom::<Value, _>(command, args)
                .await
                .map_err(fred_error)?;
            return Ok((reply::xread(value).map_err(protocol)?, None));
        }
        let pipeline = self.client.pipeline();
        let _: () = pipeline
            .custom(command_on("XREAD", &self.cdc_key), args)
            .await
            .map_err(fred_error)?;
        let _: () = pipeline
            .custom(
                command_on("XINFO", &self.cdc_key),
                vec!["STREAM".to_owned(), self.cdc_key.to_string()],
            )
            .await
            .map_err(fred_error)?;
        let mut replies = pipeline.try_all::<Value>().await.into_iter();
        let (Some(entries), Some(info)) = (replies.next(), replies.next()) else {
            return Err(protocol(
                "pipeline returned fewer replies than commands".into(),
            ));
        };
        let entries = reply::xread(entries.map_err(fred_error)?).map_err(protocol)?;
        let info = match info {
            Ok(value) => Some(reply::xinfo_stream(value).map_err(protocol)?),
            Err(e) if reply::is_no_such_key(e.details()) => None,
            Err(e) => return Err(fred_error(e)),
        };
        Ok((entries, info))
    }
}
