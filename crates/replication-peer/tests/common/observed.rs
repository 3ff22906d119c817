//! [`Observed`]: a real peer with its calls counted and, where a test asks, delayed; shared
//! by the tests of catch-up ranges and of paired reads.

use async_trait::async_trait;
use replication_core::merkle::Hash;
use replication_core::{
    CheckedRead, ConnectionStatus, ItemRead, PeerBackend, PeerError, RawEntry, ReadRequest,
    StreamId, StreamInfo, StreamLane, Tombstone,
};
use replication_peer::RedisPeer;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A real peer whose range reads are counted (how many, how many at once, and their bounds
/// in the order they were sent) and whose checked reads are counted.
pub struct Observed {
    inner: Arc<RedisPeer>,
    pub ranges: AtomicUsize,
    in_flight: AtomicUsize,
    pub most_in_flight: AtomicUsize,
    sent: Mutex<Vec<(StreamId, StreamId)>>,
    pub checked_reads: AtomicUsize,
    /// Added to every checked read: a busy machine, not a slow link (pings stay fast).
    read_delay: Duration,
    /// Added to the first range read only.
    pub first_range_delay: Duration,
    /// Added to the first read on the second stream lane only (as when its connection
    /// takes a while to come up).
    pub second_lane_delay: Duration,
    second_lane_delayed: AtomicBool,
}

impl Observed {
    pub fn new(inner: Arc<RedisPeer>, read_delay: Duration) -> Self {
        Self {
            inner,
            ranges: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            sent: Mutex::new(Vec::new()),
            checked_reads: AtomicUsize::new(0),
            read_delay,
            first_range_delay: Duration::ZERO,
            second_lane_delay: Duration::ZERO,
            second_lane_delayed: AtomicBool::new(false),
        }
    }

    /// The bounds of every range read so far, in the order they were sent.
    pub fn sent(&self) -> Vec<(StreamId, StreamId)> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait]
impl PeerBackend for Observed {
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
    fn stream_lanes(&self) -> usize {
        self.inner.stream_lanes()
    }
    async fn read_stream_with_info_on(
        &self,
        lane: StreamLane,
        request: ReadRequest,
    ) -> Result<(Vec<RawEntry>, Option<StreamInfo>), PeerError> {
        if lane == StreamLane::Second && !self.second_lane_delayed.swap(true, Ordering::SeqCst) {
            tokio::time::sleep(self.second_lane_delay).await;
        }
        self.inner.read_stream_with_info_on(lane, request).await
    }
    async fn read_stream_checked(
        &self,
        after: StreamId,
        count: usize,
    ) -> Result<CheckedRead, PeerError> {
        self.checked_reads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.read_delay).await;
        self.inner.read_stream_checked(after, count).await
    }
    async fn read_range_checked(
        &self,
        after: StreamId,
        until: StreamId,
        count: usize,
    ) -> Result<CheckedRead, PeerError> {
        let first = self.ranges.fetch_add(1, Ordering::SeqCst) == 0;
        self.sent.lock().unwrap().push((after, until));
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        // Counted down even when the read is aborted.
        struct Done<'a>(&'a AtomicUsize);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _done = Done(&self.in_flight);
        if first {
            tokio::time::sleep(self.first_range_delay).await;
        }
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
    async fn read_tombstones(&self, keys: &[String]) -> Result<Vec<Option<Tombstone>>, PeerError> {
        self.inner.read_tombstones(keys).await
    }
    async fn ping(&self) -> Result<Duration, PeerError> {
        self.inner.ping().await
    }
    async fn close(&self) {
        self.inner.close().await
    }
}
