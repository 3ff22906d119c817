//! What the store holds for one key, as the reads decode it and the planner, the read-ahead
//! and the batched reads pass it around: the item's stamp and the tombstone.

use replication_core::merkle::{leaf_hash, Hash};
use replication_core::{parse_hash_hex, Stamp, SyncItem, Tombstone};

/// What the store holds for an item, as far as conflicts and the tree are concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ItemMeta {
    pub(crate) version: u64,
    pub(crate) updated_at: i64,
    /// Lowercase hex content hash.
    pub(crate) content_hash: String,
}

impl ItemMeta {
    pub(crate) fn of(item: &SyncItem) -> Self {
        Self {
            version: item.version,
            updated_at: item.updated_at,
            content_hash: item.content_hash.to_ascii_lowercase(),
        }
    }

    pub(crate) fn stamp(&self) -> Stamp {
        Stamp::put(self.version, self.updated_at, &self.content_hash)
    }

    /// The item's Merkle leaf under object id `id`.
    pub(crate) fn leaf(&self, id: &str) -> Hash {
        // Stored hashes were validated when read; items built here come from SyncItem::new.
        let content = parse_hash_hex(&self.content_hash).unwrap_or_default();
        leaf_hash(id, self.version, &content)
    }
}

/// The stored state of one key before a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) item: Option<ItemMeta>,
    pub(crate) tombstone: Option<Tombstone>,
}
