//! `replicationd run`: engine + HTTP endpoint + signals until SIGTERM/SIGINT.
//!
//! SIGHUP re-reads the config file and hands the engine section to the engine's watch
//! channel; an invalid file is logged and ignored, the running config stays. Operator
//! controls (a paused peer) are the engine's and survive the reload; a restart clears them.

use crate::admin::AdminAccess;
use crate::config::{DaemonConfig, StoreSection};
use crate::engine_cell::EngineCell;
use crate::node::connect_store;
use anyhow::{Context, Result};
use metrics_exporter_prometheus::PrometheusBuilder;
use replication_engine::{ReplicationEngine, SyncEngineRef};
use std::path::Path;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// Runs the daemon until a termination signal.
pub(crate) async fn run(config_path: &Path) -> Result<()> {
    let config = DaemonConfig::load(config_path)?;
    match &config.store {
        StoreSection::Node(node) => {
            let store = connect_store(&config, node).await?;
            serve(config_path, config, Arc::new(store)).await
        }
        #[cfg(feature = "sync-engine")]
        StoreSection::SyncEngine(section) => {
            let section = section.clone();
            crate::sync_store::run(config_path, config, &section).await
        }
        #[cfg(not(feature = "sync-engine"))]
        StoreSection::SyncEngine(_) => anyhow::bail!(
            "config file {}: [sync_engine] needs a replicationd built with the `sync-engine` \
             feature (cargo build --release -p replicationd --features sync-engine)",
            config_path.display()
        ),
    }
}

/// Runs the engine over `store`, with the HTTP endpoint and signals, until a termination
/// signal; the engine is shut down (drained, cursors flushed) before this returns.
pub(crate) async fn serve<S: SyncEngineRef>(
    config_path: &Path,
    config: DaemonConfig,
    store: Arc<S>,
) -> Result<()> {
    let admin = admin_access(&config)?;
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the Prometheus metrics recorder")?;
    // Bind before starting the engine, so a port in use fails fast and clearly.
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is the port in use?)",
                config.http.listen
            )
        })?;

    let (config_tx, config_rx) = watch::channel(config.engine.clone());
    let engine = ReplicationEngine::with_sync_engine(config.engine.clone(), config_rx, store);
    let cell = Arc::new(EngineCell::new(engine));
    cell.start().await.context("engine failed to start")?;
    tracing::info!(
        node = %config.engine.local_node_id,
        http = %config.http.listen,
        peers = config.engine.peers.len(),
        "replicationd running"
    );

    let (http_stop_tx, http_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let app = crate::http::router(cell.clone(), prometheus, admin)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = http_stop_rx.await;
            })
            .await
    });

    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    let mut running = config;
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: shutting down"); break; }
            _ = hup.recv() => reload(config_path, &mut running, &config_tx),
        }
    }
    cell.shutdown().await;
    let _ = http_stop_tx.send(());
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server ended with an error"),
        Err(e) => tracing::warn!(error = %e, "HTTP server task failed"),
    }
    tracing::info!("replicationd stopped");
    Ok(())
}

/// SIGHUP reloads, label `outcome` = `applied` | `rejected` (a file that does not parse or
/// validate: the running config stays).
pub(crate) const CONFIG_RELOADS: &str = "replication_config_reloads_total";

/// Who may use the admin routes; refuses to start when remote access has no token.
fn admin_access(config: &DaemonConfig) -> Result<AdminAccess> {
    let token = crate::admin_token::resolve(&config.admin)?;
    if config.admin.allow_remote && token.is_none() {
        anyhow::bail!(
            "[admin] allow_remote = true needs a token: set [admin] token_file or {}",
            crate::admin_token::TOKEN_ENV
        );
    }
    Ok(AdminAccess {
        allow_remote: config.admin.allow_remote,
        token,
    })
}

fn reload(
    path: &Path,
    running: &mut DaemonConfig,
    tx: &watch::Sender<replication_engine::ReplicationEngineConfig>,
) {
    match DaemonConfig::load(path) {
        Err(e) => {
            metrics::counter!(CONFIG_RELOADS, "outcome" => "rejected").increment(1);
            tracing::error!(error = %e, "SIGHUP: config not reloaded; the running config stays")
        }
        Ok(new) => {
            if new.store != running.store || new.http != running.http || new.admin != running.admin
            {
                tracing::warn!(
                    "SIGHUP: store ([node], [sync_engine]), [http] and [admin] changes take effect only after a restart"
                );
            }
            metrics::counter!(CONFIG_RELOADS, "outcome" => "applied").increment(1);
            tracing::info!(peers = new.engine.peers.len(), "SIGHUP: config reloaded");
            // Nobody listening only means the engine is gone; the daemon is stopping anyway.
            let _ = tx.send(new.engine.clone());
            *running = new;
        }
    }
}
