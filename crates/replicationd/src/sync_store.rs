//! `[sync_engine]` (cargo feature `sync-engine`): the daemon runs a sync-engine instance in
//! its own process and replicates into it through `replication-sync-engine`'s adapter.
//!
//! Start order: sync-engine first (its startup drains its WAL and brings its Redis copy in
//! line with SQL), then the replication engine; stop order the reverse, so the engine's last
//! batches land before sync-engine's final flush.

use crate::config::{DaemonConfig, SyncEngineSection};
use anyhow::{Context, Result};
use replication_engine::{redact_url, redact_urls_in};
use replication_sync_engine::sync_engine::{SyncEngine, SyncEngineConfig};
use replication_sync_engine::SyncEngineStore;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

/// Runs sync-engine and the replication engine over it until a termination signal.
pub(crate) async fn run(
    config_path: &Path,
    config: DaemonConfig,
    section: &SyncEngineSection,
) -> Result<()> {
    let se_config = engine_config(section);
    let (_config_tx, config_rx) = watch::channel(se_config.clone());
    let mut engine = SyncEngine::new(se_config.clone(), config_rx);
    engine.start().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot start sync-engine (Redis {}, SQL {}): {}",
            redact_url(&section.redis_url),
            redact_url(&section.sql_url),
            redact_urls_in(&e.to_string())
        )
    })?;
    let engine = Arc::new(engine);
    let runner = engine.clone();
    // sync-engine's maintenance loop (timed flushes of writes made outside the adapter,
    // WAL drain, filter snapshots); it never returns, so it is aborted at shutdown.
    let maintenance = tokio::spawn(async move { runner.run().await });
    let store = SyncEngineStore::connect(engine.clone(), &se_config)
        .await
        .context("cannot open the sync-engine adapter")?;
    tracing::info!(
        redis = %redact_url(&section.redis_url),
        sql = %redact_url(&section.sql_url),
        "sync-engine started as the local store"
    );
    let served = crate::run::serve(config_path, config, Arc::new(store)).await;
    maintenance.abort();
    let _ = maintenance.await;
    engine.shutdown().await;
    served
}

/// Batch thresholds of sync-engine's own flush, above any batch the engine hands the adapter:
/// in this process every write goes through the adapter, which flushes itself, and a timed
/// flush that took an adapter batch half-way would run beside the adapter's (docs/PROTOCOL.md,
/// "sync-engine as the local store").
const OWN_FLUSH_COUNT: usize = 100_000;
const OWN_FLUSH_BYTES: usize = 1 << 30;

/// sync-engine's configuration from the section; its CDC stream is always on (peers tail it).
pub(crate) fn engine_config(section: &SyncEngineSection) -> SyncEngineConfig {
    SyncEngineConfig {
        batch_flush_count: OWN_FLUSH_COUNT,
        batch_flush_bytes: OWN_FLUSH_BYTES,
        redis_url: Some(section.redis_url.clone()),
        redis_prefix: Some(section.redis_prefix.clone()),
        sql_url: Some(section.sql_url.clone()),
        wal_path: Some(section.wal_path.display().to_string()),
        l1_max_bytes: section.l1_max_bytes,
        max_payload_bytes: section.max_payload_bytes,
        enable_cdc_stream: true,
        cdc_stream_maxlen: section.cdc_maxlen,
        ..SyncEngineConfig::default()
    }
}
