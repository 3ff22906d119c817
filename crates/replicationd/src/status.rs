//! `replicationd status`: asks a running daemon for `/health` and prints it readably.
//!
//! A plain HTTP/1.1 GET over a TCP socket: one request does not justify an HTTP client crate.

use crate::config::DaemonConfig;
use anyhow::{bail, Context, Result};
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Prints the daemon's health; exit status 1 when it is not healthy.
pub(crate) async fn status(config_path: &Path) -> Result<()> {
    let config = DaemonConfig::load(config_path)?;
    let addr = config.http.listen;
    let body = http_get(addr, "/health")
        .await
        .with_context(|| format!("no replicationd answering on {addr} (is it running?)"))?;
    let health: serde_json::Value =
        serde_json::from_str(&body).context("the daemon's /health is not JSON")?;
    print!("{}", render(&health));
    if health["healthy"].as_bool() != Some(true) {
        bail!("not healthy");
    }
    Ok(())
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> Result<String> {
    let mut stream = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::TcpStream::connect(addr),
    )
    .await??;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_string(&mut response),
    )
    .await??;
    let (_, body) = response
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    Ok(body.to_owned())
}

/// Human-readable health.
pub(crate) fn render(health: &serde_json::Value) -> String {
    let mut out = format!(
        "engine {}  ready={} healthy={}  store accepting writes={} circuit={}\npeers {}/{} connected\n",
        health["state"].as_str().unwrap_or("?"),
        health["ready"],
        health["healthy"],
        health["sync_engine_accepting_writes"],
        health["sync_engine_circuit"].as_str().unwrap_or("?"),
        health["peers_connected"],
        health["peers_total"],
    );
    if let Some(server) = health["sync_engine_server"].as_str() {
        out.push_str(&format!(
            "store on {server}{}\n",
            failovers(&health["sync_engine_failovers"])
        ));
    }
    for peer in health["peers"].as_array().into_iter().flatten() {
        let lag = peer["lag_ms"]
            .as_u64()
            .map_or("-".to_owned(), |ms| format!("{ms} ms"));
        out.push_str(&format!(
            "  {:<24} {:<12} lag {:<10} cursor {:<22} circuit {}{}\n",
            peer["node_id"].as_str().unwrap_or("?"),
            peer["connection_state"].as_str().unwrap_or("?"),
            lag,
            peer["cursor"].as_str().unwrap_or("-"),
            if peer["circuit_open"].as_bool() == Some(true) {
                "open"
            } else {
                "closed"
            },
            peer["last_error"]
                .as_str()
                .map(|e| format!("  last error: {e}"))
                .unwrap_or_default(),
        ));
        if let Some(server) = peer["server"].as_str() {
            out.push_str(&format!(
                "  {:<24} on {server}{}\n",
                "",
                failovers(&peer["failovers"])
            ));
        }
    }
    out
}

/// `, N failovers` when a server change was seen.
fn failovers(count: &serde_json::Value) -> String {
    match count.as_u64() {
        Some(n) if n > 0 => format!(", {n} failover{}", if n == 1 { "" } else { "s" }),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failovers_show_with_the_server_holding_the_data() {
        let health = serde_json::json!({
            "state": "Running", "ready": true, "healthy": true,
            "sync_engine_accepting_writes": true, "sync_engine_circuit": "closed",
            "sync_engine_server": "10.0.0.9:6379", "sync_engine_failovers": 1,
            "peers_connected": 1, "peers_total": 1,
            "peers": [{"node_id": "b", "connection_state": "connected", "circuit_open": false,
                       "server": "10.0.0.2:6379", "failovers": 2}],
        });
        let text = render(&health);
        assert!(
            text.contains("store on 10.0.0.9:6379, 1 failover\n"),
            "{text}"
        );
        assert!(text.contains("on 10.0.0.2:6379, 2 failovers"), "{text}");
    }
}
