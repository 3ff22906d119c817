//! `MemoryStore`: a real in-memory `SyncEngineRef` (items, Merkle tree, tombstones, conflict
//! order, CDC stream) for tests of the engine and the repair algorithm that need no Redis.
//!
//! It behaves like our node store (docs/PROTOCOL.md): every replicated write is checked
//! against the conflict order (a change that does not beat the local item or tombstone is a
//! no-op), deletes leave tombstones (collected by the time the store recorded them, which
//! raises its version floor), an id that is both an item and a parent lists its own leaf
//! under the empty segment, and only local writes (`put_local`, `delete_local`,
//! `SyncEngineRef::delete`) append to the node's CDC stream. Switches inject failures,
//! refusals, reply latency, backpressure and sync-engine's behaviour; counters let tests
//! count calls instead of timing them.
//!
//! Clones share one store (an `Arc` inside), so a test can keep a handle while the engine
//! or a [`crate::MemoryPeer`] holds another.

use crate::lazy_tree::LazyTree;
use crate::memory_peer::CdcLog;
use crate::store_clock::Clock;

mod state;
mod switches;
#[cfg(test)]
mod tests;

use replication_core::merkle::{validate_object_id, Hash};
use replication_core::{
    CdcEvent, Change, LocalState, Stamp, StreamId, SyncEngineRef, SyncError, SyncItem, Tombstone,
};
use state::{Outcome, StoreState};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How many calls of each kind the store has served, for tests that count work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCounters {
    /// `submit` calls.
    pub submits: u64,
    /// Local deletes through `SyncEngineRef::delete`.
    pub deletes: u64,
    /// `delete_replicated` and `delete_replicated_with` calls.
    pub replicated_deletes: u64,
    /// `apply_batch` calls.
    pub applied_batches: u64,
    /// Replicated changes (from any write method) that won the conflict order and were stored.
    pub changes_applied: u64,
    /// Replicated changes dropped because the store held a newer (or the same) stamp.
    pub changes_dropped: u64,
    /// `get_merkle_root`, `get_merkle_children` and `get_merkle_children_many` calls.
    pub merkle_reads: u64,
    /// Paths asked for through the children methods.
    pub merkle_paths: u64,
    /// `local_states` calls.
    pub local_state_reads: u64,
    /// Calls that failed because of an injected failure.
    pub failed_calls: u64,
}

struct Shared {
    state: Mutex<StoreState>,
    /// Wakes `MemoryPeer::read_stream` callers blocked on an empty stream.
    appended: tokio::sync::Notify,
}

/// An in-memory node store; see the module docs. Cheap to clone (clones share the store).
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryStore")
            .field("items", &state.items.len())
            .field("tombstones", &state.tombstones.len())
            .field("counters", &state.counters)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store with a logical clock (starts at 1 000 ms, +1 ms per reading).
    pub fn new() -> Self {
        Self::with_clock_source(Clock::Counter(1_000))
    }

    /// An empty store reading time (ms since the epoch) from `clock`.
    pub fn with_clock(clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Self::with_clock_source(Clock::External(Arc::new(clock)))
    }

    fn with_clock_source(clock: Clock) -> Self {
        let state = StoreState {
            items: BTreeMap::new(),
            tombstones: BTreeMap::new(),
            recorded: HashMap::new(),
            tree: LazyTree::default(),
            clock,
            fail_all: false,
            fail_writes: false,
            reply_latency: Duration::ZERO,
            accepting_writes: true,
            echo_replicated_puts: false,
            bare_deletes: false,
            like_sync_engine: false,
            refused: BTreeSet::new(),
            version_floor: 0,
            highest: HashMap::new(),
            failed_writes: None,
            counters: StoreCounters::default(),
            stream: CdcLog::default(),
            connection: None,
        };
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                appended: tokio::sync::Notify::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, StoreState> {
        // A panicking test thread must not hide the store from the test's assertions.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A local write, as the node's application makes it: version = the previous item's or
    /// tombstone's version (or the version floor, if higher) + 1, `updated_at` = now;
    /// appends a CDC PUT. Returns the item.
    ///
    /// # Panics
    /// When `key` is not a valid object id (a test bug).
    pub fn put_local(&self, key: &str, content: impl Into<Vec<u8>>) -> SyncItem {
        if let Err(e) = validate_object_id(key) {
            panic!("put_local: {e}");
        }
        let mut state = self.lock();
        let previous = state.local_state(key).stamp().map_or(0, |s| s.version);
        let now = state.clock.now();
        let version = previous.max(state.version_floor) + 1;
        let item = SyncItem::new(key, content.into(), version, now);
        state.store_item(item.clone());
        state.stream.append_event(now, &CdcEvent::Put(item.clone()));
        drop(state);
        self.shared.appended.notify_waiters();
        item
    }

    /// A local delete: leaves a tombstone with version = the item's version + 1 and
    /// `deleted_at` = now (none is kept when [`Self::set_like_sync_engine`] is on), and
    /// appends a CDC DEL carrying that stamp (a bare one like sync-engine's when
    /// [`Self::set_bare_deletes`] or [`Self::set_like_sync_engine`] is on). Returns the
    /// tombstone, or `None` (and changes nothing) when the key holds no item.
    pub fn delete_local(&self, key: &str) -> Option<Tombstone> {
        let mut state = self.lock();
        let version = state.items.get(key)?.version.max(state.version_floor);
        let now = state.clock.now();
        let tombstone = Tombstone {
            version: version + 1,
            deleted_at: now,
        };
        state.store_tombstone(key, tombstone.clone());
        let stamped = !state.bare_deletes && !state.like_sync_engine;
        state.stream.append_event(
            now,
            &CdcEvent::Delete {
                key: key.to_owned(),
                stamp: stamped.then(|| tombstone.clone()),
            },
        );
        drop(state);
        self.shared.appended.notify_waiters();
        Some(tombstone)
    }

    /// Applies a replicated change as `apply_batch` would (under the conflict order unless
    /// [`Self::set_like_sync_engine`] is on), without failure injection or counters of
    /// calls (for seeding tests). Returns whether it was stored.
    pub fn apply_change(&self, change: Change) -> Result<bool, SyncError> {
        Ok(matches!(
            self.lock().apply(change)?,
            Outcome::Applied { .. }
        ))
    }

    /// The item under `key`.
    pub fn item(&self, key: &str) -> Option<SyncItem> {
        self.lock().items.get(key).cloned()
    }

    /// The tombstone kept for `key`.
    pub fn tombstone(&self, key: &str) -> Option<Tombstone> {
        self.lock().tombstones.get(key).cloned()
    }

    /// What the store knows about `key`: item stamp, tombstone or `Absent`.
    pub fn local_state(&self, key: &str) -> LocalState {
        self.lock().local_state(key)
    }

    /// Every item, sorted by key.
    pub fn items(&self) -> Vec<SyncItem> {
        self.lock().items.values().cloned().collect()
    }

    /// Every tombstone, sorted by key.
    pub fn tombstones(&self) -> Vec<(String, Tombstone)> {
        self.lock()
            .tombstones
            .iter()
            .map(|(k, t)| (k.clone(), t.clone()))
            .collect()
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// True when the store holds no item (it may still hold tombstones).
    pub fn is_empty(&self) -> bool {
        self.lock().items.is_empty()
    }

    /// Root of the Merkle tree, `None` when empty. Not counted, never fails.
    pub fn root(&self) -> Option<Hash> {
        self.lock().tree.node_hash("")
    }

    /// Children of a Merkle node (self segment first). Not counted, never fails.
    pub fn children(&self, path: &str) -> Vec<(String, Hash)> {
        self.lock().tree.children_of(path)
    }

    /// The greatest stamp `key` has ever held here, item or tombstone, even one collected
    /// or replaced since: every write the store applied to the key is at or below it.
    pub fn highest_held(&self, key: &str) -> Option<Stamp> {
        self.lock().highest.get(key).cloned()
    }

    /// The version floor: the highest version of a tombstone collected so far.
    pub fn version_floor(&self) -> u64 {
        self.lock().version_floor
    }

    /// Counters since creation or the last reset.
    pub fn counters(&self) -> StoreCounters {
        self.lock().counters
    }

    /// Zeroes the counters.
    pub fn reset_counters(&self) {
        self.lock().counters = StoreCounters::default();
    }

    /// Runs `f` on the CDC stream with the current time, then wakes blocked readers.
    pub(crate) fn with_stream<R>(&self, f: impl FnOnce(&mut CdcLog, i64) -> R) -> R {
        let mut state = self.lock();
        let now = state.clock.now();
        let out = f(&mut state.stream, now);
        drop(state);
        self.shared.appended.notify_waiters();
        out
    }

    /// Reads the CDC stream without advancing the clock.
    pub(crate) fn read_stream<R>(&self, f: impl FnOnce(&CdcLog) -> R) -> R {
        f(&self.lock().stream)
    }

    /// Notified after every stream append.
    pub(crate) fn appended(&self) -> &tokio::sync::Notify {
        &self.shared.appended
    }

    /// The id of the newest stream entry ever written (`0-0` when none).
    pub fn last_stream_id(&self) -> StreamId {
        self.read_stream(CdcLog::last_generated)
    }
}

impl SyncEngineRef for MemoryStore {
    fn should_accept_writes(&self) -> bool {
        self.lock().accepting_writes
    }

    fn connection(&self) -> Option<replication_core::ConnectionStatus> {
        self.lock().connection.clone()
    }

    async fn submit(&self, item: SyncItem) -> Result<(), SyncError> {
        {
            let mut state = self.lock();
            state.counters.submits += 1;
            let change = Change::Put(item);
            if let Err(e) = state.check_write() {
                state.note_failed(std::iter::once(&change));
                return Err(e);
            }
            state.apply(change)?;
        }
        self.reply().await;
        Ok(())
    }

    async fn delete(&self, key: String) -> Result<bool, SyncError> {
        {
            let mut state = self.lock();
            state.counters.deletes += 1;
            state.check_write()?;
        }
        Ok(self.delete_local(&key).is_some())
    }

    async fn delete_replicated(&self, key: String) -> Result<bool, SyncError> {
        let mut state = self.lock();
        state.counters.replicated_deletes += 1;
        state.check_write()?;
        // A bare delete carries no stamp: it deletes the version we hold, and its tombstone
        // is stamped so that it beats exactly that version (docs/PROTOCOL.md "bare delete").
        let Some(item) = state.items.get(&key) else {
            return Ok(false);
        };
        let (version, updated_at) = (item.version, item.updated_at);
        let deleted_at = state.clock.now().max(updated_at);
        let outcome = state.apply(Change::Delete {
            key,
            tombstone: Tombstone {
                version,
                deleted_at,
            },
        })?;
        Ok(matches!(outcome, Outcome::Applied { existed: true }))
    }

    async fn is_current(&self, key: &str, content_hash: &str) -> Result<bool, SyncError> {
        let mut state = self.lock();
        state.check_read()?;
        Ok(state
            .items
            .get(key)
            .is_some_and(|item| item.content_hash.eq_ignore_ascii_case(content_hash)))
    }

    async fn get_merkle_root(&self) -> Result<Option<Hash>, SyncError> {
        let mut state = self.lock();
        state.counters.merkle_reads += 1;
        state.check_read()?;
        Ok(state.tree.node_hash(""))
    }

    async fn get_merkle_children(&self, path: &str) -> Result<Vec<(String, Hash)>, SyncError> {
        let mut state = self.lock();
        state.counters.merkle_reads += 1;
        state.counters.merkle_paths += 1;
        state.check_read()?;
        Ok(state.tree.children_of(path))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SyncError> {
        let mut state = self.lock();
        state.check_read()?;
        Ok(state.items.get(key).map(|item| item.content.clone()))
    }

    async fn local_states(&self, keys: &[String]) -> Result<Vec<Option<LocalState>>, SyncError> {
        let mut state = self.lock();
        state.counters.local_state_reads += 1;
        state.check_read()?;
        Ok(keys
            .iter()
            .map(|key| Some(state.local_state(key)))
            .collect())
    }

    async fn apply_batch(&self, changes: Vec<Change>) -> Result<(), SyncError> {
        {
            let mut state = self.lock();
            state.counters.applied_batches += 1;
            if let Err(e) = state.check_write() {
                state.note_failed(changes.iter());
                return Err(e);
            }
            // Validate the whole batch first so that a rejected batch changes nothing.
            for change in &changes {
                state.admit(change.key())?;
            }
            for change in changes {
                state.apply(change)?;
            }
        }
        self.reply().await;
        Ok(())
    }

    async fn delete_replicated_with(
        &self,
        key: String,
        tombstone: Tombstone,
    ) -> Result<bool, SyncError> {
        let mut state = self.lock();
        state.counters.replicated_deletes += 1;
        state.check_write()?;
        let outcome = state.apply(Change::Delete { key, tombstone })?;
        Ok(matches!(outcome, Outcome::Applied { existed: true }))
    }

    async fn get_merkle_children_many(
        &self,
        paths: &[String],
    ) -> Result<Vec<Vec<(String, Hash)>>, SyncError> {
        let mut state = self.lock();
        state.counters.merkle_reads += 1;
        state.counters.merkle_paths += paths.len() as u64;
        state.check_read()?;
        Ok(paths
            .iter()
            .map(|path| state.tree.children_of(path))
            .collect())
    }

    async fn get_tombstones(&self, keys: &[String]) -> Result<Vec<Option<Tombstone>>, SyncError> {
        let mut state = self.lock();
        state.check_read()?;
        Ok(keys
            .iter()
            .map(|key| state.tombstones.get(key).cloned())
            .collect())
    }

    async fn purge_tombstones(&self, recorded_before_ms: i64) -> Result<u64, SyncError> {
        let mut state = self.lock();
        state.check_write()?;
        let StoreState {
            tombstones,
            recorded,
            version_floor,
            ..
        } = &mut *state;
        let before = tombstones.len();
        tombstones.retain(|key, tombstone| {
            let at = recorded.get(key).copied().unwrap_or(tombstone.deleted_at);
            let keep = at >= recorded_before_ms;
            if !keep {
                *version_floor = (*version_floor).max(tombstone.version);
                recorded.remove(key);
            }
            keep
        });
        Ok((before - tombstones.len()) as u64)
    }
}
