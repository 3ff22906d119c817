//! Tombstone collection on real node stores over real redis-servers (every peer link
//! through a proxy): a key deleted, collected by its writer and written again must survive
//! on every node, also on a node that still holds the old tombstone.

#![allow(clippy::unwrap_used)]

use replication_engine::PeerConfig;
use replication_testkit::resp::{command_str, Reply};
use replication_testkit::within;
use replication_tests::{Mesh, MeshOptions, Observed, Scenario};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// What every node holds for `key`.
async fn observed(mesh: &Mesh, key: &str) -> Vec<Observed> {
    let mut all = Vec::new();
    for node in &mesh.nodes {
        all.push(node.observe(key).await.unwrap());
    }
    all
}

/// Per engine and enabled peer, the repair cycles run so far.
async fn repairs_run(mesh: &Mesh) -> Vec<u64> {
    let mut all = Vec::new();
    for node in &mesh.nodes {
        if let Some(engine) = node.engine() {
            let health = engine.health_check().await;
            all.extend(
                health
                    .peers
                    .iter()
                    .filter(|p| p.enabled)
                    .map(|p| p.repairs_run),
            );
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_written_again_after_its_tombstone_was_collected_survives_everywhere() {
    let s = Scenario::new("recreate");
    let mut options = MeshOptions::new(3);
    options.tombstone_retention = Duration::ZERO;
    let mut mesh = Mesh::start(&s, options).await;
    // Node 2 never collects: a configured peer that never completes a repair cycle (it is
    // disabled) keeps its collection horizon closed, so it keeps every tombstone.
    let mut keeps = mesh.engine_config(2);
    let mut idle = PeerConfig::new("idle", "redis://127.0.0.1:1");
    idle.enabled = false;
    keeps.peers.push(idle);
    mesh.start_engine_with(2, keeps).await;

    let writer = mesh.nodes[0].local();
    let first = writer.put("k", b"first".to_vec()).await.unwrap();
    assert!(
        within(WAIT, || async {
            observed(&mesh, "k")
                .await
                .iter()
                .all(|o| *o == Observed::Item(first.stamp()))
        })
        .await,
        "{}",
        s.context("k never reached every node")
    );
    assert!(writer.delete_item("k").await.unwrap());
    // Watched in the writer's Redis itself: reading through the store would keep states
    // for its next write to reuse, which is not what a later write normally finds.
    let writer_holds_tombstone = || {
        let reply = command_str(
            mesh.nodes[0].redis.addr(),
            &["HEXISTS", "n0:tombstones", "k"],
        );
        !matches!(reply, Ok(Reply::Int(0)))
    };
    assert!(
        within(WAIT, || async {
            let kept = mesh.nodes[2].observe("k").await.unwrap();
            !writer_holds_tombstone() && matches!(kept, Observed::Tombstone(_))
        })
        .await,
        "{}",
        s.context("the writer never collected its tombstone (or node 2 lost its own)")
    );

    let again = writer.put("k", b"again".to_vec()).await.unwrap();
    let everywhere = || async {
        observed(&mesh, "k")
            .await
            .iter()
            .all(|o| *o == Observed::Item(again.stamp()))
    };
    assert!(
        within(WAIT, everywhere).await,
        "{}",
        s.context(&format!(
            "the new write did not reach every node: {:?}",
            observed(&mesh, "k").await
        ))
    );
    // Several repair cycles later, it is still there: wait for every engine to run three
    // more cycles with every enabled peer (counted, not guessed from the interval).
    let ran_before = repairs_run(&mesh).await;
    assert!(
        within(WAIT, || async {
            repairs_run(&mesh)
                .await
                .iter()
                .zip(&ran_before)
                .all(|(now, before)| *now >= before + 3)
        })
        .await,
        "{}",
        s.context("the engines stopped running repair cycles")
    );
    assert!(
        everywhere().await,
        "{}",
        s.context(&format!(
            "the new write was deleted again: {:?}",
            observed(&mesh, "k").await
        ))
    );
    mesh.shutdown().await;
}
