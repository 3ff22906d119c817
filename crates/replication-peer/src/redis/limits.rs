//! What reads accept from a peer: object ids and children sets within `settings.limits`,
//! items within `settings.hot_path.max_content_bytes`, so that a hostile or broken peer
//! cannot make this node do work (or hold memory) that grows without bound.

use replication_core::merkle::{child_path, Hash};
use replication_core::{DecodeLimits, ItemRead, ObjectIdLimits, Settings};

/// Bounds applied to every read of one peer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadLimits {
    /// Ids (keys asked for, children listed) beyond these are refused as bad input.
    pub(crate) object_ids: ObjectIdLimits,
    /// Largest item content accepted (`settings.hot_path.max_content_bytes`, the cap the
    /// stream applies too).
    pub(crate) max_content_bytes: usize,
    /// Most members one children set may have (`settings.limits.max_children_per_node`).
    pub(crate) max_children: usize,
}

impl ReadLimits {
    pub(crate) fn from_settings(settings: &Settings) -> Self {
        Self {
            object_ids: settings.limits.object_ids(),
            max_content_bytes: settings.hot_path.max_content_bytes,
            max_children: settings.limits.max_children_per_node,
        }
    }

    /// Most bytes an item's stored form may take: its content as a JSON array of byte
    /// values takes at most 4 bytes per byte (`255,`), plus room for the other fields.
    pub(crate) fn max_item_bytes(&self) -> usize {
        self.max_content_bytes
            .saturating_mul(4)
            .saturating_add(DecodeLimits::ENTRY_OVERHEAD_BYTES)
    }

    /// `read` unless its content is over the cap.
    pub(crate) fn content_within(&self, read: ItemRead) -> ItemRead {
        match read {
            ItemRead::Present(item) if item.content.len() > self.max_content_bytes => {
                ItemRead::Unreadable {
                    reason: format!(
                        "content is {} bytes, over settings.hot_path.max_content_bytes ({})",
                        item.content.len(),
                        self.max_content_bytes
                    ),
                }
            }
            other => other,
        }
    }

    /// Why an item whose stored form takes `size` bytes is not read.
    pub(crate) fn item_too_large(&self, size: u64) -> ItemRead {
        ItemRead::Unreadable {
            reason: format!(
                "item is {size} bytes at the peer, over the {}-byte cap of an item with \
                 settings.hot_path.max_content_bytes ({}) of content",
                self.max_item_bytes(),
                self.max_content_bytes
            ),
        }
    }

    /// The children of `path` whose ids are within the limits. Others are left out (and
    /// logged): the repair walk then treats that branch as absent on the peer, which never
    /// deletes anything here, and no store could take such an id anyway.
    pub(crate) fn children_within(
        &self,
        peer: &str,
        path: &str,
        children: Vec<(String, Hash)>,
    ) -> Vec<(String, Hash)> {
        children
            .into_iter()
            .filter(
                |(segment, _)| match self.object_ids.check_bounds(&child_path(path, segment)) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(peer, path = %e.id, problem = %e.problem,
                            "peer's Merkle child over the object id limits; not walked");
                        false
                    }
                },
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_beyond_the_id_limits_are_left_out() {
        let limits = ReadLimits {
            object_ids: ObjectIdLimits {
                max_bytes: 16,
                max_segments: 3,
            },
            max_content_bytes: 1,
            max_children: 10,
        };
        let kids = vec![
            ("c".to_owned(), [1; 32]),
            ("".to_owned(), [2; 32]),
            ("x".repeat(20), [3; 32]),
        ];
        let kept = limits.children_within("p", "a.b", kids.clone());
        assert_eq!(kept, kids[..2].to_vec());
        // `a.b.c` is the third segment; below it, a fourth is too deep.
        assert!(limits
            .children_within("p", "a.b.c", vec![("d".to_owned(), [1; 32])])
            .is_empty());
    }
}
