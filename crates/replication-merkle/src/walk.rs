//! One step of the level-by-level walk: compare the children of a group of differing nodes,
//! reading each side's children in batched calls, and sort what differs into nodes to
//! expand next and keys to resolve.
//!
//! A node's children on one side are read only when that side has the node. A node with no
//! children is a leaf: it is treated as a node whose only child is itself under the self
//! segment, so that a leaf on one side and a parent (with or without the item, under the
//! self segment) on the other compare like any two parents. The self segment under `p`
//! names the item `p` itself (docs/PROTOCOL.md "Ids that are both item and parent").

use crate::error::{check_len, RepairError, Side};
use crate::report::CycleReport;
use crate::source::{RepairPeer, TreeSource};
use crate::state::{Candidate, NodePair};
use crate::ReadStage;
use futures::future::{try_join, try_join_all};
use replication_core::merkle::{child_path, Hash, SELF_SEGMENT};
use replication_core::SyncError;
use std::collections::BTreeMap;

/// What one step found.
#[derive(Debug, Default)]
pub(crate) struct Expansion {
    pub(crate) nodes: Vec<NodePair>,
    pub(crate) candidates: Vec<Candidate>,
}

/// Compares the children of `pairs`, with at most `batch` paths per call.
pub(crate) async fn expand<L: TreeSource<Error = SyncError>, P: RepairPeer>(
    local: &L,
    peer: &P,
    pairs: Vec<NodePair>,
    batch: usize,
    report: &mut CycleReport,
) -> Result<Expansion, RepairError> {
    let local_paths: Vec<String> = pairs
        .iter()
        .filter(|p| p.local.is_some())
        .map(|p| p.path.clone())
        .collect();
    let peer_paths: Vec<String> = pairs
        .iter()
        .filter(|p| p.peer.is_some())
        .map(|p| p.path.clone())
        .collect();
    let local_chunks: Vec<&[String]> = local_paths.chunks(batch).collect();
    let peer_chunks: Vec<&[String]> = peer_paths.chunks(batch).collect();
    report.local_round_trips += local_chunks.len() as u64;
    report.peer_round_trips += peer_chunks.len() as u64;
    report.nodes_compared += pairs.len() as u64;

    let node_id = peer.node_id();
    let local_reads = try_join_all(local_chunks.iter().map(|chunk| async move {
        let got = local
            .children(chunk)
            .await
            .map_err(|source| RepairError::LocalRead {
                peer: node_id.to_owned(),
                stage: ReadStage::Children,
                source,
            })?;
        check_len(node_id, Side::Local, ReadStage::Children, chunk.len(), got)
    }));
    let peer_reads = try_join_all(peer_chunks.iter().map(|chunk| async move {
        let got = peer
            .children(chunk)
            .await
            .map_err(|source| RepairError::Peer {
                peer: node_id.to_owned(),
                stage: ReadStage::Children,
                source,
            })?;
        check_len(node_id, Side::Peer, ReadStage::Children, chunk.len(), got)
    }));
    let (local_lists, peer_lists) = try_join(local_reads, peer_reads).await?;
    let mut local_lists = local_lists.into_iter().flatten();
    let mut peer_lists = peer_lists.into_iter().flatten();

    let mut out = Expansion::default();
    for pair in pairs {
        // The lists come back in the order of the paths, which kept the order of `pairs`.
        let local_children = match pair.local {
            Some(hash) => entries(local_lists.next().unwrap_or_default(), hash),
            None => BTreeMap::new(),
        };
        let peer_children = match pair.peer {
            Some(hash) => entries(peer_lists.next().unwrap_or_default(), hash),
            None => BTreeMap::new(),
        };
        compare(&pair.path, &local_children, &peer_children, &mut out);
    }
    Ok(out)
}

/// The children of a node that exists on a side: its listing, or itself as its only
/// (self) child when it is a leaf.
fn entries(listing: Vec<(String, Hash)>, own_hash: Hash) -> BTreeMap<String, Hash> {
    if listing.is_empty() {
        BTreeMap::from([(SELF_SEGMENT.to_owned(), own_hash)])
    } else {
        listing.into_iter().collect()
    }
}

/// Sorts the differing children of `path` into `out`.
fn compare(
    path: &str,
    local: &BTreeMap<String, Hash>,
    peer: &BTreeMap<String, Hash>,
    out: &mut Expansion,
) {
    let segments = local
        .keys()
        .chain(peer.keys().filter(|s| !local.contains_key(*s)));
    for segment in segments {
        let (l, p) = (local.get(segment).copied(), peer.get(segment).copied());
        if l == p {
            continue;
        }
        if segment == SELF_SEGMENT {
            // The root is never an item (object ids are non-empty): ignore a bogus member.
            if !path.is_empty() {
                out.candidates.push(Candidate {
                    key: path.to_owned(),
                    on_peer: p.is_some(),
                });
            }
        } else {
            out.nodes.push(NodePair {
                path: child_path(path, segment),
                local: l,
                peer: p,
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests {
    use super::*;

    fn h(byte: u8) -> Hash {
        [byte; 32]
    }

    fn map(entries: &[(&str, u8)]) -> BTreeMap<String, Hash> {
        entries
            .iter()
            .map(|(s, b)| (s.to_string(), h(*b)))
            .collect()
    }

    #[test]
    fn a_leaf_is_its_own_self_child() {
        assert_eq!(entries(Vec::new(), h(7)), map(&[("", 7)]));
        assert_eq!(entries(vec![("x".into(), h(1))], h(7)), map(&[("x", 1)]));
    }

    #[test]
    fn differing_children_become_nodes_and_the_self_segment_a_key() {
        let mut out = Expansion::default();
        compare(
            "a",
            &map(&[("", 1), ("b", 2), ("c", 3)]),
            &map(&[("", 9), ("b", 2), ("d", 4)]),
            &mut out,
        );
        assert_eq!(
            out.candidates,
            [Candidate {
                key: "a".into(),
                on_peer: true
            }]
        );
        let paths: Vec<_> = out
            .nodes
            .iter()
            .map(|n| (n.path.as_str(), n.local.is_some(), n.peer.is_some()))
            .collect();
        assert_eq!(paths, [("a.c", true, false), ("a.d", false, true)]);
    }

    #[test]
    fn a_leaf_against_a_parent_compares_item_and_subtree() {
        // Local `a` is a plain leaf; the peer's `a` is an item and a parent.
        let mut out = Expansion::default();
        compare(
            "a",
            &entries(Vec::new(), h(1)),
            &map(&[("", 1), ("b", 2)]),
            &mut out,
        );
        assert!(out.candidates.is_empty(), "the item itself is equal");
        assert_eq!(
            out.nodes,
            [NodePair {
                path: "a.b".into(),
                local: None,
                peer: Some(h(2))
            }]
        );
        // Against a sync-engine parent that lost the item's hash, the item looks local-only.
        let mut out = Expansion::default();
        compare("a", &entries(Vec::new(), h(1)), &map(&[("b", 2)]), &mut out);
        assert_eq!(
            out.candidates,
            [Candidate {
                key: "a".into(),
                on_peer: false
            }]
        );
    }

    #[test]
    fn a_self_member_under_the_root_is_ignored() {
        let mut out = Expansion::default();
        compare("", &map(&[("", 1)]), &BTreeMap::new(), &mut out);
        assert!(out.candidates.is_empty() && out.nodes.is_empty());
    }
}
