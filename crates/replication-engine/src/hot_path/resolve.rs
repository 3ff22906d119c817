//! Turning one decoded batch into the changes to apply: group the events per key, stamp
//! deletes, drop duplicates (echoes) and changes that lose the conflict order.
//!
//! Pure: the caller fetches the peer's tombstones and the local states (a store's own
//! `local_states`, or what its tree and content tell: `HeldState`), then applies what
//! [`decide_key`] says. Keeping I/O out makes every rule here testable in isolation.
//!
//! A key's events of one batch are folded in stream order, each decided against the state
//! the ones before it left ([`decide_key`]), so a batch ends exactly where reading the same
//! entries one batch each would: where the batches split never changes an outcome. (Only
//! keeping each key's last event would lose, for instance, the put a bare delete removes.)

use replication_core::{CdcDecodeError, CdcEvent, Change, HeldState, StreamId, Tombstone, Verdict};
use std::collections::HashMap;

/// One batch record as the tailer delivers it.
pub(crate) type Record = (StreamId, Result<CdcEvent, CdcDecodeError>);

/// The events of one key within a batch, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct KeyEvents {
    /// Object id.
    pub(crate) key: String,
    /// `(entry id, event)`, oldest first.
    pub(crate) events: Vec<(StreamId, CdcEvent)>,
}

impl KeyEvents {
    /// Whether a delete of this key needs the writer's evidence: a stamped DEL carries its
    /// own, a bare one (sync-engine's) does not.
    fn has_bare_delete(&self) -> bool {
        self.events
            .iter()
            .any(|(_, e)| matches!(e, CdcEvent::Delete { stamp: None, .. }))
    }
}

/// A batch grouped per key, keys in stream order of their last events.
#[derive(Debug, Default)]
pub(crate) struct Collapsed {
    /// Each key's events.
    pub(crate) keys: Vec<KeyEvents>,
    /// Entries rejected as bad input.
    pub(crate) rejected: Vec<CdcDecodeError>,
    /// Events followed by a later event for the same key in the same batch.
    pub(crate) superseded: u64,
}

impl Collapsed {
    /// Keys with a bare delete event, for the peer tombstone lookup.
    pub(crate) fn delete_keys(&self) -> Vec<String> {
        self.keys
            .iter()
            .filter(|k| k.has_bare_delete())
            .map(|k| k.key.clone())
            .collect()
    }

    /// Every key, in order, for the local state lookup.
    pub(crate) fn keys(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.key.clone()).collect()
    }
}

/// Groups a batch per key. A peer's stream is its apply order, so the events of a key are
/// kept in stream order for [`decide_key`] to fold.
pub(crate) fn collapse(records: Vec<Record>) -> Collapsed {
    let mut out = Collapsed::default();
    let mut slot_of: HashMap<String, usize> = HashMap::new();
    let mut slots: Vec<Option<KeyEvents>> = Vec::with_capacity(records.len());
    for (id, record) in records {
        let event = match record {
            Err(rejected) => {
                out.rejected.push(rejected);
                continue;
            }
            Ok(event) => event,
        };
        // A key moves to the slot of its latest event, keeping its earlier ones.
        let mut group = match slot_of.get(event.key()).and_then(|&i| slots[i].take()) {
            Some(group) => {
                out.superseded += 1;
                group
            }
            None => KeyEvents {
                key: event.key().to_owned(),
                events: Vec::new(),
            },
        };
        group.events.push((id, event));
        slot_of.insert(group.key.clone(), slots.len());
        slots.push(Some(group));
    }
    out.keys = slots.into_iter().flatten().collect();
    out
}

/// What happens to one event (or, from [`decide_key`], to one key's events).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Apply this change.
    Apply(Change),
    /// The store already holds exactly this write (an echo or a replay).
    Duplicate,
    /// The store holds a write that beats this one.
    Stale,
    /// Not applied: bad input, counted under the `reason` label.
    Refused {
        /// Object id.
        key: String,
        /// Metric label of the reason.
        reason: &'static str,
    },
}

/// What the writer of a `DEL` entry still knows about the key when we read the entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DeleteEvidence {
    /// Its tombstone: the delete's exact stamp.
    Tombstone(Tombstone),
    /// No tombstone, but it holds the key again: a later write replaced the delete there
    /// (our node stores drop a tombstone when a newer put beats it).
    Superseded,
    /// Neither tombstone nor item (a sync-engine writer keeps no tombstones, or ours was
    /// collected): the bare-delete rule.
    Bare,
    /// The writer's items could not be read for good (a permanent error): whether a later
    /// write replaced the delete there cannot be told, so the delete is not applied (the
    /// cold path compares the key later).
    Unreadable,
}

/// The stamp of a delete without a tombstone (*bare delete*, docs/PROTOCOL.md): it
/// deletes the version the store holds, at the entry's time; `None` when what the store
/// holds cannot be told.
pub(crate) fn bare_tombstone(local: &HeldState, entry_id: StreamId) -> Option<Tombstone> {
    local.held_version().map(|version| Tombstone {
        version,
        deleted_at: i64::try_from(entry_id.ms).unwrap_or(i64::MAX),
    })
}

/// The reason label of a change the store's state cannot be ordered against.
const UNDETERMINED: &str = "local_state_undetermined";

/// Decides one event against what the store holds.
pub(crate) fn decide(
    entry_id: StreamId,
    event: CdcEvent,
    local: &HeldState,
    evidence: DeleteEvidence,
) -> Decision {
    let (change, stamp) = match event {
        CdcEvent::Put(item) => {
            let stamp = item.stamp();
            (Change::Put(item), stamp)
        }
        CdcEvent::Delete {
            key,
            stamp: Some(tombstone),
        } => {
            // The entry's own stamp: exact for this delete, whatever the writer holds now
            // (its tombstone may be collected, or replaced by a later write of the key,
            // which its own entry further on brings).
            let stamp = tombstone.stamp();
            (Change::Delete { key, tombstone }, stamp)
        }
        CdcEvent::Delete { key, stamp: None } => {
            let tombstone = match evidence {
                DeleteEvidence::Tombstone(tombstone) => tombstone,
                DeleteEvidence::Superseded => return Decision::Stale,
                DeleteEvidence::Unreadable => {
                    return Decision::Refused {
                        key,
                        reason: "delete_evidence_unreadable",
                    }
                }
                DeleteEvidence::Bare => match bare_tombstone(local, entry_id) {
                    Some(tombstone) => tombstone,
                    None => {
                        return Decision::Refused {
                            key,
                            reason: UNDETERMINED,
                        }
                    }
                },
            };
            let stamp = tombstone.stamp();
            (Change::Delete { key, tombstone }, stamp)
        }
    };
    match local.judge(&stamp) {
        Verdict::Wins => Decision::Apply(change),
        Verdict::Same => Decision::Duplicate,
        Verdict::Loses => Decision::Stale,
        Verdict::Undetermined => Decision::Refused {
            key: change.key().to_owned(),
            reason: UNDETERMINED,
        },
    }
}

/// What one key's events of a batch come to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct KeyOutcome {
    /// What to do; `None` when every event was refused.
    pub(crate) decision: Option<Decision>,
    /// Events not applied as bad input: entry id and reason label.
    pub(crate) refused: Vec<(StreamId, &'static str)>,
}

/// Folds a key's events in stream order, deciding each against the state the previous ones
/// left (the store's state for the first, `HeldState::after` for the next), so the outcome
/// is the one reading them one batch each would give. The result is a single change: the
/// last one that took effect, which the store, holding the starting state, turns into the
/// same final state (each applied change beat everything before it).
pub(crate) fn decide_key(
    events: Vec<(StreamId, CdcEvent)>,
    local: HeldState,
    evidence: &DeleteEvidence,
) -> KeyOutcome {
    let mut state = local;
    let mut pending: Option<Change> = None;
    let (mut duplicate, mut decided) = (false, false);
    let mut refused = Vec::new();
    for (entry_id, event) in events {
        match decide(entry_id, event, &state, evidence.clone()) {
            Decision::Refused { reason, .. } => {
                refused.push((entry_id, reason));
                continue;
            }
            Decision::Apply(change) => {
                state = state.after(&change);
                pending = Some(change);
            }
            Decision::Duplicate => duplicate = true,
            Decision::Stale => {}
        }
        decided = true;
    }
    let decision = match pending {
        Some(change) => Some(Decision::Apply(change)),
        None if duplicate => Some(Decision::Duplicate),
        None if decided => Some(Decision::Stale),
        None => None,
    };
    KeyOutcome { decision, refused }
}

#[cfg(test)]
mod tests;
