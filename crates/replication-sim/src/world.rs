//! `World`: what the nodes share: every node's store (which its peers read), the network
//! between them (partitions, flapping, slow links) and hostile peer behaviour; and
//! `SimPeer`, the peer backend an engine gets, which obeys that network.

use async_trait::async_trait;
use replication_core::merkle::Hash;
use replication_core::{
    CheckedRead, ConnectionState, ConnectionStatus, ItemRead, PeerBackend, PeerError, RawEntry,
    ReadRequest, StreamId, StreamInfo, Tombstone,
};
use replication_engine::{PeerConfig, PeerConnector, Settings};
use replication_testkit::{MemoryPeer, MemoryStore};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// One direction of the network between a reader and the peer it reads.
#[derive(Clone, Copy, Debug, Default)]
struct Link {
    /// Partitions in force on this direction (they may overlap).
    cuts: u32,
    /// A flapping partition: (fault id, since ms, half period ms): down in even halves.
    flap: Option<(u64, u64, u64)>,
    /// A slow link: (fault id, delay per call).
    slow: Option<(u64, Duration)>,
}

#[derive(Debug, Default)]
struct Net {
    links: BTreeMap<(usize, usize), Link>,
    /// Peers whose tombstones read as malformed (a permanent protocol error).
    malformed_tombstones: BTreeSet<usize>,
}

/// See the module docs.
pub(crate) struct World {
    /// Every node's store by index: its engine writes it, its peers read it.
    pub(crate) stores: Vec<MemoryStore>,
    pub(crate) ids: Vec<String>,
    net: Mutex<Net>,
    start: Instant,
}

impl World {
    pub(crate) fn new(ids: Vec<String>, stores: Vec<MemoryStore>) -> Self {
        Self {
            stores,
            ids,
            net: Mutex::default(),
            start: Instant::now(),
        }
    }

    /// Virtual milliseconds since the run began.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn net(&self) -> MutexGuard<'_, Net> {
        self.net.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn index_of(&self, id: &str) -> Option<usize> {
        self.ids.iter().position(|n| n == id)
    }

    /// Cuts (`cut = true`) or restores one direction: `reader` can no longer reach `peer`.
    pub(crate) fn cut(&self, reader: usize, peer: usize, cut: bool) {
        let mut net = self.net();
        let link = net.links.entry((reader, peer)).or_default();
        link.cuts = if cut {
            link.cuts + 1
        } else {
            link.cuts.saturating_sub(1)
        };
    }

    pub(crate) fn flap(&self, reader: usize, peer: usize, fault: u64, half_period_ms: u64) {
        let now = self.now_ms();
        self.net().links.entry((reader, peer)).or_default().flap =
            Some((fault, now, half_period_ms.max(1)));
    }

    pub(crate) fn unflap(&self, reader: usize, peer: usize, fault: u64) {
        let mut net = self.net();
        let link = net.links.entry((reader, peer)).or_default();
        if link.flap.is_some_and(|(id, _, _)| id == fault) {
            link.flap = None;
        }
    }

    pub(crate) fn slow(&self, reader: usize, peer: usize, fault: u64, delay: Option<Duration>) {
        let mut net = self.net();
        let link = net.links.entry((reader, peer)).or_default();
        match delay {
            Some(delay) => link.slow = Some((fault, delay)),
            None if link.slow.is_some_and(|(id, _)| id == fault) => link.slow = None,
            None => {}
        }
    }

    pub(crate) fn set_malformed_tombstones(&self, peer: usize, malformed: bool) {
        let mut net = self.net();
        if malformed {
            net.malformed_tombstones.insert(peer);
        } else {
            net.malformed_tombstones.remove(&peer);
        }
    }

    /// Whether `reader` reaches `peer` now.
    pub(crate) fn reachable(&self, reader: usize, peer: usize) -> bool {
        let now = self.now_ms();
        let net = self.net();
        let Some(link) = net.links.get(&(reader, peer)) else {
            return true;
        };
        let flapping_down = link
            .flap
            .is_some_and(|(_, since, half)| ((now - since.min(now)) / half) % 2 == 0);
        link.cuts == 0 && !flapping_down
    }

    fn delay(&self, reader: usize, peer: usize) -> Option<Duration> {
        self.net()
            .links
            .get(&(reader, peer))
            .and_then(|link| link.slow.map(|(_, d)| d))
    }

    pub(crate) fn malformed(&self, peer: usize) -> bool {
        self.net().malformed_tombstones.contains(&peer)
    }

    /// Clears every network fault (the final heal).
    pub(crate) fn heal_network(&self) {
        *self.net() = Net::default();
    }

    /// The connector of `reader`'s engine: a fresh [`SimPeer`] per connect, over the store
    /// of the node the config names (whatever its URL says).
    pub(crate) fn connector(self: &Arc<Self>, reader: usize) -> Arc<dyn PeerConnector> {
        let world = self.clone();
        Arc::new(move |peer: &PeerConfig, _: &Settings| {
            let index = world
                .index_of(&peer.node_id)
                .ok_or_else(|| PeerError::Closed {
                    peer: peer.node_id.clone(),
                })?;
            let inner = MemoryPeer::new(peer.node_id.clone(), world.stores[index].clone());
            Ok(Arc::new(SimPeer {
                reader,
                peer: index,
                inner,
                world: world.clone(),
            }) as Arc<dyn PeerBackend>)
        })
    }
}

/// A connection from `reader` to `peer` through the simulated network.
pub(crate) struct SimPeer {
    reader: usize,
    peer: usize,
    inner: MemoryPeer,
    world: Arc<World>,
}

impl SimPeer {
    /// Every call crosses the network: a slow link delays it, a cut one fails it
    /// (retriable, as a connection error is).
    async fn cross(&self) -> Result<(), PeerError> {
        if let Some(delay) = self.world.delay(self.reader, self.peer) {
            tokio::time::sleep(delay).await;
        }
        if self.world.reachable(self.reader, self.peer) {
            Ok(())
        } else {
            Err(PeerError::Connection {
                peer: self.inner.node_id().to_owned(),
                message: "simulated partition".into(),
            })
        }
    }
}

#[async_trait]
impl PeerBackend for SimPeer {
    fn node_id(&self) -> &str {
        self.inner.node_id()
    }

    fn connection(&self) -> ConnectionStatus {
        if self.world.reachable(self.reader, self.peer) {
            self.inner.connection()
        } else {
            ConnectionStatus {
                state: ConnectionState::Reconnecting,
                ..ConnectionStatus::default()
            }
        }
    }

    /// Two lanes, as a Redis peer has: the in-memory peer serves concurrent blocking reads,
    /// so a tailer across a slow simulated link pairs its reads as it would for real.
    fn stream_lanes(&self) -> usize {
        2
    }

    async fn read_stream(&self, request: ReadRequest) -> Result<Vec<RawEntry>, PeerError> {
        self.cross().await?;
        self.inner.read_stream(request).await
    }

    async fn stream_info(&self) -> Result<Option<StreamInfo>, PeerError> {
        self.cross().await?;
        self.inner.stream_info().await
    }

    async fn read_stream_checked(
        &self,
        after: StreamId,
        count: usize,
    ) -> Result<CheckedRead, PeerError> {
        // One crossing, then facts and entries with no await point between them on this
        // single thread: as atomic as Redis's MULTI/EXEC.
        self.cross().await?;
        self.inner.read_stream_checked(after, count).await
    }

    async fn get_merkle_root(&self) -> Result<Option<Hash>, PeerError> {
        self.cross().await?;
        self.inner.get_merkle_root().await
    }

    async fn merkle_children(
        &self,
        paths: &[String],
    ) -> Result<Vec<Vec<(String, Hash)>>, PeerError> {
        self.cross().await?;
        self.inner.merkle_children(paths).await
    }

    async fn read_items(&self, keys: &[String]) -> Result<Vec<ItemRead>, PeerError> {
        self.cross().await?;
        self.inner.read_items(keys).await
    }

    async fn item_sizes(&self, keys: &[String]) -> Result<Option<Vec<Option<u64>>>, PeerError> {
        self.cross().await?;
        self.inner.item_sizes(keys).await
    }

    async fn exists_many(&self, keys: &[String]) -> Result<Vec<bool>, PeerError> {
        self.cross().await?;
        self.inner.exists_many(keys).await
    }

    async fn read_tombstones(&self, keys: &[String]) -> Result<Vec<Option<Tombstone>>, PeerError> {
        self.cross().await?;
        if self.world.malformed(self.peer) {
            return Err(PeerError::Protocol {
                peer: self.inner.node_id().to_owned(),
                message: "simulated: the tombstones key is not a hash of tombstones".into(),
            });
        }
        self.inner.read_tombstones(keys).await
    }

    /// The round trip as the reader sees it: the link's delay included (virtual time).
    async fn ping(&self) -> Result<Duration, PeerError> {
        let started = tokio::time::Instant::now();
        self.cross().await?;
        let inner = self.inner.ping().await?;
        Ok(started.elapsed().max(inner))
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}
