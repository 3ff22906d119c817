//! Planning one write batch (pure, no I/O): given what the store holds for the batch's
//! keys, decide per change whether it applies (conflict order and tombstones), assign
//! versions to local writes, and list the item, tombstone, leaf and CDC changes.
//!
//! The planner sees a snapshot read at one write token; the commit only lands if the token
//! is unchanged, so the decisions made here hold at commit time (see `writer`). The state
//! types it reads ([`Stored`], [`ItemMeta`]) live in `state`, shared with the reads.

use crate::state::{ItemMeta, Stored};
use replication_core::cdc::{encode_stamped_delete, CdcEncoder, EncodedEntry};
use replication_core::merkle::Hash;
use replication_core::{Stamp, SyncItem, Tombstone};
use std::collections::HashMap;

/// One change in a batch.
#[derive(Clone, Debug)]
pub(crate) enum WriteOp {
    /// A local write: the planner assigns `version` and `updated_at` in place.
    LocalPut(SyncItem),
    /// A local delete of a key.
    LocalDelete(String),
    /// A replicated item, kept only if it beats what the store holds.
    Put(SyncItem),
    /// A replicated delete: with the delete's tombstone, or bare (the store derives one).
    Delete(String, Option<Tombstone>),
}

impl WriteOp {
    /// The object id.
    pub(crate) fn key(&self) -> &str {
        match self {
            WriteOp::LocalPut(item) | WriteOp::Put(item) => &item.key,
            WriteOp::LocalDelete(key) | WriteOp::Delete(key, _) => key,
        }
    }
}

/// What one change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A put was stored (`true`) or lost the conflict order (`false`).
    Put(bool),
    /// A delete removed an existing item (`true`) or found none / lost (`false`).
    Delete(bool),
}

/// The state of one key as the batch goes along.
struct Working {
    item: Option<ItemMeta>,
    tombstone: Option<Tombstone>,
    /// The op whose item is stored now, when the batch replaced the item.
    source: Option<usize>,
    item_changed: bool,
    tombstone_changed: bool,
    leaf_before: Option<Hash>,
}

impl Working {
    /// The stamp a change must beat: the newer of item and tombstone.
    fn beats_current(&self, incoming: &Stamp) -> bool {
        self.item
            .as_ref()
            .is_none_or(|i| incoming.beats(&i.stamp()))
            && self
                .tombstone
                .as_ref()
                .is_none_or(|t| incoming.beats(&t.stamp()))
    }

    fn highest_version(&self) -> u64 {
        let item = self.item.as_ref().map_or(0, |i| i.version);
        let tomb = self.tombstone.as_ref().map_or(0, |t| t.version);
        item.max(tomb)
    }

    fn latest_time(&self) -> i64 {
        let item = self.item.as_ref().map_or(i64::MIN, |i| i.updated_at);
        let tomb = self.tombstone.as_ref().map_or(i64::MIN, |t| t.deleted_at);
        item.max(tomb)
    }

    fn store_item(&mut self, meta: ItemMeta, source: usize) {
        self.item = Some(meta);
        self.source = Some(source);
        self.item_changed = true;
        if self.tombstone.take().is_some() {
            self.tombstone_changed = true;
        }
    }

    /// Removes the item and records `tombstone`; returns whether an item existed.
    fn delete(&mut self, tombstone: Tombstone) -> bool {
        let existed = self.item.take().is_some();
        self.item_changed |= existed;
        self.source = None;
        self.tombstone = Some(tombstone);
        self.tombstone_changed = true;
        existed
    }
}

/// Everything a batch writes.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// One outcome per op, in order.
    pub(crate) outcomes: Vec<Outcome>,
    /// Items to store: (object id, index of the op holding the item).
    pub(crate) items_set: Vec<(String, usize)>,
    /// Items to delete.
    pub(crate) items_deleted: Vec<String>,
    /// Tombstones to record.
    pub(crate) tombstones_set: Vec<(String, Tombstone)>,
    /// Tombstones to drop (a newer put replaced them).
    pub(crate) tombstones_deleted: Vec<String>,
    /// Leaves whose hash changed: object id -> new leaf (`None` = removed).
    pub(crate) leaves: HashMap<String, Option<Hash>>,
    /// CDC entries of the local changes, in order.
    pub(crate) cdc: Vec<EncodedEntry>,
}

impl Plan {
    /// True when the batch changes nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.items_set.is_empty()
            && self.items_deleted.is_empty()
            && self.tombstones_set.is_empty()
            && self.tombstones_deleted.is_empty()
            && self.cdc.is_empty()
    }
}

/// Plans `ops` over `stored` (the state of every key of the batch before it).
///
/// Local puts and deletes get `version = max(item, tombstone version, floor) + 1` and a
/// time of `now_ms`, but never earlier than the key's last write, so stamps never go
/// backwards. `floor` is the store's version floor, raised by every collected tombstone:
/// a key written again after its tombstone was collected still beats that tombstone,
/// which another node may keep (docs/PROTOCOL.md "Versions never go backwards").
pub(crate) fn plan(
    ops: &mut [WriteOp],
    stored: &HashMap<&str, Stored>,
    floor: u64,
    now_ms: i64,
    encoder: &mut CdcEncoder,
) -> Plan {
    let mut plan = Plan {
        outcomes: Vec::with_capacity(ops.len()),
        ..Plan::default()
    };
    let mut working: HashMap<String, Working> = HashMap::with_capacity(stored.len());
    let mut order: Vec<String> = Vec::new();

    for (index, op) in ops.iter_mut().enumerate() {
        let key = op.key();
        if !working.contains_key(key) {
            let before = stored.get(key).cloned().unwrap_or_default();
            let leaf_before = before.item.as_ref().map(|i| i.leaf(key));
            working.insert(
                key.to_owned(),
                Working {
                    item: before.item,
                    tombstone: before.tombstone,
                    source: None,
                    item_changed: false,
                    tombstone_changed: false,
                    leaf_before,
                },
            );
            order.push(key.to_owned());
        }
        let state = working.get_mut(op.key()).expect("inserted above");
        let outcome = match op {
            WriteOp::LocalPut(item) => {
                item.version = state.highest_version().max(floor).saturating_add(1);
                item.updated_at = now_ms.max(state.latest_time());
                state.store_item(ItemMeta::of(item), index);
                plan.cdc.push(encoder.encode_put(item));
                Outcome::Put(true)
            }
            WriteOp::LocalDelete(key) => match &state.item {
                None => Outcome::Delete(false),
                Some(_) => {
                    let tombstone = Tombstone {
                        version: state.highest_version().max(floor).saturating_add(1),
                        deleted_at: now_ms.max(state.latest_time()),
                    };
                    // The entry carries the stamp so that readers need not find the
                    // tombstone, which may be collected before they read the entry.
                    plan.cdc.push(encode_stamped_delete(key, &tombstone));
                    state.delete(tombstone);
                    Outcome::Delete(true)
                }
            },
            WriteOp::Put(item) => {
                let applied = state.beats_current(&item.stamp());
                if applied {
                    state.store_item(ItemMeta::of(item), index);
                }
                Outcome::Put(applied)
            }
            WriteOp::Delete(_, tombstone) => {
                // A bare delete removes the version held, as of now (it wins the tie with
                // the item it deletes because deletes beat puts at equal version and time).
                let tombstone = tombstone.clone().or_else(|| {
                    state.item.as_ref().map(|i| Tombstone {
                        version: i.version,
                        deleted_at: now_ms.max(i.updated_at),
                    })
                });
                match tombstone {
                    Some(t) if state.beats_current(&t.stamp()) => Outcome::Delete(state.delete(t)),
                    _ => Outcome::Delete(false),
                }
            }
        };
        plan.outcomes.push(outcome);
    }

    for key in order {
        let Some(state) = working.remove(&key) else {
            continue;
        };
        if state.tombstone_changed {
            match &state.tombstone {
                Some(t) => plan.tombstones_set.push((key.clone(), t.clone())),
                None => plan.tombstones_deleted.push(key.clone()),
            }
        }
        if state.item_changed {
            let leaf_after = state.item.as_ref().map(|i| i.leaf(&key));
            match state.source {
                Some(source) if state.item.is_some() => plan.items_set.push((key.clone(), source)),
                _ => plan.items_deleted.push(key.clone()),
            }
            if leaf_after != state.leaf_before {
                plan.leaves.insert(key, leaf_after);
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests;
