//! Value codecs: decoding what the store keeps in Redis values (item stamps, tombstones)
//! and raw replies into bytes or arrays, every failure a [`NodeError::Corrupt`] naming the
//! key. No I/O.

use crate::state::ItemMeta;
use crate::NodeError;
use bytes::Bytes;
use fred::types::Value;
use replication_core::{decode_recorded_tombstone_json, parse_hash_hex, Tombstone};
use replication_redis::{into_array, into_bytes};
use serde::Deserialize;

/// The fields of a stored item that conflicts and the tree need. The content array is
/// skipped by the parser, so a write batch does not re-hash what it reads.
#[derive(Deserialize)]
struct ItemStamp {
    version: u64,
    updated_at: i64,
    content_hash: String,
}

/// Reads the stamp of the item JSON stored at `redis_key`.
pub(crate) fn parse_item_meta(redis_key: &str, bytes: &[u8]) -> Result<ItemMeta, NodeError> {
    let stamp: ItemStamp = serde_json::from_slice(bytes)
        .map_err(|e| corrupt(redis_key, format!("invalid item JSON: {e}")))?;
    if parse_hash_hex(&stamp.content_hash).is_none() {
        return Err(corrupt(
            redis_key,
            "content_hash is not 64 hex characters".into(),
        ));
    }
    Ok(ItemMeta {
        version: stamp.version,
        updated_at: stamp.updated_at,
        content_hash: stamp.content_hash.to_ascii_lowercase(),
    })
}

/// Parses a tombstone value of field `id` in the tombstones hash `hash_key`.
pub(crate) fn decode_tombstone(
    hash_key: &str,
    id: &str,
    bytes: &[u8],
) -> Result<Tombstone, NodeError> {
    decode_recorded_tombstone(hash_key, id, bytes).map(|(tombstone, _)| tombstone)
}

/// [`decode_tombstone`], with the time this store recorded it.
pub(crate) fn decode_recorded_tombstone(
    hash_key: &str,
    id: &str,
    bytes: &[u8],
) -> Result<(Tombstone, i64), NodeError> {
    decode_recorded_tombstone_json(bytes)
        .map_err(|e| corrupt(hash_key, format!("field {id:?}: {e}")))
}

/// A bulk-string reply as bytes; `None` for nil.
pub(crate) fn reply_bytes(redis_key: &str, value: Value) -> Result<Option<Bytes>, NodeError> {
    into_bytes(value).map_err(|e| corrupt(redis_key, e.to_string()))
}

/// An array reply (MGET, HMGET, ZRANGE) as its elements; nil stands for an empty one.
pub(crate) fn reply_array(redis_key: &str, value: Value) -> Result<Vec<Value>, NodeError> {
    into_array(value).map_err(|e| corrupt(redis_key, e.to_string()))
}

pub(crate) fn corrupt(redis_key: &str, reason: String) -> NodeError {
    NodeError::Corrupt {
        key: redis_key.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use replication_core::{encode_item_json, SyncItem};

    #[test]
    fn item_meta_comes_from_the_sync_engine_layout() {
        let item = SyncItem::new("a.b", b"hello".to_vec(), 7, 1234);
        let meta = parse_item_meta("p:a.b", &encode_item_json(&item)).unwrap();
        assert_eq!(meta, ItemMeta::of(&item));
        assert!(matches!(
            parse_item_meta("p:a.b", b"[1]"),
            Err(NodeError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_malformed_tombstone_is_corrupt_naming_the_hash_and_field() {
        let t = Tombstone {
            version: 3,
            deleted_at: 1_700_000_000_000,
        };
        let text = replication_core::encode_tombstone_json(&t, 1_700_000_000_500);
        assert_eq!(
            text,
            r#"{"version":3,"deleted_at":1700000000000,"recorded_at":1700000000500}"#
        );
        assert_eq!(
            decode_tombstone("tombstones", "k", text.as_bytes()).unwrap(),
            t
        );
        assert_eq!(
            decode_recorded_tombstone("tombstones", "k", text.as_bytes()).unwrap(),
            (t.clone(), 1_700_000_000_500)
        );
        // Written before the store kept the time: counts as recorded when deleted.
        let old = br#"{"version":3,"deleted_at":1700000000000}"#;
        assert_eq!(
            decode_recorded_tombstone("tombstones", "k", old).unwrap(),
            (t, 1_700_000_000_000)
        );
        let err = decode_tombstone("tombstones", "k", b"nope").unwrap_err();
        assert!(matches!(err, NodeError::Corrupt { .. }));
        assert!(err.to_string().contains("tombstones"), "{err}");
    }
}
