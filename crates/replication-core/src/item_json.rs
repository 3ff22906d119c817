//! The item layout at `{prefix}{object_id}`: a string holding the whole item as JSON, with
//! `content` as an array of byte values (sync-engine's binary-item form, PROTOCOL.md "Items").
//!
//! Our node store writes items in exactly this form so that sync-engine peers can read
//! them, and every reader (peer backend, node store) parses them with [`decode_item_json`].

use crate::item::{content_hash, parse_hash_hex};
use crate::{ContentType, SyncItem};
use serde::Deserialize;

/// Why an item string could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("item {key:?} is unreadable: {reason}")]
pub struct ItemJsonError {
    /// The key read.
    pub key: String,
    /// What was wrong.
    pub reason: String,
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
///
/// Written by hand rather than through serde: `content` is a JSON array of byte values, and
/// serde's per-element path dominated the node store's write profile. The output is
/// byte-identical to serde_json's (the fixture test pins it).
pub fn encode_item_json(item: &SyncItem) -> Vec<u8> {
    // Each byte takes at most "255," (4 bytes); the rest is under 300 bytes plus the strings.
    let mut out = Vec::with_capacity(item.content.len() * 4 + item.key.len() + 320);
    out.extend_from_slice(b"{\"object_id\":");
    push_json_str(&mut out, &item.key);
    out.extend_from_slice(b",\"version\":");
    push_display(&mut out, item.version);
    out.extend_from_slice(b",\"updated_at\":");
    push_display(&mut out, item.updated_at);
    out.extend_from_slice(b",\"content_type\":");
    push_json_str(&mut out, item.content_type.as_str());
    out.extend_from_slice(b",\"trace_parent\":");
    match &item.trace_parent {
        Some(trace) => push_json_str(&mut out, trace),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"trace_state\":null,\"priority_score\":0.0,\"content_hash\":");
    push_json_str(&mut out, &item.content_hash);
    out.extend_from_slice(b",\"last_accessed\":0,\"access_count\":0,\"content\":[");
    push_byte_array(&mut out, &item.content);
    out.extend_from_slice(b"],\"home_instance_id\":null,\"state\":\"default\"}");
    out
}

/// A JSON string literal, escaped exactly as serde_json escapes it.
fn push_json_str(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(&mut *out, text).expect("writing a string into a Vec cannot fail");
}

fn push_display(out: &mut Vec<u8>, value: impl std::fmt::Display) {
    use std::io::Write;
    write!(out, "{value}").expect("writing into a Vec cannot fail");
}

/// Every byte value as its decimal digits followed by a comma, zero-padded to 4 bytes
/// (`b"7,\0\0"`): one table lookup and one fixed 4-byte copy per content byte, the array
/// being most of an item's bytes. [`byte_text_len`] says how many bytes are the text.
const BYTE_TEXT: [[u8; 4]; 256] = {
    let mut table = [[0u8; 4]; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = if b >= 100 {
            [b'0' + b / 100, b'0' + (b / 10) % 10, b'0' + b % 10, b',']
        } else if b >= 10 {
            [b'0' + b / 10, b'0' + b % 10, b',', 0]
        } else {
            [b'0' + b, b',', 0, 0]
        };
        i += 1;
    }
    table
};

/// How many bytes of [`BYTE_TEXT`]`[b]` are the text.
const fn byte_text_len(b: u8) -> usize {
    if b >= 100 {
        4
    } else if b >= 10 {
        3
    } else {
        2
    }
}

/// The elements of a JSON array of byte values (`1,22,255`), without the brackets.
fn push_byte_array(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let start = out.len();
    // Room for the widest text of every byte; the unused tail is cut off below.
    out.resize(start + bytes.len() * 4, 0);
    let buf = &mut out[start..];
    let mut at = 0;
    for &b in bytes {
        buf[at..at + 4].copy_from_slice(&BYTE_TEXT[usize::from(b)]);
        at += byte_text_len(b);
    }
    // Drop the comma after the last element.
    out.truncate(start + at - 1);
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

    /// The reference the hand-written encoder must match byte for byte: serde_json over
    /// the same fields in the same order (the encoder this crate used before).
    fn serde_reference(item: &SyncItem) -> Vec<u8> {
        #[derive(serde::Serialize)]
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
        serde_json::to_vec(&ItemOut {
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
        })
        .unwrap()
    }

    #[test]
    fn every_byte_value_is_written_as_serde_writes_it() {
        let item = SyncItem::new("k", (0..=255u8).rev().chain(0..=255).collect(), 1, 2);
        assert_eq!(encode_item_json(&item), serde_reference(&item));
    }

    proptest! {
        #[test]
        fn matches_serde_byte_for_byte(
            key in "\\PC{1,12}",
            content in proptest::collection::vec(any::<u8>(), 0..300),
            version in any::<u64>(),
            at in any::<i64>(),
            trace in proptest::option::of("\\PC{0,8}"),
        ) {
            let mut item = SyncItem::new(key, content, version, at);
            item.trace_parent = trace;
            prop_assert_eq!(encode_item_json(&item), serde_reference(&item));
        }

        #[test]
        fn round_trips(content in proptest::collection::vec(any::<u8>(), 0..100), version in any::<u64>(), at in any::<i64>()) {
            let item = SyncItem::new("a.b", content, version, at);
            prop_assert_eq!(decode_item_json("a.b", &encode_item_json(&item)).unwrap(), item);
        }
    }
}
