//! Mesh scenarios on in-process engines over real redis-servers, every peer link through a
//! fault-injecting proxy: conflicting writes, partitions, delete/put races, Redis restarts
//! (data kept and lost), trimmed streams, and a local store refusing writes. Each prints
//! its seed; `MESH_SEED` reruns one exactly, `MESH_SCALE` enlarges the workload.

#![allow(clippy::unwrap_used)]

use replication_tests::mesh::eventually;
use replication_tests::workload::{self, join_all};
use replication_tests::{Mesh, MeshOptions, Model, Scenario, Workload};
use std::time::Duration;

/// Longest wait for a mesh to converge after the faults end.
const CONVERGE: Duration = Duration::from_secs(60);

fn workload(s: &Scenario) -> Workload {
    let scale = usize::try_from(s.scale).unwrap();
    Workload::new("", 12 + 4 * scale, 60 * scale)
}

/// Runs the workload on every node of `mesh` at once.
async fn write_everywhere(mesh: &Mesh, w: &Workload, model: &Model, round: u64) {
    let stores = mesh.nodes.iter().map(|n| n.local()).collect();
    let rngs = (0..mesh.nodes.len() as u64).map(|i| mesh.scenario.rng(round * 100 + i)).collect();
    join_all(w.spawn(stores, model, rngs), &mesh.scenario.context("writing")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_converge_under_concurrent_conflicting_writes() {
    let s = Scenario::new("conflicts");
    let mut mesh = Mesh::start(&s, MeshOptions::new(3)).await;
    let model = Model::new();
    write_everywhere(&mesh, &workload(&s), &model, 0).await;
    mesh.assert_converged(&model, CONVERGE).await;
    mesh.shutdown().await;
}
