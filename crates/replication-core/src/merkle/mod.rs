//! Merkle hashing rules over the object-id path tree (PROTOCOL.md "Merkle tree").
//!
//! Object id `a.b.c` has interior nodes `` (root), `a`, `a.b` and the leaf `a.b.c`.
//! - leaf hash = SHA-256(id `|` version as 8-byte LE `|` raw SHA-256 of content);
//! - interior hash = SHA-256 over children sorted by segment bytes, each contributing
//!   `segment` `:` raw child hash `;`.
//!
//! An id that is both an item and a parent (`a` and `a.b`) is ambiguous in sync-engine's
//! layout. We define it: the item's leaf hash joins its node's children under the empty
//! segment [`SELF_SEGMENT`], so the node hash covers both the item and its subtree.
//! Object ids with empty segments (`a..b`, `.a`, `a.`) are invalid for that reason.

mod member;
mod path;
mod tree;

pub use member::{decode_member, encode_member, MemberError};
pub use path::{
    ancestors, child_path, parent_and_segment, validate_object_id, ObjectIdError, ObjectIdProblem,
};
pub use tree::MerkleTree;

use sha2::{Digest, Sha256};

/// A 32-byte SHA-256 node hash.
pub type Hash = [u8; 32];

/// The segment under which an item that is also a parent lists its own leaf hash.
pub const SELF_SEGMENT: &str = "";

/// Leaf hash of an item: `SHA-256(id | version_le | content_sha256)`. The timestamp is
/// deliberately excluded, as in sync-engine.
pub fn leaf_hash(object_id: &str, version: u64, content_sha256: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(object_id.as_bytes());
    h.update(b"|");
    h.update(version.to_le_bytes());
    h.update(b"|");
    h.update(content_sha256);
    h.finalize().into()
}

/// Interior hash over `(segment, child hash)` pairs; sorts them by segment bytes itself.
pub fn interior_hash<'a>(children: impl IntoIterator<Item = (&'a str, &'a Hash)>) -> Hash {
    let mut children: Vec<_> = children.into_iter().collect();
    children.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut h = Sha256::new();
    for (segment, hash) in children {
        h.update(segment.as_bytes());
        h.update(b":");
        h.update(hash);
        h.update(b";");
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests;
