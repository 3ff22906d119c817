//! The tombstones sync-engine does not keep: a hash `{prefix}tombstones` (field = object
//! id, value `{"version":v,"deleted_at":ms,"recorded_at":ms}`) in sync-engine's own Redis,
//! the layout our node store uses, so peers' engines read a sync-engine node's deletes the
//! same way; and beside it the version floor `{prefix}store:version_floor`, raised by every
//! collected tombstone in the same `MULTI`/`EXEC` that drops it.

use crate::error;
use redis::aio::ConnectionManager;
use replication_core::{
    decode_recorded_tombstone_json, encode_tombstone_json, SyncError, Tombstone, WireKeys,
};

/// The tombstones hash (and version floor) of one sync-engine node.
#[derive(Clone)]
pub(crate) struct Tombstones {
    conn: ConnectionManager,
    key: String,
    floor_key: String,
}

impl Tombstones {
    /// The hash `{prefix}tombstones` and floor `{prefix}store:version_floor` over `conn`.
    pub(crate) fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            key: WireKeys::new(prefix).tombstones(),
            floor_key: WireKeys::new(prefix).version_floor(),
        }
    }

    /// Every local write's version is above this (0 while nothing was collected).
    pub(crate) async fn version_floor(&self) -> Result<u64, SyncError> {
        let mut conn = self.conn.clone();
        let floor: Option<u64> = redis::cmd("GET")
            .arg(&self.floor_key)
            .query_async(&mut conn)
            .await
            .map_err(|e| error::redis("reading the version floor", e))?;
        Ok(floor.unwrap_or(0))
    }

    /// Drops `collected` tombstones and raises the floor to the highest version among them,
    /// in one `MULTI`/`EXEC`: a crash leaves both or neither. Call under the write lock
    /// (the floor is read, then set).
    pub(crate) async fn collect(&self, collected: &[(String, Tombstone)]) -> Result<(), SyncError> {
        let Some(highest) = collected.iter().map(|(_, t)| t.version).max() else {
            return Ok(());
        };
        let floor = self.version_floor().await?.max(highest);
        let ids: Vec<&str> = collected.iter().map(|(id, _)| id.as_str()).collect();
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .cmd("HDEL")
            .arg(&self.key)
            .arg(&ids)
            .ignore()
            .cmd("SET")
            .arg(&self.floor_key)
            .arg(floor)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| error::redis("collecting tombstones", e))
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
            .map(|(id, value)| {
                value
                    .map(|bytes| self.decode(id, &bytes).map(|(t, _)| t))
                    .transpose()
            })
            .collect()
    }

    /// Writes tombstones, recorded at `recorded_at` (one `HSET`).
    pub(crate) async fn put(
        &self,
        entries: &[(String, Tombstone)],
        recorded_at: i64,
    ) -> Result<(), SyncError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("HSET");
        cmd.arg(&self.key);
        for (id, tombstone) in entries {
            cmd.arg(id)
                .arg(encode_tombstone_json(tombstone, recorded_at));
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

    /// Every tombstone with the time it was recorded (`HGETALL`; the hash holds only
    /// deletes inside the retention).
    pub(crate) async fn all(&self) -> Result<Vec<(String, Tombstone, i64)>, SyncError> {
        let mut conn = self.conn.clone();
        let pairs: Vec<(String, Vec<u8>)> = redis::cmd("HGETALL")
            .arg(&self.key)
            .query_async(&mut conn)
            .await
            .map_err(|e| error::redis("listing tombstones", e))?;
        pairs
            .into_iter()
            .map(|(id, bytes)| {
                let (tombstone, recorded_at) = self.decode(&id, &bytes)?;
                Ok((id, tombstone, recorded_at))
            })
            .collect()
    }

    fn decode(&self, id: &str, bytes: &[u8]) -> Result<(Tombstone, i64), SyncError> {
        decode_recorded_tombstone_json(bytes).map_err(|e| {
            SyncError::permanent(format!("{} field {id:?}: {e}", self.key)).with_source(e)
        })
    }
}
