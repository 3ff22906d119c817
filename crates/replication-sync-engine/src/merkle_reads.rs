//! Merkle reads. sync-engine answers one path per call, checking its Redis copy of the tree
//! against the SQL one each time; for many paths at once the adapter checks once, then reads
//! every children set from the Redis copy in one pipeline (what sync-engine would serve path
//! by path), or falls back to sync-engine path by path while the copy lags.

use crate::error;
use redis::aio::ConnectionManager;
use replication_core::merkle::{decode_member, Hash};
use replication_core::{SyncError, WireKeys};
use std::collections::BTreeMap;
use sync_engine::SyncEngine;

/// Children `(segment, hash)` sorted by segment, from sync-engine's map.
pub(crate) fn sorted(children: BTreeMap<String, Hash>) -> Vec<(String, Hash)> {
    // A BTreeMap of Strings iterates in byte order, the order the trait asks for.
    children.into_iter().collect()
}

/// Children of each path, in order.
pub(crate) async fn children_many(
    engine: &SyncEngine,
    conn: &ConnectionManager,
    prefix: &str,
    paths: &[String],
) -> Result<Vec<Vec<(String, Hash)>>, SyncError> {
    let synced = paths.len() > 1
        && engine
            .is_merkle_synced()
            .await
            .map_err(|e| error::storage("Merkle sync check", e))?;
    if !synced {
        let mut out = Vec::with_capacity(paths.len());
        for path in paths {
            let children = engine
                .get_merkle_children(path)
                .await
                .map_err(|e| error::storage("Merkle children", e))?;
            out.push(sorted(children));
        }
        return Ok(out);
    }
    let keys = WireKeys::new(prefix);
    let mut pipe = redis::pipe();
    for path in paths {
        pipe.cmd("ZRANGE")
            .arg(keys.merkle_children(path))
            .arg(0)
            .arg(-1);
    }
    let mut conn = conn.clone();
    let replies: Vec<Vec<Vec<u8>>> = pipe
        .query_async(&mut conn)
        .await
        .map_err(|e| error::redis("reading Merkle children", e))?;
    replies
        .into_iter()
        .map(|members| {
            let mut children = members
                .iter()
                .map(|m| decode_member(m))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| SyncError::permanent(format!("sync-engine's Merkle tree: {e}")))?;
            children.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            Ok(children)
        })
        .collect()
}
