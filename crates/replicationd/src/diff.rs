//! `replicationd diff --peer ID`: a read-only repair preview. It walks the Merkle
//! difference between this node's store and the peer's and prints, per differing key, both
//! stamps, the winner in the conflict order and what a repair would do. It never writes.
//!
//! Exit status: 0 when nothing in scope differs, 1 when something does, 2 on error, so
//! scripts can use it. The daemon need not run: `diff` reads both Redis servers itself.

use crate::config::{DaemonConfig, StoreSection};
use crate::node::connect_store;
use anyhow::{bail, Context, Result};
use replication_engine::preview::{
    preview_repair, Derived, HeldState, KeyDifference, PeerView, PlanScope, RepairAction,
    RepairPlan, Winner,
};
use replication_engine::{
    ConnectionState, LocalState, PeerBackend, PeerConnector, RedisConnector, Stamp, Tombstone,
};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// What the preview found, for the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DiffOutcome {
    /// Nothing in scope differs.
    Identical,
    /// At least one key differs.
    Differ,
}

/// Arguments of `diff`.
#[derive(Clone, Debug)]
pub(crate) struct DiffArgs {
    pub(crate) peer: String,
    pub(crate) prefix: String,
    pub(crate) limit: usize,
    pub(crate) json: bool,
}

/// Runs the preview and prints it.
pub(crate) async fn diff(config_path: &Path, args: &DiffArgs) -> Result<DiffOutcome> {
    let config = DaemonConfig::load(config_path)?;
    let Some(peer_config) = config.engine.peer(&args.peer) else {
        let known: Vec<&str> = config
            .engine
            .peers
            .iter()
            .map(|p| p.node_id.as_str())
            .collect();
        bail!(
            "no peer {} in {} (configured: {})",
            args.peer,
            config_path.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
    };
    let StoreSection::Node(node) = &config.store else {
        bail!(
            "diff reads the node store ([node]); with [sync_engine] this daemon has no \
             store of its own to compare"
        );
    };
    let store = connect_store(&config, node).await?;
    // One attempt per read: an unreachable peer is reported, not retried for long.
    let mut settings = config.engine.settings.clone();
    settings.peer.retries = 0;
    let peer = RedisConnector
        .connect(peer_config, &settings)
        .with_context(|| format!("cannot set up peer {}", args.peer))?;
    let scope = PlanScope {
        prefix: args.prefix.clone(),
        limit: args.limit.max(1),
    };
    let plan = match wait_connected(&*peer, settings.peer.connect_timeout).await {
        Ok(()) => preview_repair(&store, &*peer, &settings, &scope)
            .await
            .map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    // A courtesy to a connected peer (closing one still connecting would wait for it);
    // a peer that dies meanwhile must not keep the command from exiting.
    if peer.connection().state == ConnectionState::Connected {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, peer.close()).await;
    }
    let plan = plan.with_context(|| {
        format!(
            "cannot compare with peer {} at {}",
            args.peer,
            peer_config.redacted_url()
        )
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&JsonPlan::new(args, &plan))?
        );
    } else {
        print!("{}", render(args, &plan));
    }
    Ok(if plan.is_identical() {
        DiffOutcome::Identical
    } else {
        DiffOutcome::Differ
    })
}

/// Longest wait for the peer's connections to close once the preview is done.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How often the connection state is looked at while waiting for it.
const CONNECT_POLL: Duration = Duration::from_millis(20);

/// Waits until the peer's connection is up: a backend connects in the background and
/// fails calls until then. Gives up after `timeout` with the connection's last error.
async fn wait_connected(peer: &dyn PeerBackend, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let connection = peer.connection();
        if connection.state == ConnectionState::Connected {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "not connected within {timeout:?}{}",
                connection
                    .last_error
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
        }
        tokio::time::sleep(CONNECT_POLL).await;
    }
}

/// The human form: one header line, then a table of differing keys (nothing when equal).
fn render(args: &DiffArgs, plan: &RepairPlan) -> String {
    let scope = if args.prefix.is_empty() {
        String::new()
    } else {
        format!(" under {:?}", args.prefix)
    };
    if plan.is_identical() {
        return format!("identical to {}{scope}\n", args.peer);
    }
    let mut out = format!(
        "{} key(s) differ from {}{scope}{}\n",
        plan.differences.len(),
        args.peer,
        if plan.truncated {
            format!(" (stopped at --limit {}; more may differ)", args.limit)
        } else {
            String::new()
        }
    );
    let rows: Vec<[String; 5]> = plan
        .differences
        .iter()
        .map(|d| {
            [
                d.key.clone(),
                local_text(&d.local),
                peer_text(&d.peer),
                winner_name(d.winner).to_owned(),
                action_text(d),
            ]
        })
        .collect();
    let header = ["KEY", "LOCAL", "PEER", "WINNER", "REPAIR WOULD"].map(str::to_owned);
    let widths: Vec<usize> = (0..4)
        .map(|i| {
            std::iter::once(&header)
                .chain(&rows)
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(&header).chain(&rows) {
        out.push_str(&format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}\n",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        ));
    }
    out
}

fn when(ms: i64) -> String {
    u64::try_from(ms)
        .ok()
        .map(|ms| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .map_or_else(
            || format!("{ms} ms"),
            |t| humantime::format_rfc3339_millis(t).to_string(),
        )
}

fn stamp_text(stamp: &Stamp) -> String {
    if stamp.is_delete() {
        format!("deleted v{} {}", stamp.version, when(stamp.updated_at))
    } else {
        format!("put v{} {}", stamp.version, when(stamp.updated_at))
    }
}

fn tombstone_text(t: &Tombstone) -> String {
    stamp_text(&t.stamp())
}

fn local_text(local: &HeldState) -> String {
    match local {
        HeldState::Known(LocalState::Absent) | HeldState::Derived(Derived::Absent) => {
            "absent".into()
        }
        HeldState::Known(LocalState::Present(stamp)) => stamp_text(stamp),
        HeldState::Known(LocalState::Deleted(t)) => tombstone_text(t),
        // A store without `local_states`: what its tree and content tell, no time.
        HeldState::Derived(Derived::Versioned { version, .. }) => format!("put v{version}"),
        HeldState::Derived(Derived::Unversioned { .. }) => "put (version unknown)".into(),
        HeldState::Derived(Derived::Undetermined) => "unknown".into(),
    }
}

fn peer_text(peer: &PeerView) -> String {
    match peer {
        PeerView::Item(stamp) => stamp_text(stamp),
        PeerView::Deleted(t) => tombstone_text(t),
        PeerView::Absent => "absent".into(),
        PeerView::Unreadable { .. } => "unreadable".into(),
    }
}

fn winner_name(winner: Winner) -> &'static str {
    match winner {
        Winner::Local => "local",
        Winner::Peer => "peer",
        Winner::Undecided => "undecided",
    }
}

fn action_name(action: RepairAction) -> &'static str {
    match action {
        RepairAction::Fetch => "fetch",
        RepairAction::Delete => "delete",
        RepairAction::KeepLocal => "keep_local",
        RepairAction::AwaitPeerDelete => "await_peer_delete",
        RepairAction::SkipUnreadable => "skip_unreadable",
        RepairAction::SkipVanished => "skip_vanished",
        RepairAction::SkipUndetermined => "skip_undetermined",
    }
}

fn action_text(d: &KeyDifference) -> String {
    match d.action {
        RepairAction::Fetch => "fetch the peer's item".into(),
        RepairAction::Delete => "delete here (the peer's tombstone wins)".into(),
        RepairAction::KeepLocal => "keep ours (the peer fetches it from us)".into(),
        RepairAction::AwaitPeerDelete => "keep our delete (the peer has yet to apply it)".into(),
        RepairAction::SkipUnreadable => match &d.peer {
            PeerView::Unreadable { reason } => {
                format!("skip: the peer's item is unreadable ({reason})")
            }
            _ => "skip: the peer's item is unreadable".into(),
        },
        RepairAction::SkipVanished => "skip: gone from the peer when read".into(),
        RepairAction::SkipUndetermined => "skip: our version cannot be found".into(),
    }
}

/// `--json` output.
#[derive(Debug, Serialize)]
struct JsonPlan<'a> {
    peer: &'a str,
    prefix: &'a str,
    limit: usize,
    identical: bool,
    truncated: bool,
    differences: Vec<JsonDifference<'a>>,
}

#[derive(Debug, Serialize)]
struct JsonDifference<'a> {
    key: &'a str,
    local: JsonStamp,
    peer: JsonStamp,
    winner: &'static str,
    action: &'static str,
}

/// One side of a key: what it holds.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum JsonStamp {
    Put {
        version: u64,
        updated_at_ms: i64,
        content_hash: String,
    },
    Deleted {
        version: u64,
        deleted_at_ms: i64,
    },
    Absent,
    Unreadable {
        reason: String,
    },
    /// A store without `local_states`: an item found in its tree, no time known.
    DerivedPut {
        version: Option<u64>,
        content_hash: String,
    },
    /// A store without `local_states` whose item could not be described.
    Unknown,
}

impl JsonStamp {
    fn of_stamp(stamp: &Stamp) -> Self {
        if stamp.is_delete() {
            JsonStamp::Deleted {
                version: stamp.version,
                deleted_at_ms: stamp.updated_at,
            }
        } else {
            JsonStamp::Put {
                version: stamp.version,
                updated_at_ms: stamp.updated_at,
                content_hash: stamp.content_hash.clone(),
            }
        }
    }

    fn of_local(local: &HeldState) -> Self {
        match local {
            HeldState::Known(LocalState::Absent) | HeldState::Derived(Derived::Absent) => {
                JsonStamp::Absent
            }
            HeldState::Known(LocalState::Present(stamp)) => Self::of_stamp(stamp),
            HeldState::Known(LocalState::Deleted(t)) => Self::of_stamp(&t.stamp()),
            HeldState::Derived(Derived::Versioned {
                version,
                content_hash,
            }) => JsonStamp::DerivedPut {
                version: Some(*version),
                content_hash: content_hash.clone(),
            },
            HeldState::Derived(Derived::Unversioned { content_hash }) => JsonStamp::DerivedPut {
                version: None,
                content_hash: content_hash.clone(),
            },
            HeldState::Derived(Derived::Undetermined) => JsonStamp::Unknown,
        }
    }

    fn of_peer(peer: &PeerView) -> Self {
        match peer {
            PeerView::Item(stamp) => Self::of_stamp(stamp),
            PeerView::Deleted(t) => Self::of_stamp(&t.stamp()),
            PeerView::Absent => JsonStamp::Absent,
            PeerView::Unreadable { reason } => JsonStamp::Unreadable {
                reason: reason.clone(),
            },
        }
    }
}

impl<'a> JsonPlan<'a> {
    fn new(args: &'a DiffArgs, plan: &'a RepairPlan) -> Self {
        Self {
            peer: &args.peer,
            prefix: &args.prefix,
            limit: args.limit,
            identical: plan.is_identical(),
            truncated: plan.truncated,
            differences: plan
                .differences
                .iter()
                .map(|d| JsonDifference {
                    key: &d.key,
                    local: JsonStamp::of_local(&d.local),
                    peer: JsonStamp::of_peer(&d.peer),
                    winner: winner_name(d.winner),
                    action: action_name(d.action),
                })
                .collect(),
        }
    }
}
