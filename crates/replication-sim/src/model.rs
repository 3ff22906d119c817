//! `Model`: every write the workload made, what each node had applied of its key when it
//! made it (per-key causality), and the state the mesh must end in.
//!
//! The expected value of a key is the greatest write in the conflict order
//! (`replication_core::Stamp`). Causality is part of the model: a write made on a node
//! after it applied write W of the same key must beat W (docs/PROTOCOL.md, "Versions never
//! go backwards"); otherwise the writer's acknowledged write would lose to a write it had
//! already seen. Each write is checked against the greatest stamp its node ever held for
//! the key (collected tombstones included) at the moment it was made.

use replication_core::{Stamp, StreamId};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One write of the workload.
#[derive(Clone, Debug)]
pub(crate) struct Write {
    pub(crate) key: String,
    pub(crate) node: usize,
    pub(crate) at_ms: u64,
    pub(crate) stamp: Stamp,
    /// Its entry in the writer's CDC stream.
    pub(crate) entry: StreamId,
    /// Its entry was trimmed away or its stream recreated before the check that names it.
    pub(crate) entry_gone: bool,
    /// A delete whose tombstone its readers may have found malformed: they then follow
    /// the bare-delete rule (docs/PROTOCOL.md, "How a delete travels").
    pub(crate) evidence_doubtful: bool,
}

impl fmt::Display for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} v{} t{} on n{} at {} ms (entry {})",
            if self.stamp.is_delete() { "DEL" } else { "PUT" },
            self.key,
            self.stamp.version,
            self.stamp.updated_at,
            self.node,
            self.at_ms,
            self.entry
        )
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Model {
    pub(crate) writes: Vec<Write>,
    by_key: BTreeMap<String, Vec<usize>>,
    /// Causality violations found as writes were made, with the key they concern.
    pub(crate) causality: Vec<(String, String)>,
    /// Keys each node has been told to refuse at some point (index = node).
    pub(crate) refused: Vec<BTreeSet<String>>,
}

impl Model {
    pub(crate) fn new(nodes: usize) -> Self {
        Self {
            refused: vec![BTreeSet::new(); nodes],
            ..Self::default()
        }
    }

    /// The write of `key` with exactly this stamp, if the workload made it.
    pub(crate) fn origin(&self, key: &str, stamp: &Stamp) -> Option<&Write> {
        self.by_key
            .get(key)?
            .iter()
            .map(|&i| &self.writes[i])
            .find(|w| w.stamp == *stamp)
    }

    /// Describes a stamp held somewhere: the write it is, or the stamp alone (a tombstone
    /// a store made up for a bare delete).
    pub(crate) fn describe(&self, key: &str, stamp: &Stamp) -> String {
        match self.origin(key, stamp) {
            Some(write) => write.to_string(),
            None => format!(
                "{} {key} v{} t{} (made by a store, no workload write)",
                if stamp.is_delete() {
                    "tombstone"
                } else {
                    "item"
                },
                stamp.version,
                stamp.updated_at
            ),
        }
    }

    /// Records a write; `prior` is the greatest stamp its node ever held for the key.
    pub(crate) fn record(&mut self, write: Write, prior: Option<Stamp>) {
        if let Some(prior) = prior.filter(|p| !write.stamp.beats(p)) {
            let seen = self.describe(&write.key, &prior);
            self.causality.push((
                write.key.clone(),
                format!(
                    "causality: {write} was made after its node applied {seen}, but does not beat it"
                ),
            ));
        }
        self.by_key
            .entry(write.key.clone())
            .or_default()
            .push(self.writes.len());
        self.writes.push(write);
    }

    /// Entries of `node` up to `max_deleted` were trimmed (or all, for a recreated stream).
    pub(crate) fn entries_gone(&mut self, node: usize, up_to: Option<StreamId>) {
        for write in self.writes.iter_mut().filter(|w| w.node == node) {
            if up_to.is_none_or(|max| write.entry <= max) {
                write.entry_gone = true;
            }
        }
    }

    /// Every delete `node` made so far may be read without its tombstone.
    pub(crate) fn doubt_deletes(&mut self, node: usize) {
        for write in self.writes.iter_mut() {
            if write.node == node && write.stamp.is_delete() {
                write.evidence_doubtful = true;
            }
        }
    }

    /// Deletes of `key`.
    pub(crate) fn deletes_of(&self, key: &str) -> impl Iterator<Item = &Write> {
        self.by_key
            .get(key)
            .into_iter()
            .flatten()
            .map(|&i| &self.writes[i])
            .filter(|w| w.stamp.is_delete())
    }

    /// The write every node must end with for `key`: the greatest in the conflict order.
    pub(crate) fn winner(&self, key: &str) -> Option<&Write> {
        self.by_key
            .get(key)?
            .iter()
            .map(|&i| &self.writes[i])
            .max_by(|a, b| a.stamp.cmp(&b.stamp))
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &String> {
        self.by_key.keys()
    }

    /// Keys where two different writes carry one version: there a minimal store orders
    /// by content hash alone and may keep another winner than a full store
    /// (docs/PROTOCOL.md, "Stores with only the required methods"), and its bare deletes
    /// lose the deleted version.
    pub(crate) fn equal_version_keys(&self) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        for (key, writes) in &self.by_key {
            let mut versions = BTreeSet::new();
            for &i in writes {
                if !versions.insert(self.writes[i].stamp.version) {
                    keys.insert(key.clone());
                }
            }
        }
        keys
    }

    /// Writes of `peer` at or before `cursor` whose entries are still in its stream.
    pub(crate) fn entries_up_to(&self, peer: usize, cursor: StreamId) -> Vec<&Write> {
        self.writes
            .iter()
            .filter(|w| w.node == peer && w.entry <= cursor && !w.entry_gone)
            .collect()
    }
}
