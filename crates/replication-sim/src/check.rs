//! The verdict after the quiet period: convergence, the model's winners, causality,
//! hostile input kept out, hot paths caught up, resources bounded.

use crate::sim::Sim;
use replication_core::{PeerBackend, Stamp};
use replication_testkit::MemoryPeer;

/// Tasks one engine may run: reload and sampler, and per peer its hot path, cold path,
/// the tailer's reading and decoding tasks, and the two reads of paired reads (a tailer
/// that paired them across a slow link keeps both waiting at the peer while idle).
fn task_bound(peers: usize) -> usize {
    2 + 6 * peers
}

impl Sim {
    pub(crate) async fn check_final(&mut self) {
        let exempt = if self.has_minimal() {
            self.model.equal_version_keys()
        } else {
            Default::default()
        };
        let mut found = Vec::new();
        let mut known = Vec::new();
        // Keys whose outcome a documented limit explains: their trees
        // differ, so the roots are not compared either.
        let mut explained = false;
        for (key, why) in &self.model.causality {
            if !exempt.contains(key) {
                found.push(why.clone());
            }
        }
        for key in self.model.keys() {
            if exempt.contains(key) {
                continue;
            }
            let Some(winner) = self.model.winner(key) else {
                continue;
            };
            let mut wrong = Vec::new();
            for node in &self.nodes {
                let held = node.store.item(key);
                let i = node.index;
                match (winner.stamp.is_delete(), held) {
                    (true, Some(item)) if self.written_after_collection(winner, &item.stamp()) => {
                        explained = true;
                        known.push(format!(
                            "{key}: n{i} holds {}, a write made after the winner {winner} was collected everywhere (no node keeps evidence of the delete; every node holds the write)",
                            self.model.describe(key, &item.stamp())
                        ));
                    }
                    (true, Some(item))
                        if node.kind == crate::node::Kind::Minimal
                            && !self.scenario.settings.cold_path.enabled =>
                    {
                        explained = true;
                        known.push(format!(
                            "deleted key came back: {key}: n{i} holds {}, but the winner is {winner} (documented: a minimal store keeps no tombstones, so an older put read after the delete is applied, and a mesh that repairs only gaps never removes it)",
                            self.model.describe(key, &item.stamp())
                        ));
                    }
                    (true, Some(item)) if self.delete_never_reached(winner, node) => {
                        explained = true;
                        known.push(format!(
                            "deleted key came back: {key}: n{i} holds {}, but the winner is {winner} (documented: its DEL was lost to a trim or a recreated stream before n{i} read it, and its writer collected the tombstone)",
                            self.model.describe(key, &item.stamp())
                        ));
                    }
                    (true, Some(item)) => wrong.push(format!(
                        "deleted key came back: {key}: n{i} holds {}, but the winner is {winner}",
                        self.model.describe(key, &item.stamp())
                    )),
                    (false, None) => wrong.push(format!(
                        "acknowledged write lost: {key}: n{i} holds nothing, but the winner is {winner}"
                    )),
                    (false, Some(item)) if item.stamp() != winner.stamp => wrong.push(format!(
                        "wrong winner: {key}: n{i} holds {}, but the winner is {winner}",
                        self.model.describe(key, &item.stamp())
                    )),
                    _ => {}
                }
            }
            if wrong.is_empty() {
                continue;
            }
            match self.excuse(key) {
                Some(why) => {
                    explained = true;
                    known.extend(wrong.into_iter().map(|w| format!("{w} ({why})")));
                }
                None => found.extend(wrong),
            }
        }
        let modelled: std::collections::BTreeSet<&String> = self.model.keys().collect();
        for node in &self.nodes {
            for item in node.store.items() {
                if !modelled.contains(&item.key) {
                    found.push(format!(
                        "hostile input applied: n{} holds {} (no workload write)",
                        node.index,
                        crate::short(&item.key)
                    ));
                }
            }
        }
        let roots: Vec<_> = self.nodes.iter().map(|n| n.store.root()).collect();
        let root_line: Vec<String> = roots
            .iter()
            .map(|r| r.map_or("-".to_owned(), |r| hex4(&r)))
            .collect();
        self.event(format!("roots {}", root_line.join(" ")));
        if exempt.is_empty() && !explained && roots.windows(2).any(|w| w[0] != w[1]) {
            found.push(format!("Merkle roots differ: {}", root_line.join(" ")));
        }
        self.check_caught_up(&mut found, &mut known, !exempt.is_empty())
            .await;
        self.check_bounded(&mut found);
        if !exempt.is_empty() {
            self.event(format!(
                "documented limit: {} key(s) with equal-version writes in a mesh with a minimal store not judged: {exempt:?}",
                exempt.len()
            ));
        }
        for why in &found {
            self.event(format!("VIOLATION {why}"));
        }
        for why in &known {
            self.event(format!("EXPLAINED {why}"));
        }
        self.violations.extend(found);
        self.known.extend(known);
    }

    /// Why a wrong outcome at `key` is not a new defect, if it is not: one of its deletes
    /// went without evidence, by a malformed tombstone read for a bare DEL (the documented
    /// bare-delete rule, judged by wall clocks).
    fn excuse(&self, key: &str) -> Option<&'static str> {
        self.model
            .deletes_of(key)
            .any(|delete| delete.evidence_doubtful)
            .then_some("documented: a delete read without its malformed tombstone follows the bare-delete rule")
    }

    /// Not a defect: `held` is a put made after the winning delete by a node that had not
    /// seen it, arriving once every node had collected the delete's tombstone. Nothing is
    /// left to order it against, and the mesh agrees on it: every node holds exactly it.
    /// (A node that had seen the delete would have written above it: the causality check.)
    fn written_after_collection(&self, winner: &crate::model::Write, held: &Stamp) -> bool {
        let key = &winner.key;
        let made_later = self
            .model
            .origin(key, held)
            .is_some_and(|write| write.at_ms > winner.at_ms);
        made_later
            && self.nodes.iter().all(|n| {
                n.store.tombstone(key).is_none()
                    && n.store.item(key).is_some_and(|item| item.stamp() == *held)
            })
    }

    /// The documented open window (docs/RELIABILITY.md, "Found by the simulator"): `node`
    /// never held the winning delete, whose entry was lost to a trim or a recreated stream
    /// before it read it; an older put of the key from a third node's stream then met no
    /// evidence here, and nothing removes it: the deleter has collected its tombstone, or
    /// the mesh repairs only gaps (one cycle, which found the key absent here).
    fn delete_never_reached(&self, winner: &crate::model::Write, node: &crate::node::Node) -> bool {
        let key = &winner.key;
        let deleter = &self.nodes[winner.node].store;
        let collected =
            deleter.tombstone(key).is_none() && deleter.version_floor() >= winner.stamp.version;
        let gaps_only = !self.scenario.settings.cold_path.enabled;
        winner.entry_gone
            && node
                .store
                .highest_held(key)
                .is_none_or(|held| held < winner.stamp)
            && (collected || gaps_only)
    }

    /// No stall: once healed, every hot path has read its peer's stream to the end. With
    /// keys the equal-version limit exempts (`limited`), trees can stay apart for good, so
    /// a repair cycle never completes and a cursor held at a gap until one does stays
    /// there: explained, not a stall.
    async fn check_caught_up(
        &mut self,
        found: &mut Vec<String>,
        known: &mut Vec<String>,
        limited: bool,
    ) {
        for reader in &self.nodes {
            for peer in 0..self.nodes.len() {
                if peer == reader.index {
                    continue;
                }
                let stream = MemoryPeer::new("sim", self.world.stores[peer].clone());
                let Ok(Some(info)) = stream.stream_info().await else {
                    continue;
                };
                let Some(last) = info.last_entry else {
                    continue;
                };
                let peer_id = crate::scenario::Scenario::node_id(peer);
                let cursor = reader.cursors.latest(&peer_id).map(|c| c.stream_id);
                if cursor.is_none_or(|c| c < last) {
                    if limited && reader.gap_unrepaired(&peer_id).await {
                        known.push(format!(
                            "n{} holds its cursor of n{peer} at a gap: its repair cannot complete while the exempt keys keep the trees apart",
                            reader.index
                        ));
                        continue;
                    }
                    found.push(format!(
                        "stall: n{} has read n{peer}'s stream up to {}, which ends at {last}",
                        reader.index,
                        cursor.map_or("nothing".to_owned(), |c| c.to_string())
                    ));
                }
            }
        }
    }

    /// Bounded resources: tasks, peers and tombstones do not grow with the faults.
    fn check_bounded(&mut self, found: &mut Vec<String>) {
        let n = self.nodes.len();
        let alive = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        let bound = n * task_bound(n - 1);
        self.event(format!("tasks alive {alive} (bound {bound})"));
        if alive > bound {
            found.push(format!(
                "resources: {alive} tasks alive, more than {bound} for {n} engines"
            ));
        }
        for node in &self.nodes {
            let peers = node.peers_configured();
            if peers != n - 1 {
                found.push(format!(
                    "resources: n{} has {peers} peers configured, not {}",
                    node.index,
                    n - 1
                ));
            }
            let tombstones = node.store.tombstones().len();
            if tombstones > self.scenario.keys.len() {
                found.push(format!(
                    "resources: n{} keeps {tombstones} tombstones for {} keys",
                    node.index,
                    self.scenario.keys.len()
                ));
            }
        }
    }
}

fn hex4(hash: &[u8; 32]) -> String {
    hash[..4].iter().map(|b| format!("{b:02x}")).collect()
}
