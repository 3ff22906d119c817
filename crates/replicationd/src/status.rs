//! `replicationd status`: asks a running daemon for its status report and prints it, the
//! same typed report the status page renders (or the JSON itself with `--json`).

use crate::client;
use crate::config::DaemonConfig;
use crate::status_model::StatusReport;
use anyhow::{bail, Result};
use replication_engine::PeerHealth;
use std::fmt::Write as _;
use std::path::Path;

/// Prints the daemon's status; exit status 1 when it is not healthy.
pub(crate) async fn status(config_path: &Path, json: bool) -> Result<()> {
    let config = DaemonConfig::load(config_path)?;
    let report = client::status(config.http.listen).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    if !report.health.healthy {
        bail!("not healthy");
    }
    Ok(())
}

/// Human-readable status: a summary line, then a few lines per peer.
pub(crate) fn render(report: &StatusReport) -> String {
    let h = &report.health;
    let verdict = if h.healthy {
        "healthy"
    } else if h.ready {
        "ready, peers degraded"
    } else {
        "not ready"
    };
    let mut out = format!(
        "node {}  engine {}  {verdict}\nstore {}  circuit {}\npeers {}/{} connected\n",
        report.node_id,
        h.state,
        if h.sync_engine_accepting_writes {
            "accepting writes"
        } else {
            "refusing writes"
        },
        h.sync_engine_circuit,
        h.peers_connected,
        h.peers_total,
    );
    if let Some(server) = &h.sync_engine_server {
        let _ = writeln!(
            out,
            "store on {server}{}",
            failovers(h.sync_engine_failovers)
        );
    }
    for peer in &h.peers {
        out.push_str(&render_peer(peer, report.generated_at_ms));
    }
    out
}

fn render_peer(peer: &PeerHealth, now_ms: i64) -> String {
    let mut flags = vec![if peer.enabled {
        peer.connection_state.clone()
    } else {
        "disabled".to_owned()
    }];
    if peer.paused {
        flags.push("PAUSED".into());
    }
    if peer.circuit_open {
        flags.push("circuit open".into());
    }
    if peer.catching_up {
        flags.push("catching up".into());
    }
    let lag = match (peer.lag_ms, peer.lag_entries) {
        (Some(ms), Some(entries)) => format!("{ms} ms ({entries} entries)"),
        (Some(ms), None) => format!("{ms} ms"),
        _ => "-".into(),
    };
    let mut out = format!(
        "  {:<20} {:<24} lag {:<20} applied {:.1}/s ({} total)  cursor {}\n",
        peer.node_id,
        flags.join(", "),
        lag,
        peer.applied_per_sec,
        peer.applied_total,
        peer.cursor.as_deref().unwrap_or("-"),
    );
    let indent = " ".repeat(23);
    if let Some(server) = &peer.server {
        let _ = writeln!(out, "{indent}on {server}{}", failovers(peer.failovers));
    }
    let rejected = if peer.rejected.is_empty() {
        "none".to_owned()
    } else {
        peer.rejected
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "{indent}rejected {rejected}  gaps {} trimmed, {} recreated  read {} content, {} wire",
        peer.gaps.trimmed,
        peer.gaps.recreated,
        bytes(peer.bytes_read.content),
        bytes(peer.bytes_read.wire),
    );
    let _ = writeln!(
        out,
        "{indent}last repair {}",
        repair_line(peer.last_repair.as_ref(), now_ms)
    );
    if let Some(difference) = &peer.last_difference {
        if peer.last_repair.as_ref().map(|r| r.cycle) != Some(difference.cycle) {
            let _ = writeln!(
                out,
                "{indent}last found differences {}",
                repair_line(Some(difference), now_ms)
            );
        }
    }
    if let Some(error) = &peer.last_error {
        let _ = writeln!(out, "{indent}last error {error}");
    }
    out
}

fn repair_line(repair: Option<&replication_engine::RepairHealth>, now_ms: i64) -> String {
    match repair {
        None => "none yet".to_owned(),
        Some(r) => {
            let ago = (now_ms - r.finished_at_ms).max(0) / 1000;
            let what = match &r.error {
                Some(error) => format!("failed: {error}"),
                None if r.in_sync => "in sync".to_owned(),
                None => format!(
                    "{} keys different, {} items fetched ({}), {} applied{}",
                    r.keys_different,
                    r.items_fetched,
                    bytes(r.bytes_fetched),
                    r.items_applied,
                    if r.completed { "" } else { ", more next cycle" }
                ),
            };
            format!(
                "{ago} s ago ({}, cycle {}, {} ms): {what}",
                r.trigger, r.cycle, r.duration_ms
            )
        }
    }
}

/// `, N failovers` when a server change was seen.
fn failovers(count: u64) -> String {
    match count {
        0 => String::new(),
        1 => ", 1 failover".to_owned(),
        n => format!(", {n} failovers"),
    }
}

/// A byte count in the largest binary unit that keeps it at one or more.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    // Display only: the precision lost converting to f64 does not show at one decimal.
    #[allow(clippy::cast_precision_loss)]
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failovers_show_with_the_server_holding_the_data() {
        let health: replication_engine::HealthCheck = serde_json::from_value(serde_json::json!({
            "state": "Running", "ready": true, "healthy": true,
            "sync_engine_accepting_writes": true, "sync_engine_circuit": "closed",
            "sync_engine_server": "10.0.0.9:6379", "sync_engine_failovers": 1,
            "peers_connected": 1, "peers_total": 1,
            "peers": [{
                "node_id": "b", "enabled": true, "paused": false, "connected": true,
                "connection_state": "connected", "circuit_open": false, "lag_ms": 3,
                "lag_entries": 0, "catching_up": false, "cursor": "1-0",
                "applied_total": 0, "applied_per_sec": 0.0, "rejected": {},
                "gaps": {"trimmed": 0, "recreated": 0, "last_at_ms": null},
                "bytes_read": {"wire": 0, "content": 0}, "last_error": null,
                "last_error_at_ms": null, "last_success_ms": null,
                "server": "10.0.0.2:6379", "reconnects": 3, "failovers": 2,
                "repairs_run": 0, "last_repair": null, "last_difference": null,
                "gap_unrepaired": false
            }],
        }))
        .expect("a health report");
        let report = StatusReport {
            node_id: "a".into(),
            version: "0".into(),
            generated_at_ms: 0,
            health,
            history: Vec::new(),
            sample_every_secs: 2,
        };
        let text = render(&report);
        assert!(
            text.contains("store on 10.0.0.9:6379, 1 failover\n"),
            "{text}"
        );
        assert!(text.contains("on 10.0.0.2:6379, 2 failovers"), "{text}");
    }

    #[test]
    fn bytes_are_shown_in_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KB");
        assert_eq!(bytes(5 * 1024 * 1024), "5.0 MB");
    }
}
