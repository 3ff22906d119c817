//! The peer's non-blocking calls as a tower `Service` over the query connection: each
//! [`Query`] is one round trip (pipelined or `MULTI`/`EXEC`), except item reads, which add
//! two only for RedisJSON documents (see `item_reads`).

use super::errors::to_peer_error;
use super::keys::command_on;
use super::limits::ReadLimits;
use super::reply;
use super::status::{Link, StatusTracker};
use fred::clients::Client;
use fred::interfaces::{ClientLike, TransactionInterface};
use fred::types::{ClusterHash, CustomCommand, Value};
use futures::future::BoxFuture;
use replication_core::merkle::Hash;
use replication_core::WireKeys;
use replication_core::{CheckedRead, ItemRead, PeerError, StreamId, StreamInfo, Tombstone};
use replication_redis::Failure;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// One idempotent read of a peer.
#[derive(Clone, Debug)]
pub(crate) enum Query {
    StreamInfo,
    ReadChecked {
        after: StreamId,
        count: usize,
    },
    ReadRange {
        after: StreamId,
        until: StreamId,
        count: usize,
    },
    MerkleRoot,
    MerkleChildren(Arc<[String]>),
    Items(Arc<[String]>),
    ItemSizes(Arc<[String]>),
    Exists(Arc<[String]>),
    Tombstones(Arc<[String]>),
    Ping,
}

impl Query {
    /// Name used in timeout errors and logs.
    pub(crate) fn operation(&self) -> &'static str {
        match self {
            Query::StreamInfo => "stream_info",
            Query::ReadChecked { .. } => "read_stream_checked",
            Query::ReadRange { .. } => "read_range_checked",
            Query::MerkleRoot => "get_merkle_root",
            Query::MerkleChildren(_) => "merkle_children",
            Query::Items(_) => "read_items",
            Query::ItemSizes(_) => "item_sizes",
            Query::Exists(_) => "exists_many",
            Query::Tombstones(_) => "read_tombstones",
            Query::Ping => "ping",
        }
    }
}

impl crate::resilience::RetriedInStack for Query {
    /// The stack retries every read except those a caller retries already: the tailer
    /// re-issues its checked reads and stream facts with its own backoff, and the hot path
    /// retries its delete-evidence reads (existence, tombstones) until they succeed. A
    /// repair's tombstone read that fails fails its cycle, which the cold path runs again.
    fn retried_in_stack(&self) -> bool {
        !matches!(
            self,
            Query::ReadChecked { .. } | Query::StreamInfo | Query::Exists(_) | Query::Tombstones(_)
        )
    }
}

/// The answer to a [`Query`], same variant.
#[derive(Debug)]
pub(crate) enum Reply {
    StreamInfo(Option<StreamInfo>),
    Checked(CheckedRead),
    MerkleRoot(Option<Hash>),
    MerkleChildren(Vec<Vec<(String, Hash)>>),
    Items(Vec<ItemRead>),
    ItemSizes(Vec<Option<u64>>),
    Exists(Vec<bool>),
    Tombstones(Vec<Option<Tombstone>>),
    Ping(Duration),
}

pub(super) fn cmd(name: &'static str) -> CustomCommand {
    CustomCommand::new_static(name, ClusterHash::FirstKey, false)
}

/// Executes queries on the query connection.
#[derive(Clone)]
pub(crate) struct QueryService {
    pub(crate) client: Client,
    pub(crate) keys: WireKeys,
    pub(crate) peer: Arc<str>,
    pub(crate) secret: Option<Arc<str>>,
    pub(crate) status: Arc<StatusTracker>,
    /// Network exchanges made (a pipeline or a transaction counts once).
    pub(crate) round_trips: Arc<AtomicU64>,
    pub(crate) limits: ReadLimits,
}

impl tower::Service<Query> for QueryService {
    type Response = Reply;
    type Error = PeerError;
    type Future = BoxFuture<'static, Result<Reply, PeerError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, query: Query) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            this.status.ready_for_call(&this.client, Link::Query)?;
            let mut result = this.execute(query).await;
            // Whatever fred made of it, a call that failed because the connection went away
            // is a connection failure (retriable), not a protocol error.
            if let Err(PeerError::Protocol { .. }) = &result {
                if !this.client.is_connected() {
                    result = Err(this.status.not_connected(Link::Query));
                }
            }
            match &result {
                Ok(_) => this.status.record_success(),
                Err(e) => this.status.record_error(e),
            }
            result
        })
    }
}

impl QueryService {
    pub(super) fn fred_error(&self, e: &fred::error::Error) -> PeerError {
        to_peer_error(&self.peer, e, self.secret.as_deref())
    }

    pub(super) fn protocol(&self, message: String) -> PeerError {
        PeerError::Protocol {
            peer: self.peer.to_string(),
            message,
        }
    }

    pub(super) fn trip(&self) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
    }

    async fn execute(&self, query: Query) -> Result<Reply, PeerError> {
        match query {
            Query::Ping => {
                let started = Instant::now();
                self.trip();
                let _: Value = self
                    .client
                    .custom(cmd("PING"), Vec::<Value>::new())
                    .await
                    .map_err(|e| self.fred_error(&e))?;
                Ok(Reply::Ping(started.elapsed()))
            }
            Query::StreamInfo => {
                self.trip();
                let cdc = self.keys.cdc();
                let result: Result<Value, _> = self
                    .client
                    .custom(
                        command_on("XINFO", &cdc),
                        vec!["STREAM".to_owned(), cdc.clone()],
                    )
                    .await;
                match result {
                    Ok(v) => Ok(Reply::StreamInfo(Some(
                        reply::xinfo_stream(v).map_err(|m| self.protocol(m))?,
                    ))),
                    Err(e) if reply::is_no_such_key(e.details()) => Ok(Reply::StreamInfo(None)),
                    Err(e) => Err(self.fred_error(&e)),
                }
            }
            Query::ReadChecked { after, count } => {
                self.read_checked(after, count).await.map(Reply::Checked)
            }
            Query::ReadRange {
                after,
                until,
                count,
            } => self
                .read_range(after, until, count)
                .await
                .map(Reply::Checked),
            Query::MerkleRoot => {
                self.trip();
                let v: Value = self
                    .client
                    .custom(cmd("GET"), vec![self.keys.merkle_hash("")])
                    .await
                    .map_err(|e| self.fred_error(&e))?;
                Ok(Reply::MerkleRoot(
                    reply::merkle_hash(v).map_err(|m| self.protocol(m))?,
                ))
            }
            Query::MerkleChildren(paths) => {
                if paths.is_empty() {
                    return Ok(Reply::MerkleChildren(Vec::new()));
                }
                // One member more than the cap tells an oversized set from a full one,
                // without reading the set whole.
                let max = self.limits.max_children;
                let pipeline = self.client.pipeline();
                for path in paths.iter() {
                    let args = vec![
                        self.keys.merkle_children(path),
                        "0".to_owned(),
                        max.to_string(),
                    ];
                    let _: () = pipeline
                        .custom(cmd("ZRANGE"), args)
                        .await
                        .map_err(|e| self.fred_error(&e))?;
                }
                self.trip();
                let replies = pipeline.try_all::<Value>().await;
                let mut out = Vec::with_capacity(paths.len());
                for (path, reply) in paths.iter().zip(replies) {
                    let value = reply.map_err(|e| self.fred_error(&e))?;
                    let children = reply::merkle_children(value)
                        .map_err(|m| self.protocol(format!("children of {path:?}: {m}")))?;
                    if children.len() > max {
                        return Err(self.protocol(format!(
                            "children of {path:?}: more than {max} members \
                             (settings.limits.max_children_per_node)"
                        )));
                    }
                    out.push(self.limits.children_within(&self.peer, path, children));
                }
                Ok(Reply::MerkleChildren(out))
            }
            Query::Items(keys) => self.read_items(&keys).await.map(Reply::Items),
            Query::ItemSizes(keys) => self.item_sizes(&keys).await.map(Reply::ItemSizes),
            Query::Exists(keys) => self.exists_many(&keys).await.map(Reply::Exists),
            Query::Tombstones(keys) => {
                if keys.is_empty() {
                    return Ok(Reply::Tombstones(Vec::new()));
                }
                self.read_tombstones(&keys).await.map(Reply::Tombstones)
            }
        }
    }

    /// `MULTI; XINFO STREAM; XREAD COUNT n STREAMS cdc after; EXEC`: both observe the same
    /// stream state, so no trim can fall between the gap check and the read.
    async fn read_checked(&self, after: StreamId, count: usize) -> Result<CheckedRead, PeerError> {
        let cdc = self.keys.cdc();
        let tx = self.client.multi();
        let _: () = tx
            .custom(
                command_on("XINFO", &cdc),
                vec!["STREAM".to_owned(), cdc.clone()],
            )
            .await
            .map_err(|e| self.fred_error(&e))?;
        let args = vec![
            "COUNT".to_owned(),
            count.max(1).to_string(),
            "STREAMS".to_owned(),
            cdc.clone(),
            after.to_string(),
        ];
        let _: () = tx
            .custom(command_on("XREAD", &cdc), args)
            .await
            .map_err(|e| self.fred_error(&e))?;
        self.trip();
        match tx.exec::<Value>(false).await {
            Ok(Value::Array(mut results)) if results.len() == 2 => {
                let entries = results.pop().unwrap_or(Value::Null);
                let info = results.pop().unwrap_or(Value::Null);
                let info = reply::xinfo_stream(info).map_err(|m| self.protocol(m))?;
                let entries = reply::xread(entries).map_err(|m| self.protocol(m))?;
                Ok(CheckedRead {
                    info: Some(info),
                    entries,
                })
            }
            Ok(other) => Err(self.protocol(format!("EXEC: unexpected reply {:?}", other.kind()))),
            // XINFO fails inside the transaction when the stream does not exist.
            Err(e) if reply::is_no_such_key(e.details()) => Ok(CheckedRead {
                info: None,
                entries: Vec::new(),
            }),
            Err(e) => Err(self.fred_error(&e)),
        }
    }

    /// `XRANGE cdc after+1 until COUNT n`, then `XINFO STREAM`, pipelined. Not in a
    /// `MULTI`: fred runs one transaction at a time on a connection (it drains every reply
    /// in flight, sends the transaction and waits for its `EXEC` before anything else), so
    /// concurrent ranges in transactions would travel one round trip apart, which is what
    /// reading them concurrently is for. Redis runs a connection's commands in order, so
    /// the facts are observed after the entries, which is what the gap check needs (as for
    /// `read_stream_with_info`): what was deleted or trimmed before the read still shows
    /// in facts taken after it; a trim in between only looks like a gap, which the tailer
    /// confirms with a checked read.
    async fn read_range(
        &self,
        after: StreamId,
        until: StreamId,
        count: usize,
    ) -> Result<CheckedRead, PeerError> {
        let cdc = self.keys.cdc();
        // The successor as an inclusive start: `(id` needs Redis 6.2.
        let start = after.next().unwrap_or(StreamId::MAX);
        let pipeline = self.client.pipeline();
        let args = vec![
            cdc.clone(),
            start.to_string(),
            until.to_string(),
            "COUNT".to_owned(),
            count.max(1).to_string(),
        ];
        let _: () = pipeline
            .custom(command_on("XRANGE", &cdc), args)
            .await
            .map_err(|e| self.fred_error(&e))?;
        let _: () = pipeline
            .custom(
                command_on("XINFO", &cdc),
                vec!["STREAM".to_owned(), cdc.clone()],
            )
            .await
            .map_err(|e| self.fred_error(&e))?;
        self.trip();
        let mut replies = pipeline.try_all::<Value>().await.into_iter();
        let (Some(entries), Some(info)) = (replies.next(), replies.next()) else {
            return Err(self.protocol("pipeline returned fewer replies than commands".into()));
        };
        let entries = reply::xrange(entries.map_err(|e| self.fred_error(&e))?)
            .map_err(|m| self.protocol(m))?;
        let info = match info {
            Ok(value) => Some(reply::xinfo_stream(value).map_err(|m| self.protocol(m))?),
            Err(e) if reply::is_no_such_key(e.details()) => None,
            Err(e) => return Err(self.fred_error(&e)),
        };
        Ok(CheckedRead { info, entries })
    }

    /// `HMGET` of the tombstones hash. Tombstones are evidence, parsed key by key: a
    /// malformed value, or a tombstones key that is not a hash at all, is logged and reads
    /// as no tombstone (as from a peer that keeps none, like sync-engine), so that one bad
    /// value can neither fail the read of the others nor stall the stream that needs them.
    /// Absent evidence never deletes anything on its own (PROTOCOL.md "How a delete travels").
    async fn read_tombstones(&self, keys: &[String]) -> Result<Vec<Option<Tombstone>>, PeerError> {
        let hash = self.keys.tombstones();
        let mut args = vec![hash.clone()];
        args.extend(keys.iter().cloned());
        self.trip();
        let value: Value = match self.client.custom(cmd("HMGET"), args).await {
            Ok(value) => value,
            Err(e) if Failure::of(&e) == Failure::WrongType => {
                tracing::warn!(peer = %self.peer, key = %hash,
                    "peer's tombstones key is not a hash; reading it as no tombstones");
                return Ok(vec![None; keys.len()]);
            }
            Err(e) => return Err(self.fred_error(&e)),
        };
        let read = reply::tombstones(value, keys.len()).map_err(|m| self.protocol(m))?;
        for (i, reason) in &read.malformed {
            tracing::warn!(peer = %self.peer, key = %keys[*i], %reason,
                "malformed tombstone at the peer; read as no tombstone");
        }
        Ok(read.tombstones)
    }
}
