//! Mesh scenarios on in-process engines over real redis-servers, every peer link through a
//! fault-injecting proxy: conflicting writes, partitions, delete/put races, Redis restarts
//! (data kept and lost), trimmed streams, and a local store refusing writes. Each prints
//! its seed; `MESH_SEED` reruns one exactly, `MESH_SCALE` enlarges the workload.

#![allow(clippy::unwrap_used)]

use replication_testkit::within;
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
    let rngs = (0..mesh.nodes.len() as u64)
        .map(|i| mesh.scenario.rng(round * 100 + i))
        .collect();
    join_all(
        w.spawn(stores, model, rngs),
        &mesh.scenario.context("writing"),
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_node_keeps_writing_and_converges_after_heal() {
    let s = Scenario::new("partition");
    let mut mesh = Mesh::start(&s, MeshOptions::new(3)).await;
    let model = Model::new();
    let w = workload(&s);
    write_everywhere(&mesh, &w, &model, 0).await;
    mesh.partition(2);
    // Both sides write while the partition holds; the isolated node's engine sees its
    // reads hang and time out, the majority's reads of it likewise.
    write_everywhere(&mesh, &w, &model, 1).await;
    // Keep the partition until every link to or from node 2 has noticed (peer disconnected),
    // so the heal exercises reconnection, not just a slow read.
    let saw_it = within(CONVERGE, || async {
        let mut all = true;
        for (i, node) in mesh.nodes.iter().enumerate() {
            let health = node.engine().unwrap().health_check().await;
            let expect_down = if i == 2 { 2 } else { 1 };
            all &= health.peers_total - health.peers_connected >= expect_down;
        }
        all
    })
    .await;
    assert!(
        saw_it,
        "{}",
        s.context("the partition was never noticed by the engines")
    );
    mesh.heal_all();
    write_everywhere(&mesh, &w, &model, 2).await;
    mesh.assert_converged(&model, CONVERGE).await;
    mesh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_put_races_never_resurrect_a_winning_delete() {
    let s = Scenario::new("race");
    let mut mesh = Mesh::start(&s, MeshOptions::new(3)).await;
    let model = Model::new();
    let keys: Vec<String> = (0..20 * s.scale).map(|i| format!("race.k{i}")).collect();
    let n0 = mesh.nodes[0].local();
    for key in &keys {
        workload::put(&n0, &model, key, b"original".to_vec())
            .await
            .unwrap();
    }
    mesh.assert_converged(&model, CONVERGE).await;
    // Node 1 deletes every key while node 2 overwrites them and node 0 deletes some: the
    // same key is deleted on one node and written on another at the same moment.
    let mut tasks = Vec::new();
    for (node, action) in [(1usize, "delete"), (2, "put"), (0, "mixed")] {
        let store = mesh.nodes[node].local();
        let model = model.clone();
        let keys = keys.clone();
        let mut rng = s.rng(node as u64);
        tasks.push(tokio::spawn(async move {
            use rand::Rng;
            for key in &keys {
                let delete = match action {
                    "delete" => true,
                    "put" => false,
                    _ => rng.random_bool(0.5),
                };
                if delete {
                    workload::delete(&store, &model, key).await?;
                } else {
                    workload::put(&store, &model, key, workload::content(&mut rng)).await?;
                }
                if rng.random_bool(0.3) {
                    tokio::task::yield_now().await;
                }
            }
            Ok(())
        }));
    }
    join_all(tasks, &s.context("racing")).await;
    let deletes_win = model
        .expected()
        .values()
        .filter(|st| st.is_delete())
        .count();
    println!("{} of {} keys end deleted", deletes_win, keys.len());
    mesh.assert_converged(&model, CONVERGE).await;
    // No later resurrection: after every engine has completed a repair cycle with every
    // peer since convergence, the state still matches the model.
    let since = now_ms();
    let repaired = within(CONVERGE, || async {
        let mut all = true;
        for node in &mesh.nodes {
            let health = node.engine().unwrap().health_check().await;
            all &= health.peers.iter().all(|p| {
                p.last_repair
                    .as_ref()
                    .is_some_and(|r| r.finished_at_ms > since + 100 && r.error.is_none())
            });
        }
        all
    })
    .await;
    assert!(
        repaired,
        "{}",
        s.context("repair cycles did not complete after convergence")
    );
    mesh.assert_converged(&model, CONVERGE).await;
    mesh.shutdown().await;
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

/// Restarts node 2's redis-server while the others keep writing; with persistence its data
/// comes back from its append-only file, without it the node starts empty and must be
/// repaired from its peers (and its peers must notice its stream was recreated).
async fn redis_restart(name: &str, persistence: bool) {
    let s = Scenario::new(name);
    let mut options = MeshOptions::new(3);
    options.persistence = persistence;
    let mut mesh = Mesh::start(&s, options).await;
    let model = Model::new();
    let w = workload(&s);
    write_everywhere(&mesh, &w, &model, 0).await;
    mesh.assert_converged(&model, CONVERGE).await;
    mesh.nodes[2].redis.kill();
    // Writes on the nodes that are up, while node 2's Redis is down.
    let stores = vec![mesh.nodes[0].local(), mesh.nodes[1].local()];
    join_all(
        w.spawn(stores, &model, vec![s.rng(10), s.rng(11)]),
        &s.context("writing while down"),
    )
    .await;
    mesh.nodes[2].redis.restart().unwrap();
    if !persistence {
        let empty = mesh.nodes[2].root().await;
        assert!(
            matches!(empty, Ok(None) | Err(_)),
            "{}",
            s.context("a restarted redis without persistence is empty")
        );
    }
    write_everywhere(&mesh, &w, &model, 2).await;
    mesh.assert_converged(&model, CONVERGE).await;
    mesh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_redis_restart_with_data_kept_reconnects_and_converges() {
    redis_restart("restart-kept", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_redis_restart_with_data_lost_is_repaired_from_the_others() {
    redis_restart("restart-lost", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_trimmed_past_a_lagging_cursor_is_repaired_by_the_cold_path() {
    let s = Scenario::new("trim");
    let mut options = MeshOptions::new(2);
    // No periodic repair within the test: only the repair a detected gap triggers can
    // bring the trimmed writes over.
    options.cold_interval = Duration::from_secs(3600);
    let mut mesh = Mesh::start(&s, options).await;
    let model = Model::new();
    let w = workload(&s);
    write_everywhere(&mesh, &w, &model, 0).await;
    mesh.assert_converged(&model, CONVERGE).await;
    // Node 0 stops reading node 1; node 1 writes fresh keys, then its stream is trimmed to
    // its last two entries, far past node 0's cursor.
    mesh.link(0, 1).partition();
    let n1 = mesh.nodes[1].local();
    let fresh = 30 * usize::try_from(s.scale).unwrap();
    for i in 0..fresh {
        workload::put(
            &n1,
            &model,
            &format!("trimmed.k{i}"),
            format!("lost from the stream {i}").into_bytes(),
        )
        .await
        .unwrap();
    }
    let stream = replication_core::WireKeys::new(&mesh.nodes[1].prefix).cdc();
    let trimmed = mesh.nodes[1]
        .redis
        .command(&["XTRIM", &stream, "MAXLEN", "2"])
        .unwrap();
    assert!(
        trimmed.contains(':'),
        "{}",
        s.context(&format!("XTRIM replied {trimmed}"))
    );
    mesh.link(0, 1).heal();
    mesh.assert_converged(&model, CONVERGE).await;
    let health = mesh.nodes[0].engine().unwrap().health_check().await;
    let peer = health
        .peers
        .iter()
        .find(|p| p.node_id == mesh.nodes[1].id)
        .unwrap();
    let repair = peer.last_repair.as_ref();
    assert!(
        repair.is_some_and(|r| r.items_applied > 0),
        "{}",
        s.context(&format!(
            "the trimmed writes must come from a gap-triggered repair: {peer:?}"
        ))
    );
    mesh.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_store_refusing_writes_loses_nothing_and_resumes() {
    let s = Scenario::new("backpressure");
    let mut options = MeshOptions::new(2);
    // The hot path alone must deliver everything: repair would hide a dropped event.
    options.cold_path = false;
    let mut mesh = Mesh::start(&s, options).await;
    let model = Model::new();
    let w = workload(&s);
    write_everywhere(&mesh, &w, &model, 0).await;
    mesh.assert_converged(&model, CONVERGE).await;
    mesh.nodes[0].store.set_open(false);
    write_everywhere(&mesh, &w, &model, 1).await;
    let engine = mesh.nodes[0].engine().unwrap();
    let noticed = within(CONVERGE, || async { !engine.health_check().await.ready }).await;
    assert!(
        noticed,
        "{}",
        s.context("a store refusing writes must make the node not ready")
    );
    let before = mesh.nodes[0].root().await.unwrap();
    // Nothing replicated gets in while the gate is closed (the gate refuses every write).
    assert_eq!(before, mesh.nodes[0].root().await.unwrap());
    mesh.nodes[0].store.set_open(true);
    let ready = within(CONVERGE, || async { engine.health_check().await.ready }).await;
    assert!(
        ready,
        "{}",
        s.context("the node must be ready again once its store accepts writes")
    );
    mesh.assert_converged(&model, CONVERGE).await;
    mesh.shutdown().await;
}
