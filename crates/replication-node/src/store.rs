//! [`NodeStore`]: the node's own store over its Redis, and its `SyncEngineRef` implementation.

use crate::connect::connect;
use crate::health::Health;
use crate::keys::KeySpace;
use crate::plan::{Outcome, WriteOp};
use crate::read_ahead::ReadAhead;
use crate::reader::Reader;
use crate::server_watch::ServerWatch;
use crate::writer::{committed_item, Writer};
use crate::{NodeError, NodeStoreConfig};
use fred::prelude::ClientLike;
use replication_core::merkle::Hash;
use replication_core::{
    parse_hash_hex, Change, ConnectionStatus, ContentType, LocalState, ObjectIdLimits,
    SyncEngineRef, SyncError, SyncItem, Tombstone,
};
use std::sync::Arc;

/// The node's store: items, Merkle tree, CDC stream and tombstones in the node's Redis, in
/// the layout of docs/PROTOCOL.md. Cheap to clone (all clones share the connections).
#[derive(Clone)]
pub struct NodeStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: NodeStoreConfig,
    reader: Reader,
    writer: Writer,
    health: Arc<Health>,
    /// The server the writes go to (it holds the data), from the write client's events.
    watch: ServerWatch,
}

impl std::fmt::Debug for NodeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeStore")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl NodeStore {
    /// Connects to the node's Redis (one connection for reads, one for writes) and loads the
    /// write script. Fails with [`NodeError::Connect`], naming the redacted URL, when the
    /// server is unreachable.
    pub async fn connect(config: NodeStoreConfig) -> Result<Self, NodeError> {
        let keys = KeySpace::new(&config.redis_prefix);
        let cluster_slot = config
            .validate()?
            .is_cluster()
            .then(|| fred::util::redis_keyslot(keys.epoch().as_bytes()));
        let read_client = connect(&config).await?;
        let write_client = connect(&config).await?;
        let watch = ServerWatch::new(&write_client, cluster_slot);
        watch.seed();
        let read_ahead = Arc::new(ReadAhead::default());
        let writer = Writer::new(
            write_client,
            keys.clone(),
            config.cdc_maxlen,
            Arc::clone(&read_ahead),
        )
        .await?;
        let reader = Reader::new(read_client, keys, read_ahead);
        tracing::info!(url = %config.redacted_url(), prefix = %config.redis_prefix, "node store connected");
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                reader,
                writer,
                health: Health::new(),
                watch,
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &NodeStoreConfig {
        &self.inner.config
    }

    /// A local write: stores `content` at `key` with the key's next version and the current
    /// time, updates the tree and appends a CDC `PUT`, atomically. Returns the stored item.
    pub async fn put(&self, key: &str, content: Vec<u8>) -> Result<SyncItem, NodeError> {
        self.put_with(key, content, ContentType::Binary, None).await
    }

    /// [`put`](Self::put) with a content type and W3C trace context, which travel in CDC meta.
    pub async fn put_with(
        &self,
        key: &str,
        content: Vec<u8>,
        content_type: ContentType,
        trace_parent: Option<String>,
    ) -> Result<SyncItem, NodeError> {
        self.check_payload(key, content.len())?;
        let mut item = SyncItem::new(key, content, 0, 0).with_content_type(content_type);
        item.trace_parent = trace_parent;
        let mut ops = vec![WriteOp::LocalPut(item)];
        self.execute(&mut ops).await?;
        let op = ops.pop().expect("one op in, one op out");
        Ok(committed_item(op).expect("a local put stays a local put"))
    }

    /// A local delete: removes the item and its leaf, leaves a tombstone one version above
    /// and appends a CDC `DEL`. Returns whether the key existed (absent: no-op, no CDC).
    pub async fn delete_item(&self, key: &str) -> Result<bool, NodeError> {
        self.check_id(key)?;
        let outcomes = self
            .execute(&mut [WriteOp::LocalDelete(key.to_owned())])
            .await?;
        Ok(outcomes.first() == Some(&Outcome::Delete(true)))
    }

    /// Applies replicated changes, without CDC: each applies only if it beats what the store
    /// holds for its key. Every change is validated first; if any is invalid (bad id, payload
    /// over the limit) nothing is written. A batch is one atomic commit, or, when large
    /// (`writer::planning::PIPELINING`), a few atomic parts of whole keys committed back to
    /// back: a failure may then leave some parts applied, each consistent, and applying the
    /// batch again (as the engine does) completes it.
    pub async fn apply(&self, changes: Vec<Change>) -> Result<(), NodeError> {
        let mut ops = Vec::with_capacity(changes.len());
        for change in changes {
            ops.push(match change {
                Change::Put(item) => {
                    self.check_item(&item)?;
                    WriteOp::Put(item)
                }
                Change::Delete { key, tombstone } => {
                    self.check_id(&key)?;
                    WriteOp::Delete(key, Some(tombstone))
                }
            });
        }
        // Outcomes are not reported, so a large batch may be committed in pipelined parts.
        self.execute_in_parts(&mut ops).await.map(drop)
    }

    /// The item at `key`, if any.
    pub async fn get_item(&self, key: &str) -> Result<Option<SyncItem>, NodeError> {
        if self.check_id(key).is_err() {
            return Ok(None);
        }
        self.inner.reader.item(key).await
    }

    /// The Merkle root as 64 lowercase hex characters; `None` when the store is empty.
    pub async fn merkle_root_hex(&self) -> Result<Option<String>, NodeError> {
        Ok(self.inner.reader.root().await?.map(hex::encode))
    }

    /// The server holding the store's data (the primary Sentinel named, or the Cluster
    /// primary owning the store's slot), how often it changed, and reconnects: cached, no
    /// I/O.
    pub fn connection(&self) -> ConnectionStatus {
        self.inner.watch.status(self.inner.health.is_closed())
    }

    /// Closes both connections; later calls fail.
    pub async fn close(&self) {
        self.inner.health.close();
        // Quitting a connection that is already gone is not worth reporting.
        let _ = self.inner.reader.client().quit().await;
        let _ = self.inner.writer.client().quit().await;
    }

    /// A valid object id, within the configured limits, that spells no store key.
    fn check_id(&self, key: &str) -> Result<(), NodeError> {
        KeySpace::check_id(key, &self.inner.config.object_id_limits)
    }

    fn check_payload(&self, key: &str, size: usize) -> Result<(), NodeError> {
        self.check_id(key)?;
        let limit = self.inner.config.max_payload_bytes;
        if size > limit {
            return Err(NodeError::PayloadTooLarge {
                key: key.to_owned(),
                size,
                limit,
            });
        }
        Ok(())
    }

    fn check_item(&self, item: &SyncItem) -> Result<(), NodeError> {
        self.check_payload(&item.key, item.content.len())?;
        if parse_hash_hex(&item.content_hash).is_none() {
            return Err(NodeError::InvalidItem {
                key: item.key.clone(),
                reason: "content_hash is not 64 hex characters",
            });
        }
        Ok(())
    }

    /// Applies `ops` as one atomic batch.
    async fn execute(&self, ops: &mut [WriteOp]) -> Result<Vec<Outcome>, NodeError> {
        if !self.writable(ops)? {
            return Ok(Vec::new());
        }
        let result = self.inner.writer.execute(ops).await;
        self.record(result)
    }

    /// [`execute`](Self::execute), committing a large replicated batch in pipelined parts
    /// (`writer::planning::PIPELINING`); the ops are regrouped by key.
    async fn execute_in_parts(&self, ops: &mut [WriteOp]) -> Result<Vec<Outcome>, NodeError> {
        if !self.writable(ops)? {
            return Ok(Vec::new());
        }
        let result = self.inner.writer.execute_in_parts(ops).await;
        self.record(result)
    }

    /// Whether `ops` go to the writer: not on a closed store, not when there are none.
    fn writable(&self, ops: &[WriteOp]) -> Result<bool, NodeError> {
        if self.inner.health.is_closed() {
            return Err(NodeError::Closed);
        }
        Ok(!ops.is_empty())
    }

    /// Tells the health what a write's `result` says about the server.
    fn record(&self, result: Result<Vec<Outcome>, NodeError>) -> Result<Vec<Outcome>, NodeError> {
        match &result {
            Ok(_) => self.inner.health.record_success(),
            Err(e) if e.refuses_writes() => {
                self.inner
                    .health
                    .record_refused(self.inner.writer.client(), &self.inner.writer.probe_key());
            }
            Err(_) => {}
        }
        result
    }

    async fn read<T>(
        &self,
        read: impl std::future::Future<Output = Result<T, NodeError>>,
    ) -> Result<T, NodeError> {
        if self.inner.health.is_closed() {
            return Err(NodeError::Closed);
        }
        read.await
    }
}

impl SyncEngineRef for NodeStore {
    fn should_accept_writes(&self) -> bool {
        self.inner.health.accepting() && !self.inner.health.is_closed()
    }

    fn connection(&self) -> Option<ConnectionStatus> {
        Some(NodeStore::connection(self))
    }

    async fn submit(&self, item: SyncItem) -> Result<(), SyncError> {
        self.apply(vec![Change::Put(item)])
            .await
            .map_err(SyncError::from)
    }

    async fn delete(&self, key: String) -> Result<bool, SyncError> {
        self.delete_item(&key).await.map_err(SyncError::from)
    }

    async fn delete_replicated(&self, key: String) -> Result<bool, SyncError> {
        self.check_id(&key).map_err(SyncError::from)?;
        let outcomes = self.execute(&mut [WriteOp::Delete(key, None)]).await?;
        Ok(outcomes.first() == Some(&Outcome::Delete(true)))
    }

    async fn delete_replicated_with(
        &self,
        key: String,
        tombstone: Tombstone,
    ) -> Result<bool, SyncError> {
        self.check_id(&key).map_err(SyncError::from)?;
        let outcomes = self
            .execute(&mut [WriteOp::Delete(key, Some(tombstone))])
            .await?;
        Ok(outcomes.first() == Some(&Outcome::Delete(true)))
    }

    async fn is_current(&self, key: &str, content_hash: &str) -> Result<bool, SyncError> {
        if self.check_id(key).is_err() {
            return Ok(false);
        }
        Ok(self
            .read(self.inner.reader.is_current(key, content_hash))
            .await?)
    }

    async fn get_merkle_root(&self) -> Result<Option<Hash>, SyncError> {
        Ok(self.read(self.inner.reader.root()).await?)
    }

    async fn get_merkle_children(&self, path: &str) -> Result<Vec<(String, Hash)>, SyncError> {
        let mut all = self
            .read(self.inner.reader.children_many(&[path.to_owned()]))
            .await?;
        Ok(all.pop().unwrap_or_default())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SyncError> {
        Ok(self
            .read(self.get_item(key))
            .await?
            .map(|item| item.content))
    }

    async fn local_states(&self, keys: &[String]) -> Result<Vec<Option<LocalState>>, SyncError> {
        // Invalid ids can hold nothing: they are Absent without asking Redis.
        let (valid, spread) = only_valid_ids(keys, &self.inner.config.object_id_limits);
        let states = self.read(self.inner.reader.local_states(&valid)).await?;
        Ok(spread(
            states.into_iter().map(Some).collect(),
            Some(LocalState::Absent),
        ))
    }

    async fn apply_batch(&self, changes: Vec<Change>) -> Result<(), SyncError> {
        self.apply(changes).await.map_err(SyncError::from)
    }

    async fn get_merkle_children_many(
        &self,
        paths: &[String],
    ) -> Result<Vec<Vec<(String, Hash)>>, SyncError> {
        Ok(self.read(self.inner.reader.children_many(paths)).await?)
    }

    async fn get_tombstones(&self, keys: &[String]) -> Result<Vec<Option<Tombstone>>, SyncError> {
        let (valid, spread) = only_valid_ids(keys, &self.inner.config.object_id_limits);
        let found = self.read(self.inner.reader.tombstones(&valid)).await?;
        Ok(spread(found, None))
    }

    async fn purge_tombstones(&self, recorded_before_ms: i64) -> Result<u64, SyncError> {
        Ok(self
            .read(self.inner.writer.purge_tombstones(recorded_before_ms))
            .await?)
    }
}

/// The valid object ids among `keys` (only those are asked of Redis), and a function that
/// spreads the answers back over `keys`, in order, with `invalid` for the others.
fn only_valid_ids<'k, T: Clone>(
    keys: &'k [String],
    limits: &ObjectIdLimits,
) -> (Vec<String>, impl FnOnce(Vec<T>, T) -> Vec<T> + 'k) {
    let ok: Vec<bool> = keys
        .iter()
        .map(|k| KeySpace::check_id(k, limits).is_ok())
        .collect();
    let valid: Vec<String> = keys
        .iter()
        .zip(&ok)
        .filter(|(_, ok)| **ok)
        .map(|(k, _)| k.clone())
        .collect();
    let spread = move |answers: Vec<T>, invalid: T| {
        let mut answers = answers.into_iter();
        keys.iter()
            .zip(ok)
            .map(|(_, ok)| {
                if ok {
                    answers.next().unwrap_or_else(|| invalid.clone())
                } else {
                    invalid.clone()
                }
            })
            .collect()
    };
    (valid, spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// Type-checked only: the public futures can run on a multi-threaded runtime.
    #[allow(dead_code)]
    fn public_futures_are_send(store: &NodeStore) {
        assert_send(&NodeStore::connect(NodeStoreConfig::new(
            "redis://127.0.0.1:1",
        )));
        assert_send(&store.put("k", Vec::new()));
        assert_send(&store.apply(Vec::new()));
        assert_send(&store.delete_item("k"));
        assert_send(&store.get_item("k"));
        assert_send(&store.merkle_root_hex());
        assert_send(&store.close());
    }
}
