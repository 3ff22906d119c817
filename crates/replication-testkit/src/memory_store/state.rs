//! What sits behind [`MemoryStore`](super::MemoryStore)'s lock and the rule every
//! replicated write follows there: admitted, checked against the conflict order, then
//! stored or dropped (and counted).

use crate::lazy_tree::LazyTree;
use crate::memory_peer::CdcLog;
use crate::store_clock::Clock;
use crate::StoreCounters;
use replication_core::merkle::{leaf_hash, validate_object_id, Hash};
use replication_core::{
    content_hash, incoming_wins, CdcEvent, Change, LocalState, Stamp, SyncError, SyncItem,
    Tombstone,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// What a replicated write did.
pub(super) enum Outcome {
    /// Stored; `existed` tells whether the key held an item before.
    Applied { existed: bool },
    /// Lost the conflict order; nothing changed.
    Dropped,
}

/// Everything behind the store's lock.
pub(super) struct StoreState {
    pub(super) items: BTreeMap<String, SyncItem>,
    pub(super) tombstones: BTreeMap<String, Tombstone>,
    /// When this store recorded each tombstone (its clock), for collection.
    pub(super) recorded: HashMap<String, i64>,
    pub(super) tree: LazyTree,
    pub(super) clock: Clock,
    pub(super) fail_all: bool,
    pub(super) fail_writes: bool,
    /// How long a write's reply takes after the write is visible (see `set_reply_latency`).
    pub(super) reply_latency: Duration,
    pub(super) accepting_writes: bool,
    pub(super) echo_replicated_puts: bool,
    /// Local deletes append bare DEL entries (no stamp), as sync-engine and our stores
    /// before stamped deletes write them.
    pub(super) bare_deletes: bool,
    /// Stores replicated writes as they come and keeps no tombstones (sync-engine's way).
    pub(super) like_sync_engine: bool,
    /// Keys whose replicated writes are refused with a permanent error.
    pub(super) refused: BTreeSet<String>,
    /// Every local write's version is above it: the highest version of a collected
    /// tombstone (docs/PROTOCOL.md "Versions never go backwards").
    pub(super) version_floor: u64,
    /// The greatest stamp each key has ever held (item or tombstone, collected or
    /// replaced since): what the store has applied, for checks of causality.
    pub(super) highest: HashMap<String, Stamp>,
    /// Changes of replicated writes that failed by injection, while recording is on.
    pub(super) failed_writes: Option<Vec<(String, Stamp)>>,
    pub(super) counters: StoreCounters,
    pub(super) stream: CdcLog,
    /// What `connection` reports (see `set_connection`).
    pub(super) connection: Option<replication_core::ConnectionStatus>,
}

impl StoreState {
    /// This store knows every key, so it never answers "unknown".
    pub(super) fn local_state(&self, key: &str) -> LocalState {
        if let Some(item) = self.items.get(key) {
            return LocalState::Present(item.stamp());
        }
        self.tombstones
            .get(key)
            .cloned()
            .map_or(LocalState::Absent, LocalState::Deleted)
    }

    /// Refuses for good what this store can never hold: an invalid id, a refused key.
    pub(super) fn admit(&self, key: &str) -> Result<(), SyncError> {
        validate_object_id(key).map_err(|e| SyncError::permanent(e.to_string()))?;
        if self.refused.contains(key) {
            return Err(SyncError::permanent(format!(
                "memory store: {key} is refused (injected)"
            )));
        }
        Ok(())
    }

    /// Fails a read when every call fails by injection.
    pub(super) fn check_read(&mut self) -> Result<(), SyncError> {
        self.check(false)
    }

    /// Fails a write when every call, or every write, fails by injection.
    pub(super) fn check_write(&mut self) -> Result<(), SyncError> {
        self.check(true)
    }

    fn check(&mut self, write: bool) -> Result<(), SyncError> {
        if self.fail_all || (write && self.fail_writes) {
            self.counters.failed_calls += 1;
            return Err(SyncError::new("memory store: injected failure"));
        }
        Ok(())
    }

    /// Notes the changes of a write that failed by injection (when recording).
    pub(super) fn note_failed<'a>(&mut self, changes: impl Iterator<Item = &'a Change>) {
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

    pub(super) fn store_item(&mut self, item: SyncItem) -> bool {
        self.raise_highest(&item.key, item.stamp());
        let leaf = leaf_hash(&item.key, item.version, &content_hash(&item.content));
        self.tree.insert(&item.key, leaf);
        self.tombstones.remove(&item.key);
        self.recorded.remove(&item.key);
        self.items.insert(item.key.clone(), item).is_some()
    }

    pub(super) fn store_tombstone(&mut self, key: &str, tombstone: Tombstone) -> bool {
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
    pub(super) fn apply(&mut self, change: Change) -> Result<Outcome, SyncError> {
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
