//! `Sim`: one seeded run: the mesh, the workload and faults interleaved on virtual time,
//! the final heal, the quiet period and the verdict.

use crate::faults::Fault;
use crate::model::{Model, Write};
use crate::node::{Kind, Node};
use crate::rng::Rng;
use crate::scenario::Scenario;
use crate::trace::Trace;
use crate::world::World;
use crate::{SimOptions, SimReport};
use replication_testkit::MemoryStore;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Base of every node's wall clock (ms since the epoch) before its skew.
const EPOCH_MS: i64 = 1_800_000_000_000;

/// A fault in force, healed at `heal_at_ms`.
pub(crate) struct Active {
    pub(crate) id: u64,
    pub(crate) heal_at_ms: u64,
    pub(crate) fault: Fault,
}

/// See the module docs.
pub(crate) struct Sim {
    pub(crate) scenario: Scenario,
    pub(crate) world: Arc<World>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) model: Model,
    pub(crate) trace: Trace,
    pub(crate) violations: Vec<String>,
    /// Outcomes of open engine defects (see `check.rs`), reported apart.
    pub(crate) known: Vec<String>,
    pub(crate) active: Vec<Active>,
    pub(crate) next_fault_id: u64,
    /// URL generation of every (node, peer) config entry: a re-point bumps it.
    pub(crate) generations: BTreeMap<(usize, usize), u64>,
    pub(crate) faults_injected: BTreeMap<&'static str, u64>,
    work: Rng,
    pub(crate) faults: Rng,
    timing: Rng,
}

impl Sim {
    pub(crate) fn new(options: &SimOptions) -> Self {
        let root = Rng::new(options.seed);
        let scenario = Scenario::draw(&mut root.fork(1), options.nodes);
        let start = tokio::time::Instant::now();
        let clocks: Vec<crate::node::Clock> = scenario
            .skews_ms
            .iter()
            .map(|&skew| {
                let clock: crate::node::Clock = Arc::new(move || {
                    let elapsed = i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX);
                    EPOCH_MS + elapsed + skew
                });
                clock
            })
            .collect();
        let stores: Vec<MemoryStore> = clocks
            .iter()
            .enumerate()
            .map(|(i, clock)| {
                let clock = clock.clone();
                let store = MemoryStore::with_clock(move || clock());
                store.set_bare_deletes(scenario.bare_deletes(i));
                store
            })
            .collect();
        let ids = (0..scenario.nodes).map(Scenario::node_id).collect();
        let world = Arc::new(World::new(ids, stores.clone()));
        let nodes = (0..scenario.nodes)
            .map(|i| {
                Node::new(
                    i,
                    scenario.kinds[i],
                    stores[i].clone(),
                    scenario.config(i),
                    clocks[i].clone(),
                )
            })
            .collect();
        Self {
            model: Model::new(scenario.nodes),
            trace: Trace::new(options.trace),
            violations: Vec::new(),
            known: Vec::new(),
            active: Vec::new(),
            next_fault_id: 0,
            generations: BTreeMap::new(),
            faults_injected: BTreeMap::new(),
            work: root.fork(2),
            faults: root.fork(3),
            timing: root.fork(4),
            scenario,
            world,
            nodes,
        }
    }

    pub(crate) fn now(&self) -> u64 {
        self.world.now_ms()
    }

    pub(crate) fn event(&mut self, what: impl std::fmt::Display) {
        let now = self.now();
        self.trace.event(now, what);
    }

    pub(crate) async fn run(mut self) -> SimReport {
        let s = &self.scenario;
        let kinds: Vec<String> = s
            .kinds
            .iter()
            .zip(&s.skews_ms)
            .map(|(k, skew)| format!("{k:?}{skew:+}ms"))
            .collect();
        let summary = format!(
            "mesh of {} [{}], keys {:?}, cold path {} every {:?}, retention {:?}, batch {}..{}, {} steps",
            s.nodes,
            kinds.join(" "),
            s.keys,
            if s.settings.cold_path.enabled { "on" } else { "OFF" },
            s.settings.cold_path.interval,
            s.settings.tombstones.retention,
            s.settings.hot_path.batch_size,
            s.settings.hot_path.max_batch_size,
            s.steps
        );
        self.event(summary);
        for i in 0..self.nodes.len() {
            self.start_node(i).await;
        }
        for _ in 0..self.scenario.steps {
            let pause = self.timing.below(150);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            self.heal_due().await;
            for i in 0..self.nodes.len() {
                // A backend's flush timer: cursors set since are lost on a crash.
                if self.timing.percent(10) {
                    self.nodes[i].cursors.flush_now();
                }
            }
            if self.faults.percent(25) {
                self.inject().await;
            } else {
                self.write();
            }
        }
        self.heal_all().await;
        let quiet = self.scenario.quiet_period();
        self.event(format!("healed; quiet for {quiet:?}"));
        tokio::time::sleep(quiet).await;
        self.check_final().await;
        for node in &mut self.nodes {
            node.shutdown().await;
        }
        self.finish()
    }

    pub(crate) async fn start_node(&mut self, i: usize) {
        if let Err(e) = self.nodes[i].start(&self.world).await {
            self.violations
                .push(format!("n{i}: the engine failed to start: {e}"));
        }
    }

    /// One workload operation: a put (sometimes empty or big) or a delete of a random key
    /// on a random node, whatever its engine is doing.
    fn write(&mut self) {
        let node = self.work.index(self.nodes.len());
        self.write_on(node);
    }

    /// A workload write on any node but `node`.
    pub(crate) fn write_on_other_than(&mut self, node: usize) {
        let n = self.nodes.len();
        let other = (node + 1 + self.work.index(n - 1)) % n;
        self.write_on(other);
    }

    fn write_on(&mut self, node: usize) {
        let key = self.work.pick(&self.scenario.keys).clone();
        let store = self.nodes[node].store.clone();
        let prior = store.highest_held(&key);
        let at_ms = self.now();
        let delete = self.work.percent(30) && store.item(&key).is_some();
        let stamp = if delete {
            match store.delete_local(&key) {
                Some(tombstone) => tombstone.stamp(),
                None => return,
            }
        } else {
            let content = self.content(node);
            store.put_local(&key, content).stamp()
        };
        let write = Write {
            key,
            node,
            at_ms,
            stamp,
            entry: store.last_stream_id(),
            entry_gone: false,
            evidence_doubtful: delete && self.world.malformed(node),
        };
        self.event(&write);
        self.model.record(write, prior);
    }

    /// Empty, small or big content; big content stays under the content cap.
    fn content(&mut self, node: usize) -> Vec<u8> {
        match self.work.below(100) {
            0..=5 => Vec::new(),
            6..=15 => {
                let len = self.work.between(8 * 1024, 48 * 1024) as usize;
                let fill = self.work.next_u64().to_le_bytes();
                (0..len)
                    .map(|i| fill[i % 8] ^ (i / 8) as u8)
                    .collect::<Vec<u8>>()
            }
            _ => format!("n{node}-{}", self.work.below(1_000_000)).into_bytes(),
        }
    }

    fn finish(self) -> SimReport {
        let digest = self.trace.digest();
        SimReport {
            digest,
            violations: self.violations,
            explained: self.known,
            writes: self.model.writes.len(),
            faults: self.faults_injected.into_iter().collect(),
            virtual_ms: self.world.now_ms(),
            nodes: self.scenario.nodes,
            trace: self.trace.into_lines(),
        }
    }

    /// The minimal node's index, if the mesh has one.
    pub(crate) fn has_minimal(&self) -> bool {
        self.nodes.iter().any(|n| n.kind == Kind::Minimal)
    }
}
