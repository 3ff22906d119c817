//! Mesh fault-injection harness: N nodes (private redis-server + node store + engine), a
//! fault-injecting proxy on every engine→peer link, a seeded workload with a model of the
//! expected winner per key, and a checker that compares every node against the model.
//!
//! The scenarios live in `tests/`; docs/RELIABILITY.md maps each fault to its test.
//! Nodes run by real daemons (`daemon_node`, over the testkit's `Daemon`) and a headless
//! browser (`browser`) serve the operator's tests: the status page, `diff` and the runtime
//! controls.

pub mod backend;
pub mod browser;
pub mod daemon_node;
pub mod fuzz_checks;
pub mod gate;
pub mod mesh;
pub mod model;
pub mod scenario;
pub mod workload;

pub use backend::{Backend, NodeRedis};
pub use gate::Gate;
pub use mesh::{Mesh, MeshOptions, Node};
pub use model::{Model, Observed};
pub use replication_testkit::{FaultProxy, LinkMode};
pub use scenario::Scenario;
pub use workload::Workload;
