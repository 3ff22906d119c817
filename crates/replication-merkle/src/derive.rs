//! What a local store without `local_states` tells of its keys, read through the required
//! methods only: each key's Merkle leaf (from its parent's children) and its content
//! (`get`), from which `replication_core::find_leaf_version` recovers the version.
//!
//! Round trips: one batched children read for the parents, one `get` per key, and a
//! second children read only for keys whose node turns out to be a parent as well (its
//! own leaf then sits under the self segment of its children, in our layout).

use replication_core::merkle::{parent_and_segment, Hash, SELF_SEGMENT};
use replication_core::{content_hash, find_leaf_version, Derived, SyncEngineRef, SyncError};
use std::collections::HashMap;

/// The derived state of each key, in order; `hints[i]` is the version the caller will
/// compare `keys[i]` with (where the version search starts).
pub async fn derive_states<S: SyncEngineRef>(
    store: &S,
    keys: &[String],
    hints: &[Option<u64>],
) -> Result<Vec<Derived>, SyncError> {
    let mut parents: Vec<String> = keys
        .iter()
        .map(|key| parent_and_segment(key).0.to_owned())
        .collect();
    parents.sort_unstable();
    parents.dedup();
    let listings = store.get_merkle_children_many(&parents).await?;
    let children: HashMap<&str, &[(String, Hash)]> = parents
        .iter()
        .map(String::as_str)
        .zip(listings.iter().map(Vec::as_slice))
        .collect();

    let mut out = Vec::with_capacity(keys.len());
    // Keys whose node has an entry that is not (or not only) their leaf: looked at again.
    let mut second_look = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        let (parent, segment) = parent_and_segment(key);
        let entry = children
            .get(parent)
            .and_then(|list| list.iter().find(|(s, _)| s == segment))
            .map(|(_, hash)| *hash);
        let content = store.get(key).await?.map(|bytes| content_hash(&bytes));
        let hint = hints.get(index).copied().flatten();
        let derived = match (entry, content) {
            (None, None) => Derived::Absent,
            // An item the tree does not list: the tree lags behind (a write in between).
            (None, Some(_)) => Derived::Undetermined,
            (Some(leaf), Some(content)) => match find_leaf_version(key, &content, &leaf, hint) {
                Some(version) => versioned(version, &content),
                None => {
                    second_look.push((index, Some(content)));
                    Derived::Undetermined
                }
            },
            // A node without an item: a parent of other keys, or an item just deleted.
            (Some(_), None) => {
                second_look.push((index, None));
                Derived::Undetermined
            }
        };
        out.push(derived);
    }
    if second_look.is_empty() {
        return Ok(out);
    }

    let paths: Vec<String> = second_look
        .iter()
        .map(|(index, _)| keys[*index].clone())
        .collect();
    let own = store.get_merkle_children_many(&paths).await?;
    for ((index, content), listing) in second_look.into_iter().zip(own) {
        if listing.is_empty() {
            // A leaf after all, whose hash matches no version searched or no content.
            continue;
        }
        let self_leaf = listing
            .iter()
            .find(|(s, _)| s == SELF_SEGMENT)
            .map(|(_, hash)| *hash);
        let key = &keys[index];
        out[index] = match (self_leaf, content) {
            (None, None) => Derived::Absent,
            // Sync-engine's layout loses the leaf of an id that is also a parent.
            (None, Some(content)) => Derived::Unversioned {
                content_hash: hex::encode(content),
            },
            (Some(_), None) => Derived::Undetermined,
            (Some(leaf), Some(content)) => {
                let hint = hints.get(index).copied().flatten();
                find_leaf_version(key, &content, &leaf, hint)
                    .map_or(Derived::Undetermined, |version| {
                        versioned(version, &content)
                    })
            }
        };
    }
    Ok(out)
}

fn versioned(version: u64, content: &Hash) -> Derived {
    Derived::Versioned {
        version,
        content_hash: hex::encode(content),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests {
    use super::*;
    use replication_core::content_hash_hex;
    use replication_testkit::{MemoryStore, MinimalStore};

    #[tokio::test]
    async fn versions_come_back_from_the_tree_and_the_content() {
        let inner = MemoryStore::new();
        for _ in 0..3 {
            inner.put_local("a.b", b"v".to_vec());
        }
        inner.put_local("a", b"parent".to_vec());
        inner.put_local("p.q", b"x".to_vec());
        let store = MinimalStore::new(inner);
        let keys: Vec<String> = ["a.b", "a", "p", "missing.key"].map(String::from).to_vec();
        let derived = derive_states(&store, &keys, &[Some(10), None, None, Some(1)])
            .await
            .unwrap();
        assert_eq!(
            derived,
            [
                Derived::Versioned {
                    version: 3,
                    content_hash: content_hash_hex(b"v")
                },
                Derived::Versioned {
                    version: 1,
                    content_hash: content_hash_hex(b"parent")
                },
                Derived::Absent,
                Derived::Absent,
            ],
            "an item that is also a parent is found under its self segment; a parent \
             without an item is absent"
        );
    }

    #[tokio::test]
    async fn a_version_out_of_reach_is_undetermined_and_a_low_one_is_found() {
        use replication_core::{Change, SyncItem};
        let inner = MemoryStore::new();
        inner.put_local("low", b"v".to_vec());
        inner
            .apply_change(Change::Put(SyncItem::new(
                "high",
                b"v".to_vec(),
                100_000,
                1,
            )))
            .unwrap();
        let store = MinimalStore::new(inner);
        let keys = ["low".to_owned(), "high".to_owned()];
        let derived = derive_states(&store, &keys, &[Some(1_000_000), Some(1)])
            .await
            .unwrap();
        assert!(matches!(derived[0], Derived::Versioned { version: 1, .. }));
        assert_eq!(derived[1], Derived::Undetermined);
    }
}
