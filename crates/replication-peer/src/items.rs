//! Item layouts at `{prefix}{object_id}` (PROTOCOL.md "Items"), parsed into `ItemRead`.
//!
//! - a string holding the item as JSON (sync-engine's binary items; our node store's items):
//!   [`parse_item_json`], built on core's `decode_item_json`;
//! - a RedisJSON document (sync-engine's JSON items, needs the module): [`parse_json_document`].

use replication_core::{
    content_hash_hex, decode_item_json, parse_hash_hex, ContentType, ItemRead, SyncItem,
};

/// Parses the string stored at item key `key`. A bad layout or a content hash that does not
/// match the content is `Unreadable` with the reason, never `Absent`.
pub(crate) fn parse_item_json(key: &str, bytes: &[u8]) -> ItemRead {
    match decode_item_json(key, bytes) {
        Ok(item) => ItemRead::Present(item),
        Err(e) => ItemRead::Unreadable { reason: e.reason },
    }
}

/// Parses the reply of `JSON.GET key $` for a RedisJSON item: a one-element array holding
/// the document, whose `payload` is the content and whose `version`, `updated_at` and
/// (optional) `content_hash` are the metadata. The content is the payload serialised as
/// compact JSON; a stated `content_hash` must match it.
pub(crate) fn parse_json_document(key: &str, reply: &[u8]) -> ItemRead {
    let unreadable = |reason: String| ItemRead::Unreadable {
        reason: format!("RedisJSON item: {reason}"),
    };
    let parsed: serde_json::Value = match serde_json::from_slice(reply) {
        Ok(v) => v,
        Err(e) => return unreadable(format!("invalid JSON: {e}")),
    };
    let doc = match &parsed {
        serde_json::Value::Array(docs) if docs.len() == 1 => &docs[0],
        serde_json::Value::Object(_) => &parsed,
        _ => return unreadable("expected one document".into()),
    };
    let Some(payload) = doc.get("payload") else {
        return unreadable("no `payload`".into());
    };
    let Some(version) = doc.get("version").and_then(serde_json::Value::as_u64) else {
        return unreadable("no integer `version`".into());
    };
    let Some(updated_at) = doc.get("updated_at").and_then(serde_json::Value::as_i64) else {
        return unreadable("no integer `updated_at`".into());
    };
    let content = match serde_json::to_vec(payload) {
        Ok(c) => c,
        Err(e) => return unreadable(format!("payload: {e}")),
    };
    let actual = content_hash_hex(&content);
    if let Some(stated) = doc.get("content_hash").and_then(serde_json::Value::as_str) {
        if parse_hash_hex(stated).is_none() || !stated.eq_ignore_ascii_case(&actual) {
            return unreadable(format!(
                "content_hash {stated} does not match the payload ({actual})"
            ));
        }
    }
    let mut item =
        SyncItem::new(key, content, version, updated_at).with_content_type(ContentType::Json);
    item.trace_parent = doc
        .get("trace_parent")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    ItemRead::Present(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use replication_core::encode_item_json;

    #[test]
    fn item_strings_round_trip_and_bad_ones_are_unreadable() {
        let item = SyncItem::new("a.b", b"hello".to_vec(), 4, 99);
        assert_eq!(
            parse_item_json("a.b", &encode_item_json(&item)),
            ItemRead::Present(item)
        );
        assert!(matches!(
            parse_item_json("a.b", b"not json"),
            ItemRead::Unreadable { .. }
        ));
        let tampered =
            String::from_utf8(encode_item_json(&SyncItem::new("k", b"v".to_vec(), 1, 1)))
                .unwrap()
                .replace("[118]", "[119]");
        assert!(
            matches!(parse_item_json("k", tampered.as_bytes()), ItemRead::Unreadable { reason } if reason.contains("content_hash"))
        );
    }

    #[test]
    fn json_documents() {
        let payload = br#"{"name":"x"}"#;
        let hash = content_hash_hex(payload);
        let reply = format!(
            r#"[{{"payload":{{"name":"x"}},"version":3,"updated_at":5,"content_hash":"{hash}"}}]"#
        );
        match parse_json_document("k", reply.as_bytes()) {
            ItemRead::Present(item) => {
                assert_eq!(
                    (item.content.as_slice(), item.version, item.updated_at),
                    (&payload[..], 3, 5)
                );
                assert_eq!(item.content_type, ContentType::Json);
            }
            other => panic!("{other:?}"),
        }
        let wrong = reply.replace(&hash, &"0".repeat(64));
        assert!(matches!(
            parse_json_document("k", wrong.as_bytes()),
            ItemRead::Unreadable { .. }
        ));
        assert!(matches!(
            parse_json_document("k", br#"[{"payload":1}]"#),
            ItemRead::Unreadable { .. }
        ));
        assert!(matches!(
            parse_json_document("k", b"[]"),
            ItemRead::Unreadable { .. }
        ));
    }
}
