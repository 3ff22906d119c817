//! What reads accept from a peer: object ids within `settings.limits`, so that a hostile or
//! broken peer cannot make this node do work (or hold memory) that grows without bound.

use replication_core::merkle::{child_path, Hash};
use replication_core::{ObjectIdLimits, Settings};

/// Bounds applied to every read of one peer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadLimits {
    /// Ids (keys asked for, children listed) beyond these are refused as bad input.
    pub(crate) object_ids: ObjectIdLimits,
}

impl ReadLimits {
    pub(crate) fn from_settings(settings: &Settings) -> Self {
        Self {
            object_ids: settings.limits.object_ids(),
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
