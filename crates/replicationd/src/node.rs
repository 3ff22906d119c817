//! Local commands (`put`, `get`, `del`) that talk to this node's own store directly.

use crate::config::{DaemonConfig, NodeSection, StoreSection};
use anyhow::{bail, Context, Result};
use replication_node::{NodeStore, NodeStoreConfig};
use std::io::Read;
use std::path::Path;

/// Connects to the node's own Redis, naming it (redacted) when that fails. Object ids are
/// bounded by `[settings.limits]`, the same limits the engine applies to peers' ids.
pub(crate) async fn connect_store(daemon: &DaemonConfig, node: &NodeSection) -> Result<NodeStore> {
    let config = NodeStoreConfig {
        redis_url: node.redis_url.clone(),
        redis_prefix: node.redis_prefix.clone(),
        max_payload_bytes: node.max_payload_bytes,
        cdc_maxlen: node.cdc_maxlen,
        command_timeout: NodeStoreConfig::DEFAULT_COMMAND_TIMEOUT,
        object_id_limits: daemon.engine.settings.limits.object_ids(),
    };
    NodeStore::connect(config).await.with_context(|| {
        format!(
            "cannot reach this node's Redis at {}",
            replication_engine::redact_url(&node.redis_url)
        )
    })
}

/// The node store's section; the local commands write the node store only.
fn node_section(config: &DaemonConfig) -> Result<&NodeSection> {
    match &config.store {
        StoreSection::Node(node) => Ok(node),
        StoreSection::SyncEngine(_) => bail!(
            "put, get and del work on the node store ([node]); with [sync_engine], write \
             through your application's sync-engine, which this daemon replicates"
        ),
    }
}

/// `put KEY VALUE` (or `-` to read the value from stdin).
pub(crate) async fn put(config_path: &Path, key: &str, value: Option<&str>) -> Result<()> {
    let config = DaemonConfig::load(config_path)?;
    let content = match value {
        None | Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("cannot read the value from stdin")?;
            buf
        }
        Some(text) => text.as_bytes().to_vec(),
    };
    let store = connect_store(&config, node_section(&config)?).await?;
    let item = store.put(key, content).await?;
    println!(
        "put {} version {} ({} bytes)",
        item.key,
        item.version,
        item.content.len()
    );
    Ok(())
}

/// `get KEY`: prints the content to stdout; exit status 1 when absent.
pub(crate) async fn get(config_path: &Path, key: &str) -> Result<()> {
    use std::io::Write;
    let config = DaemonConfig::load(config_path)?;
    let store = connect_store(&config, node_section(&config)?).await?;
    match store.get_item(key).await? {
        Some(item) => {
            let mut out = std::io::stdout().lock();
            out.write_all(&item.content)?;
            if !item.content.ends_with(b"\n") {
                out.write_all(b"\n")?;
            }
            Ok(())
        }
        None => bail!("{key}: not found"),
    }
}

/// `del KEY`.
pub(crate) async fn del(config_path: &Path, key: &str) -> Result<()> {
    use replication_engine::SyncEngineRef;
    let config = DaemonConfig::load(config_path)?;
    let store = connect_store(&config, node_section(&config)?).await?;
    if store.delete(key.to_owned()).await? {
        println!("deleted {key}");
        Ok(())
    } else {
        bail!("{key}: not found")
    }
}
