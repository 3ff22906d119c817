//! The tombstones sync-engine does not keep: a hash `{prefix}tombstones` (field = object
//! id, value `{"version":v,"deleted_at":ms}`) in sync-engine's own Redis, the layout our
//! node store uses, so peers' engines read a sync-engine node's deletes the same way.

use crate::error;
use redis::aio::ConnectionManager;
use replication_core::{decode_tombstone_json, encode_tombstone_json, SyncError, Tombstone};

/// The tombstones hash of one sync-engine node.
#[derive(Clone)]
pub(crate) struct Tombstones {
    conn: ConnectionManager,
    key: String,
}

impl Tombstones {
    /// The hash `{prefix}tombstones` over `conn`.
    pub(crate) fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            key: format!("{prefix}tombstones"),
        }
    }

    /// The Redis key of the hash.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// The tombstone of each key, in order (one `HMGET`).
    pub(crate) async fn get(&self, keys: &[String]) -> Result<Vec<Option<Tombstone>>, SyncError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let values: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
            .arg(&self.key)
            .arg(keys)
            .query_async(&mut conn)
            .await
            .map_err(|e| error::redis("reading tombstones", e))?;
        keys.iter()
            .zip(values)
            .map(|(id, value)| value.map(|bytes| self.decode(id, &bytes)).transpose())
            .collect()
    }

    /// Writes tombstones (one `HSET`).
    pub(crate) async fn put(&self, entries: &[(String, Tombstone)]) -> Result<(), SyncError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("HSET");
        cmd.arg(&self.key);
        for (id, tombstone) in entries {
            cmd.arg(id).arg(encode_tombstone_json(tombstone));
        }
        let mut conn = self.conn.clone();
        cmd.query_async::<()>(&mut conn)
            .await
            .map_err(|e| error::redis("writing tombstones", e))
    }

    /// Drops the tombstones of `ids` (one `HDEL`).
    pub(crate) async fn remove(&self, ids: &[String]) -> Result<(), SyncError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        redis::cmd("HDEL")
            .arg(&self.key)
            .arg(ids)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| error::redis("dropping tombstones", e))
    }

    /// Every tombstone (`HGETALL`; the hash holds only deletes inside the retention).
    pub(crate) async fn all(&self) -> Result<Vec<(String, Tombstone)>, SyncError> {
        let mut conn = self.conn.clone();
        let pairs: Vec<(String, Vec<u8>)> = redis::cmd("HGETALL")
            .arg(&self.key)
            .query_async(&mut conn)
            .await
            .map_err(|e| error::redis("listing tombstones", e))?;
        pairs
            .into_iter()
            .map(|(id, bytes)| {
                let tombstone = self.decode(&id, &bytes)?;
                Ok((id, tombstone))
            })
            .collect()
    }

    fn decode(&self, id: &str, bytes: &[u8]) -> Result<Tombstone, SyncError> {
        decode_tombstone_json(bytes).map_err(|e| {
            SyncError::permanent(format!("{} field {id:?}: {e}", self.key)).with_source(e)
        })
    }
}
