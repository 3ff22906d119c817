//! The item layout at `{prefix}{object_id}`: a string holding the whole item as JSON, with
//! `content` as an array of byte values (sync-engine's binary-item form, PROTOCOL.md "Items").
//!
//! Our node store writes items in exactly this form so that sync-engine peers can read
//! them, and every reader (peer backend, node store) parses them with [`decode_item_json`].

use crate::item::{content_hash, parse_hash_hex};
use crate::{ContentType, SyncItem};
use serde::{Deserialize, Serialize};

/// Why an item string could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("item {key:?} is unreadable: {reason}")]
pub struct ItemJsonError {
    /// The key read.
    pub key: String,
    /// What was wrong.
    pub reason: String,
}

#[derive(Serialize)]
struct ItemOut<'a> {
    object_id: &'a str,
    version: u64,
    updated_at: i64,
    content_type: &'a str,
    trace_parent: Option<&'a str>,
    trace_state: Option<&'a str>,
    priority_score: f64,
    content_hash: &'a str,
    last_accessed: u64,
    access_count: u64,
    content: &'a [u8],
    home_instance_id: Option<&'a str>,
    state: &'a str,
}

#[derive(Deserialize)]
struct ItemIn {
    object_id: Option<String>,
    version: u64,
    updated_at: i64,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    trace_parent: Option<String>,
    content_hash: String,
    content: Vec<u8>,
}

/// Serialises an item in sync-engine's layout (field order and defaults as it writes them).
pub fn encode_item_json(item: &SyncItem) -> Vec<u8> {
    let out = ItemOut {
        object_id: &item.key,
        version: item.version,
        updated_at: item.updated_at,
        content_type: item.content_type.as_str(),
        trace_parent: item.trace_parent.as_deref(),
        trace_state: None,
        priority_score: 0.0,
        content_hash: &item.content_hash,
        last_accessed: 0,
        access_count: 0,
        content: &item.content,
        home_instance_id: None,
        state: "default",
    };
    serde_json::to_vec(&out).expect("serialising a struct of plain fields cannot fail")
}

/// Parses an item string read at `key`, verifying that `content_hash` matches the content
/// and that `object_id` (when present) names `key`. Unknown fields are ignored.
pub fn decode_item_json(key: &str, bytes: &[u8]) -> Result<SyncItem, ItemJsonError> {
    let err = |reason: String| ItemJsonError {
        key: key.to_owned(),
        reason,
    };
    let parsed: ItemIn =
        serde_json::from_slice(bytes).map_err(|e| err(format!("invalid item JSON: {e}")))?;
    if let Some(id) = &parsed.object_id {
        if id != key {
            return Err(err(format!("object_id {id:?} does not match the key")));
        }
    }
    let claimed = parse_hash_hex(&parsed.content_hash)
        .ok_or_else(|| err("content_hash is not 64 hex characters".into()))?;
    if content_hash(&parsed.content) != claimed {
        return Err(err("content does not match content_hash".into()));
    }
    Ok(SyncItem {
        key: key.to_owned(),
        content: parsed.content,
        content_hash: parsed.content_hash.to_ascii_lowercase(),
        version: parsed.version,
        updated_at: parsed.updated_at,
        content_type: parsed
            .content_type
            .as_deref()
            .map_or(ContentType::Binary, ContentType::from_wire),
        trace_parent: parsed.trace_parent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fixture_items_decode_and_re_encode_byte_for_byte() {
        use base64::Engine;
        let mut seen = 0;
        for fixture in crate::test_fixtures::all() {
            for (key, raw) in fixture["items_raw_b64"].as_object().unwrap() {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(raw.as_str().unwrap())
                    .unwrap();
                let item = decode_item_json(key, &bytes).unwrap();
                assert_eq!(encode_item_json(&item), bytes, "item {key}");
                seen += 1;
            }
        }
        assert_eq!(seen, 14);
    }

    #[test]
    fn rejects_bad_items() {
        let good = encode_item_json(&SyncItem::new("k", b"v".to_vec(), 1, 2));
        assert!(decode_item_json("other", &good)
            .unwrap_err()
            .reason
            .contains("object_id"));
        let tampered = String::from_utf8(good.clone())
            .unwrap()
            .replace("[118]", "[119]");
        assert!(decode_item_json("k", tampered.as_bytes())
            .unwrap_err()
            .reason
            .contains("content_hash"));
        assert!(decode_item_json("k", b"{").is_err());
        assert!(decode_item_json("k", b"{\"version\":1}").is_err());
    }

    proptest! {
        #[test]
        fn round_trips(content in proptest::collection::vec(any::<u8>(), 0..100), version in any::<u64>(), at in any::<i64>()) {
            let item = SyncItem::new("a.b", content, version, at);
            prop_assert_eq!(decode_item_json("a.b", &encode_item_json(&item)).unwrap(), item);
        }
    }
}
