//! Planning one batch for its commit: the split of a large replicated batch into parts
//! ([`PIPELINING`] is the one statement of that rule), and each part's plan (conflict order
//! by the pure planner `plan`, the Merkle nodes by `merkle_update`) turned into the apply
//! script's arguments. No I/O.

use super::Writer;
use crate::apply_script::ScriptArgs;
use crate::merkle_update::{recompute, ChildSet};
use crate::plan::{plan, Outcome, WriteOp};
use crate::state::Stored;
use bytes::Bytes;
use replication_core::cdc::CdcEncoder;
use replication_core::merkle::{encode_member, Hash};
use replication_core::{encode_item_json, encode_tombstone_json};
use std::collections::HashMap;

/// When a batch is committed in parts, and into how many.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pipelining {
    /// Batches of replicated changes at least this large are committed in parts.
    pub(crate) min_ops: usize,
    /// Changes per part, at least (fewer, larger parts when the batch is smaller).
    pub(crate) part_ops: usize,
    /// Parts per batch, at most: each part costs its own recompute of the shared ancestors.
    pub(crate) max_parts: usize,
}

/// The rule for committing a large batch of replicated changes in parts (see
/// [`split_by_key`]); the docs name this constant rather than repeat its figures.
pub(crate) const PIPELINING: Pipelining = Pipelining {
    min_ops: 256,
    part_ops: 250,
    max_parts: 4,
};

impl Writer {
    /// Plans `ops` over `stored` and `sets` (updated in place to the state after them) and
    /// builds the commit; `None` when they change nothing.
    pub(super) fn prepare(
        &self,
        ops: &mut [WriteOp],
        stored: &HashMap<&str, Stored>,
        floor: u64,
        sets: &mut HashMap<String, ChildSet>,
        encoder: &mut CdcEncoder,
    ) -> (Vec<Outcome>, Option<ScriptArgs>) {
        let now = now_ms();
        let mut plan = plan(ops, stored, floor, now, encoder);
        if plan.is_empty() {
            return (plan.outcomes, None);
        }
        let leaves: HashMap<&str, Option<Hash>> =
            plan.leaves.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let changes = recompute(sets, &leaves);

        let mut args = ScriptArgs::new();
        for entry in plan.cdc.drain(..) {
            args.xadd(self.keys.cdc(), self.cdc_maxlen, entry);
        }
        for (path, segment, hash) in &changes.removed {
            args.zrem(self.keys.children(path), encode_member(segment, hash));
        }
        for (path, segment, hash) in &changes.added {
            args.zadd(self.keys.children(path), encode_member(segment, hash));
        }
        for (id, tombstone) in &plan.tombstones_set {
            args.hset(id.clone(), encode_tombstone_json(tombstone, now));
        }
        for id in &plan.tombstones_deleted {
            args.hdel(id.clone());
        }
        for (id, source) in &plan.items_set {
            let item = match &ops[*source] {
                WriteOp::LocalPut(item) | WriteOp::Put(item) => item,
                WriteOp::LocalDelete(_) | WriteOp::Delete(..) => {
                    unreachable!("the planner sources items from puts")
                }
            };
            args.set_item(self.keys.item(id), Bytes::from(encode_item_json(item)));
        }
        for id in &plan.items_deleted {
            args.del(self.keys.item(id));
        }
        for (path, hash) in &changes.hashes_set {
            args.set(self.keys.hash(path), Bytes::from(hex::encode(hash)));
        }
        for path in &changes.hashes_deleted {
            args.del(self.keys.hash(path));
        }
        (plan.outcomes, Some(args))
    }
}

/// Regroups a large batch of replicated changes into parts of whole keys (every change of a
/// key in one part, in their original order; keys cut into parts in id order, so that a
/// part spans few subtrees; how many: [`PIPELINING`]), so that it can be
/// committed as a few atomic parts back to back: while Redis runs one part, the next is
/// planned and encoded. Returns the end index of each part (just `[ops.len()]`, and `ops`
/// untouched, for batches that are small or hold local writes: re-planning those after a
/// partial commit would not be idempotent).
///
/// A batch is then no longer atomic as a whole, only each part is: a failure leaves a
/// prefix of parts applied, each consistent (items, tree, tombstones), and the caller
/// retries the batch, whose applied changes are then no-ops.
pub(super) fn split_by_key(ops: &mut [WriteOp]) -> Vec<usize> {
    let replicated = ops
        .iter()
        .all(|op| matches!(op, WriteOp::Put(_) | WriteOp::Delete(..)));
    let parts = (ops.len() / PIPELINING.part_ops).clamp(1, PIPELINING.max_parts);
    if !replicated || ops.len() < PIPELINING.min_ops || parts == 1 {
        return vec![ops.len()];
    }
    // Distinct keys in id order, spread evenly over the parts. The ids below one node are
    // contiguous in that order, so each part changes as few nodes as it can: every part
    // hashes all the children of every node it changes, and a batch spread over a few wide
    // nodes (ids `t{i % 16}.item{i}`) would otherwise have every part rehash all of them.
    let mut distinct: Vec<&str> = ops.iter().map(WriteOp::key).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let index: HashMap<&str, usize> = distinct.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let part_of: Vec<usize> = ops
        .iter()
        .map(|op| {
            index
                .get(op.key())
                .map_or(0, |i| i * parts / distinct.len())
        })
        .collect();
    drop(index);
    drop(distinct);
    let mut tagged: Vec<(usize, WriteOp)> = ops
        .iter_mut()
        .zip(&part_of)
        .map(|(op, part)| {
            (
                *part,
                std::mem::replace(op, WriteOp::LocalDelete(String::new())),
            )
        })
        .collect();
    // Stable: a key's changes keep their order.
    tagged.sort_by_key(|(part, _)| *part);
    let mut ends = Vec::with_capacity(parts);
    for (i, (slot, (part, op))) in ops.iter_mut().zip(tagged).enumerate() {
        *slot = op;
        if ends.len() < part {
            ends.push(i);
        }
    }
    ends.push(ops.len());
    ends.retain(|end| *end > 0);
    ends.dedup();
    ends
}

/// Wall clock in ms since the epoch (0 if the clock is before 1970).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    //! How a batch is split into parts.
    use super::*;
    use replication_core::{SyncItem, Tombstone};
    use std::collections::HashMap;

    fn put(key: &str, version: u64) -> WriteOp {
        WriteOp::Put(SyncItem::new(
            key,
            version.to_le_bytes().to_vec(),
            version,
            1,
        ))
    }

    fn keys(ops: &[WriteOp]) -> Vec<String> {
        ops.iter().map(|op| op.key().to_owned()).collect()
    }

    #[test]
    fn small_batches_and_local_writes_stay_whole() {
        let mut small: Vec<WriteOp> = (0..255).map(|i| put(&format!("k{i}"), 1)).collect();
        assert_eq!(split_by_key(&mut small), vec![255]);
        let mut local: Vec<WriteOp> = (0..600).map(|i| put(&format!("k{i}"), 1)).collect();
        local.push(WriteOp::LocalDelete("k0".into()));
        let before = keys(&local);
        assert_eq!(split_by_key(&mut local), vec![601]);
        assert_eq!(keys(&local), before);
    }

    #[test]
    fn parts_cut_the_batch_by_subtree_not_by_arrival() {
        // 1 000 new ids arriving round-robin over 16 wide nodes: in arrival order every part
        // would change all 16 nodes (and rehash each node's every child); cut in id order,
        // each part changes about a quarter of them.
        let mut ops: Vec<WriteOp> = (0..1_000u64)
            .map(|i| put(&format!("bench.tenant{}.item{i}", i % 16), 1))
            .collect();
        let ends = split_by_key(&mut ops);
        assert_eq!(ends.len(), PIPELINING.max_parts);
        let mut start = 0;
        for end in ends {
            let parents: std::collections::HashSet<&str> = ops[start..end]
                .iter()
                .map(|op| replication_core::merkle::parent_and_segment(op.key()).0)
                .collect();
            assert!(
                parents.len() <= 16 / PIPELINING.max_parts + 1,
                "a part changes {} of the 16 nodes",
                parents.len()
            );
            start = end;
        }
    }

    #[test]
    fn parts_hold_whole_keys_in_their_original_order() {
        // 1 000 changes over 400 keys, each key changed at positions spread over the batch.
        let mut ops: Vec<WriteOp> = (0..1_000u64)
            .map(|i| {
                let key = format!("k{}", i % 400);
                if i % 7 == 0 {
                    WriteOp::Delete(
                        key,
                        Some(Tombstone {
                            version: i,
                            deleted_at: 1,
                        }),
                    )
                } else {
                    put(&key, i)
                }
            })
            .collect();
        let original: Vec<(String, String)> = ops
            .iter()
            .map(|op| (op.key().to_owned(), format!("{op:?}")))
            .collect();
        let ends = split_by_key(&mut ops);
        assert_eq!(ends.len(), PIPELINING.max_parts);
        assert_eq!(ends.last(), Some(&1_000));
        // No key in two parts.
        let mut part_of = HashMap::new();
        let mut start = 0;
        for (part, end) in ends.iter().enumerate() {
            for op in &ops[start..*end] {
                assert_eq!(*part_of.entry(op.key().to_owned()).or_insert(part), part);
            }
            start = *end;
        }
        // Same changes, and each key's changes in their original order.
        let now: Vec<(String, String)> = ops
            .iter()
            .map(|op| (op.key().to_owned(), format!("{op:?}")))
            .collect();
        for key in (0..400).map(|k| format!("k{k}")) {
            let of = |list: &[(String, String)]| -> Vec<String> {
                list.iter()
                    .filter(|(k, _)| *k == key)
                    .map(|(_, op)| op.clone())
                    .collect()
            };
            assert_eq!(of(&now), of(&original), "{key}");
        }
    }
}
