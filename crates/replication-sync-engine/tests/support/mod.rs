//! One sync-engine node for a test: a private redis-server (vanilla, no modules), a SQLite
//! file and a WAL file in a temp dir, a started `SyncEngine` with its CDC stream on and its
//! `run` loop spawned (as a daemon runs it), and the adapter over it. Restartable against the
//! same Redis and files.

#![allow(dead_code, unreachable_pub)]

use redis::aio::MultiplexedConnection;
use replication_sync_engine::sync_engine::{SyncEngine, SyncEngineConfig};
use replication_sync_engine::SyncEngineStore;
use replication_testkit::RedisServer;
use std::sync::Arc;
use tempfile::TempDir;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running sync-engine node.
pub struct SyncNode {
    pub redis: RedisServer,
    pub dir: TempDir,
    pub config: SyncEngineConfig,
    pub store: Arc<SyncEngineStore>,
    run: Option<JoinHandle<()>>,
    _config_tx: watch::Sender<SyncEngineConfig>,
}

impl SyncNode {
    /// A node whose keys start with `prefix`, on a fresh redis-server and fresh files.
    pub async fn start(prefix: &str) -> Self {
        Self::start_with(prefix, |_| {}).await
    }

    /// As [`start`](Self::start), with the configuration adjusted by `tune`.
    pub async fn start_with(prefix: &str, tune: impl FnOnce(&mut SyncEngineConfig)) -> Self {
        let redis = RedisServer::builder()
            .persistence(true)
            .start()
            .expect("starting redis-server (install it or run `cargo xtask test`)");
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut config = SyncEngineConfig {
            redis_url: Some(redis.url()),
            redis_prefix: Some(prefix.to_owned()),
            sql_url: Some(format!(
                "sqlite:{}?mode=rwc",
                dir.path().join("sync.db").display()
            )),
            wal_path: Some(dir.path().join("wal.db").display().to_string()),
            enable_cdc_stream: true,
            ..SyncEngineConfig::default()
        };
        tune(&mut config);
        let (store, run, tx) = open(&config).await;
        Self {
            redis,
            dir,
            config,
            store,
            run: Some(run),
            _config_tx: tx,
        }
    }

    /// Shuts sync-engine down (its final flush) and starts a new one on the same Redis and
    /// SQLite file, with a new adapter.
    pub async fn restart(&mut self) {
        self.stop().await;
        let (store, run, tx) = open(&self.config).await;
        self.store = store;
        self.run = Some(run);
        self._config_tx = tx;
    }

    /// Stops the run loop and shuts sync-engine down.
    pub async fn stop(&mut self) {
        if let Some(run) = self.run.take() {
            run.abort();
            let _ = run.await;
        }
        self.store.engine().shutdown().await;
    }

    /// A plain connection to the node's Redis, for looking at what sync-engine wrote.
    pub async fn redis_conn(&self) -> MultiplexedConnection {
        redis::Client::open(self.redis.url())
            .expect("a valid URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connecting to the test redis-server")
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        self.config.redis_prefix.as_deref().unwrap_or("")
    }

    /// Entries in the node's CDC stream.
    pub async fn cdc_len(&self) -> u64 {
        let mut conn = self.redis_conn().await;
        redis::cmd("XLEN")
            .arg(replication_core::WireKeys::new(self.prefix()).cdc())
            .query_async(&mut conn)
            .await
            .expect("XLEN")
    }

    /// Every CDC entry as `(id, field/value pairs)`, oldest first.
    pub async fn cdc_entries(&self) -> Vec<(String, Vec<(String, Vec<u8>)>)> {
        let mut conn = self.redis_conn().await;
        redis::cmd("XRANGE")
            .arg(replication_core::WireKeys::new(self.prefix()).cdc())
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .expect("XRANGE")
    }

    /// The raw value at `{prefix}{id}` (sync-engine's L2 copy of the item).
    pub async fn redis_item(&self, id: &str) -> Option<Vec<u8>> {
        let mut conn = self.redis_conn().await;
        redis::cmd("GET")
            .arg(format!("{}{id}", self.prefix()))
            .query_async(&mut conn)
            .await
            .expect("GET")
    }
}

async fn open(
    config: &SyncEngineConfig,
) -> (
    Arc<SyncEngineStore>,
    JoinHandle<()>,
    watch::Sender<SyncEngineConfig>,
) {
    let (tx, rx) = watch::channel(config.clone());
    let mut engine = SyncEngine::new(config.clone(), rx);
    engine.start().await.expect("starting sync-engine");
    let engine = Arc::new(engine);
    let runner = engine.clone();
    let run = tokio::spawn(async move { runner.run().await });
    let store = SyncEngineStore::connect(engine, config)
        .await
        .expect("opening the adapter");
    (Arc::new(store), run, tx)
}
