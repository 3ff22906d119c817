//! A seeded random workload: puts and deletes of a small, overlapping key space (so nodes
//! conflict constantly, and some ids are both item and parent), each committed write
//! recorded in the [`Model`].

use crate::model::Model;
use rand::rngs::StdRng;
use rand::{Rng, RngCore};
use replication_core::{Retriable, SyncEngineRef};
use replication_node::NodeStore;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Shape of the workload.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Keys every node writes.
    pub keys: Vec<String>,
    /// Operations per node.
    pub ops: usize,
    /// Percentage of operations that are deletes.
    pub delete_percent: u32,
    /// Longest pause between two operations of one node (random in [0, max]).
    pub max_pause: Duration,
}

impl Workload {
    /// `keys` keys named `{prefix}k{i}` (every third also has a child `.c`, so the id is
    /// both item and parent), `ops` operations per node, 25% deletes.
    pub fn new(prefix: &str, keys: usize, ops: usize) -> Self {
        let mut names = Vec::new();
        for i in 0..keys {
            names.push(format!("{prefix}k{i}"));
            if i % 3 == 0 {
                names.push(format!("{prefix}k{i}.c"));
            }
        }
        Self {
            keys: names,
            ops,
            delete_percent: 25,
            max_pause: Duration::from_millis(3),
        }
    }

    /// Runs the workload on `store`, recording every committed write in `model`.
    ///
    /// # Errors
    /// A write that still fails after retrying for 10 s, described.
    pub async fn run(&self, store: NodeStore, model: Model, mut rng: StdRng) -> Result<(), String> {
        for _ in 0..self.ops {
            let key = &self.keys[rng.random_range(0..self.keys.len())];
            if rng.random_range(0..100) < self.delete_percent {
                delete(&store, &model, key).await?;
            } else {
                put(&store, &model, key, content(&mut rng)).await?;
            }
            let pause = rng.random_range(0..=self.max_pause.as_micros() as u64);
            tokio::time::sleep(Duration::from_micros(pause)).await;
        }
        Ok(())
    }

    /// Spawns [`run`](Self::run) on each store, with rng stream `streams[i]` for store i.
    pub fn spawn(
        &self,
        stores: Vec<NodeStore>,
        model: &Model,
        rngs: Vec<StdRng>,
    ) -> Vec<JoinHandle<Result<(), String>>> {
        stores
            .into_iter()
            .zip(rngs)
            .map(|(store, rng)| {
                let this = self.clone();
                let model = model.clone();
                tokio::spawn(async move { this.run(store, model, rng).await })
            })
            .collect()
    }
}

/// Waits for spawned workloads; panics with `context` on the first failure.
pub async fn join_all(handles: Vec<JoinHandle<Result<(), String>>>, context: &str) {
    for handle in handles {
        match handle.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{context}: workload failed: {e}"),
            Err(e) => panic!("{context}: workload task panicked: {e}"),
        }
    }
}

/// Random content: short or long (long content is compressed on the wire), text or bytes.
pub fn content(rng: &mut StdRng) -> Vec<u8> {
    let len = if rng.random_bool(0.3) {
        rng.random_range(64..600)
    } else {
        rng.random_range(1..64)
    };
    if rng.random_bool(0.5) {
        let word = format!("v{} ", rng.random::<u16>());
        word.repeat(len / word.len() + 1).into_bytes()
    } else {
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        bytes
    }
}

/// Runs `call` until it succeeds, retrying while the store reports a retriable error (a
/// failover, say) for up to 10 s; otherwise the last error, after `what`.
async fn retrying<T, E, F, Fut>(what: impl Fn() -> String, mut call: F) -> Result<T, String>
where
    E: Retriable + std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(e) if e.is_retriable() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(format!("{}: {e}", what())),
        }
    }
}

/// A local put, retried while the store reports a retriable error; recorded in `model`.
///
/// # Errors
/// The last error, after 10 s of retries or at once when it is permanent.
pub async fn put(
    store: &NodeStore,
    model: &Model,
    key: &str,
    content: Vec<u8>,
) -> Result<(), String> {
    let item = retrying(|| format!("put {key}"), || store.put(key, content.clone())).await?;
    model.record(key, item.stamp());
    Ok(())
}

/// A local delete, retried like [`put`]; the tombstone it left is recorded in `model`.
///
/// # Errors
/// As [`put`].
pub async fn delete(store: &NodeStore, model: &Model, key: &str) -> Result<(), String> {
    let existed = retrying(|| format!("delete {key}"), || store.delete_item(key)).await?;
    if existed {
        // A replicated write may already have replaced our tombstone; whatever is there
        // now is a real write too, so recording it keeps the model exact. Read with the
        // same retries: the delete may have landed just before a failover.
        let keys = [key.to_owned()];
        let tombstones = retrying(
            || format!("reading the tombstone of {key}"),
            || store.get_tombstones(&keys),
        )
        .await?;
        if let Some(Some(t)) = tombstones.into_iter().next() {
            model.record(key, t.stamp());
        }
    }
    Ok(())
}
