//! `MemoryPeer`: an in-memory `PeerBackend` over a [`MemoryStore`] (the peer's node), with
//! the store's CDC stream, Redis-like trimming facts, failure injection and counters.
//!
//! It answers like the Redis backend would for a node running our node store: the tree and
//! items come from the store, local writes on the store appear on the stream (encoded by
//! `CdcEncoder`), and tombstones are readable. Every call counts as one round trip, so
//! tests assert on work done (calls, paths, keys, bytes), never on time.

use crate::MemoryStore;
use async_trait::async_trait;
use bytes::Bytes;
use replication_core::merkle::Hash;
use replication_core::{
    CdcEncoder, CdcEvent, ConnectionState, ConnectionStatus, ItemRead, PeerBackend, PeerError,
    RawEntry, ReadRequest, StreamId, StreamInfo, SyncEngineRef, Tombstone,
};
use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// A node's CDC stream as Redis keeps it: entries plus the facts `XINFO STREAM` reports.
#[derive(Debug, Default)]
pub(crate) struct CdcLog {
    entries: VecDeque<RawEntry>,
    /// Whether the stream key exists (created by the first append, removed by `reset`).
    exists: bool,
    last_generated: StreamId,
    max_deleted: StreamId,
    entries_added: u64,
    /// Created on first use: a zstd context is not free and most stores never encode.
    encoder: Option<CdcEncoder>,
}

impl CdcLog {
    /// Appends the entry for `event` at time `now_ms` and returns its id.
    pub(crate) fn append_event(&mut self, now_ms: i64, event: &CdcEvent) -> StreamId {
        let fields = self
            .encoder
            .get_or_insert_with(CdcEncoder::new)
            .encode(event);
        let fields = fields
            .into_iter()
            .map(|(name, value)| (Bytes::from_static(name.as_bytes()), Bytes::from(value)));
        self.append_fields(now_ms, fields.collect())
    }

    /// Appends raw fields (e.g. a malformed entry) at time `now_ms` and returns the id.
    pub(crate) fn append_fields(&mut self, now_ms: i64, fields: Vec<(Bytes, Bytes)>) -> StreamId {
        // Like XADD with `*`: the clock's ms, or the next sequence when the clock is not ahead.
        let ms = u64::try_from(now_ms).unwrap_or(0);
        let last = self.last_generated;
        let id = if ms > last.ms {
            StreamId::new(ms, 0)
        } else {
            StreamId::new(last.ms, last.seq + 1)
        };
        self.entries.push_back(RawEntry { id, fields });
        self.exists = true;
        self.last_generated = id;
        self.entries_added += 1;
        id
    }

    /// Drops the oldest entries until at most `maxlen` remain; returns how many were dropped.
    pub(crate) fn trim_to(&mut self, maxlen: usize) -> usize {
        let mut dropped = 0;
        while self.entries.len() > maxlen {
            if let Some(entry) = self.entries.pop_front() {
                self.max_deleted = self.max_deleted.max(entry.id);
                dropped += 1;
            }
        }
        dropped
    }

    /// Deletes the stream key (a recreated stream starts again from `0-0`).
    pub(crate) fn reset(&mut self) {
        let encoder = self.encoder.take();
        *self = CdcLog {
            encoder,
            ..CdcLog::default()
        };
    }

    /// Up to `count` entries strictly after `after`.
    pub(crate) fn read(&self, after: StreamId, count: usize) -> Vec<RawEntry> {
        self.entries
            .iter()
            .filter(|entry| entry.id > after)
            .take(count)
            .cloned()
            .collect()
    }

    /// What `XINFO STREAM` reports, `None` when the key does not exist.
    pub(crate) fn info(&self) -> Option<StreamInfo> {
        self.exists.then(|| StreamInfo {
            length: self.entries.len() as u64,
            first_entry: self.entries.front().map(|entry| entry.id),
            last_entry: self.entries.back().map(|entry| entry.id),
            last_generated: self.last_generated,
            max_deleted: Some(self.max_deleted),
            entries_added: Some(self.entries_added),
        })
    }

    /// The id of the newest entry ever appended (`0-0` when none).
    pub(crate) fn last_generated(&self) -> StreamId {
        self.last_generated
    }
}

/// Work a [`MemoryPeer`] has served, for tests that count round trips and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCounters {
    /// Every call that reaches the peer (one round trip each), failed ones included.
    pub calls: u64,
    /// `get_merkle_root` calls.
    pub root_calls: u64,
    /// `merkle_children` calls.
    pub children_calls: u64,
    /// Paths asked for through `merkle_children`.
    pub paths_requested: u64,
    /// `read_items` calls.
    pub item_calls: u64,
    /// Keys asked for through `read_items`.
    pub keys_requested: u64,
    /// Items returned as `ItemRead::Present`.
    pub items_returned: u64,
    /// Content bytes in the returned items.
    pub content_bytes_returned: u64,
    /// `item_sizes` calls.
    pub size_calls: u64,
    /// `exists_many` calls.
    pub exists_calls: u64,
    /// Keys asked for through `exists_many`.
    pub exists_keys_requested: u64,
    /// `read_tombstones` calls.
    pub tombstone_calls: u64,
    /// Keys asked for through `read_tombstones`.
    pub tombstone_keys_requested: u64,
    /// `read_stream` calls.
    pub stream_reads: u64,
    /// Stream entries returned.
    pub entries_returned: u64,
    /// Calls that failed because of an injected failure or after `close`.
    pub failed_calls: u64,
}

/// Injected faults and counters, behind one lock.
#[derive(Debug, Default)]
struct Control {
    fail_all: bool,
    /// Calls that may still succeed before every further call fails.
    successes_left: Option<u64>,
    unreadable: HashSet<String>,
    /// `read_tombstones` fails with a permanent protocol error.
    tombstones_malformed: bool,
    closed: bool,
    counters: PeerCounters,
}

/// An in-memory peer over a shared [`MemoryStore`]; see the module docs.
#[derive(Debug)]
pub struct MemoryPeer {
    node_id: String,
    store: MemoryStore,
    control: Mutex<Control>,
}

impl MemoryPeer {
    /// A peer named `node_id` whose node is `store` (keep a clone to write to it).
    pub fn new(node_id: impl Into<String>, store: MemoryStore) -> Self {
        Self {
            node_id: node_id.into(),
            store,
            control: Mutex::new(Control::default()),
        }
    }

    /// The peer's store.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `event` to the peer's stream (as a write on the peer would, without changing
    /// its store) and returns the entry id.
    pub fn append_event(&self, event: &CdcEvent) -> StreamId {
        self.store
            .with_stream(|log, now| log.append_event(now, event))
    }

    /// Appends raw fields, e.g. a malformed entry, and returns the entry id.
    pub fn append_raw(&self, fields: Vec<(Bytes, Bytes)>) -> StreamId {
        self.store
            .with_stream(|log, now| log.append_fields(now, fields))
    }

    /// Trims the stream to its newest `maxlen` entries, as `XADD MAXLEN` does; the dropped
    /// ids raise `max_deleted`. Returns how many entries were dropped.
    pub fn trim_to(&self, maxlen: usize) -> usize {
        self.store.with_stream(|log, _| log.trim_to(maxlen))
    }

    /// Deletes the stream key; the next append recreates it from low ids (a reset).
    pub fn reset_stream(&self) {
        self.store.with_stream(|log, _| log.reset());
    }

    /// Makes every call fail with a retriable connection error (`true`) or work again.
    pub fn set_fail_all(&self, fail: bool) {
        self.control().fail_all = fail;
    }

    /// Lets the next `calls` calls succeed and fails every call after them, until `heal`.
    pub fn fail_after_calls(&self, calls: u64) {
        self.control().successes_left = Some(calls);
    }

    /// Clears injected failures (not `close`, not unreadable keys).
    pub fn heal(&self) {
        let mut control = self.control();
        control.fail_all = false;
        control.successes_left = None;
    }

    /// Makes `read_items` report `key` as present but unreadable.
    pub fn set_unreadable(&self, key: &str) {
        self.control().unreadable.insert(key.to_owned());
    }

    /// Makes `read_tombstones` fail with a permanent protocol error (`true`), as a peer
    /// whose tombstones key holds something that is not a tombstones hash; retrying cannot
    /// help. `false` reads them again.
    pub fn set_tombstones_malformed(&self, malformed: bool) {
        self.control().tombstones_malformed = malformed;
    }

    /// Counters since creation or the last reset.
    pub fn counters(&self) -> PeerCounters {
        self.control().counters
    }

    /// Zeroes the counters.
    pub fn reset_counters(&self) {
        self.control().counters = PeerCounters::default();
    }

    /// Counts a round trip and applies injected faults.
    fn call(&self, count: impl FnOnce(&mut PeerCounters)) -> Result<(), PeerError> {
        let mut control = self.control();
        control.counters.calls += 1;
        count(&mut control.counters);
        if control.closed {
            control.counters.failed_calls += 1;
            return Err(PeerError::Closed {
                peer: self.node_id.clone(),
            });
        }
        let exhausted = match &mut control.successes_left {
            Some(0) => true,
            Some(left) => {
                *left -= 1;
                false
            }
            None => false,
        };
        if control.fail_all || exhausted {
            control.counters.failed_calls += 1;
            return Err(PeerError::Connection {
                peer: self.node_id.clone(),
                message: "injected failure".into(),
            });
        }
        Ok(())
    }

    /// Local store errors never happen without injection on the store itself; when they
    /// do, the peer looks unreachable (as a Redis peer whose server errs would).
    fn store_error(&self, error: replication_core::SyncError) -> PeerError {
        PeerError::Connection {
            peer: self.node_id.clone(),
            message: error.to_string(),
        }
    }
}

#[async_trait]
impl PeerBackend for MemoryPeer {
    fn node_id(&self) -> &str {
        &self.node_id
    }

    fn connection(&self) -> ConnectionStatus {
        let control = self.control();
        let state = if control.closed {
            ConnectionState::Closed
        } else if control.fail_all || control.successes_left == Some(0) {
            ConnectionState::Reconnecting
        } else {
            ConnectionState::Connected
        };
        ConnectionStatus {
            state,
            ..ConnectionStatus::default()
        }
    }

    async fn read_stream(&self, request: ReadRequest) -> Result<Vec<RawEntry>, PeerError> {
        self.call(|c| c.stream_reads += 1)?;
        let notified = self.store.appended().notified();
        tokio::pin!(notified);
        // Register for wake-ups before looking, so an append in between is not missed.
        notified.as_mut().enable();
        let mut entries = self
            .store
            .read_stream(|log| log.read(request.after, request.count));
        if entries.is_empty() {
            if let Some(block) = request.block {
                if tokio::time::timeout(block, notified).await.is_ok() {
                    entries = self
                        .store
                        .read_stream(|log| log.read(request.after, request.count));
                }
            }
        }
        self.control().counters.entries_returned += entries.len() as u64;
        Ok(entries)
    }

    async fn stream_info(&self) -> Result<Option<StreamInfo>, PeerError> {
        self.call(|_| {})?;
        Ok(self.store.read_stream(CdcLog::info))
    }

    async fn get_merkle_root(&self) -> Result<Option<Hash>, PeerError> {
        self.call(|c| c.root_calls += 1)?;
        Ok(self.store.root())
    }

    async fn merkle_children(
        &self,
        paths: &[String],
    ) -> Result<Vec<Vec<(String, Hash)>>, PeerError> {
        self.call(|c| {
            c.children_calls += 1;
            c.paths_requested += paths.len() as u64;
        })?;
        Ok(paths.iter().map(|path| self.store.children(path)).collect())
    }

    async fn read_items(&self, keys: &[String]) -> Result<Vec<ItemRead>, PeerError> {
        self.call(|c| {
            c.item_calls += 1;
            c.keys_requested += keys.len() as u64;
        })?;
        let mut control = self.control();
        let reads: Vec<ItemRead> = keys
            .iter()
            .map(|key| match self.store.item(key) {
                Some(_) if control.unreadable.contains(key) => ItemRead::Unreadable {
                    reason: "injected: unreadable layout".into(),
                },
                Some(item) => ItemRead::Present(item),
                None => ItemRead::Absent,
            })
            .collect();
        for read in &reads {
            if let ItemRead::Present(item) = read {
                control.counters.items_returned += 1;
                control.counters.content_bytes_returned += item.content.len() as u64;
            }
        }
        Ok(reads)
    }

    async fn item_sizes(&self, keys: &[String]) -> Result<Option<Vec<Option<u64>>>, PeerError> {
        self.call(|c| c.size_calls += 1)?;
        // The content's length stands for the stored form's size: a memory peer stores
        // nothing else, and the content is what its reads return.
        Ok(Some(
            keys.iter()
                .map(|key| {
                    Some(
                        self.store
                            .item(key)
                            .map_or(0, |item| item.content.len() as u64),
                    )
                })
                .collect(),
        ))
    }

    async fn exists_many(&self, keys: &[String]) -> Result<Vec<bool>, PeerError> {
        self.call(|c| {
            c.exists_calls += 1;
            c.exists_keys_requested += keys.len() as u64;
        })?;
        // An unreadable key is still there, as `EXISTS` sees any value.
        Ok(keys
            .iter()
            .map(|key| self.store.item(key).is_some())
            .collect())
    }

    async fn read_tombstones(&self, keys: &[String]) -> Result<Vec<Option<Tombstone>>, PeerError> {
        self.call(|c| {
            c.tombstone_calls += 1;
            c.tombstone_keys_requested += keys.len() as u64;
        })?;
        if self.control().tombstones_malformed {
            return Err(PeerError::Protocol {
                peer: self.node_id.clone(),
                message: "injected: the tombstones key is not a hash of tombstones".into(),
            });
        }
        self.store
            .get_tombstones(keys)
            .await
            .map_err(|e| self.store_error(e))
    }

    async fn ping(&self) -> Result<Duration, PeerError> {
        self.call(|_| {})?;
        Ok(Duration::ZERO)
    }

    async fn close(&self) {
        self.control().closed = true;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests;
