//! A `SyncEngineRef` wrapper that counts what the engine applies and, optionally, records
//! each item's replication lag (applied-at − appended-at, from the payload's stamp).
//!
//! Every trait method is delegated, defaults included, so that wrapping a store changes
//! nothing but the counting: `Counting<NoOpSyncEngine>` is the "no-op store" (its
//! `local_states` knows nothing, so the engine asks `is_current`, which says false), and
//! `Counting<NodeStore>` is the real node.

use crate::payload::{now_micros, stamp_of};
use replication_core::merkle::Hash;
use replication_core::{Change, LocalState, SyncEngineRef, SyncError, SyncItem, Tombstone};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Notify;

/// Counts applied changes of an inner store.
pub(crate) struct Counting<S> {
    inner: Arc<S>,
    applied: AtomicU64,
    target: AtomicU64,
    reached: Notify,
    lags: Option<Mutex<Vec<u64>>>,
}

impl<S: SyncEngineRef> Counting<S> {
    /// Counts only.
    pub(crate) fn new(inner: Arc<S>) -> Self {
        Self {
            inner,
            applied: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            reached: Notify::new(),
            lags: None,
        }
    }

    /// Counts and records the lag of every applied item, in microseconds.
    pub(crate) fn with_lag(inner: Arc<S>) -> Self {
        Self {
            lags: Some(Mutex::new(Vec::new())),
            ..Self::new(inner)
        }
    }

    /// Changes applied so far.
    pub(crate) fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Waits until at least `target` changes were applied.
    pub(crate) async fn wait_for(&self, target: u64) {
        self.target.store(target, Ordering::Release);
        loop {
            let notified = self.reached.notified();
            if self.applied() >= target {
                return;
            }
            notified.await;
        }
    }

    /// The lags recorded so far (µs), leaving none behind.
    pub(crate) fn take_lags(&self) -> Vec<u64> {
        self.lags.as_ref().map_or_else(Vec::new, |lags| {
            std::mem::take(&mut *lags.lock().unwrap_or_else(PoisonError::into_inner))
        })
    }

    fn count(&self, changes: u64, stamps: &[u64]) {
        if let Some(lags) = &self.lags {
            let now = now_micros();
            let mut lags = lags.lock().unwrap_or_else(PoisonError::into_inner);
            lags.extend(stamps.iter().map(|&t| now.saturating_sub(t)));
        }
        let total = self.applied.fetch_add(changes, Ordering::AcqRel) + changes;
        if total >= self.target.load(Ordering::Acquire) {
            self.reached.notify_one();
        }
    }

    fn stamps(&self, changes: &[Change]) -> Vec<u64> {
        if self.lags.is_none() {
            return Vec::new();
        }
        changes
            .iter()
            .filter_map(|c| match c {
                Change::Put(item) => stamp_of(&item.content),
                Change::Delete { .. } => None,
            })
            .collect()
    }
}

impl<S: SyncEngineRef> SyncEngineRef for Counting<S> {
    fn should_accept_writes(&self) -> bool {
        self.inner.should_accept_writes()
    }

    fn connection(&self) -> Option<replication_core::ConnectionStatus> {
        self.inner.connection()
    }

    async fn submit(&self, item: SyncItem) -> Result<(), SyncError> {
        let stamp: Vec<u64> = if self.lags.is_some() {
            stamp_of(&item.content).into_iter().collect()
        } else {
            Vec::new()
        };
        self.inner.submit(item).await?;
        self.count(1, &stamp);
        Ok(())
    }

    async fn delete(&self, key: String) -> Result<bool, SyncError> {
        self.inner.delete(key).await
    }

    async fn delete_replicated(&self, key: String) -> Result<bool, SyncError> {
        let existed = self.inner.delete_replicated(key).await?;
        self.count(1, &[]);
        Ok(existed)
    }

    async fn is_current(&self, key: &str, content_hash: &str) -> Result<bool, SyncError> {
        self.inner.is_current(key, content_hash).await
    }

    async fn get_merkle_root(&self) -> Result<Option<Hash>, SyncError> {
        self.inner.get_merkle_root().await
    }

    async fn get_merkle_children(&self, path: &str) -> Result<Vec<(String, Hash)>, SyncError> {
        self.inner.get_merkle_children(path).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SyncError> {
        self.inner.get(key).await
    }

    async fn local_states(&self, keys: &[String]) -> Result<Vec<Option<LocalState>>, SyncError> {
        self.inner.local_states(keys).await
    }

    async fn apply_batch(&self, changes: Vec<Change>) -> Result<(), SyncError> {
        let n = changes.len() as u64;
        let stamps = self.stamps(&changes);
        // Delegated whole: the inner store's own batching is what is measured.
        self.inner.apply_batch(changes).await?;
        self.count(n, &stamps);
        Ok(())
    }

    async fn delete_replicated_with(
        &self,
        key: String,
        tombstone: Tombstone,
    ) -> Result<bool, SyncError> {
        let existed = self.inner.delete_replicated_with(key, tombstone).await?;
        self.count(1, &[]);
        Ok(existed)
    }

    async fn get_merkle_children_many(
        &self,
        paths: &[String],
    ) -> Result<Vec<Vec<(String, Hash)>>, SyncError> {
        self.inner.get_merkle_children_many(paths).await
    }

    async fn get_tombstones(&self, keys: &[String]) -> Result<Vec<Option<Tombstone>>, SyncError> {
        self.inner.get_tombstones(keys).await
    }

    async fn purge_tombstones(&self, deleted_before_ms: i64) -> Result<u64, SyncError> {
        self.inner.purge_tombstones(deleted_before_ms).await
    }
}
