//! `replicationd peer pause|resume|repair ID`: the runtime controls, through the running
//! daemon's admin routes, with the token found as the daemon finds it (`admin_token.rs`).
//!
//! `repair` waits for the cycle it asked for and prints what it did.

use crate::admin_token;
use crate::client::{self, Reply};
use crate::config::DaemonConfig;
use crate::status::bytes;
use anyhow::{bail, Context, Result};
use replication_engine::{RepairHealth, RepairTrigger};
use std::path::Path;
use std::time::{Duration, Instant};

/// What to do to the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::Subcommand)]
pub(crate) enum PeerAction {
    /// Stop replicating from the peer (kept across config reloads, not across restarts).
    Pause,
    /// Replicate from the peer again, from its cursor.
    Resume,
    /// Run a repair cycle with the peer now and wait for its outcome.
    Repair,
}

impl PeerAction {
    fn route(self) -> &'static str {
        match self {
            PeerAction::Pause => "pause",
            PeerAction::Resume => "resume",
            PeerAction::Repair => "repair",
        }
    }
}

/// Sends the control; for a repair, waits up to `wait` for its outcome.
pub(crate) async fn run(
    config_path: &Path,
    action: PeerAction,
    peer: &str,
    wait: Duration,
) -> Result<()> {
    let config = DaemonConfig::load(config_path)?;
    let token = admin_token::resolve(&config.admin)?;
    let addr = config.http.listen;
    // The cycles already recorded, so the one asked for now can be told apart.
    let before = match action {
        PeerAction::Repair => last_repair(addr, peer).await?.map_or(0, |r| r.cycle),
        _ => 0,
    };
    let path = format!("/admin/peers/{}/{}", escape_path(peer), action.route());
    let reply = client::request(addr, "POST", &path, token.as_deref())
        .await
        .with_context(|| format!("no replicationd answering on {addr} (is it running?)"))?;
    check(&reply, token.is_some())?;
    let changed = serde_json::from_str::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|v| v["changed"].as_bool())
        .unwrap_or(true);
    match action {
        PeerAction::Pause if changed => println!("paused replication from {peer}"),
        PeerAction::Pause => println!("{peer} was already paused"),
        PeerAction::Resume if changed => println!("resumed replication from {peer}"),
        PeerAction::Resume => println!("{peer} was not paused"),
        PeerAction::Repair => {
            let repair = wait_for_repair(addr, peer, before, wait).await?;
            println!("{}", describe(peer, &repair));
            if let Some(error) = repair.error {
                bail!("the repair cycle with {peer} failed: {error}");
            }
        }
    }
    Ok(())
}

/// Turns a refusal into an error that says what to do.
fn check(reply: &Reply, sent_token: bool) -> Result<()> {
    if (200..300).contains(&reply.status) {
        return Ok(());
    }
    let said = serde_json::from_str::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| reply.body.trim().to_owned());
    match reply.status {
        401 if !sent_token => bail!(
            "{said}: set {} or [admin] token_file in the config",
            admin_token::TOKEN_ENV
        ),
        status => bail!("the daemon refused ({status}): {said}"),
    }
}

async fn last_repair(addr: std::net::SocketAddr, peer: &str) -> Result<Option<RepairHealth>> {
    let report = client::status(addr).await?;
    let found = report.health.peers.into_iter().find(|p| p.node_id == peer);
    match found {
        Some(p) => Ok(p.last_repair),
        None => bail!("no peer {peer} is configured on this daemon"),
    }
}

/// Polls the status until a cycle numbered after `before` that an operator started shows.
async fn wait_for_repair(
    addr: std::net::SocketAddr,
    peer: &str,
    before: u64,
    wait: Duration,
) -> Result<RepairHealth> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(repair) = last_repair(addr, peer).await? {
            if repair.cycle > before && repair.trigger == RepairTrigger::Operator {
                return Ok(repair);
            }
        }
        if Instant::now() >= deadline {
            bail!("asked for a repair with {peer}, but no cycle finished within {wait:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn describe(peer: &str, r: &RepairHealth) -> String {
    let what = if r.error.is_some() {
        "failed".to_owned()
    } else if r.in_sync {
        "in sync, nothing to do".to_owned()
    } else {
        format!(
            "{} keys different, {} items fetched ({}), {} applied, {} deleted{}",
            r.keys_different,
            r.items_fetched,
            bytes(r.bytes_fetched),
            r.items_applied,
            r.tombstones_applied,
            if r.completed {
                ""
            } else {
                "; more remains for the next cycle"
            }
        )
    };
    format!(
        "repair with {peer}: cycle {} ({}) took {} ms: {what}",
        r.cycle, r.trigger, r.duration_ms
    )
}

/// Node ids are dotted names; escape anything that would change the request's path.
fn escape_path(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_stay_one_path_segment() {
        assert_eq!(escape_path("uk.node.london-1"), "uk.node.london-1");
        assert_eq!(escape_path("a/b c"), "a%2Fb%20c");
    }
}
