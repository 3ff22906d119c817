//! Mesh scenarios on Redis as production runs it: a node whose store is a Sentinel-watched
//! primary (its peers read it through Sentinel) loses that primary mid-workload; a node
//! whose store is on a Redis Cluster (its peers read it from the Cluster) sees its slot's
//! primary fail over mid-workload. Both converge to the model, and the failovers show in
//! health and metrics. Each prints its seed; `MESH_SEED` reruns one exactly.

#![allow(clippy::unwrap_used)]

use metrics_util::debugging::DebuggingRecorder;
use replication_testkit::Recorded;
use replication_tests::workload::join_all;
use replication_tests::{Backend, Mesh, MeshOptions, Model, Scenario, Workload};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for a mesh to converge after the faults end.
const CONVERGE: Duration = Duration::from_secs(90);

fn workload(s: &Scenario) -> Workload {
    let scale = usize::try_from(s.scale).unwrap();
    Workload::new("", 12 + 4 * scale, 60 * scale)
}

/// Runs the workload on the nodes `which` at once, rng streams from `round`.
fn spawn_on(
    mesh: &Mesh,
    which: &[usize],
    w: &Workload,
    model: &Model,
    round: u64,
) -> Vec<tokio::task::JoinHandle<Result<(), String>>> {
    let stores = which.iter().map(|&i| mesh.nodes[i].local()).collect();
    let rngs = which
        .iter()
        .map(|&i| mesh.scenario.rng(round * 100 + i as u64))
        .collect();
    w.spawn(stores, model, rngs)
}

/// Writes rounds of the workload on the nodes `which` until `done` is set (at least one
/// round), so that writes are in flight for the whole of a failover. Returns the rounds.
fn write_until(
    mesh: &Mesh,
    which: &[usize],
    w: &Workload,
    model: &Model,
    done: &Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    let stores: Vec<_> = which.iter().map(|&i| mesh.nodes[i].local()).collect();
    let (w, model, done) = (w.clone(), model.clone(), Arc::clone(done));
    let scenario = mesh.scenario.clone();
    let which = which.to_vec();
    tokio::spawn(async move {
        let mut round = 10;
        loop {
            let rngs = which
                .iter()
                .map(|&i| scenario.rng(round * 100 + i as u64))
                .collect();
            let context = scenario.context(&format!("writing through the failover, round {round}"));
            join_all(w.spawn(stores.clone(), &model, rngs), &context).await;
            round += 1;
            if done.load(Ordering::SeqCst) {
                return round - 10;
            }
        }
    })
}

/// Checks that every other node's engine saw node `failed`'s Redis fail over to a
/// server other than `before` (health and the failover counter), and that node
/// `failed`'s own engine saw its store move.
async fn assert_failover_shows(mesh: &Mesh, recorded: &Recorded, failed: usize, before: &str) {
    let failed_id = mesh.nodes[failed].id.clone();
    for (i, node) in mesh.nodes.iter().enumerate() {
        let health = node.engine().unwrap().health_check().await;
        if i == failed {
            assert!(
                health.sync_engine_failovers >= 1
                    && health.sync_engine_server.as_deref() != Some(before),
                "{}",
                mesh.scenario
                    .context(&format!("the store's failover must show: {health:?}"))
            );
            continue;
        }
        let peer = health
            .peers
            .iter()
            .find(|p| p.node_id == failed_id)
            .unwrap();
        assert!(
            peer.failovers >= 1 && peer.server.as_deref() != Some(before) && peer.connected,
            "{}",
            mesh.scenario.context(&format!(
                "node {i} must see the failover of its peer: {peer:?}"
            ))
        );
    }
    assert!(
        recorded.counter("replication_peer_failovers_total", &[("peer", &failed_id)]) >= 1,
        "{}",
        mesh.scenario.context("the failover counter must show it")
    );
}

/// A three-node mesh whose node 1 keeps its store on `backend`, after a first round of
/// writes on every node; and the server node 1's store was on before any failover.
async fn mesh_written_once(
    name: &str,
    backend: Backend,
    cold_path: bool,
) -> (Mesh, Model, Workload, String) {
    let s = Scenario::new(name);
    let mut options = MeshOptions::new(3);
    options.backends[1] = backend;
    options.cold_path = cold_path;
    let mesh = Mesh::start(&s, options).await;
    let model = Model::new();
    let w = workload(&s);
    join_all(
        spawn_on(&mesh, &[0, 1, 2], &w, &model, 0),
        &s.context("round 0"),
    )
    .await;
    let before = mesh.nodes[1]
        .engine()
        .unwrap()
        .health_check()
        .await
        .sync_engine_server
        .unwrap();
    (mesh, model, w, before)
}

/// After the failover: a last round of writes on every node, then the mesh converges to
/// the model and node 1's failover away from `before` shows in health and metrics.
async fn converges_after_failover(
    mut mesh: Mesh,
    model: &Model,
    w: &Workload,
    recorded: &Recorded,
    before: &str,
) {
    let s = mesh.scenario.clone();
    join_all(
        spawn_on(&mesh, &[0, 1, 2], w, model, 2),
        &s.context("round 2"),
    )
    .await;
    mesh.assert_converged(model, CONVERGE).await;
    assert_failover_shows(&mesh, recorded, 1, before).await;
    mesh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_primary_killed_mid_workload_is_followed_and_the_mesh_converges() {
    let recorder = DebuggingRecorder::new();
    let recorded = Recorded::new(recorder.snapshotter());
    let _guard = metrics::set_default_local_recorder(&recorder);
    let (mut mesh, model, w, before) = mesh_written_once("sentinel", Backend::Sentinel, true).await;

    // Node 1's own writes stop, and what its primary acknowledged reaches the replica:
    // Redis replicates asynchronously, so a write acknowledged in the last instant before
    // the primary dies is lost by design, and the model could not expect it. Nodes 0 and 2
    // keep writing through the kill, so node 1's engine is applying their changes to the
    // store (and its peers are reading its stream) when its primary dies: those are
    // retried, or repaired by the cold path when the dead primary had taken them alone.
    tokio::task::block_in_place(|| mesh.nodes[1].redis.sentinel().wait_replicated()).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let writers = write_until(&mesh, &[0, 2], &w, &model, &done);
    let promoted = tokio::task::block_in_place(|| {
        let set = mesh.nodes[1].redis.sentinel();
        let old = set.kill_primary()?;
        set.wait_failover(old)
    })
    .unwrap();
    done.store(true, Ordering::SeqCst);
    let rounds = writers.await.unwrap();
    println!("{rounds} rounds of writes on nodes 0 and 2 while node 1's primary failed over");
    assert_ne!(before, format!("127.0.0.1:{promoted}"));
    converges_after_failover(mesh, &model, &w, &recorded, &before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_failover_mid_workload_loses_nothing_and_the_mesh_converges() {
    let recorder = DebuggingRecorder::new();
    let recorded = Recorded::new(recorder.snapshotter());
    let _guard = metrics::set_default_local_recorder(&recorder);
    // A coordinated failover loses nothing, so the hot path alone must deliver every
    // write (no cold path): a write refused during the hand-over and dropped instead of
    // retried would never arrive (repair would hide it).
    let (mut mesh, model, w, before) = mesh_written_once("cluster", Backend::Cluster, false).await;
    // Every node writes while the primary of node 1's slot hands over to its replica
    // (`CLUSTER FAILOVER`: the replica catches up first, so nothing acknowledged is lost,
    // node 1's own writes included).
    let done = Arc::new(AtomicBool::new(false));
    let writers = write_until(&mesh, &[0, 1, 2], &w, &model, &done);
    let (old, new) = tokio::task::block_in_place(|| {
        let (cluster, key) = mesh.nodes[1].redis.cluster();
        let key = key.to_owned();
        cluster.failover(&key)
    })
    .unwrap();
    done.store(true, Ordering::SeqCst);
    let rounds = writers.await.unwrap();
    println!("{rounds} rounds of writes on every node while node 1's slot failed over");
    assert_eq!(before, format!("127.0.0.1:{old}"));
    assert_ne!(old, new);
    converges_after_failover(mesh, &model, &w, &recorded, &before).await;
}
