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

mod switches;
use replication_core::merkle::{leaf_hash, validate_object_id, Hash};
use replication_core::{
    content_hash, incoming_wins, CdcEvent, Change, LocalState, Stamp, StreamId, SyncEngineRef,
    SyncError, SyncItem, Tombstone,
};
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

/// What a replicated write did.
enum Outcome {
    /// Stored; `existed` tells whether the key held an item before.
    Applied { existed: bool },
    /// Lost the conflict order; nothing changed.
    Dropped,
}

/// Everything behind the store's lock.
struct StoreState {
    items: BTreeMap<String, SyncItem>,
    tombstones: BTreeMap<String, Tombstone>,
    /// When this store recorded each tombstone (its clock), for collection.
    recorded: HashMap<String, i64>,
    tree: LazyTree,
    clock: Clock,
    fail_all: bool,
    fail_writes: bool,
    /// How long a write's reply takes after the write is visible (see `set_reply_latency`).
    reply_latency: Duration,
    accepting_writes: bool,
    echo_replicated_puts: bool,
    /// Stores replicated writes as they come and keeps no tombstones (sync-engine's way).
    like_sync_engine: bool,
    /// Keys whose replicated writes are refused with a permanent error.
    refused: BTreeSet<String>,
    /// Every local write's version is above it: the highest version of a collected
    /// tombstone (docs/PROTOCOL.md "Versions never go backwards").
    version_floor: u64,
    /// The greatest stamp each key has ever held (item or tombstone, collected or
    /// replaced since): what the store has applied, for checks of causality.
    highest: HashMap<String, Stamp>,
    /// Changes of replicated writes that failed by injection, while recording is on.
    failed_writes: Option<Vec<(String, Stamp)>>,
    counters: StoreCounters,
    stream: CdcLog,
}

impl StoreState {
    /// This store knows every key, so it never answers "unknown".
    fn local_state(&self, key: &str) -> LocalState {
        if let Some(item) = self.items.get(key) {
            return LocalState::Present(item.stamp());
        }
        self.tombstones
            .get(key)
            .cloned()
            .map_or(LocalState::Absent, LocalState::Deleted)
    }

    /// Refuses for good what this store can never hold: an invalid id, a refused key.
    fn admit(&self, key: &str) -> Result<(), SyncError> {
        validate_object_id(key).map_err(|e| SyncError::permanent(e.to_string()))?;
        if self.refused.contains(key) {
            return Err(SyncError::permanent(format!(
                "memory store: {key} is refused (injected)"
            )));
        }
        Ok(())
    }

    /// Fails the call when a failure is injected.
    fn check(&mut self, write: bool) -> Result<(), SyncError> {
        if self.fail_all || (write && self.fail_writes) {
            self.counters.failed_calls += 1;
            return Err(SyncError::new("memory store: injected failure"));
        }
        Ok(())
    }

    /// Notes the changes of a write that failed by injection (when recording).
    fn note_failed<'a>(&mut self, changes: impl Iterator<Item = &'a Change>) {
        if let Some(failed) = &mut self.failed_writes {
            failed.extend(changes.map(|change| match change {
                Change::Put(item) => (item.key.clone(), item.stamp()),
                Change::Delete { key, tombstone } => (key.clone(), tombstone.stamp()),
            }));
        }
    }

    fn raise_highest(&mut self, key: &str, stamp: Stamp) {
        match self.highest.get_mut(key) {
            Some(highest) if *highest >= stamp => {}
            Some(highest) => *highest = stamp,
            None => {
                self.highest.insert(key.to_owned(), stamp);
            }
        }
    }

    fn store_item(&mut self, item: SyncItem) -> bool {
        self.raise_highest(&item.key, item.stamp());
        let leaf = leaf_hash(&item.key, item.version, &content_hash(&item.content));
        self.tree.insert(&item.key, leaf);
        self.tombstones.remove(&item.key);
        self.recorded.remove(&item.key);
        self.items.insert(item.key.clone(), item).is_some()
    }

    fn store_tombstone(&mut self, key: &str, tombstone: Tombstone) -> bool {
        self.raise_highest(key, tombstone.stamp());
        self.tree.remove(key);
        if !self.like_sync_engine {
            self.tombstones.insert(key.to_owned(), tombstone);
            let now = self.clock.recording_time();
            self.recorded.insert(key.to_owned(), now);
        }
        self.items.remove(key).is_some()
    }

    /// A replicated change, applied only when it beats what the store holds.
    fn apply(&mut self, change: Change) -> Result<Outcome, SyncError> {
        self.admit(change.key())?;
        let local = self.local_state(change.key());
        let outcome = match change {
            Change::Put(item) => {
                if content_hash(&item.content) != parse_hash(&item.content_hash)? {
                    return Err(SyncError::permanent(format!(
                        "item {}: content does not match its hash",
                        item.key
                    )));
                }
                if !self.like_sync_engine && !incoming_wins(&item.stamp(), Some(&local)) {
                    Outcome::Dropped
                } else {
                    if self.echo_replicated_puts {
                        let now = self.clock.now();
                        self.stream.append_event(now, &CdcEvent::Put(item.clone()));
                    }
                    Outcome::Applied {
                        existed: self.store_item(item),
                    }
                }
            }
            Change::Delete { key, tombstone } => {
                if !self.like_sync_engine && !incoming_wins(&tombstone.stamp(), Some(&local)) {
                    Outcome::Dropped
                } else {
                    Outcome::Applied {
                        existed: self.store_tombstone(&key, tombstone),
                    }
                }
            }
        };
        match outcome {
            Outcome::Applied { .. } => self.counters.changes_applied += 1,
            Outcome::Dropped => self.counters.changes_dropped += 1,
        }
        Ok(outcome)
    }
}

fn parse_hash(hex: &str) -> Result<Hash, SyncError> {
    replication_core::parse_hash_hex(hex)
        .ok_or_else(|| SyncError::permanent(format!("malformed content hash {hex:?}")))
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
            like_sync_engine: false,
            refused: BTreeSet::new(),
            version_floor: 0,
            highest: HashMap::new(),
            failed_writes: None,
            counters: StoreCounters::default(),
            stream: CdcLog::default(),
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
    /// appends a CDC DEL. Returns the tombstone, or `None` (and changes nothing) when the
    /// key holds no item.
    pub fn delete_local(&self, key: &str) -> Option<Tombstone> {
        let mut state = self.lock();
        let version = state.items.get(key)?.version.max(state.version_floor);
        let now = state.clock.now();
        let tombstone = Tombstone {
            version: version + 1,
            deleted_at: now,
        };
        state.store_tombstone(key, tombstone.clone());
        state.stream.append_event(
            now,
            &CdcEvent::Delete {
                key: key.to_owned(),
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

    async fn submit(&self, item: SyncItem) -> Result<(), SyncError> {
        {
            let mut state = self.lock();
            state.counters.submits += 1;
            let change = Change::Put(item);
            if let Err(e) = state.check(true) {
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
            state.check(true)?;
        }
        Ok(self.delete_local(&key).is_some())
    }

    async fn delete_replicated(&self, key: String) -> Result<bool, SyncError> {
        let mut state = self.lock();
        state.counters.replicated_deletes += 1;
        state.check(true)?;
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
        state.check(false)?;
        Ok(state
            .items
            .get(key)
            .is_some_and(|item| item.content_hash.eq_ignore_ascii_case(content_hash)))
    }

    async fn get_merkle_root(&self) -> Result<Option<Hash>, SyncError> {
        let mut state = self.lock();
        state.counters.merkle_reads += 1;
        state.check(false)?;
        Ok(state.tree.node_hash(""))
    }

    async fn get_merkle_children(&self, path: &str) -> Result<Vec<(String, Hash)>, SyncError> {
        let mut state = self.lock();
        state.counters.merkle_reads += 1;
        state.counters.merkle_paths += 1;
        state.check(false)?;
        Ok(state.tree.children_of(path))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SyncError> {
        let mut state = self.lock();
        state.check(false)?;
        Ok(state.items.get(key).map(|item| item.content.clone()))
    }

    async fn local_states(&self, keys: &[String]) -> Result<Vec<Option<LocalState>>, SyncError> {
        let mut state = self.lock();
        state.counters.local_state_reads += 1;
        state.check(false)?;
        Ok(keys
            .iter()
            .map(|key| Some(state.local_state(key)))
            .collect())
    }

    async fn apply_batch(&self, changes: Vec<Change>) -> Result<(), SyncError> {
        {
            let mut state = self.lock();
            state.counters.applied_batches += 1;
            if let Err(e) = state.check(true) {
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
        state.check(true)?;
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
        state.check(false)?;
        Ok(paths
            .iter()
            .map(|path| state.tree.children_of(path))
            .collect())
    }

    async fn get_tombstones(&self, keys: &[String]) -> Result<Vec<Option<Tombstone>>, SyncError> {
        let mut state = self.lock();
        state.check(false)?;
        Ok(keys
            .iter()
            .map(|key| state.tombstones.get(key).cloned())
            .collect())
    }

    async fn purge_tombstones(&self, recorded_before_ms: i64) -> Result<u64, SyncError> {
        let mut state = self.lock();
        state.check(true)?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests {
    use super::*;
    use replication_core::merkle::SELF_SEGMENT;

    #[test]
    fn local_writes_bump_versions_across_deletes() {
        let store = MemoryStore::new();
        let first = store.put_local("a.b", b"one".to_vec());
        assert_eq!(first.version, 1);
        assert_eq!(store.put_local("a.b", b"two".to_vec()).version, 2);
        let tombstone = store.delete_local("a.b").unwrap();
        assert_eq!(tombstone.version, 3);
        assert!(store.item("a.b").is_none());
        assert_eq!(store.root(), None);
        assert_eq!(store.put_local("a.b", b"three".to_vec()).version, 4);
        assert!(
            store.tombstone("a.b").is_none(),
            "a newer put replaces the tombstone"
        );
        assert_eq!(store.delete_local("missing"), None);
    }

    #[tokio::test]
    async fn replicated_writes_follow_the_conflict_order() {
        let store = MemoryStore::new();
        store
            .submit(SyncItem::new("k", b"new".to_vec(), 5, 10))
            .await
            .unwrap();
        store
            .submit(SyncItem::new("k", b"old".to_vec(), 4, 99))
            .await
            .unwrap();
        assert_eq!(store.item("k").unwrap().content, b"new");
        // A tombstone that does not beat the item is dropped...
        assert!(!store
            .delete_replicated_with(
                "k".into(),
                Tombstone {
                    version: 5,
                    deleted_at: 9
                }
            )
            .await
            .unwrap());
        assert!(store.item("k").is_some());
        // ...one that does deletes it and blocks older puts.
        assert!(store
            .delete_replicated_with(
                "k".into(),
                Tombstone {
                    version: 6,
                    deleted_at: 1
                }
            )
            .await
            .unwrap());
        store
            .apply_batch(vec![Change::Put(SyncItem::new(
                "k",
                b"late".to_vec(),
                6,
                0,
            ))])
            .await
            .unwrap();
        assert!(store.item("k").is_none());
        let counters = store.counters();
        assert_eq!((counters.changes_applied, counters.changes_dropped), (2, 3));
        assert_eq!(counters.applied_batches, 1);
    }

    #[tokio::test]
    async fn bare_replicated_delete_beats_the_version_it_deleted() {
        let store = MemoryStore::new();
        store
            .submit(SyncItem::new("k", b"v".to_vec(), 3, 50_000))
            .await
            .unwrap();
        assert!(store.delete_replicated("k".into()).await.unwrap());
        let tombstone = store.tombstone("k").unwrap();
        assert_eq!(tombstone.version, 3);
        assert!(tombstone
            .stamp()
            .beats(&SyncItem::new("k", b"v".to_vec(), 3, 50_000).stamp()));
        assert!(!store.delete_replicated("k".into()).await.unwrap());
    }

    #[tokio::test]
    async fn injected_failures_are_retriable_and_change_nothing() {
        let store = MemoryStore::new();
        store.set_failing(true);
        let err = store
            .submit(SyncItem::new("k", vec![1], 1, 1))
            .await
            .unwrap_err();
        assert!(err.is_retriable());
        assert!(store.get_merkle_root().await.is_err());
        store.set_failing(false);
        store.set_failing_writes(true);
        assert!(store
            .apply_batch(vec![Change::Put(SyncItem::new("k", vec![1], 1, 1))])
            .await
            .is_err());
        assert_eq!(store.get_merkle_root().await.unwrap(), None);
        assert_eq!(store.counters().failed_calls, 3);
        store.set_accepting_writes(false);
        assert!(!store.should_accept_writes());
    }

    #[tokio::test]
    async fn failed_writes_are_recorded_and_a_refused_key_can_be_allowed_again() {
        let store = MemoryStore::new();
        let item = SyncItem::new("k", vec![1], 1, 1);
        store.set_failing_writes(true);
        assert!(store.submit(item.clone()).await.is_err());
        assert!(store.take_failed_writes().is_empty(), "not recording yet");
        store.set_recording_failed_writes(true);
        assert!(store.submit(item.clone()).await.is_err());
        assert_eq!(store.take_failed_writes(), [("k".to_owned(), item.stamp())]);
        store.set_failing_writes(false);
        store.refuse_key("k");
        assert!(!store.submit(item.clone()).await.unwrap_err().is_retriable());
        store.allow_key("k");
        store.submit(item.clone()).await.unwrap();
        assert_eq!(store.highest_held("k"), Some(item.stamp()));
    }

    #[tokio::test]
    async fn rejects_items_whose_hash_does_not_match() {
        let store = MemoryStore::new();
        let mut item = SyncItem::new("k", b"abc".to_vec(), 1, 1);
        item.content = b"abd".to_vec();
        assert!(!store.submit(item).await.unwrap_err().is_retriable());
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn a_key_written_again_after_its_tombstone_was_collected_outranks_it() {
        let store = MemoryStore::new();
        store.put_local("k", b"one".to_vec());
        let tombstone = store.delete_local("k").unwrap();
        assert_eq!(store.purge_tombstones(i64::MAX).await.unwrap(), 1);
        assert_eq!(store.version_floor(), 2);
        let again = store.put_local("k", b"two".to_vec());
        assert!(again.stamp().beats(&tombstone.stamp()), "{again:?}");
        assert_eq!(store.put_local("other", b"x".to_vec()).version, 3);
        assert_eq!(
            store.highest_held("k"),
            Some(again.stamp()),
            "the highest stamp held outlives the collected tombstone it replaced"
        );
    }

    #[tokio::test]
    async fn purge_drops_tombstones_recorded_before_the_horizon_whatever_their_stamp() {
        let now = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let clock = now.clone();
        let store =
            MemoryStore::with_clock(move || clock.load(std::sync::atomic::Ordering::SeqCst));
        // Recorded at 10, 20, 30 by our clock; the deleters' clocks said otherwise.
        for (key, recorded, deleted_at) in [("a", 10, 300), ("b", 20, 200), ("c", 30, 100)] {
            now.store(recorded, std::sync::atomic::Ordering::SeqCst);
            store
                .apply_change(Change::Delete {
                    key: key.into(),
                    tombstone: Tombstone {
                        version: 1,
                        deleted_at,
                    },
                })
                .unwrap();
        }
        assert_eq!(store.purge_tombstones(20).await.unwrap(), 1);
        let keys: Vec<_> = store.tombstones().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["b", "c"]);
        assert_eq!(
            store
                .get_tombstones(&["a".into(), "b".into()])
                .await
                .unwrap()[1]
                .as_ref()
                .unwrap()
                .deleted_at,
            200
        );
    }

    #[tokio::test]
    async fn item_and_parent_share_a_node_through_the_self_segment() {
        let store = MemoryStore::new();
        let parent = store.put_local("a", b"p".to_vec());
        store.put_local("a.b", b"c".to_vec());
        let children = store.get_merkle_children("a").await.unwrap();
        let segments: Vec<_> = children.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(segments, [SELF_SEGMENT, "b"]);
        assert_eq!(
            children[0].1,
            leaf_hash("a", parent.version, &content_hash(b"p"))
        );
        store.delete_local("a.b");
        assert!(
            store.get_merkle_children("a").await.unwrap().is_empty(),
            "a is a plain leaf again"
        );
    }
}
