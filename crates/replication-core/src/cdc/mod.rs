//! The CDC stream entry model and its codec (PROTOCOL.md "CDC stream").
//!
//! [`CdcDecoder`] turns a stream entry's field list into a typed [`CdcEvent`], verifying
//! everything a peer could get wrong; [`CdcEncoder`] writes entries exactly as sync-engine does.

mod compression;
mod decode;
mod encode;
mod meta;

pub use compression::{is_zstd_frame, ZSTD_MAGIC};
pub use decode::{CdcDecodeError, CdcDecoder, DecodeLimits, RejectReason};
pub use encode::{encode_delete, encode_stamped_delete, CdcEncoder, EncodedEntry};

use crate::{SyncItem, Tombstone};

/// Field names of a CDC entry, in the order sync-engine writes them.
pub mod field {
    /// Operation: `PUT` or `DEL` (readers also accept `DELETE`, any case).
    pub const OP: &str = "op";
    /// Object id.
    pub const KEY: &str = "key";
    /// Hex SHA-256 of the uncompressed content.
    pub const HASH: &str = "hash";
    /// Content, zstd-compressed when worthwhile.
    pub const DATA: &str = "data";
    /// JSON metadata: on a PUT content type, version, updated_at, optional trace_parent;
    /// on a stamped DEL the delete's version and deleted_at.
    pub const META: &str = "meta";
}

/// One decoded change from a peer's CDC stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CdcEvent {
    /// The key now holds this item (content already decompressed and hash-verified).
    Put(SyncItem),
    /// The key was deleted.
    Delete {
        /// Object id.
        key: String,
        /// The delete's stamp, when the writer put it on the entry (our stores do; a
        /// sync-engine writer does not, and readers then look for the writer's tombstone,
        /// docs/PROTOCOL.md). A stamped entry is its own evidence: it still says what was
        /// deleted after the writer has collected its tombstone.
        stamp: Option<Tombstone>,
    },
}

impl CdcEvent {
    /// The object id this event is about.
    pub fn key(&self) -> &str {
        match self {
            CdcEvent::Put(item) => &item.key,
            CdcEvent::Delete { key, .. } => key,
        }
    }
}

#[cfg(test)]
mod tests;
