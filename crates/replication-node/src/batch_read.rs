//! Batched reads: the pipelines that read the stored state of a batch's ids (write token,
//! items, tombstones, version floor) and Merkle children sets, queued and parsed here and
//! sent by their caller: the reader (`local_states`, `children_many`) and the writer's
//! snapshot.

use crate::keys::KeySpace;
use crate::merkle_update::ChildSet;
use crate::state::Stored;
use crate::value_codec::{corrupt, decode_tombstone, parse_item_meta, reply_array, reply_bytes};
use crate::NodeError;
use bytes::Bytes;
use fred::clients::{Client, Pipeline};
use fred::prelude::{HashesInterface, KeysInterface, SortedSetsInterface, Value};
use replication_core::merkle::decode_member;

/// Replies [`queue`] asks for.
pub(crate) const STATE_REPLIES: usize = 3;

/// Queues `GET token`, `HMGET tombstones`, `MGET version_floor items` (three replies, in
/// that order). The floor is read after the tombstones: a purge that runs in between
/// dropped a tombstone and raised the floor in one step, so a local write planned from
/// these replies sees one or the other (and the purge's new token sends it back to plan).
pub(crate) async fn queue(
    pipeline: &Pipeline<Client>,
    keys: &KeySpace,
    ids: &[String],
) -> Result<(), NodeError> {
    let queue = |e| NodeError::redis("queueing a pipeline", e);
    let _: () = pipeline.get(keys.epoch()).await.map_err(queue)?;
    let _: () = pipeline
        .hmget(keys.tombstones(), ids.to_vec())
        .await
        .map_err(queue)?;
    let mut mget = Vec::with_capacity(1 + ids.len());
    mget.push(keys.version_floor());
    mget.extend(ids.iter().map(|id| keys.item(id)));
    let _: () = pipeline.mget(mget).await.map_err(queue)?;
    Ok(())
}

/// What [`parse`] read: the token (empty when no write ever happened), the stored state
/// of every id in order, and the version floor.
pub(crate) struct StateRead {
    pub(crate) token: Bytes,
    pub(crate) stored: Vec<Stored>,
    pub(crate) floor: u64,
}

/// Parses the replies [`queue`] asked for.
pub(crate) fn parse(
    keys: &KeySpace,
    ids: &[String],
    replies: &mut impl Iterator<Item = Value>,
) -> Result<StateRead, NodeError> {
    let mut next = || replies.next().unwrap_or(Value::Null);
    let token = reply_bytes(&keys.epoch(), next())?.unwrap_or_default();
    let tombstones_key = keys.tombstones();
    let tombstones = reply_array(&tombstones_key, next())?;
    let mut items = reply_array("MGET", next())?.into_iter();
    let floor_key = keys.version_floor();
    let floor = match reply_bytes(&floor_key, items.next().unwrap_or(Value::Null))? {
        None => 0,
        Some(bytes) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| {
                corrupt(
                    &floor_key,
                    "the version floor is not a decimal u64".to_owned(),
                )
            })?,
    };
    // A short reply would mean the server answered something else; never guess.
    if items.len() != ids.len() || tombstones.len() != ids.len() {
        return Err(corrupt(
            "MGET",
            format!(
                "expected {} replies, got {} items and {} tombstones",
                ids.len(),
                items.len(),
                tombstones.len()
            ),
        ));
    }
    let mut stored = Vec::with_capacity(ids.len());
    for ((id, item), tombstone) in ids.iter().zip(items).zip(tombstones) {
        let item = match reply_bytes("MGET", item)? {
            Some(bytes) => Some(parse_item_meta(&keys.item(id), &bytes)?),
            None => None,
        };
        let tombstone = match reply_bytes(&tombstones_key, tombstone)? {
            Some(bytes) => Some(decode_tombstone(&tombstones_key, id, &bytes)?),
            None => None,
        };
        stored.push(Stored { item, tombstone });
    }
    Ok(StateRead {
        token,
        stored,
        floor,
    })
}

/// Queues a `ZRANGE` of the children set of every path (one reply each, in order).
pub(crate) async fn queue_children(
    pipeline: &Pipeline<Client>,
    keys: &KeySpace,
    paths: &[&str],
) -> Result<(), NodeError> {
    for path in paths {
        let _: () = pipeline
            .zrange(keys.children(path), 0, -1, None, false, None, false)
            .await
            .map_err(|e| NodeError::redis("queueing a pipeline", e))?;
    }
    Ok(())
}

/// Sends `pipeline` (of `len` commands) and returns every reply; `operation` names it in
/// errors.
pub(crate) async fn replies(
    pipeline: &Pipeline<Client>,
    len: usize,
    operation: &'static str,
) -> Result<Vec<Value>, NodeError> {
    let error = |e| NodeError::redis(operation, e);
    if len == 1 {
        // A one-command pipeline answers with that command's reply, not a list of replies.
        return Ok(vec![pipeline.last().await.map_err(error)?]);
    }
    pipeline.all().await.map_err(error)
}

/// The children set of `path` from its `ZRANGE` reply (ordered by segment bytes, whatever
/// order the members' `segment:hex` text gave).
pub(crate) fn parse_children(
    keys: &KeySpace,
    path: &str,
    reply: Value,
) -> Result<ChildSet, NodeError> {
    let key = keys.children(path);
    let mut set = ChildSet::new();
    for member in reply_array(&key, reply)? {
        let bytes = reply_bytes(&key, member)?.unwrap_or_default();
        let (segment, hash) = decode_member(&bytes).map_err(|e| corrupt(&key, e.to_string()))?;
        set.insert(segment, hash);
    }
    Ok(set)
}
