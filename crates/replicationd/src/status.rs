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
                trigger_name(r.trigger),
                r.cycle,
                r.duration_ms
            )
        }
    }
}

/// The trigger's name as the JSON spells it.
pub(crate) fn trigger_name(trigger: replication_engine::RepairTrigger) -> &'static str {
    match trigger {
        replication_engine::RepairTrigger::Scheduled => "scheduled",
        replication_engine::RepairTrigger::Gap => "gap",
        replication_engine::RepairTrigger::Operator => "operator",
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
    fn bytes_are_shown_in_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KB");
        assert_eq!(bytes(5 * 1024 * 1024), "5.0 MB");
    }
}
