//! A deterministic simulation of a whole mesh: 2 to 7 complete `replication-engine`
//! engines in one process on virtual time (a current-thread tokio runtime with the clock
//! paused), each over its own in-memory store (`MemoryStore`, or `MinimalStore` with only
//! the required `SyncEngineRef` methods), reading the others' CDC streams and trees
//! through a simulated network, checkpointing into cursor stores that lose what was not
//! flushed when the node crashes.
//!
//! Everything comes from one seed: the mesh, the settings, the workload (puts, deletes and
//! re-creates of a small overlapping key space on every node, empty and big values, clock
//! skew of up to 3 s per node), the faults interleaved with it, and the engine's own
//! jitter (`replication_core::seed_jitter`). A run's event trace has a digest; two runs of
//! one seed give the same digest. The invariants are in docs/RELIABILITY.md
//! ("Deterministic simulation"); `cargo xtask sim` runs seeds.

mod check;
mod faults;
mod inject;
mod model;
mod node;
mod rng;
mod scenario;
mod sim;
mod trace;
mod world;

use std::cell::{Cell, RefCell};

/// What to run.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Every choice of the run comes from it.
    pub seed: u64,
    /// Mesh size (2..=7); drawn from the seed when `None`.
    pub nodes: Option<usize>,
    /// Keep the readable trace (the digest is computed either way).
    pub trace: bool,
}

/// What a run found.
#[derive(Clone, Debug)]
pub struct SimReport {
    /// Digest of the event trace: equal for two runs of one seed.
    pub digest: u64,
    /// Every broken invariant, each naming keys, writes, nodes and times.
    pub violations: Vec<String>,
    /// Wrong outcomes a documented limit explains (docs/RELIABILITY.md): they do not fail a seed.
    pub explained: Vec<String>,
    /// Workload writes made.
    pub writes: usize,
    /// Faults injected, by kind.
    pub faults: Vec<(&'static str, u64)>,
    /// Virtual time the run took, in ms.
    pub virtual_ms: u64,
    /// Nodes in the mesh.
    pub nodes: usize,
    /// The event trace, when asked for.
    pub trace: Vec<String>,
}

/// The command that replays `seed` with its trace.
pub fn replay_command(seed: u64, nodes: Option<usize>) -> String {
    let nodes = nodes.map_or(String::new(), |n| format!(" --nodes {n}"));
    format!("cargo xtask sim --seed {seed}{nodes} --trace")
}

thread_local! {
    static PANICS: Cell<u64> = const { Cell::new(0) };
    static FIRST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Counts panics on the thread they happen on: a panicking tokio task does not stop the
/// runtime, so the run learns of it only this way.
fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|p| p.set(p.get() + 1));
            FIRST_PANIC.with(|first| {
                first.borrow_mut().get_or_insert_with(|| info.to_string());
            });
            previous(info);
        }));
    });
}

/// With `SIM_LOG` set (a `tracing` filter such as `replication_engine=debug`), the engines'
/// logs go to stderr; meant for one seed at a time.
fn log_if_asked() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("SIM_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .without_time()
                .with_writer(std::io::stderr)
                .try_init();
        }
    });
}

/// Runs one seed to its verdict.
pub fn run(options: &SimOptions) -> SimReport {
    count_panics();
    log_if_asked();
    PANICS.with(|p| p.set(0));
    FIRST_PANIC.with(|first| first.borrow_mut().take());
    replication_core::seed_jitter(options.seed ^ 0x6A09_E667_F3BC_C908);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds");
    let mut report = runtime.block_on(async { sim::Sim::new(options).run().await });
    drop(runtime);
    let panics = PANICS.with(Cell::get);
    if panics > 0 {
        let first = FIRST_PANIC
            .with(|first| first.borrow().clone())
            .unwrap_or_default();
        report
            .violations
            .push(format!("panic: {panics} panic(s), the first: {first}"));
    }
    report
}

/// An id short enough to print (hostile ids are kilobytes long).
pub(crate) fn short(key: &str) -> String {
    if key.len() <= 40 {
        key.to_owned()
    } else {
        format!(
            "{}... ({} bytes)",
            &key[..key.floor_char_boundary_compat(40)],
            key.len()
        )
    }
}

/// `str::floor_char_boundary` is not stable at this MSRV.
trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, index: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, index: usize) -> usize {
        (0..=index.min(self.len()))
            .rev()
            .find(|&i| self.is_char_boundary(i))
            .unwrap_or(0)
    }
}
