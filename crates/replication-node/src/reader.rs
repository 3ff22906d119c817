//! The reader: the store's read operations (items, local states, tombstones, the Merkle
//! tree) on the read connection, each answered in one round trip however many keys or paths
//! are asked for. The pipelines it shares with the writer's snapshot are `batch_read`'s; the
//! value codecs are `value_codec`'s.

use crate::batch_read;
use crate::keys::KeySpace;
use crate::read_ahead::ReadAhead;
use crate::value_codec::{corrupt, decode_tombstone, parse_item_meta, reply_array, reply_bytes};
use crate::NodeError;
use bytes::Bytes;
use fred::prelude::{Client, HashesInterface, KeysInterface, Value};
use replication_core::merkle::Hash;
use replication_core::{decode_item_json, parse_hash_hex, LocalState, SyncItem, Tombstone};
use std::sync::Arc;

/// Reads on their own connection, so that they never queue behind a large write.
pub(crate) struct Reader {
    client: Client,
    keys: KeySpace,
    read_ahead: Arc<ReadAhead>,
}

impl Reader {
    pub(crate) fn new(client: Client, keys: KeySpace, read_ahead: Arc<ReadAhead>) -> Self {
        Self {
            client,
            keys,
            read_ahead,
        }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The item JSON stored for `id`, with its Redis key (for errors).
    async fn raw_item(&self, id: &str) -> Result<(String, Option<Bytes>), NodeError> {
        let key = self.keys.item(id);
        let raw: Option<Bytes> = self
            .client
            .get(&key)
            .await
            .map_err(|e| NodeError::redis("GET item", e))?;
        Ok((key, raw))
    }

    /// The item at `id`, decoded and hash-checked.
    pub(crate) async fn item(&self, id: &str) -> Result<Option<SyncItem>, NodeError> {
        let (key, raw) = self.raw_item(id).await?;
        raw.map(|bytes| decode_item_json(id, &bytes).map_err(|e| corrupt(&key, e.reason)))
            .transpose()
    }

    /// True when `id` holds an item whose content hash is `content_hash`.
    pub(crate) async fn is_current(&self, id: &str, content_hash: &str) -> Result<bool, NodeError> {
        let (key, raw) = self.raw_item(id).await?;
        match raw {
            None => Ok(false),
            Some(bytes) => Ok(parse_item_meta(&key, &bytes)?
                .content_hash
                .eq_ignore_ascii_case(content_hash)),
        }
    }

    /// Item stamp or tombstone of every id, in order: one pipeline of the write token,
    /// `MGET`, `HMGET` and the version floor. The states are kept for the write that usually follows
    /// (see `read_ahead`).
    pub(crate) async fn local_states(&self, ids: &[String]) -> Result<Vec<LocalState>, NodeError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let pipeline = self.client.pipeline();
        batch_read::queue(&pipeline, &self.keys, ids).await?;
        let replies: Vec<Value> = pipeline
            .all()
            .await
            .map_err(|e| NodeError::redis("local states", e))?;
        let read = batch_read::parse(&self.keys, ids, &mut replies.into_iter())?;
        let states = read
            .stored
            .iter()
            .map(|stored| match (&stored.item, &stored.tombstone) {
                (None, None) => LocalState::Absent,
                (Some(item), None) => LocalState::Present(item.stamp()),
                (None, Some(t)) => LocalState::Deleted(t.clone()),
                // Both only coexist if something outside the store wrote; the newer counts.
                (Some(item), Some(t)) if t.stamp().beats(&item.stamp()) => {
                    LocalState::Deleted(t.clone())
                }
                (Some(item), Some(_)) => LocalState::Present(item.stamp()),
            })
            .collect();
        self.read_ahead
            .keep(read.token, ids, &read.stored, read.floor);
        Ok(states)
    }

    /// Tombstones of these ids, in order.
    pub(crate) async fn tombstones(
        &self,
        ids: &[String],
    ) -> Result<Vec<Option<Tombstone>>, NodeError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.keys.tombstones();
        let reply: Value = self
            .client
            .hmget(&key, ids.to_vec())
            .await
            .map_err(|e| NodeError::redis("HMGET tombstones", e))?;
        let values = reply_array(&key, reply)?;
        if values.len() != ids.len() {
            return Err(corrupt(
                &key,
                format!("expected {} replies, got {}", ids.len(), values.len()),
            ));
        }
        ids.iter()
            .zip(values)
            .map(|(id, value)| {
                reply_bytes(&key, value)?
                    .map(|b| decode_tombstone(&key, id, &b))
                    .transpose()
            })
            .collect()
    }

    /// The root hash; `None` for an empty tree.
    pub(crate) async fn root(&self) -> Result<Option<Hash>, NodeError> {
        let key = self.keys.hash("");
        let raw: Option<String> = self
            .client
            .get(&key)
            .await
            .map_err(|e| NodeError::redis("GET Merkle root", e))?;
        raw.map(|hex| {
            parse_hash_hex(&hex).ok_or_else(|| corrupt(&key, "not 64 hex characters".into()))
        })
        .transpose()
    }

    /// Children of every path, each sorted by segment bytes: one pipeline of `ZRANGE`s.
    pub(crate) async fn children_many(
        &self,
        paths: &[String],
    ) -> Result<Vec<Vec<(String, Hash)>>, NodeError> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let pipeline = self.client.pipeline();
        let paths_ref: Vec<&str> = paths.iter().map(String::as_str).collect();
        batch_read::queue_children(&pipeline, &self.keys, &paths_ref).await?;
        let replies = batch_read::replies(&pipeline, paths.len(), "Merkle children").await?;
        paths
            .iter()
            .zip(replies)
            .map(|(path, reply)| {
                // The set is ordered by segment bytes, the contract's order.
                Ok(batch_read::parse_children(&self.keys, path, reply)?
                    .into_iter()
                    .collect())
            })
            .collect()
    }
}
