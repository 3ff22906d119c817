//! A [`MemoryPeer`] with a gate in front of one kind of call: while the gate holds, each
//! such call stops there until the test lets one through (or forever, for a peer call in
//! flight that never answers). Every other call goes straight to the in-memory peer.

use crate::MemoryPeer;
use replication_core::merkle::Hash;
use replication_core::{
    CheckedRead, ConnectionStatus, ItemRead, PeerBackend, PeerError, RawEntry, ReadRequest,
    StreamId, StreamInfo, Tombstone,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The calls a [`Gate`] can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatedCall {
    /// `read_tombstones`.
    ReadTombstones,
    /// `close`.
    Close,
}

/// Where the gated calls stop. Shared between the test and every [`GatedPeer`] it makes.
#[derive(Debug)]
pub struct Gate {
    call: GatedCall,
    holding: AtomicBool,
    held: AtomicUsize,
    reached: Notify,
    release: Notify,
}

impl Gate {
    /// A gate for `call`, holding from the start when `holding`.
    pub fn new(call: GatedCall, holding: bool) -> Arc<Self> {
        Arc::new(Self {
            call,
            holding: AtomicBool::new(holding),
            held: AtomicUsize::new(0),
            reached: Notify::new(),
            release: Notify::new(),
        })
    }

    /// Starts or stops holding calls that arrive from now on.
    pub fn hold(&self, holding: bool) {
        self.holding.store(holding, Ordering::SeqCst);
    }

    /// How many calls have stopped at the gate.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// Waits until a call stops at the gate (one that already did counts once).
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Lets one held call through; when none is held, the next one that stops goes on.
    pub fn release_one(&self) {
        self.release.notify_one();
    }

    async fn pass(&self, call: GatedCall) {
        if call != self.call || !self.holding.load(Ordering::SeqCst) {
            return;
        }
        self.held.fetch_add(1, Ordering::SeqCst);
        self.reached.notify_one();
        self.release.notified().await;
    }
}

/// An in-memory peer behind a [`Gate`].
pub struct GatedPeer {
    inner: MemoryPeer,
    gate: Arc<Gate>,
}

impl GatedPeer {
    /// `inner`, its gated calls stopping at `gate`.
    pub fn new(inner: MemoryPeer, gate: Arc<Gate>) -> Self {
        Self { inner, gate }
    }
}

#[async_trait::async_trait]
impl PeerBackend for GatedPeer {
    fn node_id(&self) -> &str {
        self.inner.node_id()
    }
    fn connection(&self) -> ConnectionStatus {
        self.inner.connection()
    }
    async fn read_stream(&self, request: ReadRequest) -> Result<Vec<RawEntry>, PeerError> {
        self.inner.read_stream(request).await
    }
    async fn stream_info(&self) -> Result<Option<StreamInfo>, PeerError> {
        self.inner.stream_info().await
    }
    async fn read_stream_with_info(
        &self,
        request: ReadRequest,
    ) -> Result<(Vec<RawEntry>, Option<StreamInfo>), PeerError> {
        self.inner.read_stream_with_info(request).await
    }
    async fn read_stream_checked(
        &self,
        after: StreamId,
        count: usize,
    ) -> Result<CheckedRead, PeerError> {
        self.inner.read_stream_checked(after, count).await
    }
    async fn read_range_checked(
        &self,
        after: StreamId,
        until: StreamId,
        count: usize,
    ) -> Result<CheckedRead, PeerError> {
        self.inner.read_range_checked(after, until, count).await
    }
    async fn get_merkle_root(&self) -> Result<Option<Hash>, PeerError> {
        self.inner.get_merkle_root().await
    }
    async fn merkle_children(
        &self,
        paths: &[String],
    ) -> Result<Vec<Vec<(String, Hash)>>, PeerError> {
        self.inner.merkle_children(paths).await
    }
    async fn read_items(&self, keys: &[String]) -> Result<Vec<ItemRead>, PeerError> {
        self.inner.read_items(keys).await
    }
    async fn item_sizes(&self, keys: &[String]) -> Result<Option<Vec<Option<u64>>>, PeerError> {
        self.inner.item_sizes(keys).await
    }
    async fn exists_many(&self, keys: &[String]) -> Result<Vec<bool>, PeerError> {
        self.inner.exists_many(keys).await
    }
    async fn read_tombstones(&self, keys: &[String]) -> Result<Vec<Option<Tombstone>>, PeerError> {
        self.gate.pass(GatedCall::ReadTombstones).await;
        self.inner.read_tombstones(keys).await
    }
    async fn ping(&self) -> Result<Duration, PeerError> {
        self.inner.ping().await
    }
    async fn close(&self) {
        self.gate.pass(GatedCall::Close).await;
        self.inner.close().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
    use super::*;
    use crate::MemoryStore;

    #[tokio::test(start_paused = true)]
    async fn a_held_call_waits_for_its_release_and_others_pass() {
        let gate = Gate::new(GatedCall::ReadTombstones, true);
        let peer = Arc::new(GatedPeer::new(
            MemoryPeer::new("p", MemoryStore::new()),
            gate.clone(),
        ));
        let keys = vec!["k".to_owned()];
        assert_eq!(peer.read_items(&keys).await.unwrap().len(), 1, "not gated");
        let held = tokio::spawn({
            let (peer, keys) = (peer.clone(), keys.clone());
            async move { peer.read_tombstones(&keys).await }
        });
        gate.reached().await;
        assert_eq!(gate.held(), 1);
        assert!(!held.is_finished());
        gate.release_one();
        assert_eq!(held.await.unwrap().unwrap(), vec![None]);
        gate.hold(false);
        assert_eq!(peer.read_tombstones(&keys).await.unwrap(), vec![None]);
        assert_eq!(gate.held(), 1, "an open gate holds nothing");
    }
}
