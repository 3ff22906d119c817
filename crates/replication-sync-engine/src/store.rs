//! [`SyncEngineStore`]: the engine's local store over a running sync-engine.
//!
//! Every write goes through one lock and ends with a flush, because sync-engine is
//! write-behind: a submit lands in its memory tier and reaches Redis, SQL and its Merkle
//! tree only when a batch is flushed. Flushing before returning keeps the engine's rule that
//! a cursor never passes a change the store has not persisted; the lock keeps the adapter's
//! read-check-write steps (conflict order, tombstones) from interleaving, and keeps two of
//! sync-engine's Merkle recomputes from running at once.

use crate::convert::{stamp_of, to_engine_item};
use crate::error::{self, AdapterError};
use crate::merkle_reads;
use crate::states::{combine, next_version};
use crate::tombstones::Tombstones;
use redis::aio::ConnectionManager;
use replication_core::config::{redact_url, redact_urls_in};
use replication_core::merkle::Hash;
use replication_core::{
    incoming_wins, Change, LocalState, SyncEngineRef, SyncError, SyncItem, Tombstone,
};
use std::sync::Arc;
use sync_engine::{SyncEngine, SyncEngineConfig};
use tokio::sync::Mutex;

/// A `SyncEngineRef` over a started [`SyncEngine`].
///
/// Replicated puts go through `SyncEngine::submit` (keeping the writer's version and time),
/// replicated deletes through `SyncEngine::delete_many` (which appends nothing to the CDC
/// stream), and the tombstones sync-engine does not keep live in `{prefix}tombstones` of its
/// Redis. Local writes made through [`put`](Self::put) and
/// [`SyncEngineRef::delete`] follow the same rules; writes made directly on the
/// `SyncEngine` bypass them (docs/PROTOCOL.md).
pub struct SyncEngineStore {
    engine: Arc<SyncEngine>,
    conn: ConnectionManager,
    prefix: String,
    tombstones: Tombstones,
    writes: Mutex<()>,
}

impl std::fmt::Debug for SyncEngineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngineStore")
            .field("prefix", &self.prefix)
            .field("engine_state", &self.engine.state())
            .finish_non_exhaustive()
    }
}

impl SyncEngineStore {
    /// Wraps `engine`, which must have been started (`SyncEngine::start`) with `config`; the
    /// adapter opens one more connection to `config.redis_url` for its tombstones and batched
    /// Merkle reads, under `config.redis_prefix`.
    ///
    /// # Errors
    /// The configuration names no Redis, or it cannot be reached (URL redacted).
    pub async fn connect(
        engine: Arc<SyncEngine>,
        config: &SyncEngineConfig,
    ) -> Result<Self, AdapterError> {
        let url = config.redis_url.as_deref().ok_or(AdapterError::NoRedis)?;
        let prefix = config.redis_prefix.clone().unwrap_or_default();
        let redis = sync_engine::storage::redis::RedisStore::with_prefix(url, Some(&prefix))
            .await
            .map_err(|e| AdapterError::Connect {
                url: redact_url(url),
                reason: redact_urls_in(&e.to_string()),
            })?;
        let conn = redis.connection();
        Ok(Self {
            tombstones: Tombstones::new(conn.clone(), &prefix),
            engine,
            conn,
            prefix,
            writes: Mutex::new(()),
        })
    }

    /// The wrapped engine (for reads and writes the adapter does not cover).
    pub fn engine(&self) -> &Arc<SyncEngine> {
        &self.engine
    }

    /// The Redis key of the adapter's tombstones hash.
    pub fn tombstones_key(&self) -> &str {
        self.tombstones.key()
    }

    /// A local write: the next version of `key` (one above its item or tombstone), stamped
    /// now, stored through sync-engine (which appends it to its CDC stream). Returns the
    /// item as stored.
    ///
    /// # Errors
    /// A backend down or backpressure (retriable).
    pub async fn put(&self, key: &str, content: Vec<u8>) -> Result<SyncItem, SyncError> {
        let _writing = self.writes.lock().await;
        let state = self.read_state(key).await?;
        let floor = self.tombstones.version_floor().await?;
        let now = now_ms();
        let updated_at = match &state {
            // Never behind the version it replaces, even if this clock is.
            LocalState::Present(s) => now.max(s.updated_at),
            LocalState::Deleted(t) => now.max(t.deleted_at),
            LocalState::Absent => now,
        };
        let item = SyncItem::new(key, content, next_version(&state, floor), updated_at);
        self.store_puts(vec![(item.clone(), state)]).await?;
        Ok(item)
    }

    /// The state of one key.
    async fn read_state(&self, key: &str) -> Result<LocalState, SyncError> {
        let mut states = self.read_states(&[key.to_owned()]).await?;
        Ok(states.pop().expect("read_states answers one state per key"))
    }

    /// States of `keys` from sync-engine's items and the adapter's tombstones.
    async fn read_states(&self, keys: &[String]) -> Result<Vec<LocalState>, SyncError> {
        let ids: Vec<&str> = keys.iter().map(String::as_str).collect();
        let (items, tombstones) =
            tokio::join!(self.engine.get_many(&ids), self.tombstones.get(keys));
        let tombstones = tombstones?;
        if items.iter().any(Option::is_none) {
            self.check_backends().await?;
        }
        Ok(items
            .iter()
            .zip(tombstones)
            .map(|(item, tombstone)| combine(item.as_ref().map(stamp_of), tombstone))
            .collect())
    }

    /// sync-engine reports a key it could not read as missing (it logs the error and
    /// answers `None`). An absent key is only believed while both its backends answer.
    async fn check_backends(&self) -> Result<(), SyncError> {
        let health = self.engine.health_check().await;
        let down: Vec<&str> = [
            ("Redis", health.redis_connected),
            ("SQL", health.sql_connected),
        ]
        .into_iter()
        .filter(|(_, connected)| *connected == Some(false))
        .map(|(name, _)| name)
        .collect();
        if down.is_empty() {
            Ok(())
        } else {
            Err(SyncError::new(format!(
                "sync-engine's {} does not answer: a key it reports missing may just be unreadable",
                down.join(" and ")
            )))
        }
    }

    /// Stores puts whose states were read under the write lock, then flushes.
    async fn store_puts(&self, puts: Vec<(SyncItem, LocalState)>) -> Result<(), SyncError> {
        // sync-engine marks an item's Merkle leaf for recompute only when its content hash
        // changes, so a new version of unchanged content would keep the old version's leaf.
        // Deleting the item first (no CDC) makes the submit a fresh insert, whose leaf is
        // computed.
        let same_content: Vec<&str> = puts
            .iter()
            .filter(|(item, state)| {
                matches!(state, LocalState::Present(s)
                if s.content_hash == item.content_hash && s.version != item.version)
            })
            .map(|(item, _)| item.key.as_str())
            .collect();
        if !same_content.is_empty() {
            self.engine
                .delete_many(&same_content)
                .await
                .map_err(|e| error::storage("delete before a same-content version", e))?;
        }
        let mut replaced_tombstones = Vec::new();
        let mut items = Vec::with_capacity(puts.len());
        for (item, state) in puts {
            if matches!(state, LocalState::Deleted(_)) {
                replaced_tombstones.push(item.key.clone());
            }
            items.push(to_engine_item(item));
        }
        // One call queues the whole batch (sync-engine's `submit` may flush part of it on
        // the way), and the flush follows at once: sync-engine's own timed flush (its `run`
        // loop) finds nothing old enough to take in between.
        self.engine
            .submit_many(items)
            .await
            .map_err(|e| error::storage("submit", e))?;
        self.engine.force_flush().await;
        // Only once the put is persisted: a crash before this leaves the tombstone, which
        // the put beats wherever it is compared.
        self.tombstones.remove(&replaced_tombstones).await
    }

    /// Deletes items and leaves their tombstones (written first, so a reader never finds
    /// the key with neither), without appending to the CDC stream.
    async fn store_deletes(&self, deletes: Vec<(String, Tombstone)>) -> Result<(), SyncError> {
        if deletes.is_empty() {
            return Ok(());
        }
        self.tombstones.put(&deletes, now_ms()).await?;
        let ids: Vec<&str> = deletes.iter().map(|(id, _)| id.as_str()).collect();
        self.engine
            .delete_many(&ids)
            .await
            .map_err(|e| error::storage("replicated delete", e))?;
        Ok(())
    }
}

impl SyncEngineRef for SyncEngineStore {
    /// sync-engine is started and its memory tier below its `Critical` pressure level
    /// (0.90 of `l1_max_bytes`): replicated writes wait, leaving sync-engine's own
    /// write refusal (at `Emergency`) to local writes.
    fn should_accept_writes(&self) -> bool {
        self.engine.is_ready() && self.engine.pressure().should_accept_writes()
    }

    async fn submit(&self, item: SyncItem) -> Result<(), SyncError> {
        self.apply_batch(vec![Change::Put(item)]).await
    }

    async fn delete(&self, key: String) -> Result<bool, SyncError> {
        let _writing = self.writes.lock().await;
        let state = self.read_state(&key).await?;
        let LocalState::Present(stamp) = &state else {
            return Ok(false);
        };
        let floor = self.tombstones.version_floor().await?;
        let now = now_ms();
        let tombstone = Tombstone {
            version: next_version(&state, floor),
            deleted_at: now.max(stamp.updated_at),
        };
        self.tombstones
            .put(&[(key.clone(), tombstone)], now)
            .await?;
        // The local delete is the one write that must reach the CDC stream.
        self.engine
            .delete(&key)
            .await
            .map_err(|e| error::storage("delete", e))?;
        Ok(true)
    }

    async fn delete_replicated(&self, key: String) -> Result<bool, SyncError> {
        let _writing = self.writes.lock().await;
        let state = self.read_state(&key).await?;
        self.engine
            .delete_many(&[key.as_str()])
            .await
            .map_err(|e| error::storage("replicated delete", e))?;
        Ok(matches!(state, LocalState::Present(_)))
    }

    async fn delete_replicated_with(
        &self,
        key: String,
        tombstone: Tombstone,
    ) -> Result<bool, SyncError> {
        let _writing = self.writes.lock().await;
        let state = self.read_state(&key).await?;
        if !incoming_wins(&tombstone.stamp(), Some(&state)) {
            return Ok(false);
        }
        self.store_deletes(vec![(key, tombstone)]).await?;
        Ok(matches!(state, LocalState::Present(_)))
    }

    async fn is_current(&self, key: &str, content_hash: &str) -> Result<bool, SyncError> {
        Ok(self
            .engine
            .is_current(key, &content_hash.to_ascii_lowercase())
            .await)
    }

    async fn get_merkle_root(&self) -> Result<Option<Hash>, SyncError> {
        self.engine
            .get_merkle_root()
            .await
            .map_err(|e| error::storage("Merkle root", e))
    }

    async fn get_merkle_children(&self, path: &str) -> Result<Vec<(String, Hash)>, SyncError> {
        self.engine
            .get_merkle_children(path)
            .await
            .map(merkle_reads::sorted)
            .map_err(|e| error::storage("Merkle children", e))
    }

    async fn get_merkle_children_many(
        &self,
        paths: &[String],
    ) -> Result<Vec<Vec<(String, Hash)>>, SyncError> {
        merkle_reads::children_many(&self.engine, &self.conn, &self.prefix, paths).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SyncError> {
        self.engine
            .get(key)
            .await
            .map(|item| item.map(|item| item.content))
            .map_err(|e| error::storage("get", e))
    }

    async fn local_states(&self, keys: &[String]) -> Result<Vec<Option<LocalState>>, SyncError> {
        Ok(self
            .read_states(keys)
            .await?
            .into_iter()
            .map(Some)
            .collect())
    }

    /// Applies the changes that still beat what the store holds, re-read under the write
    /// lock (the engine's own check ran before it, without the lock).
    async fn apply_batch(&self, changes: Vec<Change>) -> Result<(), SyncError> {
        if changes.is_empty() {
            return Ok(());
        }
        let _writing = self.writes.lock().await;
        let keys: Vec<String> = changes.iter().map(|c| c.key().to_owned()).collect();
        let states = self.read_states(&keys).await?;
        let mut puts = Vec::new();
        let mut deletes = Vec::new();
        for (change, state) in changes.into_iter().zip(states) {
            match change {
                Change::Put(item) => {
                    if incoming_wins(&item.stamp(), Some(&state)) {
                        puts.push((item, state));
                    }
                }
                Change::Delete { key, tombstone } => {
                    if incoming_wins(&tombstone.stamp(), Some(&state)) {
                        deletes.push((key, tombstone));
                    }
                }
            }
        }
        self.store_deletes(deletes).await?;
        if !puts.is_empty() {
            self.store_puts(puts).await?;
        }
        Ok(())
    }

    async fn get_tombstones(&self, keys: &[String]) -> Result<Vec<Option<Tombstone>>, SyncError> {
        self.tombstones.get(keys).await
    }

    /// Drops the tombstones the adapter recorded before `recorded_before_ms` and raises the
    /// version floor above them, in one atomic step.
    async fn purge_tombstones(&self, recorded_before_ms: i64) -> Result<u64, SyncError> {
        let _writing = self.writes.lock().await;
        let old: Vec<(String, Tombstone)> = self
            .tombstones
            .all()
            .await?
            .into_iter()
            .filter(|(_, _, recorded_at)| *recorded_at < recorded_before_ms)
            .map(|(id, tombstone, _)| (id, tombstone))
            .collect();
        self.tombstones.collect(&old).await?;
        Ok(old.len() as u64)
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
