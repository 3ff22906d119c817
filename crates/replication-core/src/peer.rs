//! `PeerBackend`: what the engine needs from a peer, whatever the transport.
//!
//! The Redis implementation lives in `replication-peer`; tests use mocks or in-memory peers.
//! Every method that reads returns an error when it could not read: "unreadable" is never
//! reported as "empty", because an empty answer can lead to local repairs.

use crate::merkle::Hash;
use crate::{StreamId, SyncItem, Tombstone};
use std::fmt;
use std::time::Duration;

/// A request to read a peer's CDC stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRequest {
    /// Read entries strictly after this id.
    pub after: StreamId,
    /// At most this many entries.
    pub count: usize,
    /// Wait up to this long for the first entry when none is available; `None` returns at once.
    pub block: Option<Duration>,
}

/// Which of a peer's blocking stream reads a call is: a backend with more than one
/// connection for them ([`PeerBackend::stream_lanes`]) runs each lane on its own, so two
/// blocking reads can wait at the peer at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamLane {
    /// The lane every blocking read uses.
    First,
    /// A second lane, used only beside the first (see `StreamTailer`'s paired reads).
    Second,
}

/// One stream entry as read, before decoding: `(field, value)` pairs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    /// Entry id.
    pub id: StreamId,
    /// Field/value pairs in stream order.
    pub fields: Vec<(bytes::Bytes, bytes::Bytes)>,
}

/// What `XINFO STREAM` tells about a peer's stream (PROTOCOL.md "Trim/gap facts").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamInfo {
    /// Entries currently in the stream.
    pub length: u64,
    /// Id of the oldest surviving entry.
    pub first_entry: Option<StreamId>,
    /// Id of the newest entry surviving.
    pub last_entry: Option<StreamId>,
    /// Last id ever generated (survives trims and deletions).
    pub last_generated: StreamId,
    /// Largest id ever removed (Redis >= 7.0).
    pub max_deleted: Option<StreamId>,
    /// Entries ever added (Redis >= 7.0).
    pub entries_added: Option<u64>,
}

/// A stream read together with the stream's facts, as one observation (see
/// [`PeerBackend::read_stream_checked`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckedRead {
    /// `XINFO STREAM` facts; `None` when the stream does not exist.
    pub info: Option<StreamInfo>,
    /// Entries after the requested id, oldest first.
    pub entries: Vec<RawEntry>,
}

/// An item read from a peer for repair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemRead {
    /// The peer holds no item under that key.
    Absent,
    /// The peer's item with its version, time and hash.
    Present(SyncItem),
    /// The key exists but could not be read (unknown layout, missing module, corrupt JSON).
    Unreadable {
        /// Why.
        reason: String,
    },
}

/// The connection state of a peer, as cached for health checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConnectionState {
    /// Never connected yet.
    #[default]
    Connecting,
    /// Connected and answering.
    Connected,
    /// Lost and trying again.
    Reconnecting,
    /// Closed on purpose (peer disabled, removed or shut down).
    Closed,
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Reconnecting => "reconnecting",
            ConnectionState::Closed => "closed",
        })
    }
}

/// Cached connection facts of a peer (no I/O to obtain).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionStatus {
    /// Current state.
    pub state: ConnectionState,
    /// Last error, secrets redacted.
    pub last_error: Option<String>,
    /// Last successful call, ms since the epoch.
    pub last_success_ms: Option<i64>,
    /// How many times the connection was re-established.
    pub reconnects: u64,
    /// The peer's circuit breaker is open: calls fail fast until it half-opens.
    pub circuit_open: bool,
    /// The server holding the peer's stream as last seen (`host:port`): the primary a
    /// Sentinel named, or the Cluster primary owning the stream's slot. `None` before the
    /// first connection, or for backends without such a notion.
    pub server: Option<String>,
    /// How many times that server changed while connected (a Sentinel or Cluster
    /// failover, or a reconfigured deployment): each one may have lost writes the old
    /// primary had not replicated.
    pub failovers: u64,
}

/// The server holding a node's data as connection events report it (the primary a
/// Sentinel named, the Cluster primary owning the node's slot), and how often it changed:
/// the failover count of [`ConnectionStatus`], kept by the Redis clients of peers and of
/// the node store alike.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServingServer {
    /// `host:port` as last seen.
    pub server: Option<String>,
    /// Times it changed after the first sighting.
    pub failovers: u64,
}

impl ServingServer {
    /// Records that `server` holds the data now; a different server than before counts
    /// as a failover.
    pub fn observe(&mut self, server: String) {
        if self.server.as_ref().is_some_and(|old| *old != server) {
            self.failovers += 1;
        }
        self.server = Some(server);
    }
}

/// A failed peer call. Messages never contain passwords.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// The peer could not be reached or the connection broke.
    #[error("peer {peer}: connection failed: {message}")]
    Connection {
        /// Peer node id.
        peer: String,
        /// What happened (redacted).
        message: String,
    },
    /// The call did not finish in time.
    #[error("peer {peer}: {operation} timed out after {after:?}")]
    Timeout {
        /// Peer node id.
        peer: String,
        /// Which call.
        operation: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The peer refused our credentials.
    #[error("peer {peer}: authentication failed: {message}")]
    Auth {
        /// Peer node id.
        peer: String,
        /// What the peer said (redacted).
        message: String,
    },
    /// The peer answered something that does not follow PROTOCOL.md.
    #[error("peer {peer}: protocol error: {message}")]
    Protocol {
        /// Peer node id.
        peer: String,
        /// What was wrong.
        message: String,
    },
    /// The peer's circuit breaker is open; calls fail fast until it half-opens.
    #[error("peer {peer}: circuit open")]
    CircuitOpen {
        /// Peer node id.
        peer: String,
    },
    /// The peer's settings are unusable (bad URL, unreadable TLS files); retrying cannot help.
    #[error("peer {peer}: invalid configuration: {message}")]
    InvalidConfig {
        /// Peer node id.
        peer: String,
        /// What is wrong (secrets redacted).
        message: String,
    },
    /// The backend was closed.
    #[error("peer {peer}: closed")]
    Closed {
        /// Peer node id.
        peer: String,
    },
}

impl PeerError {
    /// Whether retrying (later) may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            PeerError::Connection { .. }
                | PeerError::Timeout { .. }
                | PeerError::CircuitOpen { .. }
        )
    }
}

/// A peer of the mesh, seen through its store.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait PeerBackend: Send + Sync + 'static {
    /// The peer's node id.
    fn node_id(&self) -> &str;

    /// Cached connection facts; no I/O.
    fn connection(&self) -> ConnectionStatus;

    /// Reads stream entries after `request.after`.
    async fn read_stream(&self, request: ReadRequest) -> Result<Vec<RawEntry>, PeerError>;

    /// Stream facts for gap detection; `None` when the stream does not exist.
    async fn stream_info(&self) -> Result<Option<StreamInfo>, PeerError>;

    /// Reads like [`PeerBackend::read_stream`], then the stream facts, observed after the
    /// read (never before it: they may be newer than the entries). The facts are `None`
    /// when nothing was read or the stream does not exist. This default makes the two
    /// calls one after the other; override it to send both at once (Redis: pipelined on
    /// one connection, so the facts cost no round trip of their own).
    async fn read_stream_with_info(
        &self,
        request: ReadRequest,
    ) -> Result<(Vec<RawEntry>, Option<StreamInfo>), PeerError> {
        let entries = self.read_stream(request).await?;
        if entries.is_empty() {
            return Ok((entries, None));
        }
        let info = self.stream_info().await?;
        Ok((entries, info))
    }

    /// How many stream lanes can block at the peer at once ([`StreamLane`]): 1 by default,
    /// where every lane is the same. A backend answering 2 runs
    /// [`PeerBackend::read_stream_with_info_on`]'s `Second` lane on a connection of its own.
    fn stream_lanes(&self) -> usize {
        1
    }

    /// [`PeerBackend::read_stream_with_info`] on `lane`. The default ignores the lane, which
    /// is right for a backend whose calls do not queue behind one another.
    async fn read_stream_with_info_on(
        &self,
        lane: StreamLane,
        request: ReadRequest,
    ) -> Result<(Vec<RawEntry>, Option<StreamInfo>), PeerError> {
        let _ = lane;
        self.read_stream_with_info(request).await
    }

    /// Reads up to `count` entries after `after` without blocking, together with the stream
    /// facts, so that gap detection compares the cursor with the same state the entries came
    /// from. Backends that can (Redis: `MULTI`/`EXEC`) observe both atomically; this default
    /// reads the facts first and the entries second, which lets a trim slip in between.
    async fn read_stream_checked(
        &self,
        after: StreamId,
        count: usize,
    ) -> Result<CheckedRead, PeerError> {
        let info = self.stream_info().await?;
        let entries = self
            .read_stream(ReadRequest {
                after,
                count,
                block: None,
            })
            .await?;
        Ok(CheckedRead { info, entries })
    }

    /// Reads up to `count` entries with ids in `(after, until]` without blocking, together
    /// with stream facts observed no earlier than the entries (atomically, or right after
    /// them on the same connection: a trim before the read still shows in the facts).
    /// A tailer that is far behind runs several of these at once over disjoint ranges, so
    /// catch-up is not bound to one round trip per read; backends should let concurrent
    /// calls travel together (Redis: pipelined `XRANGE` + `XINFO`, not one `MULTI` each). This default reads after `after`
    /// with `read_stream_checked` and drops what lies beyond `until`: correct (a short
    /// answer still means the range is complete), but it may transfer entries twice;
    /// override it where the backend can bound the read by id (Redis: `XRANGE`).
    async fn read_range_checked(
        &self,
        after: StreamId,
        until: StreamId,
        count: usize,
    ) -> Result<CheckedRead, PeerError> {
        let mut read = self.read_stream_checked(after, count).await?;
        read.entries.retain(|entry| entry.id <= until);
        Ok(read)
    }

    /// Root of the peer's Merkle tree; `None` when it has none.
    async fn get_merkle_root(&self) -> Result<Option<Hash>, PeerError>;

    /// Children of many nodes in one round trip; one list per path, in order.
    async fn merkle_children(
        &self,
        paths: &[String],
    ) -> Result<Vec<Vec<(String, Hash)>>, PeerError>;

    /// Items for many keys in one round trip; one result per key, in order.
    async fn read_items(&self, keys: &[String]) -> Result<Vec<ItemRead>, PeerError>;

    /// The size of each key's item at the peer without transferring it, so that a repair
    /// can fetch only what fits its byte budget.
    ///
    /// `Ok(None)` says this backend cannot size items (the default, which makes no call):
    /// a repair then reads its items one at a time. Otherwise one entry per key, in order,
    /// in one round trip: the bytes the item's stored form takes (at least its content;
    /// `0` for an absent key), or `None` for a key whose size the backend cannot tell.
    async fn item_sizes(&self, keys: &[String]) -> Result<Option<Vec<Option<u64>>>, PeerError> {
        let _ = keys;
        Ok(None)
    }

    /// Whether the peer holds each key in any form (an item, readable or not), in order,
    /// in one round trip. This default reads the items ([`PeerBackend::read_items`]);
    /// override it to ask without transferring them (Redis: `EXISTS` per key, pipelined),
    /// since callers only want to know that a key is there.
    async fn exists_many(&self, keys: &[String]) -> Result<Vec<bool>, PeerError> {
        Ok(self
            .read_items(keys)
            .await?
            .into_iter()
            .map(|read| !matches!(read, ItemRead::Absent))
            .collect())
    }

    /// Tombstones the peer keeps for these keys, in order (none for sync-engine peers).
    /// Tombstones are evidence read key by key: a value the backend cannot parse is `None`
    /// for its key alone (and reported by the backend), never an error for the whole read.
    async fn read_tombstones(&self, keys: &[String]) -> Result<Vec<Option<Tombstone>>, PeerError>;

    /// Round-trip time of a trivial call.
    async fn ping(&self) -> Result<Duration, PeerError>;

    /// Closes connections; later calls fail with `Closed`.
    async fn close(&self);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_change_of_server_is_a_failover() {
        let mut serving = ServingServer::default();
        serving.observe("a:1".into());
        serving.observe("a:1".into());
        assert_eq!(serving.failovers, 0);
        serving.observe("b:2".into());
        serving.observe("a:1".into());
        assert_eq!(
            serving,
            ServingServer {
                server: Some("a:1".into()),
                failovers: 2
            }
        );
    }
}
