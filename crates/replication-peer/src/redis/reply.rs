//! Decoding of Redis replies (as fred `Value`s) into core types: stream entries,
//! `XINFO STREAM`, Merkle children, tombstones. Errors are plain strings; the caller
//! wraps them in `PeerError::Protocol` with the peer's id.

use bytes::Bytes;
use fred::types::Value;
use replication_core::merkle::{decode_member, Hash};
use replication_core::{
    decode_tombstone_json, parse_hash_hex, RawEntry, StreamId, StreamInfo, Tombstone,
};
use replication_redis::{into_array, into_bytes};

fn bytes_of(value: Value, what: &str) -> Result<Bytes, String> {
    match into_bytes(value) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(format!("{what}: expected a string, got nil")),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

fn array_of(value: Value, what: &str) -> Result<Vec<Value>, String> {
    into_array(value).map_err(|e| format!("{what}: {e}"))
}

fn stream_id_of(value: Value, what: &str) -> Result<StreamId, String> {
    let bytes = bytes_of(value, what)?;
    StreamId::from_bytes(&bytes).map_err(|e| format!("{what}: {e}"))
}

/// One `[id, [field, value, ...]]` entry.
fn entry(value: Value) -> Result<RawEntry, String> {
    let mut parts = array_of(value, "stream entry")?.into_iter();
    let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
        return Err("stream entry: expected [id, fields]".into());
    };
    let id = stream_id_of(id, "stream entry id")?;
    let flat = match fields {
        Value::Array(flat) => flat,
        // A deleted entry still referenced by a range shows with nil fields.
        Value::Null => Vec::new(),
        other => return Err(format!("entry {id}: fields are {}", other.kind())),
    };
    if flat.len() % 2 != 0 {
        return Err(format!("entry {id}: odd number of field values"));
    }
    let mut fields = Vec::with_capacity(flat.len() / 2);
    let mut flat = flat.into_iter();
    while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
        fields.push((
            bytes_of(name, "field name")?,
            bytes_of(value, "field value")?,
        ));
    }
    Ok(RawEntry { id, fields })
}

/// An `XREAD` reply for one stream: nil (timeout, nothing new) or `[[key, [entries]]]`.
pub(crate) fn xread(value: Value) -> Result<Vec<RawEntry>, String> {
    let streams = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(streams) => streams,
        other => return Err(format!("XREAD: unexpected {}", other.kind())),
    };
    let mut out = Vec::new();
    for stream in streams {
        let mut parts = array_of(stream, "XREAD stream")?.into_iter();
        let (Some(_key), Some(entries)) = (parts.next(), parts.next()) else {
            return Err("XREAD: expected [key, entries]".into());
        };
        for e in array_of(entries, "XREAD entries")? {
            out.push(entry(e)?);
        }
    }
    Ok(out)
}

/// An `XRANGE` reply: the entries, oldest first.
pub(crate) fn xrange(value: Value) -> Result<Vec<RawEntry>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        value => array_of(value, "XRANGE entries")?
            .into_iter()
            .map(entry)
            .collect(),
    }
}

/// Whether a Redis error says the stream key does not exist (`XINFO` on a missing key).
pub(crate) fn is_no_such_key(details: &str) -> bool {
    details.contains("no such key")
}

/// An `XINFO STREAM` reply (RESP2: flat `name, value` pairs).
pub(crate) fn xinfo_stream(value: Value) -> Result<StreamInfo, String> {
    let flat = array_of(value, "XINFO STREAM")?;
    if flat.len() % 2 != 0 {
        return Err("XINFO STREAM: odd number of elements".into());
    }
    let mut info = StreamInfo::default();
    let mut have_last_generated = false;
    let mut flat = flat.into_iter();
    while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
        let name = bytes_of(name, "XINFO field")?;
        match name.as_ref() {
            b"length" => info.length = value.as_u64().ok_or("XINFO length: not an integer")?,
            b"last-generated-id" => {
                info.last_generated = stream_id_of(value, "last-generated-id")?;
                have_last_generated = true;
            }
            b"max-deleted-entry-id" => {
                info.max_deleted = Some(stream_id_of(value, "max-deleted-entry-id")?)
            }
            b"entries-added" => {
                info.entries_added = Some(
                    value
                        .as_u64()
                        .ok_or("XINFO entries-added: not an integer")?,
                );
            }
            b"first-entry" if !value.is_null() => info.first_entry = Some(entry(value)?.id),
            b"last-entry" if !value.is_null() => info.last_entry = Some(entry(value)?.id),
            _ => {}
        }
    }
    if !have_last_generated {
        return Err("XINFO STREAM: no last-generated-id".into());
    }
    Ok(info)
}

/// A `GET {prefix}merkle:hash:` reply: nil or 64 hex chars.
pub(crate) fn merkle_hash(value: Value) -> Result<Option<Hash>, String> {
    if value.is_null() {
        return Ok(None);
    }
    let bytes = bytes_of(value, "merkle hash")?;
    let text = std::str::from_utf8(&bytes).map_err(|_| "merkle hash: not UTF-8".to_owned())?;
    parse_hash_hex(text.trim())
        .map(Some)
        .ok_or_else(|| format!("merkle hash {text:?}: not 64 hex characters"))
}

/// A `ZRANGE {prefix}merkle:children:{path} 0 -1` reply: members `segment:hexhash`.
/// A missing key reads as an empty array: "no children" (PROTOCOL.md).
pub(crate) fn merkle_children(value: Value) -> Result<Vec<(String, Hash)>, String> {
    let members = match value {
        Value::Null => return Ok(Vec::new()),
        other => array_of(other, "ZRANGE")?,
    };
    members
        .into_iter()
        .map(|m| {
            let bytes = bytes_of(m, "children member")?;
            decode_member(&bytes).map_err(|e| e.to_string())
        })
        .collect()
}

/// Tombstones read with `HMGET`, each key on its own: a malformed value is no evidence
/// (`None`) for its key alone, and is listed in `malformed` for the caller to report.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TombstonesRead {
    /// One per key asked, in order.
    pub(crate) tombstones: Vec<Option<Tombstone>>,
    /// `(index of the key, why its value was refused)`.
    pub(crate) malformed: Vec<(usize, String)>,
}

/// An `HMGET {prefix}tombstones k1 k2 ...` reply: one JSON value or nil per key. Only a
/// reply of the wrong shape fails as a whole.
pub(crate) fn tombstones(value: Value, expected: usize) -> Result<TombstonesRead, String> {
    let values = match value {
        // fred collapses a one-element array to its element.
        Value::Array(values) => values,
        single => vec![single],
    };
    if values.len() != expected {
        return Err(format!(
            "HMGET: {} values for {expected} keys",
            values.len()
        ));
    }
    let mut read = TombstonesRead::default();
    for (i, v) in values.into_iter().enumerate() {
        let parsed = match into_bytes(v) {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => decode_tombstone_json(&bytes)
                .map(Some)
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("tombstone: {e}")),
        };
        match parsed {
            Ok(tombstone) => read.tombstones.push(tombstone),
            Err(reason) => {
                read.tombstones.push(None);
                read.malformed.push((i, reason));
            }
        }
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::from(text)
    }

    #[test]
    fn xread_nil_is_empty_and_entries_parse() {
        assert!(xread(Value::Null).unwrap().is_empty());
        let reply = Value::Array(vec![Value::Array(vec![
            s("cdc"),
            Value::Array(vec![
                Value::Array(vec![
                    s("1-0"),
                    Value::Array(vec![s("op"), s("DEL"), s("key"), s("a")]),
                ]),
                Value::Array(vec![
                    s("2-5"),
                    Value::Array(vec![s("op"), Value::Bytes(Bytes::from_static(b"\xff"))]),
                ]),
            ]),
        ])]);
        let entries = xread(reply).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].id, StreamId::new(2, 5));
        assert_eq!(
            entries[0].fields[1],
            (Bytes::from_static(b"key"), Bytes::from_static(b"a"))
        );
        assert_eq!(entries[1].fields[0].1.as_ref(), b"\xff");
    }

    #[test]
    fn xinfo_reads_the_gap_facts() {
        let reply = Value::Array(vec![
            s("length"),
            Value::Integer(3),
            s("radix-tree-keys"),
            Value::Integer(1),
            s("last-generated-id"),
            s("9-0"),
            s("max-deleted-entry-id"),
            s("4-0"),
            s("entries-added"),
            Value::Integer(9),
            s("recorded-first-entry-id"),
            s("5-0"),
            s("groups"),
            Value::Integer(0),
            s("first-entry"),
            Value::Array(vec![s("5-0"), Value::Array(vec![s("op"), s("DEL")])]),
            s("last-entry"),
            Value::Array(vec![s("9-0"), Value::Array(vec![s("op"), s("DEL")])]),
        ]);
        let info = xinfo_stream(reply).unwrap();
        assert_eq!(
            info,
            StreamInfo {
                length: 3,
                first_entry: Some(StreamId::new(5, 0)),
                last_entry: Some(StreamId::new(9, 0)),
                last_generated: StreamId::new(9, 0),
                max_deleted: Some(StreamId::new(4, 0)),
                entries_added: Some(9),
            }
        );
        assert!(xinfo_stream(Value::Array(vec![s("length"), Value::Integer(0)])).is_err());
    }

    #[test]
    fn children_and_tombstones() {
        let hash = "ab".repeat(32);
        let kids = merkle_children(Value::Array(vec![s(&format!("a:b:{hash}"))])).unwrap();
        assert_eq!(kids[0].0, "a:b");
        assert!(merkle_children(Value::Array(vec![s("nohash")])).is_err());
        assert!(merkle_hash(Value::Null).unwrap().is_none());
        assert!(merkle_hash(s("zz")).is_err());
        let t = tombstones(
            Value::Array(vec![
                Value::Null,
                s(r#"{"version":3,"deleted_at":7,"x":1}"#),
                s("{"),
                Value::Array(vec![]),
            ]),
            4,
        )
        .unwrap();
        assert_eq!(
            t.tombstones,
            vec![
                None,
                Some(Tombstone {
                    version: 3,
                    deleted_at: 7
                }),
                None,
                None,
            ]
        );
        assert_eq!(
            t.malformed.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [2, 3]
        );
        assert!(tombstones(Value::Array(vec![s("{")]), 2).is_err());
    }
}
