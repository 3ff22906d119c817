//! Encoding of CDC entries, byte-compatible with sync-engine's writer (PROTOCOL.md).

use super::compression::{is_zstd_frame, LEVEL, MIN_COMPRESS_LEN};
use super::meta::MetaOut;
use super::{field, CdcEvent};
use crate::tombstone_json::encode_delete_meta;
use crate::{SyncItem, Tombstone};
use std::fmt;

/// One entry ready for `XADD`: `(field, value)` pairs in wire order.
pub type EncodedEntry = Vec<(&'static str, Vec<u8>)>;

/// Encodes events, reusing one zstd compression context.
pub struct CdcEncoder {
    compressor: zstd::bulk::Compressor<'static>,
}

impl fmt::Debug for CdcEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CdcEncoder").finish_non_exhaustive()
    }
}

impl Default for CdcEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl CdcEncoder {
    /// An encoder compressing at sync-engine's level (3).
    ///
    /// # Panics
    /// Only if zstd cannot allocate a compression context (out of memory).
    pub fn new() -> Self {
        let compressor = zstd::bulk::Compressor::new(LEVEL)
            .expect("allocating a zstd compression context only fails when out of memory");
        Self { compressor }
    }

    /// The fields of the entry for `event`.
    pub fn encode(&mut self, event: &CdcEvent) -> EncodedEntry {
        match event {
            CdcEvent::Put(item) => self.encode_put(item),
            CdcEvent::Delete {
                key,
                stamp: Some(stamp),
            } => encode_stamped_delete(key, stamp),
            CdcEvent::Delete { key, stamp: None } => encode_delete(key),
        }
    }

    /// The fields of a PUT entry: `op key hash data meta`.
    pub fn encode_put(&mut self, item: &SyncItem) -> EncodedEntry {
        let meta = MetaOut {
            content_type: item.content_type.as_str(),
            version: item.version,
            updated_at: item.updated_at,
            trace_parent: item.trace_parent.as_deref(),
        };
        let meta = serde_json::to_vec(&meta)
            .expect("serialising a struct of strings and integers cannot fail");
        vec![
            (field::OP, b"PUT".to_vec()),
            (field::KEY, item.key.as_bytes().to_vec()),
            (
                field::HASH,
                item.content_hash.to_ascii_lowercase().into_bytes(),
            ),
            (field::DATA, self.data(&item.content)),
            (field::META, meta),
        ]
    }

    /// The wire form of content: raw when short, already compressed-looking, or incompressible.
    pub fn data(&mut self, content: &[u8]) -> Vec<u8> {
        if content.len() < MIN_COMPRESS_LEN || is_zstd_frame(content) {
            return content.to_vec();
        }
        match self.compressor.compress(content) {
            Ok(compressed) if compressed.len() < content.len() => compressed,
            _ => content.to_vec(),
        }
    }
}

/// The fields of a bare DEL entry: only `op` and `key`, as sync-engine writes it.
pub fn encode_delete(key: &str) -> EncodedEntry {
    vec![
        (field::OP, b"DEL".to_vec()),
        (field::KEY, key.as_bytes().to_vec()),
    ]
}

/// The fields of a stamped DEL entry, as our stores write it: `op key meta`, where `meta` is
/// `{"version":v,"deleted_at":ms}`. Readers that know the field take the delete's stamp
/// from the entry itself; readers that do not see a plain DEL.
pub fn encode_stamped_delete(key: &str, stamp: &Tombstone) -> EncodedEntry {
    let mut entry = encode_delete(key);
    entry.push((field::META, encode_delete_meta(stamp).into_bytes()));
    entry
}
