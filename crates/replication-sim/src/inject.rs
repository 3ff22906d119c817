//! Injecting and healing faults (see `faults.rs` for what each one is).

use crate::faults::{Fault, Hostile, Reload};
use crate::node::Kind;
use crate::scenario::{peer_config, MAX_CONTENT_BYTES};
use crate::sim::{Active, Sim};
use bytes::Bytes;
use replication_core::{CdcEvent, PeerBackend, SyncItem};
use replication_testkit::MemoryPeer;

impl Sim {
    /// Draws and injects one fault (skipped when it makes no sense now, e.g. crashing a
    /// node that is down).
    pub(crate) async fn inject(&mut self) {
        let refusals = self.scenario.settings.cold_path.enabled;
        let fault = Fault::draw(
            &mut self.faults,
            self.nodes.len(),
            &self.scenario.keys,
            refusals,
        );
        let hold_ms = self.faults.between(100, 4000);
        if !self.applicable(&fault) {
            return;
        }
        let id = self.next_fault_id;
        self.next_fault_id += 1;
        *self.faults_injected.entry(fault.name()).or_default() += 1;
        self.event(format!("fault #{id}: {fault}"));
        self.apply(id, &fault).await;
        if !fault.is_instant() {
            let heal_at_ms = self.now() + hold_ms;
            self.active.push(Active {
                id,
                heal_at_ms,
                fault,
            });
        }
    }

    fn applicable(&self, fault: &Fault) -> bool {
        match fault {
            Fault::Crash { node } | Fault::CleanStop { node, .. } => self.nodes[*node].is_running(),
            _ => true,
        }
    }

    async fn apply(&mut self, id: u64, fault: &Fault) {
        let world = self.world.clone();
        match fault {
            Fault::Partition { a, b } => {
                world.cut(*a, *b, true);
                world.cut(*b, *a, true);
            }
            Fault::OneWay { reader, peer } => world.cut(*reader, *peer, true),
            Fault::Flapping {
                reader,
                peer,
                half_ms,
            } => world.flap(*reader, *peer, id, *half_ms),
            Fault::Slow {
                reader,
                peer,
                delay_ms,
            } => world.slow(
                *reader,
                *peer,
                id,
                Some(std::time::Duration::from_millis(*delay_ms)),
            ),
            Fault::Crash { node } => {
                self.nodes[*node].crash();
                self.check_checkpoints(*node);
            }
            Fault::CleanStop { node, hiccup } => {
                if *hiccup {
                    self.stop_after_hiccup(*node).await;
                } else {
                    self.nodes[*node].shutdown().await;
                }
                self.check_checkpoints(*node);
            }
            Fault::Trim { peer, keep } => {
                let stream = MemoryPeer::new("sim", world.stores[*peer].clone());
                stream.trim_to(*keep);
                let max_deleted = stream.stream_info().await.ok().flatten();
                let max_deleted = max_deleted.and_then(|info| info.max_deleted);
                if let Some(max) = max_deleted {
                    self.model.entries_gone(*peer, Some(max));
                }
            }
            Fault::RecreateStream { peer } => {
                MemoryPeer::new("sim", world.stores[*peer].clone()).reset_stream();
                self.model.entries_gone(*peer, None);
            }
            Fault::StoreWritesFail { node } => self.nodes[*node].store.set_failing_writes(true),
            Fault::StoreDown { node } => self.nodes[*node].store.set_failing(true),
            Fault::Backpressure { node } => self.nodes[*node].store.set_accepting_writes(false),
            Fault::ReplyLatency { node, ms } => self.nodes[*node]
                .store
                .set_reply_latency(std::time::Duration::from_millis(*ms)),
            Fault::Refuse { node, key } => {
                self.model.refused[*node].insert(key.clone());
                self.nodes[*node].store.refuse_key(key);
            }
            Fault::Reload { node, peer, change } => self.reload(*node, *peer, Some(*change)),
            Fault::Hostile { peer, kind } => self.hostile(*peer, *kind),
            Fault::MalformedTombstones { peer } => {
                world.set_malformed_tombstones(*peer, true);
                self.model.doubt_deletes(*peer);
            }
        }
    }

    async fn heal(&mut self, active: Active) {
        let world = self.world.clone();
        self.event(format!("heal #{}: {}", active.id, active.fault));
        match active.fault {
            Fault::Partition { a, b } => {
                world.cut(a, b, false);
                world.cut(b, a, false);
            }
            Fault::OneWay { reader, peer } => world.cut(reader, peer, false),
            Fault::Flapping { reader, peer, .. } => world.unflap(reader, peer, active.id),
            Fault::Slow { reader, peer, .. } => world.slow(reader, peer, active.id, None),
            Fault::Crash { node } | Fault::CleanStop { node, .. } => {
                if !self.nodes[node].is_running() {
                    self.start_node(node).await;
                }
            }
            Fault::StoreWritesFail { node } => self.nodes[node].store.set_failing_writes(false),
            Fault::StoreDown { node } => self.nodes[node].store.set_failing(false),
            Fault::Backpressure { node } => self.nodes[node].store.set_accepting_writes(true),
            Fault::ReplyLatency { node, .. } => self.nodes[node]
                .store
                .set_reply_latency(std::time::Duration::ZERO),
            Fault::Refuse { node, key } => self.nodes[node].store.allow_key(&key),
            Fault::Reload { node, peer, .. } => self.reload(node, peer, None),
            Fault::MalformedTombstones { peer } => world.set_malformed_tombstones(peer, false),
            Fault::Trim { .. } | Fault::RecreateStream { .. } | Fault::Hostile { .. } => {}
        }
    }

    /// Heals every fault whose time has come, oldest first.
    pub(crate) async fn heal_due(&mut self) {
        let now = self.now();
        while let Some(pos) = self.active.iter().position(|a| a.heal_at_ms <= now) {
            let active = self.active.remove(pos);
            self.heal(active).await;
        }
    }

    /// Heals everything: the mesh is judged only after the last fault is gone.
    pub(crate) async fn heal_all(&mut self) {
        while !self.active.is_empty() {
            let active = self.active.remove(0);
            self.heal(active).await;
        }
        self.world.heal_network();
        for node in &self.nodes {
            let store = &node.store;
            store.set_failing(false);
            store.set_failing_writes(false);
            store.set_accepting_writes(true);
            store.set_reply_latency(std::time::Duration::ZERO);
            for key in &self.model.refused[node.index] {
                store.allow_key(key);
            }
        }
        for i in 0..self.nodes.len() {
            if !self.nodes[i].is_running() {
                self.start_node(i).await;
            }
        }
    }

    /// A clean stop right after the store failed writes while peers wrote: what the hot
    /// path had in flight must land during the drain (the store is back and the drain
    /// budget outlasts any retry delay), not be dropped with its cursor.
    async fn stop_after_hiccup(&mut self, node: usize) {
        let store = self.nodes[node].store.clone();
        let failing_writes = self
            .active
            .iter()
            .any(|a| matches!(a.fault, Fault::StoreWritesFail { node: n } if n == node));
        let other_store_fault = failing_writes
            || self
                .active
                .iter()
                .any(|a| matches!(a.fault, Fault::StoreDown { node: n } if n == node));
        let s = &self.scenario.settings;
        let longest_wait = s
            .sync_engine
            .retry_max_delay
            .max(s.sync_engine.circuit_open_for);
        let drain = s.shutdown_timeout;
        // Repair writes that fail are given up with their cycle (by design); judge only
        // meshes where the hot path is the one writer.
        let judged = !other_store_fault
            && !s.cold_path.enabled
            && drain > longest_wait + std::time::Duration::from_millis(300);
        let repairs_before = self.nodes[node].repairs_run().await;
        store.set_recording_failed_writes(true);
        store.set_failing_writes(true);
        for _ in 0..3 {
            self.write_on_other_than(node);
        }
        let hiccup = self.faults.between(20, 300);
        tokio::time::sleep(std::time::Duration::from_millis(hiccup)).await;
        if !failing_writes {
            store.set_failing_writes(false);
        }
        // Gap repairs run with the cold path disabled too; a repair write that failed is
        // given up with its cycle (by design), so a hiccup a cycle ran into is not judged.
        let repaired_meanwhile = self.nodes[node].repairs_run().await != repairs_before;
        let judged = judged && !repaired_meanwhile;
        self.nodes[node].shutdown().await;
        let failed = store.take_failed_writes();
        store.set_recording_failed_writes(false);
        if !judged {
            return;
        }
        let exempt = if self.has_minimal() {
            self.model.equal_version_keys()
        } else {
            Default::default()
        };
        for (key, stamp) in failed {
            if self.model.refused[node].contains(&key) || exempt.contains(&key) {
                continue;
            }
            let held = store.highest_held(&key);
            if held.as_ref().is_none_or(|held| *held < stamp) {
                let what = self.model.describe(&key, &stamp);
                self.violations.push(format!(
                    "clean stop dropped a change in flight: n{node}'s write of {what} failed during a {hiccup} ms store hiccup and was not retried during the drain ({drain:?}), though the store was back"
                ));
            }
        }
    }

    /// Applies `change` to `node`'s entry for `peer`, or restores it (`None`).
    fn reload(&mut self, node: usize, peer: usize, change: Option<Reload>) {
        let generation = self.generations.entry((node, peer)).or_insert(0);
        if change == Some(Reload::Repoint) {
            *generation += 1;
        }
        let entry = peer_config(peer, *generation);
        let mut config = self.nodes[node].config.clone();
        config.peers.retain(|p| p.node_id != entry.node_id);
        match change {
            Some(Reload::Remove) => {}
            Some(Reload::Disable) => config.peers.push(replication_core::PeerConfig {
                enabled: false,
                ..entry
            }),
            Some(Reload::Repoint) | None => config.peers.push(entry),
        }
        config.peers.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        self.nodes[node].reload(config);
    }

    /// Appends one hostile entry to `peer`'s stream. None of them is a workload write, so
    /// any trace of one in a store is a violation.
    fn hostile(&mut self, peer: usize, kind: Hostile) {
        let stream = MemoryPeer::new("sim", self.world.stores[peer].clone());
        let field = |name: &'static str, value: &[u8]| {
            (
                Bytes::from_static(name.as_bytes()),
                Bytes::from(value.to_vec()),
            )
        };
        let now = (self.nodes[peer].clock)();
        match kind {
            Hostile::BadFields => {
                stream.append_raw(vec![
                    field("op", b"PUT"),
                    field("key", b"zz.bad"),
                    field("hash", b"not-a-hash"),
                    field("data", b"x"),
                    field("meta", b"{\"version\":"),
                ]);
                // A delete of a workload key whose stamp does not parse: taken as a bare
                // delete it would remove a write the model says must survive.
                let key = self.scenario.keys[0].clone();
                stream.append_raw(vec![
                    field("op", b"DEL"),
                    field("key", key.as_bytes()),
                    field("meta", b"{\"version\":\"x\"}"),
                ]);
            }
            Hostile::Junk => {
                stream.append_raw(vec![field("\u{1}", &[0xff, 0x00, 0xfe])]);
            }
            Hostile::UnknownOp => {
                stream.append_raw(vec![field("op", b"FROB"), field("key", b"zz.op")]);
            }
            Hostile::HashMismatch => {
                let mut item = SyncItem::new("zz.hash", b"claimed".to_vec(), 1, now);
                item.content = b"delivered".to_vec();
                stream.append_event(&CdcEvent::Put(item));
            }
            Hostile::OversizedId => {
                let key = vec!["zz"; 700].join(".");
                stream.append_event(&CdcEvent::Put(SyncItem::new(key, b"v".to_vec(), 1, now)));
            }
            Hostile::OversizedValue => {
                let len = MAX_CONTENT_BYTES * 2;
                let content: Vec<u8> = (0..len).map(|i| (i * 7919 % 251) as u8).collect();
                stream.append_event(&CdcEvent::Put(SyncItem::new("zz.big", content, 1, now)));
            }
        }
    }

    /// At a crash or stop: every checkpointed cursor of `node` covers only changes the
    /// node has applied (or that lost to what it holds).
    pub(crate) fn check_checkpoints(&mut self, node: usize) {
        let minimal = self.nodes[node].kind == Kind::Minimal;
        let exempt = if self.has_minimal() {
            self.model.equal_version_keys()
        } else {
            Default::default()
        };
        let store = self.nodes[node].store.clone();
        let mut found = Vec::new();
        for cursor in self.nodes[node].cursors.durable_cursors() {
            let Some(peer) = self.world.index_of(&cursor.peer_id) else {
                continue;
            };
            let covered = self.model.entries_up_to(peer, cursor.stream_id);
            for write in &covered {
                // A later write of the key in the same stretch of stream supersedes it: the
                // engine folds a key's events and may apply only the last.
                let superseded = covered
                    .iter()
                    .any(|w| w.key == write.key && w.stamp > write.stamp);
                if superseded
                    || write.stamp.is_delete()
                    || self.model.refused[node].contains(&write.key)
                    || exempt.contains(&write.key)
                {
                    continue;
                }
                let held = store.highest_held(&write.key);
                let applied = held.as_ref().is_some_and(|held| {
                    *held >= write.stamp || (minimal && held.version >= write.stamp.version)
                });
                if !applied {
                    let held = held.map_or("nothing".to_owned(), |h| {
                        self.model.describe(&write.key, &h)
                    });
                    found.push(format!(
                        "checkpoint ahead of data: n{node}'s cursor for n{peer} is {}, past {write}, but n{node} has held at most {held}",
                        cursor.stream_id
                    ));
                }
            }
        }
        self.violations.extend(found);
    }
}
