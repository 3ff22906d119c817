//! Items across the boundary: ours into sync-engine's (keeping our version, time, content
//! type and trace context; sync-engine assigns none of them), and the stamp of one of its
//! items for the conflict order.

use replication_core::{ContentType, Stamp, SyncItem};

/// Our item as a sync-engine item. The content type is set from ours, never re-detected
/// from the bytes: sync-engine stores JSON items as RedisJSON documents and binary ones as
/// strings, and a replicated item must keep the type its writer gave it.
pub(crate) fn to_engine_item(item: SyncItem) -> sync_engine::SyncItem {
    let SyncItem {
        key,
        content,
        version,
        updated_at,
        content_type,
        trace_parent,
        ..
    } = item;
    let mut out = sync_engine::SyncItem::new(key, content);
    out.version = version;
    out.updated_at = updated_at;
    out.content_type = match content_type {
        ContentType::Json => sync_engine::ContentType::Json,
        ContentType::Binary => sync_engine::ContentType::Binary,
    };
    out.trace_parent = trace_parent;
    out
}

/// The conflict-order stamp of an item sync-engine holds.
pub(crate) fn stamp_of(item: &sync_engine::SyncItem) -> Stamp {
    Stamp::put(
        item.version,
        item.updated_at,
        &item.content_hash.to_ascii_lowercase(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_time_type_and_trace_are_ours() {
        let mut item = SyncItem::new("a.b", b"{\"x\":1}".to_vec(), 7, 1234)
            .with_content_type(ContentType::Binary);
        item.trace_parent = Some("00-abc-def-01".into());
        let hash = item.content_hash.clone();
        let out = to_engine_item(item);
        assert_eq!(out.object_id, "a.b");
        assert_eq!((out.version, out.updated_at), (7, 1234));
        // JSON-looking bytes stay binary when our item says binary.
        assert_eq!(out.content_type, sync_engine::ContentType::Binary);
        assert_eq!(out.trace_parent.as_deref(), Some("00-abc-def-01"));
        assert_eq!(out.content_hash, hash);
        assert_eq!(stamp_of(&out), Stamp::put(7, 1234, &hash));
        let json = to_engine_item(
            SyncItem::new("j", b"[1]".to_vec(), 1, 1).with_content_type(ContentType::Json),
        );
        assert_eq!(json.content_type, sync_engine::ContentType::Json);
    }
}
